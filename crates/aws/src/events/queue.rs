//! The SQS consumer behind `run --events-queue`: long-polls the queue the
//! EventBridge rules of `deploy/events/` feed, parses each message, hands
//! the batch to the daemon and deletes the messages once the daemon has
//! scheduled their passes. A message that cannot be used is deleted too
//! (and counted by the daemon): nothing is retried forever. A message whose
//! delete fails comes back after the visibility timeout, which is harmless
//! because events only trigger re-reads.
//!
//! Whether the queue can be read is asked first (GetQueueAttributes: a
//! receive would only answer after its long poll). A queue that cannot be
//! read (missing, denied, throttled) is reported as [`QueueHealth::Failing`]
//! and asked again with backoff; the daemon falls back to its normal resync
//! meanwhile.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use ecs_reconciler_plan::events::{ChangeEvent, IgnoredBecause, QueueHealth};

use crate::clients::ClientSettings;
use crate::error::AwsError;
use crate::events::parse::parse_message;
use crate::telemetry::{CallInterceptor, CallObserver};

/// Seconds a ReceiveMessage waits for a message (SQS's maximum).
const LONG_POLL_SECONDS: i32 = 20;
/// Messages per receive (SQS's maximum).
const BATCH: i32 = 10;
/// How long a received message stays invisible to other receivers: longer
/// than the daemon may take to schedule its pass (a full pass in flight).
const VISIBILITY_SECONDS: i32 = 120;
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One receive's messages, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Events that may concern declared resources.
    pub events: Vec<ChangeEvent>,
    /// Messages that trigger nothing, and why.
    pub unusable: Vec<IgnoredBecause>,
    /// When they were received, Unix seconds (for the event lag).
    pub received_unix: f64,
}

/// Where the consumer delivers: the daemon.
pub trait EventSink: Send + Sync + 'static {
    /// Resolves when messages may be taken: only the copy that leads
    /// receives, since a message one copy takes the others never see.
    fn ready(&self) -> impl Future<Output = ()> + Send;
    /// Hands a batch over; resolves once its passes are scheduled (then the
    /// messages are deleted), `false` once the daemon is gone.
    fn deliver(&self, batch: Received) -> impl Future<Output = bool> + Send;
    /// The queue's health changed.
    fn health(&self, health: QueueHealth);
}

/// An SQS queue of EventBridge events.
#[derive(Debug, Clone)]
pub struct EventQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl EventQueue {
    /// A client from the default chain (like the other clients), with an
    /// attempt timeout longer than the long poll.
    pub async fn from_env(
        url: String,
        settings: &ClientSettings,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> EventQueue {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout)
                .operation_attempt_timeout(Duration::from_secs(LONG_POLL_SECONDS as u64 + 10))
                .operation_timeout(Duration::from_secs(LONG_POLL_SECONDS as u64 + 40))
                .build(),
        );
        if let Some(region) = region_of(&url).or(settings.region.clone()) {
            loader = loader.region(Region::new(region));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_sqs::config::Builder::from(&shared);
        if let Some(observer) = observer {
            config = config.interceptor(CallInterceptor::new(observer));
        }
        EventQueue {
            client: aws_sdk_sqs::Client::from_conf(config.build()),
            url,
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Receives and delivers until `sink` is gone.
    pub async fn consume(&self, sink: impl EventSink) {
        let mut backoff = BACKOFF_FIRST;
        let mut healthy: Option<bool> = None;
        loop {
            sink.ready().await;
            // Whether the queue can be read is known at once (a receive
            // would wait its long poll first), and again after a failure.
            if healthy != Some(true) {
                match self
                    .client
                    .get_queue_attributes()
                    .queue_url(&self.url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .send()
                    .await
                {
                    Ok(_) => {
                        healthy = Some(true);
                        backoff = BACKOFF_FIRST;
                        sink.health(QueueHealth::Receiving);
                    }
                    Err(err) => {
                        let err = AwsError::from_sdk("sqs", "GetQueueAttributes", &err);
                        self.failing(&sink, &err, backoff).await;
                        healthy = Some(false);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
            let received = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(BATCH)
                .wait_time_seconds(LONG_POLL_SECONDS)
                .visibility_timeout(VISIBILITY_SECONDS)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(err) => {
                    let err = AwsError::from_sdk("sqs", "ReceiveMessage", &err);
                    self.failing(&sink, &err, backoff).await;
                    healthy = Some(false);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            let mut batch = Received {
                events: Vec::new(),
                unusable: Vec::new(),
                received_unix: crate::events::unix_now(),
            };
            for message in &messages {
                match parse_message(message.body().unwrap_or_default()) {
                    Ok(event) => batch.events.push(event),
                    Err(why) => batch.unusable.push(why),
                }
            }
            if !sink.deliver(batch).await {
                return;
            }
            self.delete(&messages).await;
        }
    }

    /// Says the queue fails, then waits `backoff`.
    async fn failing(&self, sink: &impl EventSink, err: &AwsError, backoff: Duration) {
        tracing::warn!(error = %err, queue = %self.url, retry_in = ?backoff, "the events queue cannot be read; resync covers drift meanwhile");
        sink.health(QueueHealth::Failing {
            class: err.kind,
            reason: err.to_string(),
        });
        tokio::time::sleep(backoff).await;
    }

    async fn delete(&self, messages: &[aws_sdk_sqs::types::Message]) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        match self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) if !output.failed.is_empty() => tracing::warn!(
                failed = output.failed.len(),
                "some event messages could not be deleted; they come back and trigger one more re-read"
            ),
            Ok(_) => {}
            Err(err) => {
                let err = AwsError::from_sdk("sqs", "DeleteMessageBatch", &err);
                tracing::warn!(error = %err, "event messages could not be deleted; they come back and trigger one more re-read");
            }
        }
    }
}

/// The region of a queue URL (`https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`).
fn region_of(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next(), parts.next()) {
        (Some("sqs"), Some(region)) if region.contains('-') => Some(region.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_names_its_region() {
        assert_eq!(
            region_of("https://sqs.eu-west-1.amazonaws.com/123456789012/ecs-reconciler-events")
                .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("http://127.0.0.1:5000/123456789012/q"), None);
    }
}
