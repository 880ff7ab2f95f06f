//! Security groups: names, ids and VPC ids, duplicate groups and rules,
//! and each ingress rule's protocol, ports (or ICMP type and code),
//! single source (CIDR, group by name, group by id with its account, prefix
//! list by id or name) and description.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Ctx, GroupRef, protocol, resolved_mode};
use crate::file as f;
use crate::model::{
    IngressRule, Mode, PortRange, Protocol, RuleManagement, RuleSource, SecurityGroupSpec,
};

/// The keys of which a rule takes exactly one.
const SOURCE_KEYS: [&str; 5] = [
    "cidr",
    "sourceGroup",
    "sourceGroupId",
    "prefixListId",
    "prefixList",
];
const CIDR_HINT: &str = "write an IPv4 CIDR such as 10.0.0.0/16 or an IPv6 one such as ::/0";
/// Characters EC2 accepts in a rule description, besides letters and digits.
const DESCRIPTION_PUNCTUATION: &str = " ._-:/()#,@[]+=&;{}!$*";

pub(super) fn security_groups(
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
        ("prefixListId", &r.prefix_list_id),
        ("prefixList", &r.prefix_list),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|v| (key, v)))
    .collect();
    let sources_readable = SOURCE_KEYS.iter().all(|key| ctx.ok(&format!("{p}.{key}")));
    if sources_readable {
        match given.as_slice() {
            [] => {
                ctx.error(
                    p,
                    "this rule has no source",
                    "add one of `cidr` (addresses), `sourceGroup` (a group declared in this file), `sourceGroupId` (any other group), `prefixListId` or `prefixList` (a managed prefix list)",
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
            "sourceGroupId" => {
                check_group_id(ctx, &path, value, "`sourceGroupId`");
                match &r.source_account {
                    Some(account) => Some(RuleSource::AccountGroup {
                        account: account.clone(),
                        group_id: (*value).clone(),
                    }),
                    None => Some(RuleSource::ExternalGroup((*value).clone())),
                }
            }
            "prefixListId" => {
                if !is_aws_id(value, "pl-") {
                    ctx.error(
                        &path,
                        format!("invalid prefix list id {value:?}: it must be `pl-` followed by lower-case hex digits"),
                        "copy the id from the VPC console (Managed prefix lists), or name the list with `prefixList`",
                    );
                }
                Some(RuleSource::PrefixListId((*value).clone()))
            }
            _ => {
                if value.trim().is_empty() || value.len() > 255 {
                    ctx.error(
                        &path,
                        "a prefix list name is 1 to 255 characters",
                        "write the list's name as the VPC console shows it, e.g. com.amazonaws.global.cloudfront.origin-facing",
                    );
                }
                Some(RuleSource::PrefixListName((*value).clone()))
            }
        };
        if source.is_none() {
            source = parsed;
        }
    }

    if let Some(account) = &r.source_account {
        let path = format!("{p}.sourceAccount");
        if r.source_group_id.is_none() {
            ctx.error(
                &path,
                "`sourceAccount` names the owner of `sourceGroupId`, and this rule has none",
                "add `sourceGroupId: sg-…` (the other account's group), or remove `sourceAccount`",
            );
            usable = false;
        } else if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            ctx.error(
                &path,
                format!("invalid account id {account:?}: it must be 12 digits"),
                "write the account id as digits, quoted so YAML keeps leading zeros: \"012345678901\"",
            );
            usable = false;
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
fn parse_cidr(text: &str) -> Result<RuleSource, String> {
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
}
