//! Fight detection: when the same field of the same resource has been
//! corrected `threshold` times within `window`, another writer (an
//! autoscaler, another GitOps tool, a person with a script) keeps putting it
//! back. Correcting it forever helps nobody and burns API calls, so the
//! field is marked *fighting* and left alone — reported in status, metrics
//! and the timeline with both values — until the config changes or an
//! operator clears it (SIGHUP or restart).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use ecs_reconciler_plan::{Action, ActionOutcome, Change};
use serde::Serialize;
use tokio::time::Instant;

/// When a field counts as fought over.
#[derive(Debug, Clone)]
pub struct FightSettings {
    /// Corrections of one field within `window` that make a fight.
    pub threshold: usize,
    pub window: Duration,
}

impl Default for FightSettings {
    fn default() -> Self {
        FightSettings {
            threshold: 5,
            window: Duration::from_secs(600),
        }
    }
}

/// A field another writer keeps changing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fight {
    /// The field: `replicas service/c/n`, `rule security-group/g tcp 22 ...`.
    pub field: String,
    /// The declared resource (scheduler unit) it belongs to.
    pub unit: String,
    /// The resource kind, for metrics.
    pub kind: String,
    /// What the other writer keeps setting, and what the file says.
    pub theirs: String,
    pub ours: String,
    pub corrections: usize,
}

/// The field an action changes: corrections of one field in opposite
/// directions (authorize/revoke, register/deregister) are one fight.
pub fn field_of(change: &Change) -> Option<String> {
    let field = match change.action.as_ref()? {
        Action::ScaleService {
            cluster, service, ..
        } => format!("replicas service/{cluster}/{service}"),
        Action::AuthorizeIngress {
            group_name, rule, ..
        }
        | Action::RevokeIngress {
            group_name, rule, ..
        } => format!("rule security-group/{group_name} {rule}"),
        Action::SetInstanceGroups { instance_id, .. } => format!("groups instance/{instance_id}"),
        Action::SetLoadBalancerGroups { load_balancer, .. } => {
            format!("groups load-balancer/{load_balancer}")
        }
        Action::RegisterTarget {
            target_group,
            target,
            ..
        }
        | Action::DeregisterTarget {
            target_group,
            target,
            ..
        } => format!("target target-group/{target_group} {target}"),
        Action::SetHealthCheckPath { target_group, .. } => {
            format!("health-check-path target-group/{target_group}")
        }
    };
    Some(field)
}

/// Correction history per field, and the fields being fought over.
#[derive(Debug, Default)]
pub struct FightDetector {
    settings: FightSettings,
    history: BTreeMap<String, VecDeque<Instant>>,
    fighting: BTreeMap<String, Fight>,
}

impl FightDetector {
    pub fn new(settings: FightSettings) -> FightDetector {
        FightDetector {
            settings,
            ..Default::default()
        }
    }

    /// Splits changes into those to apply and those held because their
    /// field is being fought over.
    pub fn filter(&self, changes: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
        changes
            .into_iter()
            .partition(|c| field_of(c).is_none_or(|f| !self.fighting.contains_key(&f)))
    }

    /// Records the corrections that succeeded; returns fights that start now.
    pub fn record(&mut self, outcomes: &[ActionOutcome], now: Instant) -> Vec<Fight> {
        let mut started = Vec::new();
        for outcome in outcomes.iter().filter(|o| o.succeeded()) {
            let Some(field) = field_of(&outcome.change) else {
                continue;
            };
            let times = self.history.entry(field.clone()).or_default();
            times.push_back(now);
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > self.settings.window)
            {
                times.pop_front();
            }
            if times.len() >= self.settings.threshold && !self.fighting.contains_key(&field) {
                let change = &outcome.change;
                let fight = Fight {
                    field: field.clone(),
                    unit: change.owner.clone(),
                    kind: change
                        .owner
                        .split_once('/')
                        .map_or(change.owner.as_str(), |(k, _)| k)
                        .to_string(),
                    theirs: change.before.clone(),
                    ours: change.after.clone(),
                    corrections: times.len(),
                };
                self.fighting.insert(field, fight.clone());
                started.push(fight);
            }
        }
        started
    }

    /// Forgets every fight and history (config changed, operator cleared).
    pub fn clear(&mut self) {
        self.history.clear();
        self.fighting.clear();
    }

    pub fn fights(&self) -> Vec<Fight> {
        self.fighting.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_reconciler_plan::{Disposition, Outcome};

    fn scale(to: i32, from: i32) -> ActionOutcome {
        ActionOutcome {
            change: Change {
                kind: "scale-service".into(),
                resource: "service/c/api".into(),
                owner: "service/c/api".into(),
                before: format!("desiredCount {from}"),
                after: format!("desiredCount {to}"),
                reason: "r".into(),
                disposition: Disposition::Apply,
                action: Some(Action::ScaleService {
                    cluster: "c".into(),
                    service: "api".into(),
                    desired_count: to,
                }),
            },
            outcome: Outcome::Applied { request_id: None },
        }
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_corrections_within_the_window_become_a_fight_then_are_held() {
        let mut d = FightDetector::new(FightSettings {
            threshold: 3,
            window: Duration::from_secs(60),
        });
        for _ in 0..2 {
            assert!(d.record(&[scale(2, 6)], Instant::now()).is_empty());
            tokio::time::advance(Duration::from_secs(20)).await;
        }
        let started = d.record(&[scale(2, 6)], Instant::now());
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].field, "replicas service/c/api");
        assert_eq!(
            (started[0].theirs.as_str(), started[0].ours.as_str()),
            ("desiredCount 6", "desiredCount 2")
        );
        let (apply, held) = d.filter(vec![scale(2, 6).change]);
        assert!(apply.is_empty());
        assert_eq!(held.len(), 1);
        d.clear();
        let (apply, _) = d.filter(vec![scale(2, 6).change]);
        assert_eq!(apply.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn corrections_spread_beyond_the_window_are_not_a_fight() {
        let mut d = FightDetector::new(FightSettings {
            threshold: 3,
            window: Duration::from_secs(60),
        });
        for _ in 0..10 {
            assert!(d.record(&[scale(2, 6)], Instant::now()).is_empty());
            tokio::time::advance(Duration::from_secs(40)).await;
        }
        assert!(d.fights().is_empty());
    }
}
