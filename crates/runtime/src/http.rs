//! A minimal HTTP/1.1 client for loopback and link-local endpoints: the
//! ECS task metadata endpoint, the daemon's own health endpoint (the
//! `healthcheck` command, run in a container with no shell or curl) and its
//! control API (`sync`, `confirm`). Plain
//! HTTP, `Connection: close`, bounded in time and size.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// At most this many bytes of a response (headers included) are read; the
/// rest is cut off. These endpoints answer a few KiB.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// Why a [`get`] failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL (carried) does not start with `http://`.
    #[error("{0} is not an http:// URL")]
    BadUrl(String),
    /// Connecting, sending or reading failed.
    #[error("cannot reach {url}: {source}")]
    Io {
        /// The URL asked for.
        url: String,
        /// The socket's error.
        source: std::io::Error,
    },
    /// The answer has no header end or status line, or a bad chunked body.
    #[error("{url} sent an unreadable answer: {reason}")]
    Malformed {
        /// The URL asked for.
        url: String,
        /// What was wrong with the answer.
        reason: String,
    },
    /// The whole exchange took too long; carries the URL and the limit in
    /// seconds.
    #[error("{0} did not answer within {1} s")]
    Timeout(String, u64),
}

/// GETs `url`; returns the status code and the body.
pub async fn get(url: &str) -> Result<(u16, Vec<u8>), HttpError> {
    tokio::time::timeout(Duration::from_secs(2), exchange("GET", url, None, &[]))
        .await
        .map_err(|_| HttpError::Timeout(url.to_string(), 2))?
}

/// POSTs a JSON `body` to `url` with `Authorization: Bearer <token>`,
/// waiting at most `limit`; returns the status code and the body (the
/// control API's clients: `sync`, `confirm`).
pub async fn post_json(
    url: &str,
    token: &str,
    body: &[u8],
    limit: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    tokio::time::timeout(limit, exchange("POST", url, Some(token), body))
        .await
        .map_err(|_| HttpError::Timeout(url.to_string(), limit.as_secs()))?
}

async fn exchange(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(u16, Vec<u8>), HttpError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::BadUrl(url.to_string()))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let io = |source| HttpError::Io {
        url: url.to_string(),
        source,
    };
    let malformed = |reason: &str| HttpError::Malformed {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let authority = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let mut stream = TcpStream::connect(&authority).await.map_err(io)?;
    let mut request = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    stream.write_all(body).await.map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .await
        .map_err(io)?;

    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| malformed("no end of headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let code = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| malformed("no status line"))?;
    let body = &response[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        return Ok((
            code,
            dechunk(body).ok_or_else(|| malformed("bad chunked body"))?,
        ));
    }
    Ok((code, body.to_vec()))
}

/// Decodes a chunked body (servers may chunk even with `Connection: close`).
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

/// A one-shot HTTP server for tests: checks the request line starts with
/// `GET {path} `, answers `response` verbatim, and returns its base URL.
#[cfg(test)]
pub(crate) async fn serve_once(path: &'static str, response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let n = socket.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            request.starts_with(&format!("GET {path} HTTP/1.1")),
            "{request}"
        );
        socket.write_all(response.as_bytes()).await.unwrap();
    });
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_status_and_body_plain_and_chunked() {
        let url = serve_once("/a/b", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        assert_eq!(
            get(&format!("{url}/a/b")).await.unwrap(),
            (200, b"ok".to_vec())
        );
        let url = serve_once(
            "/a/b",
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .await;
        assert_eq!(
            get(&format!("{url}/a/b")).await.unwrap(),
            (503, b"abcde".to_vec())
        );
    }

    #[tokio::test]
    async fn unreachable_and_bad_urls_are_errors() {
        assert!(matches!(get("https://x/").await, Err(HttpError::BadUrl(_))));
        let err = get("http://127.0.0.1:9/x").await.unwrap_err();
        assert!(err.to_string().contains("cannot reach"), "{err}");
    }
}
