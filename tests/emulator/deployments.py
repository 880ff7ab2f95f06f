"""Rolling-update deployments of ECS services (switchable, off by default).

Owns the ``rolling_deployments`` setting.  Off, the emulator keeps its
original behaviour: UpdateService with a new task definition only changes
what *new* tasks run, and forceNewDeployment just renames the PRIMARY
deployment (moto).  On, as in AWS's rolling update
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html):

* UpdateService with a different task definition ARN, or with
  forceNewDeployment, starts a new PRIMARY deployment (``ecs-svc/<19
  digits>``, rolloutState IN_PROGRESS); the previous PRIMARY becomes ACTIVE.
* The scheduler (``plan`` here, executed by scheduler.py) replaces the
  tasks of older deployments within deploymentConfiguration:
  at most floor(desired * maximumPercent / 100) tasks with desiredStatus
  RUNNING (tasks already stopping do not count), and old tasks are stopped
  only while at least ceil(desired * minimumHealthyPercent / 100) stay
  healthy - RUNNING, and with load balancers also ``healthy`` in every
  target group (UpdateService API reference).  Old tasks that are not
  healthy may always be stopped.
* When every task with desiredStatus RUNNING belongs to the PRIMARY
  deployment and desiredCount of them are healthy, the ACTIVE deployments
  are removed, the PRIMARY's rolloutState becomes COMPLETED, and the service
  gets the events "(service S) (deployment D) deployment completed." and
  "(service S) has reached a steady state.".
* DescribeServices ``deployments`` lists them all, each with the counts of
  its own tasks (a task belongs to the deployment named by its startedBy);
  an ACTIVE deployment's desiredCount is its tasks still meant to run.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, Service, Task
from moto.elbv2.models import elbv2_backends

import ecs_patch
import read_lag
import targets_patch
from state import SETTINGS

_applied = False

# Called with the service when a deployment completes (oracle.py counts them).
ON_COMPLETE: list[Callable[[Service], None]] = []


def new_deployment_id() -> str:
    return f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"


def _raw(service: Service) -> list[dict[str, Any]]:
    return service.__dict__.get("_emu_deployments") or []


def in_progress(service: Service, active: list[Task]) -> bool:
    """Does the service have a rollout to drive (more than one deployment,
    or tasks that belong to no current PRIMARY)?"""
    raw = _raw(service)
    if not raw:
        return False
    if len(raw) > 1:
        return True
    primary_id = raw[0]["id"]
    return any(t.started_by != primary_id for t in active)


def start_deployment(service: Service) -> dict[str, Any]:
    """A new PRIMARY deployment of the service's current task definition."""
    now = utcnow()
    raw = service.__dict__.setdefault("_emu_deployments", [])
    for d in raw:
        if d.get("status") == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = now
    dep_id = new_deployment_id()
    dep: dict[str, Any] = {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": service.task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
    }
    strategy = getattr(service, "capacity_provider_strategy", None)
    if strategy:
        dep["capacityProviderStrategy"] = strategy
    else:
        dep["launchType"] = service.launch_type
        dep["platformFamily"] = "EC2" if service.launch_type == "EC2" else "FARGATE"
    raw.insert(0, dep)
    return dep


def task_healthy(service: Service, task: Task) -> bool:
    """RUNNING, and with load balancers: healthy in every target group."""
    if task.last_status != "RUNNING":
        return False
    if not service.load_balancers:
        return True
    targets = getattr(task, "emu_targets", None) or []
    if not targets:
        return False
    groups = elbv2_backends[service._account_id][service.region_name].target_groups
    for tg_arn, instance_id, port in targets:
        tg = groups.get(tg_arn)
        if tg is None or targets_patch._status(tg, (instance_id, port)).status != "healthy":
            return False
    return True


@dataclass
class Plan:
    start: int = 0
    stop: list[Task] = field(default_factory=list)
    complete: bool = False


def plan(service: Service, active: list[Task]) -> Plan:
    """One step of the rollout: how many new tasks to start, which to stop."""
    raw = _raw(service)
    primary_id = raw[0]["id"]
    config = service.deployment_configuration or {}
    desired = int(service.desired_count or 0) if service.status == "ACTIVE" else 0
    max_total = math.floor(desired * int(config.get("maximumPercent", 200)) / 100)
    min_healthy = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
    healthy = {t.task_arn for t in active if task_healthy(service, t)}
    new = [t for t in active if t.started_by == primary_id]
    old = [t for t in active if t.started_by != primary_id]
    out = Plan()
    if config.get("strategy") == "BLUE_GREEN":
        return _blue_green(raw[0], config, desired, new, old, healthy, out)
    n_healthy = len(healthy)
    # Old tasks that are not healthy never count towards the minimum.
    out.stop.extend(t for t in old if t.task_arn not in healthy)
    for t in sorted((t for t in old if t.task_arn in healthy), key=lambda t: t.started_at or utcnow()):
        if n_healthy - 1 < min_healthy:
            break
        out.stop.append(t)
        n_healthy -= 1
    # desiredCount lowered during the rollout: excess new tasks go too.
    excess = len(new) - desired
    if excess > 0:
        spare = sorted(new, key=lambda t: t.task_arn in healthy)
        for t in spare[:excess]:
            if t.task_arn in healthy and n_healthy - 1 < min_healthy:
                break
            out.stop.append(t)
            n_healthy -= int(t.task_arn in healthy)
    staying = len(active) - len(out.stop)
    out.start = max(0, min(desired - len(new), max_total - staying))
    out.complete = (
        not old and len(new) == desired and all(t.task_arn in healthy for t in new)
    )
    return out


def _blue_green(primary: dict[str, Any], config: dict[str, Any], desired: int, new: list[Task],
                old: list[Task], healthy: set[str], out: Plan) -> Plan:
    """ECS-native blue/green: the green (new) tasks start in full next to
    the blue ones; once all are healthy the bake time (bakeTimeInMinutes)
    runs, then the blue tasks stop and the deployment completes."""
    out.start = max(0, desired - len(new))
    green_ready = len(new) >= desired and all(t.task_arn in healthy for t in new)
    if not green_ready:
        primary.pop("emu_ready_at", None)
        return out
    ready_at = primary.setdefault("emu_ready_at", time.time())
    if time.time() - ready_at < 60.0 * float(config.get("bakeTimeInMinutes", 0) or 0):
        return out
    out.stop.extend(old)
    out.stop.extend(sorted(new, key=lambda t: t.task_arn in healthy)[: max(0, len(new) - desired)])
    out.complete = not old and len(new) == desired
    return out


def complete(service: Service) -> None:
    raw = _raw(service)
    if not raw:
        return
    primary = raw[0]
    del raw[1:]
    primary["rolloutState"] = "COMPLETED"
    primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
    primary["updatedAt"] = utcnow()
    ecs_patch.add_service_event(
        service, f"(service {service.name}) (deployment {primary['id']}) deployment completed."
    )
    ecs_patch.add_service_event(service, f"(service {service.name}) has reached a steady state.")
    read_lag.record_service(service)
    for fn in ON_COMPLETE:
        fn(service)


def _patch() -> None:
    prop = Service.deployments
    orig_get, orig_set = prop.fget, prop.fset

    def get_deployments(self: Service) -> list[dict[str, Any]]:
        raw = _raw(self)
        if len(raw) <= 1:
            return orig_get(self)
        counts: dict[str, list[int]] = {}
        as_of = self.__dict__.get("_emu_as_of")  # a lagged read (read_lag.py)
        tasks = ecs_patch.service_tasks(self)
        if as_of is not None:
            states = read_lag.states_at(tasks, as_of)
        else:
            states = [(t, t.last_status, t.desired_status) for t in tasks]
        for t, last, desired_status in states:
            c = counts.setdefault(t.started_by, [0, 0, 0])
            c[0] += last == "RUNNING"
            c[1] += last in ("PROVISIONING", "PENDING", "ACTIVATING")
            c[2] += desired_status == "RUNNING"
        desired = self.desired_count if self.status == "ACTIVE" else 0
        for d in raw:
            running, pending, meant = counts.get(d["id"], (0, 0, 0))
            d["runningCount"], d["pendingCount"] = running, pending
            d["desiredCount"] = desired if d["status"] == "PRIMARY" else meant
        return raw

    Service.deployments = property(get_deployments, orig_set)

    orig_update = EC2ContainerServiceBackend.update_service

    def update_service(self: EC2ContainerServiceBackend, props: dict[str, Any]) -> Service:
        if not SETTINGS.rolling_deployments:
            return orig_update(self, props)
        before = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
        old_task_definition = before.task_definition
        force = bool(props.pop("force_new_deployment", False))
        service = orig_update(self, props)
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS":
            return service
        if force or service.task_definition != old_task_definition:
            start_deployment(service)
        return service

    EC2ContainerServiceBackend.update_service = update_service


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
