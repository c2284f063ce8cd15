#!/usr/bin/env bash
# Runs every test of greenlight:
#   1. formatting and lints (cargo fmt --check, clippy with warnings denied);
#   2. unit and integration tests (cargo test --workspace), then the integration suite once
#      more on PostgreSQL (GREENLIGHT_TEST_BACKEND=postgres; each test gets its own database).
#      Without a reachable PostgreSQL (GREENLIGHT_TEST_PG_URL, default the local server) that
#      run and the PostgreSQL tests say they were skipped, unless CI=true or
#      GREENLIGHT_TEST_PG=required: then it is a failure;
#   3. the conformance suite: real Cloud API client libraries from npm, PyPI and crates.io
#      driving a freshly started greenlight (conformance/run.sh).
# Set SKIP_CONFORMANCE=1 to stop after step 2.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

LOG="$(mktemp)"
echo "== unit and integration tests"
cargo test --workspace 2>&1 | tee "$LOG"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

echo "== the integration suite on PostgreSQL"
PG_URL="${GREENLIGHT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if python3 - "$PG_URL" <<'PY'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
try:
    socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), 3).close()
except OSError:
    sys.exit(1)
PY
then
  GREENLIGHT_TEST_BACKEND=postgres cargo test -p greenlight --test api 2>&1 | tee -a "$LOG"
  [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
elif [ "${CI:-}" = "true" ] || [ "${GREENLIGHT_TEST_PG:-}" = "required" ]; then
  echo "PostgreSQL is required here (CI=true or GREENLIGHT_TEST_PG=required) but does not answer"
  exit 1
else
  echo "PostgreSQL does not answer: the integration suite on PostgreSQL was skipped"
fi

# One closing line that counts every test run: cargo's, node's and pytest's.
totals() {
  python3 - "$LOG" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
passed = failed = 0
for p, f in re.findall(r"^test result: \w+\. (\d+) passed; (\d+) failed", text, re.M):
    passed += int(p); failed += int(f)
for kind, n in re.findall(r"^ℹ (pass|fail) (\d+)$", text, re.M):
    if kind == "pass": passed += int(n)
    else: failed += int(n)
for line in re.findall(r"^=+ (.*) in [\d.]+s =+$", text, re.M):
    for n, kind in re.findall(r"(\d+) (passed|failed)", line):
        if kind == "passed": passed += int(n)
        else: failed += int(n)
print(f"tests: {passed} passed, {failed} failed")
PY
}

if [ "${SKIP_CONFORMANCE:-0}" = "1" ]; then
  echo "== conformance suite skipped (SKIP_CONFORMANCE=1)"
  totals
  exit 0
fi

echo "== conformance suite (real client libraries)"
cargo build -p greenlight --quiet
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/greenlight"
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export GREENLIGHT_ADMIN_TOKEN="conformance-admin-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
GREENLIGHT_LISTEN="127.0.0.1:$PORT" GREENLIGHT_DATABASE_URL="sqlite://$WORK/greenlight.db" \
  GREENLIGHT_MEDIA_DIR="$WORK/media" GREENLIGHT_DEMO_TENANT=false GREENLIGHT_LOG=warn \
  "$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
# A second greenlight in gateway mode whose upstream is the sandbox above (the gateway scenario
# of the Node suite; see docs/GATEWAY.md).
GW_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
GREENLIGHT_MODE=gateway GREENLIGHT_UPSTREAM_URL="http://127.0.0.1:$PORT" \
  GREENLIGHT_SECRETS_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')" \
  GREENLIGHT_WEBHOOK_ALLOW_PRIVATE=true \
  GREENLIGHT_LISTEN="127.0.0.1:$GW_PORT" GREENLIGHT_DATABASE_URL="sqlite://$WORK/gateway.db" \
  GREENLIGHT_MEDIA_DIR="$WORK/gateway-media" GREENLIGHT_LOG=warn \
  "$BIN" serve > "$WORK/gateway.log" 2>&1 &
GATEWAY=$!
trap 'kill $SERVER $GATEWAY 2>/dev/null || true; wait $SERVER $GATEWAY 2>/dev/null || true; rm -rf "$WORK"' EXIT
for p in "$PORT" "$GW_PORT"; do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$p/healthz" > /dev/null 2>&1 && break
    sleep 0.1
  done
done
export GREENLIGHT_URL="http://127.0.0.1:$PORT"
export GREENLIGHT_GATEWAY_URL="http://127.0.0.1:$GW_PORT"
if ! bash conformance/run.sh 2>&1 | tee -a "$LOG"; then
  echo "conformance suite failed; server log:"; tail -n 50 "$WORK/server.log"
  echo "gateway log:"; tail -n 50 "$WORK/gateway.log"
  totals
  exit 1
fi
totals
