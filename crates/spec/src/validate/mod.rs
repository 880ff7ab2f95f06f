//! `file` structs -> `model::DesiredState`: every semantic rule of the
//! format (CIDRs, port ranges, exactly one rule source, references between
//! resources, duplicate names, value ranges, defaults), each error pointing
//! at the value it is about. Values that already failed to decode are not
//! checked again, and references are only reported as undeclared when every
//! name they could refer to was readable, so one mistake gives one error.
//!
//! This module holds the entry point, the shared context and conversions,
//! the policy, and the resolution of references to security groups by name
//! (collected while each section is checked, resolved once all are read).
//! Each section of the format has its own file: `groups` (security groups
//! and their ingress rules), `services` (clusters and services) and
//! `balancing` (target groups and load balancers).

use std::collections::HashMap;

use crate::decode::Spans;
use crate::diag::{Diagnostic, list_names, nearest};
use crate::file as f;
use crate::model::{DesiredState, Mode, Policy, Protocol, Quotas};

mod balancing;
mod groups;
mod notifications;
mod services;

use balancing::{load_balancers, target_groups};
use groups::security_groups;
use services::{clusters, services};

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
    let quotas = quotas(&mut ctx, file.quotas.as_ref());
    let notifications = notifications::notifications(&mut ctx, &file.notifications);
    let state = DesiredState {
        mode: global,
        policy,
        quotas,
        security_groups,
        clusters,
        services,
        target_groups,
        load_balancers,
        notifications,
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

fn quotas(ctx: &mut Ctx, quotas: Option<&f::Quotas>) -> Quotas {
    let mut out = Quotas::default();
    let Some(q) = quotas else {
        return out;
    };
    let groups_path = "quotas.securityGroupsPerInterface";
    if let Some(n) = q.security_groups_per_interface
        && ctx.in_range(groups_path, n, 1, 16, "securityGroupsPerInterface")
    {
        out.groups_per_interface = usize::try_from(n.0).unwrap_or(5);
    }
    let rules_path = "quotas.rulesPerSecurityGroup";
    if let Some(n) = q.rules_per_security_group
        && ctx.in_range(rules_path, n, 1, 1000, "rulesPerSecurityGroup")
    {
        out.rules_per_group = usize::try_from(n.0).unwrap_or(60);
    }
    if out.groups_per_interface * out.rules_per_group > 1000 {
        let at = if q.rules_per_security_group.is_some() {
            rules_path
        } else {
            groups_path
        };
        ctx.error(
            at,
            format!(
                "{} groups per interface × {} rules per group is {}; AWS caps the product at 1000",
                out.groups_per_interface,
                out.rules_per_group,
                out.groups_per_interface * out.rules_per_group
            ),
            "write the quotas your account has (Service Quotas console, Amazon Virtual Private Cloud)",
        );
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
