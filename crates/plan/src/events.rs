//! Change events from AWS (EventBridge rules feeding an SQS queue): what an
//! event names, who made the change, and which declared resources it
//! concerns. Events are *triggers only*: the daemon re-reads the resources
//! an event concerns and plans from what it reads, never from the event's
//! content. So a duplicate costs at most one scoped pass, a late or
//! reordered one re-reads the current state, and a lost one is caught by the
//! next resync.
//!
//! The queue consumer (in the `aws` crate) turns a message into a
//! [`ChangeEvent`]; [`EventIndex`], learned from each pass's snapshot, maps
//! what it names (a group id, an instance, a target group ARN, a service)
//! to units. Both are pure so the mapping is table-tested.

use std::collections::{BTreeMap, BTreeSet};

use ecs_reconciler_spec::DesiredState;
use serde::Serialize;

use crate::failure::ErrorClass;
use crate::snapshot::{Observed, Snapshot};
use crate::unit::UnitId;

/// What kind of event it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum EventKind {
    /// "AWS API Call via CloudTrail": someone called a mutating API.
    ApiCall {
        /// `ec2.amazonaws.com`, `elasticloadbalancing.amazonaws.com`,
        /// `ecs.amazonaws.com`.
        source: String,
        /// The API's name (`AuthorizeSecurityGroupIngress`, ...).
        name: String,
    },
    /// "ECS Task State Change".
    TaskStateChange,
    /// "ECS Container Instance State Change".
    ContainerInstanceStateChange,
    /// "ECS Service Action".
    ServiceAction,
    /// "ECS Deployment State Change".
    DeploymentStateChange,
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventKind::ApiCall { name, .. } => write!(f, "{name}"),
            EventKind::TaskStateChange => f.write_str("ECS Task State Change"),
            EventKind::ContainerInstanceStateChange => {
                f.write_str("ECS Container Instance State Change")
            }
            EventKind::ServiceAction => f.write_str("ECS Service Action"),
            EventKind::DeploymentStateChange => f.write_str("ECS Deployment State Change"),
        }
    }
}

/// A resource an event names, as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "id")]
pub enum Subject {
    /// A security group, by id (`sg-…`).
    SecurityGroupId(String),
    /// A security group by name (EC2-Classic-style calls in a default VPC).
    SecurityGroupName(String),
    /// An EC2 instance (`i-…`).
    Instance(String),
    /// A network interface (`eni-…`).
    NetworkInterface(String),
    /// A target group, by the name inside its ARN.
    TargetGroup(String),
    /// A load balancer, by the name inside its ARN.
    LoadBalancer(String),
    /// An ECS service.
    Service {
        /// Its cluster's name.
        cluster: String,
        /// Its name.
        name: String,
    },
    /// An ECS cluster, by name.
    Cluster(String),
}

/// Who made a change, from a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// `userIdentity.arn` (or the invoking service, for an AWS service).
    pub arn: String,
    /// `sourceIPAddress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// The API called.
    pub call: String,
    /// `eventTime`, as CloudTrail wrote it (RFC 3339, UTC).
    pub at: String,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} by {}", self.call, self.arn)?;
        if let Some(ip) = &self.source_ip {
            write!(f, " from {ip}")?;
        }
        write!(f, " at {}", self.at)
    }
}

/// One event, as far as the daemon cares.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEvent {
    /// EventBridge's event id: the same for every delivery of one event.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// When it happened (the envelope's `time`), Unix seconds.
    pub time_unix: Option<f64>,
    /// What it names.
    pub subjects: Vec<Subject>,
    /// Who, for an API call.
    pub actor: Option<Actor>,
    /// The API call's request id: the daemon's own writes are recognised
    /// by it.
    pub request_id: Option<String>,
}

/// Why an event triggers nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IgnoredBecause {
    /// The message is not an EventBridge event the daemon understands.
    Unparseable,
    /// The call failed (`errorCode` set): nothing changed.
    FailedCall,
    /// A write this daemon made itself.
    OwnWrite,
    /// The same event again (at-least-once delivery).
    Duplicate,
    /// It names nothing the file declares.
    Unrelated,
}

impl IgnoredBecause {
    /// Every reason, for metrics that start at zero.
    pub const ALL: [IgnoredBecause; 5] = [
        IgnoredBecause::Unparseable,
        IgnoredBecause::FailedCall,
        IgnoredBecause::OwnWrite,
        IgnoredBecause::Duplicate,
        IgnoredBecause::Unrelated,
    ];

    /// The kebab-case name (a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoredBecause::Unparseable => "unparseable",
            IgnoredBecause::FailedCall => "failed-call",
            IgnoredBecause::OwnWrite => "own-write",
            IgnoredBecause::Duplicate => "duplicate",
            IgnoredBecause::Unrelated => "unrelated",
        }
    }
}

/// Whether the events queue can be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum QueueHealth {
    /// The last receive worked.
    Receiving,
    /// It failed; it is polled again with backoff, and resync covers drift
    /// meanwhile.
    Failing {
        /// Its class (denied, not found, throttled, transient).
        class: ErrorClass,
        /// What AWS said.
        reason: String,
    },
}

/// Which declared resources the AWS ids the daemon has seen belong to.
/// Learned from every snapshot: a full pass replaces what the resources it
/// read said, a scoped one adds to it. An id not seen yet maps to nothing,
/// and the next resync covers it.
#[derive(Debug, Clone, Default)]
pub struct EventIndex {
    groups_by_id: BTreeMap<String, String>,
    /// Instance id -> its cluster.
    clusters_by_instance: BTreeMap<String, String>,
    /// Primary network interface -> its instance.
    instances_by_interface: BTreeMap<String, String>,
}

impl EventIndex {
    /// Learns the ids `snapshot` read.
    pub fn learn(&mut self, snapshot: &Snapshot) {
        for (name, group) in &snapshot.security_groups {
            if let Observed::Known(Some(group)) = group {
                self.groups_by_id.insert(group.id.clone(), name.clone());
            }
        }
        for (cluster, live) in &snapshot.clusters {
            if let Observed::Known(instances) = &live.container_instances {
                for instance in instances {
                    if let Some(id) = &instance.ec2_instance_id {
                        self.clusters_by_instance
                            .insert(id.clone(), cluster.clone());
                    }
                }
            }
        }
        for instance in snapshot.instances.values() {
            if let Observed::Known(instance) = instance
                && let Some(eni) = &instance.primary_network_interface_id
            {
                self.instances_by_interface
                    .insert(eni.clone(), instance.id.clone());
            }
        }
    }

    /// The declared units `event` concerns (empty: unrelated).
    pub fn units(&self, desired: &DesiredState, event: &ChangeEvent) -> BTreeSet<UnitId> {
        let mut units = BTreeSet::new();
        for subject in &event.subjects {
            self.add_units(desired, subject, &mut units);
        }
        units
    }

    fn add_units(&self, desired: &DesiredState, subject: &Subject, units: &mut BTreeSet<UnitId>) {
        match subject {
            Subject::SecurityGroupId(id) => {
                if let Some(name) = self.groups_by_id.get(id) {
                    add_group(desired, name, units);
                }
            }
            Subject::SecurityGroupName(name) => add_group(desired, name, units),
            Subject::NetworkInterface(eni) => {
                if let Some(instance) = self.instances_by_interface.get(eni) {
                    self.add_units(desired, &Subject::Instance(instance.clone()), units);
                }
            }
            Subject::Instance(id) => {
                if let Some(cluster) = self.clusters_by_instance.get(id)
                    && desired.clusters.iter().any(|c| &c.name == cluster)
                {
                    units.insert(UnitId::cluster(cluster));
                }
            }
            Subject::TargetGroup(name) => {
                if desired.target_groups.iter().any(|t| &t.name == name) {
                    units.insert(UnitId::target_group(name));
                }
            }
            Subject::LoadBalancer(name) => {
                if desired.load_balancers.iter().any(|l| &l.name == name) {
                    units.insert(UnitId::load_balancer(name));
                }
            }
            Subject::Service { cluster, name } => {
                if desired.service(cluster, name).is_some() {
                    units.insert(UnitId::service(cluster, name));
                }
                // Its tasks are the targets of the groups that follow it.
                for target_group in &desired.target_groups {
                    if &target_group.cluster == cluster && &target_group.service == name {
                        units.insert(UnitId::target_group(&target_group.name));
                    }
                }
            }
            Subject::Cluster(cluster) => {
                // An instance joining, draining or leaving changes the
                // attachments and the targets of every service on it.
                if desired.clusters.iter().any(|c| &c.name == cluster) {
                    units.insert(UnitId::cluster(cluster));
                }
                for target_group in &desired.target_groups {
                    if &target_group.cluster == cluster {
                        units.insert(UnitId::target_group(&target_group.name));
                    }
                }
            }
        }
    }
}

fn add_group(desired: &DesiredState, name: &str, units: &mut BTreeSet<UnitId>) {
    if desired.security_group(name).is_some() {
        units.insert(UnitId::security_group(name));
    }
}

/// The part of an ARN after its resource type: `targetgroup/NAME/ID` ->
/// `NAME` for `kind` `targetgroup`; `loadbalancer/app/NAME/ID` -> `NAME`;
/// `service/CLUSTER/NAME` -> `CLUSTER/NAME`; `cluster/NAME` -> `NAME`.
/// `None` when `arn` is not an ARN of that kind.
pub fn arn_resource<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let rest = resource.strip_prefix(kind)?.strip_prefix('/')?;
    match kind {
        "targetgroup" => rest.split('/').next(),
        "loadbalancer" => rest.split('/').nth(1),
        _ => Some(rest),
    }
}

/// A name or an ARN of an ECS cluster, as a name.
pub fn cluster_name(name_or_arn: &str) -> String {
    arn_resource(name_or_arn, "cluster")
        .unwrap_or(name_or_arn)
        .to_string()
}

/// An ECS service given by name (with its cluster) or by ARN (long form
/// `service/CLUSTER/NAME`; the old short form names no cluster, so the
/// one given is used).
pub fn service_subject(cluster: Option<&str>, service: &str) -> Option<Subject> {
    if let Some(rest) = arn_resource(service, "service") {
        return match rest.split_once('/') {
            Some((cluster, name)) => Some(Subject::Service {
                cluster: cluster.to_string(),
                name: name.to_string(),
            }),
            None => Some(Subject::Service {
                cluster: cluster_name(cluster.unwrap_or("default")),
                name: rest.to_string(),
            }),
        };
    }
    if service.is_empty() {
        return None;
    }
    Some(Subject::Service {
        cluster: cluster_name(cluster.unwrap_or("default")),
        name: service.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_give_their_names() {
        let tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nestjs-tg/6d0ecf831eec9f09";
        assert_eq!(arn_resource(tg, "targetgroup"), Some("nestjs-tg"));
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/nestjs-alb/50dc6c495c0c9188";
        assert_eq!(arn_resource(lb, "loadbalancer"), Some("nestjs-alb"));
        assert_eq!(arn_resource(tg, "loadbalancer"), None);
        assert_eq!(
            cluster_name("arn:aws:ecs:us-east-1:123456789012:cluster/nestjs-cluster"),
            "nestjs-cluster"
        );
        assert_eq!(cluster_name("nestjs-cluster"), "nestjs-cluster");
        assert_eq!(
            service_subject(
                None,
                "arn:aws:ecs:us-east-1:123456789012:service/nestjs-cluster/nestjs-api"
            ),
            Some(Subject::Service {
                cluster: "nestjs-cluster".into(),
                name: "nestjs-api".into()
            })
        );
        assert_eq!(
            service_subject(
                Some("c"),
                "arn:aws:ecs:us-east-1:123456789012:service/nestjs-api"
            ),
            Some(Subject::Service {
                cluster: "c".into(),
                name: "nestjs-api".into()
            })
        );
        assert_eq!(
            service_subject(None, "api"),
            Some(Subject::Service {
                cluster: "default".into(),
                name: "api".into()
            })
        );
    }
}
