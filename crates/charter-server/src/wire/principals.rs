//! Principals on the wire: the principal reply (with its token, once) and the create and
//! rotate bodies.

use charter_core::Name;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Role;

/// Someone (or some service) that calls the admin API. The bearer token is not part of the
/// record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the current token stops working.
    #[schema(value_type = String, format = DateTime)]
    pub token_expires_at: Timestamp,
    pub disabled: bool,
}

impl From<&charter_core::Principal> for Principal {
    fn from(p: &charter_core::Principal) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name.to_string(),
            roles: p.roles.iter().map(|&r| r.into()).collect(),
            created_at: p.created_at,
            token_expires_at: p.token_expires_at,
            disabled: p.disabled,
        }
    }
}

/// A principal with its bearer token, which is shown only in this reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalWithToken {
    #[serde(flatten)]
    pub principal: Principal,
    pub token: String,
}

/// The `POST /v1/principals` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrincipal {
    #[schema(value_type = String)]
    pub name: Name,
    pub roles: Vec<Role>,
    /// Token lifetime in days (1–365, default from settings: 90).
    pub token_days: Option<u32>,
}

/// The optional `POST /v1/principals/{id}/rotate` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    pub token_days: Option<u32>,
}
