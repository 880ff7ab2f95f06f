//! The daemon's status document — each unit's state, desired vs live, its
//! last drift and actions, the schedule, what could not be read — and how a
//! pass's results are folded into it. The loop publishes it after every
//! pass; the status API, the event stream and the dashboard read it.

use std::collections::{BTreeMap, BTreeSet};

use ecs_reconciler_plan::view::UnitView;
use ecs_reconciler_plan::{
    ActionOutcome, Address, Change, ErrorClass, Outcome, Plan, UnitId, UnitKind, Unknown,
};
use ecs_reconciler_spec::Mode;
use serde::Serialize;

use crate::cloud::Leadership;
use crate::events::Attribution;
use crate::fights::Fight;
use crate::holds::AwaitingConfirmation;
use crate::metrics::BudgetHeadroom;
use crate::scheduler::{DueReason, UnitResult, UnitSchedule};
use ecs_reconciler_plan::events::QueueHealth;

/// Where a unit stands after its last pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UnitState {
    /// Not checked yet.
    #[default]
    Pending,
    /// Live matches the file.
    InSync,
    /// Drift left (observe mode, reported-only drift, held changes).
    Drifted,
    /// Changes were applied this pass.
    Correcting,
    /// Another writer keeps undoing a correction: held.
    Fighting,
    /// A read or a change failed; retried with backoff.
    Error,
    /// `paused: true` in the file.
    Paused,
    /// This copy follows: the leader reconciles the unit; a follower does
    /// not read it at all (many copies cost one).
    Standby,
}

/// One unit's last known state, for the status API and the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct UnitStatus {
    /// The unit.
    pub unit: UnitId,
    /// What kind of resource it is.
    pub kind: UnitKind,
    /// Its name within the kind.
    pub name: String,
    /// Its mode in the file.
    pub mode: Mode,
    /// What the file says, and what was last seen (null when unknown), as
    /// compact JSON text.
    pub desired: Option<Box<serde_json::value::RawValue>>,
    /// See `desired`.
    pub live: Option<Box<serde_json::value::RawValue>>,
    /// Where it stands.
    pub state: UnitState,
    /// Drift found by the last pass (all dispositions but info).
    pub drift: Vec<Change>,
    /// What the last pass did.
    pub actions: Vec<ActionOutcome>,
    /// The last pass's error, with what happens next.
    pub last_error: Option<String>,
    /// The class of that error (it sets the retry pace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
    /// Unix seconds of its last pass.
    pub last_pass_unix: f64,
    /// Unix seconds of its last successful pass.
    pub last_success_unix: Option<f64>,
    /// What made that pass run: `event`, `resync`, `edit`, `startup`,
    /// `retry`, `operator`, `recheck`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<DueReason>,
    /// Who made its last drift, when a CloudTrail event said so (kept
    /// after the correction, until the next drift).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<Attribution>,
}

impl UnitStatus {
    /// A unit not checked yet.
    pub fn new(unit: UnitId) -> UnitStatus {
        UnitStatus {
            kind: unit.kind(),
            name: unit.name(),
            unit,
            mode: Mode::default(),
            desired: None,
            live: None,
            state: UnitState::Pending,
            drift: Vec::new(),
            actions: Vec::new(),
            last_error: None,
            error_class: None,
            last_pass_unix: 0.0,
            last_success_unix: None,
            verified_by: None,
            changed_by: None,
        }
    }
}

/// The daemon's status, published after every pass.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DaemonStatus {
    /// Passes run since start.
    pub passes: u64,
    /// Unix seconds the last pass ended.
    pub last_pass_unix: Option<f64>,
    /// How long it took.
    pub last_pass_seconds: Option<f64>,
    /// The last pass observed only the units due and what they need (an
    /// edit, a retry), not the whole file.
    pub last_pass_scoped: bool,
    /// When the last observation with no unknown part finished.
    pub last_complete_observation_unix: Option<f64>,
    /// Every declared unit.
    pub units: BTreeMap<UnitId, UnitStatus>,
    /// When each unit is due next.
    pub schedule: Vec<UnitSchedule>,
    /// What could not be read in the last pass.
    pub unknowns: Vec<Unknown>,
    /// The load balancers' DNS names.
    pub addresses: Vec<Address>,
    /// The config generation the last pass planned with.
    pub config_generation: u64,
    /// Whether this copy writes.
    pub leadership: Leadership,
    /// Unix seconds since this copy has seen the current leadership (the
    /// same leader, or itself leading).
    pub leadership_since_unix: Option<f64>,
    /// Fields left alone because another writer keeps changing them.
    pub fights: Vec<Fight>,
    /// Drastic config edits whose removals wait for an operator.
    pub awaiting_confirmation: Vec<AwaitingConfirmation>,
    /// Client-side API budgets: tokens left per AWS rate class.
    pub api_budgets: Vec<BudgetHeadroom>,
    /// The events queue, when `run --events-queue` names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_queue: Option<EventQueueStatus>,
}

/// The events queue as the status shows it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct EventQueueStatus {
    /// The queue's URL.
    pub url: String,
    /// Whether it can be read; `None` before the first receive.
    pub health: Option<QueueHealth>,
    /// Since when (Unix seconds).
    pub since_unix: f64,
    /// The resync in effect: the long one while the queue works, the
    /// normal one otherwise.
    pub resync_seconds: f64,
    /// Events received.
    pub received: u64,
    /// Events that caused a pass.
    pub triggering: u64,
    /// Events ignored, by reason.
    pub ignored: BTreeMap<String, u64>,
    /// When the last event arrived (Unix seconds).
    pub last_event_unix: Option<f64>,
}

/// What one pass found and did, to be folded into the status.
pub struct PassReport<'a> {
    /// Unix seconds it ended.
    pub now: f64,
    /// How long it took.
    pub seconds: f64,
    /// Whether it observed only part of the file.
    pub scoped: bool,
    /// Every unit of the file (a scoped pass's views cover only its part).
    pub declared: &'a [UnitId],
    /// The config generation it planned with.
    pub generation: u64,
    /// Its plan, gated.
    pub plan: &'a Plan,
    /// What it executed.
    pub outcomes: &'a [ActionOutcome],
    /// Each due unit's result.
    pub results: &'a BTreeMap<UnitId, UnitResult>,
    /// Desired vs live of every unit it observed.
    pub views: BTreeMap<UnitId, UnitView>,
    /// Units whose correction was held as a fight.
    pub fighting: &'a BTreeSet<UnitId>,
    /// Why each due unit ran.
    pub reasons: &'a BTreeMap<UnitId, DueReason>,
    /// Who changed the due units lately, from events.
    pub who: &'a BTreeMap<UnitId, Attribution>,
}

impl DaemonStatus {
    /// Folds a pass into the status: every observed unit's desired/live,
    /// and the due units' state, drift, actions and error.
    pub fn record_pass(&mut self, pass: PassReport<'_>) {
        self.passes += 1;
        self.last_pass_unix = Some(pass.now);
        self.last_pass_seconds = Some(pass.seconds);
        self.last_pass_scoped = pass.scoped;
        if !pass.scoped {
            if pass.plan.unknowns.is_empty() {
                self.last_complete_observation_unix = Some(pass.now);
            }
            self.unknowns = pass.plan.unknowns.clone();
            self.addresses = pass.plan.addresses.clone();
        }
        self.config_generation = pass.generation;
        // A full pass's views cover every declared unit; a scoped one's
        // only its part, and the rest keep what the last pass showed.
        if pass.scoped {
            let declared: BTreeSet<&UnitId> = pass.declared.iter().collect();
            self.units.retain(|unit, _| declared.contains(unit));
        } else {
            self.units.retain(|unit, _| pass.views.contains_key(unit));
        }
        for (unit, view) in pass.views {
            let entry = self
                .units
                .entry(unit.clone())
                .or_insert_with(|| UnitStatus::new(unit));
            entry.name = view.name;
            entry.mode = view.mode;
            if view.mode == Mode::Paused {
                entry.state = UnitState::Paused;
            }
            entry.desired = Some(view.desired);
            entry.live = Some(view.live);
        }
        for (unit, result) in pass.results {
            let drift: Vec<Change> = pass
                .plan
                .changes
                .iter()
                .filter(|c| &c.owner == unit && c.disposition.is_drift())
                .cloned()
                .collect();
            let actions: Vec<ActionOutcome> = pass
                .outcomes
                .iter()
                .filter(|o| &o.change.owner == unit)
                .cloned()
                .collect();
            let failed_action = actions.iter().find_map(|o| match &o.outcome {
                Outcome::Failed { error, .. } => Some(error.clone()),
                _ => None,
            });
            let entry = self
                .units
                .entry(unit.clone())
                .or_insert_with(|| UnitStatus::new(unit.clone()));
            entry.state = if pass.fighting.contains(unit) {
                UnitState::Fighting
            } else if entry.mode == Mode::Paused {
                UnitState::Paused
            } else if result.is_err() {
                UnitState::Error
            } else if !actions.is_empty() {
                UnitState::Correcting
            } else if drift.is_empty() {
                UnitState::InSync
            } else {
                UnitState::Drifted
            };
            let error = failed_action.or_else(|| {
                (result.is_err() && !pass.plan.unknowns.is_empty()).then(|| {
                    pass.plan
                        .unknowns
                        .iter()
                        .map(|u| format!("{}: {}", u.what, u.why))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            });
            entry.error_class = result.err();
            entry.last_error = match (error, result) {
                (Some(error), Err(class)) => Some(format!("{error} ({})", class.advice())),
                (error, _) => error,
            };
            if !drift.is_empty() {
                entry.changed_by = pass.who.get(unit).cloned();
            }
            entry.drift = drift;
            entry.actions = actions;
            entry.last_pass_unix = pass.now;
            if result.is_ok() {
                entry.last_success_unix = Some(pass.now);
                entry.verified_by = pass.reasons.get(unit).copied();
            }
        }
    }
}

impl DaemonStatus {
    /// Folds in a pass of a copy that does not lead: it read nothing but
    /// the election, so every declared unit is on standby — what the
    /// leader reconciles is not shown here as if it were known.
    pub fn record_standby(&mut self, now: f64, seconds: f64, declared: &[UnitId]) {
        self.passes += 1;
        self.last_pass_unix = Some(now);
        self.last_pass_seconds = Some(seconds);
        self.last_pass_scoped = false;
        self.unknowns.clear();
        self.addresses.clear();
        let declared: BTreeSet<&UnitId> = declared.iter().collect();
        self.units.retain(|unit, _| declared.contains(unit));
        for unit in declared {
            let entry = self
                .units
                .entry(unit.clone())
                .or_insert_with(|| UnitStatus::new(unit.clone()));
            entry.state = UnitState::Standby;
            entry.live = None;
            entry.drift.clear();
            entry.actions.clear();
            entry.last_error = None;
            entry.error_class = None;
            entry.last_pass_unix = now;
        }
    }
}

/// A unit succeeded when everything it asked for was done and nothing the
/// pass read was unknown (the one observation serves every unit, so a
/// failed read is retried for all of them). A failure's class is the most
/// severe of the unit's failed calls, else of the pass's unknown reads.
pub fn unit_results<'a>(
    due: impl IntoIterator<Item = &'a UnitId>,
    plan: &Plan,
    outcomes: &[ActionOutcome],
) -> BTreeMap<UnitId, UnitResult> {
    let unread = plan.unknowns.iter().map(|u| u.class).max();
    due.into_iter()
        .map(|unit| {
            let failed = outcomes
                .iter()
                .filter(|o| &o.change.owner == unit)
                .filter_map(|o| match &o.outcome {
                    Outcome::Failed { class, .. } => Some(*class),
                    Outcome::Skipped { .. } => Some(ErrorClass::Transient),
                    _ => None,
                })
                .max();
            let result = match failed.max(unread) {
                Some(class) => Err(class),
                None => Ok(()),
            };
            (unit.clone(), result)
        })
        .collect()
}
