//! The loop of `ecs-reconciler run`: wait for due units (or a config
//! change, a control, or shutdown), observe once for the whole pass, plan,
//! let the gate decide what may run, apply it, report each unit's result
//! to the scheduler, publish status, write the audit trail.
//!
//! Level-triggered: a pass plans from the live state and the current
//! config only; why it ran (startup, resync, retry, config change) is
//! recorded in its tracing span and nowhere else. The loop's state across
//! passes (schedule, fights, held changes, drastic edits) is private: the
//! outside reaches it only through controls (see [`crate::control`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ecs_reconciler_plan::{
    GateInput, HeldKey, HoldReason, Outcome, OwnWrites, Sightings, Snapshot, UnitId, gate,
    plan_with, unit_ids,
};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::audit::AuditLog;
use crate::cloud::{Cloud, Leadership};
use crate::control::{Ack, Control, LoopControls, ReconcileRequest};
use crate::events::{EventBatch, EventTriggers};
use crate::fights::{FightDetector, FightSettings};
use crate::holds::DrasticHolds;
use crate::metrics::{KindLabel, Metrics, QUEUE, QueueLabel};
use crate::reload::LoadedConfig;
use crate::report::{record_metrics, record_timeline, reported_drift};
use crate::requests::Waiting;
use crate::scheduler::{DueReason, Scheduler, SchedulerSettings, UnitResult};
use crate::scope::Coverage;
use crate::status::{DaemonStatus, EventQueueStatus, PassReport, UnitState, unit_results};
use crate::timeline::{Timeline, TimelineEvent, TimelineKind, unix_now};
use crate::units::units_of;
use ecs_reconciler_plan::events::QueueHealth;

/// How long after an edit's scoped pass the full pass it interrupted
/// starts again.
const ABANDONED_RETRY: Duration = Duration::from_secs(1);

/// The default consistency window: ECS, ELBv2 and EC2 reads usually agree
/// within seconds.
pub const DEFAULT_CONSISTENCY_WINDOW: Duration = Duration::from_secs(10);

/// How often the idle loop beats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// The reconcile loop. Built with [`Controller::new`] and the `with_*`
/// methods, started with [`Controller::run`].
pub struct Controller<C: Cloud> {
    cloud: Arc<C>,
    config: watch::Receiver<LoadedConfig>,
    controls: LoopControls,
    shutdown: CancellationToken,
    settings: SchedulerSettings,
    audit: Option<AuditLog>,
    status: watch::Sender<DaemonStatus>,
    heartbeat: Arc<AtomicU64>,
    timeline: Arc<Timeline>,
    metrics: Arc<Metrics>,
    /// Fields another writer keeps changing are left alone.
    fights: FightDetector,
    /// Changes the cap held in the previous complete observation: a second
    /// one agreeing releases them (see `ecs_reconciler_plan::gate`).
    held_before: BTreeSet<HeldKey>,
    /// Drastic config edits whose removals wait for an operator.
    drastic: DrasticHolds,
    /// An operator confirmed: the next pass applies every held change.
    release_all_held: bool,
    /// Target findings earlier passes saw, so a target is (de)registered
    /// only once reads a consistency window apart agree.
    sightings: Sightings,
    /// What this copy wrote lately: a lagging read is not corrected again.
    own_writes: OwnWrites,
    /// The origin of the times `sightings` is given.
    clock_origin: Instant,
    /// Since when a full pass has been trying to run (abandoned for edits
    /// so far). Once that is a whole resync, the next one runs to the end
    /// whatever happens: edits can delay the full re-read, never starve it
    /// (the file is re-read whole at least every two resyncs).
    full_pass_pending_since: Option<Instant>,
    /// Reconcile-now requests waiting for their passes.
    waiting: Waiting,
    /// What change events tell: ids, own writes, who changed what.
    events: EventTriggers,
    /// The resync while the events queue works (`None`: no queue).
    quiet_resync: Option<Duration>,
    /// Read once more a consistency window after a pass: resources an
    /// event named that it found in sync (the read may have lagged the
    /// call), and, with a queue, the ones it corrected.
    event_rechecks: BTreeSet<UnitId>,
}

impl<C: Cloud> Controller<C> {
    /// A loop over `cloud` that keeps it true to `config`, acting on
    /// `controls` and stopping when `shutdown` is cancelled. Defaults: the
    /// default schedule and fight settings, no audit log, its own metrics
    /// registry, status channel and timeline.
    pub fn new(
        cloud: Arc<C>,
        config: watch::Receiver<LoadedConfig>,
        controls: LoopControls,
        shutdown: CancellationToken,
    ) -> Controller<C> {
        Controller {
            cloud,
            config,
            controls,
            shutdown,
            settings: SchedulerSettings::default(),
            audit: None,
            status: watch::Sender::new(DaemonStatus::default()),
            heartbeat: Arc::default(),
            timeline: Arc::default(),
            metrics: Metrics::new(env!("CARGO_PKG_VERSION")).0,
            fights: FightDetector::default(),
            held_before: BTreeSet::new(),
            drastic: DrasticHolds::default(),
            release_all_held: false,
            sightings: Sightings::new(DEFAULT_CONSISTENCY_WINDOW),
            own_writes: OwnWrites::default(),
            clock_origin: Instant::now(),
            full_pass_pending_since: None,
            waiting: Waiting::default(),
            events: EventTriggers::default(),
            quiet_resync: None,
            event_rechecks: BTreeSet::new(),
        }
    }

    /// Change events arrive from the queue at `url` (as
    /// [`Control::Events`]); while it works, resync stretches to
    /// `quiet_resync`, and falls back to the normal one while it fails.
    pub fn with_event_queue(mut self, url: String, quiet_resync: Duration) -> Self {
        self.quiet_resync = Some(quiet_resync);
        self.status.send_modify(|status| {
            status.event_queue = Some(EventQueueStatus {
                url,
                since_unix: unix_now(),
                ..EventQueueStatus::default()
            });
        });
        self
    }

    /// How far apart reads must agree before a target is registered again
    /// or deregistered (see `ecs_reconciler_plan::sightings`).
    pub fn with_consistency_window(mut self, window: Duration) -> Self {
        self.sightings = Sightings::new(window);
        self
    }

    /// Resync, jitter, backoff and coalescing.
    pub fn with_schedule(mut self, settings: SchedulerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// When a field counts as fought over.
    pub fn with_fights(mut self, settings: FightSettings) -> Self {
        self.fights = FightDetector::new(settings);
        self
    }

    /// Every mutating call is appended to `audit`.
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Series go to `metrics` (shared with the status server).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Entries go to `timeline` (shared with the status server).
    pub fn with_timeline(mut self, timeline: Arc<Timeline>) -> Self {
        self.timeline = timeline;
        self
    }

    /// The status, published after every pass.
    pub fn status(&self) -> watch::Receiver<DaemonStatus> {
        self.status.subscribe()
    }

    /// Unix seconds of the loop's last beat (for `/healthz`): it beats
    /// every few seconds while idle and after every pass.
    pub fn heartbeat(&self) -> Arc<AtomicU64> {
        self.heartbeat.clone()
    }

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
        let resync = scheduler.settings().resync.as_secs_f64();
        self.status.send_modify(|status| {
            if let Some(queue) = &mut status.event_queue {
                queue.resync_seconds = resync;
            }
        });
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
                control = self.controls.recv() => {
                    self.on_control(control, &mut scheduler, &current);
                    continue;
                }
                changed = self.config.changed(), if config_open => {
                    if changed.is_err() {
                        config_open = false;
                        continue;
                    }
                    let before = current.desired.clone();
                    current = self.config.borrow_and_update().clone();
                    self.on_config(&before, &current, &mut scheduler);
                    continue;
                }
                _ = sleep_until_or_forever(wake) => {}
            }
            let due = scheduler.take_due(Instant::now());
            if due.is_empty() {
                continue;
            }
            self.record_queue(&due, &scheduler);
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
            let due: BTreeSet<UnitId> = due.into_keys().collect();
            scheduler.finish_pass(&results, started, Instant::now());
            self.waiting.passed(&due, &self.status.borrow());
            self.recheck_unconfirmed(&mut scheduler, started);
            for unit in std::mem::take(&mut self.event_rechecks) {
                scheduler.expedite(&unit, started + self.sightings.window(), DueReason::Recheck);
            }
            // What the pass freed goes back to the system, not to an arena.
            crate::memory::release_free_memory();
            self.metrics
                .workqueue_depth
                .get_or_create(&QueueLabel { name: QUEUE.into() })
                .set(0);
            self.status.send_modify(|status| {
                status.schedule = scheduler.schedules(Instant::now());
            });
            self.publish_budgets();
        }
        tracing::info!("reconcile loop stopped");
    }

    /// Acts on a control between passes (shutdown is the router's).
    fn on_control(&mut self, control: Control, scheduler: &mut Scheduler, current: &LoadedConfig) {
        match control {
            Control::Events(batch, ack) => self.on_events(&batch, &ack, scheduler, current),
            Control::EventQueue(health) => self.on_queue_health(health, scheduler),
            Control::Shutdown => {}
            Control::Reload => {
                tracing::info!(
                    "reload requested: re-reading the file, clearing fights, re-checking every resource now"
                );
                self.fights.clear();
                scheduler.trigger_all(Instant::now(), DueReason::Operator);
            }
            Control::ResyncAll => {
                tracing::info!("resync requested: re-checking every resource now");
                scheduler.trigger_all(Instant::now(), DueReason::Operator);
            }
            Control::ConfirmHeld(origin) => {
                let edits = self.drastic.confirm_all();
                self.release_all_held = true;
                tracing::warn!(
                    edits,
                    %origin,
                    "an operator confirmed every held removal; applying them now"
                );
                if let Some(audit) = &mut self.audit {
                    audit.record_request("confirm", &origin, &[]);
                }
                self.timeline.push(TimelineEvent::now(
                    TimelineKind::Confirmed,
                    None,
                    format!(
                        "an operator confirmed every held removal ({edits} drastic config edits), through {origin}"
                    ),
                ));
                self.status
                    .send_modify(|status| status.awaiting_confirmation.clear());
                scheduler.trigger_all(Instant::now(), DueReason::Operator);
            }
            Control::ReconcileNow(request) => self.on_reconcile_request(request, scheduler),
        }
    }

    /// Re-reads now what a batch of change events concerns, then acks
    /// (the consumer deletes the messages).
    fn on_events(
        &mut self,
        batch: &EventBatch,
        ack: &Ack,
        scheduler: &mut Scheduler,
        current: &LoadedConfig,
    ) {
        let triage = self.events.triage(&current.desired, batch);
        let now = Instant::now();
        for unit in &triage.units {
            scheduler.expedite(unit, now, DueReason::Event);
        }
        ack.send();
        let received = (batch.events.len() + batch.unusable.len()) as u64;
        self.metrics.events_received_total.inc_by(received);
        self.metrics
            .events_triggering_total
            .inc_by(triage.triggering as u64);
        for lag in &triage.lags {
            self.metrics.event_lag_seconds.observe(*lag);
        }
        for reason in &triage.ignored {
            self.metrics
                .events_ignored_total
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: reason.as_str().into(),
                })
                .inc();
        }
        tracing::debug!(
            events = received,
            triggering = triage.triggering,
            ignored = triage.ignored.len(),
            resources = ?triage.units.iter().map(UnitId::to_string).collect::<Vec<_>>(),
            "change events: re-reading what they concern now"
        );
        self.status.send_modify(|status| {
            if let Some(queue) = &mut status.event_queue {
                queue.received += received;
                queue.triggering += triage.triggering as u64;
                for reason in &triage.ignored {
                    *queue.ignored.entry(reason.as_str().into()).or_default() += 1;
                }
                queue.last_event_unix = Some(batch.received_unix);
            }
        });
    }

    /// The queue works: resync stretches; it fails: the normal resync
    /// covers drift until it works again.
    fn on_queue_health(&mut self, health: QueueHealth, scheduler: &mut Scheduler) {
        let Some(quiet) = self.quiet_resync else {
            return;
        };
        let resync = match &health {
            QueueHealth::Receiving => quiet,
            QueueHealth::Failing { .. } => self.settings.resync,
        };
        scheduler.set_resync(resync, Instant::now());
        self.metrics
            .event_queue_up
            .set(i64::from(health == QueueHealth::Receiving));
        let entry = match &health {
            QueueHealth::Receiving => {
                tracing::info!(resync = ?resync, "the events queue works: drift is seen within seconds, resync is the safety net");
                TimelineEvent::now(
                    TimelineKind::QueueReceiving,
                    None,
                    format!(
                        "the events queue works: drift is corrected as events arrive; resync every {} s as a safety net",
                        resync.as_secs()
                    ),
                )
            }
            QueueHealth::Failing { reason, .. } => {
                tracing::warn!(%reason, resync = ?resync, "the events queue fails: falling back to the normal resync");
                TimelineEvent::now(
                    TimelineKind::QueueFailing,
                    None,
                    format!(
                        "the events queue cannot be read; drift is found by the resync every {} s until it works again",
                        resync.as_secs()
                    ),
                )
                .because(reason.clone())
            }
        };
        self.timeline.push(entry);
        self.status.send_modify(|status| {
            if let Some(queue) = &mut status.event_queue {
                queue.health = Some(health);
                queue.since_unix = unix_now();
                queue.resync_seconds = resync.as_secs_f64();
            }
        });
    }

    /// Marks the requested resources due now; the reply waits for their
    /// passes.
    fn on_reconcile_request(&mut self, request: ReconcileRequest, scheduler: &mut Scheduler) {
        let now = Instant::now();
        let units: BTreeSet<UnitId> = if request.units.is_empty() {
            scheduler.trigger_all(now, DueReason::Operator);
            scheduler.units().cloned().collect()
        } else {
            // Unknown ones were refused by the API; a unit the file lost
            // since is answered as no longer declared.
            for unit in &request.units {
                scheduler.expedite(unit, now, DueReason::Operator);
            }
            request.units.iter().cloned().collect()
        };
        let listed: Vec<UnitId> = units.iter().cloned().collect();
        tracing::info!(origin = %request.origin, resources = listed.len(), "reconcile requested");
        if let Some(audit) = &mut self.audit {
            audit.record_request("reconcile", &request.origin, &request.units);
        }
        self.timeline.push(TimelineEvent::now(
            TimelineKind::Requested,
            (listed.len() == 1).then(|| listed[0].clone()),
            format!(
                "{} asked to reconcile {} now",
                request.origin,
                if request.units.is_empty() {
                    "every resource".to_string()
                } else {
                    listed
                        .iter()
                        .map(UnitId::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ));
        if let Some(reply) = request.reply {
            let declared: BTreeSet<UnitId> = scheduler.units().cloned().collect();
            let (known, gone): (BTreeSet<UnitId>, BTreeSet<UnitId>) =
                units.into_iter().partition(|u| declared.contains(u));
            if known.is_empty() {
                let gone: Vec<UnitId> = gone.into_iter().collect();
                reply.send(crate::requests::summary(&gone, &self.status.borrow()));
            } else {
                self.waiting.add(known, reply);
            }
        }
    }

    /// A new config: a new intent. Fights are forgotten, drastic cuts are
    /// held for confirmation, and the edited units are due now.
    fn on_config(
        &mut self,
        before: &Arc<ecs_reconciler_spec::DesiredState>,
        current: &LoadedConfig,
        scheduler: &mut Scheduler,
    ) {
        self.fights.clear();
        for edit in self
            .drastic
            .on_reload(before, &current.desired, current.generation)
        {
            tracing::warn!(
                resource = %edit.owner,
                edit = %edit.what,
                "drastic config edit: its removals are held until an operator confirms (SIGUSR1)"
            );
            self.timeline.push(TimelineEvent::now(
                TimelineKind::Held,
                Some(edit.owner.clone()),
                format!(
                    "the config edit cut {}; its removals wait for confirmation (SIGUSR1 or apply --allow-destructive)",
                    edit.what
                ),
            ));
        }
        let awaiting = self.drastic.awaiting();
        self.status
            .send_modify(|status| status.awaiting_confirmation = awaiting);
        let touched = scheduler.set_units(
            units_of(&current.desired),
            Instant::now(),
            DueReason::ConfigChanged,
        );
        let declared: BTreeSet<UnitId> = scheduler.units().cloned().collect();
        self.waiting.declared(&declared, &self.status.borrow());
        tracing::info!(
            generation = current.generation,
            units = ?touched.iter().map(UnitId::to_string).collect::<Vec<_>>(),
            "config changed; reconciling the changed resources now"
        );
    }

    fn record_queue(&self, due: &BTreeMap<UnitId, DueReason>, scheduler: &Scheduler) {
        let queue = QueueLabel { name: QUEUE.into() };
        self.metrics
            .workqueue_adds_total
            .get_or_create(&queue)
            .inc_by(due.len() as u64);
        self.metrics
            .workqueue_depth
            .get_or_create(&queue)
            .set(i64::try_from(due.len()).unwrap_or(i64::MAX));
        for waited in scheduler.last_waits() {
            self.metrics
                .workqueue_queue_duration_seconds
                .get_or_create(&queue)
                .observe(waited.as_secs_f64());
        }
    }

    /// Observes for a pass over `due`: `None` when a full pass gave way to
    /// a config edit while observing (nothing was written).
    async fn observe(
        &mut self,
        desired: &ecs_reconciler_spec::DesiredState,
        coverage: Coverage,
        started: Instant,
    ) -> Option<Snapshot> {
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
            tokio::select! {
                snapshot = self.cloud.observe(desired, coverage) => snapshot,
                Ok(()) = edits.changed() => {
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
        Some(snapshot)
    }

    /// One pass over the due units: returns each unit's result, or `None`
    /// when a full pass was abandoned while observing because the file
    /// changed (nothing was written; see `full_pass_pending_since`).
    async fn pass(
        &mut self,
        config: &LoadedConfig,
        reasons: &BTreeMap<UnitId, DueReason>,
    ) -> Option<BTreeMap<UnitId, UnitResult>> {
        let started = Instant::now();
        let due: &BTreeSet<UnitId> = &reasons.keys().cloned().collect();
        // Only some units due (an edit, a retry): observe what they need.
        let scoped = crate::scope::scoped(&config.desired, due);
        let coverage = if scoped.is_some() {
            Coverage::Scoped
        } else {
            Coverage::Full
        };
        let desired = scoped.as_ref().unwrap_or(&config.desired);
        // Leadership first: a copy that does not lead reads nothing else,
        // so N copies cost one copy's pass plus N election reads.
        let leadership = self.cloud.leadership().await;
        self.note_leadership(&leadership);
        if leadership != Leadership::Leader {
            return Some(self.standby(config, due, &leadership, started));
        }
        let snapshot = self.observe(desired, coverage, started).await?;
        self.events.learn(&snapshot);
        // The loop's own clock (tokio's), like the schedule's.
        let now_ms = self.clock_ms(started);
        self.sightings.observed_at(now_ms);
        let mut plan = plan_with(desired, &snapshot, &self.sightings);
        let read: BTreeSet<String> = desired
            .target_groups
            .iter()
            .map(|t| t.name.clone())
            .collect();
        self.sightings.record(&plan, &read);
        self.own_writes
            .hold_unseen(&mut plan, now_ms, self.sightings.window());

        let drastic = self.drastic.changes();
        let fighting = self.fights.fighting();
        let mut gated = gate(
            &mut plan,
            &GateInput {
                due,
                scoped: coverage == Coverage::Scoped,
                held_before: &self.held_before,
                confirmed: std::mem::take(&mut self.release_all_held),
                drastic: &drastic,
                fighting: &fighting,
                leader: leadership == Leadership::Leader,
            },
        );
        self.held_before = std::mem::take(&mut gated.held_before);
        if gated.released > 0 {
            tracing::info!(
                released = gated.released,
                "held destructive changes released (a second complete observation agrees, or an operator confirmed)"
            );
        }
        self.drastic.settle(&gated.drastic_settled);
        for owner in &gated.drastic_settled {
            tracing::info!(resource = %owner, "nothing left to remove: the drastic edit no longer waits for confirmation");
        }
        let to_apply = gated.to_apply(&plan);
        let fighting: BTreeSet<UnitId> = gated
            .held_for(&plan, HoldReason::Fight)
            .into_iter()
            .map(|c| c.owner)
            .collect();
        let outcomes = if to_apply.is_empty() {
            Vec::new()
        } else {
            self.cloud.execute(to_apply, self.shutdown.clone()).await
        };
        self.own_writes.record(
            outcomes
                .iter()
                .filter(|o| matches!(o.outcome, Outcome::Applied { .. } | Outcome::AlreadyDone))
                .map(|o| &o.change),
            self.clock_ms(Instant::now()),
        );
        self.note_fights(&outcomes);
        self.events.record_own(&outcomes);
        let who = self.events.who(due);
        for outcome in &outcomes {
            if let (Outcome::Applied { .. }, Some(by)) =
                (&outcome.outcome, who.get(&outcome.change.owner))
            {
                tracing::info!(
                    resource = %outcome.change.owner,
                    change = %outcome.change.resource,
                    changed_by = %by.actor.arn,
                    source_ip = by.actor.source_ip.as_deref().unwrap_or("-"),
                    call = %by.actor.call,
                    at = %by.actor.at,
                    "corrected a change another caller made"
                );
            }
        }
        if let Some(audit) = &mut self.audit {
            audit.record_all_caused(&outcomes, &who);
        }
        let results = unit_results(due, &plan, &outcomes);
        let previous = reported_drift(&self.status.borrow(), due);
        record_metrics(
            &self.metrics,
            &previous,
            &plan,
            &outcomes,
            &results,
            started.elapsed(),
            &leadership,
        );
        record_timeline(
            &self.timeline,
            &previous,
            due,
            &plan,
            &outcomes,
            &self.status.borrow().unknowns,
            &who,
        );
        let views = ecs_reconciler_plan::view::views(desired, &snapshot);
        let declared = match coverage {
            Coverage::Full => Vec::new(),
            Coverage::Scoped => unit_ids(&config.desired),
        };
        let fights = self.fights.fights();
        let awaiting = self.drastic.awaiting();
        self.status.send_modify(|status| {
            status.record_pass(PassReport {
                now: unix_now(),
                seconds: started.elapsed().as_secs_f64(),
                scoped: coverage == Coverage::Scoped,
                declared: &declared,
                generation: config.generation,
                plan: &plan,
                outcomes: &outcomes,
                results: &results,
                views,
                fighting: &fighting,
                reasons,
                who: &who,
            });
            status.leadership = leadership;
            status.fights = fights;
            status.awaiting_confirmation = awaiting;
        });
        self.settle_events(&results, &outcomes);
        Some(results)
    }

    /// Who-changed-what is kept while drift stays; a resource an event
    /// named but a pass found in sync is read once more a window later.
    fn settle_events(
        &mut self,
        results: &BTreeMap<UnitId, UnitResult>,
        outcomes: &[ecs_reconciler_plan::ActionOutcome],
    ) {
        let corrected: BTreeSet<UnitId> = outcomes
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Applied { .. }))
            .map(|o| o.change.owner.clone())
            .collect();
        let status = self.status.borrow();
        let in_sync: BTreeSet<UnitId> = results
            .keys()
            .filter(|u| {
                status
                    .units
                    .get(*u)
                    .is_some_and(|s| s.state == UnitState::InSync)
            })
            .cloned()
            .collect();
        drop(status);
        self.event_rechecks = self.events.settle(&in_sync, &corrected, unix_now());
        // With a queue the next resync is minutes away: a corrected
        // resource is read again one consistency window later, so its
        // state says "in sync" (or the correction did not hold) within
        // seconds rather than at that resync. Polling alone gets this from
        // its short resync.
        if self.quiet_resync.is_some() {
            self.event_rechecks.extend(corrected);
        }
    }

    /// Milliseconds of the loop's clock (tokio's, like the schedule's).
    fn clock_ms(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.clock_origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// A pass of a copy that does not lead: nothing observed, nothing
    /// planned; the status says who leads. The units stay on the resync
    /// schedule, so a takeover happens within one resync of the leader's
    /// task stopping; an election that could not be read is retried soon.
    fn standby(
        &mut self,
        config: &LoadedConfig,
        due: &BTreeSet<UnitId>,
        leadership: &Leadership,
        started: Instant,
    ) -> BTreeMap<UnitId, UnitResult> {
        // Findings of earlier passes are a leader's: a copy that leads
        // again starts its windows afresh.
        self.sightings = Sightings::new(self.sightings.window());
        self.own_writes = OwnWrites::default();
        self.held_before.clear();
        self.metrics.is_leader.set(0);
        let declared = unit_ids(&config.desired);
        self.status.send_modify(|status| {
            status.record_standby(unix_now(), started.elapsed().as_secs_f64(), &declared);
            status.config_generation = config.generation;
        });
        let result = match leadership {
            Leadership::Unknown { .. } => Err(ecs_reconciler_plan::ErrorClass::Transient),
            _ => Ok(()),
        };
        due.iter().map(|unit| (unit.clone(), result)).collect()
    }

    /// Target groups with a finding still inside its consistency window
    /// are re-read as soon as it has passed, not at the next resync: a
    /// hand-made deregistration is fixed one window later than a single
    /// read would, not one resync later.
    fn recheck_unconfirmed(&self, scheduler: &mut Scheduler, pass_started: Instant) {
        // A little past the window, so the re-read is surely outside it.
        const MARGIN: Duration = Duration::from_millis(250);
        for (target_group, wait) in self.sightings.due_in() {
            scheduler.expedite(
                &UnitId::target_group(&target_group),
                pass_started + wait + MARGIN,
                DueReason::Recheck,
            );
        }
    }

    /// Logs and timelines a change of leadership (and the first reading).
    fn note_leadership(&self, leadership: &Leadership) {
        let status = self.status.borrow();
        if *leadership == status.leadership && status.leadership_since_unix.is_some() {
            return;
        }
        drop(status);
        self.status.send_modify(|status| {
            status.leadership = leadership.clone();
            status.leadership_since_unix = Some(unix_now());
        });
        let message = match leadership {
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
            .push(TimelineEvent::now(TimelineKind::Leadership, None, message));
        match leadership {
            Leadership::Leader => tracing::info!("leading: this copy corrects drift"),
            Leadership::Follower { leader } => {
                tracing::info!(leader = ?leader, "following: observing only, another copy writes");
            }
            Leadership::Unknown { reason } => {
                tracing::warn!(%reason, "leadership unknown: observing only until it can be read");
            }
        }
    }

    /// Counts the corrections made; a field corrected too often becomes a
    /// fight, said in logs, metrics and the timeline.
    fn note_fights(&mut self, outcomes: &[ecs_reconciler_plan::ActionOutcome]) {
        for fight in self.fights.record(outcomes, Instant::now()) {
            tracing::warn!(
                field = %fight.field,
                theirs = %fight.theirs,
                ours = %fight.ours,
                corrections = fight.corrections,
                "another writer keeps changing this field; leaving it alone until the config changes or a reload"
            );
            self.metrics
                .fight_detected_total
                .get_or_create(&KindLabel {
                    kind: fight.kind.as_str().into(),
                })
                .inc();
            self.timeline.push(TimelineEvent::now(
                TimelineKind::Fight,
                Some(fight.unit.clone()),
                format!(
                    "{}: another writer keeps setting {} (the file says {}); left alone",
                    fight.field, fight.theirs, fight.ours
                ),
            ));
        }
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
}

async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
