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

/// Targets are read before tasks, so a task that starts between the two
/// reads looks unregistered (register it: harmless) rather than a target
/// that matches no task (deregister it: takes a new task out of service).
#[test]
fn every_target_is_read_before_the_first_task_listing() {
    let emu = Emulator::start();
    let plan = emu.reconciler(&["plan", "--config", &crate::harness::seed_config()]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let calls = emu.reconciler_calls();
    let last_health = calls
        .iter()
        .rposition(|c| c == "elbv2:DescribeTargetHealth")
        .expect("target health read");
    let first_tasks = calls
        .iter()
        .position(|c| c == "ecs:ListTasks")
        .expect("tasks listed");
    assert!(last_health < first_tasks, "{calls:?}");
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

/// The destructive changes a plan holds or would apply: (kind, resource).
fn destructive(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| matches!(c["disposition"].as_str(), Some("apply" | "held")))
        .filter(|c| {
            let kind = c["kind"].as_str().unwrap_or_default();
            kind == "revoke-ingress"
                || kind == "deregister-target"
                || (kind == "scale-service" && c["after"] == "desiredCount 2")
        })
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["resource"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every read of an observation, failed in turn (every attempt): nothing
/// destructive is planned on what it feeds, the rest still is, and the
/// plan says what it could not see.
#[test]
fn each_read_failed_in_turn_plans_nothing_destructive_from_it() {
    let emu = Emulator::start();
    let config = crate::harness::seed_config();
    // Drift with a destructive fix on every kind of resource.
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    emu.ctl("scale nestjs-cluster nestjs-api 3");
    emu.ctl("scheduler --paused true");
    emu.ctl("register-target nestjs-api-tg 0 40000");
    let baseline = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    assert_eq!(baseline.code, 2, "{}{}", baseline.stdout, baseline.stderr);
    let all = destructive(&baseline.json());
    let kinds = |list: &[(String, String)]| -> Vec<String> {
        let mut k: Vec<String> = list.iter().map(|(k, _)| k.clone()).collect();
        k.sort();
        k.dedup();
        k
    };
    assert_eq!(
        kinds(&all),
        vec!["deregister-target", "revoke-ingress", "scale-service"],
        "{}",
        baseline.stdout
    );

    // (service, operation, the destructive kinds that read feeds)
    let reads: &[(&str, &str, &[&str])] = &[
        (
            "ecs",
            "DescribeServices",
            &["scale-service", "deregister-target"],
        ),
        ("ecs", "ListTasks", &["deregister-target"]),
        ("ecs", "DescribeTasks", &["deregister-target"]),
        ("ecs", "ListContainerInstances", &["deregister-target"]),
        ("ecs", "DescribeContainerInstances", &["deregister-target"]),
        ("ecs", "DescribeTaskDefinition", &[]),
        ("ec2", "DescribeSecurityGroups", &["revoke-ingress"]),
        ("ec2", "DescribeSecurityGroupRules", &["revoke-ingress"]),
        ("ec2", "DescribeInstances", &[]),
        ("elbv2", "DescribeTargetGroups", &["deregister-target"]),
        ("elbv2", "DescribeTargetHealth", &["deregister-target"]),
        ("elbv2", "DescribeLoadBalancers", &[]),
        ("elbv2", "DescribeListeners", &[]),
    ];
    for (service, operation, feeds) in reads {
        emu.ctl("faults clear");
        emu.ctl(&format!(
            "faults add --service {service} --operation {operation} --kind 5xx"
        ));
        let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
        assert_eq!(
            plan.code, 1,
            "{operation}: a failed read is an error: {}{}",
            plan.stdout, plan.stderr
        );
        let json = plan.json();
        let planned = destructive(&json);
        for change in &planned {
            assert!(
                all.contains(change),
                "{operation}: a failed read added {change:?}: {json}"
            );
            assert!(
                !feeds.contains(&change.0.as_str()),
                "{operation} failed but {change:?} is still planned: {json}"
            );
        }
        // What the failed read does not feed is still reconciled.
        let expected: Vec<String> = kinds(&all)
            .into_iter()
            .filter(|k| !feeds.contains(&k.as_str()))
            .collect();
        assert_eq!(kinds(&planned), expected, "{operation}: {json}");
        let unknowns = json["unknowns"].to_string();
        assert!(unknowns.contains(operation), "{operation}: {unknowns}");
    }
}

/// A failure on the second page of a list is a failed read: one page is
/// not "all of them".
#[test]
fn a_failed_second_page_is_unknown_not_a_shorter_list() {
    let emu = Emulator::start();
    let config = crate::harness::seed_config();
    // Four rogue rules: the two declared groups then hold 8 rules (egress
    // included), two pages of 5.
    for port in [22, 23, 24, 25] {
        emu.ctl(&format!(
            "authorize-ingress LoadBalancerGroup tcp {port} {port} --cidr 0.0.0.0/0"
        ));
    }
    emu.ctl("register-target nestjs-api-tg 0 40000");
    let small_pages = ["--page-size", "1"];
    let plan = |emu: &Emulator| {
        emu.reconciler(
            &[
                &["plan", "--config", &config, "--output", "json"][..],
                &small_pages[..],
            ]
            .concat(),
        )
    };
    let baseline = plan(&emu);
    assert_eq!(baseline.code, 2, "{}{}", baseline.stdout, baseline.stderr);
    let all = destructive(&baseline.json());
    assert_eq!(all.len(), 5, "{}", baseline.stdout);

    for (service, operation, kind) in [
        ("ec2", "DescribeSecurityGroupRules", "revoke-ingress"),
        ("ecs", "ListTasks", "deregister-target"),
        ("ecs", "ListContainerInstances", "deregister-target"),
    ] {
        emu.ctl("faults clear");
        emu.ctl("calls --reset");
        // The first call (page one) succeeds; every attempt at page two fails.
        emu.control(
            "POST",
            "faults",
            Some(&serde_json::json!({
                "client": "reconciler", "service": service, "operation": operation,
                "kind": "5xx", "after": 1
            })),
        );
        let run = plan(&emu);
        assert_eq!(run.code, 1, "{operation}: {}{}", run.stdout, run.stderr);
        let json = run.json();
        let calls = emu.ctl("calls");
        assert!(
            calls[&format!("{service}:{operation}")].as_u64().unwrap() >= 2,
            "{operation}: the second page was never asked for: {calls}"
        );
        assert!(
            destructive(&json).iter().all(|(k, _)| k != kind),
            "{operation}: page two failed but {kind} is planned: {json}"
        );
    }
}

/// Authorize before revoke under faults: when the authorize fails, the
/// revoke that would follow it is skipped, so the group never has fewer
/// allowed paths. A failed registration skips nothing: what the plan
/// deregisters serves no task.
#[test]
fn a_failure_between_the_two_steps_never_leaves_fewer_paths_or_targets() {
    let emu = Emulator::start();
    // A rule swap: HTTP moves from 80 to 8080.
    let moved = emu.write_config(
        "moved.yaml",
        &seed_text().replace("        ports: 80\n", "        ports: 8080\n"),
    );
    emu.ctl("faults add --service ec2 --operation AuthorizeSecurityGroupIngress --kind 5xx");
    let apply = emu.reconciler(&["apply", "--config", &moved, "--once"]);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let rules = lb_group_rules(&emu);
    assert!(
        rules.contains(&(80, "0.0.0.0/0".into())),
        "revoked before the new rule existed: {rules:?}"
    );
    assert!(!rules.contains(&(8080, "0.0.0.0/0".into())), "{rules:?}");
    emu.ctl("faults clear");
    let apply = emu.reconciler(&["apply", "--config", &moved, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let rules = lb_group_rules(&emu);
    assert_eq!(rules, vec![(8080, "0.0.0.0/0".to_string())]);

    // Targets: one running task's target deregistered by hand, a rogue one
    // registered. RegisterTargets fails — and holds nothing else back: the
    // rogue target serves no task, so removing it in the same pass never
    // leaves fewer serving targets (the other task's target stays).
    let seed = crate::harness::seed_config();
    let _ = emu.reconciler(&["apply", "--config", &seed, "--once"]);
    let serving = emu.ctl("show")["targets"][1]["port"].clone();
    emu.ctl("deregister-target nestjs-api-tg --index 0");
    emu.ctl("register-target nestjs-api-tg 0 40000");
    emu.ctl("faults add --service elbv2 --operation RegisterTargets --kind 5xx");
    emu.ctl("calls --reset");
    let apply = emu.reconciler(&["apply", "--config", &seed, "--once"]);
    assert_eq!(apply.code, 1, "{}{}", apply.stdout, apply.stderr);
    let calls = emu.control("GET", "calls?client=reconciler", None);
    assert!(calls.get("elbv2:RegisterTargets").is_some(), "{calls}");
    assert!(calls.get("elbv2:DeregisterTargets").is_some(), "{calls}");
    let targets = emu.ctl("show")["targets"].clone();
    let live: Vec<(serde_json::Value, serde_json::Value)> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["port"].clone(), t["state"].clone()))
        .collect();
    assert!(
        live.iter()
            .any(|(port, state)| *port == 40000 && state == "draining"),
        "the rogue target was not removed: {live:?}"
    );
    assert!(
        live.iter()
            .any(|(port, state)| *port == serving && state == "healthy"),
        "a serving target was touched: {live:?}"
    );
    emu.ctl("faults clear");
    let apply = emu.reconciler(&["apply", "--config", &seed, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
}

/// A file naming resources that do not exist: each is reported on its own
/// line, the rest is still reconciled. A cluster that does not exist is
/// unknown, never "empty": a mistyped cluster name must not make every
/// target of its services look stale.
#[test]
fn resources_that_do_not_exist_are_reported_one_by_one_and_the_rest_is_reconciled() {
    let emu = Emulator::start();
    let ghosts = seed_text()
        .replace(
            "clusters:\n",
            "  - name: GhostGroup\n    ingress:\n      - protocol: tcp\n        ports: 443\n        cidr: 0.0.0.0/0\n\nclusters:\n",
        )
        .replace(
            "services:\n",
            "  - name: ghost-cluster\n    instanceSecurityGroups: [LoadBalancerGroup]\n\nservices:\n  - name: ghost-api\n    cluster: nestjs-cluster\n    replicas: 1\n  - name: far-api\n    cluster: ghost-cluster\n    replicas: 1\n",
        )
        .replace(
            "loadBalancers:\n",
            "  - name: ghost-tg\n    service: ghost-api\n    cluster: nestjs-cluster\n    containerName: api\n    containerPort: 3000\n\nloadBalancers:\n  - name: ghost-alb\n    securityGroups: [LoadBalancerGroup]\n",
        );
    let config = emu.write_config("ghosts.yaml", &ghosts);
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    let plan = emu.reconciler(&["plan", "--config", &config, "--output", "json"]);
    let json = plan.json();
    let missing: Vec<String> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "missing-resource")
        .map(|c| c["resource"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        missing,
        vec![
            "security-group/GhostGroup",
            "load-balancer/ghost-alb",
            "service/nestjs-cluster/ghost-api",
            "target-group/ghost-tg",
        ],
        "{json}"
    );
    let unknowns = json["unknowns"].to_string();
    assert!(unknowns.contains("ghost-cluster"), "{unknowns}");
    assert_eq!(plan.code, 1, "an unknown is an error: {}", plan.stdout);
    // The seed's own drift is still fixed, and nothing else is touched.
    let kinds: Vec<_> = applied(&json).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["revoke-ingress"], "{json}");
    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(
        apply.code, 1,
        "still unknown: {}{}",
        apply.stdout, apply.stderr
    );
    let rules = lb_group_rules(&emu);
    assert_eq!(rules, vec![(80, "0.0.0.0/0".to_string())], "{rules:?}");
}
