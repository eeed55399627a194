//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::auth::Caller;
use crate::state::{AppState, Shared};

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "the process is up")))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "the store answers"), (status = 503, description = "it does not")))]
pub async fn readyz(State(state): State<Shared>) -> impl IntoResponse {
    match state.repo.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": state.repo.store.backend() })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable" })),
            )
        }
    }
}

/// Any principal may read the metrics on the control plane (they name routes, clients'
/// failure counts and queue depths); `--metrics-listen` serves them without a token on a
/// listener of their own ([`metrics_open`]).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "no principal token")),
    security(("bearer" = [])))]
pub async fn metrics(State(state): State<Shared>, _caller: Caller) -> impl IntoResponse {
    render(&state)
}

/// `/metrics` on the metrics listener: whoever reaches that listener may scrape.
pub async fn metrics_open(State(state): State<Shared>) -> impl IntoResponse {
    render(&state)
}

fn render(state: &AppState) -> impl IntoResponse + use<> {
    metrics::gauge!("charter_audit_queue_depth").set(state.repo.writer.queue_depth() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
