//! The live-state snapshot: what one observation of AWS found, as plain data.
//!
//! Every part that comes from a read is wrapped in [`Observed`], because a
//! failed, throttled or half-paginated read is *unknown*, never *empty*: the
//! planner must be able to tell "there are no targets" from "we could not
//! list the targets", and only the first may lead to a destructive action.

use std::collections::BTreeMap;

use ecs_reconciler_spec::{PortRange, Protocol};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::failure::Unread;

/// The outcome of one read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "lowercase")]
pub enum Observed<T> {
    /// The read completed (every page).
    Known(T),
    /// The read failed: why, and what class of failure.
    Unknown(Unread),
}

impl<T> Observed<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Observed::Known(value) => Some(value),
            Observed::Unknown(_) => None,
        }
    }

    pub fn known_mut(&mut self) -> Option<&mut T> {
        match self {
            Observed::Known(value) => Some(value),
            Observed::Unknown(_) => None,
        }
    }

    pub fn unknown_reason(&self) -> Option<&Unread> {
        match self {
            Observed::Known(_) => None,
            Observed::Unknown(reason) => Some(reason),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Observed<U> {
        match self {
            Observed::Known(value) => Observed::Known(f(value)),
            Observed::Unknown(reason) => Observed::Unknown(reason),
        }
    }
}

/// Where an observed rule admits traffic from, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LiveSource {
    Ipv4(Ipv4Net),
    Ipv6(Ipv6Net),
    /// A referenced security group, by id.
    Group(String),
    /// A prefix list (`pl-...`): never declared by a file, so always extra.
    PrefixList(String),
}

impl std::fmt::Display for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveSource::Ipv4(net) => write!(f, "{net}"),
            LiveSource::Ipv6(net) => write!(f, "{net}"),
            LiveSource::Group(id) => write!(f, "group {id}"),
            LiveSource::PrefixList(id) => write!(f, "prefix list {id}"),
        }
    }
}

/// A rule in the normalised form rules are compared in: protocol by name,
/// canonical CIDR, `-1..-1` ports for `all`; descriptions are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleKey {
    pub protocol: Protocol,
    pub ports: PortRange,
    pub source: LiveSource,
}

impl RuleKey {
    /// Builds a key, normalising the port range where the protocol makes
    /// ports meaningless.
    pub fn new(protocol: Protocol, ports: PortRange, source: LiveSource) -> RuleKey {
        let ports = if protocol == Protocol::All {
            PortRange::ALL
        } else {
            ports
        };
        RuleKey {
            protocol,
            ports,
            source,
        }
    }
}

impl std::fmt::Display for RuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.protocol == Protocol::All {
            write!(f, "all traffic from {}", self.source)
        } else {
            write!(f, "{} {} from {}", self.protocol, self.ports, self.source)
        }
    }
}

/// One live ingress rule (EC2 reports one rule per source).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRule {
    /// `sgr-...`; revokes use it when present.
    pub rule_id: Option<String>,
    pub key: RuleKey,
    pub description: Option<String>,
    /// Created by ecs-reconciler (tagged `managed-by=ecs-reconciler`).
    pub managed_by_us: bool,
}

/// A security group found for a declared one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSecurityGroup {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
    /// Ingress rules only.
    pub ingress: Observed<Vec<LiveRule>>,
}

/// An ECS service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveService {
    pub arn: String,
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub launch_type: Option<String>,
    pub scheduling_strategy: Option<String>,
    pub task_definition_arn: Option<String>,
}

/// One container's port mapping as its task definition declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePortMapping {
    pub container_port: Option<i32>,
    pub host_port: Option<i32>,
}

/// The parts of a task definition that are checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTaskDefinition {
    pub arn: String,
    pub family: String,
    /// Container name → its port mappings.
    pub containers: BTreeMap<String, Vec<LivePortMapping>>,
}

/// A port a running container is reachable on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveBinding {
    pub container_name: String,
    pub container_port: i32,
    pub host_port: i32,
    /// `tcp` or `udp`; ALB targets are tcp.
    pub protocol: Option<String>,
}

/// An ECS task of a managed service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTask {
    pub arn: String,
    /// The service that owns it (from the task's `group` `service:NAME`).
    pub service: Option<String>,
    pub last_status: String,
    pub desired_status: String,
    pub container_instance_arn: Option<String>,
    pub bindings: Vec<LiveBinding>,
}

impl LiveTask {
    /// RUNNING and meant to keep running: the only tasks that belong in a
    /// target group.
    pub fn is_serving(&self) -> bool {
        self.last_status == "RUNNING" && self.desired_status == "RUNNING"
    }
}

/// A container instance and the EC2 instance behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveContainerInstance {
    pub arn: String,
    /// Fixed for the container instance's life (its ARN is never reused).
    pub ec2_instance_id: Option<String>,
}

/// What was read for one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCluster {
    /// Tasks of the managed services in this cluster.
    pub tasks: Observed<Vec<LiveTask>>,
    pub container_instances: Observed<Vec<LiveContainerInstance>>,
}

/// An EC2 instance behind a container instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveInstance {
    pub id: String,
    pub state: String,
    /// Group ids, in the order EC2 reports them.
    pub security_group_ids: Vec<String>,
}

/// A registered target, keyed by (id, port) as ELBv2 keys them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetKey {
    pub id: String,
    pub port: i32,
}

impl std::fmt::Display for TargetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.port)
    }
}

/// A target and its health state (`healthy`, `draining`, ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTarget {
    pub key: TargetKey,
    pub state: String,
}

impl LiveTarget {
    pub fn is_draining(&self) -> bool {
        self.state == "draining"
    }
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTargetGroup {
    pub arn: String,
    pub target_type: Option<String>,
    pub health_check_path: Option<String>,
    pub targets: Observed<Vec<LiveTarget>>,
    /// 0 when `targets` was read in this pass; otherwise a quiet group's
    /// earlier read, reused (see the aws crate's `target_reads`). The plan
    /// deregisters nothing on a reused read.
    pub targets_read_passes_ago: u64,
}

/// A listener of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveListener {
    pub port: i32,
    pub protocol: Option<String>,
}

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveLoadBalancer {
    pub arn: String,
    pub dns_name: Option<String>,
    pub security_group_ids: Vec<String>,
    pub listeners: Observed<Vec<LiveListener>>,
}

/// One observation of everything the desired state names. Maps are keyed by
/// the names used in the file; `Known(None)` means "looked, not there".
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub security_groups: BTreeMap<String, Observed<Option<LiveSecurityGroup>>>,
    /// Keyed by (cluster, service).
    #[serde(serialize_with = "serialize_pair_map")]
    pub services: BTreeMap<(String, String), Observed<Option<LiveService>>>,
    /// Keyed by task definition ARN.
    pub task_definitions: BTreeMap<String, Observed<LiveTaskDefinition>>,
    pub clusters: BTreeMap<String, LiveCluster>,
    /// EC2 instances behind the managed clusters' container instances.
    pub instances: BTreeMap<String, Observed<LiveInstance>>,
    pub target_groups: BTreeMap<String, Observed<Option<LiveTargetGroup>>>,
    pub load_balancers: BTreeMap<String, Observed<Option<LiveLoadBalancer>>>,
}

fn serialize_pair_map<S, V>(
    map: &BTreeMap<(String, String), V>,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    V: Serialize,
{
    use serde::ser::SerializeMap;
    let mut out = serializer.serialize_map(Some(map.len()))?;
    for ((cluster, service), value) in map {
        out.serialize_entry(&format!("{cluster}/{service}"), value)?;
    }
    out.end()
}

impl Snapshot {
    /// The id of a declared group, when it was found.
    pub fn group_id(&self, name: &str) -> Option<&str> {
        match self.security_groups.get(name) {
            Some(Observed::Known(Some(group))) => Some(group.id.as_str()),
            _ => None,
        }
    }

    /// Every part that could not be read, as (what, why), for reports.
    pub fn unknowns(&self) -> Vec<(String, Unread)> {
        let mut out = Vec::new();
        for (name, group) in &self.security_groups {
            match group {
                Observed::Unknown(why) => out.push((format!("security group {name}"), why.clone())),
                Observed::Known(Some(g)) => {
                    if let Some(why) = g.ingress.unknown_reason() {
                        out.push((format!("ingress rules of {name}"), why.clone()));
                    }
                }
                Observed::Known(None) => {}
            }
        }
        for ((cluster, service), observed) in &self.services {
            if let Some(why) = observed.unknown_reason() {
                out.push((format!("service {cluster}/{service}"), why.clone()));
            }
        }
        for (arn, observed) in &self.task_definitions {
            if let Some(why) = observed.unknown_reason() {
                out.push((format!("task definition {arn}"), why.clone()));
            }
        }
        for (name, cluster) in &self.clusters {
            if let Some(why) = cluster.tasks.unknown_reason() {
                out.push((format!("tasks of cluster {name}"), why.clone()));
            }
            if let Some(why) = cluster.container_instances.unknown_reason() {
                out.push((
                    format!("container instances of cluster {name}"),
                    why.clone(),
                ));
            }
        }
        for (id, observed) in &self.instances {
            if let Some(why) = observed.unknown_reason() {
                out.push((format!("instance {id}"), why.clone()));
            }
        }
        for (name, observed) in &self.target_groups {
            match observed {
                Observed::Unknown(why) => out.push((format!("target group {name}"), why.clone())),
                Observed::Known(Some(tg)) => {
                    if let Some(why) = tg.targets.unknown_reason() {
                        out.push((format!("targets of {name}"), why.clone()));
                    }
                }
                Observed::Known(None) => {}
            }
        }
        for (name, observed) in &self.load_balancers {
            match observed {
                Observed::Unknown(why) => out.push((format!("load balancer {name}"), why.clone())),
                Observed::Known(Some(lb)) => {
                    if let Some(why) = lb.listeners.unknown_reason() {
                        out.push((format!("listeners of {name}"), why.clone()));
                    }
                }
                Observed::Known(None) => {}
            }
        }
        out
    }
}
