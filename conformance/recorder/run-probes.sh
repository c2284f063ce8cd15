#!/usr/bin/env bash
# Runs every library's wire probe against the recorder, once per answer variant, and
# leaves the request logs (*.jsonl) and the probes' outputs in OUT (default /tmp/wire-probes).
# Learning tool only: this is how WIRE.md was made. Needs the installs run.sh makes.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="${1:-/tmp/wire-probes}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(dirname "$0")/../rust/target}"
mkdir -p "$OUT"
(cd "$ROOT/rust" && cargo build -q --example wire_probe)
PROBE_RS="$CARGO_TARGET_DIR/debug/examples/wire_probe"

variant() {
  local name="$1"; shift
  local log="$OUT/$name.jsonl"; rm -f "$log"
  python3 "$HERE/recorder.py" --port 0 --log "$log" "$@" > "$OUT/$name.recorder.out" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do grep -q RECORDER "$OUT/$name.recorder.out" 2>/dev/null && break; sleep 0.1; done
  local url; url="$(awk '/RECORDER/{print $2}' "$OUT/$name.recorder.out")"
  echo "== $name ($url) $*"
  (cd "$ROOT/node" && timeout 300 node wire-probe.mjs "$url" > "$OUT/$name.node.json" 2> "$OUT/$name.node.err")
  (cd "$ROOT/python" && timeout 300 .venv/bin/python wire_probe.py "$url" > "$OUT/$name.python.json" 2> "$OUT/$name.python.err")
  timeout 300 "$PROBE_RS" "$url" > "$OUT/$name.rust.tsv" 2> "$OUT/$name.rust.err"
  kill "$pid"; wait "$pid" 2>/dev/null
}

variant default
variant file_size_str --file-size-as str
variant no_contacts --omit contacts
variant no_messaging_product --omit messaging_product
variant no_summary --omit summary
variant no_paging --omit paging
variant text_javascript --content-type "text/javascript; charset=UTF-8"
echo "outputs in $OUT"
