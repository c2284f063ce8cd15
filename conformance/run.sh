#!/usr/bin/env bash
# greenlight conformance suite: drives a running greenlight with real Cloud API client
# libraries (Node: @kapso/whatsapp-cloud-api, @great-detail/whatsapp, whatsapp-api-js;
# Python: pywa; Rust: wacloudapi), unchanged but for the base URL.
#
#   GREENLIGHT_URL=http://127.0.0.1:8080 GREENLIGHT_ADMIN_TOKEN=... ./run.sh [node|python|rust ...]
#
# Installs what it needs (npm ci, a venv with pip, cargo test --no-run), runs the selected
# suites (all by default), prints each runner's summary, exits non-zero if any failed.
# Optional: CONFORMANCE_SKIP=templates (while the server lacks template management),
# CONFORMANCE_GRAPH_VERSION=v23.0 (force one /vN.M; default: each library's own default),
# CARGO_TARGET_DIR (default rust/target).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITES=("$@")
[ ${#SUITES[@]} -eq 0 ] && SUITES=(node python rust)

if [ -z "${GREENLIGHT_URL:-}" ] || [ -z "${GREENLIGHT_ADMIN_TOKEN:-}" ]; then
  echo "run.sh: set GREENLIGHT_URL (e.g. http://127.0.0.1:8080) and GREENLIGHT_ADMIN_TOKEN" >&2
  exit 2
fi
export GREENLIGHT_URL="${GREENLIGHT_URL%/}" GREENLIGHT_ADMIN_TOKEN

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HERE/rust/target}"

# Is greenlight there at all? (Any HTTP answer will do; a refused connection will not.)
if ! python3 - "$GREENLIGHT_URL" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=5)
except urllib.error.HTTPError:
    pass
except Exception as e:
    print(f"run.sh: greenlight not reachable at {sys.argv[1]}: {e}", file=sys.stderr)
    sys.exit(1)
EOF
then exit 2; fi

declare -A RESULT
LOGDIR="$(mktemp -d)"
summary() { # runner log, lines matching a pattern
  grep -E "$2" "$1" | tail -n "${3:-20}" | sed 's/^/    /'
}

run_node() {
  echo "::: node: npm ci"
  (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "::: node: node --test"
  (cd "$HERE/node" && node --test --test-concurrency=1 --test-reporter=spec test/*.test.mjs) 2>&1 | tee "$LOGDIR/node.log"
  local rc=${PIPESTATUS[0]}
  echo "::: node summary"; summary "$LOGDIR/node.log" '^ℹ (tests|suites|pass|fail|cancelled|skipped|todo)'
  return "$rc"
}

run_python() {
  echo "::: python: venv + pip install"
  (cd "$HERE/python" \
    && { [ -x .venv/bin/python ] || python3 -m venv .venv \
         || { rm -rf .venv; echo "run.sh: 'python3 -m venv' failed; on Debian: apt-get install python3-venv" >&2; false; }; } \
    && .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt) || return 1
  echo "::: python: pytest"
  (cd "$HERE/python" && .venv/bin/python -m pytest -v) 2>&1 | tee "$LOGDIR/python.log"
  local rc=${PIPESTATUS[0]}
  echo "::: python summary"; summary "$LOGDIR/python.log" '^(FAILED|ERROR|SKIPPED|XFAIL|=+ .*(passed|failed|error).* =+$)'
  return "$rc"
}

run_rust() {
  local features=()
  # wacloudapi keeps reqwest's default TLS (native-tls = OpenSSL). Without the system's
  # OpenSSL headers, build OpenSSL from source instead (needs gcc, make, perl).
  if ! pkg-config --exists openssl 2>/dev/null; then
    echo "::: rust: no system OpenSSL dev files found (libssl-dev, pkg-config); using --features vendored-openssl"
    features=(--features vendored-openssl)
  fi
  echo "::: rust: cargo test --no-run (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$HERE/rust" && cargo test --locked --no-run "${features[@]}") || return 1
  echo "::: rust: cargo test"
  (cd "$HERE/rust" && cargo test --locked --no-fail-fast "${features[@]}") 2>&1 | tee "$LOGDIR/rust.log"
  local rc=${PIPESTATUS[0]}
  echo "::: rust summary"; summary "$LOGDIR/rust.log" '^(test result:|test .* FAILED|failures:|     Running)' 40
  return "$rc"
}

for s in "${SUITES[@]}"; do
  case "$s" in
    node|python|rust) ;;
    *) echo "run.sh: unknown suite $s (node, python, rust)" >&2; exit 2 ;;
  esac
  echo
  echo "================ $s ================"
  if "run_$s"; then RESULT[$s]=passed; else RESULT[$s]=FAILED; fi
done

echo
echo "================ conformance summary ================"
echo "greenlight: $GREENLIGHT_URL"
rc=0
for s in "${SUITES[@]}"; do
  printf '  %-7s %s\n' "$s" "${RESULT[$s]}"
  [ "${RESULT[$s]}" = passed ] || rc=1
done
rm -rf "$LOGDIR"
exit "$rc"
