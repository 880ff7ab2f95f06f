#!/usr/bin/env bash
# The demo on the local AWS emulator: builds ecs-reconciler, starts the
# emulator with the article's seed topology, injects drift with direct API
# calls, then shows `plan`, `apply --once` and the clean `plan` after it.
# Everything it starts is stopped when it exits (Ctrl-C included).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ECS_RECONCILER_CACHE:-$HOME/.cache/ecs-reconciler}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
CONFIG="${1:-examples/seed.yaml}"

echo "==> building ecs-reconciler (the first build compiles the AWS SDKs: a few minutes)"
cargo build --quiet --bin ecs-reconciler
BIN="$CARGO_TARGET_DIR/debug/ecs-reconciler"

echo "==> preparing the emulator (moto, pinned; installed once)"
PY="$(bash scripts/emulator-python)"

WORK="$(mktemp -d)"
EMULATOR_PID=""
cleanup() {
  if [ -n "$EMULATOR_PID" ]; then kill "$EMULATOR_PID" 2>/dev/null || true; wait "$EMULATOR_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$PY" tests/emulator/emulator.py --host 127.0.0.1 --port 0 --port-file "$WORK/port" \
  --seed --scheduler-delay 0.5 --draining-seconds 30 > "$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 1 300); do
  [ -f "$WORK/port" ] && break
  kill -0 "$EMULATOR_PID" 2>/dev/null || { cat "$WORK/emulator.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$WORK/port" ] || { echo "emulator did not start" >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$WORK/port")"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
echo "==> emulator on $AWS_ENDPOINT_URL with the seed topology"
awsctl() { "$PY" tests/emulator/awsctl.py --endpoint "$AWS_ENDPOINT_URL" "$@" >/dev/null; }

run() { echo; echo "\$ ecs-reconciler $*"; "$BIN" "$@" || echo "(exit $?)"; }

run plan --config "$CONFIG"

echo; echo "==> someone clicks in the console: scales to 5, opens port 22, detaches a group, deregisters a target"
awsctl scale nestjs-cluster nestjs-api 5
awsctl authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0
awsctl detach-instance-group EC2InstanceWithLoadBalancer --index 0
awsctl deregister-target nestjs-api-tg --index 0
sleep 1

run plan --config "$CONFIG"
run apply --config "$CONFIG" --once
run plan --config "$CONFIG"
