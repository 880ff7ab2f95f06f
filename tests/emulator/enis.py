"""Network interfaces of EC2 instances (moto 5.2.1 fixes + trunk ENIs).

Owns: how an instance's security groups relate to its network interfaces,
ModifyNetworkInterfaceAttribute ``Groups``, the multi-ENI rule of
ModifyInstanceAttribute, and the ``trunk`` network interface that ECS
awsvpcTrunking attaches to a container instance (``add_trunk_eni``, the
``trunk_enis`` switch).  README: "Real-EC2 networking (switchable)".

Gap fixes (always on; they only change what moto got wrong):

* An attached ENI's ``Groups`` were the union of its own groups and the
  instance's (so a second ENI showed the primary's groups, and a primary ENI
  written with ModifyNetworkInterfaceAttribute kept showing the old ones).
  Now an ENI shows its own groups, and the instance's ``SecurityGroups``
  *are* the primary ENI's (device index 0): writing either one is seen by
  both DescribeInstances fields.
* ModifyNetworkInterfaceAttribute accepted unknown group ids (stored None).
  Now InvalidGroup.NotFound, and nothing changes.

AWS behaviour (as soon as an instance has a second ENI):

* ModifyInstanceAttribute ``Groups`` on an instance with more than one
  network interface fails with InvalidInstanceID "There are multiple
  interfaces attached to instance 'i-…'. Please specify an interface ID for
  the operation instead."
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidSecurityGroupNotFoundError
from moto.ec2.models.elastic_network_interfaces import NetworkInterface, NetworkInterfaceBackend
from moto.ec2.models.instances import Instance, InstanceBackend

import group_writes
from state import SETTINGS

TRUNK_DESCRIPTION = "ECS trunk network interface (emulator)"
_applied = False


def _groups_of(backend: Any, group_ids: list[str]) -> list[Any]:
    groups = []
    for group_id in group_ids:
        group = backend.get_security_group_from_id(group_id)
        if group is None:
            raise InvalidSecurityGroupNotFoundError(group_id)
        groups.append(group)
    return groups


def _patch_model() -> None:
    # An ENI's groups are its own (moto: union with the instance's groups).
    NetworkInterface.group_set = property(lambda self: list(self._group_set))  # type: ignore[assignment]

    # The instance's groups are its primary ENI's groups.
    def get_groups(self: Any) -> list[Any]:
        nics = self.__dict__.get("nics")
        if nics and 0 in nics:
            return nics[0]._group_set
        return self.__dict__.get("_emu_security_groups", [])

    def set_groups(self: Any, groups: list[Any]) -> None:
        self.__dict__["_emu_security_groups"] = list(groups)
        nics = self.__dict__.get("nics")
        if nics and 0 in nics:
            nics[0]._group_set = list(groups)

    Instance.security_groups = property(get_groups, set_groups)  # type: ignore[assignment]


def _patch_writes() -> None:
    before_mia = InstanceBackend.modify_instance_security_groups  # ec2_patch's fixed version

    def modify_instance_security_groups(self: Any, instance_id: str, new_group_id_list: list[str]) -> Any:
        instance = self.get_instance(instance_id)
        if len(instance.nics) > 1:
            raise EC2ClientError(
                "InvalidInstanceID",
                f"There are multiple interfaces attached to instance '{instance_id}'. "
                "Please specify an interface ID for the operation instead.",
            )
        if SETTINGS.strict_group_writes:
            group_writes.check_ec2(self, new_group_id_list, instance.vpc_id, "instance")
        return before_mia(self, instance_id, new_group_id_list)

    InstanceBackend.modify_instance_security_groups = modify_instance_security_groups

    def modify_network_interface_attribute(
        self: Any, eni_id: str, group_ids: list[str], source_dest_check: bool | None = None,
        description: str | None = None,
    ) -> None:
        eni = self.get_network_interface(eni_id)
        if group_ids:
            if SETTINGS.strict_group_writes:
                group_writes.check_ec2(self, group_ids, eni.vpc_id, "interface")
            groups = _groups_of(self, group_ids)
            eni._group_set = groups
            if eni.instance is not None and eni.device_index == 0:
                eni.instance.security_groups = groups  # the instance's groups are the primary ENI's
        if source_dest_check in [True, False]:
            eni.source_dest_check = source_dest_check
        if description:
            eni.description = description

    NetworkInterfaceBackend.modify_network_interface_attribute = modify_network_interface_attribute


# --------------------------------------------------------------------------
# trunk ENIs
# --------------------------------------------------------------------------
def find_instance(instance_id: str) -> tuple[Any, Any]:
    """(ec2 backend, instance) of an instance id in any created backend."""
    from moto.ec2.models import ec2_backends

    for regions in list(dict.values(ec2_backends)):
        for backend in list(dict.values(regions)):
            instance = backend.get_instance_by_id(instance_id)
            if instance is not None:
                return backend, instance
    raise ValueError(f"no instance {instance_id}")


def describe_eni(eni: Any) -> dict[str, Any]:
    return {"instance": eni.instance.id if eni.instance else None, "network_interface_id": eni.id,
            "device_index": eni.device_index, "interface_type": eni.interface_type,
            "subnet_id": eni.subnet.id, "groups": [g.id for g in eni._group_set]}


def add_trunk_eni(instance_id: str, groups: list[str] | None = None) -> dict[str, Any]:
    """Attach a ``trunk`` ENI (device index 1, or the next free one) to the
    instance, in its primary ENI's subnet, with ``groups`` (default: a copy of
    the primary ENI's groups; from then on the two lists are independent).
    An instance that already has a trunk ENI keeps it (returned as is).
    Call with state.LOCK held."""
    backend, instance = find_instance(instance_id)
    for eni in instance.nics.values():
        if eni.interface_type == "trunk":
            return describe_eni(eni)
    primary = instance.nics.get(0)
    if primary is None:
        raise ValueError(f"{instance_id} has no primary network interface")
    if groups is not None:
        if not isinstance(groups, list) or not groups or not all(isinstance(g, str) for g in groups):
            raise ValueError("groups must be a non-empty list of security group ids")
        for group in _groups_of_or_value_error(backend, groups):
            if group.vpc_id != primary.vpc_id:
                raise ValueError(f"{group.id} is not in {primary.vpc_id}")
    group_ids = groups or [g.id for g in primary._group_set]
    eni = backend.create_network_interface(primary.subnet, None, group_ids=group_ids,
                                           description=TRUNK_DESCRIPTION, delete_on_termination=True)
    eni.interface_type = "trunk"
    index = 1
    while index in instance.nics:
        index += 1
    instance.attach_eni(eni, index)
    return describe_eni(eni)


def _groups_of_or_value_error(backend: Any, group_ids: list[str]) -> list[Any]:
    try:
        return _groups_of(backend, group_ids)
    except InvalidSecurityGroupNotFoundError as exc:
        raise ValueError(str(exc.message)) from None


def trunk_all_container_instances() -> list[dict[str, Any]]:
    """``trunk_enis`` switched on: every container instance's EC2 instance
    gets a trunk ENI (LOCK held)."""
    from moto.ecs.models import ecs_backends

    added = []
    for regions in list(dict.values(ecs_backends)):
        for backend in list(dict.values(regions)):
            for instances in backend.container_instances.values():
                for ci in instances.values():
                    try:
                        added.append(add_trunk_eni(ci.ec2_instance_id))
                    except ValueError:
                        pass  # not a (running) EC2 instance of this emulator
    return added


def _patch_registration() -> None:
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.register_container_instance

    def register_container_instance(self: Any, cluster_str: str, ec2_instance_id: str) -> Any:
        ci = original(self, cluster_str, ec2_instance_id)
        if SETTINGS.trunk_enis:
            try:
                add_trunk_eni(ec2_instance_id)
            except ValueError:
                pass
        return ci

    EC2ContainerServiceBackend.register_container_instance = register_container_instance


def apply() -> None:
    """After ec2_patch.apply() (wraps its ModifyInstanceAttribute fix)."""
    global _applied
    if _applied:
        return
    _applied = True
    _patch_model()
    _patch_writes()
    _patch_registration()
