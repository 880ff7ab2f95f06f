"""Task sets of CODE_DEPLOY / EXTERNAL services (switchable: ``task_sets``).

Off (default), moto's behaviour stays: the scheduler treats such a service
like any other (it starts desiredCount tasks itself), CreateTaskSet starts
``int(desired * scale / 100)`` tasks once through RunTask (not behind the
task set's target group, never replaced) and DeleteTaskSet drops the task
set at once, leaving its tasks running.  On, as AWS documents
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-external.html,
https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_TaskSet.html):

* The service scheduler starts no tasks for the service itself; it keeps
  each task set at ``computedDesiredCount`` = ceil(desiredCount x
  scale.value / 100) tasks (PERCENT), started by the task set
  (startedBy = its id, group ``service:NAME``, its task definition), and
  registers them into the **task set's** loadBalancers target groups.
* A task set reports runningCount/pendingCount of its tasks and
  stabilityStatus STEADY_STATE once that many run (else STABILIZING).
* DeleteTaskSet makes it DRAINING and stops its tasks; it disappears once
  they are all STOPPED.  UpdateTaskSet (scale) and
  UpdateServicePrimaryTaskSet (PRIMARY / ACTIVE) are moto's.
"""

from __future__ import annotations

import math
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, Service, TaskSet

import ecs_patch
from state import SETTINGS

_applied = False


def external(service: Service) -> bool:
    return (service.deployment_controller or {}).get("type", "ECS") != "ECS"


def computed_desired(ts: TaskSet) -> int | None:
    service = ts.__dict__.get("emu_service")
    if service is None:
        return None  # created with the switch off: absent, as in moto
    if ts.status == "DRAINING":
        return 0
    desired = int(service.desired_count or 0) if service.status == "ACTIVE" else 0
    scale = ts.scale or {"value": 100.0, "unit": "PERCENT"}
    return math.ceil(desired * float(scale.get("value", 100.0)) / 100.0)


def tasks_of(ts: TaskSet) -> list[Any]:
    service = ts.__dict__.get("emu_service")
    if service is None:
        return []
    return [t for t in ecs_patch.service_tasks(service) if t.started_by == ts.id]


def _counts(ts: TaskSet) -> tuple[int | None, int | None]:
    if ts.__dict__.get("emu_service") is None:
        return None, None
    as_of = ts.__dict__.get("_emu_as_of")  # a lagged DescribeServices (read_lag.py)
    if as_of is not None:
        import read_lag

        states = [(last, d) for _, last, d in read_lag.states_at(tasks_of(ts), as_of)]
    else:
        states = [(t.last_status, t.desired_status) for t in tasks_of(ts)]
    running = sum(1 for last, _ in states if last == "RUNNING")
    pending = sum(1 for last, _ in states if last in ("PROVISIONING", "PENDING", "ACTIVATING"))
    return running, pending


def _patch() -> None:
    def ignore(self: Any, value: Any) -> None:
        pass

    TaskSet.computed_desired_count = property(computed_desired, ignore)
    TaskSet.running_count = property(lambda self: _counts(self)[0], ignore)
    TaskSet.pending_count = property(lambda self: _counts(self)[1], ignore)

    def stability(self: TaskSet) -> str:
        if self.__dict__.get("emu_service") is None:
            return self.__dict__.get("_stability", "STEADY_STATE")
        running, pending = _counts(self)
        return "STEADY_STATE" if running == computed_desired(self) and not pending else "STABILIZING"

    def set_stability(self: TaskSet, value: str) -> None:
        self.__dict__["_stability"] = value

    TaskSet.stabilityStatus = property(stability, set_stability)

    orig_create = EC2ContainerServiceBackend.create_task_set

    def create_task_set(self: EC2ContainerServiceBackend, service: str, cluster_str: str, task_definition: str,
                        *args: Any, **kwargs: Any) -> TaskSet:
        if not SETTINGS.task_sets:
            return orig_create(self, service, cluster_str, task_definition, *args, **kwargs)
        scale = kwargs.pop("scale", None)
        ts = orig_create(self, service, cluster_str, task_definition, *args, scale=None, **kwargs)
        ts.scale = scale or {"value": 100.0, "unit": "PERCENT"}
        cluster = self._get_cluster(cluster_str)
        ts.emu_service = self.services[f"{cluster.name}:{service.split('/')[-1]}"]
        ts.started_by = None
        return ts

    EC2ContainerServiceBackend.create_task_set = create_task_set

    orig_delete = EC2ContainerServiceBackend.delete_task_set

    def delete_task_set(self: EC2ContainerServiceBackend, cluster: str, service: str, task_set: str) -> TaskSet:
        if not SETTINGS.task_sets:
            return orig_delete(self, cluster, service, task_set)
        cluster_obj = self._get_cluster(cluster)
        service_obj = self._get_service(cluster_obj.name, service.split("/")[-1])
        matches = [ts for ts in service_obj.task_sets
                   if task_set in (ts.task_set_arn, ts.id, "/".join(ts.task_set_arn.split("/")[-2:]))]
        if not matches:
            return orig_delete(self, cluster, service, task_set)  # raises TaskSetNotFoundException
        ts = matches[0]
        ts.status = "DRAINING"
        ts.updatedAt = utcnow()
        for task in tasks_of(ts):
            if task.desired_status == "RUNNING":
                ecs_patch.stop_task_as_scheduler(
                    self, cluster_obj.name, task, f"Scaling activity initiated by (deployment {ts.id})")
        return ts

    EC2ContainerServiceBackend.delete_task_set = delete_task_set


def reconcile(scheduler: Any, backend: EC2ContainerServiceBackend, service: Service) -> bool:
    """Keeps each task set at its computed count; True while something moves
    (the scheduler then re-checks the service on every tick)."""
    busy = False
    for ts in list(service.task_sets):
        if ts.__dict__.get("emu_service") is None:
            continue
        tasks = tasks_of(ts)
        if ts.status == "DRAINING":
            if all(t.last_status == "STOPPED" for t in tasks):
                service.task_sets.remove(ts)
            else:
                busy = True
            continue
        active = [t for t in tasks if t.desired_status == "RUNNING"]
        diff = (computed_desired(ts) or 0) - len(active)
        if diff > 0:
            scheduler._start_tasks(backend, service, diff, task_definition=ts.task_definition,
                                   started_by=ts.id, load_balancers=ts.load_balancers)
        elif diff < 0:
            scheduler._stop_tasks(backend, service, active, -diff, deployment_id=ts.id)
        busy = busy or diff != 0 or any(t.last_status != "RUNNING" for t in active)
    return busy


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
