"""Safety oracle: judges every client target write against the true state.

The controller under test must never hurt serving traffic.  The emulator
knows the truth - moto's *current* state, never the lagged one read_lag
serves to clients - so each RegisterTargets / DeregisterTargets call that
comes in through the API is judged, per target, under the moto lock and
before moto applies it (``ELBv2Backend.register_targets`` /
``deregister_targets`` are wrapped; the middleware says which client is
calling, see ``calling``).  A judgement is counted only if moto then
accepts the call (a failed call changed nothing).  ECS's own
(de)registrations are made in-process by the scheduler (``tg.register``),
never through these backend methods, so they are never judged.

Per client (``reconciler`` / ``other``):

* ``drain_cancelled``: RegisterTargets of a target that is ``draining`` in
  that group while its task is stopping or stopped (desiredStatus STOPPED),
  or while no task is behind it at all.
* ``registered_dying``: RegisterTargets of a target that is not registered
  (absent; not draining) whose task has desiredStatus STOPPED.
* ``deregistered_serving``: DeregisterTargets of a registered (not draining)
  target whose task has desiredStatus RUNNING (any lastStatus: a starting or
  serving task is taken out of service).

The task behind a target (instance id, port) is the newest task placed on a
container instance of that EC2 instance with a network binding on that host
port (ports are handed out round-robin, so the newest one is the live one).
Only ``instance`` target groups are judged.

Also kept: ``no_healthy`` (``track``, from the scheduler thread): per target
group named by a service's loadBalancers, the time during which it has no
``healthy`` target while that service has a RUNNING task (desiredStatus
RUNNING); and ``deployments_completed`` per cluster/service
(deployments.ON_COMPLETE).

Cost: the judging is a few dict look-ups per target of a client's
RegisterTargets/DeregisterTargets call.  ``no_healthy`` is only tracked once
the oracle was read or reset (``watching``); then each tracking pass visits
every service with load balancers: its target groups (early exit on the first
healthy target, each group once per pass) and, only for a group without one,
its tasks (early exit on the first RUNNING one).  ~0.1 ms with the seed,
~4.5 ms with 1,000 services / 10,000 tasks; passes are spaced so that they
take at most ~4 % of the time (every tick while a pass costs < 2 ms).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from typing import Any, Iterator

from moto.ecs.models import ecs_backends
from moto.elbv2.models import ELBv2Backend, elbv2_backends

import deployments
import ecs_patch
import targets_patch
from state import LOCK, SETTINGS

CLIENTS = ("reconciler", "other")
JUDGED = ("RegisterTargets", "DeregisterTargets")
KINDS = ("drain_cancelled", "registered_dying", "deregistered_serving")
EVENTS_KEPT = 200
INTERVALS_KEPT = 200
# no_healthy passes take at most 1 / PASS_SPACING of the time.
PASS_SPACING = 25.0
TICK_SECONDS = 0.05

_local = threading.local()
_applied = False


@contextmanager
def calling(client: str) -> Iterator[None]:
    """The middleware runs a client's target write inside this (moto lock held)."""
    _local.client = client
    try:
        yield
    finally:
        _local.client = None


class Oracle:
    """All state is read and written under ``state.LOCK``."""

    def __init__(self) -> None:
        self.watching = False
        self.next_pass = 0.0
        self.reset()

    def reset(self) -> None:
        self.counts: dict[str, Counter[str]] = {c: Counter() for c in CLIENTS}
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENTS_KEPT)
        # target group name -> {"seconds": closed seconds, "intervals": [[s, e]], "open": start | None}
        self.no_healthy: dict[str, dict[str, Any]] = {}
        self.deployments_completed: Counter[str] = Counter()
        self.next_pass = 0.0

    # ---- document ----------------------------------------------------
    def document(self) -> dict[str, Any]:
        t = time.time()
        no_healthy = {}
        for name, entry in sorted(self.no_healthy.items()):
            intervals = [list(i) for i in entry["intervals"]]
            seconds = entry["seconds"]
            if entry["open"] is not None:
                intervals.append([entry["open"], t])
                seconds += t - entry["open"]
            no_healthy[name] = {"seconds": round(seconds, 3), "intervals": intervals,
                                "open": entry["open"] is not None}
        out: dict[str, Any] = {c: {k: self.counts[c][k] for k in KINDS} for c in CLIENTS}
        out["events"] = list(self.events)
        out["no_healthy"] = no_healthy
        out["deployments_completed"] = dict(sorted(self.deployments_completed.items()))
        return out

    # ---- judging -----------------------------------------------------
    def judge(self, backend: ELBv2Backend, operation: str, tg_arn: str,
              targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Harm this write would do, per target (nothing is recorded yet)."""
        tg = backend.target_groups.get(tg_arn)
        if tg is None or tg.target_type != "instance":
            return []
        t = time.time()
        found = []
        for target in targets or []:
            try:
                key = targets_patch._key(tg, target)
            except (KeyError, TypeError, ValueError):
                continue
            registered = key in tg.targets
            entry = tg.draining.get(key)
            draining = not registered and entry is not None and entry["until"] > t
            if operation == "RegisterTargets":
                if registered:
                    continue
                task = task_behind(tg.account_id, tg.region_name, key)
                if draining and (task is None or task.desired_status == "STOPPED"):
                    kind = "drain_cancelled"
                elif not draining and task is not None and task.desired_status == "STOPPED":
                    kind = "registered_dying"
                else:
                    continue
            else:
                if not registered:
                    continue
                task = task_behind(tg.account_id, tg.region_name, key)
                if task is None or task.desired_status != "RUNNING":
                    continue
                kind = "deregistered_serving"
            found.append({
                "t": t, "kind": kind, "target_group": tg.name, "target": f"{key[0]}:{key[1]}",
                "task": task.task_arn if task is not None else None,
                "task_last_status": task.last_status if task is not None else None,
                "task_desired_status": task.desired_status if task is not None else None,
                "target_state": targets_patch._status(tg, key).status,
            })
        return found

    def record(self, client: str, found: list[dict[str, Any]]) -> None:
        for event in found:
            self.counts[client][event["kind"]] += 1
            self.events.append({"t": event["t"], "client": client, **{k: v for k, v in event.items() if k != "t"}})

    # ---- deployments -------------------------------------------------
    def deployment_completed(self, service: Any) -> None:
        self.deployments_completed[f"{service.cluster_name}/{service.name}"] += 1

    # ---- no_healthy --------------------------------------------------
    def track(self) -> None:
        """One no_healthy pass, if it is due (scheduler thread, lock held)."""
        if not self.watching:
            return
        t = time.time()
        if t < self.next_pass:
            return
        t0 = time.perf_counter()
        bad: set[str] = set()
        known: dict[str, bool] = {}  # target group ARN -> has a healthy target
        for per_account in list(dict.values(ecs_backends)):
            for backend in list(dict.values(per_account)):
                groups = stopped = None
                for service in list(backend.services.values()):
                    lbs = service.load_balancers
                    if not lbs:
                        continue
                    if groups is None:
                        groups = elbv2_backends[backend.account_id][backend.region_name].target_groups
                        stopped = _stopped_instances(backend.account_id, backend.region_name)
                    empty = []
                    for lb in lbs:
                        tg = groups.get(lb.get("targetGroupArn"))
                        if tg is None or tg.name in bad:
                            continue
                        healthy = known.get(tg.arn)
                        if healthy is None:
                            healthy = known[tg.arn] = _any_healthy(tg, t, stopped)
                        if not healthy:
                            empty.append(tg.name)
                    if empty and _has_running_task(service):
                        bad.update(empty)
        for name in bad:
            entry = self.no_healthy.setdefault(name, {"seconds": 0.0, "intervals": [], "open": None})
            if entry["open"] is None:
                entry["open"] = t
        for name, entry in self.no_healthy.items():
            if entry["open"] is not None and name not in bad:
                entry["intervals"].append([entry["open"], t])
                del entry["intervals"][:-INTERVALS_KEPT]
                entry["seconds"] += t - entry["open"]
                entry["open"] = None
        cost = time.perf_counter() - t0
        self.next_pass = t + max(0.0, PASS_SPACING * cost - TICK_SECONDS)


ORACLE = Oracle()


def _has_running_task(service: Any) -> bool:
    index = ecs_patch.task_index(service._backend, service.cluster_name)
    for task in index.by_group.get(f"service:{service.name}", ()):
        if task.last_status == "RUNNING" and task.desired_status == "RUNNING":
            return True
    return False


def _stopped_instances(account_id: str, region: str) -> set[str]:
    """Ids of the stopped EC2 instances (their targets are ``unused``), once
    per pass: moto's instance lookup by id walks every reservation."""
    from moto.ec2.models import ec2_backends

    return {
        instance.id
        for reservation in ec2_backends[account_id][region].reservations.values()
        for instance in reservation.instances
        if instance.state == "stopped"
    }


def _any_healthy(tg: Any, t: float, stopped: set[str]) -> bool:
    """Has the group a ``healthy`` target (targets_patch._status's rules)?"""
    for key, entry in tg.targets.items():
        if t < entry["healthy_at"] or key[0] in stopped:
            continue
        if SETTINGS.unbacked_targets_unhealthy and key[0].startswith("i-"):
            if targets_patch._status(tg, key).status != "healthy":
                continue
        return True
    return False


def task_behind(account_id: str, region: str, key: tuple[str, int]) -> Any:
    """The newest ECS task bound to (EC2 instance id, host port), or None."""
    instance_id, port = key
    backend = ecs_backends[account_id][region]
    for cluster_name, instances in backend.container_instances.items():
        for ci in instances.values():
            if ci.ec2_instance_id != instance_id:
                continue
            placed = ecs_patch.task_index(backend, cluster_name).by_instance.get(ci.container_instance_arn, ())
            for task in reversed(placed):
                for container in task.containers:
                    for binding in getattr(container, "network_bindings", None) or ():
                        if int(binding.get("hostPort") or 0) == port:
                            return task
    return None


def _wrap(name: str, operation: str) -> None:
    orig = getattr(ELBv2Backend, name)

    def wrapped(self: ELBv2Backend, target_group_arn: str, instances: list[Any]) -> None:
        client = getattr(_local, "client", None)
        if client is None:
            return orig(self, target_group_arn, instances)
        with LOCK:
            found = ORACLE.judge(self, operation, target_group_arn, instances)
            orig(self, target_group_arn, instances)
            ORACLE.record(client, found)

    setattr(ELBv2Backend, name, wrapped)


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _wrap("register_targets", "RegisterTargets")
    _wrap("deregister_targets", "DeregisterTargets")
    deployments.ON_COMPLETE.append(ORACLE.deployment_completed)
