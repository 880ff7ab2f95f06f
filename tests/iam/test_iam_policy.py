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

# The only write statement without a tag condition: ModifyInstanceAttribute
# names every group the instance will have (its own ones included, which
# ecs-reconciler does not manage), and IAM checks each of them.
UNTAGGED_WRITE_STATEMENTS = {"NameGroupsInAnInterfaceAttachment"}


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


def test_write_statements_are_scoped_by_arn_and_tag():
    for statement in json.loads(POLICY.read_text())["Statement"]:
        if statement["Sid"] == "Observe":
            continue
        assert statement["Effect"] == "Allow"
        resource = statement["Resource"]
        assert resource != "*" and resource.startswith("arn:aws:"), statement["Sid"]
        if statement["Sid"] in UNTAGGED_WRITE_STATEMENTS:
            continue
        condition = statement.get("Condition", {}).get("StringEquals", {})
        tag_keys = {k for k in condition if k.startswith(("aws:ResourceTag/", "aws:RequestTag/"))}
        assert tag_keys, f"{statement['Sid']}: no tag condition"
        assert all(condition[k] == "ecs-reconciler" for k in tag_keys), statement["Sid"]
