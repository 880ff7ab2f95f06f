//! Clusters (names, instance security groups) and services (names,
//! clusters, replica counts and ranges, the task definition to check).

use std::collections::HashMap;

use super::{Ctx, GroupRef, group_list, resolved_mode};
use crate::file as f;
use crate::model::{
    CapacityProviderCheck, ClusterSpec, Mode, ReplicaBounds, ServiceSpec, TaskDefinitionCheck,
};

/// The most tasks a service may ask for: far above any sane value, low
/// enough to catch a typo (or a unit mix-up) before it reaches ECS.
const MAX_REPLICAS: i64 = 10_000;

pub(super) fn clusters(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    refs: &mut Vec<GroupRef>,
) -> Vec<ClusterSpec> {
    let mut first_by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, c) in file.clusters.iter().enumerate() {
        let p = format!("clusters[{i}]");
        let name_path = format!("{p}.name");
        if ctx.ok(&name_path) {
            ctx.non_empty(&name_path, &c.name, "a cluster name");
            if let Some(first) = first_by_name.get(c.name.as_str()) {
                ctx.error(
                    &name_path,
                    format!("cluster `{}` is declared twice", c.name),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_name.insert(&c.name, name_path.clone());
            }
        }
        group_list(
            ctx,
            &c.instance_security_groups,
            &format!("{p}.instanceSecurityGroups"),
            "`instanceSecurityGroups`",
            refs,
        );
        out.push(ClusterSpec {
            name: c.name.clone(),
            instance_security_groups: c.instance_security_groups.clone(),
            mode: resolved_mode(c.mode, c.paused, global),
        });
    }
    out
}

pub(super) fn services(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
) -> Vec<ServiceSpec> {
    let mut first_by_key: HashMap<(&str, &str), String> = HashMap::new();
    let mut out = Vec::new();
    for (i, s) in file.services.iter().enumerate() {
        let p = format!("services[{i}]");
        let name_path = format!("{p}.name");
        let cluster_path = format!("{p}.cluster");
        if ctx.ok(&name_path) {
            ctx.non_empty(&name_path, &s.name, "a service name");
        }
        if ctx.ok(&cluster_path) {
            ctx.non_empty(&cluster_path, &s.cluster, "a cluster name");
        }
        if ctx.ok(&name_path) && ctx.ok(&cluster_path) {
            if let Some(first) = first_by_key.get(&(s.cluster.as_str(), s.name.as_str())) {
                ctx.error(
                    &name_path,
                    format!(
                        "service `{}` in cluster `{}` is declared twice",
                        s.name, s.cluster
                    ),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_key.insert((&s.cluster, &s.name), name_path.clone());
            }
        }
        let replicas_path = format!("{p}.replicas");
        // `None` when the value is out of range or failed to decode (already
        // reported): no check may build on it.
        let count = |ctx: &mut Ctx, path: &str, value: f::Int, what: &str| {
            ctx.in_range(path, value, 0, MAX_REPLICAS, what)
                .then(|| u32::try_from(value.0).unwrap_or(0))
        };
        let replicas = match &s.replicas {
            f::Replicas::Exact(n) => {
                ReplicaBounds::exact(count(ctx, &replicas_path, *n, "replicas").unwrap_or(0))
            }
            f::Replicas::Range(range) => {
                let min = count(
                    ctx,
                    &format!("{replicas_path}.min"),
                    range.min,
                    "replicas.min",
                );
                let max = count(
                    ctx,
                    &format!("{replicas_path}.max"),
                    range.max,
                    "replicas.max",
                );
                if let (Some(min), Some(max)) = (min, max)
                    && min > max
                {
                    ctx.error(
                        &format!("{replicas_path}.max"),
                        format!("replicas.max {max} is less than replicas.min {min}"),
                        "write the range low to high, e.g. `{min: 2, max: 10}`",
                    );
                }
                let min = min.unwrap_or(0);
                ReplicaBounds {
                    min,
                    max: max.unwrap_or(min).max(min),
                }
            }
        };
        let task_definition = s.task_definition.as_ref().map(|t| {
            let tp = format!("{p}.taskDefinition");
            let family_path = format!("{tp}.family");
            if ctx.ok(&family_path) {
                ctx.non_empty(&family_path, &t.family, "a task definition family");
            }
            if let Some(name) = &t.container_name {
                let path = format!("{tp}.containerName");
                if ctx.ok(&path) {
                    ctx.non_empty(&path, name, "a container name");
                }
            }
            let port = |ctx: &mut Ctx, value: Option<f::Int>, key: &str, min: i64| {
                let value = value?;
                let ok = ctx.in_range(&format!("{tp}.{key}"), value, min, 65535, key);
                ok.then(|| u16::try_from(value.0).unwrap_or(0))
            };
            TaskDefinitionCheck {
                family: t.family.clone(),
                container_name: t.container_name.clone(),
                container_port: port(ctx, t.container_port, "containerPort", 1),
                host_port: port(ctx, t.host_port, "hostPort", 0),
            }
        });
        let capacity_provider_strategy = s
            .capacity_provider_strategy
            .as_ref()
            .map(|items| capacity_providers(ctx, &p, s.launch_type.is_some(), items));
        out.push(ServiceSpec {
            name: s.name.clone(),
            cluster: s.cluster.clone(),
            replicas,
            capacity_provider_strategy,
            launch_type: s.launch_type.map(|l| {
                match l {
                    f::LaunchType::Ec2 => "EC2",
                    f::LaunchType::Fargate => "FARGATE",
                    f::LaunchType::External => "EXTERNAL",
                }
                .to_owned()
            }),
            scheduling_strategy: s.scheduling_strategy.map(|l| {
                match l {
                    f::SchedulingStrategy::Replica => "REPLICA",
                    f::SchedulingStrategy::Daemon => "DAEMON",
                }
                .to_owned()
            }),
            task_definition,
            mode: resolved_mode(s.mode, s.paused, global),
        });
    }
    out
}

/// A service's expected capacity provider strategy: names non-empty and
/// unique, weight 0-1000, base 0-100000 (ECS's limits), not beside a
/// `launchType` (ECS takes one or the other). Sorted by provider.
fn capacity_providers(
    ctx: &mut Ctx,
    service_path: &str,
    has_launch_type: bool,
    items: &[f::CapacityProviderItem],
) -> Vec<CapacityProviderCheck> {
    let path = format!("{service_path}.capacityProviderStrategy");
    if has_launch_type && ctx.ok(&path) {
        ctx.error(
            &path,
            "a service has a launch type or a capacity provider strategy, not both",
            "remove `launchType` (a strategy of Auto Scaling group providers satisfies `launchType: EC2` by itself) or remove this strategy",
        );
    }
    if items.is_empty() && ctx.ok(&path) {
        ctx.error(
            &path,
            "the capacity provider strategy is empty",
            "name at least one provider, e.g. `- capacityProvider: my-asg-provider`, or remove the key",
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name_path = format!("{p}.capacityProvider");
        if ctx.ok(&name_path) {
            ctx.non_empty(
                &name_path,
                &item.capacity_provider,
                "a capacity provider name",
            );
            if let Some(first) = seen.get(item.capacity_provider.as_str()) {
                ctx.error(
                    &name_path,
                    format!(
                        "capacity provider `{}` is named twice in the strategy",
                        item.capacity_provider
                    ),
                    format!("keep one entry (the first is {path}[{first}])"),
                );
            } else {
                seen.insert(&item.capacity_provider, i);
            }
        }
        let mut number = |value: Option<f::Int>, key: &str, max: i64| -> i32 {
            value.map_or(0, |v| {
                if ctx.in_range(&format!("{p}.{key}"), v, 0, max, key) {
                    i32::try_from(v.0).unwrap_or(0)
                } else {
                    0
                }
            })
        };
        let weight = number(item.weight, "weight", 1000);
        let base = number(item.base, "base", 100_000);
        out.push(CapacityProviderCheck {
            provider: item.capacity_provider.clone(),
            weight,
            base,
        });
    }
    out.sort();
    out
}
