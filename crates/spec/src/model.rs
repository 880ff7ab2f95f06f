//! The validated desired state: what the rest of the system consumes.
//!
//! Everything here has already passed syntax, schema and semantic validation
//! (see `load`): CIDRs are parsed and canonical, port ranges are ordered,
//! every reference resolves to a declared resource. Names are the names a
//! person sees in the AWS console; IDs appear only where the file gave one.

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

/// Whether drift on a resource is corrected or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Correct drift.
    #[default]
    Enforce,
    /// Report drift, change nothing.
    Observe,
    /// `paused: true`: change nothing, and show drift as paused rather
    /// than count it.
    Paused,
}

/// How the ingress rules of a security group are owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuleManagement {
    /// The file is the whole ingress list: extra rules are revoked.
    #[default]
    Exclusive,
    /// Only rules this tool created (tagged / marked) are ever revoked.
    Owned,
}

/// How the registrations of a target group are owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TargetMembership {
    /// The group holds exactly the bound service's running tasks.
    #[default]
    Exclusive,
    /// Other registrations may exist: missing ones are added, none removed.
    Shared,
}

/// IP protocol of a rule, normalised (AWS accepts names and numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (6): `ports` is a port range.
    Tcp,
    /// UDP (17): `ports` is a port range.
    Udp,
    /// ICMP for IPv4 (1): `ports` is (type, code).
    Icmp,
    /// ICMP for IPv6 (58): `ports` is (type, code).
    Icmpv6,
    /// Every protocol (`-1`); ports are meaningless.
    All,
}

impl Protocol {
    /// The protocol as EC2 spells it in `IpProtocol`.
    pub fn as_aws(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::All => "-1",
        }
    }

    /// Parses a name or an IANA number as EC2 reports it.
    pub fn parse(text: &str) -> Option<Protocol> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" | "6" => Some(Protocol::Tcp),
            "udp" | "17" => Some(Protocol::Udp),
            "icmp" | "1" => Some(Protocol::Icmp),
            "icmpv6" | "58" => Some(Protocol::Icmpv6),
            "all" | "-1" => Some(Protocol::All),
            _ => None,
        }
    }

    /// Whether the protocol carries a port range (tcp/udp) rather than
    /// ICMP type/code or nothing.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::All => "all",
        })
    }
}

/// An inclusive port range, `from <= to` for tcp and udp. For ICMP it is
/// (type, code) as EC2 stores it; `-1` means "all".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortRange {
    /// First port, 0-65535; for ICMP the type, 0-255 or -1 (any).
    pub from: i32,
    /// Last port, `from` to 65535; for ICMP the code, 0-255 or -1 (any).
    pub to: i32,
}

impl PortRange {
    /// The range EC2 reports for "all ports / all types".
    pub const ALL: PortRange = PortRange { from: -1, to: -1 };

    /// The range holding only `port`.
    pub fn single(port: i32) -> PortRange {
        PortRange {
            from: port,
            to: port,
        }
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == PortRange::ALL {
            f.write_str("all")
        } else if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// Where a rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleSource {
    /// An IPv4 CIDR, canonical (host bits cleared).
    Ipv4(Ipv4Net),
    /// An IPv6 CIDR, canonical (host bits cleared).
    Ipv6(Ipv6Net),
    /// A security group declared in this file, by its name.
    DeclaredGroup(String),
    /// A security group not managed here, by its id (`sg-...`).
    ExternalGroup(String),
    /// A security group of another AWS account (peered or shared VPC).
    AccountGroup {
        /// The owning account, 12 digits.
        account: String,
        /// The group's id (`sg-...`).
        group_id: String,
    },
    /// A managed prefix list by id (`pl-...`).
    PrefixListId(String),
    /// A managed prefix list by name, resolved against the live lists.
    PrefixListName(String),
}

impl RuleSource {
    /// The account owning a source group of another account.
    pub fn account(&self) -> Option<&str> {
        match self {
            RuleSource::AccountGroup { account, .. } => Some(account),
            _ => None,
        }
    }
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Ipv4(net) => write!(f, "{net}"),
            RuleSource::Ipv6(net) => write!(f, "{net}"),
            RuleSource::DeclaredGroup(name) => write!(f, "group {name}"),
            RuleSource::ExternalGroup(id) => write!(f, "group {id}"),
            RuleSource::AccountGroup { account, group_id } => {
                write!(f, "group {group_id} of account {account}")
            }
            RuleSource::PrefixListId(id) => write!(f, "prefix list {id}"),
            RuleSource::PrefixListName(name) => write!(f, "prefix list {name}"),
        }
    }
}

/// One desired ingress rule: exactly one protocol, port range and source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct IngressRule {
    /// The IP protocol; decides what `ports` means.
    pub protocol: Protocol,
    /// `PortRange::ALL` for `all` and for ICMP without a type.
    pub ports: PortRange,
    /// Where the traffic comes from; a CIDR is canonical.
    pub source: RuleSource,
    /// Written when the rule is created; never compared.
    pub description: Option<String>,
}

/// A security group, found by name (and VPC, or by id when ambiguous).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupSpec {
    /// The group's name (GroupName) as in the EC2 console: non-empty, not
    /// starting with `sg-`; (`name`, `vpc_id`) is unique in the file.
    pub name: String,
    /// The group's id (`sg-` and lower-case hex) when the file pins it;
    /// unique in the file.
    pub id: Option<String>,
    /// The group's VPC (`vpc-` and lower-case hex), when the file gives it.
    pub vpc_id: Option<String>,
    /// Which existing ingress rules may be revoked (default `Exclusive`).
    pub management: RuleManagement,
    /// The group's mode, resolved: `paused`, else its own, else the file's.
    pub mode: Mode,
    /// The declared ingress rules in file order, no two alike; empty means
    /// the group admits nothing.
    pub ingress: Vec<IngressRule>,
}

/// An ECS cluster and the groups every EC2 instance behind its container
/// instances must carry (in addition to the instance's other groups).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// The ECS cluster's name: non-empty, unique in the file.
    pub name: String,
    /// Names of groups declared in this file.
    pub instance_security_groups: Vec<String>,
    /// The cluster's mode, resolved: `paused`, else its own, else the file's.
    pub mode: Mode,
}

/// What the service's task definition must look like (checked, reported,
/// never changed).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionCheck {
    /// The task definition family the service must use (any revision);
    /// non-empty.
    pub family: String,
    /// A container the task definition must have; non-empty when given.
    pub container_name: Option<String>,
    /// A container port (1-65535) that must be mapped.
    pub container_port: Option<u16>,
    /// `Some(0)` means dynamic host port mapping.
    pub host_port: Option<u16>,
}

/// One expected entry of a capacity provider strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderCheck {
    /// The provider's name; unique within the strategy.
    pub provider: String,
    /// Its relative share (0-1000; ECS's default 0).
    pub weight: i32,
    /// Tasks placed on it first (0-100000; ECS's default 0).
    pub base: i32,
}

/// How many tasks a service must run: exactly `min` when `min == max`;
/// otherwise a range an autoscaler owns (desiredCount inside it is left
/// alone, outside it is clamped to the nearest bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplicaBounds {
    /// Fewest tasks, 0-10000.
    pub min: u32,
    /// Most tasks, `min` to 10000.
    pub max: u32,
}

impl ReplicaBounds {
    /// Exactly `count` tasks (`min == max == count`).
    pub fn exact(count: u32) -> ReplicaBounds {
        ReplicaBounds {
            min: count,
            max: count,
        }
    }

    /// Whether the count is exact (`min == max`) rather than a range.
    pub fn is_exact(&self) -> bool {
        self.min == self.max
    }

    /// The desiredCount to set, or `None` when `current` is acceptable.
    pub fn correction(&self, current: i32) -> Option<i32> {
        let min = i32::try_from(self.min).unwrap_or(i32::MAX);
        let max = i32::try_from(self.max).unwrap_or(i32::MAX);
        if current < min {
            Some(min)
        } else if current > max {
            Some(max)
        } else {
            None
        }
    }
}

impl std::fmt::Display for ReplicaBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_exact() {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// An ECS service. `replicas` is enforced; the other fields are checked and
/// reported when they differ.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// The ECS service's name: non-empty; (`cluster`, `name`) is unique in
    /// the file.
    pub name: String,
    /// The name of the cluster the service runs in; non-empty.
    pub cluster: String,
    /// How many tasks must run (desiredCount); enforced.
    pub replicas: ReplicaBounds,
    /// Expected launch type as ECS spells it (`EC2`, `FARGATE`,
    /// `EXTERNAL`); reported if it differs.
    pub launch_type: Option<String>,
    /// Expected capacity provider strategy, sorted by provider; reported
    /// if it differs.
    pub capacity_provider_strategy: Option<Vec<CapacityProviderCheck>>,
    /// Expected scheduling strategy (`REPLICA` or `DAEMON`); reported if it
    /// differs.
    pub scheduling_strategy: Option<String>,
    /// Expectations on the task definition; checked, never changed.
    pub task_definition: Option<TaskDefinitionCheck>,
    /// The service's mode, resolved: `paused`, else its own, else the file's.
    pub mode: Mode,
}

/// A target group bound to a service's container name and port.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupSpec {
    /// The target group's name: 1-32 letters, digits and hyphens, not
    /// starting or ending with one; unique in the file.
    pub name: String,
    /// The health check path, starting with `/`, at most 1024 characters;
    /// set when it differs.
    pub health_check_path: Option<String>,
    /// The bound service's cluster: as written, or the one cluster that
    /// declares a service of that name.
    pub cluster: String,
    /// The bound service's name; (`cluster`, `service`) is a declared
    /// service.
    pub service: String,
    /// The container of the service's tasks that receives traffic;
    /// non-empty.
    pub container_name: String,
    /// That container's port, 1-65535.
    pub container_port: u16,
    /// Which registrations may be deregistered (default `Exclusive`).
    pub membership: TargetMembership,
    /// The target group's mode, resolved: `paused`, else its own, else the
    /// file's.
    pub mode: Mode,
}

/// A listener the load balancer must have (checked and reported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerCheck {
    /// The listener's port, 1-65535; unique per load balancer.
    pub port: u16,
    /// Upper-case, e.g. `HTTP`.
    pub protocol: Option<String>,
}

/// An application load balancer: its groups are attached (others kept), its
/// DNS name is reported as the API's address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    /// The load balancer's name: 1-32 letters, digits and hyphens, not
    /// starting or ending with one nor with `internal-`; unique in the file.
    pub name: String,
    /// Names of groups declared in this file.
    pub security_groups: Vec<String>,
    /// Listeners that must exist, one per port; checked and reported.
    pub listeners: Vec<ListenerCheck>,
    /// The load balancer's mode, resolved: `paused`, else its own, else the
    /// file's.
    pub mode: Mode,
}

/// Caps on destructive changes per resource and pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Most removals (revoked rules, deregistered targets) per resource and
    /// pass, 0-10000; default 10.
    pub max_destructive_per_pass: u32,
    /// The same cap as a percentage (0-100) of the resource's current
    /// members; default 50.
    pub max_destructive_percent: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_destructive_per_pass: 10,
            max_destructive_percent: 50,
        }
    }
}

impl Policy {
    /// How many of a resource's `members` one pass may remove.
    pub fn destructive_allowance(&self, members: usize) -> usize {
        let by_share = members * self.max_destructive_percent as usize / 100;
        by_share.min(self.max_destructive_per_pass as usize)
    }
}

/// The account's EC2 quotas the plan checks against (AWS's defaults unless
/// the file raises them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quotas {
    /// Security groups per network interface (and per load balancer).
    pub groups_per_interface: usize,
    /// Inbound rules per security group, per address family.
    pub rules_per_group: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            groups_per_interface: 5,
            rules_per_group: 60,
        }
    }
}

pub use crate::file::{NotificationEvent, NotificationFormat};

/// Where a webhook's URL comes from (the file never holds it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UrlFrom {
    /// This environment variable of the daemon.
    Env(String),
    /// This file (a mounted secret).
    File(String),
}

/// A validated webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationSpec {
    /// Unique in the file.
    pub name: String,
    /// Where its URL comes from.
    pub url: UrlFrom,
    /// How messages are written.
    pub format: NotificationFormat,
    /// The events it wants.
    pub events: std::collections::BTreeSet<NotificationEvent>,
    /// `read-failing` after this long.
    pub read_failing_after: std::time::Duration,
    /// Events of one kind about one resource within this window are one
    /// message.
    pub coalesce: std::time::Duration,
}

/// The whole validated file. Each resource's `mode` is already resolved
/// against the global one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    /// The file's `mode` (default `Enforce`); never `Paused`.
    pub mode: Mode,
    /// Caps on destructive changes; the defaults when the file has none.
    pub policy: Policy,
    /// The account's quotas; AWS's defaults when the file has none.
    pub quotas: Quotas,
    /// The declared security groups, in file order.
    pub security_groups: Vec<SecurityGroupSpec>,
    /// The declared clusters, in file order.
    pub clusters: Vec<ClusterSpec>,
    /// The declared services, in file order.
    pub services: Vec<ServiceSpec>,
    /// The declared target groups, in file order.
    pub target_groups: Vec<TargetGroupSpec>,
    /// The declared load balancers, in file order.
    pub load_balancers: Vec<LoadBalancerSpec>,
    /// The webhooks, in file order.
    pub notifications: Vec<NotificationSpec>,
}

impl DesiredState {
    /// The first declared security group named `name` (two may share a
    /// name in different VPCs).
    pub fn security_group(&self, name: &str) -> Option<&SecurityGroupSpec> {
        self.security_groups.iter().find(|g| g.name == name)
    }

    /// The declared service `name` in cluster `cluster`.
    pub fn service(&self, cluster: &str, name: &str) -> Option<&ServiceSpec> {
        self.services
            .iter()
            .find(|s| s.cluster == cluster && s.name == name)
    }

    /// Cluster names referenced anywhere (clusters, services, bindings),
    /// deduplicated, in first-seen order.
    pub fn cluster_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let all = self
            .clusters
            .iter()
            .map(|c| &c.name)
            .chain(self.services.iter().map(|s| &s.cluster))
            .chain(self.target_groups.iter().map(|t| &t.cluster));
        for name in all {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}
