//! Actions (the mutating calls a plan asks for) and the changes a plan
//! reports, each with its before/after and a human reason.

use serde::Serialize;

use crate::failure::ErrorClass;
use crate::snapshot::{RuleKey, TargetKey};
use crate::unit::UnitId;

/// One mutating AWS call's worth of intent. Granular on purpose (one rule,
/// one target) so a plan reads as a list of facts; the executor batches
/// neighbours into one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// UpdateService desiredCount.
    #[serde(rename_all = "camelCase")]
    ScaleService {
        /// The cluster the service runs in.
        cluster: String,
        /// The service's name.
        service: String,
        /// The new desiredCount.
        desired_count: i32,
    },
    /// AuthorizeSecurityGroupIngress for one rule, tagged as ours.
    #[serde(rename_all = "camelCase")]
    AuthorizeIngress {
        /// The group's id (`sg-...`), which the call needs.
        group_id: String,
        /// The group's name in the file.
        group_name: String,
        /// The rule to add.
        rule: RuleKey,
        /// The rule's description from the file, if any.
        description: Option<String>,
        /// The account owning the source group, when it is another
        /// account's (the call names it as the pair's `UserId`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_account: Option<String>,
    },
    /// RevokeSecurityGroupIngress for one rule.
    #[serde(rename_all = "camelCase")]
    RevokeIngress {
        /// The group's id (`sg-...`), which the call needs.
        group_id: String,
        /// The group's name in the file.
        group_name: String,
        /// The rule to remove.
        rule: RuleKey,
        /// The live rule's `sgr-...` id, used by the revoke when known.
        rule_id: Option<String>,
    },
    /// Attaches groups to an instance through its primary network interface
    /// (ModifyNetworkInterfaceAttribute, which works whatever other
    /// interfaces — a trunk ENI — it has; ModifyInstanceAttribute fails on
    /// such instances). The write replaces the whole list, so the executor
    /// reads the current list again right before it and writes that plus
    /// `attach`: a group attached by someone else since the pass's read is
    /// kept.
    #[serde(rename_all = "camelCase")]
    SetInstanceGroups {
        /// The EC2 instance (`i-...`).
        instance_id: String,
        /// Its primary network interface (device index 0).
        network_interface_id: String,
        /// The list the pass expects after the write: the groups it read,
        /// then `attach`.
        group_ids: Vec<String>,
        /// The declared groups it lacks.
        attach: Vec<String>,
    },
    /// SetSecurityGroups on a load balancer, which replaces the whole list:
    /// like [`Action::SetInstanceGroups`], the executor re-reads the list
    /// right before the write and adds `attach` to it.
    #[serde(rename_all = "camelCase")]
    SetLoadBalancerGroups {
        /// The load balancer's name in the file.
        load_balancer: String,
        /// The load balancer's ARN, which the call needs.
        arn: String,
        /// The list the pass expects after the write: the groups it read,
        /// then `attach`.
        group_ids: Vec<String>,
        /// The declared groups it lacks.
        attach: Vec<String>,
    },
    /// RegisterTargets for one (instance, port).
    #[serde(rename_all = "camelCase")]
    RegisterTarget {
        /// The target group's name in the file.
        target_group: String,
        /// The target group's ARN, which the call needs.
        arn: String,
        /// The (instance id, port) to register.
        target: TargetKey,
    },
    /// DeregisterTargets for one (instance, port).
    #[serde(rename_all = "camelCase")]
    DeregisterTarget {
        /// The target group's name in the file.
        target_group: String,
        /// The target group's ARN, which the call needs.
        arn: String,
        /// The (instance id, port) to deregister.
        target: TargetKey,
    },
    /// ModifyTargetGroup HealthCheckPath.
    #[serde(rename_all = "camelCase")]
    SetHealthCheckPath {
        /// The target group's name in the file.
        target_group: String,
        /// The target group's ARN, which the call needs.
        arn: String,
        /// The path the file asks for.
        path: String,
    },
}

impl Action {
    /// Execution phase: additive changes first, destructive ones last, so an
    /// interrupted pass never leaves fewer allowed paths or serving targets
    /// than before (authorize before revoke, register before deregister).
    pub fn phase(&self) -> u8 {
        match self {
            Action::AuthorizeIngress { .. } => 0,
            Action::SetInstanceGroups { .. } | Action::SetLoadBalancerGroups { .. } => 1,
            Action::SetHealthCheckPath { .. } => 2,
            Action::ScaleService { .. } => 3,
            Action::RegisterTarget { .. } => 4,
            Action::RevokeIngress { .. } => 5,
            Action::DeregisterTarget { .. } => 6,
        }
    }

    /// Removes access or capacity: a revoke or a deregistration. A scale-down
    /// is not counted here (the action does not know the live count);
    /// `drastic::takes_away` tells it from the change.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            Action::RevokeIngress { .. } | Action::DeregisterTarget { .. }
        )
    }

    /// Stable kebab-case name, used as [`Change::kind`] and in logs. For the
    /// two group-list actions it differs from the serde `kind` tag
    /// (`attach-instance-groups` here, `set-instance-groups` there).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::ScaleService { .. } => "scale-service",
            Action::AuthorizeIngress { .. } => "authorize-ingress",
            Action::RevokeIngress { .. } => "revoke-ingress",
            Action::SetInstanceGroups { .. } => "attach-instance-groups",
            Action::SetLoadBalancerGroups { .. } => "attach-load-balancer-groups",
            Action::RegisterTarget { .. } => "register-target",
            Action::DeregisterTarget { .. } => "deregister-target",
            Action::SetHealthCheckPath { .. } => "set-health-check-path",
        }
    }
}

/// What happens to a reported change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Will be applied.
    Apply,
    /// Drift on a resource in `observe` mode: reported, not applied.
    Observe,
    /// Drift ecs-reconciler never changes (launch type, a missing
    /// resource, ...): reported so a person can act.
    Report,
    /// Not drift: something worth knowing (e.g. a rule another writer owns
    /// in an `owned` group).
    Info,
    /// A destructive change over the policy's cap: not applied until a
    /// second consecutive complete observation agrees, or an operator
    /// overrides.
    Held,
}

impl Disposition {
    /// Whether the change counts as drift for exit codes.
    pub fn is_drift(self) -> bool {
        !matches!(self, Disposition::Info)
    }
}

/// Why a change that would otherwise be applied is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldReason {
    /// More removals than the policy's cap allows in one pass: released
    /// once a second complete observation agrees, or by an operator.
    DestructiveCap,
    /// A config edit cut the resource beyond the cap: released only by an
    /// operator (SIGUSR1, `apply --once --allow-destructive`) or a later
    /// edit that restores the members.
    DrasticEdit,
    /// Another writer keeps undoing this correction: left alone until the
    /// config changes or an operator clears it.
    Fight,
    /// The resource is `paused: true` in the file.
    Paused,
    /// This copy does not lead: only the leader writes.
    NotLeader,
    /// A target change one read cannot prove: ECS, ELBv2 and EC2 answer
    /// from eventually consistent stores, so a target is (re)registered or
    /// deregistered only once reads spanning the consistency window agree
    /// (see [`crate::sightings`]). Released by time, never by an operator.
    AwaitingConsistency,
    /// A deployment that owns target registrations is in progress (task
    /// sets of `CODE_DEPLOY` / `EXTERNAL` services, ECS blue/green, linear
    /// or canary): target changes wait until it completes. Released by
    /// time, never by an operator.
    Deployment,
}

impl HoldReason {
    /// Whether an operator's confirmation (SIGUSR1, `apply
    /// --allow-destructive`) releases it. Holds that protect what AWS is
    /// doing on purpose (a drain, a deployment) are not the operator's to
    /// cancel: they end when AWS is done.
    pub fn operator_may_release(self) -> bool {
        matches!(self, HoldReason::DestructiveCap | HoldReason::DrasticEdit)
    }
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Kebab-case kind: an action's kind, or a check's (`check-launch-type`,
    /// `missing-resource`, `foreign-rule`, ...).
    pub kind: String,
    /// `security-group/NAME`, `service/CLUSTER/NAME`, `instance/ID`, ...
    pub resource: String,
    /// The declared resource this change belongs to — the unit the daemon
    /// schedules.
    pub owner: UnitId,
    /// The state found.
    pub before: String,
    /// The state the file asks for.
    pub after: String,
    /// Why, for a person.
    pub reason: String,
    /// Whether it is applied, held, or only reported.
    pub disposition: Disposition,
    /// Why a change that would otherwise be applied is not (set with
    /// [`Disposition::Held`], and on paused resources' drift).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldReason>,
    /// The call that fixes it, if ecs-reconciler makes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

impl Change {
    /// A change of `owner` that an action fixes, with the disposition its
    /// resource's mode gives it.
    pub fn fix(
        owner: &UnitId,
        before: String,
        after: String,
        reason: String,
        enforce: bool,
        action: Action,
    ) -> Change {
        Change {
            kind: action.kind().to_string(),
            resource: owner.to_string(),
            owner: owner.clone(),
            before,
            after,
            reason,
            disposition: if enforce {
                Disposition::Apply
            } else {
                Disposition::Observe
            },
            hold: None,
            action: Some(action),
        }
    }

    /// The same change, on a resource other than its owner itself (an
    /// instance of a cluster's attachments).
    pub fn on_resource(mut self, resource: String) -> Change {
        self.resource = resource;
        self
    }

    /// A change of `owner` that only a person can make.
    pub fn report(
        kind: &str,
        owner: &UnitId,
        before: String,
        after: String,
        reason: String,
    ) -> Change {
        Change {
            kind: kind.to_string(),
            resource: owner.to_string(),
            owner: owner.clone(),
            before,
            after,
            reason,
            disposition: Disposition::Report,
            hold: None,
            action: None,
        }
    }

    /// Holds the change for `hold`, saying why in its reason.
    pub fn hold(&mut self, hold: HoldReason, why: &str) {
        self.disposition = Disposition::Held;
        self.reason = format!("{}; held: {why}", self.reason);
        self.hold = Some(hold);
    }

    /// The field this change corrects: corrections of one field in
    /// opposite directions (authorize/revoke, register/deregister) are the
    /// same field, which is what fight detection counts.
    pub fn field(&self) -> Option<String> {
        let field = match self.action.as_ref()? {
            Action::ScaleService {
                cluster, service, ..
            } => format!("replicas service/{cluster}/{service}"),
            Action::AuthorizeIngress {
                group_name, rule, ..
            }
            | Action::RevokeIngress {
                group_name, rule, ..
            } => format!("rule security-group/{group_name} {rule}"),
            Action::SetInstanceGroups { instance_id, .. } => {
                format!("groups instance/{instance_id}")
            }
            Action::SetLoadBalancerGroups { load_balancer, .. } => {
                format!("groups load-balancer/{load_balancer}")
            }
            Action::RegisterTarget {
                target_group,
                target,
                ..
            }
            | Action::DeregisterTarget {
                target_group,
                target,
                ..
            } => format!("target target-group/{target_group} {target}"),
            Action::SetHealthCheckPath { target_group, .. } => {
                format!("health-check-path target-group/{target_group}")
            }
        };
        Some(field)
    }
}

/// What happened to one executed change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// The call succeeded.
    #[serde(rename_all = "camelCase")]
    Applied {
        /// AWS's request id (one call may serve a batch of changes), when
        /// the response carried one.
        request_id: Option<String>,
    },
    /// AWS said it was already so (duplicate rule, rule already gone).
    AlreadyDone,
    /// Not attempted: an earlier change to the same resource failed, or the
    /// process is shutting down.
    Skipped {
        /// Why it was not attempted.
        reason: String,
    },
    /// The call failed.
    Failed {
        /// What failed, in one sentence.
        error: String,
        /// The class of the failure, which decides how soon it is retried.
        class: ErrorClass,
    },
}

/// One change and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    /// The change that was executed (or skipped).
    pub change: Change,
    /// What happened; flattened, so its `result` and fields sit beside
    /// `change` in JSON.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// What the reads around a replace-style write (a group list) saw of
    /// other writers; also written into the change's reason.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "otherWriters"
    )]
    pub other_writers: Vec<GroupListNotice>,
}

/// Something another writer did to a group list around this controller's
/// write of it: never silently lost, counted and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GroupListNotice {
    /// Groups the pass saw that were gone when the list was read again
    /// right before the write; left as they are.
    DetachedBeforeWrite {
        /// Group ids.
        groups: Vec<String>,
    },
    /// Groups the write named that a read right after it lacks.
    MissingAfterWrite {
        /// Group ids.
        groups: Vec<String>,
    },
}

impl GroupListNotice {
    /// The label the metric counts it by.
    pub fn kind(&self) -> &'static str {
        match self {
            GroupListNotice::DetachedBeforeWrite { .. } => "detached-before-write",
            GroupListNotice::MissingAfterWrite { .. } => "missing-after-write",
        }
    }

    /// The groups concerned.
    pub fn groups(&self) -> &[String] {
        match self {
            GroupListNotice::DetachedBeforeWrite { groups }
            | GroupListNotice::MissingAfterWrite { groups } => groups,
        }
    }
}

impl std::fmt::Display for GroupListNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupListNotice::DetachedBeforeWrite { groups } => write!(
                f,
                "{} detached by another writer since this pass's read; left as it is",
                groups.join(", ")
            ),
            GroupListNotice::MissingAfterWrite { groups } => write!(
                f,
                "a read right after the write lacks {} (another writer, or a read that lags the write; the next pass checks again)",
                groups.join(", ")
            ),
        }
    }
}

impl ActionOutcome {
    /// Applied, or already so: the live state now has what the change asked.
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, Outcome::Applied { .. } | Outcome::AlreadyDone)
    }
}
