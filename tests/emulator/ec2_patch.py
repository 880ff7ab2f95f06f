"""EC2 fixes on top of moto 5.2.1: security-group rules and instance groups.

What moto already does right (verified, left alone): DescribeSecurityGroups
filters (group-name, vpc-id, group-id), rule tags (TagSpecifications with
ResourceType=security-group-rule on AuthorizeSecurityGroupIngress are stored
and returned as ``Tags``), InvalidPermission.Duplicate and
InvalidPermission.NotFound, revoke by SecurityGroupRuleIds or IpPermissions,
DescribeInstances with InstanceIds / instance-id filter.

Gaps fixed here:

* DescribeSecurityGroupRules ignores MaxResults/NextToken (never paginates).
  Now paginated (MaxResults 5..1000, as AWS validates).
* Authorize/RevokeSecurityGroupIngress/Egress with several IpPermissions:
  moto returns only the *last* permission's rules in ``SecurityGroupRules``
  and is not atomic (rules before a duplicate stay added, rules before a
  missing one stay revoked).  Now all created rules are returned and a
  failing call leaves the group unchanged, as in AWS.
* ModifyInstanceAttribute Groups=[...] updates the instance's groups but not
  its primary network interface's (DescribeInstances
  NetworkInterfaces[].Groups kept the removed group), accepts unknown group
  ids (stored as None) and an empty list.  Fixed.

* DescribeSecurityGroupRules leaves out ``GroupOwnerId`` (the account that
  owns the rule's group; the API reference's SecurityGroupRule lists it), so
  a referenced group's ``ReferencedGroupInfo.UserId`` cannot be told apart
  from another account's.  Now returned.

Performance (no behaviour change): ``get_instance_by_id`` shallow-copied
every reservation on each lookup (``all_reservations``); with a few hundred
instances that made every target registration and every DescribeTargetHealth
entry cost ~0.3 ms.  It now scans the reservations without copying them.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidSecurityGroupNotFoundError
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses.security_groups import SecurityGroups

from paging import BadToken, paginate

_applied = False


def _patch_rule_pagination() -> None:
    def describe_security_group_rules(self: Any) -> ActionResult:
        self.error_on_dryrun()
        sg_rule_ids = self._get_param("SecurityGroupRuleIds", [])
        filters = self._filters_from_querystring()
        max_results = self._get_param("MaxResults")
        if max_results is not None:
            max_results = int(max_results)
            if not 5 <= max_results <= 1000:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Value ( {max_results} ) for parameter maxResults is invalid. "
                    "Expecting a value between 5 and 1000.",
                )
        rules = self.ec2_backend.describe_security_group_rules(sg_rule_ids, filters)
        try:
            page, token = paginate(rules, max_results, self._get_param("NextToken"), 1000)
        except BadToken:
            raise EC2ClientError("InvalidPaginationToken", "The specified pagination token is not valid.") from None
        result: dict[str, Any] = {"SecurityGroupRules": page}
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    SecurityGroups.describe_security_group_rules = describe_security_group_rules


def _patch_rule_owner() -> None:
    from moto.ec2.models.security_groups import SecurityGroupRule

    SecurityGroupRule.group_owner_id = property(lambda self: self.ec2_backend.account_id)


def _find_group(resp: Any) -> Any:
    name_or_id = resp._get_param("GroupId") or resp._get_param("GroupName")
    if not name_or_id:
        return None
    return resp.ec2_backend.get_security_group_by_name_or_id(name_or_id)


def _atomic(resp: Any, body: Any) -> Any:
    """Run ``body()``; on any error restore the group's rule lists."""
    group = _find_group(resp)
    saved = (list(group.ingress_rules), list(group.egress_rules)) if group is not None else None
    try:
        return body()
    except Exception:
        if group is not None and saved is not None:
            group.ingress_rules, group.egress_rules = saved
        raise


def _patch_rule_changes() -> None:
    def make_authorize(backend_method: str) -> Any:
        def authorize(self: Any) -> ActionResult:
            self.error_on_dryrun()

            def body() -> ActionResult:
                created: list[Any] = []
                for kwargs in self._process_rules_from_querystring():
                    rules, _ = getattr(self.ec2_backend, backend_method)(**kwargs)
                    created.extend(rules)
                return ActionResult({"Return": True, "SecurityGroupRules": created})

            return _atomic(self, body)

        return authorize

    def make_revoke(backend_method: str) -> Any:
        def revoke(self: Any) -> ActionResult:
            self.error_on_dryrun()

            def body() -> ActionResult:
                for args in self._process_rules_from_querystring():
                    del args["sgrule_tags"]
                    getattr(self.ec2_backend, backend_method)(**args)
                return ActionResult({"Return": True})

            return _atomic(self, body)

        return revoke

    SecurityGroups.authorize_security_group_ingress = make_authorize("authorize_security_group_ingress")
    SecurityGroups.authorize_security_group_egress = make_authorize("authorize_security_group_egress")
    SecurityGroups.revoke_security_group_ingress = make_revoke("revoke_security_group_ingress")
    SecurityGroups.revoke_security_group_egress = make_revoke("revoke_security_group_egress")


def _patch_instance_groups() -> None:
    def modify_instance_security_groups(self: Any, instance_id: str, new_group_id_list: list[str]) -> Any:
        instance = self.get_instance(instance_id)
        if not new_group_id_list:
            raise EC2ClientError("InvalidParameterValue", "Value () for parameter groupId is invalid. The value cannot be empty")
        groups = []
        for group_id in new_group_id_list:
            group = self.get_security_group_from_id(group_id)
            if group is None:
                raise InvalidSecurityGroupNotFoundError(group_id)
            groups.append(group)
        instance.security_groups = groups
        primary = instance.nics.get(0)
        if primary is not None:
            primary._group_set = list(groups)
        return instance

    InstanceBackend.modify_instance_security_groups = modify_instance_security_groups


def _patch_instance_lookup() -> None:
    def get_instance_by_id(self: Any, instance_id: str) -> Any:
        for reservation in self.reservations.values():
            for instance in reservation.instances:
                if instance.id == instance_id:
                    return instance
        return None

    InstanceBackend.get_instance_by_id = get_instance_by_id


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    _patch_rule_pagination()
    _patch_rule_owner()
    _patch_rule_changes()
    _patch_instance_groups()
    _patch_instance_lookup()
