//! Request extractors that turn every kind of bad input into an [`ApiError`]: malformed
//! JSON is 400, well-formed JSON of the wrong shape (unknown field, wrong type, bad enum
//! value, a value our types refuse) is 422, an oversized body 413 — always as JSON. Bodies
//! are parsed only after the handler has checked the caller's role ([`Body::parse`]).

use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body, read but not yet parsed: handlers check the caller's role first and
/// then call [`Body::parse`], so a caller without the role gets 403 whatever it sent (never a
/// 400/413/415/422 that would tell it about the body). Extraction itself never fails.
pub struct Body<T> {
    read: Result<(bool, Bytes), ApiError>,
    _shape: PhantomData<fn() -> T>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(req.headers());
        let read = match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok((json, bytes)),
            Err(e) => Err(bytes_rejection(e)),
        };
        Ok(Self {
            read,
            _shape: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Body<T> {
    /// The body as `T`: 415 without a JSON content type, 413 over the limit, 400 malformed,
    /// 422 of the wrong shape.
    pub fn parse(self) -> Result<T, ApiError> {
        let (json, bytes) = self.read?;
        if !json {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(v),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }

    /// An optional body: `None` when empty (whatever the content type), else as [`Body::parse`]
    /// without insisting on the content type.
    pub fn parse_optional(self) -> Result<Option<T>, ApiError> {
        let (_, bytes) = self.read?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_json(&bytes).map(Some)
    }
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge
    } else {
        ApiError::Malformed("the request body could not be read".into())
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::Malformed(format!("malformed JSON: {}", source_text(&e)))
        }
        JsonRejection::JsonDataError(e) => ApiError::Invalid(source_text(&e)),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge
        }
        other => ApiError::Malformed(other.body_text()),
    }
}

/// The innermost cause of a serde rejection: says which field and why, without echoing the
/// whole body.
fn source_text(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let text = cur.to_string();
    text.chars().take(300).collect()
}

/// Parses an optional JSON body read as bytes, with the same error mapping as [`Body`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_data() {
            ApiError::Invalid(e.to_string())
        } else {
            ApiError::Malformed(format!("malformed JSON: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::Malformed(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Query-string parameters.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::Invalid(source_text(&e)))
            }
            Err(other) => Err(ApiError::Malformed(other.body_text())),
        }
    }
}
