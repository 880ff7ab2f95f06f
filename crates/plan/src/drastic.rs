//! Drastic config changes: an edit of the file that removes more of a
//! resource's declared members than the destructive cap allows in one pass
//! (a group's rules 5 → 0, replicas 10 → 1, a target group pointed at other
//! tasks, rule management switched to `exclusive`).
//!
//! Live drift over the cap waits for a second complete observation; a
//! drastic *edit* is different — observing again cannot tell a typo from an
//! intent — so the daemon holds its destructive part until an operator
//! confirms it. This module finds such edits and marks the changes they
//! cause; keeping the holds across reloads is the daemon's job.

use std::collections::BTreeSet;

use ecs_reconciler_spec::{
    DesiredState, IngressRule, Policy, RuleManagement, TargetGroupSpec, TargetMembership,
};
use serde::Serialize;

use crate::action::{Action, Change, Disposition, HoldReason};
use crate::plan::Plan;
use crate::unit::UnitId;

/// One resource whose declared members an edit cut by more than the cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrasticChange {
    /// The resource the edit cut.
    pub owner: UnitId,
    /// What the edit did, for people: "ingress rules 5 → 0".
    pub what: String,
}

fn rule_identity(rule: &IngressRule) -> String {
    // The description is not part of a rule's identity: editing it is not a
    // removal.
    format!("{}|{}|{}", rule.protocol, rule.ports, rule.source)
}

/// Whether removing `removed` of `of` members at once exceeds the policy's
/// per-pass allowance for a resource of that size.
fn exceeds(policy: &Policy, removed: usize, of: usize) -> bool {
    removed > 0 && removed > policy.destructive_allowance(of)
}

/// (removed, base) of a name list edit; the base counts the added names.
fn removed_names(before: &[String], after: &[String]) -> (usize, usize) {
    let was: BTreeSet<&String> = before.iter().collect();
    let now: BTreeSet<&String> = after.iter().collect();
    let removed = was.difference(&now).count();
    (removed, was.len() + now.difference(&was).count())
}

fn target_source(tg: &TargetGroupSpec) -> String {
    format!(
        "service {}/{} container {}:{}",
        tg.cluster, tg.service, tg.container_name, tg.container_port
    )
}

/// The resources the edit `before` → `after` changes drastically, judged by
/// `after`'s policy. Resources only in one of the two are not drastic: a new
/// one is covered by the cap, a dropped one is no longer managed at all.
pub fn drastic_changes(before: &DesiredState, after: &DesiredState) -> Vec<DrasticChange> {
    let policy = &after.policy;
    let mut out = Vec::new();
    for group in &after.security_groups {
        let Some(old) = before.security_groups.iter().find(|g| g.name == group.name) else {
            continue;
        };
        let now: BTreeSet<String> = group.ingress.iter().map(rule_identity).collect();
        let was: BTreeSet<String> = old.ingress.iter().map(rule_identity).collect();
        let removed = was.difference(&now).count();
        let added = now.difference(&was).count();
        let owner = UnitId::security_group(&group.name);
        // As with the live cap, the base counts what the edit adds, so
        // replacing a group's only rule is a swap, not a cut.
        if exceeds(policy, removed, was.len() + added) {
            out.push(DrasticChange {
                owner,
                what: format!(
                    "ingress rules {} → {} ({removed} removed)",
                    old.ingress.len(),
                    group.ingress.len()
                ),
            });
        } else if old.management != RuleManagement::Exclusive
            && group.management == RuleManagement::Exclusive
        {
            out.push(DrasticChange {
                owner,
                what: "rule management became exclusive (rules other writers added are revoked)"
                    .into(),
            });
        }
    }
    let group_lists = |owner: UnitId, what: &str, was: &[String], now: &[String]| {
        let (removed, base) = removed_names(was, now);
        exceeds(policy, removed, base).then(|| DrasticChange {
            owner,
            what: format!("{what} {} → {}", was.len(), now.len()),
        })
    };
    for cluster in &after.clusters {
        if let Some(old) = before.clusters.iter().find(|c| c.name == cluster.name) {
            out.extend(group_lists(
                UnitId::cluster(&cluster.name),
                "instance security groups",
                &old.instance_security_groups,
                &cluster.instance_security_groups,
            ));
        }
    }
    for lb in &after.load_balancers {
        if let Some(old) = before.load_balancers.iter().find(|l| l.name == lb.name) {
            out.extend(group_lists(
                UnitId::load_balancer(&lb.name),
                "security groups",
                &old.security_groups,
                &lb.security_groups,
            ));
        }
    }
    for service in &after.services {
        let Some(old) = before
            .services
            .iter()
            .find(|s| s.name == service.name && s.cluster == service.cluster)
        else {
            continue;
        };
        // The lowest count the old file allowed against the highest the new
        // one does: what the edit can take away for sure.
        let removed = old.replicas.min.saturating_sub(service.replicas.max) as usize;
        if exceeds(policy, removed, old.replicas.min as usize) {
            out.push(DrasticChange {
                owner: UnitId::service(&service.cluster, &service.name),
                what: format!("replicas {} → {}", old.replicas, service.replicas),
            });
        }
    }
    for tg in &after.target_groups {
        let Some(old) = before.target_groups.iter().find(|t| t.name == tg.name) else {
            continue;
        };
        let owner = UnitId::target_group(&tg.name);
        if target_source(old) != target_source(tg) {
            out.push(DrasticChange {
                owner,
                what: format!(
                    "targets now come from {} instead of {} (every current target is replaced)",
                    target_source(tg),
                    target_source(old)
                ),
            });
        } else if old.membership != TargetMembership::Exclusive
            && tg.membership == TargetMembership::Exclusive
        {
            out.push(DrasticChange {
                owner,
                what: "membership became exclusive (targets other writers registered are deregistered)"
                    .into(),
            });
        }
    }
    out
}

/// Whether a change takes something away: a revoke, a deregistration, or a
/// lower desiredCount.
pub fn takes_away(change: &Change) -> bool {
    match &change.action {
        Some(Action::ScaleService { desired_count, .. }) => change
            .before
            .strip_prefix("desiredCount ")
            .and_then(|n| n.parse::<i32>().ok())
            .is_some_and(|live| *desired_count < live),
        Some(action) => action.is_destructive(),
        None => false,
    }
}

/// Holds every change that takes something away from a resource a drastic
/// edit touched, until an operator confirms. Returns how many were held.
pub fn hold_drastic(plan: &mut Plan, drastic: &[DrasticChange]) -> usize {
    let mut held = 0;
    for change in &mut plan.changes {
        if !matches!(change.disposition, Disposition::Apply | Disposition::Held)
            || !takes_away(change)
        {
            continue;
        }
        let Some(edit) = drastic.iter().find(|d| d.owner == change.owner) else {
            continue;
        };
        change.hold(
            HoldReason::DrasticEdit,
            &format!(
                "the config edit cut {} ({}) — confirm with SIGUSR1 to the daemon or `apply --once --allow-destructive`",
                edit.owner, edit.what
            ),
        );
        held += 1;
    }
    held
}
