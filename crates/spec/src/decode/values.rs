//! The leaves of the format: text, whole numbers, booleans, lists of any
//! decodable value, protocols (by name or number), ports (one, `FROM-TO`
//! or `{from, to}`) and the fixed keywords such as `mode`.

use super::{Decode, Decoder, leaf, parent};
use crate::diag::nearest;
use crate::file::{
    Int, LaunchType, ListenerProtocol, Management, Membership, Mode, NotificationEvent,
    NotificationFormat, PortBounds, Ports, Protocol, SchedulingStrategy, TargetType,
};
use crate::yaml::{Kind, Node, Value};

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
keyword!(NotificationFormat, "notification format",
    "write `json` (one object per message) or `slack` (an incoming-webhook payload)",
    ["json" => NotificationFormat::Json, "slack" => NotificationFormat::Slack]);
keyword!(NotificationEvent, "notification event",
    "write drift-corrected, removals-held, fight-detected, config-rejected, read-failing, leadership-changed, throttled or event-queue",
    ["drift-corrected" => NotificationEvent::DriftCorrected,
     "removals-held" => NotificationEvent::RemovalsHeld,
     "fight-detected" => NotificationEvent::FightDetected,
     "config-rejected" => NotificationEvent::ConfigRejected,
     "read-failing" => NotificationEvent::ReadFailing,
     "leadership-changed" => NotificationEvent::LeadershipChanged,
     "throttled" => NotificationEvent::Throttled,
     "event-queue" => NotificationEvent::EventQueue]);
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
