"""Another writer between the controller's read and its write (hooks).

Owns ``/_emulator/hooks``: a hook runs one modification in-process just
before the next matching AWS call is forwarded to moto, so the call races a
concurrent writer as it can in AWS (the controller read the groups, someone
changed them, then its write lands).  README: "Control API".

``POST /_emulator/hooks`` (one hook, or a JSON list of them)::

  {"before": "ec2:ModifyNetworkInterfaceAttribute",   # service:Operation ("*" for any operation)
   "client": "reconciler",                            # reconciler | other | * (default *)
   "once": true,                                      # default true; false: every matching call
   "do": {"attach_group": {"instance": "i-…", "group": "sg-…"}}}

Actions (exactly one key in ``do``):

* ``attach_group`` / ``detach_group`` ``{"instance", "group"}``: add / remove
  the group on the instance's primary network interface (so also the
  instance's SecurityGroups).
* ``attach_lb_group`` / ``detach_lb_group`` ``{"load_balancer": name|arn,
  "group"}``: add / remove it in the ELBv2 load balancer's SecurityGroups.

A hook fires only for a call that is forwarded (not for an injected fault).
``GET`` lists the hooks with ``fired`` (how often) and ``last_error`` (an
action that could not run, e.g. an unknown instance: the call still goes
through); a ``once`` hook stays listed after firing.  ``DELETE`` clears.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from state import LOCK, mark_changed

ACTIONS = ("attach_group", "detach_group", "attach_lb_group", "detach_lb_group")
CLIENTS = ("reconciler", "other", "*")


class Hooks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.hooks: list[dict[str, Any]] = []
        self.active = False  # fast path: no armed hook

    def add(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise ValueError("a hook is a JSON object")
        unknown = set(spec) - {"before", "client", "once", "do"}
        if unknown:
            raise ValueError(f"unknown hook keys {sorted(unknown)}")
        before = spec.get("before")
        if not isinstance(before, str) or before.count(":") != 1 or not all(before.split(":")):
            raise ValueError('"before" must be "service:Operation", e.g. "ec2:ModifyNetworkInterfaceAttribute"')
        client = spec.get("client", "*")
        if client not in CLIENTS:
            raise ValueError(f"client must be one of {list(CLIENTS)}")
        once = spec.get("once", True)
        if not isinstance(once, bool):
            raise ValueError("once must be true or false")
        do = spec.get("do")
        if not isinstance(do, dict) or len(do) != 1 or next(iter(do)) not in ACTIONS:
            raise ValueError(f'"do" must have exactly one of {list(ACTIONS)}')
        (action, args), = do.items()
        need = {"instance", "group"} if action in ("attach_group", "detach_group") else {"load_balancer", "group"}
        if not isinstance(args, dict) or set(args) != need or not all(isinstance(v, str) for v in args.values()):
            raise ValueError(f"{action} takes {sorted(need)}")
        service, operation = before.split(":")
        hook = {"id": next(self._ids), "before": before, "service": service, "operation": operation,
                "client": client, "once": once, "do": do, "fired": 0, "last_error": None, "armed": True}
        with self._lock:
            self.hooks.append(hook)
            self.active = True
        return hook

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{k: v for k, v in h.items() if k not in ("service", "operation")} for h in self.hooks]

    def clear(self) -> None:
        with self._lock:
            self.hooks = []
            self.active = False

    def take(self, service: str, operation: str, client: str) -> list[dict[str, Any]]:
        """The armed hooks matching this call (once-hooks are disarmed)."""
        with self._lock:
            hit = []
            for h in self.hooks:
                if (h["armed"] and h["service"] == service and h["operation"] in (operation, "*")
                        and h["client"] in (client, "*")):
                    hit.append(h)
                    h["fired"] += 1
                    if h["once"]:
                        h["armed"] = False
            self.active = any(h["armed"] for h in self.hooks)
            return hit

    def run_before(self, service: str, operation: str, client: str) -> None:
        """Run the matching hooks' actions (takes LOCK)."""
        if not self.active:
            return
        hit = self.take(service, operation, client)
        if not hit:
            return
        with LOCK:
            for h in hit:
                (action, args), = h["do"].items()
                try:
                    _run(action, args)
                    h["last_error"] = None
                except Exception as exc:  # noqa: BLE001 - reported in GET, the call goes on
                    h["last_error"] = f"{type(exc).__name__}: {exc}"
            mark_changed()
            import read_lag

            if read_lag.lag_of("ec2"):
                read_lag.EC2.writes.append(time.time())  # EC2 changed in-process


def _run(action: str, args: dict[str, str]) -> None:
    if action in ("attach_group", "detach_group"):
        import enis

        backend, instance = enis.find_instance(args["instance"])
        group = backend.get_security_group_from_id(args["group"])
        if group is None:
            raise ValueError(f"no security group {args['group']}")
        groups = list(instance.security_groups)
        if action == "attach_group" and group not in groups:
            groups.append(group)
        elif action == "detach_group":
            groups = [g for g in groups if g is not group]
        instance.security_groups = groups
        return
    from moto.elbv2.models import elbv2_backends

    for regions in list(dict.values(elbv2_backends)):
        for backend in list(dict.values(regions)):
            for lb in backend.load_balancers.values():
                if args["load_balancer"] in (lb.arn, lb.name):
                    groups = list(lb.security_groups or [])
                    if action == "attach_lb_group" and args["group"] not in groups:
                        groups.append(args["group"])
                    elif action == "detach_lb_group":
                        groups = [g for g in groups if g != args["group"]]
                    lb.security_groups = groups
                    return
    raise ValueError(f"no load balancer {args['load_balancer']}")


HOOKS = Hooks()
