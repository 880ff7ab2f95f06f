//! The plan: every change desired × snapshot calls for, in execution order,
//! plus what could not be observed and the addresses worth printing.

use ecs_reconciler_spec::DesiredState;
use serde::Serialize;

use crate::action::{Action, Change, Disposition};
use crate::snapshot::Snapshot;
use crate::{attachments, rules, services, targets};

/// A part of the snapshot that could not be read: nothing destructive is
/// planned from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unknown {
    pub what: String,
    pub why: String,
}

/// A load balancer's DNS name: the API's address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub load_balancer: String,
    pub dns_name: String,
}

/// The result of diffing desired × snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub unknowns: Vec<Unknown>,
    pub addresses: Vec<Address>,
}

impl Plan {
    /// The actions to execute, in order.
    pub fn actions(&self) -> Vec<&Action> {
        self.changes
            .iter()
            .filter(|c| c.disposition == Disposition::Apply)
            .filter_map(|c| c.action.as_ref())
            .collect()
    }

    /// Any drift at all, including drift left alone (observe/report).
    pub fn has_drift(&self) -> bool {
        self.changes.iter().any(|c| c.disposition.is_drift())
    }

    /// Nothing left that this tool would change, and everything was read.
    pub fn is_converged(&self) -> bool {
        self.unknowns.is_empty() && self.actions().is_empty()
    }
}

/// Diffs the desired state against one observation. Pure: no I/O, the same
/// inputs always give the same plan.
pub fn plan(desired: &DesiredState, snapshot: &Snapshot) -> Plan {
    let mut changes = Vec::new();
    changes.extend(rules::diff(desired, snapshot));
    changes.extend(attachments::diff(desired, snapshot));
    changes.extend(services::diff(desired, snapshot));
    changes.extend(targets::diff(desired, snapshot));

    // Stable sort: within a phase the diff order (file order, then sorted
    // keys) is kept, so plans are deterministic and read top-down.
    changes.sort_by_key(|change| match &change.action {
        Some(action) => action.phase(),
        None => u8::MAX,
    });

    let unknowns = snapshot
        .unknowns()
        .into_iter()
        .map(|(what, why)| Unknown { what, why })
        .collect();
    let addresses = desired
        .load_balancers
        .iter()
        .filter_map(|lb| {
            let live = snapshot.load_balancers.get(&lb.name)?.known()?.as_ref()?;
            Some(Address {
                load_balancer: lb.name.clone(),
                dns_name: live.dns_name.clone()?,
            })
        })
        .collect();
    Plan {
        changes,
        unknowns,
        addresses,
    }
}
