//! Observation: one pass over ECS, EC2 and ELBv2 that fills a [`Snapshot`]
//! for exactly what the desired state names, with the fewest calls the APIs
//! allow (batched describes, one filtered rules read, every NextToken
//! followed) and the three services read concurrently.
//!
//! A call that fails makes its part of the snapshot `Unknown`, never empty.
//!
//! This module orders the reads of a pass; each service's reads are in
//! `ecs`, `ec2` and `elbv2`. What a pass reuses from earlier ones is
//! in [`crate::memory`].

mod ec2;
mod ecs;
mod elbv2;

use ecs_reconciler_plan::{ErrorClass, Observed, Snapshot, Unread};
use ecs_reconciler_spec::DesiredState;

use crate::Aws;
use crate::error::AwsError;

pub(crate) use ec2::{describe_instances, describe_rules, groups_by_filter, managed_prefix_lists};
pub(crate) use ecs::{
    container_instances, describe_task_definition, describe_tasks, each_service, list_task_arns,
    live_service,
};
pub(crate) use elbv2::describe_listeners;

type Result<T> = std::result::Result<T, AwsError>;

/// Observes everything the desired state names: a full pass.
pub async fn observe(aws: &Aws, desired: &DesiredState) -> Snapshot {
    observe_with(aws, desired, true).await
}

/// Observes part of a file (`desired` is that part): what is remembered
/// across passes about the rest — task definitions, target-health reads —
/// is kept as it is.
pub async fn observe_part(aws: &Aws, desired: &DesiredState) -> Snapshot {
    observe_with(aws, desired, false).await
}

async fn observe_with(aws: &Aws, desired: &DesiredState, full: bool) -> Snapshot {
    // Targets are read strictly before tasks. A task that starts between
    // the two reads then shows up as "running, not registered" (register:
    // harmless, ECS does the same) instead of "registered, matches no task"
    // (deregister: would take a new task out of service). Tasks are listed
    // as soon as the targets are read, alongside the load balancers'
    // listeners and whatever ECS reads are left.
    // Everything else is read concurrently with the targets: the three
    // services, and ECS's service and cluster-resource reads, have separate
    // rate budgets, so a pass lasts as long as its slowest chain of reads,
    // not their sum.
    let ((elb, running), (ecs, instances), security_groups) = tokio::join!(
        elbv2::observe_elb(aws, desired, full, ecs::list_running_tasks(aws, desired)),
        async {
            let ecs = ecs::observe_ecs(aws, desired, full).await;
            let instances = ec2::observe_instances(aws, &ecs.container_instances).await;
            (ecs, instances)
        },
        async {
            let groups = ec2::observe_security_groups(aws, desired).await;
            let prefix_lists = ec2::observe_prefix_lists(aws, desired, &groups).await;
            (groups, prefix_lists)
        },
    );
    let (security_groups, prefix_lists) = security_groups;
    let mut clusters = ecs::clusters(running, ecs.container_instances);
    ecs::add_stopping_tasks(aws, desired, &elb.target_groups, &mut clusters).await;
    let snapshot = Snapshot {
        security_groups,
        services: ecs.services,
        task_definitions: ecs.task_definitions,
        clusters,
        instances,
        target_groups: elb.target_groups,
        load_balancers: elb.load_balancers,
        capacity_providers: ecs.capacity_providers,
        prefix_lists,
    };
    elbv2::note_settled_groups(aws, desired, &snapshot);
    snapshot
}

/// The one place a failed call becomes an `Unknown` part of the snapshot,
/// with the call's error class (it paces the retry).
fn unknown<T>(err: &AwsError) -> Observed<T> {
    Observed::Unknown(err.unread())
}

/// An `Unknown` part of the snapshot for a reason that is not a failed call
/// (an answer the controller must not guess from, such as two groups with
/// one name): reading again will not change it until a person does, so it
/// is classed as an invalid request.
fn unknown_because<T>(why: String) -> Observed<T> {
    Observed::Unknown(Unread::new(ErrorClass::Invalid, why))
}
