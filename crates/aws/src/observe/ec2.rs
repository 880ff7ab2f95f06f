//! EC2 reads: the declared security groups and their ingress rules, the
//! managed prefix lists rules name, and the EC2 instances behind the clusters' container instances. Every read is
//! filtered to what the file names and follows every page; a rule the file
//! cannot express makes its group's rules unknown rather than ignored.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput;
use aws_sdk_ec2::operation::describe_managed_prefix_lists::DescribeManagedPrefixListsOutput;
use aws_sdk_ec2::operation::describe_security_group_rules::DescribeSecurityGroupRulesOutput;
use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
use aws_sdk_ec2::types::{Filter, Reservation};
use ecs_reconciler_plan::{
    AddressFamily, LiveContainerInstance, LiveInstance, LivePrefixList, LiveRule,
    LiveSecurityGroup, LiveSource, Observed, RuleKey,
};
use ecs_reconciler_spec::{DesiredState, PortRange, Protocol, RuleSource, SecurityGroupSpec};

use super::{Result, unknown, unknown_because};
use crate::{Aws, OWNER_TAG_KEY, OWNER_TAG_VALUE, pages};

/// EC2 filters take at most 200 values.
const EC2_FILTER_VALUES: usize = 200;

/// The declared security groups with their ingress rules: the groups
/// in one filtered read, then all their rules in another.
pub(super) async fn observe_security_groups(
    aws: &Aws,
    desired: &DesiredState,
) -> BTreeMap<String, Observed<Option<LiveSecurityGroup>>> {
    let mut out = BTreeMap::new();
    if desired.security_groups.is_empty() {
        return out;
    }
    let candidates = match describe_groups(aws, desired).await {
        Ok(groups) => groups,
        Err(err) => {
            for spec in &desired.security_groups {
                out.insert(spec.name.clone(), unknown(&err));
            }
            return out;
        }
    };
    let mut found: Vec<(String, GroupCandidate)> = Vec::new();
    for spec in &desired.security_groups {
        match match_declared(spec, &candidates) {
            Observed::Known(Some(one)) => found.push((spec.name.clone(), one)),
            // Absent, or ambiguous: no rules to read.
            other => {
                out.insert(spec.name.clone(), other.map(|_| None));
            }
        }
    }
    let ids: Vec<String> = found.iter().map(|(_, c)| c.id.clone()).collect();
    let rules = describe_rules(aws, &ids).await;
    for (name, candidate) in found {
        let ingress = match &rules {
            Ok(by_group) => by_group
                .get(&candidate.id)
                .cloned()
                .unwrap_or(Observed::Known(Vec::new())),
            Err(err) => unknown(err),
        };
        out.insert(
            name,
            Observed::Known(Some(LiveSecurityGroup {
                id: candidate.id,
                name: candidate.name,
                vpc_id: candidate.vpc_id,
                ingress,
            })),
        );
    }
    out
}

/// The region's managed prefix lists, read (one paginated
/// DescribeManagedPrefixLists) only when a declared rule names a list or a
/// live rule of a declared group references one: to resolve names, to name
/// a list in a plan before its rule is revoked, and to count its weight
/// against the rule quota.
pub(super) async fn observe_prefix_lists(
    aws: &Aws,
    desired: &DesiredState,
    groups: &BTreeMap<String, Observed<Option<LiveSecurityGroup>>>,
) -> Option<Observed<Vec<LivePrefixList>>> {
    let declared = desired
        .security_groups
        .iter()
        .flat_map(|g| &g.ingress)
        .any(|r| {
            matches!(
                r.source,
                RuleSource::PrefixListId(_) | RuleSource::PrefixListName(_)
            )
        });
    let live = groups
        .values()
        .filter_map(|g| g.known()?.as_ref()?.ingress.known())
        .flatten()
        .any(|r| matches!(r.key.source, LiveSource::PrefixList(_)));
    if !declared && !live {
        return None;
    }
    Some(match managed_prefix_lists(aws).await {
        Ok(lists) => Observed::Known(lists),
        Err(err) => unknown(&err),
    })
}

/// Every managed prefix list of the region (AWS-managed, the account's and
/// those shared with it): one paginated DescribeManagedPrefixLists.
pub(crate) async fn managed_prefix_lists(aws: &Aws) -> Result<Vec<LivePrefixList>> {
    let pages = aws
        .sdk
        .ec2
        .describe_managed_prefix_lists()
        .into_paginator()
        .send();
    let mut lists = Vec::new();
    pages::each_page(
        &aws.budget,
        "ec2",
        "DescribeManagedPrefixLists",
        pages,
        DescribeManagedPrefixListsOutput::next_token,
        |page| {
            for list in page.prefix_lists() {
                let (Some(id), Some(name)) = (list.prefix_list_id(), list.prefix_list_name())
                else {
                    continue;
                };
                lists.push(LivePrefixList {
                    id: id.to_string(),
                    name: name.to_string(),
                    family: if list.address_family() == Some("IPv6") {
                        AddressFamily::IPv6
                    } else {
                        AddressFamily::IPv4
                    },
                    max_entries: list.max_entries().and_then(|n| u32::try_from(n).ok()),
                    aws_managed: list.owner_id() == Some("AWS"),
                });
            }
        },
    )
    .await?;
    Ok(lists)
}

/// Which found group a declared one is: by id when given, else by name
/// (and VPC when given). Several groups of one name are not guessed
/// between.
fn match_declared(
    spec: &SecurityGroupSpec,
    candidates: &[GroupCandidate],
) -> Observed<Option<GroupCandidate>> {
    let matches: Vec<&GroupCandidate> = candidates
        .iter()
        .filter(|c| match &spec.id {
            Some(id) => &c.id == id,
            None => {
                c.name == spec.name
                    && spec
                        .vpc_id
                        .as_ref()
                        .is_none_or(|v| c.vpc_id.as_ref() == Some(v))
            }
        })
        .collect();
    match matches.as_slice() {
        [] => Observed::Known(None),
        [one] => Observed::Known(Some((*one).clone())),
        many => {
            let ids: Vec<String> = many
                .iter()
                .map(|c| format!("{} in {}", c.id, c.vpc_id.as_deref().unwrap_or("?")))
                .collect();
            unknown_because(format!(
                "{} groups are named {} ({}); set vpcId or id in the file",
                many.len(),
                spec.name,
                ids.join(", ")
            ))
        }
    }
}

/// A security group a filtered read returned.
#[derive(Debug, Clone)]
pub(crate) struct GroupCandidate {
    pub id: String,
    pub name: String,
    pub vpc_id: Option<String>,
}

async fn describe_groups(aws: &Aws, desired: &DesiredState) -> Result<Vec<GroupCandidate>> {
    let names: Vec<String> = desired
        .security_groups
        .iter()
        .filter(|g| g.id.is_none())
        .map(|g| g.name.clone())
        .collect();
    let ids: Vec<String> = desired
        .security_groups
        .iter()
        .filter_map(|g| g.id.clone())
        .collect();
    let mut out = groups_by_filter(aws, "group-name", &names).await?;
    out.extend(groups_by_filter(aws, "group-id", &ids).await?);
    Ok(out)
}

/// The groups a DescribeSecurityGroups `filter` (`group-name`, `group-id`)
/// finds for `values`, every page, 200 values a call.
pub(crate) async fn groups_by_filter(
    aws: &Aws,
    filter: &str,
    values: &[String],
) -> Result<Vec<GroupCandidate>> {
    let mut out = Vec::new();
    for chunk in values.chunks(EC2_FILTER_VALUES) {
        let pages = aws
            .sdk
            .ec2
            .describe_security_groups()
            .filters(
                Filter::builder()
                    .name(filter)
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .into_paginator()
            .send();
        pages::each_page(
            &aws.budget,
            "ec2",
            "DescribeSecurityGroups",
            pages,
            DescribeSecurityGroupsOutput::next_token,
            |page| {
                for group in page.security_groups() {
                    out.push(GroupCandidate {
                        id: group.group_id().unwrap_or_default().to_string(),
                        name: group.group_name().unwrap_or_default().to_string(),
                        vpc_id: group.vpc_id().map(str::to_string),
                    });
                }
            },
        )
        .await?;
    }
    Ok(out)
}

/// Ingress rules of the given groups, by group id: one filtered, paginated
/// read for all of them.
pub(crate) async fn describe_rules(
    aws: &Aws,
    group_ids: &[String],
) -> Result<BTreeMap<String, Observed<Vec<LiveRule>>>> {
    let mut out: BTreeMap<String, Vec<LiveRule>> = BTreeMap::new();
    let mut unexpressible: BTreeMap<String, String> = BTreeMap::new();
    for chunk in group_ids.chunks(EC2_FILTER_VALUES) {
        let pages = aws
            .sdk
            .ec2
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            .max_results(aws.page_size.map_or(1000, |n| n.clamp(5, 1000)))
            .into_paginator()
            .send();
        pages::each_page(
            &aws.budget,
            "ec2",
            "DescribeSecurityGroupRules",
            pages,
            DescribeSecurityGroupRulesOutput::next_token,
            |page| {
            for rule in page.security_group_rules() {
                if rule.is_egress() == Some(true) {
                    continue;
                }
                let Some(group_id) = rule.group_id() else {
                    continue;
                };
                let Some(key) = rule_key(rule) else {
                    // A rule the file cannot express (protocol 47, 132,
                    // ...): never silently ignored in an exclusive group,
                    // so the group's rule list is unknown until a person
                    // looks.
                    out.entry(group_id.to_string()).or_default();
                    unexpressible.entry(group_id.to_string()).or_insert_with(|| {
                        format!(
                            "rule {} ({} {}..{}) uses a protocol or source ecs-reconciler cannot express; remove it or manage this group by hand",
                            rule.security_group_rule_id().unwrap_or("?"),
                            rule.ip_protocol().unwrap_or("?"),
                            rule.from_port().unwrap_or(-1),
                            rule.to_port().unwrap_or(-1)
                        )
                    });
                    continue;
                };
                let managed_by_us = rule
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(OWNER_TAG_KEY) && t.value() == Some(OWNER_TAG_VALUE));
                out.entry(group_id.to_string()).or_default().push(LiveRule {
                    rule_id: rule.security_group_rule_id().map(str::to_string),
                    key,
                    description: rule.description().map(str::to_string),
                    managed_by_us,
                    source_account: rule
                        .referenced_group_info()
                        .and_then(|g| g.user_id())
                        // Without the owner there is no telling.
                        .filter(|user| rule.group_owner_id().is_some_and(|owner| owner != *user))
                        .map(str::to_string),
                });
            }
            },
        )
        .await?;
    }
    Ok(out
        .into_iter()
        .map(|(group, rules)| {
            let observed = match unexpressible.remove(&group) {
                Some(why) => unknown_because(why),
                None => Observed::Known(rules),
            };
            (group, observed)
        })
        .collect())
}

/// The normalised key of a live rule; `None` for protocols or sources the
/// file cannot express (the caller then makes the group's rules unknown).
fn rule_key(rule: &aws_sdk_ec2::types::SecurityGroupRule) -> Option<RuleKey> {
    let protocol = Protocol::parse(rule.ip_protocol()?)?;
    let source = if let Some(cidr) = rule.cidr_ipv4() {
        LiveSource::Ipv4(cidr.parse::<ipnet::Ipv4Net>().ok()?.trunc())
    } else if let Some(cidr) = rule.cidr_ipv6() {
        LiveSource::Ipv6(cidr.parse::<ipnet::Ipv6Net>().ok()?.trunc())
    } else if let Some(group) = rule.referenced_group_info().and_then(|g| g.group_id()) {
        LiveSource::Group(group.to_string())
    } else {
        LiveSource::PrefixList(rule.prefix_list_id()?.to_string())
    };
    let ports = PortRange {
        from: rule.from_port().unwrap_or(-1),
        to: rule.to_port().unwrap_or(-1),
    };
    Some(RuleKey::new(protocol, ports, source))
}

pub(super) async fn observe_instances(
    aws: &Aws,
    container_instances: &BTreeMap<String, Observed<Vec<LiveContainerInstance>>>,
) -> BTreeMap<String, Observed<LiveInstance>> {
    let ids: BTreeSet<String> = container_instances
        .values()
        .filter_map(|c| c.known())
        .flatten()
        .filter_map(|ci| ci.ec2_instance_id.clone())
        .collect();
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return out;
    }
    let ids: Vec<String> = ids.into_iter().collect();
    match describe_instances(aws, &ids).await {
        Ok(found) => {
            // An id the complete, filtered read did not return is gone (a
            // terminated instance still registered in ECS): nothing to
            // attach to, and not a reason to call the observation partial.
            for id in ids {
                if let Some(instance) = found.get(&id) {
                    out.insert(id, Observed::Known(instance.clone()));
                }
            }
        }
        Err(err) => {
            for id in ids {
                out.insert(id, unknown(&err));
            }
        }
    }
    out
}

/// The parts of a described instance the plan uses. Its groups are its
/// primary network interface's (device index 0), which is what the
/// cluster's groups attach to; the instance-level list (all interfaces'
/// groups on an instance with a trunk ENI) only when no interface is
/// reported.
fn live_instance(id: &str, instance: &aws_sdk_ec2::types::Instance) -> LiveInstance {
    let primary = instance.network_interfaces().iter().find(|eni| {
        eni.attachment()
            .and_then(aws_sdk_ec2::types::InstanceNetworkInterfaceAttachment::device_index)
            == Some(0)
    });
    let security_group_ids = match primary {
        Some(eni) => eni
            .groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
        None => instance
            .security_groups()
            .iter()
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect(),
    };
    LiveInstance {
        id: id.to_string(),
        state: instance
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        security_group_ids,
        primary_network_interface_id: primary
            .and_then(|eni| eni.network_interface_id())
            .map(str::to_string),
        vpc_id: instance.vpc_id().map(str::to_string),
    }
}

/// By `instance-id` filter, not InstanceIds: one stale id must not fail the
/// whole read.
pub(crate) async fn describe_instances(
    aws: &Aws,
    ids: &[String],
) -> Result<BTreeMap<String, LiveInstance>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(EC2_FILTER_VALUES) {
        let pages = aws
            .sdk
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(chunk.to_vec()))
                    .build(),
            )
            // The largest page: a chunk of 200 ids is then one call (without
            // it the page size is the service's choice).
            .max_results(1000)
            .into_paginator()
            .send();
        pages::each_page(
            &aws.budget,
            "ec2",
            "DescribeInstances",
            pages,
            DescribeInstancesOutput::next_token,
            |page| {
                for instance in page.reservations().iter().flat_map(Reservation::instances) {
                    let Some(id) = instance.instance_id() else {
                        continue;
                    };
                    out.insert(id.to_string(), live_instance(id, instance));
                }
            },
        )
        .await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{Reply, Script, Seen, aws_serving};
    use ecs_reconciler_plan::ErrorClass;

    const FILE: &str = "
version: 1
securityGroups:
  - name: app
    ingress:
      - protocol: tcp
        ports: 80
        cidr: 10.0.0.0/8
";

    fn group(id: &str, vpc: &str) -> String {
        format!(
            "<item><groupId>{id}</groupId><groupName>app</groupName><vpcId>{vpc}</vpcId></item>"
        )
    }

    fn groups(items: &[String]) -> Reply {
        Reply::xml(format!(
            "<DescribeSecurityGroupsResponse><requestId>r</requestId><securityGroupInfo>{}</securityGroupInfo></DescribeSecurityGroupsResponse>",
            items.concat()
        ))
    }

    /// A page of group sg-1's rules with one rule for `port`.
    fn rules_page(port: i32, next: Option<&str>) -> Reply {
        let next = next
            .map(|token| format!("<nextToken>{token}</nextToken>"))
            .unwrap_or_default();
        Reply::xml(format!(
            "<DescribeSecurityGroupRulesResponse><requestId>r</requestId><securityGroupRuleSet><item><securityGroupRuleId>sgr-{port}</securityGroupRuleId><groupId>sg-1</groupId><isEgress>false</isEgress><ipProtocol>tcp</ipProtocol><fromPort>{port}</fromPort><toPort>{port}</toPort><cidrIpv4>10.0.0.0/8</cidrIpv4></item></securityGroupRuleSet>{next}</DescribeSecurityGroupRulesResponse>"
        ))
    }

    /// The group `app` of [`FILE`] and what the EC2 server saw.
    async fn app_group(ec2: Script) -> (Observed<Option<LiveSecurityGroup>>, Seen) {
        let desired = ecs_reconciler_spec::load(FILE).expect("valid file");
        let (aws, servers) = aws_serving(Script::default(), ec2, Script::default()).await;
        let mut found = observe_security_groups(&aws, &desired).await;
        (found.remove("app").expect("declared"), servers.ec2)
    }

    #[tokio::test]
    async fn every_page_of_rules_is_read() {
        let (group, ec2) = app_group(
            Script::default()
                .on(
                    "DescribeSecurityGroups",
                    [groups(&[group("sg-1", "vpc-1")])],
                )
                .on(
                    "DescribeSecurityGroupRules",
                    [rules_page(80, Some("page-2")), rules_page(443, None)],
                ),
        )
        .await;
        let group = group.known().cloned().flatten().expect("found");
        assert_eq!(group.id, "sg-1");
        let ports: Vec<i32> = group
            .ingress
            .known()
            .expect("known")
            .iter()
            .map(|r| r.key.ports.from)
            .collect();
        assert_eq!(ports, [80, 443]);
        assert!(ec2.bodies("DescribeSecurityGroupRules")[1].contains("page-2"));
    }

    #[tokio::test]
    async fn a_failed_second_page_of_rules_makes_the_groups_rules_unknown_not_fewer() {
        let (group, ec2) = app_group(
            Script::default()
                .on(
                    "DescribeSecurityGroups",
                    [groups(&[group("sg-1", "vpc-1")])],
                )
                .on(
                    "DescribeSecurityGroupRules",
                    [
                        rules_page(80, Some("page-2")),
                        Reply::ec2_error(503, "Unavailable", "try again"),
                    ],
                ),
        )
        .await;
        let group = group
            .known()
            .cloned()
            .flatten()
            .expect("the group is known");
        let why = group
            .ingress
            .unknown_reason()
            .expect("its rules are unknown, not the first page's");
        assert!(
            why.message.contains("DescribeSecurityGroupRules")
                && why.message.contains("Unavailable"),
            "{why}"
        );
        // A 503 is worth retrying soon.
        assert_eq!(why.class, ErrorClass::Transient);
        assert_eq!(ec2.count("DescribeSecurityGroupRules"), 2);
    }

    #[tokio::test]
    async fn two_groups_of_one_name_are_unknown_not_a_guess() {
        let (group, ec2) = app_group(Script::default().on(
            "DescribeSecurityGroups",
            [groups(&[group("sg-1", "vpc-1"), group("sg-2", "vpc-2")])],
        ))
        .await;
        let why = group.unknown_reason().expect("unknown");
        assert!(why.message.contains("2 groups are named app"), "{why}");
        // Only a person can fix it: retried rarely.
        assert_eq!(why.class, ErrorClass::Invalid);
        assert_eq!(ec2.count("DescribeSecurityGroupRules"), 0);
    }

    #[tokio::test]
    async fn a_gone_instance_is_absent_and_a_failed_read_makes_every_instance_unknown() {
        let instance = "<DescribeInstancesResponse><requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet><item><instanceId>i-1</instanceId><instanceState><code>16</code><name>running</name></instanceState><groupSet><item><groupId>sg-1</groupId><groupName>app</groupName></item></groupSet></item></instancesSet></item></reservationSet></DescribeInstancesResponse>";
        let (aws, servers) = aws_serving(
            Script::default(),
            Script::default().on(
                "DescribeInstances",
                [
                    Reply::xml(instance),
                    Reply::ec2_error(400, "UnauthorizedOperation", "denied"),
                ],
            ),
            Script::default(),
        )
        .await;
        let container = |arn: &str, id: &str| LiveContainerInstance {
            arn: arn.into(),
            ec2_instance_id: Some(id.into()),
        };
        let clusters = BTreeMap::from([(
            "main".to_string(),
            Observed::Known(vec![container("ci-1", "i-1"), container("ci-2", "i-2")]),
        )]);

        let found = observe_instances(&aws, &clusters).await;
        let i1 = found["i-1"].known().expect("known");
        assert_eq!(
            (i1.state.as_str(), &i1.security_group_ids[..]),
            ("running", &["sg-1".to_string()][..])
        );
        assert!(
            !found.contains_key("i-2"),
            "terminated: nothing to attach to"
        );

        let failed = observe_instances(&aws, &clusters).await;
        assert_eq!(failed.len(), 2);
        for (id, observed) in &failed {
            let why = observed.unknown_reason().expect("unknown");
            assert!(why.message.contains("UnauthorizedOperation"), "{id}: {why}");
            assert_eq!(why.class, ErrorClass::Denied, "{id}");
        }
        assert_eq!(servers.ec2.count("DescribeInstances"), 2);
    }
}
