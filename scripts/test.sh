#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit + property +
# end-to-end tests (against the local AWS emulator), the IAM policy against
# the calls the e2e suite made, the dashboard in headless Chromium, the
# emulator's own self-test, the deployment files, the release binary run
# in the image's file system, and the RustSec advisory check (offline).
#
# Installs what it needs on first run: the emulator's virtualenv (moto,
# selenium; pinned) and cargo-audit under ~/.cache/ecs-reconciler, and
# Debian's chromium + chromium-driver with apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ECS_RECONCILER_CACHE:-$HOME/.cache/ecs-reconciler}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CACHE"

step() { printf '\n==> %s\n' "$*"; }

step "emulator virtualenv"
ECS_RECONCILER_EMULATOR_PYTHON="$(bash scripts/emulator-python)"
export ECS_RECONCILER_EMULATOR_PYTHON
echo "$ECS_RECONCILER_EMULATOR_PYTHON"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, property, end-to-end)"
# The e2e suite logs every AWS call the controller makes here; the IAM
# policy is checked against those logs below.
export ECS_RECONCILER_CALLS_DIR="$CARGO_TARGET_DIR/e2e-calls"
rm -rf "$ECS_RECONCILER_CALLS_DIR"
cargo test --workspace --locked

step "IAM policy vs. the calls the controller made during the e2e suite"
"$ECS_RECONCILER_EMULATOR_PYTHON" -m pytest -q tests/iam

step "dashboard in a real browser (headless Chromium)"
ECS_RECONCILER_BIN="$CARGO_TARGET_DIR/debug/ecs-reconciler" bash scripts/browser-test.sh

step "emulator self-test"
"$ECS_RECONCILER_EMULATOR_PYTHON" -m pytest -q tests/emulator

step "deployment files (hadolint, ECS task definitions and service against the emulator)"
bash scripts/deploy-test.sh

step "the image without Docker: the release binary in the image's file system (chroot)"
bash scripts/image-test.sh

step "RustSec advisories (offline snapshot)"
bash scripts/audit.sh

echo
echo "all checks passed"
