//! The live dashboard: one HTML page, its stylesheet and its script,
//! embedded in the binary (no build step, nothing fetched from elsewhere).
//! The page reads `/api/v1/events` (server-sent events) and falls back to
//! polling `/api/v1/status`. It changes nothing by itself: its Operate panel
//! calls the control API with the token a person types into it (kept in the
//! page's memory only).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const HTML: &str = include_str!("../assets/dashboard.html");
const CSS: &str = include_str!("../assets/dashboard.css");
const JS: &str = include_str!("../assets/dashboard.js");

/// Same-origin only: no inline script, no external fonts, images or
/// connections, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// `/`, `/assets/dashboard.css`, `/assets/dashboard.js`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", HTML) }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidated on every load, so a new binary's page is never
            // mixed with an old cached script.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// GET over a raw connection: status code, lower-cased head, body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("end of headers");
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, head.to_ascii_lowercase(), body.to_string())
    }

    #[tokio::test]
    async fn the_page_and_its_assets_answer_with_their_types_and_no_cache() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(axum::serve(listener, routes::<()>()).into_future());
        for (path, content_type, marker) in [
            ("/", "text/html; charset=utf-8", "/assets/dashboard.js"),
            ("/assets/dashboard.css", "text/css; charset=utf-8", ".unit"),
            (
                "/assets/dashboard.js",
                "text/javascript; charset=utf-8",
                "/api/v1/events",
            ),
        ] {
            let (code, head, body) = get(addr, path).await;
            assert_eq!(code, 200, "{path}");
            assert!(
                head.contains(&format!("\r\ncontent-type: {content_type}\r\n")),
                "{path}: {head}"
            );
            assert!(
                head.contains("\r\ncache-control: no-cache\r\n"),
                "{path}: {head}"
            );
            assert!(
                head.contains("content-security-policy: default-src 'none'"),
                "{path}: {head}"
            );
            assert!(body.contains(marker), "{path} lacks {marker}");
        }
        let (code, _, _) = get(addr, "/assets/missing.js").await;
        assert_eq!(code, 404);
        server.abort();
    }

    #[test]
    fn the_page_requests_nothing_external_and_never_writes_markup_from_data() {
        for (name, text) in [("html", HTML), ("css", CSS)] {
            assert!(!text.contains("://"), "{name} refers to another origin");
        }
        assert!(!JS.contains("innerHTML") && !JS.contains("outerHTML"));
        assert!(!JS.contains("insertAdjacentHTML") && !JS.contains("document.write"));
    }
}
