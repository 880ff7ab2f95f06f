//! The daemon's HTTP side. Read-only unless the control API is on
//! ([`control_api`]: reconcile now, confirm held removals, behind a bearer
//! token); no endpoint changes the config. `/healthz` is the loop's heartbeat (never AWS reachability, so a
//! throttled account does not get the container killed), `/readyz` says the
//! config is loaded and a complete observation has been made (or, on a copy
//! that follows, that it read the election: followers observe nothing), and
//! `/api/v1/status` is the whole status as JSON, `/api/v1/events` streams
//! it (server-sent events) with the timeline, `/metrics` is Prometheus text,
//! and `/` is the dashboard.

pub mod control_api;
mod dashboard;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use ecs_reconciler_runtime::cloud::Leadership;
use ecs_reconciler_runtime::metrics::Metrics;
use ecs_reconciler_runtime::reload::ConfigStatus;
use ecs_reconciler_runtime::status::DaemonStatus;
use ecs_reconciler_runtime::timeline::{Timeline, TimelineEvent};
use futures_util::Stream;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How old the loop's heartbeat may be before `/healthz` fails. The loop
/// beats every few seconds while idle and after every pass; a pass bounded
/// by per-call timeouts finishes well within this.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(120);

/// What the endpoints read.
#[derive(Clone)]
pub struct ServerState {
    /// The daemon's status, republished after every pass; `/readyz` checks
    /// its last complete observation.
    pub status: watch::Receiver<DaemonStatus>,
    /// The config file's load and reload state.
    pub config: watch::Receiver<ConfigStatus>,
    /// Unix seconds of the loop's last beat.
    pub heartbeat: Arc<AtomicU64>,
    /// The build's version, shown in the status document.
    pub version: &'static str,
    /// Source of the per-service AWS call totals in the status document.
    pub metrics: Arc<Metrics>,
    /// The Prometheus registry `/metrics` encodes.
    pub registry: Arc<Registry>,
    /// Recent events, replayed to and streamed on `/api/v1/events`.
    pub timeline: Arc<Timeline>,
    /// The control API, when a token was given; `None`: its endpoints
    /// answer 403.
    pub control: Option<control_api::ControlApi>,
}

/// The status server could not bind its address (at start-up, by [`serve`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address it tried.
    pub addr: SocketAddr,
    /// Why the bind failed (address in use, permission denied, ...).
    pub source: std::io::Error,
}

/// The routes.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/metrics", get(metrics))
        .route("/api/v1/reconcile", post(control_api::reconcile))
        .route("/api/v1/confirm", post(control_api::confirm))
        .merge(dashboard::routes())
        .with_state(state)
}

/// Binds first (so a taken port is an error at start-up, not later), then
/// serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    state: ServerState,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, BindError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(listen = %local, "status server listening");
    // The peer's address goes into the audit line of a control request.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "status server stopped");
        }
    }))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

async fn healthz(State(state): State<ServerState>) -> impl IntoResponse {
    let age = unix_now().saturating_sub(state.heartbeat.load(Ordering::Relaxed));
    let alive = age <= HEARTBEAT_STALE.as_secs();
    let code = if alive {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"alive": alive, "heartbeat_age_seconds": age})),
    )
}

async fn readyz(State(state): State<ServerState>) -> impl IntoResponse {
    let (observed, following) = {
        let status = state.status.borrow();
        (
            status.last_complete_observation_unix.is_some(),
            matches!(status.leadership, Leadership::Follower { .. }),
        )
    };
    let code = if observed || following {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(
            json!({"ready": observed || following, "config_loaded": true,
                    "complete_observation": observed, "following": following}),
        ),
    )
}

/// The whole status document (also the payload of `status` events).
#[derive(serde::Serialize)]
struct StatusDocument<'a, Addresses: serde::Serialize> {
    version: &'a str,
    config: &'a ConfigStatus,
    leadership: &'a ecs_reconciler_runtime::cloud::Leadership,
    addresses: &'a Addresses,
    api: std::collections::BTreeMap<String, ecs_reconciler_runtime::metrics::ApiTotals>,
    /// Webhook → result (sent, failed, dropped, unresolved) → messages.
    notifications: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
    daemon: &'a DaemonStatus,
}

/// Serialised straight from the live status, never copied first: at a
/// thousand services a copy (and a `Value` tree of it) costs tens of
/// megabytes per request.
fn status_json(state: &ServerState) -> String {
    let api = state.metrics.api_totals();
    let daemon = state.status.borrow();
    let config = state.config.borrow();
    serde_json::to_string(&StatusDocument {
        version: state.version,
        config: &config,
        leadership: &daemon.leadership,
        addresses: &daemon.addresses,
        api,
        notifications: state.metrics.notification_totals(),
        daemon: &daemon,
    })
    .expect("the status serializes")
}

async fn status(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        status_json(&state),
    )
}

async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        Metrics::encode(&state.registry),
    )
}

/// Timeline entries replayed to a new subscriber.
const REPLAY: usize = 50;
/// Status changes closer together than this are sent as one event.
const STATUS_COALESCE: Duration = Duration::from_millis(250);

struct EventStream {
    server: ServerState,
    status: watch::Receiver<DaemonStatus>,
    config: watch::Receiver<ConfigStatus>,
    timeline: tokio::sync::broadcast::Receiver<TimelineEvent>,
    pending: VecDeque<Event>,
}

fn status_event(state: &ServerState) -> Event {
    Event::default().event("status").data(status_json(state))
}

fn timeline_event(entry: &TimelineEvent) -> Event {
    Event::default()
        .event("timeline")
        .data(serde_json::to_string(entry).unwrap_or_default())
}

/// Server-sent events: the status on connect and on every change
/// (coalesced), the recent timeline on connect, then each new entry.
async fn events(
    State(state): State<ServerState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (recent, timeline) = state.timeline.subscribe(REPLAY);
    let mut status = state.status.clone();
    let mut config = state.config.clone();
    status.borrow_and_update();
    config.borrow_and_update();
    let mut pending = VecDeque::new();
    pending.push_back(status_event(&state));
    pending.extend(recent.iter().map(timeline_event));
    let stream = EventStream {
        server: state,
        status,
        config,
        timeline,
        pending,
    };
    let stream = futures_util::stream::unfold(stream, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok(event), s));
            }
            tokio::select! {
                changed = s.status.changed() => {
                    changed.ok()?;
                    tokio::time::sleep(STATUS_COALESCE).await;
                    s.status.borrow_and_update();
                    s.pending.push_back(status_event(&s.server));
                }
                changed = s.config.changed() => {
                    changed.ok()?;
                    s.config.borrow_and_update();
                    s.pending.push_back(status_event(&s.server));
                }
                entry = s.timeline.recv() => match entry {
                    Ok(entry) => s.pending.push_back(timeline_event(&entry)),
                    // A slow reader missed entries: the next status event
                    // still carries the truth.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(heartbeat: u64, observed: bool) -> ServerState {
        let status = DaemonStatus {
            last_complete_observation_unix: observed.then_some(1.0),
            ..Default::default()
        };
        let (_status_tx, status_rx) = watch::channel(status);
        let (_config_tx, config_rx) = watch::channel(ConfigStatus {
            path: "seed.yaml".into(),
            hash: "abc".into(),
            loaded_at_unix: 1.0,
            last_reload_ok: false,
            last_attempt_at_unix: 2.0,
            error: Some("seed.yaml:3:9: error: bad".into()),
            generation: 1,
        });
        let (metrics, registry) = Metrics::new("test");
        ServerState {
            status: status_rx,
            config: config_rx,
            heartbeat: Arc::new(AtomicU64::new(heartbeat)),
            version: "test",
            metrics,
            registry: Arc::new(registry),
            timeline: Arc::default(),
            control: None,
        }
    }

    #[tokio::test]
    async fn a_follower_is_ready_once_it_read_the_election() {
        let follower = state(unix_now(), false);
        let (tx, rx) = watch::channel(DaemonStatus {
            leadership: Leadership::Follower {
                leader: Some("arn:aws:ecs:us-east-1:1:task/c/t".into()),
            },
            ..Default::default()
        });
        let follower = ServerState {
            status: rx,
            ..follower
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(axum::serve(listener, router(follower)).into_future());
        let (code, _) = ecs_reconciler_runtime::http::get(&format!("http://{addr}/readyz"))
            .await
            .unwrap();
        server.abort();
        drop(tx);
        assert_eq!(code, 200);
    }

    #[tokio::test]
    async fn health_follows_the_heartbeat_and_readiness_the_first_observation() {
        let app = router;
        let fresh = state(unix_now(), false);
        let stale = state(unix_now() - 1000, true);
        for (s, path, want) in [
            (fresh.clone(), "/healthz", StatusCode::OK),
            (stale.clone(), "/healthz", StatusCode::SERVICE_UNAVAILABLE),
            (fresh.clone(), "/readyz", StatusCode::SERVICE_UNAVAILABLE),
            (stale.clone(), "/readyz", StatusCode::OK),
            (fresh.clone(), "/api/v1/status", StatusCode::OK),
            (fresh.clone(), "/metrics", StatusCode::OK),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(axum::serve(listener, app(s)).into_future());
            let (code, body) = ecs_reconciler_runtime::http::get(&format!("http://{addr}{path}"))
                .await
                .unwrap();
            server.abort();
            assert_eq!(code, want.as_u16(), "{path}");
            if path == "/metrics" {
                let text = String::from_utf8(body).unwrap();
                assert!(
                    text.contains("ecs_reconciler_build_info{version=\"test\"} 1"),
                    "{text}"
                );
                continue;
            }
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if path == "/api/v1/status" {
                assert_eq!(body["config"]["error"], "seed.yaml:3:9: error: bad");
            }
        }
    }
}
