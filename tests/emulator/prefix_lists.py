"""Managed prefix lists as security-group rule sources (switch ``prefix_lists``).

Owns the AWS-managed prefix lists' weights and the checks of ``PrefixListIds``
in AuthorizeSecurityGroupIngress/Egress.  README: "Real-EC2 networking".

Already in moto (always, switch or not): every region has the AWS-managed
lists com.amazonaws.<region>.s3, …dynamodb, com.amazonaws.global.cloudfront.
origin-facing, …groundstation, …vpc-lattice (IPv4/IPv6), owner ``AWS``, with
a few real-looking entries; DescribeManagedPrefixLists /
GetManagedPrefixListEntries / CreateManagedPrefixList work; a rule with
PrefixListIds is stored, shown with ``PrefixListId`` in
DescribeSecurityGroupRules and under IpPermissions[].PrefixListIds, and
revoked by id or by IpPermissions.  But the AWS lists have no MaxEntries /
Version, any ``pl-…`` id is accepted, and the entry's Description is dropped.

Switched on:

* AWS-managed lists report ``MaxEntries`` = their documented weight
  (CloudFront origin-facing 55, S3 1, DynamoDB 1, Ground Station 5, VPC
  Lattice 10, ...) and ``Version`` 1 (switching off restores moto's view).
* An unknown (or deleted) prefix list id: InvalidPrefixListID.NotFound
  "The prefix list ID 'pl-…' does not exist", nothing changes.
* A PrefixListIds entry's ``Description`` is kept on the rule
  (DescribeSecurityGroupRules ``Description``).
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.managed_prefixes import ManagedPrefixListBackend
from moto.ec2.models.security_groups import SecurityGroupBackend

from state import SETTINGS

# https://docs.aws.amazon.com/vpc/latest/userguide/working-with-aws-managed-prefix-lists.html
# ("AWS-managed prefix list weight"): name suffix -> weight.
WEIGHTS = {
    "cloudfront.origin-facing": 55,
    ".dynamodb": 1,
    "ec2-instance-connect": 2,
    "groundstation": 5,
    "route53-healthchecks": 25,
    ".s3express": 6,
    ".s3": 1,
    "vpc-lattice": 10,
}
_applied = False


def aws_weight(name: str | None) -> int:
    for suffix, weight in WEIGHTS.items():
        if name and name.endswith(suffix):
            return weight
    return 1


def weight_of(pl: Any) -> int:
    """How many rules a reference to this list counts as: an AWS-managed
    list's weight, a customer-managed list's MaxEntries."""
    if pl.owner_id == "AWS":
        return aws_weight(pl.prefix_list_name)
    try:
        return max(1, int(pl.max_entries))
    except (TypeError, ValueError):
        return 1


def _show(pl: Any) -> None:
    if pl.owner_id != "AWS":
        return
    if SETTINGS.prefix_lists:
        pl.max_entries, pl.version = aws_weight(pl.prefix_list_name), 1
    else:
        pl.max_entries, pl.version = None, None


def refresh() -> None:
    """Apply the switch to every existing backend's AWS-managed lists (LOCK held)."""
    from moto.ec2.models import ec2_backends

    for regions in list(dict.values(ec2_backends)):
        for backend in list(dict.values(regions)):
            for pl in backend.managed_prefix_lists.values():
                _show(pl)


def _check(backend: Any, prefix_list_ids: list[dict[str, str]] | None) -> None:
    for item in prefix_list_ids or []:
        pl_id = item.get("PrefixListId")
        pl = backend.managed_prefix_lists.get(pl_id)
        if pl is None or pl.state == "delete-complete":
            raise EC2ClientError("InvalidPrefixListID.NotFound", f"The prefix list ID '{pl_id}' does not exist")


def _patch() -> None:
    create_aws = ManagedPrefixListBackend._create_aws_managed_prefix_list

    def _create_aws_managed_prefix_list(self: Any, name: str, address_family: str, entries: Any) -> None:
        create_aws(self, name, address_family, entries)
        if SETTINGS.prefix_lists:
            for pl in self.managed_prefix_lists.values():
                _show(pl)

    ManagedPrefixListBackend._create_aws_managed_prefix_list = _create_aws_managed_prefix_list

    def wrap(name: str) -> None:
        original = getattr(SecurityGroupBackend, name)

        def authorize(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not SETTINGS.prefix_lists:
                return original(self, *args, **kwargs)
            prefix_list_ids = kwargs.get("prefix_list_ids")
            _check(self, prefix_list_ids)
            rules, group = original(self, *args, **kwargs)
            described = {i.get("PrefixListId"): i.get("Description") for i in prefix_list_ids or []}
            for rule in rules:
                if rule.prefix_list_id and described.get(rule.prefix_list_id):
                    rule.ip_range = {"Description": described[rule.prefix_list_id]}
            return rules, group

        setattr(SecurityGroupBackend, name, authorize)

    wrap("authorize_security_group_ingress")
    wrap("authorize_security_group_egress")


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch()
