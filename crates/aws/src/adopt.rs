//! Reading a live service's topology for `ecs-reconciler init`: the
//! services, their task definitions, the target groups their
//! `loadBalancers` name, the load balancers in front of those with their
//! listeners, the groups every container instance of the cluster carries
//! and the load balancers' groups, with every ingress rule of those groups.
//! Discovery, not observation: it starts from the services, not from a
//! file. Every read goes through the same budgets, and any failed read is
//! an error — `init` must never write a smaller file than the account.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::operation::list_services::ListServicesOutput;
use ecs_reconciler_plan::{LiveListener, LiveRule, LiveService, LiveTaskDefinition, Observed};

use crate::error::AwsError;
use crate::observe::{
    container_instances, describe_instances, describe_listeners, describe_rules,
    describe_task_definition, each_service, groups_by_filter, live_service, managed_prefix_lists,
};
use crate::{Aws, pages};

type Result<T> = std::result::Result<T, AwsError>;

/// What `init` read.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// The cluster.
    pub cluster: String,
    /// The services, by name.
    pub services: Vec<AdoptedService>,
    /// The target groups the services' `loadBalancers` name.
    pub target_groups: Vec<AdoptedTargetGroup>,
    /// The load balancers in front of those target groups.
    pub load_balancers: Vec<AdoptedLoadBalancer>,
    /// How many EC2 instances the cluster's container instances run on.
    pub instances: usize,
    /// Group ids every one of those instances carries.
    pub instance_group_ids: Vec<String>,
    /// The groups to declare (instances' and load balancers'), by id.
    pub groups: BTreeMap<String, AdoptedGroup>,
    /// Prefix list id → name, for the ones the rules reference.
    pub prefix_list_names: BTreeMap<String, String>,
}

/// A service and its task definition.
#[derive(Debug, Clone)]
pub struct AdoptedService {
    /// Its name.
    pub name: String,
    /// What DescribeServices said.
    pub live: LiveService,
    /// Its task definition.
    pub task_definition: Option<LiveTaskDefinition>,
    /// Its `loadBalancers`: (target group ARN, container name, container port).
    pub load_balancers: Vec<(String, String, i32)>,
    /// Its Application Auto Scaling target's (MinCapacity, MaxCapacity),
    /// when one scales its desired count.
    pub scaling: Option<(i32, i32)>,
}

/// A target group a service names.
#[derive(Debug, Clone)]
pub struct AdoptedTargetGroup {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `instance`, `ip`, `lambda`, `alb`.
    pub target_type: Option<String>,
    /// Its health check path.
    pub health_check_path: Option<String>,
    /// The load balancers that route to it.
    pub load_balancer_arns: Vec<String>,
    /// The service (name) and container (name, port) bound to it.
    pub service: String,
    /// See `service`.
    pub container_name: String,
    /// See `service`.
    pub container_port: i32,
}

/// A load balancer.
#[derive(Debug, Clone)]
pub struct AdoptedLoadBalancer {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// `application`, `network`, `gateway`.
    pub kind: Option<String>,
    /// Its groups' ids.
    pub group_ids: Vec<String>,
    /// Its listeners.
    pub listeners: Vec<LiveListener>,
}

/// A security group and its ingress rules.
#[derive(Debug, Clone)]
pub struct AdoptedGroup {
    /// `sg-...`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its VPC.
    pub vpc_id: Option<String>,
    /// Its ingress rules, or why they cannot be written in the file.
    pub ingress: Observed<Vec<LiveRule>>,
}

/// Reads the topology around `services` of `cluster` (every ACTIVE
/// service of the cluster when `all`).
pub async fn read_topology(
    aws: &Aws,
    cluster: &str,
    services: &[String],
    all: bool,
) -> Result<Topology> {
    let mut names: BTreeSet<String> = services.iter().cloned().collect();
    if all {
        names.extend(list_services(aws, cluster).await?);
    }
    let names: Vec<String> = names.into_iter().collect();
    let mut topology = Topology {
        cluster: cluster.to_string(),
        ..Topology::default()
    };
    let mut definitions: BTreeMap<String, LiveTaskDefinition> = BTreeMap::new();
    for service in describe_services(aws, cluster, &names).await? {
        let task_definition = match &service.live.task_definition_arn {
            Some(arn) if !definitions.contains_key(arn) => {
                let def = describe_task_definition(aws, arn).await?;
                definitions.insert(arn.clone(), def.clone());
                Some(def)
            }
            Some(arn) => definitions.get(arn).cloned(),
            None => None,
        };
        topology.services.push(AdoptedService {
            task_definition,
            ..service
        });
    }
    let scaling = scalable_targets(aws, cluster, &names).await?;
    for service in &mut topology.services {
        service.scaling = scaling.get(&service.name).copied();
    }
    topology.target_groups = target_groups(aws, &topology.services).await?;
    let lb_arns: BTreeSet<String> = topology
        .target_groups
        .iter()
        .flat_map(|t| t.load_balancer_arns.iter().cloned())
        .collect();
    topology.load_balancers = load_balancers(aws, &lb_arns).await?;

    let instances: Vec<String> = container_instances(aws, cluster)
        .await?
        .into_iter()
        .filter_map(|ci| ci.ec2_instance_id)
        .collect();
    let described = describe_instances(aws, &instances).await?;
    topology.instances = described.len();
    let mut common: Option<BTreeSet<String>> = None;
    for instance in described.values() {
        let groups: BTreeSet<String> = instance.security_group_ids.iter().cloned().collect();
        common = Some(match common {
            None => groups,
            Some(c) => c.intersection(&groups).cloned().collect(),
        });
    }
    topology.instance_group_ids = common.unwrap_or_default().into_iter().collect();

    let group_ids: BTreeSet<String> = topology
        .instance_group_ids
        .iter()
        .chain(topology.load_balancers.iter().flat_map(|l| &l.group_ids))
        .cloned()
        .collect();
    topology.groups = groups(aws, &group_ids).await?;
    let lists: BTreeSet<String> = topology
        .groups
        .values()
        .filter_map(|g| g.ingress.known())
        .flatten()
        .filter_map(|r| match &r.key.source {
            ecs_reconciler_plan::LiveSource::PrefixList(id) => Some(id.clone()),
            _ => None,
        })
        .collect();
    if !lists.is_empty() {
        topology.prefix_list_names = prefix_list_names(aws).await?;
    }
    Ok(topology)
}

/// DescribeScalableTargets takes at most 50 resource ids.
const SCALABLE_TARGET_IDS_PER_CALL: usize = 50;

/// The scalable targets of the services' desired counts: service name →
/// (MinCapacity, MaxCapacity). A service without one is absent.
async fn scalable_targets(
    aws: &Aws,
    cluster: &str,
    names: &[String],
) -> Result<BTreeMap<String, (i32, i32)>> {
    use aws_sdk_applicationautoscaling::operation::describe_scalable_targets::DescribeScalableTargetsOutput;
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};

    let mut found = BTreeMap::new();
    for chunk in names.chunks(SCALABLE_TARGET_IDS_PER_CALL) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|name| format!("service/{cluster}/{name}"))
            .collect();
        let pages = aws
            .sdk
            .autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .set_resource_ids(Some(ids))
            .into_paginator()
            .send();
        pages::each_page(
            &aws.budget,
            "application-autoscaling",
            "DescribeScalableTargets",
            pages,
            DescribeScalableTargetsOutput::next_token,
            |page| {
                for target in page.scalable_targets() {
                    // service/CLUSTER/NAME
                    let mut parts = target.resource_id().splitn(3, '/');
                    if let (Some("service"), Some(c), Some(name)) =
                        (parts.next(), parts.next(), parts.next())
                        && c == cluster
                    {
                        found.insert(
                            name.to_string(),
                            (target.min_capacity(), target.max_capacity()),
                        );
                    }
                }
            },
        )
        .await?;
    }
    Ok(found)
}

async fn list_services(aws: &Aws, cluster: &str) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let pages = aws
        .sdk
        .ecs
        .list_services()
        .cluster(cluster)
        .into_paginator()
        .send();
    pages::each_page(
        &aws.budget,
        "ecs",
        "ListServices",
        pages,
        ListServicesOutput::next_token,
        |page| arns.extend(page.service_arns().iter().cloned()),
    )
    .await?;
    // arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/NAME (or service/NAME).
    Ok(arns
        .iter()
        .filter_map(|arn| arn.rsplit('/').next().map(str::to_string))
        .collect())
}

async fn describe_services(
    aws: &Aws,
    cluster: &str,
    names: &[String],
) -> Result<Vec<AdoptedService>> {
    let mut out = Vec::new();
    each_service(aws, cluster, names, |name, service| {
        out.push(AdoptedService {
            name: name.to_string(),
            live: live_service(service),
            task_definition: None,
            scaling: None,
            load_balancers: service
                .load_balancers()
                .iter()
                .filter_map(|lb| {
                    Some((
                        lb.target_group_arn()?.to_string(),
                        lb.container_name()?.to_string(),
                        lb.container_port()?,
                    ))
                })
                .collect(),
        });
    })
    .await?;
    if let Some(missing) = names.iter().find(|n| !out.iter().any(|s| &s.name == *n)) {
        return Err(AwsError::not_found(
            "ecs",
            "DescribeServices",
            format!("no active service {missing} in cluster {cluster}"),
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// ELBv2 describes at most 20 target groups or load balancers by ARN.
const ELB_ARNS_PER_CALL: usize = 20;

async fn target_groups(aws: &Aws, services: &[AdoptedService]) -> Result<Vec<AdoptedTargetGroup>> {
    let bound: BTreeMap<&str, (&str, &str, i32)> = services
        .iter()
        .flat_map(|s| {
            s.load_balancers
                .iter()
                .map(move |(arn, c, p)| (arn.as_str(), (s.name.as_str(), c.as_str(), *p)))
        })
        .collect();
    let arns: Vec<String> = bound.keys().map(|a| (*a).to_string()).collect();
    let mut out = Vec::new();
    for chunk in arns.chunks(ELB_ARNS_PER_CALL) {
        aws.take("elbv2", "DescribeTargetGroups").await;
        let answer = aws
            .sdk
            .elbv2
            .describe_target_groups()
            .set_target_group_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elbv2", "DescribeTargetGroups", &e))?;
        for tg in answer.target_groups() {
            let (Some(name), Some(arn)) = (tg.target_group_name(), tg.target_group_arn()) else {
                continue;
            };
            let Some((service, container, port)) = bound.get(arn) else {
                continue;
            };
            out.push(AdoptedTargetGroup {
                name: name.to_string(),
                arn: arn.to_string(),
                target_type: tg.target_type().map(|t| t.as_str().to_string()),
                health_check_path: tg.health_check_path().map(str::to_string),
                load_balancer_arns: tg.load_balancer_arns().to_vec(),
                service: (*service).to_string(),
                container_name: (*container).to_string(),
                container_port: *port,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn load_balancers(aws: &Aws, arns: &BTreeSet<String>) -> Result<Vec<AdoptedLoadBalancer>> {
    let arns: Vec<String> = arns.iter().cloned().collect();
    let mut out = Vec::new();
    for chunk in arns.chunks(ELB_ARNS_PER_CALL) {
        aws.take("elbv2", "DescribeLoadBalancers").await;
        let answer = aws
            .sdk
            .elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("elbv2", "DescribeLoadBalancers", &e))?;
        for lb in answer.load_balancers() {
            let (Some(name), Some(arn)) = (lb.load_balancer_name(), lb.load_balancer_arn()) else {
                continue;
            };
            out.push(AdoptedLoadBalancer {
                name: name.to_string(),
                arn: arn.to_string(),
                kind: lb.r#type().map(|t| t.as_str().to_string()),
                group_ids: lb.security_groups().to_vec(),
                listeners: Vec::new(),
            });
        }
    }
    for lb in &mut out {
        let mut listeners = describe_listeners(aws, &lb.arn).await?;
        listeners.sort_by_key(|l| l.port);
        lb.listeners = listeners;
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn groups(aws: &Aws, ids: &BTreeSet<String>) -> Result<BTreeMap<String, AdoptedGroup>> {
    let ids: Vec<String> = ids.iter().cloned().collect();
    let rules = describe_rules(aws, &ids).await?;
    Ok(groups_by_filter(aws, "group-id", &ids)
        .await?
        .into_iter()
        .map(|group| {
            let ingress = rules
                .get(&group.id)
                .cloned()
                .unwrap_or(Observed::Known(Vec::new()));
            let adopted = AdoptedGroup {
                id: group.id.clone(),
                name: group.name,
                vpc_id: group.vpc_id,
                ingress,
            };
            (group.id, adopted)
        })
        .collect())
}

async fn prefix_list_names(aws: &Aws) -> Result<BTreeMap<String, String>> {
    Ok(managed_prefix_lists(aws)
        .await?
        .into_iter()
        .map(|list| (list.id, list.name))
        .collect())
}
