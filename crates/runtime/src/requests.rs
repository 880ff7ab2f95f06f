//! Reconcile-now requests waiting for their passes: each names resources,
//! and is answered once every one of them has had a pass since the request
//! arrived, with what the status says of them then.

use std::collections::BTreeSet;

use ecs_reconciler_plan::{Disposition, UnitId};

use crate::control::{PassReply, PassSummary, UnitSummary};
use crate::status::{DaemonStatus, UnitState};

/// The requests not answered yet.
#[derive(Debug, Default)]
pub struct Waiting {
    requests: Vec<(BTreeSet<UnitId>, PassReply)>,
}

impl Waiting {
    /// A request for `units` (non-empty), answered on `reply`.
    pub fn add(&mut self, units: BTreeSet<UnitId>, reply: PassReply) {
        self.requests.push((units, reply));
    }

    /// A pass of `passed` finished and `status` holds its result: requests
    /// left with nothing to wait for are answered.
    pub fn passed(&mut self, passed: &BTreeSet<UnitId>, status: &DaemonStatus) {
        self.requests.retain_mut(|(units, reply)| {
            let all: Vec<UnitId> = units.iter().cloned().collect();
            units.retain(|u| !passed.contains(u));
            if !units.is_empty() {
                return true;
            }
            reply.send(summary(&all, status));
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
