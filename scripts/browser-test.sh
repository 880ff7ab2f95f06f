#!/usr/bin/env bash
# The dashboard's browser test: the real daemon binary against the local AWS
# emulator, watched by headless Chromium through Selenium
# (tests/browser/test_dashboard.py). Builds nothing: point it at a binary.
#
#   ECS_RECONCILER_BIN  the daemon (default $CARGO_TARGET_DIR/debug/ecs-reconciler,
#                       e.g. after `cargo build --bin ecs-reconciler`)
#   extra arguments     passed to pytest (e.g. -k narrow, -x)
#
# Installs Debian's chromium and chromium-driver with apt-get when
# /usr/bin/chromium or /usr/bin/chromedriver is missing, and the emulator's
# virtualenv (moto, selenium; pinned) through scripts/emulator-python.
# Screenshots and logs: tests/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ECS_RECONCILER_CACHE:-$HOME/.cache/ecs-reconciler}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export ECS_RECONCILER_BIN="${ECS_RECONCILER_BIN:-$CARGO_TARGET_DIR/debug/ecs-reconciler}"

if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  echo "==> installing chromium and chromium-driver (apt-get)" >&2
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

if [[ ! -x "$ECS_RECONCILER_BIN" ]]; then
  echo "browser-test: $ECS_RECONCILER_BIN is missing; run 'cargo build --bin ecs-reconciler' or set ECS_RECONCILER_BIN" >&2
  exit 1
fi

PY="$(bash scripts/emulator-python)"
mkdir -p tests/artifacts
exec "$PY" -m pytest -q -p no:cacheprovider -s tests/browser/test_dashboard.py "$@"
