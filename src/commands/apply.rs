//! `apply --once`: observe, plan, gate (as the daemon does), execute,
//! observe again, report whether it converged.

use std::collections::BTreeSet;
use std::path::Path;

use ecs_reconciler_plan::{GateInput, Outcome, UnitId, gate, unit_ids};

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
    // The daemon's gate, for one pass over every unit with no history:
    // the cap holds what it holds unless the operator says otherwise.
    let every_unit: BTreeSet<UnitId> = unit_ids(&desired).into_iter().collect();
    let gated = gate(&mut plan, &GateInput::once(&every_unit, allow_destructive));
    if allow_destructive && gated.released > 0 {
        tracing::warn!(
            released = gated.released,
            "--allow-destructive: applying changes held by the policy's cap"
        );
    }
    if dry_run {
        match output {
            OutputFormat::Text => print!("{}", render::plan_text(&plan)),
            OutputFormat::Json => println!("{}", render::plan_json(&plan)),
        }
        return super::plan::plan_exit_code(&plan);
    }

    let to_apply = gated.to_apply(&plan);
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
