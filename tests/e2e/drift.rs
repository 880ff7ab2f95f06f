//! Each drift of the seed topology, injected with a direct API call: `plan`
//! exits 2 and lists exactly the fix, `apply --once` fixes it, and the next
//! `plan` exits 0.

use serde_json::Value;

use crate::harness::{Emulator, seed_config};

/// The changes of a JSON plan that `apply` makes, as (kind, resource):
/// those to apply now, and target changes a one-read plan holds until a
/// second read agrees (`apply --once` reads again for them).
pub fn applied(plan: &Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| {
            c["disposition"] == "apply"
                || (c["disposition"] == "held" && c["hold"] == "awaiting-consistency")
        })
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// plan → exactly `expected` (resource may be given as a prefix ending in
/// `/`), apply --once → converged, plan → no drift.
pub fn assert_fixed(emu: &Emulator, config: &str, expected: &[(&str, &str)]) -> Value {
    assert_fixed_then(emu, config, expected, |_| {})
}

/// [`assert_fixed`], running `after_apply` between the apply and the last
/// plan (e.g. letting ECS start the tasks a scale-out asked for).
pub fn assert_fixed_then(
    emu: &Emulator,
    config: &str,
    expected: &[(&str, &str)],
    after_apply: impl Fn(&Emulator),
) -> Value {
    let plan = emu.reconciler(&["plan", "--config", config, "--output", "json"]);
    assert_eq!(
        plan.code, 2,
        "plan should report drift: {}{}",
        plan.stdout, plan.stderr
    );
    let json = plan.json();
    let got = applied(&json);
    assert_eq!(
        got.len(),
        expected.len(),
        "plan: {got:?}, expected {expected:?}"
    );
    for ((kind, resource), (want_kind, want_resource)) in got.iter().zip(expected) {
        assert_eq!(kind, want_kind, "{got:?}");
        if want_resource.ends_with('/') {
            assert!(resource.starts_with(want_resource), "{got:?}");
        } else {
            assert_eq!(resource, want_resource, "{got:?}");
        }
    }

    let apply = emu.reconciler(&["apply", "--config", config, "--once"]);
    assert_eq!(
        apply.code, 0,
        "apply should converge: {}{}",
        apply.stdout, apply.stderr
    );
    assert!(apply.stdout.contains("Converged"), "{}", apply.stdout);
    after_apply(emu);

    let after = emu.reconciler(&["plan", "--config", config]);
    assert_eq!(
        after.code, 0,
        "plan after apply: {}{}",
        after.stdout, after.stderr
    );
    assert!(after.stdout.contains("No drift"), "{}", after.stdout);
    json
}

/// Waits until the emulated ECS scheduler has acted on a scale (tasks
/// started and registered, or stopped), so a plan sees a settled state: a
/// plan made while ECS is still registering a new task may also list that
/// (harmless) registration.
pub fn settle(emu: &Emulator, running: i64) {
    emu.wait_for("the ECS scheduler to settle", |emu| {
        let show = emu.ctl("show");
        let healthy = show["targets"]
            .as_array()
            .map(|t| t.iter().filter(|t| t["state"] == "healthy").count())
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            .unwrap_or(-1);
        show["service"]["runningCount"] == running && healthy == running
    });
}

fn desired_count(emu: &Emulator) -> i64 {
    emu.ctl("show")["service"]["desiredCount"]
        .as_i64()
        .expect("desiredCount")
}

#[test]
fn seed_topology_starts_converged() {
    let emu = Emulator::start();
    let plan = emu.reconciler(&["plan", "--config", &seed_config()]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("No drift"));
    assert!(
        plan.stdout.contains("API address: http://nestjs-api-alb"),
        "{}",
        plan.stdout
    );
}

#[test]
fn service_scaled_by_hand_to_5_and_to_0() {
    let emu = Emulator::start();
    for count in ["5", "0"] {
        emu.awsctl(&["scale", "nestjs-cluster", "nestjs-api", count]);
        settle(&emu, count.parse().unwrap());
        // Back at 2, ECS starts or stops tasks after the apply; a plan made
        // while it does may see a task that started after the targets were
        // read (a harmless registration), so the last plan waits for it.
        assert_fixed_then(
            &emu,
            &seed_config(),
            &[("scale-service", "service/nestjs-cluster/nestjs-api")],
            |emu| settle(emu, 2),
        );
        assert_eq!(desired_count(&emu), 2);
    }
}

#[test]
fn http_rule_revoked_from_load_balancer_group() {
    let emu = Emulator::start();
    emu.ctl("revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0");
    assert_fixed(
        &emu,
        &seed_config(),
        &[("authorize-ingress", "security-group/LoadBalancerGroup")],
    );
}

#[test]
fn rogue_ssh_rule_added_to_each_group() {
    let emu = Emulator::start();
    for group in ["LoadBalancerGroup", "EC2InstanceWithLoadBalancer"] {
        emu.awsctl(&[
            "authorize-ingress",
            group,
            "tcp",
            "22",
            "22",
            "--cidr",
            "0.0.0.0/0",
        ]);
    }
    assert_fixed(
        &emu,
        &seed_config(),
        &[
            ("revoke-ingress", "security-group/LoadBalancerGroup"),
            (
                "revoke-ingress",
                "security-group/EC2InstanceWithLoadBalancer",
            ),
        ],
    );
}

#[test]
fn source_group_rule_revoked_from_instance_group() {
    let emu = Emulator::start();
    emu.ctl("revoke-ingress EC2InstanceWithLoadBalancer tcp 32768 65535 --source-group LoadBalancerGroup");
    assert_fixed(
        &emu,
        &seed_config(),
        &[(
            "authorize-ingress",
            "security-group/EC2InstanceWithLoadBalancer",
        )],
    );
}

#[test]
fn instance_group_detached_from_one_instance() {
    let emu = Emulator::start();
    let detached = emu.ctl("detach-instance-group EC2InstanceWithLoadBalancer --index 0");
    let instance = detached["instance_id"]
        .as_str()
        .expect("instance id")
        .to_string();
    assert_fixed(
        &emu,
        &seed_config(),
        &[("attach-instance-groups", "instance/")],
    );
    // The instance's other group (the VPC default) was kept.
    let show = emu.ctl("show");
    let groups = show["instance_groups"][&instance]
        .as_array()
        .expect("groups")
        .clone();
    assert!(groups.contains(&"default".into()), "{groups:?}");
    assert!(
        groups.contains(&"EC2InstanceWithLoadBalancer".into()),
        "{groups:?}"
    );
}

#[test]
fn load_balancer_group_detached() {
    let emu = Emulator::start();
    emu.ctl("detach-lb-group nestjs-api-alb LoadBalancerGroup");
    assert_fixed(
        &emu,
        &seed_config(),
        &[(
            "attach-load-balancer-groups",
            "load-balancer/nestjs-api-alb",
        )],
    );
}

#[test]
fn target_deregistered_by_hand() {
    let emu = Emulator::start();
    emu.ctl("deregister-target nestjs-api-tg --index 0");
    assert_fixed(
        &emu,
        &seed_config(),
        &[("register-target", "target-group/nestjs-api-tg")],
    );
}

#[test]
fn rogue_target_registered() {
    let emu = Emulator::start();
    emu.ctl("register-target nestjs-api-tg 0 40000");
    assert_fixed(
        &emu,
        &seed_config(),
        &[("deregister-target", "target-group/nestjs-api-tg")],
    );
}

#[test]
fn stale_target_left_by_a_stopped_task() {
    let emu = Emulator::start();
    emu.ctl("stop-task-leaving-target nestjs-cluster nestjs-api");
    // Wait for ECS (the emulator) to finish stopping the task and to replace
    // it, so the only drift left is the stale target.
    emu.wait_for("replacement running and old task stopped", |emu| {
        let show = emu.ctl("show");
        let plan = emu.reconciler(&["plan", "--config", &seed_config(), "--output", "json"]);
        show["service"]["runningCount"] == 2 && plan.code == 2
    });
    assert_fixed(
        &emu,
        &seed_config(),
        &[("deregister-target", "target-group/nestjs-api-tg")],
    );
}

#[test]
fn health_check_path_changed() {
    let emu = Emulator::start();
    emu.ctl("set-health-check-path nestjs-api-tg /health");
    assert_fixed(
        &emu,
        &seed_config(),
        &[("set-health-check-path", "target-group/nestjs-api-tg")],
    );
}
