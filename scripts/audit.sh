#!/usr/bin/env bash
# Checks Cargo.lock against the RustSec advisory database snapshot in
# ../shared/rustsec-advisory-db (no network here). cargo-audit wants the
# database as a git repository, so the snapshot is copied into one.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${ECS_RECONCILER_CACHE:-$HOME/.cache/ecs-reconciler}"
TOOLS="$CACHE/tools"
SNAPSHOT="${RUSTSEC_DB:-$(cd .. && pwd)/shared/rustsec-advisory-db}"
AUDIT_VERSION=0.22.2

if [ ! -d "$SNAPSHOT/crates" ]; then
  echo "error: no advisory database snapshot at $SNAPSHOT" >&2
  echo "  hint: set RUSTSEC_DB to a checkout of the RustSec advisory-db" >&2
  exit 1
fi

if ! "$TOOLS/bin/cargo-audit" --version 2>/dev/null | grep -q "$AUDIT_VERSION"; then
  echo "installing cargo-audit $AUDIT_VERSION into $TOOLS (first run only)"
  cargo install --locked --quiet --root "$TOOLS" --version "$AUDIT_VERSION" cargo-audit
fi

DB="$CACHE/advisory-db"
STAMP="$(cat "$SNAPSHOT/SNAPSHOT" 2>/dev/null || echo unknown)"
if [ ! -f "$DB/.snapshot" ] || [ "$(cat "$DB/.snapshot")" != "$STAMP" ]; then
  rm -rf "$DB"
  mkdir -p "$DB"
  cp -R "$SNAPSHOT/." "$DB/"
  git -C "$DB" init -q
  git -C "$DB" add -A
  git -C "$DB" -c user.name=ci -c user.email=ci@localhost commit -qm "snapshot" --no-gpg-sign
  echo "$STAMP" > "$DB/.snapshot"
fi

echo "advisory database: $STAMP"
"$TOOLS/bin/cargo-audit" audit --db "$DB" --no-fetch --stale --deny warnings
