#!/usr/bin/env bash
# The whole benchmark matrix on one fresh emulator (bench/c7n/README.md).
#
#   bash bench/c7n/bench.sh [OUT.jsonl]
#
# Environment:
#   SIZES="10 100 1000"   group counts
#   REPEAT=3              runs per (tool, size, drift) for sizes < 1000, 1 otherwise
#   RECONCILER_BIN=PATH   ecs-reconciler binary (default: the debug build in
#                         ~/.cache/ecs-reconciler/target/debug, when present)
#   NO_DRIFT=1            also measure a pass with nothing to do (default 1)
#
# Tools run alternately on the same emulator; run.py resets the groups and the
# call counters before each run. Prints and appends one JSON line per run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$(mktemp -t c7n-bench.XXXXXX.jsonl)}"
sizes="${SIZES:-10 100 1000}"
repeat="${REPEAT:-3}"
no_drift="${NO_DRIFT:-1}"
bin="${RECONCILER_BIN:-$HOME/.cache/ecs-reconciler/target/debug/ecs-reconciler}"

c7n_py="$(bash "$here/venv.sh")"
emu_py="$(bash "$root/scripts/emulator-python")"

work="$(mktemp -d -t c7n-bench.XXXXXX)"
port_file="$work/emu.port"
"$emu_py" "$root/tests/emulator/emulator.py" --port 0 --port-file "$port_file" \
  >"$work/emulator.log" 2>&1 &
emu_pid=$!
cleanup() {
  kill "$emu_pid" 2>/dev/null || true
  wait "$emu_pid" 2>/dev/null || true
  rm -rf "$work"   # holds a copy of the ecs-reconciler binary
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  [[ -s "$port_file" ]] && break
  kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emulator.log" >&2; exit 1; }
  sleep 0.5
done
[[ -s "$port_file" ]] || { echo "bench.sh: emulator did not start" >&2; exit 1; }
endpoint="http://127.0.0.1:$(cat "$port_file")"
echo "bench.sh: emulator at $endpoint, results to $out" >&2

tools=(c7n)
if [[ -x "$bin" ]]; then
  # Snapshot the binary: a concurrent cargo build may replace it mid-run.
  cp "$bin" "$work/ecs-reconciler"
  echo "bench.sh: ecs-reconciler $(sha256sum "$work/ecs-reconciler" | cut -c1-16) from $bin" >&2
  tools+=(ecs-reconciler)
else
  echo "bench.sh: no ecs-reconciler binary at $bin; c7n only" >&2
fi

drifts=(drift)
[[ "$no_drift" == 1 ]] && drifts+=(no-drift)

for n in $sizes; do
  reps="$repeat"
  (( n >= 1000 )) && reps=1
  for d in "${drifts[@]}"; do
    for ((r = 0; r < reps; r++)); do
      for t in "${tools[@]}"; do
        args=(--endpoint "$endpoint" --groups "$n" --tool "$t")
        [[ "$t" == ecs-reconciler ]] && args+=(--bin "$work/ecs-reconciler")
        [[ "$d" == no-drift ]] && args+=(--no-drift)
        "$c7n_py" "$here/run.py" "${args[@]}" | tee -a "$out" \
          || echo "bench.sh: run failed or did not converge: $t n=$n $d" >&2
      done
    done
  done
done
echo "bench.sh: done; results in $out" >&2
