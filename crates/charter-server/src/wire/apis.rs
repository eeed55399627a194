//! APIs on the wire: the API reply with its operations and the publish body.

use charter_core::{ApiName, Audience, PathTemplate, PrincipalId, Region, Scope, UpstreamUrl};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DataClass, Method};

/// One operation of an API: what a scope lets a caller do, and what data it touches.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    #[schema(value_type = String)]
    pub scope: Scope,
    pub method: Method,
    #[schema(value_type = String)]
    pub path: PathTemplate,
    pub data_class: DataClass,
    #[schema(value_type = String)]
    pub region: Region,
}

impl From<&charter_core::Operation> for Operation {
    fn from(op: &charter_core::Operation) -> Self {
        Self {
            scope: op.scope.clone(),
            method: op.method.into(),
            path: op.path.clone(),
            data_class: op.data_class.into(),
            region: op.region.clone(),
        }
    }
}

impl From<Operation> for charter_core::Operation {
    fn from(op: Operation) -> Self {
        Self {
            scope: op.scope,
            method: op.method.into(),
            path: op.path,
            data_class: op.data_class.into(),
            region: op.region,
        }
    }
}

/// A published API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Api {
    pub id: String,
    pub name: String,
    pub audience: String,
    pub upstream: String,
    pub owner: String,
    pub operations: Vec<Operation>,
    /// Incremented on every republish.
    pub revision: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<&charter_core::Api> for Api {
    fn from(a: &charter_core::Api) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.name.to_string(),
            audience: a.audience.to_string(),
            upstream: a.upstream.to_string(),
            owner: a.owner.to_string(),
            operations: a.operations.iter().map(Operation::from).collect(),
            revision: a.revision,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// The body of `POST /v1/apis` and `PUT /v1/apis/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishApi {
    #[schema(value_type = String)]
    pub name: ApiName,
    #[schema(value_type = String)]
    pub audience: Audience,
    #[schema(value_type = String)]
    pub upstream: UpstreamUrl,
    /// The accountable API owner (a principal with role `api_owner`); defaults to the caller.
    #[schema(value_type = Option<String>)]
    pub owner: Option<PrincipalId>,
    pub operations: Vec<Operation>,
}
