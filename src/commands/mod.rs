//! The subcommands. Each returns its exit code; none panics on bad input.

mod apply;
pub mod control;
mod init;
mod plan;
mod run;

use ecs_reconciler_runtime::reload::read_desired;

use crate::cli::{AwsArgs, Cli, Command};
use crate::exit;

pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate { config } => match read_desired(&config.config) {
            Ok(desired) => {
                println!(
                    "{}: ok: {} security groups, {} clusters, {} services, {} target groups, {} load balancers",
                    config.config.display(),
                    desired.security_groups.len(),
                    desired.clusters.len(),
                    desired.services.len(),
                    desired.target_groups.len(),
                    desired.load_balancers.len()
                );
                exit::OK
            }
            Err(message) => {
                eprintln!("{message}");
                exit::CONFIG
            }
        },
        Command::Run(args) => with_runtime(|| run::run(&args)),
        Command::Healthcheck { listen } => with_runtime(|| run::healthcheck(listen.listen)),
        Command::Init {
            cluster,
            services,
            all_services,
            output,
            aws,
        } => {
            let args = init::InitArgs {
                cluster: &cluster,
                services: &services,
                all: all_services,
                output: output.as_deref(),
                aws: &aws,
            };
            with_runtime(|| init::run(&args))
        }
        Command::Sync {
            client,
            resources,
            wait,
            output,
        } => with_runtime(|| control::sync(&client, &resources, wait, output)),
        Command::Confirm { client } => with_runtime(|| control::confirm(&client)),
        Command::Schema => {
            println!("{}", ecs_reconciler_spec::json_schema_string());
            exit::OK
        }
        Command::Plan {
            config,
            aws,
            output,
        } => with_runtime(|| plan::run(&config.config, &aws, output)),
        Command::Apply {
            config,
            aws,
            once,
            dry_run,
            allow_destructive,
            output,
        } => {
            if !once {
                eprintln!(
                    "error: `apply` runs a single pass and needs --once\n  hint: ecs-reconciler apply --config FILE --once"
                );
                return exit::USAGE;
            }
            with_runtime(|| apply::run(&config.config, &aws, dry_run, allow_destructive, output))
        }
    }
}

fn with_runtime<F, Fut>(f: F) -> u8
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    ecs_reconciler_runtime::memory::limit_arenas();
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(f()),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            exit::ERROR
        }
    }
}

pub(crate) fn client_settings(aws: &AwsArgs) -> ecs_reconciler_aws::ClientSettings {
    ecs_reconciler_aws::ClientSettings {
        region: aws.region.clone(),
        max_attempts: aws.max_attempts.max(1),
        operation_timeout: std::time::Duration::from_secs(aws.call_timeout.max(1)),
        page_size: aws.page_size,
        budget: ecs_reconciler_aws::BudgetSettings {
            share: aws.api_budget_share,
            overrides: aws.api_budget.clone(),
        },
        target_health_rotation: aws.target_health_rotation,
        ..Default::default()
    }
}

/// Loads the config and builds the AWS clients, or prints why not and
/// returns the exit code.
pub(crate) async fn prepare(
    path: &std::path::Path,
    aws: &AwsArgs,
) -> Result<(ecs_reconciler_spec::DesiredState, ecs_reconciler_aws::Aws), u8> {
    let desired = read_desired(path).map_err(|message| {
        eprintln!("{message}");
        exit::CONFIG
    })?;
    let clients = ecs_reconciler_aws::Aws::from_env(&client_settings(aws)).await;
    require_region(&clients)?;
    Ok((desired, clients))
}

/// AWS needs a region; say so plainly instead of failing every call. Err is
/// the exit code, the message already printed.
pub(crate) fn require_region(clients: &ecs_reconciler_aws::Aws) -> Result<(), u8> {
    if clients.region.is_none() {
        eprintln!(
            "error: no AWS region is configured\n  hint: set AWS_REGION (or --region, or a region in your AWS profile)"
        );
        return Err(exit::ERROR);
    }
    Ok(())
}
