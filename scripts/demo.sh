#!/usr/bin/env bash
# The demo on the local AWS emulator, in one command:
#
#   scripts/demo.sh [--chaos] [--every SECONDS] [--listen ADDR] [--walkthrough]
#
# Builds ecs-reconciler, installs the emulator (moto, pinned) on first run,
# starts it with the article's seed topology, starts the daemon on
# examples/seed.yaml and prints the dashboard's URL. With --chaos it injects
# a random drift every few seconds (what people do in the console) so you can
# watch the controller fix it. With --walkthrough it instead shows `plan`,
# `apply --once` and `plan` on a few drifts and exits. Ctrl-C stops
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

CHAOS=0
EVERY=8
LISTEN=127.0.0.1:9187
WALKTHROUGH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --chaos) CHAOS=1 ;;
    --every) EVERY="$2"; shift ;;
    --listen) LISTEN="$2"; shift ;;
    --walkthrough) WALKTHROUGH=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 64 ;;
  esac
  shift
done

CACHE="${ECS_RECONCILER_CACHE:-$HOME/.cache/ecs-reconciler}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

echo "==> building ecs-reconciler (the first build compiles the AWS SDKs: a few minutes)"
cargo build --quiet --bin ecs-reconciler
BIN="$CARGO_TARGET_DIR/debug/ecs-reconciler"

echo "==> preparing the emulator (moto, pinned; installed once)"
PY="$(bash scripts/emulator-python)"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  echo
  echo "stopped."
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" tests/emulator/emulator.py --host 127.0.0.1 --port 0 --port-file "$WORK/port" \
  --seed --scheduler-delay 0.5 --draining-seconds 30 > "$WORK/emulator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  [ -f "$WORK/port" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/emulator.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$WORK/port" ] || { echo "emulator did not start" >&2; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$WORK/port")"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
echo "==> emulator on $AWS_ENDPOINT_URL with the seed topology"
awsctl() { "$PY" tests/emulator/awsctl.py --endpoint "$AWS_ENDPOINT_URL" "$@" >/dev/null; }

if [ "$WALKTHROUGH" = 1 ]; then
  run() { echo; echo "\$ ecs-reconciler $*"; "$BIN" "$@" || echo "(exit $?)"; }
  run plan --config examples/seed.yaml
  echo; echo "==> someone clicks in the console: scales to 5, opens port 22, detaches a group, deregisters a target"
  awsctl scale nestjs-cluster nestjs-api 5
  awsctl authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0
  awsctl detach-instance-group EC2InstanceWithLoadBalancer --index 0
  awsctl deregister-target nestjs-api-tg --index 0
  sleep 1
  run plan --config examples/seed.yaml
  run apply --config examples/seed.yaml --once
  run plan --config examples/seed.yaml
  exit 0
fi

# The daemon edits a copy, so the demo never changes the repository.
cp examples/seed.yaml "$WORK/seed.yaml"
"$BIN" run --config "$WORK/seed.yaml" --listen "$LISTEN" --resync 5s \
  --audit-log "$WORK/audit.jsonl" --log-format text > "$WORK/daemon.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('http://$LISTEN/readyz', timeout=2)" 2>/dev/null && break
  kill -0 "${PIDS[1]}" 2>/dev/null || { cat "$WORK/daemon.log" >&2; exit 1; }
  sleep 0.2
done

cat <<EOF

  Dashboard:  http://$LISTEN/
  Status API: http://$LISTEN/api/v1/status   Metrics: http://$LISTEN/metrics
  Config:     $WORK/seed.yaml   (edit it: changes apply within a second;
              break it: the error shows on the dashboard, the last good config keeps running)
  Drift by hand:  $PY tests/emulator/awsctl.py --endpoint $AWS_ENDPOINT_URL --help
  Logs:       $WORK/daemon.log   Audit: $WORK/audit.jsonl

EOF

if [ "$CHAOS" = 0 ]; then
  echo "Press Ctrl-C to stop (add --chaos to inject a random drift every ${EVERY}s)."
  wait "${PIDS[1]}"
  exit 0
fi

DRIFTS=(
  "scale nestjs-cluster nestjs-api 5"
  "scale nestjs-cluster nestjs-api 0"
  "authorize-ingress LoadBalancerGroup tcp 22 22 --cidr 0.0.0.0/0"
  "authorize-ingress EC2InstanceWithLoadBalancer tcp 22 22 --cidr 0.0.0.0/0"
  "revoke-ingress LoadBalancerGroup tcp 80 80 --cidr 0.0.0.0/0"
  "detach-instance-group EC2InstanceWithLoadBalancer --index 0"
  "detach-lb-group nestjs-api-alb LoadBalancerGroup"
  "deregister-target nestjs-api-tg --index 0"
  "register-target nestjs-api-tg 0 40000"
  "set-health-check-path nestjs-api-tg /debug"
)
echo "Chaos: a random drift every ${EVERY}s for at most an hour (Ctrl-C stops everything)."
end=$((SECONDS + 3600))
while [ "$SECONDS" -lt "$end" ]; do
  sleep "$EVERY"
  kill -0 "${PIDS[1]}" 2>/dev/null || { echo "the daemon stopped:" >&2; tail -20 "$WORK/daemon.log" >&2; exit 1; }
  drift="${DRIFTS[RANDOM % ${#DRIFTS[@]}]}"
  echo "$(date +%T)  chaos: $drift"
  # shellcheck disable=SC2086
  awsctl $drift || echo "   (that drift did not apply: $?)"
done
