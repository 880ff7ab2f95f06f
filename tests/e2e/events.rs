//! Event-driven drift detection end to end (issue 17): the emulator puts
//! CloudTrail and ECS events on its bus, the rules of the shipped
//! `deploy/events/template.yaml` route them to an SQS queue, and the daemon
//! (resync 5 minutes) corrects the drift in about a second and says who
//! made it — in the status, the timeline, the audit line and the log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::daemon::{Daemon, wait_converged};
use crate::harness::{Emulator, repo, seed_text};

const CONSOLE_KEY: &str = "AKIACONSOLEADMIN";
const CONSOLE_ARN: &str = "arn:aws:iam::123456789012:user/console-admin";

/// Turns the emulator's events on through the shipped template; the
/// queue's URL.
fn events_on(emu: &Emulator, settings: &Value) -> String {
    let mut body = json!({
        "enabled": true,
        "delay": 0.5,
        "identities": {
            CONSOLE_KEY: {"arn": CONSOLE_ARN, "source_ip": "203.0.113.7"},
            "test": {"arn": "arn:aws:sts::123456789012:assumed-role/ecs-reconciler/task"}
        },
        "stack": {
            "template": repo().join("deploy/events/template.yaml"),
            "parameters": {"ClusterArns": "arn:aws:ecs:us-east-1:123456789012:cluster/nestjs-cluster"}
        }
    });
    for (key, value) in settings.as_object().unwrap() {
        body[key] = value.clone();
    }
    let doc = emu.control("POST", "events", Some(&body));
    doc["queue_url"]
        .as_str()
        .expect("the stack's QueueUrl")
        .to_string()
}

fn queue_state(daemon: &Daemon) -> Value {
    daemon.get("/api/v1/status").1["daemon"]["event_queue"].clone()
}

#[test]
fn drift_is_corrected_as_its_event_arrives_and_the_correction_says_who() {
    let emu = Emulator::start();
    let queue = events_on(&emu, &json!({}));
    let config = emu.write_config("seed.yaml", &seed_text());
    let daemon = Daemon::start(
        &emu,
        &config,
        &["--events-queue", &queue, "--events-resync", "5m"],
    );
    wait_converged(&emu, &config, Duration::from_secs(20), "startup", &daemon);
    emu.wait_for("the queue is read", |_| {
        queue_state(&daemon)["health"]["state"] == "receiving"
    });
    assert_eq!(queue_state(&daemon)["resync_seconds"], 300.0);

    // Someone opens SSH to the world on the load balancer's group.
    let opened = Instant::now();
    emu.ctl_as(
        CONSOLE_KEY,
        "authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0",
    );
    emu.wait_for("the revoke, attributed to its caller", |_| {
        daemon
            .audit_lines()
            .iter()
            .any(|l| l["action"] == "revoke-ingress" && l["cause"]["arn"] == CONSOLE_ARN)
    });
    let corrected = opened.elapsed();
    // The next resync is at least 25 s away (the first one after start is
    // 30 s, then 5 minutes): only the event can have caused this pass.
    assert!(
        corrected < Duration::from_secs(10),
        "corrected {corrected:?} after the change"
    );
    let line = daemon
        .audit_lines()
        .into_iter()
        .find(|l| l["cause"]["arn"] == CONSOLE_ARN)
        .unwrap();
    assert_eq!(line["cause"]["call"], "AuthorizeSecurityGroupIngress");
    assert_eq!(line["cause"]["source_ip"], "203.0.113.7");
    assert!(
        line["cause"]["at"].as_str().unwrap().ends_with('Z'),
        "{line}"
    );

    let status = daemon.get("/api/v1/status").1;
    let unit = &status["daemon"]["units"]["security-group/LoadBalancerGroup"];
    assert_eq!(unit["changed_by"]["arn"], CONSOLE_ARN, "{unit}");
    assert_eq!(unit["verified_by"], "event", "{unit}");
    assert!(
        daemon
            .logs()
            .contains("corrected a change another caller made")
            && daemon.logs().contains(CONSOLE_ARN),
        "the log says who"
    );
    let timeline = daemon.sse(8);
    assert!(
        timeline
            .iter()
            .any(|(_, e)| e["kind"] == "action" && e["by"]["arn"] == CONSOLE_ARN),
        "the timeline says who: {timeline:?}"
    );

    // The daemon's own revoke comes back as an event: it triggers nothing.
    emu.wait_for("its own write's event is recognised", |_| {
        queue_state(&daemon)["ignored"]["own-write"].as_u64() >= Some(1)
    });

    // A hand-made scale sends no ECS event, only its CloudTrail record.
    let scaled = Instant::now();
    emu.ctl_as(CONSOLE_KEY, "scale nestjs-cluster nestjs-api 5");
    emu.wait_for("the scale is undone, attributed", |_| {
        daemon
            .audit_lines()
            .iter()
            .any(|l| l["action"] == "scale-service" && l["cause"]["call"] == "UpdateService")
    });
    assert!(
        scaled.elapsed() < Duration::from_secs(10),
        "{:?}",
        scaled.elapsed()
    );

    // Metrics: received, triggering, ignored by reason, lag, queue up.
    let (_, metrics) = daemon.get_text("/metrics");
    for series in [
        "ecs_reconciler_events_received_total",
        "ecs_reconciler_events_triggering_total",
        "ecs_reconciler_events_ignored_total{reason=\"own-write\"}",
        "ecs_reconciler_event_lag_seconds_count",
        "ecs_reconciler_event_queue_up 1",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    // Nothing the daemon did was judged unsafe meanwhile.
    let oracle = emu.control("GET", "oracle", None);
    assert_eq!(oracle["reconciler"]["drain_cancelled"], 0, "{oracle}");
}

#[test]
fn a_missing_queue_falls_back_to_resync_and_recovers_when_it_exists() {
    let emu = Emulator::start();
    let queue = events_on(&emu, &json!({}));
    let missing = format!("{queue}-not-yet");
    let config = emu.write_config("seed.yaml", &seed_text());
    let daemon = Daemon::start(
        &emu,
        &config,
        &["--events-queue", &missing, "--resync", "2s"],
    );
    wait_converged(&emu, &config, Duration::from_secs(20), "startup", &daemon);
    emu.wait_for("the status says the queue fails", |_| {
        queue_state(&daemon)["health"]["state"] == "failing"
    });
    let state = queue_state(&daemon);
    assert_eq!(state["health"]["class"], "not-found", "{state}");
    assert_eq!(state["resync_seconds"], 2.0, "{state}");
    let (_, metrics) = daemon.get_text("/metrics");
    assert!(
        metrics.contains("ecs_reconciler_event_queue_up 0"),
        "{metrics}"
    );
    // Drift is still corrected, by the resync.
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    wait_converged(&emu, &config, Duration::from_secs(20), "by resync", &daemon);

    // The queue appears: the daemon reads it again, resync stretches.
    let name = missing.rsplit('/').next().unwrap();
    emu.boto3(&format!(
        "boto3.client('sqs', **kw).create_queue(QueueName={name:?})"
    ));
    emu.wait_for("the queue is read again", |_| {
        queue_state(&daemon)["health"]["state"] == "receiving"
    });
    assert_eq!(queue_state(&daemon)["resync_seconds"], 300.0);
}

#[test]
fn duplicated_reordered_and_lost_events_still_end_in_every_drift_corrected() {
    // At-least-once, out of order, and a share lost for good: events only
    // choose what is re-read, so every drift is corrected — the ones whose
    // event was lost by the resync, within its bound.
    let emu = Emulator::start();
    let queue = events_on(
        &emu,
        &json!({"duplicate": 0.5, "reorder": 0.5, "reorder_seconds": 2.0, "drop": 0.3, "seed": 17}),
    );
    let config = emu.write_config("seed.yaml", &seed_text());
    let daemon = Daemon::start(
        &emu,
        &config,
        &["--events-queue", &queue, "--events-resync", "15s"],
    );
    wait_converged(&emu, &config, Duration::from_secs(20), "startup", &daemon);
    emu.wait_for("the queue is read", |_| {
        queue_state(&daemon)["health"]["state"] == "receiving"
    });
    let ports: Vec<u16> = (0..8).map(|i| 2300 + i).collect();
    let started = Instant::now();
    for (i, port) in ports.iter().enumerate() {
        let group = if i % 2 == 0 {
            "LoadBalancerGroup"
        } else {
            "EC2InstanceWithLoadBalancer"
        };
        emu.ctl_as(
            CONSOLE_KEY,
            &format!("authorize-ingress {group} tcp {port} {port} --cidr 198.51.100.0/24"),
        );
    }
    emu.wait_for("every rule revoked", |_| {
        let revoked: Vec<String> = daemon
            .audit_lines()
            .iter()
            .filter(|l| l["action"] == "revoke-ingress" && l["result"] == "applied")
            .map(|l| l["before"].as_str().unwrap_or_default().to_string())
            .collect();
        ports
            .iter()
            .all(|p| revoked.iter().any(|b| b.starts_with(&format!("tcp {p} "))))
    });
    let all = started.elapsed();
    // The resync bound: 15 s ±10%, plus a pass and the poll of this test.
    assert!(all < Duration::from_secs(35), "{all:?}");
    let counts = emu.control("GET", "events", None)["counts"].clone();
    assert!(counts["dropped"].as_u64() >= Some(1), "{counts}");
    assert!(counts["duplicated"].as_u64() >= Some(1), "{counts}");
    let state = queue_state(&daemon);
    assert!(state["ignored"]["duplicate"].as_u64() >= Some(1), "{state}");
    // Nothing was applied twice: one revoke per rule.
    let revokes = daemon
        .audit_lines()
        .iter()
        .filter(|l| l["action"] == "revoke-ingress" && l["result"] == "applied")
        .count();
    assert_eq!(revokes, ports.len());
}

#[test]
fn with_two_copies_only_the_leader_takes_events() {
    let emu = Emulator::start();
    let queue = events_on(&emu, &json!({}));
    let config = emu.write_config("seed.yaml", &seed_text());
    let tasks: Vec<String> = emu.ctl("show")["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tasks.len(), 2);
    let copies: Vec<Daemon> = tasks
        .iter()
        .map(|arn| {
            let id = arn.rsplit('/').next().unwrap();
            let uri = format!("{}/_emulator/metadata/{id}", emu.endpoint);
            Daemon::start_with_env(
                &emu,
                &config,
                &["--events-queue", &queue],
                &[("ECS_CONTAINER_METADATA_URI_V4", uri.as_str())],
            )
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(3)); // both status servers up
    let role = |d: &Daemon| d.get("/api/v1/status").1["daemon"]["leadership"]["role"].clone();
    emu.wait_for("one leader, one follower", |_| {
        let roles: Vec<Value> = copies.iter().map(role).collect();
        roles.contains(&json!("leader")) && roles.contains(&json!("follower"))
    });
    let leader = copies.iter().position(|d| role(d) == "leader").unwrap();
    emu.wait_for("the leader reads the queue", |_| {
        queue_state(&copies[leader])["health"]["state"] == "receiving"
    });
    // Several drifts: every event reaches the leader, none the follower.
    for port in [2401, 2402, 2403] {
        emu.ctl_as(
            CONSOLE_KEY,
            &format!(
                "authorize-ingress LoadBalancerGroup tcp {port} {port} --cidr 198.51.100.0/24"
            ),
        );
    }
    emu.wait_for("the leader revoked all three, attributed", |_| {
        copies[leader]
            .audit_lines()
            .iter()
            .filter(|l| l["action"] == "revoke-ingress" && l["cause"]["arn"] == CONSOLE_ARN)
            .count()
            == 3
    });
    let follower = &copies[1 - leader];
    let state = queue_state(follower);
    assert!(
        state["health"].is_null(),
        "the follower never polled: {state}"
    );
    assert_eq!(state["received"], 0, "{state}");
}
