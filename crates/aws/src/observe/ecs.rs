//! ECS reads: services, the task definitions they run, each cluster's
//! container instances and the tasks of the services a target group
//! follows. Tasks and container instances are listed in full every pass and
//! described only when new (see [`crate::memory::described`]); a listed item
//! that cannot be described makes the whole list unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ecs::operation::list_container_instances::ListContainerInstancesOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::{DesiredStatus, TaskDefinition};
use ecs_reconciler_plan::{
    CapacityProviderKind, LiveBinding, LiveCapacityProviderItem, LiveCluster,
    LiveContainerInstance, LiveDeployment, LivePortMapping, LiveService, LiveTargetGroup, LiveTask,
    LiveTaskDefinition, LiveTaskSet, Observed,
};
use ecs_reconciler_spec::DesiredState;

use super::{Result, unknown};
use crate::Aws;
use crate::error::{AwsError, ErrorKind};
use crate::pages;
use crate::service_events::DropServiceEvents;

/// DescribeServices takes at most 10 services per call.
const SERVICES_PER_CALL: usize = 10;
/// DescribeTasks / DescribeContainerInstances take at most 100 per call.
const ECS_DESCRIBE_PER_CALL: usize = 100;

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

/// What ECS says about the declared services, per cluster.
pub(super) struct EcsObservation {
    pub services: BTreeMap<(String, String), Observed<Option<LiveService>>>,
    /// By revision ARN: only those of services whose file entry checks a
    /// container.
    pub task_definitions: BTreeMap<String, Observed<LiveTaskDefinition>>,
    /// By cluster.
    pub container_instances: BTreeMap<String, Observed<Vec<LiveContainerInstance>>>,
    /// The capacity providers the services' strategies name.
    pub capacity_providers: BTreeMap<String, Observed<Option<CapacityProviderKind>>>,
}

/// Services, task definitions and container instances, per cluster.
pub(super) async fn observe_ecs(aws: &Aws, desired: &DesiredState, full: bool) -> EcsObservation {
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
            tokio::join!(describe_services(aws, &cluster, &names), async {
                if !needed {
                    Observed::Known(Vec::new())
                } else {
                    match container_instances(aws, &cluster).await {
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
    let (task_definitions, capacity_providers) = tokio::join!(
        task_definitions(aws, desired, &services, full),
        capacity_providers(aws, &services)
    );
    EcsObservation {
        services,
        task_definitions,
        container_instances: instances,
        capacity_providers,
    }
}

/// The task definitions the services run, only where the file asks to
/// check a container; each revision is described once (see
/// [`crate::memory::TaskDefinitions`]).
async fn task_definitions(
    aws: &Aws,
    desired: &DesiredState,
    services: &BTreeMap<(String, String), Observed<Option<LiveService>>>,
    full: bool,
) -> BTreeMap<String, Observed<LiveTaskDefinition>> {
    let remembered = &aws.memory.task_definitions;
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
        let observed = match remembered.get(arn) {
            Some(def) => Observed::Known(def),
            None => match describe_task_definition(aws, arn).await {
                Ok(def) => {
                    remembered.insert(arn, def.clone());
                    Observed::Known(def)
                }
                Err(err) => unknown(&err),
            },
        };
        task_definitions.insert(arn.clone(), observed);
    }
    // Revisions no declared service runs any more are forgotten, so the
    // memory holds at most one entry per service. A partial pass sees only
    // some services, so it forgets nothing.
    if full {
        remembered.keep_only(|arn| task_definitions.contains_key(arn));
    }
    task_definitions
}

/// The running tasks of the services a target group follows, per cluster;
/// listed after the targets (see [`super::observe_with`]).
pub(super) async fn list_running_tasks(
    aws: &Aws,
    desired: &DesiredState,
) -> BTreeMap<String, Observed<Vec<LiveTask>>> {
    let mut running = BTreeMap::new();
    for cluster in desired.cluster_names() {
        let bound = bound_services(desired, &cluster);
        let tasks = if bound.is_empty() {
            Observed::Known(Vec::new())
        } else {
            match list_tasks(aws, &cluster, &bound, DesiredStatus::Running).await {
                Ok(tasks) => Observed::Known(tasks),
                Err(err) => unknown(&err),
            }
        };
        running.insert(cluster, tasks);
    }
    running
}

/// Each cluster's running tasks beside its container instances.
pub(super) fn clusters(
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

/// Reads the tasks being stopped, but only for clusters where a target
/// matches no running task. In the steady state every target is a running
/// task, so this costs nothing; when one is not, it may belong to a task ECS
/// is stopping (its target drains), which the plan must leave alone rather
/// than call stale. Runs after the targets were read, like the first task
/// read.
pub(super) async fn add_stopping_tasks(
    aws: &Aws,
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
        match list_tasks(aws, name, &bound, DesiredStatus::Stopped).await {
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

async fn describe_services(
    aws: &Aws,
    cluster: &str,
    names: &[String],
) -> Result<BTreeMap<String, LiveService>> {
    let mut found = BTreeMap::new();
    each_service(aws, cluster, names, |name, service| {
        found.insert(name.to_string(), live_service(service));
    })
    .await?;
    Ok(found)
}

/// Calls `each` with every ACTIVE or DRAINING service of `names` that
/// exists (DescribeServices, 10 a call, events left out); a name that does
/// not exist is simply not passed, any other per-item failure is an error.
pub(crate) async fn each_service(
    aws: &Aws,
    cluster: &str,
    names: &[String],
    mut each: impl FnMut(&str, &aws_sdk_ecs::types::Service),
) -> Result<()> {
    for chunk in names.chunks(SERVICES_PER_CALL) {
        aws.take("ecs", "DescribeServices").await;
        let out = aws
            .sdk
            .ecs
            .describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .customize()
            .interceptor(DropServiceEvents)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeServices", &e))?;
        missing_is_an_answer("DescribeServices", out.failures())?;
        for service in out.services() {
            let Some(name) = service.service_name() else {
                continue;
            };
            // An INACTIVE service is a deleted one.
            if service.status() == Some("INACTIVE") {
                continue;
            }
            each(name, service);
        }
    }
    Ok(())
}

/// The parts of a described service the plan uses.
pub(crate) fn live_service(service: &aws_sdk_ecs::types::Service) -> LiveService {
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
        deployment_controller: service
            .deployment_controller()
            .map(|c| c.r#type().as_str().to_string()),
        deployment_strategy: service
            .deployment_configuration()
            .and_then(|c| c.strategy())
            .map(|s| s.as_str().to_string()),
        deployments: service
            .deployments()
            .iter()
            .map(|d| LiveDeployment {
                id: d.id().unwrap_or_default().to_string(),
                status: d.status().unwrap_or_default().to_string(),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
            })
            .collect(),
        task_sets: service
            .task_sets()
            .iter()
            .map(|t| LiveTaskSet {
                id: t.id().unwrap_or_default().to_string(),
                status: t.status().unwrap_or_default().to_string(),
                stability_status: t.stability_status().map(|s| s.as_str().to_string()),
            })
            .collect(),
        capacity_provider_strategy: service
            .capacity_provider_strategy()
            .iter()
            .map(|i| LiveCapacityProviderItem {
                provider: i.capacity_provider().to_string(),
                weight: i.weight(),
                base: i.base(),
            })
            .collect(),
    }
}

/// DescribeCapacityProviders returns at most 10 per page.
const CAPACITY_PROVIDERS_PER_CALL: usize = 10;

/// The kinds of the capacity providers the services' strategies name.
/// `FARGATE` and `FARGATE_SPOT` are names AWS reserves for Fargate, so
/// they cost no call; the others are described fresh in every pass that
/// needs them (one call per 10, only for services on a strategy).
pub(super) async fn capacity_providers(
    aws: &Aws,
    services: &BTreeMap<(String, String), Observed<Option<LiveService>>>,
) -> BTreeMap<String, Observed<Option<CapacityProviderKind>>> {
    let names: BTreeSet<String> = services
        .values()
        .filter_map(|s| s.known()?.as_ref())
        .filter(|s| s.launch_type.is_none())
        .flat_map(|s| {
            s.capacity_provider_strategy
                .iter()
                .map(|i| i.provider.clone())
        })
        .collect();
    let mut out = BTreeMap::new();
    let mut to_describe = Vec::new();
    for name in names {
        if name == "FARGATE" || name == "FARGATE_SPOT" {
            out.insert(name, Observed::Known(Some(CapacityProviderKind::Fargate)));
        } else {
            to_describe.push(name);
        }
    }
    for chunk in to_describe.chunks(CAPACITY_PROVIDERS_PER_CALL) {
        match describe_capacity_providers(aws, chunk).await {
            Ok(found) => {
                for name in chunk {
                    out.insert(name.clone(), Observed::Known(found.get(name).cloned()));
                }
            }
            Err(err) => {
                for name in chunk {
                    out.insert(name.clone(), unknown(&err));
                }
            }
        }
    }
    out
}

async fn describe_capacity_providers(
    aws: &Aws,
    names: &[String],
) -> Result<BTreeMap<String, CapacityProviderKind>> {
    use aws_sdk_ecs::types::CapacityProviderType;
    let mut found = BTreeMap::new();
    let mut next_token = None;
    loop {
        aws.take("ecs", "DescribeCapacityProviders").await;
        let out = aws
            .sdk
            .ecs
            .describe_capacity_providers()
            .set_capacity_providers(Some(names.to_vec()))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeCapacityProviders", &e))?;
        missing_is_an_answer("DescribeCapacityProviders", out.failures())?;
        for provider in out.capacity_providers() {
            let Some(name) = provider.name() else {
                continue;
            };
            // A deleted provider (INACTIVE) gives no capacity.
            if provider.status().is_some_and(|s| s.as_str() == "INACTIVE") {
                continue;
            }
            let kind = match provider.r#type() {
                Some(CapacityProviderType::Ec2Autoscaling) => {
                    CapacityProviderKind::AutoScalingGroup
                }
                Some(CapacityProviderType::Fargate | CapacityProviderType::FargateSpot) => {
                    CapacityProviderKind::Fargate
                }
                Some(CapacityProviderType::ManagedInstances) => {
                    CapacityProviderKind::ManagedInstances
                }
                // Older answers carry no type: the provider's own block says.
                _ if provider.auto_scaling_group_provider().is_some() => {
                    CapacityProviderKind::AutoScalingGroup
                }
                _ if provider.managed_instances_provider().is_some() => {
                    CapacityProviderKind::ManagedInstances
                }
                _ => CapacityProviderKind::Other,
            };
            found.insert(name.to_string(), kind);
        }
        next_token = out.next_token().map(str::to_string);
        if next_token.is_none() {
            return Ok(found);
        }
    }
}

/// Tasks of the given services with a desired status (RUNNING: those
/// meant to run, starting ones included; STOPPED: those being stopped,
/// whose targets ECS is still draining, and recently stopped ones), every
/// page.
async fn list_tasks(
    aws: &Aws,
    cluster: &str,
    services: &BTreeSet<String>,
    status: DesiredStatus,
) -> Result<Vec<LiveTask>> {
    let arns = list_task_arns(aws, cluster, None, status.clone()).await?;
    // Only the list of tasks meant to run is served from memory: a task
    // leaves it the moment ECS decides to stop it.
    let cached = status == DesiredStatus::Running;
    let served = if cached {
        aws.memory.tasks.served(cluster, &arns)
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
    for task in &describe_tasks(aws, cluster, &missing).await? {
        let task = live_task(task);
        described.insert(task.arn.clone(), task);
    }
    if cached {
        aws.memory.tasks.add(
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
        started_by: task.started_by().map(str::to_string),
    }
}

/// Task ARNs of a cluster (optionally one service's) with a desired
/// status, every page.
pub(crate) async fn list_task_arns(
    aws: &Aws,
    cluster: &str,
    service: Option<&str>,
    status: DesiredStatus,
) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let pages = aws
        .sdk
        .ecs
        .list_tasks()
        .cluster(cluster)
        .set_service_name(service.map(str::to_string))
        .desired_status(status)
        .set_max_results(aws.page_size.map(|n| n.clamp(1, 100)))
        .into_paginator()
        .send();
    pages::each_page(
        &aws.budget,
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

/// Per-item failures of a describe by name: `MISSING` means "no such
/// item" and is an answer; any other reason makes the read incomplete.
fn missing_is_an_answer(
    operation: &'static str,
    failures: &[aws_sdk_ecs::types::Failure],
) -> Result<()> {
    match failures.iter().find(|f| f.reason() != Some("MISSING")) {
        None => Ok(()),
        Some(failure) => Err(AwsError {
            service: "ecs",
            operation,
            kind: ErrorKind::Transient,
            code: failure.reason().map(str::to_string),
            message: failure.detail().unwrap_or_default().to_string(),
            request_id: None,
        }),
    }
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
    aws: &Aws,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<aws_sdk_ecs::types::Task>> {
    let mut tasks = Vec::new();
    for chunk in arns.chunks(ECS_DESCRIBE_PER_CALL) {
        aws.take("ecs", "DescribeTasks").await;
        let out = aws
            .sdk
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeTasks", &e))?;
        // A listed task that cannot be described is not "no task": its
        // target would look stale. The whole read is unknown instead.
        failures_are_unknown("DescribeTasks", out.failures())?;
        tasks.extend(out.tasks().iter().cloned());
    }
    Ok(tasks)
}

pub(crate) async fn container_instances(
    aws: &Aws,
    cluster: &str,
) -> Result<Vec<LiveContainerInstance>> {
    let mut arns = Vec::new();
    let pages = aws
        .sdk
        .ecs
        .list_container_instances()
        .cluster(cluster)
        .set_max_results(aws.page_size.map(|n| n.clamp(1, 100)))
        .into_paginator()
        .send();
    pages::each_page(
        &aws.budget,
        "ecs",
        "ListContainerInstances",
        pages,
        ListContainerInstancesOutput::next_token,
        |page| {
            arns.extend(page.container_instance_arns().iter().cloned());
        },
    )
    .await?;
    // Described once per ARN (see `crate::memory::described`); new ones
    // in batches.
    let served = aws.memory.container_instances.served(cluster, &arns);
    let missing: Vec<String> = arns
        .iter()
        .zip(&served)
        .filter(|(_, kept)| kept.is_none())
        .map(|(arn, _)| arn.clone())
        .collect();
    let mut known: HashMap<String, LiveContainerInstance> = HashMap::new();
    for chunk in missing.chunks(ECS_DESCRIBE_PER_CALL) {
        aws.take("ecs", "DescribeContainerInstances").await;
        let described = aws
            .sdk
            .ecs
            .describe_container_instances()
            .cluster(cluster)
            .set_container_instances(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "DescribeContainerInstances", &e))?;
        failures_are_unknown("DescribeContainerInstances", described.failures())?;
        for ci in described.container_instances() {
            let instance = LiveContainerInstance {
                arn: ci.container_instance_arn().unwrap_or_default().to_string(),
                ec2_instance_id: ci.ec2_instance_id().map(str::to_string),
            };
            known.insert(instance.arn.clone(), instance);
        }
    }
    aws.memory.container_instances.add(
        cluster,
        known.iter().filter(|(_, ci)| ci.ec2_instance_id.is_some()),
    );
    Ok(arns
        .iter()
        .zip(served)
        .filter_map(|(arn, kept)| kept.or_else(|| known.remove(arn)))
        .collect())
}

pub(crate) async fn describe_task_definition(aws: &Aws, arn: &str) -> Result<LiveTaskDefinition> {
    aws.take("ecs", "DescribeTaskDefinition").await;
    let out = aws
        .sdk
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ecs", "DescribeTaskDefinition", &e))?;
    let def = out.task_definition();
    let containers = def
        .map(TaskDefinition::container_definitions)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{Reply, Script, Seen, aws_serving};

    /// A service whose tasks a target group follows.
    const BOUND: &str = "
version: 1
services:
  - name: api
    cluster: main
    replicas: 2
targetGroups:
  - name: api-tg
    service: api
    cluster: main
    containerName: web
    containerPort: 80
";

    /// A service whose task definition's container is checked.
    const CHECKED: &str = "
version: 1
services:
  - name: api
    cluster: main
    replicas: 2
    taskDefinition:
      family: api
      containerName: web
      containerPort: 80
";

    fn task(arn: &str) -> String {
        format!(
            r#"{{"taskArn":"{arn}","group":"service:api","lastStatus":"RUNNING","desiredStatus":"RUNNING","containerInstanceArn":"ci-1","containers":[{{"name":"web","networkBindings":[{{"containerPort":80,"hostPort":32768,"protocol":"tcp"}}]}}]}}"#
        )
    }

    /// The running tasks of cluster `main` for [`BOUND`], read `passes`
    /// times, and what the ECS server saw.
    async fn running(ecs: Script, passes: usize) -> (Observed<Vec<LiveTask>>, Seen) {
        let desired = ecs_reconciler_spec::load(BOUND).expect("valid file");
        let (aws, servers) = aws_serving(ecs, Script::default(), Script::default()).await;
        let mut tasks = Observed::Known(Vec::new());
        for _ in 0..passes {
            let mut running = list_running_tasks(&aws, &desired).await;
            tasks = running.remove("main").expect("the cluster is observed");
        }
        (tasks, servers.ecs)
    }

    #[tokio::test]
    async fn running_tasks_are_described_once_while_they_are_listed() {
        let (tasks, ecs) = running(
            Script::default()
                .on("ListTasks", [Reply::json(r#"{"taskArns":["t-1"]}"#)])
                .on(
                    "DescribeTasks",
                    [Reply::json(format!(r#"{{"tasks":[{}]}}"#, task("t-1")))],
                ),
            2,
        )
        .await;
        let tasks = tasks.known().expect("known");
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].service.as_deref(), Some("api"));
        assert_eq!(tasks[0].bindings[0].host_port, 32768);
        assert_eq!(ecs.count("ListTasks"), 2, "listed every pass");
        assert_eq!(ecs.count("DescribeTasks"), 1, "described once");
    }

    #[tokio::test]
    async fn a_task_that_cannot_be_described_makes_the_tasks_unknown_not_fewer() {
        let (tasks, ecs) = running(
            Script::default()
                .on("ListTasks", [Reply::json(r#"{"taskArns":["t-1","t-2"]}"#)])
                .on(
                    "DescribeTasks",
                    [Reply::json(format!(
                        r#"{{"tasks":[{}],"failures":[{{"arn":"t-2","reason":"MISSING"}}]}}"#,
                        task("t-1")
                    ))],
                ),
            1,
        )
        .await;
        let why = tasks
            .unknown_reason()
            .expect("unknown, not a list without t-2");
        assert!(
            why.message.contains("DescribeTasks") && why.message.contains("t-2"),
            "{why}"
        );
        assert_eq!(ecs.count("DescribeTasks"), 1);
    }

    #[tokio::test]
    async fn a_failed_second_list_tasks_page_makes_the_tasks_unknown_not_fewer() {
        let (tasks, ecs) = running(
            Script::default().on(
                "ListTasks",
                [
                    Reply::json(r#"{"taskArns":["t-1"],"nextToken":"page-2"}"#),
                    Reply::ecs_error(500, "ServerException", "internal error"),
                ],
            ),
            1,
        )
        .await;
        let why = tasks
            .unknown_reason()
            .expect("unknown, not the first page's tasks");
        assert!(
            why.message.contains("ListTasks") && why.message.contains("ServerException"),
            "{why}"
        );
        assert!(
            ecs.bodies("ListTasks")[1].contains("page-2"),
            "the second page was asked for"
        );
        assert_eq!(
            ecs.count("DescribeTasks"),
            0,
            "nothing described from half a list"
        );
    }

    #[tokio::test]
    async fn a_task_definition_is_read_once_per_revision_and_forgotten_when_unused() {
        let service = |revision: &str| {
            Reply::json(format!(
                r#"{{"services":[{{"serviceName":"api","serviceArn":"arn:service/api","status":"ACTIVE","desiredCount":2,"runningCount":2,"pendingCount":0,"taskDefinition":"{revision}"}}],"failures":[]}}"#
            ))
        };
        let definition = |revision: &str| {
            Reply::json(format!(
                r#"{{"taskDefinition":{{"taskDefinitionArn":"{revision}","family":"api","containerDefinitions":[{{"name":"web","portMappings":[{{"containerPort":80,"hostPort":0}}]}}]}}}}"#
            ))
        };
        let desired = ecs_reconciler_spec::load(CHECKED).expect("valid file");
        let (aws, servers) = aws_serving(
            Script::default()
                .on(
                    "DescribeServices",
                    [service("api:1"), service("api:1"), service("api:2")],
                )
                .on(
                    "DescribeTaskDefinition",
                    [definition("api:1"), definition("api:2")],
                ),
            Script::default(),
            Script::default(),
        )
        .await;

        for _ in 0..2 {
            let ecs = observe_ecs(&aws, &desired, true).await;
            let def = ecs.task_definitions["api:1"].known().expect("known");
            assert_eq!(def.containers["web"][0].container_port, Some(80));
        }
        assert_eq!(
            servers.ecs.count("DescribeTaskDefinition"),
            1,
            "a revision never changes"
        );
        assert_eq!(
            servers.ecs.count("ListContainerInstances"),
            0,
            "no target needs them"
        );

        // The service moves to a new revision: read, and the old one forgotten.
        let ecs = observe_ecs(&aws, &desired, true).await;
        assert!(ecs.task_definitions["api:2"].known().is_some());
        assert_eq!(servers.ecs.count("DescribeTaskDefinition"), 2);
        assert_eq!(aws.memory.task_definitions.get("api:1"), None);
        assert!(aws.memory.task_definitions.get("api:2").is_some());
    }
}
