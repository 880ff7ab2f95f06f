//! Who owns a service's target registrations right now: ECS's rolling
//! scheduler (then every serving task belongs in the target group), or a
//! deployment that shifts traffic itself.
//!
//! With the `CODE_DEPLOY` or `EXTERNAL` deployment controller a service
//! runs task sets; replacement tasks carry the same `service:NAME` group
//! as production ones but must not get production traffic until the
//! shift. ECS's own `BLUE_GREEN`, `LINEAR` and `CANARY` strategies do the
//! same with deployments. While such a deployment is in progress, the
//! target changes of the service's target groups are held; outside one,
//! only the tasks of the `PRIMARY` task set (or deployment) serve.

use std::collections::BTreeSet;

use crate::snapshot::{LiveService, LiveTask};

/// Who decides which targets a service's target group holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registrations {
    /// The tasks do: every serving task's target belongs (those started
    /// by the given deployments or task sets only, when `Some`).
    Tasks {
        /// `startedBy` values whose tasks serve; `None`: any task.
        started_by: Option<BTreeSet<String>>,
    },
    /// A deployment that moves traffic itself is in progress: every
    /// target change is held; the changes shown are computed against the
    /// production tasks, when they can be told.
    Deployment {
        /// What it is, for the held changes' reason.
        why: String,
        /// `startedBy` of the production tasks (the `PRIMARY` task set);
        /// `None` when the reads cannot tell them (ECS blue/green).
        production: Option<BTreeSet<String>>,
    },
}

impl Registrations {
    /// Whether `task`, if serving, belongs in the target group.
    pub fn serves(&self, task: &LiveTask) -> bool {
        let ids = match self {
            Registrations::Tasks { started_by: None } => return true,
            Registrations::Tasks {
                started_by: Some(ids),
            }
            | Registrations::Deployment {
                production: Some(ids),
                ..
            } => ids,
            Registrations::Deployment {
                production: None, ..
            } => return false,
        };
        task.started_by
            .as_deref()
            .is_some_and(|id| ids.contains(id))
    }
}

/// Whether the service runs task sets.
fn uses_task_sets(service: &LiveService) -> Option<&str> {
    match service.deployment_controller.as_deref() {
        Some(controller @ ("CODE_DEPLOY" | "EXTERNAL")) => Some(controller),
        _ => None,
    }
}

/// Whether ECS's own deployment shifts traffic between target groups.
fn shifts_traffic(service: &LiveService) -> Option<&str> {
    match service.deployment_strategy.as_deref() {
        Some(strategy @ ("BLUE_GREEN" | "LINEAR" | "CANARY")) => Some(strategy),
        _ => None,
    }
}

/// Who owns `service`'s registrations now.
pub fn registrations(service: &LiveService) -> Registrations {
    if let Some(controller) = uses_task_sets(service) {
        let steady = match service.task_sets.as_slice() {
            [] => true,
            [only] => {
                only.status == "PRIMARY" && only.stability_status.as_deref() != Some("STABILIZING")
            }
            _ => false,
        };
        let primary: BTreeSet<String> = service
            .task_sets
            .iter()
            .filter(|set| set.status == "PRIMARY")
            .map(|set| set.id.clone())
            .collect();
        if !steady {
            let sets: Vec<String> = service
                .task_sets
                .iter()
                .map(|set| format!("{} ({})", set.id, set.status))
                .collect();
            return Registrations::Deployment {
                why: format!(
                    "{} owns registrations during a deployment (task sets {})",
                    if controller == "CODE_DEPLOY" {
                        "CodeDeploy"
                    } else {
                        "the external deployment controller"
                    },
                    sets.join(", ")
                ),
                production: Some(primary),
            };
        }
        return Registrations::Tasks {
            started_by: Some(primary),
        };
    }
    if let Some(strategy) = shifts_traffic(service) {
        let in_progress = service.deployments.len() > 1
            || service
                .deployments
                .iter()
                .any(|d| d.rollout_state.as_deref() == Some("IN_PROGRESS"));
        if in_progress {
            let deployments: Vec<String> = service
                .deployments
                .iter()
                .map(|d| {
                    format!(
                        "{} ({}{})",
                        d.id,
                        d.status,
                        d.rollout_state
                            .as_deref()
                            .map(|s| format!(", {s}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            return Registrations::Deployment {
                why: format!(
                    "ECS owns registrations during a {strategy} deployment ({})",
                    deployments.join(", ")
                ),
                production: None,
            };
        }
        let primary: BTreeSet<String> = service
            .deployments
            .iter()
            .filter(|d| d.status == "PRIMARY")
            .map(|d| d.id.clone())
            .collect();
        return Registrations::Tasks {
            started_by: (!primary.is_empty()).then_some(primary),
        };
    }
    Registrations::Tasks { started_by: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{LiveDeployment, LiveTaskSet};

    fn set(id: &str, status: &str) -> LiveTaskSet {
        LiveTaskSet {
            id: id.into(),
            status: status.into(),
            stability_status: Some("STEADY_STATE".into()),
        }
    }

    fn deployment(id: &str, status: &str, rollout: &str) -> LiveDeployment {
        LiveDeployment {
            id: id.into(),
            status: status.into(),
            rollout_state: Some(rollout.into()),
        }
    }

    #[test]
    fn a_rolling_service_lets_every_serving_task_serve_even_mid_deployment() {
        let service = LiveService {
            deployments: vec![
                deployment("new", "PRIMARY", "IN_PROGRESS"),
                deployment("old", "ACTIVE", "COMPLETED"),
            ],
            ..LiveService::default()
        };
        assert_eq!(
            registrations(&service),
            Registrations::Tasks { started_by: None }
        );
    }

    #[test]
    fn task_sets_in_flux_are_a_deployment_and_a_steady_one_serves_only_its_primary() {
        let mut service = LiveService {
            deployment_controller: Some("CODE_DEPLOY".into()),
            task_sets: vec![set("blue", "PRIMARY"), set("green", "ACTIVE")],
            ..LiveService::default()
        };
        let Registrations::Deployment { why, .. } = registrations(&service) else {
            panic!("two task sets are a deployment");
        };
        assert!(
            why.contains("CodeDeploy") && why.contains("green (ACTIVE)"),
            "{why}"
        );

        service.task_sets = vec![set("green", "PRIMARY")];
        let owner = registrations(&service);
        let task = |started_by: &str| LiveTask {
            arn: "t".into(),
            service: Some("s".into()),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            container_instance_arn: None,
            bindings: Vec::new(),
            started_by: Some(started_by.into()),
        };
        assert!(owner.serves(&task("green")));
        assert!(!owner.serves(&task("blue")));

        service.task_sets[0].stability_status = Some("STABILIZING".into());
        assert!(matches!(
            registrations(&service),
            Registrations::Deployment { .. }
        ));
    }

    #[test]
    fn an_ecs_blue_green_deployment_in_progress_owns_registrations() {
        let mut service = LiveService {
            deployment_strategy: Some("BLUE_GREEN".into()),
            deployments: vec![deployment("d2", "PRIMARY", "IN_PROGRESS")],
            ..LiveService::default()
        };
        assert!(matches!(
            registrations(&service),
            Registrations::Deployment { .. }
        ));
        service.deployments = vec![deployment("d2", "PRIMARY", "COMPLETED")];
        assert_eq!(
            registrations(&service),
            Registrations::Tasks {
                started_by: Some(BTreeSet::from(["d2".to_string()]))
            }
        );
    }
}
