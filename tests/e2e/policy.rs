//! The read-only IAM policy in deploy/ lists exactly the calls one
//! observation makes: none missing (plan would be denied), none extra;
//! and each is made the fewest times the APIs allow.

use std::collections::BTreeSet;

use crate::harness::{Emulator, seed_config};

#[test]
fn readonly_policy_matches_the_calls_plan_makes() {
    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/iam-plan-readonly.json"
        ))
        .expect("policy file"),
    )
    .expect("policy JSON");
    let allowed: BTreeSet<String> = policy["Statement"][0]["Action"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();

    let emu = Emulator::start();
    emu.ctl("calls --reset");
    let plan = emu.reconciler(&["plan", "--config", &seed_config()]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let calls = emu.ctl("calls");
    let called: BTreeSet<String> = calls
        .as_object()
        .expect("counts")
        .keys()
        .filter(|k| *k != "faulted")
        .map(|k| {
            let (service, operation) = k.split_once(':').expect("service:operation");
            let prefix = if service == "elbv2" {
                "elasticloadbalancing"
            } else {
                service
            };
            format!("{prefix}:{operation}")
        })
        .collect();
    // DescribeCapacityProviders is called only for services on a capacity
    // provider strategy, which the seed has not (the whole suite's calls
    // cover it: tests/iam).
    // DescribeNetworkInterfaces is the re-read right before a group
    // attachment, which plan never makes. DescribeManagedPrefixLists is
    // called only when a rule names or references a prefix list, which the
    // seed's do not.
    let not_called_by_plan = BTreeSet::from([
        "ecs:DescribeCapacityProviders".to_string(),
        "ec2:DescribeNetworkInterfaces".to_string(),
        "ec2:DescribeManagedPrefixLists".to_string(),
        // `init --all-services` lists the cluster's services, and `init`
        // reads their scalable targets; plan never.
        "ecs:ListServices".to_string(),
        "application-autoscaling:DescribeScalableTargets".to_string(),
    ]);
    assert_eq!(
        called,
        &allowed - &not_called_by_plan,
        "calls made by plan vs. deploy/iam-plan-readonly.json"
    );

    // One observation of the seed costs one call per read: the stopping
    // tasks are only listed when a target matches no running task.
    for (operation, count) in calls.as_object().unwrap() {
        if operation == "faulted" {
            continue;
        }
        let expected = 1;
        assert_eq!(count.as_u64(), Some(expected), "{operation}: {calls}");
    }
}

/// The daemon's steady pass (nothing drifted) makes exactly the lower
/// bound of calls for the seed — one per read; the task definition, the
/// running tasks and the container instances not at all (a revision, a
/// running task's bindings and a container instance's EC2 instance never
/// change: each was described once) — and no write. The
/// client-side budgets show up in the status API and the metrics.
#[test]
fn a_steady_daemon_pass_costs_the_lower_bound_and_writes_nothing() {
    use std::time::Duration;

    use crate::daemon::{Daemon, wait_converged};
    use crate::harness::seed_text;

    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    // A resync well above the polling below, so the reset lands between
    // two passes.
    let daemon = Daemon::start(&emu, &config, &["--resync", "3s"]);
    wait_converged(&emu, &config, Duration::from_secs(20), "startup", &daemon);
    let (calls, _) = calls_of_one_pass(&emu, &daemon, 2);
    let expected = [
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeSecurityGroups",
        "ecs:DescribeServices",
        "ecs:ListContainerInstances",
        "ecs:ListTasks",
        "elbv2:DescribeListeners",
        "elbv2:DescribeLoadBalancers",
        "elbv2:DescribeTargetGroups",
        "elbv2:DescribeTargetHealth",
    ];
    let got: BTreeSet<String> = calls
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "faulted")
        .map(|(k, v)| {
            assert_eq!(v.as_u64(), Some(1), "{k}: {calls}");
            k.clone()
        })
        .collect();
    let expected: BTreeSet<String> = expected.iter().map(ToString::to_string).collect();
    assert_eq!(got, expected, "one steady pass: {calls}");

    let (_, status) = daemon.get("/api/v1/status");
    let budgets = status["daemon"]["api_budgets"].as_array().expect("budgets");
    assert_eq!(budgets.len(), 9, "{budgets:?}");
    let elb_read = budgets.iter().find(|b| b["class"] == "elbv2-read").unwrap();
    assert_eq!(elb_read["burst"], 20.0);
    assert_eq!(elb_read["per_second"], 5.0);
    assert!(elb_read["calls"].as_u64().unwrap() >= 4);
    let (_, metrics) = daemon.get_text("/metrics");
    assert!(
        metrics.contains("ecs_reconciler_api_budget_tokens{class=\"elbv2-read\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("ecs_reconciler_api_budget_wait_seconds_total{class=\"ec2-write\"}"));
}

/// Target groups with nothing in motion are re-read in rotation: with
/// `--target-health-rotation 1` and 4 quiet groups a steady pass reads one
/// group's health (and describes no task), and a target deregistered by hand
/// on a group whose read is being reused is still registered again within
/// the stated bound, ceil(4 / 1) = 4 passes.
#[test]
fn quiet_target_groups_are_re_read_in_rotation_within_the_bound() {
    use std::time::{Duration, Instant};

    use crate::daemon::{Daemon, wait_converged};

    let emu = Emulator::start();
    let config = emu.generate(
        "rotation.yaml",
        &[
            "--prefix",
            "rot",
            "--services",
            "4",
            "--targets-per-service",
            "2",
            "--groups",
            "1",
        ],
    );
    let daemon = Daemon::start(
        &emu,
        &config,
        &["--resync", "1s", "--target-health-rotation", "1"],
    );
    wait_converged(&emu, &config, Duration::from_secs(30), "startup", &daemon);
    // Past the passes that read everything once and saw it settled.
    let (calls, passes_counted) = calls_of_one_pass(&emu, &daemon, 3);
    let count = |name: &str| calls[name].as_u64().unwrap_or(0) as usize;
    // The status read may land a pass late: count per pass.
    assert_eq!(
        count("elbv2:DescribeTargetHealth"),
        passes_counted,
        "one target group's health per steady pass: {calls}"
    );
    assert_eq!(
        count("ecs:DescribeTasks"),
        0,
        "running tasks are described once: {calls}"
    );
    assert_eq!(
        count("elbv2:DescribeTargetGroups"),
        passes_counted,
        "{calls}"
    );

    // A target deregistered by hand: no task changed, so only the
    // rotation can see it.
    let at = passes(&daemon);
    emu.ctl("deregister-target rot-tg-0003");
    let started = Instant::now();
    let took = wait_converged(
        &emu,
        &config,
        Duration::from_secs(30),
        "deregistered target",
        &daemon,
    );
    let passes_taken = passes(&daemon) - at;
    // Seen within 4 passes (+1 in flight); the registration then waits for
    // a second read a consistency window (2 s) later: up to 3 more 1 s
    // passes, the re-check among them.
    assert!(
        passes_taken <= 4 + 1 + 3,
        "corrected {passes_taken} passes after the drift (bound 4, +1 for the pass in flight, +3 for the consistency window); {took:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// An edit observes only what the edited resource needs: replicas 2 → 3
/// is one DescribeServices and one UpdateService — no security group, EC2
/// instance, target or load balancer read — and the status says the pass
/// was scoped. The full passes (startup, resync) still read everything.
#[test]
fn an_edit_observes_only_what_the_edited_resource_needs() {
    use std::time::Duration;

    use crate::daemon::{Daemon, atomic_write, wait_converged};
    use crate::harness::seed_text;

    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    // No resync pass within the test: every pass after startup is the edit's.
    let daemon = Daemon::start(&emu, &config, &["--resync", "120s"]);
    wait_converged(&emu, &config, Duration::from_secs(20), "startup", &daemon);
    emu.wait_for("the startup pass", |_| passes(&daemon) >= 1);
    let (_, status) = daemon.get("/api/v1/status");
    assert_eq!(
        status["daemon"]["last_pass_scoped"], false,
        "startup is a full pass"
    );
    let before = passes(&daemon);
    emu.control("POST", "calls/reset", None);

    atomic_write(&config, &seed_text().replace("replicas: 2", "replicas: 3"));
    emu.wait_for("desiredCount 3", |emu| {
        emu.ctl("show")["service"]["desiredCount"] == 3
    });
    emu.wait_for("the edit's pass is published", |_| passes(&daemon) > before);
    let calls = emu.control("GET", "calls?client=reconciler", None);
    let made: BTreeSet<String> = calls
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| *k != "faulted" && v.as_u64().unwrap_or(0) > 0)
        .map(|(k, _)| k.clone())
        .collect();
    let expected: BTreeSet<String> = ["ecs:DescribeServices", "ecs:UpdateService"]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(made, expected, "the edit's pass: {calls}");
    assert_eq!(calls["ecs:UpdateService"], 1, "{calls}");
    let (_, status) = daemon.get("/api/v1/status");
    assert_eq!(
        status["daemon"]["last_pass_scoped"], true,
        "{}",
        status["daemon"]
    );
    // The units outside the edit keep their status.
    let units = status["daemon"]["units"].as_object().unwrap();
    assert_eq!(units.len(), 6, "{units:?}");
    assert!(
        units
            .values()
            .all(|u| u["state"] == "in-sync" || u["state"] == "correcting"),
        "{units:?}"
    );
}

fn passes(daemon: &crate::daemon::Daemon) -> u64 {
    daemon.get("/api/v1/status").1["daemon"]["passes"]
        .as_u64()
        .unwrap_or(0)
}

/// The controller's calls from the end of one pass to the end of the next,
/// once `warm_up` passes are done, and how many passes that spanned (a
/// status read may land a pass late with a short resync).
fn calls_of_one_pass(
    emu: &Emulator,
    daemon: &crate::daemon::Daemon,
    warm_up: u64,
) -> (serde_json::Value, usize) {
    emu.wait_for("warm-up passes", |_| passes(daemon) >= warm_up);
    let before = passes(daemon);
    emu.wait_for("a pass ends", |_| passes(daemon) > before);
    emu.control("POST", "calls/reset", None);
    let start = passes(daemon);
    emu.wait_for("one more pass", |_| passes(daemon) > start);
    let calls = emu.control("GET", "calls?client=reconciler", None);
    (calls, (passes(daemon) - start) as usize)
}

/// A budget smaller than one pass paces the pass: the calls wait for
/// tokens instead of bursting, and the wait shows in the metrics.
#[test]
fn a_tight_budget_paces_the_calls() {
    let emu = Emulator::start();
    let started = std::time::Instant::now();
    // ELBv2 reads: 1 token, 2 per second; a seed observation makes 4 of them.
    let plan = emu.reconciler(&[
        "plan",
        "--config",
        &seed_config(),
        "--api-budget",
        "elbv2-read=1/2",
    ]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1400),
        "4 reads at 2/s after a burst of 1 take ≥ 1.5 s, took {took:?}"
    );
    let bad = emu.reconciler(&[
        "plan",
        "--config",
        &seed_config(),
        "--api-budget",
        "sqs-read=1/1",
    ]);
    assert_eq!(bad.code, 64, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("unknown API class `sqs-read`"),
        "{}",
        bad.stderr
    );
}
