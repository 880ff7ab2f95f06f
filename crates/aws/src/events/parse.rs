//! An SQS message from an EventBridge rule, as a [`ChangeEvent`]: the
//! envelope (`id`, `source`, `detail-type`, `time`, `resources`, `detail`)
//! as EventBridge documents it, the resources a CloudTrail record's
//! `requestParameters` names, or an ECS event's cluster, service and
//! instance. Nothing here decides what to do; see
//! `ecs_reconciler_plan::events`.

use ecs_reconciler_plan::events::{
    Actor, ChangeEvent, EventKind, IgnoredBecause, Subject, arn_resource, cluster_name,
    service_subject,
};
use serde_json::Value;

const API_CALL: &str = "AWS API Call via CloudTrail";

/// Parses one message body. `Err` says why it triggers nothing before any
/// lookup: not an event, or a call that failed.
pub fn parse_message(body: &str) -> Result<ChangeEvent, IgnoredBecause> {
    let event: Value = serde_json::from_str(body).map_err(|_| IgnoredBecause::Unparseable)?;
    let text = |key: &str| event.get(key).and_then(Value::as_str);
    let (Some(id), Some(detail_type), Some(detail)) =
        (text("id"), text("detail-type"), event.get("detail"))
    else {
        return Err(IgnoredBecause::Unparseable);
    };
    let time_unix = text("time").and_then(rfc3339_unix);
    let resources: Vec<&str> = event
        .get("resources")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut parsed = ChangeEvent {
        id: id.to_string(),
        kind: EventKind::TaskStateChange,
        time_unix,
        subjects: Vec::new(),
        actor: None,
        request_id: None,
    };
    match detail_type {
        API_CALL => api_call(detail, &mut parsed)?,
        "ECS Task State Change" => {
            parsed.kind = EventKind::TaskStateChange;
            let cluster = detail_str(detail, "clusterArn").map(cluster_name);
            match (cluster, detail_str(detail, "group")) {
                (Some(cluster), Some(group)) if group.starts_with("service:") => {
                    parsed.subjects.push(Subject::Service {
                        cluster,
                        name: group["service:".len()..].to_string(),
                    });
                }
                (Some(cluster), _) => parsed.subjects.push(Subject::Cluster(cluster)),
                (None, _) => {}
            }
        }
        "ECS Container Instance State Change" => {
            parsed.kind = EventKind::ContainerInstanceStateChange;
            if let Some(cluster) = detail_str(detail, "clusterArn") {
                parsed
                    .subjects
                    .push(Subject::Cluster(cluster_name(cluster)));
            }
            if let Some(instance) = detail_str(detail, "ec2InstanceId") {
                parsed
                    .subjects
                    .push(Subject::Instance(instance.to_string()));
            }
        }
        "ECS Service Action" | "ECS Deployment State Change" => {
            parsed.kind = if detail_type == "ECS Service Action" {
                EventKind::ServiceAction
            } else {
                EventKind::DeploymentStateChange
            };
            let cluster = detail_str(detail, "clusterArn");
            for arn in resources {
                if let Some(subject) = service_subject(cluster, arn) {
                    parsed.subjects.push(subject);
                }
            }
        }
        _ => return Err(IgnoredBecause::Unrelated),
    }
    if parsed.subjects.is_empty() {
        return Err(IgnoredBecause::Unrelated);
    }
    parsed.subjects.sort();
    parsed.subjects.dedup();
    Ok(parsed)
}

fn detail_str<'a>(detail: &'a Value, key: &str) -> Option<&'a str> {
    detail.get(key).and_then(Value::as_str)
}

/// A CloudTrail record: who, which call, and what its parameters name.
fn api_call(detail: &Value, parsed: &mut ChangeEvent) -> Result<(), IgnoredBecause> {
    let source = detail_str(detail, "eventSource").ok_or(IgnoredBecause::Unparseable)?;
    let name = detail_str(detail, "eventName").ok_or(IgnoredBecause::Unparseable)?;
    if detail.get("errorCode").is_some_and(|c| !c.is_null()) {
        return Err(IgnoredBecause::FailedCall);
    }
    parsed.kind = EventKind::ApiCall {
        source: source.to_string(),
        name: name.to_string(),
    };
    parsed.request_id = detail_str(detail, "requestID").map(str::to_string);
    let identity = detail.get("userIdentity");
    let arn = identity
        .and_then(|i| i.get("arn"))
        .and_then(Value::as_str)
        .or_else(|| {
            identity
                .and_then(|i| i.get("invokedBy"))
                .and_then(Value::as_str)
        })
        .or_else(|| detail_str(detail, "sourceIPAddress"));
    parsed.actor = arn.map(|arn| Actor {
        arn: arn.to_string(),
        source_ip: detail_str(detail, "sourceIPAddress").map(str::to_string),
        call: name.to_string(),
        at: detail_str(detail, "eventTime")
            .unwrap_or_default()
            .to_string(),
    });
    let Some(params) = detail.get("requestParameters").and_then(Value::as_object) else {
        return Ok(());
    };
    // Some EC2 records wrap the request (`{"ModifySecurityGroupRulesRequest":
    // {"GroupId": …}}`); keys are camelCase in most records, PascalCase in
    // those. Only the top level names the resource changed: a `groupId`
    // deeper down (in `ipPermissions`) is a rule's *source*.
    let params = match params.iter().next() {
        Some((key, Value::Object(inner))) if params.len() == 1 && key.ends_with("Request") => inner,
        _ => params,
    };
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
    };
    let subjects = &mut parsed.subjects;
    match source {
        "ec2.amazonaws.com" => {
            if let Some(id) = get("groupId") {
                subjects.push(Subject::SecurityGroupId(id.to_string()));
            } else if let Some(name) = get("groupName") {
                subjects.push(Subject::SecurityGroupName(name.to_string()));
            }
            if let Some(id) = get("instanceId") {
                subjects.push(Subject::Instance(id.to_string()));
            }
            if let Some(id) = get("networkInterfaceId") {
                subjects.push(Subject::NetworkInterface(id.to_string()));
            }
        }
        "elasticloadbalancing.amazonaws.com" => {
            if let Some(name) = get("targetGroupArn").and_then(|a| arn_resource(a, "targetgroup")) {
                subjects.push(Subject::TargetGroup(name.to_string()));
            }
            if let Some(name) = get("loadBalancerArn").and_then(|a| arn_resource(a, "loadbalancer"))
            {
                subjects.push(Subject::LoadBalancer(name.to_string()));
            }
            // listener/app/NAME/LB-ID/LISTENER-ID
            if let Some(name) = get("listenerArn")
                .and_then(|a| arn_resource(a, "listener"))
                .and_then(|rest| rest.split('/').nth(1))
            {
                subjects.push(Subject::LoadBalancer(name.to_string()));
            }
        }
        "ecs.amazonaws.com" => {
            let cluster = get("cluster");
            match get("service").and_then(|s| service_subject(cluster, s)) {
                Some(service) => subjects.push(service),
                None => subjects.push(Subject::Cluster(cluster_name(cluster.unwrap_or("default")))),
            }
        }
        _ => {}
    }
    Ok(())
}

/// RFC 3339 (`2026-12-07T14:02:03Z`) as Unix seconds.
pub fn rfc3339_unix(text: &str) -> Option<f64> {
    aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|t| t.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CloudTrail record as EventBridge delivers it (the shape of the
    /// EventBridge user guide's "AWS API Call via CloudTrail" example).
    fn cloudtrail(name: &str, source: &str, params: &Value) -> String {
        serde_json::json!({
            "version": "0",
            "id": "36eb8523-97d0-4518-b33d-ee3579ff19f0",
            "detail-type": "AWS API Call via CloudTrail",
            "source": format!("aws.{}", source.split('.').next().unwrap()),
            "account": "123456789012",
            "time": "2026-12-07T14:02:03Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "userIdentity": {
                    "type": "IAMUser",
                    "principalId": "AIDAEXAMPLE",
                    "arn": "arn:aws:iam::123456789012:user/console-admin",
                    "accountId": "123456789012",
                    "userName": "console-admin"
                },
                "eventTime": "2026-12-07T14:02:03Z",
                "eventSource": source,
                "eventName": name,
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.7",
                "requestParameters": params.clone(),
                "responseElements": {"_return": true},
                "requestID": "req-1",
                "eventID": "ev-1"
            }
        })
        .to_string()
    }

    #[test]
    fn a_rule_opened_names_the_group_and_who_not_the_rule_source() {
        let body = cloudtrail(
            "AuthorizeSecurityGroupIngress",
            "ec2.amazonaws.com",
            &serde_json::json!({
                "groupId": "sg-0a1b",
                "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                    "groups": {"items": [{"groupId": "sg-source"}]}, "ipRanges": {}}]}
            }),
        );
        let event = parse_message(&body).unwrap();
        assert_eq!(
            event.subjects,
            vec![Subject::SecurityGroupId("sg-0a1b".into())]
        );
        let actor = event.actor.unwrap();
        assert_eq!(actor.arn, "arn:aws:iam::123456789012:user/console-admin");
        assert_eq!(actor.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(actor.at, "2026-12-07T14:02:03Z");
        assert_eq!(event.request_id.as_deref(), Some("req-1"));
        assert_eq!(event.time_unix, rfc3339_unix("2026-12-07T14:02:03Z"));
        assert!(event.time_unix.unwrap() > 1.7e9);
    }

    #[test]
    fn each_api_names_its_resource() {
        let cases = [
            (
                "ModifySecurityGroupRules",
                "ec2.amazonaws.com",
                serde_json::json!({"ModifySecurityGroupRulesRequest": {"GroupId": "sg-9", "SecurityGroupRule": {"tag": 1}}}),
                vec![Subject::SecurityGroupId("sg-9".into())],
            ),
            (
                "ModifyInstanceAttribute",
                "ec2.amazonaws.com",
                serde_json::json!({"instanceId": "i-1", "groupSet": {"items": [{"groupId": "sg-2"}]}}),
                vec![Subject::Instance("i-1".into())],
            ),
            (
                "ModifyNetworkInterfaceAttribute",
                "ec2.amazonaws.com",
                serde_json::json!({"networkInterfaceId": "eni-1", "groupSet": {"items": []}}),
                vec![Subject::NetworkInterface("eni-1".into())],
            ),
            (
                "DeregisterTargets",
                "elasticloadbalancing.amazonaws.com",
                serde_json::json!({"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/1", "targets": [{"id": "i-1", "port": 32768}]}),
                vec![Subject::TargetGroup("tg".into())],
            ),
            (
                "SetSecurityGroups",
                "elasticloadbalancing.amazonaws.com",
                serde_json::json!({"loadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/alb/1", "securityGroups": ["sg-1"]}),
                vec![Subject::LoadBalancer("alb".into())],
            ),
            (
                "DeleteListener",
                "elasticloadbalancing.amazonaws.com",
                serde_json::json!({"listenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/alb/1/2"}),
                vec![Subject::LoadBalancer("alb".into())],
            ),
            (
                "UpdateService",
                "ecs.amazonaws.com",
                serde_json::json!({"cluster": "nestjs-cluster", "service": "nestjs-api", "desiredCount": 5}),
                vec![Subject::Service {
                    cluster: "nestjs-cluster".into(),
                    name: "nestjs-api".into(),
                }],
            ),
            (
                "UpdateService",
                "ecs.amazonaws.com",
                serde_json::json!({"service": "arn:aws:ecs:us-east-1:123456789012:service/c/s", "desiredCount": 5}),
                vec![Subject::Service {
                    cluster: "c".into(),
                    name: "s".into(),
                }],
            ),
            (
                "StopTask",
                "ecs.amazonaws.com",
                serde_json::json!({"cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/c", "task": "t"}),
                vec![Subject::Cluster("c".into())],
            ),
        ];
        for (name, source, params, want) in cases {
            let event = parse_message(&cloudtrail(name, source, &params)).unwrap();
            assert_eq!(event.subjects, want, "{name}");
        }
    }

    #[test]
    fn failed_calls_and_junk_trigger_nothing() {
        let mut failed: Value = serde_json::from_str(&cloudtrail(
            "AuthorizeSecurityGroupIngress",
            "ec2.amazonaws.com",
            &serde_json::json!({"groupId": "sg-1"}),
        ))
        .unwrap();
        failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
        assert_eq!(
            parse_message(&failed.to_string()),
            Err(IgnoredBecause::FailedCall)
        );
        assert_eq!(parse_message("not json"), Err(IgnoredBecause::Unparseable));
        assert_eq!(
            parse_message("{\"id\": 1}"),
            Err(IgnoredBecause::Unparseable)
        );
        let other = serde_json::json!({"id": "x", "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "detail": {"instance-id": "i-1", "state": "stopped"}});
        assert_eq!(
            parse_message(&other.to_string()),
            Err(IgnoredBecause::Unrelated)
        );
    }

    #[test]
    fn ecs_events_name_their_service_cluster_and_instance() {
        let task = serde_json::json!({
            "version": "0", "id": "t-1", "detail-type": "ECS Task State Change", "source": "aws.ecs",
            "account": "123456789012", "time": "2026-12-07T14:02:03Z", "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:123456789012:task/nestjs-cluster/abc"],
            "detail": {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/nestjs-cluster",
                "group": "service:nestjs-api", "lastStatus": "RUNNING", "desiredStatus": "STOPPED",
                "containers": [{"name": "api", "networkBindings": [{"containerPort": 3000, "hostPort": 32768}]}],
                "version": 3}
        });
        let event = parse_message(&task.to_string()).unwrap();
        assert_eq!(event.kind, EventKind::TaskStateChange);
        assert_eq!(
            event.subjects,
            vec![Subject::Service {
                cluster: "nestjs-cluster".into(),
                name: "nestjs-api".into()
            }]
        );
        assert!(event.actor.is_none());
        let instance = serde_json::json!({
            "version": "0", "id": "c-1", "detail-type": "ECS Container Instance State Change",
            "source": "aws.ecs", "time": "2026-12-07T14:02:03Z", "resources": [],
            "detail": {"clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/nestjs-cluster",
                "ec2InstanceId": "i-1", "status": "DRAINING"}
        });
        let event = parse_message(&instance.to_string()).unwrap();
        assert_eq!(
            event.subjects,
            vec![
                Subject::Instance("i-1".into()),
                Subject::Cluster("nestjs-cluster".into())
            ]
        );
        let deployment = serde_json::json!({
            "version": "0", "id": "d-1", "detail-type": "ECS Deployment State Change",
            "source": "aws.ecs", "time": "2026-12-07T14:02:03Z",
            "resources": ["arn:aws:ecs:us-east-1:123456789012:service/nestjs-cluster/nestjs-api"],
            "detail": {"eventType": "INFO", "eventName": "SERVICE_DEPLOYMENT_COMPLETED"}
        });
        let event = parse_message(&deployment.to_string()).unwrap();
        assert_eq!(event.kind, EventKind::DeploymentStateChange);
        assert_eq!(event.subjects.len(), 1);
    }
}
