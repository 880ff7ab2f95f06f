//! Notifications: the webhooks of the file's `notifications:` told what the
//! controller corrects, holds and finds — the resource, what changed
//! (before → after), why (the plan's reason), who when known, and a link to
//! the dashboard.
//!
//! Delivery never slows the loop: the notifier follows the timeline (a
//! broadcast the loop pushes to without waiting) and the status, coalesces
//! per webhook, event kind and resource (a flood is one message with a
//! count), and hands each message to its webhook's own worker through a
//! bounded queue. A worker retries with backoff and gives up; a webhook
//! that hangs, fails or answers slowly delays only its own messages. What
//! is dropped (a full queue, a lagging subscription, an unresolvable URL)
//! is counted in `ecs_reconciler_notifications_total{webhook,result}` and
//! shown in the status. URLs are secrets: only their scheme and host are
//! ever logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ecs_reconciler_plan::UnitId;
use ecs_reconciler_spec::{NotificationEvent, NotificationFormat, NotificationSpec, UrlFrom};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::reload::LoadedConfig;
use crate::status::{DaemonStatus, UnitState};
use crate::timeline::{Timeline, TimelineEvent, TimelineKind, unix_now};

/// Messages waiting for one webhook's worker; more are dropped (counted).
pub const QUEUE: usize = 100;
/// Coalescing keys waiting for their window; more are dropped (counted).
const PENDING_MAX: usize = 10_000;
/// Attempts per message, the first included (5xx, 429 and transport
/// errors are retried; other 4xx are not).
const ATTEMPTS: u32 = 3;
/// One attempt's limit: a receiver that hangs is cut off after it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often throttled calls are summed.
const THROTTLE_EVERY: Duration = Duration::from_secs(30);

/// One thing worth telling, before coalescing.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// What kind of event.
    pub event: NotificationEvent,
    /// The declared resource it is about, if any.
    pub unit: Option<UnitId>,
    /// What happened: for a change, `kind resource: before -> after`.
    pub what: String,
    /// Why: the plan's reason, when there is one.
    pub why: Option<String>,
    /// Who caused it, when known.
    pub who: Option<String>,
    /// Unix seconds.
    pub time: f64,
}

impl Notice {
    /// The notice a timeline entry makes, if it is one a webhook can want.
    pub fn from_timeline(entry: &TimelineEvent) -> Option<Notice> {
        let event = match entry.kind {
            TimelineKind::Action => NotificationEvent::DriftCorrected,
            TimelineKind::Held => NotificationEvent::RemovalsHeld,
            TimelineKind::Fight => NotificationEvent::FightDetected,
            TimelineKind::ConfigRejected => NotificationEvent::ConfigRejected,
            TimelineKind::Leadership => NotificationEvent::LeadershipChanged,
            TimelineKind::QueueFailing | TimelineKind::QueueReceiving => {
                NotificationEvent::EventQueue
            }
            _ => return None,
        };
        Some(Notice {
            event,
            unit: entry.unit.clone(),
            what: entry.message.clone(),
            why: entry.why.clone(),
            who: entry.by.as_ref().map(|by| by.actor.to_string()),
            time: entry.time,
        })
    }
}

/// A webhook whose URL was resolved.
struct Webhook {
    spec: NotificationSpec,
    queue: mpsc::Sender<Message>,
}

/// One message after coalescing.
#[derive(Debug, Clone)]
struct Message {
    notice: Notice,
    count: usize,
}

/// Notices of one kind about one resource for one webhook, waiting for
/// the end of the webhook's window.
struct Pending {
    due: Instant,
    message: Message,
}

/// Starts the notifier; it follows `config` for its webhooks and stops
/// with `shutdown`.
pub fn spawn(
    config: watch::Receiver<LoadedConfig>,
    timeline: Arc<Timeline>,
    status: watch::Receiver<DaemonStatus>,
    metrics: Arc<Metrics>,
    public_url: Option<String>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let notifier = Notifier {
        metrics,
        public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
        webhooks: Vec::new(),
        specs: Vec::new(),
        pending: HashMap::new(),
        failing_since: HashMap::new(),
        told_failing: HashMap::new(),
        throttled_before: None,
        workers: Vec::new(),
    };
    tokio::spawn(notifier.run(config, timeline, status, shutdown))
}

struct Notifier {
    metrics: Arc<Metrics>,
    public_url: Option<String>,
    webhooks: Vec<Webhook>,
    /// The specs the webhooks were built from (rebuilt when they change).
    specs: Vec<NotificationSpec>,
    pending: HashMap<(usize, NotificationEvent, Option<UnitId>), Pending>,
    /// Since when each resource has been in error (unix seconds).
    failing_since: HashMap<UnitId, f64>,
    /// Webhook name → resources already told as failing in this episode
    /// (by name, so an edit of the webhook list does not tell them again).
    told_failing: HashMap<String, std::collections::BTreeSet<UnitId>>,
    throttled_before: Option<u64>,
    /// The workers started so far (old ones end once drained).
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// How long a stopping daemon waits for the webhooks' last messages: one
/// attempt's limit (the daemon's `--shutdown-timeout` bounds it anyway).
const DRAIN: Duration = ATTEMPT_TIMEOUT;

impl Notifier {
    async fn run(
        mut self,
        mut config: watch::Receiver<LoadedConfig>,
        timeline: Arc<Timeline>,
        mut status: watch::Receiver<DaemonStatus>,
        shutdown: CancellationToken,
    ) {
        let (_, mut events) = timeline.subscribe(0);
        self.configure(&config.borrow_and_update().desired.notifications);
        let mut flush = tokio::time::interval(Duration::from_millis(250));
        let mut throttles = tokio::time::interval(THROTTLE_EVERY);
        let mut config_open = true;
        let mut status_open = true;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    // What waits for its window goes to the workers now:
                    // "stopped leading" is the notice a deploy makes; the
                    // workers get a moment to deliver it.
                    self.flush_all();
                    self.drain().await;
                    break;
                }
                changed = config.changed(), if config_open => {
                    if changed.is_err() {
                        config_open = false;
                        continue;
                    }
                    let specs = config.borrow_and_update().desired.notifications.clone();
                    self.configure(&specs);
                }
                entry = events.recv() => match entry {
                    Ok(entry) => {
                        if let Some(notice) = Notice::from_timeline(&entry) {
                            self.offer(&notice);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        for webhook in &self.webhooks {
                            self.count(&webhook.spec.name, "dropped", missed);
                        }
                        tracing::warn!(missed, "notifications: the timeline ran ahead; entries dropped");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                changed = status.changed(), if status_open => {
                    if changed.is_err() {
                        status_open = false;
                        continue;
                    }
                    let status = status.borrow_and_update().clone();
                    self.check_failing(&status);
                }
                _ = flush.tick() => self.flush(Instant::now()),
                _ = throttles.tick() => self.check_throttles(),
            }
        }
    }

    /// (Re)builds the webhooks when the file's list changed.
    fn configure(&mut self, specs: &[NotificationSpec]) {
        if specs == self.specs.as_slice() {
            return;
        }
        self.specs = specs.to_vec();
        // What waits for its window goes out through the old workers.
        self.flush_all();
        // Dropping the old senders ends the old workers once they drained.
        self.webhooks = specs
            .iter()
            .filter_map(|spec| {
                let url = match resolve(&spec.url) {
                    Ok(url) => url,
                    Err(why) => {
                        tracing::warn!(webhook = %spec.name, %why, "notifications: webhook left out");
                        self.count(&spec.name, "unresolved", 1);
                        return None;
                    }
                };
                let (queue, rx) = mpsc::channel(QUEUE);
                let worker = Worker {
                    name: spec.name.clone(),
                    format: spec.format,
                    shown: shown(&url),
                    url,
                    public_url: self.public_url.clone(),
                    metrics: self.metrics.clone(),
                };
                self.workers.retain(|w| !w.is_finished());
                self.workers.push(tokio::spawn(worker.run(rx)));
                Some(Webhook {
                    spec: spec.clone(),
                    queue,
                })
            })
            .collect();
        for webhook in &self.webhooks {
            for result in ["sent", "failed", "dropped"] {
                self.count(&webhook.spec.name, result, 0);
            }
        }
    }

    fn count(&self, webhook: &str, result: &str, n: u64) {
        self.metrics.notification(webhook, result, n);
    }

    /// Queues `notice` for every webhook that wants it, coalesced.
    fn offer(&mut self, notice: &Notice) {
        let now = Instant::now();
        for (index, webhook) in self.webhooks.iter().enumerate() {
            if !webhook.spec.events.contains(&notice.event) {
                continue;
            }
            let key = (index, notice.event, notice.unit.clone());
            if let Some(pending) = self.pending.get_mut(&key) {
                pending.message.count += 1;
                pending.message.notice = notice.clone();
                continue;
            }
            if self.pending.len() >= PENDING_MAX {
                let name = webhook.spec.name.clone();
                self.count(&name, "dropped", 1);
                continue;
            }
            self.pending.insert(
                key,
                Pending {
                    due: now + webhook.spec.coalesce,
                    message: Message {
                        notice: notice.clone(),
                        count: 1,
                    },
                },
            );
        }
    }

    /// Hands every waiting message to its worker, window or not.
    fn flush_all(&mut self) {
        self.flush(Instant::now() + Duration::from_secs(86_400));
    }

    /// Closes the queues and waits (at most [`DRAIN`]) for the workers to
    /// send what they hold.
    async fn drain(&mut self) {
        self.webhooks.clear();
        let workers = std::mem::take(&mut self.workers);
        let all = async {
            for worker in workers {
                let _ = worker.await;
            }
        };
        if tokio::time::timeout(DRAIN, all).await.is_err() {
            tracing::warn!("notifications: stopping with messages still being sent");
        }
    }

    /// Hands every message whose window has ended to its worker.
    fn flush(&mut self, now: Instant) {
        let due: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(pending) = self.pending.remove(&key) else {
                continue;
            };
            let Some(webhook) = self.webhooks.get(key.0) else {
                continue;
            };
            if webhook.queue.try_send(pending.message).is_err() {
                let name = webhook.spec.name.clone();
                tracing::warn!(webhook = %name, "notifications: queue full; message dropped");
                self.count(&name, "dropped", 1);
            }
        }
    }

    /// `read-failing`: once per episode and webhook, when a resource has
    /// been in error for the webhook's `readFailingAfterSeconds`.
    fn check_failing(&mut self, status: &DaemonStatus) {
        let now = unix_now();
        self.failing_since.retain(|unit, _| {
            status
                .units
                .get(unit)
                .is_some_and(|u| u.state == UnitState::Error)
        });
        for told in self.told_failing.values_mut() {
            told.retain(|unit| self.failing_since.contains_key(unit));
        }
        let mut notices = Vec::new();
        for (unit, s) in &status.units {
            if s.state != UnitState::Error {
                continue;
            }
            let since = *self
                .failing_since
                .entry(unit.clone())
                .or_insert_with(|| s.last_success_unix.unwrap_or(s.last_pass_unix).min(now));
            for webhook in &self.webhooks {
                let wants = webhook
                    .spec
                    .events
                    .contains(&NotificationEvent::ReadFailing);
                if !wants || now - since < webhook.spec.read_failing_after.as_secs_f64() {
                    continue;
                }
                if self
                    .told_failing
                    .entry(webhook.spec.name.clone())
                    .or_default()
                    .insert(unit.clone())
                {
                    notices.push(Notice {
                        event: NotificationEvent::ReadFailing,
                        unit: Some(unit.clone()),
                        what: format!("{unit} has been failing for {:.0} s", now - since),
                        why: s.last_error.clone(),
                        who: None,
                        time: now,
                    });
                }
            }
        }
        for notice in &notices {
            self.offer(notice);
        }
    }

    /// `throttled`: AWS throttled calls since the last look.
    fn check_throttles(&mut self) {
        let total: u64 = self
            .metrics
            .api_totals()
            .values()
            .map(|t| t.throttled)
            .sum();
        let before = self.throttled_before.replace(total);
        if let Some(before) = before
            && total > before
        {
            self.offer(&Notice {
                event: NotificationEvent::Throttled,
                unit: None,
                what: format!(
                    "AWS throttled {} calls in the last {} s",
                    total - before,
                    THROTTLE_EVERY.as_secs()
                ),
                why: Some(
                    "other callers share the account's rate limits; lower --api-budget-share or find the other caller".into(),
                ),
                who: None,
                time: unix_now(),
            });
        }
    }
}

/// The URL a webhook's source holds, trimmed.
fn resolve(from: &UrlFrom) -> Result<String, String> {
    let url = match from {
        UrlFrom::Env(name) => {
            std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?
        }
        UrlFrom::File(path) => {
            std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?
        }
    };
    let url = url.trim().to_string();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("the URL must start with https:// (or http://)".into());
    }
    Ok(url)
}

/// What may be logged of a URL: its scheme and host, never the path (the
/// secret part of a Slack webhook).
pub fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

/// Delivers one webhook's messages, one at a time, with retries.
struct Worker {
    name: String,
    format: NotificationFormat,
    url: String,
    shown: String,
    public_url: Option<String>,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<Message>) {
        let client = match reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(client) => client,
            Err(err) => {
                tracing::error!(webhook = %self.name, error = %err, "notifications: no HTTP client");
                return;
            }
        };
        while let Some(message) = queue.recv().await {
            let body = payload(self.format, &message, self.public_url.as_deref());
            let result = self.deliver(&client, &body).await;
            let label = if result.is_ok() { "sent" } else { "failed" };
            self.metrics.notification(&self.name, label, 1);
            if let Err(why) = result {
                tracing::warn!(webhook = %self.name, url = %self.shown, %why, "notification not delivered");
            }
        }
    }

    async fn deliver(&self, client: &reqwest::Client, body: &Value) -> Result<(), String> {
        let mut why = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << (2 * (attempt - 1)))).await;
            }
            match client.post(&self.url).json(body).send().await {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                // A 4xx other than 429 will not change on retry (a deleted
                // Slack hook answers 404).
                Ok(answer)
                    if answer.status().is_client_error()
                        && answer.status() != reqwest::StatusCode::TOO_MANY_REQUESTS =>
                {
                    return Err(format!("answered {}", answer.status()));
                }
                Ok(answer) => why = format!("answered {}", answer.status()),
                // Without the URL: reqwest's error text names it.
                Err(err) if err.is_timeout() => why = "timed out".into(),
                Err(err) if err.is_connect() => why = "could not connect".into(),
                Err(_) => why = "the request failed".into(),
            }
        }
        Err(format!("{why} ({ATTEMPTS} attempts)"))
    }
}

/// The anchor of a resource's card on the dashboard.
fn dashboard_link(public_url: Option<&str>, unit: Option<&UnitId>) -> Option<String> {
    let base = public_url?.trim_end_matches('/');
    Some(match unit {
        Some(unit) => {
            let id: String = unit
                .to_string()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{base}/#u-{id}")
        }
        None => format!("{base}/"),
    })
}

/// The body of one message.
#[derive(Serialize)]
struct JsonMessage<'a> {
    event: NotificationEvent,
    resource: Option<String>,
    count: usize,
    message: &'a str,
    why: Option<&'a str>,
    who: Option<&'a str>,
    time: f64,
    dashboard: Option<String>,
}

fn payload(format: NotificationFormat, message: &Message, public_url: Option<&str>) -> Value {
    let notice = &message.notice;
    let link = dashboard_link(public_url, notice.unit.as_ref());
    let event = serde_json::to_value(notice.event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    match format {
        NotificationFormat::Json => serde_json::to_value(JsonMessage {
            event: notice.event,
            resource: notice.unit.as_ref().map(UnitId::to_string),
            count: message.count,
            message: &notice.what,
            why: notice.why.as_deref(),
            who: notice.who.as_deref(),
            time: notice.time,
            dashboard: link,
        })
        .unwrap_or(Value::Null),
        NotificationFormat::Slack => {
            let resource = notice
                .unit
                .as_ref()
                .map(|u| format!(" on `{u}`"))
                .unwrap_or_default();
            let times = if message.count > 1 {
                format!(" ({}× in the window; the last one below)", message.count)
            } else {
                String::new()
            };
            let mut text = format!("*{event}*{resource}{times}\n{}", notice.what);
            if let Some(why) = &notice.why {
                text.push_str(&format!("\n_why:_ {why}"));
            }
            if let Some(who) = &notice.who {
                text.push_str(&format!("\n_who:_ {who}"));
            }
            if let Some(link) = &link {
                text.push_str(&format!("\n<{link}|dashboard>"));
            }
            json!({
                "text": format!("ecs-reconciler: {event}{resource}"),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_secret_path() {
        assert_eq!(
            shown("https://hooks.example.test/services/T000/B000/XXXX"),
            "https://hooks.example.test/…"
        );
        assert_eq!(
            shown("http://user:pw@10.0.0.1:8080/x?y"),
            "http://10.0.0.1:8080/…"
        );
    }

    #[test]
    fn messages_say_what_why_and_link_the_resource() {
        let message = Message {
            notice: Notice {
                event: NotificationEvent::DriftCorrected,
                unit: Some(UnitId::security_group("web")),
                what: "revoke-ingress security-group/web: tcp 22 from 0.0.0.0/0 -> absent (done)"
                    .into(),
                why: Some("ingress rule tcp 22 from 0.0.0.0/0 is not declared".into()),
                who: None,
                time: 1.0,
            },
            count: 3,
        };
        let json = payload(
            NotificationFormat::Json,
            &message,
            Some("https://ops.example.test/"),
        );
        assert_eq!(json["event"], "drift-corrected");
        assert_eq!(json["resource"], "security-group/web");
        assert_eq!(json["count"], 3);
        assert_eq!(
            json["dashboard"],
            "https://ops.example.test/#u-security-group_web"
        );
        let slack = payload(NotificationFormat::Slack, &message, None);
        let text = slack["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            text.contains("*drift-corrected* on `security-group/web` (3×"),
            "{text}"
        );
        assert!(text.contains("_why:_ ingress rule tcp 22"), "{text}");
    }

    #[test]
    fn a_correction_whose_caller_is_known_says_who() {
        let by = crate::events::Attribution {
            actor: ecs_reconciler_plan::events::Actor {
                arn: "arn:aws:iam::123456789012:user/console-admin".into(),
                source_ip: Some("203.0.113.7".into()),
                call: "AuthorizeSecurityGroupIngress".into(),
                at: "2026-12-07T14:02:03Z".into(),
            },
            event_unix: 1.0,
        };
        let entry = TimelineEvent::now(
            TimelineKind::Action,
            Some(UnitId::security_group("web")),
            "revoke-ingress security-group/web: tcp 22 from 0.0.0.0/0 -> absent (done)".into(),
        )
        .by(Some(&by));
        let notice = Notice::from_timeline(&entry).unwrap();
        let message = Message { notice, count: 1 };
        let json = payload(NotificationFormat::Json, &message, None);
        assert_eq!(
            json["who"],
            "AuthorizeSecurityGroupIngress by arn:aws:iam::123456789012:user/console-admin from 203.0.113.7 at 2026-12-07T14:02:03Z"
        );
        let slack = payload(NotificationFormat::Slack, &message, None);
        let text = slack["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(text.contains("_who:_ AuthorizeSecurityGroupIngress by arn:aws:iam::123456789012:user/console-admin"), "{text}");
        // A queue failing or working again is an `event-queue` notice.
        let failing = TimelineEvent::now(TimelineKind::QueueFailing, None, "cannot be read".into());
        assert_eq!(
            Notice::from_timeline(&failing).unwrap().event,
            NotificationEvent::EventQueue
        );
    }
}
