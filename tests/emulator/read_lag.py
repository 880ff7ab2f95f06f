"""Read lag: eventually consistent reads (switchable, off by default).

Owns the ``read_lag`` setting: ``{"ecs": L1, "elbv2": L2, "ec2": L3}``
seconds (0 or absent: consistent).  A client read of a lagged service is
answered from the state as it was ``u`` seconds ago, ``u`` uniformly random in
[0, L] per call, so two reads (and two services) can disagree, as the ECS and
EC2 APIs document ("eventual consistency").  Only client-visible reads lag:
writes, the scheduler and the control API always see the current state.

Two techniques:

* **Model history** (exact), for ECS tasks and services and ELBv2 targets.
  Each task keeps time-stamped snapshots of its mutable fields (statuses,
  stop fields, containers); each service its desiredCount, status, task
  definition, deployments and task sets; each target group a log of
  registrations/deregistrations (health states follow from their times).
  A lagged read renders copies as of ``now - u``: ListTasks (membership by
  desiredStatus), DescribeTasks (a task that did not exist yet is a
  ``MISSING`` failure), DescribeServices (counts are recomputed from the
  tasks as of then; a service not created yet is ``MISSING``),
  DescribeTargetHealth (a target group created later is
  TargetGroupNotFound).  Limitations: the instance-state check
  (Target.InvalidState) and ``unbacked_targets_unhealthy`` use the current
  instance/tasks.
* **Recorded responses**, for EC2 (every Describe*/Get*: instances, security
  groups, rules, ...).  EC2's state only changes through EC2 writes, so it
  is constant between two writes.  Each read response is stored with its
  time; before every EC2 write the responses of the requests read in the
  last minute (at most 32) are recorded again.  A lagged read at ``T`` is
  served a stored response of the same request (same body) taken between
  the last write before ``T`` and the first one after it, i.e. exactly the
  state at ``T``; without one (a request first seen after that write), it
  is answered fresh.

History is only kept from the moment ``read_lag`` is first switched on
(everything is snapshotted then), and no read lags to before that moment.
"""

from __future__ import annotations

import bisect
import copy
import io
import random
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from state import SETTINGS

SERVICES = ("ecs", "elbv2", "ec2")
HORIZON = 300.0  # largest lag accepted; history older than this is folded away
_EVENTS_FOLD = 1024

RECORDING = False
ENABLED_AT: float | None = None
_local = threading.local()


def validate(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("read_lag must be an object {service: seconds}")
    unknown = set(value) - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown read_lag services {sorted(unknown)}; known: {list(SERVICES)}")
    out = {}
    for key, seconds in value.items():
        seconds = float(seconds or 0)
        if not 0 <= seconds <= HORIZON:
            raise ValueError(f"read_lag {key} must be between 0 and {HORIZON}")
        if seconds:
            out[key] = seconds
    return out


def configure(value: Any) -> None:
    """Set ``SETTINGS.read_lag`` (moto lock held); the first time it turns
    on, snapshot everything so history starts now."""
    global RECORDING, ENABLED_AT
    lag = validate(value)
    if lag and not RECORDING:
        _snapshot_all()
        # After the snapshot: no read may go back to before the first
        # entry of any history (it would find the object missing).
        ENABLED_AT = time.time()
        RECORDING = True
    if "ec2" not in lag:
        # EC2 writes are only tracked while EC2 lags: start afresh next time.
        EC2.requests.clear()
        EC2.writes.clear()
    SETTINGS.read_lag = lag


def lag_of(service: str) -> float:
    return float((SETTINGS.read_lag or {}).get(service, 0.0))


def pick_as_of(service: str) -> float | None:
    lag = lag_of(service)
    if not lag:
        return None
    return max(time.time() - random.uniform(0.0, lag), ENABLED_AT or 0.0)


def as_of() -> float | None:
    """The time the current (client) read is answered as of, or None."""
    return getattr(_local, "as_of", None)


class reading:
    """``with reading(t):`` - the patched handlers render as of ``t``."""

    def __init__(self, t: float | None) -> None:
        self.t = t

    def __enter__(self) -> None:
        _local.as_of = self.t

    def __exit__(self, *exc: Any) -> None:
        _local.as_of = None


# --------------------------------------------------------------------------
# ECS tasks
# --------------------------------------------------------------------------
_TASK_FIELDS = ("_status", "desired_status", "stopped_reason", "stop_code", "stopping_at", "stopped_at",
                "execution_stopped_at", "started_at", "pull_started_at", "pull_stopped_at", "connectivity",
                "connectivity_at", "version")


def record_task(task: Any) -> None:
    if not RECORDING:
        return
    d = task.__dict__
    snap = tuple(d.get(f) for f in _TASK_FIELDS)
    containers = tuple((c.last_status, getattr(c, "exitCode", None)) for c in task.containers)
    hist = d.setdefault("emu_hist", [])
    hist.append((time.time(), snap, containers))
    _prune(hist)


def _prune(hist: list) -> None:
    """Drop entries no read can reach (keeping the newest one before the horizon)."""
    if len(hist) > 8:
        horizon = time.time() - HORIZON
        while len(hist) > 1 and hist[1][0] < horizon:
            del hist[0]


def _task_entry(task: Any, t: float) -> Any:
    hist = task.__dict__.get("emu_hist")
    if not hist:
        return None
    if hist[-1][0] <= t:
        return hist[-1]
    i = bisect.bisect_right([h[0] for h in hist], t)
    return hist[i - 1] if i else None


def task_state_at(task: Any, t: float) -> tuple[str, str] | None:
    """(lastStatus, desiredStatus) at ``t``; None if the task did not exist."""
    entry = _task_entry(task, t)
    if entry is None:
        return None
    snap = entry[1]
    return snap[0], snap[1]


def task_as_of(task: Any, t: float) -> Any:
    """The task as it was at ``t`` (a copy if it changed since), or None."""
    hist = task.__dict__.get("emu_hist")
    entry = _task_entry(task, t)
    if entry is None:
        return None
    if entry is hist[-1]:
        return task
    proxy = copy.copy(task)
    for name, value in zip(_TASK_FIELDS, entry[1]):
        proxy.__dict__[name] = value
    containers = []
    for c, (status, exit_code) in zip(task.containers, entry[2]):
        cc = copy.copy(c)
        cc.last_status = status
        cc.exitCode = exit_code
        containers.append(cc)
    proxy.containers = containers
    return proxy


def states_at(tasks: Iterable[Any], t: float) -> list[tuple[Any, str, str]]:
    out = []
    for task in tasks:
        state = task_state_at(task, t)
        if state is not None:
            out.append((task, state[0], state[1]))
    return out


# --------------------------------------------------------------------------
# ECS services
# --------------------------------------------------------------------------
def record_service(service: Any) -> None:
    if not RECORDING:
        return
    d = service.__dict__
    snap = {
        "desired_count": service.desired_count,
        "status": service.status,
        "task_definition": service.task_definition,
        "_emu_deployments": [dict(x) for x in (d.get("_emu_deployments") or [])],
        "task_sets": [copy.copy(ts) for ts in (service.task_sets or [])],
    }
    hist = d.setdefault("emu_hist", [])
    hist.append((time.time(), snap))
    _prune(hist)


def service_as_of(service: Any, t: float) -> Any:
    hist = service.__dict__.get("emu_hist")
    if not hist:
        return service
    i = bisect.bisect_right([h[0] for h in hist], t)
    if not i:
        return None
    snap = hist[i - 1][1]
    proxy = copy.copy(service)
    for name, value in snap.items():
        if name == "_emu_deployments":
            value = [dict(x) for x in value]
        elif name == "task_sets":
            value = [copy.copy(ts) for ts in value]
            for ts in value:
                ts.__dict__["_emu_as_of"] = t
        proxy.__dict__[name] = value
    proxy.__dict__["_emu_as_of"] = t
    return proxy


# --------------------------------------------------------------------------
# ELBv2 targets
# --------------------------------------------------------------------------
def tg_init(tg: Any) -> None:
    tg.emu_created = time.time()
    tg.emu_base = (tg.emu_created, OrderedDict(), OrderedDict())
    tg.emu_events = []


def record_target(tg: Any, kind: str, key: tuple[str, int], value: float) -> None:
    if not RECORDING:
        return
    events = tg.__dict__.setdefault("emu_events", [])
    events.append((time.time(), kind, key, value))
    if len(events) > _EVENTS_FOLD:
        base_t, targets, draining = tg.emu_base
        horizon = time.time() - HORIZON
        keep = 0
        for t, k, key_, v in events:
            if t >= horizon:
                break
            _apply(targets, draining, t, k, key_, v)
            base_t = t
            keep += 1
        del events[:keep]
        tg.emu_base = (base_t, targets, draining)


def _apply(targets: OrderedDict, draining: OrderedDict, t: float, kind: str, key: Any, value: float) -> None:
    if kind == "reg":
        draining.pop(key, None)
        if key not in targets:
            targets[key] = value
    else:
        if targets.pop(key, None) is not None and value > t:
            draining[key] = value


def targets_at(tg: Any, t: float) -> tuple[OrderedDict, OrderedDict] | None:
    """({key: healthy_at}, {key: draining_until}) at ``t``; None if the group
    did not exist yet."""
    if getattr(tg, "emu_created", 0.0) > t:
        return None
    base_t, targets, draining = tg.emu_base
    targets, draining = OrderedDict(targets), OrderedDict(draining)
    for ev in tg.emu_events:
        if ev[0] > t:
            break
        _apply(targets, draining, *ev)
    for key in [k for k, until in draining.items() if until <= t]:
        del draining[key]
    return targets, draining


# --------------------------------------------------------------------------
# snapshot of everything when recording starts
# --------------------------------------------------------------------------
def _snapshot_all() -> None:
    global RECORDING
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    RECORDING = True
    for regions in list(dict.values(ecs_backends)):
        for backend in list(dict.values(regions)):
            for tasks in backend.tasks.values():
                for task in tasks.values():
                    record_task(task)
            for service in backend.services.values():
                record_service(service)
    t = time.time()
    for regions in list(dict.values(elbv2_backends)):
        for backend in list(dict.values(regions)):
            for tg in backend.target_groups.values():
                targets = OrderedDict((k, v["healthy_at"]) for k, v in tg.targets.items())
                draining = OrderedDict((k, v["until"]) for k, v in tg.draining.items())
                tg.emu_created = min(getattr(tg, "emu_created", t), t)
                tg.emu_base = (t, targets, draining)
                tg.emu_events = []


# --------------------------------------------------------------------------
# EC2: recorded responses
# --------------------------------------------------------------------------
class Ec2Recorder:
    """Responses of EC2 reads, per request, valid between two EC2 writes."""

    MAX_KEYS = 32
    REPLAY_SECONDS = 60.0

    def __init__(self) -> None:
        # key -> {"environ": template, "body": bytes, "seen": t, "records": [(t, status, headers, chunks)]}
        self.requests: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self.writes: list[float] = []

    @staticmethod
    def key(environ: dict[str, Any], body: bytes) -> Any:
        return (environ.get("PATH_INFO"), environ.get("QUERY_STRING"), body)

    def lookup(self, key: Any, t: float) -> tuple[str, list, list[bytes]] | None:
        entry = self.requests.get(key)
        if entry is None:
            return None
        i = bisect.bisect_right(self.writes, t)
        w0 = self.writes[i - 1] if i else float("-inf")
        w1 = self.writes[i] if i < len(self.writes) else float("inf")
        for r, status, headers, chunks in reversed(entry["records"]):
            if w0 <= r < w1:
                return status, headers, chunks
        return None

    def store(self, key: Any, environ: dict[str, Any], body: bytes, status: str, headers: list,
              chunks: list[bytes]) -> None:
        t = time.time()
        entry = self.requests.get(key)
        if entry is None:
            template = {k: v for k, v in environ.items() if k != "wsgi.input"}
            entry = self.requests[key] = {"environ": template, "body": body, "seen": t, "records": []}
        entry["seen"] = t
        self.requests.move_to_end(key)
        entry["records"].append((t, status, headers, chunks))
        self._prune(entry, t)
        while len(self.requests) > self.MAX_KEYS:
            self.requests.popitem(last=False)

    def touch(self, key: Any) -> None:
        entry = self.requests.get(key)
        if entry is not None:
            entry["seen"] = time.time()

    def _prune(self, entry: dict[str, Any], t: float) -> None:
        horizon = t - lag_of("ec2") - 1.0
        records = entry["records"]
        # keep the newest record older than the horizon (it may still be the valid one)
        while len(records) > 1 and records[1][0] < horizon:
            del records[0]

    def before_write(self, run: Callable[[dict[str, Any]], tuple[str, list, list[bytes]]]) -> None:
        """Record every recent request's response as it is just before a write."""
        t = time.time()
        for key, entry in list(self.requests.items()):
            if t - entry["seen"] > self.REPLAY_SECONDS:
                continue
            environ = dict(entry["environ"])
            environ["wsgi.input"] = io.BytesIO(entry["body"])
            environ["CONTENT_LENGTH"] = str(len(entry["body"]))
            status, headers, chunks = run(environ)
            entry["records"].append((time.time(), status, headers, chunks))
            self._prune(entry, t)
        self.writes.append(time.time())
        horizon = t - lag_of("ec2") - 1.0
        while len(self.writes) > 1 and self.writes[1] < horizon:
            del self.writes[0]


EC2 = Ec2Recorder()


# --------------------------------------------------------------------------
# model patches: record service changes, render DescribeServices as of then
# --------------------------------------------------------------------------
_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    from moto.ecs.models import EC2ContainerServiceBackend

    def recorded(name: str) -> None:
        orig = getattr(EC2ContainerServiceBackend, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = orig(self, *args, **kwargs)
            if RECORDING:
                services = [result] if name.endswith("_service") else list(self.services.values())
                for service in services:
                    record_service(service)
            return result

        setattr(EC2ContainerServiceBackend, name, wrapper)

    for name in ("create_service", "update_service", "delete_service", "create_task_set", "delete_task_set",
                 "update_task_set", "update_service_primary_task_set"):
        recorded(name)

    orig_describe = EC2ContainerServiceBackend.describe_services

    def describe_services(self: Any, cluster_str: str, names: list[str]) -> Any:
        services, failures = orig_describe(self, cluster_str, names)
        t = as_of()
        if t is None:
            return services, failures
        shown = []
        for service in services:
            proxy = service_as_of(service, t)
            if proxy is None:
                failures.append({"arn": service.arn, "reason": "MISSING"})
            else:
                shown.append(proxy)
        return shown, failures

    EC2ContainerServiceBackend.describe_services = describe_services
