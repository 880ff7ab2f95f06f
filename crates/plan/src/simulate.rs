//! What a snapshot would look like after an action succeeded: the model of
//! AWS that the property tests check plans against ("applying the plan yields
//! the desired state"). Pure; never used to skip a real observation.

use crate::action::Action;
use crate::snapshot::{LiveRule, LiveTarget, Observed, Snapshot};

/// Applies one action to the snapshot, as AWS would.
pub fn apply(snapshot: &mut Snapshot, action: &Action) {
    match action {
        Action::ScaleService {
            cluster,
            service,
            desired_count,
        } => {
            let key = (cluster.clone(), service.clone());
            if let Some(Observed::Known(Some(live))) = snapshot.services.get_mut(&key) {
                live.desired_count = *desired_count;
            }
        }
        Action::AuthorizeIngress {
            group_name,
            rule,
            description,
            ..
        } => {
            if let Some(rules) = ingress_of(snapshot, group_name)
                && !rules.iter().any(|r| r.key == *rule)
            {
                rules.push(LiveRule {
                    rule_id: None,
                    key: rule.clone(),
                    description: description.clone(),
                    managed_by_us: true,
                    source_account: None,
                });
            }
        }
        Action::RevokeIngress {
            group_name, rule, ..
        } => {
            if let Some(rules) = ingress_of(snapshot, group_name) {
                rules.retain(|r| r.key != *rule);
            }
        }
        Action::SetInstanceGroups {
            instance_id,
            group_ids,
            ..
        } => {
            if let Some(Observed::Known(instance)) = snapshot.instances.get_mut(instance_id) {
                instance.security_group_ids = group_ids.clone();
            }
        }
        Action::SetLoadBalancerGroups {
            load_balancer,
            group_ids,
            ..
        } => {
            if let Some(Observed::Known(Some(lb))) = snapshot.load_balancers.get_mut(load_balancer)
            {
                lb.security_group_ids = group_ids.clone();
            }
        }
        Action::RegisterTarget {
            target_group,
            target,
            ..
        } => {
            if let Some(targets) = targets_of(snapshot, target_group) {
                targets.retain(|t| t.key != *target);
                targets.push(LiveTarget {
                    key: target.clone(),
                    state: "initial".into(),
                });
            }
        }
        Action::DeregisterTarget {
            target_group,
            target,
            ..
        } => {
            if let Some(targets) = targets_of(snapshot, target_group) {
                for live in targets.iter_mut().filter(|t| t.key == *target) {
                    live.state = "draining".into();
                }
            }
        }
        Action::SetHealthCheckPath {
            target_group, path, ..
        } => {
            if let Some(Observed::Known(Some(tg))) = snapshot.target_groups.get_mut(target_group) {
                tg.health_check_path = Some(path.clone());
            }
        }
    }
}

fn ingress_of<'a>(snapshot: &'a mut Snapshot, group: &str) -> Option<&'a mut Vec<LiveRule>> {
    match snapshot.security_groups.get_mut(group) {
        Some(Observed::Known(Some(g))) => g.ingress.known_mut(),
        _ => None,
    }
}

fn targets_of<'a>(snapshot: &'a mut Snapshot, group: &str) -> Option<&'a mut Vec<LiveTarget>> {
    match snapshot.target_groups.get_mut(group) {
        Some(Observed::Known(Some(tg))) => tg.targets.known_mut(),
        _ => None,
    }
}
