#!/usr/bin/env bash
# Load benchmark of Charter's enforcement gateway (proxy mode), in one run on one machine:
#   a. a fast upstream (nginx, fixed 11-byte JSON body) called directly
#   b. a plain nginx reverse-proxy hop in front of the same upstream
#   c. Charter's gateway (release build, SQLite) in front of the same upstream, every call
#      audited (decision record durable before forwarding, outcome record after):
#      --durability process (the default), then --durability fsync
# each at full load (wrk --latency, closed loop), then latency at ~50% of the gateway's
# maximum throughput, direct and through the gateway at the same rate, and prints a summary
# beside the budgets in /work/shared/DESIGN.md ("Budgets"):
#   >= 20,000 req/s through the gateway with durable audit; >= 0.7x the nginx hop;
#   added p99 <= 1 ms at 50% load (process; fsync reported beside).
# It also checks that every call was audited: `records` of GET /v1/audit/verify (which
# verifies the whole chain) before/after each gateway run against the calls served.
#
# 50% load: wrk2 (fixed request rate) is used if installed. Debian has no wrk2, so without
# it wrk is paced instead: each of BENCH_PACED_CONNECTIONS connections pauses after every
# response (gateway-call.lua's delay()), calibrated by a short run to the target rate. That
# is still a closed loop: a stalled response delays that connection's next request instead
# of queueing it, so the p99 is a lower bound of what an open-loop (wrk2) run would show.
#
# Usage: bench/gateway.sh [-d SECONDS] [-c CONNECTIONS] [-t THREADS]
# Env (same meaning): BENCH_DURATION (10), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#   BENCH_PACED_CONNECTIONS (32), BENCH_LOAD_FRACTION (0.5),
#   BENCH_NGINX_WORKERS (1: one nginx process serves the upstream and the hop, with
#     master_process off; N > 1: a master and N workers),
#   BENCH_PROFILE (auto: if a budget is missed and perf is installed, profile the gateway
#     for 5 s under load after the measured runs; 1: always; 0: never),
#   CHARTER_BIN (default: target/release/charter, built), BENCH_OUT (logs; default a temp
#   dir, kept).
# The 2-core machine runs wrk, nginx and Charter together; the figures include that.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export BENCH_DIR="$root/bench"

duration="${BENCH_DURATION:-10}"
conns="${BENCH_CONNECTIONS:-64}"
threads="${BENCH_THREADS:-2}"
paced_conns="${BENCH_PACED_CONNECTIONS:-32}"
fraction="${BENCH_LOAD_FRACTION:-0.5}"
nginx_workers="${BENCH_NGINX_WORKERS:-1}"
profile="${BENCH_PROFILE:-auto}"
while [ $# -gt 0 ]; do
    case "$1" in
        -d|--duration) duration="$2"; shift 2 ;;
        -c|--connections) conns="$2"; shift 2 ;;
        -t|--threads) threads="$2"; shift 2 ;;
        -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# ---- tools and binary ----------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench: installing ${missing[*]}"
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx)
wrk2_bin=$(command -v wrk2 || true)
if [ -n "${CHARTER_BIN:-}" ]; then
    bin="$CHARTER_BIN"
else
    bin=target/release/charter
    echo "bench: cargo build --release -p charter"
    cargo build --release -p charter
fi

out="${BENCH_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/charter-gateway-bench.XXXXXX")}"
mkdir -p "$out"
read -r up_port hop_port port gw_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)
base="http://127.0.0.1:$port"
gw="http://127.0.0.1:$gw_port"
upstream="http://127.0.0.1:$up_port"
hop="http://127.0.0.1:$hop_port"
admin_token="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

nginx_pid=""
pid=""
stop_pid() { # stop_pid PID: SIGTERM, wait
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}
cleanup() {
    local rc=$?
    stop_pid "$pid"
    stop_pid "$nginx_pid"
    rm -rf "$out"/data-*
    [ "$rc" -ne 0 ] && for f in "$out"/server-*.log "$out/nginx/error.log"; do
        [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    echo "bench: logs in $out"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # wait_http URL PID
    for _ in $(seq 1 150); do
        kill -0 "$2" 2>/dev/null || { echo "bench: process $2 exited early"; return 1; }
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    curl -fsS -o /dev/null "$1"
}

# ---- nginx: the upstream and the hop ----------------------------------------------------------
mkdir -p "$out/nginx/tmp"
if [ "$nginx_workers" -le 1 ]; then master=off; nginx_workers=1; else master=on; fi
sed -e "s|@WORKERS@|$nginx_workers|; s|@MASTER@|$master|; s|@PREFIX@|$out/nginx|g" \
    -e "s|@UPSTREAM_PORT@|$up_port|g; s|@HOP_PORT@|$hop_port|g" \
    bench/nginx-gateway.conf >"$out/nginx/nginx.conf"
"$nginx_bin" -c "$out/nginx/nginx.conf" -p "$out/nginx" -g 'daemon off;' \
    >"$out/nginx/stdout.log" 2>&1 &
nginx_pid=$!
wait_http "$upstream/healthz" "$nginx_pid"
wait_http "$hop/healthz" "$nginx_pid"

# ---- Charter ---------------------------------------------------------------------------------
# start_charter DURABILITY: a fresh data dir; sets $pid and $BENCH_TOKEN.
start_charter() {
    local durability=$1 data="$out/data-$1"
    rm -rf "$data"
    CHARTER_ADMIN_TOKEN="$admin_token" RUST_LOG=warn "$bin" serve --data-dir "$data" \
        --durability "$durability" --listen "127.0.0.1:$port" \
        --gateway-listen "127.0.0.1:$gw_port" >"$out/server-$durability.log" 2>&1 &
    pid=$!
    wait_http "$base/healthz" "$pid"
    wait_http "$gw/healthz" "$pid"
    eval "$(python3 - "$base" "$admin_token" "$upstream" <<'EOF'
import datetime as dt, shlex, sys
sys.path.insert(0, "bench")
from seed import call  # bench/seed.py: one admin-API call, exits on an unexpected status

base, admin, upstream = sys.argv[1:]
def principal(name, role):
    v = call(base, "POST", "/v1/principals", admin, {"name": name, "roles": [role]}, expect=(201,))
    return v["id"], v["token"]
owner = principal("bench-api-owner", "api_owner")
steward = principal("bench-steward", "steward")
approver = principal("bench-approver", "approver")
api = call(base, "POST", "/v1/apis", owner[1], {
    "name": "orders", "audience": "https://api.example.com/orders", "upstream": upstream,
    "owner": owner[0],
    "operations": [{"scope": "orders:read", "method": "GET", "path": "/orders/{id}",
                    "data_class": "internal", "region": "eu"}],
}, expect=(201,))
partner = call(base, "POST", "/v1/partners", steward[1], {
    "name": "Bench Partner", "kind": "direct", "regions": ["eu"], "owners": [approver[0]],
}, expect=(201,))
expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).replace(microsecond=0)
grant = call(base, "POST", "/v1/grants", steward[1], {
    "partner": partner["id"], "api": api["id"], "use_case": "gateway benchmark",
    "scopes": ["orders:read"], "data_class_ceiling": "internal", "regions": ["eu"],
    "expires_at": expires.isoformat().replace("+00:00", "Z"),
    "token_ttl_seconds": 3600,  # the longest: one token for the whole run
}, expect=(201,))
g = call(base, "POST", f"/v1/grants/{grant['id']}/approvals", approver[1],
         {"decision": "approve", "justification": "benchmark", "ticket": "BENCH-1"})
if g.get("status") != "active":
    sys.exit(f"seed: grant not active after approval: {g}")
cred = call(base, "POST", f"/v1/grants/{grant['id']}/credentials", steward[1],
            {"kind": "client_secret"}, expect=(201,))
import base64, json, urllib.request
basic = base64.b64encode(f"{cred['client_id']}:{cred['client_secret']}".encode()).decode()
req = urllib.request.Request(base + "/oauth/token", data=b"grant_type=client_credentials",
    headers={"Authorization": "Basic " + basic,
             "Content-Type": "application/x-www-form-urlencoded"}, method="POST")
with urllib.request.urlopen(req, timeout=60) as r:
    token = json.load(r)["access_token"]
print(f"BENCH_TOKEN={shlex.quote(token)}")
EOF
)"
    export BENCH_TOKEN
    # One call end to end before measuring (and the token's signature verified once).
    local got
    got=$(curl -sS -H "Authorization: Bearer $BENCH_TOKEN" "$gw/orders/orders/1")
    [ "$got" = '{"ok":true}' ] || { echo "bench: gateway answered: $got"; return 1; }
}
audit_records() { python3 bench/seed.py audit-records "$base" "$admin_token"; }
# "count sum" of the audit writer's group commits so far (Prometheus summary in /metrics).
audit_commits() {
    curl -fsS -H "Authorization: Bearer $admin_token" "$base/metrics" | awk '$1 == "charter_audit_commit_batch_size_count" { c = $2 }
        $1 == "charter_audit_commit_batch_size_sum" { s = $2 } END { printf "%d %d\n", c, s }'
}

# ---- measuring -------------------------------------------------------------------------------
# CPU seconds (user+system) used so far by these pids.
cpu_of() {
    local total=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        total=$(awk -v t="$total" '{ sub(/^.*\) /, ""); printf "%.2f", t + ($12 + $13) / 100 }' "/proc/$p/stat")
    done
    echo "$total"
}
# CPU seconds the whole machine has spent busy (all cores; /proc/stat, not idle/iowait).
cpu_machine() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / 100 }' /proc/stat; }
# Per-thread CPU ticks of Charter: "tid name ticks" lines.
threads_of() {
    local t
    for t in /proc/"$1"/task/*; do
        awk -v tid="${t##*/}" -v n="$(cat "$t/comm" 2>/dev/null)" \
            '{ sub(/^.*\) /, ""); print tid, n, $12 + $13 }' "$t/stat" 2>/dev/null || true
    done
}
nginx_pids() { echo "$nginx_pid" $(pgrep -P "$nginx_pid" 2>/dev/null || true); }

# run_wrk NAME URL DURATION CONNECTIONS [DELAY_MS | rate=R]: runs wrk (or wrk2 for rate=R),
# keeps its output in $out/NAME.txt, a `top -H` frame (1 s, mid-run) in $out/NAME.top and
# Charter's CPU by thread name in $out/NAME.threads; sets $result (the BENCH_RESULT line)
# and $cpu_note (CPU of Charter / nginx / wrk / everything else on the machine, % of one
# core averaged over the run).
run_wrk() {
    local name=$1 url=$2 d=$3 c=$4 pace=${5:-}
    local t=$threads
    [ "$c" -lt "$t" ] && t=$c
    local cs0 cn0 cm0 cs1 cn1 cm1 t0 t1
    threads_of "$pid" >"$out/$name.threads0"
    cs0=$(cpu_of $pid); cn0=$(cpu_of $(nginx_pids)); cm0=$(cpu_machine); t0=$(date +%s.%N)
    ( sleep "$(awk -v d="$d" 'BEGIN { print d / 2 - 0.5 }')"
      top -b -n2 -d1 -H -w 180 | awk '/^top -/ { n++ } n == 2' | head -n 32 >"$out/$name.top" ) &
    local topper=$!
    local tool=(wrk)
    local envs=(BENCH_NAME="$name")
    case "$pace" in
        rate=*) tool=("$wrk2_bin" -R "${pace#rate=}") ;;
        "") ;;
        *) envs+=(BENCH_DELAY_MS="$pace") ;;
    esac
    env "${envs[@]}" /usr/bin/time -f "WRK_CPU %U %S" -o "$out/$name.time" \
        "${tool[@]}" -t"$t" -c"$c" -d"${d}s" --latency -s bench/gateway-call.lua "$url" \
        >"$out/$name.txt" 2>&1 || { cat "$out/$name.txt"; return 1; }
    t1=$(date +%s.%N); cs1=$(cpu_of $pid); cn1=$(cpu_of $(nginx_pids)); cm1=$(cpu_machine)
    threads_of "$pid" >"$out/$name.threads1"
    wait "$topper" 2>/dev/null || true
    result=$(grep '^BENCH_RESULT' "$out/$name.txt" | tail -n1)
    [ -n "$result" ] || { echo "bench: no result from wrk"; cat "$out/$name.txt"; return 1; }
    local wall wrk_cpu
    wall=$(awk -v s="$t0" -v e="$t1" 'BEGIN { print e - s }')
    wrk_cpu=$(awk '/^WRK_CPU/ { print $2 + $3 }' "$out/$name.time")
    cpu_note=$(awk -v w="$wall" -v s0="$cs0" -v s1="$cs1" -v n0="$cn0" -v n1="$cn1" \
        -v m0="$cm0" -v m1="$cm1" -v k="$wrk_cpu" 'BEGIN {
            s = s1 - s0; n = n1 - n0; o = (m1 - m0) - s - n - k; if (o < 0) o = 0
            printf "%.0f/%.0f/%.0f/%.0f", 100 * s / w, 100 * n / w, 100 * k / w, 100 * o / w }')
    # Charter's CPU by thread name over the run (% of one core).
    awk -v w="$wall" 'NR == FNR { a[$1] = $NF; next }
        { name = $2; for (i = 3; i < NF; i++) name = name " " $i
          c[name] += ($NF - a[$1]) / 100; k[name]++ }
        END { for (x in c) printf "%s x%d: %.0f%%\n", x, k[x], 100 * c[x] / w }' \
        "$out/$name.threads0" "$out/$name.threads1" | sort -t: -k2 -rn >"$out/$name.threads"
}
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
ok_rps() { # successful responses per second of the last run
    awk -v r="$(field "$result" requests)" -v e="$(field "$result" status_errors)" \
        -v us="$(field "$result" duration_us)" 'BEGIN { printf "%.0f", (r - e) / (us / 1e6) }'
}
errors() { # non-2xx + socket errors of the last run
    echo $(( $(field "$result" status_errors) + $(field "$result" connect_errors) \
        + $(field "$result" read_errors) + $(field "$result" write_errors) \
        + $(field "$result" timeouts) ))
}
rows=()
verdicts=()
row() { # row LABEL BUDGET: a table row from the last run
    rows+=("$1|$(ok_rps)|$(ms "$(field "$result" p50_us)")|$(ms "$(field "$result" p99_us)")|$(ms "$(field "$result" max_us)")|$(errors)|$cpu_note|$2")
}

# paced NAME URL RATE: ~RATE req/s (wrk2 if installed, else wrk with calibrated pauses).
paced() {
    local name=$1 url=$2 rate=$3
    if [ -n "$wrk2_bin" ]; then
        run_wrk "$name" "$url" "$duration" "$paced_conns" "rate=$rate"
        return
    fi
    # Per-connection cycle = pause + response time; calibrate the response time in 3 s.
    local cycle pause0 got resp pause
    cycle=$(awk -v c="$paced_conns" -v r="$rate" 'BEGIN { print 1000 * c / r }')
    pause0=$(awk -v y="$cycle" 'BEGIN { p = y - 0.3; print (p < 0 ? 0 : p) }')
    run_wrk "$name.calibrate" "$url" 3 "$paced_conns" "$pause0"
    got=$(ok_rps)
    resp=$(awk -v c="$paced_conns" -v g="$got" -v p="$pause0" 'BEGIN { r = 1000 * c / g - p; print (r < 0 ? 0 : r) }')
    pause=$(awk -v y="$cycle" -v r="$resp" 'BEGIN { p = y - r; printf "%.3f", (p < 0 ? 0 : p) }')
    run_wrk "$name" "$url" "$duration" "$paced_conns" "$pause"
}

gitrev="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
[ -n "${CHARTER_BIN:-}" ] && gitrev="$gitrev; binary $CHARTER_BIN from $(date -r "$bin" -u +%Y-%m-%dT%H:%M:%SZ), not built by this run"
echo "bench: charter $("$bin" --version 2>/dev/null || echo '?') (git $gitrev), $(nginx -v 2>&1 | sed 's/.*: //'), $(nproc) cores"
echo "bench: wrk -t$threads -c$conns -d${duration}s; nginx: $nginx_workers worker(s), master_process $master; logs in $out"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
m0=$(cpu_machine); sleep 2; m1=$(cpu_machine)
busy0=$(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.0f", 100 * (b - a) / 2 }')
[ "$busy0" -gt 20 ] && echo "bench: WARNING: the machine is busy before the run ($busy0% of one core in use by other work)"
start_charter process
audit_notes=()

# ---- a, b: direct and nginx hop at full load ------------------------------------------------
echo "bench: [1/4] direct to the upstream, ${duration}s"
run_wrk direct "$upstream/orders/1" "$duration" "$conns"
row "a. direct (nginx upstream)" "-"
direct_rps=$(ok_rps)
echo "bench: [2/4] through the nginx hop, ${duration}s"
run_wrk hop "$hop/orders/1" "$duration" "$conns"
row "b. nginx reverse-proxy hop" "-"
hop_rps=$(ok_rps)

# gateway_max DURABILITY: full-load run through the gateway, audit records checked.
gateway_max() {
    local d=$1 before after delta okc c0 c1
    before=$(audit_records)
    c0=$(audit_commits)
    run_wrk "gateway-$d" "$gw/orders/orders/1" "$duration" "$conns"
    c1=$(audit_commits)
    sleep 1 # outcome records of the last responses are appended after them
    after=$(audit_records)
    delta=$(( after - before ))
    okc=$(( $(field "$result" requests) - $(field "$result" status_errors) ))
    # 2 records per call (decision + outcome); wrk stops with up to $conns calls in flight,
    # served and audited but not counted.
    local note="$d: audit records +$delta for $okc calls answered 200 (expected 2 per call: $(( 2 * okc ))..$(( 2 * (okc + conns) ))); chain valid"
    if [ "$delta" -lt $(( 2 * okc )) ] || [ "$delta" -gt $(( 2 * (okc + conns) )) ]; then
        note="$note; MISMATCH"
    fi
    audit_notes+=("$note")
    # The writer commits one batch at a time: commits/s x mean batch = records/s it sustained.
    commit_notes+=("$d: $(awk -v a="$c0" -v b="$c1" -v us="$(field "$result" duration_us)" 'BEGIN {
        split(a, x, " "); split(b, y, " "); n = y[1] - x[1]; u = y[2] - x[2]; t = us / 1e6
        if (n > 0) printf "%d group commits in %.1f s = %.0f/s, %.1f records each, one commit every %.2f ms", n, t, n / t, u / n, 1000 * t / n
        else printf "no commit metrics" }')")
}
commit_notes=()

echo "bench: [3/4] through Charter's gateway, durability=process, ${duration}s"
gateway_max process
row "c. Charter gateway, process" ">= 20,000/s, >= 0.7x hop"
gwp_rps=$(ok_rps); gwp_err=$(errors)

# ---- 50% load, process ------------------------------------------------------------------------
rate_p=$(awk -v r="$gwp_rps" -v f="$fraction" 'BEGIN { printf "%.0f", r * f }')
echo "bench: [4/4] latency at ${rate_p} req/s (${fraction} x gateway max), direct and through the gateway"
paced_rows=()
prow() { paced_rows+=("$1|$(ok_rps)|$(ms "$(field "$result" p50_us)")|$(ms "$(field "$result" p99_us)")|$(ms "$(field "$result" max_us)")|$(errors)|$cpu_note"); }
paced direct-paced-process "$upstream/orders/1" "$rate_p"
prow "direct @ $rate_p/s"
dp_p99=$(field "$result" p99_us)
paced gateway-paced-process "$gw/orders/orders/1" "$rate_p"
prow "gateway (process) @ $rate_p/s"
gp_p99=$(field "$result" p99_us); gp_rps=$(ok_rps)
added_p=$(awk -v g="$gp_p99" -v d="$dp_p99" 'BEGIN { printf "%.2f", (g - d) / 1000 }')

# ---- verdicts (the budgets are quoted for process durability) ---------------------------------
ratio_p=$(awk -v g="$gwp_rps" -v h="$hop_rps" 'BEGIN { printf "%.2f", g / h }')
missed=0
if [ "$gwp_err" -gt 0 ]; then verdicts+=("throughput: INVALID ($gwp_err errors through the gateway)"); missed=1
elif [ "$gwp_rps" -ge 20000 ]; then verdicts+=("throughput, process: $gwp_rps/s >= 20,000/s: within budget")
else verdicts+=("throughput, process: $gwp_rps/s < 20,000/s: BELOW budget"); missed=1; fi
if awk -v r="$ratio_p" 'BEGIN { exit !(r >= 0.7) }'; then
    verdicts+=("gateway/nginx hop, process: ${ratio_p}x >= 0.7x: within budget")
else
    verdicts+=("gateway/nginx hop, process: ${ratio_p}x < 0.7x: BELOW budget"); missed=1
fi
if awk -v a="$added_p" 'BEGIN { exit !(a <= 1.0) }'; then
    verdicts+=("added p99 at ${rate_p}/s, process: ${added_p} ms <= 1 ms: within budget")
else
    verdicts+=("added p99 at ${rate_p}/s, process: ${added_p} ms > 1 ms: OVER budget"); missed=1
fi

# ---- where the time goes (a budget missed) ------------------------------------------------------
profile_note=""
if [ "$profile" = 1 ] || { [ "$profile" = auto ] && [ "$missed" = 1 ]; }; then
    if command -v perf >/dev/null; then
        echo "bench: profiling the gateway (process durability) under full load for 5 s"
        # Whole machine: wrk and nginx share the cores, so their share is part of the answer.
        ( sleep 1; perf record -a -F 999 -o "$out/perf.data" -- sleep 5 \
            >"$out/perf-record.log" 2>&1 ) &
        perfer=$!
        run_wrk gateway-profiled "$gw/orders/orders/1" 7 "$conns"
        wait "$perfer" || true
        {
            echo "by thread name:"
            perf report -i "$out/perf.data" --stdio --no-children -g none --sort comm 2>/dev/null \
                | grep -E '^ +[0-9]' | head -n 8
            echo "by symbol (top 30):"
            perf report -i "$out/perf.data" --stdio --no-children -g none --sort comm,dso,sym \
                2>/dev/null | grep -E '^ +[0-9]' | head -n 30
        } >"$out/perf-top.txt" || true
        profile_note="$out/perf-top.txt"
    fi
fi

stop_pid "$pid"; pid=""

# ---- c, fsync ---------------------------------------------------------------------------------
start_charter fsync
echo "bench: [3/4] through Charter's gateway, durability=fsync, ${duration}s"
gateway_max fsync
row "c. Charter gateway, fsync" "(reported beside)"
gwf_rps=$(ok_rps)
rate_f=$(awk -v r="$gwf_rps" -v f="$fraction" 'BEGIN { printf "%.0f", r * f }')
echo "bench: [4/4] latency at ${rate_f} req/s (${fraction} x fsync gateway max)"
paced direct-paced-fsync "$upstream/orders/1" "$rate_f"
prow "direct @ $rate_f/s"
df_p99=$(field "$result" p99_us)
paced gateway-paced-fsync "$gw/orders/orders/1" "$rate_f"
prow "gateway (fsync) @ $rate_f/s"
gf_p99=$(field "$result" p99_us)
added_f=$(awk -v g="$gf_p99" -v d="$df_p99" 'BEGIN { printf "%.2f", (g - d) / 1000 }')
ratio_f=$(awk -v g="$gwf_rps" -v h="$hop_rps" 'BEGIN { printf "%.2f", g / h }')
verdicts+=("fsync, beside: $gwf_rps/s, ${ratio_f}x the nginx hop, added p99 ${added_f} ms at ${rate_f}/s")
for n in "${audit_notes[@]}"; do
    case "$n" in *MISMATCH*) verdicts+=("audit: FAIL ($n)") ;; *) verdicts+=("audit: $n") ;; esac
done


# ---- summary ----------------------------------------------------------------------------------
echo
echo "== Charter gateway benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), git $gitrev) =="
echo "wrk -t$threads -c$conns -d${duration}s --latency, GET with a bearer token, 11-byte JSON answer;" \
     "$(nproc) cores shared by wrk, nginx and Charter"
echo "nginx: $nginx_workers worker(s) (master_process $master) serving the upstream and the hop;" \
     "Charter: one node, SQLite, every call audited (decision durable before forwarding)"
echo "load average before: $load0; after: $(cut -d' ' -f1-3 /proc/loadavg); CPU in use by other work just before the run: $busy0% of one core"
echo
echo "Full load (closed loop, $conns connections):"
{
    echo "scenario|req/s|p50 ms|p99 ms|max ms|errors|CPU % charter/nginx/wrk/other|budget"
    echo "--------|-----|------|------|------|------|---------------------|------"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|'
echo "  gateway/nginx-hop throughput: process ${ratio_p}x, fsync ${ratio_f}x;" \
     "gateway/direct: $(awk -v g="$gwp_rps" -v d="$direct_rps" 'BEGIN { printf "%.2f", g / d }')x"
echo
if [ -n "$wrk2_bin" ]; then
    echo "~${fraction} x max throughput (wrk2 -R, fixed rate, $paced_conns connections):"
else
    echo "~${fraction} x max throughput (no wrk2 here: wrk paced by per-connection pauses calibrated" \
         "to the rate, $paced_conns connections; closed loop, so p99 is a lower bound):"
fi
{
    echo "scenario|req/s|p50 ms|p99 ms|max ms|errors|CPU % charter/nginx/wrk/other"
    echo "--------|-----|------|------|------|------|---------------------"
    printf '%s\n' "${paced_rows[@]}"
} | column -t -s '|'
echo "  added p99 (gateway - direct, same rate): process ${added_p} ms (budget <= 1 ms), fsync ${added_f} ms"
echo
printf '  - %s\n' "${verdicts[@]}"
printf '  - audit writer, full-load run, %s\n' "${commit_notes[@]}"
echo "  (CPU: % of one core averaged over the run, 200 = both cores; other = the rest of the machine,"
echo "   interrupt time included; in top -H the line whose PID is Charter's process id is the whole process)."
echo "  Per run: wrk output, a top -H frame from mid-run, Charter's CPU by thread: $out/NAME.{txt,top,threads}"
if [ "$missed" = 1 ]; then
    echo
    echo "Charter's CPU by thread, process-durability full-load run (% of one core):"
    sed 's/^/    /' "$out/gateway-process.threads"
    echo "top -H, 1 s mid-run of that run (every process on the machine):"
    sed -n '1,3p;7,24p' "$out/gateway-process.top"
    if [ -n "$profile_note" ] && [ -s "$profile_note" ]; then
        echo
        echo "perf -a (whole machine, 5 s of a 7 s full-load gateway run, process durability), self time:"
        cat "$profile_note"
    fi
fi
