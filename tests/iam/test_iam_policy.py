"""deploy/iam-policy.json against what the controller really called.

The end-to-end suite (cargo test --test e2e) starts every emulator with
--calls-log into $ECS_RECONCILER_CALLS_DIR; the emulator tells the
controller's calls (the Rust SDK) from the tests' own (boto3). This test
reads those logs after the suite: every action the controller called is in
the policy (none missing) and every action in the policy was called (none
extra). scripts/test.sh runs it right after cargo test.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
POLICY = REPO / "deploy" / "iam-policy.json"
READONLY = REPO / "deploy" / "iam-plan-readonly.json"

# Authorization-only actions: no API call of their own, required by a call's
# parameters. AuthorizeSecurityGroupIngress tags the rule it creates
# (TagSpecifications), which IAM checks as ec2:CreateTags.
IMPLIED = {"ec2:AuthorizeSecurityGroupIngress": {"ec2:CreateTags"}}
# Batch calls IAM authorizes as their single action (SQS developer guide,
# "Amazon SQS API permissions": DeleteMessageBatch needs sqs:DeleteMessage).
AUTHORIZED_AS = {"sqs:DeleteMessageBatch": "sqs:DeleteMessage"}
# Statements on one named resource the operator deploys for the daemon
# alone (deploy/events/template.yaml's queue): scoped by its name.
SCOPED_BY_NAME = {"ReadTheEventsQueue": "arn:aws:sqs:*:*:ecs-reconciler-events"}

# Write statements scoped by something other than the managed-by tag,
# because what they touch may carry no tag: services with short ARNs cannot
# be tagged, and instances an Auto Scaling group or capacity provider
# launches carry only the tags it propagates. Each is scoped as narrowly as
# IAM's condition keys allow for that action, and docs/operations.md says
# why ("IAM: statements wider than the seed's names").
SCOPED_WITHOUT_TAG = {
    "ScaleServicesOfDeclaredClusters": ("ArnLike", "ecs:cluster"),
    "AttachGroupsWithinTheClusterVpc": ("ArnLikeIfExists", "ec2:Vpc"),
}
OPERATIONS = REPO / "docs" / "operations.md"


def iam_name(service: str, operation: str) -> str:
    prefix = "elasticloadbalancing" if service == "elbv2" else service
    return f"{prefix}:{operation}"


def actions(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def policy_actions(path: pathlib.Path) -> set[str]:
    return set().union(*(actions(s) for s in json.loads(path.read_text())["Statement"]))


def called_by_controller() -> tuple[set[str], int]:
    directory = os.environ.get("ECS_RECONCILER_CALLS_DIR")
    if not directory:
        pytest.fail("ECS_RECONCILER_CALLS_DIR is not set: run scripts/test.sh (it runs the e2e suite first)")
    logs = sorted(pathlib.Path(directory).glob("*.jsonl"))
    if not logs:
        pytest.fail(f"no call logs in {directory}: the e2e suite did not run")
    called: set[str] = set()
    lines = 0
    for log in logs:
        for line in log.read_text().splitlines():
            if not line.strip():
                continue
            call = json.loads(line)
            lines += 1
            if call["client"] != "reconciler":
                continue
            name = iam_name(call["service"], call["operation"])
            name = AUTHORIZED_AS.get(name, name)
            called.add(name)
            called |= IMPLIED.get(name, set())
    return called, lines


def test_policy_lists_exactly_the_actions_the_controller_called():
    called, lines = called_by_controller()
    allowed = policy_actions(POLICY)
    missing = sorted(called - allowed)
    extra = sorted(allowed - called)
    assert not missing and not extra, (
        f"from {lines} logged calls: missing from the policy {missing}, never called {extra}"
    )


def test_the_read_only_policy_is_the_observe_statement():
    statements = {s["Sid"]: s for s in json.loads(POLICY.read_text())["Statement"]}
    assert actions(statements["Observe"]) == policy_actions(READONLY)
    assert statements["Observe"]["Resource"] == "*"  # Describe*/List* take no resource


def resources(statement: dict) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def test_write_statements_are_scoped_by_arn_and_by_tag_cluster_or_vpc():
    for statement in json.loads(POLICY.read_text())["Statement"]:
        sid = statement["Sid"]
        if sid == "Observe":
            continue
        assert all(r != "*" and r.startswith("arn:aws:") for r in resources(statement)), sid
        conditions = statement.get("Condition", {})
        if statement["Effect"] == "Deny":
            # The guard: rules change only in groups tagged as managed.
            assert conditions == {"StringNotEquals": {"aws:ResourceTag/managed-by": "ecs-reconciler"}}, sid
            continue
        assert statement["Effect"] == "Allow", sid
        if sid in SCOPED_BY_NAME:
            assert resources(statement) == [SCOPED_BY_NAME[sid]], sid
            continue
        if sid in SCOPED_WITHOUT_TAG:
            operator, key = SCOPED_WITHOUT_TAG[sid]
            assert key in conditions.get(operator, {}), f"{sid}: not scoped by {key}"
            assert sid in OPERATIONS.read_text(), f"{sid}: docs/operations.md does not say why it is wider"
            continue
        condition = conditions.get("StringEquals", {})
        tag_keys = {k for k in condition if k.startswith(("aws:ResourceTag/", "aws:RequestTag/"))}
        assert tag_keys, f"{sid}: no tag condition"
        assert all(condition[k] == "ecs-reconciler" for k in tag_keys), sid


def test_untagged_groups_are_denied_rule_changes_whatever_else_allows_them():
    statements = json.loads(POLICY.read_text())["Statement"]
    guard = [s for s in statements if s["Effect"] == "Deny"]
    assert len(guard) == 1
    assert actions(guard[0]) == {"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"}
    assert resources(guard[0]) == ["arn:aws:ec2:*:*:security-group/*"]


@pytest.mark.parametrize("path", [POLICY, READONLY], ids=lambda p: p.name)
def test_parliament_finds_nothing_above_low(path: pathlib.Path):
    # parliament checks every action, resource format and condition key
    # against AWS's Service Authorization Reference tables it ships.
    from parliament import analyze_policy_string, enhance_finding

    policy = analyze_policy_string(path.read_text(), include_community_auditors=False)
    findings = [(f.issue, f.severity, f.detail) for f in map(enhance_finding, policy.findings)]
    assert all(severity == "LOW" for _, severity, _ in findings), findings
    # The one low finding: Describe/List calls that take no resource ARN.
    assert {issue for issue, _, _ in findings} <= {"RESOURCE_STAR"}, findings
