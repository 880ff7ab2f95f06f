//! The shape of the desired-state file, as people write it: plain structs
//! that serde can read and schemars can describe. `docs/schema.json` is
//! generated from these types (their doc comments become its descriptions),
//! and the hand decoder in `decode/` builds these same values, so the
//! schema an editor checks against and the loader cannot drift apart (a
//! test decodes one file both ways and compares).
//!
//! Nothing here is validated beyond its type: `validate/` turns these into
//! `model` types and checks everything else.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What an ECS service, its EC2 security groups, its ALB and target group
/// must look like. ecs-reconciler compares this file with AWS and corrects
/// (mode `enforce`) or reports (mode `observe`) every difference. A file
/// that declares nothing is refused, never read as "manage nothing".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ecs-reconciler desired state")]
pub struct DesiredStateFile {
    /// Version of this file format. Only `1` exists; leaving it out means `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1, "minimum" = 1, "maximum" = 1))]
    pub version: Option<Int>,
    /// Default mode of every resource below: `enforce` corrects drift,
    /// `observe` only reports it. Each resource may override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "enforce"))]
    pub mode: Option<Mode>,
    /// Limits on destructive changes (revoking rules, deregistering
    /// targets) per pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// The account's EC2 quotas, when they were raised above AWS's
    /// defaults: plans are checked against them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Quotas>,
    /// EC2 security groups whose ingress rules are kept as declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<SecurityGroup>,
    /// ECS clusters, for the security groups their container instances must
    /// carry. A service's cluster need not be listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<Cluster>,
    /// ECS services: the replica count is enforced, the rest is checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// ALB target groups, each bound to a service's container and port.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<TargetGroup>,
    /// Application load balancers: their security groups and listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancer>,
    /// Webhooks told what the controller corrects, holds and finds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
}

/// A webhook told about events: what changed (before → after), why, who
/// when known, with a link to the dashboard.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    /// A name for logs and metrics; unique in the file.
    #[schemars(example = &"ops-slack")]
    pub name: String,
    /// Where the webhook URL comes from. Never written in this file (it is
    /// a secret); never logged in full.
    pub url: UrlSource,
    /// `json` (one object per message) or `slack` (incoming-webhook
    /// blocks). Default `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<NotificationFormat>,
    /// The events it wants.
    pub events: Vec<NotificationEvent>,
    /// `read-failing` fires once a resource's reads have failed this many
    /// seconds in a row (default 300, 30 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 300, "minimum" = 30, "maximum" = 86400))]
    pub read_failing_after_seconds: Option<Int>,
    /// Events of one kind about one resource within this many seconds go
    /// out as one message with a count (default 10, 1 to 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 10, "minimum" = 1, "maximum" = 3600))]
    pub coalesce_seconds: Option<Int>,
}

/// Exactly one of `env` or `file`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlSource {
    /// An environment variable of the daemon holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"SLACK_WEBHOOK_URL")]
    pub env: Option<String>,
    /// A file holding the URL (e.g. a mounted secret); read at every load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// How a notification is written.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NotificationFormat {
    /// One JSON object per message.
    #[default]
    Json,
    /// A Slack incoming-webhook payload (`text` and `blocks`).
    Slack,
}

/// What a webhook can be told.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationEvent {
    /// A drift was corrected (a change applied).
    #[default]
    DriftCorrected,
    /// Removals are held: over the destructive cap, or a drastic edit
    /// awaiting an operator's confirmation.
    RemovalsHeld,
    /// Another writer keeps undoing a correction: the field is left alone.
    FightDetected,
    /// An edit of the file was refused; the last good config runs.
    ConfigRejected,
    /// A resource's reads or changes have failed for longer than
    /// `readFailingAfterSeconds`.
    ReadFailing,
    /// This copy started or stopped leading.
    LeadershipChanged,
    /// AWS throttled the controller's calls (its budget is too generous
    /// for what else runs in the account).
    Throttled,
    /// The events queue (`run --events-queue`) stopped working, or works
    /// again; resync covers drift while it fails.
    EventQueue,
}

/// An EC2 security group, found by name (within `vpcId` if given) or by `id`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityGroup {
    /// The group's name (`GroupName`), as in the EC2 console. Other entries
    /// refer to the group by this name.
    #[schemars(example = &"LoadBalancerGroup")]
    pub name: String,
    /// The group's id, `sg-` and hex digits, to pin the group when its name
    /// is ambiguous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sg-[0-9a-f]+$"))]
    pub id: Option<String>,
    /// The VPC the group is in (`vpc-` and hex digits). Two groups may share
    /// a name in different VPCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^vpc-[0-9a-f]+$"))]
    pub vpc_id: Option<String>,
    /// Who owns the ingress rules: `exclusive` (the list below is the whole
    /// truth: any other rule is revoked) or `owned` (only rules
    /// ecs-reconciler created are ever revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "exclusive"))]
    pub management: Option<Management>,
    /// Overrides the file's `mode` for this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `true` stops all work on this resource: nothing is changed, its
    /// drift is shown as paused (not counted as drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// The ingress rules. Required: write `ingress: []` for a group that
    /// admits nothing (with `management: exclusive`, every existing rule is
    /// then revoked).
    pub ingress: Vec<IngressRule>,
}

/// One ingress rule: a protocol, a port range and exactly one source
/// (`cidr`, `sourceGroup`, `sourceGroupId`, `prefixListId` or `prefixList`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, `icmpv6` or `all`, or the protocol number
    /// (6, 17, 1, 58, -1).
    pub protocol: Protocol,
    /// The ports: `443`, `"32768-65535"` or `{from: 32768, to: 65535}`.
    /// Required for tcp and udp; must be left out for `all`. For icmp and
    /// icmpv6 it is `{from: TYPE, to: CODE}` (-1 = any) and leaving it out
    /// admits every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Ports>,
    /// Source addresses: an IPv4 or IPv6 CIDR such as `0.0.0.0/0` or
    /// `::/0`. Host bits are cleared (`10.1.2.3/8` means `10.0.0.0/8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"10.0.0.0/16")]
    pub cidr: Option<String>,
    /// Source: a security group declared in this file, by its `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
    /// Source: a security group not declared in this file, by its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sg-[0-9a-f]+$"))]
    pub source_group_id: Option<String>,
    /// The AWS account (12 digits) that owns `sourceGroupId`, for a group
    /// of another account (a peered VPC, a shared VPC). Only with
    /// `sourceGroupId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub source_account: Option<String>,
    /// Source: a managed prefix list by id (`pl-` and hex digits). A
    /// reference counts as the list's maximum entries against the group's
    /// rule quota (55 for CloudFront's origin-facing list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^pl-[0-9a-f]+$"))]
    pub prefix_list_id: Option<String>,
    /// Source: a managed prefix list by name, such as
    /// `com.amazonaws.global.cloudfront.origin-facing`; looked up with
    /// DescribeManagedPrefixLists at every pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(example = &"com.amazonaws.global.cloudfront.origin-facing", length(min = 1, max = 255))]
    pub prefix_list: Option<String>,
    /// Written on the rule when it is created; never compared. Up to 255
    /// characters: letters, digits, spaces and `._-:/()#,@[]+=&;{}!$*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
}

/// A port range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Ports {
    /// One port, e.g. `443`.
    Single(Int),
    /// An inclusive range written `"FROM-TO"`, e.g. `"32768-65535"`.
    Range(#[schemars(regex(pattern = r"^[0-9]+-[0-9]+$"))] String),
    /// An inclusive range written as a mapping; for icmp `from` is the type
    /// and `to` the code.
    Bounds(PortBounds),
}

impl Default for Ports {
    /// Only a placeholder for a value that failed to decode.
    fn default() -> Ports {
        Ports::Single(Int(0))
    }
}

/// Caps on destructive changes per pass and resource. Above the cap only
/// the additive part is applied; the rest is *held* until a second
/// consecutive complete observation agrees (or an operator overrides with
/// `apply --allow-destructive`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Most destructive changes per resource and pass (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 10, "minimum" = 0, "maximum" = 10000))]
    pub max_destructive_per_pass: Option<Int>,
    /// Most destructive changes per resource and pass, as a percentage of
    /// the resource's current members (rules, targets; default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 50, "minimum" = 0, "maximum" = 100))]
    pub max_destructive_percent: Option<Int>,
}

/// The account's EC2 quotas (Service Quotas, "Amazon Virtual Private
/// Cloud"). Their product may not exceed 1000.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quotas {
    /// "Security groups per network interface" (default 5, at most 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 5, "minimum" = 1, "maximum" = 16))]
    pub security_groups_per_interface: Option<Int>,
    /// "Inbound or outbound rules per security group", per address family
    /// (default 60, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 60, "minimum" = 1, "maximum" = 1000))]
    pub rules_per_security_group: Option<Int>,
}

/// How many tasks a service runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Replicas {
    /// Exactly this many, e.g. `2`.
    Exact(#[schemars(extend("minimum" = 0, "maximum" = 10000))] Int),
    /// A range another writer (Application Auto Scaling) moves within.
    Range(ReplicaRange),
}

impl Default for Replicas {
    /// Only a placeholder for a value that failed to decode.
    fn default() -> Replicas {
        Replicas::Exact(Int(0))
    }
}

/// `{min, max}`, both inclusive.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplicaRange {
    /// Fewest tasks, 0 to 10000.
    #[schemars(extend("minimum" = 0, "maximum" = 10000))]
    pub min: Int,
    /// Most tasks, `min` to 10000.
    #[schemars(extend("minimum" = 0, "maximum" = 10000))]
    pub max: Int,
}

/// `{from, to}`, both inclusive.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortBounds {
    /// First port (icmp: the type, -1 for any).
    pub from: Int,
    /// Last port (icmp: the code, -1 for any).
    pub to: Int,
}

/// An ECS cluster and the groups its container instances must carry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// The cluster's name.
    #[schemars(example = &"nestjs-cluster")]
    pub name: String,
    /// Names of security groups declared in this file that every EC2
    /// instance of the cluster must carry. They are added; the instance's
    /// other groups are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_security_groups: Vec<String>,
    /// Overrides the file's `mode` for this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `true` stops all work on this resource: nothing is changed, its
    /// drift is shown as paused (not counted as drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// An ECS service: `replicas` is enforced, the other fields are checked and
/// differences reported.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    /// The service's name.
    #[schemars(example = &"nestjs-api")]
    pub name: String,
    /// The cluster the service runs in.
    pub cluster: String,
    /// Desired number of running tasks (`desiredCount`): a number (0 to
    /// 10000), or `{min, max}` when an autoscaler owns the count — inside
    /// the range desiredCount is left alone, outside it is clamped.
    pub replicas: Replicas,
    /// Expected launch type; reported if it differs. A service on a
    /// capacity provider strategy satisfies `EC2` when every provider is an
    /// Auto Scaling group provider (`FARGATE` when every one is Fargate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    /// Expected capacity provider strategy (instead of `launchType`);
    /// reported if it differs. Order does not matter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderItem>>,
    /// Expected scheduling strategy; reported if it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_strategy: Option<SchedulingStrategy>,
    /// What the service's task definition must look like; checked and
    /// reported, never changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<TaskDefinition>,
    /// Overrides the file's `mode` for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `true` stops all work on this resource: nothing is changed, its
    /// drift is shown as paused (not counted as drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// One entry of a capacity provider strategy, as ECS spells it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityProviderItem {
    /// The capacity provider's name (`FARGATE`, `FARGATE_SPOT`, or an
    /// Auto Scaling group provider's name).
    pub capacity_provider: String,
    /// Its relative share, 0 to 1000; ECS's default is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 1000))]
    pub weight: Option<Int>,
    /// Tasks placed on it first, 0 to 100000; ECS's default is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 100_000))]
    pub base: Option<Int>,
}

/// Expectations on the service's task definition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskDefinition {
    /// The task definition family (any revision).
    pub family: String,
    /// A container that must exist in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The container port that must be mapped, 1 to 65535.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 1, "maximum" = 65535))]
    pub container_port: Option<Int>,
    /// The host port it must be mapped to, 0 to 65535; `0` means dynamic
    /// host ports (bridge networking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("minimum" = 0, "maximum" = 65535))]
    pub host_port: Option<Int>,
}

/// An ALB target group whose registered targets follow a service's tasks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetGroup {
    /// The target group's name (1-32 letters, digits and hyphens).
    #[schemars(example = &"nestjs-api-tg")]
    pub name: String,
    /// Only `instance` targets are supported (the EC2 instances running the
    /// service's tasks, at their host ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "instance"))]
    pub target_type: Option<TargetType>,
    /// The health check path, starting with `/`; set (ModifyTargetGroup) when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/"))]
    pub health_check_path: Option<String>,
    /// The bound service: a `services[].name`.
    pub service: String,
    /// The bound service's cluster. May be left out when exactly one
    /// declared service has that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The container of the service's tasks that receives traffic.
    pub container_name: String,
    /// The container port that receives traffic, 1 to 65535.
    #[schemars(extend("minimum" = 1, "maximum" = 65535))]
    pub container_port: Int,
    /// `exclusive`: the group holds exactly the service's running tasks
    /// (others are deregistered). `shared`: missing tasks are registered,
    /// nothing is deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "exclusive"))]
    pub membership: Option<Membership>,
    /// Overrides the file's `mode` for this target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `true` stops all work on this resource: nothing is changed, its
    /// drift is shown as paused (not counted as drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// An application load balancer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    /// The load balancer's name (1-32 letters, digits and hyphens).
    #[schemars(example = &"nestjs-api-alb")]
    pub name: String,
    /// Names of security groups declared in this file that the load
    /// balancer must carry. They are added; its other groups are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// Listeners that must exist; checked and reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Listener>,
    /// Overrides the file's `mode` for this load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `true` stops all work on this resource: nothing is changed, its
    /// drift is shown as paused (not counted as drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// A listener the load balancer must have.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    /// The listener's port, 1 to 65535.
    #[schemars(extend("minimum" = 1, "maximum" = 65535))]
    pub port: Int,
    /// The listener's protocol, if it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ListenerProtocol>,
}

/// Whether drift is corrected or only reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Correct drift.
    #[default]
    Enforce,
    /// Report drift, change nothing.
    Observe,
}

/// Who owns a security group's ingress rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Management {
    /// The file is the whole ingress list: any other rule is revoked.
    #[default]
    Exclusive,
    /// Only rules ecs-reconciler created (marked `managed-by=ecs-reconciler`)
    /// are ever revoked; rules added by hand are left alone.
    Owned,
}

/// Who owns a target group's registrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Membership {
    /// The group holds exactly the bound service's running tasks.
    #[default]
    Exclusive,
    /// Other registrations may exist: missing ones are added, none removed.
    Shared,
}

/// An ECS launch type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum LaunchType {
    /// Tasks run on the EC2 container instances registered to the cluster.
    #[default]
    #[serde(rename = "EC2")]
    Ec2,
    /// Tasks run on AWS Fargate, without instances to manage.
    #[serde(rename = "FARGATE")]
    Fargate,
    /// Tasks run on external (ECS Anywhere) instances, e.g. on premises.
    #[serde(rename = "EXTERNAL")]
    External,
}

/// An ECS scheduling strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchedulingStrategy {
    /// Keep `replicas` tasks running.
    #[default]
    Replica,
    /// One task on every container instance.
    Daemon,
}

/// A target group's target type. Only `instance` is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// EC2 instances, registered with the host port of each task.
    #[default]
    Instance,
}

/// An ALB listener protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ListenerProtocol {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTPS: TLS ends at the load balancer.
    Https,
}

/// An IP protocol: a name or its number. Deserializes from `"tcp"`, `6` or
/// `"6"` alike; serializes as the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// TCP (`tcp` or `6`).
    #[default]
    Tcp,
    /// UDP (`udp` or `17`).
    Udp,
    /// ICMP for IPv4 (`icmp` or `1`).
    Icmp,
    /// ICMP for IPv6 (`icmpv6` or `58`).
    Icmpv6,
    /// Every protocol (`-1`).
    All,
}

impl Protocol {
    /// Every accepted spelling, names first. The hand decoder and serde both
    /// read through this table.
    pub const SPELLINGS: &'static [(&'static str, Protocol)] = &[
        ("tcp", Protocol::Tcp),
        ("udp", Protocol::Udp),
        ("icmp", Protocol::Icmp),
        ("icmpv6", Protocol::Icmpv6),
        ("all", Protocol::All),
        ("6", Protocol::Tcp),
        ("17", Protocol::Udp),
        ("1", Protocol::Icmp),
        ("58", Protocol::Icmpv6),
        ("-1", Protocol::All),
    ];

    /// Exact spelling (names are lower-case) to protocol.
    pub fn from_spelling(text: &str) -> Option<Protocol> {
        Protocol::SPELLINGS
            .iter()
            .find(|(s, _)| *s == text)
            .map(|(_, p)| *p)
    }

    /// The lower-case name (`tcp` ... `all`), as serde writes it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::All => "all",
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProtocolVisitor;
        impl Visitor<'_> for ProtocolVisitor {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("tcp, udp, icmp, icmpv6, all, or 6, 17, 1, 58, -1")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Protocol, E> {
                Protocol::from_spelling(v)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
                Protocol::from_spelling(&v.to_string())
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
                Protocol::from_spelling(&v.to_string())
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_any(ProtocolVisitor)
    }
}

impl JsonSchema for Protocol {
    fn schema_name() -> Cow<'static, str> {
        "Protocol".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An IP protocol: tcp, udp, icmp, icmpv6 or all, or its number (6, 17, 1, 58, -1) as an integer or a string.",
            "anyOf": [
                { "type": "string", "enum": ["tcp", "udp", "icmp", "icmpv6", "all", "6", "17", "1", "58", "-1"] },
                { "type": "integer", "enum": [6, 17, 1, 58, -1] }
            ]
        })
    }
}

/// A whole number written either as a YAML number (`80`) or as quoted
/// digits (`"80"`): people quote numbers, and both mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Int(pub i64);

impl Int {
    /// Quoted digits: an optional `-` then ASCII digits, nothing else.
    pub fn parse_text(text: &str) -> Option<i64> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }
}

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number, bare or quoted")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int, E> {
                Int::parse_text(v)
                    .map(Int)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(IntVisitor)
    }
}

impl JsonSchema for Int {
    fn schema_name() -> Cow<'static, str> {
        "Integer".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A whole number, written bare (80) or quoted (\"80\").",
            "anyOf": [
                { "type": "integer" },
                { "type": "string", "pattern": "^-?[0-9]+$" }
            ]
        })
    }
}
