//! ELBv2 reads: the declared target groups and their targets, and the
//! declared load balancers with their listeners. Targets are read before
//! the tasks they are compared with (see [`observe_elb`]); a quiet group may
//! reuse an earlier read (see [`crate::memory::target_reads`]), which the
//! snapshot marks with its age.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;
use ecs_reconciler_plan::{
    LiveListener, LiveLoadBalancer, LiveTarget, LiveTargetGroup, Observed, Snapshot, TargetKey,
    targets,
};
use ecs_reconciler_spec::DesiredState;

use super::{Result, unknown};
use crate::error::ErrorKind;
use crate::memory::target_reads::{Candidate, Decision};
use crate::{Aws, AwsError, pages};

/// DescribeTargetGroups / DescribeLoadBalancers take at most 20 names.
const ELB_NAMES_PER_CALL: usize = 20;
/// The largest page of DescribeTargetGroups without names.
const TARGET_GROUPS_PER_PAGE: usize = 400;

/// What ELBv2 says about the declared target groups and load balancers, by
/// the names the file gives them.
pub(super) struct ElbObservation {
    pub target_groups: BTreeMap<String, Observed<Option<LiveTargetGroup>>>,
    pub load_balancers: BTreeMap<String, Observed<Option<LiveLoadBalancer>>>,
}

/// A target group found by name; its targets are read separately.
#[derive(Debug, Clone)]
struct TargetGroupFacts {
    arn: String,
    target_type: Option<String>,
    health_check_path: Option<String>,
}

/// A load balancer found by name; its listeners are read separately.
#[derive(Debug, Clone)]
struct LoadBalancerFacts {
    arn: String,
    dns_name: Option<String>,
    security_group_ids: Vec<String>,
    vpc_id: Option<String>,
}

/// Target groups and their targets, then load balancers' listeners
/// alongside `after_targets`, which therefore starts only once every
/// target this pass reads has been read.
pub(super) async fn observe_elb<T>(
    aws: &Aws,
    desired: &DesiredState,
    full: bool,
    after_targets: impl Future<Output = T>,
) -> (ElbObservation, T) {
    let tg_names: Vec<String> = desired
        .target_groups
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let lb_names: Vec<String> = desired
        .load_balancers
        .iter()
        .map(|l| l.name.clone())
        .collect();
    let (tgs, lbs) = tokio::join!(
        find_target_groups(aws, &tg_names),
        describe_by_names(&lb_names, |chunk| describe_load_balancers(aws, chunk)),
    );

    let candidates = target_read_candidates(desired, &tgs);
    let mut decisions = aws.memory.target_reads.plan_pass(&candidates, full);

    let mut target_groups = BTreeMap::new();
    for name in &tg_names {
        let observed = match &tgs {
            Err(err) => unknown(err),
            Ok(found) => match found.get(name) {
                None => Observed::Known(None),
                Some(Err(err)) => unknown(err),
                Some(Ok(facts)) => {
                    let (targets, targets_read_passes_ago) = match decisions.remove(name) {
                        Some(Decision::Reuse {
                            targets,
                            passes_ago,
                        }) => (Observed::Known(targets), passes_ago),
                        _ => (
                            read_target_health(aws, &candidates, name, &facts.arn).await,
                            0,
                        ),
                    };
                    Observed::Known(Some(LiveTargetGroup {
                        arn: facts.arn.clone(),
                        target_type: facts.target_type.clone(),
                        health_check_path: facts.health_check_path.clone(),
                        targets,
                        targets_read_passes_ago,
                    }))
                }
            },
        };
        target_groups.insert(name.clone(), observed);
    }

    let (load_balancers, after) = tokio::join!(
        load_balancers_with_listeners(aws, desired, lbs),
        after_targets
    );
    (
        ElbObservation {
            target_groups,
            load_balancers,
        },
        after,
    )
}

/// The found target groups whose health this pass reads or reuses (see
/// [`crate::memory::target_reads`]): the file's entry fingerprints each, so
/// an edited entry is read again.
fn target_read_candidates(desired: &DesiredState, tgs: &FoundTargetGroups) -> Vec<Candidate> {
    match tgs {
        Err(_) => Vec::new(),
        Ok(found) => desired
            .target_groups
            .iter()
            .filter_map(|spec| match found.get(&spec.name) {
                Some(Ok(facts)) => Some(Candidate {
                    name: spec.name.clone(),
                    arn: facts.arn.clone(),
                    fingerprint: format!("{spec:?}"),
                }),
                _ => None,
            })
            .collect(),
    }
}

type FoundTargetGroups = Result<BTreeMap<String, Result<TargetGroupFacts>>>;

type FoundLoadBalancers = Result<BTreeMap<String, Result<LoadBalancerFacts>>>;

async fn load_balancers_with_listeners(
    aws: &Aws,
    desired: &DesiredState,
    lbs: FoundLoadBalancers,
) -> BTreeMap<String, Observed<Option<LiveLoadBalancer>>> {
    let mut load_balancers = BTreeMap::new();
    for spec in &desired.load_balancers {
        let observed = match &lbs {
            Err(err) => unknown(err),
            Ok(found) => match found.get(&spec.name) {
                None => Observed::Known(None),
                Some(Err(err)) => unknown(err),
                Some(Ok(facts)) => {
                    let listeners = if spec.listeners.is_empty() {
                        Observed::Known(Vec::new())
                    } else {
                        match describe_listeners(aws, &facts.arn).await {
                            Ok(list) => Observed::Known(list),
                            Err(err) => unknown(&err),
                        }
                    };
                    Observed::Known(Some(LiveLoadBalancer {
                        arn: facts.arn.clone(),
                        dns_name: facts.dns_name.clone(),
                        security_group_ids: facts.security_group_ids.clone(),
                        vpc_id: facts.vpc_id.clone(),
                        listeners,
                    }))
                }
            },
        };
        load_balancers.insert(spec.name.clone(), observed);
    }
    load_balancers
}

/// Looks names up in batches. ELBv2 fails a whole batch when one name does
/// not exist, so a NotFound batch is retried name by name to tell which.
async fn describe_by_names<T, F, Fut>(
    names: &[String],
    describe: F,
) -> Result<BTreeMap<String, Result<T>>>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeMap<String, T>>>,
{
    let mut out = BTreeMap::new();
    for chunk in names.chunks(ELB_NAMES_PER_CALL) {
        match describe(chunk.to_vec()).await {
            Ok(found) => out.extend(found.into_iter().map(|(k, v)| (k, Ok(v)))),
            Err(err) if err.kind == ErrorKind::NotFound => {
                for name in chunk {
                    match describe(vec![name.clone()]).await {
                        Ok(found) => out.extend(found.into_iter().map(|(k, v)| (k, Ok(v)))),
                        Err(err) if err.kind == ErrorKind::NotFound => {}
                        Err(err) => {
                            out.insert(name.clone(), Err(err));
                        }
                    }
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

/// Reads one group's targets now and remembers the read for later passes.
async fn read_target_health(
    aws: &Aws,
    candidates: &[Candidate],
    name: &str,
    arn: &str,
) -> Observed<Vec<LiveTarget>> {
    match target_health(aws, arn).await {
        Ok(targets) => {
            if let Some(candidate) = candidates.iter().find(|c| c.name == name) {
                aws.memory.target_reads.record_read(candidate, &targets);
            }
            Observed::Known(targets)
        }
        Err(err) => {
            aws.memory.target_reads.forget(name);
            unknown(&err)
        }
    }
}

/// After a pass: which groups' targets are exactly what their tasks give
/// (so a later pass may reuse the read). Decided on the complete snapshot,
/// tasks included.
pub(super) fn note_settled_groups(aws: &Aws, desired: &DesiredState, snapshot: &Snapshot) {
    let index = targets::TaskIndex::new(snapshot);
    for spec in &desired.target_groups {
        let settled = targets::is_settled(spec, snapshot, &index);
        aws.memory.target_reads.set_quiet(&spec.name, settled);
    }
}

/// The declared target groups, by name. DescribeTargetGroups takes at most
/// 20 names per call but lists 400 groups per page, so past 20 names the
/// account's whole list is usually cheaper (3 calls instead of 50 at 1,000
/// groups). How many groups the account has is learned from the last
/// listing; an account with many more groups than are declared is looked
/// up by name again. A group absent from a complete listing is absent,
/// exactly as a NotFound by name.
async fn find_target_groups(aws: &Aws, names: &[String]) -> FoundTargetGroups {
    let by_name = names.len().div_ceil(ELB_NAMES_PER_CALL);
    let in_account = aws.memory.target_groups_in_account.last_listed();
    let listing = in_account.div_ceil(TARGET_GROUPS_PER_PAGE).max(1);
    if by_name <= 1 || listing >= by_name {
        return describe_by_names(names, |chunk| describe_target_groups(aws, chunk)).await;
    }
    let mut all = BTreeMap::new();
    let pages = aws
        .sdk
        .elbv2
        .describe_target_groups()
        .page_size(i32::try_from(TARGET_GROUPS_PER_PAGE).unwrap_or(i32::MAX))
        .into_paginator()
        .send();
    pages::each_page(
        &aws.budget,
        "elbv2",
        "DescribeTargetGroups",
        pages,
        DescribeTargetGroupsOutput::next_marker,
        |page| {
            all.extend(target_group_facts(page.target_groups()));
        },
    )
    .await?;
    aws.memory.target_groups_in_account.set(all.len());
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    Ok(all
        .into_iter()
        .filter(|(name, _)| wanted.contains(name.as_str()))
        .map(|(name, facts)| (name, Ok(facts)))
        .collect())
}

async fn describe_target_groups(
    aws: &Aws,
    names: Vec<String>,
) -> Result<BTreeMap<String, TargetGroupFacts>> {
    aws.take("elbv2", "DescribeTargetGroups").await;
    let out = aws
        .sdk
        .elbv2
        .describe_target_groups()
        .set_names(Some(names))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elbv2", "DescribeTargetGroups", &e))?;
    Ok(target_group_facts(out.target_groups()).collect())
}

fn target_group_facts(
    groups: &[aws_sdk_elasticloadbalancingv2::types::TargetGroup],
) -> impl Iterator<Item = (String, TargetGroupFacts)> + '_ {
    groups.iter().filter_map(|tg| {
        Some((
            tg.target_group_name()?.to_string(),
            TargetGroupFacts {
                arn: tg.target_group_arn()?.to_string(),
                target_type: tg.target_type().map(|t| t.as_str().to_string()),
                health_check_path: tg.health_check_path().map(str::to_string),
            },
        ))
    })
}

async fn target_health(aws: &Aws, arn: &str) -> Result<Vec<LiveTarget>> {
    aws.take("elbv2", "DescribeTargetHealth").await;
    let out = aws
        .sdk
        .elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elbv2", "DescribeTargetHealth", &e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let target = d.target()?;
            Some(LiveTarget {
                key: TargetKey {
                    id: target.id()?.to_string(),
                    port: target.port()?,
                },
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            })
        })
        .collect())
}

async fn describe_load_balancers(
    aws: &Aws,
    names: Vec<String>,
) -> Result<BTreeMap<String, LoadBalancerFacts>> {
    aws.take("elbv2", "DescribeLoadBalancers").await;
    let out = aws
        .sdk
        .elbv2
        .describe_load_balancers()
        .set_names(Some(names))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("elbv2", "DescribeLoadBalancers", &e))?;
    Ok(out
        .load_balancers()
        .iter()
        .filter_map(|lb| {
            Some((
                lb.load_balancer_name()?.to_string(),
                LoadBalancerFacts {
                    arn: lb.load_balancer_arn()?.to_string(),
                    dns_name: lb.dns_name().map(str::to_string),
                    security_group_ids: lb.security_groups().to_vec(),
                    vpc_id: lb.vpc_id().map(str::to_string),
                },
            ))
        })
        .collect())
}

pub(crate) async fn describe_listeners(aws: &Aws, arn: &str) -> Result<Vec<LiveListener>> {
    let mut out = Vec::new();
    let pages = aws
        .sdk
        .elbv2
        .describe_listeners()
        .load_balancer_arn(arn)
        .into_paginator()
        .send();
    pages::each_page(
        &aws.budget,
        "elbv2",
        "DescribeListeners",
        pages,
        DescribeListenersOutput::next_marker,
        |page| {
            for listener in page.listeners() {
                if let Some(port) = listener.port() {
                    out.push(LiveListener {
                        port,
                        protocol: listener.protocol().map(|p| p.as_str().to_string()),
                    });
                }
            }
        },
    )
    .await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ecs_reconciler_plan::{
        Action, LiveBinding, LiveCluster, LiveContainerInstance, LiveService, LiveTask,
    };

    use super::*;
    use crate::ClientSettings;
    use crate::test_server::{Reply, Script, aws_serving_with};

    /// Two exclusive groups following one service.
    const FILE: &str = "
version: 1
services:
  - name: api
    cluster: main
    replicas: 1
targetGroups:
  - name: a-tg
    service: api
    cluster: main
    containerName: web
    containerPort: 80
    membership: exclusive
  - name: b-tg
    service: api
    cluster: main
    containerName: web
    containerPort: 80
    membership: exclusive
";

    fn target_groups() -> Reply {
        let member = |name: &str| {
            format!(
                "<member><TargetGroupName>{name}</TargetGroupName><TargetGroupArn>arn:{name}</TargetGroupArn><TargetType>instance</TargetType></member>"
            )
        };
        Reply::xml(format!(
            "<DescribeTargetGroupsResponse><DescribeTargetGroupsResult><TargetGroups>{}{}</TargetGroups></DescribeTargetGroupsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeTargetGroupsResponse>",
            member("a-tg"),
            member("b-tg")
        ))
    }

    /// One healthy target, i-1:32768.
    fn healthy() -> Reply {
        Reply::xml(
            "<DescribeTargetHealthResponse><DescribeTargetHealthResult><TargetHealthDescriptions><member><Target><Id>i-1</Id><Port>32768</Port></Target><TargetHealth><State>healthy</State></TargetHealth></member></TargetHealthDescriptions></DescribeTargetHealthResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeTargetHealthResponse>",
        )
    }

    fn desired() -> DesiredState {
        ecs_reconciler_spec::load(FILE).expect("valid file")
    }

    fn group(observed: &ElbObservation, name: &str) -> LiveTargetGroup {
        observed.target_groups[name]
            .known()
            .cloned()
            .flatten()
            .expect("found")
    }

    /// The snapshot a plan sees: the groups as observed, service `api`
    /// active, and `tasks` running on instance i-1.
    fn snapshot(observed: &ElbObservation, tasks: Vec<LiveTask>) -> Snapshot {
        let service = LiveService {
            arn: "arn:service/api".into(),
            status: "ACTIVE".into(),
            desired_count: 1,
            running_count: i32::try_from(tasks.len()).unwrap_or(i32::MAX),
            pending_count: 0,
            launch_type: None,
            scheduling_strategy: None,
            task_definition_arn: None,
            ..LiveService::default()
        };
        let cluster = LiveCluster {
            tasks: Observed::Known(tasks),
            container_instances: Observed::Known(vec![LiveContainerInstance {
                arn: "ci-1".into(),
                ec2_instance_id: Some("i-1".into()),
            }]),
        };
        Snapshot {
            services: BTreeMap::from([(
                ("main".to_string(), "api".to_string()),
                Observed::Known(Some(service)),
            )]),
            clusters: BTreeMap::from([("main".to_string(), cluster)]),
            target_groups: observed.target_groups.clone(),
            ..Snapshot::default()
        }
    }

    /// The task whose target is i-1:32768.
    fn serving_task() -> LiveTask {
        LiveTask {
            arn: "t-1".into(),
            service: Some("api".into()),
            last_status: "RUNNING".into(),
            desired_status: "RUNNING".into(),
            container_instance_arn: Some("ci-1".into()),
            bindings: vec![LiveBinding {
                container_name: "web".into(),
                container_port: 80,
                host_port: 32768,
                protocol: Some("tcp".into()),
            }],
            started_by: None,
        }
    }

    #[tokio::test]
    async fn a_failed_health_read_makes_that_groups_targets_unknown_and_tasks_wait_for_it() {
        let (aws, servers) = aws_serving_with(
            Script::default(),
            Script::default(),
            Script::default()
                .on("DescribeTargetGroups", [target_groups()])
                .on(
                    "DescribeTargetHealth",
                    [
                        healthy(),
                        Reply::elbv2_error(400, "Throttling", "Rate exceeded"),
                    ],
                ),
            &ClientSettings::default(),
        )
        .await;
        let elbv2 = servers.elbv2.clone();
        let (observed, health_reads_before_tasks) = observe_elb(&aws, &desired(), true, async {
            elbv2.count("DescribeTargetHealth")
        })
        .await;

        let a = group(&observed, "a-tg");
        assert_eq!(a.targets.known().expect("read").len(), 1);
        let b = group(&observed, "b-tg");
        assert_eq!(b.arn, "arn:b-tg", "the group itself is known");
        let why = b
            .targets
            .unknown_reason()
            .expect("its targets are unknown, not none");
        assert!(
            why.message.contains("DescribeTargetHealth") && why.message.contains("Throttling"),
            "{why}"
        );
        assert_eq!(
            health_reads_before_tasks, 2,
            "tasks are listed only once every target was read"
        );

        // Unknown targets plan nothing, even with no task running.
        let changes = targets::diff(
            &desired(),
            &snapshot(&observed, Vec::new()),
            &ecs_reconciler_plan::Sightings::default(),
        );
        assert!(
            changes.iter().all(|c| !c.resource.contains("b-tg")),
            "{changes:?}"
        );
    }

    #[tokio::test]
    async fn a_reused_read_carries_its_age_and_never_deregisters() {
        let settings = ClientSettings {
            target_health_rotation: 1,
            ..ClientSettings::default()
        };
        let (aws, servers) = aws_serving_with(
            Script::default(),
            Script::default(),
            Script::default()
                .on("DescribeTargetGroups", [target_groups()])
                .on("DescribeTargetHealth", [healthy()]),
            &settings,
        )
        .await;
        let desired = desired();

        // Pass 1 reads both groups; their targets are exactly the task's.
        let (first, ()) = observe_elb(&aws, &desired, true, async {}).await;
        assert_eq!(servers.elbv2.count("DescribeTargetHealth"), 2);
        note_settled_groups(&aws, &desired, &snapshot(&first, vec![serving_task()]));

        // Pass 2 re-reads one quiet group (rotation 1) and reuses the other.
        let (second, ()) = observe_elb(&aws, &desired, true, async {}).await;
        assert_eq!(servers.elbv2.count("DescribeTargetHealth"), 3);
        let (a, b) = (group(&second, "a-tg"), group(&second, "b-tg"));
        assert_eq!(a.targets_read_passes_ago, 0, "a-tg read in this pass");
        assert_eq!(b.targets_read_passes_ago, 1, "b-tg reused from pass 1");
        assert_eq!(a.targets, b.targets);

        // The task has since stopped: only the fresh read may deregister.
        let changes = targets::diff(
            &desired,
            &snapshot(&second, Vec::new()),
            &ecs_reconciler_plan::Sightings::default(),
        );
        let deregistered: Vec<&str> = changes
            .iter()
            .filter_map(|c| match &c.action {
                Some(Action::DeregisterTarget { target_group, .. }) => Some(target_group.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deregistered, ["a-tg"]);
    }
}
