//! Security-group ingress: desired rules × live rules → authorize / revoke.
//!
//! Rules are compared in normalised form ([`RuleKey`]): protocol names and
//! numbers are one, CIDRs canonical, descriptions ignored. A group's revokes
//! are planned only when every desired rule could be resolved (a source group
//! that cannot be found makes the desired list itself unknown).

use std::collections::BTreeSet;

use ecs_reconciler_spec::{
    DesiredState, IngressRule, Mode, Quotas, RuleManagement, RuleSource, SecurityGroupSpec,
};

use crate::action::{Action, Change, Disposition};
use crate::quota::{self, GroupRules};
use crate::snapshot::{LivePrefixList, LiveSource, Observed, RuleKey, Snapshot};
use crate::unit::UnitId;

/// Plans every declared group's ingress changes.
pub fn diff(desired: &DesiredState, snapshot: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for spec in &desired.security_groups {
        diff_group(spec, &desired.quotas, snapshot, &mut changes);
    }
    changes
}

/// The live form of a desired rule's source, or why it has none yet.
pub fn resolve_source(source: &RuleSource, snapshot: &Snapshot) -> Result<LiveSource, String> {
    match source {
        RuleSource::Ipv4(net) => Ok(LiveSource::Ipv4(net.trunc())),
        RuleSource::Ipv6(net) => Ok(LiveSource::Ipv6(net.trunc())),
        RuleSource::ExternalGroup(id) => Ok(LiveSource::Group(id.clone())),
        // Group ids are unique across accounts: the account only goes into
        // the authorize call.
        RuleSource::AccountGroup { group_id, .. } => Ok(LiveSource::Group(group_id.clone())),
        RuleSource::PrefixListId(id) => match &snapshot.prefix_lists {
            Some(Observed::Known(lists)) if !lists.iter().any(|l| &l.id == id) => Err(format!(
                "prefix list {id} does not exist in this region (or is not shared with this account)"
            )),
            // Read or not, the id is all a rule needs.
            _ => Ok(LiveSource::PrefixList(id.clone())),
        },
        RuleSource::PrefixListName(name) => match &snapshot.prefix_lists {
            Some(Observed::Known(lists)) => {
                let found: Vec<&LivePrefixList> =
                    lists.iter().filter(|l| &l.name == name).collect();
                match found.as_slice() {
                    [one] => Ok(LiveSource::PrefixList(one.id.clone())),
                    [] => Err(format!("no managed prefix list is named {name}")),
                    many => Err(format!(
                        "{} prefix lists are named {name} ({}); name the one you mean with prefixListId",
                        many.len(),
                        many.iter()
                            .map(|l| l.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            Some(Observed::Unknown(why)) => Err(format!(
                "prefix list {name} could not be looked up: {}",
                why.message
            )),
            None => Err(format!("prefix list {name} was not looked up")),
        },
        RuleSource::DeclaredGroup(name) => match snapshot.security_groups.get(name) {
            Some(Observed::Known(Some(group))) => Ok(LiveSource::Group(group.id.clone())),
            Some(Observed::Known(None)) => Err(format!("source group {name} does not exist")),
            Some(Observed::Unknown(why)) => {
                Err(format!("source group {name} could not be read: {why}"))
            }
            None => Err(format!("source group {name} was not observed")),
        },
    }
}

/// The normalised key of a desired rule.
pub fn desired_key(rule: &IngressRule, snapshot: &Snapshot) -> Result<RuleKey, String> {
    let source = resolve_source(&rule.source, snapshot)?;
    Ok(RuleKey::new(rule.protocol, rule.ports, source))
}

/// A rule as a person reads it: a prefix list with its name ("CloudFront"
/// before cutting it), not only its id.
pub fn rule_text(key: &RuleKey, snapshot: &Snapshot) -> String {
    match &key.source {
        LiveSource::PrefixList(id) => match snapshot.prefix_list(id) {
            Some(list) => key.text_with(&format!("prefix list {}", list.label())),
            None => key.to_string(),
        },
        _ => key.to_string(),
    }
}

fn diff_group(
    spec: &SecurityGroupSpec,
    quotas: &Quotas,
    snapshot: &Snapshot,
    changes: &mut Vec<Change>,
) {
    let unit = UnitId::security_group(&spec.name);
    let group = match snapshot.security_groups.get(&spec.name) {
        Some(Observed::Known(Some(group))) => group,
        Some(Observed::Known(None)) => {
            changes.push(Change::report(
                "missing-resource",
                &unit,
                "absent".into(),
                "present".into(),
                format!(
                    "no security group named {} was found; ecs-reconciler does not create groups, create it or fix the name",
                    spec.name
                ),
            ));
            return;
        }
        // Unknown or not observed: listed among the plan's unknowns.
        _ => return,
    };
    let Observed::Known(live_rules) = &group.ingress else {
        return;
    };
    let enforce = spec.mode == Mode::Enforce;

    let mut wanted: Vec<(RuleKey, &IngressRule)> = Vec::new();
    let mut unresolved = Vec::new();
    for rule in &spec.ingress {
        match desired_key(rule, snapshot) {
            Ok(key) => {
                if !wanted.iter().any(|(k, _)| *k == key) {
                    wanted.push((key, rule));
                }
            }
            Err(why) => unresolved.push(why),
        }
    }
    let live_keys: BTreeSet<&RuleKey> = live_rules.iter().map(|r| &r.key).collect();
    let wanted_keys: BTreeSet<&RuleKey> = wanted.iter().map(|(k, _)| k).collect();

    let mut adds: Vec<&RuleKey> = Vec::new();
    let mut revokes: Vec<&RuleKey> = Vec::new();
    for (key, rule) in &wanted {
        if live_keys.contains(key) {
            continue;
        }
        adds.push(key);
        changes.push(Change::fix(
            &unit,
            "absent".into(),
            key.to_string(),
            format!(
                "ingress rule {} is declared but missing",
                rule_text(key, snapshot)
            ),
            enforce,
            Action::AuthorizeIngress {
                group_id: group.id.clone(),
                group_name: spec.name.clone(),
                rule: key.clone(),
                description: rule.description.clone(),
                source_account: rule.source.account().map(str::to_string),
            },
        ));
    }

    for why in &unresolved {
        changes.push(Change::report(
            "unresolved-rule",
            &unit,
            "unknown".into(),
            "declared rule".into(),
            format!("{why}; extra rules of this group are not revoked until it resolves"),
        ));
    }
    // A desired list with holes cannot tell an extra rule from a wanted one.
    let may_revoke = unresolved.is_empty();

    for live in live_rules {
        if wanted_keys.contains(&live.key) {
            continue;
        }
        let owned_by_other = spec.management == RuleManagement::Owned && !live.managed_by_us;
        if owned_by_other {
            changes.push(Change {
                kind: "foreign-rule".into(),
                resource: unit.to_string(),
                owner: unit.clone(),
                before: live.key.to_string(),
                after: live.key.to_string(),
                reason: format!(
                    "rule {} was not created by ecs-reconciler; left alone (management: owned)",
                    live.key
                ),
                disposition: Disposition::Info,
                hold: None,
                action: None,
            });
            continue;
        }
        if !may_revoke {
            continue;
        }
        let text = rule_text(&live.key, snapshot);
        let reason = match spec.management {
            RuleManagement::Exclusive => {
                format!("ingress rule {text} is not declared (management: exclusive)")
            }
            RuleManagement::Owned => format!(
                "ingress rule {text} was created by ecs-reconciler and is no longer declared"
            ),
        };
        revokes.push(&live.key);
        changes.push(Change::fix(
            &unit,
            live.key.to_string(),
            "absent".into(),
            reason,
            enforce,
            Action::RevokeIngress {
                group_id: group.id.clone(),
                group_name: spec.name.clone(),
                rule: live.key.clone(),
                rule_id: live.rule_id.clone(),
            },
        ));
    }

    let rules = GroupRules {
        live: live_rules.iter().map(|r| &r.key).collect(),
        adds,
        revokes,
    };
    changes.extend(quota::check(&unit, &spec.name, &rules, quotas, snapshot));
}
