"""ELBv2 target-group fixes on top of moto 5.2.1: targets keyed by (id, port).

moto keys a target group's targets by instance id only, so registering
(i-1, 32768) and (i-1, 32769) keeps just the last one, and deregistering one
removes "the" target.  With ECS bridge networking several tasks on the same
instance are several targets, so this module replaces the target bookkeeping:

* ``tg.targets`` is keyed by ``(id, port)``; Port defaults to the target
  group's port, as in AWS.  RegisterTargets, DeregisterTargets and
  DescribeTargetHealth (with or without a Targets filter) all honour the port.
* Health: a new registration is ``initial`` (Elb.RegistrationInProgress) for
  the current scheduler delay, then ``healthy``.  A deregistered target is
  ``draining`` (Target.DeregistrationInProgress) for the group's
  ``deregistration_delay.timeout_seconds`` (new groups default to the
  emulator's ``--draining-seconds``) and then disappears.  Anything else asked
  for explicitly is ``unused`` (Target.NotRegistered).  Targets on a stopped
  instance are ``unused`` (Target.InvalidState).  Opt-in
  (``unbacked_targets_unhealthy``): an instance target that no RUNNING ECS
  task is bound to reports ``unhealthy`` (Target.FailedHealthChecks).
* RegisterTargets with an instance id that does not exist fails with
  InvalidTarget (moto accepted it); DeregisterTargets of a target that is not
  registered is a successful no-op, as in AWS (moto raised InvalidTarget).
* ``HealthCheckPort`` of a description is the target's port when the group
  uses ``traffic-port`` (AWS reports the number, moto the literal string).
* DescribeTargetGroups pages as AWS does (``PageSize`` 1..400, default 400,
  ``Marker``/``NextMarker``); moto always returned every group at once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from moto.elbv2.exceptions import InvalidTargetError, TargetGroupNotFoundError, TargetNotRunning
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup

import read_lag
from state import SETTINGS, now

_applied = False

Key = tuple[str, int]


def _key(tg: FakeTargetGroup, target: dict[str, Any]) -> Key:
    port = target.get("Port")
    if port in (None, ""):
        port = tg.port
    return (str(target["Id"]), int(port) if port not in (None, "") else 0)


def draining_seconds(tg: FakeTargetGroup) -> float:
    value = tg.attributes.get("deregistration_delay.timeout_seconds", SETTINGS.draining_seconds)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float(SETTINGS.draining_seconds)


def _purge(tg: FakeTargetGroup) -> None:
    t = now()
    for key in [k for k, v in tg.draining.items() if v["until"] <= t]:
        del tg.draining[key]


def _health_port(tg: FakeTargetGroup, port: int) -> str | None:
    hc = tg.health_check_port
    if hc in (None, "traffic-port"):
        return str(port)
    return str(hc)


def _status(tg: FakeTargetGroup, key: Key, past: Any = None) -> FakeHealthStatus:
    """The target's health now, or (``past``: (at, {key: healthy_at},
    {key: until}) from read_lag) as it was then."""
    target_id, port = key
    hc_port = _health_port(tg, port)
    if past is None:
        at, entry, draining = now(), tg.targets.get(key), key in tg.draining
    else:
        at, registered, drained = past
        healthy_at = registered.get(key)
        entry = None if healthy_at is None else {"healthy_at": healthy_at}
        draining = key in drained
    if entry is not None:
        if target_id.startswith("i-"):
            instance = tg.ec2_backend.get_instance_by_id(target_id)
            if instance is not None and instance.state == "stopped":
                return FakeHealthStatus(
                    target_id, port, hc_port, "unused", "Target.InvalidState",
                    "Target is in the stopped state",
                )
        if at < entry["healthy_at"]:
            return FakeHealthStatus(
                target_id, port, hc_port, "initial", "Elb.RegistrationInProgress",
                "Target registration is in progress",
            )
        if SETTINGS.unbacked_targets_unhealthy and target_id.startswith("i-") and not _backed(tg, key):
            return FakeHealthStatus(
                target_id, port, hc_port, "unhealthy", "Target.FailedHealthChecks", "Health checks failed",
            )
        return FakeHealthStatus(target_id, port, hc_port, "healthy")
    if draining:
        return FakeHealthStatus(
            target_id, port, hc_port, "draining", "Target.DeregistrationInProgress",
            "Target deregistration is in progress",
        )
    return FakeHealthStatus(
        target_id, port, hc_port, "unused", "Target.NotRegistered",
        "Target is not registered to the target group",
    )


def _backed(tg: FakeTargetGroup, key: Key) -> bool:
    """Is a RUNNING ECS task bound to this (instance id, host port)?"""
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[tg.account_id][tg.region_name]
    for cluster_name, tasks in backend.tasks.items():
        instances = backend.container_instances.get(cluster_name, {})
        for task in tasks.values():
            if task.last_status != "RUNNING" or not task.container_instance_arn:
                continue
            ci = instances.get(task.container_instance_arn.split("/")[-1])
            if ci is None or ci.ec2_instance_id != key[0]:
                continue
            for container in task.containers:
                for binding in getattr(container, "network_bindings", None) or []:
                    if int(binding["hostPort"]) == key[1]:
                        return True
    return False


def _patch() -> None:
    orig_init = FakeTargetGroup.__init__

    def init(self: FakeTargetGroup, *args: Any, **kwargs: Any) -> None:
        orig_init(self, *args, **kwargs)
        self.targets = OrderedDict()  # (id, port) -> {"Id", "Port", "healthy_at"}
        self.draining = OrderedDict()  # (id, port) -> {"Id", "Port", "until"}
        read_lag.tg_init(self)
        if self.target_type != "lambda":
            self.attributes["deregistration_delay.timeout_seconds"] = int(SETTINGS.draining_seconds)

    FakeTargetGroup.__init__ = init

    def register(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
        keys = []
        for target in targets:
            key = _key(self, target)
            if self.target_type == "instance":
                instance = self.ec2_backend.get_instance_by_id(key[0])
                if instance is None:
                    raise InvalidTargetError()
                if instance.state != "running":
                    raise TargetNotRunning(instance_id=key[0])
            keys.append(key)
        for key in keys:
            self.draining.pop(key, None)
            if key not in self.targets:
                self.targets[key] = {
                    "Id": key[0],
                    "Port": key[1],
                    "healthy_at": now() + max(0.0, float(SETTINGS.scheduler_delay)),
                }
            read_lag.record_target(self, "reg", key, self.targets[key]["healthy_at"])

    def deregister(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
        _purge(self)
        until = now() + draining_seconds(self)
        for target in targets:
            key = _key(self, target)
            read_lag.record_target(self, "dereg", key, until)
            if self.targets.pop(key, None) is not None and until > now():
                self.draining[key] = {"Id": key[0], "Port": key[1], "until": until}

    def deregister_terminated_instances(self: FakeTargetGroup, instance_ids: list[str]) -> None:
        self.deregister([t for (i, _), t in list(self.targets.items()) if i in instance_ids])

    def health_for(self: FakeTargetGroup, target: dict[str, Any], ec2_backend: Any = None) -> FakeHealthStatus:
        _purge(self)
        return _status(self, _key(self, target))

    FakeTargetGroup.register = register
    FakeTargetGroup.deregister = deregister
    FakeTargetGroup.deregister_terminated_instances = deregister_terminated_instances
    FakeTargetGroup.health_for = health_for

    def describe_target_health(
        self: ELBv2Backend, target_group_arn: str, targets: list[dict[str, Any]]
    ) -> list[FakeHealthStatus]:
        tg = self.target_groups.get(target_group_arn)
        if tg is None:
            raise TargetGroupNotFoundError()
        as_of = read_lag.as_of()
        if as_of is not None:  # a lagged read: the registrations as they were then
            found = read_lag.targets_at(tg, as_of)
            if found is None:
                raise TargetGroupNotFoundError()
            past = (as_of, found[0], found[1])
            if targets:
                return [_status(tg, _key(tg, t), past) for t in targets]
            keys = list(found[0]) + [k for k in found[1] if k not in found[0]]
            return [_status(tg, k, past) for k in keys]
        _purge(tg)
        if targets:
            return [_status(tg, _key(tg, t)) for t in targets]
        keys = list(tg.targets.keys()) + [k for k in tg.draining.keys() if k not in tg.targets]
        return [_status(tg, k) for k in keys]

    ELBv2Backend.describe_target_health = describe_target_health


def _patch_target_group_pages() -> None:
    from moto.core.responses import ActionResult
    from moto.elbv2.exceptions import ELBClientError
    from moto.elbv2.responses import ELBV2Response

    from paging import BadToken, paginate

    def describe_target_groups(self: Any) -> ActionResult:
        page_size = self._get_param("PageSize")
        if page_size is not None:
            page_size = int(page_size)
            if not 1 <= page_size <= 400:
                raise ELBClientError("ValidationError", "Page size must be between 1 and 400")
        groups = self.elbv2_backend.describe_target_groups(
            self._get_param("LoadBalancerArn"), self._get_param("TargetGroupArns", []), self._get_param("Names", [])
        )
        try:
            page, marker = paginate(groups, page_size, self._get_param("Marker"), 400)
        except BadToken:
            raise ELBClientError("ValidationError", "Invalid marker") from None
        result: dict[str, Any] = {"TargetGroups": page}
        if marker:
            result["NextMarker"] = marker
        return ActionResult(result)

    ELBV2Response.describe_target_groups = describe_target_groups


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
    _patch_target_group_pages()
