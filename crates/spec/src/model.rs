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
    Tcp,
    Udp,
    Icmp,
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

/// An inclusive port range, `from <= to`. For ICMP it is (type, code) as
/// EC2 stores it; `-1` means "all".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PortRange {
    pub from: i32,
    pub to: i32,
}

impl PortRange {
    /// The range EC2 reports for "all ports / all types".
    pub const ALL: PortRange = PortRange { from: -1, to: -1 };

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
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Ipv4(net) => write!(f, "{net}"),
            RuleSource::Ipv6(net) => write!(f, "{net}"),
            RuleSource::DeclaredGroup(name) => write!(f, "group {name}"),
            RuleSource::ExternalGroup(id) => write!(f, "group {id}"),
        }
    }
}

/// One desired ingress rule: exactly one protocol, port range and source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct IngressRule {
    pub protocol: Protocol,
    /// `PortRange::ALL` for `all` and for ICMP without a type.
    pub ports: PortRange,
    pub source: RuleSource,
    /// Written when the rule is created; never compared.
    pub description: Option<String>,
}

/// A security group, found by name (and VPC, or by id when ambiguous).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupSpec {
    pub name: String,
    pub id: Option<String>,
    pub vpc_id: Option<String>,
    pub management: RuleManagement,
    pub mode: Mode,
    pub ingress: Vec<IngressRule>,
}

/// An ECS cluster and the groups every EC2 instance behind its container
/// instances must carry (in addition to the instance's other groups).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub name: String,
    /// Names of groups declared in this file.
    pub instance_security_groups: Vec<String>,
    pub mode: Mode,
}

/// What the service's task definition must look like (checked, reported,
/// never changed).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionCheck {
    pub family: String,
    pub container_name: Option<String>,
    pub container_port: Option<u16>,
    /// `Some(0)` means dynamic host port mapping.
    pub host_port: Option<u16>,
}

/// How many tasks a service must run: exactly `min` when `min == max`;
/// otherwise a range an autoscaler owns (desiredCount inside it is left
/// alone, outside it is clamped to the nearest bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplicaBounds {
    pub min: u32,
    pub max: u32,
}

impl ReplicaBounds {
    pub fn exact(count: u32) -> ReplicaBounds {
        ReplicaBounds {
            min: count,
            max: count,
        }
    }

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
    pub name: String,
    pub cluster: String,
    pub replicas: ReplicaBounds,
    pub launch_type: Option<String>,
    pub scheduling_strategy: Option<String>,
    pub task_definition: Option<TaskDefinitionCheck>,
    pub mode: Mode,
}

/// A target group bound to a service's container name and port.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupSpec {
    pub name: String,
    pub health_check_path: Option<String>,
    /// The bound service: (cluster, service name), both declared here.
    pub cluster: String,
    pub service: String,
    pub container_name: String,
    pub container_port: u16,
    pub membership: TargetMembership,
    pub mode: Mode,
}

/// A listener the load balancer must have (checked and reported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerCheck {
    pub port: u16,
    /// Upper-case, e.g. `HTTP`.
    pub protocol: Option<String>,
}

/// An application load balancer: its groups are attached (others kept), its
/// DNS name is reported as the API's address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerSpec {
    pub name: String,
    /// Names of groups declared in this file.
    pub security_groups: Vec<String>,
    pub listeners: Vec<ListenerCheck>,
    pub mode: Mode,
}

/// Caps on destructive changes per resource and pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub max_destructive_per_pass: u32,
    /// Of the resource's current members.
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

/// The whole validated file. Each resource's `mode` is already resolved
/// against the global one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredState {
    pub mode: Mode,
    pub policy: Policy,
    pub security_groups: Vec<SecurityGroupSpec>,
    pub clusters: Vec<ClusterSpec>,
    pub services: Vec<ServiceSpec>,
    pub target_groups: Vec<TargetGroupSpec>,
    pub load_balancers: Vec<LoadBalancerSpec>,
}

impl DesiredState {
    pub fn security_group(&self, name: &str) -> Option<&SecurityGroupSpec> {
        self.security_groups.iter().find(|g| g.name == name)
    }

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
