"""Task lifecycle with per-state delays (switchable, off by default).

Owns the ``lifecycle`` setting (``SETTINGS.lifecycle``): ``None`` keeps the
emulator's original behaviour (a scheduler-started task is RUNNING at once,
a stopped task behind a load balancer is DEACTIVATING for the scheduler
delay, then STOPPED).  Set to a dict of per-state seconds, it makes every
task the service scheduler starts walk AWS's task lifecycle
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle.html):

    PROVISIONING -> PENDING -> ACTIVATING -> RUNNING            (desiredStatus RUNNING)
    DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED        (desiredStatus STOPPED)

* The task's targets are registered when it enters ACTIVATING (not at
  RUNNING); it is RUNNING ``activating`` seconds later.
* A stop (StopTask, scale-in, deployment replacement, lost instance) makes it
  DEACTIVATING; its targets are deregistered then (``draining``), and it
  stays DEACTIVATING until they have drained: the longest
  ``deregistration_delay.timeout_seconds`` of their target groups, read at
  the stop (at least ``deactivating_min`` seconds).  Then STOPPING
  (``stopping`` s), DEPROVISIONING (``deprovisioning`` s; containers are
  STOPPED from here), STOPPED.

Cost: only the tasks in transition are looked at (a per-backend registry,
like ``ecs_patch.finish_deactivating``), so an idle tick stays O(1).
Transitions are scheduled from the time the previous state was due, not the
tick that noticed it, so 50 ms ticks do not add up; zero delays pass through
several states in one tick.
"""

from __future__ import annotations

from typing import Any, Callable

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, Task

from state import SETTINGS, now

KEYS = ("provisioning", "pending", "activating", "deactivating_min", "stopping", "deprovisioning")
STARTING = ("PROVISIONING", "PENDING", "ACTIVATING")

# Set by scheduler.install(): registers a started task's targets.
register_targets: Callable[[EC2ContainerServiceBackend, Any, Task], None] | None = None
# Set by ecs_patch: fills in the STOPPED fields (stoppedAt, containers, ...).
mark_stopped: Callable[[Task, str], None] | None = None
# Called with the task after every state change (read_lag's history).
ON_CHANGE: list[Callable[[Task], None]] = []


def validate(value: Any) -> dict[str, float] | None:
    """The ``lifecycle`` control value: None, or {state: seconds >= 0}."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("lifecycle must be null or an object of per-state seconds")
    unknown = set(value) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown lifecycle keys {sorted(unknown)}; known: {list(KEYS)}")
    out = {}
    for key in KEYS:
        seconds = float(value.get(key, 0) or 0)
        if seconds < 0:
            raise ValueError(f"lifecycle {key} must be >= 0")
        out[key] = seconds
    return out


def enabled() -> bool:
    return SETTINGS.lifecycle is not None


def _delay(key: str) -> float:
    return float((SETTINGS.lifecycle or {}).get(key, 0.0))


def _registry(backend: EC2ContainerServiceBackend) -> dict[str, Task]:
    registry = backend.__dict__.get("_emu_lifecycle")
    if registry is None:
        registry = backend.__dict__["_emu_lifecycle"] = {}
    return registry


def _changed(task: Task) -> None:
    task.version = (getattr(task, "version", 1) or 1) + 1
    for fn in ON_CHANGE:
        fn(task)


def start(backend: EC2ContainerServiceBackend, service: Any, task: Task) -> None:
    """A task the scheduler just placed: PROVISIONING, targets not yet registered."""
    task.last_status = "PROVISIONING"
    task.emu_service = service
    task.started_at = None
    task.pull_started_at = None
    task.pull_stopped_at = None
    task.connectivity = None
    task.connectivity_at = None
    for container in task.containers:
        container.last_status = "PENDING"
    task.emu_next_at = now() + _delay("provisioning")
    _registry(backend)[task.task_arn] = task
    task.__dict__.pop("emu_hist", None)  # it never was RUNNING: history starts here
    for fn in ON_CHANGE:
        fn(task)


def begin_stop(backend: EC2ContainerServiceBackend, task: Task, code: str) -> None:
    """A stop (desiredStatus already STOPPED, targets already deregistered by
    the stop hooks): DEACTIVATING until the targets drained."""
    t = now()
    task.last_status = "DEACTIVATING"
    task.stop_code = code
    task.stopping_at = utcnow()
    task.emu_stop_code = code
    drain_until = float(getattr(task, "emu_drain_until", 0.0) or 0.0)
    task.emu_next_at = max(t + _delay("deactivating_min"), drain_until)
    _registry(backend)[task.task_arn] = task
    _changed(task)


def advance(backend: EC2ContainerServiceBackend) -> None:
    """Moves every task whose state is due (scheduler tick, moto lock held)."""
    registry = backend.__dict__.get("_emu_lifecycle")
    if not registry:
        return
    t = now()
    for arn, task in list(registry.items()):
        while arn in registry and task.emu_next_at is not None and task.emu_next_at <= t:
            _step(backend, registry, arn, task)


def _step(backend: EC2ContainerServiceBackend, registry: dict[str, Task], arn: str, task: Task) -> None:
    due = task.emu_next_at
    state = task.last_status
    stamp = utcnow()
    if state == "PROVISIONING":
        task.last_status = "PENDING"
        task.pull_started_at = stamp
        task.emu_next_at = due + _delay("pending")
    elif state == "PENDING":
        task.last_status = "ACTIVATING"
        task.pull_stopped_at = stamp
        task.connectivity = "CONNECTED"
        task.connectivity_at = stamp
        service = getattr(task, "emu_service", None)
        if service is not None and register_targets is not None:
            register_targets(backend, service, task)
        task.emu_next_at = due + _delay("activating")
    elif state == "ACTIVATING":
        task.last_status = "RUNNING"
        task.started_at = stamp
        for container in task.containers:
            container.last_status = "RUNNING"
        task.emu_next_at = None
        del registry[arn]
    elif state == "DEACTIVATING":
        task.last_status = "STOPPING"
        task.emu_next_at = due + _delay("stopping")
    elif state == "STOPPING":
        task.last_status = "DEPROVISIONING"
        task.execution_stopped_at = stamp
        for container in task.containers:
            container.last_status = "STOPPED"
            container.exitCode = 137
        task.emu_next_at = due + _delay("deprovisioning")
    elif state == "DEPROVISIONING":
        task.last_status = "STOPPED"
        task.emu_next_at = None
        if mark_stopped is not None:
            mark_stopped(task, getattr(task, "emu_stop_code", None) or "UserInitiated")
        del registry[arn]
        for fn in ON_CHANGE:
            fn(task)
        return
    else:  # stopped some other way meanwhile
        task.emu_next_at = None
        del registry[arn]
        return
    _changed(task)
