//! The OAuth 2.0 endpoints partner workloads and gateways use: RFC 8414 metadata, JWKS, the
//! token endpoint (client credentials; `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt`; optional DPoP), RFC 7662 introspection and RFC 7009 revocation.
//! Errors use RFC 6749 §5.2 codes. Every issuance and every refusal is audited (never a
//! secret); failed client authentication is throttled per client id and per client address,
//! which slows a guesser down but never refuses a correct credential (see `limits`).

use charter_evidence::action;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use charter_auth::jwk::CLIENT_SIGNING_ALGS;
use charter_core::Role;
use charter_store::CredentialRecord;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::limits::Limits;
use crate::services::issuance::{
    ClientAuth, ClientRefusal, IssueError, IssueRefusal, TokenRequest,
};
use crate::state::{AppState, Shared};

pub use crate::services::issuance::{INTROSPECT_PATH, REVOKE_PATH, REVOKED_CLIENT, TOKEN_PATH};
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// `WWW-Authenticate` for a failed HTTP Basic client authentication.
    basic_challenge: bool,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }
    fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    /// A body over [`MAX_FORM_BODY`]: 413, still in RFC 6749's JSON error shape.
    fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request body is larger than 64 KiB",
        )
    }
    fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            )
        }
    }
    /// A revoked credential, refused before any secret or assertion was looked at. The
    /// description is the observable signal an offboarding probe checks (it names no secret
    /// and nothing the caller did not send).
    fn revoked_client(basic: bool) -> Self {
        Self {
            description: REVOKED_CLIENT.into(),
            ..Self::invalid_client(basic)
        }
    }
    fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }
    fn server(d: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            d,
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(json!({ "error": self.code, "error_description": self.description })),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"charter\""),
            );
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

fn form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        OAuthError::invalid_request("the body must be application/x-www-form-urlencoded")
    })?;
    let mut out = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if out.insert(k.clone(), v).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k} is repeated"
            )));
        }
    }
    Ok(out)
}

fn form_content_type(headers: &HeaderMap) -> Result<(), OAuthError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if ok {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "expected Content-Type: application/x-www-form-urlencoded",
        ))
    }
}

/// Percent-decoding of `application/x-www-form-urlencoded` (RFC 6749 §2.3.1 for Basic).
fn form_decode(s: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
}

fn client_auth(
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<ClientAuth, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| rest.trim().to_owned())
        });
    let post = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let methods = usize::from(basic.is_some())
        + usize::from(post.is_some())
        + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request(
            "use exactly one client authentication method",
        ));
    }
    if let Some(b64) = basic {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        let (id, secret) = raw
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client(true))?;
        let client_id = form_decode(id).ok_or_else(|| OAuthError::invalid_client(true))?;
        let secret = form_decode(secret).ok_or_else(|| OAuthError::invalid_client(true))?;
        if params.get("client_id").is_some_and(|c| c != &client_id) {
            return Err(OAuthError::invalid_request(
                "client_id differs from the authenticated client",
            ));
        }
        return Ok(ClientAuth::Secret {
            client_id,
            secret,
            basic: true,
        });
    }
    if let Some(secret) = post {
        let client_id = params.get("client_id").cloned().ok_or_else(|| {
            OAuthError::invalid_request("client_id is required with client_secret")
        })?;
        return Ok(ClientAuth::Secret {
            client_id,
            secret: secret.clone(),
            basic: false,
        });
    }
    if let Some(assertion) = assertion {
        if params.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(format!(
                "client_assertion_type must be {CLIENT_ASSERTION_TYPE}"
            )));
        }
        // The claimed client: `client_id` if sent (RFC 7521 §4.2: optional), else the
        // assertion's unverified `sub` — so that refusals are attributed and counted against
        // that client, as they are for secrets.
        return Ok(ClientAuth::Assertion {
            client_id: params
                .get("client_id")
                .cloned()
                .or_else(|| unverified_subject(assertion)),
            assertion: assertion.clone(),
        });
    }
    Err(OAuthError::invalid_client(false))
}

/// The `sub` of an unverified JWT, to find whose key verifies it.
fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

/// The real client address (the TCP peer, or the client a trusted proxy names).
fn source(req: &axum::extract::Request) -> IpAddr {
    charter_gateway::forwarded::ClientAddr::of(req.extensions())
}

/// Splits a request into its headers, source address and (bounded) body.
async fn read(
    req: axum::extract::Request,
) -> Result<(HeaderMap, IpAddr, axum::body::Bytes), OAuthError> {
    let ip = source(&req);
    let (parts, body) = req.into_parts();
    let bytes = read_body(body).await?;
    Ok((parts.headers, ip, bytes))
}

/// Longest form body the OAuth endpoints read.
const MAX_FORM_BODY: usize = 64 * 1024;

/// A form body of at most [`MAX_FORM_BODY`]; longer is 413 (JSON, like every error).
async fn read_body(body: axum::body::Body) -> Result<axum::body::Bytes, OAuthError> {
    axum::body::to_bytes(body, MAX_FORM_BODY)
        .await
        .map_err(|_| OAuthError::too_large())
}

/// Counts a failed client authentication against the address and the claimed client id:
/// `Some(seconds)` once either is past its quota (the caller is slowed down).
fn count_failure(limits: &Limits, client_id: Option<&str>, ip: IpAddr) -> Option<u64> {
    let by_address = limits.oauth_addresses.fail(&ip);
    let by_client = client_id.and_then(|c| limits.oauth_clients.fail(&c.to_owned()));
    by_address.into_iter().chain(by_client).max()
}

fn slow_down(wait: u64) -> OAuthError {
    OAuthError {
        retry_after: Some(wait),
        ..OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many failed client authentications",
        )
    }
}

pub async fn token(State(state): State<Shared>, req: axum::extract::Request) -> Response {
    let (headers, ip, body) = match read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match issue(&state, ip, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The shared front of the token and revocation endpoints: a form body, exactly one client
/// authentication method, the failure limits, and the client's credential — or an audited,
/// counted `invalid_client`.
async fn authenticated_client(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(HashMap<String, String>, Arc<CredentialRecord>), OAuthError> {
    form_content_type(headers)?;
    let params = form(body)?;
    let auth = client_auth(headers, &params)?;
    // A claimed id is the caller's text: bounded before it is counted or recorded.
    let claimed = auth
        .claimed_id()
        .map(|c| charter_gateway::pipeline::bounded(c, 256).into_owned());
    let tokens = state.tokens();
    let refusal = match tokens.authenticate(&auth) {
        Ok(cred) => return Ok((params, cred)),
        Err(refusal) => refusal,
    };
    let known = claimed
        .as_deref()
        .and_then(|c| state.repo.live.credential(c));
    let throttled = if refusal.is_failure() {
        metrics::counter!("charter_client_auth_failures_total", "client" => if known.is_some() { "known" } else { "unknown" }).increment(1);
        count_failure(&state.limits, claimed.as_deref(), ip)
    } else {
        None
    };
    // Within the quotas every refusal is audited; past them, one summary a minute per client
    // id (or address) stands for the rest.
    match throttled {
        None => {
            tokens
                .audit_refusal(
                    claimed.as_deref(),
                    Some(ip),
                    refusal.as_str(),
                    known.as_deref(),
                )
                .await
        }
        Some(_) => {
            metrics::counter!("charter_auth_failures_throttled_total", "endpoint" => "oauth")
                .increment(1);
            let key = format!("oauth:{}", claimed.as_deref().unwrap_or(&ip.to_string()));
            if state.limits.summary_due(key) {
                tokens
                    .audit_refusal(
                        claimed.as_deref(),
                        Some(ip),
                        "rate_limited",
                        known.as_deref(),
                    )
                    .await;
            }
        }
    }
    if let Some(wait) = throttled {
        return Err(slow_down(wait));
    }
    if refusal.is_failure() {
        if refusal == ClientRefusal::CredentialRevoked {
            return Err(OAuthError::revoked_client(auth.basic()));
        }
        return Err(OAuthError::invalid_client(auth.basic()));
    }
    // The assertion was good; it just cannot be remembered yet. Refusing it is the fail-closed
    // choice (forgetting another would reopen a replay window).
    let retry_after = state.assertions.retry_after(state.now().as_second());
    Err(OAuthError {
        retry_after: Some(retry_after),
        ..if refusal == ClientRefusal::ReplayShareUsed {
            OAuthError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many client assertions in use; reuse tokens until they expire",
            )
        } else {
            OAuthError::server("too many client assertions in use; retry later")
        }
    })
}

/// An issuance refusal as RFC 6749 §5.2 (and RFC 8707, RFC 9449) describe it.
fn refusal_error(refusal: &IssueRefusal) -> OAuthError {
    let bad = |code, d: String| OAuthError::new(StatusCode::BAD_REQUEST, code, d);
    match refusal {
        IssueRefusal::GrantTypeMissing => OAuthError::invalid_request("grant_type is required"),
        IssueRefusal::UnsupportedGrantType => bad(
            "unsupported_grant_type",
            "only client_credentials is supported".into(),
        ),
        IssueRefusal::Grant(reason) => {
            OAuthError::unauthorized_client(format!("no token can be issued: {}", reason.as_str()))
        }
        IssueRefusal::ApiGone => OAuthError::unauthorized_client("the grant's API is gone"),
        IssueRefusal::InvalidTarget(key) => {
            bad("invalid_target", format!("{key} is not this client's API"))
        }
        IssueRefusal::InvalidScope { empty: true } => bad("invalid_scope", "scope is empty".into()),
        IssueRefusal::InvalidScope { empty: false } => {
            bad("invalid_scope", "scope is not within the grant".into())
        }
        IssueRefusal::DpopInvalid { missing: true } => bad(
            "invalid_dpop_proof",
            "this grant requires a DPoP proof".into(),
        ),
        IssueRefusal::DpopInvalid { missing: false } => bad(
            "invalid_dpop_proof",
            "the DPoP proof is invalid or replayed".into(),
        ),
    }
}

async fn issue(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let (params, cred) = authenticated_client(state, ip, headers, body).await?;
    let param = |k: &str| params.get(k).map(String::as_str);
    let request = TokenRequest {
        grant_type: param("grant_type"),
        resource: param("resource"),
        audience: param("audience"),
        scope: param("scope"),
        dpop: headers.get("dpop").map(|v| v.to_str().unwrap_or("")),
        source: Some(ip),
    };
    let issued = match state.tokens().issue(&cred, request).await {
        Ok(t) => t,
        Err(IssueError::Refused(r)) => return Err(refusal_error(&r)),
        Err(IssueError::Unavailable(why)) => return Err(OAuthError::server(why)),
    };
    let body = json!({
        "access_token": issued.access_token,
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    });
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// RFC 7662. Callers authenticate as a principal with role `gateway`.
pub async fn introspect(
    State(state): State<Shared>,
    caller: Caller,
    req: axum::extract::Request,
) -> Response {
    if let Err(e) = caller.require(&[Role::Gateway]) {
        return e.into_response();
    }
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let params = match form_content_type(&headers).and_then(|()| form(&body)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(token) = params.get("token") else {
        return OAuthError::invalid_request("token is required").into_response();
    };
    metrics::counter!("charter_introspections_total").increment(1);
    let reply = match state.tokens().check_raw_token(token) {
        Ok(judged) => {
            let c = judged.claims.clone();
            let grant = judged.grant.as_deref();
            let mut v = json!({
                "active": true,
                "scope": c.scope,
                "client_id": c.client_id,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "exp": c.exp,
                "iat": c.iat,
                "nbf": c.nbf,
                "jti": c.jti,
                "token_type": if c.cnf.is_some() { "DPoP" } else { "Bearer" },
                "partner": grant.map(|g| g.partner.to_string()),
                "grant": c.grant,
                "use_case": grant.map(|g| g.use_case.to_string()),
            });
            if let Some(cnf) = &c.cnf {
                v["cnf"] = json!({ "jkt": cnf.jkt });
            }
            v
        }
        Err(_) => json!({ "active": false }),
    };
    let mut resp = Json(reply).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// RFC 7009: the client that holds a token revokes it (its `jti`). Unknown or invalid
/// tokens are answered 200, as the RFC asks.
pub async fn revoke(State(state): State<Shared>, req: axum::extract::Request) -> Response {
    let (headers, ip, body) = match read(req).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match revoke_inner(&state, ip, &headers, &body).await {
        Ok(()) => {
            let mut resp = StatusCode::OK.into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), OAuthError> {
    let (params, cred) = authenticated_client(state, ip, headers, body).await?;
    let Some(token) = params.get("token") else {
        return Err(OAuthError::invalid_request("token is required"));
    };
    let Ok(claims) = state.tokens().verified_claims(token) else {
        return Ok(());
    };
    if claims.client_id != cred.credential.client_id {
        return Err(OAuthError::unauthorized_client(
            "the token was not issued to this client",
        ));
    }
    if state.repo.live.is_revoked(&claims.jti) || claims.exp <= state.now().as_second() {
        return Ok(());
    }
    let doc = charter_gateway::live::RevokedToken {
        id: format!("jti_{}", claims.jti),
        jti: claims.jti.clone(),
        exp: claims.exp,
    };
    let rec = state.repo.record(
        &cred.credential.client_id,
        action::TOKEN_REVOKE,
        &claims.grant,
        Some("revoked by the client (RFC 7009)".into()),
        json!({ "jti": claims.jti, "client_id": claims.client_id, "grant": claims.grant, "partner": cred.credential.partner }),
    );
    state
        .repo
        .write(charter_store::Unit {
            ops: vec![charter_store::Op::Insert(
                charter_store::Versioned::new_doc(&doc, None),
            )],
            audit: vec![rec],
        })
        .await
        .map_err(|_| OAuthError::server("the revocation could not be recorded"))?;
    Ok(())
}

pub async fn jwks(State(state): State<Shared>) -> Response {
    let mut resp = Json(state.repo.live.keyset().jwks()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    resp
}

pub async fn metadata(State(state): State<Shared>) -> Json<Value> {
    let iss = &state.settings.issuer;
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    Json(json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}{TOKEN_PATH}"),
        "jwks_uri": format!("{iss}{JWKS_PATH}"),
        "introspection_endpoint": format!("{iss}{INTROSPECT_PATH}"),
        "revocation_endpoint": format!("{iss}{REVOKE_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
        // Gateways introspect with a principal's bearer token; no signed JWT authenticates
        // there, so no introspection signing algorithms are listed (RFC 8414 §2 ties that
        // member to private_key_jwt / client_secret_jwt).
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "dpop_signing_alg_values_supported": CLIENT_SIGNING_ALGS,
    }))
}
