//! Target groups: health-check path, and registrations against the bound
//! service's tasks — the draining-aware diff.
//!
//! Expected targets are the (EC2 instance id, host port) of every task that
//! is RUNNING and meant to keep running. Missing ones are registered (a
//! draining one too: someone deregistered a live task). Registered targets
//! that match no such task are deregistered in `exclusive` membership, except
//! draining targets and the targets of tasks still starting or stopping,
//! which ECS itself is moving. Nothing is deregistered unless the service,
//! its tasks, the cluster's container instances and the targets were all read
//! completely, the targets in this very pass, and every serving task could be
//! placed.

use std::collections::{BTreeMap, BTreeSet};

use ecs_reconciler_spec::{DesiredState, Mode, TargetGroupSpec, TargetMembership};

use crate::action::{Action, Change, Disposition, HoldReason};
use crate::deployments::{Registrations, registrations};
use crate::sightings::{SightingKey, Sightings};
use crate::snapshot::{LiveTask, Observed, Snapshot, TargetKey};
use crate::unit::UnitId;

/// Plans every declared target group; target (de)registrations wait for
/// `sightings` to confirm them.
pub fn diff(desired: &DesiredState, snapshot: &Snapshot, sightings: &Sightings) -> Vec<Change> {
    let index = TaskIndex::new(snapshot);
    let mut changes = Vec::new();
    for spec in &desired.target_groups {
        diff_target_group(spec, snapshot, &index, sightings, &mut changes);
    }
    changes
}

/// A snapshot's tasks by cluster and service, and its container instances'
/// EC2 instances by cluster, built once per plan: a group reads only its
/// own service's tasks instead of scanning every task of its cluster
/// (1,000 groups × 1,000 tasks per cluster at 1,000 services).
pub struct TaskIndex<'a> {
    clusters: BTreeMap<&'a str, ClusterIndex<'a>>,
}

struct ClusterIndex<'a> {
    /// `None` when the cluster's tasks are unknown.
    tasks_by_service: Option<BTreeMap<&'a str, Vec<&'a LiveTask>>>,
    /// `None` when its container instances are unknown.
    instances: Option<BTreeMap<&'a str, &'a str>>,
}

impl<'a> TaskIndex<'a> {
    /// Indexes `snapshot`; unknown reads stay unknown in the index.
    pub fn new(snapshot: &'a Snapshot) -> Self {
        let clusters = snapshot
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let tasks_by_service = cluster.tasks.known().map(|tasks| {
                    let mut by_service: BTreeMap<&str, Vec<&LiveTask>> = BTreeMap::new();
                    for task in tasks {
                        if let Some(service) = task.service.as_deref() {
                            by_service.entry(service).or_default().push(task);
                        }
                    }
                    by_service
                });
                let instances = cluster.container_instances.known().map(|list| {
                    list.iter()
                        .filter_map(|ci| Some((ci.arn.as_str(), ci.ec2_instance_id.as_deref()?)))
                        .collect()
                });
                (
                    name.as_str(),
                    ClusterIndex {
                        tasks_by_service,
                        instances,
                    },
                )
            })
            .collect();
        TaskIndex { clusters }
    }
}

/// What the bound service's tasks say about targets.
#[derive(Debug, Default)]
pub struct TaskTargets {
    /// Targets of serving tasks.
    pub expected: BTreeSet<TargetKey>,
    /// Targets of tasks ECS is starting or stopping: neither added nor
    /// removed by us.
    pub in_motion: BTreeSet<TargetKey>,
    /// A serving task whose target could not be derived (no binding, no
    /// container instance): the expected set is incomplete.
    pub incomplete: bool,
    /// A deployment that owns registrations is in progress: why.
    pub deployment: Option<String>,
}

/// Derives targets from tasks; `None` when the reads it needs are unknown.
pub fn task_targets(
    spec: &TargetGroupSpec,
    snapshot: &Snapshot,
    index: &TaskIndex<'_>,
) -> Option<TaskTargets> {
    let service_key = (spec.cluster.clone(), spec.service.clone());
    // Without a live, active service an empty task list would mean
    // "deregister everything": refuse to decide.
    let owner = match snapshot.services.get(&service_key) {
        Some(Observed::Known(Some(service))) if service.status == "ACTIVE" => {
            registrations(service)
        }
        _ => return None,
    };
    let cluster = index.clusters.get(spec.cluster.as_str())?;
    let tasks_by_service = cluster.tasks_by_service.as_ref()?;
    let instances = cluster.instances.as_ref()?;
    let tasks = tasks_by_service
        .get(spec.service.as_str())
        .map_or(&[][..], Vec::as_slice);

    let mut out = TaskTargets::default();
    if let Registrations::Deployment { why, .. } = &owner {
        out.deployment = Some(why.clone());
    }
    for task in tasks {
        // A serving task of a task set or deployment that does not take
        // production traffic is in motion: neither added nor removed.
        let serving = task.is_serving() && owner.serves(task);
        let in_motion = !serving && task.last_status != "STOPPED";
        match (target_of(task, spec, instances), serving) {
            (TaskTarget::One(target), true) => {
                out.expected.insert(target);
            }
            // A serving task whose target cannot be told exactly: nothing
            // may be deregistered on the strength of this task list, and
            // none of its candidate targets is touched.
            (TaskTarget::Several(targets), true) => {
                out.incomplete = true;
                out.in_motion.extend(targets);
            }
            (TaskTarget::Unknown, true) => out.incomplete = true,
            (_, false) if !in_motion => {}
            (TaskTarget::One(target), false) => {
                out.in_motion.insert(target);
            }
            (TaskTarget::Several(targets), false) => out.in_motion.extend(targets),
            (TaskTarget::Unknown, false) => {}
        }
    }
    Some(out)
}

/// Whether nothing about a group is in motion: its targets were read (in
/// this pass or reused), every one is `healthy`, every serving task's target
/// is among them, no task is starting or stopping, and — in `exclusive`
/// membership — no target is foreign. Such a group's read shows nothing a
/// fresh one would not, unless something outside ECS changed it; the
/// observer may then reuse it for a bounded number of passes.
pub fn is_settled(spec: &TargetGroupSpec, snapshot: &Snapshot, index: &TaskIndex<'_>) -> bool {
    let Some(Observed::Known(Some(live))) = snapshot.target_groups.get(&spec.name) else {
        return false;
    };
    let Observed::Known(targets) = &live.targets else {
        return false;
    };
    let Some(tasks) = task_targets(spec, snapshot, index) else {
        return false;
    };
    if tasks.incomplete || !tasks.in_motion.is_empty() || tasks.deployment.is_some() {
        return false;
    }
    if targets.iter().any(|t| t.state != "healthy") {
        return false;
    }
    let registered: BTreeSet<&TargetKey> = targets.iter().map(|t| &t.key).collect();
    tasks.expected.iter().all(|t| registered.contains(t))
        && (spec.membership != TargetMembership::Exclusive
            || registered.len() == tasks.expected.len())
}

/// Where a task receives the target group's traffic.
enum TaskTarget {
    One(TargetKey),
    /// Several tcp host ports for the one container port (e.g. separate
    /// IPv4 and IPv6 bindings): ambiguous.
    Several(Vec<TargetKey>),
    /// No container instance or no matching binding (yet).
    Unknown,
}

fn target_of(
    task: &LiveTask,
    spec: &TargetGroupSpec,
    instances: &BTreeMap<&str, &str>,
) -> TaskTarget {
    let Some(instance) = task
        .container_instance_arn
        .as_deref()
        .and_then(|arn| instances.get(arn))
    else {
        return TaskTarget::Unknown;
    };
    let mut ports: Vec<i32> = task
        .bindings
        .iter()
        .filter(|b| {
            b.container_name == spec.container_name
                && b.container_port == i32::from(spec.container_port)
                && b.protocol
                    .as_deref()
                    .is_none_or(|p| p.eq_ignore_ascii_case("tcp"))
        })
        .map(|b| b.host_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let key = |port| TargetKey {
        id: (*instance).to_string(),
        port,
    };
    match ports.as_slice() {
        [] => TaskTarget::Unknown,
        [port] => TaskTarget::One(key(*port)),
        many => TaskTarget::Several(many.iter().map(|p| key(*p)).collect()),
    }
}

fn diff_target_group(
    spec: &TargetGroupSpec,
    snapshot: &Snapshot,
    index: &TaskIndex<'_>,
    sightings: &Sightings,
    changes: &mut Vec<Change>,
) {
    let unit = UnitId::target_group(&spec.name);
    let live = match snapshot.target_groups.get(&spec.name) {
        Some(Observed::Known(Some(live))) => live,
        Some(Observed::Known(None)) => {
            changes.push(Change::report(
                "missing-resource",
                &unit,
                "absent".into(),
                "present".into(),
                format!(
                    "no target group named {} was found; ecs-reconciler does not create target groups",
                    spec.name
                ),
            ));
            return;
        }
        _ => return,
    };
    let enforce = spec.mode == Mode::Enforce;

    if let Some(path) = &spec.health_check_path
        && live.health_check_path.as_deref() != Some(path.as_str())
    {
        let before = live
            .health_check_path
            .clone()
            .unwrap_or_else(|| "unset".into());
        changes.push(Change::fix(
            &unit,
            format!("health check {before}"),
            format!("health check {path}"),
            format!("health-check path is {before}, the file says {path}"),
            enforce,
            Action::SetHealthCheckPath {
                target_group: spec.name.clone(),
                arn: live.arn.clone(),
                path: path.clone(),
            },
        ));
    }

    if let Some(kind) = live.target_type.as_deref()
        && kind != "instance"
    {
        changes.push(Change::report(
            "check-target-type",
            &unit,
            kind.to_string(),
            "instance".into(),
            format!(
                "target group {} has {kind} targets; only instance targets are reconciled",
                spec.name
            ),
        ));
        return;
    }
    let Observed::Known(targets) = &live.targets else {
        return;
    };
    let Some(tasks) = task_targets(spec, snapshot, index) else {
        return;
    };

    let active: BTreeSet<&TargetKey> = targets
        .iter()
        .filter(|t| !t.is_draining())
        .map(|t| &t.key)
        .collect();
    let draining: BTreeSet<&TargetKey> = targets
        .iter()
        .filter(|t| t.is_draining())
        .map(|t| &t.key)
        .collect();
    let mut target_changes = Vec::new();

    for target in &tasks.expected {
        if active.contains(target) {
            continue;
        }
        // A task that reads RUNNING on an instance EC2 reports stopped is
        // one ECS has not noticed yet: registering it fails (InvalidTarget)
        // and would serve nothing. ECS replaces the task.
        if let Some(Observed::Known(instance)) = snapshot.instances.get(&target.id)
            && instance.state != "running"
        {
            changes.push(Change::report(
                "instance-not-running",
                &unit,
                format!("instance {} {}", target.id, instance.state),
                target.to_string(),
                format!(
                    "a task of {} reads RUNNING on {target}, but EC2 reports instance {} {}; not registered (ECS replaces the task once it notices)",
                    spec.service, target.id, instance.state
                ),
            ));
            continue;
        }
        let reason = if draining.contains(target) {
            format!("target {target} is draining but its task is still running")
        } else {
            format!("running task on {target} is not registered")
        };
        target_changes.push(Change::fix(
            &unit,
            "absent".into(),
            target.to_string(),
            reason,
            enforce,
            Action::RegisterTarget {
                target_group: spec.name.clone(),
                arn: live.arn.clone(),
                target: target.clone(),
            },
        ));
    }

    // A reused read is from before this pass's task read: a target it
    // shows may since have been replaced, so it is never grounds to remove.
    let may_remove = spec.membership == TargetMembership::Exclusive
        && !tasks.incomplete
        && live.targets_read_passes_ago == 0;
    if may_remove {
        for target in active {
            if tasks.expected.contains(target) || tasks.in_motion.contains(target) {
                continue;
            }
            target_changes.push(Change::fix(
                &unit,
                target.to_string(),
                "absent".into(),
                format!(
                    "target {target} matches no running task of {}",
                    spec.service
                ),
                enforce,
                Action::DeregisterTarget {
                    target_group: spec.name.clone(),
                    arn: live.arn.clone(),
                    target: target.clone(),
                },
            ));
        }
    }

    for mut change in target_changes {
        if change.disposition == Disposition::Apply {
            hold_unproven(&mut change, tasks.deployment.as_deref(), sightings);
        }
        changes.push(change);
    }
}

/// Holds a target change that a deployment owns, or that reads have not
/// yet confirmed for the consistency window (see [`crate::sightings`]).
fn hold_unproven(change: &mut Change, deployment: Option<&str>, sightings: &Sightings) {
    if let Some(why) = deployment {
        change.hold(
            HoldReason::Deployment,
            &format!("{why}; reconciled again once it completes"),
        );
        return;
    }
    let Some(key) = SightingKey::of(change) else {
        return;
    };
    if sightings.is_confirmed(&key) {
        return;
    }
    let seen = sightings.seen_for(&key).map_or_else(
        || "first seen in this read".to_string(),
        |d| format!("seen for {:.1} s", d.as_secs_f64()),
    );
    change.hold(
        HoldReason::AwaitingConsistency,
        &format!(
            "{seen}; made once reads {} s apart agree (ECS, ELBv2 and EC2 reads are eventually consistent)",
            sightings.window().as_secs_f64()
        ),
    );
}
