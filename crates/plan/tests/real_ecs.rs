//! Table tests of what real ECS does that a consistent, instant emulator
//! does not: eventually consistent reads (drains are never cancelled, new
//! targets never taken for stale), task sets and blue/green deployments,
//! instances that went away under RUNNING tasks, capacity providers.

mod fixture;

use std::collections::BTreeSet;
use std::time::Duration;

use ecs_reconciler_plan::*;
use fixture::*;

const WINDOW: Duration = Duration::from_secs(5);

/// One daemon pass at `at_ms`: plans with what earlier passes saw, then
/// records what this one saw.
fn daemon_pass(sightings: &mut Sightings, snapshot: &Snapshot, at_ms: u64) -> Plan {
    sightings.observed_at(at_ms);
    let plan = plan_with(&desired(), snapshot, sightings);
    sightings.record(&plan, &BTreeSet::from(["nestjs-api-tg".to_string()]));
    plan
}

/// (kind, after) of the target changes with `hold`.
fn targets(plan: &Plan, disposition: Disposition) -> Vec<(String, String)> {
    plan.changes
        .iter()
        .filter(|c| c.kind.ends_with("-target") && c.disposition == disposition)
        .map(|c| (c.kind.clone(), c.after.clone()))
        .collect()
}

fn holds(plan: &Plan) -> Vec<Option<HoldReason>> {
    plan.changes
        .iter()
        .filter(|c| c.kind.ends_with("-target"))
        .map(|c| c.hold)
        .collect()
}

/// ECS decided to stop task 1: its target drains, but a lagging ListTasks
/// still says RUNNING/RUNNING.
fn drain_under_lagging_task() -> Snapshot {
    let mut s = converged();
    targets_mut(&mut s)[0].state = "draining".into();
    s
}

#[test]
fn a_draining_target_is_never_registered_again_on_one_read() {
    let mut sightings = Sightings::new(WINDOW);
    let plan = daemon_pass(&mut sightings, &drain_under_lagging_task(), 0);
    assert!(targets(&plan, Disposition::Apply).is_empty());
    assert_eq!(holds(&plan), vec![Some(HoldReason::AwaitingConsistency)]);
    assert!(plan.changes[0].reason.contains("first seen in this read"));

    // The next read, 2 s later, is still within the window.
    let plan = daemon_pass(&mut sightings, &drain_under_lagging_task(), 2_000);
    assert!(targets(&plan, Disposition::Apply).is_empty());

    // The lag ends: the task reads stopping. Nothing to do, and the
    // finding is forgotten.
    let mut stopping = drain_under_lagging_task();
    cluster_mut(&mut stopping).tasks.known_mut().unwrap()[0].desired_status = "STOPPED".into();
    let plan = daemon_pass(&mut sightings, &stopping, 4_000);
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);

    // Should the task read serving again later, the window starts over.
    let plan = daemon_pass(&mut sightings, &drain_under_lagging_task(), 9_000);
    assert_eq!(holds(&plan), vec![Some(HoldReason::AwaitingConsistency)]);
}

#[test]
fn a_hand_made_deregistration_is_fixed_once_reads_a_window_apart_agree() {
    let mut sightings = Sightings::new(WINDOW);
    daemon_pass(&mut sightings, &drain_under_lagging_task(), 0);
    let plan = daemon_pass(&mut sightings, &drain_under_lagging_task(), 5_000);
    assert_eq!(
        targets(&plan, Disposition::Apply),
        vec![("register-target".to_string(), "i-0001:32768".to_string())]
    );
    assert_eq!(sightings.due_in().len(), 0, "nothing left to wait for");
}

#[test]
fn a_target_registered_before_its_task_is_listed_is_never_deregistered() {
    // ECS registered task 3's target at ACTIVATING; ListTasks lags.
    let mut s = converged();
    targets_mut(&mut s).push(target(0, 40000, "initial"));
    let mut sightings = Sightings::new(WINDOW);
    let plan = daemon_pass(&mut sightings, &s, 0);
    assert!(targets(&plan, Disposition::Apply).is_empty());
    assert_eq!(holds(&plan), vec![Some(HoldReason::AwaitingConsistency)]);
    assert_eq!(sightings.due_in().get("nestjs-api-tg"), Some(&WINDOW));

    // The next read lists the task (still ACTIVATING): in motion, left
    // alone, and the finding is forgotten.
    let mut listed = s.clone();
    let mut starting = task(3, 0, 40000);
    starting.last_status = "ACTIVATING".into();
    cluster_mut(&mut listed)
        .tasks
        .known_mut()
        .unwrap()
        .push(starting);
    let plan = daemon_pass(&mut sightings, &listed, 6_000);
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    assert!(sightings.is_empty());
}

#[test]
fn a_rogue_target_is_deregistered_once_reads_a_window_apart_agree() {
    let mut s = converged();
    targets_mut(&mut s).push(target(1, 45000, "healthy"));
    let mut sightings = Sightings::new(WINDOW);
    assert!(targets(&daemon_pass(&mut sightings, &s, 0), Disposition::Apply).is_empty());
    assert_eq!(
        targets(&daemon_pass(&mut sightings, &s, 7_000), Disposition::Apply),
        vec![("deregister-target".to_string(), "absent".to_string())]
    );
}

#[test]
fn no_registration_on_a_stopped_instance_and_the_rogue_target_still_goes() {
    // i-0002 was stopped; ECS has not noticed, its task still reads RUNNING
    // and its target is gone. Someone also registered a rogue target.
    let mut s = converged();
    instance_mut(&mut s, "i-0002").state = "stopped".into();
    targets_mut(&mut s).retain(|t| t.key.id != "i-0002");
    targets_mut(&mut s).push(target(0, 45000, "healthy"));
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert_eq!(
        targets(&plan, Disposition::Apply),
        vec![("deregister-target".to_string(), "absent".to_string())]
    );
    let report = plan
        .changes
        .iter()
        .find(|c| c.kind == "instance-not-running")
        .expect("reported");
    assert_eq!(report.disposition, Disposition::Report);
    assert!(
        report.reason.contains("i-0002 stopped"),
        "{}",
        report.reason
    );
    assert!(
        !plan
            .actions()
            .iter()
            .any(|a| matches!(a, Action::RegisterTarget { .. }))
    );
}

fn task_set(id: &str, status: &str) -> LiveTaskSet {
    LiveTaskSet {
        id: id.into(),
        status: status.into(),
        stability_status: Some("STEADY_STATE".into()),
    }
}

/// A CODE_DEPLOY service mid-deployment: blue (tasks 1, 2) is PRIMARY and
/// registered; green (task 3) runs beside it, not in production.
fn code_deploy_mid_deployment() -> Snapshot {
    let mut s = converged();
    let service = service_mut(&mut s);
    service.deployment_controller = Some("CODE_DEPLOY".into());
    service.task_sets = vec![task_set("blue", "PRIMARY"), task_set("green", "ACTIVE")];
    let tasks = cluster_mut(&mut s).tasks.known_mut().unwrap();
    for task in tasks.iter_mut() {
        task.started_by = Some("blue".into());
    }
    let mut green = task(3, 0, 40000);
    green.started_by = Some("green".into());
    tasks.push(green);
    s
}

#[test]
fn tasks_of_a_replacement_task_set_are_never_registered_in_production() {
    let s = code_deploy_mid_deployment();
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);

    // Someone deregistered a blue target mid-deployment: the fix is held
    // for the deployment, and an operator's confirmation does not release
    // it.
    let mut s = code_deploy_mid_deployment();
    targets_mut(&mut s)[0].state = "draining".into();
    let mut plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert_eq!(holds(&plan), vec![Some(HoldReason::Deployment)]);
    assert!(
        plan.changes[0]
            .reason
            .contains("CodeDeploy owns registrations"),
        "{}",
        plan.changes[0].reason
    );
    let due: BTreeSet<UnitId> = unit_ids(&desired()).into_iter().collect();
    let gated = gate(&mut plan, &GateInput::once(&due, true));
    assert!(gated.to_apply(&plan).is_empty());
    assert_eq!(gated.held_for(&plan, HoldReason::Deployment).len(), 1);
}

#[test]
fn after_the_swap_only_the_new_primary_task_set_serves() {
    // Green is PRIMARY alone; blue's tasks are gone, green's target is not
    // registered yet (CodeDeploy moved the listener, not this group).
    let mut s = code_deploy_mid_deployment();
    service_mut(&mut s).task_sets = vec![task_set("green", "PRIMARY")];
    cluster_mut(&mut s)
        .tasks
        .known_mut()
        .unwrap()
        .retain(|t| t.started_by.as_deref() == Some("green"));
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert_eq!(
        targets(&plan, Disposition::Apply),
        vec![("register-target".to_string(), "i-0001:40000".to_string())]
    );
    // Blue's two targets go too — all of the group's old members at once,
    // so the destructive cap waits for a second read to agree.
    assert_eq!(
        targets(&plan, Disposition::Held),
        vec![
            ("deregister-target".to_string(), "absent".to_string()),
            ("deregister-target".to_string(), "absent".to_string()),
        ]
    );
}

#[test]
fn an_ecs_blue_green_deployment_in_progress_holds_target_changes() {
    // Mid-deployment reads cannot tell production tasks from replacement
    // ones: only a target that matches no task at all shows, held.
    let mut s = drain_under_lagging_task();
    targets_mut(&mut s).push(target(1, 45000, "healthy"));
    let service = service_mut(&mut s);
    service.deployment_strategy = Some("BLUE_GREEN".into());
    service.deployments = vec![LiveDeployment {
        id: "ecs-svc/2".into(),
        status: "PRIMARY".into(),
        rollout_state: Some("IN_PROGRESS".into()),
    }];
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert_eq!(holds(&plan), vec![Some(HoldReason::Deployment)]);
    // Held for a deployment is not a sighting: its window starts after.
    let mut sightings = Sightings::new(WINDOW);
    sightings.record(&plan, &BTreeSet::from(["nestjs-api-tg".to_string()]));
    assert!(sightings.is_empty());
}

/// The seed service on a capacity provider strategy instead of a launch
/// type.
fn on_capacity_providers(kind: CapacityProviderKind) -> Snapshot {
    let mut s = converged();
    let service = service_mut(&mut s);
    service.launch_type = None;
    service.capacity_provider_strategy = vec![LiveCapacityProviderItem {
        provider: "nestjs-asg".into(),
        weight: 1,
        base: 0,
    }];
    s.capacity_providers
        .insert("nestjs-asg".into(), Observed::Known(Some(kind)));
    s
}

#[test]
fn launch_type_ec2_is_satisfied_by_auto_scaling_group_providers() {
    let plan = ecs_reconciler_plan::plan(
        &desired(),
        &on_capacity_providers(CapacityProviderKind::AutoScalingGroup),
    );
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    assert!(!plan.has_drift());

    let plan = ecs_reconciler_plan::plan(
        &desired(),
        &on_capacity_providers(CapacityProviderKind::Fargate),
    );
    let check = &plan.changes[0];
    assert_eq!(check.kind, "check-launch-type");
    assert_eq!(
        check.before,
        "capacity providers nestjs-asg (FARGATE capacity)"
    );

    // The provider could not be described: no verdict, an unknown.
    let mut s = on_capacity_providers(CapacityProviderKind::AutoScalingGroup);
    s.capacity_providers.insert(
        "nestjs-asg".into(),
        Observed::Unknown(Unread::new(ErrorClass::Throttled, "Rate exceeded")),
    );
    let plan = ecs_reconciler_plan::plan(&desired(), &s);
    assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    assert_eq!(plan.unknowns[0].what, "capacity provider nestjs-asg");
}

#[test]
fn a_declared_capacity_provider_strategy_is_checked_in_any_order() {
    let text = include_str!("../../../examples/seed.yaml").replace(
        "    launchType: EC2\n",
        "    capacityProviderStrategy:\n      - {capacityProvider: nestjs-asg, weight: 1}\n",
    );
    let desired = ecs_reconciler_spec::load(&text).unwrap();
    let s = on_capacity_providers(CapacityProviderKind::AutoScalingGroup);
    assert!(ecs_reconciler_plan::plan(&desired, &s).changes.is_empty());

    let plan = ecs_reconciler_plan::plan(&desired, &converged());
    assert_eq!(plan.changes[0].kind, "check-capacity-provider-strategy");
    assert_eq!(plan.changes[0].before, "launch type EC2");
    assert_eq!(plan.changes[0].after, "nestjs-asg (weight 1, base 0)");
}
