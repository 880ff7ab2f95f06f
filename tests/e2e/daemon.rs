//! The daemon (`ecs-reconciler run`) end to end: drift corrected within one
//! resync, YAML edits applied at once, invalid edits never replace the
//! running config, graceful SIGTERM, crash (kill -9) recovery.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Emulator, seed_text};

/// A running daemon; SIGKILLed on drop if still running.
pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
    pub audit: PathBuf,
    /// The status server's address.
    pub listen: String,
}

impl Daemon {
    pub fn start(emu: &Emulator, config: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(emu, config, extra, &[])
    }

    /// Starts a copy with extra environment (e.g. the task metadata URI
    /// that places it inside one ECS task).
    pub fn start_with_env(
        emu: &Emulator,
        config: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = PathBuf::from(config).parent().unwrap().to_path_buf();
        let log = dir.join(format!("daemon-{}.log", unique()));
        let audit = dir.join(format!("audit-{}.jsonl", unique()));
        let listen = free_loopback_address();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecs-reconciler"));
        emu.aws_env(&mut cmd);
        cmd.args([
            "run",
            "--config",
            config,
            "--listen",
            &listen,
            "--audit-log",
        ])
        .arg(&audit)
        .args(extra)
        .env("ECS_RECONCILER_LOG", "info")
        .env("ECS_RECONCILER_LOG_FORMAT", "json")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
        let child = cmd.spawn().expect("start daemon");
        Daemon {
            child: Some(child),
            log,
            audit,
            listen,
        }
    }

    /// GETs a path of the status server: (HTTP code, JSON body).
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let (code, body) = self.get_text(path);
        (
            code,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// GETs a path of the status server: (HTTP code, body text).
    pub fn get_text(&self, path: &str) -> (u16, String) {
        crate::harness::http(&self.listen, "GET", path, None)
    }

    /// Reads the event stream until `want` events arrived (bounded).
    pub fn sse(&self, want: usize) -> Vec<(String, serde_json::Value)> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(&self.listen).expect("status server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut events = Vec::new();
        let mut name = String::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(event) = line.strip_prefix("event: ") {
                name = event.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                events.push((name.clone(), serde_json::from_str(data).unwrap_or_default()));
                if events.len() >= want {
                    break;
                }
            }
        }
        events
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The complete audit lines (a line still being appended, without its
    /// newline yet, is left for the next read).
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.audit).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the daemon to exit; returns its code and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        while start.elapsed() < limit {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return (status.code(), start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon did not exit within {limit:?}:\n{}", self.logs());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback address with a port free right now.
fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Polls until `plan` reports no drift; returns how long it took.
pub(crate) fn wait_converged(
    emu: &Emulator,
    config: &str,
    limit: Duration,
    what: &str,
    daemon: &Daemon,
) -> Duration {
    let start = Instant::now();
    loop {
        let plan = emu.reconciler(&["plan", "--config", config]);
        if plan.code == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not corrected within {limit:?}:\n{}\n--- daemon log ---\n{}",
            plan.stdout,
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `text` to `path` the way editors do: a temp file renamed over it.
pub(crate) fn atomic_write(path: &str, text: &str) {
    let tmp = format!("{path}.tmp-{}", unique());
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const RESYNC: Duration = Duration::from_secs(2);

pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// How long after `since` the audit trail recorded `action`.
fn applied_after(daemon: &Daemon, action: &str, since: f64) -> Duration {
    let line = daemon
        .audit_lines()
        .into_iter()
        .find(|l| l["action"] == action && l["time"].as_f64().unwrap() >= since)
        .unwrap_or_else(|| panic!("no {action} in the audit log after the edit"));
    Duration::from_secs_f64(line["time"].as_f64().unwrap() - since)
}

#[test]
fn running_daemon_corrects_every_drift_within_one_resync() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    let daemon = Daemon::start(&emu, &config, &["--resync", "2s"]);
    wait_converged(&emu, &config, Duration::from_secs(10), "startup", &daemon);
    emu.wait_for("ready", |_| daemon.get("/readyz").0 == 200);
    let health = Command::new(env!("CARGO_BIN_EXE_ecs-reconciler"))
        .args(["healthcheck", "--listen", &daemon.listen])
        .status()
        .unwrap();
    assert_eq!(health.code(), Some(0));
    let (code, status) = daemon.get("/api/v1/status");
    assert_eq!(code, 200);
    assert_eq!(status["leadership"]["role"], "leader");
    assert!(
        status["addresses"][0]["dnsName"]
            .as_str()
            .unwrap()
            .contains("nestjs-api-alb"),
        "{status}"
    );

    type Inject = &'static [&'static [&'static str]];
    let drifts: &[(&str, Inject)] = &[
        (
            "scaled to 5",
            &[&["scale", "nestjs-cluster", "nestjs-api", "5"]],
        ),
        (
            "scaled to 0",
            &[&["scale", "nestjs-cluster", "nestjs-api", "0"]],
        ),
        (
            "port 80 revoked",
            &[&[
                "revoke-ingress",
                "LoadBalancerGroup",
                "tcp",
                "80",
                "80",
                "--cidr",
                "0.0.0.0/0",
            ]],
        ),
        (
            "port 22 opened on both groups",
            &[
                &[
                    "authorize-ingress",
                    "LoadBalancerGroup",
                    "tcp",
                    "22",
                    "22",
                    "--cidr",
                    "0.0.0.0/0",
                ],
                &[
                    "authorize-ingress",
                    "EC2InstanceWithLoadBalancer",
                    "tcp",
                    "22",
                    "22",
                    "--cidr",
                    "0.0.0.0/0",
                ],
            ],
        ),
        (
            "ALB source rule revoked",
            &[&[
                "revoke-ingress",
                "EC2InstanceWithLoadBalancer",
                "tcp",
                "32768",
                "65535",
                "--source-group",
                "LoadBalancerGroup",
            ]],
        ),
        (
            "instance group detached",
            &[&[
                "detach-instance-group",
                "EC2InstanceWithLoadBalancer",
                "--index",
                "1",
            ]],
        ),
        (
            "ALB group detached",
            &[&["detach-lb-group", "nestjs-api-alb", "LoadBalancerGroup"]],
        ),
        (
            "target deregistered",
            &[&["deregister-target", "nestjs-api-tg", "--index", "0"]],
        ),
        (
            "rogue target",
            &[&["register-target", "nestjs-api-tg", "1", "41000"]],
        ),
        (
            "stale target",
            &[&["stop-task-leaving-target", "nestjs-cluster", "nestjs-api"]],
        ),
        (
            "health check path",
            &[&["set-health-check-path", "nestjs-api-tg", "/debug"]],
        ),
    ];
    // One resync (with its 10% jitter), plus the pass itself and the
    // emulator's scheduler delay for ECS-side effects.
    let limit = RESYNC.mul_f64(1.1) + Duration::from_secs(3);
    let mut latencies = Vec::new();
    for (what, calls) in drifts {
        for call in *calls {
            emu.awsctl(call);
        }
        // Let ECS-side effects land first (a stopped task is DEACTIVATING
        // for the emulator's scheduler delay before its target is stale),
        // so "converged" cannot be read before the drift is visible.
        let injected = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        wait_converged(&emu, &config, limit, what, &daemon);
        latencies.push((what, injected.elapsed()));
    }
    eprintln!("drift → corrected (resync {RESYNC:?}): {latencies:?}");

    // Metrics: corrections counted, every name the Grafana board and the
    // alert rules use is exported.
    let (code, metrics) = daemon.get_text("/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("ecs_reconciler_is_leader 1"), "{metrics}");
    let corrected: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ecs_reconciler_drift_corrected_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(corrected >= drifts.len() as f64, "{corrected}");
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        for forbidden in ["\"i-", "\"sgr-", "\"sg-", "arn:aws", "127.0.0.1"] {
            assert!(!line.contains(forbidden), "unbounded label value in {line}");
        }
    }
    let repo = env!("CARGO_MANIFEST_DIR");
    let used = std::fs::read_to_string(format!("{repo}/deploy/grafana/ecs-reconciler.json"))
        .unwrap()
        + &std::fs::read_to_string(format!("{repo}/deploy/prometheus/alerts.yaml")).unwrap();
    let mut names: Vec<&str> = used
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            [
                "controller_runtime_",
                "workqueue_",
                "ecs_reconciler_",
                "aws_api_",
                "process_",
            ]
            .iter()
            .any(|p| w.starts_with(p))
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 15, "{names:?}");
    for name in names {
        // Exported only with --events-queue (checked in tests/e2e/events.rs).
        if name == "ecs_reconciler_event_queue_up" {
            continue;
        }
        let exported = metrics
            .lines()
            .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(exported, "{name} is used by deploy/ but not exported");
    }

    // The event stream: the status first, then the timeline replay, which
    // holds the corrections.
    let events = daemon.sse(20);
    assert_eq!(events[0].0, "status");
    assert!(
        events[0].1["daemon"]["units"]["service/nestjs-cluster/nestjs-api"]["live"]["desiredCount"]
            == 2
    );
    assert!(
        events[0].1["api"]["ec2"]["calls"].as_u64().unwrap() > 0,
        "{}",
        events[0].1
    );
    assert!(
        events
            .iter()
            .any(|(kind, e)| kind == "timeline" && e["kind"] == "action"),
        "{events:?}"
    );
    // Every correction is in the audit trail with its reason and result.
    let audit = daemon.audit_lines();
    assert!(audit.len() >= drifts.len(), "{audit:?}");
    for line in &audit {
        assert_eq!(line["result"], "applied", "{line}");
        assert!(!line["reason"].as_str().unwrap().is_empty());
        assert!(line["time"].as_f64().unwrap() > 0.0);
    }
    assert!(
        audit
            .iter()
            .any(|l| l["action"] == "revoke-ingress" && l["before"] == "tcp 22 from 0.0.0.0/0")
    );
}

#[test]
fn yaml_edits_apply_at_once_and_invalid_edits_never_replace_the_running_config() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    // A resync well above the edit target: what happens within 2 s of an
    // edit is the edit's doing, not the resync's.
    let daemon = Daemon::start(&emu, &config, &["--resync", "6s"]);
    wait_converged(&emu, &config, Duration::from_secs(10), "startup", &daemon);

    // replicas 2 → 3, saved by rename. Latency = audit time of the change
    // minus the time of the rename.
    let written = unix_now();
    atomic_write(&config, &seed_text().replace("replicas: 2", "replicas: 3"));
    emu.wait_for("desiredCount 3", |emu| {
        emu.ctl("show")["service"]["desiredCount"] == 3
    });
    let scaled = applied_after(&daemon, "scale-service", written);

    // A new ingress rule.
    let with_https = seed_text().replace("replicas: 2", "replicas: 3").replace(
        "        description: HTTP from anywhere\n",
        "        description: HTTP from anywhere\n      - protocol: tcp\n        ports: 443\n        cidr: 0.0.0.0/0\n",
    );
    let written = unix_now();
    atomic_write(&config, &with_https);
    emu.wait_for("port 443 rule", |emu| {
        emu.ctl("show")["ingress_rules"]["LoadBalancerGroup"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["from"] == 443)
    });
    let authorized = applied_after(&daemon, "authorize-ingress", written);
    eprintln!("edit → applied: replicas {scaled:?}, ingress rule {authorized:?}");
    assert!(
        scaled < Duration::from_secs(2),
        "replicas edit took {scaled:?}"
    );
    assert!(
        authorized < Duration::from_secs(2),
        "rule edit took {authorized:?}"
    );

    // An invalid edit: logged with file:line:col, the last good config
    // keeps running (it still scales the service back to 3).
    let invalid = with_https.replacen("cidr: 0.0.0.0/0", "cidr: 0.0.0.0/33", 1);
    let (line, text) = invalid
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("0.0.0.0/33"))
        .unwrap();
    let position = format!(
        "{config}:{}:{}",
        line + 1,
        text.find("0.0.0.0/33").unwrap() + 1
    );
    atomic_write(&config, &invalid);
    emu.wait_for("invalid config reported", |_| {
        daemon.logs().contains(&position)
    });
    emu.ctl("scale nestjs-cluster nestjs-api 1");
    emu.wait_for("last good config still enforced", |emu| {
        emu.ctl("show")["service"]["desiredCount"] == 3
    });

    // Fixing the file clears the error and applies the fix.
    atomic_write(&config, &with_https.replace("replicas: 3", "replicas: 2"));
    emu.wait_for("fixed config applied", |emu| {
        emu.ctl("show")["service"]["desiredCount"] == 2
    });
}

#[test]
fn sigterm_mid_pass_exits_0_before_the_deadline_and_leaves_nothing_half_done() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    // Slow mutating calls so SIGTERM lands inside a pass.
    for operation in [
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
        "ModifyInstanceAttribute",
    ] {
        emu.awsctl(&[
            "faults",
            "add",
            "--service",
            "ec2",
            "--operation",
            operation,
            "--kind",
            "latency",
            "--latency-ms",
            "800",
        ]);
    }
    emu.ctl("revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0");
    emu.ctl("authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0");
    emu.ctl("detach-instance-group EC2InstanceWithLoadBalancer --index 0");
    let mut daemon = Daemon::start(
        &emu,
        &config,
        &["--resync", "30s", "--shutdown-timeout", "5s"],
    );
    emu.wait_for("a mutating call in flight", |emu| {
        emu.ctl("calls")
            .get("ec2:AuthorizeSecurityGroupIngress")
            .is_some()
    });
    daemon.signal("TERM");
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", daemon.logs());
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    // The next start (here: one pass) finishes whatever was left.
    emu.ctl("faults clear");
    let apply = emu.reconciler(&["apply", "--config", &config, "--once"]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
}

#[test]
fn kill_9_mid_apply_then_restart_converges_without_duplicates() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    emu.ctl(
        "faults add --service elbv2 --operation RegisterTargets --kind latency --latency-ms 1500",
    );
    emu.ctl("deregister-target nestjs-api-tg --index 0");
    emu.ctl("revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0");
    emu.ctl("register-target nestjs-api-tg 0 42000");
    let mut daemon = Daemon::start(&emu, &config, &["--resync", "2s"]);
    emu.wait_for("RegisterTargets in flight", |emu| {
        emu.ctl("calls").get("elbv2:RegisterTargets").is_some()
    });
    daemon.signal("KILL");
    daemon.wait_exit(Duration::from_secs(5));
    emu.ctl("faults clear");

    let daemon = Daemon::start(&emu, &config, &["--resync", "2s"]);
    wait_converged(
        &emu,
        &config,
        Duration::from_secs(15),
        "after restart",
        &daemon,
    );
    let show = emu.ctl("show");
    let rules = show["ingress_rules"]["LoadBalancerGroup"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let mut live: Vec<(String, i64)> = show["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] != "draining")
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["port"].as_i64().unwrap(),
            )
        })
        .collect();
    let count = live.len();
    live.sort();
    live.dedup();
    assert_eq!(live.len(), count, "duplicate targets");
    assert_eq!(count, 2, "{show}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    // A pass that would take long: every observation call is slow.
    emu.ctl("faults add --service ec2 --operation DescribeSecurityGroups --kind latency --latency-ms 8000");
    let mut daemon = Daemon::start(&emu, &config, &["--shutdown-timeout", "20s"]);
    emu.wait_for("a pass in flight", |emu| {
        emu.ctl("calls").get("ec2:DescribeSecurityGroups").is_some()
    });
    daemon.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal("INT");
    let (code, took) = daemon.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(130), "{}", daemon.logs());
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// Edits the file to empty the ALB group's rule list (1 → 0, a drastic
/// edit) and waits until the daemon holds it for confirmation.
pub(crate) fn empty_the_alb_group_and_wait_for_the_hold(
    emu: &Emulator,
    config: &str,
    daemon: &Daemon,
) {
    let emptied = seed_text().replace(
        "    ingress:\n      - protocol: tcp\n        ports: 80\n        cidr: 0.0.0.0/0\n        description: HTTP from anywhere\n",
        "    ingress: []\n",
    );
    assert_ne!(emptied, seed_text());
    atomic_write(config, &emptied);
    emu.wait_for("the edit awaits confirmation", |_| {
        let (_, status) = daemon.get("/api/v1/status");
        status["daemon"]["awaiting_confirmation"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
}

#[test]
fn a_drastic_edit_is_held_until_sigusr1_confirms_it() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    let daemon = Daemon::start(&emu, &config, &["--resync", "1s"]);
    wait_converged(&emu, &config, Duration::from_secs(10), "startup", &daemon);

    empty_the_alb_group_and_wait_for_the_hold(&emu, &config, &daemon);
    // Several complete, agreeing observations later, the rule is still there.
    let http_rules = |emu: &Emulator| {
        // A group without ingress rules is absent from `show`.
        emu.ctl("show")["ingress_rules"]["LoadBalancerGroup"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let passes = |daemon: &Daemon| {
        daemon.get("/api/v1/status").1["daemon"]["passes"]
            .as_u64()
            .unwrap()
    };
    let before = passes(&daemon);
    emu.wait_for("three more passes", |_| passes(&daemon) >= before + 3);
    assert_eq!(http_rules(&emu), 1, "{}", daemon.logs());
    let (_, status) = daemon.get("/api/v1/status");
    let unit = &status["daemon"]["units"]["security-group/LoadBalancerGroup"];
    assert!(
        unit["drift"].as_array().unwrap().iter().any(
            |c| c["disposition"] == "held" && c["reason"].as_str().unwrap().contains("SIGUSR1")
        ),
        "{unit:#}"
    );

    // The operator confirms.
    daemon.signal("USR1");
    emu.wait_for("the confirmed revoke", |emu| http_rules(emu) == 0);
    emu.wait_for("nothing awaits", |_| {
        daemon.get("/api/v1/status").1["daemon"]["awaiting_confirmation"]
            .as_array()
            .is_some_and(Vec::is_empty)
    });
    assert!(
        daemon
            .logs()
            .contains("an operator confirmed every held removal")
    );
}

/// SIGHUP is one control (`Control::Reload`, src/signals.rs) with two
/// effects: the file is re-read and re-validated, and every resource is
/// re-checked at once — here a drift that no resync would see for an hour.
#[test]
fn sighup_rereads_the_file_and_rechecks_every_resource_at_once() {
    let emu = Emulator::start();
    let config = emu.write_config("seed.yaml", &seed_text());
    let daemon = Daemon::start(&emu, &config, &["--resync", "1h"]);
    wait_converged(&emu, &config, Duration::from_secs(10), "startup", &daemon);
    let status = |daemon: &Daemon| daemon.get("/api/v1/status").1;
    emu.wait_for("the startup pass is published", |_| {
        status(&daemon)["daemon"]["passes"].as_u64() >= Some(1)
    });
    let attempted = |daemon: &Daemon| {
        status(daemon)["config"]["last_attempt_at_unix"]
            .as_f64()
            .unwrap()
    };
    let read_before = attempted(&daemon);
    let passes_before = status(&daemon)["daemon"]["passes"].as_u64().unwrap();

    emu.ctl("scale nestjs-cluster nestjs-api 4");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        status(&daemon)["daemon"]["passes"].as_u64().unwrap(),
        passes_before,
        "nothing but the signal may start a pass"
    );
    daemon.signal("HUP");
    emu.wait_for("the drift corrected by the signal's pass", |emu| {
        emu.ctl("show")["service"]["desiredCount"] == 2
    });
    emu.wait_for("the file re-read", |_| attempted(&daemon) > read_before);
    let logs = daemon.logs();
    assert!(logs.contains("reload requested"), "{logs}");
    assert!(
        logs.contains("config file re-validated: unchanged"),
        "{logs}"
    );
}
