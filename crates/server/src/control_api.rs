//! The control API: `POST /api/v1/reconcile` (a scoped pass at once,
//! optionally waiting for its result) and `POST /api/v1/confirm` (held
//! removals go in the next pass, like SIGUSR1), for operators without a
//! shell in the task. On only with a token (`run --control-token-file`);
//! every request must carry `Authorization: Bearer <token>`, compared in
//! constant time. Each request becomes a [`Control`] on the daemon's one
//! control channel; the loop logs, audits and timelines it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecs_reconciler_plan::UnitId;
use ecs_reconciler_runtime::cloud::Leadership;
use ecs_reconciler_runtime::control::{
    Control, ControlSender, Origin, PassReply, ReconcileRequest,
};
use ecs_reconciler_runtime::metrics::ControlRequestLabels;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::ServerState;

/// How long `?wait=true` waits for the pass before answering 504 (the pass
/// goes on).
pub const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// Bodies larger than this are refused (a list of resource ids).
const MAX_BODY: usize = 1024 * 1024;

/// What the control endpoints need; absent, they answer 403.
#[derive(Clone)]
pub struct ControlApi {
    /// SHA-256 of the token: compared in constant time, never kept in clear.
    token_digest: [u8; 32],
    /// The daemon's control channel.
    pub controls: ControlSender,
}

impl ControlApi {
    /// An API accepting `token` (already trimmed and checked for length).
    pub fn new(token: &str, controls: ControlSender) -> ControlApi {
        ControlApi {
            token_digest: Sha256::digest(token.as_bytes()).into(),
            controls,
        }
    }

    /// Whether the request's bearer token is the token: both sides are
    /// hashed first, so the comparison takes the same time whatever the
    /// presented token's length or first wrong byte.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        let diff = digest
            .iter()
            .zip(self.token_digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0 && !presented.is_empty()
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct WaitQuery {
    #[serde(default)]
    wait: bool,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReconcileBody {
    /// `KIND/NAME` ids; empty or absent: every declared resource.
    #[serde(default)]
    resources: Vec<String>,
}

fn count(state: &ServerState, endpoint: &str, result: &str) {
    state
        .metrics
        .control_requests_total
        .get_or_create(&ControlRequestLabels {
            endpoint: endpoint.into(),
            result: result.into(),
        })
        .inc();
}

fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(json!({"error": message.into()}))).into_response()
}

/// Checks the API is on and the token right; `Err` is the answer to send.
fn admit<'a>(
    state: &'a ServerState,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<&'a ControlApi, Box<Response>> {
    let Some(api) = &state.control else {
        count(state, endpoint, "disabled");
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "the control API is off: start the daemon with --control-token-file",
        )));
    };
    if !api.authorized(headers) {
        count(state, endpoint, "unauthorized");
        tracing::warn!(endpoint, "control request refused: missing or wrong token");
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer <the token of --control-token-file>",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"ecs-reconciler\""),
        );
        return Err(Box::new(response));
    }
    Ok(api)
}

fn peer(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.to_string())
}

/// A copy that does not lead would read nothing: say who does.
fn follower(state: &ServerState) -> Option<Response> {
    match &state.status.borrow().leadership {
        Leadership::Follower { leader } => Some(error(
            StatusCode::CONFLICT,
            format!(
                "this copy follows; send the request to the leader ({})",
                leader.as_deref().unwrap_or("unknown")
            ),
        )),
        _ => None,
    }
}

pub(crate) async fn reconcile(
    State(state): State<ServerState>,
    Query(query): Query<WaitQuery>,
    request: Request,
) -> Response {
    const ENDPOINT: &str = "reconcile";
    let api = match admit(&state, ENDPOINT, request.headers()) {
        Ok(api) => api.clone(),
        Err(response) => return *response,
    };
    let origin = Origin::Api {
        peer: peer(&request),
    };
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        count(&state, ENDPOINT, "rejected");
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the body is over 1 MiB");
    };
    let body: ReconcileBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        ReconcileBody::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(body) => body,
            Err(err) => {
                count(&state, ENDPOINT, "rejected");
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "the body must be {{\"resources\": [\"KIND/NAME\", ...]}} or empty: {err}"
                    ),
                );
            }
        }
    };
    let mut units = Vec::new();
    {
        let status = state.status.borrow();
        for id in &body.resources {
            let unit = match id.parse::<UnitId>() {
                Ok(unit) => unit,
                Err(err) => {
                    count(&state, ENDPOINT, "rejected");
                    return error(StatusCode::BAD_REQUEST, format!("{id}: {err}"));
                }
            };
            if !status.units.contains_key(&unit) {
                count(&state, ENDPOINT, "rejected");
                return error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "{id} is not declared in the file (GET /api/v1/status lists the resources)"
                    ),
                );
            }
            units.push(unit);
        }
    }
    if let Some(response) = follower(&state) {
        count(&state, ENDPOINT, "rejected");
        return response;
    }
    let (reply, answer) = if query.wait {
        let (reply, answer) = PassReply::new();
        (Some(reply), Some(answer))
    } else {
        (None, None)
    };
    let resources: Vec<String> = units.iter().map(UnitId::to_string).collect();
    let sent = api.controls.send(Control::ReconcileNow(ReconcileRequest {
        units,
        origin,
        reply,
    }));
    if !sent {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    count(&state, ENDPOINT, "accepted");
    let Some(answer) = answer else {
        return (
            StatusCode::ACCEPTED,
            Json(json!({"accepted": true, "resources": resources})),
        )
            .into_response();
    };
    match tokio::time::timeout(WAIT_LIMIT, answer).await {
        Ok(Ok(summary)) => (StatusCode::OK, Json(summary)).into_response(),
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon stopped before the pass finished",
        ),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "the pass did not finish within 10 minutes; it goes on (GET /api/v1/status)",
        ),
    }
}

pub(crate) async fn confirm(State(state): State<ServerState>, request: Request) -> Response {
    const ENDPOINT: &str = "confirm";
    let api = match admit(&state, ENDPOINT, request.headers()) {
        Ok(api) => api.clone(),
        Err(response) => return *response,
    };
    if let Some(response) = follower(&state) {
        count(&state, ENDPOINT, "rejected");
        return response;
    }
    let awaiting = state.status.borrow().awaiting_confirmation.len();
    let origin = Origin::Api {
        peer: peer(&request),
    };
    if !api.controls.send(Control::ConfirmHeld(origin)) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    count(&state, ENDPOINT, "accepted");
    (
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "drastic_edits_confirmed": awaiting})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use ecs_reconciler_runtime::control::{self, ControlReceiver};
    use ecs_reconciler_runtime::http::post_json;
    use ecs_reconciler_runtime::metrics::Metrics;
    use ecs_reconciler_runtime::reload::ConfigStatus;
    use ecs_reconciler_runtime::status::{DaemonStatus, UnitStatus};
    use tokio::sync::watch;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn web() -> UnitId {
        UnitId::security_group("web")
    }

    /// A server with the API on (or off) and `web` declared; its URL, the
    /// loop's end of the control channel, and the metrics.
    async fn serve(on: bool) -> (String, ControlReceiver, Arc<Metrics>) {
        let mut status = DaemonStatus::default();
        status.units.insert(web(), UnitStatus::new(web()));
        let (status_tx, status_rx) = watch::channel(status);
        std::mem::forget(status_tx);
        let (config_tx, config_rx) = watch::channel(ConfigStatus {
            path: "seed.yaml".into(),
            hash: "abc".into(),
            loaded_at_unix: 1.0,
            last_reload_ok: true,
            last_attempt_at_unix: 1.0,
            error: None,
            generation: 1,
        });
        std::mem::forget(config_tx);
        let (metrics, registry) = Metrics::new("test");
        let (controls, receiver) = control::channel();
        let state = ServerState {
            status: status_rx,
            config: config_rx,
            heartbeat: Arc::new(AtomicU64::new(0)),
            version: "test",
            metrics: metrics.clone(),
            registry: Arc::new(registry),
            timeline: Arc::default(),
            control: on.then(|| ControlApi::new(TOKEN, controls)),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = crate::router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(axum::serve(listener, app).into_future());
        (format!("http://{addr}"), receiver, metrics)
    }

    async fn post(url: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
        let (code, body) = post_json(url, token, body.as_bytes(), Duration::from_secs(5))
            .await
            .unwrap();
        (code, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_missing_or_wrong_token_is_401_counted_and_does_nothing() {
        let (url, receiver, metrics) = serve(true).await;
        let mut to_loop = receiver.unrouted();
        for token in ["", "0123456789abcdef012", "0123456789abcdef01234", "x"] {
            let (code, body) = post(&format!("{url}/api/v1/reconcile"), token, "").await;
            assert_eq!(code, 401, "{token:?}: {body}");
            let (code, _) = post(&format!("{url}/api/v1/confirm"), token, "").await;
            assert_eq!(code, 401);
        }
        let refused = metrics
            .control_requests_total
            .get_or_create(&ControlRequestLabels {
                endpoint: "reconcile".into(),
                result: "unauthorized".into(),
            })
            .get();
        assert_eq!(refused, 4);
        // Nothing reached the loop: the next control is the one sent now.
        let (code, _) = post(&format!("{url}/api/v1/confirm"), TOKEN, "").await;
        assert_eq!(code, 202);
        let Control::ConfirmHeld(Origin::Api { peer }) = to_loop.recv().await else {
            panic!("a confirm")
        };
        assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    }

    #[tokio::test]
    async fn without_a_token_file_the_api_is_off() {
        let (url, _receiver, _) = serve(false).await;
        let (code, body) = post(&format!("{url}/api/v1/reconcile"), TOKEN, "").await;
        assert_eq!(code, 403, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("--control-token-file")
        );
    }

    #[tokio::test]
    async fn a_reconcile_request_names_declared_resources_only() {
        let (url, receiver, _) = serve(true).await;
        let mut to_loop = receiver.unrouted();
        let reconcile = format!("{url}/api/v1/reconcile");
        let (code, body) = post(
            &reconcile,
            TOKEN,
            r#"{"resources": ["security-group/nope"]}"#,
        )
        .await;
        assert_eq!(code, 404, "{body}");
        let (code, body) = post(&reconcile, TOKEN, r#"{"resources": ["bucket/x"]}"#).await;
        assert_eq!(code, 400, "{body}");
        let (code, body) = post(&reconcile, TOKEN, "not json").await;
        assert_eq!(code, 400, "{body}");
        let (code, body) = post(
            &reconcile,
            TOKEN,
            r#"{"resources": ["security-group/web"]}"#,
        )
        .await;
        assert_eq!(code, 202, "{body}");
        assert_eq!(body["resources"], json!(["security-group/web"]));
        let Control::ReconcileNow(request) = to_loop.recv().await else {
            panic!("a reconcile request")
        };
        assert_eq!(request.units, vec![web()]);
        assert!(request.reply.is_none());
        // Empty body: every resource.
        let (code, _) = post(&reconcile, TOKEN, "").await;
        assert_eq!(code, 202);
        let Control::ReconcileNow(request) = to_loop.recv().await else {
            panic!("a reconcile request")
        };
        assert!(request.units.is_empty());
    }
}
