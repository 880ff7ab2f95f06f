//! Property tests over random drifts of the seed topology:
//! convergence, idempotence, no destruction from unknown data, observe mode
//! inert, and nothing touched outside what the file declares.

mod fixture;

use std::collections::BTreeSet;

use ecs_reconciler_plan::*;
use ecs_reconciler_spec::*;
use fixture::*;
use proptest::prelude::*;

/// One random edit a person (or AWS) could make to the live state.
#[derive(Debug, Clone)]
enum Drift {
    Scale(i32),
    ClearRules(bool),
    ExtraRule(bool, u16, bool),
    DetachInstance(usize),
    DetachLb,
    DropTarget(usize),
    DrainTarget(usize),
    RogueTarget(usize, i32, bool),
    StopTask(usize),
    StartTask(usize, i32, bool),
    HealthPath,
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        (0..8i32).prop_map(Drift::Scale),
        any::<bool>().prop_map(Drift::ClearRules),
        (any::<bool>(), 1..1024u16, any::<bool>()).prop_map(|(g, p, m)| Drift::ExtraRule(g, p, m)),
        (0..2usize).prop_map(Drift::DetachInstance),
        Just(Drift::DetachLb),
        (0..4usize).prop_map(Drift::DropTarget),
        (0..4usize).prop_map(Drift::DrainTarget),
        (0..2usize, 32768..33000i32, any::<bool>())
            .prop_map(|(i, p, d)| Drift::RogueTarget(i, p, d)),
        (0..4usize).prop_map(Drift::StopTask),
        (0..2usize, 33000..34000i32, any::<bool>()).prop_map(|(i, p, r)| Drift::StartTask(i, p, r)),
        Just(Drift::HealthPath),
    ]
}

fn group(first: bool) -> &'static str {
    if first {
        "LoadBalancerGroup"
    } else {
        "EC2InstanceWithLoadBalancer"
    }
}

fn apply_drift(s: &mut Snapshot, d: &Drift) {
    match d {
        Drift::Scale(n) => service_mut(s).desired_count = *n,
        Drift::ClearRules(g) => rules_mut(s, group(*g)).clear(),
        Drift::ExtraRule(g, port, managed) => {
            let mut r = rule(
                &format!("sgr-extra-{port}"),
                Protocol::Tcp,
                i32::from(*port),
                i32::from(*port),
                cidr("0.0.0.0/0"),
            );
            r.managed_by_us = *managed;
            rules_mut(s, group(*g)).push(r);
        }
        Drift::DetachInstance(i) => instance_mut(s, INSTANCES[*i])
            .security_group_ids
            .retain(|g| g != INSTANCE_GROUP),
        Drift::DetachLb => lb_mut(s).security_group_ids = vec![DEFAULT_GROUP.into()],
        Drift::DropTarget(i) => {
            let t = targets_mut(s);
            if *i < t.len() {
                t.remove(*i);
            }
        }
        Drift::DrainTarget(i) => {
            if let Some(t) = targets_mut(s).get_mut(*i) {
                t.state = "draining".into();
            }
        }
        Drift::RogueTarget(i, port, draining) => targets_mut(s).push(target(
            *i,
            *port,
            if *draining { "draining" } else { "healthy" },
        )),
        Drift::StopTask(i) => {
            if let Some(t) = cluster_mut(s).tasks.known_mut().unwrap().get_mut(*i) {
                t.desired_status = "STOPPED".into();
                t.last_status = "STOPPED".into();
            }
        }
        Drift::StartTask(i, port, running) => {
            let mut t = task(100 + *port as usize, *i, *port);
            if !*running {
                t.last_status = "PENDING".into();
            }
            cluster_mut(s).tasks.known_mut().unwrap().push(t);
        }
        Drift::HealthPath => tg_mut(s).health_check_path = Some("/changed".into()),
    }
}

/// Which parts to hide, as unknown reads.
#[derive(Debug, Clone, Default)]
struct Hide {
    rules: [bool; 2],
    group: bool,
    tasks: bool,
    container_instances: bool,
    targets: bool,
    instance: bool,
    service: bool,
}

fn hide() -> impl Strategy<Value = Hide> {
    (
        any::<[bool; 2]>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(rules, group, tasks, container_instances, targets, instance, service)| Hide {
                rules,
                group,
                tasks,
                container_instances,
                targets,
                instance,
                service,
            },
        )
}

fn apply_hide(s: &mut Snapshot, h: &Hide) {
    let why = || Unread::new(ErrorClass::Throttled, "injected: throttled");
    for (i, hidden) in h.rules.iter().enumerate() {
        if *hidden {
            group_mut(s, group(i == 0)).ingress = Observed::Unknown(why());
        }
    }
    if h.tasks {
        cluster_mut(s).tasks = Observed::Unknown(why());
    }
    if h.container_instances {
        cluster_mut(s).container_instances = Observed::Unknown(why());
    }
    if h.targets {
        tg_mut(s).targets = Observed::Unknown(why());
    }
    if h.instance {
        s.instances
            .insert(INSTANCES[0].into(), Observed::Unknown(why()));
    }
    if h.service {
        s.services.insert(
            ("nestjs-cluster".into(), "nestjs-api".into()),
            Observed::Unknown(why()),
        );
    }
    if h.group {
        s.security_groups
            .insert("LoadBalancerGroup".into(), Observed::Unknown(why()));
    }
}

fn drifted(drifts: &[Drift]) -> Snapshot {
    let mut s = converged();
    for d in drifts {
        apply_drift(&mut s, d);
    }
    s
}

fn destructive(plan: &Plan) -> BTreeSet<String> {
    plan.actions()
        .into_iter()
        .filter(|a| a.is_destructive() || matches!(a, Action::ScaleService { .. }))
        .map(|a| serde_json::to_string(a).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Applying plans converges: additive changes in the first pass,
    /// removals the destructive cap held once a later complete observation
    /// agrees (the cap is relative to the members, which the first pass may
    /// have added) — three passes at most — and a converged state plans
    /// nothing (idempotence).
    #[test]
    fn passes_converge(drifts in prop::collection::vec(drift(), 0..8)) {
        let d = desired();
        let mut s = drifted(&drifts);
        converge_in(&d, &mut s, 3);
        let after = plan(&d, &s);
        prop_assert!(after.is_converged(), "{:#?}", after.changes);
        converge(&d, &mut s);
        prop_assert_eq!(plan(&d, &s), after);
    }

    /// The cap holds every removal of a resource above its allowance, so
    /// one pass never removes more than the policy allows.
    #[test]
    fn one_pass_never_removes_more_than_the_cap(drifts in prop::collection::vec(drift(), 0..12)) {
        let d = desired();
        let s = drifted(&drifts);
        let p = plan(&d, &s);
        let mut per_owner = std::collections::BTreeMap::<UnitId, usize>::new();
        for c in p.changes.iter().filter(|c| c.disposition == Disposition::Apply) {
            if c.action.as_ref().is_some_and(Action::is_destructive) {
                *per_owner.entry(c.owner.clone()).or_default() += 1;
            }
        }
        for (owner, removed) in per_owner {
            let members = if let UnitId::SecurityGroup(name) = &owner {
                match s.security_groups.get(name) { Some(Observed::Known(Some(g))) => g.ingress.known().map_or(0, Vec::len), _ => 0 }
            } else {
                match s.target_groups.get("nestjs-api-tg") { Some(Observed::Known(Some(t))) => t.targets.known().map_or(0, |t| t.iter().filter(|t| !t.is_draining()).count()), _ => 0 }
            };
            let added = p.changes.iter().filter(|c| c.disposition == Disposition::Apply && c.owner == owner
                && matches!(c.action, Some(Action::AuthorizeIngress { .. } | Action::RegisterTarget { .. }))).count();
            prop_assert!(removed <= d.policy.destructive_allowance(members + added), "{owner}: {removed} of {members}+{added}");
        }
    }

    /// Hiding any part of the snapshot never adds a destructive action, and
    /// never yields target or rule actions from the hidden part.
    #[test]
    fn unknown_parts_never_add_destruction(drifts in prop::collection::vec(drift(), 0..8), h in hide()) {
        let d = desired();
        let full = drifted(&drifts);
        let mut partial = full.clone();
        apply_hide(&mut partial, &h);
        let full_plan = plan(&d, &full);
        let partial_plan = plan(&d, &partial);
        let extra: Vec<_> = destructive(&partial_plan).difference(&destructive(&full_plan)).cloned().collect();
        prop_assert!(extra.is_empty(), "hiding {:?} added {:?}", h, extra);
        for action in partial_plan.actions() {
            match action {
                Action::RegisterTarget { .. } | Action::DeregisterTarget { .. } => {
                    prop_assert!(!h.targets && !h.tasks && !h.container_instances && !h.service);
                }
                Action::RevokeIngress { group_name, .. } | Action::AuthorizeIngress { group_name, .. } => {
                    let i = if group_name == "LoadBalancerGroup" { 0 } else { 1 };
                    prop_assert!(!h.rules[i]);
                    prop_assert!(!(h.group && group_name == "LoadBalancerGroup"));
                }
                Action::ScaleService { .. } => prop_assert!(!h.service),
                _ => {}
            }
        }
        if !partial.unknowns().is_empty() {
            prop_assert!(!partial_plan.is_converged());
        }
    }

    /// `observe` everywhere: drift is reported, nothing is applied.
    #[test]
    fn observe_mode_never_acts(drifts in prop::collection::vec(drift(), 1..8)) {
        let mut d = desired();
        d.mode = Mode::Observe;
        for g in &mut d.security_groups { g.mode = Mode::Observe; }
        for c in &mut d.clusters { c.mode = Mode::Observe; }
        for s in &mut d.services { s.mode = Mode::Observe; }
        for t in &mut d.target_groups { t.mode = Mode::Observe; }
        for l in &mut d.load_balancers { l.mode = Mode::Observe; }
        let s = drifted(&drifts);
        let p = plan(&d, &s);
        prop_assert!(p.actions().is_empty());
        prop_assert_eq!(p.has_drift(), plan(&desired(), &s).has_drift());
    }

    /// Actions only name declared resources; attachments keep every group
    /// already there; `owned` groups never lose a foreign rule; `shared`
    /// target groups never lose a target.
    #[test]
    fn never_touches_what_it_does_not_own(drifts in prop::collection::vec(drift(), 0..8), owned in any::<bool>(), shared in any::<bool>()) {
        let mut d = desired();
        if owned { for g in &mut d.security_groups { g.management = RuleManagement::Owned; } }
        if shared { d.target_groups[0].membership = TargetMembership::Shared; }
        let s = drifted(&drifts);
        for action in plan(&d, &s).actions() {
            match action {
                Action::ScaleService { cluster, service, .. } => {
                    prop_assert!(d.service(cluster, service).is_some());
                }
                Action::AuthorizeIngress { group_name, .. } => prop_assert!(d.security_group(group_name).is_some()),
                Action::RevokeIngress { group_name, rule_id, .. } => {
                    prop_assert!(d.security_group(group_name).is_some());
                    if owned {
                        let Some(Observed::Known(Some(live))) = s.security_groups.get(group_name) else { unreachable!() };
                        let r = live.ingress.known().unwrap().iter().find(|r| &r.rule_id == rule_id).unwrap();
                        prop_assert!(r.managed_by_us);
                    }
                }
                Action::SetInstanceGroups { instance_id, group_ids, .. } => {
                    prop_assert!(INSTANCES.contains(&instance_id.as_str()));
                    let Some(Observed::Known(before)) = s.instances.get(instance_id) else { unreachable!() };
                    for g in &before.security_group_ids { prop_assert!(group_ids.contains(g)); }
                }
                Action::SetLoadBalancerGroups { group_ids, .. } => {
                    let Some(Observed::Known(Some(before))) = s.load_balancers.get("nestjs-api-alb") else { unreachable!() };
                    for g in &before.security_group_ids { prop_assert!(group_ids.contains(g)); }
                }
                Action::DeregisterTarget { target_group, .. } => {
                    prop_assert!(!shared);
                    prop_assert_eq!(target_group, "nestjs-api-tg");
                }
                Action::RegisterTarget { target_group, .. } | Action::SetHealthCheckPath { target_group, .. } => {
                    prop_assert_eq!(target_group, "nestjs-api-tg");
                }
            }
        }
    }
}
