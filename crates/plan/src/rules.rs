//! Security-group ingress: desired rules × live rules → authorize / revoke.
//!
//! Rules are compared in normalised form ([`RuleKey`]): protocol names and
//! numbers are one, CIDRs canonical, descriptions ignored. A group's revokes
//! are planned only when every desired rule could be resolved (a source group
//! that cannot be found makes the desired list itself unknown).

use std::collections::BTreeSet;

use ecs_reconciler_spec::{
    DesiredState, IngressRule, Mode, RuleManagement, RuleSource, SecurityGroupSpec,
};

use crate::action::{Action, Change, Disposition};
use crate::snapshot::{LiveSource, Observed, RuleKey, Snapshot};
use crate::unit::UnitId;

/// Plans every declared group's ingress changes.
pub fn diff(desired: &DesiredState, snapshot: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for spec in &desired.security_groups {
        diff_group(spec, snapshot, &mut changes);
    }
    changes
}

/// The live form of a desired rule's source, or why it has none yet.
pub fn resolve_source(source: &RuleSource, snapshot: &Snapshot) -> Result<LiveSource, String> {
    match source {
        RuleSource::Ipv4(net) => Ok(LiveSource::Ipv4(net.trunc())),
        RuleSource::Ipv6(net) => Ok(LiveSource::Ipv6(net.trunc())),
        RuleSource::ExternalGroup(id) => Ok(LiveSource::Group(id.clone())),
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

fn diff_group(spec: &SecurityGroupSpec, snapshot: &Snapshot, changes: &mut Vec<Change>) {
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

    for (key, rule) in &wanted {
        if live_keys.contains(key) {
            continue;
        }
        changes.push(Change::fix(
            &unit,
            "absent".into(),
            key.to_string(),
            format!("ingress rule {key} is declared but missing"),
            enforce,
            Action::AuthorizeIngress {
                group_id: group.id.clone(),
                group_name: spec.name.clone(),
                rule: key.clone(),
                description: rule.description.clone(),
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
        let reason = match spec.management {
            RuleManagement::Exclusive => format!(
                "ingress rule {} is not declared (management: exclusive)",
                live.key
            ),
            RuleManagement::Owned => format!(
                "ingress rule {} was created by ecs-reconciler and is no longer declared",
                live.key
            ),
        };
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
}
