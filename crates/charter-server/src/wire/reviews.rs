//! Reviews on the wire: recertification campaigns and post-incident reviews, their items
//! with usage evidence and decisions, and the start and attest bodies.

use std::collections::BTreeMap;

use charter_core::review::Attest;
use charter_core::{ApiId, Name, PartnerId, PrincipalId, Scope};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DataClass, Emergency, GrantStatus, opt_string, strings, wire_enum};

wire_enum!(
    #[serde(rename_all = "snake_case")]
    ReviewKind = charter_core::review::ReviewKind {
        Recertification,
        PostIncident
    }
);

wire_enum!(
    #[serde(rename_all = "snake_case")]
    ReviewStatus = charter_core::review::ReviewStatus { Open, Completed }
);

wire_enum!(
    #[serde(rename_all = "snake_case")]
    AttestDecision = charter_core::review::AttestDecision {
        Keep,
        Reduce,
        Revoke
    }
);

/// What a review covers: `{type: "partner" | "api" | "grant", id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum ReviewSubject {
    /// Every grant of a partner.
    Partner(String),
    /// Every grant on an API.
    Api(String),
    /// One grant (a post-incident review).
    Grant(String),
}

impl From<&charter_core::review::ReviewSubject> for ReviewSubject {
    fn from(s: &charter_core::review::ReviewSubject) -> Self {
        use charter_core::review::ReviewSubject as S;
        match s {
            S::Partner(id) => Self::Partner(id.to_string()),
            S::Api(id) => Self::Api(id.to_string()),
            S::Grant(id) => Self::Grant(id.to_string()),
        }
    }
}

/// How a grant was used over the review period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageEvidence {
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_call_at: Option<Timestamp>,
    pub calls_by_scope: BTreeMap<String, u64>,
    pub scopes_never_used: Vec<String>,
    pub denials: u64,
    pub period_days: u32,
    #[schema(value_type = String, format = DateTime)]
    pub period_start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub period_end: Timestamp,
}

impl From<&charter_core::review::UsageEvidence> for UsageEvidence {
    fn from(e: &charter_core::review::UsageEvidence) -> Self {
        Self {
            last_call_at: e.last_call_at,
            calls_by_scope: e.calls_by_scope.clone(),
            scopes_never_used: strings(&e.scopes_never_used),
            denials: e.denials,
            period_days: e.period_days,
            period_start: e.period_start,
            period_end: e.period_end,
        }
    }
}

/// A reviewer's recorded decision on one item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attestation {
    pub decision: AttestDecision,
    /// With `reduce`: the scopes kept. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    pub justification: String,
    pub by: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl From<&charter_core::review::Attestation> for Attestation {
    fn from(a: &charter_core::review::Attestation) -> Self {
        Self {
            decision: a.decision.into(),
            scopes: a.scopes.as_deref().map(strings),
            justification: a.justification.to_string(),
            by: a.by.to_string(),
            at: a.at,
        }
    }
}

/// One grant under review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewItem {
    pub id: String,
    pub kind: ReviewKind,
    pub grant: String,
    pub partner: String,
    pub api: String,
    pub use_case: String,
    pub grant_status: GrantStatus,
    pub scopes: Vec<String>,
    pub data_class_ceiling: DataClass,
    pub regions: Vec<String>,
    pub transfer_basis: Option<String>,
    pub cross_border_regions: Vec<String>,
    pub emergency: Option<Emergency>,
    pub requested_by: String,
    pub reviewers: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Timestamp,
    pub evidence: UsageEvidence,
    pub decision: Option<Attestation>,
}

impl From<&charter_core::review::ReviewItem> for ReviewItem {
    fn from(i: &charter_core::review::ReviewItem) -> Self {
        Self {
            id: i.id.clone(),
            kind: i.kind.into(),
            grant: i.grant.to_string(),
            partner: i.partner.to_string(),
            api: i.api.to_string(),
            use_case: i.use_case.to_string(),
            grant_status: i.grant_status.into(),
            scopes: strings(&i.scopes),
            data_class_ceiling: i.data_class_ceiling.into(),
            regions: strings(&i.regions),
            transfer_basis: opt_string(&i.transfer_basis),
            cross_border_regions: strings(&i.cross_border_regions),
            emergency: i.emergency.as_ref().map(Emergency::from),
            requested_by: i.requested_by.to_string(),
            reviewers: strings(&i.reviewers),
            due_at: i.due_at,
            evidence: UsageEvidence::from(&i.evidence),
            decision: i.decision.as_ref().map(Attestation::from),
        }
    }
}

/// A recertification campaign or a post-incident review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Review {
    pub id: String,
    pub kind: ReviewKind,
    pub subject: ReviewSubject,
    pub status: ReviewStatus,
    pub items: Vec<ReviewItem>,
    pub created_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
}

impl From<&charter_core::review::Review> for Review {
    fn from(r: &charter_core::review::Review) -> Self {
        Self {
            id: r.id.to_string(),
            kind: r.kind.into(),
            subject: ReviewSubject::from(&r.subject),
            status: r.status.into(),
            items: r.items.iter().map(ReviewItem::from).collect(),
            created_by: r.created_by.to_string(),
            created_at: r.created_at,
            completed_at: r.completed_at,
        }
    }
}

/// `{partner}` or `{api}`: whose grants the campaign reviews.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartReview {
    #[schema(value_type = Option<String>)]
    pub partner: Option<PartnerId>,
    #[schema(value_type = Option<String>)]
    pub api: Option<ApiId>,
}

/// A reviewer's decision on one item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestBody {
    pub decision: AttestDecision,
    /// With `reduce`: the scopes to keep (a non-empty strict subset of the grant's).
    #[schema(value_type = Option<Vec<String>>)]
    pub scopes: Option<Vec<Scope>>,
    #[schema(value_type = String)]
    pub justification: Name,
}

impl AttestBody {
    /// The core attestation, made by `by`.
    pub fn into_attest(self, by: PrincipalId) -> Attest {
        Attest {
            decision: self.decision.into(),
            scopes: self.scopes,
            justification: self.justification,
            by,
        }
    }
}
