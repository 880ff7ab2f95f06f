"""WSGI middleware in front of moto's server app (an emulator feature).

For every request it:

1. serves ``/_emulator/...`` itself (control API, never forwarded to moto),
2. identifies the AWS call: service from the SigV4 credential scope
   (``.../us-east-1/ec2/aws4_request``; ``elasticloadbalancing`` -> elbv2),
   operation from ``X-Amz-Target`` (ECS JSON protocol) or the form body's
   ``Action=`` (EC2/ELBv2 query protocol; the body is read once and put back
   as a fresh stream for moto),
3. attributes it to a client (``reconciler`` when the User-Agent or
   X-Amz-User-Agent header contains ``aws-sdk-rust``, else ``other``),
   counts it (``GET /_emulator/calls``, per client, per second) and appends
   it to the ``--calls-log`` file, if any; applies a matching fault rule,
4. forwards it to moto while holding ``state.LOCK`` (moto is not
   thread-safe and the ECS scheduler thread mutates the same backends); a
   call that is not a Describe/List/Get tells the scheduler that something
   may have changed (``state.mark_changed``).  A RegisterTargets or
   DeregisterTargets call runs inside ``oracle.calling(client)``, so the
   safety oracle judges it (``/_emulator/oracle``, oracle.py).
"""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import ec2_networking
import events
import hooks
import lifecycle
import oracle
import read_lag
from faults import FaultBook, error_response
from state import LOCK, SETTINGS, mark_changed

SIGNING_NAME_TO_SERVICE = {"elasticloadbalancing": "elbv2", "ecs": "ecs", "ec2": "ec2"}
# Services whose mutating calls CloudTrail records as events (events.py).
AUDITED = ("ec2", "elbv2", "ecs")

StartResponse = Callable[..., Any]


CLIENTS = ("reconciler", "other")
RUST_SDK_MARKER = "aws-sdk-rust"
# Timeline buckets kept (one per second with calls): about an hour.
TIMELINE_SECONDS = 3600
READ_PREFIXES = ("Describe", "List", "Get")


def classify_client(environ: dict[str, Any]) -> str:
    """``reconciler`` for the Rust SDK (the controller), else ``other``."""
    for header in ("HTTP_USER_AGENT", "HTTP_X_AMZ_USER_AGENT"):
        if RUST_SDK_MARKER in environ.get(header, ""):
            return "reconciler"
    return "other"


class CallLog:
    """Call counters (total, per client, per second) and the optional
    JSON-lines call log.  Thread-safe."""

    def __init__(self, log_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()
        self.by_client: dict[str, tuple[Counter[str], Counter[str]]] = {
            c: (Counter(), Counter()) for c in CLIENTS
        }
        self.start: float | None = None
        # second offset -> [calls, faulted, reconciler], at most
        # TIMELINE_SECONDS of them (the oldest go first).
        self.seconds: dict[int, list[int]] = {}
        self._log_lock = threading.Lock()
        self._log: Any = None
        if log_path:
            self.open_log(log_path)

    def open_log(self, path: str) -> None:
        with self._log_lock:
            if self._log is not None:
                self._log.close()
            self._log = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept open

    def record(self, key: str, faulted: bool, client: str = "other", t: float | None = None) -> None:
        t = time.time() if t is None else t
        with self._lock:
            self.calls[key] += 1
            calls, faults = self.by_client[client]
            calls[key] += 1
            if faulted:
                self.faulted[key] += 1
                faults[key] += 1
            if self.start is None:
                self.start = t
            offset = max(0, int(t - self.start))
            bucket = self.seconds.get(offset)
            if bucket is None:
                bucket = self.seconds[offset] = [0, 0, 0]
                while len(self.seconds) > TIMELINE_SECONDS:
                    del self.seconds[min(self.seconds)]
            bucket[0] += 1
            if faulted:
                bucket[1] += 1
            if client == "reconciler":
                bucket[2] += 1

    def log(self, t: float, service: str, operation: str, client: str, faulted: bool, status: int | None) -> None:
        if self._log is None:
            return
        line = json.dumps({
            "t": t, "service": service, "operation": operation, "client": client,
            "faulted": faulted, "status": status,
        })
        with self._log_lock:
            if self._log is not None:
                self._log.write(line + "\n")

    def snapshot(self, client: str | None = None) -> dict[str, Any]:
        with self._lock:
            calls, faulted = (self.calls, self.faulted) if client is None else self.by_client[client]
            out: dict[str, Any] = dict(sorted(calls.items()))
            out["faulted"] = dict(sorted(faulted.items()))
            return out

    def timeline(self) -> dict[str, Any]:
        with self._lock:
            return {
                "start": self.start,
                "seconds": [
                    {"t": t, "calls": b[0], "faulted": b[1], "reconciler": b[2]}
                    for t, b in sorted(self.seconds.items())
                ],
            }

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.faulted.clear()
            for calls, faulted in self.by_client.values():
                calls.clear()
                faulted.clear()
            self.start = None
            self.seconds.clear()


def identify(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(service, operation) of an AWS request; the body stream is restored."""
    service = None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        try:
            scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
            signing_name = scope.split("/")[3].lower()
            service = SIGNING_NAME_TO_SERVICE.get(signing_name, signing_name)
        except IndexError:
            service = None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target and "." in target:
        return service, target.rsplit(".", 1)[1]
    operation = None
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            operation = action[0]
    if operation is None:
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
        if action:
            operation = action[0]
    return service, operation


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back for moto."""
    stream = environ.get("wsgi.input")
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = stream.read(length) if stream is not None and length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _same_request_id(
    headers: list[tuple[str, str]], chunks: list[bytes],
) -> tuple[list[tuple[str, str]], list[bytes]]:
    """EC2 answers with one request id, in its ``x-amzn-RequestId`` header
    and its body's ``<requestId>``; moto puts a placeholder in the body.
    The header's id goes in both, as CloudTrail's ``requestID`` is the one
    the caller got (events.py), whichever of the two its SDK reads."""
    rid = next((v for k, v in headers if k.lower() == "x-amzn-requestid"), None)
    if not rid or not chunks:
        return headers, chunks
    body = b"".join(chunks)
    open_tag, close_tag = b"<requestId>", b"</requestId>"
    # At the start of most EC2 responses, at the end of some (DescribeVpcs).
    start = body.find(open_tag, 0, 1024)
    if start < 0:
        start = body.rfind(open_tag, max(0, len(body) - 1024))
    end = body.find(close_tag, start) if start >= 0 else -1
    if end < 0:
        return headers, chunks
    body = body[: start + len(open_tag)] + rid.encode() + body[end:]
    headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]
    return headers, [body]


def _has_messages(payload: bytes) -> bool:
    """Whether a JSON ReceiveMessage answer carries a message (moto answers
    an empty receive with ``{"Messages": []}`` or ``{}``)."""
    try:
        return bool(json.loads(payload or b"{}").get("Messages"))
    except (ValueError, AttributeError):
        return True  # not JSON: hand it back as it is


def _queue_wait_seconds(url: str) -> int:
    """The queue's ReceiveMessageWaitTimeSeconds (its default long poll)."""
    from moto.sqs import sqs_backends

    name = url.rstrip("/").rsplit("/", 1)[-1]
    with LOCK:
        try:
            queue = sqs_backends[events.ACCOUNT][events.REGION].get_queue(name)
        except Exception:  # noqa: BLE001 - moto answers the missing queue itself
            return 0
        return int(getattr(queue, "receive_message_wait_time_seconds", 0) or 0)


def _json(start_response: StartResponse, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}.get(status, "")
    start_response(
        f"{status} {reason}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


class EmulatorMiddleware:
    def __init__(self, app: Callable[..., Iterable[bytes]], extra: dict[str, Any] | None = None) -> None:
        self.app = app
        self.faults = FaultBook()
        self.calls = CallLog()
        self.extra = extra if extra is not None else {}  # e.g. {"seed": {...}}

    # ------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_emulator" or path.startswith("/_emulator/"):
            return self.control(environ, start_response)

        service, operation = identify(environ)
        if not (service and operation):
            return self._forward(environ, start_response, operation)
        t0 = time.time()
        client = classify_client(environ)
        rule = self.faults.pick(service, operation, client)
        faulted = rule is not None and rule.kind != "latency"
        self.calls.record(f"{service}:{operation}", faulted, client, t0)
        status: int | None = None
        try:
            if rule is not None:
                if rule.kind == "latency":
                    time.sleep(max(0, rule.latency_ms) / 1000.0)
                elif rule.kind == "drop":
                    # Consume the body first: werkzeug would otherwise parse the
                    # unread bytes as the next request line after we bail out.
                    try:
                        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                    except (OSError, ValueError):
                        pass
                    sock = environ.get("werkzeug.socket")
                    if sock is not None:
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    # werkzeug treats ConnectionError as "client went away": no reply.
                    raise ConnectionAbortedError("emulator fault: drop")
                else:
                    status, headers, body = error_response(service, rule.kind, rule.status)
                    headers = headers + [("Content-Length", str(len(body)))]
                    start_response(f"{status} {'Bad Request' if status == 400 else 'Error'}", headers)
                    return [body]
            hooks.HOOKS.run_before(service, operation, client)  # another writer first (hooks.py)
            if service == "sqs" and operation == "ReceiveMessage":
                return self._long_poll(environ, start_response)
            audited = (events.PUBLISHER.enabled and service in AUDITED
                       and not operation.startswith(READ_PREFIXES))
            request = _body(environ) if audited else b""
            seen: dict[str, Any] = {}
            out = self._forward(environ, start_response, operation, seen, service, client)
            status = seen.get("status")
            if audited:
                # CloudTrail records the call, successful or not (events.py).
                events.PUBLISHER.api_call(service, operation, environ, request, status,
                                          seen.get("headers", []), out[0] if out else b"", t0)
            return out
        finally:
            self.calls.log(t0, service, operation, client, faulted, status)

    def _forward(
        self, environ: dict[str, Any], start_response: StartResponse, operation: str | None,
        seen: dict[str, int] | None = None, service: str | None = None, client: str | None = None,
    ) -> list[bytes]:
        is_read = bool(operation and operation.startswith(READ_PREFIXES))
        with LOCK:
            try:
                # Only the controller's reads lag: the tests' own tools
                # (awsctl, boto3 snippets, the seed) read the current state
                # so they can drive the scenario they mean to.
                lagged = service and SETTINGS.read_lag and is_read and client == "reconciler"
                lag_t = read_lag.pick_as_of(service) if lagged else None
                if service == "ec2" and read_lag.lag_of("ec2"):
                    status, headers, chunks = self._forward_ec2_lagged(environ, is_read, lag_t)
                elif service == "elbv2" and client is not None and operation in oracle.JUDGED:
                    with oracle.calling(client):  # the safety oracle judges it (oracle.py)
                        status, headers, chunks = self._run(environ)
                else:
                    with read_lag.reading(lag_t):
                        status, headers, chunks = self._run(environ)
            finally:
                if not is_read:
                    mark_changed()  # the scheduler re-checks every service
        if service == "ec2":
            headers, chunks = _same_request_id(headers, chunks)
        if seen is not None:
            seen["headers"] = headers
            try:
                seen["status"] = int(str(status).split(" ", 1)[0])
            except ValueError:
                pass
        start_response(status, headers)
        return [b"".join(chunks)]

    def _long_poll(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        """SQS ReceiveMessage with WaitTimeSeconds as SQS does it: answers as
        soon as a message is there, else after the wait, empty.  moto would
        sleep inside the call, holding the lock every other call needs, so
        the wait happens here, between short receives."""
        raw = _body(environ)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict):  # not the JSON protocol: moto's own handling
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._forward(environ, start_response, "ReceiveMessage")
        wait = request.get("WaitTimeSeconds")
        if wait is None:
            wait = _queue_wait_seconds(request.get("QueueUrl", ""))
        deadline = time.time() + max(0, min(20, int(wait or 0)))
        request["WaitTimeSeconds"] = 0
        body = json.dumps(request).encode()
        while True:
            env = dict(environ)
            env["wsgi.input"] = io.BytesIO(body)
            env["CONTENT_LENGTH"] = str(len(body))
            with LOCK:
                status, headers, chunks = self._run(env)
            payload = b"".join(chunks)
            if time.time() >= deadline or not status.startswith("200") or _has_messages(payload):
                start_response(status, headers)
                return [payload]
            with events.PUBLISHER.delivered:
                events.PUBLISHER.delivered.wait(min(0.25, max(0.0, deadline - time.time())))

    def _run(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """One call through moto (LOCK held): (status, headers, body chunks)."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: captured.setdefault("written", []).append(data)

        result = self.app(environ, capture)
        try:
            chunks = captured.get("written", []) + [bytes(c) for c in result]
        finally:
            if hasattr(result, "close"):
                result.close()
        return captured["status"], captured["headers"], chunks

    def _forward_ec2_lagged(
        self, environ: dict[str, Any], is_read: bool, lag_t: float | None,
    ) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """EC2 with read lag: recorded responses (read_lag.Ec2Recorder)."""
        stream = environ.get("wsgi.input")
        body = stream.getvalue() if isinstance(stream, io.BytesIO) else b""
        if not is_read:
            read_lag.EC2.before_write(self._run)
            return self._run(environ)
        key = read_lag.EC2.key(environ, body)
        hit = read_lag.EC2.lookup(key, lag_t) if lag_t is not None else None
        if hit is not None:
            read_lag.EC2.touch(key)
            return hit
        status, headers, chunks = self._run(environ)
        read_lag.EC2.store(key, environ, body, status, headers, chunks)
        return status, headers, chunks

    # ------------------------------------------------------------------
    def control(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return _json(start_response, 400, {"error": f"invalid JSON: {exc}"})

        try:
            if path == "/_emulator/health" and method == "GET":
                return _json(start_response, 200, {"ok": True})
            if path == "/_emulator/faults":
                if method == "GET":
                    return _json(start_response, 200, {"faults": self.faults.list()})
                if method == "POST":
                    specs = body if isinstance(body, list) else [body]
                    rules = [self.faults.add(spec) for spec in specs]
                    return _json(start_response, 200, {"added": [r.id for r in rules], "faults": self.faults.list()})
                if method == "DELETE":
                    self.faults.clear()
                    return _json(start_response, 200, {"faults": []})
                return _json(start_response, 405, {"error": "use GET, POST or DELETE"})
            if path == "/_emulator/ec2":
                if method == "POST":
                    return _json(start_response, 200, ec2_networking.configure(body))
                if method == "GET":
                    return _json(start_response, 200, ec2_networking.settings())
                return _json(start_response, 405, {"error": "use GET or POST"})
            if path == "/_emulator/events":
                if method == "POST":
                    return _json(start_response, 200, events.PUBLISHER.configure(body))
                if method == "GET":
                    return _json(start_response, 200, events.PUBLISHER.document())
                return _json(start_response, 405, {"error": "use GET or POST"})
            if path == "/_emulator/hooks":
                if method == "GET":
                    return _json(start_response, 200, {"hooks": hooks.HOOKS.list()})
                if method == "POST":
                    specs = body if isinstance(body, list) else [body]
                    added = [hooks.HOOKS.add(spec)["id"] for spec in specs]
                    return _json(start_response, 200, {"added": added, "hooks": hooks.HOOKS.list()})
                if method == "DELETE":
                    hooks.HOOKS.clear()
                    return _json(start_response, 200, {"hooks": []})
                return _json(start_response, 405, {"error": "use GET, POST or DELETE"})
            if path == "/_emulator/calls" and method == "GET":
                client = parse_qs(environ.get("QUERY_STRING", "")).get("client", [None])[0]
                if client is not None and client not in CLIENTS:
                    raise ValueError(f"unknown client {client!r}; known: {list(CLIENTS)}")
                return _json(start_response, 200, self.calls.snapshot(client))
            if path == "/_emulator/calls/timeline" and method == "GET":
                return _json(start_response, 200, self.calls.timeline())
            if path == "/_emulator/calls/reset" and method == "POST":
                self.calls.reset()
                return _json(start_response, 200, {"ok": True})
            if path == "/_emulator/oracle" or path == "/_emulator/oracle/reset":
                if (path, method) not in (("/_emulator/oracle", "GET"), ("/_emulator/oracle/reset", "POST")):
                    return _json(start_response, 405, {"error": "use GET /_emulator/oracle or POST /_emulator/oracle/reset"})
                with LOCK:
                    if path.endswith("/reset"):
                        oracle.ORACLE.reset()
                    oracle.ORACLE.watching = True  # no_healthy is tracked from now on
                    return _json(start_response, 200, oracle.ORACLE.document())
            if path == "/_emulator/scheduler":
                if method == "POST":
                    self._update_scheduler(body)
                elif method != "GET":
                    return _json(start_response, 405, {"error": "use GET or POST"})
                return _json(start_response, 200, SETTINGS.as_dict())
            if path == "/_emulator/scheduler/stats":
                import scheduler

                sched = scheduler.SCHEDULER
                if sched is None:
                    return _json(start_response, 404, {"error": "no scheduler running"})
                if method == "POST":
                    sched.stats.reset()
                elif method != "GET":
                    return _json(start_response, 405, {"error": "use GET or POST"})
                return _json(start_response, 200, sched.stats.as_dict())
            if path == "/_emulator/topology" or path == "/_emulator/topology/status":
                return self._topology(path, method, body, start_response)
            if path == "/_emulator/seed" and method == "GET":
                return _json(start_response, 200, self.extra.get("seed") or {})
            if path.startswith("/_emulator/metadata/") and path.endswith("/task") and method == "GET":
                # ECS container metadata endpoint v4 of one simulated copy:
                # point a process's ECS_CONTAINER_METADATA_URI_V4 at
                # /_emulator/metadata/<task id> and it is "inside" that task.
                task_id = path[len("/_emulator/metadata/"):-len("/task")]
                found = task_metadata(task_id)
                if found is None:
                    return _json(start_response, 404, {"error": f"no task {task_id}"})
                return _json(start_response, 200, found)
        except ValueError as exc:
            return _json(start_response, 400, {"error": str(exc)})
        return _json(start_response, 404, {"error": f"no control endpoint {method} {path}"})

    def _topology(self, path: str, method: str, body: Any, start_response: StartResponse) -> list[bytes]:
        """Generated benchmark topology (topology.py), built in-process."""
        import topology

        if path == "/_emulator/topology" and method == "GET":
            last = self.extra.get("topology")
            if last is None:
                return _json(start_response, 200, {})
            with LOCK:
                status = topology.status_in_process(last)
            return _json(start_response, 200, {"params": dataclasses.asdict(last), **status})
        if method != "POST":
            return _json(start_response, 405, {"error": "use POST (GET for the last topology's status)"})
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object of topology parameters")
        params = topology.Params.from_dict(body)
        with LOCK:
            if path == "/_emulator/topology/status":
                return _json(start_response, 200, topology.status_in_process(params))
            try:
                ids = topology.build_in_process(params)
            except ValueError:
                raise
            except Exception as exc:  # noqa: BLE001 - a moto error half-way: say so
                return _json(start_response, 500, {"error": f"building the topology failed: {exc!r}"})
            finally:
                mark_changed()
                if read_lag.lag_of("ec2"):
                    read_lag.EC2.writes.append(time.time())  # EC2 changed in-process
            self.extra["topology"] = params
        return _json(start_response, 200, ids)

    @staticmethod
    def _update_scheduler(body: dict[str, Any]) -> None:
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        known = {"delay", "paused", "deregister_on_stop", "for_next", "draining_seconds",
                 "unbacked_targets_unhealthy", "lifecycle", "rolling_deployments", "read_lag",
                 "instance_loss_lag", "capacity_providers",
                 "task_sets"}
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(known)}")
        # Validate the new behaviours' values before changing anything.
        lifecycle_value = lifecycle.validate(body.get("lifecycle"))
        read_lag.validate(body.get("read_lag"))
        loss = body.get("instance_loss_lag")
        if loss is not None and float(loss) < 0:
            raise ValueError("instance_loss_lag must be null or >= 0")
        with LOCK:
            if "delay" in body:
                delay = float(body["delay"])
                if delay < 0:
                    raise ValueError("delay must be >= 0")
                SETTINGS.scheduler_delay = delay
            if "paused" in body:
                SETTINGS.paused = bool(body["paused"])
            if "instance_loss_lag" in body:
                SETTINGS.instance_loss_lag = None if loss is None else float(loss)
            if "capacity_providers" in body:
                SETTINGS.capacity_providers = bool(body["capacity_providers"])
            if "task_sets" in body:
                SETTINGS.task_sets = bool(body["task_sets"])
            if "read_lag" in body:
                read_lag.configure(body["read_lag"])
            if "rolling_deployments" in body:
                SETTINGS.rolling_deployments = bool(body["rolling_deployments"])
            if "lifecycle" in body:
                SETTINGS.lifecycle = lifecycle_value
            if "unbacked_targets_unhealthy" in body:
                SETTINGS.unbacked_targets_unhealthy = bool(body["unbacked_targets_unhealthy"])
            if "draining_seconds" in body:
                SETTINGS.draining_seconds = int(body["draining_seconds"])
            if "deregister_on_stop" in body:
                on = bool(body["deregister_on_stop"])
                if not on and body.get("for_next") is not None:
                    SETTINGS.skip_deregister_next = int(body["for_next"])
                else:
                    SETTINGS.deregister_on_stop = on
                    SETTINGS.skip_deregister_next = 0
            elif "for_next" in body:
                SETTINGS.skip_deregister_next = int(body["for_next"])


def task_metadata(task_id: str) -> dict[str, Any] | None:
    """The `/task` document of the ECS metadata endpoint v4 for a task."""
    from moto.ecs.models import ecs_backends

    with LOCK:
        for regions in ecs_backends.values():
            for backend in regions.values():
                for cluster_name, tasks in backend.tasks.items():
                    for task in tasks.values():
                        if task.task_arn.split("/")[-1] != task_id:
                            continue
                        family, _, revision = task.task_definition_arn.split("/")[-1].rpartition(":")
                        cluster = backend.clusters.get(cluster_name)
                        return {
                            "Cluster": cluster.arn if cluster is not None else cluster_name,
                            "TaskARN": task.task_arn,
                            "Family": family,
                            "Revision": revision,
                            "DesiredStatus": task.desired_status,
                            "KnownStatus": task.last_status,
                            "LaunchType": "EC2",
                            "AvailabilityZone": backend.region_name + "a",
                        }
    return None
