//! Human and JSON renderings of plans and apply results.

use std::fmt::Write;

use ecs_reconciler_plan::ActionOutcome;
use ecs_reconciler_plan::Outcome;
use ecs_reconciler_plan::{Change, Disposition, Plan};
use serde_json::json;

fn symbol(change: &Change) -> &'static str {
    match (&change.action, change.disposition) {
        (_, Disposition::Report) => "!",
        (_, Disposition::Info) => "i",
        (_, Disposition::Held) => "=",
        (Some(action), _) if action.is_destructive() => "-",
        (Some(ecs_reconciler_plan::Action::AuthorizeIngress { .. }), _)
        | (Some(ecs_reconciler_plan::Action::RegisterTarget { .. }), _) => "+",
        _ => "~",
    }
}

fn label(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Apply => "apply",
        Disposition::Observe => "observe only",
        Disposition::Report => "report only",
        Disposition::Info => "info",
        Disposition::Held => "held",
    }
}

/// Rows aligned in columns: symbol, kind, resource, before → after, then the
/// reason on its own line.
fn changes_table(changes: &[Change], out: &mut String) {
    let kind_w = changes.iter().map(|c| c.kind.len()).max().unwrap_or(0);
    let res_w = changes.iter().map(|c| c.resource.len()).max().unwrap_or(0);
    for change in changes {
        let _ = writeln!(
            out,
            "  {} {:kind_w$}  {:res_w$}  {} -> {}  [{}]",
            symbol(change),
            change.kind,
            change.resource,
            change.before,
            change.after,
            label(change.disposition),
        );
        let _ = writeln!(out, "      {}", change.reason);
    }
}

fn unknowns_and_addresses(plan: &Plan, out: &mut String) {
    if !plan.unknowns.is_empty() {
        let _ = writeln!(
            out,
            "\nCould not observe (nothing destructive was planned from these):"
        );
        for unknown in &plan.unknowns {
            let _ = writeln!(out, "  ? {}: {}", unknown.what, unknown.why);
        }
    }
    for address in &plan.addresses {
        let _ = writeln!(
            out,
            "\nAPI address: http://{} (load balancer {})",
            address.dns_name, address.load_balancer
        );
    }
}

fn count(plan: &Plan, disposition: Disposition) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.disposition == disposition)
        .count()
}

pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.changes.is_empty() && plan.unknowns.is_empty() {
        out.push_str("No drift: the live state matches the file.\n");
    } else if plan.changes.is_empty() {
        out.push_str(
            "No drift in what could be read, but part of the live state could not be observed (below): this is not a clean plan.\n",
        );
    } else {
        out.push_str("Drift:\n");
        changes_table(&plan.changes, &mut out);
    }
    unknowns_and_addresses(plan, &mut out);
    let _ = writeln!(
        out,
        "\nPlan: {} to apply, {} held, {} observe only, {} to report, {} unknown.",
        count(plan, Disposition::Apply),
        count(plan, Disposition::Held),
        count(plan, Disposition::Observe),
        count(plan, Disposition::Report),
        plan.unknowns.len()
    );
    out
}

pub fn plan_json(plan: &Plan) -> String {
    let value = json!({
        "changes": plan.changes,
        "unknowns": plan.unknowns,
        "addresses": plan.addresses,
        "summary": {
            "apply": count(plan, Disposition::Apply),
            "held": count(plan, Disposition::Held),
            "observe": count(plan, Disposition::Observe),
            "report": count(plan, Disposition::Report),
            "info": count(plan, Disposition::Info),
            "unknown": plan.unknowns.len(),
            "drift": plan.has_drift(),
        },
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

pub fn apply_text(outcomes: &[ActionOutcome], remaining: &Plan) -> String {
    let mut out = String::new();
    if outcomes.is_empty() {
        out.push_str("Nothing to apply.\n");
    } else {
        out.push_str("Applied:\n");
        for outcome in outcomes {
            let status = match &outcome.outcome {
                Outcome::Applied { .. } => "done".to_string(),
                Outcome::AlreadyDone => "already so".to_string(),
                Outcome::Skipped { reason } => format!("skipped: {reason}"),
                Outcome::Failed { error, .. } => format!("FAILED: {error}"),
            };
            let change = &outcome.change;
            let _ = writeln!(
                out,
                "  {} {}  {}  {} -> {}  [{status}]",
                symbol(change),
                change.kind,
                change.resource,
                change.before,
                change.after
            );
        }
    }
    if remaining.is_converged() {
        out.push_str("\nConverged: nothing left to apply.\n");
        let left: Vec<Change> = remaining
            .changes
            .iter()
            .filter(|c| c.disposition != Disposition::Info)
            .cloned()
            .collect();
        if !left.is_empty() {
            out.push_str("Drift left for a person (observe / report only):\n");
            changes_table(&left, &mut out);
        }
    } else {
        out.push_str("\nNot converged; still to do:\n");
        changes_table(&remaining.changes, &mut out);
    }
    unknowns_and_addresses(remaining, &mut out);
    out
}

pub fn apply_json(outcomes: &[ActionOutcome], remaining: &Plan) -> String {
    let value = json!({
        "outcomes": outcomes,
        "converged": remaining.is_converged(),
        "remaining": {
            "changes": remaining.changes,
            "unknowns": remaining.unknowns,
        },
        "addresses": remaining.addresses,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
