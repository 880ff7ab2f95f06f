//! `init` (issue 18): a file written from the live account describes it
//! exactly — `validate` and `plan` exit 0 on the state it was read from,
//! the same account gives the same bytes, and a drift afterwards is found.

use crate::harness::{Emulator, Run};

fn init(emu: &Emulator, args: &[&str], out: &str) -> Run {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", out]);
    emu.reconciler(&all)
}

fn path(emu: &Emulator, name: &str) -> String {
    emu.dir_path(name)
}

/// `init` of the seed's service into `name`: the file's path and text.
fn init_seed_service(emu: &Emulator, name: &str) -> (String, String) {
    let file = path(emu, name);
    let run = init(
        emu,
        &["--cluster", "nestjs-cluster", "--service", "nestjs-api"],
        &file,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text)
}

#[test]
fn init_on_the_seed_round_trips_and_then_sees_a_drift() {
    let emu = Emulator::start();
    let (file, text) = init_seed_service(&emu, "adopted.yaml");
    assert!(
        text.starts_with("# yaml-language-server: $schema=schema.json\n"),
        "{text}"
    );
    assert!(text.contains("\nmode: observe\n"), "{text}");
    for expected in [
        "  - name: LoadBalancerGroup",
        "        cidr: 0.0.0.0/0",
        "        sourceGroup: LoadBalancerGroup",
        "    instanceSecurityGroups: [EC2InstanceWithLoadBalancer, default]",
        "    replicas: 2",
        "      containerPort: 3000\n      hostPort: 0",
        "    healthCheckPath: /",
        "    membership: exclusive",
        "      - port: 80\n        protocol: HTTP",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
    let validate = emu.reconciler(&["validate", "--config", &file]);
    assert_eq!(validate.code, 0, "{}", validate.stderr);
    let plan = emu.reconciler(&["plan", "--config", &file]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);

    // Stable: the same account, the same bytes.
    let again = path(&emu, "again.yaml");
    assert_eq!(
        init(
            &emu,
            &["--cluster", "nestjs-cluster", "--service", "nestjs-api"],
            &again
        )
        .code,
        0
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);

    // A drift afterwards: observe mode reports it.
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    let plan = emu.reconciler(&["plan", "--config", &file]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout.contains("tcp 22 from 0.0.0.0/0"),
        "{}",
        plan.stdout
    );

    // A service that does not exist: an error, and no file.
    let missing = emu.dir_path("missing.yaml");
    let run = init(
        &emu,
        &["--cluster", "nestjs-cluster", "--service", "nope"],
        &missing,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("no active service nope"),
        "{}",
        run.stderr
    );
    assert!(!std::path::Path::new(&missing).exists());
}

#[test]
fn init_adopts_every_service_of_a_generated_hundred_service_topology() {
    let emu = Emulator::start();
    emu.generate(
        "generated.yaml",
        &[
            "--prefix",
            "big",
            "--services",
            "100",
            "--targets-per-service",
            "1",
            "--groups",
            "4",
            "--clusters",
            "2",
        ],
    );
    let mut adopted = 0;
    for cluster in ["big-cluster-000", "big-cluster-001"] {
        let file = path(&emu, &format!("{cluster}.yaml"));
        let run = init(&emu, &["--cluster", cluster, "--all-services"], &file);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        let text = std::fs::read_to_string(&file).unwrap();
        adopted += text.matches("\n  - name: big-svc-").count();
        let plan = emu.reconciler(&["plan", "--config", &file]);
        assert_eq!(plan.code, 0, "{cluster}: {}{}", plan.stdout, plan.stderr);
    }
    assert_eq!(adopted, 100, "every generated service");

    // Someone scales one service: the adopted file sees it.
    emu.boto3(
        "ecs.update_service(cluster='big-cluster-001', service='big-svc-0001', desiredCount=3)",
    );
    let file = emu.dir_path("big-cluster-001.yaml");
    let plan = emu.reconciler(&["plan", "--config", &file]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("big-svc-0001"), "{}", plan.stdout);
}

#[test]
fn init_writes_an_autoscaled_service_as_its_scalable_targets_range() {
    let emu = Emulator::start();
    // Application Auto Scaling owns the desired count: 1..4 around today's 2.
    emu.boto3(
        "boto3.client('application-autoscaling', **kw).register_scalable_target(\
         ServiceNamespace='ecs', ResourceId='service/nestjs-cluster/nestjs-api',\
         ScalableDimension='ecs:service:DesiredCount', MinCapacity=1, MaxCapacity=4)",
    );
    let (file, text) = init_seed_service(&emu, "autoscaled.yaml");
    assert!(
        text.contains("    replicas: {min: 1, max: 4}  # the Application Auto Scaling target's MinCapacity/MaxCapacity (desiredCount 2 now)"),
        "{text}"
    );
    let plan = emu.reconciler(&["plan", "--config", &file]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    // The autoscaler moves inside its range: no drift.
    emu.ctl("scale nestjs-cluster nestjs-api 3");
    let plan = emu.reconciler(&["plan", "--config", &file]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    // A hand-made count above it: drift.
    emu.ctl("scale nestjs-cluster nestjs-api 6");
    let plan = emu.reconciler(&["plan", "--config", &file]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
}
