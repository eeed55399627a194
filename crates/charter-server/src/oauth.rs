//! The OAuth 2.0 endpoints partner workloads and gateways use: RFC 8414 metadata, JWKS, the
//! token endpoint (client credentials; `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt`; optional DPoP), RFC 7662 introspection and RFC 7009 revocation.
//! Errors use RFC 6749 §5.2 codes. Every issuance and every refusal is audited (never a
//! secret); failed client authentication is rate-limited per client id and per address.

use charter_evidence::action;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use charter_auth::jwk::{CLIENT_SIGNING_ALGS, PublicJwk};
use charter_auth::token::{AccessClaims, Cnf};
use charter_core::decision::Reason;
use charter_core::{Api, Grant, Partner, PartnerStatus, Role, Scope};
use charter_gateway::FirstUse;
use charter_store::CredentialRecord;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::limits::Limits;
use crate::state::{AppState, Shared};

pub const TOKEN_PATH: &str = "/oauth/token";
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
pub const REVOKE_PATH: &str = "/oauth/revoke";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const DPOP_MAX_AGE_SECONDS: i64 = 300;

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

/// Refusal reasons of [`authenticate`] that say nothing against the credential: the replay
/// cache could not remember one more assertion. Not counted as failures; answered 503 (the
/// cache is full) or 429 (this client holds its whole share) with `Retry-After`.
const REPLAY_CACHE_FULL: &str = "assertion_replay_cache_full";
const REPLAY_SHARE_USED: &str = "assertion_replay_share_used";

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

/// How the client said who it is.
pub(crate) enum ClientAuth {
    Secret {
        client_id: String,
        secret: String,
        basic: bool,
    },
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
}

impl ClientAuth {
    fn claimed_id(&self) -> Option<&str> {
        match self {
            Self::Secret { client_id, .. } => Some(client_id),
            Self::Assertion { client_id, .. } => client_id.as_deref(),
        }
    }
    fn basic(&self) -> bool {
        matches!(self, Self::Secret { basic: true, .. })
    }
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

fn source(req: &axum::extract::Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// Splits a request into its headers, source address and (bounded) body.
async fn read(
    req: axum::extract::Request,
) -> Result<(HeaderMap, IpAddr, axum::body::Bytes), OAuthError> {
    let ip = source(&req);
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| OAuthError::invalid_request("the request body is too large"))?;
    Ok((parts.headers, ip, bytes))
}

/// Authenticates the client against its credential. A revoked or expired credential is
/// refused before any secret is compared.
pub(crate) fn authenticate(
    state: &AppState,
    auth: &ClientAuth,
    token_endpoint: &str,
) -> Result<Arc<CredentialRecord>, &'static str> {
    let now = state.now();
    let client_id = match auth {
        ClientAuth::Secret { client_id, .. } => client_id.clone(),
        ClientAuth::Assertion { client_id, .. } => match client_id {
            Some(c) => c.clone(),
            None => return Err("client_unknown"),
        },
    };
    let Some(cred) = state.repo.live.credential(&client_id) else {
        return Err("client_unknown");
    };
    match cred.credential.usable(now) {
        Ok(()) => {}
        Err(charter_core::credential::Unusable::Revoked) => return Err("credential_revoked"),
        Err(charter_core::credential::Unusable::Expired) => return Err("credential_expired"),
    }
    match auth {
        ClientAuth::Secret { secret, .. } => {
            let ok = cred
                .live_verifiers(now)
                .filter_map(|v| v.secret_hash.as_deref())
                .fold(false, |found, h| {
                    state.keys.secrets.verify(secret, h) | found
                });
            if ok { Ok(cred) } else { Err("secret_mismatch") }
        }
        ClientAuth::Assertion { assertion, .. } => {
            // Any of this server's own identifiers: the issuer, the token endpoint, and the
            // revocation endpoint (clients name the endpoint they call).
            let revocation_endpoint = format!("{}{REVOKE_PATH}", state.settings.issuer);
            let audiences = [
                state.settings.issuer.as_str(),
                token_endpoint,
                revocation_endpoint.as_str(),
            ];
            let verified = cred.live_verifiers(now).find_map(|v| {
                let jwk = serde_json::from_str::<Value>(v.public_jwk.as_deref()?).ok()?;
                let jwk = PublicJwk::parse(&jwk).ok()?;
                charter_auth::assertion::verify_client_assertion(
                    assertion,
                    &client_id,
                    &jwk,
                    &audiences,
                    now.as_second(),
                )
                .ok()
            });
            let Some(claims) = verified else {
                return Err("assertion_invalid");
            };
            // Remembered for as long as the assertion would verify again: until `exp` plus
            // the leeway, not just until `exp`.
            match state.assertions.check(
                &client_id,
                &claims.jti,
                claims.accepted_until(),
                now.as_second(),
            ) {
                FirstUse::First => Ok(cred),
                FirstUse::Replayed => Err("assertion_replayed"),
                FirstUse::Full => Err(REPLAY_CACHE_FULL),
                FirstUse::OwnerFull => Err(REPLAY_SHARE_USED),
            }
        }
    }
}

async fn audit_refusal(
    state: &AppState,
    client_id: Option<&str>,
    ip: IpAddr,
    reason: &str,
    cred: Option<&CredentialRecord>,
) {
    let mut details = json!({ "client_id": client_id, "source": ip.to_string() });
    if let Some(c) = cred {
        details["partner"] = json!(c.credential.partner);
        details["grant"] = json!(c.credential.grant);
        details["credential"] = json!(c.credential.id);
    }
    let target = cred
        .map(|c| c.credential.grant.to_string())
        .unwrap_or_default();
    let rec = state.repo.record(
        client_id.unwrap_or("anonymous"),
        action::TOKEN_REFUSED,
        &target,
        Some(reason.to_owned()),
        details,
    );
    if let Err(e) = state
        .repo
        .write(charter_store::Unit {
            ops: vec![],
            audit: vec![rec],
        })
        .await
    {
        tracing::warn!(error = %e, "could not audit a refused token request");
    }
}

fn rate_limited(limits: &Limits, client_id: Option<&str>, ip: IpAddr) -> Option<OAuthError> {
    let wait = limits
        .oauth_addresses
        .blocked(ip)
        .or_else(|| client_id.and_then(|c| limits.oauth_clients.blocked(c.to_owned())))?;
    Some(OAuthError {
        retry_after: Some(wait),
        ..OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many failed client authentications",
        )
    })
}

fn count_failure(limits: &Limits, client_id: Option<&str>, ip: IpAddr) {
    limits.oauth_addresses.fail(ip);
    if let Some(c) = client_id {
        limits.oauth_clients.fail(c.to_owned());
    }
}

/// Whether the grant and its partner may receive tokens now.
fn grant_is_usable(
    grant: &Grant,
    partner: Option<&Partner>,
    now: jiff::Timestamp,
) -> Result<(), &'static str> {
    if !grant.is_live(now) {
        return Err(if grant.status == charter_core::GrantStatus::Revoked {
            "grant_revoked"
        } else {
            "grant_inactive"
        });
    }
    if partner.is_none_or(|p| p.status != PartnerStatus::Active) {
        return Err("partner_inactive");
    }
    if grant.time_window.as_ref().is_some_and(|w| !w.contains(now)) {
        return Err("outside_time_window");
    }
    Ok(())
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
    let oauth = &state.limits;
    form_content_type(headers)?;
    let params = form(body)?;
    let auth = client_auth(headers, &params)?;
    let claimed = auth.claimed_id().map(str::to_owned);
    if let Some(limited) = rate_limited(oauth, claimed.as_deref(), ip) {
        return Err(limited);
    }
    let token_endpoint = format!("{}{TOKEN_PATH}", state.settings.issuer);
    match authenticate(state, &auth, &token_endpoint) {
        Ok(cred) => Ok((params, cred)),
        Err(reason @ (REPLAY_CACHE_FULL | REPLAY_SHARE_USED)) => {
            // The assertion was good; it just cannot be remembered yet. Refusing it is the
            // fail-closed choice (forgetting another would reopen a replay window).
            let known = claimed
                .as_deref()
                .and_then(|c| state.repo.live.credential(c));
            audit_refusal(state, claimed.as_deref(), ip, reason, known.as_deref()).await;
            let retry_after = state.assertions.retry_after(state.now().as_second());
            Err(OAuthError {
                retry_after: Some(retry_after),
                ..if reason == REPLAY_SHARE_USED {
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
        Err(reason) => {
            count_failure(oauth, claimed.as_deref(), ip);
            let known = claimed
                .as_deref()
                .and_then(|c| state.repo.live.credential(c));
            audit_refusal(state, claimed.as_deref(), ip, reason, known.as_deref()).await;
            Err(OAuthError::invalid_client(auth.basic()))
        }
    }
}

async fn issue(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let (params, cred) = authenticated_client(state, ip, headers, body).await?;
    let token_endpoint = format!("{}{TOKEN_PATH}", state.settings.issuer);
    let client_id = cred.credential.client_id.clone();
    let refuse = |reason: &'static str, err: OAuthError| {
        let cred = cred.clone();
        let client_id = client_id.clone();
        async move {
            audit_refusal(state, Some(&client_id), ip, reason, Some(&cred)).await;
            err
        }
    };

    match params.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_grant_type",
                OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "only client_credentials is supported",
                ),
            )
            .await);
        }
        None => {
            return Err(refuse(
                "invalid_request",
                OAuthError::invalid_request("grant_type is required"),
            )
            .await);
        }
    }
    let now = state.now();
    let grant = state.repo.live.grant(cred.credential.grant.as_str());
    let Some(grant) = grant else {
        return Err(refuse(
            "grant_inactive",
            OAuthError::unauthorized_client("the credential's grant is not active"),
        )
        .await);
    };
    let partner = state.repo.live.partner(grant.partner.as_str());
    if let Err(reason) = grant_is_usable(&grant, partner.as_deref(), now) {
        return Err(refuse(
            reason,
            OAuthError::unauthorized_client(format!("no token can be issued: {reason}")),
        )
        .await);
    }
    let Some(api) = state.repo.live.api(grant.api.as_str()) else {
        return Err(refuse(
            "grant_inactive",
            OAuthError::unauthorized_client("the grant's API is gone"),
        )
        .await);
    };
    // The API is named by resource (RFC 8707) or audience; both absent means the grant's API.
    for key in ["resource", "audience"] {
        if let Some(v) = params.get(key)
            && v != api.audience.as_str()
        {
            return Err(refuse(
                "invalid_target",
                OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    format!("{key} is not this client's API"),
                ),
            )
            .await);
        }
    }
    let scopes = match params.get("scope") {
        None => grant.scopes.clone(),
        Some(s) => {
            let mut out: Vec<Scope> = Vec::new();
            for word in s.split(' ').filter(|w| !w.is_empty()) {
                match Scope::parse(word) {
                    Ok(sc) if grant.scopes.contains(&sc) => {
                        if !out.contains(&sc) {
                            out.push(sc);
                        }
                    }
                    _ => {
                        return Err(refuse(
                            "invalid_scope",
                            OAuthError::new(
                                StatusCode::BAD_REQUEST,
                                "invalid_scope",
                                "scope is not within the grant",
                            ),
                        )
                        .await);
                    }
                }
            }
            if out.is_empty() {
                return Err(refuse(
                    "invalid_scope",
                    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", "scope is empty"),
                )
                .await);
            }
            out
        }
    };

    // DPoP: required by the grant, or offered by the client.
    let proof = headers.get("dpop").map(|v| v.to_str().unwrap_or(""));
    let jkt = match proof {
        Some(p) => match charter_auth::dpop::verify_proof(
            p,
            "POST",
            &token_endpoint,
            now.as_second(),
            DPOP_MAX_AGE_SECONDS,
            None,
        ) {
            Ok(proof)
                if state.replay.first_use(
                    &format!("dpop:{}", proof.jti),
                    now.as_second() + DPOP_MAX_AGE_SECONDS + 10,
                    now.as_second(),
                ) =>
            {
                Some(proof.jkt)
            }
            _ => {
                return Err(refuse(
                    "dpop_invalid",
                    OAuthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_dpop_proof",
                        "the DPoP proof is invalid or replayed",
                    ),
                )
                .await);
            }
        },
        None if grant.require_dpop => {
            return Err(refuse(
                "dpop_invalid",
                OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_dpop_proof",
                    "this grant requires a DPoP proof",
                ),
            )
            .await);
        }
        None => None,
    };

    let keys = state
        .keys
        .current()
        .map_err(|_| OAuthError::server("no signing key"))?;
    let ttl = i64::from(
        grant
            .token_ttl_seconds
            .min(charter_core::grant::MAX_TOKEN_TTL_SECONDS),
    );
    let iat = now.as_second();
    let exp = (iat + ttl).min(grant.expires_at.as_second());
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        sub: client_id.clone(),
        aud: api.audience.to_string(),
        client_id: client_id.clone(),
        scope: scopes
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        jti: charter_auth::token::new_jti(),
        iat,
        nbf: iat,
        exp,
        grant: grant.id.to_string(),
        epoch: grant.epoch,
        cnf: jkt.clone().map(|jkt| Cnf { jkt }),
    };
    let access_token = charter_auth::token::mint(&keys.signing, &claims)
        .map_err(|e| OAuthError::server(format!("signing failed: {e}")))?;
    let details = issuance_details(&grant, &api, &cred, &claims, ip);
    let rec = state.repo.record(
        &client_id,
        action::TOKEN_ISSUE,
        grant.id.as_str(),
        None,
        details,
    );
    state
        .repo
        .write(charter_store::Unit {
            ops: vec![],
            audit: vec![rec],
        })
        .await
        .map_err(|_| OAuthError::server("the audit log is unavailable; no token was issued"))?;
    metrics::counter!("charter_tokens_issued_total").increment(1);
    let body = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": exp - iat,
        "scope": claims.scope,
    });
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

fn issuance_details(
    grant: &Grant,
    api: &Api,
    cred: &CredentialRecord,
    claims: &AccessClaims,
    ip: IpAddr,
) -> Value {
    let approvals: Vec<_> = grant
        .approvals
        .iter()
        .map(|a| a.approver.to_string())
        .collect();
    let mut d = json!({
        "partner": grant.partner,
        "grant": grant.id,
        "use_case": grant.use_case,
        "approvals": approvals,
        "api": api.id,
        "credential": cred.credential.id,
        "client_id": claims.client_id,
        "jti": claims.jti,
        "scope": claims.scope,
        "exp": claims.exp,
        "epoch": claims.epoch,
        "source": ip.to_string(),
    });
    if let Some(cnf) = &claims.cnf {
        d["dpop_jkt"] = json!(cnf.jkt);
    }
    if let Some(e) = &grant.emergency {
        d["emergency"] = json!(e.incident);
    }
    d
}

/// Verifies a token's signature (once per token; cached) and returns its claims.
pub fn verified_claims(state: &AppState, token: &str) -> Result<Arc<AccessClaims>, Reason> {
    charter_gateway::tokens::verified_claims(&state.repo.live, &state.verified, token, state.now())
}

/// Token-level decision for a raw token (introspection; offboarding canaries).
pub fn check_raw_token(
    state: &AppState,
    token: &str,
) -> Result<charter_gateway::tokens::Judged, Reason> {
    charter_gateway::tokens::check_raw_token(
        &state.repo.live,
        &state.verified,
        &state.settings.issuer,
        token,
        state.now(),
    )
}

/// RFC 7662. Callers authenticate as a principal with role `gateway`.
pub async fn introspect(
    State(state): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(e) = caller.require(&[Role::Gateway]) {
        return e.into_response();
    }
    let params = match form_content_type(&headers).and_then(|()| form(&body)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(token) = params.get("token") else {
        return OAuthError::invalid_request("token is required").into_response();
    };
    metrics::counter!("charter_introspections_total").increment(1);
    let reply = match check_raw_token(&state, token) {
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
    let Ok(claims) = verified_claims(state, token) else {
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
