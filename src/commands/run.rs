//! `run`: the daemon. Loads the config (exit 78 if the first load fails),
//! keeps it live, runs the reconcile loop until SIGTERM/SIGINT, then lets
//! the pass in flight finish within `--shutdown-timeout`. A second signal
//! exits at once.

use std::sync::Arc;

use ecs_reconciler_aws::{AwsClients, CallObserver, CallRecord};
use ecs_reconciler_plan::{ActionOutcome, Change, Snapshot};
use ecs_reconciler_runtime::audit::AuditLog;
use ecs_reconciler_runtime::controller::{Cloud, Controller, Coverage, DaemonStatus, Leadership};
use ecs_reconciler_runtime::fights::{FightDetector, FightSettings};
use ecs_reconciler_runtime::metadata::{self, TaskIdentity};
use ecs_reconciler_runtime::metrics::{BudgetHeadroom, Metrics};
use ecs_reconciler_runtime::reload::ConfigStatus;
use ecs_reconciler_runtime::reload::{self, ReloadSettings};
use ecs_reconciler_runtime::scheduler::SchedulerSettings;
use ecs_reconciler_runtime::timeline::{Timeline, TimelineEvent};
use ecs_reconciler_server::ServerState;
use ecs_reconciler_spec::DesiredState;
use std::sync::atomic::AtomicU64;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::exit;

/// The AWS SDK behind the loop's `Cloud` trait.
struct AwsCloud {
    clients: AwsClients,
    /// `ECS_CONTAINER_METADATA_URI_V4` when running in an ECS task: copies
    /// then elect a leader; outside ECS a single copy leads.
    metadata_uri: Option<String>,
    identity: tokio::sync::Mutex<Option<TaskIdentity>>,
}

impl Cloud for AwsCloud {
    async fn observe(&self, desired: &DesiredState, coverage: Coverage) -> Snapshot {
        match coverage {
            Coverage::Full => ecs_reconciler_aws::observe(&self.clients, desired).await,
            Coverage::Scoped => {
                ecs_reconciler_aws::observe::observe_part(&self.clients, desired).await
            }
        }
    }

    async fn execute(&self, changes: Vec<Change>, stop: CancellationToken) -> Vec<ActionOutcome> {
        ecs_reconciler_aws::apply::execute_until(&self.clients, &changes, &|| stop.is_cancelled())
            .await
    }

    fn budgets(&self) -> Vec<BudgetHeadroom> {
        self.clients
            .budget
            .states()
            .into_iter()
            .map(|b| BudgetHeadroom {
                class: b.class.to_string(),
                burst: b.burst,
                per_second: b.per_second,
                tokens: b.tokens,
                calls: b.calls,
                waited_seconds: b.waited.as_secs_f64(),
            })
            .collect()
    }

    async fn leadership(&self) -> Leadership {
        let Some(uri) = &self.metadata_uri else {
            return Leadership::Leader;
        };
        let mut identity = self.identity.lock().await;
        if identity.is_none() {
            match metadata::own_task(uri).await {
                Ok(found) => *identity = Some(found),
                Err(err) => {
                    return Leadership::Unknown {
                        reason: err.to_string(),
                    };
                }
            }
        }
        let Some(own) = identity.as_ref() else {
            return Leadership::Unknown {
                reason: "no task identity".into(),
            };
        };
        match ecs_reconciler_aws::leader::elect(&self.clients, &own.cluster, &own.task_arn).await {
            Ok(election) if election.is_leader(&own.task_arn) => Leadership::Leader,
            Ok(election) => Leadership::Follower {
                leader: election.leader,
            },
            Err(err) => Leadership::Unknown {
                reason: err.to_string(),
            },
        }
    }
}

pub async fn run(args: &RunArgs) -> u8 {
    let initial = match reload::load_initial(&args.config.config) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("{message}");
            return exit::CONFIG;
        }
    };
    let (metrics, registry) = Metrics::new(env!("CARGO_PKG_VERSION"));
    let clients = AwsClients::from_env_observed(
        &super::client_settings(&args.aws),
        Some(Arc::new(MetricsObserver(metrics.clone()))),
    )
    .await;
    if let Err(code) = super::require_region(&clients) {
        return code;
    }
    let audit = match &args.audit_log {
        Some(path) => match AuditLog::open(path) {
            Ok(log) => Some(log),
            Err(err) => {
                eprintln!(
                    "error: cannot open the audit log {}: {err}\n  hint: pass a writable path with --audit-log, or - for stdout",
                    path.display()
                );
                return exit::ERROR;
            }
        },
        None => None,
    };

    let shutdown = CancellationToken::new();
    let reload_settings = ReloadSettings {
        mode: args.watch,
        ..ReloadSettings::default()
    };
    // TEMPORARY: moves to the control channel. SIGHUP re-reads the config
    // file now; the handler is in place before the watcher starts.
    let reload_now = Arc::new(tokio::sync::Notify::new());
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangup) => {
            let reload_now = reload_now.clone();
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    reload_now.notify_one();
                }
            });
        }
        Err(err) => tracing::warn!(
            path = %args.config.config.display(),
            error = %err,
            "cannot handle SIGHUP: reload on SIGHUP is off"
        ),
    }
    let (config_rx, config_status) = reload::spawn_watcher(
        args.config.config.clone(),
        initial,
        reload_settings,
        reload_now,
        shutdown.clone(),
    );
    let (status_tx, status_rx) = watch::channel(DaemonStatus::default());
    let heartbeat = Arc::new(AtomicU64::new(0));
    let timeline = Arc::new(Timeline::default());
    tokio::spawn(follow_config(
        config_status.clone(),
        metrics.clone(),
        timeline.clone(),
    ));
    let server = ecs_reconciler_server::serve(
        args.listen.listen,
        ServerState {
            status: status_rx,
            config: config_status,
            heartbeat: heartbeat.clone(),
            version: env!("CARGO_PKG_VERSION"),
            metrics: metrics.clone(),
            registry: Arc::new(registry),
            timeline: timeline.clone(),
        },
        shutdown.clone(),
    )
    .await;
    let server = match server {
        Ok(handle) => handle,
        Err(err) => {
            eprintln!(
                "error: {err}\n  hint: pick a free address with --listen (or ECS_RECONCILER_LISTEN)"
            );
            return exit::ERROR;
        }
    };
    // SIGUSR1: an operator confirms every held removal.
    let confirm = Arc::new(tokio::sync::Notify::new());
    if let Ok(mut usr1) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
    {
        let confirm = confirm.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                confirm.notify_one();
            }
        });
    }
    let controller = Controller {
        cloud: Arc::new(AwsCloud {
            clients,
            metadata_uri: std::env::var(metadata::METADATA_ENV)
                .ok()
                .filter(|uri| !uri.is_empty()),
            identity: tokio::sync::Mutex::new(None),
        }),
        config: config_rx,
        settings: SchedulerSettings {
            resync: args.resync,
            ..SchedulerSettings::default()
        },
        shutdown: shutdown.clone(),
        audit,
        status: status_tx,
        heartbeat,
        timeline,
        metrics,
        fights: FightDetector::new(FightSettings {
            threshold: args.fight_threshold as usize,
            window: args.fight_window,
        }),
        held_before: Default::default(),
        drastic: Default::default(),
        confirm: confirm.clone(),
        release_all_held: false,
        full_pass_pending_since: None,
    };
    tracing::info!(
        config = %args.config.config.display(),
        resync = ?args.resync,
        "ecs-reconciler running"
    );
    let mut loop_task = tokio::spawn(controller.run());

    tokio::select! {
        result = &mut loop_task => {
            // The loop only stops on shutdown; ending early is a bug worth
            // exiting non-zero for, so a supervisor restarts us.
            tracing::error!(?result, "reconcile loop ended unexpectedly");
            return exit::ERROR;
        }
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down: no new work, letting calls in flight finish");
        }
    }
    shutdown.cancel();
    tokio::select! {
        _ = tokio::time::timeout(args.shutdown_timeout, async {
            let _ = (&mut loop_task).await;
            let _ = server.await;
        }) => {
            tracing::info!("stopped");
            exit::OK
        }
        signal = shutdown_signal() => {
            tracing::warn!(signal, "second signal: exiting now");
            exit::SIGNALLED
        }
    }
}

/// AWS call records into the metrics registry.
struct MetricsObserver(Arc<Metrics>);

impl CallObserver for MetricsObserver {
    fn call(&self, record: &CallRecord) {
        self.0.api_call(
            record.service,
            &record.operation,
            record.ok,
            record.error_code.as_deref(),
            record.duration.as_secs_f64(),
        );
    }

    fn throttled_attempt(&self, service: &'static str, operation: &str) {
        self.0.api_throttled(service, operation);
    }
}

/// Mirrors the config file's status into metrics and the timeline.
async fn follow_config(
    mut status: watch::Receiver<ConfigStatus>,
    metrics: Arc<Metrics>,
    timeline: Arc<Timeline>,
) {
    let mut last = status.borrow_and_update().clone();
    metrics.config_last_reload_successful.set(1);
    metrics
        .config_last_reload_success_timestamp
        .set(last.loaded_at_unix);
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        metrics
            .config_last_reload_successful
            .set(i64::from(now.last_reload_ok));
        metrics
            .config_last_reload_success_timestamp
            .set(now.loaded_at_unix);
        if now.generation != last.generation {
            timeline.push(TimelineEvent::now(
                "config",
                None,
                format!(
                    "config generation {} loaded from {}",
                    now.generation, now.path
                ),
            ));
        }
        if now.error != last.error {
            let message = match &now.error {
                Some(error) => format!("invalid config kept out (the last good one runs): {error}"),
                None => "config error cleared".to_string(),
            };
            timeline.push(TimelineEvent::now("config", None, message));
        }
        last = now;
    }
}

/// Resolves on SIGTERM or SIGINT, with the signal's name.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// `healthcheck`: asks a running daemon's `/healthz`; for an ECS container
/// health check in an image with no shell.
pub async fn healthcheck(listen: std::net::SocketAddr) -> u8 {
    let url = format!("http://{listen}/healthz");
    match ecs_reconciler_runtime::http::get(&url).await {
        Ok((200, _)) => exit::OK,
        Ok((code, body)) => {
            eprintln!(
                "unhealthy: {url} answered {code}: {}",
                String::from_utf8_lossy(&body)
            );
            exit::ERROR
        }
        Err(err) => {
            eprintln!("unhealthy: {err}");
            exit::ERROR
        }
    }
}
