//! Group attachments: every EC2 instance behind a cluster's container
//! instances, and every declared load balancer, must carry the declared
//! groups. Attaching keeps the resource's other groups; nothing is detached.
//! Also checks load balancers' listeners (reported, never changed).

use std::collections::BTreeMap;

use ecs_reconciler_spec::{DesiredState, Mode};

use crate::action::{Action, Change};
use crate::snapshot::{Observed, Snapshot};
use crate::unit::UnitId;

/// Plans attachments for clusters' instances and load balancers.
pub fn diff(desired: &DesiredState, snapshot: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    diff_instances(desired, snapshot, &mut changes);
    diff_load_balancers(desired, snapshot, &mut changes);
    changes
}

/// Where groups are to be attached.
struct Attachment<'a> {
    /// The unit that owns the change.
    unit: UnitId,
    /// `instance/i-...` or `load-balancer/NAME`.
    resource: String,
    /// The resource's VPC, when reported.
    vpc: Option<&'a str>,
    /// How many groups it carries now.
    current: usize,
}

/// Keeps the missing groups that can be attached and reports the others,
/// each as its own per-resource error instead of a call that fails every
/// pass: a group of another VPC than the resource, or a list the quota
/// does not allow (`quota` groups per network interface or load balancer:
/// above it EC2 answers SecurityGroupsPerInterfaceLimitExceeded and ELBv2
/// refuses the list). `None` when nothing is to be written.
fn attachable<'a>(
    at: &Attachment,
    missing: Vec<(&'a str, &'a str)>,
    quota: usize,
    snapshot: &Snapshot,
    changes: &mut Vec<Change>,
) -> Option<Vec<(&'a str, &'a str)>> {
    let Attachment {
        unit,
        resource,
        vpc: resource_vpc,
        current,
    } = at;
    let (resource, resource_vpc, current) = (resource.as_str(), *resource_vpc, *current);
    let mut kept = Vec::new();
    for (name, id) in missing {
        let group_vpc = match snapshot.security_groups.get(name) {
            Some(Observed::Known(Some(group))) => group.vpc_id.as_deref(),
            _ => None,
        };
        match (group_vpc, resource_vpc) {
            (Some(group_vpc), Some(vpc)) if group_vpc != vpc => {
                changes.push(
                    Change::report(
                        "group-in-other-vpc",
                        unit,
                        format!("{resource} in {vpc}"),
                        format!("group {name} ({id}) in {group_vpc}"),
                        format!(
                            "group {name} is in {group_vpc} but {resource} is in {vpc}; a group attaches only within its VPC — declare a group of {vpc}"
                        ),
                    )
                    .on_resource(resource.to_string()),
                );
            }
            _ => kept.push((name, id)),
        }
    }
    if kept.is_empty() {
        return None;
    }
    if current + kept.len() > quota {
        let names: Vec<&str> = kept.iter().map(|(name, _)| *name).collect();
        changes.push(
            Change::report(
                "too-many-groups",
                unit,
                format!("{current} groups"),
                format!("{} groups", current + kept.len()),
                format!(
                    "attaching {} to {resource} would make {} groups; it takes {quota} (quotas.securityGroupsPerInterface) — detach one it does not need, or raise the quota (Service Quotas: Security groups per network interface, at most 16) and write it in `quotas`",
                    names.join(", "),
                    current + kept.len()
                ),
            )
            .on_resource(resource.to_string()),
        );
        return None;
    }
    Some(kept)
}

/// Resolves declared group names to ids; unresolvable ones are skipped (the
/// group's own report says why).
fn resolve_groups<'a>(names: &'a [String], snapshot: &'a Snapshot) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .filter_map(|name| Some((name.as_str(), snapshot.group_id(name)?)))
        .collect()
}

/// What one instance must carry, merged over the clusters it serves, so
/// one instance gets one call with its whole new list.
struct InstanceWants<'a> {
    /// Groups as (name, id).
    groups: Vec<(&'a str, &'a str)>,
    /// Every cluster naming it is in enforce mode.
    enforce: bool,
    clusters: Vec<&'a str>,
}

fn diff_instances(desired: &DesiredState, snapshot: &Snapshot, changes: &mut Vec<Change>) {
    let mut wanted: BTreeMap<String, InstanceWants> = BTreeMap::new();
    for cluster in &desired.clusters {
        if cluster.instance_security_groups.is_empty() {
            continue;
        }
        let groups = resolve_groups(&cluster.instance_security_groups, snapshot);
        let Some(live) = snapshot.clusters.get(&cluster.name) else {
            continue;
        };
        let Observed::Known(container_instances) = &live.container_instances else {
            continue;
        };
        for ci in container_instances {
            let Some(instance_id) = &ci.ec2_instance_id else {
                continue;
            };
            let entry = wanted
                .entry(instance_id.clone())
                .or_insert_with(|| InstanceWants {
                    groups: Vec::new(),
                    enforce: true,
                    clusters: Vec::new(),
                });
            for group in &groups {
                if !entry.groups.contains(group) {
                    entry.groups.push(*group);
                }
            }
            entry.enforce &= cluster.mode == Mode::Enforce;
            entry.clusters.push(cluster.name.as_str());
        }
    }

    for (instance_id, want) in wanted {
        let InstanceWants {
            groups,
            enforce,
            clusters,
        } = want;
        let Some(Observed::Known(instance)) = snapshot.instances.get(&instance_id) else {
            continue;
        };
        // A terminating instance is leaving the cluster; changing it would
        // only fail or race the termination.
        if matches!(instance.state.as_str(), "shutting-down" | "terminated") {
            continue;
        }
        let missing: Vec<(&str, &str)> = groups
            .iter()
            .filter(|(_, id)| !instance.security_group_ids.iter().any(|g| g == id))
            .copied()
            .collect();
        if missing.is_empty() {
            continue;
        }
        // Every instance in a VPC has a primary interface; one EC2 did not
        // report cannot be written safely.
        let Some(eni) = &instance.primary_network_interface_id else {
            changes.push(
                Change::report(
                    "no-primary-interface",
                    &UnitId::cluster(clusters[0]),
                    "unreported".into(),
                    "an interface at device index 0".into(),
                    format!(
                        "EC2 reported no primary network interface for instance {instance_id}; its groups are written through it, so none are attached"
                    ),
                )
                .on_resource(format!("instance/{instance_id}")),
            );
            continue;
        };
        let at = Attachment {
            unit: UnitId::cluster(clusters[0]),
            resource: format!("instance/{instance_id}"),
            vpc: instance.vpc_id.as_deref(),
            current: instance.security_group_ids.len(),
        };
        let Some(missing) = attachable(
            &at,
            missing,
            desired.quotas.groups_per_interface,
            snapshot,
            changes,
        ) else {
            continue;
        };
        let attach: Vec<String> = missing.iter().map(|(_, id)| id.to_string()).collect();
        let mut group_ids = instance.security_group_ids.clone();
        group_ids.extend(attach.iter().cloned());
        let names: Vec<&str> = missing.iter().map(|(name, _)| *name).collect();
        changes.push(
            Change::fix(
                &UnitId::cluster(clusters[0]),
                instance.security_group_ids.join(","),
                group_ids.join(","),
                format!(
                    "instance {instance_id} of cluster {} lacks group {}",
                    clusters.join(","),
                    names.join(", ")
                ),
                enforce,
                Action::SetInstanceGroups {
                    instance_id: instance_id.clone(),
                    network_interface_id: eni.clone(),
                    group_ids,
                    attach,
                },
            )
            .on_resource(format!("instance/{instance_id}")),
        );
    }
}

fn diff_load_balancers(desired: &DesiredState, snapshot: &Snapshot, changes: &mut Vec<Change>) {
    for spec in &desired.load_balancers {
        let unit = UnitId::load_balancer(&spec.name);
        let live = match snapshot.load_balancers.get(&spec.name) {
            Some(Observed::Known(Some(live))) => live,
            Some(Observed::Known(None)) => {
                changes.push(Change::report(
                    "missing-resource",
                    &unit,
                    "absent".into(),
                    "present".into(),
                    format!("no load balancer named {} was found", spec.name),
                ));
                continue;
            }
            _ => continue,
        };
        let missing: Vec<(&str, &str)> = resolve_groups(&spec.security_groups, snapshot)
            .into_iter()
            .filter(|(_, id)| !live.security_group_ids.iter().any(|g| g == id))
            .collect();
        let missing = if missing.is_empty() {
            None
        } else {
            let at = Attachment {
                unit: unit.clone(),
                resource: format!("load-balancer/{}", spec.name),
                vpc: live.vpc_id.as_deref(),
                current: live.security_group_ids.len(),
            };
            attachable(
                &at,
                missing,
                desired.quotas.groups_per_interface,
                snapshot,
                changes,
            )
        };
        if let Some(missing) = missing {
            let attach: Vec<String> = missing.iter().map(|(_, id)| id.to_string()).collect();
            let mut group_ids = live.security_group_ids.clone();
            group_ids.extend(attach.iter().cloned());
            let names: Vec<&str> = missing.iter().map(|(name, _)| *name).collect();
            changes.push(Change::fix(
                &unit,
                live.security_group_ids.join(","),
                group_ids.join(","),
                format!(
                    "load balancer {} lacks group {}",
                    spec.name,
                    names.join(", ")
                ),
                spec.mode == Mode::Enforce,
                Action::SetLoadBalancerGroups {
                    load_balancer: spec.name.clone(),
                    arn: live.arn.clone(),
                    group_ids,
                    attach,
                },
            ));
        }
        if let Observed::Known(listeners) = &live.listeners {
            for want in &spec.listeners {
                let found = listeners.iter().any(|l| {
                    l.port == i32::from(want.port)
                        && want
                            .protocol
                            .as_ref()
                            .is_none_or(|p| l.protocol.as_deref() == Some(p.as_str()))
                });
                if !found {
                    let after = match &want.protocol {
                        Some(protocol) => format!("{protocol} {}", want.port),
                        None => want.port.to_string(),
                    };
                    changes.push(Change::report(
                        "check-listener",
                        &unit,
                        "absent".into(),
                        after.clone(),
                        format!(
                            "load balancer {} has no {after} listener; ecs-reconciler does not create listeners",
                            spec.name
                        ),
                    ));
                }
            }
        }
    }
}
