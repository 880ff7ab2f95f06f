//! What a pass tells the outside besides the status document: Prometheus
//! series (controller-runtime names) and timeline entries. Both count only
//! *new* drift — drift the unit's previous pass did not report — so a
//! drift left alone is not counted again every pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ecs_reconciler_plan::{ActionOutcome, Change, Disposition, HoldReason, Outcome, Plan, UnitId};

use crate::cloud::Leadership;
use crate::metrics::ResourceLabels;
use crate::metrics::{ControllerLabel, KindLabel, Metrics, QUEUE, QueueLabel, ReconcileLabels};
use crate::scheduler::UnitResult;
use crate::status::DaemonStatus;
use crate::timeline::{Timeline, TimelineEvent, TimelineKind, unix_now};

/// Per unit, the reasons of the drift its last pass reported.
pub type ReportedDrift = BTreeMap<UnitId, BTreeSet<String>>;

/// What the previous pass reported for `units` (only the reasons: a copy
/// of every unit's status would cost megabytes per pass at a thousand
/// services).
pub fn reported_drift<'a>(
    status: &DaemonStatus,
    units: impl IntoIterator<Item = &'a UnitId>,
) -> ReportedDrift {
    units
        .into_iter()
        .filter_map(|unit| {
            let reported = status.units.get(unit)?;
            Some((
                unit.clone(),
                reported.drift.iter().map(|d| d.reason.clone()).collect(),
            ))
        })
        .collect()
}

fn is_new(previous: &ReportedDrift, change: &Change) -> bool {
    !previous
        .get(&change.owner)
        .is_some_and(|reasons| reasons.contains(&change.reason))
}

/// Records a pass's reconcile results, drift and corrections.
pub fn record_metrics(
    metrics: &Metrics,
    previous: &ReportedDrift,
    plan: &Plan,
    outcomes: &[ActionOutcome],
    results: &BTreeMap<UnitId, UnitResult>,
    elapsed: Duration,
    leadership: &Leadership,
) {
    let m = metrics;
    let mut kinds_in_pass = BTreeSet::new();
    for (unit, result) in results {
        let kind = unit.kind().as_str();
        kinds_in_pass.insert(kind);
        let ok = result.is_ok();
        m.reconcile_total
            .get_or_create(&ReconcileLabels {
                controller: kind.into(),
                result: if ok { "success" } else { "error" }.into(),
            })
            .inc();
        if !ok {
            m.reconcile_errors_total
                .get_or_create(&ControllerLabel {
                    controller: kind.into(),
                })
                .inc();
            m.workqueue_retries_total
                .get_or_create(&QueueLabel { name: QUEUE.into() })
                .inc();
        }
        let drift: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|c| &c.owner == unit && c.disposition.is_drift())
            .collect();
        let new_drift = drift.iter().filter(|c| is_new(previous, c)).count();
        m.drift_detected_total
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(new_drift as u64);
        let corrected = outcomes
            .iter()
            .filter(|o| &o.change.owner == unit && o.succeeded())
            .count();
        m.drift_corrected_total
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc_by(corrected as u64);
        // In sync after this pass: nothing left but what it corrected.
        let in_sync = ok
            && drift.iter().all(|c| c.disposition == Disposition::Apply)
            && corrected >= drift.len();
        m.resource_in_sync
            .get_or_create(&ResourceLabels {
                kind: kind.into(),
                name: unit.name(),
            })
            .set(i64::from(in_sync));
    }
    for notice in outcomes.iter().flat_map(|o| &o.other_writers) {
        m.group_list_changed_around_write_total
            .get_or_create(&KindLabel {
                kind: notice.kind().into(),
            })
            .inc_by(notice.groups().len() as u64);
    }
    for kind in kinds_in_pass {
        m.reconcile_time_seconds
            .get_or_create(&ControllerLabel {
                controller: kind.into(),
            })
            .observe(elapsed.as_secs_f64());
    }
    if plan.unknowns.is_empty() {
        m.last_successful_observation.set(unix_now());
    }
    m.is_leader
        .set(i64::from(*leadership == Leadership::Leader));
}

/// New drift of the due units, every change made, and read errors (when
/// they differ from the last pass's) go to the timeline.
pub fn record_timeline(
    timeline: &Timeline,
    previous: &ReportedDrift,
    due: &BTreeSet<UnitId>,
    plan: &Plan,
    outcomes: &[ActionOutcome],
    unknowns_before: &[ecs_reconciler_plan::Unknown],
    who: &BTreeMap<UnitId, crate::events::Attribution>,
) {
    for change in plan
        .changes
        .iter()
        .filter(|c| due.contains(&c.owner) && c.disposition.is_drift())
    {
        if is_new(previous, change) {
            // Removals held for the cap or a drastic edit: a person may
            // have to act, which is worth its own kind.
            let kind = match change.hold {
                Some(HoldReason::DestructiveCap | HoldReason::DrasticEdit) => TimelineKind::Held,
                _ => TimelineKind::Drift,
            };
            timeline.push(
                TimelineEvent::now(kind, Some(change.owner.clone()), change.reason.clone())
                    .by(who.get(&change.owner)),
            );
        }
    }
    for outcome in outcomes {
        let change = &outcome.change;
        let (kind, result) = match &outcome.outcome {
            Outcome::Applied { .. } => (TimelineKind::Action, "done".to_string()),
            Outcome::AlreadyDone => (TimelineKind::Action, "already so".to_string()),
            Outcome::Skipped { reason } => (TimelineKind::Error, format!("skipped: {reason}")),
            Outcome::Failed { error, .. } => (TimelineKind::Error, format!("failed: {error}")),
        };
        timeline.push(
            TimelineEvent::now(
                kind,
                Some(change.owner.clone()),
                format!(
                    "{} {}: {} -> {} ({result})",
                    change.kind, change.resource, change.before, change.after
                ),
            )
            .because(change.reason.clone())
            .by(who.get(&change.owner)),
        );
    }
    if !plan.unknowns.is_empty() && unknowns_before != plan.unknowns {
        let unknowns: Vec<String> = plan
            .unknowns
            .iter()
            .map(|u| format!("{}: {}", u.what, u.why))
            .collect();
        timeline.push(TimelineEvent::now(
            TimelineKind::Error,
            None,
            format!("could not observe {}", unknowns.join("; ")),
        ));
    }
}
