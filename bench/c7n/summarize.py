#!/usr/bin/env python3
"""Markdown table of bench.sh / run.py JSON lines: median per (drift, N, tool).

    python3 bench/c7n/summarize.py RESULTS.jsonl [MORE.jsonl ...]
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def main() -> int:
    rows: dict[tuple, list[dict]] = defaultdict(list)
    for path in sys.argv[1:]:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                if "wall_s" not in r:
                    continue
                rows[(not r.get("drift", True), r["groups"], r["tool"])].append(r)
    print("| pass | N | tool | runs | wall s (median, min-max) | tool CPU s | peak RSS MiB "
          "| API calls (total: per operation) | converged |")
    print("| --- | ---: | --- | ---: | --- | ---: | ---: | --- | --- |")
    for (no_drift, n, tool), rs in sorted(rows.items()):
        walls = [r["wall_s"] for r in rs]
        cpu = statistics.median(r["cpu_s"] for r in rs)
        rss = max(r["max_rss_mib"] for r in rs)
        calls = rs[0]["api_calls"]
        same = all(r["api_calls"] == calls for r in rs)
        ops = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in calls.items())
        conv = all(r["converged"] and r.get("exact", True) for r in rs)
        print(f"| {'no drift' if no_drift else 'drift'} | {n} | {tool} | {len(rs)} "
              f"| {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) "
              f"| {cpu:.2f} | {rss:.1f} | {rs[0]['api_calls_total']}: {ops}"
              f"{'' if same else ' (varied)'} | {'yes' if conv else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
