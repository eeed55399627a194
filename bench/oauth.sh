#!/usr/bin/env bash
# Load benchmark of Charter's token service (release build, SQLite, loopback only):
#   1. token issuance  (client_credentials, client_secret_basic), checking that every issued
#      token left an audit record (GET /v1/audit/verify `records` before/after)
#   2. introspection of one token verified once (same token every request)
#   3. introspection of distinct tokens (pre-minted; each sent once)
# and prints a summary beside the budgets in /work/shared/DESIGN.md ("Budgets").
#
# Usage: bench/oauth.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS] [--tokens N]
#                       [--durability process|fsync]
# Env (same meaning): BENCH_DURATION (15), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#   BENCH_TOKENS (tokens minted for phase 3; default: enough for DURATION at 12,000/s),
#   BENCH_DURABILITY (process), CHARTER_BIN (default: target/release/charter, built),
#   BENCH_OUT (directory for logs; default a temp dir, kept), BENCH_CHECK_ACTIVE=1 (check
#   every introspection answer is active; costs client CPU), BENCH_PERF=1 (perf-record the
#   server in each phase and print its hottest symbols; perturbs the figures).
# The 2-core machine runs wrk and the server together; the figures include that contention.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export BENCH_DIR="$root/bench"

duration="${BENCH_DURATION:-15}"
conns="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-2}"
durability="${BENCH_DURABILITY:-process}"
ntokens="${BENCH_TOKENS:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        -d|--duration) duration="$2"; shift 2 ;;
        -c|--connections) conns="$2"; shift 2 ;;
        -t|--threads) threads="$2"; shift 2 ;;
        --tokens) ntokens="$2"; shift 2 ;;
        --durability) durability="$2"; shift 2 ;;
        --fsync) durability=fsync; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
ntokens="${ntokens:-$(( duration * 12000 ))}"
case "$durability" in process|fsync) ;; *) echo "durability: process or fsync" >&2; exit 2 ;; esac

if [ -n "${CHARTER_BIN:-}" ]; then
    bin="$CHARTER_BIN"
else
    bin=target/release/charter
    echo "bench: cargo build --release -p charter"
    cargo build --release -p charter --locked
fi
if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk"
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

out="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/charter-bench.XXXXXX")}"
mkdir -p "$out"
data="$out/data"
rm -rf "$data"
read -r port gw_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)
base="http://127.0.0.1:$port"
admin_token="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
pid=""
cleanup() {
    local rc=$?
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$data"
    [ "$rc" -ne 0 ] && [ -f "$out/server.log" ] && tail -n 20 "$out/server.log"
    echo "bench: logs in $out"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CHARTER_ADMIN_TOKEN="$admin_token" "$bin" serve --data-dir "$data" --durability "$durability" \
    --listen "127.0.0.1:$port" --gateway-listen "127.0.0.1:$gw_port" >"$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || { echo "bench: charter serve exited early"; exit 1; }
    curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break
    sleep 0.2
done
curl -fsS -o /dev/null "$base/healthz"

eval "$(python3 bench/seed.py seed "$base" "$admin_token")"
export CHARTER_CLIENT_ID CHARTER_CLIENT_SECRET CHARTER_GATEWAY_TOKEN
export BENCH_THREADS="$threads"

# CPU seconds (user+system) the server has used so far.
server_cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$pid/stat"; }

# run_wrk NAME SCRIPT PATH DURATION: runs wrk, keeps its output in $out/NAME.txt, a `top`
# snapshot from mid-run in $out/NAME.top, and sets $result (the BENCH_RESULT line),
# $srv_cpu_pct and $wrk_cpu_pct (% of one core, averaged over the run) and $srv_us_req.
run_wrk() {
    local name=$1 script=$2 path=$3 d=$4
    local c0 t0 t1 c1
    c0=$(server_cpu); t0=$(date +%s.%N)
    ( sleep "$(( d / 2 ))"; top -b -n1 -w 160 | head -n 15 >"$out/$name.top" ) &
    local topper=$! profiler=""
    if [ "${BENCH_PERF:-0}" = 1 ]; then
        perf record -q -F 499 -g -p "$pid" -o "$out/$name.perf.data" -- sleep "$(( d > 3 ? d - 2 : 1 ))" \
            >/dev/null 2>&1 &
        profiler=$!
    fi
    BENCH_NAME="$name" /usr/bin/time -f "WRK_CPU %U %S" -o "$out/$name.time" \
        wrk -t"$threads" -c"$conns" -d"${d}s" --latency -s "$script" "$base$path" \
        >"$out/$name.txt" 2>&1 || { cat "$out/$name.txt"; return 1; }
    t1=$(date +%s.%N); c1=$(server_cpu)
    wait "$topper" 2>/dev/null || true
    if [ -n "$profiler" ]; then
        wait "$profiler" 2>/dev/null || true
        perf report -i "$out/$name.perf.data" --no-children --sort symbol --percent-limit 1 \
            --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -n 25 >"$out/$name.perf.txt" || true
    fi
    result=$(grep '^BENCH_RESULT' "$out/$name.txt" | tail -n1)
    [ -n "$result" ] || { echo "bench: no result from wrk"; cat "$out/$name.txt"; return 1; }
    srv_cpu_pct=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.0f", 100 * (b - a) / (e - s) }')
    # server CPU time per completed request: steadier than req/s on a shared machine
    srv_us_req=$(awk -v a="$c0" -v b="$c1" -v n="$(field "$result" requests)" 'BEGIN { printf "%.0f", n ? 1e6 * (b - a) / n : 0 }')
    wrk_cpu_pct=$(awk -v s="$t0" -v e="$t1" '/^WRK_CPU/ { printf "%.0f", 100 * ($2 + $3) / (e - s) }' "$out/$name.time")
}
# A counter or summary sum/count from the public Prometheus endpoint (0 when absent).
metric() { curl -fsS -H "Authorization: Bearer $admin_token" "$base/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { printf "%d", v + 0 }'; }
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

echo "bench: charter $($bin --version 2>/dev/null || echo '?') at $base, durability=$durability," \
     "wrk -t$threads -c$conns -d${duration}s, $(nproc) cores, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
verdicts=()

# ---- 1. token issuance ---------------------------------------------------------------
before=$(python3 bench/seed.py audit-records "$base" "$admin_token")
b_sum0=$(metric charter_audit_commit_batch_size_sum); b_cnt0=$(metric charter_audit_commit_batch_size_count)
echo "bench: [1/3] token issuance for ${duration}s"
run_wrk issuance bench/token.lua /oauth/token "$duration"
sleep 1 # let requests still in flight when wrk stopped finish (and be audited)
b_sum1=$(metric charter_audit_commit_batch_size_sum); b_cnt1=$(metric charter_audit_commit_batch_size_count)
after=$(python3 bench/seed.py audit-records "$base" "$admin_token")
commits=$(( b_cnt1 - b_cnt0 ))
commit_note="audit group commits during issuance: $commits ($(awk -v c="$commits" -v us="$(field "$result" duration_us)" 'BEGIN { printf "%.0f", c / (us / 1e6) }')/s), mean batch $(awk -v s=$(( b_sum1 - b_sum0 )) -v c="$commits" 'BEGIN { printf "%.1f", c ? s / c : 0 }') units (charter_audit_commit_batch_size)"
iss_req=$(field "$result" requests); iss_bad=$(field "$result" status_errors)
iss_ok=$(( iss_req - iss_bad ))
iss_rps=$(awk -v ok="$iss_ok" -v us="$(field "$result" duration_us)" 'BEGIN { printf "%.0f", ok / (us / 1e6) }')
delta=$(( after - before ))
audit_note="audit records +$delta for $iss_ok tokens (200s)"
audit_ok=1
# wrk stops with up to $conns requests in flight: served and audited but not counted.
if [ "$delta" -lt "$iss_ok" ] || [ "$delta" -gt $(( iss_ok + conns )) ]; then
    audit_ok=0; audit_note="$audit_note: MISMATCH"
fi
iss_valid=1
[ "$iss_bad" -gt $(( iss_req / 100 )) ] && iss_valid=0
rows+=("token issuance (client_secret_basic)|$iss_rps|$(ms "$(field "$result" p50_us)")|$(ms "$(field "$result" p99_us)")|$iss_bad|>= 10,000/s, all audited|$srv_cpu_pct%|$srv_us_req|$wrk_cpu_pct%")
if [ "$iss_valid" = 0 ]; then verdicts+=("issuance: INVALID ($iss_bad non-2xx of $iss_req)")
elif [ "$audit_ok" = 0 ]; then verdicts+=("issuance: FAIL ($audit_note)")
elif [ "$iss_rps" -ge 10000 ]; then verdicts+=("issuance: within budget ($audit_note)")
else verdicts+=("issuance: BELOW budget ($iss_rps/s < 10,000/s; $audit_note)"); fi
grep -E 'Non-2xx|Socket errors' "$out/issuance.txt" || true

# ---- mint tokens for the introspection phases ------------------------------------------
echo "bench: minting $ntokens tokens"
rm -f "$out"/minted.*
mint_start=$(date +%s)
jwt_re='^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$' # EdDSA: 64-byte signature
mint_rate=$(( iss_rps > 1000 ? iss_rps / 2 : 500 ))
mint_d=$(( ntokens / mint_rate + 3 ))
for _try in 1 2 3; do
    have=$(cat "$out"/minted.* 2>/dev/null | grep -cE "$jwt_re" || true)
    [ "$have" -ge "$ntokens" ] && break
    for f in "$out"/minted.*; do if [ -f "$f" ]; then mv "$f" "$f.$_try"; fi; done
    BENCH_RECORD="$out/minted" BENCH_RECORD_QUOTA=$(( (ntokens - have + threads - 1) / threads )) \
        BENCH_NAME=mint wrk -t"$threads" -c"$conns" -d"${mint_d}s" -s bench/token.lua \
        "$base/oauth/token" >"$out/mint.$_try.txt" 2>&1 &
    wrk_pid=$!
    # wrk waits out -d even when every thread has stopped: interrupt it once all are done.
    while kill -0 "$wrk_pid" 2>/dev/null; do
        done_count=$(find "$out" -maxdepth 1 -name 'minted.*.done' | wc -l)
        if [ "$done_count" -ge "$threads" ]; then kill -INT "$wrk_pid" 2>/dev/null || true; break; fi
        sleep 0.2
    done
    wait "$wrk_pid" || true
    rm -f "$out"/minted.*.done
done
# complete compact JWS lines only (a thread cut off by -d may leave a partial last line)
cat "$out"/minted.* | grep -E "$jwt_re" | head -n "$ntokens" >"$out/tokens.txt" || true
rm -f "$out"/minted.*
got=$(wc -l <"$out/tokens.txt")
echo "bench: $got tokens minted in $(( $(date +%s) - mint_start )) s"
[ "$got" -ge 1 ] || { echo "bench: minting failed"; cat "$out/mint.1.txt"; exit 1; }
export BENCH_TOKENS_FILE="$out/tokens.txt"

# ---- 2. introspection, one token verified once ----------------------------------------
echo "bench: [2/3] introspection, same token, ${duration}s"
BENCH_MODE=same run_wrk introspect_same bench/introspect.lua /oauth/introspect "$duration"
s_req=$(field "$result" requests); s_bad=$(field "$result" status_errors)
s_rps=$(awk -v ok=$(( s_req - s_bad )) -v us="$(field "$result" duration_us)" 'BEGIN { printf "%.0f", ok / (us / 1e6) }')
rows+=("introspection, token verified once|$s_rps|$(ms "$(field "$result" p50_us)")|$(ms "$(field "$result" p99_us)")|$s_bad|>= 30,000/s|$srv_cpu_pct%|$srv_us_req|$wrk_cpu_pct%")
s_inactive=$(field "$result" inactive)
if [ "$s_bad" -gt $(( s_req / 100 )) ]; then verdicts+=("introspection (same): INVALID ($s_bad non-2xx)")
elif [ -n "$s_inactive" ] && [ "$s_inactive" -gt 0 ]; then verdicts+=("introspection (same): INVALID ($s_inactive answers not active)")
elif [ "$s_rps" -ge 30000 ]; then verdicts+=("introspection (same token): within budget")
else verdicts+=("introspection (same token): BELOW budget ($s_rps/s < 30,000/s)"); fi

# ---- 3. introspection, distinct tokens --------------------------------------------------
echo "bench: [3/3] introspection, distinct tokens (each once), up to ${duration}s"
tail -n +2 "$out/tokens.txt" >"$out/tokens-distinct.txt"
BENCH_TOKENS_FILE="$out/tokens-distinct.txt" BENCH_MODE=distinct \
    run_wrk introspect_distinct bench/introspect.lua /oauth/introspect "$duration"
d_req=$(field "$result" requests); d_bad=$(field "$result" status_errors)
d_fresh=$(field "$result" fresh); d_exh=$(field "$result" exhausted)
if [ "$d_exh" = true ]; then
    d_rps=$(field "$result" fresh_rps); d_rps=${d_rps%.*}
    d_note="all $d_fresh tokens sent in $(ms "$(field "$result" fresh_window_us)") ms; rate over that window"
else
    d_rps=$(awk -v ok=$(( d_req - d_bad )) -v us="$(field "$result" duration_us)" 'BEGIN { printf "%.0f", ok / (us / 1e6) }')
    d_note="$d_fresh distinct tokens sent, none repeated"
fi
rows+=("introspection, distinct tokens|$d_rps|$(ms "$(field "$result" p50_us)")|$(ms "$(field "$result" p99_us)")|$d_bad|>= 10,000/s|$srv_cpu_pct%|$srv_us_req|$wrk_cpu_pct%")
sample=$(python3 bench/seed.py check-active "$base" "$CHARTER_GATEWAY_TOKEN" "$out/tokens-distinct.txt" 20 || true)
d_inactive=$(field "$result" inactive)
if [ "$d_bad" -gt $(( d_req / 100 )) ]; then verdicts+=("introspection (distinct): INVALID ($d_bad non-2xx)")
elif [ -n "$d_inactive" ] && [ "$d_inactive" -gt 0 ]; then verdicts+=("introspection (distinct): INVALID ($d_inactive answers not active)")
elif [[ "$sample" != 20/20* ]]; then verdicts+=("introspection (distinct): INVALID (sample check: $sample)")
elif [ "$d_rps" -ge 10000 ]; then verdicts+=("introspection (distinct tokens): within budget ($d_note)")
else verdicts+=("introspection (distinct tokens): BELOW budget ($d_rps/s < 10,000/s; $d_note)"); fi

# ---- summary -------------------------------------------------------------------------------
echo
echo "== Charter token service benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ)) =="
echo "durability=$durability  wrk -t$threads -c$conns -d${duration}s  cores=$(nproc)  (wrk and server share the cores)"
echo "load average before the run: $load0; now: $(cut -d' ' -f1-3 /proc/loadavg)"
{
    echo "scenario|req/s|p50 ms|p99 ms|non-2xx|budget|server CPU|server CPU µs/req|wrk CPU"
    echo "--------|-----|------|------|-------|------|----------|-----------------|-------"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
echo
printf '  - %s\n' "${verdicts[@]}"
echo "  - introspection sample after phase 3: $sample"
echo "  - $commit_note"
echo "  (CPU: % of one core averaged over the run; 200% = both cores. top snapshots: $out/*.top)"
if [ "${BENCH_PERF:-0}" = 1 ]; then
    for name in issuance introspect_same introspect_distinct; do
        echo
        echo "-- perf, $name: server self time by symbol (top 12; $out/$name.perf.txt) --"
        head -n 12 "$out/$name.perf.txt" | cut -c1-150
    done
fi
