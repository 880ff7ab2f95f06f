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
