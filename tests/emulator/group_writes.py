"""Group-list writes checked like AWS (switch ``strict_group_writes``).

Owns the checks of a new security-group list for an instance
(ModifyInstanceAttribute ``Groups``), a network interface
(ModifyNetworkInterfaceAttribute ``Groups``) and an ELBv2 load balancer
(SetSecurityGroups).  Off by default: moto's checks only (unknown ids).

* More than 5 groups (the default "Security groups per network interface"
  quota): SecurityGroupsPerInstanceLimitExceeded (instance) /
  SecurityGroupsPerInterfaceLimitExceeded (network interface).
* A group of another VPC: InvalidGroup.NotFound "The security group 'sg-…'
  does not exist in VPC 'vpc-…'" (EC2); InvalidConfigurationRequest "One or
  more security groups are invalid" (ELBv2).
* ELBv2 SetSecurityGroups with more than 5 groups (the "Security groups per
  load balancer" quota): InvalidConfigurationRequest.

Nothing changes when a check fails.  README: "Real-EC2 networking".
"""

from __future__ import annotations

from typing import Any

from moto.elbv2.exceptions import ELBClientError as RESTError
from moto.ec2.exceptions import EC2ClientError

from state import SETTINGS

GROUPS_PER_INTERFACE = 5
# Elastic Load Balancing quotas: "Security groups per load balancer" 5.
GROUPS_PER_LOAD_BALANCER = 5
_applied = False


def check_ec2(backend: Any, group_ids: list[str], vpc_id: str | None, holder: str) -> None:
    """Raise AWS's error for a group list of an instance/interface in vpc_id.
    Unknown ids are left to the caller (InvalidGroup.NotFound)."""
    if len(group_ids) > GROUPS_PER_INTERFACE:
        if holder == "instance":
            raise EC2ClientError("SecurityGroupsPerInstanceLimitExceeded",
                                 "The maximum number of security groups per instance has been reached.")
        raise EC2ClientError("SecurityGroupsPerInterfaceLimitExceeded",
                             "The maximum number of security groups per interface has been reached.")
    for group_id in group_ids:
        group = backend.get_security_group_from_id(group_id)
        if group is not None and vpc_id is not None and group.vpc_id != vpc_id:
            raise EC2ClientError("InvalidGroup.NotFound",
                                 f"The security group '{group_id}' does not exist in VPC '{vpc_id}'")


def _patch_elbv2() -> None:
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.set_security_groups

    def set_security_groups(self: Any, arn: str, sec_groups: list[str]) -> None:
        if SETTINGS.strict_group_writes:
            balancer = self.load_balancers.get(arn)
            if balancer is not None and len(sec_groups) > GROUPS_PER_LOAD_BALANCER:
                raise RESTError("InvalidConfigurationRequest",
                                f"The requested configuration is not valid: at most {GROUPS_PER_LOAD_BALANCER} security groups per load balancer")
            if balancer is not None:
                for group_id in sec_groups:
                    group = self.ec2_backend.get_security_group_from_id(group_id)
                    if group is not None and group.vpc_id != balancer.vpc_id:
                        raise RESTError("InvalidConfigurationRequest", "One or more security groups are invalid")
        return original(self, arn, sec_groups)

    ELBv2Backend.set_security_groups = set_security_groups


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch_elbv2()
