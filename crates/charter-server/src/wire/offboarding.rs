//! Offboarding records on the wire, with their verification checks and canaries.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::wire_enum;

wire_enum!(
    #[serde(rename_all = "snake_case")]
    OffboardingStatus = charter_core::offboarding::OffboardingStatus { Completed, Failed }
);

/// One verification that access is gone.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    /// `token_endpoint_refuses`, `introspection_inactive` or `gateway_denies`.
    pub name: String,
    /// The client id, canary or gateway checked.
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

/// A token minted before revocation to prove afterwards that it is refused.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Canary {
    pub grant: String,
    pub jti: String,
}

impl From<&charter_core::offboarding::Canary> for Canary {
    fn from(c: &charter_core::offboarding::Canary) -> Self {
        Self {
            grant: c.grant.clone(),
            jti: c.jti.clone(),
        }
    }
}

/// An offboarding of a partner: what was revoked and the checks that prove it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Offboarding {
    pub id: String,
    pub partner: String,
    pub status: OffboardingStatus,
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
