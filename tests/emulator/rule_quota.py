"""The rules-per-security-group quota, counted as AWS does (switch ``rule_quota``).

Owns the count of a group's rules per direction and address family and the
RulesPerSecurityGroupLimitExceeded check of AuthorizeSecurityGroupIngress /
Egress.  README: "Real-EC2 networking".

Off (``null``, the default): moto's own check (60 rules per direction,
counting CIDR ranges and group pairs of the call, both address families
together, prefix lists not at all).

``rule_quota: N``: an authorize that would leave a direction (inbound or
outbound) of the group with more than N rules in an address family whose
count it raised fails with RulesPerSecurityGroupLimitExceeded "The maximum
number of rules per security group has been reached." and changes nothing.
Counting (Amazon VPC User Guide, "Security group size"): a CIDR rule counts
1 in its family; a referenced group counts 1 (whatever its size; counted in
both IPv4 and IPv6, as the page does not say which); a prefix list counts
its MaxEntries (customer-managed) or its weight (AWS-managed: CloudFront
origin-facing 55) in the list's family.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import RulesPerSecurityGroupLimitExceededError
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.responses.security_groups import SecurityGroups

import ec2_patch
import prefix_lists
from state import SETTINGS

_applied = False


def counts(backend: Any, rules: list[Any]) -> dict[str, int]:
    out = {"IPv4": 0, "IPv6": 0}
    for rule in rules:
        if rule.prefix_list_id:
            pl = backend.managed_prefix_lists.get(rule.prefix_list_id)
            family = (pl.address_family if pl is not None else None) or "IPv4"
            out[family if family in out else "IPv4"] += prefix_lists.weight_of(pl) if pl is not None else 1
        elif rule.source_group:
            out["IPv4"] += 1
            out["IPv6"] += 1
        elif rule.cidr_ipv6:
            out["IPv6"] += 1
        else:
            out["IPv4"] += 1
    return out


def _patch() -> None:
    moto_check = SecurityGroupBackend._verify_group_will_respect_rule_count_limit

    def _verify_group_will_respect_rule_count_limit(self: Any, *args: Any, **kwargs: Any) -> None:
        if SETTINGS.rule_quota is None:
            moto_check(self, *args, **kwargs)

    SecurityGroupBackend._verify_group_will_respect_rule_count_limit = _verify_group_will_respect_rule_count_limit

    def wrap(name: str, egress: bool) -> None:
        inner = getattr(SecurityGroups, name)  # ec2_patch's atomic version

        def authorize(self: Any) -> Any:
            quota = SETTINGS.rule_quota
            group = ec2_patch._find_group(self) if quota is not None else None
            if group is None:
                return inner(self)
            saved = (list(group.ingress_rules), list(group.egress_rules))
            before = counts(self.ec2_backend, group.egress_rules if egress else group.ingress_rules)
            out = inner(self)
            after = counts(self.ec2_backend, group.egress_rules if egress else group.ingress_rules)
            if any(after[f] > quota and after[f] > before[f] for f in after):
                group.ingress_rules, group.egress_rules = saved
                raise RulesPerSecurityGroupLimitExceededError()
            return out

        setattr(SecurityGroups, name, authorize)

    wrap("authorize_security_group_ingress", False)
    wrap("authorize_security_group_egress", True)


def apply() -> None:
    """After ec2_patch.apply()."""
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
