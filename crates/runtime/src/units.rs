//! The units of a desired state with a fingerprint of each one's spec, so
//! a config edit makes exactly the edited units due.

use std::hash::{Hash, Hasher};

use ecs_reconciler_plan::UnitId;
use ecs_reconciler_spec::DesiredState;
use serde::Serialize;

/// Every declared unit with its spec's fingerprint, in file order.
pub fn units_of(desired: &DesiredState) -> Vec<(UnitId, u64)> {
    fn fingerprint<T: Serialize>(value: &T, extra: &impl Serialize) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        serde_json::to_string(value)
            .unwrap_or_default()
            .hash(&mut hasher);
        serde_json::to_string(extra)
            .unwrap_or_default()
            .hash(&mut hasher);
        hasher.finish()
    }
    let mut out = Vec::new();
    // A group's desired rules depend on the groups they reference (their
    // ids), so every group unit also hashes the set of declared names.
    let names: Vec<&str> = desired
        .security_groups
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    for group in &desired.security_groups {
        out.push((
            UnitId::security_group(&group.name),
            fingerprint(group, &names),
        ));
    }
    for cluster in &desired.clusters {
        out.push((UnitId::cluster(&cluster.name), fingerprint(cluster, &())));
    }
    for service in &desired.services {
        out.push((
            UnitId::service(&service.cluster, &service.name),
            fingerprint(service, &()),
        ));
    }
    for tg in &desired.target_groups {
        out.push((UnitId::target_group(&tg.name), fingerprint(tg, &())));
    }
    for lb in &desired.load_balancers {
        out.push((UnitId::load_balancer(&lb.name), fingerprint(lb, &())));
    }
    out
}
