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

    // One observation of the seed costs one call per read, except ListTasks:
    // once for tasks meant to run and once for tasks being stopped.
    for (operation, count) in calls.as_object().unwrap() {
        if operation == "faulted" {
            continue;
        }
        let expected = if operation == "ecs:ListTasks" { 2 } else { 1 };
        assert_eq!(count.as_u64(), Some(expected), "{operation}: {calls}");
    }
}
