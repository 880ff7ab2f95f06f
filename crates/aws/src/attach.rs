//! Attaching groups where AWS only offers a write that replaces the whole
//! list: ModifyNetworkInterfaceAttribute / ModifyInstanceAttribute `Groups`
//! for an instance, SetSecurityGroups for a load balancer.
//!
//! A list read at the start of the pass may be seconds old when the write
//! goes out; writing it back would silently detach whatever someone
//! attached in between — while the controller promises "attached, never
//! detached". So the current list is read again right before the write
//! (the narrowest window the API allows), the write is that list plus the
//! declared groups it lacks, and the result is read back. A group that the
//! pass saw but that was gone before the write, or that is gone after it,
//! is said in the change's reason (and so in the log, the audit line and
//! the status), never silently lost.
//!
//! Instances are written through their primary network interface (device
//! index 0): ModifyInstanceAttribute fails with InvalidInstanceID on an
//! instance with more than one interface (every container instance with
//! ENI trunking has a trunk ENI), ModifyNetworkInterfaceAttribute works for
//! one interface or many — so it is the only instance write.

use aws_sdk_ec2::operation::RequestId;
use ecs_reconciler_plan::{Action, GroupListNotice, Outcome};

use crate::Aws;
use crate::error::AwsError;

type Result<T> = std::result::Result<T, AwsError>;

/// What an attachment did: its outcome, and what the reads around the
/// write noticed about other writers.
pub(crate) struct Attached {
    pub outcome: Outcome,
    pub notices: Vec<GroupListNotice>,
}

/// Runs `action` if it is an attachment; `None` for other actions.
pub(crate) async fn run(aws: &Aws, action: &Action) -> Option<Attached> {
    let (target, seen, attach) = match action {
        Action::SetInstanceGroups {
            network_interface_id,
            group_ids,
            attach,
            ..
        } => (
            Target::Interface {
                id: network_interface_id,
            },
            group_ids,
            attach,
        ),
        Action::SetLoadBalancerGroups {
            arn,
            group_ids,
            attach,
            ..
        } => (Target::LoadBalancer { arn }, group_ids, attach),
        _ => return None,
    };
    // What the pass read: the expected list without what it adds.
    let seen: Vec<&String> = seen.iter().filter(|g| !attach.contains(g)).collect();
    Some(match attach_groups(aws, &target, &seen, attach).await {
        Ok(attached) => attached,
        Err(err) => Attached {
            outcome: Outcome::Failed {
                error: err.to_string(),
                class: err.kind,
            },
            notices: Vec::new(),
        },
    })
}

enum Target<'a> {
    /// An instance's primary network interface.
    Interface {
        id: &'a str,
    },
    LoadBalancer {
        arn: &'a str,
    },
}

async fn attach_groups(
    aws: &Aws,
    target: &Target<'_>,
    seen: &[&String],
    attach: &[String],
) -> Result<Attached> {
    let current = read_groups(aws, target).await?;
    let mut notices = Vec::new();
    let detached: Vec<String> = seen
        .iter()
        .filter(|g| !current.contains(g))
        .map(|g| (*g).clone())
        .collect();
    if !detached.is_empty() {
        notices.push(GroupListNotice::DetachedBeforeWrite { groups: detached });
    }
    let missing: Vec<&String> = attach.iter().filter(|g| !current.contains(g)).collect();
    if missing.is_empty() {
        return Ok(Attached {
            outcome: Outcome::AlreadyDone,
            notices,
        });
    }
    let mut groups = current.clone();
    groups.extend(missing.into_iter().cloned());
    let request_id = write_groups(aws, target, &groups).await?;
    // Read back: what the write kept of the list it was given.
    let after = read_groups(aws, target).await?;
    let gone: Vec<String> = groups.into_iter().filter(|g| !after.contains(g)).collect();
    if !gone.is_empty() {
        notices.push(GroupListNotice::MissingAfterWrite { groups: gone });
    }
    for notice in &notices {
        tracing::warn!(%notice, "group list changed around the write");
    }
    Ok(Attached {
        outcome: Outcome::Applied { request_id },
        notices,
    })
}

async fn read_groups(aws: &Aws, target: &Target<'_>) -> Result<Vec<String>> {
    match target {
        Target::Interface { id } => {
            aws.take("ec2", "DescribeNetworkInterfaces").await;
            let out = aws
                .sdk
                .ec2
                .describe_network_interfaces()
                .network_interface_ids(*id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ec2", "DescribeNetworkInterfaces", &e))?;
            Ok(out
                .network_interfaces()
                .iter()
                .flat_map(aws_sdk_ec2::types::NetworkInterface::groups)
                .filter_map(|g| g.group_id().map(str::to_string))
                .collect())
        }
        Target::LoadBalancer { arn } => {
            aws.take("elbv2", "DescribeLoadBalancers").await;
            let out = aws
                .sdk
                .elbv2
                .describe_load_balancers()
                .load_balancer_arns(*arn)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("elbv2", "DescribeLoadBalancers", &e))?;
            Ok(out
                .load_balancers()
                .iter()
                .flat_map(aws_sdk_elasticloadbalancingv2::types::LoadBalancer::security_groups)
                .cloned()
                .collect())
        }
    }
}

async fn write_groups(aws: &Aws, target: &Target<'_>, groups: &[String]) -> Result<Option<String>> {
    let groups = Some(groups.to_vec());
    match target {
        Target::Interface { id } => {
            aws.take("ec2", "ModifyNetworkInterfaceAttribute").await;
            Ok(aws
                .sdk
                .ec2
                .modify_network_interface_attribute()
                .network_interface_id(*id)
                .set_groups(groups)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ec2", "ModifyNetworkInterfaceAttribute", &e))?
                .request_id()
                .map(str::to_string))
        }
        Target::LoadBalancer { arn } => {
            aws.take("elbv2", "SetSecurityGroups").await;
            Ok(aws
                .sdk
                .elbv2
                .set_security_groups()
                .load_balancer_arn(*arn)
                .set_security_groups(groups)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("elbv2", "SetSecurityGroups", &e))?
                .request_id()
                .map(str::to_string))
        }
    }
}

#[cfg(test)]
mod tests {
    use ecs_reconciler_plan::{Action, Change, Outcome, UnitId};

    use crate::apply::execute;
    use crate::test_server::{Reply, Script, aws_serving};

    fn interface(groups: &[&str]) -> Reply {
        let items: String = groups
            .iter()
            .map(|g| format!("<item><groupId>{g}</groupId><groupName>{g}</groupName></item>"))
            .collect();
        Reply::xml(format!(
            "<DescribeNetworkInterfacesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>r-1</requestId><networkInterfaceSet><item>\
             <networkInterfaceId>eni-1</networkInterfaceId><groupSet>{items}</groupSet>\
             </item></networkInterfaceSet></DescribeNetworkInterfacesResponse>"
        ))
    }

    fn modified() -> Reply {
        Reply::xml(
            "<ModifyNetworkInterfaceAttributeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>r-2</requestId><return>true</return></ModifyNetworkInterfaceAttributeResponse>",
        )
    }

    /// The pass read [sg-default]; the cluster's sg-app is missing.
    fn attach_app() -> Change {
        Change::fix(
            &UnitId::cluster("main"),
            "sg-default".into(),
            "sg-default,sg-app".into(),
            "instance i-1 lacks group app".into(),
            true,
            Action::SetInstanceGroups {
                instance_id: "i-1".into(),
                network_interface_id: "eni-1".into(),
                group_ids: vec!["sg-default".into(), "sg-app".into()],
                attach: vec!["sg-app".into()],
            },
        )
    }

    #[tokio::test]
    async fn a_group_attached_by_someone_else_since_the_read_is_kept_by_the_write() {
        // Someone attached sg-ops after the pass read the instance.
        let ec2 = Script::default()
            .on(
                "DescribeNetworkInterfaces",
                [
                    interface(&["sg-default", "sg-ops"]),
                    interface(&["sg-default", "sg-ops", "sg-app"]),
                ],
            )
            .on("ModifyNetworkInterfaceAttribute", [modified()]);
        let (aws, servers) = aws_serving(Script::default(), ec2, Script::default()).await;
        let outcomes = execute(&aws, &[attach_app()]).await;
        assert!(
            matches!(outcomes[0].outcome, Outcome::Applied { .. }),
            "{outcomes:?}"
        );
        let written = &servers.ec2.bodies("ModifyNetworkInterfaceAttribute")[0];
        for group in ["sg-default", "sg-ops", "sg-app"] {
            assert!(written.contains(group), "{group} not written: {written}");
        }
        assert!(written.contains("eni-1"), "{written}");
        assert_eq!(servers.ec2.count("ModifyInstanceAttribute"), 0);
    }

    #[tokio::test]
    async fn a_group_detached_since_the_read_or_gone_after_the_write_is_said() {
        // Someone detached sg-default before the write; after it, the read
        // lacks sg-app.
        let ec2 = Script::default()
            .on(
                "DescribeNetworkInterfaces",
                [interface(&[]), interface(&[])],
            )
            .on("ModifyNetworkInterfaceAttribute", [modified()]);
        let (aws, _servers) = aws_serving(Script::default(), ec2, Script::default()).await;
        let outcomes = execute(&aws, &[attach_app()]).await;
        let reason = &outcomes[0].change.reason;
        assert!(
            reason.contains("sg-default detached by another writer since this pass's read"),
            "{reason}"
        );
        assert!(reason.contains("lacks sg-app"), "{reason}");
    }

    #[tokio::test]
    async fn nothing_is_written_when_the_groups_are_already_there() {
        let ec2 = Script::default().on(
            "DescribeNetworkInterfaces",
            [interface(&["sg-default", "sg-app"])],
        );
        let (aws, servers) = aws_serving(Script::default(), ec2, Script::default()).await;
        let outcomes = execute(&aws, &[attach_app()]).await;
        assert_eq!(outcomes[0].outcome, Outcome::AlreadyDone);
        assert_eq!(servers.ec2.count("ModifyNetworkInterfaceAttribute"), 0);
    }
}
