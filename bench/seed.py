#!/usr/bin/env python3
"""Seeds a running Charter for bench/oauth.sh (Python standard library only).

    seed.py seed BASE ADMIN_TOKEN      -> shell assignments (CHARTER_CLIENT_ID=…, …)
    seed.py audit-records BASE TOKEN   -> `records` from GET /v1/audit/verify
    seed.py check-active BASE GATEWAY_TOKEN FILE [SAMPLES]
                                       -> introspects a sample of FILE's tokens; exits 1
                                          unless every one is active
"""

import datetime as dt
import json
import random
import shlex
import sys
import urllib.error
import urllib.parse
import urllib.request

AUDIENCE = "https://api.example.com/bench-orders"


def call(base, method, path, token, body=None, form=None, expect=(200, 201)):
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    if status not in expect:
        sys.exit(f"seed: {method} {path} -> {status} {text[:400]}")
    return json.loads(text) if text else None


def seed(base, admin):
    def principal(name, roles):
        v = call(base, "POST", "/v1/principals", admin, {"name": name, "roles": roles}, expect=(201,))
        return v["id"], v["token"]

    owner = principal("bench-api-owner", ["api_owner"])
    steward = principal("bench-steward", ["steward"])
    approver = principal("bench-approver", ["approver"])
    gateway = principal("bench-gateway", ["gateway"])
    api = call(base, "POST", "/v1/apis", owner[1], {
        "name": "bench-orders", "audience": AUDIENCE, "upstream": "http://127.0.0.1:9/",
        "owner": owner[0],
        "operations": [
            {"scope": "orders:read", "method": "GET", "path": "/orders/{id}",
             "data_class": "confidential", "region": "eu"},
            {"scope": "orders:list", "method": "GET", "path": "/orders",
             "data_class": "internal", "region": "eu"},
        ],
    }, expect=(201,))
    partner = call(base, "POST", "/v1/partners", steward[1], {
        "name": "Bench Partner", "kind": "direct", "regions": ["eu"], "owners": [approver[0]],
    }, expect=(201,))
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)).replace(microsecond=0)
    grant = call(base, "POST", "/v1/grants", steward[1], {
        "partner": partner["id"], "api": api["id"], "use_case": "token service benchmark",
        "scopes": ["orders:read", "orders:list"], "data_class_ceiling": "confidential",
        "regions": ["eu"], "expires_at": expires.isoformat().replace("+00:00", "Z"),
        # the longest TTL, so tokens minted early in the run stay valid for the whole run
        "token_ttl_seconds": 3600,
    }, expect=(201,))
    g = call(base, "POST", f"/v1/grants/{grant['id']}/approvals", approver[1], {
        "decision": "approve", "justification": "benchmark", "ticket": "BENCH-1",
    })
    if g.get("status") != "active":
        sys.exit(f"seed: grant not active after approval: {g}")
    cred = call(base, "POST", f"/v1/grants/{grant['id']}/credentials", steward[1],
                {"kind": "client_secret"}, expect=(201,))
    out = {
        "CHARTER_CLIENT_ID": cred["client_id"],
        "CHARTER_CLIENT_SECRET": cred["client_secret"],
        "CHARTER_GATEWAY_TOKEN": gateway[1],
        "BENCH_GRANT": grant["id"],
    }
    for k, v in out.items():
        print(f"{k}={shlex.quote(v)}")


def audit_records(base, token):
    v = call(base, "GET", "/v1/audit/verify", token)
    if not v.get("valid"):
        sys.exit(f"audit chain not valid: {v}")
    print(v["records"])


def check_active(base, gateway, path, samples=20):
    with open(path) as f:
        tokens = [line.strip() for line in f if line.strip()]
    picks = random.sample(tokens, min(int(samples), len(tokens)))
    bad = 0
    for t in picks:
        v = call(base, "POST", "/oauth/introspect", gateway, form={"token": t})
        if v.get("active") is not True:
            bad += 1
    print(f"{len(picks) - bad}/{len(picks)} sampled tokens active")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    {"seed": seed, "audit-records": audit_records, "check-active": check_active}[cmd](*rest)
