//! `file` structs -> `model::DesiredState`: every semantic rule of the
//! format (CIDRs, port ranges, exactly one rule source, references between
//! resources, duplicate names, value ranges, defaults), each error pointing
//! at the value it is about. Values that already failed to decode are not
//! checked again, and references are only reported as undeclared when every
//! name they could refer to was readable, so one mistake gives one error.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::decode::Spans;
use crate::diag::{Diagnostic, list_names, nearest};
use crate::file as f;
use crate::model::{
    ClusterSpec, DesiredState, IngressRule, ListenerCheck, LoadBalancerSpec, Mode, Policy,
    PortRange, Protocol, ReplicaBounds, RuleManagement, RuleSource, SecurityGroupSpec, ServiceSpec,
    TargetGroupSpec, TargetMembership, TaskDefinitionCheck,
};

/// The most tasks a service may ask for: far above any sane value, low
/// enough to catch a typo (or a unit mix-up) before it reaches ECS.
pub(crate) const MAX_REPLICAS: i64 = 10_000;

const CIDR_HINT: &str = "write an IPv4 CIDR such as 10.0.0.0/16 or an IPv6 one such as ::/0";
/// Characters EC2 accepts in a rule description, besides letters and digits.
const DESCRIPTION_PUNCTUATION: &str = " ._-:/()#,@[]+=&;{}!$*";

struct Ctx<'a> {
    spans: &'a Spans,
    errors: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        let pos = self.spans.pos(path);
        self.errors
            .push(Diagnostic::new(pos, Some(path), message, hint));
    }

    /// The value at `path` decoded (or was absent): worth checking.
    fn ok(&self, path: &str) -> bool {
        !self.spans.failed(path)
    }

    fn line(&self, path: &str) -> usize {
        self.spans.pos(path).line
    }

    /// Reports an empty (or blank) name; the caller has checked the path
    /// decoded. `what` reads as a subject: "a cluster name".
    fn non_empty(&mut self, path: &str, value: &str, what: &str) {
        if value.trim().is_empty() {
            self.error(
                path,
                format!("{what} cannot be empty"),
                "write the name: an empty one matches nothing in AWS",
            );
        }
    }

    fn in_range(&mut self, path: &str, value: f::Int, min: i64, max: i64, what: &str) -> bool {
        if !self.ok(path) {
            return false;
        }
        if (min..=max).contains(&value.0) {
            return true;
        }
        self.error(
            path,
            format!("{what} {} is out of range: it must be {min}-{max}", value.0),
            format!("write a number from {min} to {max}"),
        );
        false
    }
}

/// A resource's mode: `paused` wins, then its own `mode`, then the file's.
fn resolved_mode(m: Option<f::Mode>, paused: Option<bool>, default: Mode) -> Mode {
    if paused == Some(true) {
        Mode::Paused
    } else {
        mode(m, default)
    }
}

fn mode(m: Option<f::Mode>, default: Mode) -> Mode {
    match m {
        Some(f::Mode::Enforce) => Mode::Enforce,
        Some(f::Mode::Observe) => Mode::Observe,
        None => default,
    }
}

fn protocol(p: f::Protocol) -> Protocol {
    match p {
        f::Protocol::Tcp => Protocol::Tcp,
        f::Protocol::Udp => Protocol::Udp,
        f::Protocol::Icmp => Protocol::Icmp,
        f::Protocol::Icmpv6 => Protocol::Icmpv6,
        f::Protocol::All => Protocol::All,
    }
}

/// A reference to a security group by name, resolved once every group has
/// been read.
struct GroupRef {
    path: String,
    name: String,
    /// How the field is described in messages: "`sourceGroup`".
    field: &'static str,
}

/// Checks `file` and builds the model. The model is only meaningful when
/// no errors come back (placeholders stand in for bad values).
pub(crate) fn validate(
    file: &f::DesiredStateFile,
    spans: &Spans,
) -> (DesiredState, Vec<Diagnostic>) {
    let mut ctx = Ctx {
        spans,
        errors: Vec::new(),
    };

    if let Some(version) = file.version
        && ctx.ok("version")
        && version.0 != 1
    {
        ctx.error(
            "version",
            format!(
                "unsupported version {}: this ecs-reconciler reads version 1",
                version.0
            ),
            "write `version: 1`, or leave `version` out",
        );
    }
    let global = mode(file.mode, Mode::Enforce);

    let lists = [
        ("securityGroups", file.security_groups.is_empty()),
        ("clusters", file.clusters.is_empty()),
        ("services", file.services.is_empty()),
        ("targetGroups", file.target_groups.is_empty()),
        ("loadBalancers", file.load_balancers.is_empty()),
    ];
    if lists.iter().all(|(key, empty)| *empty && ctx.ok(key)) {
        ctx.error(
            "",
            "the file declares nothing: securityGroups, clusters, services, targetGroups and loadBalancers are all missing or empty",
            "declare at least one resource; an empty file is refused rather than read as \"manage nothing\"",
        );
    }

    let mut refs = Vec::new();
    let security_groups = security_groups(&mut ctx, file, global, &mut refs);
    let clusters = clusters(&mut ctx, file, global, &mut refs);
    let services = services(&mut ctx, file, global);
    let target_groups = target_groups(&mut ctx, file, global, &services);
    let load_balancers = load_balancers(&mut ctx, file, global, &mut refs);
    resolve_group_refs(&mut ctx, file, &refs);

    let policy = policy(&mut ctx, file.policy.as_ref());
    let state = DesiredState {
        mode: global,
        policy,
        security_groups,
        clusters,
        services,
        target_groups,
        load_balancers,
    };
    (state, ctx.errors)
}

fn policy(ctx: &mut Ctx, policy: Option<&f::Policy>) -> Policy {
    let mut out = Policy::default();
    let Some(p) = policy else {
        return out;
    };
    if let Some(n) = p.max_destructive_per_pass
        && ctx.in_range(
            "policy.maxDestructivePerPass",
            n,
            0,
            10_000,
            "maxDestructivePerPass",
        )
    {
        out.max_destructive_per_pass = u32::try_from(n.0).unwrap_or(0);
    }
    if let Some(n) = p.max_destructive_percent
        && ctx.in_range(
            "policy.maxDestructivePercent",
            n,
            0,
            100,
            "maxDestructivePercent",
        )
    {
        out.max_destructive_percent = u32::try_from(n.0).unwrap_or(0);
    }
    out
}

fn security_groups(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    refs: &mut Vec<GroupRef>,
) -> Vec<SecurityGroupSpec> {
    let mut first_by_key: HashMap<(&str, Option<&str>), String> = HashMap::new();
    let mut first_by_id: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, g) in file.security_groups.iter().enumerate() {
        let p = format!("securityGroups[{i}]");
        let name_path = format!("{p}.name");
        if ctx.ok(&name_path) {
            ctx.non_empty(&name_path, &g.name, "a security group name");
            if g.name.starts_with("sg-") {
                ctx.error(
                    &name_path,
                    format!("security group name {:?} starts with `sg-`, which EC2 reserves for group ids", g.name),
                    "if this is the group's id, write it as `id:` and give the group its name in `name:`",
                );
            }
            let vpc = g.vpc_id.as_deref();
            if let Some(first) = first_by_key.get(&(g.name.as_str(), vpc)) {
                let vpc_text = vpc.map(|v| format!(" in {v}")).unwrap_or_default();
                ctx.error(
                    &name_path,
                    format!("security group `{}`{vpc_text} is declared twice", g.name),
                    format!(
                        "merge it with the entry on line {}, or give the two different `vpcId`s if they live in different VPCs",
                        ctx.line(first)
                    ),
                );
            } else if !g.name.is_empty() {
                first_by_key.insert((g.name.as_str(), vpc), name_path.clone());
            }
        }
        if let Some(id) = &g.id {
            let id_path = format!("{p}.id");
            if ctx.ok(&id_path) {
                check_group_id(ctx, &id_path, id, "`id`");
                if let Some(first) = first_by_id.get(id.as_str()) {
                    ctx.error(
                        &id_path,
                        format!("security group id `{id}` is declared twice"),
                        format!(
                            "one group, one entry: merge it with the entry on line {}",
                            ctx.line(first)
                        ),
                    );
                } else {
                    first_by_id.insert(id, id_path.clone());
                }
            }
        }
        if let Some(vpc) = &g.vpc_id {
            let vpc_path = format!("{p}.vpcId");
            if ctx.ok(&vpc_path) && !is_aws_id(vpc, "vpc-") {
                ctx.error(
                    &vpc_path,
                    format!("invalid VPC id {vpc:?}: it must be `vpc-` followed by hex digits"),
                    "copy the id from the VPC console, e.g. vpc-0a1b2c3d4e5f60718",
                );
            }
        }

        let mut ingress = Vec::new();
        let mut first_rule: HashMap<(Protocol, PortRange, RuleSource), String> = HashMap::new();
        for (j, r) in g.ingress.iter().enumerate() {
            let rp = format!("{p}.ingress[{j}]");
            if let Some(rule) = ingress_rule(ctx, r, &rp, refs) {
                let key = (rule.protocol, rule.ports, rule.source.clone());
                if let Some(first) = first_rule.get(&key) {
                    ctx.error(
                        &rp,
                        format!(
                            "this rule repeats `{}` (line {}): same protocol, ports and source",
                            first.rsplit('.').next().unwrap_or(first),
                            ctx.line(first)
                        ),
                        "remove one of the two; EC2 keeps a single copy of a rule",
                    );
                } else {
                    first_rule.insert(key, rp.clone());
                }
                ingress.push(rule);
            }
        }

        out.push(SecurityGroupSpec {
            name: g.name.clone(),
            id: g.id.clone(),
            vpc_id: g.vpc_id.clone(),
            management: match g.management {
                Some(f::Management::Owned) => RuleManagement::Owned,
                Some(f::Management::Exclusive) | None => RuleManagement::Exclusive,
            },
            mode: resolved_mode(g.mode, g.paused, global),
            ingress,
        });
    }
    out
}

/// `prefix` followed by one or more lower-case hex digits.
fn is_aws_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|hex| {
        !hex.is_empty()
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

fn check_group_id(ctx: &mut Ctx, path: &str, id: &str, field: &str) {
    if !is_aws_id(id, "sg-") {
        ctx.error(
            path,
            format!("invalid security group id {id:?} in {field}: it must be `sg-` followed by lower-case hex digits"),
            "copy the id from the EC2 console, e.g. sg-0123456789abcdef0",
        );
    }
}

/// One rule, or `None` when it is too broken to build (errors reported).
fn ingress_rule(
    ctx: &mut Ctx,
    r: &f::IngressRule,
    p: &str,
    refs: &mut Vec<GroupRef>,
) -> Option<IngressRule> {
    let mut usable = true;
    let proto = protocol(r.protocol);
    let ports_path = format!("{p}.ports");
    let ports = if ctx.ok(&format!("{p}.protocol")) && ctx.ok(&ports_path) {
        rule_ports(ctx, proto, r.ports.as_ref(), p)
    } else {
        None
    };
    usable &= ports.is_some();

    // Exactly one source.
    let given: Vec<(&str, &String)> = [
        ("cidr", &r.cidr),
        ("sourceGroup", &r.source_group),
        ("sourceGroupId", &r.source_group_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|v| (key, v)))
    .collect();
    let sources_readable = ["cidr", "sourceGroup", "sourceGroupId"]
        .iter()
        .all(|key| ctx.ok(&format!("{p}.{key}")));
    if sources_readable {
        match given.as_slice() {
            [] => {
                ctx.error(
                    p,
                    "this rule has no source",
                    "add one of `cidr` (addresses), `sourceGroup` (a group declared in this file) or `sourceGroupId` (any other group)",
                );
                usable = false;
            }
            [_] => {}
            [(first, _), (second, _), ..] => {
                ctx.error(
                    &format!("{p}.{second}"),
                    format!(
                        "a rule takes exactly one source, but this one has `{first}` and `{second}`"
                    ),
                    "split it into one rule per source",
                );
                usable = false;
            }
        }
    } else {
        usable = false;
    }

    let mut source = None;
    for (key, value) in &given {
        let path = format!("{p}.{key}");
        let parsed = match *key {
            "cidr" => match parse_cidr(value) {
                Ok(net) => Some(net),
                Err(reason) => {
                    ctx.error(
                        &path,
                        format!("invalid CIDR {value:?}: {reason}"),
                        CIDR_HINT,
                    );
                    None
                }
            },
            "sourceGroup" => {
                refs.push(GroupRef {
                    path: path.clone(),
                    name: (*value).clone(),
                    field: "`sourceGroup`",
                });
                Some(RuleSource::DeclaredGroup((*value).clone()))
            }
            _ => {
                check_group_id(ctx, &path, value, "`sourceGroupId`");
                Some(RuleSource::ExternalGroup((*value).clone()))
            }
        };
        if source.is_none() {
            source = parsed;
        }
    }

    if let Some(description) = &r.description {
        check_description(ctx, &format!("{p}.description"), description);
    }

    if !usable {
        return None;
    }
    Some(IngressRule {
        protocol: proto,
        ports: ports?,
        source: source?,
        description: r.description.clone(),
    })
}

fn rule_ports(
    ctx: &mut Ctx,
    proto: Protocol,
    ports: Option<&f::Ports>,
    p: &str,
) -> Option<PortRange> {
    let path = format!("{p}.ports");
    match proto {
        Protocol::Tcp | Protocol::Udp => {
            let Some(ports) = ports else {
                ctx.error(
                    p,
                    format!("a {proto} rule needs `ports`"),
                    "add `ports: 443`, `ports: 8000-8100` or `ports: {from: 8000, to: 8100}`",
                );
                return None;
            };
            let (from, to, from_path, to_path) = match ports {
                f::Ports::Single(port) => (port.0, port.0, path.clone(), path.clone()),
                f::Ports::Range(text) => {
                    let Some((from, to)) = text
                        .split_once('-')
                        .and_then(|(a, b)| Some((parse_port_text(a)?, parse_port_text(b)?)))
                    else {
                        ctx.error(
                            &path,
                            format!("invalid port range {text:?}"),
                            "write one port (`443`) or FROM-TO with two ports (`32768-65535`)",
                        );
                        return None;
                    };
                    (from, to, path.clone(), path.clone())
                }
                f::Ports::Bounds(b) => (
                    b.from.0,
                    b.to.0,
                    format!("{path}.from"),
                    format!("{path}.to"),
                ),
            };
            let mut ok = true;
            for (port, at) in [(from, &from_path), (to, &to_path)] {
                if !(0..=65535).contains(&port) {
                    ctx.error(
                        at,
                        format!("port {port} is out of range: {proto} ports are 0-65535"),
                        "write a port from 0 to 65535",
                    );
                    ok = false;
                    // One report per value: `ports: 70000` is both ends.
                    if from_path == to_path {
                        break;
                    }
                }
            }
            if ok && from > to {
                ctx.error(
                    &path,
                    format!("port range {from}-{to} is reversed: it starts after it ends"),
                    format!("write the lower port first: {to}-{from}"),
                );
                ok = false;
            }
            if !ok {
                return None;
            }
            Some(PortRange {
                from: i32::try_from(from).ok()?,
                to: i32::try_from(to).ok()?,
            })
        }
        Protocol::Icmp | Protocol::Icmpv6 => {
            match ports {
                None => Some(PortRange::ALL),
                Some(f::Ports::Bounds(b)) => {
                    let mut ok = true;
                    for (value, key, what) in [(b.from.0, "from", "type"), (b.to.0, "to", "code")] {
                        if !(-1..=255).contains(&value) {
                            ctx.error(
                            &format!("{path}.{key}"),
                            format!("ICMP {what} {value} is out of range: it must be -1 (any) or 0-255"),
                            format!("write the ICMP {what} as a number from 0 to 255, or -1 for any"),
                        );
                            ok = false;
                        }
                    }
                    if ok && b.from.0 == -1 && b.to.0 != -1 {
                        ctx.error(
                            &format!("{path}.to"),
                            format!(
                                "ICMP code {} needs an ICMP type, but `from` is -1 (any type)",
                                b.to.0
                            ),
                            "set `from` to the ICMP type, or `to: -1`",
                        );
                        ok = false;
                    }
                    if !ok {
                        return None;
                    }
                    Some(PortRange {
                        from: i32::try_from(b.from.0).ok()?,
                        to: i32::try_from(b.to.0).ok()?,
                    })
                }
                Some(_) => {
                    ctx.error(
                    &path,
                    format!("`ports` of an {proto} rule must be `{{from: TYPE, to: CODE}}`"),
                    "e.g. `ports: {from: 8, to: -1}` admits echo requests with any code; leave `ports` out to admit every ICMP type",
                );
                    None
                }
            }
        }
        Protocol::All => {
            if ports.is_some() {
                ctx.error(
                    &path,
                    "protocol `all` admits every port, so `ports` must be left out",
                    "remove `ports`, or use tcp or udp to limit the ports",
                );
                return None;
            }
            Some(PortRange::ALL)
        }
    }
}

/// One side of `FROM-TO`: digits only, as the schema's pattern says (a
/// minus sign would be ambiguous).
fn parse_port_text(text: &str) -> Option<i64> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Longer than any port: keep it out of range instead of overflowing.
    Some(text.parse().unwrap_or(i64::MAX))
}

/// Parses an IPv4 or IPv6 CIDR, clearing host bits. The error is the
/// reason, for "invalid CIDR "...": REASON".
pub(crate) fn parse_cidr(text: &str) -> Result<RuleSource, String> {
    let Some((addr, len)) = text.split_once('/') else {
        return Err(
            "it has no prefix length (add `/32` for a single IPv4 address, `/128` for IPv6)"
                .to_owned(),
        );
    };
    let prefix = if !len.is_empty() && len.len() <= 3 && len.chars().all(|c| c.is_ascii_digit()) {
        len.parse::<u8>().ok()
    } else {
        None
    };
    if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        match prefix.and_then(|n| Ipv4Net::new(v4, n).ok()) {
            Some(net) => Ok(RuleSource::Ipv4(net.trunc())),
            None => Err("prefix length must be 0-32".to_owned()),
        }
    } else if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        match prefix.and_then(|n| Ipv6Net::new(v6, n).ok()) {
            Some(net) => Ok(RuleSource::Ipv6(net.trunc())),
            None => Err("prefix length must be 0-128".to_owned()),
        }
    } else {
        Err(format!("{addr:?} is not an IPv4 or IPv6 address"))
    }
}

fn check_description(ctx: &mut Ctx, path: &str, description: &str) {
    if !ctx.ok(path) {
        return;
    }
    let length = description.chars().count();
    if length > 255 {
        ctx.error(
            path,
            format!("description is {length} characters long; EC2 allows at most 255"),
            "shorten the description",
        );
    }
    if let Some(bad) = description
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !DESCRIPTION_PUNCTUATION.contains(*c))
    {
        ctx.error(
            path,
            format!("description contains {bad:?}, which EC2 does not allow in rule descriptions"),
            format!(
                "use letters, digits, spaces and {}",
                DESCRIPTION_PUNCTUATION.trim_start()
            ),
        );
    }
}

fn clusters(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    refs: &mut Vec<GroupRef>,
) -> Vec<ClusterSpec> {
    let mut first_by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, c) in file.clusters.iter().enumerate() {
        let p = format!("clusters[{i}]");
        let name_path = format!("{p}.name");
        if ctx.ok(&name_path) {
            ctx.non_empty(&name_path, &c.name, "a cluster name");
            if let Some(first) = first_by_name.get(c.name.as_str()) {
                ctx.error(
                    &name_path,
                    format!("cluster `{}` is declared twice", c.name),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_name.insert(&c.name, name_path.clone());
            }
        }
        group_list(
            ctx,
            &c.instance_security_groups,
            &format!("{p}.instanceSecurityGroups"),
            "`instanceSecurityGroups`",
            refs,
        );
        out.push(ClusterSpec {
            name: c.name.clone(),
            instance_security_groups: c.instance_security_groups.clone(),
            mode: resolved_mode(c.mode, c.paused, global),
        });
    }
    out
}

/// A list of group names: each is a reference, none may repeat.
fn group_list(
    ctx: &mut Ctx,
    names: &[String],
    path: &str,
    field: &'static str,
    refs: &mut Vec<GroupRef>,
) {
    let mut first: HashMap<&str, String> = HashMap::new();
    for (j, name) in names.iter().enumerate() {
        let item = format!("{path}[{j}]");
        if !ctx.ok(&item) {
            continue;
        }
        if let Some(first) = first.get(name.as_str()) {
            ctx.error(
                &item,
                format!("security group `{name}` is listed twice in {field}"),
                format!(
                    "remove one of the two (the first is at {})",
                    ctx.spans.pos(first)
                ),
            );
            continue;
        }
        first.insert(name, item.clone());
        refs.push(GroupRef {
            path: item,
            name: name.clone(),
            field,
        });
    }
}

fn services(ctx: &mut Ctx, file: &f::DesiredStateFile, global: Mode) -> Vec<ServiceSpec> {
    let mut first_by_key: HashMap<(&str, &str), String> = HashMap::new();
    let mut out = Vec::new();
    for (i, s) in file.services.iter().enumerate() {
        let p = format!("services[{i}]");
        let name_path = format!("{p}.name");
        let cluster_path = format!("{p}.cluster");
        if ctx.ok(&name_path) {
            ctx.non_empty(&name_path, &s.name, "a service name");
        }
        if ctx.ok(&cluster_path) {
            ctx.non_empty(&cluster_path, &s.cluster, "a cluster name");
        }
        if ctx.ok(&name_path) && ctx.ok(&cluster_path) {
            if let Some(first) = first_by_key.get(&(s.cluster.as_str(), s.name.as_str())) {
                ctx.error(
                    &name_path,
                    format!(
                        "service `{}` in cluster `{}` is declared twice",
                        s.name, s.cluster
                    ),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_key.insert((&s.cluster, &s.name), name_path.clone());
            }
        }
        let replicas_path = format!("{p}.replicas");
        // `None` when the value is out of range or failed to decode (already
        // reported): no check may build on it.
        let count = |ctx: &mut Ctx, path: &str, value: f::Int, what: &str| {
            ctx.in_range(path, value, 0, MAX_REPLICAS, what)
                .then(|| u32::try_from(value.0).unwrap_or(0))
        };
        let replicas = match &s.replicas {
            f::Replicas::Exact(n) => {
                ReplicaBounds::exact(count(ctx, &replicas_path, *n, "replicas").unwrap_or(0))
            }
            f::Replicas::Range(range) => {
                let min = count(
                    ctx,
                    &format!("{replicas_path}.min"),
                    range.min,
                    "replicas.min",
                );
                let max = count(
                    ctx,
                    &format!("{replicas_path}.max"),
                    range.max,
                    "replicas.max",
                );
                if let (Some(min), Some(max)) = (min, max)
                    && min > max
                {
                    ctx.error(
                        &format!("{replicas_path}.max"),
                        format!("replicas.max {max} is less than replicas.min {min}"),
                        "write the range low to high, e.g. `{min: 2, max: 10}`",
                    );
                }
                let min = min.unwrap_or(0);
                ReplicaBounds {
                    min,
                    max: max.unwrap_or(min).max(min),
                }
            }
        };
        let task_definition = s.task_definition.as_ref().map(|t| {
            let tp = format!("{p}.taskDefinition");
            let family_path = format!("{tp}.family");
            if ctx.ok(&family_path) {
                ctx.non_empty(&family_path, &t.family, "a task definition family");
            }
            if let Some(name) = &t.container_name {
                let path = format!("{tp}.containerName");
                if ctx.ok(&path) {
                    ctx.non_empty(&path, name, "a container name");
                }
            }
            let port = |ctx: &mut Ctx, value: Option<f::Int>, key: &str, min: i64| {
                let value = value?;
                let ok = ctx.in_range(&format!("{tp}.{key}"), value, min, 65535, key);
                ok.then(|| u16::try_from(value.0).unwrap_or(0))
            };
            TaskDefinitionCheck {
                family: t.family.clone(),
                container_name: t.container_name.clone(),
                container_port: port(ctx, t.container_port, "containerPort", 1),
                host_port: port(ctx, t.host_port, "hostPort", 0),
            }
        });
        out.push(ServiceSpec {
            name: s.name.clone(),
            cluster: s.cluster.clone(),
            replicas,
            launch_type: s.launch_type.map(|l| {
                match l {
                    f::LaunchType::Ec2 => "EC2",
                    f::LaunchType::Fargate => "FARGATE",
                    f::LaunchType::External => "EXTERNAL",
                }
                .to_owned()
            }),
            scheduling_strategy: s.scheduling_strategy.map(|l| {
                match l {
                    f::SchedulingStrategy::Replica => "REPLICA",
                    f::SchedulingStrategy::Daemon => "DAEMON",
                }
                .to_owned()
            }),
            task_definition,
            mode: resolved_mode(s.mode, s.paused, global),
        });
    }
    out
}

/// Why `name` is not a valid Elastic Load Balancing name (target groups
/// and load balancers share the rule), if it is not.
fn elb_name_problem(name: &str) -> Option<String> {
    let length = name.chars().count();
    if length == 0 {
        Some("it is empty".to_owned())
    } else if length > 32 {
        Some(format!("it is {length} characters long; the limit is 32"))
    } else if let Some(bad) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
    {
        Some(format!(
            "it contains {bad:?}; only letters, digits and hyphens are allowed"
        ))
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it starts or ends with a hyphen".to_owned())
    } else {
        None
    }
}

fn check_elb_name(ctx: &mut Ctx, path: &str, name: &str, what: &str) {
    if !ctx.ok(path) {
        return;
    }
    if let Some(problem) = elb_name_problem(name) {
        ctx.error(
            path,
            format!("invalid {what} name {name:?}: {problem}"),
            "Elastic Load Balancing names are 1-32 letters, digits and hyphens, not starting or ending with a hyphen",
        );
    } else if what == "load balancer" && name.starts_with("internal-") {
        ctx.error(
            path,
            format!("invalid load balancer name {name:?}: names may not start with `internal-`"),
            "choose a name without the `internal-` prefix",
        );
    }
}

fn target_groups(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    services: &[ServiceSpec],
) -> Vec<TargetGroupSpec> {
    // A binding can only be called undeclared when every service's name and
    // cluster could be read.
    let services_known = (0..file.services.len()).all(|i| {
        ctx.ok(&format!("services[{i}].name")) && ctx.ok(&format!("services[{i}].cluster"))
    });
    let mut first_by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, t) in file.target_groups.iter().enumerate() {
        let p = format!("targetGroups[{i}]");
        let name_path = format!("{p}.name");
        check_elb_name(ctx, &name_path, &t.name, "target group");
        if ctx.ok(&name_path) {
            if let Some(first) = first_by_name.get(t.name.as_str()) {
                ctx.error(
                    &name_path,
                    format!("target group `{}` is declared twice", t.name),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_name.insert(&t.name, name_path.clone());
            }
        }
        if let Some(path) = &t.health_check_path {
            let hp = format!("{p}.healthCheckPath");
            if ctx.ok(&hp) && !path.starts_with('/') {
                ctx.error(
                    &hp,
                    format!("health check path {path:?} must start with `/`"),
                    format!("write `healthCheckPath: /{}`", path.trim_start_matches('/')),
                );
            } else if ctx.ok(&hp) && path.chars().count() > 1024 {
                ctx.error(
                    &hp,
                    "health check path is longer than 1024 characters",
                    "shorten the path",
                );
            }
        }
        let cluster = bind_service(ctx, t, &p, services, services_known);
        let cn_path = format!("{p}.containerName");
        if ctx.ok(&cn_path) {
            ctx.non_empty(&cn_path, &t.container_name, "a container name");
        }
        let container_port = if ctx.in_range(
            &format!("{p}.containerPort"),
            t.container_port,
            1,
            65535,
            "containerPort",
        ) {
            u16::try_from(t.container_port.0).unwrap_or(0)
        } else {
            0
        };
        out.push(TargetGroupSpec {
            name: t.name.clone(),
            health_check_path: t.health_check_path.clone(),
            cluster,
            service: t.service.clone(),
            container_name: t.container_name.clone(),
            container_port,
            membership: match t.membership {
                Some(f::Membership::Shared) => TargetMembership::Shared,
                Some(f::Membership::Exclusive) | None => TargetMembership::Exclusive,
            },
            mode: resolved_mode(t.mode, t.paused, global),
        });
    }
    out
}

/// The cluster of the service a target group binds, checking the binding.
fn bind_service(
    ctx: &mut Ctx,
    t: &f::TargetGroup,
    p: &str,
    services: &[ServiceSpec],
    services_known: bool,
) -> String {
    let service_path = format!("{p}.service");
    let cluster_path = format!("{p}.cluster");
    if !ctx.ok(&service_path) || !ctx.ok(&cluster_path) {
        return t.cluster.clone().unwrap_or_default();
    }
    let same_name: Vec<&ServiceSpec> = services.iter().filter(|s| s.name == t.service).collect();
    let clusters_of_same_name = || list_names(same_name.iter().map(|s| s.cluster.as_str()));
    let undeclared_hint = || {
        match nearest(&t.service, services.iter().map(|s| s.name.as_str())) {
        Some(near) => format!("did you mean `{near}`?"),
        None if services.is_empty() => "declare the service under `services`: a target group follows the tasks of a service declared in this file".to_owned(),
        None => format!(
            "declare it under `services`; declared services: {}",
            list_names(services.iter().map(|s| s.name.as_str()))
        ),
    }
    };
    match &t.cluster {
        Some(cluster) => {
            if services_known && !same_name.iter().any(|s| &s.cluster == cluster) {
                let hint = if same_name.is_empty() {
                    undeclared_hint()
                } else {
                    format!(
                        "`{}` is declared in cluster {}: fix `cluster`",
                        t.service,
                        clusters_of_same_name()
                    )
                };
                ctx.error(
                    &service_path,
                    format!(
                        "target group binds service `{}` in cluster `{cluster}`, which is not declared in `services`",
                        t.service
                    ),
                    hint,
                );
            }
            cluster.clone()
        }
        None => match same_name.as_slice() {
            [only] => only.cluster.clone(),
            [] => {
                if services_known {
                    ctx.error(
                        &service_path,
                        format!(
                            "target group binds service `{}`, which is not declared in `services`",
                            t.service
                        ),
                        undeclared_hint(),
                    );
                }
                String::new()
            }
            [first, ..] => {
                ctx.error(
                    &service_path,
                    format!(
                        "service `{}` is declared in several clusters ({}), so the binding is ambiguous",
                        t.service,
                        clusters_of_same_name()
                    ),
                    format!("add `cluster: {}` (or another of them) to the target group", first.cluster),
                );
                String::new()
            }
        },
    }
}

fn load_balancers(
    ctx: &mut Ctx,
    file: &f::DesiredStateFile,
    global: Mode,
    refs: &mut Vec<GroupRef>,
) -> Vec<LoadBalancerSpec> {
    let mut first_by_name: HashMap<&str, String> = HashMap::new();
    let mut out = Vec::new();
    for (i, lb) in file.load_balancers.iter().enumerate() {
        let p = format!("loadBalancers[{i}]");
        let name_path = format!("{p}.name");
        check_elb_name(ctx, &name_path, &lb.name, "load balancer");
        if ctx.ok(&name_path) {
            if let Some(first) = first_by_name.get(lb.name.as_str()) {
                ctx.error(
                    &name_path,
                    format!("load balancer `{}` is declared twice", lb.name),
                    format!("merge it with the entry on line {}", ctx.line(first)),
                );
            } else {
                first_by_name.insert(&lb.name, name_path.clone());
            }
        }
        group_list(
            ctx,
            &lb.security_groups,
            &format!("{p}.securityGroups"),
            "`securityGroups`",
            refs,
        );
        let mut listeners = Vec::new();
        let mut first_by_port: HashMap<i64, String> = HashMap::new();
        for (j, l) in lb.listeners.iter().enumerate() {
            let port_path = format!("{p}.listeners[{j}].port");
            if !ctx.in_range(&port_path, l.port, 1, 65535, "listener port") {
                continue;
            }
            if let Some(first) = first_by_port.get(&l.port.0) {
                ctx.error(
                    &port_path,
                    format!("listener port {} is declared twice", l.port.0),
                    format!("a load balancer has one listener per port: merge it with the one on line {}", ctx.line(first)),
                );
                continue;
            }
            first_by_port.insert(l.port.0, port_path);
            listeners.push(ListenerCheck {
                port: u16::try_from(l.port.0).unwrap_or(0),
                protocol: l.protocol.map(|p| {
                    match p {
                        f::ListenerProtocol::Http => "HTTP",
                        f::ListenerProtocol::Https => "HTTPS",
                    }
                    .to_owned()
                }),
            });
        }
        out.push(LoadBalancerSpec {
            name: lb.name.clone(),
            security_groups: lb.security_groups.clone(),
            listeners,
            mode: resolved_mode(lb.mode, lb.paused, global),
        });
    }
    out
}

/// Every reference by name must find exactly one declared group.
fn resolve_group_refs(ctx: &mut Ctx, file: &f::DesiredStateFile, refs: &[GroupRef]) {
    let names_known =
        (0..file.security_groups.len()).all(|i| ctx.ok(&format!("securityGroups[{i}].name")));
    let declared: Vec<&f::SecurityGroup> = file.security_groups.iter().collect();
    for r in refs {
        let matches: Vec<&&f::SecurityGroup> =
            declared.iter().filter(|g| g.name == r.name).collect();
        match matches.len() {
            1 => {}
            0 if names_known => {
                let names = || declared.iter().map(|g| g.name.as_str());
                let hint = match nearest(&r.name, names()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None if declared.is_empty() => "declare it under `securityGroups`".to_owned(),
                    None => format!(
                        "declare it under `securityGroups`; declared groups: {}",
                        list_names(names())
                    ),
                };
                let hint = if r.field == "`sourceGroup`" {
                    format!("{hint} (a group managed elsewhere is written `sourceGroupId: sg-...`)")
                } else {
                    hint
                };
                ctx.error(
                    &r.path,
                    format!(
                        "{} names security group `{}`, which is not declared in `securityGroups`",
                        r.field, r.name
                    ),
                    hint,
                );
            }
            0 => {}
            // The same (name, vpcId) twice is already reported as a
            // duplicate; only distinct VPCs make the name itself ambiguous.
            _ if matches.iter().all(|g| g.vpc_id == matches[0].vpc_id) => {}
            _ => {
                let vpcs = list_names(
                    matches
                        .iter()
                        .map(|g| g.vpc_id.as_deref().unwrap_or("no vpcId")),
                );
                ctx.error(
                    &r.path,
                    format!(
                        "{} names security group `{}`, which is declared more than once ({vpcs})",
                        r.field, r.name
                    ),
                    "give the groups distinct names so references are unambiguous",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_parsed_and_canonicalised() {
        let v4 = |s: &str| match parse_cidr(s) {
            Ok(RuleSource::Ipv4(n)) => n.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(v4("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(v4("0.0.0.0/0"), "0.0.0.0/0");
        assert!(
            matches!(parse_cidr("2001:db8::1/32"), Ok(RuleSource::Ipv6(n)) if n.to_string() == "2001:db8::/32")
        );
        assert_eq!(
            parse_cidr("0.0.0.0/33"),
            Err("prefix length must be 0-32".into())
        );
        assert_eq!(
            parse_cidr("::/129"),
            Err("prefix length must be 0-128".into())
        );
        assert_eq!(
            parse_cidr("10.0.0.0/+8"),
            Err("prefix length must be 0-32".into())
        );
        assert!(parse_cidr("10.0.0.0").is_err());
        assert!(parse_cidr("10.0.0/8").is_err());
        assert!(parse_cidr("").is_err());
    }

    #[test]
    fn elb_names() {
        assert_eq!(elb_name_problem("nestjs-api-tg"), None);
        assert!(elb_name_problem("a_b").is_some());
        assert!(elb_name_problem("-a").is_some());
        assert!(elb_name_problem(&"a".repeat(33)).is_some());
    }
}
