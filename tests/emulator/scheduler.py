"""ECS service scheduler: the part of ECS that moto does not have at all.

moto never starts or stops tasks for a service: CreateService/UpdateService
only store desiredCount.  This background thread (tick 50 ms) does what the
ECS service scheduler does for REPLICA services with the EC2 launch type:

* When a service's number of tasks with desiredStatus RUNNING differs from its
  desiredCount for at least ``SETTINGS.scheduler_delay`` seconds, it starts
  the missing tasks or stops the excess ones.  A task stopped through StopTask
  is thereby replaced after the delay.
* New tasks go on the cluster's ACTIVE container instances, spread (fewest
  running tasks first); they get group ``service:<name>``, startedBy = the
  deployment id, and dynamic host ports (see ecs_patch.py).
* For services with loadBalancers, a started task's (EC2 instance id, host
  port) is registered in the target group; when the task stops (scale-in,
  StopTask, anything) it is deregistered - unless switched off via
  ``/_emulator/scheduler`` (``deregister_on_stop`` / ``for_next``), which
  leaves a stale target behind on purpose.
* Such a task stays DEACTIVATING for ``SETTINGS.scheduler_delay`` seconds
  after the stop; each tick moves the ones whose time is up to STOPPED
  (``ecs_patch.finish_deactivating``).  While paused, nothing moves.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Service, Task, ecs_backends
from moto.elbv2.models import elbv2_backends

import ecs_patch
from state import LOCK, SETTINGS

TICK_SECONDS = 0.05


def _all_ecs_backends() -> list[EC2ContainerServiceBackend]:
    out = []
    for per_account in list(dict.values(ecs_backends)):
        out.extend(list(dict.values(per_account)))
    return out


def _target_group(backend: EC2ContainerServiceBackend, arn: str) -> Any:
    return elbv2_backends[backend.account_id][backend.region_name].target_groups.get(arn)


def register_task_targets(backend: EC2ContainerServiceBackend, service: Service, task: Task) -> None:
    ci = ecs_patch.find_container_instance(backend, task.cluster_name, task.container_instance_arn)
    if ci is None:
        return
    for lb in service.load_balancers or []:
        tg_arn = lb.get("targetGroupArn")
        tg = _target_group(backend, tg_arn) if tg_arn else None
        if tg is None:
            continue
        for container in task.containers:
            if container.name != lb.get("containerName"):
                continue
            for binding in container.network_bindings or []:
                if binding["containerPort"] == int(lb.get("containerPort", -1)):
                    tg.register([{"Id": ci.ec2_instance_id, "Port": binding["hostPort"]}])
                    task.emu_targets.append((tg_arn, ci.ec2_instance_id, binding["hostPort"]))
                    ecs_patch.add_service_event(
                        service,
                        f"(service {service.name}) registered 1 targets in (target-group {tg_arn})",
                    )


def on_task_stopped(backend: EC2ContainerServiceBackend, task: Task) -> None:
    """Stop hook (installed into ecs_patch.STOP_HOOKS): deregister targets."""
    targets = getattr(task, "emu_targets", None) or []
    if not targets:
        return
    if SETTINGS.skip_deregister_next > 0:
        SETTINGS.skip_deregister_next -= 1
        return
    if not SETTINGS.deregister_on_stop:
        return
    for tg_arn, instance_id, port in targets:
        tg = _target_group(backend, tg_arn)
        if tg is not None:
            tg.deregister([{"Id": instance_id, "Port": port}])
    task.emu_targets = []


class Scheduler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="ecs-scheduler", daemon=True)
        self._stop_event = threading.Event()
        # (account, region, cluster, service) -> (sign of the difference, since)
        self._diverged: dict[tuple[str, str, str, str], tuple[int, float]] = {}
        self._no_capacity_logged: set[tuple[str, str, str, str]] = set()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(TICK_SECONDS):
            try:
                with LOCK:
                    if not SETTINGS.paused:
                        self.tick()
            except Exception as exc:  # keep scheduling whatever one tick did
                print(f"emulator scheduler: tick failed: {exc!r}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------
    def tick(self) -> None:
        for backend in _all_ecs_backends():
            ecs_patch.finish_deactivating(backend)
            for service in list(backend.services.values()):
                self._reconcile(backend, service)

    def _reconcile(self, backend: EC2ContainerServiceBackend, service: Service) -> None:
        if service.scheduling_strategy not in (None, "REPLICA") or service.launch_type not in (None, "EC2"):
            return
        key = (backend.account_id, backend.region_name, service.cluster_name, service.name)
        desired = int(service.desired_count or 0) if service.status == "ACTIVE" else 0
        active = [t for t in ecs_patch.service_tasks(service) if t.desired_status == "RUNNING"]
        diff = desired - len(active)
        if diff == 0:
            self._diverged.pop(key, None)
            self._no_capacity_logged.discard(key)
            return
        sign = 1 if diff > 0 else -1
        seen = self._diverged.get(key)
        t = time.time()
        if seen is None or seen[0] != sign:
            self._diverged[key] = (sign, t)
            seen = self._diverged[key]
        if t - seen[1] < SETTINGS.scheduler_delay:
            return
        if diff > 0:
            started = self._start_tasks(backend, service, diff)
            if started < diff:
                # retry after another delay
                self._diverged[key] = (sign, t)
                if key not in self._no_capacity_logged:
                    self._no_capacity_logged.add(key)
                    ecs_patch.add_service_event(
                        service,
                        f"(service {service.name}) was unable to place a task because no container "
                        "instance met all of its requirements.",
                    )
                return
        else:
            self._stop_tasks(backend, service, active, -diff)
        self._diverged.pop(key, None)
        ecs_patch.add_service_event(service, f"(service {service.name}) has reached a steady state.")

    def _start_tasks(self, backend: EC2ContainerServiceBackend, service: Service, count: int) -> int:
        if not service.task_definition:
            return 0
        cluster = backend.clusters.get(service.cluster_name)
        if cluster is None:
            return 0
        task_definition = backend.describe_task_definition(service.task_definition)
        reqs = backend._calculate_task_resource_requirements(task_definition)
        deployment_id = service.deployments[0]["id"] if service.deployments else "ecs-svc/0"
        backend.tasks.setdefault(cluster.name, {})
        started: list[Task] = []
        for _ in range(count):
            ci = self._pick_instance(backend, cluster.name, reqs)
            if ci is None:
                break
            task = Task(
                cluster,
                task_definition,
                ci.container_instance_arn,
                reqs,
                backend=backend,
                group=f"service:{service.name}",
                launch_type="EC2",
                started_by=deployment_id,
            )
            backend.update_container_instance_resources(ci, reqs)
            backend.tasks[cluster.name][task.task_arn] = task
            register_task_targets(backend, service, task)
            started.append(task)
        if started:
            ids = ", ".join(f"(task {t.id})" for t in started)
            ecs_patch.add_service_event(
                service, f"(service {service.name}) has started {len(started)} tasks: {ids}."
            )
        return len(started)

    def _pick_instance(self, backend: EC2ContainerServiceBackend, cluster_name: str, reqs: dict[str, Any]) -> Any:
        candidates = []
        for order, ci in enumerate(backend.container_instances.get(cluster_name, {}).values()):
            if ci.status != "ACTIVE":
                continue
            instance = backend_ec2_instance(backend, ci.ec2_instance_id)
            if instance is not None and instance.state != "running":
                continue
            if not backend._can_be_placed(ci, reqs):
                continue
            candidates.append((ci.running_tasks_count, order, ci))
        if not candidates:
            return None
        return min(candidates, key=lambda c: (c[0], c[1]))[2]

    def _stop_tasks(
        self, backend: EC2ContainerServiceBackend, service: Service, active: list[Task], count: int
    ) -> None:
        # Keep the spread: take from the busiest instance, newest task first.
        per_instance: dict[str, list[Task]] = {}
        for task in active:
            per_instance.setdefault(task.container_instance_arn or "", []).append(task)
        deployment_id = service.deployments[0]["id"] if service.deployments else "ecs-svc/0"
        stopped: list[Task] = []
        for _ in range(count):
            busiest = max(per_instance.values(), key=len)
            task = busiest.pop()
            if not busiest:
                per_instance = {k: v for k, v in per_instance.items() if v}
            ecs_patch.stop_task_as_scheduler(
                backend, service.cluster_name, task,
                f"Scaling activity initiated by (deployment {deployment_id})",
            )
            stopped.append(task)
        ids = ", ".join(f"(task {t.id})" for t in stopped)
        ecs_patch.add_service_event(
            service, f"(service {service.name}) has stopped {len(stopped)} running tasks: {ids}."
        )


def backend_ec2_instance(backend: EC2ContainerServiceBackend, instance_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[backend.account_id][backend.region_name].get_instance_by_id(instance_id)


def install() -> Scheduler:
    if on_task_stopped not in ecs_patch.STOP_HOOKS:
        ecs_patch.STOP_HOOKS.append(on_task_stopped)
    return Scheduler()
