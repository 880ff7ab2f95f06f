"""Pass times with a webhook that answers, hangs or fails (issue 18).

    scripts/bench.sh --webhook-hang [--rounds 12] [--bin PATH]

On the seed topology (one emulator, the release daemon, resync 2 s), each
mode in turn — no webhook, a receiver that answers 200 at once, one that
never answers (every attempt runs into the 5 s limit), one that answers 500
— with a drift after each correction (SSH opened on the load balancer's group, so
every correction is a `drift-corrected` notice), and reports the wall time
of the passes that corrected a drift (from the audit log's pass, measured as
the status's `last_pass_seconds` right after each correction) and of all
passes, per mode, as medians and ratios to the no-webhook run. The claim
under test: delivery never runs in the loop, so the ratios stay at 1.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import socketserver
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: Emulator, Daemon, helpers)

MODES = ("none", "ok", "hang", "fail")


class Hook(http.server.BaseHTTPRequestHandler):
    mode = "ok"
    received = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).received += 1
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if type(self).mode == "hang":
            time.sleep(3600)
            return
        code = 200 if type(self).mode == "ok" else 500
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def serve(mode: str) -> tuple[socketserver.ThreadingTCPServer, str]:
    Hook.mode = mode
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def one_mode(mode: str, binary: Path, emu: bench.Emulator, work: Path, rounds: int, group: str) -> dict[str, Any]:
    seed = (bench.ROOT / "examples" / "seed.yaml").read_text()
    server = None
    if mode != "none":
        server, url = serve(mode)
        os.environ["BENCH_HOOK_URL"] = url
        seed += ("\nnotifications:\n  - name: bench\n    url: {env: BENCH_HOOK_URL}\n"
                 "    events: [drift-corrected]\n    coalesceSeconds: 1\n")
    config = work / f"{mode}.yaml"
    config.write_text(seed)
    mode_work = work / mode
    mode_work.mkdir(exist_ok=True)
    daemon = bench.Daemon(binary, config, mode_work, emu.endpoint, ["--resync", "2s"])
    try:
        wait_ready(daemon)
        ec2 = emu_client(emu)
        corrections: list[float] = []
        passes: list[float] = []
        seen = bench.daemon_passes(daemon.status())
        import botocore.exceptions

        # `rounds` drifts, one every 3 s; every pass seen is recorded.
        next_drift = time.monotonic()
        stop_at = next_drift + 3.0 * rounds + 4.0
        while time.monotonic() < stop_at:
            if time.monotonic() >= next_drift and next_drift < stop_at - 4.0:
                next_drift += 3.0
                try:
                    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
                        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
                except botocore.exceptions.ClientError:
                    pass  # the last one is not revoked yet
            st = daemon.status() or {}
            n = bench.daemon_passes(st)
            if n > seen:
                seen = n
                seconds = float(st.get("last_pass_seconds") or 0.0)
                passes.append(seconds)
                unit = (st.get("units") or {}).get("security-group/LoadBalancerGroup") or {}
                if any(a.get("result") == "applied" for a in unit.get("actions") or []):
                    corrections.append(seconds)
            time.sleep(0.05)
        return {"mode": mode, "correcting_passes": len(corrections),
                "correcting_pass_median_ms": round(statistics.median(corrections) * 1000, 1) if corrections else None,
                "pass_median_ms": round(statistics.median(passes) * 1000, 1) if passes else None,
                "passes": len(passes), "webhook_requests": Hook.received if server else 0}
    finally:
        daemon.close()
        if server is not None:
            server.shutdown()
        Hook.received = 0


def wait_ready(daemon: bench.Daemon, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise RuntimeError(f"the daemon exited; see {daemon.stderr}")
        try:
            if bench.http_text(f"{daemon.base}/readyz", timeout=5) is not None:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the daemon did not become ready")


def emu_client(emu: bench.Emulator) -> Any:
    import boto3

    return boto3.client("ec2", endpoint_url=emu.endpoint, region_name=bench.REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webhook-hang", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=12, help="drifts per mode")
    ap.add_argument("--modes", default=",".join(MODES), help="modes in the order run (the first is the reference)")
    ap.add_argument("--bin", default=None, help="ecs-reconciler binary (default: the release build)")
    ap.add_argument("--out", default=None, help="JSON results")
    args = ap.parse_args()
    binary = Path(args.bin) if args.bin else bench.default_binary()
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="ecs-reconciler-webhook-bench."))
    emu = bench.Emulator(sys.executable, work, "emulator")
    try:
        emu.control("GET", "health")
        # The seed is built by the emulator's own seeding script.
        import seed as seed_mod  # tests/emulator/seed.py

        ids = seed_mod.seed(emu.endpoint, draining_seconds=60, wait_seconds=60)
        group = ids["security_groups"]["LoadBalancerGroup"]
        modes = [m for m in args.modes.split(",") if m in MODES]
        rows = [one_mode(mode, binary, emu, work, args.rounds, group) for mode in modes]
    finally:
        emu.close()
    base = next((r for r in rows if r["mode"] == "none"), rows[0])
    print(f"{'mode':6} {'correcting pass median':>24} {'all passes median':>18} {'x none':>8} {'webhook requests':>17}")
    for row in rows:
        ratio = (row["correcting_pass_median_ms"] / base["correcting_pass_median_ms"]
                 if row["correcting_pass_median_ms"] and base["correcting_pass_median_ms"] else None)
        row["ratio_to_none"] = None if ratio is None else round(ratio, 2)
        print(f"{row['mode']:6} {bench.fmt(row['correcting_pass_median_ms'])+' ms':>24} "
              f"{bench.fmt(row['pass_median_ms'])+' ms':>18} {bench.fmt(row['ratio_to_none'], 2):>8} "
              f"{row['webhook_requests']:>17}")
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
