//! Budget (DESIGN.md): "decision for a cached, already-verified token: p99 ≤ 5 µs
//! in-process".
//!
//! Measures the per-call path the gateway runs for a token whose signature was verified
//! once already, in the order `pipeline` runs it, without the audit write (measured by its
//! own benchmarks) and without DPoP (the grants here do not require it):
//!
//!   verified_claims (cache hit: SHA-256 of the token + map lookup) → judge (claims to facts,
//!   grant / API / partner / revoked-jti lookups in the live view) → routing::normalise →
//!   Live::api_by_name → compiled router `find` → decision::decide_call
//!
//! Two live views: one grant (one cached token), and 10,000 grants over 100 partners and 10
//! APIs with a cached token for each. Against the large view the same call is timed with one
//! token (the maps' size alone), cycling through 100 tokens, and cycling through all 10,000
//! (every call's token, claims and grant cold in the CPU cache: the memory working set, not
//! the lookups, is what grows there).
//!
//! Criterion reports mean and median; the budget is a p99, so before criterion runs, a
//! plain loop times 100,000 individual calls (`Instant` around each, after a warm-up pass
//! over the same sequence) and prints p50/p90/p99/p99.9/max, next to the cost of the timer
//! itself. Each call's token and path are first copied (untimed) into a request buffer, as
//! a gateway holds the header it has just read; one extra line reads them straight from
//! the fixture, cold, as the worst case. (Criterion's `hot_path` figures read them from the
//! fixture.)
//!
//! `cargo bench -p charter-gateway --bench decision`. Run without `--bench` (as
//! `cargo test --all-targets` does) it builds small views and runs every path once.

// Setup failures abort the benchmark on purpose: there is no caller to report them to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use charter_auth::SigningKey;
use charter_auth::token::{self, AccessClaims};
use charter_core::decision::{self, CallContext, Expectations, Reason};
use charter_core::{ApiId, Environment, GrantId, Method, PartnerId, PrincipalId};
use charter_gateway::live::Live;
use charter_gateway::routing;
use charter_gateway::tokens::{self, LEEWAY_SECONDS, VerifiedTokens};
use charter_store::{Doc, Kind};
use criterion::Criterion;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const ISSUER: &str = "https://charter.example.com";
/// The injected clock's reading for every call (the bench never reads the wall clock).
const NOW: &str = "2026-12-02T10:00:00Z";
const SCOPES: &str = "orders:read orders:list orders:write lines:read customers:read";
const EPOCH_MS: u64 = 1_790_000_000_000;

fn random_bytes(n: usize, salt: u8) -> [u8; 10] {
    let mut r = [salt; 10];
    r[..8].copy_from_slice(&(n as u64).to_be_bytes());
    r
}

fn doc(kind: Kind, id: &str, name: Option<&str>, lookup: Option<&str>, body: &Value) -> Doc {
    Doc {
        kind,
        id: id.to_owned(),
        name: name.map(str::to_owned),
        lookup: lookup.map(str::to_owned),
        parent: None,
        status: body
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
        body: body.to_string(),
        version: 1,
    }
}

fn api_name(i: usize) -> String {
    if i == 0 {
        "orders".to_owned()
    } else {
        format!("orders{i}")
    }
}

/// The live view, the verified-token cache (warm) and, per grant, a token and the raw
/// gateway path of an allowed call.
struct Fixture {
    live: Live,
    cache: VerifiedTokens,
    calls: Vec<(String, String)>,
    environment: Environment,
    now: Timestamp,
}

fn fixture(grants: usize, partners: usize, apis: usize) -> Fixture {
    let now: Timestamp = NOW.parse().unwrap();
    let ts = |t: Timestamp| t.to_string();
    let live = Live::default();
    let owner = PrincipalId::generate(EPOCH_MS, [9; 10]);

    let api_ids: Vec<ApiId> = (0..apis)
        .map(|i| ApiId::generate(EPOCH_MS, random_bytes(i, 1)))
        .collect();
    for (i, id) in api_ids.iter().enumerate() {
        let name = api_name(i);
        let audience = format!("https://api.example.com/{name}");
        let op = |scope: &str, method: &str, path: &str, class: &str| json!({ "scope": scope, "method": method, "path": path, "data_class": class, "region": "eu" });
        let body = json!({
            "id": id, "name": name, "audience": audience, "upstream": "http://127.0.0.1:9",
            "owner": owner, "revision": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "operations": [
                op("orders:read", "GET", "/orders/{id}", "confidential"),
                op("orders:list", "GET", "/orders", "internal"),
                op("orders:write", "POST", "/orders", "confidential"),
                op("orders:write", "PUT", "/orders/{id}", "confidential"),
                op("lines:read", "GET", "/orders/{id}/lines", "confidential"),
                op("lines:read", "GET", "/orders/{id}/lines/{line}", "confidential"),
                op("customers:read", "GET", "/customers/{id}", "confidential"),
                op("customers:read", "GET", "/customers/{id}/orders", "confidential"),
                op("orders:export", "GET", "/export", "restricted"),
            ],
        });
        live.apply(&doc(
            Kind::Api,
            id.as_str(),
            Some(&name),
            Some(&audience),
            &body,
        ));
    }

    let partner_ids: Vec<PartnerId> = (0..partners)
        .map(|i| PartnerId::generate(EPOCH_MS, random_bytes(i, 2)))
        .collect();
    for (i, id) in partner_ids.iter().enumerate() {
        let name = format!("Partner {i}");
        let body = json!({
            "id": id, "name": name, "kind": "direct", "regions": ["eu"], "owners": [owner],
            "status": "active",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        });
        live.apply(&doc(Kind::Partner, id.as_str(), Some(&name), None, &body));
    }

    let key = SigningKey::generate("k1".into()).unwrap();
    let key_body = json!({ "kid": key.kid(), "status": "active", "public_jwk": key.public_jwk() });
    live.apply(&doc(Kind::SigningKey, key.kid(), None, None, &key_body));
    assert_eq!(live.keyset().len(), 1, "the signing key is published");

    let cache = VerifiedTokens::default();
    let mut calls = Vec::with_capacity(grants);
    for g in 0..grants {
        let id = GrantId::generate(EPOCH_MS + g as u64, random_bytes(g, 3));
        let api = g % apis;
        let body = json!({
            "id": id, "partner": partner_ids[g % partners], "api": api_ids[api],
            "use_case": "order sync",
            "scopes": SCOPES.split(' ').collect::<Vec<_>>(),
            "data_class_ceiling": "confidential",
            "regions": ["eu"], "environments": ["production"],
            "transfer_basis": null, "time_window": null, "require_dpop": false,
            "emergency": null,
            "expires_at": ts(now + SignedDuration::from_hours(24 * 30)),
            "token_ttl_seconds": 600, "recertify_every_days": 90, "approvals_required": 1,
            "status": "active", "status_reason": null,
            "requested_by": owner, "requested_at": "2026-11-01T09:00:00Z",
            "approvals": [], "activated_at": "2026-11-01T10:00:00Z",
            "review_due_at": "2027-01-30T10:00:00Z", "ended_at": null,
            "epoch": 1,
        });
        live.apply(&doc(Kind::Grant, id.as_str(), None, None, &body));

        let client_id = format!("cl_{g:05}");
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            sub: client_id.clone(),
            aud: format!("https://api.example.com/{}", api_name(api)),
            client_id,
            scope: SCOPES.to_owned(),
            jti: token::new_jti(),
            iat: now.as_second() - 60,
            nbf: now.as_second() - 60,
            exp: now.as_second() + 540,
            grant: id.to_string(),
            epoch: 1,
            cnf: None,
        };
        let raw = token::mint(&key, &claims).unwrap();
        let path = format!("/{}/orders/{}", api_name(api), 100_000 + g);
        calls.push((raw, path));
    }

    let fx = Fixture {
        live,
        cache,
        calls,
        environment: Environment::parse("production").unwrap(),
        now,
    };
    // Verify every token once (the signature check the cache then saves), and make sure
    // each benchmarked call is an allowed one: every check runs to the end.
    for (raw, path) in &fx.calls {
        tokens::verified_claims(&fx.live, &fx.cache, raw, fx.now).unwrap();
        assert_eq!(decide(&fx, raw, Method::Get, path), Ok(()), "{path}");
    }
    assert_eq!(fx.cache.len(), grants);
    fx
}

/// The hot path, as `Gateway::decide` runs it up to the audit write.
fn decide(fx: &Fixture, raw: &str, method: Method, path: &str) -> Result<(), Reason> {
    let claims = tokens::verified_claims(&fx.live, &fx.cache, raw, fx.now)?;
    let judged = tokens::judge(&fx.live, claims)?;
    let target = routing::normalise(path).ok();
    let live_api = target.as_ref().and_then(|t| fx.live.api_by_name(&t.api));
    let op = match (&live_api, &target, judged.grant.as_deref()) {
        (Some(a), Some(t), Some(g)) if a.api.id == g.api => a.router.find(&a.api, method, &t.path),
        _ => None,
    };
    let expect = Expectations {
        issuer: ISSUER,
        leeway: LEEWAY_SECONDS,
    };
    let call = CallContext {
        operation: op,
        environment: &fx.environment,
        dpop_valid: None,
    };
    decision::decide_call(&judged.facts, judged.context(), call, &expect, fx.now)
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Where the timed call reads its token and path from.
#[derive(Clone, Copy)]
enum Request {
    /// Copied (untimed) into a request buffer first, as a gateway has the header bytes it
    /// just read in cache.
    Fresh,
    /// Read straight from the fixture: with many tokens, cold in the CPU cache.
    Stored,
}

/// Times `iterations` individual calls, cycling through `calls` (tokens cached in `fx`),
/// and prints the distribution in nanoseconds.
fn distribution(
    label: &str,
    fx: &Fixture,
    calls: &[(String, String)],
    request: Request,
    iterations: usize,
) {
    let (mut raw_buf, mut path_buf) = (String::with_capacity(1024), String::with_capacity(256));
    let mut samples: Vec<u64> = Vec::with_capacity(iterations);
    // The first pass warms caches and branch predictors on the same sequence.
    for pass in 0..2 {
        for i in 0..iterations {
            let (stored_raw, stored_path) = &calls[i % calls.len()];
            let (raw, path): (&str, &str) = match request {
                Request::Stored => (stored_raw, stored_path),
                Request::Fresh => {
                    raw_buf.clear();
                    raw_buf.push_str(stored_raw);
                    path_buf.clear();
                    path_buf.push_str(stored_path);
                    (&raw_buf, &path_buf)
                }
            };
            let start = Instant::now();
            let outcome = decide(fx, black_box(raw), Method::Get, black_box(path));
            let elapsed = start.elapsed();
            black_box(outcome).unwrap();
            if pass == 1 {
                samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            }
        }
    }
    samples.sort_unstable();
    let mean = samples.iter().sum::<u64>() / samples.len() as u64;
    println!(
        "{label:<58} n={iterations} p50={} p90={} p99={} p99.9={} max={} mean={} (ns)",
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
        samples[samples.len() - 1],
        mean,
    );
}

/// What `Instant::now` + `elapsed` alone costs, included in every sample above.
fn timer_overhead(iterations: usize) {
    let mut samples: Vec<u64> = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let elapsed = black_box(start).elapsed();
        samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
    samples.sort_unstable();
    println!(
        "{:<58} n={iterations} p50={} p99={} (ns)",
        "timer overhead (Instant::now + elapsed)",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
    );
}

fn criterion_benches(c: &mut Criterion, small: &Fixture, large: &Fixture) {
    let mut group = c.benchmark_group("cached_decision");
    group.bench_function("hot_path/1_grant", |b| {
        let (raw, path) = &small.calls[0];
        b.iter(|| decide(small, black_box(raw), Method::Get, black_box(path)));
    });
    group.bench_function(
        format!("hot_path/{}_grants_1_token", large.calls.len()),
        |b| {
            let (raw, path) = &large.calls[0];
            b.iter(|| decide(large, black_box(raw), Method::Get, black_box(path)));
        },
    );
    group.bench_function(
        format!("hot_path/{}_grants_cycling", large.calls.len()),
        |b| {
            let mut i = 0usize;
            b.iter(|| {
                let (raw, path) = &large.calls[i % large.calls.len()];
                i = i.wrapping_add(1);
                decide(large, black_box(raw), Method::Get, black_box(path))
            });
        },
    );
    group.finish();

    // The phases on their own (1-grant view), to see where the time goes.
    let (raw, path) = &small.calls[0];
    let claims = tokens::verified_claims(&small.live, &small.cache, raw, small.now).unwrap();
    let judged = tokens::judge(&small.live, claims.clone()).unwrap();
    let target = routing::normalise(path).unwrap();
    let live_api = small.live.api_by_name(&target.api).unwrap();
    let op = live_api
        .router
        .find(&live_api.api, Method::Get, &target.path)
        .unwrap();
    let mut group = c.benchmark_group("phase");
    group.bench_function("verified_claims_cache_hit", |b| {
        b.iter(|| tokens::verified_claims(&small.live, &small.cache, black_box(raw), small.now));
    });
    group.bench_function("judge", |b| {
        b.iter(|| tokens::judge(&small.live, black_box(claims.clone())).is_ok());
    });
    group.bench_function("normalise", |b| {
        b.iter(|| routing::normalise(black_box(path)));
    });
    group.bench_function("api_by_name_and_find", |b| {
        b.iter(|| {
            let a = small.live.api_by_name(black_box(&target.api))?;
            a.router
                .find(&a.api, Method::Get, black_box(&target.path))
                .map(|o| o.data_class)
        });
    });
    group.bench_function("decide_call", |b| {
        let expect = Expectations {
            issuer: ISSUER,
            leeway: LEEWAY_SECONDS,
        };
        b.iter(|| {
            let call = CallContext {
                operation: Some(op),
                environment: &small.environment,
                dpop_valid: None,
            };
            decision::decide_call(
                black_box(&judged.facts),
                judged.context(),
                call,
                &expect,
                small.now,
            )
        });
    });
    group.finish();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (a smoke run).
    let full = std::env::args().any(|a| a == "--bench");
    let (grants, partners, apis, iterations) = if full {
        (10_000, 100, 10, 100_000)
    } else {
        (50, 5, 2, 1_000)
    };

    let setup = Instant::now();
    let small = fixture(1, 1, 1);
    let large = fixture(grants, partners, apis);
    println!(
        "setup: {} grants, {} partners, {} APIs, {} cached tokens in {:?}",
        grants,
        partners,
        apis,
        large.cache.len(),
        setup.elapsed()
    );

    timer_overhead(iterations);
    let fresh = Request::Fresh;
    distribution(
        "1 grant in view, 1 token",
        &small,
        &small.calls,
        fresh,
        iterations,
    );
    // The same single token against the large view: the maps' size alone.
    distribution(
        &format!("{grants} grants in view, 1 token"),
        &large,
        &large.calls[..1],
        fresh,
        iterations,
    );
    // A few hot partners.
    distribution(
        &format!("{grants} grants in view, 100 tokens cycling"),
        &large,
        &large.calls[..100.min(large.calls.len())],
        fresh,
        iterations,
    );
    // Every grant in turn: each call's cache entry, claims and grant are cold.
    distribution(
        &format!("{grants} grants in view, {grants} tokens cycling"),
        &large,
        &large.calls,
        fresh,
        iterations,
    );
    // The same, with the token bytes cold as well (worst case).
    distribution(
        &format!("{grants} grants in view, {grants} tokens cycling, cold"),
        &large,
        &large.calls,
        Request::Stored,
        iterations,
    );
    distribution(
        "1 grant in view, 1 token (again)",
        &small,
        &small.calls,
        fresh,
        iterations,
    );

    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &small, &large);
    c.final_summary();
}
