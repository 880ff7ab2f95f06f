"""Fault injection rules and AWS-shaped error responses (not a moto gap: an
emulator feature, so tests can exercise the client's retry/backoff paths).

A rule matches calls by service ("ecs", "ec2", "elbv2" or "*") and operation
("DescribeTargetHealth" or "*"), fires with probability ``rate`` and, when
``count`` is set, only for the next ``count`` matching calls (then it expires).
``client`` ("reconciler", "other" or "*") limits it to the controller's calls
(the Rust SDK) or to everything else; ``after`` lets the first N matching
calls through untouched (e.g. ``after: 1`` fails page two of a list, not page
one).
Kinds:

* ``throttle`` - the service's real throttling error
  (ECS: HTTP 400 JSON ThrottlingException; EC2: HTTP 503 XML
  RequestLimitExceeded; ELBv2: HTTP 400 XML Throttling),
* ``5xx``      - the service's server error (``status`` 500 default, or 503),
* ``latency``  - sleep ``latency_ms`` then forward the call normally,
* ``drop``     - close the connection without sending any response.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

SERVICES = ("ecs", "ec2", "elbv2")
KINDS = ("throttle", "5xx", "latency", "drop")

ELBV2_NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"


@dataclass
class FaultRule:
    service: str = "*"
    operation: str = "*"
    kind: str = "throttle"
    rate: float = 1.0
    count: int | None = None
    latency_ms: int = 0
    status: int = 500  # for kind=5xx: 500 or 503
    client: str = "*"  # "reconciler", "other" or "*"
    after: int = 0  # matching calls let through before the rule applies
    id: int = 0
    fired: int = field(default=0)

    def matches(self, service: str, operation: str, client: str = "other") -> bool:
        return (
            self.service in ("*", service)
            and self.operation in ("*", operation)
            and self.client in ("*", client)
        )


class FaultBook:
    """Thread-safe set of active rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> FaultRule:
        rule = parse_rule(spec)
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def pick(self, service: str, operation: str, client: str = "other") -> FaultRule | None:
        """Return the first rule that fires for this call (consuming its count)."""
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(service, operation, client):
                    continue
                if rule.after > 0:
                    rule.after -= 1
                    continue
                if rule.rate < 1.0 and random.random() >= rule.rate:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None


def parse_rule(spec: dict[str, Any]) -> FaultRule:
    if not isinstance(spec, dict):
        raise ValueError("fault rule must be a JSON object")
    service = str(spec.get("service", "*")).lower()
    if service == "elasticloadbalancing":
        service = "elbv2"
    if service != "*" and service not in SERVICES:
        raise ValueError(f"service must be one of {SERVICES} or '*'")
    kind = str(spec.get("kind", "throttle"))
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    rate = float(spec.get("rate", 1.0))
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within 0.0..1.0")
    count = spec.get("count")
    if count is not None:
        count = int(count)
        if count < 1:
            raise ValueError("count must be >= 1")
    client = str(spec.get("client", "*"))
    if client not in ("*", "reconciler", "other"):
        raise ValueError("client must be 'reconciler', 'other' or '*'")
    after = int(spec.get("after", 0))
    if after < 0:
        raise ValueError("after must be >= 0")
    status = int(spec.get("status", 500))
    if status not in (500, 503):
        raise ValueError("status must be 500 or 503")
    return FaultRule(
        service=service,
        operation=str(spec.get("operation", "*")),
        kind=kind,
        rate=rate,
        count=count,
        latency_ms=int(spec.get("latency_ms", 0)),
        status=status,
        client=client,
        after=after,
    )


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(service: str, kind: str, status: int = 500) -> tuple[int, list[tuple[str, str]], bytes]:
    """(HTTP status, headers, body) of a throttle or 5xx error for ``service``."""
    rid = _request_id()
    if service == "ecs":
        if kind == "throttle":
            code, msg, http = "ThrottlingException", "Rate exceeded", 400
        elif status == 503:
            code, msg, http = "ServiceUnavailable", "Service is unavailable.", 503
        else:
            code, msg, http = "InternalFailure", "The request processing has failed because of an unknown error, exception or failure.", 500
        body = json.dumps({"__type": code, "message": msg}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", rid)]
        return http, headers, body
    if service == "ec2":
        if kind == "throttle":
            code, msg, http = "RequestLimitExceeded", "Request limit exceeded.", 503
        elif status == 503:
            code, msg, http = "Unavailable", "The server is overloaded and can't handle the request.", 503
        else:
            code, msg, http = "InternalError", "An internal error has occurred.", 500
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        ).encode()
        return http, [("Content-Type", "text/xml;charset=UTF-8"), ("x-amzn-RequestId", rid)], body
    # elbv2
    if kind == "throttle":
        typ, code, msg, http = "Sender", "Throttling", "Rate exceeded", 400
    elif status == 503:
        typ, code, msg, http = "Receiver", "ServiceUnavailable", "Service is unavailable.", 503
    else:
        typ, code, msg, http = "Receiver", "InternalFailure", "Internal failure.", 500
    body = (
        f'<ErrorResponse xmlns="{ELBV2_NS}"><Error><Type>{typ}</Type><Code>{code}</Code>'
        f"<Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    ).encode()
    return http, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)], body
