//! `init`: adopt a live service in one command. Reads the topology around
//! the named services (`ecs_reconciler_aws::adopt`), writes a complete
//! desired-state file in `observe` mode, then checks it the way `plan`
//! would on the state just read: a target group holding targets of no task
//! of the service is written `membership: shared` (exclusive would
//! deregister them), and anything left over is said. Output is stable: the
//! same account gives the same bytes (no timestamps, sorted).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use ecs_reconciler_aws::adopt::{AdoptedGroup, AdoptedService, Topology, read_topology};
use ecs_reconciler_aws::{Aws, observe};
use ecs_reconciler_plan::{Action, LiveRule, LiveSource, Sightings, plan_with};
use ecs_reconciler_spec::{PortRange, Protocol};

use crate::cli::AwsArgs;
use crate::exit;

/// What the command line asked for.
pub struct InitArgs<'a> {
    pub cluster: &'a str,
    pub services: &'a [String],
    pub all: bool,
    pub output: Option<&'a Path>,
    pub aws: &'a AwsArgs,
}

pub async fn run(args: &InitArgs<'_>) -> u8 {
    if args.services.is_empty() && !args.all {
        eprintln!(
            "error: name the services to adopt\n  hint: --service NAME (repeatable), or --all-services for every service of --cluster"
        );
        return exit::USAGE;
    }
    let clients = Aws::from_env(&super::client_settings(args.aws)).await;
    if let Err(code) = super::require_region(&clients) {
        return code;
    }
    let topology = match read_topology(&clients, args.cluster, args.services, args.all).await {
        Ok(topology) => topology,
        Err(err) => {
            eprintln!(
                "error: {err}\n  hint: nothing was written; a failed read never makes a smaller file. Check the names, the region and the read-only policy (deploy/iam-plan-readonly.json)"
            );
            return exit::ERROR;
        }
    };
    if topology.services.is_empty() {
        eprintln!(
            "error: cluster {} has no active service to adopt",
            args.cluster
        );
        return exit::ERROR;
    }
    let mut shared = BTreeSet::new();
    let mut text = render(&topology, &shared, &command_line(args));
    // Checked like `plan` on the state just read; a target group with
    // targets of no task of its service becomes shared, once.
    let desired = match ecs_reconciler_spec::load(&text) {
        Ok(desired) => desired,
        Err(err) => {
            eprintln!(
                "error: the file init wrote does not load (a bug, please report it):\n{err}\n{text}"
            );
            return exit::ERROR;
        }
    };
    let snapshot = observe(&clients, &desired).await;
    let plan = plan_with(
        &desired,
        &snapshot,
        &Sightings::new(std::time::Duration::ZERO),
    );
    for change in &plan.changes {
        if let Some(Action::DeregisterTarget { target_group, .. }) = &change.action {
            shared.insert(target_group.clone());
        }
    }
    if !shared.is_empty() {
        text = render(&topology, &shared, &command_line(args));
    }
    let left: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| !matches!(c.action, Some(Action::DeregisterTarget { .. })))
        .map(|c| format!("  {} {}: {}", c.kind, c.resource, c.reason))
        .collect();
    match args.output {
        Some(path) => {
            if let Err(err) = std::fs::write(path, &text) {
                eprintln!(
                    "error: cannot write {}: {err}\n  hint: pick a writable path with --output",
                    path.display()
                );
                return exit::ERROR;
            }
            eprintln!(
                "wrote {}: {} services, {} target groups, {} load balancers, {} security groups (mode: observe)",
                path.display(),
                topology.services.len(),
                topology.target_groups.len(),
                topology.load_balancers.len(),
                topology.groups.len()
            );
        }
        None => print!("{text}"),
    }
    if !left.is_empty() || !plan.unknowns.is_empty() {
        eprintln!(
            "note: on the state just read, plan would still report:\n{}{}",
            left.join("\n"),
            plan.unknowns
                .iter()
                .map(|u| format!("\n  unknown {}: {}", u.what, u.why))
                .collect::<String>()
        );
    }
    exit::OK
}

fn command_line(args: &InitArgs<'_>) -> String {
    let mut line = format!("ecs-reconciler init --cluster {}", args.cluster);
    if args.all {
        line.push_str(" --all-services");
    }
    for service in args.services {
        let _ = write!(line, " --service {service}");
    }
    line
}

/// A YAML scalar that reads back as the same text: plain when YAML would
/// read it as that string, else double-quoted with escapes.
fn scalar(text: &str) -> String {
    // No `:` in plain text: `web:` ends a key, `a: b` makes a mapping.
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !text.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.' || c == ':')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

/// Groups that can be written: their rules are all expressible.
fn writable(topology: &Topology) -> BTreeMap<&str, &AdoptedGroup> {
    topology
        .groups
        .iter()
        .filter(|(_, g)| g.ingress.known().is_some())
        .map(|(id, g)| (id.as_str(), g))
        .collect()
}

fn render(topology: &Topology, shared: &BTreeSet<String>, command: &str) -> String {
    let mut out = String::new();
    let groups = writable(topology);
    let names: BTreeMap<&str, &str> = groups
        .iter()
        .map(|(id, g)| (*id, g.name.as_str()))
        .collect();
    let o = &mut out;
    let _ = writeln!(o, "# yaml-language-server: $schema=schema.json");
    let _ = writeln!(o, "#");
    let _ = writeln!(o, "# Written by `{command}` from the live account.");
    let _ = writeln!(
        o,
        "# The schema beside it: `ecs-reconciler schema > schema.json`."
    );
    let _ = writeln!(o, "version: 1");
    let _ = writeln!(
        o,
        "# observe: every drift is reported, nothing is changed. When `ecs-reconciler plan`\n# shows what you expect, write `mode: enforce` (here, or per resource)."
    );
    let _ = writeln!(o, "mode: observe");

    // Security groups, by name.
    let mut declared: Vec<&AdoptedGroup> = groups.values().copied().collect();
    declared.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let skipped: Vec<&AdoptedGroup> = topology
        .groups
        .values()
        .filter(|g| g.ingress.known().is_none())
        .collect();
    if !declared.is_empty() || !skipped.is_empty() {
        let _ = writeln!(o, "\nsecurityGroups:");
    }
    for group in &skipped {
        let why = group
            .ingress
            .unknown_reason()
            .map(|u| u.message.clone())
            .unwrap_or_default();
        let _ = writeln!(o, "  # Not declared: {} ({}): {why}.", group.name, group.id);
    }
    for group in declared {
        let _ = writeln!(
            o,
            "  # {} in {}: {}.",
            group.id,
            group.vpc_id.as_deref().unwrap_or("EC2-Classic"),
            carried_by(topology, &group.id)
        );
        let _ = writeln!(o, "  - name: {}", scalar(&group.name));
        if let Some(vpc) = &group.vpc_id {
            let _ = writeln!(o, "    vpcId: {vpc}");
        }
        let rules = group.ingress.known().cloned().unwrap_or_default();
        if rules.is_empty() {
            let _ = writeln!(o, "    ingress: []");
            continue;
        }
        let _ = writeln!(o, "    ingress:");
        let mut rules: Vec<&LiveRule> = rules.iter().collect();
        rules.sort_by(|a, b| a.key.cmp(&b.key));
        for rule in rules {
            write_rule(o, rule, &names, &topology.prefix_list_names);
        }
    }

    // The cluster and the groups all its instances carry.
    let mut instance_groups: Vec<&str> = topology
        .instance_group_ids
        .iter()
        .filter_map(|id| names.get(id.as_str()).copied())
        .collect();
    instance_groups.sort_unstable();
    if !instance_groups.is_empty() {
        let _ = writeln!(o, "\nclusters:");
        let _ = writeln!(
            o,
            "  # The groups all {} EC2 instances of its container instances carry.",
            topology.instances
        );
        let _ = writeln!(o, "  - name: {}", scalar(&topology.cluster));
        let list: Vec<String> = instance_groups.iter().map(|n| scalar(n)).collect();
        let _ = writeln!(o, "    instanceSecurityGroups: [{}]", list.join(", "));
    }

    let _ = writeln!(o, "\nservices:");
    for service in &topology.services {
        write_service(o, service, &topology.cluster);
    }

    let supported: Vec<_> = topology
        .target_groups
        .iter()
        .filter(|t| t.target_type.as_deref().is_none_or(|t| t == "instance"))
        .collect();
    if !topology.target_groups.is_empty() {
        let _ = writeln!(o, "\ntargetGroups:");
    }
    for tg in &topology.target_groups {
        if !supported.iter().any(|s| s.arn == tg.arn) {
            let _ = writeln!(
                o,
                "  # Not declared: {} ({}): target type {} (only instance targets are reconciled).",
                tg.name,
                tg.arn,
                tg.target_type.as_deref().unwrap_or("?")
            );
            continue;
        }
        let _ = writeln!(o, "  # {}", tg.arn);
        let _ = writeln!(o, "  - name: {}", scalar(&tg.name));
        let _ = writeln!(o, "    targetType: instance");
        if let Some(path) = &tg.health_check_path {
            let _ = writeln!(o, "    healthCheckPath: {}", scalar(path));
        }
        let _ = writeln!(o, "    service: {}", scalar(&tg.service));
        let _ = writeln!(o, "    cluster: {}", scalar(&topology.cluster));
        let _ = writeln!(o, "    containerName: {}", scalar(&tg.container_name));
        let _ = writeln!(o, "    containerPort: {}", tg.container_port);
        if shared.contains(&tg.name) {
            let _ = writeln!(
                o,
                "    # It holds targets of no task of the service: exclusive would deregister them."
            );
            let _ = writeln!(o, "    membership: shared");
        } else {
            let _ = writeln!(o, "    membership: exclusive");
        }
    }

    if !topology.load_balancers.is_empty() {
        let _ = writeln!(o, "\nloadBalancers:");
    }
    for lb in &topology.load_balancers {
        if lb.kind.as_deref().is_some_and(|k| k != "application") {
            let _ = writeln!(
                o,
                "  # Not declared: {} ({}): a {} load balancer (only application load balancers are reconciled).",
                lb.name,
                lb.arn,
                lb.kind.as_deref().unwrap_or("?")
            );
            continue;
        }
        let _ = writeln!(o, "  # {}", lb.arn);
        let _ = writeln!(o, "  - name: {}", scalar(&lb.name));
        let mut groups: Vec<String> = lb
            .group_ids
            .iter()
            .filter_map(|id| names.get(id.as_str()).map(|n| scalar(n)))
            .collect();
        groups.sort_unstable();
        let _ = writeln!(o, "    securityGroups: [{}]", groups.join(", "));
        if lb.listeners.is_empty() {
            let _ = writeln!(o, "    listeners: []");
        } else {
            let _ = writeln!(o, "    listeners:");
        }
        for listener in &lb.listeners {
            let _ = writeln!(o, "      - port: {}", listener.port);
            match listener.protocol.as_deref() {
                Some(p @ ("HTTP" | "HTTPS")) => {
                    let _ = writeln!(o, "        protocol: {p}");
                }
                Some(other) => {
                    let _ = writeln!(
                        o,
                        "        # protocol {other}: not checked (HTTP and HTTPS are)"
                    );
                }
                None => {}
            }
        }
    }
    out
}

/// Who carries a group, for its comment.
fn carried_by(topology: &Topology, id: &str) -> String {
    let mut who = Vec::new();
    if topology.instance_group_ids.iter().any(|g| g == id) {
        who.push(format!(
            "carried by the {} instances of cluster {}",
            topology.instances, topology.cluster
        ));
    }
    for lb in &topology.load_balancers {
        if lb.group_ids.iter().any(|g| g == id) {
            who.push(format!("load balancer {}'s group", lb.name));
        }
    }
    who.join("; ")
}

fn write_rule(
    o: &mut String,
    rule: &LiveRule,
    names: &BTreeMap<&str, &str>,
    prefix_lists: &BTreeMap<String, String>,
) {
    let key = &rule.key;
    let _ = writeln!(o, "      - protocol: {}", key.protocol);
    match key.protocol {
        Protocol::Tcp | Protocol::Udp => {
            let PortRange { from, to } = key.ports;
            if from == to {
                let _ = writeln!(o, "        ports: {from}");
            } else {
                let _ = writeln!(o, "        ports: {from}-{to}");
            }
        }
        Protocol::Icmp | Protocol::Icmpv6 if key.ports.from >= 0 => {
            let _ = writeln!(
                o,
                "        ports: {{from: {}, to: {}}}",
                key.ports.from, key.ports.to
            );
        }
        _ => {}
    }
    match &key.source {
        LiveSource::Ipv4(net) => {
            let _ = writeln!(o, "        cidr: {net}");
        }
        LiveSource::Ipv6(net) => {
            let _ = writeln!(o, "        cidr: {}", scalar(&net.to_string()));
        }
        LiveSource::Group(id) => match (names.get(id.as_str()), &rule.source_account) {
            (Some(name), None) => {
                let _ = writeln!(o, "        sourceGroup: {}", scalar(name));
            }
            (_, account) => {
                let _ = writeln!(o, "        sourceGroupId: {id}");
                if let Some(account) = account {
                    let _ = writeln!(o, "        sourceAccount: \"{account}\"");
                }
            }
        },
        LiveSource::PrefixList(id) => {
            let _ = match prefix_lists.get(id) {
                Some(name) => writeln!(o, "        prefixListId: {id}  # {name}"),
                None => writeln!(o, "        prefixListId: {id}"),
            };
        }
    }
    if let Some(description) = rule.description.as_deref().filter(|d| !d.is_empty()) {
        let _ = writeln!(o, "        description: {}", scalar(description));
    }
}

fn write_service(o: &mut String, service: &AdoptedService, cluster: &str) {
    let live = &service.live;
    let _ = writeln!(o, "  # {}", live.arn);
    let _ = writeln!(o, "  - name: {}", scalar(&service.name));
    let _ = writeln!(o, "    cluster: {}", scalar(cluster));
    match service.scaling {
        // An autoscaler owns the count: declare its range, not today's value.
        Some((min, max)) if (min..=max).contains(&live.desired_count) => {
            let _ = writeln!(
                o,
                "    replicas: {{min: {min}, max: {max}}}  # the Application Auto Scaling target's MinCapacity/MaxCapacity (desiredCount {} now)",
                live.desired_count
            );
        }
        // Outside its own target's range (scaling suspended, or the target
        // changed by hand): the range would be corrected at once, so the
        // count as it is, and the range in a comment.
        Some((min, max)) => {
            let _ = writeln!(
                o,
                "    replicas: {}  # an Application Auto Scaling target says {{min: {min}, max: {max}}}, but desiredCount is outside it now",
                live.desired_count
            );
        }
        None => {
            let _ = writeln!(o, "    replicas: {}", live.desired_count);
        }
    }
    if let Some(launch) = &live.launch_type {
        let _ = writeln!(o, "    launchType: {launch}");
    } else if !live.capacity_provider_strategy.is_empty() {
        let _ = writeln!(o, "    capacityProviderStrategy:");
        let mut items = live.capacity_provider_strategy.clone();
        items.sort_by(|a, b| a.provider.cmp(&b.provider));
        for item in items {
            let _ = writeln!(o, "      - capacityProvider: {}", scalar(&item.provider));
            let _ = writeln!(o, "        weight: {}", item.weight);
            let _ = writeln!(o, "        base: {}", item.base);
        }
    }
    if let Some(strategy) = &live.scheduling_strategy {
        let _ = writeln!(o, "    schedulingStrategy: {strategy}");
    }
    let Some(def) = &service.task_definition else {
        return;
    };
    let _ = writeln!(o, "    # {}", def.arn);
    let _ = writeln!(o, "    taskDefinition:");
    let _ = writeln!(o, "      family: {}", scalar(&def.family));
    // The container the load balancer sends traffic to, else none.
    let Some((_, container, port)) = service.load_balancers.first() else {
        return;
    };
    let _ = writeln!(o, "      containerName: {}", scalar(container));
    let _ = writeln!(o, "      containerPort: {port}");
    let host = def
        .containers
        .get(container)
        .and_then(|m| m.iter().find(|m| m.container_port == Some(*port)))
        .and_then(|m| m.host_port);
    if let Some(host) = host {
        let _ = writeln!(o, "      hostPort: {host}");
    }
}

#[cfg(test)]
mod tests {
    use super::scalar;

    #[test]
    fn scalars_read_back_as_the_same_text() {
        assert_eq!(scalar("nestjs-api"), "nestjs-api");
        assert_eq!(scalar("/"), "/");
        assert_eq!(scalar("no"), "\"no\"");
        assert_eq!(scalar("8080"), "\"8080\"");
        assert_eq!(scalar("HTTP from anywhere"), "\"HTTP from anywhere\"");
        assert_eq!(scalar("::/0"), "\"::/0\"");
        assert_eq!(scalar("a#b"), "\"a#b\"");
        assert_eq!(scalar("web:"), "\"web:\"");
    }
}
