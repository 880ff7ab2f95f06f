//! Observation: one pass over ECS, EC2 and ELBv2 that fills a [`Snapshot`]
//! for exactly what the desired state names, with the fewest calls the APIs
//! allow (batched describes, one filtered rules read, every NextToken
//! followed) and the three services read concurrently.
//!
//! A call that fails makes its part of the snapshot `Unknown`, never empty.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use aws_sdk_ec2::types::Filter;
use aws_sdk_ecs::types::DesiredStatus;
use ecs_reconciler_plan::{
    LiveBinding, LiveCluster, LiveContainerInstance, LiveInstance, LiveListener, LiveLoadBalancer,
    LivePortMapping, LiveRule, LiveSecurityGroup, LiveService, LiveSource, LiveTarget,
    LiveTargetGroup, LiveTask, LiveTaskDefinition, Observed, RuleKey, Snapshot, TargetKey, targets,
};
use ecs_reconciler_spec::{DesiredState, PortRange, Protocol};

// The page types of the paginated reads (see `pages::each_page`).
use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;

use crate::error::{AwsError, ErrorKind};
use crate::pages;
use crate::service_events::DropServiceEvents;
use crate::target_reads::{self, Decision};
use crate::{AwsClients, OWNER_TAG_KEY, OWNER_TAG_VALUE};

/// DescribeServices takes at most 10 services per call.
const SERVICES_PER_CALL: usize = 10;
/// DescribeTasks / DescribeContainerInstances take at most 100 per call.
const ECS_DESCRIBE_PER_CALL: usize = 100;
/// DescribeTargetGroups / DescribeLoadBalancers take at most 20 names.
const ELB_NAMES_PER_CALL: usize = 20;
/// The largest page of DescribeTargetGroups without names.
const TARGET_GROUPS_PER_PAGE: usize = 400;
/// EC2 filters take at most 200 values.
const EC2_FILTER_VALUES: usize = 200;

type Result<T> = std::result::Result<T, AwsError>;

/// Observes everything the desired state names: a full pass.
pub async fn observe(clients: &AwsClients, desired: &DesiredState) -> Snapshot {
    observe_with(clients, desired, true).await
}

/// Observes part of a file (`desired` is that part): what is remembered
/// across passes about the rest — task definitions, target-health reads —
/// is kept as it is.
pub async fn observe_part(clients: &AwsClients, desired: &DesiredState) -> Snapshot {
    observe_with(clients, desired, false).await
}

async fn observe_with(clients: &AwsClients, desired: &DesiredState, full: bool) -> Snapshot {
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
    let ((elb, running), (ecs, instances), groups) = tokio::join!(
        observe_elb(clients, desired, full, list_running_tasks(clients, desired)),
        async {
            let ecs = observe_ecs(clients, desired, full).await;
            let instances = observe_instances(clients, &ecs.2).await;
            (ecs, instances)
        },
        observe_security_groups(clients, desired),
    );
    let (services, task_definitions, container_instances) = ecs;
    let (target_groups, load_balancers) = elb;
    let mut clusters = clusters(running, container_instances);
    add_stopping_tasks(clients, desired, &target_groups, &mut clusters).await;
    let snapshot = Snapshot {
        security_groups: groups,
        services,
        task_definitions,
        clusters,
        instances,
        target_groups,
        load_balancers,
    };
    note_settled_groups(clients, desired, &snapshot);
    snapshot
}

/// Reads the tasks being stopped, but only for clusters where a target
/// matches no running task. In the steady state every target is a running
/// task, so this costs nothing; when one is not, it may belong to a task ECS
/// is stopping (its target drains), which the plan must leave alone rather
/// than call stale. Runs after the targets were read, like the first task
/// read.
async fn add_stopping_tasks(
    clients: &AwsClients,
    desired: &DesiredState,
    target_groups: &BTreeMap<String, Observed<Option<LiveTargetGroup>>>,
    clusters: &mut BTreeMap<String, LiveCluster>,
) {
    for (name, cluster) in clusters.iter_mut() {
        let Observed::Known(tasks) = &cluster.tasks else {
            continue;
        };
        let bound = bound_services(desired, name);
        if bound.is_empty() {
            continue;
        }
        let serving: Option<BTreeSet<(String, i32)>> =
            cluster.container_instances.known().map(|instances| {
                let ec2_of: BTreeMap<&str, &str> = instances
                    .iter()
                    .filter_map(|ci| Some((ci.arn.as_str(), ci.ec2_instance_id.as_deref()?)))
                    .collect();
                tasks
                    .iter()
                    .flat_map(|task| {
                        let instance = task
                            .container_instance_arn
                            .as_deref()
                            .and_then(|arn| ec2_of.get(arn).copied())
                            .unwrap_or_default();
                        task.bindings
                            .iter()
                            .map(move |b| (instance.to_string(), b.host_port))
                    })
                    .collect()
            });
        let orphan = desired
            .target_groups
            .iter()
            .filter(|t| &t.cluster == name)
            .filter_map(|t| target_groups.get(&t.name)?.known()?.as_ref())
            .filter_map(|tg| tg.targets.known())
            .flatten()
            .filter(|target| !target.is_draining())
            .any(|target| {
                serving.as_ref().is_none_or(|serving| {
                    !serving.contains(&(target.key.id.clone(), target.key.port))
                })
            });
        if !orphan {
            continue;
        }
        match list_tasks(clients, name, &bound, DesiredStatus::Stopped).await {
            Ok(stopping) => {
                if let Observed::Known(tasks) = &mut cluster.tasks {
                    for task in stopping {
                        if !tasks.iter().any(|t| t.arn == task.arn) {
                            tasks.push(task);
                        }
                    }
                }
            }
            Err(err) => cluster.tasks = unknown(&err),
        }
    }
}

/// The services of `cluster` that a declared target group follows: the
/// only ones whose tasks are read.
fn bound_services(desired: &DesiredState, cluster: &str) -> BTreeSet<String> {
    desired
        .target_groups
        .iter()
        .filter(|t| t.cluster == cluster)
        .map(|t| t.service.clone())
        .collect()
}

fn unknown<T>(err: &AwsError) -> Observed<T> {
    Observed::Unknown(err.to_string())
}

// ---------------------------------------------------------------- ECS

type EcsPart = (
    BTreeMap<(String, String), Observed<Option<LiveService>>>,
    BTreeMap<String, Observed<LiveTaskDefinition>>,
    BTreeMap<String, Observed<Vec<LiveContainerInstance>>>,
);

/// Services, task definitions and container instances, per cluster.
async fn observe_ecs(clients: &AwsClients, desired: &DesiredState, full: bool) -> EcsPart {
    let mut services = BTreeMap::new();
    let mut instances = BTreeMap::new();
    for cluster in desired.cluster_names() {
        let names: Vec<String> = desired
            .services
            .iter()
            .filter(|s| s.cluster == cluster)
            .map(|s| s.name.clone())
            .collect();
        // Container instances place tasks' targets and carry the instance
        // attachments; a cluster with neither needs none.
        let needed = !bound_services(desired, &cluster).is_empty()
            || desired
                .clusters
                .iter()
                .any(|c| c.name == cluster && !c.instance_security_groups.is_empty());

        let (found, container_instances) =
            tokio::join!(describe_services(clients, &cluster, &names), async {
                if !needed {
                    Observed::Known(Vec::new())
                } else {
                    match container_instances(clients, &cluster).await {
                        Ok(list) => Observed::Known(list),
                        Err(err) => unknown(&err),
                    }
                }
            },);
        for name in &names {
            let observed = match &found {
                Ok(map) => Observed::Known(map.get(name).cloned()),
                Err(err) => unknown(err),
            };
            services.insert((cluster.clone(), name.clone()), observed);
        }
        instances.insert(cluster.clone(), container_instances);
    }

    // Task definitions, only where the file asks to check a container.
    let mut task_definitions = BTreeMap::new();
    for spec in &desired.services {
        let wants_container = spec
            .task_definition
            .as_ref()
            .is_some_and(|t| t.container_name.is_some());
        let key = (spec.cluster.clone(), spec.name.clone());
        let Some(Observed::Known(Some(live))) = services.get(&key) else {
            continue;
        };
        let Some(arn) = &live.task_definition_arn else {
            continue;
        };
        if !wants_container || task_definitions.contains_key(arn) {
            continue;
        }
        let cached = clients
            .task_definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .cloned();
        let observed = match cached {
            Some(def) => Observed::Known(def),
            None => match describe_task_definition(clients, arn).await {
                Ok(def) => {
                    clients
                        .task_definitions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(arn.clone(), def.clone());
                    Observed::Known(def)
                }
                Err(err) => unknown(&err),
            },
        };
        task_definitions.insert(arn.clone(), observed);
    }
    // Revisions no declared service runs any more are forgotten, so the
    // cache holds at most one entry per service.
    if full {
        clients
            .task_definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|arn, _| task_definitions.contains_key(arn));
    }
    (services, task_definitions, instances)
}

/// The running tasks of the services a target group follows, per cluster;
/// listed after the targets (see [`observe_with`]).
async fn list_running_tasks(
    clients: &AwsClients,
    desired: &DesiredState,
) -> BTreeMap<String, Observed<Vec<LiveTask>>> {
    let mut running = BTreeMap::new();
    for cluster in desired.cluster_names() {
        let bound = bound_services(desired, &cluster);
        let tasks = if bound.is_empty() {
            Observed::Known(Vec::new())
        } else {
            match list_tasks(clients, &cluster, &bound, DesiredStatus::Running).await {
                Ok(tasks) => Observed::Known(tasks),
                Err(err) => unknown(&err),
            }
        };
        running.insert(cluster, tasks);
    }
    running
}

/// Each cluster's running tasks beside its container instances.
fn clusters(
    mut running: BTreeMap<String, Observed<Vec<LiveTask>>>,
    container_instances: BTreeMap<String, Observed<Vec<LiveContainerInstance>>>,
) -> BTreeMap<String, LiveCluster> {
    container_instances
        .into_iter()
        .map(|(name, container_instances)| {
            let tasks = running
                .remove(&name)
                .unwrap_or_else(|| Observed::Known(Vec::new()));
            (
                name,
                LiveCluster {
                    tasks,
                    container_instances,
                },
            )
        })
        .collect()
}

async fn describe_services(
    clients: &AwsClients,
    cluster: &str,
    names: &[String],
) -> Result<BTreeMap<String, LiveService>> {
    let mut found = BTreeMap::new();
    for chunk in names.chunks(SERVICES_PER_CALL) {
        clients.take("ecs", "DescribeServices").await;
        let out = clients
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .customize()
            .interceptor(DropServiceEvents)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeServices", e))?;
        for failure in out.failures() {
            // MISSING means "no such service" and is an answer; anything
            // else is not.
            if failure.reason() != Some("MISSING") {
                return Err(AwsError {
                    service: "ecs",
                    operation: "DescribeServices",
                    kind: ErrorKind::Transient,
                    code: failure.reason().map(str::to_string),
                    message: failure.detail().unwrap_or_default().to_string(),
                    request_id: None,
                });
            }
        }
        for service in out.services() {
            let Some(name) = service.service_name() else {
                continue;
            };
            // An INACTIVE service is a deleted one.
            if service.status() == Some("INACTIVE") {
                continue;
            }
            found.insert(
                name.to_string(),
                LiveService {
                    arn: service.service_arn().unwrap_or_default().to_string(),
                    status: service.status().unwrap_or_default().to_string(),
                    desired_count: service.desired_count(),
                    running_count: service.running_count(),
                    pending_count: service.pending_count(),
                    launch_type: service.launch_type().map(|l| l.as_str().to_string()),
                    scheduling_strategy: service
                        .scheduling_strategy()
                        .map(|s| s.as_str().to_string()),
                    task_definition_arn: service.task_definition().map(str::to_string),
                },
            );
        }
    }
    Ok(found)
}

/// Tasks of the given services with a desired status (RUNNING: those
/// meant to run, starting ones included; STOPPED: those being stopped,
/// whose targets ECS is still draining, and recently stopped ones), every
/// page.
async fn list_tasks(
    clients: &AwsClients,
    cluster: &str,
    services: &BTreeSet<String>,
    status: DesiredStatus,
) -> Result<Vec<LiveTask>> {
    let arns = list_task_arns(clients, cluster, None, status.clone()).await?;
    // Only the list of tasks meant to run is served from the cache: a task
    // leaves it the moment ECS decides to stop it.
    let cached = status == DesiredStatus::Running;
    let served = if cached {
        clients.tasks.served(cluster, &arns)
    } else {
        vec![None; arns.len()]
    };
    let missing: Vec<String> = arns
        .iter()
        .zip(&served)
        .filter(|(_, kept)| kept.is_none())
        .map(|(arn, _)| arn.clone())
        .collect();
    let mut described: HashMap<String, LiveTask> = HashMap::new();
    for task in &describe_tasks(clients, cluster, &missing).await? {
        let task = live_task(task);
        described.insert(task.arn.clone(), task);
    }
    if cached {
        clients.tasks.add(
            cluster,
            described.iter().filter(|(_, task)| task.is_serving()),
        );
    }
    Ok(arns
        .iter()
        .zip(served)
        .filter_map(|(arn, kept)| kept.or_else(|| described.remove(arn)))
        .filter(|task| task.service.as_ref().is_some_and(|s| services.contains(s)))
        .collect())
}

/// The parts of a described task the plan uses.
fn live_task(task: &aws_sdk_ecs::types::Task) -> LiveTask {
    let bindings = task
        .containers()
        .iter()
        .flat_map(|c| {
            let name = c.name().unwrap_or_default().to_string();
            c.network_bindings().iter().filter_map(move |b| {
                Some(LiveBinding {
                    container_name: name.clone(),
                    container_port: b.container_port()?,
                    host_port: b.host_port()?,
                    protocol: b.protocol().map(|p| p.as_str().to_string()),
                })
            })
        })
        .collect();
    LiveTask {
        arn: task.task_arn().unwrap_or_default().to_string(),
        service: task
            .group()
            .and_then(|g| g.strip_prefix("service:"))
            .map(str::to_string),
        last_status: task.last_status().unwrap_or_default().to_string(),
        desired_status: task.desired_status().unwrap_or_default().to_string(),
        container_instance_arn: task.container_instance_arn().map(str::to_string),
        bindings,
    }
}

/// Task ARNs of a cluster (optionally one service's) with a desired
/// status, every page.
pub(crate) async fn list_task_arns(
    clients: &AwsClients,
    cluster: &str,
    service: Option<&str>,
    status: DesiredStatus,
) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let pages = clients
        .ecs
        .list_tasks()
        .cluster(cluster)
        .set_service_name(service.map(str::to_string))
        .desired_status(status)
        .set_max_results(clients.page_size.map(|n| n.clamp(1, 100)))
        .into_paginator()
        .send();
    pages::each_page(
        &clients.budget,
        "ecs",
        "ListTasks",
        pages,
        ListTasksOutput::next_token,
        |page| {
            arns.extend(page.task_arns().iter().cloned());
        },
    )
    .await?;
    Ok(arns)
}

/// ECS reports per-item failures beside a successful answer; any of them
/// makes the read incomplete.
fn failures_are_unknown(
    operation: &'static str,
    failures: &[aws_sdk_ecs::types::Failure],
) -> Result<()> {
    let Some(first) = failures.first() else {
        return Ok(());
    };
    Err(AwsError {
        service: "ecs",
        operation,
        kind: ErrorKind::Transient,
        code: first.reason().map(str::to_string),
        message: format!(
            "{} of the requested items could not be described (first: {} {})",
            failures.len(),
            first.arn().unwrap_or("?"),
            first.detail().or(first.reason()).unwrap_or("")
        ),
        request_id: None,
    })
}

/// DescribeTasks in batches of 100.
pub(crate) async fn describe_tasks(
    clients: &AwsClients,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<aws_sdk_ecs::types::Task>> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(ECS_DESCRIBE_PER_CALL) {
        clients.take("ecs", "DescribeTasks").await;
        let out = clients
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeTasks", e))?;
        // A listed task that cannot be described is not "no task": its
        // target would look stale. The whole read is unknown instead.
        failures_are_unknown("DescribeTasks", out.failures())?;
        tasks.extend(out.tasks().iter().cloned());
    }
    Ok(tasks)
}

async fn container_instances(
    clients: &AwsClients,
    cluster: &str,
) -> Result<Vec<LiveContainerInstance>> {
    let mut arns = Vec::new();
    let pages = clients
        .ecs
        .list_container_instances()
        .cluster(cluster)
        .set_max_results(clients.page_size.map(|n| n.clamp(1, 100)))
        .into_paginator()
        .send();
    pages::each_page(
        &clients.budget,
        "ecs",
        "ListContainerInstances",
        pages,
        ListContainerInstancesOutput::next_token,
        |page| {
            arns.extend(page.container_instance_arns().iter().cloned());
        },
    )
    .await?;
    // Described once per ARN (see `described`); new ones in batches.
    let served = clients.container_instances.served(cluster, &arns);
    let missing: Vec<String> = arns
        .iter()
        .zip(&served)
        .filter(|(_, kept)| kept.is_none())
        .map(|(arn, _)| arn.clone())
        .collect();
    let mut known: HashMap<String, LiveContainerInstance> = HashMap::new();
    for chunk in missing.chunks(ECS_DESCRIBE_PER_CALL) {
        clients.take("ecs", "DescribeContainerInstances").await;
        let described = clients
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeContainerInstances", e))?;
        failures_are_unknown("DescribeContainerInstances", described.failures())?;
        for ci in described.container_instances() {
            let instance = LiveContainerInstance {
                arn: ci.container_instance_arn().unwrap_or_default().to_string(),
                ec2_instance_id: ci.ec2_instance_id().map(str::to_string),
            };
            known.insert(instance.arn.clone(), instance);
        }
    }
    clients.container_instances.add(
        cluster,
        known.iter().filter(|(_, ci)| ci.ec2_instance_id.is_some()),
    );
    Ok(arns
        .iter()
        .zip(served)
        .filter_map(|(arn, kept)| kept.or_else(|| known.remove(arn)))
        .collect())
}

async fn describe_task_definition(clients: &AwsClients, arn: &str) -> Result<LiveTaskDefinition> {
    clients.take("ecs", "DescribeTaskDefinition").await;
    let out = clients
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ecs", "DescribeTaskDefinition", e))?;
    let def = out.task_definition();
    let containers = def
        .map(|d| d.container_definitions())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let mappings = c
                .port_mappings()
                .iter()
                .map(|m| LivePortMapping {
                    container_port: m.container_port(),
                    host_port: m.host_port(),
                })
                .collect();
            (c.name().unwrap_or_default().to_string(), mappings)
        })
        .collect();
    Ok(LiveTaskDefinition {
        arn: arn.to_string(),
        family: def.and_then(|d| d.family()).unwrap_or_default().to_string(),
        containers,
    })
}

// ---------------------------------------------------------------- EC2

async fn observe_security_groups(
    clients: &AwsClients,
    desired: &DesiredState,
) -> BTreeMap<String, Observed<Option<LiveSecurityGroup>>> {
    let mut out = BTreeMap::new();
    if desired.security_groups.is_empty() {
        return out;
    }
    let candidates = match describe_groups(clients, desired).await {
        Ok(groups) => groups,
        Err(err) => {
            for spec in &desired.security_groups {
                out.insert(spec.name.clone(), unknown(&err));
            }
            return out;
        }
    };
    // Match each declared group: by id when given, else by name (and VPC).
    let mut found: Vec<(String, Candidate)> = Vec::new();
    for spec in &desired.security_groups {
        let matches: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| match &spec.id {
                Some(id) => &c.id == id,
                None => {
                    c.name == spec.name
                        && spec
                            .vpc_id
                            .as_ref()
                            .is_none_or(|v| c.vpc_id.as_ref() == Some(v))
                }
            })
            .collect();
        match matches.as_slice() {
            [] => {
                out.insert(spec.name.clone(), Observed::Known(None));
            }
            [one] => found.push((spec.name.clone(), (*one).clone())),
            many => {
                let ids: Vec<String> = many
                    .iter()
                    .map(|c| format!("{} in {}", c.id, c.vpc_id.as_deref().unwrap_or("?")))
                    .collect();
                out.insert(
                    spec.name.clone(),
                    Observed::Unknown(format!(
                        "{} groups are named {} ({}); set vpcId or id in the file",
                        many.len(),
                        spec.name,
                        ids.join(", ")
                    )),
                );
            }
        }
    }
    let ids: Vec<String> = found.iter().map(|(_, c)| c.id.clone()).collect();
    let rules = describe_rules(clients, &ids).await;
    for (name, candidate) in found {
        let ingress = match &rules {
            Ok(by_group) => by_group
                .get(&candidate.id)
                .cloned()
                .unwrap_or(Observed::Known(Vec::new())),
            Err(err) => unknown(err),
        };
        out.insert(
            name,
            Observed::Known(Some(LiveSecurityGroup {
                id: candidate.id,
                name: candidate.name,
                vpc_id: candidate.vpc_id,
                ingress,
            })),
        );
    }
    out
}

#[derive(Debug, Clone)]
struct Candidate {
    id: String,
    name: String,
    vpc_id: Option<String>,
}

async fn describe_groups(clients: &AwsClients, desired: &DesiredState) -> Result<Vec<Candidate>> {
    let names: Vec<String> = desired
        .security_groups
        .iter()
        .filter(|g| g.id.is_none())
        .map(|g| g.name.clone())
        .collect();
    let ids: Vec<String> = desired
        .security_groups
        .iter()
        .filter_map(|g| g.id.clone())
        .collect();
    let mut out = Vec::new();
    for (filter, values) in [("group-name", names), ("group-id", ids)] {
        for chunk in values.chunks(EC2_FILTER_VALUES) {
            let pages = clients
                .ec2
                .describe_security_groups()
                .filters(
                    Filter::builder()
                        .name(filter)
                        .set_values(Some(chunk.to_vec()))
                        .build(),
                )
                .into_paginator()
                .send();
            pages::each_page(
                &clients.budget,
                "ec2",
                "DescribeSecurityGroups",
                pages,
                DescribeSecurityGroupsOutput::next_token,
                |page| {
                    for group in page.security_groups() {
                        out.push(Candidate {
                            id: group.group_id().unwrap_or_default().to_string(),
                            name: group.group_name().unwrap_or_default().to_string(),
                            vpc_id: group.vpc_id().map(str::to_string),
                        });
                    }
                },
            )
            .await?;
        }
    }
    Ok(out)
}

/// Ingress rules of the given groups, by group id: one filtered, paginated
/// read for all of them.
async fn describe_rules(
    clients: &AwsClients,
    group_ids: &[String],
) -> Result<BTreeMap<String, Observed<Vec<LiveRule>>>> {
    let mut out: BTreeMap<String, Vec<LiveRule>> = BTreeMap::new();
    let mut unexpressible: BTreeMap<String, String> = BTreeMap::new();
    for chunk in group_ids.chunks(EC2_FILTER_VALUES) {
        let pages = clients
            .ec2
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .max_results(clients.page_size.map_or(1000, |n| n.clamp(5, 1000)))
            .into_paginator()
            .send();
        pages::each_page(
            &clients.budget,
            "ec2",
            "DescribeSecurityGroupRules",
            pages,
            DescribeSecurityGroupRulesOutput::next_token,
            |page| {
            for rule in page.security_group_rules() {
                if rule.is_egress() == Some(true) {
                    continue;
                }
                let Some(group_id) = rule.group_id() else {
                    continue;
                };
                let Some(key) = rule_key(rule) else {
                    // A rule the file cannot express (protocol 47, 132,
                    // ...): never silently ignored in an exclusive group,
                    // so the group's rule list is unknown until a person
                    // looks.
                    out.entry(group_id.to_string()).or_default();
                    unexpressible.entry(group_id.to_string()).or_insert_with(|| {
                        format!(
                            "rule {} ({} {}..{}) uses a protocol or source ecs-reconciler cannot express; remove it or manage this group by hand",
                            rule.security_group_rule_id().unwrap_or("?"),
                            rule.ip_protocol().unwrap_or("?"),
                            rule.from_port().unwrap_or(-1),
                            rule.to_port().unwrap_or(-1)
                        )
                    });
                    continue;
                };
                let managed_by_us = rule
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(OWNER_TAG_KEY) && t.value() == Some(OWNER_TAG_VALUE));
                out.entry(group_id.to_string()).or_default().push(LiveRule {
                    rule_id: rule.security_group_rule_id().map(str::to_string),
                    key,
                    description: rule.description().map(str::to_string),
                    managed_by_us,
                });
            }
            },
        )
        .await?;
    }
    Ok(out
        .into_iter()
        .map(|(group, rules)| {
            let observed = match unexpressible.remove(&group) {
                Some(why) => Observed::Unknown(why),
                None => Observed::Known(rules),
            };
            (group, observed)
        })
        .collect())
}

/// The normalised key of a live rule; `None` for protocols or sources the
/// file cannot express (the caller then makes the group's rules unknown).
fn rule_key(rule: &aws_sdk_ec2::types::SecurityGroupRule) -> Option<RuleKey> {
    let protocol = Protocol::parse(rule.ip_protocol()?)?;
    let source = if let Some(cidr) = rule.cidr_ipv4() {
        LiveSource::Ipv4(cidr.parse::<ipnet::Ipv4Net>().ok()?.trunc())
    } else if let Some(cidr) = rule.cidr_ipv6() {
        LiveSource::Ipv6(cidr.parse::<ipnet::Ipv6Net>().ok()?.trunc())
    } else if let Some(group) = rule.referenced_group_info().and_then(|g| g.group_id()) {
        LiveSource::Group(group.to_string())
    } else {
        LiveSource::PrefixList(rule.prefix_list_id()?.to_string())
    };
    let ports = PortRange {
        from: rule.from_port().unwrap_or(-1),
        to: rule.to_port().unwrap_or(-1),
    };
    Some(RuleKey::new(protocol, ports, source))
}

async fn observe_instances(
    clients: &AwsClients,
    container_instances: &BTreeMap<String, Observed<Vec<LiveContainerInstance>>>,
) -> BTreeMap<String, Observed<LiveInstance>> {
    let ids: BTreeSet<String> = container_instances
        .values()
        .filter_map(|c| c.known())
        .flatten()
        .filter_map(|ci| ci.ec2_instance_id.clone())
        .collect();
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return out;
    }
    let ids: Vec<String> = ids.into_iter().collect();
    match describe_instances(clients, &ids).await {
        Ok(found) => {
            // An id the complete, filtered read did not return is gone (a
            // terminated instance still registered in ECS): nothing to
            // attach to, and not a reason to call the observation partial.
            for id in ids {
                if let Some(instance) = found.get(&id) {
                    out.insert(id, Observed::Known(instance.clone()));
                }
            }
        }
        Err(err) => {
            for id in ids {
                out.insert(id, unknown(&err));
            }
        }
    }
    out
}

/// By `instance-id` filter, not InstanceIds: one stale id must not fail the
/// whole read.
async fn describe_instances(
    clients: &AwsClients,
    ids: &[String],
) -> Result<BTreeMap<String, LiveInstance>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(EC2_FILTER_VALUES) {
        let pages = clients
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            // The largest page: a chunk of 200 ids is then one call (without
            // it the page size is the service's choice).
            .max_results(1000)
            .into_paginator()
            .send();
        pages::each_page(
            &clients.budget,
            "ec2",
            "DescribeInstances",
            pages,
            DescribeInstancesOutput::next_token,
            |page| {
                for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                    let Some(id) = instance.instance_id() else {
                        continue;
                    };
                    out.insert(
                        id.to_string(),
                        LiveInstance {
                            id: id.to_string(),
                            state: instance
                                .state()
                                .and_then(|s| s.name())
                                .map(|n| n.as_str().to_string())
                                .unwrap_or_default(),
                            security_group_ids: instance
                                .security_groups()
                                .iter()
                                .filter_map(|g| g.group_id().map(str::to_string))
                                .collect(),
                        },
                    );
                }
            },
        )
        .await?;
    }
    Ok(out)
}

// ---------------------------------------------------------------- ELBv2

type ElbPart = (
    BTreeMap<String, Observed<Option<LiveTargetGroup>>>,
    BTreeMap<String, Observed<Option<LiveLoadBalancer>>>,
);

/// Target groups and their targets, then load balancers' listeners
/// alongside `after_targets`, which therefore starts only once every
/// target this pass reads has been read.
async fn observe_elb<T>(
    clients: &AwsClients,
    desired: &DesiredState,
    full: bool,
    after_targets: impl Future<Output = T>,
) -> (ElbPart, T) {
    let tg_names: Vec<String> = desired
        .target_groups
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let lb_names: Vec<String> = desired
        .load_balancers
        .iter()
        .map(|l| l.name.clone())
        .collect();
    let (tgs, lbs) = tokio::join!(
        find_target_groups(clients, &tg_names),
        describe_by_names(&lb_names, |chunk| describe_load_balancers(clients, chunk)),
    );

    // Which groups' health this pass reads, which reuse a quiet group's
    // earlier read (see `target_reads`).
    let candidates: Vec<target_reads::Candidate> = match &tgs {
        Err(_) => Vec::new(),
        Ok(found) => desired
            .target_groups
            .iter()
            .filter_map(|spec| match found.get(&spec.name) {
                Some(Ok((arn, _, _))) => Some(target_reads::Candidate {
                    name: spec.name.clone(),
                    arn: arn.clone(),
                    fingerprint: format!("{spec:?}"),
                }),
                _ => None,
            })
            .collect(),
    };
    let mut decisions = clients.target_reads.plan_pass(&candidates, full);

    let mut target_groups = BTreeMap::new();
    for name in &tg_names {
        let observed = match &tgs {
            Err(err) => unknown(err),
            Ok(found) => match found.get(name) {
                None => Observed::Known(None),
                Some(Err(err)) => unknown(err),
                Some(Ok((arn, target_type, health_check_path))) => {
                    let (targets, targets_read_passes_ago) = match decisions.remove(name) {
                        Some(Decision::Reuse {
                            targets,
                            passes_ago,
                        }) => (Observed::Known(targets), passes_ago),
                        _ => (read_target_health(clients, &candidates, name, arn).await, 0),
                    };
                    Observed::Known(Some(LiveTargetGroup {
                        arn: arn.clone(),
                        target_type: target_type.clone(),
                        health_check_path: health_check_path.clone(),
                        targets,
                        targets_read_passes_ago,
                    }))
                }
            },
        };
        target_groups.insert(name.clone(), observed);
    }

    let (load_balancers, after) = tokio::join!(
        load_balancers_with_listeners(clients, desired, lbs),
        after_targets
    );
    ((target_groups, load_balancers), after)
}

type FoundLoadBalancers = Result<BTreeMap<String, Result<LoadBalancerFacts>>>;

async fn load_balancers_with_listeners(
    clients: &AwsClients,
    desired: &DesiredState,
    lbs: FoundLoadBalancers,
) -> BTreeMap<String, Observed<Option<LiveLoadBalancer>>> {
    let mut load_balancers = BTreeMap::new();
    for spec in &desired.load_balancers {
        let observed = match &lbs {
            Err(err) => unknown(err),
            Ok(found) => match found.get(&spec.name) {
                None => Observed::Known(None),
                Some(Err(err)) => unknown(err),
                Some(Ok((arn, dns_name, groups))) => {
                    let listeners = if spec.listeners.is_empty() {
                        Observed::Known(Vec::new())
                    } else {
                        match describe_listeners(clients, arn).await {
                            Ok(list) => Observed::Known(list),
                            Err(err) => unknown(&err),
                        }
                    };
                    Observed::Known(Some(LiveLoadBalancer {
                        arn: arn.clone(),
                        dns_name: dns_name.clone(),
                        security_group_ids: groups.clone(),
                        listeners,
                    }))
                }
            },
        };
        load_balancers.insert(spec.name.clone(), observed);
    }
    load_balancers
}

/// Looks names up in batches. ELBv2 fails a whole batch when one name does
/// not exist, so a NotFound batch is retried name by name to tell which.
async fn describe_by_names<T, F, Fut>(
    names: &[String],
    describe: F,
) -> Result<BTreeMap<String, Result<T>>>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeMap<String, T>>>,
{
    let mut out = BTreeMap::new();
    for chunk in names.chunks(ELB_NAMES_PER_CALL) {
        match describe(chunk.to_vec()).await {
            Ok(found) => out.extend(found.into_iter().map(|(k, v)| (k, Ok(v)))),
            Err(err) if err.kind == ErrorKind::NotFound => {
                for name in chunk {
                    match describe(vec![name.clone()]).await {
                        Ok(found) => out.extend(found.into_iter().map(|(k, v)| (k, Ok(v)))),
                        Err(err) if err.kind == ErrorKind::NotFound => {}
                        Err(err) => {
                            out.insert(name.clone(), Err(err));
                        }
                    }
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

/// Reads one group's targets now and remembers the read for later passes.
async fn read_target_health(
    clients: &AwsClients,
    candidates: &[target_reads::Candidate],
    name: &str,
    arn: &str,
) -> Observed<Vec<LiveTarget>> {
    match target_health(clients, arn).await {
        Ok(targets) => {
            if let Some(candidate) = candidates.iter().find(|c| c.name == name) {
                clients.target_reads.record_read(candidate, &targets);
            }
            Observed::Known(targets)
        }
        Err(err) => {
            clients.target_reads.forget(name);
            unknown(&err)
        }
    }
}

/// After a pass: which groups' targets are exactly what their tasks give
/// (so a later pass may reuse the read). Decided on the complete snapshot,
/// tasks included.
fn note_settled_groups(clients: &AwsClients, desired: &DesiredState, snapshot: &Snapshot) {
    let index = targets::TaskIndex::new(snapshot);
    for spec in &desired.target_groups {
        let settled = targets::is_settled(spec, snapshot, &index);
        clients.target_reads.set_quiet(&spec.name, settled);
    }
}

type TargetGroupFacts = (String, Option<String>, Option<String>);

/// The declared target groups, by name. DescribeTargetGroups takes at most
/// 20 names per call but lists 400 groups per page, so past 20 names the
/// account's whole list is usually cheaper (3 calls instead of 50 at 1,000
/// groups). How many groups the account has is learned from the last
/// listing; an account with many more groups than are declared is looked
/// up by name again. A group absent from a complete listing is absent,
/// exactly as a NotFound by name.
async fn find_target_groups(
    clients: &AwsClients,
    names: &[String],
) -> Result<BTreeMap<String, Result<TargetGroupFacts>>> {
    let by_name = names.len().div_ceil(ELB_NAMES_PER_CALL);
    let in_account = clients.target_groups_in_account.load(Ordering::Relaxed);
    let listing = in_account.div_ceil(TARGET_GROUPS_PER_PAGE).max(1);
    if by_name <= 1 || listing >= by_name {
        return describe_by_names(names, |chunk| describe_target_groups(clients, chunk)).await;
    }
    let mut all = BTreeMap::new();
    let pages = clients
        .elbv2
        .describe_target_groups()
        .page_size(TARGET_GROUPS_PER_PAGE as i32)
        .into_paginator()
        .send();
    pages::each_page(
        &clients.budget,
        "elbv2",
        "DescribeTargetGroups",
        pages,
        DescribeTargetGroupsOutput::next_marker,
        |page| {
            all.extend(target_group_facts(page.target_groups()));
        },
    )
    .await?;
    clients
        .target_groups_in_account
        .store(all.len(), Ordering::Relaxed);
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    Ok(all
        .into_iter()
        .filter(|(name, _)| wanted.contains(name.as_str()))
        .map(|(name, facts)| (name, Ok(facts)))
        .collect())
}

async fn describe_target_groups(
    clients: &AwsClients,
    names: Vec<String>,
) -> Result<BTreeMap<String, TargetGroupFacts>> {
    clients.take("elbv2", "DescribeTargetGroups").await;
    let out = clients
        .elbv2
        .describe_target_groups()
        .set_names(Some(names))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elbv2", "DescribeTargetGroups", e))?;
    Ok(target_group_facts(out.target_groups()).collect())
}

fn target_group_facts(
    groups: &[aws_sdk_elasticloadbalancingv2::types::TargetGroup],
) -> impl Iterator<Item = (String, TargetGroupFacts)> + '_ {
    groups.iter().filter_map(|tg| {
        Some((
            tg.target_group_name()?.to_string(),
            (
                tg.target_group_arn()?.to_string(),
                tg.target_type().map(|t| t.as_str().to_string()),
                tg.health_check_path().map(str::to_string),
            ),
        ))
    })
}

async fn target_health(clients: &AwsClients, arn: &str) -> Result<Vec<LiveTarget>> {
    clients.take("elbv2", "DescribeTargetHealth").await;
    let out = clients
        .elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elbv2", "DescribeTargetHealth", e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let target = d.target()?;
            Some(LiveTarget {
                key: TargetKey {
                    id: target.id()?.to_string(),
                    port: target.port()?,
                },
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            })
        })
        .collect())
}

type LoadBalancerFacts = (String, Option<String>, Vec<String>);

async fn describe_load_balancers(
    clients: &AwsClients,
    names: Vec<String>,
) -> Result<BTreeMap<String, LoadBalancerFacts>> {
    clients.take("elbv2", "DescribeLoadBalancers").await;
    let out = clients
        .elbv2
        .describe_load_balancers()
        .set_names(Some(names))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elbv2", "DescribeLoadBalancers", e))?;
    Ok(out
        .load_balancers()
        .iter()
        .filter_map(|lb| {
            Some((
                lb.load_balancer_name()?.to_string(),
                (
                    lb.load_balancer_arn()?.to_string(),
                    lb.dns_name().map(str::to_string),
                    lb.security_groups().to_vec(),
                ),
            ))
        })
        .collect())
}

async fn describe_listeners(clients: &AwsClients, arn: &str) -> Result<Vec<LiveListener>> {
    let mut out = Vec::new();
    let pages = clients
        .elbv2
        .describe_listeners()
        .load_balancer_arn(arn)
        .into_paginator()
        .send();
    pages::each_page(
        &clients.budget,
        "elbv2",
        "DescribeListeners",
        pages,
        DescribeListenersOutput::next_marker,
        |page| {
            for listener in page.listeners() {
                if let Some(port) = listener.port() {
                    out.push(LiveListener {
                        port,
                        protocol: listener.protocol().map(|p| p.as_str().to_string()),
                    });
                }
            }
        },
    )
    .await?;
    Ok(out)
}
