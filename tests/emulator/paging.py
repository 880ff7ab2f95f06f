"""Opaque NextToken pagination shared by the ECS and EC2 patches.

moto 5.2.1 ignores maxResults/nextToken on ECS ListTasks and
ListContainerInstances and on EC2 DescribeSecurityGroupRules (it always
returns everything, never a token).  SDK paginators are driven by the token,
so the patched operations slice their result with ``paginate``.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Sequence


class BadToken(ValueError):
    pass


def _encode(offset: int) -> str:
    raw = json.dumps({"emulator-offset": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        offset = json.loads(base64.urlsafe_b64decode(padded.encode()))["emulator-offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
        return offset
    except Exception as exc:  # noqa: BLE001 - any garbage is a bad token
        raise BadToken(token) from exc


def paginate(
    items: Sequence[Any], max_results: int | None, token: str | None, default: int
) -> tuple[list[Any], str | None]:
    """Return (page, next_token) for ``items`` starting at ``token``."""
    start = _decode(token) if token else 0
    size = max_results if max_results else default
    page = list(items[start : start + size])
    end = start + len(page)
    return page, (_encode(end) if end < len(items) else None)
