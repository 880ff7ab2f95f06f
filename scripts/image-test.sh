#!/usr/bin/env bash
# The container image without Docker: builds the exact release binary
# deploy/Dockerfile builds (same command, same profile, --locked), assembles
# the image's root file system with the Dockerfile's own script
# (deploy/rootfs.sh), and runs the binary inside it with chroot as user
# 65532 and the image's environment: --version, validate, plan against the
# local emulator, then `run` with the `healthcheck` command the image's
# HEALTHCHECK uses, and SIGTERM (exit 0 within the ECS stopTimeout).
#
# The release build takes ~12 min on 2 cores the first time (thin LTO, one
# codegen unit), seconds when cached. chroot needs root; without it the
# steps inside the file system are skipped, and said so.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ECS_RECONCILER_CACHE:-$HOME/.cache/ecs-reconciler}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

step() { printf '  - %s\n' "$*"; }

started=$(date +%s)
cargo build --release --locked --bin ecs-reconciler
BIN="$CARGO_TARGET_DIR/release/ecs-reconciler"
step "release build: $(( $(date +%s) - started )) s, $(( $(stat -c %s "$BIN") / 1024 / 1024 )) MiB"
if readelf -S "$BIN" | grep -qE '\.symtab|\.debug_info'; then
  echo "error: the release binary is not stripped (profile.release strip = true)" >&2
  exit 1
fi
step "stripped: no .symtab or .debug_info"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

ROOTFS="$WORK/rootfs"
bash deploy/rootfs.sh "$BIN" "$ROOTFS"
step "root file system: $(find "$ROOTFS" -type f | wc -l) files, $(du -sm "$ROOTFS" | cut -f1) MiB"

if [ "$(id -u)" != 0 ]; then
  echo "  (not root: skipping the steps that chroot into the file system)"
  exit 0
fi

cp examples/seed.yaml "$ROOTFS/etc/ecs-reconciler/desired.yaml"
CHROOT="$(command -v chroot)"
# The image's ENV and USER; nothing from this shell leaks in. `exec` keeps
# one process from here to the binary (env and chroot exec too), so a
# signal to a background in_image reaches the daemon itself.
in_image() {
  exec env -i SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    ECS_RECONCILER_CONFIG=/etc/ecs-reconciler/desired.yaml \
    AWS_ENDPOINT_URL="${ENDPOINT:-}" AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true \
    "$CHROOT" --userspec=65532:65532 "$ROOTFS" /ecs-reconciler "$@"
}

version="$(in_image --version)"
step "$version (as user 65532 in the image's file system)"
(in_image validate) >/dev/null
step "validate: the mounted config is valid"

PY="$(bash scripts/emulator-python)"
"$PY" tests/emulator/emulator.py --host 127.0.0.1 --port 0 --port-file "$WORK/port" \
  --seed --scheduler-delay 0.2 >"$WORK/emulator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do
  [ -s "$WORK/port" ] && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/emulator.log" >&2; exit 1; }
  sleep 0.1
done
ENDPOINT="http://127.0.0.1:$(cat "$WORK/port")"
(in_image plan) >/dev/null
step "plan against the emulator from inside the file system: converged (exit 0)"

LISTEN="127.0.0.1:$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(in_image run --listen "$LISTEN" --resync 2s) >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
healthy=""
for _ in $(seq 1 100); do
  if (in_image healthcheck --listen "$LISTEN") >/dev/null 2>&1; then healthy=yes; break; fi
  sleep 0.1
done
if [ -z "$healthy" ]; then
  echo "error: the daemon in the image file system never became healthy:" >&2
  tail -20 "$WORK/daemon.log" >&2
  exit 1
fi
step "run: healthcheck (the image's HEALTHCHECK command) exits 0"

kill -TERM "$DAEMON"
stopped=$(date +%s)
code=0
wait "$DAEMON" || code=$?
if [ "$code" != 0 ]; then
  echo "error: SIGTERM exited $code, not 0:" >&2
  tail -20 "$WORK/daemon.log" >&2
  exit 1
fi
step "SIGTERM: exit 0 in $(( $(date +%s) - stopped )) s"
