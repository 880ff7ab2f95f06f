//! The loop of `ecs-reconciler run`: wait for due units (or a config
//! change, or shutdown), observe once for the whole pass, plan, apply the
//! due units' changes, report each unit's result to the scheduler, publish
//! status, write the audit trail.
//!
//! Level-triggered: a pass plans from the live state and the current
//! config only; why it ran (startup, resync, retry, config change) is
//! recorded in its tracing span and nowhere else.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ecs_reconciler_plan::{
    ActionOutcome, Change, Disposition, Outcome, Plan, Snapshot, change_key, hold_drastic,
    takes_away,
};
use ecs_reconciler_spec::DesiredState;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::audit::AuditLog;
use crate::fights::{Fight, FightDetector};
use crate::holds::{AwaitingConfirmation, DrasticHolds};
use crate::metrics::{
    BudgetHeadroom, ControllerLabel, KindLabel, Metrics, QUEUE, QueueLabel, ReconcileLabels,
    ResourceLabels,
};
use crate::reload::LoadedConfig;
use crate::scheduler::{DueReason, Scheduler, SchedulerSettings, UnitSchedule};
pub use crate::scope::Coverage;
use crate::timeline::{Timeline, TimelineEvent};

/// The cloud as the loop sees it: read everything the config names, and
/// execute changes. The binary implements it over the AWS SDK; tests fake
/// it.
pub trait Cloud: Send + Sync + 'static {
    /// Reads what `desired` names. A [`Coverage::Scoped`] read is of part
    /// of the file: what the cloud remembers across passes about the rest
    /// must be kept, not dropped.
    fn observe(
        &self,
        desired: &DesiredState,
        coverage: Coverage,
    ) -> impl Future<Output = Snapshot> + Send;
    /// Executes in order; starts no new call once `stop` is cancelled.
    fn execute(
        &self,
        changes: Vec<Change>,
        stop: CancellationToken,
    ) -> impl Future<Output = Vec<ActionOutcome>> + Send;

    /// Whether this copy may write. A single copy always leads.
    /// The client-side API budgets' state (none by default).
    fn budgets(&self) -> Vec<BudgetHeadroom> {
        Vec::new()
    }

    fn leadership(&self) -> impl Future<Output = Leadership> + Send {
        async { Leadership::Leader }
    }
}

/// This copy's role. Only the leader writes; followers observe and report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum Leadership {
    #[default]
    Leader,
    Follower {
        leader: Option<String>,
    },
    /// The election could not be read: not writing is the safe side.
    Unknown {
        reason: String,
    },
}

/// The units of a desired state, by name (what [`units_of`] names, without
/// the cost of fingerprinting every spec).
pub fn unit_names(desired: &DesiredState) -> Vec<String> {
    ecs_reconciler_plan::plan::unit_modes(desired)
        .into_iter()
        .map(|(unit, _)| unit)
        .collect()
}

/// The units of a desired state with a fingerprint of each one's spec, so a
/// config edit makes exactly the edited units due.
pub fn units_of(desired: &DesiredState) -> Vec<(String, u64)> {
    fn fingerprint<T: Serialize>(value: &T, mode: &impl Serialize) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(value)
            .unwrap_or_default()
            .hash(&mut hasher);
        serde_json::to_string(mode)
            .unwrap_or_default()
            .hash(&mut hasher);
        hasher.finish()
    }
    let mut out = Vec::new();
    // A group's desired rules depend on the groups they reference (their
    // ids), so every group unit also hashes the set of declared names.
    let names: Vec<&str> = desired
        .security_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    for group in &desired.security_groups {
        out.push((
            format!("security-group/{}", group.name),
            fingerprint(group, &names),
        ));
    }
    for cluster in &desired.clusters {
        out.push((
            format!("cluster/{}", cluster.name),
            fingerprint(cluster, &()),
        ));
    }
    for service in &desired.services {
        out.push((
            format!("service/{}/{}", service.cluster, service.name),
            fingerprint(service, &()),
        ));
    }
    for tg in &desired.target_groups {
        out.push((format!("target-group/{}", tg.name), fingerprint(tg, &())));
    }
    for lb in &desired.load_balancers {
        out.push((format!("load-balancer/{}", lb.name), fingerprint(lb, &())));
    }
    out
}

/// Per unit, the reasons of the drift the last pass reported.
type ReportedDrift = BTreeMap<String, BTreeSet<String>>;

/// One unit's last known state, for the status API and the dashboard.
#[derive(Debug, Clone, Serialize, Default)]
pub struct UnitStatus {
    pub unit: String,
    /// `security-group`, `cluster`, `service`, `target-group`, `load-balancer`.
    pub kind: String,
    pub name: String,
    /// `enforce` or `observe`.
    pub mode: String,
    /// What the file says, and what was last seen (null when unknown), as
    /// compact JSON text.
    pub desired: Option<Box<serde_json::value::RawValue>>,
    pub live: Option<Box<serde_json::value::RawValue>>,
    /// `in-sync`, `drifted` (observe/report drift left), `correcting`
    /// (changes applied this pass), `fighting` (another writer keeps
    /// undoing a correction: held), `error`.
    pub state: String,
    /// Drift found by the last pass (all dispositions but info).
    pub drift: Vec<Change>,
    /// What the last pass did.
    pub actions: Vec<ActionOutcome>,
    pub last_error: Option<String>,
    pub last_pass_unix: f64,
    pub last_success_unix: Option<f64>,
}

/// The daemon's status, published after every pass.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DaemonStatus {
    pub passes: u64,
    pub last_pass_unix: Option<f64>,
    pub last_pass_seconds: Option<f64>,
    /// The last pass observed only the units due and what they need (an
    /// edit, a retry), not the whole file.
    pub last_pass_scoped: bool,
    /// When the last observation with no unknown part finished.
    pub last_complete_observation_unix: Option<f64>,
    pub units: BTreeMap<String, UnitStatus>,
    pub schedule: Vec<UnitSchedule>,
    /// What could not be read in the last pass.
    pub unknowns: Vec<ecs_reconciler_plan::Unknown>,
    pub addresses: Vec<ecs_reconciler_plan::Address>,
    pub config_generation: u64,
    pub leadership: Leadership,
    /// Fields left alone because another writer keeps changing them.
    pub fights: Vec<Fight>,
    /// Drastic config edits whose removals wait for an operator (SIGUSR1).
    pub awaiting_confirmation: Vec<AwaitingConfirmation>,
    /// Client-side API budgets: tokens left per AWS rate class.
    pub api_budgets: Vec<BudgetHeadroom>,
}

/// Everything the loop needs.
pub struct Controller<C: Cloud> {
    pub cloud: Arc<C>,
    pub config: watch::Receiver<LoadedConfig>,
    pub settings: SchedulerSettings,
    pub shutdown: CancellationToken,
    pub audit: Option<AuditLog>,
    pub status: watch::Sender<DaemonStatus>,
    /// Unix seconds of the loop's last beat (for `/healthz`): it beats
    /// every few seconds while idle and after every pass.
    pub heartbeat: Arc<AtomicU64>,
    pub timeline: Arc<Timeline>,
    pub metrics: Arc<Metrics>,
    /// Fields another writer keeps changing are left alone.
    pub fights: FightDetector,
    /// Changes held by the destructive cap in the previous pass, if that
    /// pass's observation was complete: a second one agreeing releases them.
    /// (owner unit, change key).
    pub held_before: BTreeSet<(String, String)>,
    /// Drastic config edits whose removals wait for SIGUSR1.
    pub drastic: DrasticHolds,
    /// An operator confirms every held removal (the binary forwards
    /// SIGUSR1 here).
    pub confirm: Arc<tokio::sync::Notify>,
    /// Confirmed: the next pass applies every held change.
    pub release_all_held: bool,
    /// Since when a full pass has been trying to run (abandoned for edits
    /// so far). Once that is a whole resync, the next one runs to the end
    /// whatever happens: edits can delay the full re-read, never starve it
    /// (the file is re-read whole at least every two resyncs).
    pub full_pass_pending_since: Option<Instant>,
}

/// How long after an edit's scoped pass the full pass it interrupted
/// starts again.
const ABANDONED_RETRY: Duration = Duration::from_secs(1);

/// How often the idle loop beats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl<C: Cloud> Controller<C> {
    /// Runs until `shutdown` is cancelled; a pass in progress is finished
    /// (its AWS calls in flight complete, no new ones start).
    pub async fn run(mut self) {
        let mut scheduler = Scheduler::new(self.settings.clone());
        let mut current = self.config.borrow_and_update().clone();
        scheduler.set_units(
            units_of(&current.desired),
            Instant::now(),
            DueReason::Startup,
        );
        let mut config_open = true;
        // SIGHUP re-reads the file (reload) and re-checks every resource now.
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.heartbeat.store(unix_now() as u64, Ordering::Relaxed);
            let wake = scheduler.next_due();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                _ = beat.tick() => {
                    self.publish_budgets();
                    continue;
                }
                Some(()) = recv_hangup(&mut hangup) => {
                    tracing::info!("SIGHUP: clearing fights, re-checking every resource now");
                    self.fights.clear();
                    scheduler.trigger_all(Instant::now(), DueReason::Operator);
                    continue;
                }
                () = self.confirm.notified() => {
                    let edits = self.drastic.confirm_all();
                    self.release_all_held = true;
                    tracing::warn!(edits, "SIGUSR1: an operator confirmed every held removal; applying them now");
                    self.timeline.push(TimelineEvent::now(
                        "confirmed",
                        None,
                        format!("an operator confirmed every held removal ({edits} drastic config edits)"),
                    ));
                    self.status.send_modify(|status| status.awaiting_confirmation.clear());
                    scheduler.trigger_all(Instant::now(), DueReason::Operator);
                    continue;
                }
                changed = self.config.changed(), if config_open => {
                    if changed.is_err() {
                        config_open = false;
                        continue;
                    }
                    let before = current.desired.clone();
                    current = self.config.borrow_and_update().clone();
                    // A new config is a new intent: stop holding fights.
                    self.fights.clear();
                    for edit in self.drastic.on_reload(&before, &current.desired, current.generation) {
                        tracing::warn!(
                            resource = %edit.owner,
                            edit = %edit.what,
                            "drastic config edit: its removals are held until an operator confirms (SIGUSR1)"
                        );
                        self.timeline.push(TimelineEvent::now(
                            "held",
                            Some(edit.owner.clone()),
                            format!(
                                "the config edit cut {}; its removals wait for confirmation (SIGUSR1 or apply --allow-destructive)",
                                edit.what
                            ),
                        ));
                    }
                    let awaiting = self.drastic.awaiting();
                    self.status.send_modify(|status| status.awaiting_confirmation = awaiting);
                    let touched = scheduler.set_units(
                        units_of(&current.desired),
                        Instant::now(),
                        DueReason::ConfigChanged,
                    );
                    tracing::info!(
                        generation = current.generation,
                        units = ?touched,
                        "config changed; reconciling the changed resources now"
                    );
                    continue;
                }
                _ = sleep_until_or_forever(wake) => {}
            }
            let due = scheduler.take_due(Instant::now());
            if due.is_empty() {
                continue;
            }
            let queue = QueueLabel { name: QUEUE.into() };
            self.metrics
                .workqueue_adds_total
                .get_or_create(&queue)
                .inc_by(due.len() as u64);
            self.metrics
                .workqueue_depth
                .get_or_create(&queue)
                .set(due.len() as i64);
            for waited in scheduler.last_waits() {
                self.metrics
                    .workqueue_queue_duration_seconds
                    .get_or_create(&queue)
                    .observe(waited.as_secs_f64());
            }
            let reasons: BTreeSet<DueReason> = due.values().copied().collect();
            let span = tracing::info_span!("pass", units = due.len(), reasons = ?reasons);
            let started = Instant::now();
            let Some(results) = self.pass(&current, &due).instrument(span).await else {
                // Abandoned while observing, before any write: the edit
                // that interrupted it goes first (its scoped pass takes a
                // few calls), the rest follows right after.
                scheduler.requeue(due.keys(), Instant::now() + ABANDONED_RETRY);
                continue;
            };
            scheduler.finish_pass(&results, started, Instant::now());
            // What the pass freed goes back to the system, not to an arena.
            crate::memory::release_free_memory();
            self.metrics.workqueue_depth.get_or_create(&queue).set(0);
            self.status.send_modify(|status| {
                status.schedule = scheduler.schedules(Instant::now());
            });
            self.publish_budgets();
        }
        tracing::info!("reconcile loop stopped");
    }

    /// One pass over the due units: returns each unit's success, or `None`
    /// when a full pass was abandoned while observing because the file
    /// changed (nothing was written; see `full_pass_pending_since`).
    async fn pass(
        &mut self,
        config: &LoadedConfig,
        due: &BTreeMap<String, DueReason>,
    ) -> Option<BTreeMap<String, bool>> {
        let started = Instant::now();
        // Only some units due (an edit, a retry): observe what they need.
        let scoped = crate::scope::scoped(&config.desired, due);
        let coverage = if scoped.is_some() {
            Coverage::Scoped
        } else {
            Coverage::Full
        };
        let desired = scoped.as_ref().unwrap_or(&config.desired);
        let pending_since = if coverage == Coverage::Full {
            *self.full_pass_pending_since.get_or_insert(started)
        } else {
            started
        };
        let may_give_way = started.duration_since(pending_since) < self.settings.resync;
        let snapshot = if coverage == Coverage::Full && may_give_way {
            // A full pass at a thousand services observes for tens of
            // seconds; an edit arriving meanwhile should not wait for it.
            let mut edits = self.config.clone();
            let observed = tokio::select! {
                snapshot = self.cloud.observe(desired, coverage) => Some(snapshot),
                Ok(()) = edits.changed() => None,
            };
            match observed {
                Some(snapshot) => snapshot,
                None => {
                    tracing::info!(
                        "the file changed while observing: the edit goes first, this pass starts again after it"
                    );
                    return None;
                }
            }
        } else {
            self.cloud.observe(desired, coverage).await
        };
        if coverage == Coverage::Full {
            self.full_pass_pending_since = None;
        }
        let mut plan = ecs_reconciler_plan::plan(desired, &snapshot);
        // Everything below judges only what this pass saw.
        let in_scope = |owner: &str| coverage == Coverage::Full || due.contains_key(owner);
        if coverage == Coverage::Scoped {
            plan.changes.retain(|c| due.contains_key(&c.owner));
        }
        let held_key = |c: &Change| (c.owner.clone(), change_key(c));
        if plan.unknowns.is_empty() {
            let agreed = std::mem::take(&mut self.held_before);
            let released = plan.release_held(|c| agreed.contains(&held_key(c)));
            if released > 0 {
                tracing::info!(
                    released,
                    "a second complete observation agrees: applying held destructive changes"
                );
            }
            self.held_before = agreed
                .into_iter()
                .filter(|(owner, _)| !in_scope(owner))
                .chain(
                    plan.changes
                        .iter()
                        .filter(|c| c.disposition == Disposition::Held)
                        .map(held_key),
                )
                .collect();
        } else {
            // Not two consecutive complete observations.
            self.held_before.retain(|(owner, _)| !in_scope(owner));
        }
        if std::mem::take(&mut self.release_all_held) {
            plan.release_held(|_| true);
        }
        hold_drastic(&mut plan, &self.drastic.changes());
        if plan.unknowns.is_empty() && !self.drastic.is_empty() {
            let dropped = self.drastic.retain_pending(|owner| {
                !in_scope(owner)
                    || plan.changes.iter().any(|c| {
                        c.owner == owner && c.disposition == Disposition::Held && takes_away(c)
                    })
            });
            for owner in dropped {
                tracing::info!(resource = %owner, "nothing left to remove: the drastic edit no longer waits for confirmation");
            }
        }
        let to_apply: Vec<Change> = plan
            .changes
            .iter()
            .filter(|c| c.disposition == Disposition::Apply && due.contains_key(&c.owner))
            .cloned()
            .collect();
        let leadership = self.cloud.leadership().await;
        let was = self.status.borrow().leadership.clone();
        if leadership != was || self.status.borrow().passes == 0 {
            let message = match &leadership {
                Leadership::Leader => "this copy leads and corrects drift".to_string(),
                Leadership::Follower { leader } => format!(
                    "this copy follows {}; it observes only",
                    leader.as_deref().unwrap_or("no running task")
                ),
                Leadership::Unknown { reason } => {
                    format!("leadership unknown ({reason}); observing only")
                }
            };
            self.timeline
                .push(TimelineEvent::now("leadership", None, message));
            match &leadership {
                Leadership::Leader => tracing::info!("leading: this copy corrects drift"),
                Leadership::Follower { leader } => {
                    tracing::info!(leader = ?leader, "following: observing only, another copy writes")
                }
                Leadership::Unknown { reason } => {
                    tracing::warn!(%reason, "leadership unknown: observing only until it can be read")
                }
            }
        }
        let (to_apply, held) = self.fights.filter(to_apply);
        let outcomes = if to_apply.is_empty() || leadership != Leadership::Leader {
            Vec::new()
        } else {
            self.cloud.execute(to_apply, self.shutdown.clone()).await
        };
        for fight in self.fights.record(&outcomes, Instant::now()) {
            tracing::warn!(
                field = %fight.field,
                theirs = %fight.theirs,
                ours = %fight.ours,
                corrections = fight.corrections,
                "another writer keeps changing this field; leaving it alone until the config changes or SIGHUP"
            );
            self.metrics
                .fight_detected_total
                .get_or_create(&KindLabel {
                    kind: fight.kind.clone(),
                })
                .inc();
            self.timeline.push(TimelineEvent::now(
                "fight",
                Some(fight.unit.clone()),
                format!(
                    "{}: another writer keeps setting {} (the file says {}); left alone",
                    fight.field, fight.theirs, fight.ours
                ),
            ));
        }
        let fighting: BTreeSet<String> = held.iter().map(|c| c.owner.clone()).collect();
        if let Some(audit) = &mut self.audit {
            audit.record_all(&outcomes);
        }
        let results = unit_results(due, &plan, &outcomes);
        // What the previous pass reported for these units: new drift is
        // drift it did not report. (Only the reasons: a copy of every unit's
        // status would cost megabytes per pass at a thousand services.)
        let previous: ReportedDrift = {
            let status = self.status.borrow();
            due.keys()
                .filter_map(|unit| {
                    let reported = status.units.get(unit)?;
                    Some((
                        unit.clone(),
                        reported.drift.iter().map(|d| d.reason.clone()).collect(),
                    ))
                })
                .collect()
        };
        self.record_metrics(&previous, &plan, &outcomes, &results, started, &leadership);
        self.record_timeline(&previous, due, &plan, &outcomes);
        let views = ecs_reconciler_plan::view::views(desired, &snapshot);
        self.publish(
            config, coverage, due, &plan, &outcomes, &results, started, views,
        );
        let fights = self.fights.fights();
        let awaiting = self.drastic.awaiting();
        self.status.send_modify(|status| {
            status.leadership = leadership;
            status.fights = fights;
            status.awaiting_confirmation = awaiting;
            for unit in &fighting {
                if let Some(entry) = status.units.get_mut(unit) {
                    entry.state = "fighting".into();
                }
            }
        });
        Some(results)
    }

    fn publish_budgets(&self) {
        let budgets = self.cloud.budgets();
        if budgets.is_empty() {
            return;
        }
        self.metrics.record_budgets(&budgets);
        self.status
            .send_modify(|status| status.api_budgets = budgets);
    }

    fn record_metrics(
        &self,
        previous: &ReportedDrift,
        plan: &Plan,
        outcomes: &[ActionOutcome],
        results: &BTreeMap<String, bool>,
        started: Instant,
        leadership: &Leadership,
    ) {
        let m = &self.metrics;
        let elapsed = started.elapsed().as_secs_f64();
        let mut kinds_in_pass = BTreeSet::new();
        for (unit, ok) in results {
            let kind = kind_of(unit);
            kinds_in_pass.insert(kind.to_string());
            let result = if *ok { "success" } else { "error" };
            m.reconcile_total
                .get_or_create(&ReconcileLabels {
                    controller: kind.into(),
                    result: result.into(),
                })
                .inc();
            if !ok {
                m.reconcile_errors_total
                    .get_or_create(&ControllerLabel {
                        controller: kind.into(),
                    })
                    .inc();
                m.workqueue_retries_total
                    .get_or_create(&QueueLabel { name: QUEUE.into() })
                    .inc();
            }
            let drift: Vec<&Change> = plan
                .changes
                .iter()
                .filter(|c| &c.owner == unit && c.disposition.is_drift())
                .collect();
            let new_drift = drift
                .iter()
                .filter(|c| {
                    !previous
                        .get(unit)
                        .is_some_and(|reasons| reasons.contains(&c.reason))
                })
                .count();
            m.drift_detected_total
                .get_or_create(&KindLabel { kind: kind.into() })
                .inc_by(new_drift as u64);
            let corrected = outcomes
                .iter()
                .filter(|o| &o.change.owner == unit && o.succeeded())
                .count();
            m.drift_corrected_total
                .get_or_create(&KindLabel { kind: kind.into() })
                .inc_by(corrected as u64);
            // In sync after this pass: nothing left but what it corrected.
            let in_sync = *ok
                && drift.iter().all(|c| c.disposition == Disposition::Apply)
                && corrected >= drift.len();
            m.resource_in_sync
                .get_or_create(&ResourceLabels {
                    kind: kind.into(),
                    name: unit
                        .split_once('/')
                        .map_or(unit.as_str(), |(_, n)| n)
                        .into(),
                })
                .set(i64::from(in_sync));
        }
        for kind in kinds_in_pass {
            m.reconcile_time_seconds
                .get_or_create(&ControllerLabel { controller: kind })
                .observe(elapsed);
        }
        if plan.unknowns.is_empty() {
            m.last_successful_observation.set(unix_now());
        }
        m.is_leader
            .set(i64::from(*leadership == Leadership::Leader));
    }

    /// New drift (not reported by the unit's previous pass), every change
    /// made, and read errors go to the timeline.
    fn record_timeline(
        &self,
        previous: &ReportedDrift,
        due: &BTreeMap<String, DueReason>,
        plan: &Plan,
        outcomes: &[ActionOutcome],
    ) {
        for change in plan
            .changes
            .iter()
            .filter(|c| due.contains_key(&c.owner) && c.disposition.is_drift())
        {
            let seen = previous
                .get(&change.owner)
                .is_some_and(|reasons| reasons.contains(&change.reason));
            if !seen {
                self.timeline.push(TimelineEvent::now(
                    "drift",
                    Some(change.owner.clone()),
                    change.reason.clone(),
                ));
            }
        }
        for outcome in outcomes {
            let change = &outcome.change;
            let (kind, result) = match &outcome.outcome {
                Outcome::Applied { .. } => ("action", "done".to_string()),
                Outcome::AlreadyDone => ("action", "already so".to_string()),
                Outcome::Skipped { reason } => ("error", format!("skipped: {reason}")),
                Outcome::Failed { error } => ("error", format!("failed: {error}")),
            };
            self.timeline.push(TimelineEvent::now(
                kind,
                Some(change.owner.clone()),
                format!(
                    "{} {}: {} -> {} ({result})",
                    change.kind, change.resource, change.before, change.after
                ),
            ));
        }
        let unknowns: Vec<String> = plan
            .unknowns
            .iter()
            .map(|u| format!("{}: {}", u.what, u.why))
            .collect();
        if !unknowns.is_empty() && self.status.borrow().unknowns != plan.unknowns {
            self.timeline.push(TimelineEvent::now(
                "error",
                None,
                format!("could not observe {}", unknowns.join("; ")),
            ));
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        config: &LoadedConfig,
        coverage: Coverage,
        due: &BTreeMap<String, DueReason>,
        plan: &Plan,
        outcomes: &[ActionOutcome],
        results: &BTreeMap<String, bool>,
        started: Instant,
        views: BTreeMap<String, ecs_reconciler_plan::view::UnitView>,
    ) {
        let now = unix_now();
        // A full pass's views cover every declared unit; a scoped one's
        // only its part, and the rest keep what the last pass showed.
        let known_units: BTreeSet<String> = match coverage {
            Coverage::Full => views.keys().cloned().collect(),
            Coverage::Scoped => unit_names(&config.desired).into_iter().collect(),
        };
        self.status.send_modify(|status| {
            status.passes += 1;
            status.last_pass_unix = Some(now);
            status.last_pass_seconds = Some(started.elapsed().as_secs_f64());
            status.last_pass_scoped = coverage == Coverage::Scoped;
            if coverage == Coverage::Full {
                if plan.unknowns.is_empty() {
                    status.last_complete_observation_unix = Some(now);
                }
                status.unknowns = plan.unknowns.clone();
                status.addresses = plan.addresses.clone();
            }
            status.config_generation = config.generation;
            status.units.retain(|unit, _| known_units.contains(unit));
            // Every unit's desired/live comes from this pass's observation.
            for (unit, view) in views {
                let entry = status.units.entry(unit.clone()).or_default();
                entry.unit = unit;
                entry.kind = view.kind.to_string();
                entry.name = view.name;
                entry.mode = match view.mode {
                    ecs_reconciler_spec::Mode::Enforce => "enforce".into(),
                    ecs_reconciler_spec::Mode::Observe => "observe".into(),
                    ecs_reconciler_spec::Mode::Paused => "paused".into(),
                };
                if view.mode == ecs_reconciler_spec::Mode::Paused {
                    entry.state = "paused".into();
                }
                entry.desired = Some(view.desired);
                entry.live = Some(view.live);
            }
            for unit in due.keys() {
                let drift: Vec<Change> = plan
                    .changes
                    .iter()
                    .filter(|c| &c.owner == unit && c.disposition.is_drift())
                    .cloned()
                    .collect();
                let actions: Vec<ActionOutcome> = outcomes
                    .iter()
                    .filter(|o| &o.change.owner == unit)
                    .cloned()
                    .collect();
                let ok = results.get(unit).copied().unwrap_or(false);
                let error = actions.iter().find_map(|o| match &o.outcome {
                    Outcome::Failed { error } => Some(error.clone()),
                    _ => None,
                });
                let entry = status.units.entry(unit.clone()).or_default();
                entry.unit = unit.clone();
                entry.state = if entry.mode == "paused" {
                    "paused".into()
                } else if !ok {
                    "error".into()
                } else if !actions.is_empty() {
                    "correcting".into()
                } else if drift.is_empty() {
                    "in-sync".into()
                } else {
                    "drifted".into()
                };
                entry.last_error = error.or_else(|| {
                    (!ok && !plan.unknowns.is_empty()).then(|| {
                        plan.unknowns
                            .iter()
                            .map(|u| format!("{}: {}", u.what, u.why))
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                });
                entry.drift = drift;
                entry.actions = actions;
                entry.last_pass_unix = now;
                if ok {
                    entry.last_success_unix = Some(now);
                }
            }
        });
    }
}

/// A unit succeeded when everything it asked for was done and nothing the
/// pass read was unknown (the one observation serves every unit, so a
/// failed read is retried for all of them, with backoff).
fn unit_results(
    due: &BTreeMap<String, DueReason>,
    plan: &Plan,
    outcomes: &[ActionOutcome],
) -> BTreeMap<String, bool> {
    let complete = plan.unknowns.is_empty();
    due.keys()
        .map(|unit| {
            let actions_ok = outcomes
                .iter()
                .filter(|o| &o.change.owner == unit)
                .all(ActionOutcome::succeeded);
            (unit.clone(), complete && actions_ok)
        })
        .collect()
}

async fn recv_hangup(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// `security-group` of `security-group/NAME`.
fn kind_of(unit: &str) -> &str {
    unit.split_once('/').map_or(unit, |(kind, _)| kind)
}

async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
