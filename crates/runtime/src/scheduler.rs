//! Which managed resources are due for reconciliation, and when.
//!
//! Each declared resource (security group, cluster attachment set, service,
//! target group, load balancer) is one unit of work, keyed by its
//! [`UnitId`] (the plan's change owner). A unit is never in two passes at once (taking it moves
//! its due time to "never" until the pass reports back), is resynced every
//! `resync` with jitter, and after an error is retried with its own
//! backoff, reset on success, whose pace depends on the class of the error
//! (kube-rs's `error_policy`): transient failures retry soon, throttling
//! backs off exponentially while the client-side API budget paces every
//! call, and a refusal (access denied, invalid request) waits long — it
//! will not succeed until a person acts.
//!
//! Units due close together are taken together, and units that succeed in
//! one pass share one jittered resync time, so in steady state all units
//! stay in step and a pass costs one batched observation, not one per unit.
//! Pure state over `tokio::time::Instant`: tested with paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use ecs_reconciler_plan::{ErrorClass, UnitId};
use rand::Rng;
use tokio::time::Instant;

/// Why a unit is due; goes into the pass's tracing span only — a reconcile
/// never depends on why it ran (level-triggered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DueReason {
    /// The daemon just started.
    Startup,
    /// The unit's spec changed in the file (or it was added).
    #[serde(rename = "edit")]
    ConfigChanged,
    /// Its resync period elapsed.
    Resync,
    /// Its last pass failed; its backoff elapsed.
    Retry,
    /// An operator asked (a reload or a resync-all control).
    Operator,
    /// A finding one read could not prove is re-read once the consistency
    /// window has passed (see `ecs_reconciler_plan::sightings`).
    Recheck,
    /// A change event from the queue named it.
    Event,
}

/// How one unit's pass went: `Err` carries the class of the failure,
/// which sets how soon it is retried.
pub type UnitResult = Result<(), ErrorClass>;

/// Timing settings.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How often every unit is re-checked when nothing happens.
    pub resync: Duration,
    /// Resync is spread by up to this fraction (0.1 = ±10%).
    pub jitter: f64,
    /// First retry delay after an error.
    pub backoff_min: Duration,
    /// Retry delays never exceed this; a refused call (access denied,
    /// invalid request) is retried after exactly this long.
    pub backoff_max: Duration,
    /// Retry delays of transient failures (network, 5xx, not found yet)
    /// never exceed this: they are worth retrying soon.
    pub transient_max: Duration,
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
            transient_max: Duration::from_secs(30),
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
    /// The class of the last failure (`None` after a success).
    last_error: Option<ErrorClass>,
    /// Its spec changed while it was in a pass: due again when it reports.
    rerun: bool,
}

/// A unit's schedule, for status reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitSchedule {
    /// The unit.
    pub unit: UnitId,
    /// Seconds until it is due; `None` while it is in a pass.
    pub due_in_seconds: Option<f64>,
    /// Failed passes in a row.
    pub consecutive_failures: u32,
    /// The class of the last failure, which set the retry delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
}

/// The schedule of every unit.
#[derive(Debug)]
pub struct Scheduler {
    settings: SchedulerSettings,
    units: BTreeMap<UnitId, UnitState>,
    /// How long each unit of the last `take_due` waited past its due time.
    last_waits: Vec<Duration>,
}

impl Scheduler {
    /// An empty schedule.
    pub fn new(settings: SchedulerSettings) -> Scheduler {
        Scheduler {
            settings,
            units: BTreeMap::new(),
            last_waits: Vec::new(),
        }
    }

    /// The timing settings.
    pub fn settings(&self) -> &SchedulerSettings {
        &self.settings
    }

    /// Replaces the set of units. New units and units whose fingerprint
    /// changed are due now; units no longer declared are forgotten.
    /// Returns the units that became due because of this call.
    pub fn set_units(
        &mut self,
        units: impl IntoIterator<Item = (UnitId, u64)>,
        now: Instant,
        reason: DueReason,
    ) -> Vec<UnitId> {
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
                    state.last_error = None;
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
                            last_error: None,
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
    pub fn take_due(&mut self, now: Instant) -> BTreeMap<UnitId, DueReason> {
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
    pub fn finish(&mut self, results: &BTreeMap<UnitId, UnitResult>, now: Instant) {
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
        results: &BTreeMap<UnitId, UnitResult>,
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
        for (unit, result) in results {
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
            match result {
                Ok(()) => {
                    state.due = Some(resync);
                    state.reason = DueReason::Resync;
                    state.backoff = None;
                    state.failures = 0;
                    state.last_error = None;
                }
                Err(class) => {
                    let delay = retry_delay(&self.settings, state, *class);
                    state.due = Some(now + delay);
                    state.reason = DueReason::Retry;
                    state.failures += 1;
                    state.last_error = Some(*class);
                }
            }
        }
    }

    /// Puts the units of a pass that was abandoned before it wrote
    /// anything back in the queue, due at `at`, with their reasons; a unit
    /// edited meanwhile is due at once.
    pub fn requeue<'a>(&mut self, units: impl IntoIterator<Item = &'a UnitId>, at: Instant) {
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

    /// Brings `unit` forward to `at` when it is due later (a unit in a
    /// pass, or due sooner, is left as it is).
    pub fn expedite(&mut self, unit: &UnitId, at: Instant, reason: DueReason) {
        let Some(state) = self.units.get_mut(unit) else {
            return;
        };
        if let Some(due) = state.due
            && at < due
        {
            state.due = Some(at);
            state.reason = reason;
        }
    }

    /// Changes the resync period (the events queue started or stopped
    /// working). Units waiting for a resync later than a new, shorter
    /// period allows are brought forward to it.
    pub fn set_resync(&mut self, resync: Duration, now: Instant) {
        self.settings.resync = resync;
        let latest = now + resync;
        for state in self.units.values_mut() {
            if let Some(due) = state.due
                && state.reason == DueReason::Resync
                && due > latest
            {
                state.due = Some(latest);
            }
        }
    }

    /// The scheduled units.
    pub fn units(&self) -> impl Iterator<Item = &UnitId> {
        self.units.keys()
    }

    /// Marks every unit due now (an operator's reload or resync-all).
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
                error_class: state.last_error,
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

/// How long a unit waits after a failure of `class`. A class change
/// starts the backoff over: a throttle after a network error is a new
/// situation.
fn retry_delay(settings: &SchedulerSettings, state: &mut UnitState, class: ErrorClass) -> Duration {
    if class.needs_a_person() {
        // Retrying sooner cannot help; retrying at all notices the fix.
        state.backoff = None;
        return settings.backoff_max;
    }
    let cap = match class {
        ErrorClass::Throttled => settings.backoff_max,
        _ => settings.transient_max.min(settings.backoff_max),
    };
    if state.last_error != Some(class) {
        state.backoff = None;
    }
    state
        .backoff
        .get_or_insert_with(|| {
            ExponentialBuilder::new()
                .with_min_delay(settings.backoff_min)
                .with_max_delay(cap)
                .with_factor(2.0)
                .with_jitter()
                .without_max_times()
                .build()
        })
        .next()
        .unwrap_or(cap)
        .min(cap)
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
            transient_max: Duration::from_secs(60),
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

    /// A unit named `name` (the kind does not matter to the scheduler).
    fn u(name: &str) -> UnitId {
        UnitId::cluster(name)
    }

    fn units(names: &[(&str, u64)]) -> Vec<(UnitId, u64)> {
        names.iter().map(|(n, f)| (u(n), *f)).collect()
    }

    fn results(names: &[(&str, bool)]) -> BTreeMap<UnitId, UnitResult> {
        names
            .iter()
            .map(|(n, ok)| {
                (
                    u(n),
                    if *ok {
                        Ok(())
                    } else {
                        Err(ErrorClass::Throttled)
                    },
                )
            })
            .collect()
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
    async fn a_recheck_brings_one_unit_forward_and_never_pushes_one_back() {
        let mut s = three_units_in_step();
        let now = Instant::now();
        s.expedite(&u("a"), now + Duration::from_secs(5), DueReason::Recheck);
        // Later than its resync: no effect.
        s.expedite(&u("b"), now + Duration::from_secs(300), DueReason::Recheck);
        tokio::time::advance(Duration::from_secs(5)).await;
        let taken = s.take_due(Instant::now());
        assert_eq!(
            taken.into_iter().collect::<Vec<_>>(),
            vec![(u("a"), DueReason::Recheck)]
        );
        // In a pass: left alone.
        s.expedite(&u("a"), Instant::now(), DueReason::Recheck);
        assert!(s.take_due(Instant::now()).is_empty());
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
                .all(|s| s.due_in_seconds == Some((shared - now).as_secs_f64()))
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
        assert_eq!(s.take_due(now).keys().collect::<Vec<_>>(), [&u("b")]);
        let rest = s.take_due(later);
        assert_eq!(rest.get(&u("a")), Some(&DueReason::Startup));
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
            assert!(taken.contains_key(&u("a")));
            let mut r = results(&[("a", false)]);
            if taken.contains_key(&u("b")) {
                r.insert(u("b"), Ok(()));
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
        assert_eq!(touched, vec![u("b"), u("d")]);
        let taken = s.take_due(now);
        assert_eq!(
            taken.keys().cloned().collect::<Vec<_>>(),
            vec![u("b"), u("d")]
        );
        assert!(taken.values().all(|r| *r == DueReason::ConfigChanged));
        // `c` was removed from the config: forgotten.
        assert!(s.schedules(now).iter().all(|s| s.unit != u("c")));
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
        assert_eq!(taken.get(&u("a")), Some(&DueReason::ConfigChanged));
    }

    /// One failure of `class` for unit `a` at `now`: the delay it got.
    fn delay_after(s: &mut Scheduler, class: ErrorClass) -> f64 {
        let now = Instant::now();
        s.take_due(now + Duration::from_secs(1000));
        s.finish(&BTreeMap::from([(u("a"), Err(class))]), now);
        s.schedules(now)[0].due_in_seconds.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_error_class_sets_the_retry_pace() {
        let settings = SchedulerSettings {
            backoff_max: Duration::from_secs(300),
            transient_max: Duration::from_secs(30),
            ..settings()
        };
        let start = |s: &mut Scheduler| {
            s.set_units(units(&[("a", 1)]), Instant::now(), DueReason::Startup);
        };
        // A refusal waits the longest delay at once, every time, and the
        // schedule says why.
        for class in [ErrorClass::Denied, ErrorClass::Invalid] {
            let mut s = Scheduler::new(settings.clone());
            start(&mut s);
            for _ in 0..3 {
                assert_eq!(delay_after(&mut s, class), 300.0, "{class}");
            }
            assert_eq!(s.schedules(Instant::now())[0].error_class, Some(class));
        }
        // Transient failures start at a second and stay within 30 s.
        let mut s = Scheduler::new(settings.clone());
        start(&mut s);
        let transient: Vec<f64> = (0..12)
            .map(|_| delay_after(&mut s, ErrorClass::Transient))
            .collect();
        assert!(transient[0] <= 2.0, "{transient:?}");
        assert!(transient.iter().all(|d| *d <= 30.0), "{transient:?}");
        // Throttling grows past that, up to the cap.
        let mut s = Scheduler::new(settings.clone());
        start(&mut s);
        let throttled: Vec<f64> = (0..12)
            .map(|_| delay_after(&mut s, ErrorClass::Throttled))
            .collect();
        assert!(throttled[0] <= 2.0, "{throttled:?}");
        assert!(throttled[11] > 60.0, "{throttled:?}");
        assert!(throttled.iter().all(|d| *d <= 300.0), "{throttled:?}");
        // A new class starts its own backoff: after long throttling, a
        // network error is retried within seconds again.
        let after = delay_after(&mut s, ErrorClass::Transient);
        assert!(after <= 2.0, "{after}");
        // Success clears the class.
        let now = Instant::now();
        s.take_due(now + Duration::from_secs(1000));
        s.finish(&results(&[("a", true)]), now);
        assert_eq!(s.schedules(now)[0].error_class, None);
    }
}
