//! `run`: the daemon. Loads the config (exit 78 if the first load fails),
//! keeps it live, runs the reconcile loop until a shutdown control
//! (SIGTERM/SIGINT, see `signals`), then lets the pass in flight finish
//! within `--shutdown-timeout`. A second one exits at once.

use std::sync::Arc;

use ecs_reconciler_aws::events::{EventQueue, EventSink, QueueHealth, Received};
use ecs_reconciler_aws::{Aws, CallObserver, CallRecord};
use ecs_reconciler_plan::{ActionOutcome, Change, Snapshot};
use ecs_reconciler_runtime::audit::AuditLog;
use ecs_reconciler_runtime::cloud::{Cloud, Leadership};
use ecs_reconciler_runtime::control::{self, Routes};
use ecs_reconciler_runtime::controller::Controller;
use ecs_reconciler_runtime::events::EventBatch;
use ecs_reconciler_runtime::fights::FightSettings;
use ecs_reconciler_runtime::metadata::{self, TaskIdentity};
use ecs_reconciler_runtime::metrics::{BudgetHeadroom, Metrics};
use ecs_reconciler_runtime::reload::ConfigStatus;
use ecs_reconciler_runtime::reload::{self, ReloadSettings};
use ecs_reconciler_runtime::scheduler::SchedulerSettings;
use ecs_reconciler_runtime::scope::Coverage;
use ecs_reconciler_runtime::timeline::{Timeline, TimelineEvent, TimelineKind};
use ecs_reconciler_server::ServerState;
use ecs_reconciler_spec::DesiredState;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::exit;

/// The AWS SDK behind the loop's `Cloud` trait.
struct AwsCloud {
    clients: Aws,
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
    let (metrics, mut registry) = Metrics::new(env!("CARGO_PKG_VERSION"));
    let observer: Arc<dyn CallObserver> = Arc::new(MetricsObserver(metrics.clone()));
    let settings = super::client_settings(&args.aws);
    let clients = Aws::from_env_observed(&settings, Some(observer.clone())).await;
    let event_queue = match &args.events_queue {
        Some(url) => {
            metrics.register_event_queue(&mut registry);
            Some(EventQueue::from_env(url.clone(), &settings, Some(observer)).await)
        }
        None => None,
    };
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

    let control_token = match &args.control_token_file {
        Some(path) => match super::control::read_token(path) {
            Ok(token) => Some(token),
            Err(message) => {
                eprintln!("{message}");
                return exit::CONFIG;
            }
        },
        None => None,
    };

    // Every signal becomes a control on one channel (see `signals`);
    // shutdown is acted on at once, the rest reach the loop.
    let (controls, control_rx) = control::channel();
    crate::signals::forward(&controls);
    let shutdown = CancellationToken::new();
    let abort = CancellationToken::new();
    let reload_file = Arc::new(tokio::sync::Notify::new());
    let loop_controls = control_rx.route(Routes {
        shutdown: shutdown.clone(),
        abort: abort.clone(),
        reload_file: reload_file.clone(),
    });
    let reload_settings = ReloadSettings {
        mode: args.watch,
        ..ReloadSettings::default()
    };
    let (config_rx, config_status) = reload::spawn_watcher(
        args.config.config.clone(),
        initial,
        reload_settings,
        reload_file,
        shutdown.clone(),
    );
    let timeline = Arc::new(Timeline::default());
    let cloud = Arc::new(AwsCloud {
        clients,
        metadata_uri: std::env::var(metadata::METADATA_ENV)
            .ok()
            .filter(|uri| !uri.is_empty()),
        identity: tokio::sync::Mutex::new(None),
    });
    let notifier_config = config_rx.clone();
    let mut controller = Controller::new(cloud, config_rx, loop_controls, shutdown.clone())
        .with_schedule(SchedulerSettings {
            resync: args.resync,
            ..SchedulerSettings::default()
        })
        .with_fights(FightSettings {
            threshold: args.fight_threshold as usize,
            window: args.fight_window,
        })
        .with_consistency_window(args.aws.consistency_window)
        .with_metrics(metrics.clone())
        .with_timeline(timeline.clone());
    if let Some(audit) = audit {
        controller = controller.with_audit(audit);
    }
    if let Some(queue) = event_queue {
        controller = controller.with_event_queue(queue.url().to_string(), args.events_resync);
        let sink = LoopSink {
            controls: controls.clone(),
            status: controller.status(),
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = queue.consume(sink) => {}
                () = stop.cancelled() => {}
            }
        });
    }
    tokio::spawn(follow_config(
        config_status.clone(),
        metrics.clone(),
        timeline.clone(),
    ));
    // Webhooks follow the timeline and the status: delivery never waits
    // in the loop.
    let notifier = ecs_reconciler_runtime::notify::spawn(
        notifier_config,
        timeline.clone(),
        controller.status(),
        metrics.clone(),
        args.public_url.clone(),
        shutdown.clone(),
    );
    let server = ecs_reconciler_server::serve(
        args.listen.listen,
        ServerState {
            status: controller.status(),
            config: config_status,
            heartbeat: controller.heartbeat(),
            version: env!("CARGO_PKG_VERSION"),
            metrics,
            registry: Arc::new(registry),
            timeline,
            control: control_token.map(|token| {
                ecs_reconciler_server::control_api::ControlApi::new(&token, controls.clone())
            }),
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
    tracing::info!(
        config = %args.config.config.display(),
        resync = ?args.resync,
        events_queue = args.events_queue.as_deref().unwrap_or("-"),
        "ecs-reconciler running"
    );
    let mut loop_task = tokio::spawn(controller.run());

    let loop_ended = tokio::select! {
        result = &mut loop_task => {
            // The loop only stops on shutdown; ending early is a bug worth
            // exiting non-zero for, so a supervisor restarts us.
            if !shutdown.is_cancelled() {
                tracing::error!(?result, "reconcile loop ended unexpectedly");
                return exit::ERROR;
            }
            true
        }
        () = shutdown.cancelled() => {
            tracing::info!("shutting down: no new work, letting calls in flight finish");
            false
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(args.shutdown_timeout, async {
            if !loop_ended {
                let _ = (&mut loop_task).await;
            }
            let _ = server.await;
            // The webhooks' last messages ("stopped leading").
            let _ = notifier.await;
        }) => {
            tracing::info!("stopped");
            exit::OK
        }
        () = abort.cancelled() => {
            tracing::warn!("second shutdown signal: exiting now");
            exit::SIGNALLED
        }
    }
}

/// AWS call records into the metrics registry.
/// The events queue's consumer delivers into the control channel.
struct LoopSink {
    controls: control::ControlSender,
    /// Only a leading copy takes messages: SQS hands each one to a single
    /// receiver, and a follower's pass reads nothing.
    status: watch::Receiver<ecs_reconciler_runtime::status::DaemonStatus>,
}

impl EventSink for LoopSink {
    async fn ready(&self) {
        let mut status = self.status.clone();
        // Leading, as read by a pass (the status starts as "leader" before
        // the first election is read).
        let _ = status
            .wait_for(|s| s.leadership_since_unix.is_some() && s.leadership == Leadership::Leader)
            .await;
    }

    async fn deliver(&self, batch: Received) -> bool {
        let (ack, scheduled) = control::Ack::new();
        let batch = EventBatch {
            events: batch.events,
            unusable: batch.unusable,
            received_unix: batch.received_unix,
        };
        if !self.controls.send(control::Control::Events(batch, ack)) {
            return false;
        }
        scheduled.await.is_ok()
    }

    fn health(&self, health: QueueHealth) {
        self.controls.send(control::Control::EventQueue(health));
    }
}

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
                TimelineKind::Config,
                None,
                format!(
                    "config generation {} loaded from {}",
                    now.generation, now.path
                ),
            ));
        }
        if now.error != last.error {
            let (kind, message) = match &now.error {
                Some(error) => (
                    TimelineKind::ConfigRejected,
                    format!("invalid config kept out (the last good one runs): {error}"),
                ),
                None => (TimelineKind::Config, "config error cleared".to_string()),
            };
            timeline.push(TimelineEvent::now(kind, None, message));
        }
        last = now;
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
