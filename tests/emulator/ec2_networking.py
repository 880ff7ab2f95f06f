"""The real-EC2 networking switches and ``/_emulator/ec2`` (control API).

Owns validating and applying the switches (kept in ``state.SETTINGS``) and
the one action, ``add_trunk_eni``.  The behaviours themselves live in
enis.py, group_writes.py, prefix_lists.py, rule_quota.py, cross_account.py
and revoke_unknown.py.  README: "Real-EC2 networking (switchable)".

``POST /_emulator/ec2`` body (all keys optional; unknown keys HTTP 400):
``{"trunk_enis": bool, "strict_group_writes": bool, "prefix_lists": bool,
"rule_quota": int 1..1000 | null, "cross_account_groups": bool,
"revoke_unknown_returns_success": bool,
"add_trunk_eni": "i-…" | {"instance": "i-…", "groups": ["sg-…"]}}``.
Answers the settings (and ``trunk_eni``, the ENI added or found, and
``trunk_enis_added`` when ``trunk_enis`` was switched on).
"""

from __future__ import annotations

from typing import Any

import enis
import prefix_lists
from state import LOCK, SETTINGS, mark_changed

BOOLS = ("trunk_enis", "strict_group_writes", "prefix_lists", "cross_account_groups",
         "revoke_unknown_returns_success")
KEYS = (*BOOLS, "rule_quota", "add_trunk_eni")


def settings() -> dict[str, Any]:
    return {k: getattr(SETTINGS, k) for k in (*BOOLS, "rule_quota")}


def validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = set(body) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
    for key in BOOLS:
        if key in body and not isinstance(body[key], bool):
            raise ValueError(f"{key} must be true or false")
    quota = body.get("rule_quota")
    if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or not 1 <= quota <= 1000):
        raise ValueError("rule_quota must be null or an integer 1..1000")
    trunk = body.get("add_trunk_eni")
    if "add_trunk_eni" in body and not (isinstance(trunk, str) or (isinstance(trunk, dict) and isinstance(
            trunk.get("instance"), str) and set(trunk) <= {"instance", "groups"})):
        raise ValueError('add_trunk_eni must be "i-…" or {"instance": "i-…", "groups": ["sg-…"]}')


def configure(body: dict[str, Any]) -> dict[str, Any]:
    """Validate, then apply (LOCK taken here)."""
    validate(body)
    out: dict[str, Any] = {}
    with LOCK:
        for key in BOOLS:
            if key in body:
                setattr(SETTINGS, key, body[key])
        if "rule_quota" in body:
            SETTINGS.rule_quota = body["rule_quota"]
        if "prefix_lists" in body:
            prefix_lists.refresh()
        if body.get("trunk_enis"):
            out["trunk_enis_added"] = enis.trunk_all_container_instances()
        trunk = body.get("add_trunk_eni")
        if trunk is not None:
            spec = {"instance": trunk} if isinstance(trunk, str) else trunk
            out["trunk_eni"] = enis.add_trunk_eni(spec["instance"], spec.get("groups"))
        mark_changed()
    return {**settings(), **out}


def configure_cli(value: str | None) -> None:
    """``--ec2-networking JSON`` at start-up (switches only)."""
    if value:
        import json

        configure(json.loads(value))
