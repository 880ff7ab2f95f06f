//! Which managed resources are due for reconciliation, and when.
//!
//! Each declared resource (security group, cluster attachment set, service,
//! target group, load balancer) is one unit of work, keyed by the plan's
//! `owner` string. A unit is never in two passes at once (taking it moves
//! its due time to "never" until the pass reports back), is resynced every
//! `resync` with jitter, and after an error is retried with its own
//! exponential backoff (backon), capped and reset on success.
//!
//! Units due close together are taken together, and units that succeed in
//! one pass share one jittered resync time, so in steady state all units
//! stay in step and a pass costs one batched observation, not one per unit.
//! Pure state over `tokio::time::Instant`: tested with paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use rand::Rng;
use tokio::time::Instant;

/// Why a unit is due; goes into the pass's tracing span only — a reconcile
/// never depends on why it ran (level-triggered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DueReason {
    Startup,
    ConfigChanged,
    Resync,
    Retry,
    /// An operator asked (SIGHUP).
    Operator,
}

/// Timing settings.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How often every unit is re-checked when nothing happens.
    pub resync: Duration,
    /// Resync is spread by up to this fraction (0.1 = ±10%).
    pub jitter: f64,
    /// First retry delay after an error.
    pub backoff_min: Duration,
    /// Retry delays never exceed this.
    pub backoff_max: Duration,
    /// Units due within this window of each other share a pass.
    pub coalesce: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            resync: Duration::from_secs(30),
            jitter: 0.1,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            coalesce: Duration::from_millis(500),
        }
    }
}

#[derive(Debug)]
struct UnitState {
    /// `None` while the unit is in a pass.
    due: Option<Instant>,
    reason: DueReason,
    /// The unit's spec fingerprint; a change makes it due at once.
    fingerprint: u64,
    backoff: Option<ExponentialBackoff>,
    failures: u32,
    /// Its spec changed while it was in a pass: due again when it reports.
    rerun: bool,
}

/// A unit's schedule, for status reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitSchedule {
    pub unit: String,
    /// Seconds until it is due; `None` while it is in a pass.
    pub due_in_seconds: Option<f64>,
    pub consecutive_failures: u32,
}

/// The schedule of every unit.
#[derive(Debug)]
pub struct Scheduler {
    settings: SchedulerSettings,
    units: BTreeMap<String, UnitState>,
    /// How long each unit of the last `take_due` waited past its due time.
    last_waits: Vec<Duration>,
}

impl Scheduler {
    pub fn new(settings: SchedulerSettings) -> Scheduler {
        Scheduler {
            settings,
            units: BTreeMap::new(),
            last_waits: Vec::new(),
        }
    }

    pub fn settings(&self) -> &SchedulerSettings {
        &self.settings
    }

    /// Replaces the set of units. New units and units whose fingerprint
    /// changed are due now; units no longer declared are forgotten.
    /// Returns the units that became due because of this call.
    pub fn set_units(
        &mut self,
        units: impl IntoIterator<Item = (String, u64)>,
        now: Instant,
        reason: DueReason,
    ) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut touched = Vec::new();
        for (unit, fingerprint) in units {
            seen.insert(unit.clone());
            match self.units.get_mut(&unit) {
                Some(state) if state.fingerprint == fingerprint => {}
                Some(state) => {
                    state.fingerprint = fingerprint;
                    // In a pass right now: it is made due again when the
                    // pass reports (see `finish`), never run twice at once.
                    if state.due.is_some() {
                        state.due = Some(now);
                    } else {
                        state.rerun = true;
                    }
                    state.reason = reason;
                    state.backoff = None;
                    state.failures = 0;
                    touched.push(unit);
                }
                None => {
                    self.units.insert(
                        unit.clone(),
                        UnitState {
                            due: Some(now),
                            reason,
                            fingerprint,
                            backoff: None,
                            failures: 0,
                            rerun: false,
                        },
                    );
                    touched.push(unit);
                }
            }
        }
        self.units.retain(|unit, _| seen.contains(unit));
        touched
    }

    /// The earliest due time of a unit not in a pass.
    pub fn next_due(&self) -> Option<Instant> {
        self.units.values().filter_map(|u| u.due).min()
    }

    /// Takes every unit due by `now` (plus the coalescing window), marking
    /// them in a pass. Returns them with the reason each was due.
    pub fn take_due(&mut self, now: Instant) -> BTreeMap<String, DueReason> {
        let horizon = now + self.settings.coalesce;
        let mut taken = BTreeMap::new();
        self.last_waits.clear();
        for (unit, state) in &mut self.units {
            if let Some(due) = state.due.filter(|due| *due <= horizon) {
                self.last_waits.push(now.saturating_duration_since(due));
                state.due = None;
                taken.insert(unit.clone(), state.reason);
            }
        }
        taken
    }

    /// How long each unit taken by the last [`Scheduler::take_due`] waited
    /// past its due time (the workqueue's queue duration).
    pub fn last_waits(&self) -> &[Duration] {
        &self.last_waits
    }

    /// Reports a pass: units that succeeded share one jittered resync time
    /// and have their backoff reset; each failed unit backs off on its own.
    /// Units whose spec changed during the pass are due again at once.
    pub fn finish(&mut self, results: &BTreeMap<String, bool>, now: Instant) {
        self.finish_pass(results, now, now);
    }

    /// [`Scheduler::finish`] for a pass that started at `started`. The
    /// resync period runs from pass start to pass start, so a long pass does
    /// not stretch it (never sooner than the pass's end). Units that pass
    /// while the rest of the file waits for its next pass (an edit, a retry,
    /// an abandoned pass queued again) join that pass instead of starting a
    /// period of their own: the file stays in one step and its resyncs stay
    /// full passes.
    pub fn finish_pass(
        &mut self,
        results: &BTreeMap<String, bool>,
        started: Instant,
        now: Instant,
    ) {
        // The rest of the file's next pass (units backing off from a
        // failure keep their own pace and are not followed).
        let shared = self
            .units
            .iter()
            .filter(|(unit, state)| !results.contains_key(*unit) && state.failures == 0)
            .filter_map(|(_, state)| state.due)
            .min()
            .map(|due| due.max(now));
        let resync = shared.unwrap_or_else(|| (started + self.jittered_resync()).max(now));
        for (unit, ok) in results {
            let Some(state) = self.units.get_mut(unit) else {
                continue; // removed from the config during the pass
            };
            if state.due.is_some() {
                continue; // not in this pass
            }
            if state.rerun {
                state.rerun = false;
                state.due = Some(now);
                continue;
            }
            if *ok {
                state.due = Some(resync);
                state.reason = DueReason::Resync;
                state.backoff = None;
                state.failures = 0;
            } else {
                let settings = &self.settings;
                let delay = state
                    .backoff
                    .get_or_insert_with(|| {
                        ExponentialBuilder::new()
                            .with_min_delay(settings.backoff_min)
                            .with_max_delay(settings.backoff_max)
                            .with_factor(2.0)
                            .with_jitter()
                            .without_max_times()
                            .build()
                    })
                    .next()
                    .unwrap_or(settings.backoff_max)
                    .min(settings.backoff_max);
                state.due = Some(now + delay);
                state.reason = DueReason::Retry;
                state.failures += 1;
            }
        }
    }

    /// Puts the units of a pass that was abandoned before it wrote
    /// anything back in the queue, due at `at`, with their reasons; a unit
    /// edited meanwhile is due at once.
    pub fn requeue<'a>(&mut self, units: impl IntoIterator<Item = &'a String>, at: Instant) {
        for unit in units {
            let Some(state) = self.units.get_mut(unit) else {
                continue;
            };
            if state.due.is_some() {
                continue;
            }
            if std::mem::take(&mut state.rerun) {
                state.due = Some(at.min(Instant::now()));
            } else {
                state.due = Some(at);
            }
        }
    }

    /// Marks every unit due now (e.g. an operator's SIGHUP).
    pub fn trigger_all(&mut self, now: Instant, reason: DueReason) {
        for state in self.units.values_mut() {
            if state.due.is_some() {
                state.due = Some(now);
                state.reason = reason;
            }
        }
    }

    /// Every unit's schedule, for the status API.
    pub fn schedules(&self, now: Instant) -> Vec<UnitSchedule> {
        self.units
            .iter()
            .map(|(unit, state)| UnitSchedule {
                unit: unit.clone(),
                due_in_seconds: state
                    .due
                    .map(|due| due.saturating_duration_since(now).as_secs_f64()),
                consecutive_failures: state.failures,
            })
            .collect()
    }

    fn jittered_resync(&self) -> Duration {
        let jitter = self.settings.jitter.clamp(0.0, 0.5);
        if jitter == 0.0 {
            return self.settings.resync;
        }
        let factor = rand::rng().random_range(1.0 - jitter..=1.0 + jitter);
        self.settings.resync.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SchedulerSettings {
        SchedulerSettings {
            resync: Duration::from_secs(30),
            jitter: 0.1,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            coalesce: Duration::from_millis(500),
        }
    }

    /// Units a, b and c after a successful startup pass: one shared resync.
    fn three_units_in_step() -> Scheduler {
        let mut s = Scheduler::new(settings());
        let now = Instant::now();
        s.set_units(
            units(&[("a", 1), ("b", 1), ("c", 1)]),
            now,
            DueReason::Startup,
        );
        s.take_due(now);
        s.finish(&results(&[("a", true), ("b", true), ("c", true)]), now);
        s
    }

    fn units(names: &[(&str, u64)]) -> Vec<(String, u64)> {
        names.iter().map(|(n, f)| (n.to_string(), *f)).collect()
    }

    fn results(names: &[(&str, bool)]) -> BTreeMap<String, bool> {
        names.iter().map(|(n, ok)| (n.to_string(), *ok)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn all_units_are_due_at_start_and_taken_once() {
        let mut s = Scheduler::new(settings());
        let now = Instant::now();
        s.set_units(units(&[("a", 1), ("b", 1)]), now, DueReason::Startup);
        let taken = s.take_due(now);
        assert_eq!(taken.len(), 2);
        assert!(taken.values().all(|r| *r == DueReason::Startup));
        // In a pass: not due again, not taken twice.
        assert_eq!(s.next_due(), None);
        assert!(s.take_due(now).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn success_resyncs_in_step_with_jitter() {
        let mut s = Scheduler::new(settings());
        let start = Instant::now();
        s.set_units(units(&[("a", 1), ("b", 1)]), start, DueReason::Startup);
        s.take_due(start);
        s.finish(&results(&[("a", true), ("b", true)]), start);
        let due = s.next_due().unwrap() - start;
        assert!(
            due >= Duration::from_secs(27) && due <= Duration::from_secs(33),
            "{due:?}"
        );
        // Both units share the due time: one pass, one observation.
        tokio::time::advance(due).await;
        let taken = s.take_due(Instant::now());
        assert_eq!(taken.len(), 2);
        assert!(taken.values().all(|r| *r == DueReason::Resync));
    }

    #[tokio::test(start_paused = true)]
    async fn resync_runs_from_pass_start_and_never_before_its_end() {
        let mut s = Scheduler::new(SchedulerSettings {
            jitter: 0.0,
            ..settings()
        });
        let start = Instant::now();
        s.set_units(units(&[("a", 1)]), start, DueReason::Startup);
        s.take_due(start);
        // A 10 s pass: due 30 s after it started.
        tokio::time::advance(Duration::from_secs(10)).await;
        s.finish_pass(&results(&[("a", true)]), start, Instant::now());
        assert_eq!(s.next_due().unwrap() - start, Duration::from_secs(30));
        // A pass longer than the resync: due as it ends.
        let start = s.next_due().unwrap();
        tokio::time::advance(Duration::from_secs(20 + 45)).await;
        s.take_due(start);
        let end = Instant::now();
        s.finish_pass(&results(&[("a", true)]), start, end);
        assert_eq!(s.next_due().unwrap(), end);
    }

    #[tokio::test(start_paused = true)]
    async fn units_passing_between_resyncs_join_the_shared_resync() {
        let mut s = three_units_in_step();
        let shared = s.next_due().unwrap();
        // An edit to `b` 7 s later: its pass ends, it rejoins a and c.
        tokio::time::advance(Duration::from_secs(7)).await;
        let now = Instant::now();
        s.set_units(
            units(&[("a", 1), ("b", 2), ("c", 1)]),
            now,
            DueReason::ConfigChanged,
        );
        assert_eq!(s.take_due(now).len(), 1);
        s.finish(&results(&[("b", true)]), now);
        assert!(
            s.schedules(now)
                .iter()
                .all(|u| u.due_in_seconds == Some((shared - now).as_secs_f64()))
        );
        tokio::time::advance(shared - now).await;
        assert_eq!(s.take_due(Instant::now()).len(), 3, "one full pass");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_pass_is_requeued_with_its_reasons() {
        let mut s = Scheduler::new(settings());
        let now = Instant::now();
        s.set_units(units(&[("a", 1), ("b", 1)]), now, DueReason::Startup);
        let taken = s.take_due(now);
        // `b` is edited while the pass observes; the pass is abandoned.
        s.set_units(units(&[("a", 1), ("b", 2)]), now, DueReason::ConfigChanged);
        let later = now + Duration::from_secs(1);
        s.requeue(taken.keys(), later);
        assert_eq!(s.take_due(now).keys().collect::<Vec<_>>(), ["b"]);
        let rest = s.take_due(later);
        assert_eq!(rest.get("a"), Some(&DueReason::Startup));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_capped_and_reset_on_success() {
        let mut s = Scheduler::new(settings());
        let now = Instant::now();
        s.set_units(units(&[("a", 1), ("b", 1)]), now, DueReason::Startup);
        let mut delays = Vec::new();
        for _ in 0..10 {
            let now = Instant::now();
            let taken = s.take_due(now + Duration::from_secs(1000));
            assert!(taken.contains_key("a"));
            let mut r = results(&[("a", false)]);
            if taken.contains_key("b") {
                r.insert("b".into(), true);
            }
            s.finish(&r, now);
            let schedule = s.schedules(now);
            delays.push(schedule[0].due_in_seconds.unwrap());
            assert_eq!(schedule[0].consecutive_failures as usize, delays.len());
        }
        // Grows (jitter adds at most the min delay on top of each step)...
        assert!(delays[0] <= 2.0, "{delays:?}");
        assert!(delays[3] >= 8.0, "{delays:?}");
        // ...and is capped.
        assert!(delays.iter().all(|d| *d <= 60.0), "{delays:?}");
        let now = Instant::now();
        s.take_due(now + Duration::from_secs(1000));
        s.finish(&results(&[("a", true)]), now);
        assert_eq!(s.schedules(now)[0].consecutive_failures, 0);
        let due = s.schedules(now)[0].due_in_seconds.unwrap();
        assert!(due >= 27.0, "reset to resync after success: {due}");
    }

    #[tokio::test(start_paused = true)]
    async fn config_change_makes_only_changed_units_due_now() {
        let mut s = three_units_in_step();
        tokio::time::advance(Duration::from_secs(5)).await;
        let now = Instant::now();
        let touched = s.set_units(
            units(&[("a", 1), ("b", 2), ("d", 1)]),
            now,
            DueReason::ConfigChanged,
        );
        assert_eq!(touched, vec!["b".to_string(), "d".to_string()]);
        let taken = s.take_due(now);
        assert_eq!(taken.keys().cloned().collect::<Vec<_>>(), vec!["b", "d"]);
        assert!(taken.values().all(|r| *r == DueReason::ConfigChanged));
        // `c` was removed from the config: forgotten.
        assert!(s.schedules(now).iter().all(|u| u.unit != "c"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_unit_changed_during_its_pass_runs_again_after_it() {
        let mut s = Scheduler::new(settings());
        let now = Instant::now();
        s.set_units(units(&[("a", 1)]), now, DueReason::Startup);
        s.take_due(now);
        // Edited while the pass runs: not due yet (never twice at once)...
        s.set_units(units(&[("a", 2)]), now, DueReason::ConfigChanged);
        assert_eq!(s.next_due(), None);
        // ...due right after the pass reports, whatever its result.
        s.finish(&results(&[("a", true)]), now);
        let taken = s.take_due(now);
        assert_eq!(taken.get("a"), Some(&DueReason::ConfigChanged));
    }
}
