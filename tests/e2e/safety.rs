//! Modes and guards end to end: `observe` reports and changes nothing, an
//! `owned` group keeps rules others made, a failed read yields no actions
//! on what it could not see.

use crate::drift::applied;
use crate::harness::{Emulator, seed_text};

fn lb_group_rules(emu: &Emulator) -> Vec<(i64, String)> {
    emu.ctl("show")["ingress_rules"]["LoadBalancerGroup"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                r["from"].as_i64().unwrap_or(-1),
                r["cidr"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The seed with extra lines after `- name: LoadBalancerGroup`.
fn seed_with_lb_group_option(option: &str) -> String {
    let text = seed_text();
    let anchor = "  - name: LoadBalancerGroup\n";
    assert!(text.contains(anchor));
    text.replace(anchor, &format!("{anchor}    {option}\n"))
}

#[test]
fn observe_resource_reports_and_changes_nothing() {
    let emu = Emulator::start();
    let config = emu.write_config("observe.yaml", &seed_with_lb_group_option("mode: observe"));
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");

    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    let json = plan.json();
    assert!(applied(&json).is_empty());
    let observed: Vec<_> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["disposition"] == "observe")
        .collect();
    assert_eq!(observed.len(), 1, "{json}");
    assert_eq!(observed[0]["kind"], "revoke-ingress");

    let text = emu.reconciler(&["plan", "--config", &config]);
    assert!(text.stdout.contains("[observe only]"), "{}", text.stdout);

    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(lb_group_rules(&emu).contains(&(22, "0.0.0.0/0".into())));
}

#[test]
fn owned_group_keeps_a_rule_someone_else_added() {
    let emu = Emulator::start();
    let config = emu.write_config(
        "owned.yaml",
        &seed_with_lb_group_option("management: owned"),
    );
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");

    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    assert_eq!(
        plan.code, 0,
        "foreign rules are not drift: {}{}",
        plan.stdout, plan.stderr
    );
    let json = plan.json();
    assert_eq!(json["changes"][0]["kind"], "foreign-rule", "{json}");
    assert_eq!(json["changes"][0]["disposition"], "info");
    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    assert!(lb_group_rules(&emu).contains(&(22, "0.0.0.0/0".into())));

    // A rule ecs-reconciler created (tagged) is revoked once it leaves the
    // file; the foreign one still stays.
    emu.ctl("revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0");
    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let without_http = emu.write_config(
        "owned-no-http.yaml",
        &seed_with_lb_group_option("management: owned").replace(
            "        ports: 80\n        cidr: 0.0.0.0/0",
            "        ports: 443\n        cidr: 0.0.0.0/0",
        ),
    );
    let plan = emu.reconciler(&["plan", "--config", &without_http, "--output", "json"]);
    let kinds: Vec<_> = applied(&plan.json()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        vec!["authorize-ingress", "revoke-ingress"],
        "{}",
        plan.stdout
    );
    let apply = emu.reconciler(&["apply", "--config", &without_http, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let rules = lb_group_rules(&emu);
    assert!(rules.contains(&(22, "0.0.0.0/0".into())), "{rules:?}");
    assert!(rules.contains(&(443, "0.0.0.0/0".into())), "{rules:?}");
    assert!(!rules.contains(&(80, "0.0.0.0/0".into())), "{rules:?}");
}

#[test]
fn failed_target_health_read_yields_no_target_actions() {
    let emu = Emulator::start();
    let config = crate::harness::seed_config();
    emu.ctl("register-target nestjs-api-tg 0 40000");
    emu.ctl("deregister-target nestjs-api-tg --index 0");
    emu.ctl("faults add --service elbv2 --operation DescribeTargetHealth --kind throttle");
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    emu.ctl("calls --reset");

    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    assert_eq!(
        plan.code, 1,
        "a partial read is an error: {}{}",
        plan.stdout, plan.stderr
    );
    let json = plan.json();
    let kinds: Vec<_> = applied(&json).into_iter().map(|(k, _)| k).collect();
    // The rest of the topology is still reconciled; targets are not touched.
    assert_eq!(kinds, vec!["revoke-ingress"], "{json}");
    let why = json["unknowns"][0]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("DescribeTargetHealth") && why.contains("throttled"),
        "{json}"
    );

    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let calls = emu.ctl("calls");
    assert!(calls.get("elbv2:RegisterTargets").is_none(), "{calls}");
    assert!(calls.get("elbv2:DeregisterTargets").is_none(), "{calls}");

    // Once the read works again, both target drifts are fixed.
    emu.ctl("faults clear");
    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    let kinds: Vec<_> = applied(&plan.json()).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds,
        vec!["register-target", "deregister-target"],
        "{}",
        plan.stdout
    );
    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
}

#[test]
fn a_failed_task_read_or_an_inexpressible_rule_yields_no_destructive_action() {
    let emu = Emulator::start();
    let config = crate::harness::seed_config();
    emu.ctl("register-target nestjs-api-tg 0 40000");
    emu.ctl("faults add --service ecs --operation DescribeTasks --kind 5xx");
    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let json = plan.json();
    assert!(applied(&json).is_empty(), "{json}");
    assert!(
        json["unknowns"][0]["what"]
            .as_str()
            .unwrap()
            .contains("tasks of cluster"),
        "{json}"
    );
    emu.ctl("faults clear");

    // A GRE rule (protocol 47) in an exclusive group: the group's rules are
    // unknown (reported), not silently ignored or blindly revoked.
    emu.ctl("authorize-ingress LoadBalancerGroup 47 -1 -1 --cidr 10.0.0.0/8");
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    assert_eq!(plan.code, 1, "{}{}", plan.stdout, plan.stderr);
    let json = plan.json();
    let kinds: Vec<_> = applied(&json).into_iter().map(|(k, _)| k).collect();
    // The rogue target is still removed; nothing in the unreadable group is.
    assert_eq!(kinds, vec!["deregister-target"], "{json}");
    let why = json["unknowns"][0]["why"].as_str().unwrap_or_default();
    assert!(why.contains("cannot express"), "{json}");
}
