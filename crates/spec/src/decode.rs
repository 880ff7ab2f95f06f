//! Node tree -> `file` structs, by hand rather than through serde: serde
//! stops at the first error, and people fixing a file want every error at
//! once. A field that fails to decode gets a placeholder and its path is
//! marked failed, so `validate` can skip checks that would only repeat the
//! problem. Every value's position is recorded under its path (e.g.
//! `securityGroups[1].ingress[0].cidr`) for the semantic errors.

use std::collections::{HashMap, HashSet};

use crate::diag::{Diagnostic, Pos, list_names, nearest};
use crate::file::{
    Cluster, DesiredStateFile, IngressRule, Int, LaunchType, Listener, ListenerProtocol,
    LoadBalancer, Management, Membership, Mode, Policy, PortBounds, Ports, Protocol, ReplicaRange,
    Replicas, SchedulingStrategy, SecurityGroup, Service, TargetGroup, TargetType, TaskDefinition,
};
use crate::yaml::{Entry, Kind, Node, Value};

/// Positions by path, and the paths whose value failed to decode.
#[derive(Debug, Default)]
pub(crate) struct Spans {
    at: HashMap<String, Pos>,
    failed: HashSet<String>,
}

impl Spans {
    /// The position of `path`, or of its nearest recorded ancestor (a
    /// missing field is reported where its mapping starts).
    pub fn pos(&self, path: &str) -> Pos {
        let mut path = path;
        loop {
            if let Some(pos) = self.at.get(path) {
                return *pos;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return Pos::START,
            }
        }
    }

    /// Whether the value at `path`, or a value containing it, failed to
    /// decode (or is missing though required): it was already reported.
    pub fn failed(&self, path: &str) -> bool {
        let mut path = path;
        loop {
            if self.failed.contains(path) {
                return true;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return false,
            }
        }
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rfind(['.', '[']).map_or("", |i| &path[..i]))
}

/// The last step of a path, for messages: `ingress[0].cidr` -> `cidr`.
fn leaf(path: &str) -> &str {
    path.rfind('.').map_or(path, |i| &path[i + 1..])
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) struct Decoded {
    pub file: DesiredStateFile,
    pub spans: Spans,
    pub errors: Vec<Diagnostic>,
    /// The file is empty or not a mapping: nothing else is worth checking.
    pub fatal: bool,
}

pub(crate) fn decode(root: &Node) -> Decoded {
    let mut d = Decoder::default();
    d.spans.at.insert(String::new(), root.pos);
    let fatal = match &root.value {
        Value::Null => {
            d.errors.push(Diagnostic::new(
                Pos::START,
                None,
                "the file declares nothing: it is empty, or holds only comments or `null`",
                "declare at least one resource under securityGroups, clusters, services, targetGroups or loadBalancers; an empty file is refused rather than read as \"manage nothing\"",
            ));
            true
        }
        Value::Map(_) => false,
        _ => {
            d.errors.push(Diagnostic::new(
                root.pos,
                None,
                format!(
                    "the top level of the file must be a mapping, not {}",
                    root.describe()
                ),
                "start the file with keys such as `version: 1` and `securityGroups:`",
            ));
            true
        }
    };
    let file = if fatal {
        DesiredStateFile::default()
    } else {
        DesiredStateFile::decode(&mut d, root, "").unwrap_or_default()
    };
    Decoded {
        file,
        spans: d.spans,
        errors: d.errors,
        fatal,
    }
}

#[derive(Default)]
pub(crate) struct Decoder {
    spans: Spans,
    errors: Vec<Diagnostic>,
}

/// A mapping whose keys have been checked against the known fields.
struct Fields<'n> {
    path: String,
    pos: Pos,
    what: &'static str,
    entries: &'n [Entry],
}

/// Values the decoder can build from a node.
trait Decode: Sized + Default {
    /// For "must be X" messages.
    const EXPECTED: &'static str;
    /// `None` if the node does not fit (already reported, path marked failed).
    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self>;
}

impl Decoder {
    /// Reports that the value at `path` cannot be used.
    fn fail(&mut self, pos: Pos, path: &str, message: String, hint: impl Into<String>) {
        self.failed(path);
        self.errors
            .push(Diagnostic::new(pos, Some(path), message, hint));
    }

    fn failed(&mut self, path: &str) {
        self.spans.failed.insert(path.to_owned());
    }

    fn mismatch(&mut self, node: &Node, path: &str, expected: &str, hint: impl Into<String>) {
        let message = format!(
            "`{}` must be {expected}, not {}",
            leaf(path),
            node.describe()
        );
        self.fail(node.pos, path, message, hint);
    }

    /// The node as a mapping of `what`, with every key outside `known`
    /// reported (with a "did you mean" when one is close).
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &'static str,
        known: &[&'static str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.mismatch(
                node,
                path,
                &format!("a mapping ({what})"),
                format!("write {what} as `key: value` lines indented under it"),
            );
            return None;
        };
        for entry in entries {
            if known.contains(&entry.key.as_str()) {
                continue;
            }
            let hint = match nearest(&entry.key, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!(
                    "remove it: {what} takes {}",
                    list_names(known.iter().copied())
                ),
            };
            self.errors.push(Diagnostic::new(
                entry.key_pos,
                Some(&child(path, &entry.key)),
                format!("unknown field `{}` in {what}", entry.key),
                hint,
            ));
        }
        Some(Fields {
            path: path.to_owned(),
            pos: node.pos,
            what,
            entries,
        })
    }

    /// The present, non-null value of `key`, its span recorded.
    fn value<'n>(&mut self, m: &Fields<'n>, key: &str) -> Option<(&'n Node, String)> {
        let node = m.entries.iter().find(|e| e.key == key).map(|e| &e.value)?;
        let path = child(&m.path, key);
        self.spans.at.insert(path.clone(), node.pos);
        Some((node, path))
    }

    fn null<T: Decode>(&mut self, node: &Node, path: &str) {
        let key = leaf(path);
        let hint = if T::EXPECTED == "a list" {
            format!("write `{key}: []` for an empty list, or indent its entries under `{key}:`")
        } else {
            format!("write {} after `{key}:`, or remove the line", T::EXPECTED)
        };
        self.fail(node.pos, path, format!("`{key}` has no value"), hint);
    }

    /// A required field: missing or null is an error (placeholder value).
    fn req<T: Decode>(&mut self, m: &Fields, key: &str) -> T {
        let Some((node, path)) = self.value(m, key) else {
            let path = child(&m.path, key);
            self.fail(
                m.pos,
                &path,
                format!("{} is missing the required field `{key}`", this(m.what)),
                format!("add `{}`", example(key)),
            );
            return T::default();
        };
        if node.value == Value::Null {
            self.null::<T>(node, &path);
            return T::default();
        }
        T::decode(self, node, &path).unwrap_or_default()
    }

    /// An optional field: missing or null means `None` (as with serde).
    fn opt<T: Decode>(&mut self, m: &Fields, key: &str) -> Option<T> {
        let (node, path) = self.value(m, key)?;
        if node.value == Value::Null {
            return None;
        }
        T::decode(self, node, &path)
    }

    /// An optional list: missing means empty, but null is refused (as with
    /// serde), so a forgotten indentation is not read as "no entries".
    fn list<T: Decode>(&mut self, m: &Fields, key: &str) -> Vec<T> {
        let Some((node, path)) = self.value(m, key) else {
            return Vec::new();
        };
        if node.value == Value::Null {
            self.null::<Vec<T>>(node, &path);
            return Vec::new();
        }
        Vec::decode(self, node, &path).unwrap_or_default()
    }
}

/// "a security group" -> "this security group".
fn this(what: &str) -> String {
    match what.strip_prefix("a ").or_else(|| what.strip_prefix("an ")) {
        Some(rest) => format!("this {rest}"),
        None => what.to_owned(),
    }
}

/// What to write for a missing required field.
fn example(key: &str) -> String {
    let value = match key {
        "name" => "my-name",
        "ingress" => {
            "[]` (no rules) or a list of rules, e.g. `- {protocol: tcp, ports: 443, cidr: 0.0.0.0/0}"
        }
        "protocol" => "tcp",
        "cluster" => "my-cluster",
        "service" => "my-service",
        "replicas" => "2",
        "family" => "my-task-family",
        "containerName" => "api",
        "containerPort" => "3000",
        "port" => "80",
        "from" => "8",
        "to" => "-1",
        _ => "...",
    };
    format!("{key}: {value}")
}

impl<T: Decode> Decode for Vec<T> {
    const EXPECTED: &'static str = "a list";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let Value::Seq(items) = &node.value else {
            d.mismatch(
                node,
                path,
                "a list",
                "write each entry on its own line starting with `- `, or `[a, b]`",
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{path}[{i}]");
            d.spans.at.insert(path.clone(), item.pos);
            if item.value == Value::Null {
                d.fail(
                    item.pos,
                    &path,
                    format!(
                        "entry {i} of `{}` is empty",
                        leaf(parent(&path).unwrap_or(""))
                    ),
                    format!("write {} after the `- `, or remove the line", T::EXPECTED),
                );
                out.push(T::default());
                continue;
            }
            // A failed entry keeps its place so paths stay in step with
            // indices.
            out.push(T::decode(d, item, &path).unwrap_or_default());
        }
        Some(out)
    }
}

impl Decode for String {
    const EXPECTED: &'static str = "text";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        match &node.value {
            Value::Scalar(s) if matches!(s.kind(), Kind::Str) => Some(s.text.clone()),
            Value::Scalar(s) => {
                // YAML reads `name: 123` or `name: true` as a number or a
                // boolean, and so does the schema: quoting says "text".
                d.mismatch(node, path, "text", format!("quote it: \"{}\"", s.text));
                None
            }
            _ => {
                d.mismatch(node, path, "text", "write a single value after the key");
                None
            }
        }
    }
}

impl Decode for Int {
    const EXPECTED: &'static str = "a whole number";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let parsed = match &node.value {
            Value::Scalar(s) => match s.kind() {
                Kind::Int(v) => v,
                Kind::Str => Int::parse_text(&s.text),
                Kind::Float(_) | Kind::Bool(_) => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            d.mismatch(
                node,
                path,
                "a whole number",
                format!("write digits, e.g. `{}`", example_number(leaf(path))),
            );
        }
        parsed.map(Int)
    }
}

fn example_number(key: &str) -> String {
    match key {
        "replicas" => "replicas: 2".to_owned(),
        "version" => "version: 1".to_owned(),
        key if key.ends_with("]") => "80".to_owned(),
        key => format!("{key}: 80"),
    }
}

impl Decode for Protocol {
    const EXPECTED: &'static str = "a protocol";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        // A bare number is read by value (`06` is 6), as serde sees it.
        let text = match &node.value {
            Value::Scalar(s) => match s.kind() {
                Kind::Int(Some(v)) => v.to_string(),
                Kind::Int(None) | Kind::Str => s.text.clone(),
                Kind::Float(_) | Kind::Bool(_) => String::new(),
            },
            _ => String::new(),
        };
        let text = text.as_str();
        if let Some(protocol) = Protocol::from_spelling(text) {
            return Some(protocol);
        }
        let names = ["tcp", "udp", "icmp", "icmpv6", "all"];
        let choices = "write tcp, udp, icmp, icmpv6 or all, or a number: 6, 17, 1, 58 or -1";
        let hint = match nearest(text, names) {
            Some(near) if !text.is_empty() => format!("did you mean `{near}`? {choices}"),
            _ => choices.to_owned(),
        };
        let message = match &node.value {
            Value::Scalar(_) => format!("unknown protocol {}", node.describe()),
            _ => format!(
                "`protocol` must be a name or a number, not {}",
                node.describe()
            ),
        };
        d.fail(node.pos, path, message, hint);
        None
    }
}

impl Decode for Ports {
    const EXPECTED: &'static str = "a port or a port range";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        const HINT: &str =
            "write one port (`443`), a range (`32768-65535`) or `{from: 32768, to: 65535}`";
        match &node.value {
            Value::Scalar(s) => match s.kind() {
                Kind::Int(Some(v)) => Some(Ports::Single(Int(v))),
                // Checked by `validate`, which knows the protocol.
                Kind::Str => Some(match Int::parse_text(&s.text) {
                    Some(v) => Ports::Single(Int(v)),
                    None => Ports::Range(s.text.clone()),
                }),
                Kind::Int(None) | Kind::Float(_) | Kind::Bool(_) => {
                    d.mismatch(node, path, "a port or a port range", HINT);
                    None
                }
            },
            Value::Map(_) => PortBounds::decode(d, node, path).map(Ports::Bounds),
            _ => {
                d.mismatch(node, path, "a port or a port range", HINT);
                None
            }
        }
    }
}

/// A fixed set of words, e.g. `enforce` | `observe`.
trait Keyword: Copy + Default + 'static {
    const NAMES: &'static [(&'static str, Self)];
    /// What the field is, for messages: "mode".
    const WHAT: &'static str;
    /// A sentence naming the choices and what they mean.
    const ABOUT: &'static str;

    /// The message for a word that is not one of `NAMES`.
    fn refusal(found: &str) -> String {
        format!("{found} is not a valid {}", Self::WHAT)
    }
}

fn decode_keyword<T: Keyword>(d: &mut Decoder, node: &Node, path: &str) -> Option<T> {
    let text = match &node.value {
        Value::Scalar(s) => Some(s.text.as_str()),
        _ => None,
    };
    if let Some(&(_, value)) = text.and_then(|t| T::NAMES.iter().find(|(n, _)| *n == t)) {
        return Some(value);
    }
    let hint = match text.and_then(|t| nearest(t, T::NAMES.iter().map(|(n, _)| *n))) {
        Some(near) => format!("did you mean `{near}`? {}", T::ABOUT),
        None => T::ABOUT.to_owned(),
    };
    d.fail(node.pos, path, T::refusal(&node.describe()), hint);
    None
}

macro_rules! keyword {
    ($t:ty, $what:literal, $about:literal, [$($name:literal => $value:expr),+ $(,)?]) => {
        impl Keyword for $t {
            const NAMES: &'static [(&'static str, Self)] = &[$(($name, $value)),+];
            const WHAT: &'static str = $what;
            const ABOUT: &'static str = $about;
        }
        impl Decode for $t {
            const EXPECTED: &'static str = $what;
            fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
                decode_keyword(d, node, path)
            }
        }
    };
}

keyword!(Mode, "mode",
    "write `enforce` (correct drift) or `observe` (only report it)",
    ["enforce" => Mode::Enforce, "observe" => Mode::Observe]);
keyword!(Management, "management",
    "write `exclusive` (revoke every rule not in the file) or `owned` (revoke only rules ecs-reconciler created)",
    ["exclusive" => Management::Exclusive, "owned" => Management::Owned]);
keyword!(Membership, "membership",
    "write `exclusive` (deregister targets that are not the service's tasks) or `shared` (only register, never deregister)",
    ["exclusive" => Membership::Exclusive, "shared" => Membership::Shared]);
keyword!(LaunchType, "launch type",
    "write `EC2`, `FARGATE` or `EXTERNAL` (upper-case, as ECS spells them)",
    ["EC2" => LaunchType::Ec2, "FARGATE" => LaunchType::Fargate, "EXTERNAL" => LaunchType::External]);
keyword!(SchedulingStrategy, "scheduling strategy",
    "write `REPLICA` or `DAEMON` (upper-case, as ECS spells them)",
    ["REPLICA" => SchedulingStrategy::Replica, "DAEMON" => SchedulingStrategy::Daemon]);
keyword!(ListenerProtocol, "listener protocol",
    "write `HTTP` or `HTTPS` (upper-case, as Elastic Load Balancing spells them)",
    ["HTTP" => ListenerProtocol::Http, "HTTPS" => ListenerProtocol::Https]);

impl Keyword for TargetType {
    const NAMES: &'static [(&'static str, Self)] = &[("instance", TargetType::Instance)];
    const WHAT: &'static str = "target type";
    const ABOUT: &'static str = "remove `targetType` or write `targetType: instance`: ecs-reconciler registers the EC2 instances that run the service's tasks, at their host ports";

    fn refusal(found: &str) -> String {
        format!("target type {found} is not supported: only `instance` targets are")
    }
}

impl Decode for TargetType {
    const EXPECTED: &'static str = "target type";
    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        decode_keyword(d, node, path)
    }
}

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
                "securityGroups",
                "clusters",
                "services",
                "targetGroups",
                "loadBalancers",
            ],
        )?;
        Some(DesiredStateFile {
            version: d.opt(&m, "version"),
            mode: d.opt(&m, "mode"),
            policy: d.opt(&m, "policy"),
            security_groups: d.list(&m, "securityGroups"),
            clusters: d.list(&m, "clusters"),
            services: d.list(&m, "services"),
            target_groups: d.list(&m, "targetGroups"),
            load_balancers: d.list(&m, "loadBalancers"),
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
                "description",
            ],
        )?;
        Some(IngressRule {
            protocol: d.req(&m, "protocol"),
            ports: d.opt(&m, "ports"),
            cidr: d.opt(&m, "cidr"),
            source_group: d.opt(&m, "sourceGroup"),
            source_group_id: d.opt(&m, "sourceGroupId"),
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

impl Decode for bool {
    const EXPECTED: &'static str = "true or false";

    fn decode(d: &mut Decoder, node: &Node, path: &str) -> Option<Self> {
        let parsed = match &node.value {
            Value::Scalar(s) => match s.kind() {
                Kind::Bool(v) => Some(v),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            d.mismatch(node, path, "true or false", "write `true` or `false`");
        }
        parsed
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
            scheduling_strategy: d.opt(&m, "schedulingStrategy"),
            task_definition: d.opt(&m, "taskDefinition"),
            mode: d.opt(&m, "mode"),
            paused: d.opt(&m, "paused"),
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
