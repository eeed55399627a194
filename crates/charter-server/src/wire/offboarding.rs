//! Offboarding records on the wire, with their verification checks and canaries.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::wire_enum;

wire_enum!(
    #[serde(rename_all = "snake_case")]
    OffboardingStatus = charter_core::offboarding::OffboardingStatus {
        Completed,
        Failed,
        Incomplete
    }
);

/// One verification that access is gone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// Before revocation: `introspection_accepts`, `gateway_accepts`; after it:
    /// `token_endpoint_refuses`, `introspection_inactive`, `gateway_denies`; and
    /// `canary_shown_accepted` (failed) for a canary never shown accepted.
    pub name: String,
    /// `<node id> <endpoint URL> <client id or canary jti>`.
    pub target: String,
    pub passed: bool,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub detail: String,
}

impl From<&charter_core::offboarding::Check> for Check {
    fn from(c: &charter_core::offboarding::Check) -> Self {
        Self {
            name: c.name.clone(),
            target: c.target.clone(),
            passed: c.passed,
            at: c.at,
            detail: c.detail.clone(),
        }
    }
}

/// A token minted before revocation to prove afterwards that it is refused (only its grant,
/// `jti` and grant epoch are shown; the token itself never leaves the server).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Canary {
    pub grant: String,
    pub jti: String,
    pub epoch: u64,
}

impl From<&charter_core::offboarding::Canary> for Canary {
    fn from(c: &charter_core::offboarding::Canary) -> Self {
        Self {
            grant: c.grant.clone(),
            jti: c.jti.clone(),
            epoch: c.epoch,
        }
    }
}

/// An offboarding of a partner: what was revoked and the checks that prove it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Offboarding {
    pub id: String,
    pub partner: String,
    /// `completed` (every check passed and every enforcement point was probed), `failed`
    /// (a check did not pass) or `incomplete` (something that must be probed was not).
    pub status: OffboardingStatus,
    /// Why the offboarding is `incomplete`; `null` otherwise.
    pub incomplete_reason: Option<String>,
    pub requested_by: String,
    pub reason: String,
    pub revoked_grants: Vec<String>,
    pub revoked_credentials: Vec<String>,
    pub canaries: Vec<Canary>,
    pub checks: Vec<Check>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub finished_at: Timestamp,
}

impl From<&charter_core::offboarding::Offboarding> for Offboarding {
    fn from(o: &charter_core::offboarding::Offboarding) -> Self {
        Self {
            id: o.id.to_string(),
            partner: o.partner.to_string(),
            status: o.status.into(),
            incomplete_reason: o.incomplete_reason.clone(),
            requested_by: o.requested_by.to_string(),
            reason: o.reason.to_string(),
            revoked_grants: o.revoked_grants.clone(),
            revoked_credentials: o.revoked_credentials.clone(),
            canaries: o.canaries.iter().map(Canary::from).collect(),
            checks: o.checks.iter().map(Check::from).collect(),
            started_at: o.started_at,
            finished_at: o.finished_at,
        }
    }
}
