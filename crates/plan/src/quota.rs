//! The rules-per-security-group quota, counted as AWS counts it: per
//! address family, a CIDR rule 1 in its family, a referenced group 1 in
//! each, a prefix list its weight (documented for AWS-managed lists, else
//! its MaxEntries) in the list's family (Amazon VPC User Guide, "Security
//! group size"; "Amazon VPC quotas").
//!
//! The executor adds before it removes, so a group at its quota refuses the
//! add first; it then revokes what cannot carry the new rule's traffic and
//! retries. This module predicts, purely, whether that still cannot fit and
//! says so with the numbers and what to do, instead of a pass that fails
//! the same way forever without explanation.

use std::collections::BTreeMap;

use ecs_reconciler_spec::Quotas;

use crate::action::Change;
use crate::snapshot::{AddressFamily, LiveSource, RuleKey, Snapshot};
use crate::unit::UnitId;

/// What one rule counts against the quota, per family.
pub fn weight(key: &RuleKey, snapshot: &Snapshot) -> Vec<(AddressFamily, usize)> {
    match &key.source {
        LiveSource::Ipv4(_) => vec![(AddressFamily::IPv4, 1)],
        LiveSource::Ipv6(_) => vec![(AddressFamily::IPv6, 1)],
        LiveSource::Group(_) => vec![(AddressFamily::IPv4, 1), (AddressFamily::IPv6, 1)],
        LiveSource::PrefixList(id) => match snapshot.prefix_list(id) {
            Some(list) => vec![(list.family, list.weight())],
            // Not read: counted as one rule, so the check errs towards
            // trying the add (AWS has the last word).
            None => vec![(AddressFamily::IPv4, 1)],
        },
    }
}

/// Sums weights per family.
fn total<'a>(
    keys: impl Iterator<Item = &'a RuleKey>,
    snapshot: &Snapshot,
) -> BTreeMap<AddressFamily, usize> {
    let mut out = BTreeMap::new();
    for key in keys {
        for (family, n) in weight(key, snapshot) {
            *out.entry(family).or_default() += n;
        }
    }
    out
}

/// The rules of one group a pass will touch, for the quota check.
pub struct GroupRules<'a> {
    /// The group's live rules.
    pub live: Vec<&'a RuleKey>,
    /// Rules to add.
    pub adds: Vec<&'a RuleKey>,
    /// Rules to revoke.
    pub revokes: Vec<&'a RuleKey>,
}

/// A report when the adds cannot fit under the quota even after every
/// revoke that may go before them (those that carry none of the added
/// traffic), naming the numbers and what to do. `None` when they fit.
pub fn check(
    unit: &UnitId,
    group_name: &str,
    rules: &GroupRules,
    quotas: &Quotas,
    snapshot: &Snapshot,
) -> Option<Change> {
    if rules.adds.is_empty() {
        return None;
    }
    let quota = quotas.rules_per_group;
    // Revokes the executor may run before the add succeeded.
    let (free, waiting): (Vec<&RuleKey>, Vec<&RuleKey>) = rules
        .revokes
        .iter()
        .copied()
        .partition(|r| !rules.adds.iter().any(|a| a.may_carry_same_traffic(r)));
    let used = total(rules.live.iter().copied(), snapshot);
    let freed = total(free.iter().copied(), snapshot);
    let added = total(rules.adds.iter().copied(), snapshot);
    let held = total(waiting.iter().copied(), snapshot);
    let (family, need) = added.keys().find_map(|family| {
        let need = used.get(family).copied().unwrap_or(0) - freed.get(family).copied().unwrap_or(0)
            + added.get(family).copied().unwrap_or(0);
        (need > quota).then_some((*family, need))
    })?;
    let get = |m: &BTreeMap<AddressFamily, usize>| m.get(&family).copied().unwrap_or(0);
    let heavy: Vec<String> = rules
        .live
        .iter()
        .chain(rules.adds.iter())
        .filter_map(|key| match &key.source {
            LiveSource::PrefixList(id) => snapshot
                .prefix_list(id)
                .filter(|l| l.weight() > 1)
                .map(|l| format!("prefix list {} counts {}", l.name, l.weight())),
            _ => None,
        })
        .collect();
    let counted = if heavy.is_empty() {
        String::new()
    } else {
        format!(" ({})", heavy.join("; "))
    };
    let end_state = need - get(&held);
    let what_to_do = if end_state > quota {
        format!(
            "the declared rules alone need {end_state}: remove rules from the file, or raise the quota (Service Quotas: \"Inbound or outbound rules per security group\") and write it in quotas.rulesPerSecurityGroup"
        )
    } else {
        let waiting: Vec<String> = waiting.iter().map(ToString::to_string).collect();
        format!(
            "the revoke of {} waits until the add succeeds, as it may carry the same traffic (additive before destructive): revoke one of them by hand, or raise the quota (Service Quotas: \"Inbound or outbound rules per security group\") and write it in quotas.rulesPerSecurityGroup",
            waiting.join(", ")
        )
    };
    Some(Change::report(
        "rule-quota",
        unit,
        format!("{} of {quota} {family:?} rules used", get(&used)),
        format!("{need} of {quota} needed"),
        format!(
            "blocked by the rule quota: group {group_name} uses {} of {quota} {family:?} rules{counted}; the adds need {} and the undeclared rules that may go first free {} — {what_to_do}",
            get(&used),
            get(&added),
            get(&freed),
        ),
    ))
}
