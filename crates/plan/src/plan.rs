//! The plan: every change desired × snapshot calls for, in execution order,
//! plus what could not be observed and the addresses worth printing.

use std::collections::{BTreeMap, BTreeSet};

use ecs_reconciler_spec::{DesiredState, Mode, Policy};
use serde::Serialize;

use crate::action::{Action, Change, Disposition, HoldReason};
use crate::failure::ErrorClass;
use crate::sightings::Sightings;
use crate::snapshot::{Observed, Snapshot};
use crate::unit::{UnitId, unit_modes};
use crate::{attachments, rules, services, targets};

/// A part of the snapshot that could not be read: nothing destructive is
/// planned from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unknown {
    /// The part of the snapshot: `targets of api-tg`, `tasks of cluster main`.
    pub what: String,
    /// Why it could not be read.
    pub why: String,
    /// The class of the failure, which decides how soon it is retried.
    pub class: ErrorClass,
}

/// A load balancer's DNS name: the API's address.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// The load balancer's name in the file.
    pub load_balancer: String,
    /// Its DNS name, as ELBv2 reports it.
    pub dns_name: String,
}

/// The result of diffing desired × snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    /// Every change found, in execution order (by [`Action::phase`]; changes
    /// without an action last).
    pub changes: Vec<Change>,
    /// The parts of the snapshot that could not be read.
    pub unknowns: Vec<Unknown>,
    /// The DNS names of the declared load balancers that were found.
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
                change.hold = None;
                released += 1;
            }
        }
        released
    }
}

/// `paused: true` resources: nothing is applied and their drift is shown,
/// not counted.
fn pause(desired: &DesiredState, changes: &mut [Change]) {
    let paused: BTreeSet<UnitId> = unit_modes(desired)
        .into_iter()
        .filter(|(_, mode)| *mode == Mode::Paused)
        .map(|(unit, _)| unit)
        .collect();
    for change in changes.iter_mut().filter(|c| paused.contains(&c.owner)) {
        change.disposition = Disposition::Info;
        change.reason = format!("paused: {}", change.reason);
        change.hold = Some(HoldReason::Paused);
    }
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
fn members_of(owner: &UnitId, snapshot: &Snapshot) -> usize {
    match owner {
        UnitId::SecurityGroup(name) => match snapshot.security_groups.get(name) {
            Some(Observed::Known(Some(group))) => group.ingress.known().map_or(0, Vec::len),
            _ => 0,
        },
        UnitId::TargetGroup(name) => match snapshot.target_groups.get(name) {
            Some(Observed::Known(Some(tg))) => tg
                .targets
                .known()
                .map_or(0, |t| t.iter().filter(|t| !t.is_draining()).count()),
            _ => 0,
        },
        _ => 0,
    }
}

/// Above the policy's cap, a resource's destructive changes are all held:
/// only its additive part is applied this pass.
fn hold_over_cap(policy: &Policy, snapshot: &Snapshot, changes: &mut [Change]) {
    let mut by_owner: BTreeMap<UnitId, Vec<usize>> = BTreeMap::new();
    let mut additions: BTreeMap<UnitId, usize> = BTreeMap::new();
    for (i, change) in changes.iter().enumerate() {
        if change.disposition != Disposition::Apply {
            continue;
        }
        match &change.action {
            Some(action) if action.is_destructive() => {
                by_owner.entry(change.owner.clone()).or_default().push(i);
            }
            Some(Action::AuthorizeIngress { .. } | Action::RegisterTarget { .. }) => {
                *additions.entry(change.owner.clone()).or_default() += 1;
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
            changes[i].hold(
                HoldReason::DestructiveCap,
                &format!(
                    "{} removals exceed this resource's cap of {allowed} per pass (policy: at most {} and {}% of its {members} members) — applied once a second complete observation agrees, or with apply --allow-destructive",
                    indexes.len(),
                    policy.max_destructive_per_pass,
                    policy.max_destructive_percent,
                ),
            );
        }
    }
}

/// Diffs the desired state against one observation taken as consistent:
/// target changes are not held for a consistency window (tests,
/// simulations). The CLI and the daemon use [`plan_with`]. Pure: no I/O,
/// the same inputs always give the same plan.
pub fn plan(desired: &DesiredState, snapshot: &Snapshot) -> Plan {
    plan_with(desired, snapshot, &Sightings::default())
}

/// Diffs the desired state against one observation; target changes that
/// earlier reads have not confirmed for the consistency window are held
/// (see [`crate::sightings`]). Pure.
pub fn plan_with(desired: &DesiredState, snapshot: &Snapshot, sightings: &Sightings) -> Plan {
    let mut changes = Vec::new();
    changes.extend(rules::diff(desired, snapshot));
    changes.extend(attachments::diff(desired, snapshot));
    changes.extend(services::diff(desired, snapshot));
    changes.extend(targets::diff(desired, snapshot, sightings));
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
        .map(|(what, why)| Unknown {
            what,
            class: why.class,
            why: why.message,
        })
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
