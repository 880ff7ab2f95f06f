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
    /// The value, or `None` when the read failed.
    pub fn known(&self) -> Option<&T> {
        match self {
            Observed::Known(value) => Some(value),
            Observed::Unknown(_) => None,
        }
    }

    /// The value, mutably, or `None` when the read failed.
    pub fn known_mut(&mut self) -> Option<&mut T> {
        match self {
            Observed::Known(value) => Some(value),
            Observed::Unknown(_) => None,
        }
    }

    /// Why the read failed, or `None` when it completed.
    pub fn unknown_reason(&self) -> Option<&Unread> {
        match self {
            Observed::Known(_) => None,
            Observed::Unknown(reason) => Some(reason),
        }
    }

    /// Transforms a known value; an unknown one keeps its reason.
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
    /// An IPv4 CIDR, host bits cleared.
    Ipv4(Ipv4Net),
    /// An IPv6 CIDR, host bits cleared.
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
    /// The IP protocol, by name.
    pub protocol: Protocol,
    /// Port range, or ICMP (type, code); `-1..-1` for protocol `all`.
    pub ports: PortRange,
    /// Where the traffic is allowed from.
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

impl RuleKey {
    /// Whether the two rules can carry some of the same traffic: the same
    /// protocol (or either is "all") and overlapping ports, whatever the
    /// sources.
    pub fn may_carry_same_traffic(&self, other: &RuleKey) -> bool {
        let protocol = self.protocol == other.protocol
            || self.protocol == Protocol::All
            || other.protocol == Protocol::All;
        let any = |r: &RuleKey| r.ports.from < 0 || r.protocol == Protocol::All;
        protocol
            && (any(self)
                || any(other)
                || (self.ports.from <= other.ports.to && other.ports.from <= self.ports.to))
    }
}

impl RuleKey {
    /// The rule as text, with its source written as `source`.
    pub fn text_with(&self, source: &str) -> String {
        if self.protocol == Protocol::All {
            format!("all traffic from {source}")
        } else {
            format!("{} {} from {source}", self.protocol, self.ports)
        }
    }
}

impl std::fmt::Display for RuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text_with(&self.source.to_string()))
    }
}

/// One live ingress rule (EC2 reports one rule per source).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveRule {
    /// `sgr-...`; revokes use it when present.
    pub rule_id: Option<String>,
    /// The rule in comparable form.
    pub key: RuleKey,
    /// The rule's description; not part of its identity.
    pub description: Option<String>,
    /// Created by ecs-reconciler (tagged `managed-by=ecs-reconciler`).
    pub managed_by_us: bool,
    /// The account owning a referenced group, when it is not the group's
    /// own account (a peered or shared VPC's group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_account: Option<String>,
}

/// An address family, as prefix lists and the rule quota count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AddressFamily {
    /// IPv4.
    IPv4,
    /// IPv6.
    IPv6,
}

/// A managed prefix list (DescribeManagedPrefixLists).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePrefixList {
    /// `pl-...`.
    pub id: String,
    /// Its name, e.g. `com.amazonaws.global.cloudfront.origin-facing`.
    pub name: String,
    /// The family of its entries.
    pub family: AddressFamily,
    /// `MaxEntries`, when reported (customer-managed lists).
    pub max_entries: Option<u32>,
    /// Owned by AWS (an AWS-managed list).
    pub aws_managed: bool,
}

impl LivePrefixList {
    /// How many rules a reference to it counts as against a group's rule
    /// quota: an AWS-managed list its documented weight, another its
    /// MaxEntries (Amazon VPC User Guide, "AWS-managed prefix list weight";
    /// "Security group size").
    pub fn weight(&self) -> usize {
        // The weights AWS documents, by name suffix.
        const WEIGHTS: [(&str, usize); 8] = [
            ("cloudfront.origin-facing", 55),
            ("route53-healthchecks", 25),
            ("vpc-lattice", 10),
            (".s3express", 6),
            ("groundstation", 5),
            ("ec2-instance-connect", 2),
            (".dynamodb", 1),
            (".s3", 1),
        ];
        let documented = self
            .aws_managed
            .then(|| {
                WEIGHTS
                    .iter()
                    .find(|(suffix, _)| self.name.ends_with(suffix))
            })
            .flatten()
            .map(|(_, weight)| *weight);
        documented
            .or(self.max_entries.map(|n| n as usize))
            .unwrap_or(1)
            .max(1)
    }

    /// The name a person knows it by, with its id.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }
}

/// A security group found for a declared one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSecurityGroup {
    /// `sg-...`.
    pub id: String,
    /// The group's name in EC2 (may differ from the file's when the file
    /// gives its id).
    pub name: String,
    /// The VPC it belongs to, when EC2 reports one.
    pub vpc_id: Option<String>,
    /// Ingress rules only.
    pub ingress: Observed<Vec<LiveRule>>,
}

/// An ECS service.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LiveService {
    /// The service's ARN.
    pub arn: String,
    /// ECS's status (`ACTIVE`, `DRAINING`); only an `ACTIVE` service is
    /// scaled or has its targets reconciled.
    pub status: String,
    /// The count ECS keeps running; the one value this tool changes.
    pub desired_count: i32,
    /// Tasks running now.
    pub running_count: i32,
    /// Tasks starting now.
    pub pending_count: i32,
    /// `EC2`, `FARGATE`, `EXTERNAL`; `None` when the service uses a
    /// capacity provider strategy instead.
    pub launch_type: Option<String>,
    /// `REPLICA` or `DAEMON`; a `DAEMON` service's count is never changed.
    pub scheduling_strategy: Option<String>,
    /// The task definition the service runs, as an ARN.
    pub task_definition_arn: Option<String>,
    /// `ECS` (rolling or ECS-native blue/green), `CODE_DEPLOY` or
    /// `EXTERNAL` (task sets); `None` when unreported (ECS).
    pub deployment_controller: Option<String>,
    /// `deploymentConfiguration.strategy`: `ROLLING` (the default),
    /// `BLUE_GREEN`, `LINEAR`, `CANARY`; `None` when unreported.
    pub deployment_strategy: Option<String>,
    /// The service's deployments (ECS controller), newest first as ECS
    /// lists them.
    pub deployments: Vec<LiveDeployment>,
    /// The service's task sets (`CODE_DEPLOY` / `EXTERNAL` controllers).
    pub task_sets: Vec<LiveTaskSet>,
    /// The capacity provider strategy; empty with a launch type.
    pub capacity_provider_strategy: Vec<LiveCapacityProviderItem>,
}

/// One deployment of a service (DescribeServices `deployments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveDeployment {
    /// `ecs-svc/...`: what the deployment's tasks carry in `startedBy`.
    pub id: String,
    /// `PRIMARY` (the newest), `ACTIVE` (being replaced) or `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`, when reported.
    pub rollout_state: Option<String>,
}

/// One task set of a service (`CODE_DEPLOY` / `EXTERNAL` controllers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTaskSet {
    /// `ecs-svc/...`: what its tasks carry in `startedBy`.
    pub id: String,
    /// `PRIMARY` (takes production traffic), `ACTIVE` or `DRAINING`.
    pub status: String,
    /// `STEADY_STATE` or `STABILIZING`, when reported.
    pub stability_status: Option<String>,
}

/// One entry of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCapacityProviderItem {
    /// The capacity provider's name.
    pub provider: String,
    /// Its relative share.
    pub weight: i32,
    /// Tasks placed on it first.
    pub base: i32,
}

/// What kind of capacity a provider gives tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityProviderKind {
    /// An Auto Scaling group of EC2 instances: the EC2 launch type's
    /// capacity.
    AutoScalingGroup,
    /// `FARGATE` or `FARGATE_SPOT`.
    Fargate,
    /// ECS Managed Instances.
    ManagedInstances,
    /// Anything else ECS reports.
    Other,
}

impl CapacityProviderKind {
    /// The launch type whose capacity this kind gives (`EC2`, `FARGATE`),
    /// when there is one.
    pub fn launch_type(&self) -> Option<&'static str> {
        match self {
            CapacityProviderKind::AutoScalingGroup => Some("EC2"),
            CapacityProviderKind::Fargate => Some("FARGATE"),
            CapacityProviderKind::ManagedInstances | CapacityProviderKind::Other => None,
        }
    }
}

/// One container's port mapping as its task definition declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePortMapping {
    /// The port inside the container.
    pub container_port: Option<i32>,
    /// The port on the host; absent or 0 means dynamic in bridge mode.
    pub host_port: Option<i32>,
}

/// The parts of a task definition that are checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTaskDefinition {
    /// The ARN of this revision.
    pub arn: String,
    /// The family, without the revision.
    pub family: String,
    /// Container name → its port mappings.
    pub containers: BTreeMap<String, Vec<LivePortMapping>>,
}

/// A port a running container is reachable on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveBinding {
    /// The container the binding belongs to.
    pub container_name: String,
    /// The port inside the container.
    pub container_port: i32,
    /// The port on the EC2 instance: the target's port.
    pub host_port: i32,
    /// `tcp` or `udp`; ALB targets are tcp.
    pub protocol: Option<String>,
}

/// An ECS task of a managed service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTask {
    /// The task's ARN.
    pub arn: String,
    /// The service that owns it (from the task's `group` `service:NAME`).
    pub service: Option<String>,
    /// Where the task is (`PROVISIONING`, `RUNNING`, `STOPPED`, ...).
    pub last_status: String,
    /// Where ECS is taking it (`RUNNING`, `STOPPED`).
    pub desired_status: String,
    /// The container instance it was placed on; `None` until placed.
    pub container_instance_arn: Option<String>,
    /// The ports its containers are reachable on.
    pub bindings: Vec<LiveBinding>,
    /// The deployment or task set that started it (`ecs-svc/...`), when
    /// ECS started it for a service.
    pub started_by: Option<String>,
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
    /// The container instance's ARN, as tasks refer to it.
    pub arn: String,
    /// Fixed for the container instance's life (its ARN is never reused).
    pub ec2_instance_id: Option<String>,
}

/// What was read for one cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveCluster {
    /// Tasks of the services a declared target group follows (no others
    /// are read).
    pub tasks: Observed<Vec<LiveTask>>,
    /// The cluster's container instances; known and empty when nothing
    /// declared needs them (no bound target group, no instance groups).
    pub container_instances: Observed<Vec<LiveContainerInstance>>,
}

/// An EC2 instance behind a container instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveInstance {
    /// `i-...`.
    pub id: String,
    /// EC2's state name (`running`, `shutting-down`, ...); terminating
    /// instances get no attachments.
    pub state: String,
    /// The groups of its primary network interface (device index 0), in
    /// the order EC2 reports them: what the cluster's groups attach to.
    pub security_group_ids: Vec<String>,
    /// Its primary network interface (`eni-...`), when reported: groups
    /// are written through it, which works whatever other interfaces (a
    /// trunk ENI) the instance has.
    pub primary_network_interface_id: Option<String>,
    /// Its VPC: a group from another VPC cannot be attached.
    pub vpc_id: Option<String>,
}

/// A registered target, keyed by (id, port) as ELBv2 keys them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetKey {
    /// The target's id: an EC2 instance id for the instance targets this
    /// tool reconciles.
    pub id: String,
    /// The host port.
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
    /// Which target.
    pub key: TargetKey,
    /// ELBv2's health state, lower-case; empty when none was reported.
    pub state: String,
}

impl LiveTarget {
    /// ELBv2 is deregistering it: the plan treats it as not registered, and
    /// never deregisters it again.
    pub fn is_draining(&self) -> bool {
        self.state == "draining"
    }
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTargetGroup {
    /// The target group's ARN.
    pub arn: String,
    /// `instance`, `ip`, `lambda` or `alb`; targets are reconciled only
    /// for `instance` (or when unreported).
    pub target_type: Option<String>,
    /// The health check path; `None` when unset.
    pub health_check_path: Option<String>,
    /// Registered targets and their health.
    pub targets: Observed<Vec<LiveTarget>>,
    /// 0 when `targets` was read in this pass; otherwise a quiet group's
    /// earlier read, reused (see the aws crate's `target_reads`). The plan
    /// deregisters nothing on a reused read.
    pub targets_read_passes_ago: u64,
}

/// A listener of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveListener {
    /// The port it listens on.
    pub port: i32,
    /// `HTTP`, `HTTPS`, ..., as ELBv2 names it.
    pub protocol: Option<String>,
}

/// A load balancer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveLoadBalancer {
    /// The load balancer's ARN.
    pub arn: String,
    /// Its DNS name: the address the plan reports.
    pub dns_name: Option<String>,
    /// Group ids, in the order ELBv2 reports them.
    pub security_group_ids: Vec<String>,
    /// Its VPC: a group from another VPC cannot be attached.
    pub vpc_id: Option<String>,
    /// Its listeners; known and empty when the file declares none (then
    /// they are not read).
    pub listeners: Observed<Vec<LiveListener>>,
}

/// One observation of everything the desired state names. Maps of declared
/// resources are keyed by the names used in the file; `Known(None)` means
/// "looked, not there".
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Declared security groups.
    pub security_groups: BTreeMap<String, Observed<Option<LiveSecurityGroup>>>,
    /// Keyed by (cluster, service).
    #[serde(serialize_with = "serialize_pair_map")]
    pub services: BTreeMap<(String, String), Observed<Option<LiveService>>>,
    /// Keyed by task definition ARN.
    pub task_definitions: BTreeMap<String, Observed<LiveTaskDefinition>>,
    /// Every cluster the file names (declared, or named by a service or a
    /// target group).
    pub clusters: BTreeMap<String, LiveCluster>,
    /// EC2 instances behind the managed clusters' container instances.
    pub instances: BTreeMap<String, Observed<LiveInstance>>,
    /// Declared target groups.
    pub target_groups: BTreeMap<String, Observed<Option<LiveTargetGroup>>>,
    /// Declared load balancers.
    pub load_balancers: BTreeMap<String, Observed<Option<LiveLoadBalancer>>>,
    /// The capacity providers the services' strategies name, by name;
    /// `Known(None)`: no such provider.
    pub capacity_providers: BTreeMap<String, Observed<Option<CapacityProviderKind>>>,
    /// The managed prefix lists of the region, read when a declared rule
    /// names one or a live rule references one; `None`: not read.
    pub prefix_lists: Option<Observed<Vec<LivePrefixList>>>,
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
    /// The prefix list with this id, when the lists were read and have it.
    pub fn prefix_list(&self, id: &str) -> Option<&LivePrefixList> {
        match &self.prefix_lists {
            Some(Observed::Known(lists)) => lists.iter().find(|l| l.id == id),
            _ => None,
        }
    }

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
        for (name, observed) in &self.capacity_providers {
            if let Some(why) = observed.unknown_reason() {
                out.push((format!("capacity provider {name}"), why.clone()));
            }
        }
        if let Some(Observed::Unknown(why)) = &self.prefix_lists {
            out.push(("managed prefix lists".into(), why.clone()));
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
