//! Table tests of real EC2 networking: what an attachment cannot do is a
//! per-resource report, never a call that fails every pass.

mod fixture;

use ecs_reconciler_plan::*;
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
