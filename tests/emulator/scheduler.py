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

Cost per tick (it holds the moto lock): a service's task count can only
change through a call that changes something (UpdateService, StopTask,
RegisterContainerInstance, ...; see ``state.mark_changed``) or through the
scheduler itself.  So a tick re-checks every service only when the state
generation moved since its last full pass (and at least once a second, as a
safety net); otherwise it re-checks just the services still waiting out
their delay (``_diverged``).  With 1,000 steady services (10,000 tasks) an
idle tick takes ~0.03 ms and a full pass ~8 ms.  Tasks are looked up through
``ecs_patch.task_index`` (by service group / container instance), never by
scanning the cluster; placement candidates are computed once per cluster and
tick.  ``GET /_emulator/scheduler/stats`` reports the cost.  The safety
oracle's ``no_healthy`` pass (oracle.py) runs after the tick, only once the
oracle was read or reset: one attribute check per tick before that.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend, Service, Task, ecs_backends
from moto.elbv2.models import elbv2_backends

import deployments
import ecs_patch
import instance_loss
import lifecycle
import oracle
import targets_patch
import task_sets
from state import LOCK, SETTINGS, generation

TICK_SECONDS = 0.05
# A full pass at least this often even when nothing seems to have changed.
FULL_PASS_SECONDS = 1.0


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
    load_balancers = getattr(task, "emu_load_balancers", None)
    if load_balancers is None:
        load_balancers = service.load_balancers
    for lb in load_balancers or []:
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
    drain = 0.0
    for tg_arn, instance_id, port in targets:
        tg = _target_group(backend, tg_arn)
        if tg is not None:
            tg.deregister([{"Id": instance_id, "Port": port}])
            drain = max(drain, targets_patch.draining_seconds(tg))
    task.emu_targets = []
    # With the lifecycle on, the task stays DEACTIVATING until its targets
    # drained: the groups' deregistration_delay.timeout_seconds at the stop.
    task.emu_drain_until = time.time() + drain


class Scheduler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="ecs-scheduler", daemon=True)
        self._stop_event = threading.Event()
        # (account, region, cluster, service) -> (sign of the difference, since)
        self._diverged: dict[tuple[str, str, str, str], tuple[int, float]] = {}
        self._no_capacity_logged: set[tuple[str, str, str, str]] = set()
        # Services in the middle of a rollout (deployments.py): every tick.
        self._rolling: set[tuple[str, str, str, str]] = set()
        self._seen_generation: int | None = None
        self._last_full_pass = 0.0
        # Placement candidates per (backend, cluster), valid for one tick.
        self._candidates: dict[tuple[int, str], dict[str, list[Any]]] = {}
        self.stats = TickStats()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while not self._stop_event.wait(TICK_SECONDS):
            try:
                with LOCK:
                    if not SETTINGS.paused:
                        t0 = time.perf_counter()
                        full = self.tick()
                        oracle.ORACLE.track()
                        self.stats.add(time.perf_counter() - t0, full)
                    else:
                        oracle.ORACLE.track()  # health still changes with time
            except Exception as exc:  # keep scheduling whatever one tick did
                print(f"emulator scheduler: tick failed: {exc!r}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------
    def tick(self) -> bool:
        """One scheduler pass (moto lock held); True if it was a full one."""
        gen = generation()
        t = time.monotonic()
        full = gen != self._seen_generation or t - self._last_full_pass >= FULL_PASS_SECONDS
        if full:
            self._seen_generation = gen
            self._last_full_pass = t
        waiting = set(self._diverged) | self._rolling
        self._candidates.clear()
        for backend in _all_ecs_backends():
            ecs_patch.finish_deactivating(backend)
            lifecycle.advance(backend)
            instance_loss.advance(backend)
            if full:
                for service in list(backend.services.values()):
                    self._reconcile(backend, service)
            elif waiting:
                for account, region, cluster_name, name in waiting:
                    if (account, region) != (backend.account_id, backend.region_name):
                        continue
                    service = backend.services.get(f"{cluster_name}:{name}")
                    if service is not None:
                        self._reconcile(backend, service)
        return full

    def _reconcile(self, backend: EC2ContainerServiceBackend, service: Service) -> None:
        if service.scheduling_strategy not in (None, "REPLICA") or service.launch_type not in (None, "EC2"):
            return
        key = (backend.account_id, backend.region_name, service.cluster_name, service.name)
        desired = int(service.desired_count or 0) if service.status == "ACTIVE" else 0
        if SETTINGS.task_sets and task_sets.external(service):
            # CODE_DEPLOY / EXTERNAL: only the task sets run tasks (task_sets.py).
            self._diverged.pop(key, None)
            if task_sets.reconcile(self, backend, service):
                self._rolling.add(key)
            else:
                self._rolling.discard(key)
            return
        active = [t for t in ecs_patch.service_tasks(service) if t.desired_status == "RUNNING"]
        if SETTINGS.rolling_deployments and deployments.in_progress(service, active):
            # A rollout (deployments.py): replace old tasks step by step,
            # re-checked on every tick until it completes.
            self._diverged.pop(key, None)
            self._rolling.add(key)
            self._roll(backend, service, active, key)
            return
        self._rolling.discard(key)
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

    def _roll(self, backend: EC2ContainerServiceBackend, service: Service, active: list[Task], key: Any) -> None:
        step = deployments.plan(service, active)
        if step.stop:
            self._candidates.pop((id(backend), service.cluster_name), None)
            for task in step.stop:
                ecs_patch.stop_task_as_scheduler(
                    backend, service.cluster_name, task,
                    f"Scaling activity initiated by (deployment {task.started_by})",
                )
            ids = ", ".join(f"(task {t.id})" for t in step.stop)
            ecs_patch.add_service_event(
                service, f"(service {service.name}) has stopped {len(step.stop)} running tasks: {ids}."
            )
        if step.start:
            self._start_tasks(backend, service, step.start)
        if step.complete:
            deployments.complete(service)
            self._rolling.discard(key)

    def _start_tasks(
        self, backend: EC2ContainerServiceBackend, service: Service, count: int,
        task_definition: str | None = None, started_by: str | None = None,
        load_balancers: list[dict[str, Any]] | None = None,
    ) -> int:
        """Start ``count`` tasks of the service (by default: its task
        definition, startedBy its PRIMARY deployment, its load balancers;
        a task set passes its own)."""
        task_definition = task_definition or service.task_definition
        if not task_definition:
            return 0
        cluster = backend.clusters.get(service.cluster_name)
        if cluster is None:
            return 0
        task_definition = backend.describe_task_definition(task_definition)
        reqs = backend._calculate_task_resource_requirements(task_definition)
        deployment_id = started_by or (service.deployments[0]["id"] if service.deployments else "ecs-svc/0")
        backend.tasks.setdefault(cluster.name, {})
        # Placement candidates, looked up once per cluster and tick: the
        # cluster's ACTIVE container instances on running EC2 instances, with
        # their running task counts (kept up to date as tasks are placed;
        # a stop in the cluster drops them, see _stop_tasks).
        key = (id(backend), cluster.name)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self._candidates[key] = self._placement_candidates(backend, cluster.name)
        started: list[Task] = []
        for _ in range(count):
            ci = self._pick_instance(backend, candidates, reqs)
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
            if load_balancers is not None:
                task.emu_load_balancers = load_balancers
            strategy = getattr(service, "capacity_provider_strategy", None)
            if strategy:  # capacity_providers.py: placed on EC2 container instances all the same
                task.capacity_provider_name = strategy[0]["capacityProvider"]
            backend.update_container_instance_resources(ci, reqs)
            backend.tasks[cluster.name][task.task_arn] = task
            candidates[ci.container_instance_arn][0] += 1
            if lifecycle.enabled():
                lifecycle.start(backend, service, task)  # targets at ACTIVATING
            else:
                register_task_targets(backend, service, task)
            started.append(task)
        if started:
            ids = ", ".join(f"(task {t.id})" for t in started)
            ecs_patch.add_service_event(
                service, f"(service {service.name}) has started {len(started)} tasks: {ids}."
            )
        return len(started)

    @staticmethod
    def _placement_candidates(backend: EC2ContainerServiceBackend, cluster_name: str) -> dict[str, list[Any]]:
        """container instance ARN -> [running tasks, order, container instance]."""
        candidates: dict[str, list[Any]] = {}
        for order, ci in enumerate(backend.container_instances.get(cluster_name, {}).values()):
            if ci.status != "ACTIVE" or not getattr(ci, "agent_connected", True):
                continue
            instance = backend_ec2_instance(backend, ci.ec2_instance_id)
            if instance is not None and instance.state != "running":
                continue
            candidates[ci.container_instance_arn] = [ci.running_tasks_count, order, ci]
        return candidates

    @staticmethod
    def _pick_instance(backend: EC2ContainerServiceBackend, candidates: dict[str, list[Any]], reqs: dict[str, Any]) -> Any:
        """Spread: the placeable instance with the fewest running tasks."""
        best = None
        for entry in candidates.values():
            if best is not None and (entry[0], entry[1]) >= (best[0], best[1]):
                continue
            if backend._can_be_placed(entry[2], reqs):
                best = entry
        return None if best is None else best[2]

    def _stop_tasks(
        self, backend: EC2ContainerServiceBackend, service: Service, active: list[Task], count: int,
        deployment_id: str | None = None,
    ) -> None:
        # Keep the spread: take from the busiest instance, newest task first.
        per_instance: dict[str, list[Task]] = {}
        for task in active:
            per_instance.setdefault(task.container_instance_arn or "", []).append(task)
        if deployment_id is None:
            deployment_id = service.deployments[0]["id"] if service.deployments else "ecs-svc/0"
        self._candidates.pop((id(backend), service.cluster_name), None)
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


class TickStats:
    """Cost of the scheduler's ticks (``GET /_emulator/scheduler/stats``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.ticks = 0
            self.full_passes = 0
            self.total_seconds = 0.0
            self.max_seconds = 0.0
            self.last_seconds = 0.0
            self.max_full_seconds = 0.0

    def add(self, seconds: float, full: bool) -> None:
        with self._lock:
            self.ticks += 1
            self.full_passes += int(full)
            self.total_seconds += seconds
            self.last_seconds = seconds
            self.max_seconds = max(self.max_seconds, seconds)
            if full:
                self.max_full_seconds = max(self.max_full_seconds, seconds)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "ticks": self.ticks,
                "full_passes": self.full_passes,
                "mean_ms": round(1000 * self.total_seconds / self.ticks, 4) if self.ticks else 0.0,
                "max_ms": round(1000 * self.max_seconds, 4),
                "max_full_pass_ms": round(1000 * self.max_full_seconds, 4),
                "last_ms": round(1000 * self.last_seconds, 4),
                "busy_fraction": round(self.total_seconds / (self.ticks * TICK_SECONDS), 5) if self.ticks else 0.0,
            }


SCHEDULER: "Scheduler | None" = None


def backend_ec2_instance(backend: EC2ContainerServiceBackend, instance_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[backend.account_id][backend.region_name].get_instance_by_id(instance_id)


def install() -> Scheduler:
    global SCHEDULER
    if on_task_stopped not in ecs_patch.STOP_HOOKS:
        ecs_patch.STOP_HOOKS.append(on_task_stopped)
    lifecycle.register_targets = register_task_targets
    SCHEDULER = Scheduler()
    return SCHEDULER
