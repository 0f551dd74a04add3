#!/usr/bin/env bash
# `make soak`: the reliability suite at soak scale, then a summary of what was
# tried and what survived. Scale knobs (environment): FUZZ_SESSIONS (SMTP),
# FUZZ_POP3_SESSIONS, FUZZ_WEB_ROUNDS, POWER_CUTS,
# FLOOD_IDLE, FLOOD_LORIS, FUZZ_SEED (a failing run is replayed with its seed).
set -uo pipefail
cd "$(dirname "$0")/../.."
export FUZZ_SESSIONS="${FUZZ_SESSIONS:-20000}"
export FUZZ_POP3_SESSIONS="${FUZZ_POP3_SESSIONS:-10000}"
export FUZZ_WEB_ROUNDS="${FUZZ_WEB_ROUNDS:-20}"
export POWER_CUTS="${POWER_CUTS:-60}"
export FLOOD_IDLE="${FLOOD_IDLE:-2000}"
export FLOOD_LORIS="${FLOOD_LORIS:-200}"
export FUZZ_SEED="${FUZZ_SEED:-$(date +%s)}"
log="$(mktemp -t edge-relay-soak.XXXXXX)"
echo "soak: seed $FUZZ_SEED, $FUZZ_SESSIONS SMTP + $FUZZ_POP3_SESSIONS POP3 fuzz sessions, $FUZZ_WEB_ROUNDS web fuzz rounds, $POWER_CUTS power cuts, $FLOOD_IDLE+$FLOOD_LORIS flood connections; log in $log"
files=(test/e2e/fuzz-*.test.ts test/e2e/fault-*.test.ts test/e2e/load-*.test.ts test/soak/*.test.ts)
existing=()
for f in "${files[@]}"; do [ -e "$f" ] && existing+=("$f"); done
node --import tsx --test --test-concurrency=1 --test-reporter=spec "${existing[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo
echo "== soak summary (seed $FUZZ_SEED) =="
grep -E '^(fuzz|fault|load)-[a-z0-9-]+: ' "$log" | grep -vE 'lastError' || true
grep -E '^ℹ (tests|pass|fail) ' "$log"
exit "$status"
