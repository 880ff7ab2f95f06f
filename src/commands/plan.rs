//! `plan`: observe, diff, print. Changes nothing.

use std::path::Path;

use crate::cli::{AwsArgs, OutputFormat};
use crate::{exit, render};

pub async fn run(path: &Path, aws: &AwsArgs, output: OutputFormat) -> u8 {
    let (desired, clients) = match super::prepare(path, aws).await {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let snapshot = ecs_reconciler_aws::observe(&clients, &desired).await;
    // One read: target changes it alone cannot prove are shown held.
    let plan = ecs_reconciler_plan::plan_with(
        &desired,
        &snapshot,
        &ecs_reconciler_plan::Sightings::new(aws.consistency_window),
    );
    match output {
        OutputFormat::Text => print!("{}", render::plan_text(&plan)),
        OutputFormat::Json => println!("{}", render::plan_json(&plan)),
    }
    plan_exit_code(&plan)
}

/// Terraform's detailed exit code: a partial observation is an error, not
/// "no drift".
pub fn plan_exit_code(plan: &ecs_reconciler_plan::Plan) -> u8 {
    if !plan.unknowns.is_empty() {
        exit::ERROR
    } else if plan.has_drift() {
        exit::DRIFT
    } else {
        exit::OK
    }
}
