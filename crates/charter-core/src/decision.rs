//! The access decision: default deny, checks in one fixed order, the first failure named by
//! a reason code. The gateway (per call) and introspection (token-level checks only) both
//! call this module; there is no second copy of any check.
//!
//! Order: token verified (signature and header, done by the caller before it builds
//! [`TokenFacts`]) → `iss`, `aud`, `nbf`/`exp` → grant active, the token's credential not
//! revoked and epoch current → `jti` not revoked → partner active (not offboarded) →
//! operation matched → scope in token ∩ grant → data class within the ceiling → region
//! permitted, with a transfer basis where the partner does not process there → environment
//! and time window → DPoP.

use jiff::Timestamp;

use crate::values::{Environment, Scope};
use crate::{Api, Grant, GrantStatus, Operation, Partner, PartnerStatus};

/// Why a call or token was refused. The names are contract (`reason` in responses and
/// audit records); later codes may be added, none renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    TokenMissing,
    TokenInvalid,
    TokenExpired,
    TokenRevoked,
    GrantInactive,
    GrantRevoked,
    PartnerInactive,
    UnknownOperation,
    ScopeNotGranted,
    DataClassExceedsGrant,
    RegionNotPermitted,
    TransferBasisMissing,
    EnvironmentMismatch,
    OutsideTimeWindow,
    DpopInvalid,
    AuditUnavailable,
    /// The gateway's view of policy is older than its bound (its change feed is down):
    /// it refuses rather than decide on stale state.
    PolicyStale,
    /// The credential the token was issued to was revoked (token-level). Other tokens of
    /// the same grant, killed by the epoch bump of that revocation, stay `token_revoked`.
    CredentialRevoked,
    /// The token's partner is being offboarded or was offboarded (token-level).
    PartnerOffboarded,
}

impl Reason {
    pub const ALL: [Reason; 19] = [
        Reason::TokenMissing,
        Reason::TokenInvalid,
        Reason::TokenExpired,
        Reason::TokenRevoked,
        Reason::GrantInactive,
        Reason::GrantRevoked,
        Reason::PartnerInactive,
        Reason::UnknownOperation,
        Reason::ScopeNotGranted,
        Reason::DataClassExceedsGrant,
        Reason::RegionNotPermitted,
        Reason::TransferBasisMissing,
        Reason::EnvironmentMismatch,
        Reason::OutsideTimeWindow,
        Reason::DpopInvalid,
        Reason::AuditUnavailable,
        Reason::PolicyStale,
        Reason::CredentialRevoked,
        Reason::PartnerOffboarded,
    ];

    /// The reasons that say a token was refused *because access was removed* — the only
    /// refusals an offboarding counts as proof.
    pub const REVOCATION: [Reason; 4] = [
        Reason::TokenRevoked,
        Reason::GrantRevoked,
        Reason::CredentialRevoked,
        Reason::PartnerOffboarded,
    ];

    /// The reason with this wire name.
    pub fn parse(name: &str) -> Option<Reason> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this refusal is one of [`Reason::REVOCATION`].
    pub fn is_revocation(self) -> bool {
        Self::REVOCATION.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::TokenRevoked => "token_revoked",
            Self::GrantInactive => "grant_inactive",
            Self::GrantRevoked => "grant_revoked",
            Self::PartnerInactive => "partner_inactive",
            Self::UnknownOperation => "unknown_operation",
            Self::ScopeNotGranted => "scope_not_granted",
            Self::DataClassExceedsGrant => "data_class_exceeds_grant",
            Self::RegionNotPermitted => "region_not_permitted",
            Self::TransferBasisMissing => "transfer_basis_missing",
            Self::EnvironmentMismatch => "environment_mismatch",
            Self::OutsideTimeWindow => "outside_time_window",
            Self::DpopInvalid => "dpop_invalid",
            Self::AuditUnavailable => "audit_unavailable",
            Self::PolicyStale => "policy_stale",
            Self::CredentialRevoked => "credential_revoked",
            Self::PartnerOffboarded => "partner_offboarded",
        }
    }

    /// Token-level reasons answer 401 (`WWW-Authenticate: Bearer error="invalid_token"`);
    /// policy reasons 403; an unavailable audit store or stale policy 503.
    pub fn is_token_level(self) -> bool {
        matches!(
            self,
            Self::TokenMissing
                | Self::TokenInvalid
                | Self::TokenExpired
                | Self::TokenRevoked
                | Self::GrantInactive
                | Self::GrantRevoked
                | Self::PartnerInactive
                | Self::CredentialRevoked
                | Self::PartnerOffboarded
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token whose signature and header have been verified claims.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenFacts {
    pub iss: String,
    pub aud: String,
    pub client_id: String,
    pub scopes: Vec<Scope>,
    pub jti: String,
    pub nbf: i64,
    pub exp: i64,
    pub grant: String,
    pub epoch: u64,
    /// The DPoP key thumbprint the token is bound to.
    pub jkt: Option<String>,
}

/// What the deciding party expects of every token.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// Seconds of clock skew tolerated on `nbf` and `exp`.
    pub leeway: i64,
}

/// The state a token is judged against, looked up by the caller from the token's claims.
#[derive(Debug, Clone, Copy)]
pub struct TokenContext<'a> {
    pub grant: Option<&'a Grant>,
    pub api: Option<&'a Api>,
    pub partner: Option<&'a Partner>,
    pub jti_revoked: bool,
    /// The credential the token was issued to (its `client_id`) is revoked.
    pub credential_revoked: bool,
}

/// Token-level checks (all that introspection can judge: it has no operation).
pub fn check_token(
    token: &TokenFacts,
    ctx: TokenContext<'_>,
    expect: &Expectations<'_>,
    now: Timestamp,
) -> Result<(), Reason> {
    let now_s = now.as_second();
    if token.iss != expect.issuer {
        return Err(Reason::TokenInvalid);
    }
    let (Some(grant), Some(api)) = (ctx.grant, ctx.api) else {
        return Err(Reason::TokenInvalid);
    };
    if token.aud != api.audience.as_str() || grant.api != api.id {
        return Err(Reason::TokenInvalid);
    }
    if token.nbf > now_s + expect.leeway {
        return Err(Reason::TokenInvalid);
    }
    if token.exp <= now_s - expect.leeway {
        return Err(Reason::TokenExpired);
    }
    grant_state(grant, now)?;
    if ctx.credential_revoked {
        return Err(Reason::CredentialRevoked);
    }
    if token.epoch != grant.epoch {
        return Err(Reason::TokenRevoked);
    }
    if ctx.jti_revoked {
        return Err(Reason::TokenRevoked);
    }
    partner_state(grant, ctx.partner)
}

/// Whether a grant and its partner may hold access now: the grant active and unexpired, its
/// partner active. Token issuance asks this before minting; [`check_token`] asks the same two
/// questions, with the token's epoch and `jti` checked between them (the fixed order).
pub fn check_grant(grant: &Grant, partner: Option<&Partner>, now: Timestamp) -> Result<(), Reason> {
    grant_state(grant, now)?;
    partner_state(grant, partner)
}

fn grant_state(grant: &Grant, now: Timestamp) -> Result<(), Reason> {
    match grant.status {
        GrantStatus::Active if now < grant.expires_at => Ok(()),
        GrantStatus::Revoked => Err(Reason::GrantRevoked),
        _ => Err(Reason::GrantInactive),
    }
}

fn partner_state(grant: &Grant, partner: Option<&Partner>) -> Result<(), Reason> {
    match partner {
        Some(p) if p.id != grant.partner => Err(Reason::PartnerInactive),
        Some(p) if p.status == PartnerStatus::Active => Ok(()),
        Some(p)
            if matches!(
                p.status,
                PartnerStatus::Offboarding | PartnerStatus::Offboarded
            ) =>
        {
            Err(Reason::PartnerOffboarded)
        }
        _ => Err(Reason::PartnerInactive),
    }
}

/// The call being decided, beyond the token.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    /// The API operation the request matched, if any.
    pub operation: Option<&'a Operation>,
    /// The environment the deciding gateway enforces.
    pub environment: &'a Environment,
    /// `None` when no DPoP proof was checked; `Some(ok)` when one was.
    pub dpop_valid: Option<bool>,
}

/// The full decision for one call: token-level checks, then the operation checks.
pub fn decide_call(
    token: &TokenFacts,
    ctx: TokenContext<'_>,
    call: CallContext<'_>,
    expect: &Expectations<'_>,
    now: Timestamp,
) -> Result<(), Reason> {
    check_token(token, ctx, expect, now)?;
    let (Some(grant), Some(partner)) = (ctx.grant, ctx.partner) else {
        return Err(Reason::TokenInvalid);
    };
    let Some(op) = call.operation else {
        return Err(Reason::UnknownOperation);
    };
    if !token.scopes.contains(&op.scope) || !grant.scopes.contains(&op.scope) {
        return Err(Reason::ScopeNotGranted);
    }
    if op.data_class > grant.data_class_ceiling {
        return Err(Reason::DataClassExceedsGrant);
    }
    if !grant.regions.contains(&op.region) {
        return Err(Reason::RegionNotPermitted);
    }
    if !partner.regions.contains(&op.region) && grant.transfer_basis.is_none() {
        return Err(Reason::TransferBasisMissing);
    }
    if !grant.environments.contains(call.environment) {
        return Err(Reason::EnvironmentMismatch);
    }
    if let Some(window) = &grant.time_window
        && !window.contains(now)
    {
        return Err(Reason::OutsideTimeWindow);
    }
    if (grant.require_dpop || token.jkt.is_some()) && call.dpop_valid != Some(true) {
        return Err(Reason::DpopInvalid);
    }
    Ok(())
}
