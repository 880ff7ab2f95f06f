//! `apply --once`: observe, plan, execute, observe again, report whether it
//! converged.

use std::path::Path;

use ecs_reconciler_plan::Outcome;

use crate::cli::{AwsArgs, OutputFormat};
use crate::{exit, render};

pub async fn run(
    path: &Path,
    aws: &AwsArgs,
    dry_run: bool,
    allow_destructive: bool,
    output: OutputFormat,
) -> u8 {
    let (desired, clients) = match super::prepare(path, aws).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let before = ecs_reconciler_aws::observe(&clients, &desired).await;
    let mut plan = ecs_reconciler_plan::plan(&desired, &before);
    if allow_destructive {
        let released = plan.release_held(|_| true);
        if released > 0 {
            tracing::warn!(
                released,
                "--allow-destructive: applying changes held by the policy's cap"
            );
        }
    }
    if dry_run {
        match output {
            OutputFormat::Text => print!("{}", render::plan_text(&plan)),
            OutputFormat::Json => println!("{}", render::plan_json(&plan)),
        }
        return super::plan::plan_exit_code(&plan);
    }

    let to_apply: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.disposition == ecs_reconciler_plan::Disposition::Apply)
        .cloned()
        .collect();
    let outcomes = ecs_reconciler_aws::execute(&clients, &to_apply).await;
    let after = ecs_reconciler_aws::observe(&clients, &desired).await;
    let remaining = ecs_reconciler_plan::plan(&desired, &after);

    match output {
        OutputFormat::Text => print!("{}", render::apply_text(&outcomes, &remaining)),
        OutputFormat::Json => println!("{}", render::apply_json(&outcomes, &remaining)),
    }
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.outcome, Outcome::Failed { .. }));
    if failed || !remaining.unknowns.is_empty() {
        exit::ERROR
    } else if !remaining.is_converged() {
        exit::DRIFT
    } else {
        exit::OK
    }
}
