#!/usr/bin/env bash
# Interoperability test: starts `charter serve` (SQLite, temp dir, free loopback ports) and
# drives its OAuth endpoints and gateway with independent implementations:
# - Python (test_oauth.py): authlib (client), PyJWT (token verification against the JWKS),
#   requests (introspection);
# - Node (openid_client.mjs): openid-client 6 with its stock defaults — private_key_jwt and
#   DPoP with Ed25519 and P-256 keys, a DPoP-bound token used at the gateway, revocation —
#   and jose (token verification against the JWKS);
# - Schemathesis: property-based calls generated from /openapi.json with the admin token;
#   no call may get a 5xx and every documented response must conform to its schema.
#
# Env: CHARTER_BIN (default target/debug/charter, built if missing),
#      CHARTER_INTEROP_VENV (default target/interop-venv; created and reused),
#      CHARTER_INTEROP_NODE (default target/interop-node; `npm ci` from package-lock.json,
#      reused while the lock file is unchanged),
#      CHARTER_INTEROP_KEEP=1 keeps the data dir and server log,
#      CHARTER_SCHEMATHESIS_EXAMPLES (default 25) cases per operation and phase,
#      CHARTER_SCHEMATHESIS_SECONDS (default 150) time budget of the Schemathesis run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here="$root/tests/interop"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="${CHARTER_INTEROP_VENV:-$target_dir/interop-venv}"
reqs="$here/requirements.txt"
if [ ! -x "$venv/bin/python" ]; then
    echo "interop: creating venv $venv"
    python3 -m venv "$venv"
fi
# Reinstall only when requirements.txt changed since the last install.
stamp="$venv/.charter-interop-requirements"
if ! cmp -s "$reqs" "$stamp"; then
    echo "interop: installing $(grep -v '^#' "$reqs" | tr '\n' ' ')"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs"
    cp "$reqs" "$stamp"
fi
py="$venv/bin/python"

# Node: openid-client and jose, exactly as pinned by package-lock.json, installed outside the
# source tree. Node 20+ and npm are expected; Debian's packages are installed if missing.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "interop: installing Debian's nodejs and npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq nodejs npm >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "interop: node $(node --version) is too old (openid-client 6 needs 20 or later)"
    exit 1
fi
node_dir="${CHARTER_INTEROP_NODE:-$target_dir/interop-node}"
mkdir -p "$node_dir"
if ! cmp -s "$here/package-lock.json" "$node_dir/package-lock.json" \
        || ! cmp -s "$here/package.json" "$node_dir/package.json" \
        || [ ! -d "$node_dir/node_modules/openid-client" ]; then
    echo "interop: npm ci (openid-client, jose) in $node_dir"
    cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# The script runs from the install dir so that its imports resolve to those node_modules.
cp "$here/openid_client.mjs" "$node_dir/"

if [ -n "${CHARTER_BIN:-}" ]; then
    bin="$CHARTER_BIN"
    [ -x "$bin" ] || { echo "interop: CHARTER_BIN=$bin is not an executable"; exit 1; }
else
    bin="$target_dir/debug/charter"
    # Build when missing or older than the sources (cargo test usually just built it).
    if [ ! -x "$bin" ] || [ -n "$(find crates Cargo.toml Cargo.lock -newer "$bin" \
            \( -name '*.rs' -o -name '*.toml' -o -name '*.lock' -o -name '*.sql' \) \
            -print -quit 2>/dev/null)" ]; then
        echo "interop: building $bin"
        cargo build -p charter --locked
    fi
fi

read -r port gw_port < <("$py" - <<'EOF'
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
data=$(mktemp -d "${TMPDIR:-/tmp}/charter-interop.XXXXXX")
admin_token="interop-admin-$("$py" -c 'import secrets; print(secrets.token_hex(16))')"
log="$data/server.log"
pid=""

cleanup() {
    local rc=$?
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ "$rc" -ne 0 ] && [ -f "$log" ]; then
        echo "interop: server log (last 40 lines):"
        tail -n 40 "$log" | sed 's/^/  | /'
    fi
    if [ "${CHARTER_INTEROP_KEEP:-0}" = 1 ]; then
        echo "interop: kept $data"
    else
        rm -rf "$data"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CHARTER_ADMIN_TOKEN="$admin_token" "$bin" serve --data-dir "$data/db" \
    --listen "127.0.0.1:$port" --gateway-listen "127.0.0.1:$gw_port" >"$log" 2>&1 &
pid=$!

ready=0
for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "interop: charter serve exited early"
        exit 1
    fi
    if curl -fsS -o /dev/null "$base/healthz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
if [ "$ready" != 1 ]; then
    echo "interop: $base/healthz did not answer within 30 s"
    exit 1
fi
echo "interop: charter serve up at $base (pid $pid, $bin)"

rc=0
"$py" "$here/test_oauth.py" --base "$base" --admin-token "$admin_token" || rc=1
node "$node_dir/openid_client.mjs" --base "$base" --gateway "http://127.0.0.1:$gw_port" \
    --admin-token "$admin_token" || rc=1

# Schemathesis last: it creates and changes objects at random (with the admin token, so every
# route is reachable). A fixed seed makes a failure reproducible; the report names each case.
# It runs in the temp dir, so its cache (.schemathesis/) never lands in the source tree; one
# worker, because its threads sometimes crash the generator itself (a CPython AST error).
echo "interop: schemathesis against $base/openapi.json"
(cd "$data" && "$venv/bin/st" run "$base/openapi.json" \
    --header "Authorization: Bearer $admin_token" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance \
    --max-examples "${CHARTER_SCHEMATHESIS_EXAMPLES:-25}" \
    --max-time "${CHARTER_SCHEMATHESIS_SECONDS:-150}" \
    --seed 1101 --workers 1 --request-timeout 10 \
    --warnings off --output-truncate true) || rc=1
exit "$rc"
