"""RevokeSecurityGroupIngress of rules that do not exist, as AWS answers it
in a default VPC (switch ``revoke_unknown_returns_success``).

Owns that answer.  README: "Real-EC2 networking".  The API reference
(RevokeSecurityGroupIngress): "For a default VPC, if the values you specify do
not match the existing rule's values, no error is returned, and the output
describes the security group rules that were not revoked.  For a non-default
VPC, if the values you specify do not match the existing rule's values, an
InvalidPermission.NotFound client error is returned, and no rules are
revoked."

Off (default): InvalidPermission.NotFound everywhere (and the call changes
nothing, ec2_patch.py).

On, for a group in the default VPC, revoking by IpPermissions (or the
single-rule parameters): each source of each permission (a CIDR, a group
pair, a prefix list) that matches a rule is revoked; those that match
nothing are returned in ``UnknownIpPermissions`` (one IpPermission each),
with ``Return: true``.  A group in another VPC, and revoking by
SecurityGroupRuleIds, are unchanged.  RevokeSecurityGroupEgress is unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidPermissionNotFoundError
from moto.ec2.responses.security_groups import SecurityGroups

import ec2_patch
from state import SETTINGS

_applied = False


def _in_default_vpc(backend: Any, group: Any) -> bool:
    vpc = backend.vpcs.get(group.vpc_id) if group.vpc_id else None
    return bool(vpc is not None and vpc.is_default)


def _split(args: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """One (revoke kwargs, IpPermission) per source of a permission."""
    perm: dict[str, Any] = {"IpProtocol": args["ip_protocol"]}
    for key, value in (("FromPort", args.get("from_port")), ("ToPort", args.get("to_port"))):
        if value is not None and str(value) != "":
            perm[key] = int(value)
    empty = {"ip_ranges": [], "source_groups": [], "prefix_list_ids": []}
    out = []
    for r in args.get("ip_ranges") or []:
        key = "Ipv6Ranges" if isinstance(r, dict) and "CidrIpv6" in r else "IpRanges"
        out.append(({**args, **empty, "ip_ranges": [r]}, {**perm, key: [r]}))
    for g in args.get("source_groups") or []:
        pair = {k: g[k] for k in ("GroupId", "UserId", "GroupName") if k in g}
        out.append(({**args, **empty, "source_groups": [copy.deepcopy(g)]}, {**perm, "UserIdGroupPairs": [pair]}))
    for p in args.get("prefix_list_ids") or []:
        out.append(({**args, **empty, "prefix_list_ids": [p]},
                    {**perm, "PrefixListIds": [{"PrefixListId": p.get("PrefixListId")}]}))
    return out or [(args, perm)]


def _patch() -> None:
    inner = SecurityGroups.revoke_security_group_ingress  # ec2_patch's atomic version

    def revoke_security_group_ingress(self: Any) -> ActionResult:
        if not SETTINGS.revoke_unknown_returns_success or self._get_param("SecurityGroupRuleIds"):
            return inner(self)
        group = ec2_patch._find_group(self)
        if group is None or not _in_default_vpc(self.ec2_backend, group):
            return inner(self)
        self.error_on_dryrun()

        def body() -> ActionResult:
            unknown: list[dict[str, Any]] = []
            for args in self._process_rules_from_querystring():
                del args["sgrule_tags"]
                for single, perm in _split(args):
                    try:
                        self.ec2_backend.revoke_security_group_ingress(**single)
                    except InvalidPermissionNotFoundError:
                        unknown.append(perm)
            result: dict[str, Any] = {"Return": True}
            if unknown:
                result["UnknownIpPermissions"] = unknown
            return ActionResult(result)

        return ec2_patch._atomic(self, body)

    SecurityGroups.revoke_security_group_ingress = revoke_security_group_ingress


def apply() -> None:
    """After ec2_patch.apply()."""
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
