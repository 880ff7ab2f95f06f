//! ECS services: desired replica count is enforced; launch type, scheduling
//! strategy and the task definition's family, container and port mapping
//! are checked and reported when they differ (never changed).

use ecs_reconciler_spec::{DesiredState, Mode, ServiceSpec, TaskDefinitionCheck};

use crate::action::{Action, Change};
use crate::snapshot::{LiveService, Observed, Snapshot};
use crate::unit::UnitId;

/// Plans every declared service.
pub fn diff(desired: &DesiredState, snapshot: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for spec in &desired.services {
        diff_service(spec, snapshot, &mut changes);
    }
    changes
}

/// `family` of `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REV`.
pub fn family_of(task_definition_arn: &str) -> &str {
    let tail = task_definition_arn
        .rsplit_once('/')
        .map_or(task_definition_arn, |(_, tail)| tail);
    tail.rsplit_once(':').map_or(tail, |(family, _)| family)
}

fn diff_service(spec: &ServiceSpec, snapshot: &Snapshot, changes: &mut Vec<Change>) {
    let unit = UnitId::service(&spec.cluster, &spec.name);
    let key = (spec.cluster.clone(), spec.name.clone());
    let live = match snapshot.services.get(&key) {
        Some(Observed::Known(Some(live))) => live,
        Some(Observed::Known(None)) => {
            changes.push(Change::report(
                "missing-resource",
                &unit,
                "absent".into(),
                "present".into(),
                format!(
                    "no service {} in cluster {} was found; ecs-reconciler does not create services",
                    spec.name, spec.cluster
                ),
            ));
            return;
        }
        _ => return,
    };
    if live.status != "ACTIVE" {
        changes.push(Change::report(
            "check-service-status",
            &unit,
            live.status.clone(),
            "ACTIVE".into(),
            format!(
                "service {} is {}; it is not scaled until it is ACTIVE again",
                spec.name, live.status
            ),
        ));
        return;
    }
    check_capacity(spec, live, snapshot, &unit, changes);
    check_field(
        "check-scheduling-strategy",
        &unit,
        "scheduling strategy",
        spec.scheduling_strategy.as_deref(),
        live.scheduling_strategy.as_deref(),
        changes,
    );
    if let Some(check) = &spec.task_definition {
        check_task_definition(check, live, snapshot, &unit, changes);
    }

    let daemon = live.scheduling_strategy.as_deref() == Some("DAEMON");
    if daemon {
        return;
    }
    let Some(wanted) = spec.replicas.correction(live.desired_count) else {
        return;
    };
    let reason = if spec.replicas.is_exact() {
        format!(
            "service {} wants {wanted} replicas but desiredCount is {} (running {})",
            spec.name, live.desired_count, live.running_count
        )
    } else {
        format!(
            "desiredCount {} of service {} is outside its range {} (inside it an autoscaler owns the count); clamped to {wanted}",
            live.desired_count, spec.name, spec.replicas
        )
    };
    changes.push(Change::fix(
        &unit,
        format!("desiredCount {}", live.desired_count),
        format!("desiredCount {wanted}"),
        reason,
        spec.mode == Mode::Enforce,
        Action::ScaleService {
            cluster: spec.cluster.clone(),
            service: spec.name.clone(),
            desired_count: wanted,
        },
    ));
}

/// Where the service's tasks get capacity: a launch type, or a capacity
/// provider strategy. A strategy satisfies `launchType: EC2` when every
/// provider is an Auto Scaling group provider (ECS then places the tasks on
/// EC2 container instances, as the launch type would), `FARGATE` when
/// every one is Fargate.
fn check_capacity(
    spec: &ServiceSpec,
    live: &LiveService,
    snapshot: &Snapshot,
    unit: &UnitId,
    changes: &mut Vec<Change>,
) {
    if let Some(wanted) = &spec.capacity_provider_strategy {
        let mut found: Vec<(&str, i32, i32)> = live
            .capacity_provider_strategy
            .iter()
            .map(|i| (i.provider.as_str(), i.weight, i.base))
            .collect();
        found.sort_unstable();
        // The file's strategy is sorted by provider when loaded.
        let expected: Vec<(&str, i32, i32)> = wanted
            .iter()
            .map(|i| (i.provider.as_str(), i.weight, i.base))
            .collect();
        if found == expected {
            return;
        }
        let before = match (&live.launch_type, found.is_empty()) {
            (Some(launch_type), true) => format!("launch type {launch_type}"),
            (None, true) => "no capacity provider strategy".to_string(),
            _ => strategy_text(&found),
        };
        let after = strategy_text(&expected);
        changes.push(Change::report(
            "check-capacity-provider-strategy",
            unit,
            before.clone(),
            after.clone(),
            format!(
                "capacity provider strategy is {before}, the file says {after}; change it with UpdateService (a new deployment)"
            ),
        ));
        return;
    }
    let Some(wanted) = spec.launch_type.as_deref() else {
        return;
    };
    if live.launch_type.is_none() && !live.capacity_provider_strategy.is_empty() {
        let mut kinds = Vec::new();
        for item in &live.capacity_provider_strategy {
            match snapshot.capacity_providers.get(&item.provider) {
                Some(Observed::Known(Some(kind))) => kinds.push((item, kind.launch_type())),
                Some(Observed::Known(None)) => kinds.push((item, None)),
                // Not read, or the read failed (listed as unknown): no verdict.
                Some(Observed::Unknown(_)) | None => return,
            }
        }
        if kinds
            .iter()
            .all(|(_, launch)| launch.is_some_and(|l| l.eq_ignore_ascii_case(wanted)))
        {
            return;
        }
        let found = kinds
            .iter()
            .map(|(item, launch)| {
                format!(
                    "{} ({})",
                    item.provider,
                    launch.map_or_else(
                        || "not EC2 or Fargate capacity".to_string(),
                        |l| format!("{l} capacity")
                    )
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        changes.push(Change::report(
            "check-launch-type",
            unit,
            format!("capacity providers {found}"),
            wanted.to_string(),
            format!(
                "the service runs on capacity providers {found}, the file says launch type {wanted}; changing it needs a new deployment"
            ),
        ));
        return;
    }
    check_field(
        "check-launch-type",
        unit,
        "launch type",
        Some(wanted),
        live.launch_type.as_deref(),
        changes,
    );
}

/// A strategy as the plan shows it: `name (weight W, base B), ...`.
fn strategy_text(items: &[(&str, i32, i32)]) -> String {
    items
        .iter()
        .map(|(provider, weight, base)| format!("{provider} (weight {weight}, base {base})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_field(
    kind: &str,
    unit: &UnitId,
    what: &str,
    wanted: Option<&str>,
    live: Option<&str>,
    changes: &mut Vec<Change>,
) {
    let Some(wanted) = wanted else { return };
    if live.is_some_and(|live| live.eq_ignore_ascii_case(wanted)) {
        return;
    }
    let live = live.unwrap_or("unset");
    changes.push(Change::report(
        kind,
        unit,
        live.to_string(),
        wanted.to_string(),
        format!("{what} is {live}, the file says {wanted}; changing it needs a new service"),
    ));
}

fn check_task_definition(
    check: &TaskDefinitionCheck,
    live: &LiveService,
    snapshot: &Snapshot,
    unit: &UnitId,
    changes: &mut Vec<Change>,
) {
    let Some(arn) = &live.task_definition_arn else {
        return;
    };
    let family = family_of(arn);
    if family != check.family {
        changes.push(Change::report(
            "check-task-definition",
            unit,
            family.to_string(),
            check.family.clone(),
            format!(
                "the service runs task definition family {family}, the file says {}",
                check.family
            ),
        ));
        return;
    }
    let Some(Observed::Known(definition)) = snapshot.task_definitions.get(arn) else {
        return;
    };
    let Some(container) = &check.container_name else {
        return;
    };
    let Some(mappings) = definition.containers.get(container) else {
        changes.push(Change::report(
            "check-task-definition",
            unit,
            format!("containers {}", join_keys(&definition.containers)),
            format!("container {container}"),
            format!("task definition {family} has no container named {container}"),
        ));
        return;
    };
    let Some(port) = check.container_port else {
        return;
    };
    let Some(mapping) = mappings
        .iter()
        .find(|m| m.container_port == Some(i32::from(port)))
    else {
        changes.push(Change::report(
            "check-task-definition",
            unit,
            "no mapping".into(),
            format!("container port {port}"),
            format!("container {container} of {family} does not map container port {port}"),
        ));
        return;
    };
    if let Some(host) = check.host_port {
        // An absent host port means 0 (dynamic) in bridge mode.
        let live_host = mapping.host_port.unwrap_or(0);
        if live_host != i32::from(host) {
            changes.push(Change::report(
                "check-task-definition",
                unit,
                format!("host port {live_host}"),
                format!("host port {host}"),
                format!(
                    "container {container} maps {port} to host port {live_host}, the file says {host}{}",
                    if host == 0 { " (dynamic)" } else { "" }
                ),
            ));
        }
    }
}

fn join_keys<V>(map: &std::collections::BTreeMap<String, V>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::family_of;

    #[test]
    fn family_is_read_from_arns_and_plain_names() {
        assert_eq!(
            family_of("arn:aws:ecs:us-east-1:123456789012:task-definition/nestjs-api:7"),
            "nestjs-api"
        );
        assert_eq!(family_of("nestjs-api:7"), "nestjs-api");
        assert_eq!(family_of("nestjs-api"), "nestjs-api");
    }
}
