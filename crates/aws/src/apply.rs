//! Executing a plan's actions: in order, idempotently, batched where the API
//! allows (rules per group, targets in chunks of 200), every mutating call
//! logged with what it changed and why.
//!
//! `InvalidPermission.Duplicate` on authorize and `NotFound` on revoke mean
//! the change is already there. When an authorize to a group fails, the
//! revokes of that group are skipped for this pass, so a failure between
//! "authorize" and "revoke" never leaves fewer allowed paths than before.
//! A failed target registration holds nothing back: the plan deregisters
//! only targets that match no serving task, so removing them never takes
//! serving capacity away, whatever else failed — a stale or rogue target
//! does not survive because one registration (say, for an instance that
//! just stopped) failed.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, ResourceType, Tag, TagSpecification, UserIdGroupPair,
};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use ecs_reconciler_plan::{Action, ActionOutcome, Change, LiveSource, Outcome, RuleKey, TargetKey};
use ecs_reconciler_spec::Protocol;

use aws_sdk_ec2::operation::RequestId;

use crate::budget::ApiClass;
use crate::error::{AwsError, ErrorKind};
use crate::{Aws, OWNER_TAG_KEY, OWNER_TAG_VALUE};

/// RegisterTargets / DeregisterTargets: targets per call.
pub const TARGETS_PER_CALL: usize = 200;

/// Executes the changes that carry an action, in the given order.
pub async fn execute(aws: &Aws, changes: &[Change]) -> Vec<ActionOutcome> {
    execute_until(aws, changes, &|| false).await
}

/// Like [`execute`], but starts no new call once `stop` says so (shutdown):
/// calls in flight finish, the rest are reported as skipped.
pub async fn execute_until(
    aws: &Aws,
    changes: &[Change],
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<ActionOutcome> {
    let runnable: Vec<&Change> = changes.iter().filter(|c| c.action.is_some()).collect();
    let mut outcomes = Vec::with_capacity(runnable.len());
    // Groups with a failed authorize: the rules that failed, and where
    // their outcomes are (to retry those the rule quota refused).
    let mut tainted: BTreeMap<String, FailedAuthorizes> = BTreeMap::new();
    let mut start = 0;
    while start < runnable.len() {
        let key = batch_key(action_of(runnable[start]));
        let mut end = start + 1;
        if let Some(key) = &key {
            while end < runnable.len()
                && end - start < TARGETS_PER_CALL
                && batch_key(action_of(runnable[end])).as_ref() == Some(key)
            {
                end += 1;
            }
        }
        let batch = &runnable[start..end];
        let first = action_of(batch[0]);
        let resource = resource_key(first);
        let mut notices = Vec::new();
        let results = if stop() {
            vec![
                Outcome::Skipped {
                    reason: "shutting down".into(),
                };
                batch.len()
            ]
        } else if let (Action::RevokeIngress { .. }, Some(failed)) =
            (first, tainted.get_mut(&resource))
        {
            revoke_around(aws, batch, failed).await
        } else if let Some(attached) = crate::attach::run(aws, first).await {
            notices = attached.notices;
            vec![attached.outcome]
        } else {
            if let Action::RegisterTarget { target_group, .. }
            | Action::DeregisterTarget { target_group, .. }
            | Action::SetHealthCheckPath { target_group, .. } = first
            {
                // Whatever the outcome, the next pass reads it afresh.
                aws.memory.target_reads.touched(target_group);
            }
            run_batch(aws, batch).await
        };
        for (change, outcome) in batch.iter().zip(results) {
            log_outcome(change, &outcome);
            if let (Outcome::Failed { error, .. }, Action::AuthorizeIngress { rule, .. }) =
                (&outcome, action_of(change))
            {
                let failed = tainted.entry(resource.clone()).or_default();
                failed.rules.push(rule.clone());
                if error.contains(RULE_QUOTA_CODE) {
                    failed.over_quota.push(outcomes.len());
                } else {
                    failed.other_failure = true;
                }
            }
            let mut change = (*change).clone();
            for notice in &notices {
                // What the reads around the write saw of other writers goes
                // with the change: into the log, the audit line, the status.
                change.reason = format!("{}; {notice}", change.reason);
            }
            outcomes.push(ActionOutcome {
                change,
                outcome,
                other_writers: notices.clone(),
            });
        }
        start = end;
    }
    retry_after_revokes(aws, &tainted, &mut outcomes, stop).await;
    outcomes
}

/// The error code of an authorize that would exceed the group's rule quota.
const RULE_QUOTA_CODE: &str = "RulesPerSecurityGroupLimitExceeded";

/// The authorizes of one group that failed in this pass.
#[derive(Debug, Default)]
struct FailedAuthorizes {
    /// Their rules.
    rules: Vec<RuleKey>,
    /// Indexes (in the outcomes) of those the rule quota refused.
    over_quota: Vec<usize>,
    /// One failed for another reason (throttled, 5xx, denied): every
    /// revoke of the group waits, as the failure says nothing about room.
    other_failure: bool,
    /// Whether a revoke of the group went through afterwards (room made).
    revoked: bool,
}

/// Revokes of a group whose authorize failed this pass. After a failure
/// that says nothing about room (throttled, 5xx, denied) every revoke
/// waits, so a failure between "authorize" and "revoke" never leaves fewer
/// allowed paths. After the rule quota refused the add, only revokes that
/// may carry the traffic it was to take over (same protocol, overlapping
/// ports) wait; any other — a rogue `tcp 22 from 0.0.0.0/0` filling the
/// group — goes, and the add is retried once they made room.
async fn revoke_around(
    aws: &Aws,
    batch: &[&Change],
    failed: &mut FailedAuthorizes,
) -> Vec<Outcome> {
    let held = |change: &Change| match action_of(change) {
        Action::RevokeIngress { rule, .. } => {
            failed.other_failure || failed.rules.iter().any(|f| f.may_carry_same_traffic(rule))
        }
        _ => false,
    };
    let free: Vec<&Change> = batch.iter().copied().filter(|c| !held(c)).collect();
    let results = if free.is_empty() {
        Vec::new()
    } else {
        run_batch(aws, &free).await
    };
    failed.revoked |= results.iter().any(|o| matches!(o, Outcome::Applied { .. }));
    let mut done = results.into_iter();
    batch
        .iter()
        .map(|change| {
            if held(change) {
                Outcome::Skipped {
                    reason: "an authorize to this group failed in this pass, and this rule may carry the traffic it was to take over".into(),
                }
            } else {
                done.next().unwrap_or(Outcome::Skipped {
                    reason: "not run".into(),
                })
            }
        })
        .collect()
}

/// Authorizes the rule quota refused are tried once more after the pass's
/// revokes of their group made room.
async fn retry_after_revokes(
    aws: &Aws,
    tainted: &BTreeMap<String, FailedAuthorizes>,
    outcomes: &mut [ActionOutcome],
    stop: &(dyn Fn() -> bool + Sync),
) {
    for failed in tainted.values().filter(|f| f.revoked) {
        for index in &failed.over_quota {
            if stop() {
                return;
            }
            let Some(outcome) = outcomes.get_mut(*index) else {
                continue;
            };
            let retried = single(aws, action_of(&outcome.change)).await;
            tracing::info!(
                resource = %outcome.change.resource,
                rule = %outcome.change.after,
                retried = ?retried,
                "authorize retried after revokes made room under the rule quota"
            );
            outcome.outcome = retried;
        }
    }
}

fn action_of(change: &Change) -> &Action {
    change
        .action
        .as_ref()
        .expect("filtered to changes with actions")
}

/// Changes with the same key go in one call.
fn batch_key(action: &Action) -> Option<String> {
    match action {
        Action::AuthorizeIngress { group_id, .. } | Action::RevokeIngress { group_id, .. } => {
            Some(format!("{}:{group_id}", action.kind()))
        }
        Action::RegisterTarget { arn, .. } | Action::DeregisterTarget { arn, .. } => {
            Some(format!("{}:{arn}", action.kind()))
        }
        _ => None,
    }
}

/// The AWS resource an action changes.
fn resource_key(action: &Action) -> String {
    match action {
        Action::AuthorizeIngress { group_id, .. } | Action::RevokeIngress { group_id, .. } => {
            group_id.clone()
        }
        Action::RegisterTarget { arn, .. }
        | Action::DeregisterTarget { arn, .. }
        | Action::SetHealthCheckPath { arn, .. }
        | Action::SetLoadBalancerGroups { arn, .. } => arn.clone(),
        Action::SetInstanceGroups { instance_id, .. } => instance_id.clone(),
        Action::ScaleService {
            cluster, service, ..
        } => format!("{cluster}/{service}"),
    }
}

fn log_outcome(change: &Change, outcome: &Outcome) {
    let action = action_of(change);
    match outcome {
        Outcome::Applied { .. } | Outcome::AlreadyDone => tracing::info!(
            action = action.kind(),
            resource = %change.resource,
            before = %change.before,
            after = %change.after,
            reason = %change.reason,
            already_done = matches!(outcome, Outcome::AlreadyDone),
            "changed"
        ),
        Outcome::Skipped { reason } => tracing::warn!(
            action = action.kind(),
            resource = %change.resource,
            skipped = %reason,
            "not changed"
        ),
        Outcome::Failed { error, class } => tracing::warn!(
            action = action.kind(),
            resource = %change.resource,
            error = %error,
            class = %class,
            reason = %change.reason,
            "change failed"
        ),
    }
}

async fn run_batch(aws: &Aws, batch: &[&Change]) -> Vec<Outcome> {
    let actions: Vec<&Action> = batch.iter().map(|c| action_of(c)).collect();
    let result = run_actions(aws, &actions).await;
    match result {
        Ok(request_id) => vec![Outcome::Applied { request_id }; batch.len()],
        // One duplicate (or already-gone) rule fails the whole batch: retry
        // one by one so the others still happen and this one counts as done.
        Err(err) if batch.len() > 1 && is_already_done(actions[0], &err) => {
            let mut out = Vec::with_capacity(batch.len());
            for action in actions {
                out.push(single(aws, action).await);
            }
            out
        }
        Err(err) if is_already_done(actions[0], &err) => vec![Outcome::AlreadyDone],
        // One bad member (a target on a stopped instance, a rule over the
        // group's limit) must not block the others: retry one by one, so
        // only what really fails is reported (and taints its resource).
        Err(_) if batch.len() > 1 => {
            let mut out = Vec::with_capacity(batch.len());
            for action in actions {
                out.push(single(aws, action).await);
            }
            out
        }
        Err(err) => vec![Outcome::Failed {
            error: err.to_string(),
            class: err.kind,
        }],
    }
}

async fn single(aws: &Aws, action: &Action) -> Outcome {
    match run_actions(aws, &[action]).await {
        Ok(request_id) => Outcome::Applied { request_id },
        Err(err) if is_already_done(action, &err) => Outcome::AlreadyDone,
        Err(err) => Outcome::Failed {
            error: err.to_string(),
            class: err.kind,
        },
    }
}

fn is_already_done(action: &Action, err: &AwsError) -> bool {
    match action {
        Action::AuthorizeIngress { .. } => err.is_code("InvalidPermission.Duplicate"),
        Action::RevokeIngress { .. } => err.kind == ErrorKind::NotFound,
        _ => false,
    }
}

/// One API call for a batch of same-kind actions on one resource; returns
/// the request id AWS gave it (for the audit trail).
async fn run_actions(aws: &Aws, actions: &[&Action]) -> Result<Option<String>, AwsError> {
    // One call, one token of its class (the budget paces the writes too).
    let class = match actions[0] {
        Action::ScaleService { .. } => ApiClass::EcsWrite,
        Action::AuthorizeIngress { .. }
        | Action::RevokeIngress { .. }
        | Action::SetInstanceGroups { .. } => ApiClass::Ec2Write,
        Action::SetLoadBalancerGroups { .. }
        | Action::RegisterTarget { .. }
        | Action::DeregisterTarget { .. }
        | Action::SetHealthCheckPath { .. } => ApiClass::ElbWrite,
    };
    aws.budget.acquire(class).await;
    let request_id = match actions[0] {
        Action::ScaleService {
            cluster,
            service,
            desired_count,
        } => aws
            .sdk
            .ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .desired_count(*desired_count)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ecs", "UpdateService", &e))?
            .request_id()
            .map(str::to_string),
        Action::AuthorizeIngress { group_id, .. } => {
            let permissions = actions
                .iter()
                .filter_map(|a| match a {
                    Action::AuthorizeIngress {
                        rule,
                        description,
                        source_account,
                        ..
                    } => Some(permission(
                        rule,
                        description.as_deref(),
                        source_account.as_deref(),
                    )),
                    _ => None,
                })
                .collect();
            aws.sdk
                .ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(permissions))
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroupRule)
                        .tags(
                            Tag::builder()
                                .key(OWNER_TAG_KEY)
                                .value(OWNER_TAG_VALUE)
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ec2", "AuthorizeSecurityGroupIngress", &e))?
                .request_id()
                .map(str::to_string)
        }
        Action::RevokeIngress { group_id, .. } => {
            let mut rule_ids = Vec::new();
            let mut permissions = Vec::new();
            for action in actions {
                if let Action::RevokeIngress { rule, rule_id, .. } = action {
                    match rule_id {
                        Some(id) => rule_ids.push(id.clone()),
                        None => permissions.push(permission(rule, None, None)),
                    }
                }
            }
            let mut request_id = None;
            if !rule_ids.is_empty() {
                request_id = aws
                    .sdk
                    .ec2
                    .revoke_security_group_ingress()
                    .group_id(group_id)
                    .set_security_group_rule_ids(Some(rule_ids))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("ec2", "RevokeSecurityGroupIngress", &e))?
                    .request_id()
                    .map(str::to_string);
            }
            if !permissions.is_empty() {
                let out = aws
                    .sdk
                    .ec2
                    .revoke_security_group_ingress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(permissions))
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("ec2", "RevokeSecurityGroupIngress", &e))?;
                // In a default VPC a revoke that matches nothing succeeds and
                // lists what matched nothing in UnknownIpPermissions (other
                // VPCs answer InvalidPermission.NotFound): the same "not
                // there", so the batch is retried one by one and each such
                // rule counts as already gone; the next read verifies it.
                if !out.unknown_ip_permissions().is_empty() {
                    return Err(AwsError {
                        service: "ec2",
                        operation: "RevokeSecurityGroupIngress",
                        kind: ErrorKind::NotFound,
                        code: Some("UnknownIpPermissions".into()),
                        message: format!(
                            "{} of the rules to revoke matched nothing (UnknownIpPermissions)",
                            out.unknown_ip_permissions().len()
                        ),
                        request_id: out.request_id().map(str::to_string),
                    });
                }
                request_id = out.request_id().map(str::to_string);
            }
            request_id
        }
        // Read, write, verify: see crate::attach, which runs them first.
        Action::SetInstanceGroups { .. } | Action::SetLoadBalancerGroups { .. } => {
            unreachable!("attachments are run by crate::attach")
        }
        Action::RegisterTarget { arn, .. } => aws
            .sdk
            .elbv2
            .register_targets()
            .target_group_arn(arn)
            .set_targets(Some(targets_of(actions)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elbv2", "RegisterTargets", &e))?
            .request_id()
            .map(str::to_string),
        Action::DeregisterTarget { arn, .. } => aws
            .sdk
            .elbv2
            .deregister_targets()
            .target_group_arn(arn)
            .set_targets(Some(targets_of(actions)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elbv2", "DeregisterTargets", &e))?
            .request_id()
            .map(str::to_string),
        Action::SetHealthCheckPath { arn, path, .. } => aws
            .sdk
            .elbv2
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_path(path)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elbv2", "ModifyTargetGroup", &e))?
            .request_id()
            .map(str::to_string),
    };
    Ok(request_id)
}

fn targets_of(actions: &[&Action]) -> Vec<TargetDescription> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RegisterTarget { target, .. } | Action::DeregisterTarget { target, .. } => {
                Some(target_description(target))
            }
            _ => None,
        })
        .collect()
}

fn target_description(target: &TargetKey) -> TargetDescription {
    TargetDescription::builder()
        .id(&target.id)
        .port(target.port)
        .build()
}

/// The EC2 form of one normalised rule.
fn permission(rule: &RuleKey, description: Option<&str>, account: Option<&str>) -> IpPermission {
    let mut builder = IpPermission::builder().ip_protocol(rule.protocol.as_aws());
    if rule.protocol != Protocol::All {
        builder = builder.from_port(rule.ports.from).to_port(rule.ports.to);
    }
    match &rule.source {
        LiveSource::Ipv4(net) => builder.ip_ranges(
            IpRange::builder()
                .cidr_ip(net.to_string())
                .set_description(description.map(str::to_string))
                .build(),
        ),
        LiveSource::Ipv6(net) => builder.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(net.to_string())
                .set_description(description.map(str::to_string))
                .build(),
        ),
        LiveSource::Group(id) => builder.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(id)
                .set_user_id(account.map(str::to_string))
                .set_description(description.map(str::to_string))
                .build(),
        ),
        LiveSource::PrefixList(id) => builder.prefix_list_ids(
            aws_sdk_ec2::types::PrefixListId::builder()
                .prefix_list_id(id)
                .set_description(description.map(str::to_string))
                .build(),
        ),
    }
    .build()
}

#[cfg(test)]
mod tests {
    use ecs_reconciler_plan::{Action, Change, LiveSource, Outcome, RuleKey, UnitId};
    use ecs_reconciler_spec::{PortRange, Protocol};

    use super::execute;
    use crate::test_server::{Reply, Script, aws_serving};

    #[tokio::test]
    async fn a_revoke_that_matched_nothing_in_a_default_vpc_counts_as_already_gone() {
        // A default VPC answers success with UnknownIpPermissions instead of
        // InvalidPermission.NotFound.
        let ec2 = Script::default().on(
            "RevokeSecurityGroupIngress",
            [Reply::xml(
                "<RevokeSecurityGroupIngressResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
                 <requestId>r-1</requestId><return>true</return><unknownIpPermissionSet><item>\
                 <ipProtocol>tcp</ipProtocol><fromPort>22</fromPort><toPort>22</toPort>\
                 <ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges></item>\
                 </unknownIpPermissionSet></RevokeSecurityGroupIngressResponse>",
            )],
        );
        let (aws, servers) = aws_serving(Script::default(), ec2, Script::default()).await;
        let rule = RuleKey::new(
            Protocol::Tcp,
            PortRange { from: 22, to: 22 },
            LiveSource::Ipv4("0.0.0.0/0".parse().unwrap()),
        );
        let change = Change::fix(
            &UnitId::security_group("web"),
            rule.to_string(),
            "absent".into(),
            "not declared".into(),
            true,
            Action::RevokeIngress {
                group_id: "sg-1".into(),
                group_name: "web".into(),
                rule,
                rule_id: None,
            },
        );
        let outcomes = execute(&aws, &[change]).await;
        assert_eq!(outcomes[0].outcome, Outcome::AlreadyDone);
        assert_eq!(servers.ec2.count("RevokeSecurityGroupIngress"), 1);
    }

    fn rule(port: i32, cidr: &str) -> RuleKey {
        RuleKey::new(
            Protocol::Tcp,
            PortRange::single(port),
            LiveSource::Ipv4(cidr.parse().unwrap()),
        )
    }

    fn change(action: Action) -> Change {
        Change::fix(
            &UnitId::security_group("web"),
            "before".into(),
            "after".into(),
            "test".into(),
            true,
            action,
        )
    }

    fn ok(operation: &str) -> Reply {
        Reply::xml(format!(
            "<{operation}Response xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>r-1</requestId><return>true</return></{operation}Response>"
        ))
    }

    #[tokio::test]
    async fn a_group_full_to_its_quota_loses_its_rogue_rule_keeps_the_swapped_one_and_gets_the_new_one()
     {
        // The desired tcp 80 from anywhere replaces tcp 80 from 10/8; a
        // rogue tcp 22 fills the last slot. The quota refuses the add.
        let ec2 = Script::default()
            .on(
                "AuthorizeSecurityGroupIngress",
                [
                    Reply::ec2_error(
                        400,
                        "RulesPerSecurityGroupLimitExceeded",
                        "The maximum number of rules per security group has been reached.",
                    ),
                    ok("AuthorizeSecurityGroupIngress"),
                ],
            )
            .on(
                "RevokeSecurityGroupIngress",
                [ok("RevokeSecurityGroupIngress")],
            );
        let (aws, servers) = aws_serving(Script::default(), ec2, Script::default()).await;
        let revoke = |rule: RuleKey, id: &str| {
            change(Action::RevokeIngress {
                group_id: "sg-1".into(),
                group_name: "web".into(),
                rule,
                rule_id: Some(id.into()),
            })
        };
        let outcomes = execute(
            &aws,
            &[
                change(Action::AuthorizeIngress {
                    group_id: "sg-1".into(),
                    group_name: "web".into(),
                    rule: rule(80, "0.0.0.0/0"),
                    description: None,
                    source_account: None,
                }),
                revoke(rule(80, "10.0.0.0/8"), "sgr-old80"),
                revoke(rule(22, "0.0.0.0/0"), "sgr-rogue22"),
            ],
        )
        .await;
        let revoked = servers.ec2.bodies("RevokeSecurityGroupIngress");
        assert_eq!(revoked.len(), 1, "{revoked:?}");
        assert!(revoked[0].contains("sgr-rogue22") && !revoked[0].contains("sgr-old80"));
        assert!(
            matches!(outcomes[1].outcome, Outcome::Skipped { .. }),
            "the swapped rule stays"
        );
        // Room was made: the add was retried, and went through.
        assert_eq!(servers.ec2.count("AuthorizeSecurityGroupIngress"), 2);
        assert!(
            matches!(outcomes[0].outcome, Outcome::Applied { .. }),
            "{:?}",
            outcomes[0]
        );
    }
}
