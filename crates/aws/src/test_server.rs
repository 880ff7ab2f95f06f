//! A canned HTTP/1.1 server for unit tests that need the real SDK clients
//! on the wire, so a read's safety can be checked without the Python
//! emulator. A [`Script`] says what to answer: per operation (ECS names it
//! in the `x-amz-target` header, EC2 and ELBv2 in the body's `Action=`),
//! the next reply of that operation's list, the last one repeating; an
//! operation the script does not name gets the next of the fallback list,
//! or a 500 that names it. Requests are counted and kept in order.
//!
//! The clients made here never retry, so every reply is seen by exactly one
//! call of the code under test.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Aws;
use crate::clients::{ClientSettings, SdkClients};

/// One HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    /// A 200 answer of the AWS JSON protocol (ECS).
    pub(crate) fn json(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            content_type: "application/x-amz-json-1.1",
            body: body.into(),
        }
    }

    /// A 200 answer of the EC2 or AWS query protocols (EC2, ELBv2).
    pub(crate) fn xml(body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/xml",
            body: body.into(),
        }
    }

    /// An ECS error (`__type` carries the code).
    pub(crate) fn ecs_error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            ..Reply::json(format!(r#"{{"__type":"{code}","message":"{message}"}}"#))
        }
    }

    /// An EC2 error.
    pub(crate) fn ec2_error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            ..Reply::xml(format!(
                "<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>r-1</RequestID></Response>"
            ))
        }
    }

    /// An ELBv2 error.
    pub(crate) fn elbv2_error(status: u16, code: &str, message: &str) -> Reply {
        Reply {
            status,
            ..Reply::xml(format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
            ))
        }
    }
}

/// What a server answers (see the module doc).
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    by_operation: HashMap<String, Vec<Reply>>,
    fallback: Vec<Reply>,
}

impl Script {
    /// Answers `operation` with `replies` in turn, the last one repeating.
    pub(crate) fn on(mut self, operation: &str, replies: impl IntoIterator<Item = Reply>) -> Self {
        let replies: Vec<Reply> = replies.into_iter().collect();
        assert!(!replies.is_empty(), "{operation}: no reply");
        self.by_operation.insert(operation.to_string(), replies);
        self
    }
}

/// The requests a server answered, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    /// Operation name and body of each request.
    requests: Arc<Mutex<Vec<(String, String)>>>,
    total: Arc<AtomicUsize>,
}

impl Seen {
    /// How many `operation` requests were answered.
    pub(crate) fn count(&self, operation: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| op == operation)
            .count()
    }

    /// The bodies of the `operation` requests, in order.
    pub(crate) fn bodies(&self, operation: &str) -> Vec<String> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

/// The operation a request names: ECS's `x-amz-target` header
/// (`AmazonEC2ContainerServiceV20141113.ListTasks`), else the query
/// protocols' `Action=` form field.
fn operation_of(head: &str, body: &str) -> String {
    let target = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-target").then(|| {
            value
                .trim()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string()
        })
    });
    target
        .or_else(|| {
            body.split('&')
                .find_map(|field| field.strip_prefix("Action=").map(str::to_string))
        })
        .unwrap_or_default()
}

/// The reply to the `index`th request of `operation`.
fn reply_for(script: &Script, operation: &str, index: usize, fallback_index: usize) -> Reply {
    let pick = |list: &[Reply], i: usize| list[i.min(list.len() - 1)].clone();
    match script.by_operation.get(operation) {
        Some(replies) => pick(replies, index),
        None if !script.fallback.is_empty() => pick(&script.fallback, fallback_index),
        None => Reply {
            status: 500,
            content_type: "text/plain",
            body: format!("no canned reply for {operation:?}"),
        },
    }
}

/// Answers the requests on `listener` as `script` says, on kept-alive
/// connections, recording them in `seen`.
async fn serve(listener: tokio::net::TcpListener, script: Script, seen: Seen) {
    let script = Arc::new(script);
    while let Ok((mut stream, _)) = listener.accept().await {
        let script = script.clone();
        let seen = seen.clone();
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
                let body = String::from_utf8_lossy(&request[head_end + 4..head_end + 4 + length])
                    .to_string();
                let operation = operation_of(&text[..head_end], &body);
                request.drain(..head_end + 4 + length);
                let reply = {
                    let mut requests = seen.requests.lock().unwrap();
                    let index = requests.iter().filter(|(op, _)| *op == operation).count();
                    let fallback_index = seen.total.fetch_add(1, Ordering::SeqCst);
                    requests.push((operation.clone(), body));
                    reply_for(&script, &operation, index, fallback_index)
                };
                let response = format!(
                    "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n{}",
                    reply.status,
                    if reply.status == 200 { "OK" } else { "Error" },
                    reply.content_type,
                    reply.body.len(),
                    reply.body
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts a server for `script` on a free loopback port; returns its
/// endpoint and what it will see.
async fn start(script: Script) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let seen = Seen::default();
    tokio::spawn(serve(listener, script, seen.clone()));
    (endpoint, seen)
}

/// A server answering with `bodies` in turn (JSON, 200; the last one
/// repeats), an ECS client pointed at it, and its request count.
pub(crate) async fn ecs_serving(
    bodies: Vec<&'static str>,
) -> (aws_sdk_ecs::Client, Arc<AtomicUsize>) {
    let script = Script {
        fallback: bodies.into_iter().map(Reply::json).collect(),
        ..Script::default()
    };
    let (endpoint, seen) = start(script).await;
    (ecs_client(endpoint), seen.total)
}

/// What the three servers behind [`aws_serving`] saw.
pub(crate) struct Servers {
    pub ecs: Seen,
    pub ec2: Seen,
    pub elbv2: Seen,
}

/// One server per service, each answering as its script says, and an
/// [`Aws`] pointed at them with the default budget and empty memory.
pub(crate) async fn aws_serving(ecs: Script, ec2: Script, elbv2: Script) -> (Aws, Servers) {
    aws_serving_with(ecs, ec2, elbv2, &ClientSettings::default()).await
}

/// Like [`aws_serving`], with `settings`' page size, budget and rotation.
pub(crate) async fn aws_serving_with(
    ecs: Script,
    ec2: Script,
    elbv2: Script,
    settings: &ClientSettings,
) -> (Aws, Servers) {
    let (ecs_endpoint, ecs_seen) = start(ecs).await;
    let (ec2_endpoint, ec2_seen) = start(ec2).await;
    let (elbv2_endpoint, elbv2_seen) = start(elbv2).await;
    let sdk = SdkClients {
        ecs: ecs_client(ecs_endpoint),
        ec2: ec2_client(ec2_endpoint),
        elbv2: elbv2_client(elbv2_endpoint.clone()),
        // No scripted test reads scalable targets (`init` only): pointed at
        // the ELBv2 server, any call would fail loudly.
        autoscaling: autoscaling_client(elbv2_endpoint),
    };
    let aws = Aws::new(sdk, Some("us-east-1".into()), settings);
    let servers = Servers {
        ecs: ecs_seen,
        ec2: ec2_seen,
        elbv2: elbv2_seen,
    };
    (aws, servers)
}

/// An Application Auto Scaling client for `endpoint`, like the others.
fn autoscaling_client(endpoint: String) -> aws_sdk_applicationautoscaling::Client {
    use aws_sdk_applicationautoscaling::config::{
        BehaviorVersion, Credentials, Region, retry::RetryConfig,
    };
    let config = aws_sdk_applicationautoscaling::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_applicationautoscaling::Client::from_conf(config)
}

/// An ECS client for `endpoint` with test credentials and no retries.
fn ecs_client(endpoint: String) -> aws_sdk_ecs::Client {
    use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_ecs::Client::from_conf(config)
}

/// An EC2 client for `endpoint` with test credentials and no retries.
fn ec2_client(endpoint: String) -> aws_sdk_ec2::Client {
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// An ELBv2 client for `endpoint` with test credentials and no retries.
fn elbv2_client(endpoint: String) -> aws_sdk_elasticloadbalancingv2::Client {
    use aws_sdk_elasticloadbalancingv2::config::{
        BehaviorVersion, Credentials, Region, retry::RetryConfig,
    };
    let config = aws_sdk_elasticloadbalancingv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .endpoint_url(endpoint)
        .build();
    aws_sdk_elasticloadbalancingv2::Client::from_conf(config)
}
