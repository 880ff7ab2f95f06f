//! `apply --once`: observe, plan (reading once more after the consistency
//! window when a target change needs a second read), gate (as the daemon
//! does), execute, observe again, report whether it converged.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ecs_reconciler_plan::{
    Disposition, GateInput, HoldReason, Outcome, Plan, Sightings, Snapshot, UnitId, gate,
    plan_with, unit_ids,
};

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
    let started = Instant::now();
    let mut sightings = Sightings::new(aws.consistency_window);
    let read = |sightings: &mut Sightings, snapshot: &Snapshot| {
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        sightings.observed_at(elapsed);
        let plan = plan_with(&desired, snapshot, sightings);
        let groups = desired
            .target_groups
            .iter()
            .map(|t| t.name.clone())
            .collect();
        sightings.record(&plan, &groups);
        plan
    };
    let before = ecs_reconciler_aws::observe(&clients, &desired).await;
    let mut plan = read(&mut sightings, &before);
    // A target change one read cannot prove: read again once the window
    // has passed, and act on what both reads agree on.
    if !dry_run && awaits_consistency(&plan) {
        let wait = sightings.due_in().into_values().max().unwrap_or_default();
        tracing::info!(
            seconds = wait.as_secs_f64(),
            "target changes wait for a second read (reads are eventually consistent); reading again"
        );
        tokio::time::sleep(wait + Duration::from_millis(100)).await;
        let again = ecs_reconciler_aws::observe(&clients, &desired).await;
        plan = read(&mut sightings, &again);
    }
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
    let remaining = read(&mut sightings, &after);

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

/// Whether the plan holds a target change until a second read agrees.
fn awaits_consistency(plan: &Plan) -> bool {
    plan.changes.iter().any(|c| {
        c.disposition == Disposition::Held && c.hold == Some(HoldReason::AwaitingConsistency)
    })
}
