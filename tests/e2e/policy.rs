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
    assert_eq!(
        called, allowed,
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
/// bound of calls for the seed — one per read, the task definition not at
/// all (a revision never changes, it was read once) — and no write. The
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
    let passes = |daemon: &Daemon| {
        daemon.get("/api/v1/status").1["daemon"]["passes"]
            .as_u64()
            .unwrap_or(0)
    };
    emu.wait_for("two passes", |_| passes(&daemon) >= 2);
    // Calls between the end of one pass and the end of the next.
    let before = passes(&daemon);
    emu.wait_for("a pass ends", |_| passes(&daemon) > before);
    emu.control("POST", "calls/reset", None);
    let start = passes(&daemon);
    emu.wait_for("one more pass", |_| passes(&daemon) > start);
    let calls = emu.control("GET", "calls?client=reconciler", None);
    let expected = [
        "ec2:DescribeInstances",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeSecurityGroups",
        "ecs:DescribeContainerInstances",
        "ecs:DescribeServices",
        "ecs:DescribeTasks",
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
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, expected, "one steady pass: {calls}");

    let (_, status) = daemon.get("/api/v1/status");
    let budgets = status["daemon"]["api_budgets"].as_array().expect("budgets");
    assert_eq!(budgets.len(), 6, "{budgets:?}");
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
