//! A canned HTTP/1.1 server for unit tests that need the real SDK clients
//! on the wire: each request gets the next body of a list (the last one
//! repeats) on a kept-alive connection, and requests are counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers the requests on `listener` with `bodies` in turn, counting them
/// in `requests`.
async fn serve(
    listener: tokio::net::TcpListener,
    bodies: Vec<&'static str>,
    requests: Arc<AtomicUsize>,
) {
    let bodies = Arc::new(bodies);
    while let Ok((mut stream, _)) = listener.accept().await {
        let bodies = bodies.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                let Some(head_end) = text.find("\r\n\r\n") else {
                    continue;
                };
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() < head_end + 4 + length {
                    continue;
                }
                request.drain(..head_end + 4 + length);
                let index = requests.fetch_add(1, Ordering::SeqCst);
                let body = bodies[index.min(bodies.len() - 1)];
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A server answering with `bodies` (see [`serve`]) on a free loopback
/// port, an ECS client pointed at it, and its request count.
pub(crate) async fn ecs_serving(
    bodies: Vec<&'static str>,
) -> (aws_sdk_ecs::Client, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    tokio::spawn(serve(listener, bodies, requests.clone()));
    (ecs_client(endpoint), requests)
}

/// An ECS client for `endpoint` with test credentials.
fn ecs_client(endpoint: String) -> aws_sdk_ecs::Client {
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}
