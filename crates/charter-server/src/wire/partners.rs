//! Partners on the wire: the partner reply and the create and patch bodies.

use charter_core::{Name, PrincipalId, Region};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{strings, wire_enum};

wire_enum!(
    #[serde(rename_all = "snake_case")]
    PartnerKind = charter_core::PartnerKind {
        /// The partner integrates with us directly.
        Direct,
        /// A marketplace: several business owners share one data path.
        Reseller,
        /// The vendor runs the integration; we own the data risk.
        SaasConnector,
    }
);

wire_enum!(
    #[serde(rename_all = "snake_case")]
    PartnerStatus = charter_core::PartnerStatus {
        Active,
        Suspended,
        Offboarding,
        Offboarded
    }
);

/// An external organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub kind: PartnerKind,
    /// Where the partner processes data.
    pub regions: Vec<String>,
    /// Business owners accountable for the relationship; they approve its grants.
    pub owners: Vec<String>,
    pub status: PartnerStatus,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Who changed `owners`, and when (oldest first); an admin's act, audited.
    pub owner_changes: Vec<OwnersChange>,
}

/// One change of a partner's owners.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnersChange {
    pub by: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl From<&charter_core::Partner> for Partner {
    fn from(p: &charter_core::Partner) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.to_string(),
            kind: p.kind.into(),
            regions: strings(&p.regions),
            owners: strings(&p.owners),
            status: p.status.into(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            owner_changes: p
                .owner_changes
                .iter()
                .map(|c| OwnersChange {
                    by: c.by.to_string(),
                    at: c.at,
                })
                .collect(),
        }
    }
}

/// The `POST /v1/partners` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    #[schema(value_type = String)]
    pub name: Name,
    pub kind: PartnerKind,
    #[schema(value_type = Vec<String>)]
    pub regions: Vec<Region>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub owners: Vec<PrincipalId>,
}

/// The `PATCH /v1/partners/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPartner {
    #[schema(value_type = Option<Vec<String>>)]
    pub regions: Option<Vec<Region>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub owners: Option<Vec<PrincipalId>>,
}
