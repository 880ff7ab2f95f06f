//! A minimal HTTP/1.1 GET client for loopback and link-local endpoints:
//! the ECS task metadata endpoint and the daemon's own health endpoint (the
//! `healthcheck` command, run in a container with no shell or curl). Plain
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
    /// The whole exchange took more than 2 s; carries the URL.
    #[error("{0} did not answer within 2 s")]
    Timeout(String),
}

/// GETs `url`; returns the status code and the body.
pub async fn get(url: &str) -> Result<(u16, Vec<u8>), HttpError> {
    tokio::time::timeout(Duration::from_secs(2), get_inner(url))
        .await
        .map_err(|_| HttpError::Timeout(url.to_string()))?
}

async fn get_inner(url: &str) -> Result<(u16, Vec<u8>), HttpError> {
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
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(io)?;
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
