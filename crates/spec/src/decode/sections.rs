//! The mappings of the format, one `Decode` impl per `file` struct: the
//! known keys of each, and which fields are required, optional or lists.

use super::{Decode, Decoder};
use crate::file::{
    CapacityProviderItem, Cluster, DesiredStateFile, IngressRule, Int, Listener, LoadBalancer,
    Notification, Policy, PortBounds, Quotas, ReplicaRange, Replicas, SecurityGroup, Service,
    TargetGroup, TaskDefinition, UrlSource,
};
use crate::yaml::{Node, Value};

impl Decode for DesiredStateFile {
    const EXPECTED: &'static str = "a mapping";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "the top level",
            &[
                "version",
                "mode",
                "policy",
                "quotas",
                "securityGroups",
                "clusters",
                "services",
                "targetGroups",
                "loadBalancers",
                "notifications",
            ],
        )?;
        Some(DesiredStateFile {
            version: d.opt(&m, "version"),
            mode: d.opt(&m, "mode"),
            policy: d.opt(&m, "policy"),
            quotas: d.opt(&m, "quotas"),
            security_groups: d.list(&m, "securityGroups"),
            clusters: d.list(&m, "clusters"),
            services: d.list(&m, "services"),
            target_groups: d.list(&m, "targetGroups"),
            load_balancers: d.list(&m, "loadBalancers"),
            notifications: d.list(&m, "notifications"),
        })
    }
}

impl Decode for SecurityGroup {
    const EXPECTED: &'static str = "a security group";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a security group",
            &[
                "name",
                "id",
                "vpcId",
                "management",
                "mode",
                "paused",
                "ingress",
            ],
        )?;
        Some(SecurityGroup {
            name: d.req(&m, "name"),
            id: d.opt(&m, "id"),
            vpc_id: d.opt(&m, "vpcId"),
            management: d.opt(&m, "management"),
            mode: d.opt(&m, "mode"),
            paused: d.opt(&m, "paused"),
            ingress: d.req(&m, "ingress"),
        })
    }
}

impl Decode for IngressRule {
    const EXPECTED: &'static str = "an ingress rule";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "an ingress rule",
            &[
                "protocol",
                "ports",
                "cidr",
                "sourceGroup",
                "sourceGroupId",
                "sourceAccount",
                "prefixListId",
                "prefixList",
                "description",
            ],
        )?;
        Some(IngressRule {
            protocol: d.req(&m, "protocol"),
            ports: d.opt(&m, "ports"),
            cidr: d.opt(&m, "cidr"),
            source_group: d.opt(&m, "sourceGroup"),
            source_group_id: d.opt(&m, "sourceGroupId"),
            source_account: d.opt(&m, "sourceAccount"),
            prefix_list_id: d.opt(&m, "prefixListId"),
            prefix_list: d.opt(&m, "prefixList"),
            description: d.opt(&m, "description"),
        })
    }
}

impl Decode for PortBounds {
    const EXPECTED: &'static str = "a port range";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(node, path, "a port range", &["from", "to"])?;
        Some(PortBounds {
            from: d.req(&m, "from"),
            to: d.req(&m, "to"),
        })
    }
}

impl Decode for Policy {
    const EXPECTED: &'static str = "a policy";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "the policy",
            &["maxDestructivePerPass", "maxDestructivePercent"],
        )?;
        Some(Policy {
            max_destructive_per_pass: d.opt(&m, "maxDestructivePerPass"),
            max_destructive_percent: d.opt(&m, "maxDestructivePercent"),
        })
    }
}

impl Decode for Notification {
    const EXPECTED: &'static str = "a notification";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a notification",
            &[
                "name",
                "url",
                "format",
                "events",
                "readFailingAfterSeconds",
                "coalesceSeconds",
            ],
        )?;
        Some(Notification {
            name: d.req(&m, "name"),
            url: d.req(&m, "url"),
            format: d.opt(&m, "format"),
            events: d.req(&m, "events"),
            read_failing_after_seconds: d.opt(&m, "readFailingAfterSeconds"),
            coalesce_seconds: d.opt(&m, "coalesceSeconds"),
        })
    }
}

impl Decode for UrlSource {
    const EXPECTED: &'static str = "where the URL comes from";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(node, path, "a URL source", &["env", "file"])?;
        Some(UrlSource {
            env: d.opt(&m, "env"),
            file: d.opt(&m, "file"),
        })
    }
}

impl Decode for Quotas {
    const EXPECTED: &'static str = "the quotas";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "the quotas",
            &["securityGroupsPerInterface", "rulesPerSecurityGroup"],
        )?;
        Some(Quotas {
            security_groups_per_interface: d.opt(&m, "securityGroupsPerInterface"),
            rules_per_security_group: d.opt(&m, "rulesPerSecurityGroup"),
        })
    }
}

impl Decode for Replicas {
    const EXPECTED: &'static str = "a replica count";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        match &node.value {
            Value::Map(_) => ReplicaRange::decode(d, node, path).map(Replicas::Range),
            _ => Int::decode(d, node, path).map(Replicas::Exact),
        }
    }
}

impl Decode for ReplicaRange {
    const EXPECTED: &'static str = "a replica range";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(node, path, "a replica range", &["min", "max"])?;
        Some(ReplicaRange {
            min: d.req(&m, "min"),
            max: d.req(&m, "max"),
        })
    }
}

impl Decode for Cluster {
    const EXPECTED: &'static str = "a cluster";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a cluster",
            &["name", "instanceSecurityGroups", "mode", "paused"],
        )?;
        Some(Cluster {
            name: d.req(&m, "name"),
            instance_security_groups: d.list(&m, "instanceSecurityGroups"),
            mode: d.opt(&m, "mode"),
            paused: d.opt(&m, "paused"),
        })
    }
}

impl Decode for Service {
    const EXPECTED: &'static str = "a service";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a service",
            &[
                "name",
                "cluster",
                "replicas",
                "launchType",
                "capacityProviderStrategy",
                "schedulingStrategy",
                "taskDefinition",
                "mode",
                "paused",
            ],
        )?;
        Some(Service {
            name: d.req(&m, "name"),
            cluster: d.req(&m, "cluster"),
            replicas: d.req(&m, "replicas"),
            launch_type: d.opt(&m, "launchType"),
            capacity_provider_strategy: d.opt(&m, "capacityProviderStrategy"),
            scheduling_strategy: d.opt(&m, "schedulingStrategy"),
            task_definition: d.opt(&m, "taskDefinition"),
            mode: d.opt(&m, "mode"),
            paused: d.opt(&m, "paused"),
        })
    }
}

impl Decode for CapacityProviderItem {
    const EXPECTED: &'static str = "a capacity provider strategy item";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a capacity provider strategy item",
            &["capacityProvider", "weight", "base"],
        )?;
        Some(CapacityProviderItem {
            capacity_provider: d.req(&m, "capacityProvider"),
            weight: d.opt(&m, "weight"),
            base: d.opt(&m, "base"),
        })
    }
}

impl Decode for TaskDefinition {
    const EXPECTED: &'static str = "a task definition";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a task definition",
            &["family", "containerName", "containerPort", "hostPort"],
        )?;
        Some(TaskDefinition {
            family: d.req(&m, "family"),
            container_name: d.opt(&m, "containerName"),
            container_port: d.opt(&m, "containerPort"),
            host_port: d.opt(&m, "hostPort"),
        })
    }
}

impl Decode for TargetGroup {
    const EXPECTED: &'static str = "a target group";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a target group",
            &[
                "name",
                "targetType",
                "healthCheckPath",
                "service",
                "cluster",
                "containerName",
                "containerPort",
                "membership",
                "mode",
                "paused",
            ],
        )?;
        Some(TargetGroup {
            name: d.req(&m, "name"),
            target_type: d.opt(&m, "targetType"),
            health_check_path: d.opt(&m, "healthCheckPath"),
            service: d.req(&m, "service"),
            cluster: d.opt(&m, "cluster"),
            container_name: d.req(&m, "containerName"),
            container_port: d.req(&m, "containerPort"),
            membership: d.opt(&m, "membership"),
            mode: d.opt(&m, "mode"),
            paused: d.opt(&m, "paused"),
        })
    }
}

impl Decode for LoadBalancer {
    const EXPECTED: &'static str = "a load balancer";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(
            node,
            path,
            "a load balancer",
            &["name", "securityGroups", "listeners", "mode", "paused"],
        )?;
        Some(LoadBalancer {
            name: d.req(&m, "name"),
            security_groups: d.list(&m, "securityGroups"),
            listeners: d.list(&m, "listeners"),
            mode: d.opt(&m, "mode"),
            paused: d.opt(&m, "paused"),
        })
    }
}

impl Decode for Listener {
    const EXPECTED: &'static str = "a listener";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let m = d.fields(node, path, "a listener", &["port", "protocol"])?;
        Some(Listener {
            port: d.req(&m, "port"),
            protocol: d.opt(&m, "protocol"),
        })
    }
}
