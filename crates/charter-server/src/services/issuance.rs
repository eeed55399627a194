//! Token issuance: who the client is (client authentication against its credential), whether
//! its grant may receive a token now, what the token may carry (resource, narrowed scope, DPoP
//! binding), minting, and the audit record that must be durable before the token is handed
//! out. Every refusal is a typed value and is audited with its reason (never a secret); the
//! OAuth handlers only parse the form and turn the result into RFC 6749 responses.
//!
//! Introspection's token-level check ([`Tokens::check_raw_token`]) lives here too: the
//! offboarding verification asks the same question of its canaries.

use std::net::IpAddr;
use std::sync::Arc;

use charter_auth::jwk::PublicJwk;
use charter_auth::token::{AccessClaims, Cnf};
use charter_core::credential::Unusable;
use charter_core::decision::{Reason, check_grant};
use charter_core::{Api, Grant, Partner, Scope};
use charter_evidence::action;
use charter_gateway::tokens::Judged;
use charter_gateway::{FirstUse, ReplayCache, VerifiedTokens};
use charter_store::{CredentialRecord, Unit};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::keyring::KeyRing;
use crate::repo::Repo;

/// The token endpoint's path under the issuer.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The revocation endpoint's path under the issuer.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// The introspection endpoint's path under the issuer.
pub const INTROSPECT_PATH: &str = "/oauth/introspect";
/// How old a DPoP proof may be.
pub const DPOP_MAX_AGE_SECONDS: i64 = 300;

/// What token issuance and introspection need from a node.
pub struct Tokens<'a> {
    pub repo: &'a Repo,
    pub keys: &'a KeyRing,
    /// Used client-assertion `jti`s per client id.
    pub assertions: &'a ReplayCache,
    /// Used DPoP proof `jti`s.
    pub dpop_replay: &'a ReplayCache,
    pub verified: &'a VerifiedTokens,
    /// The issuer URL (no trailing slash).
    pub issuer: &'a str,
}

/// How the client said who it is.
pub enum ClientAuth {
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
    /// The client id the request claims (unverified).
    pub fn claimed_id(&self) -> Option<&str> {
        match self {
            Self::Secret { client_id, .. } => Some(client_id),
            Self::Assertion { client_id, .. } => client_id.as_deref(),
        }
    }

    /// Whether the client used HTTP Basic (its refusal carries a Basic challenge).
    pub fn basic(&self) -> bool {
        matches!(self, Self::Secret { basic: true, .. })
    }
}

/// `error_description` of the token endpoint's `invalid_client` answer for a revoked
/// credential (refused before any secret is compared): what an offboarding probe looks for.
pub const REVOKED_CLIENT: &str = "the client's credential is revoked";

/// Why a client's authentication was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRefusal {
    /// No credential has this client id.
    ClientUnknown,
    /// The credential was revoked (refused before any secret is compared).
    CredentialRevoked,
    /// The credential is past its expiry or maximum age (refused before any comparison).
    CredentialExpired,
    SecretMismatch,
    AssertionInvalid,
    AssertionReplayed,
    /// The assertion was good but the replay cache cannot remember one more (fail closed).
    ReplayCacheFull,
    /// The assertion was good but this client holds its whole share of the replay cache.
    ReplayShareUsed,
}

impl ClientRefusal {
    /// The reason recorded in the `token.refused` audit record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientUnknown => "client_unknown",
            Self::CredentialRevoked => "credential_revoked",
            Self::CredentialExpired => "credential_expired",
            Self::SecretMismatch => "secret_mismatch",
            Self::AssertionInvalid => "assertion_invalid",
            Self::AssertionReplayed => "assertion_replayed",
            Self::ReplayCacheFull => "assertion_replay_cache_full",
            Self::ReplayShareUsed => "assertion_replay_share_used",
        }
    }

    /// Whether the refusal says something against the credential presented (and so counts
    /// towards the failure limits); a full replay cache does not.
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::ReplayCacheFull | Self::ReplayShareUsed)
    }
}

/// The parameters of a token request, beyond client authentication.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenRequest<'a> {
    pub grant_type: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// The `DPoP` header, as sent.
    pub dpop: Option<&'a str>,
    pub source: Option<IpAddr>,
}

/// Why no token was issued to an authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueRefusal {
    GrantTypeMissing,
    UnsupportedGrantType,
    /// The grant or its partner cannot hold access now (grant inactive or revoked, partner
    /// inactive), or the call is outside the grant's time window.
    Grant(Reason),
    /// The grant's API is no longer published.
    ApiGone,
    /// `resource` or `audience` (the field named) is not the grant's API.
    InvalidTarget(&'static str),
    /// The requested scope is not within the grant, or is empty.
    InvalidScope {
        empty: bool,
    },
    /// The DPoP proof is invalid or replayed, or missing where the grant requires one.
    DpopInvalid {
        missing: bool,
    },
}

impl IssueRefusal {
    /// The reason recorded in the `token.refused` audit record.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::GrantTypeMissing => "invalid_request",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Grant(r) => r.as_str(),
            Self::ApiGone => "grant_inactive",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidScope { .. } => "invalid_scope",
            Self::DpopInvalid { .. } => "dpop_invalid",
        }
    }
}

/// The outcome of a token request from an authenticated client.
#[derive(Debug)]
pub enum IssueError {
    Refused(IssueRefusal),
    /// Nothing was issued: no signing key, or the audit log did not take the record.
    Unavailable(&'static str),
}

/// A token as handed to the client.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a sender-constrained token.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
}

/// Whether a grant may receive a token now: [`check_grant`] and the grant's time window.
pub fn grant_usable(
    grant: &Grant,
    partner: Option<&Partner>,
    now: Timestamp,
) -> Result<(), Reason> {
    check_grant(grant, partner, now)?;
    if grant.time_window.as_ref().is_some_and(|w| !w.contains(now)) {
        return Err(Reason::OutsideTimeWindow);
    }
    Ok(())
}

/// The requested scopes: all of the grant's when absent; otherwise a non-empty subset.
fn narrowed_scopes(grant: &Grant, requested: Option<&str>) -> Result<Vec<Scope>, IssueRefusal> {
    let Some(s) = requested else {
        return Ok(grant.scopes.clone());
    };
    let mut out: Vec<Scope> = Vec::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        match Scope::parse(word) {
            Ok(sc) if grant.scopes.contains(&sc) => {
                if !out.contains(&sc) {
                    out.push(sc);
                }
            }
            _ => return Err(IssueRefusal::InvalidScope { empty: false }),
        }
    }
    if out.is_empty() {
        return Err(IssueRefusal::InvalidScope { empty: true });
    }
    Ok(out)
}

impl Tokens<'_> {
    pub fn token_endpoint(&self) -> String {
        format!("{}{TOKEN_PATH}", self.issuer)
    }

    /// Authenticates the client against its credential. A revoked or expired credential is
    /// refused before any secret is compared.
    pub fn authenticate(&self, auth: &ClientAuth) -> Result<Arc<CredentialRecord>, ClientRefusal> {
        let now = self.repo.now();
        let client_id = match auth {
            ClientAuth::Secret { client_id, .. } => client_id.clone(),
            ClientAuth::Assertion { client_id, .. } => {
                client_id.clone().ok_or(ClientRefusal::ClientUnknown)?
            }
        };
        let cred = self
            .repo
            .live
            .credential(&client_id)
            .ok_or(ClientRefusal::ClientUnknown)?;
        match cred.credential.usable(now) {
            Ok(()) => {}
            Err(Unusable::Revoked) => return Err(ClientRefusal::CredentialRevoked),
            Err(Unusable::Expired) => return Err(ClientRefusal::CredentialExpired),
        }
        match auth {
            ClientAuth::Secret { secret, .. } => {
                // Every live verifier is compared (constant work whichever matches).
                let ok = cred
                    .live_verifiers(now)
                    .filter_map(|v| v.secret_hash.as_deref())
                    .fold(false, |found, h| {
                        self.keys.secrets.verify(secret, h) | found
                    });
                if ok {
                    Ok(cred)
                } else {
                    Err(ClientRefusal::SecretMismatch)
                }
            }
            ClientAuth::Assertion { assertion, .. } => {
                // Any of this server's own identifiers: the issuer, the token endpoint, and
                // the revocation endpoint (clients name the endpoint they call).
                let token_endpoint = self.token_endpoint();
                let revocation_endpoint = format!("{}{REVOKE_PATH}", self.issuer);
                let audiences = [
                    self.issuer,
                    token_endpoint.as_str(),
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
                let claims = verified.ok_or(ClientRefusal::AssertionInvalid)?;
                // Remembered for as long as the assertion would verify again: until `exp`
                // plus the leeway, not just until `exp`.
                match self.assertions.check(
                    &client_id,
                    &claims.jti,
                    claims.accepted_until(),
                    now.as_second(),
                ) {
                    FirstUse::First => Ok(cred),
                    FirstUse::Replayed => Err(ClientRefusal::AssertionReplayed),
                    FirstUse::Full => Err(ClientRefusal::ReplayCacheFull),
                    FirstUse::OwnerFull => Err(ClientRefusal::ReplayShareUsed),
                }
            }
        }
    }

    /// Records a refused token request (`token.refused`, with the reason, never a secret).
    /// A record the log cannot take is logged, not retried: the request is refused anyway.
    pub async fn audit_refusal(
        &self,
        client_id: Option<&str>,
        source: Option<IpAddr>,
        reason: &str,
        cred: Option<&CredentialRecord>,
    ) {
        let mut details = json!({
            "client_id": client_id,
            "source": source.map(|ip| ip.to_string()),
        });
        if let Some(c) = cred {
            details["partner"] = json!(c.credential.partner);
            details["grant"] = json!(c.credential.grant);
            details["credential"] = json!(c.credential.id);
        }
        let target = cred
            .map(|c| c.credential.grant.to_string())
            .unwrap_or_default();
        let rec = self.repo.record(
            client_id.unwrap_or("anonymous"),
            action::TOKEN_REFUSED,
            &target,
            Some(reason.to_owned()),
            details,
        );
        if let Err(e) = self
            .repo
            .write(Unit {
                ops: vec![],
                audit: vec![rec],
            })
            .await
        {
            tracing::warn!(error = %e, "could not audit a refused token request");
        }
    }

    /// Issues a token to an authenticated client, or refuses (audited) with the reason.
    pub async fn issue(
        &self,
        cred: &Arc<CredentialRecord>,
        req: TokenRequest<'_>,
    ) -> Result<IssuedToken, IssueError> {
        match self.decide(cred, req) {
            Ok((grant, api, claims)) => self.mint(cred, &grant, &api, claims, req.source).await,
            Err(refusal) => {
                let client_id = cred.credential.client_id.as_str();
                self.audit_refusal(Some(client_id), req.source, refusal.reason(), Some(cred))
                    .await;
                Err(IssueError::Refused(refusal))
            }
        }
    }

    /// Every check of a token request, in order; the claims the token would carry.
    fn decide(
        &self,
        cred: &CredentialRecord,
        req: TokenRequest<'_>,
    ) -> Result<(Arc<Grant>, Arc<Api>, AccessClaims), IssueRefusal> {
        match req.grant_type {
            Some("client_credentials") => {}
            Some(_) => return Err(IssueRefusal::UnsupportedGrantType),
            None => return Err(IssueRefusal::GrantTypeMissing),
        }
        let now = self.repo.now();
        let live = &self.repo.live;
        let grant = live
            .grant(cred.credential.grant.as_str())
            .ok_or(IssueRefusal::Grant(Reason::GrantInactive))?;
        let partner = live.partner(grant.partner.as_str());
        grant_usable(&grant, partner.as_deref(), now).map_err(IssueRefusal::Grant)?;
        let api = live.api(grant.api.as_str()).ok_or(IssueRefusal::ApiGone)?;
        // The API is named by resource (RFC 8707) or audience; both absent means the
        // grant's API.
        for (key, value) in [("resource", req.resource), ("audience", req.audience)] {
            if value.is_some_and(|v| v != api.audience.as_str()) {
                return Err(IssueRefusal::InvalidTarget(key));
            }
        }
        let scopes = narrowed_scopes(&grant, req.scope)?;
        let jkt = self.dpop_binding(&grant, req.dpop, now)?;
        let client_id = cred.credential.client_id.clone();
        let ttl = i64::from(
            grant
                .token_ttl_seconds
                .min(charter_core::grant::MAX_TOKEN_TTL_SECONDS),
        );
        let iat = now.as_second();
        let exp = (iat + ttl).min(grant.expires_at.as_second());
        let claims = AccessClaims {
            iss: self.issuer.to_owned(),
            sub: client_id.clone(),
            aud: api.audience.to_string(),
            client_id,
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
            cnf: jkt.map(|jkt| Cnf { jkt }),
        };
        Ok((grant, api, claims))
    }

    /// DPoP: required by the grant, or offered by the client; the key thumbprint it binds.
    fn dpop_binding(
        &self,
        grant: &Grant,
        proof: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<String>, IssueRefusal> {
        let Some(proof) = proof else {
            return if grant.require_dpop {
                Err(IssueRefusal::DpopInvalid { missing: true })
            } else {
                Ok(None)
            };
        };
        match charter_auth::dpop::verify_proof(
            proof,
            "POST",
            &self.token_endpoint(),
            now.as_second(),
            DPOP_MAX_AGE_SECONDS,
            None,
        ) {
            Ok(proof)
                if self.dpop_replay.first_use(
                    &format!("dpop:{}", proof.jti),
                    now.as_second() + DPOP_MAX_AGE_SECONDS + 10,
                    now.as_second(),
                ) =>
            {
                Ok(Some(proof.jkt))
            }
            _ => Err(IssueRefusal::DpopInvalid { missing: false }),
        }
    }

    /// Signs the token and makes its `token.issue` record durable; only then is it returned.
    async fn mint(
        &self,
        cred: &CredentialRecord,
        grant: &Grant,
        api: &Api,
        claims: AccessClaims,
        source: Option<IpAddr>,
    ) -> Result<IssuedToken, IssueError> {
        let keys = self
            .keys
            .current()
            .map_err(|_| IssueError::Unavailable("no signing key"))?;
        let access_token = charter_auth::token::mint(&keys.signing, &claims)
            .map_err(|_| IssueError::Unavailable("signing failed"))?;
        let details = issuance_details(grant, api, cred, &claims, source);
        let rec = self.repo.record(
            &claims.client_id,
            action::TOKEN_ISSUE,
            grant.id.as_str(),
            None,
            details,
        );
        self.repo
            .write(Unit {
                ops: vec![],
                audit: vec![rec],
            })
            .await
            .map_err(|_| {
                IssueError::Unavailable("the audit log is unavailable; no token was issued")
            })?;
        metrics::counter!("charter_tokens_issued_total").increment(1);
        Ok(IssuedToken {
            access_token,
            token_type: if claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: claims.exp - claims.iat,
            scope: claims.scope,
        })
    }

    /// Verifies a token's signature (once per token; cached) and returns its claims.
    pub fn verified_claims(&self, token: &str) -> Result<Arc<AccessClaims>, Reason> {
        charter_gateway::tokens::verified_claims(
            &self.repo.live,
            self.verified,
            token,
            self.repo.now(),
        )
    }

    /// Token-level decision for a raw token (introspection; offboarding canaries).
    pub fn check_raw_token(&self, token: &str) -> Result<Judged, Reason> {
        charter_gateway::tokens::check_raw_token(
            &self.repo.live,
            self.verified,
            self.issuer,
            token,
            self.repo.now(),
        )
    }
}

fn issuance_details(
    grant: &Grant,
    api: &Api,
    cred: &CredentialRecord,
    claims: &AccessClaims,
    source: Option<IpAddr>,
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
        "source": source.map(|ip| ip.to_string()),
    });
    if let Some(cnf) = &claims.cnf {
        d["dpop_jkt"] = json!(cnf.jkt);
    }
    if let Some(e) = &grant.emergency {
        d["emergency"] = json!(e.incident);
    }
    d
}
