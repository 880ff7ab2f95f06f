//! Target sightings across passes: the target changes one read cannot
//! prove, and when reads have agreed long enough to make them.
//!
//! ECS, ELBv2 and EC2 answer from separate, eventually consistent stores.
//! Right after ECS decides to stop a task, `ListTasks` may still say the
//! task is RUNNING while its target already drains; right after ECS starts
//! one, its target may be registered before `ListTasks` shows the task. A
//! plan from one such read would re-register the draining target —
//! cancelling the drain, so the load balancer sends traffic to a container
//! being killed — or deregister a new task's target. So both target
//! changes are made only once the same finding has been seen in reads at
//! least the consistency window apart:
//!
//! * **register** a serving task's target that is not registered (absent
//!   or draining): the task read RUNNING/RUNNING in every pass since the
//!   target was first seen missing, for at least the window;
//! * **deregister** a registered target that matches no task: it matched
//!   none in every pass since it was first seen, for at least the window.
//!
//! A finding that disappears from one pass (the task read stopping, the
//! target matched after all) is forgotten, and its window starts again.
//! Until confirmed, the change is in the plan, held with
//! [`HoldReason::AwaitingConsistency`](crate::HoldReason::AwaitingConsistency).
//! A window of zero confirms at first sight (a single consistent read, as
//! in tests and simulations).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::action::{Action, Change, Disposition, HoldReason};
use crate::plan::Plan;
use crate::snapshot::TargetKey;

/// Which way a target change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// A serving task's target is not registered.
    Register,
    /// A registered target matches no task.
    Deregister,
}

/// One finding about one target of one target group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SightingKey {
    /// The target group's name in the file.
    pub target_group: String,
    /// The target.
    pub target: TargetKey,
    /// What the finding calls for.
    pub direction: Direction,
}

impl SightingKey {
    /// The sighting a target change stands for; `None` for other changes.
    pub fn of(change: &Change) -> Option<SightingKey> {
        let (target_group, target, direction) = match change.action.as_ref()? {
            Action::RegisterTarget {
                target_group,
                target,
                ..
            } => (target_group, target, Direction::Register),
            Action::DeregisterTarget {
                target_group,
                target,
                ..
            } => (target_group, target, Direction::Deregister),
            _ => return None,
        };
        Some(SightingKey {
            target_group: target_group.clone(),
            target: target.clone(),
            direction,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// Unix milliseconds of the first pass that saw it.
    since_ms: u64,
    /// Consecutive passes that saw it.
    passes: u32,
}

/// What earlier passes saw, and the time of the pass being planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sightings {
    window: Duration,
    now_ms: u64,
    seen: BTreeMap<SightingKey, Seen>,
}

impl Default for Sightings {
    /// No window: every finding is confirmed at first sight.
    fn default() -> Self {
        Sightings::new(Duration::ZERO)
    }
}

impl Sightings {
    /// Nothing seen yet; findings need reads `window` apart.
    pub fn new(window: Duration) -> Sightings {
        Sightings {
            window,
            now_ms: 0,
            seen: BTreeMap::new(),
        }
    }

    /// The consistency window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Sets the time of the observation about to be planned (Unix ms).
    pub fn observed_at(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    fn window_ms(&self) -> u64 {
        millis(self.window)
    }

    /// Whether the finding has been seen long enough to act on, given the
    /// pass being planned sees it too.
    pub fn is_confirmed(&self, key: &SightingKey) -> bool {
        if self.window.is_zero() {
            return true;
        }
        self.seen.get(key).is_some_and(|seen| {
            seen.passes >= 1 && self.now_ms.saturating_sub(seen.since_ms) >= self.window_ms()
        })
    }

    /// How long a finding has been seen before this pass, for reasons.
    pub fn seen_for(&self, key: &SightingKey) -> Option<Duration> {
        self.seen
            .get(key)
            .map(|seen| Duration::from_millis(self.now_ms.saturating_sub(seen.since_ms)))
    }

    /// Records what the planned pass saw: every target change in `plan`
    /// (applied, held or observed) is a finding; findings of the covered
    /// target groups that this pass no longer shows are forgotten. Groups
    /// not covered (a scoped pass did not read them) keep theirs.
    pub fn record(&mut self, plan: &Plan, covered: &BTreeSet<String>) {
        let now = self.now_ms;
        // A change held for a deployment is not a finding: when the
        // deployment ends, its window starts from a read after it.
        let found: BTreeSet<SightingKey> = plan
            .changes
            .iter()
            .filter(|c| c.hold != Some(HoldReason::Deployment))
            .filter_map(SightingKey::of)
            .collect();
        self.seen
            .retain(|key, _| !covered.contains(&key.target_group) || found.contains(key));
        for key in found {
            self.seen
                .entry(key)
                .and_modify(|seen| seen.passes = seen.passes.saturating_add(1))
                .or_insert(Seen {
                    since_ms: now,
                    passes: 1,
                });
        }
    }

    /// When the earliest unconfirmed finding of each target group becomes
    /// confirmable, as a delay from the pass being planned.
    pub fn due_in(&self) -> BTreeMap<String, Duration> {
        let mut out: BTreeMap<String, Duration> = BTreeMap::new();
        let window = self.window_ms();
        for (key, seen) in &self.seen {
            let age = self.now_ms.saturating_sub(seen.since_ms);
            if age >= window {
                continue;
            }
            let wait = Duration::from_millis(window - age);
            out.entry(key.target_group.clone())
                .and_modify(|d| *d = (*d).min(wait))
                .or_insert(wait);
        }
        out
    }

    /// How many findings are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The fields this copy wrote lately, and the value it wrote: a read
/// within the consistency window after a write may still show the value
/// from before it (ECS's DescribeServices lagging UpdateService, EC2's
/// rules lagging an authorize). The same correction is then held rather
/// than made again — a second write would be harmless but is a wasted call
/// and would count towards a fight with a writer that does not exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnWrites {
    /// Field (see [`Change::field`]) → (Unix ms of the write, the `after`
    /// it set).
    written: BTreeMap<String, (u64, String)>,
}

impl OwnWrites {
    /// Remembers what `done` (the changes that took effect) set at `now_ms`.
    pub fn record<'a>(&mut self, done: impl IntoIterator<Item = &'a Change>, now_ms: u64) {
        for change in done {
            if let Some(field) = change.field() {
                self.written.insert(field, (now_ms, change.after.clone()));
            }
        }
    }

    /// Holds every change of `plan` that would set a field to the value
    /// this copy set less than `window` before `now_ms`; forgets older
    /// writes.
    pub fn hold_unseen(&mut self, plan: &mut Plan, now_ms: u64, window: Duration) {
        let window_ms = millis(window);
        self.written
            .retain(|_, (at, _)| now_ms.saturating_sub(*at) < window_ms);
        for change in &mut plan.changes {
            if change.disposition != Disposition::Apply {
                continue;
            }
            let Some(field) = change.field() else {
                continue;
            };
            let Some((at, after)) = self.written.get(&field) else {
                continue;
            };
            if *after != change.after {
                continue;
            }
            let ago = Duration::from_millis(now_ms.saturating_sub(*at)).as_secs_f64();
            change.hold(
                HoldReason::AwaitingConsistency,
                &format!(
                    "this copy set it {ago:.1} s ago and reads may lag behind writes; made again only if a read {} s after the write still shows it",
                    window.as_secs_f64()
                ),
            );
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Change;
    use crate::unit::UnitId;

    fn register(port: i32) -> Change {
        let target = TargetKey {
            id: "i-1".into(),
            port,
        };
        Change::fix(
            &UnitId::target_group("tg"),
            "absent".into(),
            target.to_string(),
            "test".into(),
            true,
            Action::RegisterTarget {
                target_group: "tg".into(),
                arn: "arn".into(),
                target,
            },
        )
    }

    fn plan_of(changes: Vec<Change>) -> Plan {
        Plan {
            changes,
            ..Plan::default()
        }
    }

    fn covered() -> BTreeSet<String> {
        BTreeSet::from(["tg".to_string()])
    }

    #[test]
    fn a_finding_is_confirmed_once_seen_for_the_window_and_forgotten_when_gone() {
        let mut s = Sightings::new(Duration::from_secs(5));
        let key = SightingKey::of(&register(1)).unwrap();
        s.observed_at(1_000);
        assert!(!s.is_confirmed(&key), "never at first sight");
        s.record(&plan_of(vec![register(1)]), &covered());
        assert_eq!(s.due_in().get("tg"), Some(&Duration::from_secs(5)));
        s.observed_at(4_000);
        assert!(!s.is_confirmed(&key), "3 s < 5 s");
        s.record(&plan_of(vec![register(1)]), &covered());
        s.observed_at(6_000);
        assert!(s.is_confirmed(&key));
        // One pass without it: the window starts again.
        s.record(&plan_of(vec![]), &covered());
        s.observed_at(20_000);
        assert!(!s.is_confirmed(&key));
    }

    #[test]
    fn a_scoped_pass_keeps_the_findings_of_groups_it_did_not_read() {
        let mut s = Sightings::new(Duration::from_secs(5));
        let key = SightingKey::of(&register(1)).unwrap();
        s.observed_at(0);
        s.record(&plan_of(vec![register(1)]), &covered());
        s.observed_at(2_000);
        s.record(&plan_of(vec![]), &BTreeSet::new());
        s.observed_at(6_000);
        assert!(s.is_confirmed(&key));
    }

    #[test]
    fn no_window_confirms_at_first_sight() {
        let s = Sightings::default();
        assert!(s.is_confirmed(&SightingKey::of(&register(1)).unwrap()));
    }

    #[test]
    fn a_correction_this_copy_just_made_is_not_made_again_on_a_lagging_read() {
        let mut writes = OwnWrites::default();
        writes.record([&register(1)], 1_000);
        let mut plan = plan_of(vec![register(1), register(2)]);
        writes.hold_unseen(&mut plan, 3_000, Duration::from_secs(5));
        assert_eq!(plan.changes[0].hold, Some(HoldReason::AwaitingConsistency));
        assert_eq!(plan.changes[1].hold, None, "another field");
        // After the window, a read that still shows the old value is news.
        let mut plan = plan_of(vec![register(1)]);
        writes.hold_unseen(&mut plan, 6_000, Duration::from_secs(5));
        assert_eq!(plan.changes[0].hold, None);
    }
}
