//! Reconcile-now requests waiting for their passes: each names resources,
//! and is answered once every one of them has had a pass since the request
//! arrived, with what the status says of them then.

use std::collections::BTreeSet;

use ecs_reconciler_plan::{Disposition, UnitId};

use crate::control::{PassReply, PassSummary, UnitSummary};
use crate::status::{DaemonStatus, UnitState};

/// The requests not answered yet: what each asked for, what it still
/// waits for, and where its answer goes.
#[derive(Debug, Default)]
pub struct Waiting {
    requests: Vec<(Vec<UnitId>, BTreeSet<UnitId>, PassReply)>,
}

impl Waiting {
    /// A request for `units` (non-empty), answered on `reply`.
    pub fn add(&mut self, units: BTreeSet<UnitId>, reply: PassReply) {
        self.requests
            .push((units.iter().cloned().collect(), units, reply));
    }

    /// A pass of `passed` finished and `status` holds its result: requests
    /// left with nothing to wait for are answered, about everything they
    /// asked for (a request may span passes: an edit's scoped pass first).
    pub fn passed(&mut self, passed: &BTreeSet<UnitId>, status: &DaemonStatus) {
        self.settle(status, |unit| !passed.contains(unit));
    }

    /// The file no longer declares some units: nothing will pass them, so
    /// they are not waited for (the answer says they are gone).
    pub fn declared(&mut self, declared: &BTreeSet<UnitId>, status: &DaemonStatus) {
        self.settle(status, |unit| declared.contains(unit));
    }

    fn settle(&mut self, status: &DaemonStatus, keep: impl Fn(&UnitId) -> bool) {
        self.requests.retain_mut(|(asked, left, reply)| {
            left.retain(|u| keep(u));
            if !left.is_empty() {
                return true;
            }
            reply.send(summary(asked, status));
            false
        });
    }
}

/// What the status says of `units` after their pass.
pub fn summary(units: &[UnitId], status: &DaemonStatus) -> PassSummary {
    let units: Vec<UnitSummary> = units
        .iter()
        .map(|unit| match status.units.get(unit) {
            Some(s) => {
                let uncorrected = s
                    .drift
                    .iter()
                    .filter(|c| c.disposition != Disposition::Apply)
                    .count();
                let unsucceeded = s.actions.iter().filter(|a| !a.succeeded()).count();
                UnitSummary {
                    unit: unit.clone(),
                    state: Some(s.state),
                    remaining: uncorrected + unsucceeded,
                    error: s.last_error.clone(),
                }
            }
            None => UnitSummary {
                unit: unit.clone(),
                state: None,
                remaining: 0,
                error: Some("no longer declared".into()),
            },
        })
        .collect();
    let errors = units
        .iter()
        .filter(|u| u.error.is_some() || u.state == Some(UnitState::Error))
        .count();
    PassSummary {
        converged: errors == 0 && units.iter().all(|u| u.remaining == 0),
        errors,
        units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(names: &[&str]) -> BTreeSet<UnitId> {
        names.iter().map(|n| UnitId::security_group(n)).collect()
    }

    #[test]
    fn a_request_spanning_passes_is_answered_about_all_it_asked() {
        let status = DaemonStatus::default();
        let mut waiting = Waiting::default();
        let (reply, mut answer) = PassReply::new();
        waiting.add(units(&["a", "b"]), reply);
        waiting.passed(&units(&["a"]), &status);
        assert!(answer.try_recv().is_err(), "b has not had its pass");
        waiting.passed(&units(&["b"]), &status);
        let summary = answer.try_recv().expect("answered");
        let asked: Vec<String> = summary.units.iter().map(|u| u.unit.to_string()).collect();
        assert_eq!(asked, ["security-group/a", "security-group/b"]);
    }

    #[test]
    fn a_unit_the_file_dropped_is_not_waited_for() {
        let status = DaemonStatus::default();
        let mut waiting = Waiting::default();
        let (reply, mut answer) = PassReply::new();
        waiting.add(units(&["a", "b"]), reply);
        waiting.passed(&units(&["a"]), &status);
        // The edit removed b: the request is answered now, b as gone.
        waiting.declared(&units(&["a"]), &status);
        let summary = answer.try_recv().expect("answered");
        assert!(!summary.converged);
        assert_eq!(
            summary.units[1].error.as_deref(),
            Some("no longer declared")
        );
    }
}
