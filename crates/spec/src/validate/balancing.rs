//! Elastic Load Balancing: target groups (names, health check path, the
//! service they bind and its cluster, container port) and load balancers
//! (names, security groups, listeners), and the naming rule both share.

use std::collections::HashMap;

use super::{Ctx, GroupRef, group_list, resolved_mode};
use crate::diag::{list_names, nearest};
use crate::file as f;
use crate::model::{
    ListenerCheck, LoadBalancerSpec, Mode, ServiceSpec, TargetGroupSpec, TargetMembership,
};

/// Why `name` is not a valid Elastic Load Balancing name (target groups
/// and load balancers share the rule), if it is not.
fn elb_name_problem(name: &str) -> Option<String> {
    let length = name.chars().count();
    if length == 0 {
        Some("it is empty".to_owned())
    } else if length > 32 {
        Some(format!("it is {length} characters long; the limit is 32"))
    } else if let Some(bad) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
    {
        Some(format!(
            "it contains {bad:?}; only letters, digits and hyphens are allowed"
        ))
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it starts or ends with a hyphen".to_owned())
    } else {
        None
    }
}

fn check_elb_name(ctx: &mut Ctx, path: &str, name: &str, what: &str) {
    if !ctx.ok(path) {
        return;
    }
    if let Some(problem) = elb_name_problem(name) {
        ctx.error(
            path,
            format!("invalid {what} name {name:?}: {problem}"),
            "Elastic Load Balancing names are 1-32 letters, digits and hyphens, not starting or ending with a hyphen",
        );
    } else if what == "load balancer" && name.starts_with("internal-") {
        ctx.error(
            path,
            format!("invalid load balancer name {name:?}: names may not start with `internal-`"),
            "choose a name without the `internal-` prefix",
        );
    }
}

pub(super) fn target_groups(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    services: &[ServiceSpec],
) -> Vec<TargetGroupSpec> {
    // A binding can only be called undeclared when every service's name and
    // cluster could be read.
    let services_known = (0..file.services.len()).all(|i| {
        ctx.ok(&format!("services[{i}].name")) && ctx.ok(&format!("services[{i}].cluster"))
    });
    let mut first_by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, t) in file.target_groups.iter().enumerate() {
        let p = format!("targetGroups[{i}]");
        let name_path = format!("{p}.name");
        check_elb_name(ctx, &name_path, &t.name, "target group");
        if ctx.ok(&name_path) {
            if let Some(first) = first_by_name.get(t.name.as_str()) {
                ctx.error(
                    &name_path,
                    format!("target group `{}` is declared twice", t.name),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_name.insert(&t.name, name_path.clone());
            }
        }
        if let Some(path) = &t.health_check_path {
            let hp = format!("{p}.healthCheckPath");
            if ctx.ok(&hp) && !path.starts_with('/') {
                ctx.error(
                    &hp,
                    format!("health check path {path:?} must start with `/`"),
                    format!("write `healthCheckPath: /{}`", path.trim_start_matches('/')),
                );
            } else if ctx.ok(&hp) && path.chars().count() > 1024 {
                ctx.error(
                    &hp,
                    "health check path is longer than 1024 characters",
                    "shorten the path",
                );
            }
        }
        let cluster = bind_service(ctx, t, &p, services, services_known);
        let cn_path = format!("{p}.containerName");
        if ctx.ok(&cn_path) {
            ctx.non_empty(&cn_path, &t.container_name, "a container name");
        }
        let container_port = if ctx.in_range(
            &format!("{p}.containerPort"),
            t.container_port,
            1,
            65535,
            "containerPort",
        ) {
            u16::try_from(t.container_port.0).unwrap_or(0)
        } else {
            0
        };
        out.push(TargetGroupSpec {
            name: t.name.clone(),
            health_check_path: t.health_check_path.clone(),
            cluster,
            service: t.service.clone(),
            container_name: t.container_name.clone(),
            container_port,
            membership: match t.membership {
                Some(f::Membership::Shared) => TargetMembership::Shared,
                Some(f::Membership::Exclusive) | None => TargetMembership::Exclusive,
            },
            mode: resolved_mode(t.mode, t.paused, global),
        });
    }
    out
}

/// The cluster of the service a target group binds, checking the binding.
fn bind_service(
    ctx: &mut Ctx,
    t: &f::TargetGroup,
    p: &str,
    services: &[ServiceSpec],
    services_known: bool,
) -> String {
    let service_path = format!("{p}.service");
    let cluster_path = format!("{p}.cluster");
    if !ctx.ok(&service_path) || !ctx.ok(&cluster_path) {
        return t.cluster.clone().unwrap_or_default();
    }
    let same_name: Vec<&ServiceSpec> = services.iter().filter(|s| s.name == t.service).collect();
    let clusters_of_same_name = || list_names(same_name.iter().map(|s| s.cluster.as_str()));
    let undeclared_hint = || {
        match nearest(&t.service, services.iter().map(|s| s.name.as_str())) {
        Some(near) => format!("did you mean `{near}`?"),
        None if services.is_empty() => "declare the service under `services`: a target group follows the tasks of a service declared in this file".to_owned(),
        None => format!(
            "declare it under `services`; declared services: {}",
            list_names(services.iter().map(|s| s.name.as_str()))
        ),
    }
    };
    match &t.cluster {
        Some(cluster) => {
            if services_known && !same_name.iter().any(|s| &s.cluster == cluster) {
                let hint = if same_name.is_empty() {
                    undeclared_hint()
                } else {
                    format!(
                        "`{}` is declared in cluster {}: fix `cluster`",
                        t.service,
                        clusters_of_same_name()
                    )
                };
                ctx.error(
                    &service_path,
                    format!(
                        "target group binds service `{}` in cluster `{cluster}`, which is not declared in `services`",
                        t.service
                    ),
                    hint,
                );
            }
            cluster.clone()
        }
        None => match same_name.as_slice() {
            [only] => only.cluster.clone(),
            [] => {
                if services_known {
                    ctx.error(
                        &service_path,
                        format!(
                            "target group binds service `{}`, which is not declared in `services`",
                            t.service
                        ),
                        undeclared_hint(),
                    );
                }
                String::new()
            }
            [first, ..] => {
                ctx.error(
                    &service_path,
                    format!(
                        "service `{}` is declared in several clusters ({}), so the binding is ambiguous",
                        t.service,
                        clusters_of_same_name()
                    ),
                    format!("add `cluster: {}` (or another of them) to the target group", first.cluster),
                );
                String::new()
            }
        },
    }
}

pub(super) fn load_balancers(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    refs: &mut Vec<GroupRef>,
) -> Vec<LoadBalancerSpec> {
    let mut first_by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, lb) in file.load_balancers.iter().enumerate() {
        let p = format!("loadBalancers[{i}]");
        let name_path = format!("{p}.name");
        check_elb_name(ctx, &name_path, &lb.name, "load balancer");
        if ctx.ok(&name_path) {
            if let Some(first) = first_by_name.get(lb.name.as_str()) {
                ctx.error(
                    &name_path,
                    format!("load balancer `{}` is declared twice", lb.name),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_name.insert(&lb.name, name_path.clone());
            }
        }
        group_list(
            ctx,
            &lb.security_groups,
            &format!("{p}.securityGroups"),
            "`securityGroups`",
            refs,
        );
        let mut listeners = Vec::new();
        let mut first_by_port: HashMap<i64, String> = HashMap::new();
        for (j, l) in lb.listeners.iter().enumerate() {
            let port_path = format!("{p}.listeners[{j}].port");
            if !ctx.in_range(&port_path, l.port, 1, 65535, "listener port") {
                continue;
            }
            if let Some(first) = first_by_port.get(&l.port.0) {
                ctx.error(
                    &port_path,
                    format!("listener port {} is declared twice", l.port.0),
                    format!("a load balancer has one listener per port: merge it with the one on line {}", ctx.line(first)),
                );
                continue;
            }
            first_by_port.insert(l.port.0, port_path);
            listeners.push(ListenerCheck {
                port: u16::try_from(l.port.0).unwrap_or(0),
                protocol: l.protocol.map(|p| {
                    match p {
                        f::ListenerProtocol::Http => "HTTP",
                        f::ListenerProtocol::Https => "HTTPS",
                    }
                    .to_owned()
                }),
            });
        }
        out.push(LoadBalancerSpec {
            name: lb.name.clone(),
            security_groups: lb.security_groups.clone(),
            listeners,
            mode: resolved_mode(lb.mode, lb.paused, global),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elb_names() {
        assert_eq!(elb_name_problem("nestjs-api-tg"), None);
        assert!(elb_name_problem("a_b").is_some());
        assert!(elb_name_problem("-a").is_some());
        assert!(elb_name_problem(&"a".repeat(33)).is_some());
    }
}
