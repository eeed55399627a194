//! Gateways register themselves (id, check URL, environment) and keep a heartbeat in the
//! store, so offboarding can probe every running gateway's check endpoint.

use charter_evidence::action;
use std::sync::Arc;
use std::time::Duration;

use charter_core::Clock;
use charter_store::{AuditRecord, AuditWriter, Kind, Op, Record, Unit, Versioned};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A running gateway as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayRecord {
    pub id: String,
    /// Its check endpoint (`…/v1/authz/check`).
    pub check_url: String,
    pub environment: String,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
}

impl Record for GatewayRecord {
    const KIND: Kind = Kind::Gateway;
    fn id(&self) -> &str {
        &self.id
    }
}

/// Registers the gateway (audited) and then refreshes its heartbeat every `every` until the
/// process ends.
pub async fn run(
    writer: AuditWriter,
    clock: Arc<dyn Clock>,
    mut record: GatewayRecord,
    every: Duration,
) {
    let now = clock.now();
    record.started_at = now;
    record.heartbeat_at = now;
    let audit = AuditRecord {
        seq: 0,
        at: now.to_string(),
        actor: record.id.clone(),
        action: action::GATEWAY_REGISTER.into(),
        target: record.id.clone(),
        reason: None,
        details: serde_json::json!({ "check_url": record.check_url, "environment": record.environment }),
        prev: String::new(),
    };
    let mut version = match writer
        .submit(Unit {
            ops: vec![Op::Insert(Versioned::new_doc(&record, None))],
            audit: vec![audit],
        })
        .await
    {
        Ok(_) => 1,
        Err(e) => {
            tracing::error!(error = %e, "gateway registration failed; offboarding cannot probe this gateway");
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        record.heartbeat_at = clock.now();
        let current = Versioned {
            value: record.clone(),
            version,
            lookup: None,
        };
        match writer
            .submit(Unit {
                ops: vec![Op::Update(current.next_doc(&record))],
                audit: vec![],
            })
            .await
        {
            Ok(_) => version += 1,
            Err(e) => tracing::warn!(error = %e, "gateway heartbeat failed"),
        }
    }
}
