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
use std::time::{SystemTime, UNIX_EPOCH};

use ecs_reconciler_plan::{ActionOutcome, Change, Disposition, Outcome, Plan, Snapshot};
use ecs_reconciler_spec::DesiredState;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::audit::AuditLog;
use crate::reload::LoadedConfig;
use crate::scheduler::{DueReason, Scheduler, SchedulerSettings, UnitSchedule};

/// The cloud as the loop sees it: read everything the config names, and
/// execute changes. The binary implements it over the AWS SDK; tests fake
/// it.
pub trait Cloud: Send + Sync + 'static {
    fn observe(&self, desired: &DesiredState) -> impl Future<Output = Snapshot> + Send;
    /// Executes in order; starts no new call once `stop` is cancelled.
    fn execute(
        &self,
        changes: Vec<Change>,
        stop: CancellationToken,
    ) -> impl Future<Output = Vec<ActionOutcome>> + Send;

    /// Whether this copy may write. A single copy always leads.
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

/// One unit's last known state, for the status API and the dashboard.
#[derive(Debug, Clone, Serialize, Default)]
pub struct UnitStatus {
    pub unit: String,
    /// `in-sync`, `drifted` (observe/report drift left), `correcting`
    /// (changes applied this pass), `error`.
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
    /// When the last observation with no unknown part finished.
    pub last_complete_observation_unix: Option<f64>,
    pub units: BTreeMap<String, UnitStatus>,
    pub schedule: Vec<UnitSchedule>,
    /// What could not be read in the last pass.
    pub unknowns: Vec<ecs_reconciler_plan::Unknown>,
    pub addresses: Vec<ecs_reconciler_plan::Address>,
    pub config_generation: u64,
    pub leadership: Leadership,
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
}

/// How often the idle loop beats.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.heartbeat.store(unix_now() as u64, Ordering::Relaxed);
            let wake = scheduler.next_due();
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => break,
                _ = beat.tick() => continue,
                changed = self.config.changed(), if config_open => {
                    if changed.is_err() {
                        config_open = false;
                        continue;
                    }
                    current = self.config.borrow_and_update().clone();
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
            let reasons: BTreeSet<DueReason> = due.values().copied().collect();
            let span = tracing::info_span!("pass", units = due.len(), reasons = ?reasons);
            let results = self.pass(&current, &due).instrument(span).await;
            scheduler.finish(&results, Instant::now());
            self.status.send_modify(|status| {
                status.schedule = scheduler.schedules(Instant::now());
            });
        }
        tracing::info!("reconcile loop stopped");
    }

    /// One pass over the due units: returns each unit's success.
    async fn pass(
        &mut self,
        config: &LoadedConfig,
        due: &BTreeMap<String, DueReason>,
    ) -> BTreeMap<String, bool> {
        let started = Instant::now();
        let snapshot = self.cloud.observe(&config.desired).await;
        let plan = ecs_reconciler_plan::plan(&config.desired, &snapshot);
        let to_apply: Vec<Change> = plan
            .changes
            .iter()
            .filter(|c| c.disposition == Disposition::Apply && due.contains_key(&c.owner))
            .cloned()
            .collect();
        let leadership = self.cloud.leadership().await;
        let was = self.status.borrow().leadership.clone();
        if leadership != was || self.status.borrow().passes == 0 {
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
        let outcomes = if to_apply.is_empty() || leadership != Leadership::Leader {
            Vec::new()
        } else {
            self.cloud.execute(to_apply, self.shutdown.clone()).await
        };
        if let Some(audit) = &mut self.audit {
            audit.record_all(&outcomes);
        }
        let results = unit_results(due, &plan, &outcomes);
        self.publish(config, due, &plan, &outcomes, &results, started);
        self.status
            .send_modify(|status| status.leadership = leadership);
        results
    }

    fn publish(
        &self,
        config: &LoadedConfig,
        due: &BTreeMap<String, DueReason>,
        plan: &Plan,
        outcomes: &[ActionOutcome],
        results: &BTreeMap<String, bool>,
        started: Instant,
    ) {
        let now = unix_now();
        let known_units: BTreeSet<String> = units_of(&config.desired)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        self.status.send_modify(|status| {
            status.passes += 1;
            status.last_pass_unix = Some(now);
            status.last_pass_seconds = Some(started.elapsed().as_secs_f64());
            if plan.unknowns.is_empty() {
                status.last_complete_observation_unix = Some(now);
            }
            status.unknowns = plan.unknowns.clone();
            status.addresses = plan.addresses.clone();
            status.config_generation = config.generation;
            status.units.retain(|unit, _| known_units.contains(unit));
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
                entry.state = if !ok {
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

async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
