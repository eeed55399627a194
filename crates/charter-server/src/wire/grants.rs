//! Grants on the wire: the grant reply (with approvals, time window, emergency), the
//! `POST /v1/grants` request and an approver's decision.

use charter_core::grant::ApprovalInput;
use charter_core::{ApiId, Environment, Name, PartnerId, Region, Scope};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DataClass, TimeWindow, opt_string, strings, wire_enum};

wire_enum!(
    #[serde(rename_all = "snake_case")]
    GrantStatus = charter_core::GrantStatus {
        Pending,
        Active,
        Suspended,
        Revoked,
        Expired,
        Rejected
    }
);

wire_enum!(
    #[serde(rename_all = "snake_case")]
    ApprovalDecision = charter_core::ApprovalDecision { Approve, Reject }
);

/// Break-glass access opened under an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Emergency {
    #[schema(value_type = String)]
    pub incident: Name,
}

impl From<&charter_core::Emergency> for Emergency {
    fn from(e: &charter_core::Emergency) -> Self {
        Self {
            incident: e.incident.clone(),
        }
    }
}

impl From<Emergency> for charter_core::Emergency {
    fn from(e: Emergency) -> Self {
        Self {
            incident: e.incident,
        }
    }
}

/// One approver's decision on a grant request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Approval {
    pub approver: String,
    pub decision: ApprovalDecision,
    pub justification: String,
    pub ticket: Option<String>,
    /// The recorded exception that lets a SaaS connector reach data above `internal`.
    pub data_exception: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl From<&charter_core::Approval> for Approval {
    fn from(a: &charter_core::Approval) -> Self {
        Self {
            approver: a.approver.to_string(),
            decision: a.decision.into(),
            justification: a.justification.to_string(),
            ticket: opt_string(&a.ticket),
            data_exception: opt_string(&a.data_exception),
            at: a.at,
        }
    }
}

/// One partner's access path to one API for one stated use case.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Grant {
    pub id: String,
    pub partner: String,
    pub api: String,
    pub use_case: String,
    pub scopes: Vec<String>,
    pub data_class_ceiling: DataClass,
    /// Data regions the grant may reach.
    pub regions: Vec<String>,
    pub environments: Vec<String>,
    /// Legal basis for reaching a region outside the partner's processing regions.
    pub transfer_basis: Option<String>,
    pub time_window: Option<TimeWindow>,
    pub require_dpop: bool,
    /// A SaaS connector's grant above `internal` data: every approval must record an
    /// explicit data exception.
    pub data_exception_required: bool,
    pub emergency: Option<Emergency>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub token_ttl_seconds: u32,
    pub recertify_every_days: u32,
    pub approvals_required: u32,
    pub status: GrantStatus,
    /// Why the grant is in its current state (suspension, revocation, …).
    pub status_reason: Option<String>,
    pub requested_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    /// The partner's owners when the grant was requested: only they approve it (and attest
    /// its reviews), whatever the owners are now.
    pub approvers: Vec<String>,
    pub approvals: Vec<Approval>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub activated_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub review_due_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// Bumped whenever every outstanding token of the grant must die.
    pub epoch: u64,
}

impl From<&charter_core::Grant> for Grant {
    fn from(g: &charter_core::Grant) -> Self {
        Self {
            id: g.id.to_string(),
            partner: g.partner.to_string(),
            api: g.api.to_string(),
            use_case: g.use_case.to_string(),
            scopes: strings(&g.scopes),
            data_class_ceiling: g.data_class_ceiling.into(),
            regions: strings(&g.regions),
            environments: strings(&g.environments),
            transfer_basis: opt_string(&g.transfer_basis),
            time_window: g.time_window.as_ref().map(TimeWindow::from),
            require_dpop: g.require_dpop,
            data_exception_required: g.data_exception_required,
            emergency: g.emergency.as_ref().map(Emergency::from),
            expires_at: g.expires_at,
            token_ttl_seconds: g.token_ttl_seconds,
            recertify_every_days: g.recertify_every_days,
            approvals_required: g.approvals_required,
            status: g.status.into(),
            status_reason: opt_string(&g.status_reason),
            requested_by: g.requested_by.to_string(),
            requested_at: g.requested_at,
            approvers: strings(&g.approvers),
            approvals: g.approvals.iter().map(Approval::from).collect(),
            activated_at: g.activated_at,
            review_due_at: g.review_due_at,
            ended_at: g.ended_at,
            epoch: g.epoch,
        }
    }
}

/// A grant request as a steward submits it (the `POST /v1/grants` body).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    #[schema(value_type = String)]
    pub partner: PartnerId,
    #[schema(value_type = String)]
    pub api: ApiId,
    #[schema(value_type = String)]
    pub use_case: Name,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
    pub data_class_ceiling: DataClass,
    #[schema(value_type = Vec<String>)]
    pub regions: Vec<Region>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub environments: Option<Vec<Environment>>,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    #[serde(default)]
    pub token_ttl_seconds: Option<u32>,
    #[serde(default)]
    pub recertify_every_days: Option<u32>,
    #[serde(default)]
    pub approvals_required: Option<u32>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub transfer_basis: Option<Name>,
    #[serde(default)]
    #[schema(value_type = Option<TimeWindow>)]
    pub time_window: Option<charter_core::TimeWindow>,
    #[serde(default)]
    pub require_dpop: Option<bool>,
    #[serde(default)]
    pub emergency: Option<Emergency>,
}

impl From<GrantRequest> for charter_core::grant::GrantRequest {
    fn from(r: GrantRequest) -> Self {
        Self {
            partner: r.partner,
            api: r.api,
            use_case: r.use_case,
            scopes: r.scopes,
            data_class_ceiling: r.data_class_ceiling.into(),
            regions: r.regions,
            environments: r.environments,
            expires_at: r.expires_at,
            token_ttl_seconds: r.token_ttl_seconds,
            recertify_every_days: r.recertify_every_days,
            approvals_required: r.approvals_required,
            transfer_basis: r.transfer_basis,
            time_window: r.time_window,
            require_dpop: r.require_dpop,
            emergency: r.emergency.map(Into::into),
        }
    }
}

/// An approver's decision (the `POST /v1/grants/{id}/approvals` body).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub decision: ApprovalDecision,
    #[schema(value_type = String)]
    pub justification: Name,
    #[schema(value_type = Option<String>)]
    pub ticket: Option<Name>,
    /// Required to approve a SaaS connector's grant above `internal` data: why the
    /// exception is accepted.
    #[schema(value_type = Option<String>)]
    pub data_exception: Option<Name>,
}

impl From<Decision> for ApprovalInput {
    fn from(d: Decision) -> Self {
        Self {
            decision: d.decision.into(),
            justification: d.justification,
            ticket: d.ticket,
            data_exception: d.data_exception,
        }
    }
}
