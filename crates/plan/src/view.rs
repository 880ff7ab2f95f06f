//! Desired vs live, per declared resource, as small JSON documents for the
//! status API and the dashboard. Pure presentation of desired × snapshot:
//! the diff itself lives in the other modules. `live` is `null` when that
//! part could not be read or does not exist.
//!
//! The documents are kept as compact JSON text, not `Value` trees: the
//! status holds one per unit for the life of the process, and at 2,000
//! units the trees cost several times the text.

use std::collections::BTreeMap;

use ecs_reconciler_spec::{DesiredState, Mode};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::rules::desired_key;
use crate::snapshot::{LiveSource, Observed, RuleKey, Snapshot};
use crate::unit::{UnitId, UnitKind};

/// A rule as a person reads it: a referenced group by its declared name,
/// a prefix list by its name.
fn rule_text(key: &RuleKey, group_name: &dyn Fn(&str) -> String, snapshot: &Snapshot) -> String {
    match &key.source {
        LiveSource::Group(id) => key.text_with(&format!("group {}", group_name(id))),
        _ => crate::rules::rule_text(key, snapshot),
    }
}

/// One declared resource, as a person compares it.
#[derive(Debug, Clone, Serialize)]
pub struct UnitView {
    /// What kind of resource it is.
    pub kind: UnitKind,
    /// Its name in the file; `CLUSTER/NAME` for a service.
    pub name: String,
    /// Its mode in the file.
    pub mode: Mode,
    /// What the file asks for, as compact JSON.
    pub desired: Box<RawValue>,
    /// What was found, as compact JSON; `null` when it could not be read or
    /// was not found (and so is any part inside that could not be read).
    pub live: Box<RawValue>,
}

/// A view while it is built; stored as [`UnitView`] right away, so the
/// trees of all units never exist at once.
struct Draft {
    name: String,
    mode: Mode,
    desired: Value,
    live: Value,
}

fn insert(out: &mut BTreeMap<UnitId, UnitView>, unit: UnitId, draft: Draft) {
    let kind = unit.kind();
    let compact =
        |value: &Value| serde_json::value::to_raw_value(value).expect("JSON values serialize");
    out.insert(
        unit,
        UnitView {
            kind,
            name: draft.name,
            mode: draft.mode,
            desired: compact(&draft.desired),
            live: compact(&draft.live),
        },
    );
}

/// Views of every declared resource, keyed like `Change::owner`.
pub fn views(desired: &DesiredState, snapshot: &Snapshot) -> BTreeMap<UnitId, UnitView> {
    let mut out = BTreeMap::new();
    let group_name = |id: &str| -> String {
        snapshot
            .security_groups
            .iter()
            .find_map(|(name, g)| match g {
                Observed::Known(Some(g)) if g.id == id => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_else(|| id.to_string())
    };

    for spec in &desired.security_groups {
        // Desired rules as the file says them (groups by name); live ones
        // with group ids turned back into declared names where possible.
        let rules: Vec<String> = spec
            .ingress
            .iter()
            .map(|rule| match desired_key(rule, snapshot) {
                Ok(key) => rule_text(&key, &group_name, snapshot),
                Err(_) => format!("{} {} from {}", rule.protocol, rule.ports, rule.source),
            })
            .collect();
        let live = match snapshot.security_groups.get(&spec.name) {
            Some(Observed::Known(Some(group))) => match &group.ingress {
                Observed::Known(rules) => json!({
                    "id": group.id,
                    "rules": rules.iter().map(|r| json!({"rule": rule_text(&r.key, &group_name, snapshot), "ours": r.managed_by_us})).collect::<Vec<_>>(),
                }),
                Observed::Unknown(_) => json!({"id": group.id, "rules": null}),
            },
            _ => Value::Null,
        };
        insert(
            &mut out,
            UnitId::security_group(&spec.name),
            Draft {
                name: spec.name.clone(),
                mode: spec.mode,
                desired: json!({"rules": rules, "management": spec.management}),
                live,
            },
        );
    }

    for spec in &desired.clusters {
        let live = snapshot
            .clusters
            .get(&spec.name)
            .and_then(|c| c.container_instances.known())
            .map(|cis| {
                let instances: Vec<Value> = cis
                    .iter()
                    .filter_map(|ci| ci.ec2_instance_id.as_ref())
                    .map(|id| match snapshot.instances.get(id) {
                        Some(Observed::Known(instance)) => {
                            let groups: Vec<String> = instance
                                .security_group_ids
                                .iter()
                                .map(|g| group_name(g))
                                .collect();
                            let missing: Vec<&String> = spec
                                .instance_security_groups
                                .iter()
                                .filter(|name| !groups.contains(name))
                                .collect();
                            json!({"id": id, "groups": groups, "missing": missing})
                        }
                        _ => json!({"id": id, "groups": null, "missing": null}),
                    })
                    .collect();
                json!({ "instances": instances })
            })
            .unwrap_or(Value::Null);
        insert(
            &mut out,
            UnitId::cluster(&spec.name),
            Draft {
                name: spec.name.clone(),
                mode: spec.mode,
                desired: json!({"groups": spec.instance_security_groups}),
                live,
            },
        );
    }

    for spec in &desired.services {
        let key = (spec.cluster.clone(), spec.name.clone());
        let live = match snapshot.services.get(&key) {
            Some(Observed::Known(Some(s))) => json!({
                "status": s.status,
                "desiredCount": s.desired_count,
                "runningCount": s.running_count,
                "pendingCount": s.pending_count,
                "launchType": s.launch_type,
                "schedulingStrategy": s.scheduling_strategy,
            }),
            _ => Value::Null,
        };
        insert(
            &mut out,
            UnitId::service(&spec.cluster, &spec.name),
            Draft {
                name: format!("{}/{}", spec.cluster, spec.name),
                mode: spec.mode,
                desired: json!({
                    "replicas": spec.replicas.to_string(),
                    "replicasMin": spec.replicas.min,
                    "replicasMax": spec.replicas.max,
                    "launchType": spec.launch_type,
                    "schedulingStrategy": spec.scheduling_strategy,
                }),
                live,
            },
        );
    }

    for spec in &desired.target_groups {
        let live = match snapshot.target_groups.get(&spec.name) {
            Some(Observed::Known(Some(tg))) => json!({
                "healthCheckPath": tg.health_check_path,
                "targets": tg.targets.known().map(|targets| targets
                    .iter()
                    .map(|t| json!({"target": t.key.to_string(), "state": t.state}))
                    .collect::<Vec<_>>()),
            }),
            _ => Value::Null,
        };
        insert(
            &mut out,
            UnitId::target_group(&spec.name),
            Draft {
                name: spec.name.clone(),
                mode: spec.mode,
                desired: json!({
                    "healthCheckPath": spec.health_check_path,
                    "membership": spec.membership,
                    "service": format!("{}/{}", spec.cluster, spec.service),
                }),
                live,
            },
        );
    }

    for spec in &desired.load_balancers {
        let live = match snapshot.load_balancers.get(&spec.name) {
            Some(Observed::Known(Some(lb))) => json!({
                "dnsName": lb.dns_name,
                "groups": lb.security_group_ids.iter().map(|g| group_name(g)).collect::<Vec<_>>(),
                "listeners": lb.listeners.known().map(|ls| ls
                    .iter()
                    .map(|l| format!("{} {}", l.protocol.as_deref().unwrap_or("?"), l.port))
                    .collect::<Vec<_>>()),
            }),
            _ => Value::Null,
        };
        insert(
            &mut out,
            UnitId::load_balancer(&spec.name),
            Draft {
                name: spec.name.clone(),
                mode: spec.mode,
                desired: json!({"groups": spec.security_groups}),
                live,
            },
        );
    }
    out
}
