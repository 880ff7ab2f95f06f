//! The daemon's HTTP side, read-only: no endpoint changes AWS or the
//! config. `/healthz` is the loop's heartbeat (never AWS reachability, so a
//! throttled account does not get the container killed), `/readyz` says the
//! config is loaded and a complete observation has been made, and
//! `/api/v1/status` is the whole status as JSON.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use ecs_reconciler_runtime::controller::DaemonStatus;
use ecs_reconciler_runtime::reload::ConfigStatus;
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
    pub status: watch::Receiver<DaemonStatus>,
    pub config: watch::Receiver<ConfigStatus>,
    /// Unix seconds of the loop's last beat.
    pub heartbeat: Arc<AtomicU64>,
    pub version: &'static str,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// The routes.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/status", get(status))
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
    let app = router(state);
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
    let observed = state
        .status
        .borrow()
        .last_complete_observation_unix
        .is_some();
    let code = if observed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({"ready": observed, "config_loaded": true, "complete_observation": observed})),
    )
}

async fn status(State(state): State<ServerState>) -> impl IntoResponse {
    let daemon = state.status.borrow().clone();
    let config = state.config.borrow().clone();
    Json(json!({
        "version": state.version,
        "config": config,
        "leadership": daemon.leadership,
        "addresses": daemon.addresses,
        "daemon": daemon,
    }))
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
        ServerState {
            status: status_rx,
            config: config_rx,
            heartbeat: Arc::new(AtomicU64::new(heartbeat)),
            version: "test",
        }
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
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(axum::serve(listener, app(s)).into_future());
            let (code, body) = ecs_reconciler_runtime::http::get(&format!("http://{addr}{path}"))
                .await
                .unwrap();
            server.abort();
            assert_eq!(code, want.as_u16(), "{path}");
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if path == "/api/v1/status" {
                assert_eq!(body["config"]["error"], "seed.yaml:3:9: error: bad");
            }
        }
    }
}
