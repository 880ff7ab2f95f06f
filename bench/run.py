#!/usr/bin/env python3
"""Performance at scale: the ecs-reconciler benchmark (bench/README.md).

    scripts/bench.sh [--sizes 1,100,1000] [--drifts 20] [--edits 5]
                     [--c7n-groups 100,1000|none] [--out bench/results.json]

For each size S (services x 10 tasks/targets, 100 security groups,
max(1, S/100) clusters) on a fresh emulator, with the RELEASE binary
(copied to a temp dir first):

1. builds the generated topology in-process (tests/emulator/topology.py)
   and writes its desired-state YAML;
2. starts `ecs-reconciler run` (default 30 s resync), waits for 2 passes,
   resets the emulator's counters and measures exactly one more pass: calls
   per operation against the lower bound computed from the topology,
   mutating calls;
3. footprint: RSS idle (VmRSS between passes) and peak (VmHWM), the pass's
   wall time, its CPU time (daemon and emulator, from /proc);
4. drift-to-correction latency: N drifts, one every 1.5-3 s, found in the
   audit log;
5. config-edit-to-applied latency: replicas 10 -> 11 -> 10 by atomic rename;
6. with the events queue (issue 17): the emulator's EventBridge events on
   (0.5 s delay) through deploy/events/template.yaml, the daemon restarted
   with --events-queue and a 5-minute resync: the same kind of drifts made
   with a console user's key (latency, and who the audit line names), the
   controller's calls in an idle minute, API calls per hour next to polling
   at 30 s; at one size (--events-drop-size) 10% of events dropped, every
   drift corrected, the lost ones by the resync;

then 7. Cloud Custodian side by side (bench/c7n/run.py) on another fresh
emulator, and prints the figures next to the issue's goals.

Run it with the emulator venv's python (scripts/bench.sh does). Every wait
is bounded; every process it starts is stopped by its PID.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_DIR = ROOT / "tests" / "emulator"
sys.path.insert(0, str(EMULATOR_DIR))
import topology  # noqa: E402  (tests/emulator/topology.py: plan, render_yaml, build)

REGION = "us-east-1"
TARGETS_PER_SERVICE = 10
GROUPS = 100
DEFAULT_RESYNC = 30.0
EVENTS_RESYNC = 300.0
EVENT_DELAY = 0.5
CONSOLE_KEY = "AKIACONSOLEADMIN"
CONSOLE_ARN = "arn:aws:iam::123456789012:user/console-admin"
EVENTS_TEMPLATE = ROOT / "deploy" / "events" / "template.yaml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
READ_PREFIXES = ("Describe", "List", "Get")

# Ceilings of the controller's batched reads (AWS's own per-call maxima).
DESCRIBE_SERVICES_PER_CALL = 10
TASKS_PER_PAGE = 100
CONTAINER_INSTANCES_PER_PAGE = 100
EC2_FILTER_VALUES = 200
RULES_PER_PAGE = 1000
ELB_NAMES_PER_CALL = 20
TARGET_GROUPS_PER_PAGE = 400

GOALS = {
    "calls_ratio": 1.00,
    "idle_rss_mib": 20.0,
    "rss_mib_at_1000": 64.0,
    "cpu_ms_per_pass": 50.0,
    "edit_s": 2.0,
    "c7n_rss_ratio": 10.0,
    "c7n_wall_ratio": 5.0,
}

# Processes this script started (pid -> Popen), stopped in cleanup().
CHILDREN: dict[int, subprocess.Popen] = {}


def log(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# processes

def spawn(cmd: list[str], *, env: dict[str, str] | None = None, stdout: Path, stderr: Path,
          cwd: Path | None = None) -> subprocess.Popen:
    out = open(stdout, "ab")
    err = open(stderr, "ab")
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        out.close()
        err.close()
    CHILDREN[proc.pid] = proc
    return proc


def stop(proc: subprocess.Popen | None, grace: float = 10.0, group: bool = False) -> int | None:
    """SIGTERM, wait up to `grace`, then SIGKILL; by PID (or the process
    group this script created for it, when `group`)."""
    if proc is None:
        return None
    CHILDREN.pop(proc.pid, None)
    if proc.poll() is not None:
        return proc.returncode

    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(proc.pid, sig)  # its own session: pgid == pid
            else:
                os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None


def cleanup() -> None:
    for proc in list(CHILDREN.values()):
        stop(proc, grace=5.0)


def _on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------
# /proc

def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of the whole process (all threads), in seconds."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_sched_ns(pid: int) -> int | None:
    """Sum over the live threads of /proc/PID/task/*/schedstat's on-CPU ns
    (finer than the 10 ms ticks of stat; threads that exited are missing)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def proc_mem_kib(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024.0, 1)


# --------------------------------------------------------------------------
# HTTP

def http_json(url: str, method: str = "GET", body: Any = None, timeout: float = 60.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def http_text(url: str, timeout: float = 60.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# emulator

class Emulator:
    def __init__(self, python: str, work: Path, name: str, calls_log: bool = True) -> None:
        self.work = work
        self.port_file = work / f"{name}.port"
        # A port file left by an earlier run in the same directory names a
        # dead emulator: wait for this one's.
        self.port_file.unlink(missing_ok=True)
        self.calls_log = work / f"{name}.calls.jsonl" if calls_log else None
        cmd = [python, str(EMULATOR_DIR / "emulator.py"), "--host", "127.0.0.1", "--port", "0",
               "--port-file", str(self.port_file)]
        if self.calls_log:
            cmd += ["--calls-log", str(self.calls_log)]
        env = dict(os.environ)
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
            env.pop(key, None)
        t0 = time.monotonic()
        self.proc = spawn(cmd, env=env, stdout=work / f"{name}.log", stderr=work / f"{name}.log")
        deadline = t0 + 120
        while not (self.port_file.exists() and self.port_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited ({self.proc.returncode}); see {work / (name + '.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError("emulator did not announce its port within 120 s")
            time.sleep(0.2)
        self.endpoint = f"http://127.0.0.1:{int(self.port_file.read_text().strip())}"
        self.start_seconds = round(time.monotonic() - t0, 2)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def control(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        return http_json(f"{self.endpoint}/_emulator/{path}", method, body, timeout)

    def calls(self, client: str | None = "reconciler") -> dict[str, Any]:
        q = f"?client={client}" if client else ""
        return self.control("GET", f"calls{q}")

    def reset_calls(self) -> None:
        self.control("POST", "calls/reset", {})

    def close(self) -> None:
        stop(self.proc, grace=10.0)


class CallsTail:
    """Follows the emulator's --calls-log (one JSON line per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.buf = b""

    def skip_to_end(self) -> None:
        try:
            self.offset = self.path.stat().st_size
        except OSError:
            self.offset = 0
        self.buf = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        self.offset += len(chunk)
        data = self.buf + chunk
        lines = data.split(b"\n")
        self.buf = lines.pop()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


# --------------------------------------------------------------------------
# daemon

class Daemon:
    def __init__(self, binary: Path, config: Path, work: Path, endpoint: str, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.audit = work / "audit.jsonl"
        self.stderr = work / "daemon.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ECS_RECONCILER_", "AWS_", "ECS_CONTAINER_METADATA"))}
        env.update({
            "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true",
            "ECS_RECONCILER_LOG_FORMAT": "json",
        })
        self.cmd = [str(binary), "run", "--config", str(config), "--listen", f"127.0.0.1:{self.port}",
                    "--audit-log", str(self.audit), *(extra or [])]
        self.started = time.time()
        self.proc = spawn(self.cmd, env=env, stdout=work / "daemon.stdout", stderr=self.stderr)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self, timeout: float = 30.0) -> dict[str, Any] | None:
        """The `daemon` part of /api/v1/status (passes, last_pass_*, units)."""
        try:
            doc = http_json(f"{self.base}/api/v1/status", timeout=timeout)
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return doc.get("daemon") if isinstance(doc, dict) else None

    def metrics(self) -> str | None:
        try:
            return http_text(f"{self.base}/metrics", timeout=30)
        except (OSError, urllib.error.URLError):
            return None

    def audit_lines(self) -> list[dict[str, Any]]:
        try:
            text = self.audit.read_text()
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def close(self) -> int | None:
        return stop(self.proc, grace=25.0)


def daemon_passes(st: dict[str, Any] | None) -> int:
    return int((st or {}).get("passes") or 0)


def unit_states(st: dict[str, Any] | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for unit in ((st or {}).get("units") or {}).values():
        state = unit.get("state") or "?"
        counts[state] = counts.get(state, 0) + 1
    return counts


METRIC_LINE = re.compile(r'^aws_api_calls_total\{([^}]*)\}\s+([0-9.eE+-]+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def api_calls_from_metrics(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    out: dict[str, float] = {}
    found = False
    for line in text.splitlines():
        m = METRIC_LINE.match(line.strip())
        if not m:
            continue
        found = True
        labels = dict(LABEL.findall(m[1]))
        key = f"{labels.get('service', '?')}:{labels.get('operation', '?')}"
        out[key] = out.get(key, 0.0) + float(m[2])
    return out if found else None


# --------------------------------------------------------------------------
# the lower bound of one observation, from the topology

def lower_bound(topo: Any) -> dict[str, int]:
    """Calls one complete observation of this topology cannot do without
    (see bench/README.md). Computed from the generated topology, never
    from the measurement."""
    p = topo.params
    b: dict[str, int] = {}

    def add(op: str, n: int) -> None:
        b[op] = b.get(op, 0) + n

    services_in: dict[str, int] = {}
    for s in topo.services:
        services_in[s.cluster] = services_in.get(s.cluster, 0) + 1
    bound_clusters = {s.cluster for s in topo.services}  # every service has a target group
    instances_for_ec2 = 0
    for c in topo.clusters:
        s_c = services_in.get(c.name, 0)
        t_c = s_c * p.targets_per_service
        i_c = c.instances
        add("ecs:DescribeServices", math.ceil(s_c / DESCRIBE_SERVICES_PER_CALL))
        list_tasks = math.ceil(t_c / TASKS_PER_PAGE)
        if c.name in bound_clusters:
            list_tasks = max(1, list_tasks)
        add("ecs:ListTasks", list_tasks)
        add("ecs:DescribeTasks", math.ceil(t_c / TASKS_PER_PAGE))
        add("ecs:ListContainerInstances", max(1, math.ceil(i_c / CONTAINER_INSTANCES_PER_PAGE)))
        add("ecs:DescribeContainerInstances", math.ceil(i_c / CONTAINER_INSTANCES_PER_PAGE))
        if c.instance_group or c.name in bound_clusters:
            instances_for_ec2 += i_c
    add("ec2:DescribeInstances", math.ceil(instances_for_ec2 / EC2_FILTER_VALUES))
    # Groups: all declared (none is only referenced in this topology).
    groups = topo.groups
    add("ec2:DescribeSecurityGroups", math.ceil(len(groups) / EC2_FILTER_VALUES))
    rules_calls = 0
    for i in range(0, len(groups), EC2_FILTER_VALUES):
        chunk = groups[i:i + EC2_FILTER_VALUES]
        # DescribeSecurityGroupRules returns egress rules too: each group
        # keeps its default allow-all egress rule.
        rules = sum(len(g.rules) + 1 for g in chunk)
        rules_calls += max(1, math.ceil(rules / RULES_PER_PAGE))
    add("ec2:DescribeSecurityGroupRules", rules_calls)
    n_tg = len(topo.services)  # one target group per service
    # By name (20 per call) up to 20 groups; past that, listing the account
    # (400 per page) is cheaper, and this account holds only these groups.
    by_name = math.ceil(n_tg / ELB_NAMES_PER_CALL)
    add("elbv2:DescribeTargetGroups", by_name if by_name <= 1 else min(by_name, math.ceil(n_tg / TARGET_GROUPS_PER_PAGE)))
    add("elbv2:DescribeTargetHealth", n_tg)
    n_lb = len(topo.load_balancers)
    add("elbv2:DescribeLoadBalancers", math.ceil(n_lb / ELB_NAMES_PER_CALL))
    add("elbv2:DescribeListeners", n_lb)  # every generated load balancer declares a listener
    add("ecs:DescribeTaskDefinition", 0)  # revisions are immutable: cacheable
    return b


# Ours without client-side EC2 limits, for the same-job comparison with c7n.
LIFTED_EC2_BUDGET = "ec2-write=100000/100000,ec2-read=100000/100000"

# The daemon's default --target-health-rotation.
TARGET_HEALTH_ROTATION = 10


def steady_bound(topo: Any, rotation: int = TARGET_HEALTH_ROTATION) -> dict[str, int]:
    """What a steady pass of the daemon needs once nothing is in motion
    (docs/performance.md): the full-read bound above, except that running
    tasks and container instances were described once (their bindings and
    EC2 instance never change) and quiet target groups are re-read
    `rotation` per pass."""
    b = lower_bound(topo)
    b["ecs:DescribeTasks"] = 0
    b["ecs:DescribeContainerInstances"] = 0
    b["elbv2:DescribeTargetHealth"] = min(b["elbv2:DescribeTargetHealth"], rotation)
    return b


# --------------------------------------------------------------------------
# statistics

def median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def pct(xs: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not xs:
        return None
    ys = sorted(xs)
    k = max(1, math.ceil(q / 100.0 * len(ys)))
    return round(ys[k - 1], 3)


# --------------------------------------------------------------------------
# one size

class SizeRun:
    def __init__(self, args: argparse.Namespace, size: int, binary: Path, emu_python: str, work: Path) -> None:
        self.args = args
        self.size = size
        self.binary = binary
        self.emu_python = emu_python
        self.work = work
        self.r: dict[str, Any] = {"services": size}
        self.emu: Emulator | None = None
        self.daemon: Daemon | None = None
        self.resync = DEFAULT_RESYNC
        self.max_rss_kib = 0  # the largest VmRSS seen (VmHWM can lag it slightly)

    def note_rss(self, mem: dict[str, int]) -> None:
        self.max_rss_kib = max(self.max_rss_kib, mem.get("VmRSS", 0), mem.get("VmHWM", 0))

    # ---- helpers
    def wait_passes(self, target: int, timeout: float, quiet: float = 2.0, every: float = 30.0) -> dict[str, Any]:
        """Waits until the daemon has finished `target` passes. The status
        document is big at 1,000 services, so it is only asked for when the
        controller's calls have paused for `quiet` s (between passes, as
        the emulator's calls log shows), or every `every` s."""
        assert self.daemon is not None and self.emu is not None and self.emu.calls_log is not None
        tail = CallsTail(self.emu.calls_log)
        deadline = time.monotonic() + timeout
        st = None
        last_call = 0.0
        last_get = 0.0
        while time.monotonic() < deadline:
            if not self.daemon.alive():
                raise RuntimeError(f"the daemon exited ({self.daemon.proc.returncode}); see {self.daemon.stderr}")
            for line in tail.read():
                if line.get("client") == "reconciler":
                    last_call = max(last_call, float(line.get("t", 0)))
            now = time.time()
            if (now - last_call >= quiet and now - last_get >= 2.0) or now - last_get >= every:
                st = self.daemon.status()
                last_get = time.time()
                self.note_rss(proc_mem_kib(self.daemon.pid))
                if daemon_passes(st) >= target:
                    return st  # type: ignore[return-value]
            time.sleep(0.25)
        raise TimeoutError(f"the daemon did not finish pass {target} within {timeout:.0f} s "
                           f"(passes {daemon_passes(st)})")

    def pass_timeout(self) -> float:
        return max(120.0, 0.5 * self.n_target_groups)

    # ---- phases
    def run(self) -> dict[str, Any]:
        t_size = time.monotonic()
        try:
            for name, phase in (("build", self.build), ("startup", self.start_daemon),
                                ("steady_pass", self.steady_pass), ("drift", self.drifts), ("edit", self.edits),
                                ("events", self.events)):
                t0 = time.monotonic()
                try:
                    phase()
                finally:
                    self.r.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t0, 1)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on with the next size
            log(f"size {self.size}: {type(exc).__name__}: {exc}")
            self.r["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            if self.daemon is not None:
                mem = proc_mem_kib(self.daemon.pid)
                self.note_rss(mem)
                self.r.setdefault("footprint", {})["rss_end_mib"] = mib(mem.get("VmRSS"))
                self.r["footprint"]["peak_rss_run_mib"] = mib(max(mem.get("VmHWM", 0), self.max_rss_kib) or None)
                self.r["daemon_exit_code"] = self.daemon.close()
                audit = self.daemon.audit_lines()
                self.r["audit_lines"] = len(audit)
            if self.emu is not None:
                self.emu.close()
            self.r["seconds"] = round(time.monotonic() - t_size, 1)
        return self.r

    def build(self) -> None:
        size = self.size
        params = topology.Params(services=size, targets_per_service=TARGETS_PER_SERVICE, groups=GROUPS,
                                 clusters=max(1, size // 100))
        self.topo = topology.plan(params)
        self.n_target_groups = len(self.topo.services)
        log(f"size {size}: starting a fresh emulator")
        self.emu = Emulator(self.emu_python, self.work, "emulator")
        log(f"size {size}: emulator at {self.emu.endpoint} (pid {self.emu.pid}, up in {self.emu.start_seconds} s); "
            f"building {size} services x {TARGETS_PER_SERVICE}, {GROUPS} groups, {params.clusters} clusters")
        t0 = time.monotonic()
        ids = topology.build(self.emu.endpoint, params, via="control",
                             wait_seconds=max(600.0, 0.2 * size * TARGETS_PER_SERVICE))
        build_wall = time.monotonic() - t0
        self.ids = ids
        self.config = self.work / "desired.yaml"
        self.yaml = topology.render_yaml(self.topo)
        self.config.write_text(self.yaml)
        emu_mem = proc_mem_kib(self.emu.pid)
        self.r["topology"] = {
            "services": size, "tasks": self.topo.tasks, "target_groups": self.n_target_groups,
            "security_groups": len(self.topo.groups), "clusters": len(self.topo.clusters),
            "container_instances": sum(len(c["instance_ids"]) for c in ids["clusters"].values()),
            "load_balancers": len(ids["load_balancers"]),
            "emulator_start_s": self.emu.start_seconds,
            "build_create_s": ids["timings"]["create"], "build_ready_s": ids["timings"]["ready"],
            "build_in_process_s": ids.get("build_seconds"), "build_wall_s": round(build_wall, 2),
            "emulator_rss_mib": mib(emu_mem.get("VmRSS")),
            "config_bytes": len(self.yaml.encode()),
        }
        log(f"size {size}: topology ready in {build_wall:.1f} s ({self.r['topology']['container_instances']} "
            f"instances, {self.r['topology']['load_balancers']} load balancers)")

    def start_daemon(self) -> None:
        assert self.emu is not None
        self.daemon = Daemon(self.binary, self.config, self.work, self.emu.endpoint)
        log(f"size {self.size}: daemon pid {self.daemon.pid} on {self.daemon.base}; waiting for 2 passes "
            f"(resync {self.resync:.0f} s)")
        timeout = 2 * (self.pass_timeout() + 1.1 * self.resync) + 30
        # A first pass longer than the resync runs straight into the second
        # (no pause in the calls), so the status is polled every 2 s here;
        # if it still shows 2 passes, the first one's wall time is unknown.
        st1 = self.wait_passes(1, self.pass_timeout() + 30, every=2.0)
        first = {"seconds": st1.get("last_pass_seconds") if daemon_passes(st1) == 1 else None,
                 "states": unit_states(st1)}
        st2 = self.wait_passes(2, timeout)
        try:
            status_bytes = len(http_text(f"{self.daemon.base}/api/v1/status").encode())
        except (OSError, urllib.error.URLError):
            status_bytes = None
        self.r["startup"] = {
            "status_document_bytes": status_bytes,
            "pass1_seconds": first["seconds"], "pass1_states": first["states"],
            "pass2_seconds": st2.get("last_pass_seconds"), "pass2_states": unit_states(st2),
            "units": len(st2.get("units") or {}),
        }
        log(f"size {self.size}: pass 1 {fmt(first['seconds'], 2)} s, pass 2 {st2.get('last_pass_seconds'):.2f} s; "
            f"units {unit_states(st2)}")

    def steady_pass(self) -> None:
        """Exactly one complete pass after the 2nd: calls, CPU, RSS."""
        assert self.emu is not None and self.daemon is not None and self.emu.calls_log is not None
        d, emu = self.daemon, self.emu
        tail = CallsTail(emu.calls_log)
        for attempt in range(3):
            st = d.status()
            n0 = daemon_passes(st)
            end0 = float((st or {}).get("last_pass_unix") or time.time())
            # Settle: the status GET above costs the daemon CPU, and the
            # window must open well before the next pass (>= 0.9 x resync).
            time.sleep(1.0)
            if time.time() < end0 + 0.9 * self.resync - 5:
                break
            log(f"size {self.size}: too close to the next pass; waiting for it")
            self.wait_passes(n0 + 1, self.pass_timeout() + 1.1 * self.resync + 30)
        else:
            raise RuntimeError("could not open a quiet window before a pass")
        mem_idle = proc_mem_kib(d.pid)
        self.note_rss(mem_idle)
        metrics0 = api_calls_from_metrics(d.metrics())
        tail.skip_to_end()
        emu.reset_calls()
        t_reset = time.time()
        http_json(f"{emu.endpoint}/_emulator/scheduler/stats", "POST", {})  # reset: stats of this pass only
        # Sample /proc (free for the daemon) until the pass is over.
        samples: list[tuple[float, float, int, float]] = []
        first_call = last_call = None
        n_calls = 0
        deadline = time.monotonic() + 1.1 * self.resync + self.pass_timeout() + 30
        next_check = 0.0
        st_end = None
        quiet = 3.0
        while time.monotonic() < deadline:
            now = time.time()
            samples.append((now, proc_cpu_seconds(d.pid) or 0.0, proc_sched_ns(d.pid) or 0,
                            proc_cpu_seconds(emu.pid) or 0.0))
            for line in tail.read():
                if line.get("client") == "reconciler" and float(line.get("t", 0)) >= t_reset:
                    t = float(line["t"])
                    first_call = t if first_call is None else min(first_call, t)
                    last_call = t if last_call is None else max(last_call, t)
                    n_calls += 1
            if not d.alive():
                raise RuntimeError("the daemon exited during the steady pass")
            if first_call is not None and last_call is not None and now - last_call > quiet and now > next_check:
                st_end = d.status()
                if daemon_passes(st_end) >= n0 + 1:
                    break
                next_check = now + 2.0
            time.sleep(0.1)
        else:
            raise TimeoutError("the steady pass did not finish in time")
        calls = emu.calls("reconciler")
        calls.pop("faulted", None)
        emu_sched1 = http_json(f"{emu.endpoint}/_emulator/scheduler/stats")
        metrics1 = api_calls_from_metrics(d.metrics())
        mem_after = proc_mem_kib(d.pid)
        self.note_rss(mem_after)
        passes = daemon_passes(st_end)
        pass_end = float(st_end.get("last_pass_unix") or time.time())  # type: ignore[union-attr]
        pass_seconds = float(st_end.get("last_pass_seconds") or 0.0)  # type: ignore[union-attr]
        pass_start = pass_end - pass_seconds
        # The last sample before the pass started (its first call, or the
        # start derived from last_pass_seconds, whichever is earlier), the
        # first after it ended.
        start_t = min(pass_start, first_call or pass_start)
        before = [s for s in samples if s[0] <= start_t]
        after = [s for s in samples if s[0] >= pass_end]
        s0 = before[-1] if before else samples[0]
        s1 = after[0] if after else samples[-1]
        window = s1[0] - s0[0]
        cpu = s1[1] - s0[1]
        cpu_sched = (s1[2] - s0[2]) / 1e9
        emu_cpu = s1[3] - s0[3]
        # The emulator's idle cost (scheduler thread) over the quiet time
        # before the pass, for reference.
        idle = [s for s in samples if s[0] <= start_t]
        emu_idle_rate = None
        if len(idle) >= 2 and idle[-1][0] - idle[0][0] > 1.0:
            emu_idle_rate = (idle[-1][3] - idle[0][3]) / (idle[-1][0] - idle[0][0])

        bound = steady_bound(self.topo)
        full_bound_total = sum(lower_bound(self.topo).values())
        ops = sorted(set(bound) | set(calls))
        per_op = {op: {"measured": int(calls.get(op, 0)), "bound": bound.get(op)} for op in ops}
        reads = {op: n for op, n in calls.items() if op.split(":", 1)[1].startswith(READ_PREFIXES)}
        mutating = {op: n for op, n in calls.items() if op not in reads}
        measured_total = sum(int(n) for n in calls.values())
        bound_total = sum(bound.values())
        metrics_delta = None
        if metrics0 is not None and metrics1 is not None:
            metrics_delta = {k: int(metrics1.get(k, 0) - metrics0.get(k, 0))
                             for k in sorted(set(metrics0) | set(metrics1))
                             if metrics1.get(k, 0) - metrics0.get(k, 0)}
        self.pass_seconds = pass_seconds
        self.r["steady_pass"] = {
            "pass_number": passes, "exactly_one_pass": passes == n0 + 1,
            "units": unit_states(st_end),
            "calls": per_op, "measured_total": measured_total, "bound_total": bound_total,
            "ratio": round(measured_total / bound_total, 3) if bound_total else None,
            "full_read_bound_total": full_bound_total,
            "reads_total": sum(int(n) for n in reads.values()),
            "mutating": mutating, "mutating_total": sum(int(n) for n in mutating.values()),
            "calls_seen_in_log": n_calls,
            "metrics_aws_api_calls_delta": metrics_delta,
            "metrics_agree_with_emulator": (None if metrics_delta is None else
                                            {k: v for k, v in metrics_delta.items()} ==
                                            {k: int(v) for k, v in calls.items() if v}),
        }
        self.r["footprint"] = {
            "idle_rss_mib": mib(mem_idle.get("VmRSS")),
            "idle_rss_kib": mem_idle.get("VmRSS"),
            "peak_rss_after_steady_mib": mib(self.max_rss_kib),
            "threads": mem_idle.get("Threads"),
            "pass_seconds": round(pass_seconds, 3),
            "pass_cpu_ms": round(cpu * 1000, 1),
            "pass_cpu_ms_schedstat": round(cpu_sched * 1000, 1),
            "cpu_window_s": round(window, 3),
            "emulator_cpu_s": round(emu_cpu, 3),
            "emulator_share_of_pass": round(emu_cpu / pass_seconds, 3) if pass_seconds else None,
            "emulator_idle_cpu_per_s": None if emu_idle_rate is None else round(emu_idle_rate, 4),
            "emulator_scheduler": {k: emu_sched1.get(k) for k in ("ticks", "full_passes", "mean_ms", "max_ms")},
            "emulator_rss_mib": mib(proc_mem_kib(emu.pid).get("VmRSS")),
        }
        log(f"size {self.size}: steady pass {pass_seconds:.2f} s, {measured_total} calls (bound {bound_total}, "
            f"ratio {self.r['steady_pass']['ratio']}), {self.r['steady_pass']['mutating_total']} mutating, "
            f"CPU {cpu * 1000:.0f} ms, emulator CPU {emu_cpu:.2f} s, idle RSS {mib(mem_idle.get('VmRSS'))} MiB")

    def _boto(self, key: str = "test") -> tuple[Any, Any]:
        import boto3
        from botocore.config import Config

        assert self.emu is not None
        kw = dict(endpoint_url=self.emu.endpoint, region_name=REGION, aws_access_key_id=key,
                  aws_secret_access_key="test",
                  config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=120))
        return boto3.client("ec2", **kw), boto3.client("ecs", **kw)  # default User-Agent: not aws-sdk-rust

    def drifts(self, label: str = "drift", key: str = "test", seed: int = 1000,
               first_within: float | None = None) -> None:
        """N console-style drifts, one every 1.5-3 s; latency = audit time
        of the correction - injection time. The first comes within
        `first_within` s (default: a random part of a resync period, so the
        drifts do not all start just after a pass)."""
        assert self.daemon is not None
        n = self.args.drifts
        if n <= 0:
            return
        ec2, ecs = self._boto(key)
        rng = random.Random(seed + self.size)
        services = list(self.topo.services)
        rng.shuffle(services)
        groups = list(self.topo.groups)
        rng.shuffle(groups)
        group_ids = self.ids["security_groups"]
        plan: list[tuple[str, Any]] = []
        kinds = ["scale", "revoke", "open-ssh"]
        for k in range(n):
            kind = kinds[k % 3]
            if kind == "scale" and not services:
                kind = "revoke" if k % 2 else "open-ssh"
            if kind == "scale":
                plan.append((kind, services.pop()))
            else:
                if not groups:
                    break
                plan.append((kind, groups.pop()))
        # The drifts span ~1.5 resync periods; the first one waits a random
        # part of a period, so they do not all start just after a pass.
        records: list[dict[str, Any]] = []
        offset = rng.uniform(0, self.resync if first_within is None else first_within)
        log(f"size {self.size}: injecting {len(plan)} drifts, the first in {offset:.1f} s")
        time.sleep(offset)
        audit_before = len(self.daemon.audit_lines())
        for i, (kind, target) in enumerate(plan):
            if i:
                time.sleep(rng.uniform(1.5, 3.0))
            if kind == "scale":
                ecs.update_service(cluster=target.cluster, service=target.name, desiredCount=TARGETS_PER_SERVICE + 1)
                owner, action = f"service/{target.cluster}/{target.name}", "scale-service"
                what = f"UpdateService {target.name} desiredCount {TARGETS_PER_SERVICE + 1}"
            elif kind == "revoke":
                rule = target.rules[0]  # tcp 22 from the group's bastion /24
                ec2.revoke_security_group_ingress(GroupId=group_ids[target.name], IpPermissions=[{
                    "IpProtocol": "tcp", "FromPort": rule.from_port, "ToPort": rule.to_port,
                    "IpRanges": [{"CidrIp": rule.cidr}]}])
                owner, action = f"security-group/{target.name}", "authorize-ingress"
                what = f"revoke tcp {rule.from_port} {rule.cidr} on {target.name}"
            else:
                ec2.authorize_security_group_ingress(GroupId=group_ids[target.name], IpPermissions=[{
                    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "rogue ssh"}]}])
                owner, action = f"security-group/{target.name}", "revoke-ingress"
                what = f"authorize tcp 22 0.0.0.0/0 on {target.name}"
            records.append({"kind": kind, "what": what, "owner": owner, "action": action,
                            "injected": time.time()})
        last = records[-1]["injected"] if records else time.time()
        # Worst case: the drift lands just after its resource was read, so
        # the rest of that pass, a resync gap and the next pass (x 1.25).
        wait = max(3 * self.resync, 2.5 * (1.1 * self.resync + getattr(self, "pass_seconds", 0.0)) + 10)
        deadline = last + wait
        pending = list(range(len(records)))
        used: set[int] = set()
        while pending and time.time() < deadline:
            time.sleep(0.5)
            audit = self.daemon.audit_lines()
            for idx in list(pending):
                rec = records[idx]
                for j, line in enumerate(audit):
                    if (j not in used and line.get("owner") == rec["owner"] and line.get("action") == rec["action"]
                            and float(line.get("time", 0)) >= rec["injected"] - 0.5
                            and line.get("result") in ("applied", "already-done")):
                        used.add(j)
                        rec["corrected"] = float(line["time"])
                        rec["latency_s"] = round(rec["corrected"] - rec["injected"], 3)
                        rec["audit"] = {k: line.get(k) for k in ("resource", "before", "after", "result", "cause")}
                        pending.remove(idx)
                        break
        lat = [r["latency_s"] for r in records if "latency_s" in r]
        audit = self.daemon.audit_lines()
        others = [a for j, a in enumerate(audit) if j >= audit_before and j not in used]
        self.note_rss(proc_mem_kib(self.daemon.pid))
        self.r[label] = {
            "resync_s": self.resync, "injected": len(records), "corrected": len(lat),
            "median_s": median(lat), "p95_s": pct(lat, 95), "max_s": round(max(lat), 3) if lat else None,
            "min_s": round(min(lat), 3) if lat else None,
            "waited_until_s_after_last": round(wait, 1),
            "by_kind": {k: sum(1 for r in records if r["kind"] == k) for k in kinds},
            "other_audit_lines": len(others),
            "other_audit_examples": [{k: a.get(k) for k in ("action", "resource", "before", "after", "result")}
                                     for a in others[:5]],
            "drifts": [{k: r.get(k) for k in ("kind", "what", "latency_s")} for r in records],
            # Corrections whose audit line names the console user: their
            # event arrived before the pass that corrected them.
            "attributed": sum(1 for r in records if ((r.get("audit") or {}).get("cause") or {}).get("arn") == CONSOLE_ARN),
        }
        log(f"size {self.size}: {label}: {len(lat)}/{len(records)} corrected, median {median(lat)} s, "
            f"p95 {pct(lat, 95)} s")

    def events(self) -> None:
        """The events queue (issue 17): the same drifts seen as their
        events arrive, idle calls, and (at one size) lost events."""
        if self.args.events_drifts <= 0 or self.emu is None:
            return
        if self.daemon is not None:
            self.daemon.close()
        clusters = sorted({f"arn:aws:ecs:{REGION}:123456789012:cluster/{s.cluster}" for s in self.topo.services})
        doc = self.emu.control("POST", "events", {
            "enabled": True, "delay": EVENT_DELAY, "seed": self.size,
            "identities": {CONSOLE_KEY: {"arn": CONSOLE_ARN, "source_ip": "203.0.113.7"}},
            "stack": {"template": str(EVENTS_TEMPLATE), "parameters": {"ClusterArns": ",".join(clusters)}},
        })
        work = self.work / "events"
        work.mkdir(exist_ok=True)
        self.daemon = Daemon(self.binary, self.config, work, self.emu.endpoint,
                             ["--events-queue", doc["queue_url"], "--events-resync", f"{EVENTS_RESYNC:.0f}s"])
        self.resync = EVENTS_RESYNC
        log(f"size {self.size}: events: daemon pid {self.daemon.pid} with the queue; waiting for its first passes")
        # Pass 1 at start; pass 2 one normal resync later (it was scheduled
        # before the queue was read), then 5 minutes.
        self.wait_passes(2, 2 * self.pass_timeout() + 60)
        saved = self.args.drifts
        self.args.drifts = self.args.events_drifts
        try:
            self.drifts(label="events_drift", key=CONSOLE_KEY, seed=3000, first_within=2.0)
            ev = self.r["events_drift"]
            # An idle minute: the long polls, nothing else (after the
            # re-reads of the last corrections, one consistency window on).
            time.sleep(15)
            self.emu.reset_calls()
            window = 60.0
            time.sleep(window)
            idle = {k: int(v) for k, v in self.emu.calls("reconciler").items() if k != "faulted" and v}
            sp = self.r.get("steady_pass") or {}
            per_pass = sp.get("measured_total")
            queue_per_hour = sum(v for k, v in idle.items() if k.startswith("sqs:")) * 3600.0 / window
            others = {k: v for k, v in idle.items() if not k.startswith("sqs:")}
            ev["idle_window_s"] = window
            ev["idle_calls"] = idle
            if per_pass:
                polling = per_pass * 3600.0 / DEFAULT_RESYNC
                events = per_pass * 3600.0 / EVENTS_RESYNC + queue_per_hour
                ev["calls_per_hour"] = {"polling_30s": round(polling), "events_5m": round(events),
                                        "queue_share": round(queue_per_hour),
                                        "ratio": round(polling / events, 1)}
            ev["idle_non_queue_calls"] = sum(others.values())
            status = self.daemon.status() or {}
            ev["queue"] = {k: (status.get("event_queue") or {}).get(k)
                           for k in ("received", "triggering", "ignored")}
            if self.size == self.args.events_drop_size:
                self.emu.control("POST", "events", {"drop": 0.1})
                self.drifts(label="events_drop", key=CONSOLE_KEY, seed=4000, first_within=2.0)
                dr = self.r["events_drop"]
                dr["dropped_events"] = self.emu.control("GET", "events")["counts"]["dropped"]
                dr["resync_bound_s"] = round(1.1 * EVENTS_RESYNC + getattr(self, "pass_seconds", 0.0), 1)
        finally:
            self.args.drifts = saved

    def _write_config(self, service: Any, replicas: int) -> float:
        lines = self.yaml.split("\n")
        try:
            i = lines.index(f"  - name: {service.name}", lines.index("services:"))
        except ValueError as exc:
            raise RuntimeError(f"service {service.name} not found in the generated YAML") from exc
        for j in range(i + 1, min(i + 6, len(lines))):
            if lines[j].startswith("    replicas:"):
                lines[j] = f"    replicas: {replicas}"
                break
        else:
            raise RuntimeError(f"no replicas line for {service.name}")
        tmp = self.config.with_name(f".{self.config.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines))
        os.replace(tmp, self.config)
        return time.time()

    def edits(self) -> None:
        """Config edit -> applied: replicas 10 -> 11, then back, N times."""
        assert self.daemon is not None
        reps = self.args.edits
        if reps <= 0:
            return
        service = self.topo.services[-1]
        owner = f"service/{service.cluster}/{service.name}"
        rng = random.Random(2000 + self.size)
        # An edit landing during a pass waits for it, then for its own pass.
        timeout = max(60.0, 2.5 * getattr(self, "pass_seconds", 0.0) + 30)
        budget_end = time.monotonic() + self.args.edit_budget
        samples: list[dict[str, Any]] = []
        used = {j for j, line in enumerate(self.daemon.audit_lines())}
        log(f"size {self.size}: config edits on {service.name} ({reps} x 10 -> 11 -> 10)")
        for rep in range(reps):
            for replicas in (TARGETS_PER_SERVICE + 1, TARGETS_PER_SERVICE):
                time.sleep(rng.uniform(1.0, 3.0))
                t_rename = self._write_config(service, replicas)
                found = None
                deadline = time.time() + timeout
                while time.time() < deadline and found is None:
                    time.sleep(0.1)
                    for j, line in enumerate(self.daemon.audit_lines()):
                        if (j not in used and line.get("owner") == owner and line.get("action") == "scale-service"
                                and float(line.get("time", 0)) >= t_rename):
                            used.add(j)
                            found = line
                            break
                samples.append({"rep": rep, "replicas": replicas,
                                "latency_s": None if found is None else round(float(found["time"]) - t_rename, 3),
                                "result": None if found is None else found.get("result")})
                if found is None:
                    log(f"size {self.size}: edit to {replicas} not applied within {timeout:.0f} s")
            if time.monotonic() > budget_end and rep + 1 < reps:
                log(f"size {self.size}: edit time budget spent after {rep + 1} repetitions")
                break
        up = [s["latency_s"] for s in samples if s["replicas"] > TARGETS_PER_SERVICE and s["latency_s"] is not None]
        down = [s["latency_s"] for s in samples if s["replicas"] == TARGETS_PER_SERVICE and s["latency_s"] is not None]
        both = up + down
        self.r["edit"] = {
            "service": service.name, "repetitions": len(samples) // 2, "edits": len(samples),
            "applied": len(both),
            "median_s": median(both), "max_s": round(max(both), 3) if both else None,
            "up_median_s": median(up), "up_max_s": round(max(up), 3) if up else None,
            "down_median_s": median(down), "down_max_s": round(max(down), 3) if down else None,
            "samples": samples,
        }
        log(f"size {self.size}: edits: {len(both)}/{len(samples)} applied, median {median(both)} s, "
            f"max {self.r['edit']['max_s']} s")


# --------------------------------------------------------------------------
# Cloud Custodian side by side (bench/c7n)

def c7n_side_by_side(args: argparse.Namespace, binary: Path, emu_python: str, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"groups": {}}
    try:
        c7n_py = subprocess.run(["bash", str(ROOT / "bench" / "c7n" / "venv.sh")], check=True,
                                stdout=subprocess.PIPE, text=True, timeout=1800).stdout.strip()
    except (subprocess.SubprocessError, OSError) as exc:
        out["error"] = f"c7n venv: {exc}"
        return out
    cwork = work / "c7n"
    cwork.mkdir(exist_ok=True)
    emu = Emulator(emu_python, cwork, "emulator", calls_log=False)
    log(f"c7n: fresh emulator at {emu.endpoint} (pid {emu.pid})")
    try:
        for n in args.c7n_groups:
            row: dict[str, Any] = {}
            # Ours twice: with its default budget (paces the 2N writes at
            # EC2's mutating share, by design), and with the EC2 budgets
            # lifted — the same job as c7n, which has no budget.
            for tool in ("c7n", "ecs-reconciler", "ecs-reconciler-lifted"):
                cmd = [c7n_py, str(ROOT / "bench" / "c7n" / "run.py"), "--endpoint", emu.endpoint,
                       "--groups", str(n), "--tool", "c7n" if tool == "c7n" else "ecs-reconciler"]
                if tool != "c7n":
                    cmd += ["--bin", str(binary)]
                if tool == "ecs-reconciler-lifted":
                    cmd += ["--", "--api-budget", LIFTED_EC2_BUDGET]
                log(f"c7n: {tool} on {n} groups")
                so, se = cwork / f"{tool}-{n}.stdout", cwork / f"{tool}-{n}.stderr"
                proc = spawn(cmd, stdout=so, stderr=se, cwd=cwork)
                try:
                    proc.wait(timeout=max(600, 2 * n))
                except subprocess.TimeoutExpired:
                    stop(proc, grace=5.0, group=True)
                    row[tool] = {"error": "timed out"}
                    continue
                CHILDREN.pop(proc.pid, None)
                lines = [ln for ln in so.read_text().splitlines() if ln.startswith("{")]
                if not lines:
                    row[tool] = {"error": f"no result (exit {proc.returncode}); see {se}"}
                    continue
                res = json.loads(lines[-1])
                row[tool] = {k: res.get(k) for k in ("wall_s", "cpu_s", "max_rss_mib", "exit_code", "converged",
                                                     "exact", "api_calls_total", "version", "loadavg_1m",
                                                     "rss_source")}
            c, e = row.get("c7n", {}), row.get("ecs-reconciler", {})
            lifted = row.get("ecs-reconciler-lifted", {})
            if c.get("wall_s") and e.get("wall_s"):
                row["wall_ratio"] = round(c["wall_s"] / e["wall_s"], 2)
            if c.get("wall_s") and lifted.get("wall_s"):
                row["wall_ratio_lifted"] = round(c["wall_s"] / lifted["wall_s"], 2)
            if c.get("max_rss_mib") and e.get("max_rss_mib"):
                row["rss_ratio"] = round(c["max_rss_mib"] / e["max_rss_mib"], 2)
            out["groups"][str(n)] = row
    finally:
        emu.close()
    return out


# --------------------------------------------------------------------------
# report

def fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    def line(r: list[str]) -> str:
        return "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(r))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def verdict(ok: bool | None, how: str) -> str:
    if ok is None:
        return f"n/a   {how}"
    return f"{'PASS' if ok else 'MISS'}  {how}"


def goals(result: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    sizes = result["sizes"]
    for key in sorted(sizes, key=int):
        s = sizes[key]
        tag = f"S={key}"
        sp = s.get("steady_pass") or {}
        fp = s.get("footprint") or {}
        if sp.get("ratio") is not None:
            extra = sp["measured_total"] - sp["bound_total"]
            rows.append([f"calls/bound = 1.00 ({tag})", f"{sp['ratio']:.3f}",
                         verdict(sp["measured_total"] <= sp["bound_total"],
                                 f"{extra:+d} calls ({(extra / sp['bound_total']) * 100:+.1f}%)")])
        if sp.get("mutating_total") is not None:
            rows.append([f"mutating calls in a steady pass = 0 ({tag})", str(sp["mutating_total"]),
                         verdict(sp["mutating_total"] == 0, f"{sp['mutating_total']:+d}")])
        idle = fp.get("idle_rss_mib")
        if fp.get("idle_rss_kib") is not None:
            idle = fp["idle_rss_kib"] / 1024.0  # unrounded for the verdict
        if idle is not None and int(key) < 1000:
            g = GOALS["idle_rss_mib"]
            rows.append([f"idle RSS <= {g:.0f} MiB ({tag})", f"{idle:.2f} MiB",
                         verdict(idle <= g, f"{idle - g:+.2f} MiB ({(idle / g - 1) * 100:+.1f}%)")])
        if int(key) >= 1000:
            g = GOALS["rss_mib_at_1000"]
            for label, v in (("idle", idle), ("peak", fp.get("peak_rss_run_mib") or fp.get("peak_rss_after_steady_mib"))):
                if v is not None:
                    rows.append([f"{label} RSS <= {g:.0f} MiB at 1,000 svc / 10,000 targets ({tag})", f"{v:.1f} MiB",
                                 verdict(v <= g, f"{v - g:+.1f} MiB ({(v / g - 1) * 100:+.0f}%)")])
        cpu = fp.get("pass_cpu_ms")
        if cpu is not None:
            g = GOALS["cpu_ms_per_pass"]
            note = "" if int(key) >= 1000 else " [goal is at 1,000]"
            rows.append([f"CPU per steady pass <= {g:.0f} ms ({tag}){note}", f"{cpu:.0f} ms",
                         verdict(cpu <= g, f"{cpu - g:+.0f} ms (x{cpu / g:.2f})")])
        dr = s.get("drift") or {}
        if dr.get("median_s") is not None:
            g = dr["resync_s"] / 2 + 1
            rows.append([f"drift median <= resync/2 + 1 s = {g:.0f} s ({tag})", f"{dr['median_s']:.1f} s",
                         verdict(dr["median_s"] <= g and dr["corrected"] == dr["injected"],
                                 f"{dr['median_s'] - g:+.1f} s; {dr['corrected']}/{dr['injected']} corrected")])
        ev = s.get("events_drift") or {}
        if ev.get("median_s") is not None:
            g = EVENT_DELAY + 1.0
            rows.append([f"events: drift median <= event delay + 1 s = {g:.1f} s ({tag})", f"{ev['median_s']:.2f} s",
                         verdict(ev["median_s"] <= g and ev["corrected"] == ev["injected"],
                                 f"{ev['median_s'] - g:+.2f} s; {ev['corrected']}/{ev['injected']} corrected; "
                                 f"polling median {fmt(dr.get('median_s'))} s")])
        cph = ev.get("calls_per_hour") or {}
        if cph.get("ratio") is not None and int(key) >= 1000:
            rows.append([f"events: >= 10x fewer calls per hour than polling at 30 s ({tag})", f"{cph['ratio']:.1f}x",
                         verdict(cph["ratio"] >= 10, f"{cph['events_5m']} vs {cph['polling_30s']} calls/h")])
        drop = s.get("events_drop") or {}
        if drop.get("injected"):
            rows.append([f"events: 10% dropped, every drift corrected within the resync bound ({tag})",
                         f"{drop['corrected']}/{drop['injected']}, max {fmt(drop.get('max_s'))} s",
                         verdict(drop["corrected"] == drop["injected"]
                                 and (drop.get("max_s") or 0) <= drop.get("resync_bound_s", 1e9),
                                 f"bound {drop.get('resync_bound_s')} s; {drop.get('dropped_events')} events dropped")])
        ed = s.get("edit") or {}
        if ed.get("max_s") is not None:
            g = GOALS["edit_s"]
            rows.append([f"edit applied <= {g:.0f} s, max ({tag})", f"{ed['max_s']:.2f} s",
                         verdict(ed["max_s"] <= g and ed["applied"] == ed["edits"],
                                 f"{ed['max_s'] - g:+.2f} s (median {ed['median_s']:.2f} s); "
                                 f"{ed['applied']}/{ed['edits']} applied")])
    c7n = (result.get("c7n") or {}).get("groups") or {}
    for n in sorted(c7n, key=int):
        row = c7n[n]
        if row.get("rss_ratio") is not None:
            g = GOALS["c7n_rss_ratio"]
            rows.append([f">= {g:.0f}x less RSS than c7n (N={n} groups)", f"{row['rss_ratio']:.1f}x",
                         verdict(row["rss_ratio"] >= g, f"{row['rss_ratio'] / g * 100 - 100:+.0f}% vs {g:.0f}x")])
        for key, how in (("wall_ratio", "default budget"), ("wall_ratio_lifted", "EC2 budget lifted")):
            if row.get(key) is not None:
                g = GOALS["c7n_wall_ratio"]
                rows.append([f">= {g:.0f}x less wall time than c7n (N={n} groups, {how})", f"{row[key]:.2f}x",
                             verdict(row[key] >= g, f"{row[key] / g * 100 - 100:+.0f}% vs {g:.0f}x")])
    return rows


def checkout_commit() -> str | None:
    """The commit of the checkout this script runs from."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def built_commit(version: str | None) -> str | None:
    """The commit `--version` names: "ecs-reconciler 0.1.0 (commit abc123)"."""
    m = re.search(r"\(commit ([0-9a-f]+)\)", version or "")
    return m.group(1) if m else None


def commit_mismatch(version: str | None, checkout: str | None) -> str | None:
    """Why the binary's figures are not this checkout's, or None when they
    are (or either commit is unknown)."""
    built_from = built_commit(version)
    if not (built_from and checkout) or checkout.startswith(built_from):
        return None
    return f"the binary was built from commit {built_from}, this checkout is at {checkout[:12]}"


def report(result: dict[str, Any]) -> str:
    out: list[str] = []
    b = result["binary"]
    out.append(f"ecs-reconciler benchmark  {result['started']}  ({result['machine']})")
    out.append(f"binary {b['path']}  mtime {b['mtime']}  sha256 {b['sha256'][:16]}  {b.get('version') or ''}")
    mismatch = commit_mismatch(b.get("version"), b.get("checkout_commit"))
    if mismatch:
        out.append(f"WARNING: {mismatch}: figures are not this checkout's")
    sizes = result["sizes"]
    keys = sorted(sizes, key=int)
    if keys:
        hdr = ["services (x10 tasks)"] + [k for k in keys]
        def g(path: list[str], nd: int = 1) -> list[str]:
            vals = []
            for k in keys:
                v: Any = sizes[k]
                for p in path:
                    v = v.get(p) if isinstance(v, dict) else None
                vals.append(fmt(v, nd))
            return vals
        rows = [
            ["tasks / targets"] + g(["topology", "tasks"]),
            ["security groups"] + g(["topology", "security_groups"]),
            ["clusters"] + g(["topology", "clusters"]),
            ["container instances"] + g(["topology", "container_instances"]),
            ["load balancers"] + g(["topology", "load_balancers"]),
            ["emulator build, s (POST -> all ready)"] + g(["topology", "build_wall_s"], 2),
            ["  of which in-process create, s"] + g(["topology", "build_in_process_s"], 2),
            ["pass 1 / pass 2 wall, s"] + [
                f"{fmt((sizes[k].get('startup') or {}).get('pass1_seconds'), 2)} / "
                f"{fmt((sizes[k].get('startup') or {}).get('pass2_seconds'), 2)}" for k in keys],
            ["steady pass: calls measured / bound"] + [
                f"{fmt((sizes[k].get('steady_pass') or {}).get('measured_total'))} / "
                f"{fmt((sizes[k].get('steady_pass') or {}).get('bound_total'))}" for k in keys],
            ["steady pass: ratio"] + g(["steady_pass", "ratio"], 3),
            ["full read of everything (every pass before reuse)"] + g(["steady_pass", "full_read_bound_total"]),
            ["steady pass: mutating calls"] + g(["steady_pass", "mutating_total"]),
            ["steady pass: wall, s"] + g(["footprint", "pass_seconds"], 2),
            ["steady pass: daemon CPU, ms (stat)"] + g(["footprint", "pass_cpu_ms"], 0),
            ["steady pass: daemon CPU, ms (schedstat)"] + g(["footprint", "pass_cpu_ms_schedstat"], 1),
            ["steady pass: emulator CPU, s"] + g(["footprint", "emulator_cpu_s"], 2),
            ["steady pass: emulator CPU / pass wall"] + g(["footprint", "emulator_share_of_pass"], 2),
            ["daemon RSS idle, MiB"] + g(["footprint", "idle_rss_mib"]),
            ["daemon RSS peak after steady pass, MiB"] + g(["footprint", "peak_rss_after_steady_mib"]),
            ["daemon RSS peak whole run, MiB"] + g(["footprint", "peak_rss_run_mib"]),
            ["drift: corrected / injected"] + [
                f"{fmt((sizes[k].get('drift') or {}).get('corrected'))} / "
                f"{fmt((sizes[k].get('drift') or {}).get('injected'))}" for k in keys],
            ["drift latency median, s"] + g(["drift", "median_s"], 1),
            ["drift latency p95, s"] + g(["drift", "p95_s"], 1),
            ["drift latency min-max, s"] + [
                f"{fmt((sizes[k].get('drift') or {}).get('min_s'))}-{fmt((sizes[k].get('drift') or {}).get('max_s'))}"
                for k in keys],
            ["edit -> applied: applied / edits"] + [
                f"{fmt((sizes[k].get('edit') or {}).get('applied'))} / {fmt((sizes[k].get('edit') or {}).get('edits'))}"
                for k in keys],
            ["edit -> applied median, s"] + g(["edit", "median_s"], 2),
            ["edit -> applied max, s"] + g(["edit", "max_s"], 2),
            ["events queue (0.5 s delay, resync 5 min): corrected / injected"] + [
                f"{fmt((sizes[k].get('events_drift') or {}).get('corrected'))} / "
                f"{fmt((sizes[k].get('events_drift') or {}).get('injected'))}" for k in keys],
            ["  drift latency median, s (polling at 30 s beside)"] + [
                f"{fmt((sizes[k].get('events_drift') or {}).get('median_s'), 2)} "
                f"({fmt((sizes[k].get('drift') or {}).get('median_s'), 1)})" for k in keys],
            ["  drift latency p95, s (polling at 30 s beside)"] + [
                f"{fmt((sizes[k].get('events_drift') or {}).get('p95_s'), 2)} "
                f"({fmt((sizes[k].get('drift') or {}).get('p95_s'), 1)})" for k in keys],
            ["  corrections naming the console user"] + g(["events_drift", "attributed"]),
            ["  API calls per hour, nothing drifting (polling at 30 s)"] + [
                f"{fmt(((sizes[k].get('events_drift') or {}).get('calls_per_hour') or {}).get('events_5m'))} "
                f"({fmt(((sizes[k].get('events_drift') or {}).get('calls_per_hour') or {}).get('polling_30s'))})"
                for k in keys],
            ["  fewer calls than polling, x"] + g(["events_drift", "calls_per_hour", "ratio"], 1),
            ["  10% events dropped: corrected / injected, max s"] + [
                f"{fmt((sizes[k].get('events_drop') or {}).get('corrected'))} / "
                f"{fmt((sizes[k].get('events_drop') or {}).get('injected'))}, "
                f"{fmt((sizes[k].get('events_drop') or {}).get('max_s'), 1)}" if sizes[k].get("events_drop") else "-"
                for k in keys],
            ["size wall time, s"] + g(["seconds"], 0),
        ]
        out += ["", table(rows, hdr)]
        ops = sorted({op for k in keys for op in ((sizes[k].get("steady_pass") or {}).get("calls") or {})})
        if ops:
            rows = []
            for op in ops:
                row = [op]
                for k in keys:
                    c = ((sizes[k].get("steady_pass") or {}).get("calls") or {}).get(op)
                    if c is None:
                        row.append("-")
                    else:
                        flag = "" if c["bound"] is None or c["measured"] <= c["bound"] else " !"
                        row.append(f"{c['measured']} / {fmt(c['bound'])}{flag}")
                rows.append(row)
            out += ["", "Calls per steady pass, measured / lower bound (! = above the bound):",
                    table(rows, ["operation"] + [f"S={k}" for k in keys])]
        for k in keys:
            if sizes[k].get("error"):
                out.append(f"S={k}: ERROR {sizes[k]['error']}")
    c7n = (result.get("c7n") or {}).get("groups") or {}
    if c7n:
        rows = []
        for n in sorted(c7n, key=int):
            r = c7n[n]
            c, e = r.get("c7n", {}), r.get("ecs-reconciler", {})
            lifted = r.get("ecs-reconciler-lifted", {})
            rows.append([n, fmt(c.get("wall_s"), 2), fmt(e.get("wall_s"), 2), fmt(r.get("wall_ratio"), 2),
                         fmt(lifted.get("wall_s"), 2), fmt(r.get("wall_ratio_lifted"), 2),
                         fmt(c.get("max_rss_mib")), fmt(e.get("max_rss_mib")), fmt(r.get("rss_ratio"), 1),
                         fmt(c.get("cpu_s"), 2), fmt(e.get("cpu_s"), 2), fmt(lifted.get("cpu_s"), 2),
                         f"{c.get('converged')}/{e.get('converged')}/{lifted.get('converged')}"])
        out += ["", "Cloud Custodian side by side (bench/c7n: drift on every group, one run each;",
                "ours with its default budget, and with the EC2 budgets lifted):",
                table(rows, ["groups", "c7n wall s", "ours wall s", "ratio", "lifted wall s", "ratio",
                             "c7n RSS MiB", "ours RSS MiB", "ratio", "c7n CPU s", "ours CPU s",
                             "lifted CPU s", "converged"])]
    elif (result.get("c7n") or {}).get("error"):
        out.append(f"c7n: ERROR {result['c7n']['error']}")
    grows = goals(result)
    if grows:
        out += ["", "Goals (issue 'Performance at scale'):", table(grows, ["goal", "measured", "verdict"])]
    out.append(f"\ntotal wall time {result.get('seconds')} s")
    return "\n".join(out)


# --------------------------------------------------------------------------

def parse_list(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    return [int(x) for x in text.split(",") if x.strip()]


def default_binary() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache" / "ecs-reconciler" / "target")
    return Path(target) / "release" / "ecs-reconciler"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,100,1000", help="services per run, comma-separated (default 1,100,1000)")
    ap.add_argument("--drifts", type=int, default=20, help="drifts injected per size (default 20)")
    ap.add_argument("--edits", type=int, default=5, help="config edit repetitions (10 -> 11 -> 10) per size")
    ap.add_argument("--edit-budget", type=float, default=900.0,
                    help="stop repeating edits after this many seconds at one size (default 900)")
    ap.add_argument("--c7n-groups", default="100,1000", help="group counts for the c7n comparison, or none")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.json"), help="JSON results")
    ap.add_argument("--bin", default=None, help="ecs-reconciler binary (default: the release build)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, audit, configs)")
    ap.add_argument("--events-drifts", type=int, default=20,
                    help="drifts with the events queue on, per size (0: skip the events phase)")
    ap.add_argument("--events-drop-size", type=int, default=100,
                    help="the size at which 10%% of events are dropped (0: none)")
    args = ap.parse_args()
    sizes = parse_list(args.sizes)
    args.c7n_groups = parse_list(args.c7n_groups)
    if any(s < 1 or s > 10000 for s in sizes):
        ap.error("sizes must be 1..10000")

    src = Path(args.bin) if args.bin else default_binary()
    if not src.is_file():
        print(f"bench: no release binary at {src}\n"
              "  build it first:  cargo build --release --locked --bin ecs-reconciler", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _on_signal)
    work = Path(tempfile.mkdtemp(prefix="ecs-reconciler-bench."))
    t_all = time.monotonic()
    binary = work / "ecs-reconciler"
    shutil.copy2(src, binary)  # a rebuild mid-run cannot change what is measured
    sha = hashlib.sha256(binary.read_bytes()).hexdigest()
    mtime = dt.datetime.fromtimestamp(src.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    version = None
    try:
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    checkout = checkout_commit()
    mismatch = commit_mismatch(version, checkout)
    if mismatch:
        # e.g. another checkout sharing CARGO_TARGET_DIR built it last: cargo
        # then keeps that binary when this checkout's own build is fresh.
        log(f"WARNING: {mismatch}; rebuild it here (touch a source file if cargo says it is fresh)")
    emu_python = sys.executable
    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, Python {sys.version.split()[0]}",
        "binary": {"path": str(src), "sha256": sha, "mtime": mtime, "version": version,
                   "checkout_commit": checkout},
        "goals": GOALS, "resync_s": DEFAULT_RESYNC, "sizes": {}, "work_dir": str(work) if args.keep else None,
    }
    log(f"binary {src} (sha256 {sha[:16]}, mtime {mtime}) copied to {binary}; work dir {work}")
    rc = 0
    try:
        for size in sizes:
            swork = work / f"size-{size}"
            swork.mkdir()
            r = SizeRun(args, size, binary, emu_python, swork).run()
            r["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
            result["sizes"][str(size)] = r
            if r.get("error"):
                rc = 1
            log(f"size {size}: done in {r['seconds']} s")
        if args.c7n_groups:
            t0 = time.monotonic()
            result["c7n"] = c7n_side_by_side(args, binary, emu_python, work)
            result["c7n"]["seconds"] = round(time.monotonic() - t0, 1)
    except KeyboardInterrupt:
        log("interrupted; stopping what was started")
        rc = 130
    finally:
        cleanup()
        result["seconds"] = round(time.monotonic() - t_all, 1)
        result["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    print(f"\nresults: {args.out}" + (f"; work dir kept: {work}" if args.keep else ""))
    return rc


if __name__ == "__main__":
    sys.exit(main())
