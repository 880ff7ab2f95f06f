//! The CLI contract: exit codes, error messages with file:line:col, env
//! vars for flags, the schema command, JSON output shape.

use std::process::Command;

use crate::harness::{Emulator, seed_config};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecs-reconciler"));
    cmd.env_remove("ECS_RECONCILER_CONFIG");
    cmd
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("ecs-reconciler-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn validate_accepts_the_seed() {
    let out = bin()
        .args(["validate", "--config", &seed_config()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 security groups"));
}

#[test]
fn validate_reports_every_error_with_file_line_col_and_exits_78() {
    let text = "securityGroups:\n  - name: web\n    ingress:\n      - protocol: tcp\n        ports: 80\n        cidr: 10.0.0.0/33\n      - protocol: tpc\n        ports: 22\n        cidr: 10.0.0.0/8\n";
    let path = temp_file("bad.yaml", text);
    let out = bin()
        .args(["validate", "--config", &path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{path}:6:15")), "{stderr}");
    assert!(stderr.contains(&format!("{path}:7:")), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn empty_and_missing_files_are_errors() {
    let path = temp_file("empty.yaml", "# nothing here\n");
    let out = bin()
        .args(["validate", "--config", &path])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let out = bin()
        .args(["validate", "--config", "/nonexistent/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn config_comes_from_the_environment_too() {
    let out = bin()
        .arg("validate")
        .env("ECS_RECONCILER_CONFIG", seed_config())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn usage_errors_exit_64_not_2() {
    let out = bin().args(["plan", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = bin()
        .args(["apply", "--config", &seed_config()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--once"));
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = bin().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn plan_json_lists_kind_resource_before_after_reason() {
    let emu = Emulator::start();
    emu.ctl("scale nestjs-cluster nestjs-api 3");
    crate::drift::settle(&emu, 3);
    let plan = emu.reconciler(&["plan", "--config", &seed_config(), "--output", "json"]);
    assert_eq!(plan.code, 2);
    let json = plan.json();
    let change = &json["changes"][0];
    assert_eq!(change["kind"], "scale-service");
    assert_eq!(change["resource"], "service/nestjs-cluster/nestjs-api");
    assert_eq!(change["before"], "desiredCount 3");
    assert_eq!(change["after"], "desiredCount 2");
    assert!(
        change["reason"]
            .as_str()
            .unwrap()
            .contains("wants 2 replicas")
    );
    assert_eq!(json["summary"]["apply"], 1);
    // --dry-run plans and changes nothing.
    let dry = emu.reconciler(&["apply", "--config", &seed_config(), "--once", "--dry-run"]);
    assert_eq!(dry.code, 2, "{}{}", dry.stdout, dry.stderr);
    assert_eq!(emu.ctl("show")["service"]["desiredCount"], 3);
}

#[test]
fn unreachable_endpoint_is_one_clear_error() {
    let out = bin()
        .args([
            "plan",
            "--config",
            &seed_config(),
            "--max-attempts",
            "1",
            "--call-timeout",
            "5",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("ECS_RECONCILER_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("could not connect"), "{stdout}");
}

#[test]
fn healthcheck_fails_when_no_daemon_answers() {
    let out = bin()
        .args(["healthcheck", "--listen", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}

#[test]
fn run_refuses_an_invalid_config_at_start_with_78() {
    let path = temp_file("run-bad.yaml", "securityGroups: 3\n");
    let out = bin()
        .args(["run", "--config", &path, "--listen", "127.0.0.1:0"])
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{path}:1:")));
}

/// Runs the binary with a deadline: a command that blocks (reading a FIFO)
/// fails the test instead of hanging it.
fn output_within(mut cmd: Command, limit: std::time::Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn every_command_gives_an_unusable_file_the_same_verdict() {
    let dir = std::env::temp_dir().join(format!(
        "ecs-reconciler-cli-verdicts-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).display().to_string();

    let fifo = path("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let big = path("big.yaml");
    let mut text = b"securityGroups: []\n".to_vec();
    text.resize(4 * 1024 * 1024 + 1, b'#');
    std::fs::write(&big, text).unwrap();
    let binary = path("binary.yaml");
    std::fs::write(&binary, b"securityGroups:\n  - name: w\xffb\n").unwrap();
    let directory = dir.display().to_string();

    let cases = [
        (directory, "error: the config path is not a regular file"),
        (fifo, "error: the config path is not a regular file"),
        (big, "error: the config file is larger than 4194304 bytes"),
        (binary.clone(), "error: the file is not valid UTF-8"),
    ];
    for (file, expected) in &cases {
        let verdicts: Vec<(Option<i32>, String)> = [
            vec!["validate", "--config", file],
            vec!["plan", "--config", file],
            vec!["apply", "--once", "--config", file],
            vec!["run", "--config", file, "--listen", "127.0.0.1:0"],
        ]
        .into_iter()
        .map(|args| {
            let mut cmd = bin();
            cmd.args(&args)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .env("ECS_RECONCILER_LOG", "off");
            let out = output_within(cmd, std::time::Duration::from_secs(30));
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect();
        let (code, stderr) = &verdicts[0];
        assert_eq!(*code, Some(78), "validate {file}: {stderr}");
        assert!(stderr.contains(expected), "validate {file}: {stderr}");
        assert!(stderr.contains("\n  hint: "), "validate {file}: {stderr}");
        for (index, other) in verdicts.iter().enumerate().skip(1) {
            assert_eq!(other, &verdicts[0], "command #{index} on {file}");
        }
        // The bad byte's position: line 2, column 12.
        if file == &binary {
            assert!(
                stderr.starts_with(&format!(
                    "{binary}:2:12: error: the file is not valid UTF-8\n  hint: save the file as UTF-8"
                )),
                "{stderr}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
