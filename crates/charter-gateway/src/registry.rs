//! Nodes register themselves — gateways and control nodes alike: id, role, the URL they are
//! reached at, environment — and keep a heartbeat in the store, so offboarding can probe
//! every running gateway's check endpoint and every control node's token endpoint and
//! introspection over HTTP.
//!
//! Invariant: a registered URL is an *advertised* URL (`--advertise-url`,
//! `--gateway-advertise-url`) or a specific bound address — never a wildcard such as
//! `0.0.0.0` or `[::]`, which names no host a probe could reach (the server refuses to start
//! rather than register one).

use charter_evidence::action;
use std::sync::Arc;
use std::time::Duration;

use charter_core::Clock;
use charter_store::{AuditRecord, AuditWriter, Kind, Op, Record, Unit, Versioned};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What a registered node enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The check endpoint and the proxy.
    #[default]
    Gateway,
    /// The OAuth endpoints (token, introspection) and the admin API.
    Control,
}

/// The path of a gateway's check endpoint under its URL.
pub const CHECK_PATH: &str = "/v1/authz/check";

/// A running node as registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    #[serde(default)]
    pub kind: NodeKind,
    /// Its advertised base URL (no trailing slash).
    pub url: String,
    pub environment: String,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
}

impl NodeRecord {
    /// A gateway's check endpoint.
    pub fn check_url(&self) -> String {
        format!("{}{CHECK_PATH}", self.url)
    }

    /// Whether the node sent a heartbeat within `alive_seconds` of `now`.
    pub fn is_alive(&self, now: Timestamp, alive_seconds: i64) -> bool {
        now.as_second() - self.heartbeat_at.as_second() <= alive_seconds
    }
}

/// Nodes are stored under the `gateway` kind (gateways registered first; control nodes carry
/// `kind: control`).
impl Record for NodeRecord {
    const KIND: Kind = Kind::Gateway;
    fn id(&self) -> &str {
        &self.id
    }
}

/// Registers the node (audited) and then refreshes its heartbeat every `every` until the
/// process ends.
pub async fn run(
    writer: AuditWriter,
    clock: Arc<dyn Clock>,
    mut record: NodeRecord,
    every: Duration,
) {
    let now = clock.now();
    record.started_at = now;
    record.heartbeat_at = now;
    let audit = AuditRecord {
        seq: 0,
        at: now.to_string(),
        actor: record.id.clone(),
        action: match record.kind {
            NodeKind::Gateway => action::GATEWAY_REGISTER,
            NodeKind::Control => action::CONTROL_REGISTER,
        }
        .into(),
        target: record.id.clone(),
        reason: None,
        details: serde_json::json!({ "url": record.url, "kind": record.kind,
                                     "environment": record.environment }),
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
            tracing::error!(error = %e, node = %record.id, "node registration failed; offboarding cannot probe this node");
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
            Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
        }
    }
}
