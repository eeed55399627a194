//! Access tokens at the enforcement point: signature verified once per token (then cached
//! by the token's SHA-256), and on every use the token-level decision against the live view.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use charter_auth::token::AccessClaims;
use charter_core::decision::{self, Expectations, Reason, TokenContext, TokenFacts};
use charter_core::{Api, Grant, Partner, Scope};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::live::Live;

/// Clock skew tolerated on `nbf`/`exp`.
pub const LEEWAY_SECONDS: i64 = 5;

/// Tokens whose signature has been verified, by SHA-256 of the token. Bounded: when full,
/// expired entries go first, then everything.
#[derive(Default)]
pub struct VerifiedTokens(Mutex<HashMap<[u8; 32], Arc<AccessClaims>>>);

pub const VERIFIED_CAPACITY: usize = 200_000;

impl VerifiedTokens {
    fn get(&self, key: &[u8; 32]) -> Option<Arc<AccessClaims>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: [u8; 32], claims: Arc<AccessClaims>, now: i64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= VERIFIED_CAPACITY {
            m.retain(|_, c| c.exp > now);
            if m.len() >= VERIFIED_CAPACITY {
                m.clear();
            }
        }
        m.insert(key, claims);
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Verifies a token's signature (once; cached) and returns its claims.
pub fn verified_claims(
    live: &Live,
    cache: &VerifiedTokens,
    token: &str,
    now: Timestamp,
) -> Result<Arc<AccessClaims>, Reason> {
    if token.is_empty() {
        return Err(Reason::TokenMissing);
    }
    if token.len() > charter_auth::token::MAX_TOKEN_BYTES {
        return Err(Reason::TokenInvalid);
    }
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(c) = cache.get(&key) {
        return Ok(c);
    }
    let keys = live.keyset();
    let claims =
        Arc::new(charter_auth::token::verify(token, &keys).map_err(|_| Reason::TokenInvalid)?);
    cache.put(key, claims.clone(), now.as_second());
    Ok(claims)
}

pub fn facts(claims: &AccessClaims) -> Result<TokenFacts, Reason> {
    let scopes = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(Scope::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Reason::TokenInvalid)?;
    Ok(TokenFacts {
        iss: claims.iss.clone(),
        aud: claims.aud.clone(),
        client_id: claims.client_id.clone(),
        scopes,
        jti: claims.jti.clone(),
        nbf: claims.nbf,
        exp: claims.exp,
        grant: claims.grant.clone(),
        epoch: claims.epoch,
        jkt: claims.cnf.as_ref().map(|c| c.jkt.clone()),
    })
}

/// A token with the live state it is judged against.
pub struct Judged {
    pub claims: Arc<AccessClaims>,
    pub facts: TokenFacts,
    pub grant: Option<Arc<Grant>>,
    pub api: Option<Arc<Api>>,
    pub partner: Option<Arc<Partner>>,
    pub jti_revoked: bool,
    /// The credential of the token's `client_id` is revoked.
    pub credential_revoked: bool,
}

impl Judged {
    pub fn context(&self) -> TokenContext<'_> {
        TokenContext {
            grant: self.grant.as_deref(),
            api: self.api.as_deref(),
            partner: self.partner.as_deref(),
            jti_revoked: self.jti_revoked,
            credential_revoked: self.credential_revoked,
        }
    }
}

pub fn judge(live: &Live, claims: Arc<AccessClaims>) -> Result<Judged, Reason> {
    let facts = facts(&claims)?;
    let grant = live.grant(&facts.grant);
    let api = grant.as_ref().and_then(|g| live.api(g.api.as_str()));
    let partner = grant
        .as_ref()
        .and_then(|g| live.partner(g.partner.as_str()));
    let jti_revoked = live.is_revoked(&facts.jti);
    // Only the credential of this grant counts: a client id is unique, but a token names
    // its grant, and a credential of another grant says nothing about this one.
    let credential_revoked = live.credential(&facts.client_id).is_some_and(|c| {
        c.credential.grant.as_str() == facts.grant
            && c.credential.status == charter_core::credential::CredentialStatus::Revoked
    });
    Ok(Judged {
        claims,
        facts,
        grant,
        api,
        partner,
        jti_revoked,
        credential_revoked,
    })
}

/// The token-level decision for a raw token (introspection, offboarding canaries).
pub fn check_raw_token(
    live: &Live,
    cache: &VerifiedTokens,
    issuer: &str,
    token: &str,
    now: Timestamp,
) -> Result<Judged, Reason> {
    let claims = verified_claims(live, cache, token, now)?;
    let judged = judge(live, claims)?;
    let expect = Expectations {
        issuer,
        leeway: LEEWAY_SECONDS,
    };
    decision::check_token(&judged.facts, judged.context(), &expect, now)?;
    Ok(judged)
}
