//! Credentials on the wire: the credential reply (with its versions), the issue and rotate
//! bodies, and the one reply that carries a secret.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{opt_string, wire_enum};
use crate::services::credentials::Issued;

wire_enum!(
    #[serde(rename_all = "snake_case")]
    CredentialKind = charter_core::CredentialKind {
        ClientSecret,
        PrivateKeyJwt
    }
);

wire_enum!(
    #[serde(rename_all = "snake_case")]
    CredentialStatus = charter_core::CredentialStatus {
        Active,
        Revoked,
        Expired
    }
);

/// One version of a credential's secret or key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CredentialVersion {
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_after: Option<Timestamp>,
    pub jwk_thumbprint: Option<String>,
}

impl From<&charter_core::credential::CredentialVersion> for CredentialVersion {
    fn from(v: &charter_core::credential::CredentialVersion) -> Self {
        Self {
            version: v.version,
            created_at: v.created_at,
            not_after: v.not_after,
            jwk_thumbprint: v.jwk_thumbprint.clone(),
        }
    }
}

/// What a partner workload authenticates with. Never carries the secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Credential {
    pub id: String,
    pub grant: String,
    pub partner: String,
    pub client_id: String,
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub max_age_days: u32,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub versions: Vec<CredentialVersion>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    pub revoke_reason: Option<String>,
}

impl From<&charter_core::Credential> for Credential {
    fn from(c: &charter_core::Credential) -> Self {
        Self {
            id: c.id.to_string(),
            grant: c.grant.to_string(),
            partner: c.partner.to_string(),
            client_id: c.client_id.clone(),
            kind: c.kind.into(),
            status: c.status.into(),
            created_at: c.created_at,
            max_age_days: c.max_age_days,
            expires_at: c.expires_at,
            versions: c.versions.iter().map(CredentialVersion::from).collect(),
            revoked_at: c.revoked_at,
            revoke_reason: opt_string(&c.revoke_reason),
        }
    }
}

/// The `POST /v1/grants/{id}/credentials` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    pub kind: CredentialKind,
    /// The partner's public JWK (Ed25519 or P-256) for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<Value>,
    /// Lower than the server's maximum age (default 90 days).
    pub max_age_days: Option<u32>,
}

/// The optional `POST /v1/credentials/{id}/rotate` body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredential {
    /// The new public JWK (`private_key_jwt`).
    #[schema(value_type = Option<Object>)]
    pub public_jwk: Option<Value>,
    /// How long the current version keeps working (default 86400; 0 ends it now).
    pub overlap_seconds: Option<u32>,
}

/// The reply that creates or rotates a credential: the only place a secret ever appears.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCredential {
    pub id: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub kind: CredentialKind,
    pub version: u32,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

impl From<Issued> for IssuedCredential {
    fn from(i: Issued) -> Self {
        Self {
            id: i.credential.id.to_string(),
            client_id: i.credential.client_id,
            client_secret: i.client_secret,
            kind: i.credential.kind.into(),
            version: i.version,
            expires_at: i.credential.expires_at,
        }
    }
}
