//! Notifications end to end inside the runtime: timeline entries and the
//! status become webhook messages — one per event kind, a flood coalesced
//! into one message with a count — and a webhook that fails or hangs
//! delays nothing but its own messages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecs_reconciler_plan::UnitId;
use ecs_reconciler_runtime::metrics::Metrics;
use ecs_reconciler_runtime::notify;
use ecs_reconciler_runtime::reload::LoadedConfig;
use ecs_reconciler_runtime::status::{DaemonStatus, UnitState, UnitStatus};
use ecs_reconciler_runtime::timeline::{Timeline, TimelineEvent, TimelineKind, unix_now};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    Fail,
    Hang,
}

/// A local webhook receiver: its URL and the bodies it got.
async fn receiver(behaviour: Behaviour) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook/secret-path", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                let body = loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body[..len].to_string();
                        }
                    }
                };
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                let answer = match behaviour {
                    Behaviour::Ok => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                    Behaviour::Fail => {
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                    }
                    Behaviour::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                };
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, got)
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "ecs-reconciler-notify-{}-{}",
        std::process::id(),
        unix_now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn config(dir: &TempDir, hooks: &[(&str, &str, &str)]) -> LoadedConfig {
    let mut text =
        String::from("securityGroups:\n  - name: web\n    ingress: []\nnotifications:\n");
    for (name, url, events) in hooks {
        let file = dir.0.join(name);
        std::fs::write(&file, format!("{url}\n")).unwrap();
        text.push_str(&format!(
            "  - name: {name}\n    url: {{file: {}}}\n    events: [{events}]\n    coalesceSeconds: 1\n    readFailingAfterSeconds: 30\n",
            file.display()
        ));
    }
    LoadedConfig {
        desired: Arc::new(ecs_reconciler_spec::load(&text).expect("valid")),
        hash: "h".into(),
        generation: 1,
    }
}

fn entry(kind: TimelineKind, unit: Option<UnitId>, message: &str) -> TimelineEvent {
    TimelineEvent::now(kind, unit, message.into()).because("the plan's reason")
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_is_told_a_flood_is_one_message_and_a_bad_webhook_delays_only_itself() {
    let dir = temp_dir();
    let (good_url, good) = receiver(Behaviour::Ok).await;
    let (failing_url, failing) = receiver(Behaviour::Fail).await;
    let (hanging_url, hanging) = receiver(Behaviour::Hang).await;
    let all = "drift-corrected, removals-held, fight-detected, config-rejected, leadership-changed, read-failing";
    let (_config_tx, config_rx) = watch::channel(config(
        &dir,
        &[
            ("good", &good_url, all),
            ("failing", &failing_url, "leadership-changed"),
            ("hanging", &hanging_url, all),
        ],
    ));
    let timeline = Arc::new(Timeline::default());
    let (status_tx, status_rx) = watch::channel(DaemonStatus::default());
    let (metrics, _registry) = Metrics::new("test");
    let shutdown = CancellationToken::new();
    let task = notify::spawn(
        config_rx,
        timeline.clone(),
        status_rx,
        metrics.clone(),
        Some("https://ops.example.test".into()),
        shutdown.clone(),
    );
    // Let it subscribe before anything happens.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let api = UnitId::service("c", "api");
    let web = UnitId::security_group("web");
    timeline.push(entry(
        TimelineKind::Action,
        Some(api.clone()),
        "scale-service service/c/api: desiredCount 5 -> desiredCount 2 (done)",
    ));
    timeline.push(entry(
        TimelineKind::Held,
        Some(web.clone()),
        "2 removals held over the cap",
    ));
    timeline.push(entry(
        TimelineKind::Fight,
        Some(api.clone()),
        "another writer keeps undoing desiredCount",
    ));
    timeline.push(entry(
        TimelineKind::ConfigRejected,
        None,
        "invalid config kept out: seed.yaml:3:9: error: bad",
    ));
    timeline.push(entry(TimelineKind::Leadership, None, "this copy leads"));
    // Not a notification kind: ignored.
    timeline.push(entry(TimelineKind::Drift, Some(web.clone()), "drift found"));
    // A flood on one resource: one message with a count. The loop's
    // pushes never wait, whatever the webhooks do.
    let started = std::time::Instant::now();
    for i in 0..50 {
        timeline.push(entry(
            TimelineKind::Action,
            Some(web.clone()),
            &format!("revoke-ingress security-group/web: rule {i} -> absent (done)"),
        ));
    }
    let pushing = started.elapsed();
    // A resource failing for longer than 30 s.
    let mut failing_unit = UnitStatus::new(UnitId::cluster("c"));
    failing_unit.state = UnitState::Error;
    failing_unit.last_error = Some("ec2 DescribeInstances was denied".into());
    failing_unit.last_success_unix = Some(unix_now() - 100.0);
    failing_unit.last_pass_unix = unix_now();
    status_tx.send_modify(|s| {
        s.units.insert(UnitId::cluster("c"), failing_unit);
    });

    wait_until("the good webhook's seven messages", || {
        good.lock().unwrap().len() >= 7
    })
    .await;
    let messages = good.lock().unwrap().clone();
    let by = |event: &str, resource: Option<&str>| -> Value {
        messages
            .iter()
            .find(|m| m["event"] == event && m["resource"].as_str() == resource)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} for {resource:?}: {messages:#?}"))
    };
    let flood = by("drift-corrected", Some("security-group/web"));
    assert_eq!(flood["count"], 50, "{flood}");
    assert!(
        flood["message"].as_str().unwrap().contains("rule 49"),
        "the last one: {flood}"
    );
    assert_eq!(flood["why"], "the plan's reason");
    assert_eq!(
        flood["dashboard"],
        "https://ops.example.test/#u-security-group_web"
    );
    assert_eq!(by("drift-corrected", Some("service/c/api"))["count"], 1);
    by("removals-held", Some("security-group/web"));
    by("fight-detected", Some("service/c/api"));
    by("config-rejected", None);
    by("leadership-changed", None);
    let failing_msg = by("read-failing", Some("cluster/c"));
    assert!(failing_msg["why"].as_str().unwrap().contains("denied"));
    assert_eq!(
        messages.len(),
        7,
        "nothing else, nothing twice: {messages:#?}"
    );

    // The hanging webhook got its first message and is still stuck on it;
    // the 500 one is retried, then given up and counted.
    assert!(hanging.lock().unwrap().len() <= 1);
    wait_until("the failing webhook's three attempts", || {
        failing.lock().unwrap().len() >= 3
    })
    .await;
    wait_until("the failure counted", || {
        metrics
            .notification_totals()
            .get("failing")
            .and_then(|t| t.get("failed"))
            .copied()
            == Some(1)
    })
    .await;
    let totals = metrics.notification_totals();
    assert_eq!(totals["good"]["sent"], 7, "{totals:?}");
    assert_eq!(
        totals["hanging"].get("sent").copied().unwrap_or(0),
        0,
        "{totals:?}"
    );
    eprintln!("50 timeline pushes with three webhooks attached took {pushing:?}");
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_whose_url_cannot_be_read_is_left_out_and_counted() {
    let dir = temp_dir();
    let mut loaded = config(
        &dir,
        &[("missing", "http://127.0.0.1:9/x", "leadership-changed")],
    );
    std::fs::remove_file(dir.0.join("missing")).unwrap();
    loaded.generation = 2;
    let (_config_tx, config_rx) = watch::channel(loaded);
    let (_status_tx, status_rx) = watch::channel(DaemonStatus::default());
    let (metrics, _registry) = Metrics::new("test");
    let shutdown = CancellationToken::new();
    let task = notify::spawn(
        config_rx,
        Arc::default(),
        status_rx,
        metrics.clone(),
        None,
        shutdown.clone(),
    );
    wait_until("the unresolved webhook counted", || {
        metrics
            .notification_totals()
            .get("missing")
            .and_then(|t| t.get("unresolved"))
            .copied()
            == Some(1)
    })
    .await;
    shutdown.cancel();
    task.await.unwrap();
}
