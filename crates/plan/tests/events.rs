//! Table tests of mapping change events to the declared units they concern:
//! events are triggers, so the mapping decides only which resources are
//! re-read at once.

mod fixture;

use std::collections::BTreeSet;

use ecs_reconciler_plan::events::*;
use ecs_reconciler_plan::*;
use fixture::*;

fn event(subjects: Vec<Subject>) -> ChangeEvent {
    ChangeEvent {
        id: "e-1".into(),
        kind: EventKind::ApiCall {
            source: "ec2.amazonaws.com".into(),
            name: "AuthorizeSecurityGroupIngress".into(),
        },
        time_unix: None,
        subjects,
        actor: None,
        request_id: None,
    }
}

fn units(index: &EventIndex, subjects: Vec<Subject>) -> Vec<String> {
    index
        .units(&desired(), &event(subjects))
        .iter()
        .map(UnitId::to_string)
        .collect()
}

#[test]
fn each_subject_maps_to_the_units_that_read_it() {
    let mut index = EventIndex::default();
    index.learn(&converged());
    let cases: Vec<(Subject, Vec<&str>)> = vec![
        (
            Subject::SecurityGroupId(LB_GROUP.into()),
            vec!["security-group/LoadBalancerGroup"],
        ),
        (
            Subject::SecurityGroupId(INSTANCE_GROUP.into()),
            vec!["security-group/EC2InstanceWithLoadBalancer"],
        ),
        // A group the file does not declare (the default group).
        (Subject::SecurityGroupId(DEFAULT_GROUP.into()), vec![]),
        (
            Subject::SecurityGroupName("LoadBalancerGroup".into()),
            vec!["security-group/LoadBalancerGroup"],
        ),
        (
            Subject::Instance(INSTANCES[1].into()),
            vec!["cluster/nestjs-cluster"],
        ),
        (
            Subject::NetworkInterface(format!("eni-{}", INSTANCES[0])),
            vec!["cluster/nestjs-cluster"],
        ),
        (Subject::Instance("i-unknown".into()), vec![]),
        (
            Subject::TargetGroup("nestjs-api-tg".into()),
            vec!["target-group/nestjs-api-tg"],
        ),
        (Subject::TargetGroup("someone-elses-tg".into()), vec![]),
        (
            Subject::LoadBalancer("nestjs-api-alb".into()),
            vec!["load-balancer/nestjs-api-alb"],
        ),
        // A service's tasks are its target group's targets.
        (
            Subject::Service {
                cluster: "nestjs-cluster".into(),
                name: "nestjs-api".into(),
            },
            vec![
                "service/nestjs-cluster/nestjs-api",
                "target-group/nestjs-api-tg",
            ],
        ),
        (
            Subject::Service {
                cluster: "other".into(),
                name: "nestjs-api".into(),
            },
            vec![],
        ),
        (
            Subject::Cluster("nestjs-cluster".into()),
            vec!["cluster/nestjs-cluster", "target-group/nestjs-api-tg"],
        ),
    ];
    for (subject, want) in cases {
        assert_eq!(units(&index, vec![subject.clone()]), want, "{subject:?}");
    }
    // Several subjects: the union.
    assert_eq!(
        units(
            &index,
            vec![
                Subject::SecurityGroupId(LB_GROUP.into()),
                Subject::LoadBalancer("nestjs-api-alb".into())
            ]
        ),
        vec![
            "load-balancer/nestjs-api-alb",
            "security-group/LoadBalancerGroup"
        ]
    );
}

#[test]
fn ids_not_read_yet_map_to_nothing_and_scoped_reads_add_to_what_is_known() {
    let mut index = EventIndex::default();
    assert!(units(&index, vec![Subject::SecurityGroupId(LB_GROUP.into())]).is_empty());
    // A scoped snapshot knows one group only; the next one another: both stay.
    let full = converged();
    let mut first = Snapshot::default();
    first.security_groups.insert(
        "LoadBalancerGroup".into(),
        full.security_groups["LoadBalancerGroup"].clone(),
    );
    let mut second = Snapshot::default();
    second.security_groups.insert(
        "EC2InstanceWithLoadBalancer".into(),
        full.security_groups["EC2InstanceWithLoadBalancer"].clone(),
    );
    index.learn(&first);
    index.learn(&second);
    let both: BTreeSet<String> = [LB_GROUP, INSTANCE_GROUP]
        .iter()
        .flat_map(|g| units(&index, vec![Subject::SecurityGroupId((*g).into())]))
        .collect();
    assert_eq!(both.len(), 2, "{both:?}");
}
