//! Test harness: a private emulator per test (moto + the project's layer,
//! started on a free loopback port, stopped by PID), the real
//! `ecs-reconciler` binary pointed at it through `AWS_ENDPOINT_URL`, and
//! drift injected with direct API calls (`tests/emulator/awsctl.py`, boto3).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The emulator's Python, installed into a virtualenv on first use by the
/// project's own script.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(path) = std::env::var("ECS_RECONCILER_EMULATOR_PYTHON") {
            return PathBuf::from(path);
        }
        let out = Command::new("bash")
            .arg(repo().join("scripts/emulator-python"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/emulator-python");
        assert!(out.status.success(), "scripts/emulator-python failed");
        let text = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(text.lines().last().expect("python path").trim())
    })
}

/// What a command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: &Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// A running emulator with the seed topology; killed on drop.
pub struct Emulator {
    child: Child,
    pub endpoint: String,
    dir: PathBuf,
    /// Every call, one JSON line each, in the order the emulator answered.
    pub calls_log: PathBuf,
}

impl Emulator {
    pub fn start() -> Emulator {
        let dir = std::env::temp_dir().join(format!(
            "ecs-reconciler-e2e-{}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port_file = dir.join("port");
        let log = std::fs::File::create(dir.join("emulator.log")).expect("log file");
        // Every call the controller makes lands in a calls log, so the
        // IAM policy can be checked against the whole suite afterwards
        // (tests/iam/test_iam_policy.py).
        let calls_dir = std::env::var("ECS_RECONCILER_CALLS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-calls"));
        std::fs::create_dir_all(&calls_dir).expect("calls log dir");
        let calls_log = calls_dir.join(format!("{}-{}.jsonl", std::process::id(), unique()));
        let child = Command::new(python())
            .arg(repo().join("tests/emulator/emulator.py"))
            .arg("--calls-log")
            .arg(&calls_log)
            .args(["--host", "127.0.0.1", "--port", "0", "--seed"])
            .args(["--scheduler-delay", "0.2", "--draining-seconds", "60"])
            .arg("--port-file")
            .arg(&port_file)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start emulator");
        let mut emulator = Emulator {
            child,
            endpoint: String::new(),
            dir,
            calls_log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                emulator.endpoint = format!("http://127.0.0.1:{}", port.trim());
                break;
            }
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!("emulator exited with {status}: {}", emulator.log());
            }
            assert!(
                Instant::now() < deadline,
                "emulator did not start: {}",
                emulator.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        emulator
    }

    /// The controller's calls so far, as `service:Operation`, in order.
    pub fn reconciler_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.calls_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|call| call["client"] == "reconciler")
            .map(|call| {
                format!(
                    "{}:{}",
                    call["service"].as_str().unwrap_or("?"),
                    call["operation"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("emulator.log")).unwrap_or_default()
    }

    pub fn aws_env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("AWS_PROFILE")
            .env_remove("ECS_RECONCILER_CONFIG")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            // The emulator's reads are consistent unless a test turns its
            // read lag on (and then sets a window longer than the lag): a
            // short window keeps the suite fast and still makes every
            // target change wait for a second read.
            .env("ECS_RECONCILER_CONSISTENCY_WINDOW", CONSISTENCY_WINDOW);
    }

    /// Runs the real binary against this emulator.
    pub fn reconciler(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecs-reconciler"));
        self.aws_env(&mut cmd);
        cmd.args(args).env("ECS_RECONCILER_LOG", "warn");
        Run::from(&cmd.output().expect("run ecs-reconciler"))
    }

    /// A direct API call (boto3) through awsctl; panics when it fails.
    pub fn awsctl(&self, args: &[&str]) -> Value {
        let mut cmd = Command::new(python());
        self.aws_env(&mut cmd);
        cmd.arg(repo().join("tests/emulator/awsctl.py"))
            .args(["--endpoint", &self.endpoint])
            .args(args);
        let run = Run::from(&cmd.output().expect("run awsctl"));
        assert_eq!(run.code, 0, "awsctl {args:?}: {}{}", run.stdout, run.stderr);
        run.json()
    }

    /// Runs a boto3 snippet against this emulator (as client `other`):
    /// `ecs`, `elbv2` and `ec2` clients are defined, and whatever the
    /// snippet assigns to `out` is printed as JSON and returned. Panics
    /// when it fails.
    pub fn boto3(&self, snippet: &str) -> Value {
        let script = format!(
            "import boto3, json\n\
             kw = dict(endpoint_url={endpoint:?}, region_name='us-east-1', \
             aws_access_key_id='test', aws_secret_access_key='test')\n\
             ecs = boto3.client('ecs', **kw)\n\
             elbv2 = boto3.client('elbv2', **kw)\n\
             ec2 = boto3.client('ec2', **kw)\n\
             out = None\n\
             {snippet}\n\
             print(json.dumps(out, default=str))\n",
            endpoint = self.endpoint,
        );
        let out = Command::new(python())
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run python");
        let run = Run::from(&out);
        assert_eq!(
            run.code, 0,
            "boto3 snippet failed: {}\n{script}",
            run.stderr
        );
        run.json()
    }

    /// [`Emulator::awsctl`] as another caller: signed with `access_key`,
    /// which the emulator's CloudTrail events name (tests/emulator/events.py).
    pub fn ctl_as(&self, access_key: &str, line: &str) -> Value {
        let mut cmd = Command::new(python());
        self.aws_env(&mut cmd);
        cmd.env("AWS_ACCESS_KEY_ID", access_key)
            .arg(repo().join("tests/emulator/awsctl.py"))
            .args(["--endpoint", &self.endpoint])
            .args(line.split_whitespace());
        let run = Run::from(&cmd.output().expect("run awsctl"));
        assert_eq!(run.code, 0, "awsctl {line}: {}{}", run.stdout, run.stderr);
        run.json()
    }

    /// [`Emulator::awsctl`] with the arguments written as one line.
    pub fn ctl(&self, line: &str) -> Value {
        self.awsctl(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// A call to the emulator's control API (`/_emulator/...`): the JSON
    /// answer; panics unless it is a 2xx.
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let address = self.endpoint.trim_start_matches("http://");
        let body = body.map(Value::to_string);
        let (code, text) = http(
            address,
            method,
            &format!("/_emulator/{path}"),
            body.as_deref(),
        );
        assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Builds a generated topology (tests/emulator/topology.py) beside the
    /// seed, waits until every task runs and every target is healthy, and
    /// returns the path of the desired-state file that describes it.
    pub fn generate(&self, name: &str, args: &[&str]) -> String {
        let path = self.dir.join(name);
        let mut cmd = Command::new(python());
        self.aws_env(&mut cmd);
        cmd.arg(repo().join("tests/emulator/topology.py"))
            .args(["--endpoint", &self.endpoint, "--wait-seconds", "60"])
            .args(args)
            .arg("--out-config")
            .arg(&path);
        let run = Run::from(&cmd.output().expect("run topology.py"));
        assert_eq!(
            run.code, 0,
            "topology {args:?}: {}{}",
            run.stdout, run.stderr
        );
        path.display().to_string()
    }

    /// A path in this test's directory (nothing is created).
    pub fn dir_path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Writes a config file into this test's directory.
    pub fn write_config(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write config");
        path.display().to_string()
    }

    /// Polls `check` until it holds (the emulator's scheduler acts after a
    /// short delay), bounded in time.
    pub fn wait_for(&self, what: &str, mut check: impl FnMut(&Emulator) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM by PID first so it exits cleanly, then make sure.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The consistency window every command of the suite runs with.
pub const CONSISTENCY_WINDOW: &str = "2s";

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub fn seed_config() -> String {
    repo().join("examples/seed.yaml").display().to_string()
}

pub fn seed_text() -> String {
    std::fs::read_to_string(seed_config()).expect("examples/seed.yaml")
}

/// One plain HTTP/1.1 request over loopback (no keep-alive): (status code,
/// body). Enough for the status server and the emulator's control API.
pub fn http(address: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}
