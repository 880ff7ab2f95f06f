"""Security-group references to another account's group (switch ``cross_account_groups``).

Owns UserIdGroupPairs whose ``UserId`` is not this account (123456789012).
README: "Real-EC2 networking".

Off (default): moto looks every GroupId up in this account and answers
InvalidGroup.NotFound for a group of another account.

On: a pair ``{"GroupId": "sg-…", "UserId": "<other account>"}`` is accepted
as AWS does for a group in a peered VPC or a shared VPC of that account (the
emulator cannot see the other account, so it does not check that the group
exists there).  The rule's ``ReferencedGroupInfo`` is ``{GroupId, UserId}``
with that account; DescribeSecurityGroups shows it under
IpPermissions[].UserIdGroupPairs; revoking by rule id, or by IpPermissions
with the same GroupId and UserId, works.  A pair with this account's UserId
(or none) is checked as before.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.security_groups import SecurityGroupBackend

from state import SETTINGS

_applied = False


def _patch() -> None:
    original = SecurityGroupBackend._add_source_group

    def _add_source_group(self: Any, source_groups: list[dict[str, Any]] | None, vpc_id: str | None) -> list[Any]:
        if not SETTINGS.cross_account_groups:
            return original(self, source_groups, vpc_id)
        out: list[dict[str, Any]] = []
        for item in source_groups or []:
            user = item.get("UserId")
            if user and user != self.account_id and "GroupId" in item:
                item.setdefault("OwnerId", user)
                out.append(item)
            else:
                out.extend(original(self, [item], vpc_id))
        return out

    SecurityGroupBackend._add_source_group = _add_source_group


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
