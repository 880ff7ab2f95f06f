//! Fight detection: when the same field of the same resource has been
//! corrected `threshold` times within `window`, another writer (an
//! autoscaler, another GitOps tool, a person with a script) keeps putting it
//! back. Correcting it forever helps nobody and burns API calls, so the
//! field is marked *fighting* and left alone — reported in status, metrics
//! and the timeline with both values — until the config changes or an
//! operator clears it (SIGHUP or restart).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use ecs_reconciler_plan::{ActionOutcome, UnitId, UnitKind};
use serde::Serialize;
use tokio::time::Instant;

/// When a field counts as fought over.
#[derive(Debug, Clone)]
pub struct FightSettings {
    /// Corrections of one field within `window` that make a fight.
    pub threshold: usize,
    /// The sliding window corrections are counted in (10 min by default).
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
    pub unit: UnitId,
    /// The resource kind, for metrics.
    pub kind: UnitKind,
    /// What the other writer keeps setting.
    pub theirs: String,
    /// What the file says.
    pub ours: String,
    /// Corrections within the window.
    pub corrections: usize,
}

/// Correction history per field, and the fields being fought over.
#[derive(Debug, Default)]
pub struct FightDetector {
    settings: FightSettings,
    history: BTreeMap<String, VecDeque<Instant>>,
    fighting: BTreeMap<String, Fight>,
}

impl FightDetector {
    /// A detector with no history.
    pub fn new(settings: FightSettings) -> FightDetector {
        FightDetector {
            settings,
            ..Default::default()
        }
    }

    /// The fields being fought over (see [`Change::field`]): the gate
    /// holds their corrections.
    ///
    /// [`Change::field`]: ecs_reconciler_plan::Change::field
    pub fn fighting(&self) -> BTreeSet<String> {
        self.fighting.keys().cloned().collect()
    }

    /// Records the corrections that succeeded; returns fights that start now.
    pub fn record(&mut self, outcomes: &[ActionOutcome], now: Instant) -> Vec<Fight> {
        let mut started = Vec::new();
        for outcome in outcomes.iter().filter(|o| o.succeeded()) {
            let Some(field) = outcome.change.field() else {
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
                    kind: change.owner.kind(),
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

    /// The fights going on.
    pub fn fights(&self) -> Vec<Fight> {
        self.fighting.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecs_reconciler_plan::{Action, Change, Disposition, Outcome};

    fn scale(to: i32, from: i32) -> ActionOutcome {
        ActionOutcome {
            change: Change {
                kind: "scale-service".into(),
                resource: "service/c/api".into(),
                owner: UnitId::service("c", "api"),
                before: format!("desiredCount {from}"),
                after: format!("desiredCount {to}"),
                reason: "r".into(),
                disposition: Disposition::Apply,
                hold: None,
                action: Some(Action::ScaleService {
                    cluster: "c".into(),
                    service: "api".into(),
                    desired_count: to,
                }),
            },
            outcome: Outcome::Applied { request_id: None },
            other_writers: Vec::new(),
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
        let field = scale(2, 6).change.field().unwrap();
        assert_eq!(d.fighting(), BTreeSet::from([field]));
        d.clear();
        assert!(d.fighting().is_empty());
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
