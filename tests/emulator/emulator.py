#!/usr/bin/env python3
"""Local AWS emulator for ecs-reconciler: moto (in-process) + our fixes.

Owns the process: applies the moto patches (ecs_patch, targets_patch,
ec2_patch), starts the ECS scheduler thread, wraps moto's server app in the
control/fault/call-count middleware and serves it on a threaded werkzeug
server that keeps connections alive as AWS does (keepalive.py).  With
--seed it builds the seed topology (seed.py) before announcing the port.  See README.md for the control API.

    emulator.py --host 127.0.0.1 --port 0 --port-file PATH [--seed]
                [--seed-file PATH] [--scheduler-delay 1.0] [--draining-seconds 300]
                [--calls-log PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

# Dummy credentials/region for anything moto or boto3 might look up in-process.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def build_app() -> "object":
    """moto's WSGI app with every patch applied, wrapped in our middleware."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    import capacity_providers
    import cross_account
    import deployments
    import ec2_patch
    import enis
    import group_writes
    import prefix_lists
    import revoke_unknown
    import rule_quota
    import ecs_patch
    import instance_loss
    import oracle
    import read_lag
    import targets_patch
    import task_sets
    from middleware import EmulatorMiddleware

    ecs_patch.apply()
    deployments.apply()
    read_lag.apply()
    instance_loss.apply()
    capacity_providers.apply()
    task_sets.apply()
    targets_patch.apply()
    ec2_patch.apply()
    # real-EC2 networking (each switchable, off by default); after ec2_patch
    enis.apply()
    group_writes.apply()
    prefix_lists.apply()
    rule_quota.apply()
    cross_account.apply()
    revoke_unknown.apply()
    oracle.apply()
    return EmulatorMiddleware(DomainDispatcherApplication(create_backend_app))


def _write_atomically(path: str, text: str) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--port-file", help="write the bound port here once ready (atomic)")
    parser.add_argument("--seed", action="store_true", help="create the seed topology before announcing the port")
    parser.add_argument("--seed-file", help="write the seed result (JSON ids) here")
    parser.add_argument("--scheduler-delay", type=float, default=1.0)
    parser.add_argument("--draining-seconds", type=int, default=300)
    parser.add_argument("--lifecycle", metavar="JSON",
                        help='per-state task lifecycle seconds, e.g. \'{"provisioning": 0.2, "pending": 0.3}\' (lifecycle.py)')
    parser.add_argument("--rolling-deployments", action="store_true",
                        help="UpdateService starts rolling-update deployments (deployments.py)")
    parser.add_argument("--read-lag", metavar="JSON",
                        help='eventually consistent reads, e.g. \'{"ecs": 2, "elbv2": 1, "ec2": 1}\' (read_lag.py)')
    parser.add_argument("--instance-loss-lag", type=float, metavar="S",
                        help="seconds until ECS stops the tasks of a stopped/terminated instance (instance_loss.py)")
    parser.add_argument("--capacity-providers", action="store_true",
                        help="CreateService capacityProviderStrategy as in AWS (capacity_providers.py)")
    parser.add_argument("--task-sets", action="store_true",
                        help="CODE_DEPLOY/EXTERNAL services run their task sets (task_sets.py)")
    parser.add_argument("--ec2-networking", metavar="JSON",
                        help='real-EC2 networking switches, as POST /_emulator/ec2 takes them, e.g. {"trunk_enis": true}')
    parser.add_argument("--calls-log", help="append one JSON line per identified AWS call to this file")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    from state import SETTINGS

    SETTINGS.scheduler_delay = max(0.0, args.scheduler_delay)
    SETTINGS.draining_seconds = max(0, args.draining_seconds)
    SETTINGS.rolling_deployments = args.rolling_deployments
    SETTINGS.instance_loss_lag = args.instance_loss_lag
    SETTINGS.capacity_providers = args.capacity_providers
    SETTINGS.task_sets = args.task_sets
    if args.lifecycle:
        import lifecycle

        SETTINGS.lifecycle = lifecycle.validate(json.loads(args.lifecycle))

    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    app = build_app()
    if args.read_lag:
        import read_lag

        read_lag.configure(json.loads(args.read_lag))
    if args.ec2_networking:
        import ec2_networking

        ec2_networking.configure_cli(args.ec2_networking)
    if args.calls_log:
        app.calls.open_log(args.calls_log)

    import scheduler
    from keepalive import KeepAliveRequestHandler
    from werkzeug.serving import make_server

    sched = scheduler.install()
    sched.start()

    server = make_server(args.host, args.port, app, threaded=True, request_handler=KeepAliveRequestHandler)
    port = server.server_address[1]
    endpoint = f"http://{args.host}:{port}"
    serve_thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True
    )
    serve_thread.start()

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.seed:
        import seed as seed_mod

        try:
            result = seed_mod.seed(
                endpoint,
                draining_seconds=SETTINGS.draining_seconds,
                wait_seconds=max(30.0, 3 * SETTINGS.scheduler_delay + 10),
            )
        except Exception as exc:  # noqa: BLE001
            print(f"emulator: seeding failed: {exc!r}", file=sys.stderr, flush=True)
            server.shutdown()
            return 1
        app.extra["seed"] = result
        app.calls.reset()  # the seed's own calls are not the client's
        if args.seed_file:
            _write_atomically(args.seed_file, json.dumps(result, indent=2) + "\n")

    if args.port_file:
        _write_atomically(args.port_file, f"{port}\n")
    print(f"emulator listening on {endpoint}", flush=True)

    while not stop.wait(0.2):
        if not serve_thread.is_alive():
            print("emulator: HTTP server thread died", file=sys.stderr, flush=True)
            return 1
    sched.stop()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: garbage-collecting moto's object graph
    # takes seconds and nothing needs it (all state is in memory only).
    os._exit(code)
