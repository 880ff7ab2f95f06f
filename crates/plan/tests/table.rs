//! Table tests: one drift of the seed topology each, and the exact fix.

mod fixture;

use ecs_reconciler_plan::*;
use ecs_reconciler_spec::*;
use fixture::*;

/// (kind, resource, after) of every change that will be applied.
fn applied(desired: &DesiredState, snapshot: &Snapshot) -> Vec<(String, String, String)> {
    plan(desired, snapshot)
        .changes
        .into_iter()
        .filter(|c| c.disposition == Disposition::Apply)
        .map(|c| (c.kind, c.resource, c.after))
        .collect()
}

fn one(kind: &str, resource: &str, after: &str) -> Vec<(String, String, String)> {
    vec![(kind.into(), resource.into(), after.into())]
}

#[test]
fn converged_seed_plans_nothing() {
    let plan = plan(&desired(), &converged());
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    assert!(plan.unknowns.is_empty());
    assert!(plan.is_converged());
    assert!(!plan.has_drift());
    assert_eq!(
        plan.addresses[0].dns_name,
        "nestjs-api-alb-1.us-east-1.elb.amazonaws.com"
    );
}

#[test]
fn service_scaled_by_hand_is_scaled_back() {
    for count in [5, 0] {
        let mut s = converged();
        service_mut(&mut s).desired_count = count;
        assert_eq!(
            applied(&desired(), &s),
            one(
                "scale-service",
                "service/nestjs-cluster/nestjs-api",
                "desiredCount 2"
            )
        );
    }
}

#[test]
fn revoked_http_rule_is_authorized_again() {
    let mut s = converged();
    rules_mut(&mut s, "LoadBalancerGroup").clear();
    let plan = plan(&desired(), &s);
    let actions = plan.actions();
    assert_eq!(actions.len(), 1);
    match actions[0] {
        Action::AuthorizeIngress {
            group_id,
            rule,
            description,
            ..
        } => {
            assert_eq!(group_id, LB_GROUP);
            assert_eq!(rule.to_string(), "tcp 80 from 0.0.0.0/0");
            assert_eq!(description.as_deref(), Some("HTTP from anywhere"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rogue_ssh_rule_is_revoked_by_rule_id() {
    for group in ["LoadBalancerGroup", "EC2InstanceWithLoadBalancer"] {
        let mut s = converged();
        rules_mut(&mut s, group).push(rule("sgr-rogue", Protocol::Tcp, 22, 22, cidr("0.0.0.0/0")));
        let plan = plan(&desired(), &s);
        let actions = plan.actions();
        assert_eq!(actions.len(), 1, "{group}");
        match actions[0] {
            Action::RevokeIngress {
                rule_id,
                group_name,
                ..
            } => {
                assert_eq!(rule_id.as_deref(), Some("sgr-rogue"));
                assert_eq!(group_name, group);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn source_group_rule_revoked_from_instance_group_is_restored() {
    let mut s = converged();
    rules_mut(&mut s, "EC2InstanceWithLoadBalancer").clear();
    assert_eq!(
        applied(&desired(), &s),
        one(
            "authorize-ingress",
            "security-group/EC2InstanceWithLoadBalancer",
            &format!("tcp 32768-65535 from group {LB_GROUP}")
        )
    );
}

#[test]
fn rules_compare_normalised_and_ignore_descriptions() {
    let mut s = converged();
    let rules = rules_mut(&mut s, "LoadBalancerGroup");
    rules[0].description = Some("someone edited the text".into());
    // EC2 may report protocol numbers; the key is built from the parsed one.
    rules[0].key = RuleKey::new(
        Protocol::parse("6").unwrap(),
        PortRange::single(80),
        cidr("0.0.0.0/0"),
    );
    assert!(plan(&desired(), &s).changes.is_empty());
}

#[test]
fn all_protocol_ignores_ports() {
    let a = RuleKey::new(
        Protocol::All,
        PortRange { from: 0, to: 65535 },
        cidr("10.0.0.0/8"),
    );
    let b = RuleKey::new(
        Protocol::parse("-1").unwrap(),
        PortRange::ALL,
        cidr("10.0.0.0/8"),
    );
    assert_eq!(a, b);
}

#[test]
fn detached_instance_group_is_attached_keeping_other_groups() {
    let mut s = converged();
    instance_mut(&mut s, "i-0002").security_group_ids = vec![DEFAULT_GROUP.into()];
    let plan = plan(&desired(), &s);
    let actions = plan.actions();
    assert_eq!(
        actions,
        vec![&Action::SetInstanceGroups {
            instance_id: "i-0002".into(),
            network_interface_id: "eni-i-0002".into(),
            group_ids: vec![DEFAULT_GROUP.into(), INSTANCE_GROUP.into()],
            attach: vec![INSTANCE_GROUP.into()],
        }]
    );
}

#[test]
fn detached_load_balancer_group_is_attached_keeping_other_groups() {
    let mut s = converged();
    lb_mut(&mut s).security_group_ids = vec![DEFAULT_GROUP.into()];
    assert_eq!(
        plan(&desired(), &s).actions(),
        vec![&Action::SetLoadBalancerGroups {
            load_balancer: "nestjs-api-alb".into(),
            arn: LB_ARN.into(),
            group_ids: vec![DEFAULT_GROUP.into(), LB_GROUP.into()],
            attach: vec![LB_GROUP.into()],
        }]
    );
}

#[test]
fn target_deregistered_by_hand_is_registered_again() {
    let mut s = converged();
    targets_mut(&mut s)[1].state = "draining".into();
    assert_eq!(
        applied(&desired(), &s),
        one(
            "register-target",
            "target-group/nestjs-api-tg",
            "i-0002:32768"
        )
    );
    let mut s = converged();
    targets_mut(&mut s).remove(0);
    assert_eq!(
        applied(&desired(), &s),
        one(
            "register-target",
            "target-group/nestjs-api-tg",
            "i-0001:32768"
        )
    );
}

#[test]
fn rogue_and_stale_targets_are_deregistered() {
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    assert_eq!(
        plan(&desired(), &s).actions(),
        vec![&Action::DeregisterTarget {
            target_group: "nestjs-api-tg".into(),
            arn: TG_ARN.into(),
            target: TargetKey {
                id: "i-0001".into(),
                port: 40000
            },
        }]
    );
    // A stopped task's target left behind, while its replacement runs.
    let mut s = converged();
    let tasks = cluster_mut(&mut s).tasks.known_mut().unwrap();
    tasks[1].last_status = "STOPPED".into();
    tasks[1].desired_status = "STOPPED".into();
    tasks.push(task(3, 1, 33000));
    targets_mut(&mut s).push(target(1, 33000, "healthy"));
    let changes = applied(&desired(), &s);
    assert_eq!(
        changes,
        one("deregister-target", "target-group/nestjs-api-tg", "absent")
    );
}

#[test]
fn a_reused_target_read_registers_but_never_deregisters() {
    // Targets read some passes ago (a quiet group's reused read) predate
    // this pass's tasks: a rogue target there may be gone, or a task since
    // replaced, so it is no ground to deregister.
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    targets_mut(&mut s).remove(0);
    tg_mut(&mut s).targets_read_passes_ago = 3;
    assert_eq!(
        plan(&desired(), &s).actions(),
        vec![&Action::RegisterTarget {
            target_group: "nestjs-api-tg".into(),
            arn: TG_ARN.into(),
            target: TargetKey {
                id: "i-0001".into(),
                port: 32768
            },
        }]
    );
}

#[test]
fn draining_targets_and_tasks_in_motion_are_left_alone() {
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 41000, "draining"));
    // A task being stopped by ECS still has its target registered.
    let tasks = cluster_mut(&mut s).tasks.known_mut().unwrap();
    let mut stopping = task(4, 1, 42000);
    stopping.desired_status = "STOPPED".into();
    tasks.push(stopping);
    // And one still starting, already registered.
    let mut starting = task(5, 0, 43000);
    starting.last_status = "PENDING".into();
    tasks.push(starting);
    targets_mut(&mut s).push(target(1, 42000, "healthy"));
    targets_mut(&mut s).push(target(0, 43000, "initial"));
    assert!(plan(&desired(), &s).actions().is_empty());
}

#[test]
fn ports_of_one_instance_are_distinct_targets() {
    let mut s = converged();
    cluster_mut(&mut s)
        .tasks
        .known_mut()
        .unwrap()
        .push(task(3, 0, 32769));
    assert_eq!(
        applied(&desired(), &s),
        one(
            "register-target",
            "target-group/nestjs-api-tg",
            "i-0001:32769"
        )
    );
}

#[test]
fn health_check_path_is_restored() {
    let mut s = converged();
    tg_mut(&mut s).health_check_path = Some("/health".into());
    assert_eq!(
        applied(&desired(), &s),
        one(
            "set-health-check-path",
            "target-group/nestjs-api-tg",
            "health check /"
        )
    );
}

#[test]
fn observe_mode_reports_but_applies_nothing() {
    let mut d = desired();
    d.security_groups[0].mode = Mode::Observe;
    let mut s = converged();
    add_rogue_ssh(&mut s, "LoadBalancerGroup");
    let plan = plan(&d, &s);
    assert!(plan.actions().is_empty());
    assert!(plan.has_drift());
    assert_eq!(plan.changes[0].disposition, Disposition::Observe);
}

#[test]
fn owned_group_keeps_foreign_rules_and_revokes_its_own() {
    let mut d = desired();
    d.security_groups[0].management = RuleManagement::Owned;
    let mut s = converged();
    rules_mut(&mut s, "LoadBalancerGroup").push(rule(
        "sgr-foreign",
        Protocol::Tcp,
        22,
        22,
        cidr("0.0.0.0/0"),
    ));
    let mut ours = rule("sgr-ours", Protocol::Tcp, 443, 443, cidr("0.0.0.0/0"));
    ours.managed_by_us = true;
    rules_mut(&mut s, "LoadBalancerGroup").push(ours);
    let plan = plan(&d, &s);
    let actions = plan.actions();
    assert_eq!(actions.len(), 1);
    assert!(
        matches!(actions[0], Action::RevokeIngress { rule_id: Some(id), .. } if id == "sgr-ours")
    );
    let foreign: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.kind == "foreign-rule")
        .collect();
    assert_eq!(foreign.len(), 1);
    assert_eq!(foreign[0].disposition, Disposition::Info);
}

#[test]
fn unknown_target_health_yields_no_target_actions() {
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    tg_mut(&mut s).targets = Observed::Unknown(Unread::new(
        ErrorClass::Throttled,
        "DescribeTargetHealth: throttled",
    ));
    let plan = plan(&desired(), &s);
    assert!(plan.actions().is_empty());
    assert!(!plan.is_converged());
    assert_eq!(plan.unknowns.len(), 1);
}

#[test]
fn unknown_tasks_or_instances_yield_no_deregistration() {
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    cluster_mut(&mut s).tasks =
        Observed::Unknown(Unread::new(ErrorClass::Throttled, "ListTasks failed"));
    assert!(plan(&desired(), &s).actions().is_empty());

    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    cluster_mut(&mut s).container_instances =
        Observed::Unknown(Unread::new(ErrorClass::Throttled, "throttled"));
    assert!(plan(&desired(), &s).actions().is_empty());
}

#[test]
fn unresolved_source_group_blocks_revokes_in_that_group() {
    let mut s = converged();
    s.security_groups.insert(
        "LoadBalancerGroup".into(),
        Observed::Unknown(Unread::new(ErrorClass::Throttled, "throttled")),
    );
    add_rogue_ssh(&mut s, "EC2InstanceWithLoadBalancer");
    let plan = plan(&desired(), &s);
    assert!(
        plan.actions().iter().all(|a| !a.is_destructive()),
        "{:#?}",
        plan.actions()
    );
}

#[test]
fn missing_service_is_reported_and_blocks_target_removal() {
    let mut s = converged();
    s.services.insert(
        ("nestjs-cluster".into(), "nestjs-api".into()),
        Observed::Known(None),
    );
    cluster_mut(&mut s).tasks = Observed::Known(vec![]);
    let plan = plan(&desired(), &s);
    assert!(plan.actions().is_empty());
    assert!(
        plan.changes
            .iter()
            .any(|c| c.kind == "missing-resource" && c.disposition == Disposition::Report)
    );
}

#[test]
fn report_only_checks_find_service_shape_drift() {
    let mut s = converged();
    service_mut(&mut s).launch_type = Some("FARGATE".into());
    s.task_definitions
        .insert(TD_ARN.into(), Observed::Known(task_definition(3000)));
    lb_mut(&mut s).listeners = Observed::Known(vec![]);
    let plan = plan(&desired(), &s);
    let kinds: Vec<&str> = plan.changes.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "check-listener",
            "check-launch-type",
            "check-task-definition"
        ]
    );
    assert!(plan.actions().is_empty());
    assert!(plan.has_drift());
}

#[test]
fn actions_are_ordered_authorize_before_revoke_register_before_deregister() {
    let mut s = converged();
    // One group loses its rule, the other gains a rogue one (two members:
    // within the destructive cap).
    rules_mut(&mut s, "EC2InstanceWithLoadBalancer").clear();
    add_rogue_ssh(&mut s, "LoadBalancerGroup");
    let targets = targets_mut(&mut s);
    targets.remove(0);
    targets.push(target(1, 40000, "healthy"));
    let kinds: Vec<&str> = plan(&desired(), &s)
        .actions()
        .iter()
        .map(|a| a.kind())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "authorize-ingress",
            "register-target",
            "revoke-ingress",
            "deregister-target"
        ]
    );
}

#[test]
fn shared_membership_never_deregisters() {
    let mut d = desired();
    d.target_groups[0].membership = TargetMembership::Shared;
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    assert!(plan(&d, &s).actions().is_empty());
}

#[test]
fn a_serving_task_whose_target_is_unknown_blocks_deregistration() {
    // On an instance missing from the container-instance list...
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    cluster_mut(&mut s).tasks.known_mut().unwrap()[0].container_instance_arn =
        Some("arn:aws:ecs:us-east-1:123456789012:container-instance/nestjs-cluster/gone".into());
    assert!(
        plan(&desired(), &s)
            .actions()
            .iter()
            .all(|a| !a.is_destructive())
    );
    // ...or with no binding for the container port yet.
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    cluster_mut(&mut s).tasks.known_mut().unwrap()[0]
        .bindings
        .clear();
    assert!(
        plan(&desired(), &s)
            .actions()
            .iter()
            .all(|a| !a.is_destructive())
    );
}

#[test]
fn udp_bindings_are_not_targets_and_ambiguous_tcp_ports_are_left_alone() {
    let mut s = converged();
    let tasks = cluster_mut(&mut s).tasks.known_mut().unwrap();
    // A udp mapping of the same container port, listed first.
    tasks[0].bindings.insert(
        0,
        LiveBinding {
            container_name: "api".into(),
            container_port: 3000,
            host_port: 45000,
            protocol: Some("udp".into()),
        },
    );
    assert!(plan(&desired(), &s).actions().is_empty());

    // Two tcp host ports for one container port (IPv4 and IPv6 bindings):
    // neither is deregistered, nothing stale is removed on this basis.
    let mut s = converged();
    cluster_mut(&mut s).tasks.known_mut().unwrap()[1]
        .bindings
        .push(LiveBinding {
            container_name: "api".into(),
            container_port: 3000,
            host_port: 32800,
            protocol: Some("tcp".into()),
        });
    targets_mut(&mut s).push(target(1, 32800, "healthy"));
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    assert!(
        plan(&desired(), &s).actions().is_empty(),
        "{:#?}",
        plan(&desired(), &s).actions()
    );
}

#[test]
fn a_replica_range_leaves_the_autoscalers_count_alone_and_clamps_outside() {
    let mut d = desired();
    d.services[0].replicas = ReplicaBounds { min: 2, max: 10 };
    for (live, want) in [
        (2, None),
        (7, None),
        (10, None),
        (1, Some("desiredCount 2")),
        (0, Some("desiredCount 2")),
        (15, Some("desiredCount 10")),
    ] {
        let mut s = converged();
        service_mut(&mut s).desired_count = live;
        let changes = applied(&d, &s);
        match want {
            None => assert!(changes.is_empty(), "{live}: {changes:?}"),
            Some(after) => assert_eq!(
                changes,
                one("scale-service", "service/nestjs-cluster/nestjs-api", after),
                "{live}"
            ),
        }
    }
}

#[test]
fn removals_over_the_cap_are_held_while_the_additive_part_goes_ahead() {
    let mut s = converged();
    // Three rogue rules on a group of four: 75% > the default 50%.
    for port in [22, 23, 24] {
        rules_mut(&mut s, "LoadBalancerGroup").push(rule(
            &format!("sgr-{port}"),
            Protocol::Tcp,
            port,
            port,
            cidr("0.0.0.0/0"),
        ));
    }
    // And the declared HTTP rule missing from the other group.
    rules_mut(&mut s, "EC2InstanceWithLoadBalancer").clear();
    let mut p = plan(&desired(), &s);
    let held: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.disposition == Disposition::Held)
        .collect();
    assert_eq!(held.len(), 3);
    assert!(
        held[0]
            .reason
            .contains("held: 3 removals exceed this resource's cap of 2"),
        "{}",
        held[0].reason
    );
    assert_eq!(
        p.actions().len(),
        1,
        "only the additive part: {:#?}",
        p.actions()
    );
    assert!(!p.is_converged());
    // A second complete observation agreeing (or --allow-destructive) lets them through.
    let agreed: std::collections::BTreeSet<String> = held.iter().map(|c| change_key(c)).collect();
    assert_eq!(p.release_held(|c| agreed.contains(&change_key(c))), 3);
    assert_eq!(p.actions().len(), 4);

    // A tighter policy: at most one removal per pass.
    let mut d = desired();
    d.policy.max_destructive_per_pass = 1;
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "healthy"));
    targets_mut(&mut s).push(target(1, 40001, "healthy"));
    let p = plan(&d, &s);
    assert!(p.actions().is_empty());
    assert_eq!(
        p.changes
            .iter()
            .filter(|c| c.disposition == Disposition::Held)
            .count(),
        2
    );
}

#[test]
fn a_paused_resource_changes_nothing_and_its_drift_is_not_counted() {
    let mut d = desired();
    d.security_groups[0].mode = Mode::Paused;
    let mut s = converged();
    add_rogue_ssh(&mut s, "LoadBalancerGroup");
    let p = plan(&d, &s);
    assert!(p.actions().is_empty());
    assert!(!p.has_drift());
    assert_eq!(p.changes[0].disposition, Disposition::Info);
    assert!(
        p.changes[0].reason.starts_with("paused: "),
        "{}",
        p.changes[0].reason
    );
    // Other resources are still reconciled.
    rules_mut(&mut s, "EC2InstanceWithLoadBalancer").clear();
    assert_eq!(plan(&d, &s).actions().len(), 1);
}

/// The seed with one group's ingress list replaced.
fn with_rules(rules: &str) -> DesiredState {
    let text = include_str!("../../../examples/seed.yaml").replace(
        "      - protocol: tcp\n        ports: 80\n        cidr: 0.0.0.0/0\n        description: HTTP from anywhere\n",
        rules,
    );
    ecs_reconciler_spec::load(&text).expect("valid edit")
}

#[test]
fn drastic_config_edits_are_found_and_ordinary_ones_are_not() {
    let seed = desired();
    let five = with_rules(
        &[80, 81, 82, 83, 84]
            .map(|p| {
                format!("      - protocol: tcp\n        ports: {p}\n        cidr: 0.0.0.0/0\n")
            })
            .concat(),
    );
    let owners = |before: &DesiredState, after: &DesiredState| -> Vec<String> {
        drastic_changes(before, after)
            .into_iter()
            .map(|d| d.owner.to_string())
            .collect()
    };
    // Rules 5 → 0: drastic. 5 → 4: within the cap (1 of 5 ≤ 50%).
    let zero_of_five = {
        let mut d = five.clone();
        d.security_groups[0].ingress.clear();
        d
    };
    assert_eq!(
        owners(&five, &zero_of_five),
        vec!["security-group/LoadBalancerGroup"]
    );
    let four = {
        let mut d = five.clone();
        d.security_groups[0].ingress.pop();
        d
    };
    assert!(owners(&five, &four).is_empty());
    // Replacing the only rule (a port change) is a swap, not a cut.
    let moved = with_rules("      - protocol: tcp\n        ports: 8080\n        cidr: 0.0.0.0/0\n");
    assert!(owners(&seed, &moved).is_empty());
    // Descriptions are not identity.
    let mut described = seed.clone();
    described.security_groups[0].ingress[0].description = Some("edited".into());
    assert!(owners(&seed, &described).is_empty());

    // Replicas 10 → 1 is drastic, 2 → 1 is not; a range keeps its min.
    let mut ten = seed.clone();
    ten.services[0].replicas = ReplicaBounds { min: 10, max: 10 };
    let mut one_replica = seed.clone();
    one_replica.services[0].replicas = ReplicaBounds { min: 1, max: 1 };
    assert_eq!(
        owners(&ten, &one_replica),
        vec!["service/nestjs-cluster/nestjs-api"]
    );
    assert!(owners(&seed, &one_replica).is_empty());

    // A target group pointed at another container port replaces every target.
    let mut repointed = seed.clone();
    repointed.target_groups[0].container_port = 8080;
    assert_eq!(
        owners(&seed, &repointed),
        vec!["target-group/nestjs-api-tg"]
    );

    // Dropping every instance group of a cluster, or switching a group to exclusive.
    let mut bare = seed.clone();
    bare.clusters[0].instance_security_groups.clear();
    assert_eq!(owners(&seed, &bare), vec!["cluster/nestjs-cluster"]);
    let mut owned = seed.clone();
    owned.security_groups[1].management = RuleManagement::Owned;
    assert!(owners(&seed, &owned).is_empty());
    assert_eq!(
        owners(&owned, &seed),
        vec!["security-group/EC2InstanceWithLoadBalancer"]
    );

    // A new or dropped resource is not a drastic edit.
    let mut fewer = seed.clone();
    fewer.security_groups.remove(0);
    assert!(owners(&seed, &fewer).is_empty());
    assert!(owners(&fewer, &seed).is_empty());
}

#[test]
fn a_drastic_edit_holds_its_removals_even_when_under_the_cap() {
    let seed = desired();
    let mut emptied = seed.clone();
    emptied.security_groups[0].ingress.clear();
    emptied.services[0].replicas = ReplicaBounds { min: 0, max: 0 };
    let drastic = drastic_changes(&seed, &emptied);
    assert_eq!(drastic.len(), 2, "{drastic:#?}");
    // The live seed: the HTTP rule is there and 2 tasks run.
    let mut p = plan(&emptied, &converged());
    // The revoke of the group's only rule is already over the live cap; the
    // scale-down to 0 is not.
    let takes: Vec<String> = p.changes.iter().map(|c| c.kind.clone()).collect();
    assert!(takes.contains(&"revoke-ingress".to_string()), "{takes:?}");
    assert!(takes.contains(&"scale-service".to_string()), "{takes:?}");
    assert_eq!(hold_drastic(&mut p, &drastic), 2);
    assert!(p.actions().is_empty(), "{:#?}", p.actions());
    let held: Vec<&Change> = p
        .changes
        .iter()
        .filter(|c| c.disposition == Disposition::Held)
        .collect();
    assert!(
        held.iter().all(|c| c.reason.contains("SIGUSR1")),
        "{held:#?}"
    );
    assert!(
        held.iter()
            .any(|c| c.reason.contains("ingress rules 1 → 0 (1 removed)")),
        "{held:#?}"
    );
    assert!(
        held.iter().any(|c| c.reason.contains("replicas 2 → 0")),
        "{held:#?}"
    );
    // Additive changes of the same resources are not held.
    let mut raised = seed.clone();
    raised.services[0].replicas = ReplicaBounds { min: 5, max: 5 };
    let mut p = plan(&raised, &converged());
    let fake = vec![DrasticChange {
        owner: UnitId::service("nestjs-cluster", "nestjs-api"),
        what: "test".into(),
    }];
    assert_eq!(hold_drastic(&mut p, &fake), 0);
    assert_eq!(p.actions().len(), 1);
}
