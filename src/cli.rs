//! Command-line interface: every flag also readable from an
//! `ECS_RECONCILER_*` environment variable.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ecs_reconciler_runtime::reload::WatchMode;

use crate::duration::{parse_duration, parse_duration_or_zero};

/// `--version`: the release and the commit it was built from (`build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ECS_RECONCILER_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "ecs-reconciler",
    version = VERSION,
    about = "Keeps an ECS service, its security groups, its ALB and target group true to a desired-state YAML file.",
    after_help = "Exit codes: 0 ok / no drift / converged, 1 error, 2 drift (plan) or not converged (apply), 64 usage, 78 invalid config.\nAWS access uses the default credential chain: AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL, ECS task roles all work."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `ecs_reconciler_aws=debug`.
    /// Without it, `RUST_LOG` is used, then `info`.
    #[arg(long, global = true, env = "ECS_RECONCILER_LOG")]
    pub log: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "ECS_RECONCILER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal (CloudWatch), text otherwise.
    Auto,
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The desired-state YAML file.
    #[arg(long, short = 'c', env = "ECS_RECONCILER_CONFIG")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct AwsArgs {
    /// AWS region (default: the SDK's chain, e.g. AWS_REGION or the profile).
    #[arg(long, env = "ECS_RECONCILER_REGION")]
    pub region: Option<String>,
    /// Attempts per AWS call, first included (standard retry mode).
    #[arg(long, env = "ECS_RECONCILER_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Timeout of one whole AWS call, retries included, in seconds.
    #[arg(long, env = "ECS_RECONCILER_CALL_TIMEOUT", default_value_t = 30)]
    pub call_timeout: u64,
    /// Items per page of paginated list calls (default: the most each API
    /// allows). Smaller pages cost more calls; tests use it to fail a
    /// second page on purpose.
    #[arg(long, env = "ECS_RECONCILER_PAGE_SIZE", hide = true)]
    pub page_size: Option<i32>,
    /// Share of AWS's documented API rate limits this copy may use, per
    /// rate class (client-side token buckets; 0 < share <= 1).
    #[arg(long, env = "ECS_RECONCILER_API_BUDGET_SHARE", default_value_t = 0.5, value_parser = parse_share)]
    pub api_budget_share: f64,
    /// Overrides one class's budget: CLASS=BURST/PER_SECOND, e.g.
    /// elbv2-read=10/2.5 (classes: ecs-service-read,
    /// ecs-cluster-resource-read, ecs-read, ecs-write, ec2-read, ec2-write,
    /// elbv2-read, elbv2-write, autoscaling-read). Repeatable; comma-separated in the
    /// environment variable.
    #[arg(
        long = "api-budget",
        env = "ECS_RECONCILER_API_BUDGET",
        value_delimiter = ','
    )]
    pub api_budget: Vec<ecs_reconciler_aws::BudgetOverride>,
    /// Target groups with nothing in motion (every target healthy and
    /// matching a running task) whose health a pass re-reads, stalest
    /// first; the others reuse their last read. Each is re-read at least
    /// every ceil(groups / N) passes: how long a target someone
    /// deregistered or added by hand can go unseen. 0 = read every group
    /// every pass.
    #[arg(long, env = "ECS_RECONCILER_TARGET_HEALTH_ROTATION", default_value_t = ecs_reconciler_aws::clients::DEFAULT_TARGET_HEALTH_ROTATION)]
    pub target_health_rotation: usize,
    /// How far apart reads must agree before a target is registered again
    /// or deregistered. ECS, ELBv2 and EC2 answer from eventually
    /// consistent stores: one read can show a draining target under a
    /// task that still reads RUNNING, or a new task's target before the
    /// task. `apply --once` reads twice this far apart when it must; `0s`
    /// acts on one read.
    #[arg(long, env = "ECS_RECONCILER_CONSISTENCY_WINDOW", default_value = "10s", value_parser = parse_duration_or_zero)]
    pub consistency_window: std::time::Duration,
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!(
            "`{text}`: a share between 0 (excluded) and 1, e.g. 0.5"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a desired-state file from a live service and what is around it
    /// (target groups, load balancers, security groups), in observe mode.
    Init {
        /// The ECS cluster.
        #[arg(long, env = "ECS_RECONCILER_CLUSTER")]
        cluster: String,
        /// A service to adopt. Repeatable.
        #[arg(long = "service", value_name = "NAME")]
        services: Vec<String>,
        /// Adopt every active service of the cluster.
        #[arg(long)]
        all_services: bool,
        /// Write the file here (default: stdout).
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        #[command(flatten)]
        aws: AwsArgs,
    },
    /// Check the desired-state file and report every error (exit 0 or 78).
    Validate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show every drift between the file and the live account (exit 0 none, 2 drift, 1 error).
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        aws: AwsArgs,
        /// Output format.
        #[arg(long, short = 'o', env = "ECS_RECONCILER_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Fix the drift once, then observe again (exit 0 only when converged).
    Apply {
        #[command(flatten)]
        config: ConfigArg,
        #[command(flatten)]
        aws: AwsArgs,
        /// Run one observe → plan → apply → observe pass and exit.
        #[arg(long, env = "ECS_RECONCILER_ONCE")]
        once: bool,
        /// Plan and print what would be done; change nothing.
        #[arg(long, env = "ECS_RECONCILER_DRY_RUN")]
        dry_run: bool,
        /// Apply destructive changes held by the policy's cap too (the operator's override).
        #[arg(long)]
        allow_destructive: bool,
        /// Output format.
        #[arg(long, short = 'o', env = "ECS_RECONCILER_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Run as a daemon: keep the live state true to the file, reloading it on edit.
    Run(RunArgs),
    /// Ask a running daemon's /healthz (exit 0 healthy, 1 not): for container health checks.
    Healthcheck {
        #[command(flatten)]
        listen: ListenArg,
    },
    /// Ask a running daemon to reconcile now, bypassing its resync (exit 0
    /// accepted; with --wait 0 converged, 2 drift remains, 1 error).
    Sync {
        #[command(flatten)]
        client: ControlClientArgs,
        /// A resource to reconcile, as KIND/NAME (security-group/web,
        /// service/CLUSTER/NAME, ...). Repeatable; none means every one.
        #[arg(long = "resource", value_name = "KIND/NAME")]
        resources: Vec<String>,
        /// Wait until the pass has finished, and exit like `apply --once`.
        #[arg(long)]
        wait: bool,
        /// Output format.
        #[arg(long, short = 'o', env = "ECS_RECONCILER_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Confirm every removal a running daemon holds for an operator (what
    /// SIGUSR1 does), over its control API.
    Confirm {
        #[command(flatten)]
        client: ControlClientArgs,
    },
    /// Print the JSON Schema of the desired-state file.
    Schema,
}

/// Where a running daemon's control API is, and its token.
#[derive(Debug, Args)]
pub struct ControlClientArgs {
    /// The daemon's status server.
    #[arg(
        long,
        env = "ECS_RECONCILER_URL",
        default_value = "http://127.0.0.1:9187"
    )]
    pub url: String,
    /// A file holding the token the daemon was started with
    /// (--control-token-file).
    #[arg(long, env = "ECS_RECONCILER_CONTROL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// The token itself, from the environment only (never a flag: it would
    /// show in `ps`).
    #[arg(skip = std::env::var("ECS_RECONCILER_CONTROL_TOKEN").ok())]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// How often every resource is re-checked when nothing happens (jittered ±10%);
    /// with --events-queue, while the queue fails.
    #[arg(long, env = "ECS_RECONCILER_RESYNC", default_value = "30s", value_parser = parse_duration)]
    pub resync: std::time::Duration,
    /// Event-driven drift detection: the URL of the SQS queue the EventBridge
    /// rules of deploy/events/ feed. Drift is re-read as its events arrive;
    /// resync becomes --events-resync, the safety net.
    #[arg(
        long,
        env = "ECS_RECONCILER_EVENTS_QUEUE",
        value_name = "SQS_QUEUE_URL"
    )]
    pub events_queue: Option<String>,
    /// The resync while the events queue works (it falls back to --resync
    /// while the queue fails).
    #[arg(long, env = "ECS_RECONCILER_EVENTS_RESYNC", default_value = "5m", value_parser = parse_duration)]
    pub events_resync: std::time::Duration,
    /// How config edits are noticed: `notify` (inotify on the file's directory) or `poll` (network file systems).
    #[arg(long, env = "ECS_RECONCILER_WATCH", default_value_t = WatchMode::Notify, value_parser = watch_mode_parser())]
    pub watch: WatchMode,
    /// After SIGTERM/SIGINT, how long the pass in flight may take to finish (keep it under ECS's stopTimeout, 30 s by default).
    #[arg(long, env = "ECS_RECONCILER_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: std::time::Duration,
    /// Append one JSON line per mutating AWS call to this file (`-` for stdout).
    #[arg(long, env = "ECS_RECONCILER_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    #[command(flatten)]
    pub listen: ListenArg,
    /// Corrections of one field within --fight-window after which it is left
    /// alone as fought over by another writer (until the config changes or SIGHUP).
    #[arg(long, env = "ECS_RECONCILER_FIGHT_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..))]
    pub fight_threshold: u32,
    /// The window of --fight-threshold.
    #[arg(long, env = "ECS_RECONCILER_FIGHT_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub fight_window: std::time::Duration,
    /// Turns the control API on (`POST /api/v1/reconcile`,
    /// `POST /api/v1/confirm`): a file holding its bearer token, at least
    /// 16 characters (e.g. `openssl rand -hex 32`). Without it the status
    /// server is read-only.
    #[arg(long, env = "ECS_RECONCILER_CONTROL_TOKEN_FILE")]
    pub control_token_file: Option<PathBuf>,
    /// The dashboard's address as people reach it (e.g. behind a proxy),
    /// for the links in notifications.
    #[arg(long, env = "ECS_RECONCILER_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListenArg {
    /// Address of the read-only status server (/healthz, /readyz, /api/v1/status).
    /// Binding beyond loopback is an explicit choice.
    #[arg(long, env = "ECS_RECONCILER_LISTEN", default_value = "127.0.0.1:9187")]
    pub listen: std::net::SocketAddr,
}

/// `--watch`: the runtime's own [`WatchMode`], with its names listed as the
/// possible values (`--help`, and the error for any other value).
fn watch_mode_parser() -> impl TypedValueParser<Value = WatchMode> {
    PossibleValuesParser::new([WatchMode::Notify.as_str(), WatchMode::Poll.as_str()])
        .try_map(|text| text.parse::<WatchMode>())
}

/// Logs go to stderr so stdout stays the command's output.
pub fn init_logging(global: &GlobalArgs) {
    let wanted = global
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&wanted)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let json = match global.log_format {
        LogFormat::Auto => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
