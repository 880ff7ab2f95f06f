#!/usr/bin/env bash
# Performance at scale: the ecs-reconciler benchmark (bench/README.md).
#
#   scripts/bench.sh [--sizes 1,100,1000] [--drifts 20] [--edits 5]
#                    [--c7n-groups 100,1000|none] [--out bench/results.json] [--keep]
#   scripts/bench.sh --webhook-hang [--rounds 12]    # pass times with a webhook that hangs (bench/webhook_hang.py)
#
# Measures the RELEASE binary at
# ${CARGO_TARGET_DIR:-~/.cache/ecs-reconciler/target}/release/ecs-reconciler
# (or --bin PATH); it never builds it. Runs bench/run.py with the emulator's
# venv python; starts and stops its own emulators and daemon.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$root/scripts/emulator-python")"
if [[ "${1:-}" == --webhook-hang ]]; then
  exec "$py" "$root/bench/webhook_hang.py" "$@"
fi
exec "$py" "$root/bench/run.py" "$@"
