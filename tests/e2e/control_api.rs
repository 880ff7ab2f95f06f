//! Operating a daemon without a shell (issue 18): `sync` asks for a pass at
//! once over the authenticated control API and waits for its result;
//! `confirm` releases held removals like SIGUSR1; wrong tokens do nothing.

use std::time::{Duration, Instant};

use crate::daemon::{Daemon, empty_the_alb_group_and_wait_for_the_hold, wait_converged};
use crate::harness::{Emulator, seed_text};

const TOKEN: &str = "e2e-0123456789abcdef0123456789";

/// The seed, a token file beside it, and a daemon with the control API on
/// and a 5-minute resync: nothing happens by itself for a while.
fn start(emu: &Emulator) -> (String, String, Daemon) {
    let config = emu.write_config("seed.yaml", &seed_text());
    let token = emu.write_config("control-token", &format!("{TOKEN}\n"));
    let daemon = Daemon::start(
        emu,
        &config,
        &["--resync", "5m", "--control-token-file", &token],
    );
    wait_converged(emu, &config, Duration::from_secs(10), "startup", &daemon);
    emu.wait_for("the startup pass is published", |_| {
        daemon.get("/api/v1/status").1["daemon"]["passes"].as_u64() >= Some(1)
    });
    (config, token, daemon)
}

fn url(daemon: &Daemon) -> String {
    format!("http://{}", daemon.listen)
}

#[test]
fn sync_with_a_five_minute_resync_corrects_a_drift_within_a_second_and_says_so() {
    let emu = Emulator::start();
    let (_, token, daemon) = start(&emu);
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");

    let started = Instant::now();
    let run = emu.reconciler(&[
        "sync",
        "--url",
        &url(&daemon),
        "--token-file",
        &token,
        "--resource",
        "security-group/LoadBalancerGroup",
        "--wait",
    ]);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("converged"), "{}", run.stdout);
    eprintln!("sync --wait answered in {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let rules = emu.ctl("show")["ingress_rules"]["LoadBalancerGroup"].clone();
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{rules}");

    // Who asked is in the audit log and on the timeline.
    let audit = daemon.audit_lines();
    let request = audit
        .iter()
        .find(|l| l["action"] == "reconcile")
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert_eq!(request["origin"]["via"], "api");
    assert_eq!(
        request["resources"],
        serde_json::json!(["security-group/LoadBalancerGroup"])
    );
    assert!(daemon.logs().contains("reconcile requested"));

    // Without --wait: accepted at once, exit 0.
    let run = emu.reconciler(&["sync", "--url", &url(&daemon), "--token-file", &token]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("every resource"), "{}", run.stdout);
}

#[test]
fn wrong_or_missing_tokens_and_unknown_resources_are_refused() {
    let emu = Emulator::start();
    let (_, token, daemon) = start(&emu);
    let wrong = emu.write_config("wrong-token", "not-the-token-0123456789\n");
    let passes = |daemon: &Daemon| daemon.get("/api/v1/status").1["daemon"]["passes"].as_u64();
    let before = passes(&daemon);

    let run = emu.reconciler(&["sync", "--url", &url(&daemon), "--token-file", &wrong]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("answered 401"), "{}", run.stderr);
    let run = emu.reconciler(&["confirm", "--url", &url(&daemon), "--token-file", &wrong]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = emu.reconciler(&["sync", "--url", &url(&daemon)]);
    assert_eq!(run.code, 64, "no token at all: {}", run.stderr);
    let run = emu.reconciler(&[
        "sync",
        "--url",
        &url(&daemon),
        "--token-file",
        &token,
        "--resource",
        "security-group/nope",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("answered 404"), "{}", run.stderr);

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(passes(&daemon), before, "nothing ran");
    let (_, metrics) = daemon.get_text("/metrics");
    assert!(
        metrics.contains(
            "ecs_reconciler_control_requests_total{endpoint=\"reconcile\",result=\"unauthorized\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        daemon
            .audit_lines()
            .iter()
            .all(|l| l["action"] != "reconcile" && l["action"] != "confirm"),
        "refused requests are not audited as accepted"
    );
}

#[test]
fn confirm_over_http_releases_a_held_drastic_edit() {
    let emu = Emulator::start();
    let (config, token, daemon) = start(&emu);
    empty_the_alb_group_and_wait_for_the_hold(&emu, &config, &daemon);
    let rules = |emu: &Emulator| {
        emu.ctl("show")["ingress_rules"]["LoadBalancerGroup"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(rules(&emu), 1);

    let run = emu.reconciler(&["confirm", "--url", &url(&daemon), "--token-file", &token]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 drastic edits"), "{}", run.stdout);
    emu.wait_for("the confirmed revoke", |emu| rules(emu) == 0);
    let audit = daemon.audit_lines();
    assert!(
        audit
            .iter()
            .any(|l| l["action"] == "confirm" && l["origin"]["via"] == "api"),
        "{audit:?}"
    );
    let (_, status) = daemon.get("/api/v1/status");
    assert!(
        status["daemon"]["awaiting_confirmation"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}
