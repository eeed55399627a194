//! The one mapping from failures to HTTP: every error leaves as JSON
//! `{error, error_description}` with the right status. Causes go to the log, never into a
//! response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use charter_core::DomainError;
use charter_store::{StoreError, UnitError, WriteError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("request body is larger than 1 MiB")]
    TooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many failed attempts; retry after {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    Unavailable(String),
    /// The audit chain does not verify (409 `chain_broken`, naming the first bad record):
    /// `GET /v1/audit/verify`, and the evidence routes, which never sign over a broken chain.
    #[error("the audit chain is broken at record {}: {}", .0.first_bad_record, .0.reason)]
    ChainBroken(charter_evidence::ChainBreak),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("no such {what}"))
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::ChainBroken(_) => (StatusCode::CONFLICT, "chain_broken"),
            Self::Unexpected(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if let Self::Unexpected(e) = &self {
            tracing::error!(error = ?e, "unexpected error");
        }
        let body = match &self {
            Self::ChainBroken(brk) => serde_json::json!({
                "valid": false,
                "error": code,
                "error_description": brk.reason,
                "first_bad_record": brk.first_bad_record,
            }),
            _ => serde_json::json!({ "error": code, "error_description": self.to_string() }),
        };
        let mut resp = (status, Json(body)).into_response();
        match self {
            Self::Unauthorized(_) => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"charter\""),
                );
            }
            Self::RateLimited(secs) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        resp
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid(m) => Self::Invalid(m),
            DomainError::Conflict(m) => Self::Conflict(m),
            DomainError::Forbidden(m) => Self::Forbidden(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::WriterGone => {
                tracing::error!(error = %e, "store unavailable");
                Self::Unavailable("the store is unavailable; nothing was written".into())
            }
            other => Self::Unexpected(other.into()),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Unit(UnitError::Conflict(m)) => Self::Conflict(m),
            WriteError::Unit(UnitError::Unencodable(m)) => Self::Invalid(m),
            WriteError::Store(s) => s.into(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
