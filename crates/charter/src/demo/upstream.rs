//! The demo upstream: a tiny orders-and-customers service that the demo APIs proxy to (and
//! the returns API of `examples/returns.toml`, which the README's walkthrough publishes).
//! Canned but plausible data; it knows nothing about Charter and trusts the gateway in
//! front of it (it echoes the `X-Charter-*` identity headers it receives).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
struct Orders {
    next: AtomicU64,
}

/// `GET /orders`, `GET /orders/{id}`, `POST /orders`, `GET /customers/{id}`,
/// `GET /customers/export`, `GET /returns/{id}`.
pub fn router() -> Router {
    let state = Arc::new(Orders {
        next: AtomicU64::new(1043),
    });
    Router::new()
        .route("/orders", get(list_orders).post(create_order))
        .route("/orders/{id}", get(get_order))
        .route("/customers/export", get(export_customers))
        .route("/customers/{id}", get(get_customer))
        .route("/returns/{id}", get(get_return))
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .with_state(state)
}

fn order(id: &str) -> Value {
    json!({
        "id": id,
        "customer": "cus_3107",
        "status": "shipped",
        "placed_at": "2026-11-28T09:14:00Z",
        "currency": "EUR",
        "total": "1249.90",
        "lines": [
            { "sku": "PAL-EU-1200", "description": "Euro pallet, heat treated", "quantity": 40, "unit_price": "24.90" },
            { "sku": "WRAP-23", "description": "Stretch film, 23 µm", "quantity": 12, "unit_price": "21.16" }
        ],
        "ship_to": { "city": "Rotterdam", "country": "NL" },
        "carrier": { "name": "Acme Logistics", "tracking": "ACM-7731-0042" }
    })
}

/// Which partner and grant the gateway says this call is for.
fn served_to(headers: &HeaderMap) -> Value {
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    json!({
        "partner": h("x-charter-partner"),
        "grant": h("x-charter-grant"),
        "request_id": h("x-request-id"),
    })
}

async fn get_order(headers: HeaderMap, Path(id): Path<String>) -> Json<Value> {
    let mut o = order(&id);
    o["served_to"] = served_to(&headers);
    Json(o)
}

async fn list_orders(headers: HeaderMap) -> Json<Value> {
    Json(json!({
        "items": [
            { "id": "ord_1040", "status": "delivered", "total": "310.00", "currency": "EUR" },
            { "id": "ord_1041", "status": "shipped", "total": "1249.90", "currency": "EUR" },
            { "id": "ord_1042", "status": "picking", "total": "89.50", "currency": "EUR" }
        ],
        "next": null,
        "served_to": served_to(&headers),
    }))
}

async fn create_order(
    State(state): State<Arc<Orders>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let n = state.next.fetch_add(1, Ordering::Relaxed);
    let submitted: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (
        StatusCode::CREATED,
        Json(json!({
            "id": format!("ord_{n}"),
            "status": "received",
            "lines": submitted.get("lines").cloned().unwrap_or_else(|| json!([])),
            "served_to": served_to(&headers),
        })),
    )
}

async fn get_customer(headers: HeaderMap, Path(id): Path<String>) -> Json<Value> {
    Json(json!({
        "id": id,
        "name": "Van der Berg Distributie B.V.",
        "contact": { "name": "Eva van der Berg", "email": "eva@vdberg.example" },
        "vat_id": "NL859123456B01",
        "segment": "wholesale",
        "data_region": "eu",
        "served_to": served_to(&headers),
    }))
}

async fn get_return(headers: HeaderMap, Path(id): Path<String>) -> Json<Value> {
    Json(json!({
        "id": id,
        "order": "ord_1041",
        "status": "awaiting_pickup",
        "reason": "damaged in transit",
        "pickup": { "city": "Rotterdam", "country": "NL", "window": "2026-12-02T08:00:00Z/PT4H" },
        "served_to": served_to(&headers),
    }))
}

async fn export_customers(headers: HeaderMap) -> Json<Value> {
    Json(json!({
        "format": "crm-v2",
        "region": "us",
        "records": [
            { "id": "cus_9001", "name": "Hooli Supply Inc.", "email": "ap@hooli.example" },
            { "id": "cus_9002", "name": "Initrode LLC", "email": "orders@initrode.example" }
        ],
        "served_to": served_to(&headers),
    }))
}
