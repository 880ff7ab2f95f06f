//! The plan: every change desired × snapshot calls for, in execution order,
//! plus what could not be observed and the addresses worth printing.

use std::collections::BTreeMap;

use ecs_reconciler_spec::{DesiredState, Mode, Policy};
use serde::Serialize;

use crate::action::{Action, Change, Disposition};
use crate::snapshot::{Observed, Snapshot};
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

    /// Nothing left that this tool would change (or holds), and everything
    /// was read.
    pub fn is_converged(&self) -> bool {
        self.unknowns.is_empty()
            && self.actions().is_empty()
            && !self
                .changes
                .iter()
                .any(|c| c.disposition == Disposition::Held)
    }

    /// Lets held changes through: those `confirmed` (a second observation
    /// agreed, or an operator said so) become applicable. Order is kept.
    pub fn release_held(&mut self, confirmed: impl Fn(&Change) -> bool) -> usize {
        let mut released = 0;
        for change in &mut self.changes {
            if change.disposition == Disposition::Held && confirmed(change) {
                change.disposition = Disposition::Apply;
                released += 1;
            }
        }
        released
    }
}

/// `paused: true` resources: nothing is applied and their drift is shown,
/// not counted.
fn pause(desired: &DesiredState, changes: &mut [Change]) {
    let paused: Vec<String> = unit_modes(desired)
        .into_iter()
        .filter(|(_, mode)| *mode == Mode::Paused)
        .map(|(unit, _)| unit)
        .collect();
    for change in changes.iter_mut().filter(|c| paused.contains(&c.owner)) {
        change.disposition = Disposition::Info;
        change.reason = format!("paused: {}", change.reason);
    }
}

/// Every declared resource as the `Change::owner` key it is known by, with
/// its mode.
pub fn unit_modes(desired: &DesiredState) -> Vec<(String, Mode)> {
    let groups = desired
        .security_groups
        .iter()
        .map(|g| (format!("security-group/{}", g.name), g.mode));
    let clusters = desired
        .clusters
        .iter()
        .map(|c| (format!("cluster/{}", c.name), c.mode));
    let services = desired
        .services
        .iter()
        .map(|s| (format!("service/{}/{}", s.cluster, s.name), s.mode));
    let target_groups = desired
        .target_groups
        .iter()
        .map(|t| (format!("target-group/{}", t.name), t.mode));
    let load_balancers = desired
        .load_balancers
        .iter()
        .map(|l| (format!("load-balancer/{}", l.name), l.mode));
    groups
        .chain(clusters)
        .chain(services)
        .chain(target_groups)
        .chain(load_balancers)
        .collect()
}

/// Identifies a change across passes (to tell whether two observations
/// agree on it).
pub fn change_key(change: &Change) -> String {
    format!(
        "{}|{}|{}|{}",
        change.kind, change.resource, change.before, change.after
    )
}

/// How many members (rules, targets) a resource has now: the base of the
/// percentage cap.
fn members_of(owner: &str, snapshot: &Snapshot) -> usize {
    if let Some(name) = owner.strip_prefix("security-group/") {
        if let Some(Observed::Known(Some(group))) = snapshot.security_groups.get(name) {
            return group.ingress.known().map_or(0, Vec::len);
        }
    } else if let Some(name) = owner.strip_prefix("target-group/")
        && let Some(Observed::Known(Some(tg))) = snapshot.target_groups.get(name)
    {
        return tg
            .targets
            .known()
            .map_or(0, |t| t.iter().filter(|t| !t.is_draining()).count());
    }
    0
}

/// Above the policy's cap, a resource's destructive changes are all held:
/// only its additive part is applied this pass.
fn hold_over_cap(policy: &Policy, snapshot: &Snapshot, changes: &mut [Change]) {
    let mut by_owner: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut additions: BTreeMap<String, usize> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        if change.disposition != Disposition::Apply {
            continue;
        }
        match &change.action {
            Some(action) if action.is_destructive() => {
                by_owner.entry(change.owner.clone()).or_default().push(i)
            }
            Some(Action::AuthorizeIngress { .. } | Action::RegisterTarget { .. }) => {
                *additions.entry(change.owner.clone()).or_default() += 1
            }
            _ => {}
        }
    }
    for (owner, indexes) in by_owner {
        // The base is the resource's members once this pass's additions are
        // made, so replacing a group's only rule is one swap, not a hold.
        let members = members_of(&owner, snapshot) + additions.get(&owner).copied().unwrap_or(0);
        let allowed = policy.destructive_allowance(members);
        if indexes.len() <= allowed {
            continue;
        }
        for i in indexes.iter().copied() {
            let change = &mut changes[i];
            change.disposition = Disposition::Held;
            change.reason = format!(
                "{}; held: {} removals exceed this resource's cap of {allowed} per pass (policy: at most {} and {}% of its {members} members) — applied once a second complete observation agrees, or with apply --allow-destructive",
                change.reason,
                indexes.len(),
                policy.max_destructive_per_pass,
                policy.max_destructive_percent,
            );
        }
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
    pause(desired, &mut changes);
    hold_over_cap(&desired.policy, snapshot, &mut changes);

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
