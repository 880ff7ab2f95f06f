"""Self-test of the emulator's EventBridge events (events.py): CloudTrail
and ECS task events in AWS's shape, routed by the rules of
deploy/events/template.yaml to its SQS queue, with the delivery knobs, and
SQS long polling that does not hold the emulator's lock.

Run:  "$(scripts/emulator-python)" -m pytest tests/emulator -q
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from test_emulator import CLUSTER, SERVICE, Emu, start_emulator, stop_emulator, wait_until

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "events" / "template.yaml"
CONSOLE_KEY = "AKIACONSOLEADMIN"
CONSOLE_ARN = "arn:aws:iam::123456789012:user/console-admin"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("events")
    proc, endpoint = start_emulator(workdir, "--seed", "--scheduler-delay", "0.2")
    try:
        e = Emu(endpoint, proc, workdir)
        doc = e.control("POST", "events", {
            "enabled": True, "delay": 0.3,
            "identities": {CONSOLE_KEY: {"arn": CONSOLE_ARN, "source_ip": "203.0.113.7"}},
            "stack": {"template": str(TEMPLATE),
                      "parameters": {"ClusterArns": f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}"}},
        })
        e.queue_url = doc["queue_url"]
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30)
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_secret_access_key="x", config=cfg)
        e.sqs = boto3.client("sqs", aws_access_key_id="test", **kw)
        e.console_ec2 = boto3.client("ec2", aws_access_key_id=CONSOLE_KEY, **kw)
        yield e
    finally:
        stop_emulator(proc)


def drain(emu: Any, seconds: float = 3.0, until: Any = None) -> list[dict[str, Any]]:
    """Every message that arrives within ``seconds`` (or until ``until`` holds), deleted."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        wait = max(0, min(2, int(deadline - time.monotonic())))
        out = emu.sqs.receive_message(QueueUrl=emu.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        for m in out.get("Messages", []):
            got.append(json.loads(m["Body"]))
            emu.sqs.delete_message(QueueUrl=emu.queue_url, ReceiptHandle=m["ReceiptHandle"])
        if until is not None and until(got):
            break
    return got


def settings(emu: Any, **knobs: Any) -> dict[str, Any]:
    return emu.control("POST", "events", knobs)


def test_a_rule_change_arrives_as_cloudtrail_records_it(emu: Any) -> None:
    drain(emu, 1)
    group = emu.seed["security_groups"]["LoadBalancerGroup"]
    perms = [{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]}]
    out = emu.console_ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=perms)
    calls = [e for e in drain(emu, 5, lambda g: any(e["detail-type"].startswith("AWS API") for e in g))
             if e["detail-type"] == "AWS API Call via CloudTrail"]
    assert len(calls) == 1, calls
    event = calls[0]
    assert event["source"] == "aws.ec2" and event["account"] == "123456789012" and event["region"] == "us-east-1"
    assert event["time"].endswith("Z") and event["version"] == "0" and event["resources"] == []
    detail = event["detail"]
    assert detail["eventSource"] == "ec2.amazonaws.com" and detail["eventName"] == "AuthorizeSecurityGroupIngress"
    assert detail["userIdentity"]["arn"] == CONSOLE_ARN and detail["userIdentity"]["type"] == "IAMUser"
    assert detail["sourceIPAddress"] == "203.0.113.7"
    assert detail["requestID"] == out["ResponseMetadata"]["RequestId"], "the id the caller got"
    assert detail["requestParameters"] == {
        "groupId": group,
        "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 2222, "toPort": 2222,
                                     "ipRanges": {"items": [{"cidrIp": "198.51.100.0/24"}]}}]},
    }
    assert "errorCode" not in detail and detail["eventType"] == "AwsApiCall"
    emu.console_ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=perms)
    drain(emu, 1.5)


def test_failed_calls_are_recorded_but_the_shipped_rules_do_not_deliver_them(emu: Any) -> None:
    drain(emu, 1)
    before = emu.control("GET", "events")["counts"]["published"]
    with pytest.raises(botocore.exceptions.ClientError):
        emu.console_ec2.authorize_security_group_ingress(
            GroupId="sg-0000000000000dead",
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    assert emu.control("GET", "events")["counts"]["published"] == before + 1
    assert not [e for e in drain(emu, 1.5) if e["detail-type"] == "AWS API Call via CloudTrail"]


def test_task_state_changes_carry_status_group_bindings_and_a_growing_version(emu: Any) -> None:
    drain(emu, 1)
    emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    got = drain(emu, 8, lambda g: any(e["detail-type"] == "ECS Task State Change" for e in g))
    tasks = [e for e in got if e["detail-type"] == "ECS Task State Change"]
    assert tasks, got
    detail = tasks[0]["detail"]
    assert detail["clusterArn"].endswith(f":cluster/{CLUSTER}")
    assert detail["group"] == f"service:{SERVICE}"
    assert detail["lastStatus"] == "RUNNING" and detail["desiredStatus"] == "RUNNING"
    assert detail["containers"][0]["networkBindings"][0]["containerPort"] == 3000
    assert tasks[0]["resources"] == [detail["taskArn"]]
    # UpdateService itself is a CloudTrail record (no ECS event says it).
    assert any(e["detail"].get("eventName") == "UpdateService" for e in got)
    # Stopping it: the same task's events, version growing.
    emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
    got = drain(emu, 8, lambda g: any(e["detail"].get("lastStatus") == "STOPPED" for e in g))
    stopped = [e["detail"] for e in got if e["detail"].get("lastStatus") == "STOPPED"]
    assert stopped, got
    assert stopped[0]["version"] > 1
    emu.wait_steady(2)
    drain(emu, 1.5)


def test_duplicate_drop_and_reorder_knobs(emu: Any) -> None:
    drain(emu, 1)
    group = emu.seed["security_groups"]["EC2InstanceWithLoadBalancer"]
    perms = [{"IpProtocol": "tcp", "FromPort": 7000, "ToPort": 7000, "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}]
    try:
        settings(emu, duplicate=1.0)
        emu.console_ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=perms)
        got = [e for e in drain(emu, 4, lambda g: len(g) >= 2) if e["detail-type"].startswith("AWS API")]
        assert len(got) == 2 and got[0]["id"] == got[1]["id"], "at-least-once: the same event twice"
        settings(emu, duplicate=0.0, drop=1.0)
        emu.console_ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=perms)
        assert not [e for e in drain(emu, 2) if e["detail-type"].startswith("AWS API")]
        assert emu.control("GET", "events")["counts"]["dropped"] >= 1
        settings(emu, drop=0.0, reorder=1.0, reorder_seconds=3.0, seed=7)
        for port in (7001, 7002, 7003, 7004):
            p = [{**perms[0], "FromPort": port, "ToPort": port}]
            emu.console_ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=p)
        got = [e for e in drain(emu, 8, lambda g: len(g) >= 4) if e["detail-type"].startswith("AWS API")]
        ports = [e["detail"]["requestParameters"]["ipPermissions"]["items"][0]["fromPort"] for e in got]
        assert sorted(ports) == [7001, 7002, 7003, 7004]
        assert ports != sorted(ports), f"held back events arrive after later ones: {ports}"
    finally:
        settings(emu, duplicate=0.0, drop=0.0, reorder=0.0)
        for port in (7001, 7002, 7003, 7004):
            try:
                emu.console_ec2.revoke_security_group_ingress(
                    GroupId=group, IpPermissions=[{**perms[0], "FromPort": port, "ToPort": port}])
            except botocore.exceptions.ClientError:
                pass
        drain(emu, 2)


def test_long_poll_waits_without_blocking_other_calls_and_wakes_on_delivery(emu: Any) -> None:
    drain(emu, 1)
    started = time.monotonic()
    out = emu.sqs.receive_message(QueueUrl=emu.queue_url, WaitTimeSeconds=2)
    assert not out.get("Messages") and time.monotonic() - started >= 1.8, "an empty queue waits the long poll"

    result: dict[str, Any] = {}

    def poll() -> None:
        t0 = time.monotonic()
        result["out"] = emu.sqs.receive_message(QueueUrl=emu.queue_url, WaitTimeSeconds=10)
        result["seconds"] = time.monotonic() - t0

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    emu.ec2.describe_security_groups()
    assert time.monotonic() - t0 < 2, "other calls go on while a receive waits"
    group = emu.seed["security_groups"]["LoadBalancerGroup"]
    perms = [{"IpProtocol": "tcp", "FromPort": 2223, "ToPort": 2223, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]}]
    emu.console_ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=perms)
    waiter.join(15)
    assert result["out"].get("Messages"), result
    assert result["seconds"] < 5, f"woke at delivery, not after the whole wait: {result['seconds']:.1f}s"
    for m in result["out"]["Messages"]:
        emu.sqs.delete_message(QueueUrl=emu.queue_url, ReceiptHandle=m["ReceiptHandle"])
    emu.console_ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=perms)
    drain(emu, 1.5)


def test_unknown_settings_are_refused(emu: Any) -> None:
    with pytest.raises(Exception) as err:
        emu.control("POST", "events", {"delay": -1})
    assert "400" in str(err.value)
    wait_until(lambda: emu.control("GET", "events")["enabled"], 1, "still enabled")
