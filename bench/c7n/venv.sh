#!/usr/bin/env bash
# Ensure the Cloud Custodian (c7n) virtualenv for the benchmark exists and is
# up to date, then print the absolute path of its python (the only line on
# stdout). The `custodian` CLI sits beside it.
#
#   venv location: ${ECS_RECONCILER_C7N_VENV:-$HOME/.cache/ecs-reconciler/c7n-venv}
#   requirements:  bench/c7n/requirements.txt (re-installed when its sha256
#                  changes; the hash is stored inside the venv)
#
# Usage:  "$(bash bench/c7n/venv.sh)" bench/c7n/run.py --endpoint URL --groups 10
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
venv="${ECS_RECONCILER_C7N_VENV:-${HOME:-/tmp}/.cache/ecs-reconciler/c7n-venv}"
py="$venv/bin/python"
stamp="$venv/.requirements.sha256"

if [[ ! -f "$req" ]]; then
  echo "c7n-venv: missing $req" >&2
  exit 1
fi
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -x "$py" && -x "$venv/bin/custodian" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$py"
  exit 0
fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [[ -x "$py" && -x "$venv/bin/custodian" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$py"
  exit 0
fi

{
  if [[ ! -x "$py" ]]; then
    echo "c7n-venv: creating virtualenv at $venv" >&2
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
      echo "c7n-venv: 'python3 -m venv' failed (on Debian: apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
  rm -f "$stamp"
  echo "c7n-venv: installing $req" >&2
  "$py" -m pip install --quiet --disable-pip-version-check -r "$req"
} 1>&2 || {
  echo "c7n-venv: failed to set up the virtualenv at $venv" >&2
  exit 1
}

echo "$want" >"$stamp"
echo "$py"
