"""EC2 instances stopped or terminated under running ECS tasks (switchable).

Owns the ``instance_loss_lag`` setting.  ``None`` (default) keeps the
emulator's original behaviour: after StopInstances/TerminateInstances the
container instance stays ACTIVE with agentConnected true and its tasks read
RUNNING forever (the scheduler only stops placing new tasks there).

Set to N seconds, an instance that is stopped or terminated while it is a
container instance is noticed by ECS N seconds later (the scheduler's tick,
``advance``): its tasks with desiredStatus RUNNING are stopped (stopCode
``TerminationNotice``, stoppedReason "Host EC2 (instance i-...)
stopped." / "... terminated."), going through DEACTIVATING (and the
lifecycle, if on) like any stop, and the service scheduler replaces them on
the remaining ACTIVE container instances.  The container instance gets
agentConnected false (stopped; true again after StartInstances) or status
INACTIVE (terminated).  Sources: the "Unhealthy container instance" and
"Underlying infrastructure maintenance" reasons of
https://repost.aws/knowledge-center/ecs-task-stopped and the Task API
reference's stopCode values
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html).
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.instances import InstanceBackend
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends

import ecs_patch
from state import SETTINGS, now

_applied = False


def _registry(backend: EC2ContainerServiceBackend) -> dict[str, tuple[float, str, Any]]:
    registry = backend.__dict__.get("_emu_lost")
    if registry is None:
        registry = backend.__dict__["_emu_lost"] = {}
    return registry


def _container_instances(ec2: InstanceBackend, instance_ids: set[str]) -> list[tuple[Any, Any]]:
    backend = ecs_backends[ec2.account_id][ec2.region_name]
    out = []
    for cluster_instances in backend.container_instances.values():
        for ci in cluster_instances.values():
            if ci.ec2_instance_id in instance_ids:
                out.append((backend, ci))
    return out


def _noticed(ec2: InstanceBackend, instance_ids: list[str], kind: str) -> None:
    if SETTINGS.instance_loss_lag is None:
        return
    due = now() + float(SETTINGS.instance_loss_lag)
    for backend, ci in _container_instances(ec2, set(instance_ids)):
        _registry(backend)[ci.container_instance_arn] = (due, kind, ci)


def advance(backend: EC2ContainerServiceBackend) -> None:
    """Scheduler tick: the losses whose lag is over (moto lock held)."""
    registry = backend.__dict__.get("_emu_lost")
    if not registry:
        return
    t = now()
    for arn, (due, kind, ci) in list(registry.items()):
        if due > t:
            continue
        del registry[arn]
        if kind == "terminated":
            ci.status = "INACTIVE"
        ci.agent_connected = False
        reason = f"Host EC2 (instance {ci.ec2_instance_id}) {kind}."
        for task in ecs_patch.instance_tasks(backend, ci.cluster_name, ci.container_instance_arn):
            if task.desired_status == "RUNNING":
                ecs_patch.stop_task_as_scheduler(backend, ci.cluster_name, task, reason, "TerminationNotice")


def _patch() -> None:
    orig_stop = InstanceBackend.stop_instances
    orig_terminate = InstanceBackend.terminate_instances
    orig_start = InstanceBackend.start_instances

    def stop_instances(self: InstanceBackend, instance_ids: list[str]) -> Any:
        result = orig_stop(self, instance_ids)
        _noticed(self, instance_ids, "stopped")
        return result

    def terminate_instances(self: InstanceBackend, instance_ids: list[str]) -> Any:
        result = orig_terminate(self, instance_ids)
        _noticed(self, instance_ids, "terminated")
        return result

    def start_instances(self: InstanceBackend, instance_ids: list[str]) -> Any:
        result = orig_start(self, instance_ids)
        for backend, ci in _container_instances(self, set(instance_ids)):
            _registry(backend).pop(ci.container_instance_arn, None)
            if ci.status == "ACTIVE":
                ci.agent_connected = True  # the agent reconnects
        return result

    InstanceBackend.stop_instances = stop_instances
    InstanceBackend.terminate_instances = terminate_instances
    InstanceBackend.start_instances = start_instances


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
