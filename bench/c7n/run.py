#!/usr/bin/env python3
"""Side-by-side benchmark: Cloud Custodian (c7n) vs ecs-reconciler on one job.

The job, on N security groups bench-sg-0000.. in the default VPC, each
declared with exactly one ingress rule (tcp 80 from 0.0.0.0/0, "HTTP"):

* drift injected: a rogue tcp 22 from 0.0.0.0/0 is authorized on every group
  and the declared tcp 80 rule is revoked from every group;
* the tool must remove the rogue rule and restore the declared one.

Modes (see bench/c7n/README.md):

  run.py --endpoint URL --groups N                 # setup + drift, run c7n, verify
  run.py --endpoint URL --groups N --tool ecs-reconciler --bin PATH
  run.py --endpoint URL --groups N --setup-only    # setup + drift, reset call counters
  run.py --endpoint URL --groups N --verify-only   # call counters + verification
  run.py --groups N --write-config PATH            # ecs-reconciler desired state

A run prints one JSON line per repetition:
  {"tool", "groups", "wall_s", "cpu_s", "max_rss_mib", "exit_code",
   "api_calls": {...}, "api_calls_total", "converged", "exact", ...}

`max_rss_mib` is GNU time's %M (ru_maxrss of the tool's process: the peak
resident set of the largest single process among the tool and the
descendants it reaped, a maximum, not a sum; both tools run as one
process). See measure() for why not wait4() on this script's own child.
`api_calls` is GET /_emulator/calls, read before the verification's own
calls; the counters are reset after setup and drift injection, so they hold
only the tool's calls.

Needs only boto3: run it with the c7n venv's python ("$(bash bench/c7n/venv.sh)").
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PREFIX = "bench-sg-"
GROUP_DESCRIPTION = "ecs-reconciler vs c7n benchmark group"
DECLARED = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
            "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTP"}]}
ROGUE = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "rogue SSH"}]}
ANYWHERE = "0.0.0.0/0"


def log(msg: str) -> None:
    print(f"run.py: {msg}", file=sys.stderr, flush=True)


def group_name(i: int) -> str:
    return f"{PREFIX}{i:04d}"


# --------------------------------------------------------------------------
# AWS side (boto3, straight to the emulator)

def ec2_client(endpoint: str, region: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def bench_groups(ec2) -> dict[str, dict[str, Any]]:
    """All bench-sg-* groups by name (moto honours the wildcard filter)."""
    out: dict[str, dict[str, Any]] = {}
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": "group-name", "Values": [PREFIX + "*"]}])
    for page in pages:
        for g in page["SecurityGroups"]:
            if g["GroupName"].startswith(PREFIX):
                out[g["GroupName"]] = g
    return out


def default_vpc(ec2) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise SystemExit("run.py: the emulator has no default VPC")
    return vpcs[0]["VpcId"]


def revocable(perm: dict[str, Any]) -> dict[str, Any]:
    """An IpPermissions entry from Describe, reduced to what Revoke takes."""
    keep = {k: perm[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in perm}
    for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"):
        if perm.get(k):
            keep[k] = perm[k]
    return keep


def is_declared(perm: dict[str, Any]) -> bool:
    return (perm.get("IpProtocol") == "tcp" and perm.get("FromPort") == 80
            and perm.get("ToPort") == 80
            and any(r.get("CidrIp") == ANYWHERE for r in perm.get("IpRanges", [])))


def admits_22_from_anywhere(perm: dict[str, Any]) -> bool:
    proto = str(perm.get("IpProtocol"))
    if proto not in ("tcp", "6", "-1"):
        return False
    if proto != "-1" and not (perm.get("FromPort", 0) <= 22 <= perm.get("ToPort", -1)):
        return False
    return any(r.get("CidrIp") == ANYWHERE for r in perm.get("IpRanges", []))


def setup_and_inject(ec2, n: int, drift: bool = True) -> dict[str, Any]:
    """Create (or bring back to the declared state) bench-sg-0000..N-1, delete
    bench groups beyond N, then (unless drift is False) inject the drift on
    every group."""
    t0 = time.monotonic()
    vpc = default_vpc(ec2)
    existing = bench_groups(ec2)
    wanted = [group_name(i) for i in range(n)]
    created = normalized = deleted = 0
    ids: dict[str, str] = {}
    for name in wanted:
        g = existing.get(name)
        if g is None:
            gid = ec2.create_security_group(
                GroupName=name, Description=GROUP_DESCRIPTION, VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[DECLARED])
            created += 1
        else:
            # Left over from an earlier run: back to exactly the declared rule.
            gid = g["GroupId"]
            extra = [revocable(p) for p in g.get("IpPermissions", []) if not is_declared(p)]
            if extra:
                ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=extra)
            if not any(is_declared(p) for p in g.get("IpPermissions", [])):
                ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[DECLARED])
            if extra or not any(is_declared(p) for p in g.get("IpPermissions", [])):
                normalized += 1
        ids[name] = gid
    for name, g in existing.items():
        if name not in ids:
            ec2.delete_security_group(GroupId=g["GroupId"])
            deleted += 1
    t1 = time.monotonic()
    # The drift: a rogue rule on every group, the declared rule revoked.
    for name in (wanted if drift else []):
        gid = ids[name]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[ROGUE])
        ec2.revoke_security_group_ingress(
            GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                         "IpRanges": [{"CidrIp": ANYWHERE}]}])
    t2 = time.monotonic()
    return {"created": created, "normalized": normalized, "deleted": deleted,
            "setup_s": round(t1 - t0, 3), "inject_s": round(t2 - t1, 3), "vpc": vpc,
            "drift": drift}


def verify(ec2, n: int) -> dict[str, Any]:
    groups = bench_groups(ec2)
    missing, without_80, with_22, not_exact = [], [], [], []
    for i in range(n):
        name = group_name(i)
        g = groups.get(name)
        if g is None:
            missing.append(name)
            continue
        perms = g.get("IpPermissions", [])
        if not any(is_declared(p) for p in perms):
            without_80.append(name)
        if any(admits_22_from_anywhere(p) for p in perms):
            with_22.append(name)
        # exact: the whole ingress list is the one declared rule
        flat = [(p.get("IpProtocol"), p.get("FromPort"), p.get("ToPort"), k, str(v))
                for p in perms
                for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs")
                for v in p.get(k, [])]
        if len(flat) != 1 or not is_declared(perms[0]):
            not_exact.append(name)
    converged = not missing and not without_80 and not with_22
    return {
        "converged": converged,
        "exact": converged and not not_exact,
        "verify": {"missing": len(missing), "without_tcp80": len(without_80),
                   "with_tcp22": len(with_22), "not_exact": len(not_exact),
                   "examples": (missing + without_80 + with_22 + not_exact)[:5]},
    }


# --------------------------------------------------------------------------
# Emulator control API

def emulator_calls(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(endpoint.rstrip("/") + "/_emulator/calls", timeout=30) as r:
        return json.load(r)


def reset_calls(endpoint: str) -> None:
    req = urllib.request.Request(endpoint.rstrip("/") + "/_emulator/calls/reset",
                                 data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def call_summary(calls: dict[str, Any]) -> tuple[dict[str, int], int, dict[str, int]]:
    faulted = calls.pop("faulted", {}) or {}
    ops = {k: int(v) for k, v in sorted(calls.items())}
    return ops, sum(ops.values()), faulted


# --------------------------------------------------------------------------
# ecs-reconciler desired state

def write_config(path: Path, n: int) -> None:
    lines = [
        f"# Generated by bench/c7n/run.py --groups {n} --write-config: the",
        "# ecs-reconciler side of the c7n benchmark. `management: exclusive` (the",
        "# default, written out) makes the file the whole ingress list, so the",
        "# rogue tcp 22 rule is revoked.",
        "version: 1",
        "mode: enforce",
        "",
        "securityGroups:",
    ]
    for i in range(n):
        lines += [
            f"  - name: {group_name(i)}",
            "    management: exclusive",
            "    ingress:",
            "      - protocol: tcp",
            "        ports: 80",
            "        cidr: 0.0.0.0/0",
            "        description: HTTP",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------
# Running a tool

def find_custodian(explicit: str | None) -> str:
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "custodian"
    if beside.exists():
        return str(beside)
    py = subprocess.run(["bash", str(HERE / "venv.sh")], check=True,
                        stdout=subprocess.PIPE, text=True).stdout.strip()
    return str(Path(py).parent / "custodian")


def tool_env(endpoint: str, region: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        # botocore (c7n) and the Rust SDK both read AWS_ENDPOINT_URL.
        "AWS_ENDPOINT_URL": endpoint,
        # botocore 1.43 reads only AWS_DEFAULT_REGION; the Rust SDK AWS_REGION.
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


GNU_TIME = "/usr/bin/time"


def gnu_time_ok() -> bool:
    try:
        r = subprocess.run([GNU_TIME, "-f", "%M", "-o", os.devnull, "true"],
                           capture_output=True, timeout=30)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run cmd to completion: wall time, CPU time, peak RSS.

    Peak RSS comes from GNU time (%M: ru_maxrss of its child, the tool). It
    is NOT taken from wait4() on a child of this script: Python starts
    children with vfork/fork, and Linux keeps the parent's RSS high-water
    mark through exec in ru_maxrss, so `/bin/true` started from this
    process reads ~35 MiB. GNU time is small, so its child's figure is the
    tool's own. Without GNU time we fall back to wait4() and say so.
    """
    out = open(cwd / "tool.stdout", "wb")
    err = open(cwd / "tool.stderr", "wb")
    timefile = cwd / "time.txt"
    use_time = gnu_time_ok()
    full = [GNU_TIME, "-o", str(timefile), "-f", "%x %U %S %M"] + cmd if use_time else cmd
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen(full, env=env, cwd=cwd, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        out.close()
        err.close()
    res: dict[str, Any] = {"wall_s": round(wall, 3)}
    if use_time:
        # "Command exited with non-zero status N" may come first.
        last = timefile.read_text().strip().splitlines()[-1].split()
        code, user, system, maxrss = int(last[0]), float(last[1]), float(last[2]), int(last[3])
        res.update(cpu_s=round(user + system, 3), max_rss_mib=round(maxrss / 1024.0, 1),
                   exit_code=code, rss_source="gnu-time %M")
    else:
        res.update(cpu_s=round(ru.ru_utime + ru.ru_stime, 3),
                   max_rss_mib=round(ru.ru_maxrss / 1024.0, 1),  # Linux: KiB
                   exit_code=proc.returncode,
                   rss_source="wait4 ru_maxrss (includes this script's RSS at spawn)")
    return res


def tool_command(args, work: Path) -> tuple[str, list[str]]:
    if args.tool == "ecs-reconciler":
        if not args.bin:
            raise SystemExit("run.py: --tool ecs-reconciler needs --bin PATH")
        cfg = Path(args.write_config) if args.write_config else work / "desired.yaml"
        write_config(cfg, args.groups)
        return "ecs-reconciler", [args.bin, "apply", "--once", "--allow-destructive",
                                  "--config", str(cfg)] + args.extra
    custodian = find_custodian(args.custodian)
    return "c7n", [custodian, "run", "--cache-period", "0", "-s", str(work / "c7n-out"),
                   "-r", args.region, str(Path(args.policies).resolve())] + args.extra


C7N_FETCH = re.compile(r"policy:(\S+) resource:\S+ region:\S+ count:(\d+) time:([\d.]+)")
C7N_ACTION = re.compile(r"policy:(\S+) action:(\S+) resources:(\d+) execution_time:([\d.]+)")


def c7n_breakdown(stderr: Path) -> list[dict[str, Any]]:
    """Per policy: resources matched, fetch+filter time, action time (c7n's log)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        text = stderr.read_text(errors="replace")
    except OSError:
        return []
    for m in C7N_FETCH.finditer(text):
        out.setdefault(m[1], {"policy": m[1]}).update(count=int(m[2]), fetch_s=float(m[3]))
    for m in C7N_ACTION.finditer(text):
        out.setdefault(m[1], {"policy": m[1]}).update(action=m[2], action_s=float(m[4]))
    return list(out.values())


def tool_version(tool: str, cmd: list[str], env: dict[str, str]) -> str | None:
    try:
        if tool == "c7n":
            r = subprocess.run([cmd[0], "version"], env=env, capture_output=True, text=True,
                               timeout=60)
        else:
            r = subprocess.run([cmd[0], "--version"], env=env, capture_output=True, text=True,
                               timeout=60)
        return (r.stdout or r.stderr).strip().splitlines()[-1] if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                    help="emulator URL (default: $AWS_ENDPOINT_URL)")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--groups", type=int, required=True, help="N security groups")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--setup-only", action="store_true",
                      help="create the groups, inject the drift, reset the call counters")
    mode.add_argument("--verify-only", action="store_true",
                      help="print the call counters and whether the groups converged")
    ap.add_argument("--write-config", metavar="PATH",
                    help="write the ecs-reconciler desired-state YAML for the N groups "
                         "(alone: only that; with --tool ecs-reconciler: the file it runs)")
    ap.add_argument("--tool", choices=["c7n", "ecs-reconciler"], default=None,
                    help="tool to run (default c7n)")
    ap.add_argument("--custodian", help="custodian CLI (default: beside this python, "
                                        "else from bench/c7n/venv.sh)")
    ap.add_argument("--policies", default=str(HERE / "policies.yaml"))
    ap.add_argument("--bin", help="ecs-reconciler binary for --tool ecs-reconciler")
    ap.add_argument("--no-drift", action="store_true",
                    help="leave the groups as declared (measures a pass with nothing to do)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="setup + drift + run + verify this many times (one JSON line each)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work dir (tool stdout/stderr, c7n output, config)")
    ap.add_argument("extra", nargs="*", help="after --: extra arguments for the tool")
    args = ap.parse_args()

    if args.groups < 1:
        ap.error("--groups must be at least 1")
    only_config = (args.write_config and not args.setup_only and not args.verify_only
                   and args.tool is None)
    if only_config:
        write_config(Path(args.write_config), args.groups)
        log(f"wrote {args.write_config} ({args.groups} groups)")
        return 0
    if not args.endpoint:
        ap.error("--endpoint (or AWS_ENDPOINT_URL) is required")
    endpoint = args.endpoint.rstrip("/")
    ec2 = ec2_client(endpoint, args.region)

    if args.setup_only:
        info = setup_and_inject(ec2, args.groups, drift=not args.no_drift)
        if args.write_config:
            write_config(Path(args.write_config), args.groups)
        reset_calls(endpoint)
        print(json.dumps({"groups": args.groups, "setup": info}), flush=True)
        return 0

    if args.verify_only:
        ops, total, faulted = call_summary(emulator_calls(endpoint))
        res = {"tool": args.tool, "groups": args.groups, "api_calls": ops,
               "api_calls_total": total}
        if faulted:
            res["faulted"] = faulted
        res.update(verify(ec2, args.groups))
        print(json.dumps(res), flush=True)
        return 0 if res["converged"] else 2

    args.tool = args.tool or "c7n"
    rc = 0
    version = None
    for rep in range(args.repeat):
        work = Path(tempfile.mkdtemp(prefix=f"bench-{args.tool}-{args.groups}-"))
        tool, cmd = tool_command(args, work)
        env = tool_env(endpoint, args.region)
        if rep == 0:
            version = tool_version(tool, cmd, env)
        info = setup_and_inject(ec2, args.groups, drift=not args.no_drift)
        log(f"{args.groups} groups ready in {info['setup_s']}s, drift injected in "
            f"{info['inject_s']}s; running {' '.join(cmd)}")
        reset_calls(endpoint)
        load = os.getloadavg()[0]
        m = measure(cmd, env, work)
        ops, total, faulted = call_summary(emulator_calls(endpoint))
        res = {"tool": tool, "version": version, "groups": args.groups,
               "drift": not args.no_drift, **m, "loadavg_1m": round(load, 2),
               "api_calls": ops, "api_calls_total": total}
        if faulted:
            res["faulted"] = faulted
        if tool == "c7n":
            res["c7n_policies"] = c7n_breakdown(work / "tool.stderr")
        res.update(verify(ec2, args.groups))
        if m["exit_code"] != 0 or not res["converged"] or args.keep:
            res["work_dir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(res), flush=True)
        if not res["converged"]:
            rc = 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
