"""Self-test of the emulator: starts emulator.py as a subprocess (with --seed)
and checks every gap fix and control-API feature through boto3 over HTTP.

Run:  "$(scripts/emulator-python)" -m pytest tests/emulator -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
EMULATOR = HERE / "emulator.py"
AWSCTL = HERE / "awsctl.py"
CLUSTER, SERVICE, TG_NAME, ALB_NAME = "nestjs-cluster", "nestjs-api", "nestjs-api-tg", "nestjs-api-alb"
DELAY = 0.2
DRAINING = 3


# ----------------------------------------------------------------------------
# harness
# ----------------------------------------------------------------------------
def wait_until(fn: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


def start_emulator(tmp: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port_file = tmp / "port"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    proc = subprocess.Popen(
        [sys.executable, str(EMULATOR), "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    deadline = time.monotonic() + 40
    while not port_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"emulator exited {proc.returncode}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            stop_emulator(proc)
            raise RuntimeError("emulator did not write its port file in time")
        time.sleep(0.05)
    port = int(port_file.read_text().strip())
    line = proc.stdout.readline().strip()
    assert line == f"emulator listening on http://127.0.0.1:{port}", line
    return proc, f"http://127.0.0.1:{port}"


def stop_emulator(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            return proc.wait(timeout=10)
    return proc.returncode


RUST_USER_AGENT = "aws-sdk-rust/1.3.0 os/linux lang/rust/1.90.0"  # what the controller's SDK sends


class Emu:
    def __init__(self, endpoint: str, proc: subprocess.Popen | None = None, workdir: Path | None = None) -> None:
        self.endpoint = endpoint
        self.proc, self.workdir = proc, workdir
        self.calls_log: Path | None = None
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=20, connect_timeout=5)
        kw = dict(endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test", config=cfg)
        self.ec2 = boto3.client("ec2", **kw)
        self.elbv2 = boto3.client("elbv2", **kw)
        self.ecs = boto3.client("ecs", **kw)
        self.seed: dict[str, Any] = self.control("GET", "seed")
        self.tg_arn = self.seed["target_group_arn"]

    def rust_client(self, service: str) -> Any:
        """A boto3 client whose User-Agent says aws-sdk-rust: the emulator
        attributes its calls to the reconciler."""
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, user_agent_extra=RUST_USER_AGENT)
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test", config=cfg)

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.endpoint}/_emulator/{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    # ---- views ----
    def tasks(self, desired: str = "RUNNING") -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus=desired)["taskArns"]
        if not arns:
            return []
        return self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]

    def ci_instances(self) -> dict[str, str]:
        arns = self.ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
        cis = self.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"]
        return {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in cis}

    def task_targets(self, tasks: list[dict[str, Any]]) -> set[tuple[str, int]]:
        ci = self.ci_instances()
        return {
            (ci[t["containerInstanceArn"]], b["hostPort"])
            for t in tasks for c in t["containers"] for b in c.get("networkBindings", [])
        }

    def targets(self, **kw: Any) -> dict[tuple[str, int], str]:
        descs = self.elbv2.describe_target_health(TargetGroupArn=self.tg_arn, **kw)["TargetHealthDescriptions"]
        return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in descs}

    def service(self) -> dict[str, Any]:
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def task(self, arn: str) -> dict[str, Any]:
        (task,) = self.ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
        return task

    def wait_stopped(self, arn: str, timeout: float = DELAY + 5) -> dict[str, Any]:
        """Polls until a stopping task (DEACTIVATING) has lastStatus STOPPED."""
        return wait_until(lambda: (t := self.task(arn))["lastStatus"] == "STOPPED" and t,
                          timeout, f"task {arn.split('/')[-1]} to be STOPPED")

    def steady(self, n: int) -> bool:
        tasks = self.tasks()
        if len(tasks) != n:
            return False
        svc = self.service()
        if svc["runningCount"] != n or svc["desiredCount"] != n:
            return False
        healthy = {k for k, s in self.targets().items() if s == "healthy"}
        return healthy == self.task_targets(tasks)

    def wait_steady(self, n: int, timeout: float = 10.0) -> None:
        wait_until(lambda: self.steady(n), timeout, f"{n} running tasks with matching healthy targets")


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("emu")
    calls_log = tmp_path_factory.mktemp("calls") / "calls.jsonl"
    proc, endpoint = start_emulator(
        workdir, "--seed", "--scheduler-delay", str(DELAY), "--draining-seconds", str(DRAINING),
        "--calls-log", str(calls_log),
    )
    try:
        e = Emu(endpoint, proc, workdir)
        e.calls_log = calls_log
        yield e
    finally:
        stop_emulator(proc)


def assert_deactivating(task: dict[str, Any], code: str, reason: str) -> None:
    """AWS's stopping phase for a task behind a load balancer: stop requested,
    targets draining, containers still running."""
    assert (task["lastStatus"], task["desiredStatus"]) == ("DEACTIVATING", "STOPPED"), task
    assert task["stopCode"] == code and task["stoppedReason"] == reason and "stoppingAt" in task
    assert "stoppedAt" not in task and "executionStoppedAt" not in task
    for c in task["containers"]:
        assert c["lastStatus"] == "RUNNING" and "exitCode" not in c
        assert c["networkBindings"] and all(b["hostPort"] >= 32768 for b in c["networkBindings"])


def assert_stopped(task: dict[str, Any], code: str, reason: str) -> None:
    assert (task["lastStatus"], task["desiredStatus"]) == ("STOPPED", "STOPPED"), task
    assert task["stopCode"] == code and task["stoppedReason"] == reason
    assert task["stoppingAt"] <= task["stoppedAt"] and "executionStoppedAt" in task
    assert task["connectivity"] == "DISCONNECTED"
    for c in task["containers"]:
        assert c["lastStatus"] == "STOPPED" and c["exitCode"] == 137
        assert c["networkBindings"]  # kept: they tell which target the task had


def client_error(call: Callable[[], Any]) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        call()
    return exc.value


def capture_raw(client: Any) -> list[dict[str, Any]]:
    """Record raw HTTP responses (status, headers, body) of a boto3 client."""
    seen: list[dict[str, Any]] = []

    def hook(**kw: Any) -> None:
        rd = kw["response_dict"]
        seen.append({"status": rd["status_code"], "headers": dict(rd["headers"]), "body": rd["body"].decode()})

    client.meta.events.register("before-parse.*.*", hook)
    return seen


# ----------------------------------------------------------------------------
# control API + seed
# ----------------------------------------------------------------------------
def test_health_seed_and_calls_reset(emu: Emu) -> None:
    assert emu.control("GET", "health") == {"ok": True}
    seed = emu.seed
    assert seed["region"] == "us-east-1" and len(seed["instance_ids"]) == 2
    assert len(set(seed["subnet_ids"])) == 2
    # The seed's own API calls were not counted.
    calls = emu.control("GET", "calls")
    assert calls.get("ecs:CreateService") is None


def test_seed_topology(emu: Emu) -> None:
    ec2, seed = emu.ec2, emu.seed
    vpc = seed["vpc_id"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["LoadBalancerGroup", "EC2InstanceWithLoadBalancer"]},
                 {"Name": "vpc-id", "Values": [vpc]}]
    )["SecurityGroups"]
    by_name = {g["GroupName"]: g for g in groups}
    assert set(by_name) == {"LoadBalancerGroup", "EC2InstanceWithLoadBalancer"}
    lb, inst = by_name["LoadBalancerGroup"], by_name["EC2InstanceWithLoadBalancer"]
    assert lb["IpPermissions"] == [{
        "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [],
        "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTP from anywhere"}],
        "Ipv6Ranges": [], "PrefixListIds": [],
    }]
    (perm,) = inst["IpPermissions"]
    assert (perm["FromPort"], perm["ToPort"]) == (32768, 65535)
    assert [p["GroupId"] for p in perm["UserIdGroupPairs"]] == [lb["GroupId"]]
    assert lb["IpPermissionsEgress"] and inst["IpPermissionsEgress"]  # default egress kept

    res = ec2.describe_instances(InstanceIds=seed["instance_ids"])["Reservations"]
    instances = [i for r in res for i in r["Instances"]]
    assert {i["InstanceType"] for i in instances} == {"t3.micro"}
    assert {i["SubnetId"] for i in instances} == set(seed["subnet_ids"])
    for i in instances:
        assert {g["GroupName"] for g in i["SecurityGroups"]} == {"default", "EC2InstanceWithLoadBalancer"}
    assert set(emu.ci_instances().values()) == set(seed["instance_ids"])

    alb = emu.elbv2.describe_load_balancers(Names=[ALB_NAME])["LoadBalancers"][0]
    assert alb["Scheme"] == "internet-facing" and alb["SecurityGroups"] == [lb["GroupId"]]
    assert alb["DNSName"]
    tg = emu.elbv2.describe_target_groups(Names=[TG_NAME])["TargetGroups"][0]
    assert (tg["Protocol"], tg["Port"], tg["TargetType"], tg["HealthCheckPath"]) == ("HTTP", 80, "instance", "/")
    attrs = emu.elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAINING)} in attrs
    listener = emu.elbv2.describe_listeners(LoadBalancerArn=alb["LoadBalancerArn"])["Listeners"][0]
    assert listener["Port"] == 80 and listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]

    td = emu.ecs.describe_task_definition(taskDefinition="nestjs-api")["taskDefinition"]
    (cdef,) = td["containerDefinitions"]
    assert td["networkMode"] == "bridge" and td["requiresCompatibilities"] == ["EC2"]
    assert cdef["name"] == "api" and cdef["memory"] == 512
    assert cdef["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/nestjs-api:latest"
    assert cdef["portMappings"] == [{"containerPort": 3000, "hostPort": 0, "protocol": "tcp"}]

    svc = emu.service()
    assert (svc["desiredCount"], svc["launchType"], svc["schedulingStrategy"]) == (2, "EC2", "REPLICA")
    assert svc["loadBalancers"] == [{"targetGroupArn": tg["TargetGroupArn"], "containerName": "api", "containerPort": 3000}]
    emu.wait_steady(2)


# ----------------------------------------------------------------------------
# ECS
# ----------------------------------------------------------------------------
def test_task_shape_and_consistency(emu: Emu) -> None:
    emu.wait_steady(2)
    ci_map = emu.ci_instances()
    raw = capture_raw(emu.ecs)
    for _ in range(3):  # moto's ManagedState used to advance lastStatus on every describe
        tasks = emu.tasks()
    assert [t["lastStatus"] for t in tasks] == ["RUNNING", "RUNNING"]
    for t in tasks:
        assert t["desiredStatus"] == "RUNNING" and t["group"] == "service:nestjs-api"
        assert t["startedBy"] == emu.service()["deployments"][0]["id"]
        assert t["containerInstanceArn"] in ci_map
        assert t["launchType"] == "EC2" and "startedAt" in t and "createdAt" in t
        assert "stoppedReason" not in t
        (c,) = t["containers"]
        assert c["taskArn"] == t["taskArn"] and c["lastStatus"] == "RUNNING" and c["name"] == "api"
        assert c["containerArn"].startswith("arn:aws:ecs:us-east-1:123456789012:container/nestjs-cluster/")
        assert c["memory"] == "512" and isinstance(c["cpu"], str)
        (b,) = c["networkBindings"]
        assert b["bindIP"] == "0.0.0.0" and b["containerPort"] == 3000 and b["protocol"] == "tcp"
        assert 32768 <= b["hostPort"] <= 65535
    # spread over both container instances
    assert len({t["containerInstanceArn"] for t in tasks}) == 2
    body = next(json.loads(r["body"]) for r in reversed(raw) if r["body"].startswith('{"tasks"'))
    assert body["tasks"][0]["containers"][0]["networkBindings"][0]["hostPort"] >= 32768
    # DescribeTasks reports unknown tasks as failures
    out = emu.ecs.describe_tasks(cluster=CLUSTER, tasks=[tasks[0]["taskArn"], "0000-missing"])
    assert len(out["tasks"]) == 1 and out["failures"][0]["reason"] == "MISSING"
    # container instance counters derive from real tasks
    cis = emu.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=list(ci_map))["containerInstances"]
    assert sorted(ci["runningTasksCount"] for ci in cis) == [1, 1]
    assert {ci["ec2InstanceId"] for ci in cis} == set(emu.seed["instance_ids"])
    cluster = emu.ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]
    assert cluster["runningTasksCount"] == 2 and cluster["activeServicesCount"] == 1


def test_list_tasks_filters_and_pagination(emu: Emu) -> None:
    emu.wait_steady(2)
    pages = list(emu.ecs.get_paginator("list_tasks").paginate(
        cluster=CLUSTER, serviceName=SERVICE, PaginationConfig={"PageSize": 1}))
    assert [len(p["taskArns"]) for p in pages] == [1, 1]
    assert "nextToken" in pages[0] and "nextToken" not in pages[1]
    assert len(emu.ecs.list_tasks(cluster=CLUSTER)["taskArns"]) == 2
    err = client_error(lambda: emu.ecs.list_tasks(cluster=CLUSTER, serviceName="no-such-service"))
    assert err.response["Error"]["Code"] == "ServiceNotFoundException"
    err = client_error(lambda: emu.ecs.list_tasks(cluster="no-such-cluster"))
    assert err.response["Error"]["Code"] == "ClusterNotFoundException"
    ci_pages = list(emu.ecs.get_paginator("list_container_instances").paginate(
        cluster=CLUSTER, PaginationConfig={"PageSize": 1}))
    assert sum(len(p["containerInstanceArns"]) for p in ci_pages) == 2 and len(ci_pages) == 2


def test_describe_services_limits(emu: Emu) -> None:
    names = [SERVICE] + [f"missing-{i}" for i in range(9)]
    out = emu.ecs.describe_services(cluster=CLUSTER, services=names)
    assert len(out["services"]) == 1 and len(out["failures"]) == 9
    err = client_error(lambda: emu.ecs.describe_services(cluster=CLUSTER, services=names + ["one-too-many"]))
    assert err.response["Error"]["Code"] == "InvalidParameterException"


def test_create_service_keeps_deployment_configuration(emu: Emu) -> None:
    # Its own cluster and no tasks, so the seed cluster's counters stay as they are.
    emu.ecs.create_cluster(clusterName="deploy-config")
    plain = emu.ecs.create_service(cluster="deploy-config", serviceName="plain", taskDefinition="nestjs-api",
                                   desiredCount=0)["service"]
    assert plain["deploymentConfiguration"]["maximumPercent"] == 200
    assert plain["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    emu.ecs.create_service(cluster="deploy-config", serviceName="single", taskDefinition="nestjs-api", desiredCount=0,
                           deploymentConfiguration={"minimumHealthyPercent": 0, "maximumPercent": 100})
    described = emu.ecs.describe_services(cluster="deploy-config", services=["single"])["services"][0]
    config = described["deploymentConfiguration"]
    assert config["minimumHealthyPercent"] == 0 and config["maximumPercent"] == 100
    assert config["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}


def test_scale_up_and_down(emu: Emu) -> None:
    emu.wait_steady(2)
    emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    emu.wait_steady(3)
    tasks = emu.tasks()
    per_ci: dict[str, list[int]] = {}
    for t in tasks:
        per_ci.setdefault(t["containerInstanceArn"], []).extend(
            b["hostPort"] for c in t["containers"] for b in c["networkBindings"])
    assert sorted(len(v) for v in per_ci.values()) == [1, 2]
    assert all(len(set(v)) == len(v) for v in per_ci.values())  # unique per instance

    before = emu.task_targets(tasks)
    arns = {t["taskArn"] for t in tasks}
    # A longer delay keeps the scale-in victims DEACTIVATING long enough to be
    # seen reliably (the scheduler stops them on its own tick).
    emu.control("POST", "scheduler", {"delay": 1.0})
    try:
        emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
        victims = wait_until(lambda: [t for t in emu.tasks("STOPPED") if t["taskArn"] in arns],
                             10, "the scheduler to stop the excess tasks")
        # every victim is first DEACTIVATING: stopping, its target draining
        assert len(victims) == 2
        states = emu.targets()
        reason = victims[0]["stoppedReason"]
        assert reason.startswith("Scaling activity initiated by (deployment ecs-svc/")
        for t in victims:
            assert_deactivating(t, "ServiceSchedulerInitiated", reason)
            assert all(states.get(k) == "draining" for k in emu.task_targets([t])), states
        emu.wait_steady(1)
        assert emu.service()["runningCount"] == 1
    finally:
        emu.control("POST", "scheduler", {"delay": DELAY})
    # ... then STOPPED, with the stop fields filled in
    for t in victims:
        assert_stopped(emu.wait_stopped(t["taskArn"], 1.0 + 5), "ServiceSchedulerInitiated", reason)
    remaining = emu.task_targets(emu.tasks())
    states = emu.targets()
    assert before - remaining == emu.task_targets(victims)
    for key in before - remaining:
        assert states.get(key, "draining") == "draining", (key, states)  # or already gone
    # draining targets disappear after deregistration_delay.timeout_seconds
    wait_until(lambda: set(emu.targets()) == remaining, DRAINING + 5, "draining targets to disappear")
    emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
    emu.wait_steady(2)


def test_stop_task_is_replaced_and_deregistered(emu: Emu) -> None:
    emu.wait_steady(2)
    victim = emu.tasks()[0]
    victim_target = emu.task_targets([victim]).pop()
    out = emu.ecs.stop_task(cluster=CLUSTER, task=victim["taskArn"], reason="test stop")["task"]
    # behind the target group: DEACTIVATING first (the response is rendered
    # under the same lock as the stop, so this is not racy)
    assert_deactivating(out, "UserInitiated", "test stop")
    assert emu.targets()[victim_target] == "draining"
    # stopping it again (stopping or stopped) is a no-op, unknown tasks are an error
    again = emu.ecs.stop_task(cluster=CLUSTER, task=victim["taskArn"], reason="again")["task"]
    assert again["lastStatus"] in ("DEACTIVATING", "STOPPED") and again["stoppedReason"] == "test stop"
    assert_stopped(emu.wait_stopped(victim["taskArn"]), "UserInitiated", "test stop")
    assert emu.ecs.stop_task(cluster=CLUSTER, task=victim["taskArn"])["task"]["lastStatus"] == "STOPPED"
    err = client_error(lambda: emu.ecs.stop_task(cluster=CLUSTER, task="00000000-0000-0000-0000-000000000000"))
    assert err.response["Error"]["Code"] == "InvalidParameterException"
    emu.wait_steady(2)
    assert victim["taskArn"] not in {t["taskArn"] for t in emu.tasks()}
    assert victim_target not in emu.task_targets(emu.tasks())  # ports are not reused right away


def test_stop_task_deactivating_then_stopped(emu: Emu) -> None:
    """The AWS-like stop of a task behind a load balancer, step by step.

    The paused scheduler holds the task in DEACTIVATING (its tick is what
    moves it on), so every check in that phase is deterministic."""
    emu.wait_steady(2)
    ci_arns = list(emu.ci_instances())

    def ci_view() -> tuple[int, int]:
        cis = emu.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=ci_arns)["containerInstances"]
        free = sum(r["integerValue"] for ci in cis for r in ci["remainingResources"] if r["name"] == "MEMORY")
        return sum(ci["runningTasksCount"] for ci in cis), free

    victim, survivor = emu.tasks()
    target = emu.task_targets([victim]).pop()
    arn = victim["taskArn"]
    emu.control("POST", "scheduler", {"paused": True})
    try:
        out = emu.ecs.stop_task(cluster=CLUSTER, task=arn)["task"]
        assert_deactivating(out, "UserInitiated", "Task stopped by user")
        _, free_after_stop = ci_view()
        # DEACTIVATING: described without errors, bindings unchanged, target draining
        raw = capture_raw(emu.ecs)
        desc = emu.ecs.describe_tasks(cluster=CLUSTER, tasks=[arn, survivor["taskArn"]])
        assert json.loads(raw[-1]["body"])["failures"] == [] and len(desc["tasks"]) == 2
        task = next(t for t in desc["tasks"] if t["taskArn"] == arn)
        assert_deactivating(task, "UserInitiated", "Task stopped by user")
        assert task["containers"][0]["networkBindings"] == victim["containers"][0]["networkBindings"]
        assert emu.targets()[target] == "draining"
        # listed as desiredStatus STOPPED only, and not counted as running
        assert arn in emu.ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
        assert arn not in emu.ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
        assert arn not in emu.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]
        svc = emu.service()
        assert (svc["runningCount"], svc["pendingCount"], svc["deployments"][0]["runningCount"]) == (1, 0, 1)
        assert emu.ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]["runningTasksCount"] == 1
        assert ci_view() == (1, free_after_stop)
        # a second StopTask while stopping changes nothing (no double free of
        # the instance's resources, no new reason)
        again = emu.ecs.stop_task(cluster=CLUSTER, task=arn, reason="again")["task"]
        assert_deactivating(again, "UserInitiated", "Task stopped by user")
        assert ci_view() == (1, free_after_stop)
        # it stays DEACTIVATING while the scheduler is paused, past its delay
        time.sleep(DELAY * 2)
        assert emu.task(arn)["lastStatus"] == "DEACTIVATING"
    finally:
        emu.control("POST", "scheduler", {"paused": False})
    # the next tick stops it: STOPPED with the stop fields, target still gone
    task = emu.wait_stopped(arn)
    assert_stopped(task, "UserInitiated", "Task stopped by user")
    assert task["stoppingAt"] == out["stoppingAt"]
    assert task["stoppedAt"] > out["stoppingAt"]
    assert task["containers"][0]["networkBindings"] == victim["containers"][0]["networkBindings"]
    assert emu.targets().get(target, "draining") == "draining"  # never healthy again
    assert arn in emu.ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    emu.wait_steady(2)

    # with delay 0, a task behind the target group stops at once
    emu.control("POST", "scheduler", {"delay": 0})
    try:
        victim = emu.tasks()[0]
        out = emu.ecs.stop_task(cluster=CLUSTER, task=victim["taskArn"], reason="instant")["task"]
        assert_stopped(out, "UserInitiated", "instant")
        assert emu.targets()[emu.task_targets([victim]).pop()] == "draining"
        emu.wait_steady(2)
    finally:
        emu.control("POST", "scheduler", {"delay": DELAY})

    # a task without targets (RunTask, no service) stops at once too
    (plain,) = emu.ecs.run_task(cluster=CLUSTER, taskDefinition="nestjs-api", launchType="EC2")["tasks"]
    out = emu.ecs.stop_task(cluster=CLUSTER, task=plain["taskArn"], reason="plain")["task"]
    assert_stopped(out, "UserInitiated", "plain")
    emu.wait_steady(2)


def test_stop_task_leaving_stale_target(emu: Emu) -> None:
    emu.wait_steady(2)
    settings = emu.control("POST", "scheduler", {"deregister_on_stop": False, "for_next": 1})
    assert settings["skip_deregister_next"] == 1 and settings["deregister_on_stop"] is True
    victim = emu.tasks()[0]
    stale = emu.task_targets([victim]).pop()
    out = emu.ecs.stop_task(cluster=CLUSTER, task=victim["taskArn"])["task"]
    assert emu.control("GET", "scheduler")["skip_deregister_next"] == 0
    # still stopped the AWS way (DEACTIVATING, then STOPPED), but the target
    # stays registered throughout - also after the task is STOPPED
    assert_deactivating(out, "UserInitiated", "Task stopped by user")
    assert emu.targets()[stale] == "healthy"
    assert_stopped(emu.wait_stopped(victim["taskArn"]), "UserInitiated", "Task stopped by user")
    assert emu.targets()[stale] == "healthy"
    # replacement appears; the stale target is still registered next to it
    wait_until(lambda: len(emu.tasks()) == 2 and len(emu.targets()) == 3, 10, "replacement task")
    live = emu.task_targets(emu.tasks())
    assert stale not in live and emu.targets()[stale] == "healthy"
    assert {k for k, s in emu.targets().items() if s == "healthy"} == live | {stale}
    # opt-in realism: a target no task backs reports unhealthy
    emu.control("POST", "scheduler", {"unbacked_targets_unhealthy": True})
    assert emu.targets()[stale] == "unhealthy"
    emu.control("POST", "scheduler", {"unbacked_targets_unhealthy": False})
    # the switch was for one stop only: the next stop deregisters again
    emu.elbv2.deregister_targets(TargetGroupArn=emu.tg_arn, Targets=[{"Id": stale[0], "Port": stale[1]}])
    emu.wait_steady(2)


def test_scheduler_pause_and_delay(emu: Emu) -> None:
    emu.wait_steady(2)
    emu.control("POST", "scheduler", {"paused": True})
    try:
        emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
        time.sleep(DELAY * 3)
        assert len(emu.tasks()) == 2 and emu.service()["runningCount"] == 2
        primary = emu.service()["deployments"][0]
        assert (primary["desiredCount"], primary["runningCount"]) == (3, 2)
    finally:
        emu.control("POST", "scheduler", {"paused": False})
    emu.wait_steady(3)
    three = {t["taskArn"] for t in emu.tasks()}
    emu.control("POST", "scheduler", {"delay": 1.5})
    try:
        t0 = time.monotonic()
        emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
        time.sleep(0.3)
        assert len(emu.tasks()) == 3  # not yet: the delay is 1.5 s
        emu.wait_steady(2)
        assert time.monotonic() - t0 >= 1.4
        (victim,) = three - {t["taskArn"] for t in emu.tasks()}
    finally:
        emu.control("POST", "scheduler", {"delay": DELAY})
    # the delay in force at the stop is also how long the task was DEACTIVATING
    stopped = emu.wait_stopped(victim, 1.5 + 5)
    assert (stopped["stoppedAt"] - stopped["stoppingAt"]).total_seconds() >= 1.45
    bad = urllib.request.Request(f"{emu.endpoint}/_emulator/scheduler", data=b'{"nope": 1}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(bad, timeout=5)
    assert exc.value.code == 400


# ----------------------------------------------------------------------------
# ELBv2
# ----------------------------------------------------------------------------
def test_targets_keyed_by_instance_and_port(emu: Emu) -> None:
    emu.wait_steady(2)
    iid = emu.seed["instance_ids"][0]
    a, b = {"Id": iid, "Port": 40000}, {"Id": iid, "Port": 40001}
    emu.elbv2.register_targets(TargetGroupArn=emu.tg_arn, Targets=[a, b])
    states = emu.targets()
    assert states[(iid, 40000)] in ("initial", "healthy") and states[(iid, 40001)] in ("initial", "healthy")
    wait_until(lambda: emu.targets(Targets=[a, b]) == {(iid, 40000): "healthy", (iid, 40001): "healthy"},
               DELAY + 3, "both ports healthy")
    emu.elbv2.deregister_targets(TargetGroupArn=emu.tg_arn, Targets=[a])
    descs = emu.elbv2.describe_target_health(TargetGroupArn=emu.tg_arn, Targets=[a, b])["TargetHealthDescriptions"]
    by_port = {d["Target"]["Port"]: d for d in descs}
    assert by_port[40000]["TargetHealth"] == {
        "State": "draining", "Reason": "Target.DeregistrationInProgress",
        "Description": "Target deregistration is in progress"}
    assert by_port[40001]["TargetHealth"]["State"] == "healthy"
    assert by_port[40001]["HealthCheckPort"] == "40001"
    # not registered at all -> unused; port defaults to the group's port
    unused = emu.elbv2.describe_target_health(TargetGroupArn=emu.tg_arn, Targets=[{"Id": iid}])
    (d,) = unused["TargetHealthDescriptions"]
    assert d["Target"] == {"Id": iid, "Port": 80} and d["TargetHealth"]["Reason"] == "Target.NotRegistered"
    # deregistering something not registered is a no-op; bogus instances are rejected
    emu.elbv2.deregister_targets(TargetGroupArn=emu.tg_arn, Targets=[{"Id": iid, "Port": 41000}])
    err = client_error(lambda: emu.elbv2.register_targets(
        TargetGroupArn=emu.tg_arn, Targets=[{"Id": "i-0123456789abcdef0", "Port": 1}]))
    assert err.response["Error"]["Code"] == "InvalidTarget"
    emu.elbv2.deregister_targets(TargetGroupArn=emu.tg_arn, Targets=[b])
    wait_until(lambda: (iid, 40000) not in emu.targets() and (iid, 40001) not in emu.targets(),
               DRAINING + 5, "manual targets to finish draining")


def test_load_balancer_and_target_group_ops(emu: Emu) -> None:
    seed = emu.seed
    lb_sg = seed["security_groups"]["LoadBalancerGroup"]
    alb_arn = seed["load_balancer_arn"]
    emu.elbv2.set_security_groups(LoadBalancerArn=alb_arn, SecurityGroups=[lb_sg, seed["default_security_group_id"]])
    alb = emu.elbv2.describe_load_balancers(Names=[ALB_NAME])["LoadBalancers"][0]
    assert alb["SecurityGroups"] == [lb_sg, seed["default_security_group_id"]]
    emu.elbv2.set_security_groups(LoadBalancerArn=alb_arn, SecurityGroups=[lb_sg])
    out = emu.elbv2.modify_target_group(TargetGroupArn=emu.tg_arn, HealthCheckPath="/health")
    assert out["TargetGroups"][0]["HealthCheckPath"] == "/health"
    assert emu.elbv2.describe_target_groups(Names=[TG_NAME])["TargetGroups"][0]["HealthCheckPath"] == "/health"
    emu.elbv2.modify_target_group(TargetGroupArn=emu.tg_arn, HealthCheckPath="/")


def test_target_groups_are_paged(emu: Emu) -> None:
    vpc = emu.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    extra = [emu.elbv2.create_target_group(Name=f"paging-tg-{i}", Protocol="HTTP", Port=80, VpcId=vpc)
             ["TargetGroups"][0]["TargetGroupArn"] for i in range(3)]
    try:
        everything = [tg["TargetGroupName"] for tg in emu.elbv2.describe_target_groups()["TargetGroups"]]
        assert len(everything) >= 4
        pages = list(emu.elbv2.get_paginator("describe_target_groups").paginate(PaginationConfig={"PageSize": 2}))
        assert len(pages) == (len(everything) + 1) // 2
        assert all(len(p["TargetGroups"]) <= 2 for p in pages)
        assert [tg["TargetGroupName"] for p in pages for tg in p["TargetGroups"]] == everything
        assert "NextMarker" not in pages[-1]
        with pytest.raises(botocore.exceptions.ClientError):
            emu.elbv2.describe_target_groups(PageSize=401)
    finally:
        for arn in extra:
            emu.elbv2.delete_target_group(TargetGroupArn=arn)


# ----------------------------------------------------------------------------
# EC2
# ----------------------------------------------------------------------------
def test_security_group_rules(emu: Emu) -> None:
    ec2, seed = emu.ec2, emu.seed
    lb_sg = seed["security_groups"]["LoadBalancerGroup"]
    inst_sg = seed["security_groups"]["EC2InstanceWithLoadBalancer"]
    out = ec2.authorize_security_group_ingress(
        GroupId=lb_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS"}],
             "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "HTTPS v6"}]},
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": inst_sg}]},
        ],
        TagSpecifications=[{"ResourceType": "security-group-rule",
                            "Tags": [{"Key": "managed-by", "Value": "ecs-reconciler"}]}],
    )
    rules = out["SecurityGroupRules"]
    assert len(rules) == 3  # moto returned only the last permission's rules
    for r in rules:
        assert r["SecurityGroupRuleId"].startswith("sgr-") and r["GroupId"] == lb_sg and r["IsEgress"] is False
        assert r["Tags"] == [{"Key": "managed-by", "Value": "ecs-reconciler"}]
    by_port = {(r["FromPort"], r.get("CidrIpv4"), r.get("CidrIpv6")): r for r in rules}
    assert by_port[(443, "0.0.0.0/0", None)]["Description"] == "HTTPS"
    assert by_port[(443, None, "::/0")]["Description"] == "HTTPS v6"
    assert by_port[(8080, None, None)]["ReferencedGroupInfo"]["GroupId"] == inst_sg
    new_ids = [r["SecurityGroupRuleId"] for r in rules]

    described = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [lb_sg, inst_sg]}])
    by_id = {r["SecurityGroupRuleId"]: r for r in described["SecurityGroupRules"]}
    assert set(new_ids) <= set(by_id)
    assert {r["GroupId"] for r in by_id.values()} == {lb_sg, inst_sg}
    assert {r["GroupOwnerId"] for r in by_id.values()} == {"123456789012"}
    assert by_id[new_ids[0]]["Tags"] == [{"Key": "managed-by", "Value": "ecs-reconciler"}]
    seeded = by_id[seed["security_group_rule_ids"]["LoadBalancerGroup"]]
    assert (seeded["IpProtocol"], seeded["FromPort"], seeded["ToPort"], seeded["CidrIpv4"], seeded["Description"]) == (
        "tcp", 80, 80, "0.0.0.0/0", "HTTP from anywhere")
    assert seeded["Tags"] == []

    # duplicate -> InvalidPermission.Duplicate, and the call is atomic
    dup = [{"IpProtocol": "tcp", "FromPort": 9000, "ToPort": 9000, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
           {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    err = client_error(lambda: ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=dup))
    assert err.response["Error"]["Code"] == "InvalidPermission.Duplicate"
    ports = {r["FromPort"] for r in ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [lb_sg]}])["SecurityGroupRules"]}
    assert 9000 not in ports

    # revoke by ids, by IpPermissions; missing -> InvalidPermission.NotFound
    ec2.revoke_security_group_ingress(GroupId=lb_sg, SecurityGroupRuleIds=new_ids[:2])
    ec2.revoke_security_group_ingress(GroupId=lb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": inst_sg}]}])
    err = client_error(lambda: ec2.revoke_security_group_ingress(GroupId=lb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": inst_sg}]}]))
    assert err.response["Error"]["Code"] == "InvalidPermission.NotFound"
    err = client_error(lambda: ec2.revoke_security_group_ingress(GroupId=lb_sg, SecurityGroupRuleIds=["sgr-0000000000000000"]))
    assert err.response["Error"]["Code"] == "InvalidPermission.NotFound"
    lb = ec2.describe_security_groups(GroupIds=[lb_sg])["SecurityGroups"][0]
    assert [(p["FromPort"], p["IpRanges"]) for p in lb["IpPermissions"]] == [
        (80, [{"CidrIp": "0.0.0.0/0", "Description": "HTTP from anywhere"}])]
    by_gid = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [inst_sg]}])["SecurityGroups"]
    assert [g["GroupName"] for g in by_gid] == ["EC2InstanceWithLoadBalancer"]


def test_security_group_rule_pagination(emu: Emu) -> None:
    ec2, inst_sg = emu.ec2, emu.seed["security_groups"]["EC2InstanceWithLoadBalancer"]
    perms = [{"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}
             for p in range(1000, 1007)]
    added = ec2.authorize_security_group_ingress(GroupId=inst_sg, IpPermissions=perms)["SecurityGroupRules"]
    try:
        filters = [{"Name": "group-id", "Values": [inst_sg, emu.seed["security_groups"]["LoadBalancerGroup"]]}]
        total = len(ec2.describe_security_group_rules(Filters=filters)["SecurityGroupRules"])
        first = ec2.describe_security_group_rules(Filters=filters, MaxResults=5)
        assert len(first["SecurityGroupRules"]) == 5 and first["NextToken"]
        pages = list(ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=filters, PaginationConfig={"PageSize": 5}))
        ids = [r["SecurityGroupRuleId"] for p in pages for r in p["SecurityGroupRules"]]
        assert len(ids) == total == len(set(ids)) and len(pages) == -(-total // 5)
        unvalidated = boto3.client(
            "ec2", endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id="test",
            aws_secret_access_key="test", config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))
        err = client_error(lambda: unvalidated.describe_security_group_rules(Filters=filters, MaxResults=4))
        assert err.response["Error"]["Code"] == "InvalidParameterValue"
    finally:
        ec2.revoke_security_group_ingress(GroupId=inst_sg, SecurityGroupRuleIds=[r["SecurityGroupRuleId"] for r in added])


def test_instance_groups(emu: Emu) -> None:
    ec2, seed = emu.ec2, emu.seed
    iid, inst_sg, default_sg = (seed["instance_ids"][0], seed["security_groups"]["EC2InstanceWithLoadBalancer"],
                                seed["default_security_group_id"])
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[default_sg])
    inst = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [default_sg]
    assert [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]] == [default_sg]
    err = client_error(lambda: ec2.modify_instance_attribute(InstanceId=iid, Groups=["sg-00000000000000000"]))
    assert err.response["Error"]["Code"] == "InvalidGroup.NotFound"
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[default_sg, inst_sg])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert {g["GroupId"] for g in inst["SecurityGroups"]} == {default_sg, inst_sg}
    assert {g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]} == {default_sg, inst_sg}


# ----------------------------------------------------------------------------
# faults and call counts
# ----------------------------------------------------------------------------
def test_throttle_shapes(emu: Emu) -> None:
    emu.control("DELETE", "faults")
    try:
        emu.control("POST", "faults", {"service": "ecs", "operation": "DescribeServices", "kind": "throttle", "count": 1})
        raw = capture_raw(emu.ecs)
        err = client_error(emu.service)
        assert err.response["Error"]["Code"] == "ThrottlingException"
        assert raw[-1]["status"] == 400 and "x-amzn-requestid" in {k.lower() for k in raw[-1]["headers"]}
        assert json.loads(raw[-1]["body"]) == {"__type": "ThrottlingException", "message": "Rate exceeded"}
        emu.service()  # count=1: the next call passes

        emu.control("POST", "faults", {"service": "ec2", "operation": "DescribeInstances", "kind": "throttle", "count": 1})
        raw = capture_raw(emu.ec2)
        err = client_error(lambda: emu.ec2.describe_instances())
        assert err.response["Error"]["Code"] == "RequestLimitExceeded" and raw[-1]["status"] == 503
        assert "<Response><Errors><Error><Code>RequestLimitExceeded</Code>" in raw[-1]["body"]

        emu.control("POST", "faults", {"service": "elbv2", "operation": "DescribeTargetHealth", "kind": "throttle", "count": 1})
        raw = capture_raw(emu.elbv2)
        err = client_error(lambda: emu.targets())
        assert err.response["Error"]["Code"] == "Throttling" and raw[-1]["status"] == 400
        assert err.response["Error"]["Type"] == "Sender"
        assert raw[-1]["body"].startswith('<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">')
        assert emu.control("GET", "faults")["faults"] == []  # all expired
    finally:
        emu.control("DELETE", "faults")


def test_5xx_latency_drop_and_rate(emu: Emu) -> None:
    emu.control("DELETE", "faults")
    try:
        emu.control("POST", "faults", {"service": "ecs", "operation": "ListTasks", "kind": "5xx", "count": 1})
        err = client_error(lambda: emu.ecs.list_tasks(cluster=CLUSTER))
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        emu.control("POST", "faults", {"service": "ec2", "operation": "*", "kind": "5xx", "status": 503, "count": 1})
        err = client_error(lambda: emu.ec2.describe_security_groups())
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 503

        emu.control("POST", "faults", {"service": "*", "operation": "DescribeLoadBalancers", "kind": "latency",
                                       "latency_ms": 300, "count": 1})
        t0 = time.monotonic()
        emu.elbv2.describe_load_balancers(Names=[ALB_NAME])
        assert time.monotonic() - t0 >= 0.3

        emu.control("POST", "faults", {"service": "ecs", "operation": "ListClusters", "kind": "drop", "count": 1})
        with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError,
                            botocore.exceptions.ReadTimeoutError, botocore.exceptions.HTTPClientError)):
            emu.ecs.list_clusters()
        assert emu.ecs.list_clusters()["clusterArns"]

        emu.control("POST", "faults", {"service": "ecs", "operation": "ListClusters", "kind": "throttle", "rate": 0.0})
        for _ in range(5):
            emu.ecs.list_clusters()
        bad = urllib.request.Request(f"{emu.endpoint}/_emulator/faults", data=b'{"kind": "explode"}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(bad, timeout=5)
        assert exc.value.code == 400
    finally:
        emu.control("DELETE", "faults")


def test_faults_by_client_and_after(emu: Emu) -> None:
    emu.control("DELETE", "faults")
    try:
        # Only the controller's calls (the Rust SDK's User-Agent) fail.
        emu.control("POST", "faults", {"client": "reconciler", "service": "ecs", "operation": "ListClusters",
                                       "kind": "5xx"})
        assert emu.ecs.list_clusters()["clusterArns"]
        rust = emu.rust_client("ecs")
        err = client_error(lambda: rust.list_clusters())
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        emu.control("DELETE", "faults")

        # after: 1 lets page one through and fails page two.
        emu.control("POST", "faults", {"service": "ecs", "operation": "ListTasks", "kind": "5xx", "after": 1})
        first = emu.ecs.list_tasks(cluster=CLUSTER, maxResults=1)
        assert first["taskArns"] and first.get("nextToken")
        err = client_error(lambda: emu.ecs.list_tasks(cluster=CLUSTER, maxResults=1, nextToken=first["nextToken"]))
        assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        for bad in ({"client": "someone"}, {"after": -1}):
            req = urllib.request.Request(f"{emu.endpoint}/_emulator/faults", data=json.dumps(bad).encode(),
                                         method="POST")
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(req, timeout=5)
            assert exc.value.code == 400
    finally:
        emu.control("DELETE", "faults")


def test_call_counts(emu: Emu) -> None:
    emu.control("DELETE", "faults")
    emu.control("POST", "calls/reset", {})
    emu.service()
    emu.service()
    emu.ec2.describe_instances(InstanceIds=emu.seed["instance_ids"][:1])
    emu.targets()
    emu.control("POST", "faults", {"service": "ec2", "operation": "DescribeInstances", "kind": "throttle", "count": 1})
    client_error(lambda: emu.ec2.describe_instances())
    calls = emu.control("GET", "calls")
    assert calls["ecs:DescribeServices"] == 2
    assert calls["ec2:DescribeInstances"] == 2
    assert calls["elbv2:DescribeTargetHealth"] == 1
    assert calls["faulted"] == {"ec2:DescribeInstances": 1}
    emu.control("POST", "calls/reset", {})
    assert emu.control("GET", "calls") == {"faulted": {}}


def test_concurrent_requests(emu: Emu) -> None:
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            e = Emu(emu.endpoint)
            for _ in range(5):
                [e.service, e.tasks, e.targets, lambda: e.ec2.describe_security_groups()][i % 4]()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]


def test_connections_are_kept_alive(emu: Emu) -> None:
    """Like AWS, the emulator keeps a connection open between calls, even
    after a chunked body or an error, and closes it when the client asks."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(emu.endpoint)
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
               "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        def call(body: Any, extra: dict[str, str] | None = None, encode_chunked: bool = False) -> Any:
            conn.request("POST", "/", body=body, headers={**headers, **(extra or {})},
                         encode_chunked=encode_chunked)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Connection"), resp.read()

        status, connection, body = call(b"{}")
        assert status == 200 and connection is None and b"clusterArns" in body
        sock = conn.sock
        # A chunked body, an injected 5xx, then a normal call: all answered
        # on the same socket.
        assert call(iter([b"{", b"}"]), encode_chunked=True)[0] == 200
        emu.control("POST", "faults", {"service": "ecs", "operation": "ListClusters", "kind": "5xx", "count": 1})
        assert call(b"{}")[0] == 500
        assert call(b"{}")[0] == 200
        assert conn.sock is sock
        status, connection, _ = call(b"{}", {"Connection": "close"})
        assert status == 200 and connection == "close"
    finally:
        conn.close()
        emu.control("DELETE", "faults")


def test_kept_connections_have_nagle_off() -> None:
    """A response leaves in two writes (headers, then body); with Nagle on,
    the body would wait for the client's delayed ACK of the headers, ~40 ms
    per call on a kept-alive connection. Every accepted socket has it off."""
    import socket

    from keepalive import KeepAliveRequestHandler
    from werkzeug.serving import make_server

    seen: list[int] = []

    class Probe(KeepAliveRequestHandler):
        def handle(self) -> None:
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = make_server("127.0.0.1", 0, lambda environ, start: [], request_handler=Probe)
    serving = threading.Thread(target=server.handle_request)
    serving.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5):
            serving.join(5)
    finally:
        server.server_close()
    assert seen and seen[0] != 0


# ----------------------------------------------------------------------------
# awsctl (drift injection CLI)
# ----------------------------------------------------------------------------
def awsctl(emu: Emu, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """Run awsctl in-process (each subprocess would pay ~0.5 s of boto3 import)."""
    import awsctl as ctl

    capsys.readouterr()
    code = ctl.main(["--endpoint", emu.endpoint, *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.strip().splitlines()
    assert len(lines) == 1, out.out
    return json.loads(lines[0])


def test_awsctl_drift_commands(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    emu.wait_steady(2)
    seed = emu.seed
    # the group attribute (not --draining-seconds) decides how long targets drain
    emu.elbv2.modify_target_group_attributes(
        TargetGroupArn=emu.tg_arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "60"}])
    assert awsctl(emu, capsys, "scale", CLUSTER, SERVICE, "3")["desiredCount"] == 3
    emu.wait_steady(3)
    awsctl(emu, capsys, "scale", CLUSTER, SERVICE, "2")

    awsctl(emu, capsys, "revoke-ingress", "LoadBalancerGroup", "tcp", "80", "80", "--cidr", "0.0.0.0/0")
    awsctl(emu, capsys, "revoke-ingress", "EC2InstanceWithLoadBalancer", "tcp", "32768", "65535",
           "--source-group", "LoadBalancerGroup")
    out = awsctl(emu, capsys, "authorize-ingress", "LoadBalancerGroup", "tcp", "22", "22", "--cidr", "0.0.0.0/0",
                 "--description", "ssh drift")
    assert len(out["rule_ids"]) == 1
    out = awsctl(emu, capsys, "detach-instance-group", "EC2InstanceWithLoadBalancer", "--index", "0")
    assert out["groups"] == [seed["default_security_group_id"]]
    out = awsctl(emu, capsys, "detach-lb-group", ALB_NAME, "LoadBalancerGroup")
    assert out["security_groups"] == [seed["default_security_group_id"]]
    awsctl(emu, capsys, "set-health-check-path", TG_NAME, "/health")
    emu.wait_steady(2)
    dereg = awsctl(emu, capsys, "deregister-target", TG_NAME, "--index", "0")["deregistered"]
    reg = awsctl(emu, capsys, "register-target", TG_NAME, "1", "45000")["registered"]
    assert reg["Id"] == emu.ci_instances()[emu.ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"][1]]

    shown = awsctl(emu, capsys, "show")
    assert shown["service"] == {"desiredCount": 2, "runningCount": 2, "pendingCount": 0}
    assert len(shown["tasks"]) == 2
    assert [r["from"] for r in shown["ingress_rules"]["LoadBalancerGroup"]] == [22]
    assert "EC2InstanceWithLoadBalancer" not in shown["ingress_rules"]
    assert shown["alb_groups"] == ["default"] and shown["health_check_path"] == "/health"
    states = {(t["id"], t["port"]): t["state"] for t in shown["targets"]}
    assert states[(dereg["Id"], dereg["Port"])] == "draining"
    assert states[(reg["Id"], 45000)] in ("initial", "healthy")
    assert sorted(len(g) for g in shown["instance_groups"].values()) == [1, 2]

    # a task whose target is still healthy (the deregister-target above may
    # have hit one of them); --index follows startedAt, as awsctl does
    running = sorted(emu.tasks(), key=lambda t: (t["startedAt"], t["taskArn"]))
    states = emu.targets()
    index = next(i for i, t in enumerate(running)
                 if {states.get(k) for k in emu.task_targets([t])} == {"healthy"})
    out = awsctl(emu, capsys, "stop-task-leaving-target", CLUSTER, SERVICE, "--index", str(index))
    assert out["stopped"] == running[index]["taskArn"] and out["hostPorts"]
    stale = (emu.ci_instances()[out["containerInstanceArn"]], out["hostPorts"][0])
    task = emu.task(out["stopped"])
    assert task["desiredStatus"] == "STOPPED" and task["lastStatus"] in ("DEACTIVATING", "STOPPED")
    assert_stopped(emu.wait_stopped(out["stopped"]), "UserInitiated", "Stopped by awsctl (target left registered)")
    assert emu.targets()[stale] == "healthy"  # the stale target outlives the task
    assert out["stopped"] not in {t["taskArn"] for t in awsctl(emu, capsys, "show")["tasks"]}
    assert awsctl(emu, capsys, "faults", "add", "--service", "ecs", "--operation", "ListTasks", "--count", "1")["added"]
    assert len(awsctl(emu, capsys, "faults", "list")["faults"]) == 1
    awsctl(emu, capsys, "faults", "clear")
    assert "faulted" in awsctl(emu, capsys, "calls")
    # as a real CLI: one JSON line on stdout, exit 0; failures: message on stderr, exit 1
    proc = subprocess.run([sys.executable, str(AWSCTL), "--endpoint", emu.endpoint, "show"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) == 1
    assert json.loads(proc.stdout)["service"]["desiredCount"] == 2
    proc = subprocess.run([sys.executable, str(AWSCTL), "--endpoint", emu.endpoint, "deregister-target", TG_NAME,
                           "--index", "99"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "healthy targets" in proc.stderr and proc.stdout == ""


# ----------------------------------------------------------------------------
# call attribution, timeline, calls log
# ----------------------------------------------------------------------------
def http_error(method: str, url: str, body: Any = None) -> urllib.error.HTTPError:
    data = json.dumps(body).encode() if body is not None else None
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(url, data=data, method=method), timeout=30)
    return exc.value


def test_calls_by_client_and_timeline(emu: Emu) -> None:
    emu.control("DELETE", "faults")
    emu.control("POST", "calls/reset", {})
    assert emu.control("GET", "calls/timeline") == {"start": None, "seconds": []}
    rust_ecs, rust_ec2 = emu.rust_client("ecs"), emu.rust_client("ec2")
    t0 = time.time()
    emu.service()                                               # boto3: other
    emu.ec2.describe_instances(InstanceIds=emu.seed["instance_ids"][:1])
    rust_ecs.describe_services(cluster=CLUSTER, services=[SERVICE])  # reconciler
    rust_ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
    rust_ec2.describe_security_groups(GroupIds=[emu.seed["security_groups"]["LoadBalancerGroup"]])
    emu.control("POST", "faults", {"service": "ecs", "operation": "ListTasks", "kind": "throttle", "count": 1})
    client_error(lambda: rust_ecs.list_tasks(cluster=CLUSTER))

    total = emu.control("GET", "calls")
    assert total == {"ec2:DescribeInstances": 1, "ec2:DescribeSecurityGroups": 1, "ecs:DescribeServices": 3,
                     "ecs:ListTasks": 1, "faulted": {"ecs:ListTasks": 1}}
    assert emu.control("GET", "calls?client=reconciler") == {
        "ec2:DescribeSecurityGroups": 1, "ecs:DescribeServices": 2, "ecs:ListTasks": 1,
        "faulted": {"ecs:ListTasks": 1}}
    assert emu.control("GET", "calls?client=other") == {
        "ec2:DescribeInstances": 1, "ecs:DescribeServices": 1, "faulted": {}}
    err = http_error("GET", f"{emu.endpoint}/_emulator/calls?client=nobody")
    assert err.code == 400 and "nobody" in err.read().decode()

    timeline = emu.control("GET", "calls/timeline")
    assert t0 - 1 <= timeline["start"] <= time.time()
    seconds = timeline["seconds"]
    assert [b["t"] for b in seconds] == sorted({b["t"] for b in seconds}) and seconds[0]["t"] == 0
    assert all(set(b) == {"t", "calls", "faulted", "reconciler"} for b in seconds)
    assert sum(b["calls"] for b in seconds) == 6
    assert sum(b["reconciler"] for b in seconds) == 4
    assert sum(b["faulted"] for b in seconds) == 1
    emu.control("POST", "calls/reset", {})
    assert emu.control("GET", "calls/timeline") == {"start": None, "seconds": []}
    assert emu.control("GET", "calls?client=reconciler") == {"faulted": {}}
    emu.control("DELETE", "faults")


def test_timeline_is_bounded() -> None:
    from middleware import TIMELINE_SECONDS, CallLog

    log = CallLog()
    for second in range(TIMELINE_SECONDS + 50):
        log.record("ecs:ListTasks", second % 10 == 0, "reconciler" if second % 2 else "other", 1000.0 + second)
    timeline = log.timeline()
    assert timeline["start"] == 1000.0 and len(timeline["seconds"]) == TIMELINE_SECONDS
    assert timeline["seconds"][0]["t"] == 50 and timeline["seconds"][-1]["t"] == TIMELINE_SECONDS + 49
    assert log.snapshot()["ecs:ListTasks"] == TIMELINE_SECONDS + 50  # the counters are not bounded


def test_calls_log(emu: Emu) -> None:
    assert emu.calls_log is not None
    emu.control("DELETE", "faults")
    seen = len(emu.calls_log.read_text().splitlines())
    rust_ecs = emu.rust_client("ecs")
    emu.service()
    rust_ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
    emu.control("POST", "faults", {"service": "ec2", "operation": "DescribeInstances", "kind": "throttle", "count": 1})
    client_error(lambda: emu.ec2.describe_instances())
    client_error(lambda: rust_ecs.describe_services(cluster=CLUSTER, services=["no-such"] * 11))
    emu.control("POST", "faults", {"service": "ecs", "operation": "ListClusters", "kind": "drop", "count": 1})
    with pytest.raises(botocore.exceptions.BotoCoreError):
        rust_ecs.list_clusters()
    emu.control("POST", "calls/reset", {})  # the log is not reset

    def new_lines() -> list[dict[str, Any]]:
        lines = emu.calls_log.read_text().splitlines()[seen:]
        return [json.loads(line) for line in lines]

    entries = wait_until(lambda: (e := new_lines()) and len(e) == 5 and e, 5, "5 new log lines")
    for e in entries:
        assert set(e) == {"t", "service", "operation", "client", "faulted", "status"}
        assert isinstance(e["t"], float) and abs(e["t"] - time.time()) < 60
    assert [(e["service"], e["operation"], e["client"], e["faulted"], e["status"]) for e in entries] == [
        ("ecs", "DescribeServices", "other", False, 200),
        ("ecs", "DescribeServices", "reconciler", False, 200),
        ("ec2", "DescribeInstances", "other", True, 503),
        ("ecs", "DescribeServices", "reconciler", False, 400),  # moto's InvalidParameterException
        ("ecs", "ListClusters", "reconciler", True, None),      # dropped: no response at all
    ]
    assert [e["t"] for e in entries] == sorted(e["t"] for e in entries)
    emu.control("DELETE", "faults")


def test_scheduler_skips_work_when_nothing_changed(emu: Emu) -> None:
    # (awsctl's test above left a stale target behind: not wait_steady)
    def running(n: int) -> None:
        wait_until(lambda: len(emu.tasks()) == n and emu.service()["runningCount"] == n, 10, f"{n} tasks")

    running(2)
    emu.control("POST", "scheduler/stats", {})
    time.sleep(1.0)
    stats = emu.control("GET", "scheduler/stats")
    assert set(stats) == {"ticks", "full_passes", "mean_ms", "max_ms", "max_full_pass_ms", "last_ms",
                          "busy_fraction"}
    # reads only: no full pass but the once-a-second safety one
    assert stats["ticks"] >= 5 and stats["full_passes"] <= 2, stats
    # a change (UpdateService) is picked up by the very next tick, as before
    t0 = time.monotonic()
    emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    running(3)
    assert time.monotonic() - t0 < DELAY + 2
    emu.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
    running(2)


# ----------------------------------------------------------------------------
# generated benchmark topology (topology.py)
# ----------------------------------------------------------------------------
def test_topology_small(emu: Emu, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    import topology

    config, ids_file = tmp_path / "tiny.yaml", tmp_path / "tiny.json"
    args = ["--endpoint", emu.endpoint, "--services", "3", "--targets-per-service", "2", "--groups", "3",
            "--clusters", "2", "--services-per-alb", "2", "--prefix", "tiny",
            "--out-config", str(config), "--out-ids", str(ids_file), "--verify"]
    capsys.readouterr()
    assert topology.main(args) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["services"] == 3 and summary["tasks"] == 6 and summary["load_balancers"] == 2
    assert summary["problems"] == 0 and summary["timings"]["via"] == "control"
    ids = json.loads(ids_file.read_text())
    assert topology.verify_via_api(emu.endpoint, ids) == []
    assert set(ids["services"]) == {"tiny-svc-0000", "tiny-svc-0001", "tiny-svc-0002"}
    assert {s["cluster"] for s in ids["services"].values()} == {"tiny-cluster-000", "tiny-cluster-001"}
    assert ids["status"]["ready"] and ids["status"]["running_tasks"] == 6

    # the desired-state file says exactly that
    doc = yaml.safe_load(config.read_text())
    assert (doc["version"], doc["mode"]) == (1, "enforce")
    assert [g["name"] for g in doc["securityGroups"]] == ["tiny-sg-0000", "tiny-sg-0001", "tiny-sg-0002"]
    assert doc["securityGroups"][1]["ingress"][1] == {
        "protocol": "tcp", "ports": "32768-65535", "sourceGroup": "tiny-sg-0000",
        "description": "dynamic ports from tiny-sg-0000"}
    assert doc["clusters"] == [{"name": "tiny-cluster-000", "instanceSecurityGroups": ["tiny-sg-0000"]},
                               {"name": "tiny-cluster-001", "instanceSecurityGroups": ["tiny-sg-0001"]}]
    assert doc["services"][1] == {
        "name": "tiny-svc-0001", "cluster": "tiny-cluster-001", "replicas": 2, "launchType": "EC2",
        "schedulingStrategy": "REPLICA",
        "taskDefinition": {"family": "tiny-svc-0001", "containerName": "app", "containerPort": 8080, "hostPort": 0}}
    assert doc["targetGroups"][2] == {
        "name": "tiny-tg-0002", "targetType": "instance", "healthCheckPath": "/", "service": "tiny-svc-0002",
        "cluster": "tiny-cluster-000", "containerName": "app", "containerPort": 8080, "membership": "exclusive"}
    assert doc["loadBalancers"] == [
        {"name": n, "securityGroups": [g], "listeners": [{"port": 80, "protocol": "HTTP"}]}
        for n, g in (("tiny-alb-000", "tiny-sg-0002"), ("tiny-alb-001", "tiny-sg-0000"))]
    assert set(ids["load_balancers"]) == {"tiny-alb-000", "tiny-alb-001"}

    # control API: status, duplicates, bad parameters
    status = emu.control("GET", "topology")
    assert status["ready"] and status["params"]["prefix"] == "tiny" and status["desired_tasks"] == 6
    err = http_error("POST", f"{emu.endpoint}/_emulator/topology", ids["params"])
    assert err.code == 400 and "already exist" in err.read().decode()
    err = http_error("POST", f"{emu.endpoint}/_emulator/topology", {"services": 1, "nope": 1})
    assert err.code == 400
    # the seeded service is untouched
    assert emu.service()["runningCount"] == 2


def test_topology_in_process_matches_api_build(emu: Emu) -> None:
    """The in-process build (control API) gives the same shapes as the same
    topology created through the public API."""
    import topology

    built = {}
    for prefix, via in (("ctl", "control"), ("api", "api")):
        params = topology.Params(services=2, targets_per_service=1, groups=2, clusters=1, prefix=prefix)
        built[prefix] = topology.build(emu.endpoint, params, via=via, threads=2, wait_seconds=30)
        assert topology.verify_via_api(emu.endpoint, built[prefix]) == []

    def view(prefix: str) -> Any:
        ids = built[prefix]
        names = {v: k for k, v in ids["security_groups"].items()}
        names[ids["default_security_group_id"]] = "default"

        def norm(value: Any) -> Any:  # ids and names -> prefix-free placeholders
            text = json.dumps(value, default=str)
            for arn, name in [(v, k) for k, v in ids["target_groups"].items()] + list(names.items()):
                text = text.replace(arn, f"<{name}>")
            text = text.replace(f"{prefix}-", "P-")
            return json.loads(text)

        def gname(group_id: str) -> str:
            return names.get(group_id, group_id).replace(f"{prefix}-", "P-")

        svc = "P-svc-0000".replace("P-", f"{prefix}-")
        cluster = "P-cluster-000".replace("P-", f"{prefix}-")
        s = emu.ecs.describe_services(cluster=cluster, services=[svc])["services"][0]
        keep = ("status", "desiredCount", "runningCount", "pendingCount", "launchType", "schedulingStrategy",
                "loadBalancers", "deploymentConfiguration", "taskDefinition")
        td = emu.ecs.describe_task_definition(taskDefinition=svc)["taskDefinition"]
        tg_arn = ids["target_groups"][svc.replace("-svc-", "-tg-")]
        tg = emu.elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
        attrs = emu.elbv2.describe_target_group_attributes(TargetGroupArn=tg_arn)["Attributes"]
        lb = emu.elbv2.describe_load_balancers(Names=[f"{prefix}-alb-000"])["LoadBalancers"][0]
        listener = emu.elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
        rules = emu.elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        inst = emu.ec2.describe_instances(InstanceIds=ids["clusters"][cluster]["instance_ids"])
        (instance,) = [i for r in inst["Reservations"] for i in r["Instances"]]
        group_rules = emu.ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": list(ids["security_groups"].values())}])["SecurityGroupRules"]
        ci_arns = ids["clusters"][cluster]["container_instance_arns"]
        (ci,) = emu.ecs.describe_container_instances(cluster=cluster, containerInstances=ci_arns)["containerInstances"]
        return norm({
            "service": {k: s.get(k) for k in keep} | {"taskDefinition": s["taskDefinition"].split("/")[-1]},
            "task_definition": {k: v for k, v in td.items() if k not in ("taskDefinitionArn", "registeredAt")},
            "target_group": {k: v for k, v in tg.items() if k not in ("TargetGroupArn", "LoadBalancerArns")}
            | {"load_balancers": len(tg["LoadBalancerArns"])},
            "attributes": sorted((a["Key"], a["Value"]) for a in attrs),
            "load_balancer": {k: v for k, v in lb.items()
                              if k not in ("LoadBalancerArn", "DNSName", "CreatedTime", "AvailabilityZones")},
            "listener": {k: v for k, v in listener.items() if k not in ("ListenerArn", "LoadBalancerArn")},
            "rules": [(r["Priority"], r["Conditions"], r["Actions"], r["IsDefault"]) for r in rules],
            "instance": {k: instance.get(k) for k in ("ImageId", "InstanceType", "State", "Tags")}
            | {"groups": sorted(gname(g["GroupId"]) for g in instance["SecurityGroups"]),
               "nic_groups": sorted(gname(g["GroupId"]) for g in instance["NetworkInterfaces"][0]["Groups"])},
            "container_instance": {k: ci.get(k) for k in ("status", "registeredResources", "agentConnected")},
            "rules_of_groups": [{k: v for k, v in r.items() if k != "SecurityGroupRuleId"} for r in group_rules],
        })

    ctl, api = view("ctl"), view("api")
    for v in (ctl, api):  # ordered by the (random) ids: sort once they are placeholders
        v["rules_of_groups"] = sorted(json.dumps(r, sort_keys=True) for r in v["rules_of_groups"])
    for key in ctl:
        assert ctl[key] == api[key], key


# ----------------------------------------------------------------------------
# real-ECS behaviours (switchable, off by default); each test builds its own
# cluster/instances/target group/service ("world") so the seed stays untouched
# ----------------------------------------------------------------------------
LIFECYCLE = {"provisioning": 0.3, "pending": 0.3, "activating": 0.3, "deactivating_min": 0,
             "stopping": 0.3, "deprovisioning": 0.3}


class World:
    """A cluster of its own: EC2 instances registered as container instances,
    a target group, and a service of the seed's task definition behind it."""

    def __init__(self, emu: Emu, name: str, count: int = 2, instances: int = 2, draining: int = 1,
                 load_balancer: bool = True, **service_kw: Any) -> None:
        self.emu, self.name, self.cluster = emu, name, f"{name}-cluster"
        seed = emu.seed
        emu.ecs.create_cluster(clusterName=self.cluster)
        self.instance_ids, self.ci_arns = [], []
        for i in range(instances):
            inst = emu.ec2.run_instances(
                ImageId=seed["ami_id"], InstanceType="t3.micro", MinCount=1, MaxCount=1,
                SubnetId=seed["subnet_ids"][i % 2],
                SecurityGroupIds=[seed["security_groups"]["EC2InstanceWithLoadBalancer"]])["Instances"][0]
            doc = {"instanceId": inst["InstanceId"], "region": "us-east-1", "accountId": "123456789012",
                   "availabilityZone": inst["Placement"]["AvailabilityZone"], "instanceType": "t3.micro",
                   "imageId": seed["ami_id"]}
            ci = emu.ecs.register_container_instance(
                cluster=self.cluster, instanceIdentityDocument=json.dumps(doc))["containerInstance"]
            self.instance_ids.append(inst["InstanceId"])
            self.ci_arns.append(ci["containerInstanceArn"])
        self.tg_arn = self.make_target_group(f"{name}-tg", draining)
        self.service_name = f"{name}-svc"
        kw: dict[str, Any] = {"launchType": "EC2"}
        if load_balancer:
            kw["loadBalancers"] = [{"targetGroupArn": self.tg_arn, "containerName": "api", "containerPort": 3000}]
        kw.update(service_kw)
        if "capacityProviderStrategy" in kw:
            kw.pop("launchType")
        self.created = emu.ecs.create_service(cluster=self.cluster, serviceName=self.service_name,
                                              taskDefinition="nestjs-api", desiredCount=count, **kw)["service"]

    def make_target_group(self, name: str, draining: int) -> str:
        arn = self.emu.elbv2.create_target_group(
            Name=name, Protocol="HTTP", Port=80, VpcId=self.emu.seed["vpc_id"], TargetType="instance",
        )["TargetGroups"][0]["TargetGroupArn"]
        self.emu.elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(draining)}])
        return arn

    def tasks(self, desired: str = "RUNNING") -> list[dict[str, Any]]:
        arns = self.emu.ecs.list_tasks(cluster=self.cluster, serviceName=self.service_name,
                                       desiredStatus=desired)["taskArns"]
        if not arns:
            return []
        return self.emu.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"]

    def task(self, arn: str) -> dict[str, Any]:
        (task,) = self.emu.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"]
        return task

    def service(self) -> dict[str, Any]:
        return self.emu.ecs.describe_services(cluster=self.cluster, services=[self.service_name])["services"][0]

    def targets(self, tg_arn: str | None = None) -> dict[tuple[str, int], str]:
        descs = self.emu.elbv2.describe_target_health(TargetGroupArn=tg_arn or self.tg_arn)["TargetHealthDescriptions"]
        return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in descs}

    def task_target(self, task: dict[str, Any]) -> tuple[str, int]:
        instance = dict(zip(self.ci_arns, self.instance_ids))[task["containerInstanceArn"]]
        return instance, task["containers"][0]["networkBindings"][0]["hostPort"]

    def steady(self, n: int, tg_arn: str | None = None) -> bool:
        tasks = [t for t in self.tasks() if t["lastStatus"] == "RUNNING"]
        svc = self.service()
        if len(tasks) != n or svc["runningCount"] != n or svc["pendingCount"] != 0:
            return False
        healthy = {k for k, s in self.targets(tg_arn).items() if s == "healthy"}
        return healthy == {self.task_target(t) for t in tasks}

    def wait_steady(self, n: int, timeout: float = 10.0, tg_arn: str | None = None) -> None:
        wait_until(lambda: self.steady(n, tg_arn), timeout, f"{self.name}: {n} running tasks, healthy targets")

    def remove(self) -> None:
        """Scale to 0 and delete the service (its tasks stop)."""
        self.emu.ecs.update_service(cluster=self.cluster, service=self.service_name, desiredCount=0)
        self.emu.ecs.delete_service(cluster=self.cluster, service=self.service_name, force=True)


def test_lifecycle_states_and_targets(emu: Emu) -> None:
    w = World(emu, "life", count=1, draining=1)
    w.wait_steady(1)
    (old,) = w.tasks()
    old_target = w.task_target(old)
    settings = emu.control("POST", "scheduler", {"lifecycle": LIFECYCLE})
    assert settings["lifecycle"] == LIFECYCLE
    try:
        t0 = time.monotonic()
        out = emu.ecs.stop_task(cluster=w.cluster, task=old["taskArn"], reason="lifecycle test")["task"]
        assert (out["lastStatus"], out["desiredStatus"]) == ("DEACTIVATING", "STOPPED")
        assert w.targets()[old_target] == "draining"
        seen_old: list[tuple[float, str]] = []
        seen_new: list[str] = []
        new_arn = None
        while time.monotonic() - t0 < 8:
            status = w.task(old["taskArn"])["lastStatus"]
            if not seen_old or seen_old[-1][1] != status:
                seen_old.append((time.monotonic() - t0, status))
            running = w.tasks()
            if running:
                (new,) = running
                new_arn = new["taskArn"]
                state = new["lastStatus"]
                if not seen_new or seen_new[-1] != state:
                    seen_new.append(state)
                # targets only from ACTIVATING on; counts follow lastStatus
                # (checked when the state did not move between the calls)
                registered = w.task_target(new) in w.targets()
                svc = w.service()
                if w.task(new_arn)["lastStatus"] == state:
                    assert registered == (state in ("ACTIVATING", "RUNNING")), (state, w.targets())
                    assert (svc["runningCount"], svc["pendingCount"]) == ((1, 0) if state == "RUNNING" else (0, 1))
                assert new["desiredStatus"] == "RUNNING"
            if status == "STOPPED" and seen_new and seen_new[-1] == "RUNNING":
                break
            time.sleep(0.05)
        assert [s for _, s in seen_old] == ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"], seen_old
        # DEACTIVATING for the group's deregistration delay (1 s), then 0.3 + 0.3
        assert seen_old[1][0] >= 0.95 and seen_old[3][0] >= 1.5, seen_old
        assert seen_new == ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"], seen_new
        stopped = w.task(old["taskArn"])
        assert_stopped(stopped, "UserInitiated", "lifecycle test")
        new = w.task(new_arn)
        assert new["startedAt"] > new["pullStartedAt"] and new["containers"][0]["lastStatus"] == "RUNNING"
        # the delay is the target group's attribute at the stop: 0 s now
        emu.elbv2.modify_target_group_attributes(TargetGroupArn=w.tg_arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
        wait_until(lambda: w.targets().get(w.task_target(new)) == "healthy", 5, "healthy new target")
        t1 = time.monotonic()
        emu.ecs.stop_task(cluster=w.cluster, task=new_arn)
        wait_until(lambda: w.task(new_arn)["lastStatus"] == "STOPPED", 5, "quick stop")
        assert time.monotonic() - t1 < 0.95
    finally:
        settings = emu.control("POST", "scheduler", {"lifecycle": None})
    assert settings["lifecycle"] is None
    assert http_error("POST", f"{emu.endpoint}/_emulator/scheduler", {"lifecycle": {"nope": 1}}).code == 400
    w.wait_steady(1)
    w.remove()


def _watch_rollout(w: World, emu: Emu, dep_id: str, min_healthy: int, max_total: int,
                   timeout: float = 12.0) -> dict[str, Any]:
    """Polls until the deployment completed, checking the percent bounds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = w.tasks()
        assert len(running) <= max_total, [t["lastStatus"] for t in running]
        healthy = [s for s in w.targets().values() if s == "healthy"]
        assert len(healthy) >= min_healthy, w.targets()
        svc = w.service()
        if len(svc["deployments"]) == 1 and svc["deployments"][0]["rolloutState"] == "COMPLETED":
            assert svc["deployments"][0]["id"] == dep_id
            return svc
        time.sleep(0.05)
    raise AssertionError(f"rollout of {dep_id} did not complete: {w.service()['deployments']}")


def test_rolling_deployment(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    w = World(emu, "roll", count=2, draining=0)
    w.wait_steady(2)
    old_ids = {t["taskArn"] for t in w.tasks()}
    # off (default): a new task definition changes nothing that runs
    out = awsctl(emu, capsys, "deploy", w.cluster, w.service_name)
    assert len(w.service()["deployments"]) == 1 and {t["taskArn"] for t in w.tasks()} == old_ids
    assert emu.control("POST", "scheduler", {"rolling_deployments": True})["rolling_deployments"] is True
    try:
        # The scheduler waits while the new deployment is read: with no
        # draining it can finish a rollout between two calls.
        emu.control("POST", "scheduler", {"paused": True})
        try:
            out = awsctl(emu, capsys, "deploy", w.cluster, w.service_name)
            dep_id, td_arn = out["deployment"], out["taskDefinition"]
            deps = awsctl(emu, capsys, "deployments", w.cluster, w.service_name)["deployments"]
        finally:
            emu.control("POST", "scheduler", {"paused": False})
        assert dep_id.startswith("ecs-svc/") and len(dep_id.split("/")[1]) == 19 and td_arn.endswith(":3")
        assert [(d["status"], d["rolloutState"]) for d in deps] in (
            [("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "COMPLETED")], [("PRIMARY", "IN_PROGRESS"), ("ACTIVE", "IN_PROGRESS")])
        assert deps[0]["id"] == dep_id and deps[0]["desiredCount"] == 2 and deps[1]["taskDefinition"].endswith(":2")
        raw = w.service()["deployments"][0]
        assert raw["createdAt"] and raw["updatedAt"] and raw["launchType"] == "EC2"
        # 200 % / 100 %: at most 4 tasks, never fewer than 2 healthy
        svc = _watch_rollout(w, emu, dep_id, min_healthy=2, max_total=4)
        assert svc["deployments"][0]["rolloutStateReason"] == f"ECS deployment {dep_id} completed."
        assert svc["deployments"][0]["runningCount"] == 2
        messages = [e["message"] for e in svc["events"]]
        assert f"(service {w.service_name}) (deployment {dep_id}) deployment completed." in messages
        tasks = w.tasks()
        assert {t["startedBy"] for t in tasks} == {dep_id} and {t["taskDefinitionArn"] for t in tasks} == {td_arn}
        assert not old_ids & {t["taskArn"] for t in tasks}
        stopped = [t for t in w.tasks("STOPPED") if t["taskArn"] in old_ids]
        assert all(t["stoppedReason"].startswith("Scaling activity initiated by (deployment ecs-svc/")
                   for t in stopped) and len(stopped) == 2

        # with the lifecycle, and 50 % / 100 %: stop one, start one, ...
        emu.ecs.update_service(cluster=w.cluster, service=w.service_name,
                               deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100})
        emu.control("POST", "scheduler", {"lifecycle": {"provisioning": 0.1, "pending": 0.1, "activating": 0.2}})
        out = awsctl(emu, capsys, "deploy", w.cluster, w.service_name, "--force")
        assert out["taskDefinition"] == td_arn and out["deployment"] != dep_id
        _watch_rollout(w, emu, out["deployment"], min_healthy=1, max_total=2)
        w.wait_steady(2)
        assert {t["startedBy"] for t in w.tasks()} == {out["deployment"]}
    finally:
        emu.control("POST", "scheduler", {"rolling_deployments": False, "lifecycle": None})
    w.remove()


def _reads(fn: Callable[[], Any], seconds: float) -> list[Any]:
    """fn() repeatedly for ``seconds``."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(fn())
    return out


def test_read_lag(emu: Emu) -> None:
    w = World(emu, "lag", count=1, draining=0)
    w.wait_steady(1)
    (task,) = w.tasks()
    arn = task["taskArn"]
    group = emu.ec2.create_security_group(GroupName="lag-sg", Description="lag", VpcId=emu.seed["vpc_id"])["GroupId"]
    describe_group = lambda: emu.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]  # noqa: E731
    lag = {"ecs": 0.6, "elbv2": 0.6, "ec2": 0.6}
    assert emu.control("POST", "scheduler", {"read_lag": lag})["read_lag"] == lag
    # Only the controller's reads lag (the tests' own tools read the truth):
    # read through clients the emulator attributes to the reconciler.
    others = emu.ecs, emu.elbv2, emu.ec2
    assert {w.service()["desiredCount"] for _ in range(5)} == {1}  # an `other` read: current
    emu.ecs, emu.elbv2, emu.ec2 = (emu.rust_client(s) for s in ("ecs", "elbv2", "ec2"))
    try:
        assert describe_group() == []  # a request seen before the write is recorded
        time.sleep(0.7)  # history starts when the lag is switched on
        # ECS: a stop, then reads: some still RUNNING, none invented, current after the lag
        emu.ecs.stop_task(cluster=w.cluster, task=arn)  # writes are never lagged
        seen = _reads(lambda: w.task(arn)["lastStatus"], 0.2)
        assert "RUNNING" in seen and set(seen) <= {"RUNNING", "DEACTIVATING", "STOPPED"}, seen
        listed = _reads(lambda: arn in emu.ecs.list_tasks(cluster=w.cluster)["taskArns"], 0.2)
        assert True in listed, listed  # still listed as desiredStatus RUNNING by some reads
        svc = w.service()
        assert svc["runningCount"] in (0, 1)
        emu.ecs.update_service(cluster=w.cluster, service=w.service_name, desiredCount=2)
        counts = _reads(lambda: w.service()["desiredCount"], 0.2)
        assert 1 in counts and set(counts) <= {1, 2}, counts
        time.sleep(0.7)
        assert {w.task(arn)["lastStatus"] for _ in range(5)} == {"STOPPED"}
        assert {w.service()["desiredCount"] for _ in range(5)} == {2}
        # a task started less than the lag ago may be MISSING
        wait_until(lambda: len(emu.ecs.list_tasks(cluster=w.cluster)["taskArns"]) >= 1, 5, "new tasks")
        # ELBv2: a new registration is not there for some reads, then initial/healthy
        target = {"Id": w.instance_ids[0], "Port": 40000}
        emu.elbv2.register_targets(TargetGroupArn=w.tg_arn, Targets=[target])
        states = _reads(lambda: w.targets().get((target["Id"], 40000), "absent"), 0.2)
        assert "absent" in states and set(states) <= {"absent", "initial", "healthy"}, states
        emu.elbv2.deregister_targets(TargetGroupArn=w.tg_arn, Targets=[target])
        # EC2: a rule added is missing from some reads of a request seen before
        emu.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        rules = _reads(lambda: len(describe_group()), 0.2)
        assert 0 in rules and set(rules) <= {0, 1}, rules
        time.sleep(0.7)
        assert {len(describe_group()) for _ in range(5)} == {1}
        # the control API and the scheduler always see the current state
        assert emu.control("GET", "scheduler")["read_lag"] == lag
    finally:
        emu.ecs, emu.elbv2, emu.ec2 = others
        emu.control("POST", "scheduler", {"read_lag": {}})
    assert http_error("POST", f"{emu.endpoint}/_emulator/scheduler", {"read_lag": {"s3": 1}}).code == 400
    # off again: consistent at once
    emu.ecs.update_service(cluster=w.cluster, service=w.service_name, desiredCount=1)
    assert w.service()["desiredCount"] == 1
    w.wait_steady(1)
    w.remove()


def test_instance_stopped_or_terminated_under_tasks(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    w = World(emu, "loss", count=2, instances=3, draining=0)
    w.wait_steady(2)
    emu.control("POST", "scheduler", {"instance_loss_lag": 0.5})
    try:
        for verb, kind in (("stop-instance", "stopped"), ("terminate-instance", "terminated")):
            victim = w.tasks()[0]
            instance_id, port = w.task_target(victim)
            ci_arn = victim["containerInstanceArn"]
            out = awsctl(emu, capsys, verb, instance_id, "--cluster", w.cluster)
            assert out[kind] == instance_id
            t0 = time.monotonic()
            if kind == "stopped":
                # targets on it cannot be registered, and report Target.InvalidState
                err = client_error(lambda: emu.elbv2.register_targets(
                    TargetGroupArn=w.tg_arn, Targets=[{"Id": instance_id, "Port": 40001}]))
                assert err.response["Error"]["Code"] == "InvalidTarget"
                assert err.response["Error"]["Message"] == (
                    f"The following targets are not in a running state and cannot be registered: '{instance_id}'")
                (health,) = emu.elbv2.describe_target_health(
                    TargetGroupArn=w.tg_arn, Targets=[{"Id": instance_id, "Port": port}])["TargetHealthDescriptions"]
                assert (health["TargetHealth"]["State"], health["TargetHealth"]["Reason"]) == (
                    "unused", "Target.InvalidState")
            # still RUNNING until ECS notices (instance_loss_lag) ...
            assert w.task(victim["taskArn"])["lastStatus"] == "RUNNING"
            stopped = wait_until(lambda: (t := w.task(victim["taskArn"]))["desiredStatus"] == "STOPPED" and t,
                                 5, f"task on the {kind} instance to stop")
            assert time.monotonic() - t0 >= 0.4
            assert stopped["stopCode"] == "TerminationNotice"
            assert stopped["stoppedReason"] == f"Host EC2 (instance {instance_id}) {kind}."
            (ci,) = emu.ecs.describe_container_instances(cluster=w.cluster, containerInstances=[ci_arn])[
                "containerInstances"]
            assert ci["agentConnected"] is False and ci["status"] == ("INACTIVE" if kind == "terminated" else "ACTIVE")
            # ... and replaced on the remaining instances
            w.wait_steady(2)
            assert ci_arn not in {t["containerInstanceArn"] for t in w.tasks()}
    finally:
        emu.control("POST", "scheduler", {"instance_loss_lag": None})
    w.remove()


def test_capacity_provider_strategy(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    w = World(emu, "cp", count=1, draining=0)
    strategy = [{"capacityProvider": "FARGATE", "weight": 1}]
    # off (default): moto's behaviour, the strategy is dropped and EC2 invented
    off = emu.ecs.create_service(cluster=w.cluster, serviceName="cp-off", taskDefinition="nestjs-api",
                                 desiredCount=0, capacityProviderStrategy=strategy)["service"]
    assert off["launchType"] == "EC2" and "capacityProviderStrategy" not in off
    try:
        out = awsctl(emu, capsys, "create-cp-service", "cp-copy", "--provider", "cp-asg", "--cluster", w.cluster,
                     "--like", w.service_name, "--count", "1")
        assert out["launchType"] is None
        assert out["capacityProviderStrategy"] == [{"capacityProvider": "cp-asg", "weight": 1, "base": 0}]
        (svc,) = emu.ecs.describe_services(cluster=w.cluster, services=["cp-copy"])["services"]
        assert "launchType" not in svc and svc["capacityProviderStrategy"] == out["capacityProviderStrategy"]
        assert "launchType" not in svc["deployments"][0]
        assert svc["deployments"][0]["capacityProviderStrategy"] == out["capacityProviderStrategy"]
        assert svc["loadBalancers"] == w.created["loadBalancers"]
        # placed on the cluster's EC2 container instances, registered in the same target group
        arns = wait_until(lambda: emu.ecs.list_tasks(cluster=w.cluster, serviceName="cp-copy")["taskArns"], 5,
                          "a task of the capacity-provider service")
        (task,) = emu.ecs.describe_tasks(cluster=w.cluster, tasks=arns)["tasks"]
        assert task["capacityProviderName"] == "cp-asg" and task["containerInstanceArn"] in w.ci_arns
        wait_until(lambda: w.targets().get(w.task_target(task)) == "healthy", 5, "its healthy target")
        # DescribeCapacityProviders: all, built-ins, failures
        providers = {p["name"]: p for p in emu.ecs.describe_capacity_providers()["capacityProviders"]}
        assert {"FARGATE", "FARGATE_SPOT", "cp-asg"} <= set(providers)
        assert providers["cp-asg"]["autoScalingGroupProvider"]["autoScalingGroupArn"].endswith("/cp-asg")
        some = emu.ecs.describe_capacity_providers(capacityProviders=["FARGATE", "nope"])
        assert [p["name"] for p in some["capacityProviders"]] == ["FARGATE"] and len(some["failures"]) == 1
        cluster = emu.ecs.describe_clusters(clusters=[w.cluster])["clusters"][0]
        assert cluster["capacityProviders"] == ["cp-asg"]
        # AWS's validation
        for kw in ({"launchType": "EC2", "capacityProviderStrategy": strategy},
                   {"capacityProviderStrategy": strategy}):  # FARGATE is not associated with the cluster
            err = client_error(lambda: emu.ecs.create_service(
                cluster=w.cluster, serviceName="cp-bad", taskDefinition="nestjs-api", desiredCount=0, **kw))
            assert err.response["Error"]["Code"] == "InvalidParameterException"
        emu.ecs.update_service(cluster=w.cluster, service="cp-copy", desiredCount=0)
        emu.ecs.delete_service(cluster=w.cluster, service="cp-copy", force=True)
    finally:
        emu.control("POST", "scheduler", {"capacity_providers": False})
    w.remove()


def test_task_sets_of_external_service(emu: Emu) -> None:
    emu.control("POST", "scheduler", {"task_sets": True})
    try:
        w = World(emu, "ts", count=2, draining=0, load_balancer=False, deploymentController={"type": "EXTERNAL"})
        green_tg = w.make_target_group("ts-green-tg", 0)
        time.sleep(DELAY * 3)
        assert w.tasks() == []  # the scheduler starts nothing for the service itself
        lb = lambda tg: [{"targetGroupArn": tg, "containerName": "api", "containerPort": 3000}]  # noqa: E731
        blue = emu.ecs.create_task_set(cluster=w.cluster, service=w.service_name, taskDefinition="nestjs-api",
                                       loadBalancers=lb(w.tg_arn), scale={"value": 50, "unit": "PERCENT"},
                                       externalId="blue")["taskSet"]
        assert blue["id"].startswith("ecs-svc/") and blue["status"] == "ACTIVE" and blue["externalId"] == "blue"
        assert blue["computedDesiredCount"] == 1 and blue["taskSetArn"].endswith(blue["id"].split("/")[1])
        green = emu.ecs.create_task_set(cluster=w.cluster, service=w.service_name, taskDefinition="nestjs-api",
                                        loadBalancers=lb(green_tg), scale={"value": 100, "unit": "PERCENT"},
                                        externalId="green")["taskSet"]

        def sets() -> dict[str, dict[str, Any]]:
            return {t["externalId"]: t for t in w.service()["taskSets"]}

        wait_until(lambda: all(t["stabilityStatus"] == "STEADY_STATE" for t in sets().values())
                   and len(sets()) == 2, 5, "both task sets steady")
        assert {k: (t["computedDesiredCount"], t["runningCount"]) for k, t in sets().items()} == {
            "blue": (1, 1), "green": (2, 2)}
        tasks = w.tasks()
        by_set = {blue["id"]: [], green["id"]: []}
        for t in tasks:
            by_set[t["startedBy"]].append(t)
            assert t["group"] == f"service:{w.service_name}"
        assert [len(by_set[blue["id"]]), len(by_set[green["id"]])] == [1, 2]
        # each task set's tasks are registered in its own target group
        wait_until(lambda: set(w.targets(green_tg)) == {w.task_target(t) for t in by_set[green["id"]]}
                   and set(w.targets()) == {w.task_target(t) for t in by_set[blue["id"]]}, 5, "targets per task set")
        emu.ecs.update_service_primary_task_set(cluster=w.cluster, service=w.service_name,
                                                primaryTaskSet=green["taskSetArn"])
        svc = w.service()
        assert svc["deploymentController"] == {"type": "EXTERNAL"}
        assert {k: t["status"] for k, t in sets().items()} == {"blue": "ACTIVE", "green": "PRIMARY"}
        out = emu.ecs.delete_task_set(cluster=w.cluster, service=w.service_name, taskSet=blue["taskSetArn"])
        assert out["taskSet"]["status"] == "DRAINING"
        wait_until(lambda: list(sets()) == ["green"], 5, "the deleted task set to go")
        (blue_task,) = by_set[blue["id"]]
        assert w.task(blue_task["taskArn"])["lastStatus"] == "STOPPED"
        described = emu.ecs.describe_task_sets(cluster=w.cluster, service=w.service_name)["taskSets"]
        assert [t["id"] for t in described] == [green["id"]]
        w.remove()
        wait_until(lambda: w.tasks() == [], 5, "the service's tasks to stop")
    finally:
        emu.control("POST", "scheduler", {"task_sets": False})


def test_blue_green_strategy(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}
    w = World(emu, "bg", count=1, draining=0, deploymentConfiguration=config)
    assert w.service()["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    w.wait_steady(1)
    (blue,) = w.tasks()
    emu.control("POST", "scheduler", {"rolling_deployments": True})
    try:
        dep = awsctl(emu, capsys, "deploy", w.cluster, w.service_name)["deployment"]
        # green starts in full next to blue; both stay while the bake time runs
        wait_until(lambda: sum(s == "healthy" for s in w.targets().values()) == 2, 5, "green healthy next to blue")
        time.sleep(0.5)
        svc = w.service()
        assert [(d["status"], d["rolloutState"]) for d in svc["deployments"]][0] == ("PRIMARY", "IN_PROGRESS")
        assert len(svc["deployments"]) == 2 and w.task(blue["taskArn"])["lastStatus"] == "RUNNING"
        # bake time over (set to 0): blue stops, the deployment completes
        emu.ecs.update_service(cluster=w.cluster, service=w.service_name,
                               deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0})
        _watch_rollout(w, emu, dep, min_healthy=1, max_total=2)
        assert w.task(blue["taskArn"])["desiredStatus"] == "STOPPED"
    finally:
        emu.control("POST", "scheduler", {"rolling_deployments": False})
    w.wait_steady(1)
    w.remove()


# ----------------------------------------------------------------------------
# safety oracle (oracle.py); each test builds its own world and resets it
# ----------------------------------------------------------------------------
def _oracle_reset(emu: Emu) -> dict[str, Any]:
    doc = emu.control("POST", "oracle/reset", {})
    zero = {k: 0 for k in ("drain_cancelled", "registered_dying", "deregistered_serving")}
    assert doc["reconciler"] == zero and doc["other"] == zero, doc
    assert doc["events"] == [] and doc["deployments_completed"] == {}
    return doc


def test_oracle_deregistered_serving(emu: Emu) -> None:
    w = World(emu, "orc-dereg", count=1, draining=1)
    w.wait_steady(1)
    (task,) = w.tasks()
    target = w.task_target(task)
    _oracle_reset(emu)
    rust = emu.rust_client("elbv2")
    rust.deregister_targets(TargetGroupArn=w.tg_arn, Targets=[{"Id": target[0], "Port": target[1]}])
    # a second deregistration of the (now draining) target is harmless
    emu.elbv2.deregister_targets(TargetGroupArn=w.tg_arn, Targets=[{"Id": target[0], "Port": target[1]}])
    doc = emu.control("GET", "oracle")
    assert doc["reconciler"]["deregistered_serving"] == 1 and doc["other"]["deregistered_serving"] == 0, doc
    (event,) = doc["events"]
    assert event["client"] == "reconciler" and event["kind"] == "deregistered_serving"
    assert event["target_group"] == "orc-dereg-tg" and event["target"] == f"{target[0]}:{target[1]}"
    assert event["task"] == task["taskArn"] and event["target_state"] == "healthy"
    assert (event["task_last_status"], event["task_desired_status"]) == ("RUNNING", "RUNNING")
    assert http_error("POST", f"{emu.endpoint}/_emulator/oracle", {}).code == 405
    w.remove()


def test_oracle_drain_cancelled_and_registered_dying(emu: Emu) -> None:
    w = World(emu, "orc-drain", count=2, draining=3)
    w.wait_steady(2)
    first, second = w.tasks()
    emu.control("POST", "scheduler", {"lifecycle": {"stopping": 0.1, "deprovisioning": 0.1}})
    try:
        _oracle_reset(emu)
        emu.ecs.stop_task(cluster=w.cluster, task=first["taskArn"])  # target draining (ECS's own: not judged)
        target = w.task_target(first)
        assert w.targets()[target] == "draining"
        rust = emu.rust_client("elbv2")
        rust.register_targets(TargetGroupArn=w.tg_arn, Targets=[{"Id": target[0], "Port": target[1]}])
        doc = emu.control("GET", "oracle")
        assert doc["reconciler"]["drain_cancelled"] == 1 and doc["other"]["drain_cancelled"] == 0, doc
        (event,) = doc["events"]
        assert (event["kind"], event["target_state"], event["task"]) == ("drain_cancelled", "draining", first["taskArn"])
        assert (event["task_last_status"], event["task_desired_status"]) == ("DEACTIVATING", "STOPPED")
        # a stopped task whose target is gone (drain delay 0): registered_dying
        emu.elbv2.modify_target_group_attributes(TargetGroupArn=w.tg_arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "0"}])
        emu.ecs.stop_task(cluster=w.cluster, task=second["taskArn"])
        wait_until(lambda: w.task(second["taskArn"])["lastStatus"] == "STOPPED", 5, "second task STOPPED")
        target2 = w.task_target(second)
        assert target2 not in w.targets()
        emu.elbv2.register_targets(TargetGroupArn=w.tg_arn, Targets=[{"Id": target2[0], "Port": target2[1]}])
        doc = emu.control("GET", "oracle")
        assert doc["other"]["registered_dying"] == 1 and doc["reconciler"]["registered_dying"] == 0, doc
        assert doc["events"][-1]["task_last_status"] == "STOPPED" and doc["events"][-1]["target_state"] == "unused"
    finally:
        emu.control("POST", "scheduler", {"lifecycle": None})
    w.remove()


def test_oracle_no_healthy(emu: Emu) -> None:
    w = World(emu, "orc-nh", count=1, draining=0)
    w.wait_steady(1)
    (task,) = w.tasks()
    target = w.task_target(task)
    _oracle_reset(emu)
    time.sleep(0.2)
    assert "orc-nh-tg" not in emu.control("GET", "oracle")["no_healthy"]
    emu.elbv2.deregister_targets(TargetGroupArn=w.tg_arn, Targets=[{"Id": target[0], "Port": target[1]}])
    time.sleep(0.5)
    entry = emu.control("GET", "oracle")["no_healthy"]["orc-nh-tg"]
    assert entry["open"] and 0.3 <= entry["seconds"] <= 1.5 and len(entry["intervals"]) == 1, entry
    emu.elbv2.register_targets(TargetGroupArn=w.tg_arn, Targets=[{"Id": target[0], "Port": target[1]}])
    # initial for the scheduler delay (0.2 s), then healthy: the interval closes
    entry = wait_until(lambda: (e := emu.control("GET", "oracle")["no_healthy"]["orc-nh-tg"]) and not e["open"] and e,
                       3, "no_healthy interval to close")
    (start, end), = entry["intervals"]
    assert abs(entry["seconds"] - (end - start)) < 0.01 and 0.6 <= entry["seconds"] <= 2.0, entry
    time.sleep(0.2)
    assert emu.control("GET", "oracle")["no_healthy"]["orc-nh-tg"]["seconds"] == entry["seconds"]
    doc = emu.control("GET", "oracle")
    assert doc["other"]["deregistered_serving"] == 1 and doc["other"]["registered_dying"] == 0
    w.remove()


def test_oracle_deployments_completed(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    w = World(emu, "orc-dep", count=1, draining=0)
    w.wait_steady(1)
    assert awsctl(emu, capsys, "oracle", "--reset")["deployments_completed"] == {}
    emu.control("POST", "scheduler", {"rolling_deployments": True})
    try:
        dep = awsctl(emu, capsys, "deploy", w.cluster, w.service_name)["deployment"]
        _watch_rollout(w, emu, dep, min_healthy=1, max_total=2)
        doc = awsctl(emu, capsys, "oracle")
        assert doc["deployments_completed"] == {"orc-dep-cluster/orc-dep-svc": 1}, doc
        # ECS's own target changes during the rollout are never judged
        assert doc["events"] == [] and not any(doc["other"].values()), doc
    finally:
        emu.control("POST", "scheduler", {"rolling_deployments": False})
    w.wait_steady(1)
    w.remove()


# ----------------------------------------------------------------------------
# process lifecycle
# ----------------------------------------------------------------------------
# ----------------------------------------------------------------------------
# real-EC2 networking (switchable, off by default); each test makes its own
# instances/groups so the seed stays unchanged
# ----------------------------------------------------------------------------
def _own_instance(emu: Emu, *groups: str) -> str:
    seed = emu.seed
    return emu.ec2.run_instances(
        ImageId=seed["ami_id"], InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=seed["subnet_ids"][0],
        SecurityGroupIds=list(groups) or [seed["security_groups"]["EC2InstanceWithLoadBalancer"]],
    )["Instances"][0]["InstanceId"]


def _described(emu: Emu, iid: str) -> tuple[list[str], dict[int, dict[str, Any]]]:
    (inst,) = emu.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"]
    enis = {n["Attachment"]["DeviceIndex"]: n for n in inst["NetworkInterfaces"]}
    return [g["GroupId"] for g in inst["SecurityGroups"]], enis


def _group(emu: Emu, name: str, vpc_id: str | None = None) -> str:
    return emu.ec2.create_security_group(GroupName=name, Description=name,
                                         VpcId=vpc_id or emu.seed["vpc_id"])["GroupId"]


def test_trunk_eni_and_interface_group_writes(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    seed, ec2 = emu.seed, emu.ec2
    lb_sg, inst_sg, default_sg = (seed["security_groups"]["LoadBalancerGroup"],
                                  seed["security_groups"]["EC2InstanceWithLoadBalancer"], seed["default_security_group_id"])
    iid = _own_instance(emu, default_sg, inst_sg)
    # one ENI: ModifyNetworkInterfaceAttribute on the primary is the instance's groups too
    groups, enis = _described(emu, iid)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=enis[0]["NetworkInterfaceId"], Groups=[inst_sg])
    assert _described(emu, iid)[0] == [inst_sg]
    err = client_error(lambda: ec2.modify_network_interface_attribute(
        NetworkInterfaceId=enis[0]["NetworkInterfaceId"], Groups=["sg-00000000000000000"]))
    assert err.response["Error"]["Code"] == "InvalidGroup.NotFound"
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[default_sg, inst_sg])  # one ENI: allowed

    trunk = awsctl(emu, capsys, "add-trunk-eni", iid, "--groups", "LoadBalancerGroup")
    assert (trunk["device_index"], trunk["interface_type"], trunk["groups"]) == (1, "trunk", [lb_sg])
    assert trunk["subnet_id"] == seed["subnet_ids"][0]
    assert awsctl(emu, capsys, "add-trunk-eni", iid)["network_interface_id"] == trunk["network_interface_id"]
    groups, enis = _described(emu, iid)
    assert sorted(enis) == [0, 1] and enis[1]["InterfaceType"] == "trunk" and enis[0]["InterfaceType"] == "interface"
    assert groups == [g["GroupId"] for g in enis[0]["Groups"]] == [default_sg, inst_sg]
    assert [g["GroupId"] for g in enis[1]["Groups"]] == [lb_sg]

    err = client_error(lambda: ec2.modify_instance_attribute(InstanceId=iid, Groups=[default_sg]))
    assert err.response["Error"]["Code"] == "InvalidInstanceID"
    assert err.response["Error"]["Message"] == (
        f"There are multiple interfaces attached to instance '{iid}'. "
        "Please specify an interface ID for the operation instead.")
    ec2.modify_network_interface_attribute(NetworkInterfaceId=enis[0]["NetworkInterfaceId"], Groups=[inst_sg])
    groups, enis = _described(emu, iid)
    assert groups == [g["GroupId"] for g in enis[0]["Groups"]] == [inst_sg]
    assert [g["GroupId"] for g in enis[1]["Groups"]] == [lb_sg]  # the trunk keeps its own
    ec2.modify_network_interface_attribute(NetworkInterfaceId=trunk["network_interface_id"], Groups=[default_sg])
    groups, enis = _described(emu, iid)
    assert groups == [inst_sg] and [g["GroupId"] for g in enis[1]["Groups"]] == [default_sg]
    assert http_error("POST", f"{emu.endpoint}/_emulator/ec2", {"add_trunk_eni": "i-00000000000000000"}).code == 400
    assert http_error("POST", f"{emu.endpoint}/_emulator/ec2", {"trunk": True}).code == 400


def test_trunk_enis_switch(tmp_path: Path) -> None:
    """trunk_enis: every container instance, registered before or after, gets a trunk ENI (own emulator)."""
    proc, endpoint = start_emulator(tmp_path, "--ec2-networking", '{"trunk_enis": true}')
    try:
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test")
        ec2, ecs = boto3.client("ec2", **kw), boto3.client("ecs", **kw)
        ecs.create_cluster(clusterName="trunks")
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]

        def instance(register: bool) -> str:
            iid = ec2.run_instances(ImageId="ami-04681a1dbd79675a5", InstanceType="t3.micro", MinCount=1,
                                    MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
            if register:
                doc = {"instanceId": iid, "region": "us-east-1", "accountId": "123456789012",
                       "availabilityZone": "us-east-1a", "instanceType": "t3.micro", "imageId": "ami-04681a1dbd79675a5"}
                ecs.register_container_instance(cluster="trunks", instanceIdentityDocument=json.dumps(doc))
            return iid

        def types(iid: str) -> list[str]:
            (inst,) = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"]
            return [n["InterfaceType"] for n in sorted(inst["NetworkInterfaces"], key=lambda n: n["Attachment"]["DeviceIndex"])]

        first, plain = instance(True), instance(False)
        assert types(first) == ["interface", "trunk"] and types(plain) == ["interface"]
        req = urllib.request.Request(f"{endpoint}/_emulator/ec2", data=json.dumps({"trunk_enis": False}).encode(),
                                     method="POST")
        assert json.load(urllib.request.urlopen(req, timeout=10))["trunk_enis"] is False
        later = instance(True)
        assert types(later) == ["interface"]
        req = urllib.request.Request(f"{endpoint}/_emulator/ec2", data=json.dumps({"trunk_enis": True}).encode(),
                                     method="POST")
        added = json.load(urllib.request.urlopen(req, timeout=10))["trunk_enis_added"]
        assert {a["instance"] for a in added} == {first, later}
        assert types(later) == ["interface", "trunk"] and types(plain) == ["interface"]
    finally:
        stop_emulator(proc)


def test_strict_group_writes(emu: Emu) -> None:
    seed, ec2 = emu.seed, emu.ec2
    default_sg, inst_sg = seed["default_security_group_id"], seed["security_groups"]["EC2InstanceWithLoadBalancer"]
    other_vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    foreign = _group(emu, "strict-foreign", other_vpc)
    extra = [_group(emu, f"strict-{i}") for i in range(4)]
    iid = _own_instance(emu, default_sg, inst_sg)
    primary = _described(emu, iid)[1][0]["NetworkInterfaceId"]
    lb = emu.elbv2.create_load_balancer(Name="strict-alb", Subnets=seed["subnet_ids"][:2],
                                        SecurityGroups=[default_sg])["LoadBalancers"][0]["LoadBalancerArn"]
    emu.control("POST", "ec2", {"strict_group_writes": True})
    try:
        err = client_error(lambda: ec2.modify_instance_attribute(InstanceId=iid, Groups=[default_sg, foreign]))
        assert err.response["Error"]["Code"] == "InvalidGroup.NotFound"
        assert err.response["Error"]["Message"] == f"The security group '{foreign}' does not exist in VPC '{seed['vpc_id']}'"
        err = client_error(lambda: ec2.modify_network_interface_attribute(NetworkInterfaceId=primary, Groups=[foreign]))
        assert err.response["Error"]["Code"] == "InvalidGroup.NotFound"
        six = [default_sg, inst_sg, *extra]
        err = client_error(lambda: ec2.modify_instance_attribute(InstanceId=iid, Groups=six))
        assert err.response["Error"]["Code"] == "SecurityGroupsPerInstanceLimitExceeded"
        err = client_error(lambda: ec2.modify_network_interface_attribute(NetworkInterfaceId=primary, Groups=six))
        assert err.response["Error"]["Code"] == "SecurityGroupsPerInterfaceLimitExceeded"
        ec2.modify_network_interface_attribute(NetworkInterfaceId=primary, Groups=six[:5])  # 5: the quota
        assert _described(emu, iid)[0] == six[:5]
        err = client_error(lambda: emu.elbv2.set_security_groups(LoadBalancerArn=lb, SecurityGroups=[foreign]))
        assert err.response["Error"]["Code"] == "InvalidConfigurationRequest"
        assert err.response["Error"]["Message"] == "One or more security groups are invalid"
        err = client_error(lambda: emu.elbv2.set_security_groups(LoadBalancerArn=lb, SecurityGroups=six))
        assert err.response["Error"]["Code"] == "InvalidConfigurationRequest"
        (alb,) = emu.elbv2.describe_load_balancers(LoadBalancerArns=[lb])["LoadBalancers"]
        assert alb["SecurityGroups"] == [default_sg]
        emu.elbv2.set_security_groups(LoadBalancerArn=lb, SecurityGroups=six[:5])  # 5: the quota
    finally:
        emu.control("POST", "ec2", {"strict_group_writes": False})
    ec2.modify_instance_attribute(InstanceId=iid, Groups=six)  # off: moto's checks only
    assert len(_described(emu, iid)[0]) == 6
    emu.elbv2.delete_load_balancer(LoadBalancerArn=lb)


def _cloudfront(emu: Emu) -> dict[str, Any]:
    (pl,) = emu.ec2.describe_managed_prefix_lists(Filters=[
        {"Name": "prefix-list-name", "Values": ["com.amazonaws.global.cloudfront.origin-facing"]}])["PrefixLists"]
    return pl


def test_prefix_lists_as_rule_sources(emu: Emu) -> None:
    ec2 = emu.ec2
    assert "MaxEntries" not in _cloudfront(emu)  # off: moto's view
    gid = _group(emu, "pl-sources")
    emu.control("POST", "ec2", {"prefix_lists": True})
    try:
        cf = _cloudfront(emu)
        assert (cf["OwnerId"], cf["MaxEntries"], cf["Version"], cf["AddressFamily"]) == ("AWS", 55, 1, "IPv4")
        entries = ec2.get_managed_prefix_list_entries(PrefixListId=cf["PrefixListId"])["Entries"]
        assert entries and all("/" in e["Cidr"] for e in entries)
        perm = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                "PrefixListIds": [{"PrefixListId": cf["PrefixListId"], "Description": "CloudFront"}]}
        (rule,) = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])["SecurityGroupRules"]
        assert rule["PrefixListId"] == cf["PrefixListId"]
        (described,) = ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [gid]}], SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]]
        )["SecurityGroupRules"]
        assert (described["PrefixListId"], described["Description"]) == (cf["PrefixListId"], "CloudFront")
        (group,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        assert [p["PrefixListIds"][0]["PrefixListId"] for p in group["IpPermissions"]] == [cf["PrefixListId"]]
        bad = {**perm, "PrefixListIds": [{"PrefixListId": "pl-00000000000000000"}]}
        err = client_error(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[bad]))
        assert err.response["Error"]["Code"] == "InvalidPrefixListID.NotFound"
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": cf["PrefixListId"]}]}])
        assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"] == []
        (rule,) = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])["SecurityGroupRules"]
        ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
        assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"] == []
    finally:
        emu.control("POST", "ec2", {"prefix_lists": False})
    assert "MaxEntries" not in _cloudfront(emu)


def test_rule_quota(emu: Emu) -> None:
    ec2 = emu.ec2
    gid, peer = _group(emu, "quota"), _group(emu, "quota-peer")
    cf = _cloudfront(emu)["PrefixListId"]

    def cidrs(n: int, v6: bool = False, port: int = 80) -> dict[str, Any]:
        key, field = ("Ipv6Ranges", "CidrIpv6") if v6 else ("IpRanges", "CidrIp")
        nets = [f"2001:db8:{i:x}::/48" if v6 else f"10.60.{i}.0/24" for i in range(n)]
        return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, key: [{field: c} for c in nets]}

    def inbound() -> int:
        return len(ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"])

    emu.control("POST", "ec2", {"rule_quota": 60})
    try:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[  # CloudFront counts 55
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": cf}]}])
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[cidrs(5)])  # 60 IPv4: at the quota
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[cidrs(3, v6=True)])  # IPv6 counts apart
        for perms in ([cidrs(1, port=81)], [cidrs(1, v6=True, port=82), cidrs(1, port=82)],
                      [{"IpProtocol": "tcp", "FromPort": 83, "ToPort": 83, "UserIdGroupPairs": [{"GroupId": peer}]}]):
            err = client_error(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms))
            assert err.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"
            assert err.response["Error"]["Message"] == "The maximum number of rules per security group has been reached."
        assert inbound() == 2  # 443 (prefix list), 80 (IPv4 and IPv6): the failed calls changed nothing
        emu.control("POST", "ec2", {"rule_quota": 61})
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[cidrs(1, port=81)])
        assert http_error("POST", f"{emu.endpoint}/_emulator/ec2", {"rule_quota": 0}).code == 400
    finally:
        emu.control("POST", "ec2", {"rule_quota": None})


def test_cross_account_group_reference(emu: Emu) -> None:
    ec2, gid = emu.ec2, _group(emu, "xacct")
    pair = {"GroupId": "sg-0f1e2d3c4b5a69788", "UserId": "210987654321"}
    perm = {"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "UserIdGroupPairs": [pair]}
    err = client_error(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm]))
    assert err.response["Error"]["Code"] == "InvalidGroup.NotFound"  # off: moto looks in this account
    emu.control("POST", "ec2", {"cross_account_groups": True})
    try:
        (rule,) = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])["SecurityGroupRules"]
        (described,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])[
            "SecurityGroupRules"]
        assert described["ReferencedGroupInfo"] == pair
        (group,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
        assert [(p["UserIdGroupPairs"][0]["GroupId"], p["UserIdGroupPairs"][0]["UserId"])
                for p in group["IpPermissions"]] == [(pair["GroupId"], pair["UserId"])]
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[perm])
        assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"] == []
        (rule,) = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])["SecurityGroupRules"]
        ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
        assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"] == []
    finally:
        emu.control("POST", "ec2", {"cross_account_groups": False})


def test_revoke_unknown_in_default_vpc(emu: Emu) -> None:
    ec2 = emu.ec2
    gid = _group(emu, "revoke-default")
    other_vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    other = _group(emu, "revoke-other", other_vpc)
    known = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    missing = {"IpProtocol": "tcp", "FromPort": 23, "ToPort": 23, "IpRanges": [{"CidrIp": "10.9.0.0/16"}]}
    for g in (gid, other):
        ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[known])
    err = client_error(lambda: ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[missing]))
    assert err.response["Error"]["Code"] == "InvalidPermission.NotFound"  # off
    emu.control("POST", "ec2", {"revoke_unknown_returns_success": True})
    try:
        out = ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[known, missing])
        assert out["Return"] is True
        assert out["UnknownIpPermissions"] == [{**missing, "UserIdGroupPairs": [], "Ipv6Ranges": [],
                                                "PrefixListIds": []}] or [
            {k: v for k, v in p.items() if v != []} for p in out["UnknownIpPermissions"]] == [missing]
        assert ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"] == []
        err = client_error(lambda: ec2.revoke_security_group_ingress(GroupId=other, IpPermissions=[known, missing]))
        assert err.response["Error"]["Code"] == "InvalidPermission.NotFound"  # a non-default VPC
        assert len(ec2.describe_security_groups(GroupIds=[other])["SecurityGroups"][0]["IpPermissions"]) == 1
    finally:
        emu.control("POST", "ec2", {"revoke_unknown_returns_success": False})


def test_hooks_another_writer(emu: Emu, capsys: pytest.CaptureFixture[str]) -> None:
    seed = emu.seed
    lb_sg, inst_sg = seed["security_groups"]["LoadBalancerGroup"], seed["security_groups"]["EC2InstanceWithLoadBalancer"]
    iid = _own_instance(emu, inst_sg)
    primary = _described(emu, iid)[1][0]["NetworkInterfaceId"]
    rust = emu.rust_client("ec2")
    assert http_error("POST", f"{emu.endpoint}/_emulator/hooks", {"before": "ec2", "do": {}}).code == 400
    emu.control("DELETE", "hooks")
    try:
        added = emu.control("POST", "hooks", {"before": "ec2:ModifyNetworkInterfaceAttribute", "client": "reconciler",
                                              "do": {"attach_group": {"instance": iid, "group": lb_sg}}})["added"]
        # the test's own (other) write does not fire it
        emu.ec2.modify_network_interface_attribute(NetworkInterfaceId=primary, Groups=[inst_sg])
        assert _described(emu, iid)[0] == [inst_sg]
        # the controller read [inst_sg] and writes [inst_sg, default]; the other writer's lb_sg lands first
        # and is overwritten, as in AWS
        out = awsctl(emu, capsys, "hooks", "add", "--before", "ec2:DescribeInstances", "--client", "reconciler",
                     "--do", "detach_group", "--target", iid, "--group", "EC2InstanceWithLoadBalancer")
        seen = rust.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        assert [g["GroupId"] for g in seen["SecurityGroups"]] == []  # the read sees the other writer's change
        rust.modify_network_interface_attribute(NetworkInterfaceId=primary,
                                                Groups=[inst_sg, seed["default_security_group_id"]])
        assert _described(emu, iid)[0] == [inst_sg, seed["default_security_group_id"]]
        hooks = {h["id"]: h for h in emu.control("GET", "hooks")["hooks"]}
        assert hooks[added[0]]["fired"] == 1 and hooks[added[0]]["last_error"] is None
        assert hooks[out["added"][0]]["fired"] == 1
        rust.modify_network_interface_attribute(NetworkInterfaceId=primary, Groups=[inst_sg])  # once: not again
        assert _described(emu, iid)[0] == [inst_sg]
        # ELBv2: a group attached to the load balancer right before the controller's SetSecurityGroups
        lb = emu.elbv2.create_load_balancer(Name="hook-alb", Subnets=seed["subnet_ids"][:2],
                                            SecurityGroups=[lb_sg])["LoadBalancers"][0]["LoadBalancerArn"]
        emu.control("POST", "hooks", {"before": "elbv2:DescribeLoadBalancers", "client": "reconciler",
                                      "do": {"attach_lb_group": {"load_balancer": "hook-alb", "group": inst_sg}}})
        (alb,) = emu.rust_client("elbv2").describe_load_balancers(LoadBalancerArns=[lb])["LoadBalancers"]
        assert alb["SecurityGroups"] == [lb_sg, inst_sg]
        emu.elbv2.delete_load_balancer(LoadBalancerArn=lb)
        assert len(awsctl(emu, capsys, "hooks", "list")["hooks"]) == 3
    finally:
        assert emu.control("DELETE", "hooks") == {"hooks": []}


def test_sigterm_exits_zero_and_port_file(emu: Emu) -> None:
    """Runs last: stops the shared emulator."""
    assert emu.proc is not None and emu.workdir is not None
    assert [p.name for p in emu.workdir.iterdir()] == ["port"]  # tmp file was renamed into place
    assert emu.control("GET", "health") == {"ok": True}
    t0 = time.monotonic()
    assert stop_emulator(emu.proc) == 0
    assert time.monotonic() - t0 < 3
    assert emu.proc.stderr.read() == ""
