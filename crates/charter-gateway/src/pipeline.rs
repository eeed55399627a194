//! One call through the gateway, in phases: refuse what is malformed (an unknown method, a
//! path an upstream could read as another, a `_method` query, check mode without the
//! original method: 400/405, counted, not recorded) → authenticate → throttle anonymous and
//! invalid-token calls per client address (429 past the quota, counted and summarised, not
//! recorded one by one) → match → decide → audit the decision (durable) → answer or forward
//! → append the outcome. Recorded fields taken from the caller are bounded in length.

use charter_evidence::action;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use charter_core::Method;
use charter_core::decision::{self, CallContext, Expectations, Reason};
use charter_store::{AuditRecord, Unit};
use serde_json::{Value, json};

use crate::Gateway;
use crate::forwarded::{ClientAddr, set_forwarding_headers};
use crate::live::LiveApi;
use crate::proxy::{header_text, upstream_headers, upstream_uri};
use crate::routing::{Target, normalise};
use crate::throttle::Throttle;
use crate::tokens::{Judged, LEEWAY_SECONDS, judge, verified_claims};

/// Which face of the gateway decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Proxy,
    Check,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Check => "check",
        }
    }
}

/// What is being decided.
pub struct Call<'a> {
    pub method: &'a str,
    /// `/{api}/{path}`, percent-encoded, without query.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// The real client address (the peer, or the client a trusted proxy names).
    pub source: IpAddr,
    /// The listener's bound address (the DPoP `htu` base when no public URL is configured).
    pub local: Option<SocketAddr>,
    pub mode: Mode,
}

/// An allowed call, ready to answer or forward.
pub struct Allowed {
    pub request_id: String,
    pub target: Target,
    pub api: Arc<LiveApi>,
    pub judged: Judged,
    started: Instant,
}

/// A refused call.
pub struct Denied {
    pub request_id: String,
    pub reason: Reason,
    /// Set when the client address is past its quota of anonymous or invalid-token calls:
    /// the call is answered 429 after this many seconds, and not recorded on its own.
    pub throttled: Option<u64>,
}

/// Anonymous and invalid-token calls per client address, and one summary record per
/// throttled address and minute.
pub struct AnonymousThrottle {
    calls: Throttle<IpAddr>,
    summaries: Throttle<IpAddr>,
}

impl AnonymousThrottle {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            calls: Throttle::per_minute(per_minute),
            summaries: Throttle::per_minute(1),
        }
    }
}

/// Methods the gateway knows; anything else is refused before it is recorded.
pub const KNOWN_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// At most `max` bytes of caller-supplied text for a record, cut on a character boundary
/// with a marker saying how long it was.
pub fn bounded(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[truncated from {} bytes]", &s[..end], s.len()))
}

/// Longest path kept in a decision record.
const MAX_RECORDED_PATH: usize = 1024;

/// A malformed call, refused before it is decided or recorded.
fn refused(status: StatusCode, reason: &'static str, description: &str) -> Response {
    metrics::counter!("charter_gateway_refused_total", "reason" => reason).increment(1);
    let error = if status == StatusCode::METHOD_NOT_ALLOWED {
        "method_not_allowed"
    } else {
        "invalid_request"
    };
    let mut resp = (
        status,
        axum::Json(json!({ "error": error, "reason": reason, "error_description": description })),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-charter-reason", HeaderValue::from_static(reason));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(KNOWN_METHODS));
    }
    resp
}

/// The refusal of what would change the operation behind the decision, if any: an unknown
/// method, a path an upstream could read as another, a query that overrides the method.
fn precheck(method: &str, path: &str, query: Option<&str>) -> Option<Response> {
    if Method::parse(method).is_none() {
        return Some(refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "unknown method",
        ));
    }
    if let Err(e) = normalise(path)
        && e.is_refused()
    {
        return Some(refused(
            StatusCode::BAD_REQUEST,
            e.as_str(),
            "this path form is refused (path parameters, control characters, encoded percent signs, trailing dots)",
        ));
    }
    if query.is_some_and(overrides_method) {
        return Some(refused(
            StatusCode::BAD_REQUEST,
            "method_override",
            "a _method query parameter is refused",
        ));
    }
    None
}

/// Whether a query carries a `_method` parameter (names compared decoded, case-insensitively).
fn overrides_method(query: &str) -> bool {
    query.split(['&', ';']).any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        let decoded = percent_decode(name);
        decoded.trim().eq_ignore_ascii_case("_method")
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn new_request_id() -> String {
    let b: [u8; 16] = rand::random();
    hex::encode(b)
}

/// `Authorization: Bearer <t>` or `DPoP <t>`; the scheme tells whether a proof must follow.
fn bearer(headers: &HeaderMap) -> Option<(&str, bool)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((token, false))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((token, true))
    } else {
        None
    }
}

impl Gateway {
    /// Decides a call and makes its decision record durable. Whatever the outcome, the
    /// record is written; if it cannot be, the call is refused as `audit_unavailable`.
    pub async fn decide(&self, call: &Call<'_>) -> Result<Allowed, Denied> {
        let started = Instant::now();
        let request_id = new_request_id();
        let now = self.clock.now();
        let target = normalise(call.path).ok();
        let judged = match bearer(call.headers) {
            None => Err(Reason::TokenMissing),
            Some((token, _)) => verified_claims(&self.live, &self.verified, token, now)
                .and_then(|c| judge(&self.live, c)),
        };
        // A call without a valid token counts against its address; past the quota it is
        // answered 429 and summarised instead of recorded.
        if judged.is_err()
            && let Some(wait) = self.anonymous.calls.fail(&call.source)
        {
            metrics::counter!("charter_gateway_throttled_total").increment(1);
            if self.anonymous.summaries.fail(&call.source).is_none() {
                self.throttle_summary(call);
            }
            return Err(Denied {
                request_id,
                reason: judged
                    .as_ref()
                    .err()
                    .copied()
                    .unwrap_or(Reason::TokenMissing),
                throttled: Some(wait),
            });
        }
        let live_api = target.as_ref().and_then(|t| self.live.api_by_name(&t.api));
        let outcome = match &judged {
            _ if !self.feed.fresh() => Err(Reason::PolicyStale),
            Err(r) => Err(*r),
            Ok(j) => {
                // Only operations of the API the token was issued for can match.
                let op = match (
                    &live_api,
                    &target,
                    Method::parse(call.method),
                    j.grant.as_deref(),
                ) {
                    (Some(a), Some(t), Some(m), Some(g)) if a.api.id == g.api => {
                        a.router.find(&a.api, m, &t.path)
                    }
                    _ => None,
                };
                let dpop_valid = self.check_dpop(call, j, now.as_second());
                let expect = Expectations {
                    issuer: &self.config.issuer,
                    leeway: LEEWAY_SECONDS,
                };
                let ctx = CallContext {
                    operation: op,
                    environment: &self.config.environment,
                    dpop_valid,
                };
                decision::decide_call(&j.facts, j.context(), ctx, &expect, now)
                    .map(|()| op.cloned())
            }
        };
        let record = self.decision_record(
            call,
            &request_id,
            target.as_ref(),
            judged.as_ref().ok(),
            &outcome,
        );
        let durable = self
            .writer
            .submit(Unit {
                ops: vec![],
                audit: vec![record],
            })
            .await;
        let reason = match (&outcome, durable) {
            (_, Err(e)) => {
                tracing::error!(error = %e, "decision record not durable; refusing the call");
                Reason::AuditUnavailable
            }
            (Err(r), Ok(_)) => *r,
            (Ok(_), Ok(_)) => {
                metrics::counter!("charter_gateway_decisions_total", "decision" => "allow", "reason" => "").increment(1);
                let (Ok(judged), Some(target), Some(api)) = (judged, target, live_api) else {
                    return Err(Denied {
                        request_id,
                        reason: Reason::UnknownOperation,
                        throttled: None,
                    });
                };
                return Ok(Allowed {
                    request_id,
                    target,
                    api,
                    judged,
                    started,
                });
            }
        };
        metrics::counter!("charter_gateway_decisions_total", "decision" => "deny", "reason" => reason.as_str()).increment(1);
        Err(Denied {
            request_id,
            reason,
            throttled: None,
        })
    }

    /// One record standing for an address's throttled calls of the coming minute.
    fn throttle_summary(&self, call: &Call<'_>) {
        let record = AuditRecord {
            seq: 0,
            at: self.clock.now().to_string(),
            actor: "anonymous".into(),
            action: action::AUTH_RATE_LIMITED.into(),
            target: String::new(),
            reason: Some("too many calls without a valid token".into()),
            details: json!({ "source": call.source.to_string(), "gateway": self.config.id, "endpoint": "gateway", "mode": call.mode.as_str() }),
            prev: String::new(),
        };
        self.append_detached(record);
    }

    /// `None` when no proof is needed; otherwise whether a valid, unreplayed proof bound to
    /// the token's key came with the call.
    fn check_dpop(&self, call: &Call<'_>, j: &Judged, now: i64) -> Option<bool> {
        let needed = j.facts.jkt.is_some() || j.grant.as_ref().is_some_and(|g| g.require_dpop);
        if !needed {
            return None;
        }
        let (token, dpop_scheme) = bearer(call.headers)?;
        let proof = call.headers.get("dpop").and_then(|v| v.to_str().ok());
        // The URL the client was meant to call: the configured public URL, else the bound
        // address — never the Host header the client wrote.
        let scheme = if self.config.tls { "https" } else { "http" };
        let base = match (&self.config.public_url, call.local) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(local)) => format!("{scheme}://{local}"),
            (None, None) => return Some(false),
        };
        let htu = format!("{base}{}", call.path);
        let ok = dpop_scheme
            && proof.is_some_and(|p| {
                charter_auth::dpop::verify_proof(p, call.method, &htu, now, 300, Some(token))
                    .is_ok_and(|proof| {
                        Some(&proof.jkt) == j.facts.jkt.as_ref()
                            && self
                                .replay
                                .first_use(&format!("dpop:{}", proof.jti), now + 310, now)
                    })
            });
        Some(ok)
    }

    fn decision_record(
        &self,
        call: &Call<'_>,
        request_id: &str,
        target: Option<&Target>,
        judged: Option<&Judged>,
        outcome: &Result<Option<charter_core::Operation>, Reason>,
    ) -> AuditRecord {
        let (decision, reason) = match outcome {
            Ok(_) => ("allow", None),
            Err(r) => ("deny", Some(r.as_str().to_owned())),
        };
        let grant = judged.and_then(|j| j.grant.as_deref());
        let mut details = json!({
            "decision": decision,
            "reason": reason,
            "request_id": request_id,
            "mode": call.mode.as_str(),
            "gateway": self.config.id,
            "method": bounded(call.method, 16),
            "path": target.map(|t| bounded(&format!("/{}{}", t.api, t.path), MAX_RECORDED_PATH).into_owned()),
            "source": call.source.to_string(),
        });
        if let Some(j) = judged {
            details["client_id"] = json!(j.facts.client_id);
            details["jti"] = json!(j.facts.jti);
            if let Some(c) = self.live.credential(&j.facts.client_id) {
                details["credential"] = json!(c.credential.id);
            }
        }
        if let Some(g) = grant {
            details["partner"] = json!(g.partner);
            details["grant"] = json!(g.id);
            details["use_case"] = json!(g.use_case);
            details["api"] = json!(g.api);
            details["approvals"] =
                Value::Array(g.approvals.iter().map(|a| json!(a.approver)).collect());
            if let Some(e) = &g.emergency {
                details["emergency"] = json!(e.incident);
            }
        }
        if let Ok(Some(op)) = outcome {
            details["operation"] = json!({ "scope": op.scope, "method": op.method, "path": op.path, "data_class": op.data_class, "region": op.region });
        }
        AuditRecord {
            seq: 0,
            at: self.clock.now().to_string(),
            actor: judged
                .map(|j| j.facts.client_id.clone())
                .unwrap_or_else(|| "anonymous".into()),
            action: action::ACCESS_DECISION.into(),
            target: grant.map(|g| g.id.to_string()).unwrap_or_default(),
            reason,
            details,
            prev: String::new(),
        }
    }

    /// Appends the outcome record of an allowed call, without holding the response.
    fn outcome(&self, allowed: &Allowed, status: u16) {
        let latency_us = u64::try_from(allowed.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        metrics::histogram!("charter_gateway_latency_seconds")
            .record(allowed.started.elapsed().as_secs_f64());
        let grant = allowed.judged.grant.as_deref();
        let record = AuditRecord {
            seq: 0,
            at: self.clock.now().to_string(),
            actor: allowed.judged.facts.client_id.clone(),
            action: action::ACCESS_OUTCOME.into(),
            target: grant.map(|g| g.id.to_string()).unwrap_or_default(),
            reason: None,
            details: json!({ "request_id": allowed.request_id, "status": status, "latency_us": latency_us, "gateway": self.config.id }),
            prev: String::new(),
        };
        self.append_detached(record);
    }

    /// Queues a record without waiting; only when the queue is full does a task wait for room.
    fn append_detached(&self, record: AuditRecord) {
        let unit = match charter_store::prepare(Unit {
            ops: vec![],
            audit: vec![record],
        }) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "outcome record cannot be encoded");
                return;
            }
        };
        if let Err(unit) = self.writer.try_submit_detached(unit) {
            let writer = self.writer.clone();
            tokio::spawn(async move {
                if let Err(e) = writer.submit_detached(unit).await {
                    tracing::error!(error = %e, "outcome record lost");
                }
            });
        }
    }

    fn identity_headers(&self, allowed: &Allowed, h: &mut HeaderMap) {
        if let Some(g) = allowed.judged.grant.as_deref() {
            h.insert("x-charter-partner", header_text(g.partner.as_str()));
            h.insert("x-charter-grant", header_text(g.id.as_str()));
            h.insert("x-charter-use-case", header_text(g.use_case.as_str()));
        }
        h.insert(
            "x-charter-client-id",
            header_text(&allowed.judged.facts.client_id),
        );
        h.insert("x-request-id", header_text(&allowed.request_id));
    }
}

fn local(req: &Request) -> Option<SocketAddr> {
    req.extensions().get::<ClientAddr>().map(|c| c.local)
}

/// The refusal answer: 401 (token-level, with `WWW-Authenticate`), 403 (policy) or 503
/// (audit unavailable), `{error, reason}` and `X-Charter-Reason`.
pub fn denied(d: &Denied) -> Response {
    if let Some(wait) = d.throttled {
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "error": "rate_limited", "reason": "rate_limited" })),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert("x-charter-reason", HeaderValue::from_static("rate_limited"));
        h.insert(header::RETRY_AFTER, HeaderValue::from(wait));
        h.insert("x-request-id", header_text(&d.request_id));
        return resp;
    }
    let (status, error) = if matches!(d.reason, Reason::AuditUnavailable | Reason::PolicyStale) {
        (StatusCode::SERVICE_UNAVAILABLE, d.reason.as_str())
    } else if d.reason.is_token_level() {
        (StatusCode::UNAUTHORIZED, "invalid_token")
    } else {
        (StatusCode::FORBIDDEN, "access_denied")
    };
    let mut resp = (
        status,
        axum::Json(json!({ "error": error, "reason": d.reason.as_str() })),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        "x-charter-reason",
        HeaderValue::from_static(d.reason.as_str()),
    );
    h.insert("x-request-id", header_text(&d.request_id));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    resp
}

/// Check mode: nginx `auth_request` (`X-Original-Method` and `X-Original-URI`, both required)
/// or Envoy ext_authz HTTP (the original method, and the path under `/v1/authz/check`).
pub async fn check(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let ip = ClientAddr::of(req.extensions());
    let local = local(&req);
    let headers = req.headers();
    let (method, uri) = match headers.get("x-original-uri") {
        Some(uri) => {
            let Some(uri) = uri.to_str().ok() else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "original_uri_invalid",
                    "X-Original-URI is not visible ASCII",
                );
            };
            // Deciding without the method would decide some other call (GET).
            let Some(method) = headers
                .get("x-original-method")
                .and_then(|v| v.to_str().ok())
            else {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "original_method_missing",
                    "X-Original-URI needs X-Original-Method",
                );
            };
            (method.to_owned(), uri.to_owned())
        }
        None => {
            let full = req.uri().path();
            let rest = full.strip_prefix("/v1/authz/check").unwrap_or("");
            (
                req.method().as_str().to_owned(),
                if rest.is_empty() {
                    "/".to_owned()
                } else {
                    rest.to_owned()
                },
            )
        }
    };
    let without_fragment = uri.split('#').next().unwrap_or("/");
    let (path, query) = match without_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (without_fragment, req.uri().query()),
    };
    if let Some(resp) = precheck(&method, path, query) {
        return resp;
    }
    let call = Call {
        method: &method,
        path,
        headers,
        source: ip,
        local,
        mode: Mode::Check,
    };
    match gw.decide(&call).await {
        Err(d) => denied(&d),
        Ok(allowed) => {
            let mut resp = StatusCode::OK.into_response();
            gw.identity_headers(&allowed, resp.headers_mut());
            gw.outcome(&allowed, 200);
            resp
        }
    }
}

/// Proxy mode: `/{api}/{operation path}` to the API's upstream.
pub async fn proxy(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let addr = req.extensions().get::<ClientAddr>().copied();
    let ip = ClientAddr::of(req.extensions());
    let local = local(&req);
    let (parts, body) = req.into_parts();
    if let Some(resp) = precheck(parts.method.as_str(), parts.uri.path(), parts.uri.query()) {
        return resp;
    }
    let call = Call {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        headers: &parts.headers,
        source: ip,
        local,
        mode: Mode::Proxy,
    };
    let allowed = match gw.decide(&call).await {
        Ok(a) => a,
        Err(d) => return denied(&d),
    };
    let Some(uri) = upstream_uri(
        allowed.api.api.upstream.as_str(),
        &allowed.target.path,
        parts.uri.query(),
    ) else {
        gw.outcome(&allowed, 502);
        return (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({ "error": "bad_gateway", "reason": "upstream_unavailable" })),
        )
            .into_response();
    };
    let mut headers = upstream_headers(&parts.headers);
    let addr = addr.unwrap_or(ClientAddr {
        client: ip,
        peer: ip,
        peer_trusted: false,
        local: local.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
    });
    let proto = if gw.config.tls { "https" } else { "http" };
    set_forwarding_headers(&mut headers, &parts.headers, &addr, proto);
    gw.identity_headers(&allowed, &mut headers);
    let mut upstream_req = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(uri);
    if let Some(h) = upstream_req.headers_mut() {
        *h = headers;
    }
    let upstream_req = match upstream_req.body(Body::new(body)) {
        Ok(r) => r,
        Err(_) => {
            gw.outcome(&allowed, 502);
            return StatusCode::BAD_GATEWAY.into_response();
        }
    };
    match gw
        .upstream
        .send(upstream_req, gw.config.upstream_timeout)
        .await
    {
        Ok(mut resp) => {
            gw.outcome(&allowed, resp.status().as_u16());
            if let Ok(v) = HeaderValue::from_str(&allowed.request_id) {
                resp.headers_mut().insert("x-request-id", v);
            }
            resp
        }
        Err((status, reason)) => {
            gw.outcome(&allowed, status.as_u16());
            let error = if status == StatusCode::GATEWAY_TIMEOUT {
                "gateway_timeout"
            } else {
                "bad_gateway"
            };
            (
                status,
                axum::Json(json!({ "error": error, "reason": reason })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The reason table of `docs/api.md`: reason → the status it gives.
    fn documented() -> HashMap<String, u16> {
        let doc = include_str!("../../../docs/api.md");
        let section = doc
            .split("\n## Reason codes\n")
            .nth(1)
            .expect("docs/api.md has a \"Reason codes\" section");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let reason = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((reason.to_owned(), cells.get(2)?.parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn every_reason_is_answered_as_docs_api_md_says() {
        let doc = documented();
        for reason in Reason::ALL {
            let resp = denied(&Denied {
                request_id: "r1".into(),
                reason,
                throttled: None,
            });
            assert_eq!(
                doc.get(reason.as_str()).copied(),
                Some(resp.status().as_u16()),
                "{reason}: docs/api.md and the gateway disagree"
            );
            assert_eq!(
                resp.headers()
                    .get("x-charter-reason")
                    .and_then(|v| v.to_str().ok()),
                Some(reason.as_str())
            );
            assert_eq!(
                resp.headers().contains_key(header::WWW_AUTHENTICATE),
                resp.status() == StatusCode::UNAUTHORIZED,
                "{reason}"
            );
        }
        assert_eq!(
            doc.len(),
            Reason::ALL.len(),
            "docs/api.md lists a reason the gateway does not know: {doc:?}"
        );
    }
}
