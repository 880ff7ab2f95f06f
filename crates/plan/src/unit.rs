//! Unit identities: each declared resource is one unit of work for the
//! daemon (scheduled, retried and reported on its own), and every change a
//! plan makes belongs to exactly one of them.
//!
//! The identity is a type so that adding a resource kind is a compiler-led
//! edit. Its text form (`security-group/NAME`, `service/CLUSTER/NAME`, ...)
//! exists only at the edges — status JSON, metrics labels, logs — through
//! [`Display`](std::fmt::Display) and [`FromStr`].

use std::fmt;
use std::str::FromStr;

use ecs_reconciler_spec::{DesiredState, Mode};
use serde::{Serialize, Serializer};

/// The kinds of declared resources, in the alphabetical order of their
/// names so that units sort as their text forms do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// A cluster's instance attachments (the groups its instances carry).
    Cluster,
    /// An ALB and its security groups.
    LoadBalancer,
    /// A security group and its ingress rules.
    SecurityGroup,
    /// An ECS service's desired count and checks.
    Service,
    /// A target group's targets and health check path.
    TargetGroup,
}

impl UnitKind {
    /// Every kind, in order.
    pub const ALL: [UnitKind; 5] = [
        UnitKind::Cluster,
        UnitKind::LoadBalancer,
        UnitKind::SecurityGroup,
        UnitKind::Service,
        UnitKind::TargetGroup,
    ];

    /// The kebab-case name used in unit ids, metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Cluster => "cluster",
            UnitKind::LoadBalancer => "load-balancer",
            UnitKind::SecurityGroup => "security-group",
            UnitKind::Service => "service",
            UnitKind::TargetGroup => "target-group",
        }
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One declared resource: the unit the daemon schedules and the owner of
/// every change planned for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitId {
    /// `cluster/NAME`.
    Cluster(String),
    /// `load-balancer/NAME`.
    LoadBalancer(String),
    /// `security-group/NAME`.
    SecurityGroup(String),
    /// `service/CLUSTER/NAME`.
    Service {
        /// The cluster the service runs in.
        cluster: String,
        /// The service's name.
        name: String,
    },
    /// `target-group/NAME`.
    TargetGroup(String),
}

impl UnitId {
    /// The security group `name`.
    pub fn security_group(name: &str) -> UnitId {
        UnitId::SecurityGroup(name.to_string())
    }

    /// The instance attachments of cluster `name`.
    pub fn cluster(name: &str) -> UnitId {
        UnitId::Cluster(name.to_string())
    }

    /// The service `name` of `cluster`.
    pub fn service(cluster: &str, name: &str) -> UnitId {
        UnitId::Service {
            cluster: cluster.to_string(),
            name: name.to_string(),
        }
    }

    /// The target group `name`.
    pub fn target_group(name: &str) -> UnitId {
        UnitId::TargetGroup(name.to_string())
    }

    /// The load balancer `name`.
    pub fn load_balancer(name: &str) -> UnitId {
        UnitId::LoadBalancer(name.to_string())
    }

    /// What kind of resource this is.
    pub fn kind(&self) -> UnitKind {
        match self {
            UnitId::Cluster(_) => UnitKind::Cluster,
            UnitId::LoadBalancer(_) => UnitKind::LoadBalancer,
            UnitId::SecurityGroup(_) => UnitKind::SecurityGroup,
            UnitId::Service { .. } => UnitKind::Service,
            UnitId::TargetGroup(_) => UnitKind::TargetGroup,
        }
    }

    /// The name within its kind, as metrics label it: `NAME`, or
    /// `CLUSTER/NAME` for a service.
    pub fn name(&self) -> String {
        match self {
            UnitId::Cluster(name)
            | UnitId::LoadBalancer(name)
            | UnitId::SecurityGroup(name)
            | UnitId::TargetGroup(name) => name.clone(),
            UnitId::Service { cluster, name } => format!("{cluster}/{name}"),
        }
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitId::Service { cluster, name } => write!(f, "service/{cluster}/{name}"),
            UnitId::Cluster(name)
            | UnitId::LoadBalancer(name)
            | UnitId::SecurityGroup(name)
            | UnitId::TargetGroup(name) => write!(f, "{}/{name}", self.kind()),
        }
    }
}

/// A text that is not a unit id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a unit (expected KIND/NAME, e.g. security-group/web or service/CLUSTER/NAME)"
)]
pub struct ParseUnitIdError(pub String);

impl FromStr for UnitId {
    type Err = ParseUnitIdError;

    fn from_str(text: &str) -> Result<UnitId, ParseUnitIdError> {
        let fail = || ParseUnitIdError(text.to_string());
        let (kind, name) = text.split_once('/').ok_or_else(fail)?;
        if name.is_empty() {
            return Err(fail());
        }
        let kind = UnitKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(fail)?;
        Ok(match kind {
            UnitKind::Cluster => UnitId::Cluster(name.to_string()),
            UnitKind::LoadBalancer => UnitId::LoadBalancer(name.to_string()),
            UnitKind::SecurityGroup => UnitId::SecurityGroup(name.to_string()),
            UnitKind::TargetGroup => UnitId::TargetGroup(name.to_string()),
            UnitKind::Service => {
                let (cluster, service) = name.split_once('/').ok_or_else(fail)?;
                if cluster.is_empty() || service.is_empty() {
                    return Err(fail());
                }
                UnitId::service(cluster, service)
            }
        })
    }
}

/// Serialised as its text form, so it can key a JSON object.
impl Serialize for UnitId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Every declared resource of `desired` as a unit, in file order (groups,
/// clusters, services, target groups, load balancers), with its mode.
pub fn unit_modes(desired: &DesiredState) -> Vec<(UnitId, Mode)> {
    let groups = desired
        .security_groups
        .iter()
        .map(|g| (UnitId::security_group(&g.name), g.mode));
    let clusters = desired
        .clusters
        .iter()
        .map(|c| (UnitId::cluster(&c.name), c.mode));
    let services = desired
        .services
        .iter()
        .map(|s| (UnitId::service(&s.cluster, &s.name), s.mode));
    let target_groups = desired
        .target_groups
        .iter()
        .map(|t| (UnitId::target_group(&t.name), t.mode));
    let load_balancers = desired
        .load_balancers
        .iter()
        .map(|l| (UnitId::load_balancer(&l.name), l.mode));
    groups
        .chain(clusters)
        .chain(services)
        .chain(target_groups)
        .chain(load_balancers)
        .collect()
}

/// Every declared resource of `desired` as a unit, in file order.
pub fn unit_ids(desired: &DesiredState) -> Vec<UnitId> {
    unit_modes(desired)
        .into_iter()
        .map(|(unit, _)| unit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for text in [
            "security-group/alb-sg",
            "cluster/main",
            "service/main/api",
            "target-group/api-tg",
            "load-balancer/alb",
        ] {
            let unit: UnitId = text.parse().expect(text);
            assert_eq!(unit.to_string(), text);
            assert_eq!(serde_json::to_string(&unit).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(
            "service/main/api".parse::<UnitId>().unwrap(),
            UnitId::service("main", "api")
        );
        assert_eq!(UnitId::service("main", "api").name(), "main/api");
        assert_eq!(UnitId::service("main", "api").kind(), UnitKind::Service);
    }

    #[test]
    fn malformed_texts_are_refused() {
        for text in [
            "",
            "security-group",
            "security-group/",
            "service/main",
            "service//api",
            "instance/i-1",
            "Security-Group/x",
        ] {
            assert!(text.parse::<UnitId>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn units_sort_like_their_text_forms_across_kinds() {
        let mut units: Vec<UnitId> = [
            "target-group/t",
            "service/c/s",
            "security-group/g",
            "load-balancer/l",
            "cluster/c",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        units.sort();
        let texts: Vec<String> = units.iter().map(UnitId::to_string).collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }
}
