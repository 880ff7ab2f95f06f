"""EventBridge events as AWS sends them (an emulator feature, off by default).

Owns ``/_emulator/events``.  Once enabled, the emulator puts on moto's
default event bus:

* an **"AWS API Call via CloudTrail"** event for every mutating EC2, ELBv2
  and ECS call it serves (failed calls too, with ``errorCode``), in the
  shape CloudTrail documents: ``eventVersion``, ``userIdentity`` (an IAM user
  named after the caller's access key id, or the identity configured for
  it), ``eventTime``, ``eventSource``, ``eventName``, ``awsRegion``,
  ``sourceIPAddress``, ``userAgent``, ``requestParameters`` (EC2: camelCase
  with ``items`` lists; ELBv2: camelCase with plain lists; ECS: the JSON
  request), ``responseElements``, ``requestID`` (the id the caller got in its
  response), ``eventID``, ``eventType``, ``managementEvent``;
* an **"ECS Task State Change"** event for every task ``lastStatus`` change
  the emulator's scheduler (or a call) makes, with ``clusterArn``,
  ``taskArn``, ``group``, ``containerInstanceArn``, ``lastStatus``,
  ``desiredStatus``, ``containers[].networkBindings``, ``startedBy`` and a
  per-task ``version`` that grows with each change.

Each event is delivered ``delay`` seconds after the change (EventBridge is
near-real-time; CloudTrail's delivery to EventBridge is best-effort and
usually within minutes), through moto's rule matching, to whatever targets
the rules name — an SQS queue created from ``deploy/events/template.yaml``
(``POST /_emulator/events {"stack": ...}``) in the tests.  Knobs mirror
at-least-once delivery: ``duplicate`` (share delivered twice, same event
id), ``reorder`` (share held back up to ``reorder_seconds`` more, so later
events overtake it) and ``drop`` (share never delivered, as CloudTrail's
best-effort delivery may).

``POST /_emulator/events``::

  {"enabled": true, "delay": 0.5, "duplicate": 0.0, "reorder": 0.0,
   "reorder_seconds": 2.0, "drop": 0.0, "seed": 1,
   "identities": {"AKIACONSOLE": {"arn": "arn:aws:iam::123456789012:user/console-admin",
                                   "source_ip": "203.0.113.7"}},
   "stack": {"template": "deploy/events/template.yaml",
             "parameters": {"ClusterArns": "arn:aws:ecs:…:cluster/nestjs-cluster"}}}

``GET`` returns the settings, the counters (``published``, ``delivered``,
``duplicated``, ``dropped``, ``reordered``) and the stack's outputs
(``queue_url``).
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import random
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from state import LOCK

ACCOUNT = "123456789012"
REGION = "us-east-1"
EVENT_SOURCES = {
    "ec2": ("aws.ec2", "ec2.amazonaws.com"),
    "elbv2": ("aws.elasticloadbalancing", "elasticloadbalancing.amazonaws.com"),
    "ecs": ("aws.ecs", "ecs.amazonaws.com"),
}
KNOBS = ("enabled", "delay", "duplicate", "reorder", "reorder_seconds", "drop", "seed", "identities", "stack")
# Values CloudTrail writes as numbers, not strings.
NUMERIC_KEYS = {"fromPort", "toPort", "port", "desiredCount", "maxResults", "count"}


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Publisher:
    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self.enabled = False
        self.delay = 0.5
        self.duplicate = 0.0
        self.reorder = 0.0
        self.reorder_seconds = 2.0
        self.drop = 0.0
        self.identities: dict[str, dict[str, str]] = {}
        self.random = random.Random(1)
        self.counts = {"published": 0, "delivered": 0, "duplicated": 0, "dropped": 0, "reordered": 0}
        self.outputs: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        # Notified after every delivery: SQS long polls wake up (middleware).
        self.delivered = threading.Condition()

    # -- settings ---------------------------------------------------------
    def configure(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("a JSON object of settings")
        unknown = set(body) - set(KNOBS)
        if unknown:
            raise ValueError(f"unknown events settings {sorted(unknown)}; known: {list(KNOBS)}")
        for share in ("duplicate", "reorder", "drop"):
            if share in body:
                value = body[share]
                if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise ValueError(f"{share} is a share between 0 and 1")
                setattr(self, share, float(value))
        for seconds in ("delay", "reorder_seconds"):
            if seconds in body:
                value = body[seconds]
                if not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{seconds} is seconds, 0 or more")
                setattr(self, seconds, float(value))
        if "seed" in body:
            self.random = random.Random(body["seed"])
        if "identities" in body:
            identities = body["identities"]
            if not isinstance(identities, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("arn"), str) for v in identities.values()
            ):
                raise ValueError('identities: {"ACCESS_KEY_ID": {"arn": "...", "source_ip": "..."}}')
            self.identities.update(identities)
        if "stack" in body:
            self.outputs = create_stack(body["stack"])
        if "enabled" in body:
            self.enabled = bool(body["enabled"])
            if self.enabled and self._thread is None:
                self._thread = threading.Thread(target=self._deliver_forever, name="events", daemon=True)
                self._thread.start()
        return self.document()

    def document(self) -> dict[str, Any]:
        with self._cv:
            pending = len(self._heap)
        return {
            "enabled": self.enabled, "delay": self.delay, "duplicate": self.duplicate,
            "reorder": self.reorder, "reorder_seconds": self.reorder_seconds, "drop": self.drop,
            "counts": dict(self.counts), "pending": pending, **self.outputs,
        }

    # -- publishing -------------------------------------------------------
    def publish(self, source: str, detail_type: str, detail: dict[str, Any], at: float,
                resources: list[str] | None = None) -> None:
        if not self.enabled:
            return
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": source,
            "account": ACCOUNT, "time": at, "region": REGION, "resources": resources or [],
            "detail": detail,
        }
        with self._cv:
            self.counts["published"] += 1
            if self.random.random() < self.drop:
                self.counts["dropped"] += 1
                return
            due = at + self.delay
            if self.random.random() < self.reorder:
                self.counts["reordered"] += 1
                due += self.random.uniform(0, self.reorder_seconds)
            heapq.heappush(self._heap, (due, next(self._seq), event))
            if self.random.random() < self.duplicate:
                self.counts["duplicated"] += 1
                again = due + self.random.uniform(0, max(self.delay, 0.1))
                heapq.heappush(self._heap, (again, next(self._seq), event))
            self._cv.notify()

    def _deliver_forever(self) -> None:
        while True:
            with self._cv:
                while not self._heap or self._heap[0][0] > time.time():
                    timeout = None if not self._heap else max(0.0, self._heap[0][0] - time.time())
                    self._cv.wait(timeout)
                _, _, event = heapq.heappop(self._heap)
            try:
                deliver(event)
                self.counts["delivered"] += 1
            except Exception as exc:  # noqa: BLE001 - a bad event must not stop delivery
                print(f"emulator: event delivery failed: {exc!r}", flush=True)
            with self.delivered:
                self.delivered.notify_all()

    # -- CloudTrail -------------------------------------------------------
    def api_call(self, service: str, operation: str, environ: dict[str, Any], body: bytes,
                 status: int | None, response_headers: list[tuple[str, str]], response: bytes,
                 at: float) -> None:
        if not self.enabled or service not in EVENT_SOURCES:
            return
        source, event_source = EVENT_SOURCES[service]
        key = access_key(environ)
        identity = self.identities.get(key, {})
        arn = identity.get("arn") or f"arn:aws:iam::{ACCOUNT}:user/{key or 'unknown'}"
        detail: dict[str, Any] = {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser", "principalId": f"AIDA{abs(hash(arn)) % 10**12:012d}", "arn": arn,
                "accountId": ACCOUNT, "accessKeyId": key, "userName": arn.rsplit("/", 1)[-1],
            },
            "eventTime": rfc3339(at),
            "eventSource": event_source,
            "eventName": operation,
            "awsRegion": REGION,
            "sourceIPAddress": identity.get("source_ip") or environ.get("REMOTE_ADDR", "127.0.0.1"),
            "userAgent": environ.get("HTTP_USER_AGENT", ""),
            "requestParameters": request_parameters(service, environ, body),
            "responseElements": None,
            "requestID": request_id(response_headers, response),
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        }
        if status is not None and status >= 400:
            code, message = error_of(response)
            detail["errorCode"] = code
            detail["errorMessage"] = message
        else:
            detail["responseElements"] = {"_return": True} if service == "ec2" else {}
        self.publish(source, "AWS API Call via CloudTrail", detail, at)

    # -- ECS task state changes ------------------------------------------
    def task_changed(self, task: Any) -> None:
        if not self.enabled:
            return
        try:
            detail = task_detail(task)
        except Exception:  # noqa: BLE001 - a task moto is still building
            return
        self.publish("aws.ecs", "ECS Task State Change", detail, time.time(), [detail["taskArn"]])


PUBLISHER = Publisher()


def deliver(event: dict[str, Any]) -> None:
    """What EventBridge does with an event on the default bus: every rule
    whose pattern matches sends it to its targets (moto's matching)."""
    from moto.events import events_backends

    with LOCK:
        bus = events_backends[ACCOUNT][REGION].event_buses.get("default")
        if bus is None:
            return
        for rule in list(bus.rules.values()):
            # Untransformed: moto's input templating rebuilds the envelope
            # without ``account``, which EventBridge always sends. (No
            # InputTransformer in deploy/events/: the daemon reads events
            # as EventBridge sends them.)
            rule.send_to_targets(copy.deepcopy(event), transform_input=False)


def access_key(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" not in auth:
        return ""
    return auth.split("Credential=", 1)[1].split("/", 1)[0].strip()


def request_id(headers: list[tuple[str, str]], body: bytes) -> str | None:
    for name, value in headers:
        if name.lower() in ("x-amzn-requestid", "x-amz-request-id"):
            return value
    text = body[:4096].decode("utf-8", "replace")
    for tag in ("<requestId>", "<RequestId>", "<RequestID>"):
        if tag in text:
            rest = text.split(tag, 1)[1]
            return rest.split("<", 1)[0].strip()
    return None


def error_of(body: bytes) -> tuple[str, str]:
    text = body.decode("utf-8", "replace")
    try:
        doc = json.loads(text)
        return str(doc.get("__type", "Error")).rsplit("#", 1)[-1], str(doc.get("message", ""))
    except ValueError:
        pass
    code = text.split("<Code>", 1)[1].split("<", 1)[0] if "<Code>" in text else "Error"
    message = text.split("<Message>", 1)[1].split("<", 1)[0] if "<Message>" in text else ""
    return code, message


def _camel(key: str) -> str:
    return key[:1].lower() + key[1:]


def request_parameters(service: str, environ: dict[str, Any], body: bytes) -> dict[str, Any] | None:
    """The call's parameters as CloudTrail records them."""
    if service == "ecs":
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    tree: dict[str, Any] = {}
    for flat, values in form.items():
        if flat in ("Action", "Version"):
            continue
        parts = [p for p in flat.split(".") if p != "member"]
        node: Any = tree
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            key: Any = int(part) if part.isdigit() else _camel(part)
            if isinstance(node, dict):
                if last:
                    node[key] = values[0]
                else:
                    node = node.setdefault(key, {})
            else:  # unreachable: lists are built from dicts below
                break
    return _shape(tree, items=service == "ec2")


def _shape(node: Any, items: bool) -> Any:
    """Numbered dicts become lists (EC2 wraps them in ``{"items": [...]}``);
    numeric fields become numbers."""
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, int) for k in node):
        values = [_shape(node[k], items) for k in sorted(node)]
        return {"items": values} if items else values
    out: dict[str, Any] = {}
    for key, value in node.items():
        value = _shape(value, items)
        if key in NUMERIC_KEYS and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                pass
        # EC2's query API names single-key lists like ``IpRanges.1.CidrIp``;
        # CloudTrail spells the same lists in camelCase with ``items``.
        out[key] = value
    return out


def task_detail(task: Any) -> dict[str, Any]:
    """The ``detail`` of an ECS Task State Change event for ``task``."""
    version = getattr(task, "_event_version", 0) + 1
    task._event_version = version
    containers = []
    for container in getattr(task, "containers", []) or []:
        get = container.get if isinstance(container, dict) else lambda k, d=None: getattr(container, k, d)
        containers.append({
            "containerArn": get("containerArn") or get("container_arn"),
            "name": get("name"),
            "lastStatus": get("lastStatus") or get("last_status"),
            "networkBindings": get("networkBindings") or get("network_bindings") or [],
            "taskArn": task.task_arn,
        })
    started_by = getattr(task, "started_by", "") or ""
    group = getattr(task, "group", None) or (started_by if started_by.startswith("service:") else None)
    return {
        "clusterArn": task.cluster_arn if hasattr(task, "cluster_arn") else _cluster_arn(task),
        "taskArn": task.task_arn,
        "taskDefinitionArn": getattr(task, "task_definition_arn", None),
        "containerInstanceArn": getattr(task, "container_instance_arn", None),
        "group": group,
        "lastStatus": task.last_status,
        "desiredStatus": task.desired_status,
        "launchType": getattr(task, "launch_type", "EC2"),
        "startedBy": started_by,
        "containers": containers,
        "version": version,
        "updatedAt": rfc3339(time.time()),
    }


def _cluster_arn(task: Any) -> str:
    cluster = getattr(task, "cluster_name", None) or getattr(task, "cluster", "default")
    if str(cluster).startswith("arn:"):
        return str(cluster)
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"


def create_stack(spec: Any) -> dict[str, str]:
    """Creates a CloudFormation stack in moto from a template file (the
    shipped ``deploy/events/template.yaml``), so the tests deliver through
    the rules operators deploy.  Returns its outputs, snake_cased."""
    from moto.cloudformation import cloudformation_backends

    if not isinstance(spec, dict) or not isinstance(spec.get("template"), str):
        raise ValueError('stack: {"template": PATH, "parameters": {...}}')
    with open(spec["template"], encoding="utf-8") as f:
        template = f.read()
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError("stack parameters are a JSON object")
    with LOCK:
        backend = cloudformation_backends[ACCOUNT][REGION]
        stack = backend.create_stack(
            name=spec.get("name", "ecs-reconciler-events"), template=template,
            parameters={k: str(v) for k, v in parameters.items()},
        )
        outputs = {o.key: str(o.value) for o in stack.output_map.values() if o}
    snake = {"QueueUrl": "queue_url", "QueueArn": "queue_arn", "DeadLetterQueueUrl": "dead_letter_queue_url"}
    return {snake.get(k, k): v for k, v in outputs.items()}
