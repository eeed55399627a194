//! The records Charter keeps: principals, APIs, partners and grants. Their serde form is how
//! they are stored, so their field names are contract for stored documents.
//!
//! Serde here is the stored document format (and audit `after`), not the API; the API's types
//! are in charter-server's `wire` module.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::values::{
    ApiName, Audience, DataClass, Environment, Method, Name, PathTemplate, Region, Role, Scope,
    TimeWindow, UpstreamUrl,
};
use crate::{ApiId, DomainError, GrantId, PartnerId, PrincipalId};

/// Someone (or some service) that calls the admin API. The bearer token is not part of the
/// record: only its hash is stored, beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub id: PrincipalId,
    pub name: Name,
    pub roles: Vec<Role>,
    pub created_at: Timestamp,
    /// When the current token stops working.
    pub token_expires_at: Timestamp,
    pub disabled: bool,
}

impl Principal {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// One operation of an API: what a scope lets a caller do, and what data it touches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    pub scope: Scope,
    pub method: Method,
    pub path: PathTemplate,
    pub data_class: DataClass,
    pub region: Region,
}

/// A published API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Api {
    pub id: ApiId,
    pub name: ApiName,
    pub audience: Audience,
    pub upstream: UpstreamUrl,
    pub owner: PrincipalId,
    pub operations: Vec<Operation>,
    /// Incremented on every republish.
    pub revision: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Api {
    /// Checks a set of operations: at least one, at most 1000, and no two with the same
    /// method and path shape.
    pub fn check_operations(ops: &[Operation]) -> Result<(), DomainError> {
        if ops.is_empty() {
            return Err(DomainError::invalid("an API needs at least one operation"));
        }
        if ops.len() > 1000 {
            return Err(DomainError::invalid("an API has at most 1000 operations"));
        }
        let mut seen = std::collections::HashSet::new();
        for op in ops {
            if !seen.insert((op.method, op.path.shape())) {
                return Err(DomainError::invalid(format!(
                    "two operations share {:?} {}",
                    op.method,
                    op.path.as_str()
                )));
            }
        }
        Ok(())
    }

    pub fn operations_for<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a Operation> {
        self.operations.iter().filter(move |op| &op.scope == scope)
    }

    pub fn has_scope(&self, scope: &Scope) -> bool {
        self.operations.iter().any(|op| &op.scope == scope)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    /// The partner integrates with us directly.
    Direct,
    /// A marketplace: several business owners share one data path.
    Reseller,
    /// The vendor runs the integration; we own the data risk.
    SaasConnector,
}

wire_names!(PartnerKind, "partner kind", {
    Direct => "direct",
    Reseller => "reseller",
    SaasConnector => "saas_connector",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerStatus {
    Active,
    Suspended,
    Offboarding,
    Offboarded,
}

/// An external organisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: PartnerId,
    pub name: Name,
    pub kind: PartnerKind,
    /// Where the partner processes data.
    pub regions: Vec<Region>,
    /// Business owners accountable for the relationship; they approve its grants.
    pub owners: Vec<PrincipalId>,
    pub status: PartnerStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Who changed `owners`, and when (oldest first): a principal never approves a grant
    /// requested before an owner change it made.
    #[serde(default)]
    pub owner_changes: Vec<OwnersChange>,
}

/// One change of a partner's owners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnersChange {
    pub by: PrincipalId,
    pub at: Timestamp,
}

impl Partner {
    /// Whether `who` changed the partner's owners at or after `since`.
    pub fn owners_changed_by_since(&self, who: &PrincipalId, since: Timestamp) -> bool {
        self.owner_changes
            .iter()
            .any(|c| &c.by == who && c.at >= since)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Pending,
    Active,
    Suspended,
    Revoked,
    Expired,
    Rejected,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
        }
    }

    /// Revoked, expired and rejected grants never come back.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired | Self::Rejected)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approve,
    Reject,
}

/// One approver's decision on a grant request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub approver: PrincipalId,
    pub decision: ApprovalDecision,
    pub justification: Name,
    pub ticket: Option<Name>,
    /// The recorded exception that lets a SaaS connector reach data above `internal`.
    #[serde(default)]
    pub data_exception: Option<Name>,
    pub at: Timestamp,
}

/// Break-glass access opened under an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emergency {
    pub incident: Name,
}

/// One partner's access path to one API for one stated use case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: GrantId,
    pub partner: PartnerId,
    pub api: ApiId,
    pub use_case: Name,
    pub scopes: Vec<Scope>,
    pub data_class_ceiling: DataClass,
    /// Data regions the grant may reach.
    pub regions: Vec<Region>,
    pub environments: Vec<Environment>,
    /// Legal basis for reaching a region outside the partner's processing regions.
    pub transfer_basis: Option<Name>,
    pub time_window: Option<TimeWindow>,
    pub require_dpop: bool,
    /// A SaaS connector's grant above `internal` data: every approval must record an
    /// explicit data exception.
    #[serde(default)]
    pub data_exception_required: bool,
    pub emergency: Option<Emergency>,
    pub expires_at: Timestamp,
    pub token_ttl_seconds: u32,
    pub recertify_every_days: u32,
    pub approvals_required: u32,
    pub status: GrantStatus,
    /// Why the grant is in its current state (suspension, revocation, …).
    pub status_reason: Option<Name>,
    pub requested_by: PrincipalId,
    pub requested_at: Timestamp,
    /// The partner's owners when the grant was requested: only they approve it (and attest
    /// its reviews), whatever the owners are later. Empty on a grant stored before the
    /// snapshot existed, which then has no approver (fails closed).
    #[serde(default)]
    pub approvers: Vec<PrincipalId>,
    pub approvals: Vec<Approval>,
    pub activated_at: Option<Timestamp>,
    pub review_due_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// Bumped whenever every outstanding token of the grant must die.
    pub epoch: u64,
}
