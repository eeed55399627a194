//! `GET /v1/audit/export`: the audit log for a SIEM, as JSON lines (`application/x-ndjson`),
//! one line per record in `seq` order.
//!
//! - `format=jsonl`: `{seq, hash, record}` — the record exactly as chained;
//! - `format=ocsf` (default): one OCSF 1.1.0 event per record ([`ocsf_event`]).
//!
//! Paging: `after=SEQ` (default 0) and `limit=N` (default 1000, at most 10000). When a page is
//! full, the reply carries `X-Charter-Next: <last seq>` and a `Link: <…>; rel="next"` header
//! for the next page; the last page has neither.
//!
//! Every OCSF event keeps the chain in `metadata` (`uid` = record hash, `sequence` = seq,
//! `unmapped.prev` = the previous hash), so a SIEM can check that what it holds is complete
//! and unaltered, and Charter's attribution (partner, grant, use case, approvals, credential,
//! jti, API, emergency incident) in `unmapped`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use charter_core::Role;
use charter_evidence::AuditRecord;
use charter_evidence::action;
use charter_store::AuditQuery;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::state::Shared;

pub const DEFAULT_EXPORT_PAGE: u32 = 1000;
pub const MAX_EXPORT_PAGE: u32 = 10_000;
/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.1.0";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `ocsf` (default) or `jsonl`.
    pub format: Option<String>,
    /// Records after this sequence number.
    pub after: Option<u64>,
    /// Records per reply (1–10000, default 1000).
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ocsf,
    Jsonl,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ocsf => "ocsf",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The audit log as JSON lines for a SIEM (OCSF 1.1.0 events or the raw chained records).
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportParams),
    responses((status = 200, description = "one JSON object per line; `X-Charter-Next` names the next `after` when the page is full",
        content_type = "application/x-ndjson", body = String)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<Shared>,
    caller: Caller,
    Params(p): Params<ExportParams>,
) -> ApiResult<Response> {
    caller.require(&[Role::Auditor, Role::Steward])?;
    let format = match p.format.as_deref() {
        None | Some("ocsf") => Format::Ocsf,
        Some("jsonl") => Format::Jsonl,
        Some(_) => return Err(ApiError::Invalid("format is ocsf or jsonl".into())),
    };
    let limit = match p.limit {
        None => DEFAULT_EXPORT_PAGE,
        Some(n) if (1..=MAX_EXPORT_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::Invalid(format!(
                "limit must be between 1 and {MAX_EXPORT_PAGE}"
            )));
        }
    };
    let mut after = p.after.unwrap_or(0);
    let mut body = String::new();
    let mut sent = 0u32;
    while sent < limit {
        let rows = state
            .repo
            .store
            .audit_query(&AuditQuery {
                after,
                limit: (limit - sent).min(DEFAULT_EXPORT_PAGE),
                ..AuditQuery::default()
            })
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            let record: AuditRecord = serde_json::from_str(&row.body).map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!("audit record {} unreadable: {e}", row.seq))
            })?;
            let line = match format {
                Format::Jsonl => json!({ "seq": row.seq, "hash": row.hash, "record": record }),
                Format::Ocsf => ocsf_event(row.seq, &row.hash, &record),
            };
            body.push_str(&line.to_string());
            body.push('\n');
            sent += 1;
        }
    }
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if sent == limit {
        let link = format!(
            "</v1/audit/export?format={}&after={after}&limit={limit}>; rel=\"next\"",
            format.as_str()
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, v);
        }
        headers.insert("x-charter-next", HeaderValue::from(after));
    }
    Ok(resp)
}

/// An OCSF event class.
struct Class {
    uid: u64,
    name: &'static str,
    category_uid: u64,
    category_name: &'static str,
}

const API_ACTIVITY: Class = Class {
    uid: 6003,
    name: "API Activity",
    category_uid: 6,
    category_name: "Application Activity",
};
const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const ACCOUNT_CHANGE: Class = Class {
    uid: 3001,
    name: "Account Change",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const BASE_EVENT: Class = Class {
    uid: 0,
    name: "Base Event",
    category_uid: 0,
    category_name: "Uncategorized",
};

/// The OCSF activity of a record.
///
/// | Charter action | class | activity_id (caption) |
/// |---|---|---|
/// | `access.decision` | API Activity 6003 | by HTTP method: POST 1 Create, GET/HEAD 2 Read, PUT/PATCH 3 Update, DELETE 4 Delete, other 99 Other, none 0 Unknown |
/// | `access.outcome` | API Activity 6003 | 99 Other (the upstream's answer; joined by `correlation_uid`) |
/// | `token.issue` | Authentication 3002 | 1 Logon, success |
/// | `token.refused` | Authentication 3002 | 1 Logon, failure |
/// | `token.revoke` | Authentication 3002 | 2 Logoff |
/// | `auth.failed`, `auth.rate_limited` (admin API) | Authentication 3002 | 1 Logon, failure |
/// | `*.create`, `*.bootstrap`, `api.publish`, `grant.request`, `credential.issue`, `review.start`, `review.open` | Account Change 3001 | 1 Create |
/// | `grant.resume` | Account Change 3001 | 2 Enable |
/// | `principal.rotate`, `credential.rotate` | Account Change 3001 | 4 Password Reset |
/// | `principal.disable`, `grant.suspend`, `grant.suspend_overdue`, `partner.offboard_start`, `credential.expire` | Account Change 3001 | 5 Disable |
/// | `credential.revoke`, `partner.offboard` | Account Change 3001 | 6 Delete |
/// | `grant.approve`, `grant.emergency_open` | Account Change 3001 | 7 Attach Policy |
/// | `grant.revoke`, `grant.expire`, `grant.emergency_end` | Account Change 3001 | 8 Detach Policy |
/// | any other `principal.` `partner.` `grant.` `credential.` `api.` `review.` `key.` `evidence_key.` action | Account Change 3001 | 99 Other |
/// | anything else (`audit.checkpoint`, `gateway.register`, …) | Base Event 0 | 99 Other |
///
/// Account Change and Base Event name the activity by the Charter action
/// (`activity_name` = action); the others use the OCSF caption.
fn classify(rec: &AuditRecord) -> (&'static Class, u64, String) {
    let action = rec.action.as_str();
    let caption = |id: u64, names: &[(u64, &str)]| {
        names
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("Other", |(_, n)| n)
            .to_owned()
    };
    const API: [(u64, &str); 6] = [
        (0, "Unknown"),
        (1, "Create"),
        (2, "Read"),
        (3, "Update"),
        (4, "Delete"),
        (99, "Other"),
    ];
    const AUTH: [(u64, &str); 3] = [(1, "Logon"), (2, "Logoff"), (99, "Other")];
    match action {
        action::ACCESS_DECISION => {
            let id = match rec.details.get("method").and_then(Value::as_str) {
                None => 0,
                Some(m) => match m.to_ascii_uppercase().as_str() {
                    "POST" => 1,
                    "GET" | "HEAD" => 2,
                    "PUT" | "PATCH" => 3,
                    "DELETE" => 4,
                    _ => 99,
                },
            };
            (&API_ACTIVITY, id, caption(id, &API))
        }
        action::ACCESS_OUTCOME => (&API_ACTIVITY, 99, caption(99, &API)),
        action::TOKEN_ISSUE
        | action::TOKEN_REFUSED
        | action::AUTH_FAILED
        | action::AUTH_RATE_LIMITED => (&AUTHENTICATION, 1, caption(1, &AUTH)),
        action::TOKEN_REVOKE => (&AUTHENTICATION, 2, caption(2, &AUTH)),
        _ => {
            let lifecycle = [
                "principal.",
                "partner.",
                "grant.",
                "credential.",
                "api.",
                "review.",
                "key.",
                "evidence_key.",
            ]
            .iter()
            .any(|p| action.starts_with(p));
            if !lifecycle {
                return (&BASE_EVENT, 99, action.to_owned());
            }
            let id = match action {
                action::GRANT_REQUEST
                | action::API_PUBLISH
                | action::CREDENTIAL_ISSUE
                | action::REVIEW_START
                | action::REVIEW_OPEN => 1,
                a if a.ends_with(".create") || a.ends_with(".bootstrap") => 1,
                action::GRANT_RESUME => 2,
                action::PRINCIPAL_ROTATE | action::CREDENTIAL_ROTATE => 4,
                action::PRINCIPAL_DISABLE
                | action::GRANT_SUSPEND
                | action::GRANT_SUSPEND_OVERDUE
                | action::PARTNER_OFFBOARD_START
                | action::CREDENTIAL_EXPIRE => 5,
                action::CREDENTIAL_REVOKE | action::PARTNER_OFFBOARD => 6,
                action::GRANT_APPROVE | action::GRANT_EMERGENCY_OPEN => 7,
                action::GRANT_REVOKE | action::GRANT_EXPIRE | action::GRANT_EMERGENCY_END => 8,
                _ => 99,
            };
            (&ACCOUNT_CHANGE, id, action.to_owned())
        }
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Charter's attribution of a record: partner, grant, use case, approvals, credential, jti,
/// API and emergency incident, from the record's details (or the object it shows `after`
/// the change), and from its target where the action names the object kind.
fn attribution(rec: &AuditRecord) -> Map<String, Value> {
    let d = &rec.details;
    let after = d.get("after").filter(|a| a.is_object());
    let pick = |key: &str| -> Option<Value> {
        d.get(key)
            .filter(|v| !v.is_null())
            .or_else(|| after.and_then(|a| a.get(key)).filter(|v| !v.is_null()))
            .cloned()
    };
    let kind = rec.action.split('.').next().unwrap_or_default();
    let own = |k: &str| (kind == k && !rec.target.is_empty()).then(|| json!(rec.target));
    let mut out = Map::new();
    let mut put = |key: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(key.to_owned(), v);
        }
    };
    put("partner", own("partner").or_else(|| pick("partner")));
    put(
        "grant",
        own("grant")
            .or_else(|| pick("grant"))
            .or_else(|| (rec.action == action::REVIEW_ATTEST).then(|| json!(rec.target))),
    );
    put("use_case", pick("use_case"));
    put(
        "approvals",
        pick("approvals").map(|a| match a {
            // A grant's approvals are objects; records elsewhere list the approvers.
            Value::Array(list) => Value::Array(
                list.into_iter()
                    .map(|x| x.get("approver").cloned().unwrap_or(x))
                    .collect(),
            ),
            other => other,
        }),
    );
    put(
        "credential",
        own("credential").or_else(|| pick("credential")),
    );
    put("jti", pick("jti"));
    put("api", own("api").or_else(|| pick("api")));
    put(
        "emergency",
        pick("emergency")
            .map(|e| e.get("incident").cloned().unwrap_or(e))
            .or_else(|| pick("incident")),
    );
    out
}

/// Epoch milliseconds of an RFC 3339 time (0 if unreadable).
fn epoch_ms(at: &str) -> i64 {
    at.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .unwrap_or(0)
}

/// One audit record as an OCSF 1.1.0 event (see [`classify`] for the class and activity of
/// each action).
pub fn ocsf_event(seq: u64, hash: &str, rec: &AuditRecord) -> Value {
    let (class, activity_id, activity_name) = classify(rec);
    let d = &rec.details;
    let request_id = str_of(d, "request_id");
    let failed = match rec.action.as_str() {
        action::ACCESS_DECISION => str_of(d, "decision") != Some("allow"),
        action::ACCESS_OUTCOME => d
            .get("status")
            .and_then(Value::as_u64)
            .is_some_and(|s| s >= 400),
        action::TOKEN_REFUSED | action::AUTH_FAILED | action::AUTH_RATE_LIMITED => true,
        _ => false,
    };
    let (severity_id, severity) = match rec.action.as_str() {
        action::AUTH_RATE_LIMITED | action::GRANT_EMERGENCY_OPEN => (3, "Medium"),
        _ if failed => (2, "Low"),
        _ => (1, "Informational"),
    };
    let type_name = format!(
        "{}: {}",
        class.name,
        if class.uid == ACCOUNT_CHANGE.uid || class.uid == BASE_EVENT.uid {
            rec.action.as_str()
        } else {
            activity_name.as_str()
        }
    );
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "product": { "name": "Charter", "vendor_name": "Charter" },
        "uid": hash,
        "sequence": seq,
        "original_time": rec.at,
        "log_name": "audit",
    });
    if let Some(r) = request_id {
        metadata["correlation_uid"] = json!(r);
    }
    let mut ev = json!({
        "class_uid": class.uid,
        "class_name": class.name,
        "category_uid": class.category_uid,
        "category_name": class.category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class.uid * 100 + activity_id,
        "type_name": type_name,
        "time": epoch_ms(&rec.at),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": if failed { 2 } else { 1 },
        "status": if failed { "Failure" } else { "Success" },
        "actor": { "user": { "uid": rec.actor } },
        "metadata": metadata,
    });
    if let Some(reason) = &rec.reason {
        ev["status_detail"] = json!(reason);
    }
    if let Some(ip) = str_of(d, "source") {
        ev["src_endpoint"] = json!({ "ip": ip });
    }
    let attribution = attribution(rec);
    match class.uid {
        6003 => {
            let method = str_of(d, "method");
            let path = str_of(d, "path");
            let op = d.get("operation");
            let operation = match (op, method) {
                (Some(op), _) => format!(
                    "{} {}",
                    str_of(op, "method").unwrap_or_default(),
                    str_of(op, "path").unwrap_or_default()
                ),
                (None, Some(m)) => format!("{m} {}", path.unwrap_or_default()),
                (None, None) => rec.action.clone(),
            };
            let mut api = json!({ "operation": operation });
            if let Some(r) = request_id {
                api["request"] = json!({ "uid": r });
            }
            if let Some(a) = attribution.get("api") {
                api["service"] = json!({ "uid": a });
            }
            if let Some(s) = d.get("status").and_then(Value::as_u64) {
                api["response"] = json!({ "code": s });
                ev["http_response"] = json!({ "code": s });
            }
            ev["api"] = api;
            if let Some(m) = method {
                let mut req = json!({ "http_method": m });
                if let Some(p) = path {
                    req["url"] = json!({ "path": p });
                }
                if let Some(r) = request_id {
                    req["uid"] = json!(r);
                }
                ev["http_request"] = req;
            }
            if let Some(us) = d.get("latency_us").and_then(Value::as_u64) {
                ev["duration"] = json!(us / 1000);
            }
            let client = str_of(d, "client_id").unwrap_or(rec.actor.as_str());
            ev["actor"] = json!({ "user": { "uid": client } });
        }
        3002 => {
            let client = str_of(d, "client_id").unwrap_or(rec.actor.as_str());
            ev["user"] = json!({ "uid": client });
            if rec.action.starts_with("token.") {
                ev["auth_protocol_id"] = json!(6);
                ev["auth_protocol"] = json!("OAUTH 2.0");
            } else {
                ev["auth_protocol_id"] = json!(99);
                ev["auth_protocol"] = json!("Bearer token (admin API)");
            }
            ev["service"] = json!({ "name": "Charter" });
            if let Some(jti) = str_of(d, "jti") {
                let mut session = json!({ "uid": jti });
                if let Some(exp) = d.get("exp").and_then(Value::as_i64) {
                    session["expiration_time"] = json!(exp.saturating_mul(1000));
                }
                ev["session"] = session;
            }
        }
        3001 => {
            let kind = rec.action.split('.').next().unwrap_or_default();
            let user = if kind == "principal" {
                json!({ "uid": rec.target, "type_id": 1, "type": "User" })
            } else {
                json!({ "uid": rec.target, "type_id": 99, "type": kind })
            };
            ev["user"] = user;
        }
        _ => {}
    }
    ev["message"] = json!(message(rec));
    let mut unmapped = Map::new();
    unmapped.insert("action".into(), json!(rec.action));
    unmapped.insert("target".into(), json!(rec.target));
    unmapped.insert("prev".into(), json!(rec.prev));
    if rec.action.starts_with("token.") && rec.action != action::TOKEN_REVOKE {
        unmapped.insert("grant_type".into(), json!("client_credentials"));
    }
    for key in ["decision", "mode", "gateway", "scope", "dpop_jkt"] {
        if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
            unmapped.insert(key.into(), v.clone());
        }
    }
    if let Some(op) = d.get("operation").filter(|v| v.is_object()) {
        unmapped.insert("operation".into(), op.clone());
    }
    if rec.action == crate::checkpoints::ACTION {
        // The signed checkpoint line itself: a SIEM holding the export holds checkpoints.
        unmapped.insert("checkpoint".into(), d.clone());
    }
    unmapped.extend(attribution);
    ev["unmapped"] = Value::Object(unmapped);
    ev
}

/// A one-line human summary.
fn message(rec: &AuditRecord) -> String {
    let d = &rec.details;
    match rec.action.as_str() {
        action::ACCESS_DECISION => format!(
            "{} {} {}{}",
            str_of(d, "decision").unwrap_or("deny"),
            str_of(d, "method").unwrap_or("?"),
            str_of(d, "path").unwrap_or("?"),
            rec.reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        action::TOKEN_ISSUE => format!("token issued to {} for grant {}", rec.actor, rec.target),
        action::TOKEN_REFUSED => format!(
            "token refused to {}: {}",
            rec.actor,
            rec.reason.as_deref().unwrap_or("refused")
        ),
        _ if rec.target.is_empty() => format!("{} by {}", rec.action, rec.actor),
        _ => format!("{} {} by {}", rec.action, rec.target, rec.actor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        action: &str,
        actor: &str,
        target: &str,
        reason: Option<&str>,
        details: Value,
    ) -> AuditRecord {
        AuditRecord {
            seq: 42,
            at: "2026-11-30T10:00:00.250Z".into(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            reason: reason.map(str::to_owned),
            details,
            prev: "11".repeat(32),
        }
    }

    const GRANT: &str = "grt_01KB0000000000000000000000";
    const PARTNER: &str = "prt_01KB0000000000000000000000";

    fn decision(method: &str, decision: &str, reason: Option<&str>) -> AuditRecord {
        rec(
            action::ACCESS_DECISION,
            "cl_acme",
            GRANT,
            reason,
            json!({
                "decision": decision, "reason": reason, "request_id": "req_1", "mode": "proxy",
                "gateway": "gw_1", "method": method, "path": "/orders/orders/42",
                "source": "10.0.0.7", "client_id": "cl_acme", "jti": "jti_1",
                "credential": "crd_1", "partner": PARTNER, "grant": GRANT,
                "use_case": "Delivery status sync", "api": "api_1", "approvals": ["prn_alice"],
                "emergency": "INC-7",
                "operation": { "scope": "orders:read", "method": "GET", "path": "/orders/{id}", "data_class": "confidential", "region": "eu" },
            }),
        )
    }

    fn ids(ev: &Value) -> (u64, u64, u64, u64) {
        (
            ev["class_uid"].as_u64().unwrap(),
            ev["category_uid"].as_u64().unwrap(),
            ev["activity_id"].as_u64().unwrap(),
            ev["type_uid"].as_u64().unwrap(),
        )
    }

    #[test]
    fn access_decisions_are_api_activity_by_method() {
        for (method, activity) in [
            ("GET", 2),
            ("HEAD", 2),
            ("POST", 1),
            ("PUT", 3),
            ("PATCH", 3),
            ("DELETE", 4),
            ("OPTIONS", 99),
        ] {
            let ev = ocsf_event(42, "hh", &decision(method, "allow", None));
            assert_eq!(ids(&ev), (6003, 6, activity, 600300 + activity), "{method}");
        }
        let allow = ocsf_event(42, "hh", &decision("GET", "allow", None));
        assert_eq!(allow["status"], "Success");
        assert_eq!(allow["actor"]["user"]["uid"], "cl_acme");
        assert_eq!(allow["api"]["request"]["uid"], "req_1");
        assert_eq!(allow["src_endpoint"]["ip"], "10.0.0.7");
        assert_eq!(allow["metadata"]["correlation_uid"], "req_1");
        assert_eq!(allow["time"], 1_796_032_800_250_i64);
        let deny = ocsf_event(
            42,
            "hh",
            &decision("GET", "deny", Some("scope_not_granted")),
        );
        assert_eq!(
            (deny["status_id"].as_u64(), deny["status"].as_str()),
            (Some(2), Some("Failure"))
        );
        assert_eq!(deny["status_detail"], "scope_not_granted");
        assert_eq!(deny["severity_id"], 2);
    }

    #[test]
    fn token_events_are_authentication() {
        let issue = rec(
            action::TOKEN_ISSUE,
            "cl_acme",
            GRANT,
            None,
            json!({ "client_id": "cl_acme", "jti": "j", "exp": 10, "grant": GRANT, "partner": PARTNER }),
        );
        let ev = ocsf_event(1, "h", &issue);
        assert_eq!(ids(&ev), (3002, 3, 1, 300201));
        assert_eq!(
            (ev["status"].as_str(), ev["user"]["uid"].as_str()),
            (Some("Success"), Some("cl_acme"))
        );
        assert_eq!(ev["auth_protocol_id"], 6);
        assert_eq!(ev["session"]["expiration_time"], 10_000);
        let refused = rec(
            action::TOKEN_REFUSED,
            "cl_x",
            "",
            Some("invalid_secret"),
            json!({ "client_id": "cl_x", "source": "10.0.0.9" }),
        );
        let ev = ocsf_event(2, "h", &refused);
        assert_eq!(ids(&ev), (3002, 3, 1, 300201));
        assert_eq!(
            (ev["status"].as_str(), ev["status_detail"].as_str()),
            (Some("Failure"), Some("invalid_secret"))
        );
        let revoke = rec(
            action::TOKEN_REVOKE,
            "cl_x",
            GRANT,
            None,
            json!({ "jti": "j" }),
        );
        assert_eq!(ids(&ocsf_event(3, "h", &revoke)), (3002, 3, 2, 300202));
        let admin = rec(
            action::AUTH_FAILED,
            "anonymous",
            "",
            Some("unknown token"),
            json!({ "source": "1.2.3.4" }),
        );
        let ev = ocsf_event(4, "h", &admin);
        assert_eq!(
            (ev["class_uid"].as_u64(), ev["status_id"].as_u64()),
            (Some(3002), Some(2))
        );
    }

    #[test]
    fn lifecycle_changes_are_account_changes() {
        for (action, activity) in [
            (action::PRINCIPAL_BOOTSTRAP, 1),
            (action::PRINCIPAL_CREATE, 1),
            (action::PARTNER_CREATE, 1),
            (action::API_PUBLISH, 1),
            (action::GRANT_REQUEST, 1),
            (action::CREDENTIAL_ISSUE, 1),
            (action::KEY_CREATE, 1),
            (action::EVIDENCE_KEY_CREATE, 1),
            (action::GRANT_RESUME, 2),
            (action::CREDENTIAL_ROTATE, 4),
            (action::PRINCIPAL_DISABLE, 5),
            (action::GRANT_SUSPEND, 5),
            (action::CREDENTIAL_EXPIRE, 5),
            (action::CREDENTIAL_REVOKE, 6),
            (action::PARTNER_OFFBOARD, 6),
            (action::GRANT_APPROVE, 7),
            (action::GRANT_EMERGENCY_OPEN, 7),
            (action::GRANT_REVOKE, 8),
            (action::GRANT_EXPIRE, 8),
            (action::GRANT_EMERGENCY_END, 8),
            (action::GRANT_REJECT, 99),
            (action::API_REPUBLISH, 99),
            (action::REVIEW_ATTEST, 99),
            (action::KEY_ROTATE, 99),
            (action::PARTNER_UPDATE, 99),
        ] {
            let ev = ocsf_event(
                1,
                "h",
                &rec(action, "prn_steward", "obj_1", None, json!({})),
            );
            assert_eq!(ids(&ev), (3001, 3, activity, 300100 + activity), "{action}");
            assert_eq!(ev["activity_name"], action);
        }
        for other in [
            action::AUDIT_CHECKPOINT,
            action::GATEWAY_REGISTER,
            "something.new",
        ] {
            let ev = ocsf_event(1, "h", &rec(other, "system", "", None, json!({})));
            assert_eq!(ids(&ev), (0, 0, 99, 99), "{other}");
        }
    }

    #[test]
    fn attribution_is_read_from_details_after_and_target() {
        let grant_after = json!({ "after": {
            "id": GRANT, "partner": PARTNER, "api": "api_1", "use_case": "Sync",
            "approvals": [{ "approver": "prn_alice", "decision": "approve" }],
            "emergency": { "incident": "INC-9" },
        }, "justification": "ok" });
        let ev = ocsf_event(
            5,
            "h",
            &rec(
                action::GRANT_APPROVE,
                "prn_alice",
                GRANT,
                Some("ok"),
                grant_after,
            ),
        );
        let u = &ev["unmapped"];
        assert_eq!(u["grant"], GRANT);
        assert_eq!(u["partner"], PARTNER);
        assert_eq!(u["api"], "api_1");
        assert_eq!(u["use_case"], "Sync");
        assert_eq!(u["approvals"], json!(["prn_alice"]));
        assert_eq!(u["emergency"], "INC-9");
        let cred = rec(
            action::CREDENTIAL_ISSUE,
            "prn_s",
            "crd_1",
            None,
            json!({ "after": { "id": "crd_1", "grant": GRANT, "partner": PARTNER }, "grant": GRANT, "partner": PARTNER }),
        );
        let u = &ocsf_event(6, "h", &cred)["unmapped"];
        assert_eq!(
            (u["credential"].as_str(), u["grant"].as_str()),
            (Some("crd_1"), Some(GRANT))
        );
        let partner = rec(
            action::PARTNER_CREATE,
            "prn_s",
            PARTNER,
            None,
            json!({ "after": { "id": PARTNER } }),
        );
        assert_eq!(ocsf_event(7, "h", &partner)["unmapped"]["partner"], PARTNER);
    }

    #[test]
    fn snapshot_one_event_per_class() {
        let events = [
            (
                "api_activity",
                ocsf_event(42, &"aa".repeat(32), &decision("GET", "allow", None)),
            ),
            (
                "authentication",
                ocsf_event(
                    43,
                    &"bb".repeat(32),
                    &rec(
                        action::TOKEN_ISSUE,
                        "cl_acme",
                        GRANT,
                        None,
                        json!({
                            "partner": PARTNER, "grant": GRANT, "use_case": "Delivery status sync",
                            "approvals": ["prn_alice"], "api": "api_1", "credential": "crd_1",
                            "client_id": "cl_acme", "jti": "jti_1", "scope": "orders:read",
                            "exp": 1_796_033_100_i64, "epoch": 0, "source": "10.0.0.7",
                        }),
                    ),
                ),
            ),
            (
                "account_change",
                ocsf_event(
                    44,
                    &"cc".repeat(32),
                    &rec(
                        action::GRANT_REVOKE,
                        "prn_steward",
                        GRANT,
                        Some("contract ended"),
                        json!({
                            "changed": { "status": ["active", "revoked"] },
                            "after": { "id": GRANT, "partner": PARTNER, "api": "api_1", "use_case": "Delivery status sync",
                                "approvals": [{ "approver": "prn_alice", "decision": "approve" }], "emergency": null },
                        }),
                    ),
                ),
            ),
            (
                "base_event",
                ocsf_event(
                    45,
                    &"dd".repeat(32),
                    &rec(
                        action::AUDIT_CHECKPOINT,
                        "system",
                        "",
                        None,
                        json!({
                            "seq": 44, "hash": "cc".repeat(32), "at": "2026-11-30T10:00:00Z", "kid": "evk_1",
                            "signature": "eyJhbGciOiJFZERTQSJ9..c2ln",
                        }),
                    ),
                ),
            ),
        ];
        for (name, ev) in events {
            insta::assert_snapshot!(name, serde_json::to_string_pretty(&ev).unwrap());
        }
    }
}
