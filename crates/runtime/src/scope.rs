//! Scoped passes: when only some units are due — a config edit, a retry
//! after backoff — the pass observes what those units need instead of the
//! whole file, so an edit to one service costs a few calls, not a pass over
//! a thousand.
//!
//! A unit needs itself and what its plan reads: a group the groups its
//! rules name; a cluster its instance groups; a target group its bound
//! service; a load balancer its groups. Those extra units are observed and
//! planned but not applied, and not reported (they were not due).
//!
//! What a scoped pass leaves out it leaves alone: the controller keeps only
//! the due units' changes, and nothing outside the scope is released,
//! dropped or forgotten on the strength of a scoped observation. Every unit
//! due (startup, the shared resync, SIGHUP) makes a full pass.

use std::collections::BTreeSet;

use ecs_reconciler_plan::{UnitId, unit_ids};
use ecs_reconciler_spec::{DesiredState, RuleSource};

/// Whether a pass observes the whole file or part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every declared resource.
    Full,
    /// The due units and what they read.
    Scoped,
}

/// The part of `desired` the `due` units need, or `None` when they are
/// every unit of the file (a full pass).
pub fn scoped(desired: &DesiredState, due: &BTreeSet<UnitId>) -> Option<DesiredState> {
    if unit_ids(desired).iter().all(|unit| due.contains(unit)) {
        return None;
    }
    let mut groups: BTreeSet<&str> = BTreeSet::new();
    let mut clusters: BTreeSet<&str> = BTreeSet::new();
    let mut services: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut target_groups: BTreeSet<&str> = BTreeSet::new();
    let mut load_balancers: BTreeSet<&str> = BTreeSet::new();
    for unit in due {
        match unit {
            UnitId::SecurityGroup(name) => {
                groups.insert(name.as_str());
            }
            UnitId::Cluster(name) => {
                if let Some(spec) = desired.clusters.iter().find(|c| &c.name == name) {
                    clusters.insert(&spec.name);
                    groups.extend(spec.instance_security_groups.iter().map(String::as_str));
                }
            }
            UnitId::Service { cluster, name } => {
                services.insert((cluster.as_str(), name.as_str()));
            }
            UnitId::TargetGroup(name) => {
                if let Some(spec) = desired.target_groups.iter().find(|t| &t.name == name) {
                    target_groups.insert(&spec.name);
                    services.insert((&spec.cluster, &spec.service));
                }
            }
            UnitId::LoadBalancer(name) => {
                if let Some(spec) = desired.load_balancers.iter().find(|l| &l.name == name) {
                    load_balancers.insert(&spec.name);
                    groups.extend(spec.security_groups.iter().map(String::as_str));
                }
            }
        }
    }
    // The groups the included groups' rules name: their ids are part of
    // those rules. One level is enough — a referenced group's own rules are
    // not planned for anything due.
    let referenced: Vec<&str> = desired
        .security_groups
        .iter()
        .filter(|g| groups.contains(g.name.as_str()))
        .flat_map(|g| &g.ingress)
        .filter_map(|rule| match &rule.source {
            RuleSource::DeclaredGroup(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    groups.extend(referenced);

    Some(DesiredState {
        mode: desired.mode,
        policy: desired.policy,
        quotas: desired.quotas,
        notifications: desired.notifications.clone(),
        security_groups: desired
            .security_groups
            .iter()
            .filter(|g| groups.contains(g.name.as_str()))
            .cloned()
            .collect(),
        clusters: desired
            .clusters
            .iter()
            .filter(|c| clusters.contains(c.name.as_str()))
            .cloned()
            .collect(),
        services: desired
            .services
            .iter()
            .filter(|s| services.contains(&(s.cluster.as_str(), s.name.as_str())))
            .cloned()
            .collect(),
        target_groups: desired
            .target_groups
            .iter()
            .filter(|t| target_groups.contains(t.name.as_str()))
            .cloned()
            .collect(),
        load_balancers: desired
            .load_balancers
            .iter()
            .filter(|l| load_balancers.contains(l.name.as_str()))
            .cloned()
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
version: 1
securityGroups:
  - name: alb-sg
    ingress:
      - { protocol: tcp, ports: 80, cidr: 0.0.0.0/0 }
  - name: instance-sg
    ingress:
      - { protocol: tcp, ports: 32768-65535, sourceGroup: alb-sg }
  - name: other-sg
    ingress:
      - { protocol: tcp, ports: 22, cidr: 10.0.0.0/8 }
clusters:
  - name: main
    instanceSecurityGroups: [instance-sg]
services:
  - { name: api, cluster: main, replicas: 2 }
  - { name: worker, cluster: main, replicas: 1 }
targetGroups:
  - name: api-tg
    service: api
    cluster: main
    containerName: api
    containerPort: 3000
loadBalancers:
  - name: alb
    securityGroups: [alb-sg]
"#;

    fn desired() -> DesiredState {
        match ecs_reconciler_spec::load(FILE) {
            Ok(d) => d,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn due(units: &[&str]) -> BTreeSet<UnitId> {
        units.iter().map(|u| u.parse().unwrap()).collect()
    }

    fn names(d: &DesiredState) -> Vec<String> {
        let ids = unit_ids(d);
        let with_fingerprints: Vec<UnitId> = crate::units::units_of(d)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        assert_eq!(ids, with_fingerprints);
        ids.iter().map(UnitId::to_string).collect()
    }

    #[test]
    fn every_unit_due_is_a_full_pass() {
        let d = desired();
        let all: BTreeSet<UnitId> = unit_ids(&d).into_iter().collect();
        assert!(scoped(&d, &all).is_none());
    }

    #[test]
    fn one_service_is_observed_alone() {
        let d = desired();
        let s = scoped(&d, &due(&["service/main/worker"])).expect("scoped");
        assert_eq!(names(&s), ["service/main/worker"]);
        assert_eq!(s.policy, d.policy);
    }

    #[test]
    fn a_target_group_brings_its_service() {
        let d = desired();
        let s = scoped(&d, &due(&["target-group/api-tg"])).expect("scoped");
        assert_eq!(names(&s), ["service/main/api", "target-group/api-tg"]);
    }

    #[test]
    fn groups_bring_the_groups_their_rules_name_one_level_deep() {
        let d = desired();
        let s = scoped(&d, &due(&["cluster/main"])).expect("scoped");
        assert_eq!(
            names(&s),
            [
                "security-group/alb-sg",
                "security-group/instance-sg",
                "cluster/main"
            ]
        );
        let s = scoped(&d, &due(&["load-balancer/alb"])).expect("scoped");
        assert_eq!(names(&s), ["security-group/alb-sg", "load-balancer/alb"]);
    }
}
