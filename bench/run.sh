#!/usr/bin/env bash
# greenlight benchmark (issue 7). Starts greenlight (release build) on a fresh temporary SQLite
# database on 127.0.0.1, creates tenants and numbers, opens customer-service windows through the
# sandbox, drives load over loopback with wrk, checks in the database and through the API that
# every acknowledged message was committed, and prints one table. See docs/BENCHMARKS.md.
#
#   bench/run.sh            full run (about 3 to 5 minutes on 2 cores, most of it the 1M fill)
#   bench/run.sh --quick    smoke run: a few seconds of load, small numbers; exit 0 = it all worked
#   bench/run.sh --profile  also records a CPU profile (perf, call graphs) of greenlight during an
#                           extra send run (not one of the measured ones) and keeps it with its
#                           reports in the run folder (installs linux-perf if perf is missing)
#
# Everything is bounded: each wrk run by a duration and a request cap, the server is bound to
# 127.0.0.1 only, and only processes this script started are stopped.
#
# Knobs (environment; defaults in brackets, quick mode in braces):
#   CARGO_TARGET_DIR        where cargo builds [target/]
#   BENCH_TENANTS           tenants (businesses, verified) [16] {1}
#   BENCH_PHONES_PER_TENANT numbers per tenant, at most 25 [25] {4}
#   BENCH_CUSTOMERS         customers per number, each with an open window [100] {10}
#   BENCH_THREADS           wrk threads [2]
#   BENCH_CONNECTIONS       wrk connections for the max-rate runs [64] {8}
#   BENCH_DURATION          seconds of each max-rate run (floor, send) [10] {1}
#   BENCH_HALF_DURATION     seconds of each run of the half-rate search [5] {1}
#   BENCH_FILL              outbound messages stored before RSS is read [1000000] {3000}
#   BENCH_NORMAL            also measure synchronous=NORMAL (1/0) [1]
#   BENCH_SERVER_ENV        extra "KEY=value ..." for the server, e.g. a benchmark setting
#   BENCH_KEEP              keep the temporary folder (database, logs, wrk outputs) (1/0) [0]
set -euo pipefail

QUICK=0
PROFILE=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --profile) PROFILE=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown argument $arg (use --quick or --help)" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BENCH_DIR="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/greenlight"

if [ "$QUICK" = 1 ]; then
    TENANTS=${BENCH_TENANTS:-1}; PHONES_PER_TENANT=${BENCH_PHONES_PER_TENANT:-4}
    CUSTOMERS=${BENCH_CUSTOMERS:-10}; CONNS=${BENCH_CONNECTIONS:-8}
    DURATION=${BENCH_DURATION:-1}; HALF_DURATION=${BENCH_HALF_DURATION:-1}
    FILL=${BENCH_FILL:-3000}
else
    TENANTS=${BENCH_TENANTS:-16}; PHONES_PER_TENANT=${BENCH_PHONES_PER_TENANT:-25}
    CUSTOMERS=${BENCH_CUSTOMERS:-100}; CONNS=${BENCH_CONNECTIONS:-64}
    DURATION=${BENCH_DURATION:-10}; HALF_DURATION=${BENCH_HALF_DURATION:-5}
    FILL=${BENCH_FILL:-1000000}
fi
THREADS=${BENCH_THREADS:-2}
MEASURE_NORMAL=${BENCH_NORMAL:-1}
KEEP=${BENCH_KEEP:-0}
# Request caps: a run ends at its duration or its cap, whichever comes first.
MAX_FLOOR=${BENCH_MAX_FLOOR:-5000000}
MAX_SEND=${BENCH_MAX_SEND:-1000000}
# Meta's pacing (PRODUCT.md): 80 messages/s per number; pair limit 1 message / 6 s to one
# customer with bursts of up to 45. Used to say how fast the load may go before pacing would cap it.
PACING_PER_NUMBER=80
PAIR_BURST=45

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
need_tools() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v jq >/dev/null || missing+=(jq)
    command -v sqlite3 >/dev/null || missing+=(sqlite3)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (Debian packages)"
        local SUDO=""
        [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get install -y "${missing[@]}" >&2 \
            || { $SUDO apt-get update >&2 && $SUDO apt-get install -y "${missing[@]}" >&2; }
    fi
    WRK_VERSION="$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')"
}

build() {
    say "building greenlight (release) into $TARGET_DIR"
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -p greenlight >&2)
    [ -x "$BIN" ] || die "no binary at $BIN"
}

# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------
RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/greenlight-bench.XXXXXX")"
SERVER_PID=""
ADMIN_TOKEN="bench-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

WRK_PID=""
cleanup() {
    local rc=$?
    [ -n "$WRK_PID" ] && kill -INT "$WRK_PID" 2>/dev/null && wait "$WRK_PID" 2>/dev/null
    stop_server
    if [ "$KEEP" = 1 ] || [ $rc -ne 0 ]; then
        say "run folder kept: $RUN_DIR"
    else
        rm -rf "$RUN_DIR"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME SYNCHRONOUS: fresh database in $RUN_DIR/NAME; sets SERVER_PID, URL, DB.
start_server() {
    local name=$1 sync=$2
    local dir="$RUN_DIR/$name"
    mkdir -p "$dir"
    DB="$dir/greenlight.db"
    SERVER_LOG="$dir/server.log"
    # shellcheck disable=SC2086 # BENCH_SERVER_ENV is a list of KEY=value words
    env NO_COLOR=1 \
        GREENLIGHT_LISTEN=127.0.0.1:0 \
        GREENLIGHT_DATABASE_URL="sqlite://$DB" \
        GREENLIGHT_MEDIA_DIR="$dir/media" \
        GREENLIGHT_ADMIN_TOKEN="$ADMIN_TOKEN" \
        GREENLIGHT_DEMO_TENANT=false \
        GREENLIGHT_SQLITE_SYNCHRONOUS="$sync" \
        GREENLIGHT_LOG=info \
        ${BENCH_SERVER_ENV:-} \
        "$BIN" serve >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    local addr=""
    for _ in $(seq 1 200); do
        addr="$(grep -m1 'greenlight is listening' "$SERVER_LOG" 2>/dev/null | grep -o '127\.0\.0\.1:[0-9]\+' || true)"
        [ -n "$addr" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; die "greenlight exited at start"; }
        sleep 0.05
    done
    [ -n "$addr" ] || die "greenlight did not say where it listens (see $SERVER_LOG)"
    URL="http://$addr"
    curl -fsS "$URL/healthz" >/dev/null || die "$URL/healthz does not answer"
    say "greenlight ($name, synchronous=$sync) pid $SERVER_PID on $URL, database $DB"
}

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -INT "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# "name on_cpu_ns runqueue_ns" per server thread (/proc/<pid>/task/*/schedstat).
thread_times() {
    local t
    for t in /proc/"$SERVER_PID"/task/*; do
        printf '%s %s %s\n' "$(basename "$t")" "$(tr ' ' '_' <"$t/comm")" "$(cut -d' ' -f1-2 "$t/schedstat")"
    done
}

# Where each server thread's wall time went during a run: on a CPU, waiting for a CPU (run queue,
# i.e. the machine is busy), or neither (blocked: I/O, fsync, waiting for work).
thread_report() {
    local name=$1 before=$2 after=$3 secs=$4
    join "$before" "$after" | awk -v s="$secs" -v n="$name" '
        { cpu[$2] += ($6 - $3) / 1e9; rq[$2] += ($7 - $4) / 1e9; k[$2]++ }
        END { for (c in cpu) if (cpu[c] + rq[c] > 0.005 * s) printf "[bench] %s: %d %s thread(s): %.0f%% on CPU, %.0f%% waiting for a CPU, %.0f%% blocked or idle\n",
              n, k[c], c, 100 * cpu[c] / (s * k[c]), 100 * rq[c] / (s * k[c]), 100 * (1 - (cpu[c] + rq[c]) / (s * k[c])) }' >&2
}

proc_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$SERVER_PID/status"; }
sql() { sqlite3 -readonly "$DB" "$1"; }

# ---------------------------------------------------------------------------------------------
# Setup: tenants, numbers, open windows
# ---------------------------------------------------------------------------------------------
# Writes $RUN_DIR/NAME/phones ("phone_id token") and tenants ("business_id token").
create_tenants() {
    local dir="$RUN_DIR/$1"
    export BENCH_PHONES="$dir/phones"
    TENANTS_FILE="$dir/tenants"
    : >"$BENCH_PHONES"; : >"$TENANTS_FILE"
    local t p body numbers answer
    for t in $(seq 0 $((TENANTS - 1))); do
        numbers=""
        for p in $(seq 0 $((PHONES_PER_TENANT - 1))); do
            numbers+="${numbers:+,}{\"display_phone_number\":\"+1 650 $(printf '%03d %04d' "$t" "$p")\",\"verified_name\":\"Bench $t\"}"
        done
        body="{\"business_name\":\"Bench $t\",\"verified\":true,\"phone_numbers\":[$numbers]}"
        answer="$(curl -fsS -X POST "$URL/admin/v1/tenants" -H "Authorization: Bearer $ADMIN_TOKEN" \
            -H 'Content-Type: application/json' -d "$body")" || die "tenant creation failed: $answer"
        jq -r '.access_token as $t | .phone_numbers[] | "\(.id) \($t)"' <<<"$answer" >>"$BENCH_PHONES"
        jq -r '"\(.business_id) \(.access_token)"' <<<"$answer" >>"$TENANTS_FILE"
    done
    NUMBERS=$(wc -l <"$BENCH_PHONES")
    export BENCH_CUSTOMERS=$CUSTOMERS
    PAIRS=$((NUMBERS * CUSTOMERS))
    say "$TENANTS tenants, $NUMBERS numbers, $CUSTOMERS customers per number: $PAIRS windows to open"
}

open_windows() {
    local attempt open
    for attempt in 1 2 3; do
        run_wrk "$1-inbound-$attempt" inbound.lua "$CONNS" 120 0
        open=$(sql "SELECT count(*) FROM windows")
        [ "$open" -ge "$PAIRS" ] && { say "windows open: $open (in ${W[seconds]} s)"; return 0; }
        say "windows open: $open of $PAIRS; writing again"
    done
    die "could not open the $PAIRS windows"
}

# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
declare -A W
SEND_OK=0      # 2xx send answers, all runs of the current server
SEND_SLACK=0   # requests possibly in flight when runs ended (committed, not counted by wrk)

# run_wrk NAME SCRIPT CONNECTIONS SECONDS MAX [ENV=value...]: one wrk run; results in W[...].
run_wrk() {
    local name=$1 script=$2 conns=$3 secs=$4 max=$5
    shift 5
    local threads=$THREADS
    [ "$conns" -lt "$threads" ] && threads=$conns
    local out="$RUN_DIR/$name.out"
    : >"$out"
    rm -f "$out".done.*
    env "$@" BENCH_OUT="$out" BENCH_MAX="$max" BENCH_THREADS="$threads" \
        BENCH_CONNS_PER_THREAD=$((conns / threads)) \
        wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s -s "$BENCH_DIR/$script" "$URL" \
        >"$RUN_DIR/$name.wrk.txt" 2>&1 &
    WRK_PID=$!
    # wrk ends at its duration; a thread that reached its request cap leaves a marker, and when
    # all have, SIGINT makes wrk stop and report at once (repeated: wrk may not be waiting yet).
    while kill -0 "$WRK_PID" 2>/dev/null; do
        if [ "$(find "$RUN_DIR" -maxdepth 1 -name "$name.out.done.*" | wc -l)" -ge "$threads" ]; then
            kill -INT "$WRK_PID" 2>/dev/null || true
        fi
        sleep 0.1
    done
    wait "$WRK_PID" || { cat "$RUN_DIR/$name.wrk.txt" >&2; die "wrk failed ($name)"; }
    WRK_PID=""
    local line kv
    line="$(head -1 "$out")"
    [ -n "$line" ] || { cat "$RUN_DIR/$name.wrk.txt" >&2; die "wrk wrote no summary ($name)"; }
    W=()
    for kv in $line; do W[${kv%%=*}]=${kv#*=}; done
    W[conns]=$conns
    W[errors]=$((W[err_connect] + W[err_read] + W[err_write] + W[err_status] + W[err_timeout]))
    say "$(printf '%-18s c=%-3s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  requests %s  errors %s' \
        "$name" "$conns" "${W[rps]}" "${W[p50_ms]}" "${W[p99_ms]}" "${W[requests]}" "${W[errors]}")"
}

# A send run: the answers must all be 2xx.
run_send() {
    run_wrk "$@"
    [ "${W[errors]}" = 0 ] || { head -c 2000 "$SERVER_LOG" >&2; die "$1: ${W[errors]} errors (see $RUN_DIR/$1.wrk.txt)"; }
    SEND_OK=$((SEND_OK + W[requests]))
    SEND_SLACK=$((SEND_SLACK + W[conns]))
}

# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------
ROWS=()
# add_row ROW FIGURE P50 P99 RATIO TARGET RESULT
add_row() { ROWS+=("$(printf '%s\t' "$@")"); }
fmt_int() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
pf() { if "$@"; then echo PASS; else echo FAIL; fi; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

print_table() {
    local header=$'row\tfigure\tp50\tp99\tratio to floor\ttarget\tresult'
    {
        echo "$header"
        printf '%s\n' "${ROWS[@]}"
    } | awk -F'\t' '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n = NR; if (NF > nf) nf = NF }
        END {
            for (r = 1; r <= n; r++) {
                line = "|"
                for (i = 1; i <= 7; i++) line = line sprintf(" %-" w[i] "s |", cell[r, i])
                print line
                if (r == 1) { line = "|"; for (i = 1; i <= 7; i++) { s = ""; for (j = 0; j < w[i] + 2; j++) s = s "-"; line = line s "|" } print line }
            }
        }'
}

# ---------------------------------------------------------------------------------------------
# Rows. One function per row; rows not implemented yet say so and carry a TODO.
# ---------------------------------------------------------------------------------------------
FLOOR_RPS=0

row_floor() {
    run_wrk floor healthz.lua "$CONNS" "$DURATION" "$MAX_FLOOR"
    [ "${W[errors]}" = 0 ] || die "floor: ${W[errors]} errors"
    FLOOR_RPS=${W[rps]}
    add_row "floor: GET /healthz" "$(fmt_int "$FLOOR_RPS") req/s" "${W[p50_ms]} ms" "${W[p99_ms]} ms" "1.00" "" ""
}

# row_send LABEL PREFIX: max rate, then the latency at about half of it.
row_send() {
    local label=$1 prefix=$2
    local io0 msgs0
    thread_times >"$RUN_DIR/$prefix-threads.before"
    io0=$(awk '$1 == "write_bytes:" {print $2}' "/proc/$SERVER_PID/io")
    msgs0=$SEND_OK
    run_send "$prefix-max" send.lua "$CONNS" "$DURATION" "$MAX_SEND"
    thread_times >"$RUN_DIR/$prefix-threads.after"
    local io1 sent
    io1=$(awk '$1 == "write_bytes:" {print $2}' "/proc/$SERVER_PID/io")
    sent=$((SEND_OK - msgs0))
    say "$prefix-max: $(awk -v b=$((io1 - io0)) -v n="$sent" 'BEGIN { printf "%.1f KB written to disk per message (database, WAL, checkpoints)", b / n / 1024 }')"
    thread_report "$prefix-max" "$RUN_DIR/$prefix-threads.before" "$RUN_DIR/$prefix-threads.after" "${W[seconds]}"
    local max=${W[rps]} r
    r=$(ratio "$max" "$FLOOR_RPS")
    add_row "send: in-window text, $label" "$(fmt_int "$max") msg/s" "${W[p50_ms]} ms" "${W[p99_ms]} ms" "$r" \
        ">= 0.30" "$(pf ge "$r" 0.30)"
    local limit=$((NUMBERS * PACING_PER_NUMBER))
    if ! le "$max" "$limit"; then
        say "WARNING: $max msg/s is above what 80 msg/s/number allows over $NUMBERS numbers ($limit/s): add tenants once pacing exists"
    fi
    half_rate "$label" "$prefix" "$max"
}

# Debian's wrk (4.1) has no -R (constant rate, wrk2). The half-rate latency is measured closed-loop
# with fewer connections: connection counts are halved until the rate falls to about half the
# maximum, and the run closest to half is reported (its connection count and rate are shown).
half_rate() {
    local label=$1 prefix=$2 max=$3
    local target best_c="" best_d="" c d
    target=$(awk -v m="$max" 'BEGIN { print m / 2 }')
    declare -A best
    c=$CONNS
    while [ "$c" -gt 1 ]; do
        c=$((c / 2))
        run_send "$prefix-half-c$c" send.lua "$c" "$HALF_DURATION" "$MAX_SEND"
        d=$(awk -v r="${W[rps]}" -v t="$target" 'BEGIN { d = r - t; print (d < 0 ? -d : d) }')
        if [ -z "$best_d" ] || le "$d" "$best_d"; then
            best_c=$c; best_d=$d
            best=([rps]=${W[rps]} [p50]=${W[p50_ms]} [p99]=${W[p99_ms]})
        fi
        le "${W[rps]}" "$target" && break
    done
    add_row "send at ~half max rate, $label (c=$best_c, wrk has no -R)" "$(fmt_int "${best[rps]}") msg/s" \
        "${best[p50]} ms" "${best[p99]} ms" "$(ratio "${best[rps]}" "$FLOOR_RPS")" "p99 <= 10 ms" "$(pf le "${best[p99]}" 10)"
}

row_template() {
    # TODO(issue 7, template row): when template sends exist (templates, opt-ins, limits, pacing):
    #   1. per WABA, create an APPROVED utility template (POST /v23.0/{waba_id}/message_templates,
    #      then wait for or force the review decision through /admin/v1),
    #   2. record opt-ins for the customers (POST /greenlight/v1/{waba_id}/opt_ins/batch, 1,000 a call),
    #   3. use customers whose window is NOT open (another BENCH_CUSTOMER_BASE) so the sends are
    #      business-initiated, enough of them for the tier (or a documented benchmark setting),
    #   4. run_send template-max template.lua ... (a copy of send.lua with a template body) and
    #      add_row with target ">= 0.25" like row_send does.
    add_row "template: business-initiated template sends" "n/a (not implemented yet)" "" "" "" ">= 0.25" "n/a"
}

row_webhooks() {
    # TODO(issue 7, webhook row): when webhook delivery exists: start a local receiver on 127.0.0.1
    #   that answers the verify handshake and counts POSTs after checking X-Hub-Signature-256,
    #   create the tenants with "webhook": {"callback_url": <receiver>, "verify_token": ...},
    #   then measure events delivered per second while the outbox drains (count over time from the
    #   receiver; cross-check `SELECT count(*) FROM outbox WHERE state = 'delivered'`).
    add_row "webhooks: events delivered and signed" "n/a (not implemented yet)" "" "" "" ">= 10,000/s" "n/a"
}

row_postgres() {
    # TODO(issue 7, PostgreSQL rows): when GREENLIGHT_DATABASE_URL=postgres://... is accepted:
    #   start_server on a fresh database (CREATE DATABASE per run), then create_tenants,
    #   open_windows (verification reads the database: add a psql variant of sql()), row_send and
    #   row_template, with the target ">= 10,000/s" for send.
    add_row "PostgreSQL: send" "n/a (not implemented yet)" "" "" "" ">= 10,000/s" "n/a"
    add_row "PostgreSQL: template" "n/a (not implemented yet)" "" "" "" "" "n/a"
}

# An extra send run under perf (call graphs from DWARF: the release profile keeps debug info).
profile_send() {
    local data="$RUN_DIR/perf.data"
    say "profiling a ${DURATION} s send run with perf"
    perf record -F 499 -g --call-graph dwarf,32768 -p "$SERVER_PID" -o "$data" -- sleep "$DURATION" \
        >"$RUN_DIR/perf-record.log" 2>&1 &
    local perf_pid=$!
    run_send profile-send send.lua "$CONNS" "$DURATION" "$MAX_SEND"
    wait "$perf_pid" || true
    perf report -i "$data" --no-children --sort comm,sym --stdio -g none 2>/dev/null \
        | grep '%' >"$RUN_DIR/profile-self.txt" || true
    perf report -i "$data" --children --sort comm,sym --stdio -g none 2>/dev/null \
        | grep '%' >"$RUN_DIR/profile-inclusive.txt" || true
    say "hottest functions (self time, % of greenlight's samples):"
    head -15 "$RUN_DIR/profile-self.txt" | sed 's/^/[bench]   /' >&2
    say "inclusive: $RUN_DIR/profile-inclusive.txt; interactive: perf report -i $data"
    KEEP=1
}

# Fills the store to $FILL outbound messages, as fast as it goes, sampling returned wamids.
fill() {
    local have need
    have=$(sql "SELECT count(*) FROM messages WHERE direction = 'out'")
    # at least 1,000 sends, whose wamids are sampled for verify(); a margin of one request per
    # connection, as those in flight at the end may not be answered
    need=$((FILL - have))
    [ "$need" -ge 1000 ] || need=1000
    run_send fill send.lua "$CONNS" 1800 $((need + CONNS)) BENCH_SAMPLE=$(((need + 199) / 200))
    grep '^wamid=' "$RUN_DIR/fill.out" | cut -d= -f2 >"$RUN_DIR/samples"
    # let the `delivered` statuses fall due (delivered_delay_ms after each send)
    local i
    for i in $(seq 1 300); do
        [ "$(sql "SELECT count(*) FROM tasks")" = 0 ] && break
        sleep 0.2
    done
}

row_memory() {
    local rss hwm stored
    stored=$(sql "SELECT count(*) FROM messages WHERE direction = 'out'")
    rss=$(proc_kb VmRSS); hwm=$(proc_kb VmHWM)
    say "memory: VmRSS $rss kB, VmHWM $hwm kB with $stored outbound messages stored; database $(du -sh "$(dirname "$DB")" | cut -f1) on disk"
    add_row "memory: peak RSS (VmHWM, whole run)" "$(mb "$hwm")" "" "" "" "" ""
    add_row "memory: RSS after $(fmt_int "$stored") stored messages" "$(mb "$rss")" "" "" "" "<= 150 MB" \
        "$(pf le "$rss" $((150 * 1024)))"
    [ "$stored" -ge "$FILL" ] || die "only $stored messages stored, $FILL wanted"
}

# ---------------------------------------------------------------------------------------------
# Verification: the figures count committed messages, not answers
# ---------------------------------------------------------------------------------------------
verify() {
    local name=$1
    local out failed refused queued
    out=$(sql "SELECT count(*) FROM messages WHERE direction = 'out'")
    failed=$(sql "SELECT count(*) FROM messages WHERE direction = 'out' AND status = 'failed'")
    refused=$(sql "SELECT count(*) FROM refusals")
    queued=$(sql "SELECT count(*) FROM outbox WHERE field = 'messages'")
    say "verify ($name): $SEND_OK sends answered 2xx, $out outbound messages in the database," \
        "$failed failed, $refused refused, $queued webhook events queued"
    [ "$out" -ge "$SEND_OK" ] || die "$SEND_OK sends were acknowledged but only $out are in the database"
    [ "$out" -le $((SEND_OK + SEND_SLACK)) ] || die "$out messages in the database, more than $SEND_OK answered + $SEND_SLACK in flight"
    [ "$failed" = 0 ] || die "$failed sends failed (window not open?)"
    [ "$refused" = 0 ] || die "$refused sends were refused"
    # every outbound message queued its `sent` status event (its `delivered` one follows)
    [ "$queued" -ge "$out" ] || die "only $queued webhook events queued for $out messages"

    # Through the API: one customer's thread matches the database.
    local phone token wa api db
    read -r phone token <"$BENCH_PHONES"
    wa=$(awk -v b="${BENCH_CUSTOMER_BASE:-15550000000}" 'BEGIN { printf "%d", b }')
    api=$(curl -fsS "$URL/sandbox/v1/$phone/users/$wa/messages" -H "Authorization: Bearer $token" \
        | jq '[.data[] | select(.direction == "out" and .type == "text" and (.status == "sent" or .status == "delivered"))] | length')
    db=$(sql "SELECT count(*) FROM messages WHERE direction = 'out' AND phone_id = '$phone' AND wa_id = '$wa'")
    say "verify ($name): thread of $wa on $phone: $api sent messages through the API, $db in the database"
    [ "$api" -ge 1 ] && [ "$api" = "$db" ] || die "the thread of $wa shows $api messages, the database $db"

    # Through the API: a sample of the wamids wrk received is found, with its statuses.
    if [ -s "$RUN_DIR/samples" ]; then
        local n=0 id business tok got
        while read -r id; do
            business=$(sql "SELECT business_id FROM messages WHERE id = '$id'")
            [ -n "$business" ] || die "wamid $id was answered but is not in the database"
            tok=$(awk -v b="$business" '$1 == b { print $2 }' "$TENANTS_FILE")
            got=$(curl -fsS "$URL/greenlight/v1/messages/$id" -H "Authorization: Bearer $tok" \
                | jq -r '"\(.id) \(.statuses | map(.status) | join(","))"')
            case "$got" in
                "$id sent"*) n=$((n + 1)) ;;
                *) die "message lookup of $id answered: $got" ;;
            esac
        done <"$RUN_DIR/samples"
        say "verify ($name): $n sampled wamids found through GET /greenlight/v1/messages/{wamid}"
        [ "$n" -ge 1 ] || die "no wamid sampled"
    fi
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
need_tools
if [ "$PROFILE" = 1 ] && ! command -v perf >/dev/null; then
    say "installing linux-perf"
    apt-get install -y linux-perf >&2 || { apt-get update >&2 && apt-get install -y linux-perf >&2; }
fi
build
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOADAVG=$(cut -d" " -f1-3 /proc/loadavg)

start_server full FULL
create_tenants full
open_windows full
row_floor
row_send "synchronous=FULL" full
[ "$PROFILE" = 1 ] && profile_send
row_template
row_webhooks
fill
verify "synchronous=FULL"
row_memory
stop_server

if [ "$MEASURE_NORMAL" = 1 ]; then
    SEND_OK=0; SEND_SLACK=0; rm -f "$RUN_DIR/samples"
    start_server normal NORMAL
    create_tenants normal
    open_windows normal
    row_send "synchronous=NORMAL" normal
    verify "synchronous=NORMAL"
    stop_server
fi
row_postgres

MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo
echo "greenlight benchmark, $STARTED, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$([ "$QUICK" = 1 ] && echo ', QUICK (smoke, figures not meaningful)')"
echo "machine: $(nproc) CPUs ($MODEL), $MEM; load average at start: $LOADAVG"
echo "load: wrk $WRK_VERSION, $THREADS threads, $CONNS connections, ${DURATION} s per max-rate run, loopback;" \
    "$TENANTS tenants x $PHONES_PER_TENANT numbers x $CUSTOMERS customers ($PAIRS windows)"
echo
print_table
