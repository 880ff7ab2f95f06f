//! The gate, rule by rule and in order: scope, agreement, confirmation,
//! drastic edits, due units, fights, leadership. Each case builds a plan
//! from the seed fixture with one kind of drift and checks the verdict of
//! every change and the memory the gate hands to the next pass.

mod fixture;

use std::collections::BTreeSet;

use ecs_reconciler_plan::*;
use ecs_reconciler_spec::*;
use fixture::*;

fn lb_group() -> UnitId {
    UnitId::security_group("LoadBalancerGroup")
}

fn instance_group() -> UnitId {
    UnitId::security_group("EC2InstanceWithLoadBalancer")
}

fn service() -> UnitId {
    UnitId::service("nestjs-cluster", "nestjs-api")
}

fn every_unit(d: &DesiredState) -> BTreeSet<UnitId> {
    unit_ids(d).into_iter().collect()
}

/// Three rogue rules on the ALB's group (over its cap), the instance
/// group's rule missing, and the service scaled to 5.
fn drifted() -> Snapshot {
    let mut s = converged();
    for port in [22, 23, 24] {
        rules_mut(&mut s, "LoadBalancerGroup").push(rule(
            &format!("sgr-{port}"),
            Protocol::Tcp,
            port,
            port,
            cidr("0.0.0.0/0"),
        ));
    }
    rules_mut(&mut s, "EC2InstanceWithLoadBalancer").clear();
    service_mut(&mut s).desired_count = 5;
    s
}

/// The inputs of one pass, owned, so a case changes only what it tests.
struct Pass {
    due: BTreeSet<UnitId>,
    scoped: bool,
    held_before: BTreeSet<HeldKey>,
    confirmed: bool,
    drastic: Vec<DrasticChange>,
    fighting: BTreeSet<String>,
    leader: bool,
}

impl Pass {
    fn full(d: &DesiredState) -> Pass {
        Pass {
            due: every_unit(d),
            scoped: false,
            held_before: BTreeSet::new(),
            confirmed: false,
            drastic: Vec::new(),
            fighting: BTreeSet::new(),
            leader: true,
        }
    }

    fn run(&self, plan: &mut Plan) -> GateOutcome {
        gate(
            plan,
            &GateInput {
                due: &self.due,
                scoped: self.scoped,
                held_before: &self.held_before,
                confirmed: self.confirmed,
                drastic: &self.drastic,
                fighting: &self.fighting,
                leader: self.leader,
            },
        )
    }
}

/// (owner, change kind, verdict) of every change, in plan order.
fn verdicts(plan: &Plan, out: &GateOutcome) -> Vec<(String, String, Verdict)> {
    assert_eq!(plan.changes.len(), out.verdicts.len());
    plan.changes
        .iter()
        .zip(&out.verdicts)
        .map(|(c, v)| (c.owner.to_string(), c.kind.clone(), *v))
        .collect()
}

/// The field the plan's first change of `kind` corrects.
fn field_of(plan: &Plan, kind: &str) -> String {
    plan.changes
        .iter()
        .find(|c| c.kind == kind)
        .and_then(Change::field)
        .expect("the plan has such a change")
}

fn count(out: &GateOutcome, verdict: Verdict) -> usize {
    out.verdicts.iter().filter(|v| **v == verdict).count()
}

#[test]
fn a_first_full_pass_applies_the_additive_part_and_remembers_what_the_cap_held() {
    let d = desired();
    let mut p = plan(&d, &drifted());
    let out = Pass::full(&d).run(&mut p);
    assert_eq!(count(&out, Verdict::Held(HoldReason::DestructiveCap)), 3);
    // Authorize on the instance group, scale the service: applied.
    let applied: Vec<String> = out.to_apply(&p).iter().map(|c| c.kind.clone()).collect();
    assert_eq!(applied, ["authorize-ingress", "scale-service"]);
    assert_eq!(out.held_before.len(), 3);
    assert!(
        out.held_before
            .iter()
            .all(|(owner, _)| *owner == lb_group())
    );
    assert_eq!(out.released, 0);
    assert!(
        p.changes
            .iter()
            .filter(|c| c.disposition == Disposition::Held)
            .all(|c| c.hold == Some(HoldReason::DestructiveCap))
    );
}

#[test]
fn a_second_complete_observation_that_agrees_releases_the_cap_hold() {
    let d = desired();
    let first = Pass::full(&d).run(&mut plan(&d, &drifted()));
    let mut second = Pass::full(&d);
    second.held_before = first.held_before;
    let mut p = plan(&d, &drifted());
    let out = second.run(&mut p);
    assert_eq!(out.released, 3);
    assert_eq!(count(&out, Verdict::Apply), 5);
    assert!(p.changes.iter().all(|c| c.hold.is_none()));
    // Nothing is held any more, so nothing is remembered.
    assert!(out.held_before.is_empty());
}

#[test]
fn an_incomplete_observation_agrees_with_nothing_and_forgets_what_it_covered() {
    let d = desired();
    let first = Pass::full(&d).run(&mut plan(&d, &drifted()));
    let mut s = drifted();
    cluster_mut(&mut s).tasks = Observed::Unknown(Unread::new(ErrorClass::Throttled, "ListTasks"));
    let mut second = Pass::full(&d);
    second.held_before = first.held_before;
    let mut p = plan(&d, &s);
    let out = second.run(&mut p);
    assert_eq!(out.released, 0);
    assert_eq!(count(&out, Verdict::Held(HoldReason::DestructiveCap)), 3);
    // Not two consecutive complete observations: the count starts over.
    assert!(out.held_before.is_empty());
}

#[test]
fn a_scoped_pass_judges_only_its_due_units_and_keeps_the_memory_of_the_rest() {
    let d = desired();
    let first = Pass::full(&d).run(&mut plan(&d, &drifted()));
    // An edit to the service: only it is due and observed.
    let mut scoped = Pass::full(&d);
    scoped.due = BTreeSet::from([service()]);
    scoped.scoped = true;
    scoped.held_before = first.held_before.clone();
    let mut p = plan(&d, &drifted());
    let out = scoped.run(&mut p);
    assert!(p.changes.iter().all(|c| c.owner == service()), "{p:#?}");
    assert_eq!(
        verdicts(&p, &out),
        [(
            service().to_string(),
            "scale-service".to_string(),
            Verdict::Apply
        )]
    );
    // The ALB group's held removals were not judged: still remembered.
    assert_eq!(out.held_before, first.held_before);
}

#[test]
fn a_full_pass_plans_every_unit_but_writes_only_the_due_ones() {
    let d = desired();
    let mut pass = Pass::full(&d);
    pass.due = BTreeSet::from([instance_group()]);
    let mut p = plan(&d, &drifted());
    let out = pass.run(&mut p);
    let v = verdicts(&p, &out);
    assert!(v.contains(&(
        instance_group().to_string(),
        "authorize-ingress".into(),
        Verdict::Apply
    )));
    assert!(v.contains(&(
        service().to_string(),
        "scale-service".into(),
        Verdict::NotDue
    )));
    assert_eq!(count(&out, Verdict::Apply), 1);
}

#[test]
fn an_operator_confirmation_releases_every_hold_at_once() {
    let d = desired();
    let mut pass = Pass::full(&d);
    pass.confirmed = true;
    let mut p = plan(&d, &drifted());
    let out = pass.run(&mut p);
    assert_eq!(out.released, 3);
    assert_eq!(count(&out, Verdict::Apply), 5);
}

#[test]
fn a_drastic_edit_holds_its_removals_however_many_observations_agree() {
    let seed = desired();
    let mut emptied = seed.clone();
    emptied.security_groups[0].ingress.clear();
    let drastic = drastic_changes(&seed, &emptied);
    assert_eq!(drastic.len(), 1);
    let mut pass = Pass::full(&emptied);
    pass.drastic = drastic;
    for _ in 0..3 {
        let mut p = plan(&emptied, &converged());
        let out = pass.run(&mut p);
        assert_eq!(
            verdicts(&p, &out),
            [(
                lb_group().to_string(),
                "revoke-ingress".to_string(),
                Verdict::Held(HoldReason::DrasticEdit)
            )]
        );
        assert!(p.changes[0].reason.contains("SIGUSR1"));
        assert!(out.drastic_settled.is_empty());
        pass.held_before = out.held_before;
    }
    // Once the rule is gone some other way, nothing is left to hold.
    let mut s = converged();
    rules_mut(&mut s, "LoadBalancerGroup").clear();
    let mut p = plan(&emptied, &s);
    let out = pass.run(&mut p);
    assert_eq!(out.drastic_settled, [lb_group()]);
}

#[test]
fn a_fought_field_is_held_and_the_rest_of_its_unit_is_not() {
    let d = desired();
    let mut p = plan(&d, &drifted());
    let scale = field_of(&p, "scale-service");
    let mut pass = Pass::full(&d);
    pass.fighting = BTreeSet::from([scale]);
    let out = pass.run(&mut p);
    assert_eq!(
        out.held_for(&p, HoldReason::Fight)
            .iter()
            .map(|c| c.kind.as_str())
            .collect::<Vec<_>>(),
        ["scale-service"]
    );
    assert_eq!(count(&out, Verdict::Apply), 1);
}

#[test]
fn a_follower_writes_nothing_but_still_tells_fights_apart() {
    let d = desired();
    let mut p = plan(&d, &drifted());
    let scale = field_of(&p, "scale-service");
    let mut pass = Pass::full(&d);
    pass.leader = false;
    pass.fighting = BTreeSet::from([scale]);
    let out = pass.run(&mut p);
    assert!(out.to_apply(&p).is_empty());
    assert_eq!(count(&out, Verdict::Held(HoldReason::Fight)), 1);
    assert_eq!(count(&out, Verdict::Held(HoldReason::NotLeader)), 1);
    assert_eq!(count(&out, Verdict::Held(HoldReason::DestructiveCap)), 3);
}

#[test]
fn paused_and_observed_resources_are_never_applied() {
    let mut d = desired();
    d.security_groups[1].mode = Mode::Paused;
    d.services[0].mode = Mode::Observe;
    let mut p = plan(&d, &drifted());
    let out = Pass::full(&d).run(&mut p);
    let v = verdicts(&p, &out);
    assert!(v.contains(&(
        instance_group().to_string(),
        "authorize-ingress".into(),
        Verdict::Held(HoldReason::Paused)
    )));
    assert!(v.contains(&(
        service().to_string(),
        "scale-service".into(),
        Verdict::ReportOnly
    )));
    assert!(out.to_apply(&p).is_empty());
}
