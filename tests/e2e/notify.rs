//! Notifications end to end (issue 18): the daemon tells a webhook about a
//! corrected drift — what, why, a dashboard link — off its loop.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, wait_converged};
use crate::harness::{Emulator, seed_text};

/// A local webhook answering 200; its URL and the bodies it got.
fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hooks/T0/B0/secret",
        listener.local_addr().unwrap()
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming() {
            let Ok(mut socket) = socket else { return };
            socket.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = socket.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
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
                        break Some(body[..len].to_string());
                    }
                }
            };
            if let Some(body) = body {
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
            }
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn a_corrected_drift_is_told_to_a_webhook_with_what_why_and_a_link() {
    let emu = Emulator::start();
    let (url, got) = receiver();
    let text = format!(
        "{}\nnotifications:\n  - name: local\n    url: {{env: HOOK_URL}}\n    events: [drift-corrected]\n    coalesceSeconds: 1\n",
        seed_text()
    );
    let config = emu.write_config("seed.yaml", &text);
    let daemon = Daemon::start_with_env(
        &emu,
        &config,
        &[
            "--resync",
            "1s",
            "--public-url",
            "https://ops.example.test/",
        ],
        &[("HOOK_URL", &url)],
    );
    wait_converged(&emu, &config, Duration::from_secs(10), "startup", &daemon);
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    emu.wait_for("the webhook told about the revoke", |_| {
        got.lock().unwrap().iter().any(|m| {
            m["event"] == "drift-corrected"
                && m["message"].as_str().is_some_and(|t| t.contains("tcp 22"))
        })
    });
    let message = got
        .lock()
        .unwrap()
        .iter()
        .find(|m| m["message"].as_str().is_some_and(|t| t.contains("tcp 22")))
        .cloned()
        .unwrap();
    assert_eq!(message["resource"], "security-group/LoadBalancerGroup");
    assert!(
        message["message"].as_str().unwrap().contains(
            "revoke-ingress security-group/LoadBalancerGroup: tcp 22 from 0.0.0.0/0 -> absent"
        ),
        "{message}"
    );
    assert!(
        message["why"].as_str().unwrap().contains("not declared"),
        "{message}"
    );
    assert_eq!(
        message["dashboard"],
        "https://ops.example.test/#u-security-group_LoadBalancerGroup"
    );
    emu.wait_for("the status counts it", |_| {
        daemon.get("/api/v1/status").1["notifications"]["local"]["sent"].as_u64() >= Some(1)
    });
    assert!(
        !daemon.logs().contains("/hooks/T0/B0/secret"),
        "the URL's secret path is never logged"
    );
}
