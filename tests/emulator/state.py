"""Process-wide emulator state: run-time settings and the moto lock.

moto's backends are plain Python objects with no locking of their own.  The
emulator serves requests on many threads *and* mutates the same backends from
its ECS scheduler thread, so every access to moto goes through ``LOCK`` (a
re-entrant lock: patched moto methods may call each other while holding it).

``SETTINGS`` holds the knobs that the CLI sets at start-up and that the
``/_emulator/scheduler`` control endpoint changes at run time.

``generation()`` counts the changes that may have touched moto's state: the
middleware calls ``mark_changed()`` after every forwarded call that is not a
Describe/List/Get, and so does anything else that writes to the backends
in-process (the topology builder).  The scheduler uses it to skip
re-checking every service on ticks where nothing changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

LOCK = threading.RLock()


@dataclass
class Settings:
    # Seconds between a service's desired/actual task count diverging and the
    # scheduler acting on it (also: how long new targets stay "initial").
    scheduler_delay: float = 1.0
    # Scheduler paused: no tasks are started or stopped.
    paused: bool = False
    # Default deregistration_delay.timeout_seconds of new target groups, i.e.
    # how long deregistered targets stay "draining".
    draining_seconds: int = 300
    # Deregister a task's targets when the task stops.
    deregister_on_stop: bool = True
    # When > 0: the next N task stops do NOT deregister their targets
    # (leaves stale targets behind); counts down to 0.
    skip_deregister_next: int = 0
    # Opt-in realism: a registered instance target with no RUNNING ECS task
    # bound to its (instance, port) reports "unhealthy" (as real health checks
    # against a port nobody listens on would) instead of "healthy".
    unbacked_targets_unhealthy: bool = False
    # Real-ECS behaviours, each off (None/False) by default; see README
    # "Real-ECS behaviours (switchable)".
    # Per-state seconds of the task lifecycle (lifecycle.py), or None.
    lifecycle: dict[str, float] | None = None
    # Rolling-update deployments on UpdateService (deployments.py).
    rolling_deployments: bool = False
    # Eventually consistent reads: {"ecs"|"elbv2"|"ec2": max lag seconds} (read_lag.py).
    read_lag: dict[str, float] = field(default_factory=dict)
    # Seconds until ECS notices a stopped/terminated container instance and
    # stops its tasks; None: never (instance_loss.py).
    instance_loss_lag: float | None = None
    # CreateService capacityProviderStrategy kept, no invented launchType;
    # FARGATE/FARGATE_SPOT built in (capacity_providers.py).
    capacity_providers: bool = False
    # CODE_DEPLOY/EXTERNAL services run their task sets' tasks (task_sets.py).
    task_sets: bool = False
    # Real-EC2 networking, each off by default; see README "Real-EC2
    # networking (switchable)" and ec2_networking.py (POST /_emulator/ec2).
    # Every container instance (existing and newly registered) gets a trunk ENI (enis.py).
    trunk_enis: bool = False
    # Group-list writes checked like AWS: same VPC, at most 5 groups (group_writes.py).
    strict_group_writes: bool = False
    # AWS-managed prefix lists with their weights; PrefixListIds validated (prefix_lists.py).
    prefix_lists: bool = False
    # Rules per group per direction per address family, AWS's counting (rule_quota.py); None: moto's check.
    rule_quota: int | None = None
    # UserIdGroupPairs with another account's UserId accepted (cross_account.py).
    cross_account_groups: bool = False
    # Default VPC: revoking an unknown ingress rule returns UnknownIpPermissions (revoke_unknown.py).
    revoke_unknown_returns_success: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SETTINGS = Settings()


def now() -> float:
    return time.time()


_GENERATION = 0


def mark_changed() -> None:
    """Something may have changed moto's state (call with LOCK held)."""
    global _GENERATION
    _GENERATION += 1


def generation() -> int:
    return _GENERATION
