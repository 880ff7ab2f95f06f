//! Table tests of real EC2 networking: what an attachment cannot do is a
//! per-resource report, never a call that fails every pass.

mod fixture;

use ecs_reconciler_plan::*;
use ecs_reconciler_spec::Protocol;
use fixture::*;

#[test]
fn a_group_of_another_vpc_or_a_sixth_group_is_a_per_resource_error_not_a_retry_loop() {
    // The instance group lives in another VPC: reported for each instance
    // lacking it, no write; the load balancer is still reconciled.
    let mut s = converged();
    group_mut(&mut s, "EC2InstanceWithLoadBalancer").vpc_id = Some("vpc-2".into());
    instance_mut(&mut s, "i-0002").security_group_ids = vec![DEFAULT_GROUP.into()];
    lb_mut(&mut s).security_group_ids = vec![DEFAULT_GROUP.into()];
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    let kinds: Vec<(&str, &str)> = plan
        .changes
        .iter()
        .map(|c| (c.kind.as_str(), c.resource.as_str()))
        .collect();
    assert!(
        kinds.contains(&("group-in-other-vpc", "instance/i-0002")),
        "{kinds:?}"
    );
    assert!(
        plan.actions()
            .iter()
            .all(|a| !matches!(a, Action::SetInstanceGroups { .. }))
    );
    assert!(
        plan.actions()
            .iter()
            .any(|a| matches!(a, Action::SetLoadBalancerGroups { .. }))
    );

    // Five groups already: a sixth does not fit an interface.
    let mut s = converged();
    instance_mut(&mut s, "i-0002").security_group_ids =
        (1..=5).map(|i| format!("sg-other{i}")).collect();
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    let report = plan
        .changes
        .iter()
        .find(|c| c.kind == "too-many-groups")
        .expect("reported");
    assert_eq!(report.resource, "instance/i-0002");
    assert_eq!(
        (report.before.as_str(), report.after.as_str()),
        ("5 groups", "6 groups")
    );
    assert!(plan.actions().is_empty(), "{:?}", plan.actions());
}

const CLOUDFRONT: &str = "com.amazonaws.global.cloudfront.origin-facing";

fn cloudfront_list() -> LivePrefixList {
    LivePrefixList {
        id: "pl-3b927c52".into(),
        name: CLOUDFRONT.into(),
        family: AddressFamily::IPv4,
        max_entries: None,
        aws_managed: true,
    }
}

/// The seed with the ALB group admitting CloudFront (by list name) on 80
/// instead of the world, and `extra` lines appended to its rules.
fn desired_with_cloudfront(extra: &str) -> ecs_reconciler_spec::DesiredState {
    let text = include_str!("../../../examples/seed.yaml").replace(
        "        cidr: 0.0.0.0/0",
        &format!("        prefixList: {CLOUDFRONT}{extra}"),
    );
    ecs_reconciler_spec::load(&text).expect("valid")
}

fn cloudfront_rule() -> LiveRule {
    rule(
        "sgr-cf",
        Protocol::Tcp,
        80,
        80,
        LiveSource::PrefixList("pl-3b927c52".into()),
    )
}

#[test]
fn a_prefix_list_named_in_the_file_is_resolved_kept_and_named_when_it_would_be_cut() {
    let with_cloudfront = desired_with_cloudfront("");
    let mut s = converged();
    s.prefix_lists = Some(Observed::Known(vec![cloudfront_list()]));
    *rules_mut(&mut s, "LoadBalancerGroup") = vec![cloudfront_rule()];
    let plan = ecs_reconciler_plan::plan(&with_cloudfront, &s);
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);

    // Revoked by hand: authorized again, by id.
    rules_mut(&mut s, "LoadBalancerGroup").clear();
    let plan = ecs_reconciler_plan::plan(&with_cloudfront, &s);
    let [Action::AuthorizeIngress { rule: added, .. }] = plan.actions().as_slice() else {
        panic!("{:?}", plan.actions());
    };
    assert_eq!(added.source, LiveSource::PrefixList("pl-3b927c52".into()));
    assert!(
        plan.changes[0].reason.contains(CLOUDFRONT),
        "{}",
        plan.changes[0].reason
    );

    // A file that no longer declares it: the plan names CloudFront.
    let seed = desired();
    *rules_mut(&mut s, "LoadBalancerGroup") = vec![
        rule("sgr-1", Protocol::Tcp, 80, 80, cidr("0.0.0.0/0")),
        cloudfront_rule(),
    ];
    let plan = ecs_reconciler_plan::plan(&seed, &s);
    let revoke = plan
        .changes
        .iter()
        .find(|c| c.kind == "revoke-ingress")
        .expect("revoked");
    assert!(
        revoke
            .reason
            .contains("prefix list com.amazonaws.global.cloudfront.origin-facing (pl-3b927c52)"),
        "{}",
        revoke.reason
    );
}

#[test]
fn a_prefix_list_that_cannot_be_resolved_holds_every_revoke_of_its_group() {
    let desired = desired_with_cloudfront("");
    for lists in [
        Some(Observed::Known(Vec::new())),
        Some(Observed::Unknown(Unread::new(
            ErrorClass::Throttled,
            String::from("Throttling"),
        ))),
        None,
    ] {
        let mut s = converged();
        add_rogue_ssh(&mut s, "LoadBalancerGroup");
        s.prefix_lists = lists.clone();
        let plan = ecs_reconciler_plan::plan(&desired, &s);
        assert!(
            plan.changes.iter().any(|c| c.kind == "unresolved-rule"),
            "{lists:?}: {:#?}",
            plan.changes
        );
        assert!(
            plan.actions()
                .iter()
                .all(|a| !matches!(a, Action::RevokeIngress { .. })),
            "{lists:?}"
        );
    }
}

#[test]
fn a_group_of_another_account_is_authorized_with_its_account() {
    let text = include_str!("../../../examples/seed.yaml").replace(
        "        cidr: 0.0.0.0/0",
        "        sourceGroupId: sg-0bbb\n        sourceAccount: \"111122223333\"",
    );
    let desired = ecs_reconciler_spec::load(&text).expect("valid");
    let mut s = converged();
    rules_mut(&mut s, "LoadBalancerGroup").clear();
    let plan = ecs_reconciler_plan::plan(&desired, &s);
    let [
        Action::AuthorizeIngress {
            rule,
            source_account,
            ..
        },
    ] = plan.actions().as_slice()
    else {
        panic!("{:?}", plan.actions());
    };
    assert_eq!(rule.source, LiveSource::Group("sg-0bbb".into()));
    assert_eq!(source_account.as_deref(), Some("111122223333"));
    // Once there, it is the same rule (group ids are unique across accounts).
    rules_mut(&mut s, "LoadBalancerGroup").push(rule_of(rule));
    assert!(ecs_reconciler_plan::plan(&desired, &s).changes.is_empty());
}

fn rule_of(key: &RuleKey) -> LiveRule {
    LiveRule {
        rule_id: Some("sgr-new".into()),
        key: key.clone(),
        description: None,
        managed_by_us: true,
        source_account: None,
    }
}

/// `n` undeclared CIDR rules 10.0.i.0/24 on tcp `port`.
fn filler(n: usize, port: i32) -> Vec<LiveRule> {
    (0..n)
        .map(|i| {
            rule(
                &format!("sgr-f{i}"),
                Protocol::Tcp,
                port,
                port,
                cidr(&format!("10.0.{i}.0/24")),
            )
        })
        .collect()
}

#[test]
fn a_full_group_whose_adds_fit_after_the_free_revokes_is_not_reported() {
    // 60 rules: the declared 80 from 0.0.0.0/0 is missing, 59 undeclared on
    // port 22 and the old world rule on 8080. The add fits once the rules
    // on other ports go.
    let mut s = converged();
    let mut rules = filler(59, 22);
    rules.push(rule("sgr-w", Protocol::Tcp, 8080, 8080, cidr("0.0.0.0/0")));
    *rules_mut(&mut s, "LoadBalancerGroup") = rules;
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert!(
        plan.changes.iter().all(|c| c.kind != "rule-quota"),
        "{:#?}",
        plan.changes
    );
}

#[test]
fn a_swap_that_cannot_fit_is_reported_with_the_numbers_and_what_to_do() {
    // 60 undeclared rules, all on port 80 (they may carry the new rule's
    // traffic, so they wait for the add): nothing can go first.
    let mut s = converged();
    *rules_mut(&mut s, "LoadBalancerGroup") = filler(60, 80);
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    let report = plan
        .changes
        .iter()
        .find(|c| c.kind == "rule-quota")
        .expect("reported");
    assert_eq!(report.before, "60 of 60 IPv4 rules used");
    assert_eq!(report.after, "61 of 60 needed");
    assert!(
        report.reason.contains("waits until the add succeeds"),
        "{}",
        report.reason
    );
    assert!(
        report.reason.contains("quotas.rulesPerSecurityGroup"),
        "{}",
        report.reason
    );

    // The same group under a raised quota: nothing to report.
    let text = format!(
        "quotas:\n  rulesPerSecurityGroup: 100\n{}",
        include_str!("../../../examples/seed.yaml")
    );
    let raised = ecs_reconciler_spec::load(&text).expect("valid");
    let plan = ecs_reconciler_plan::plan(&raised, &s);
    assert!(plan.changes.iter().all(|c| c.kind != "rule-quota"));
}

#[test]
fn a_prefix_list_counts_its_weight_against_the_rule_quota() {
    // CloudFront counts 55: with 6 other declared CIDR rules the declared
    // rules alone need 61 of 60.
    let extra: String = (0..6)
        .map(|i| {
            format!("\n      - protocol: tcp\n        ports: 443\n        cidr: 10.9.{i}.0/24")
        })
        .collect();
    let desired = desired_with_cloudfront(&extra);
    let mut s = converged();
    s.prefix_lists = Some(Observed::Known(vec![cloudfront_list()]));
    *rules_mut(&mut s, "LoadBalancerGroup") = vec![cloudfront_rule()];
    let plan = ecs_reconciler_plan::plan(&desired, &s);
    let report = plan
        .changes
        .iter()
        .find(|c| c.kind == "rule-quota")
        .unwrap_or_else(|| panic!("{:#?}", plan.changes));
    assert_eq!(report.before, "55 of 60 IPv4 rules used");
    assert_eq!(report.after, "61 of 60 needed");
    assert!(report.reason.contains("counts 55"), "{}", report.reason);
    assert!(
        report.reason.contains("the declared rules alone need 61"),
        "{}",
        report.reason
    );
}

#[test]
fn a_raised_groups_per_interface_quota_lets_a_sixth_group_attach() {
    let text = format!(
        "quotas:\n  securityGroupsPerInterface: 6\n{}",
        include_str!("../../../examples/seed.yaml")
    );
    let desired = ecs_reconciler_spec::load(&text).expect("valid");
    let mut s = converged();
    instance_mut(&mut s, "i-0002").security_group_ids =
        (1..=5).map(|i| format!("sg-other{i}")).collect();
    let plan = ecs_reconciler_plan::plan(&desired, &s);
    assert!(plan.changes.iter().all(|c| c.kind != "too-many-groups"));
    assert!(
        plan.actions()
            .iter()
            .any(|a| matches!(a, Action::SetInstanceGroups { .. }))
    );
}
