//! Usage evidence read from the audit log. Every call through a gateway leaves an
//! `access.decision` record whose `target` is the grant it was judged against, with
//! `details.decision` (`allow`/`deny`), `details.operation.scope` (allowed calls),
//! `details.client_id` and `details.source`. Reviews and findings are computed from these
//! records at the time they are asked for; nothing here is stored.
//!
//! Records are read newest first, a page at a time, back to the start of the period asked
//! about, so a question that is answered early ("any call in 30 days?") stops early. A scan
//! reads at most [`MAX_SCAN`] records; past that the answer covers the newest records only
//! and says so (`truncated`).

use charter_evidence::action;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::ControlFlow;

use charter_core::Grant;
use charter_core::review::{ReviewKind, UsageEvidence, UsageTally, evidence_period};
use charter_store::{AuditQuery, AuditRecord, Store, StoreError};
use jiff::{SignedDuration, Timestamp};

/// Most records one scan reads.
pub const MAX_SCAN: u64 = 200_000;
const PAGE: u32 = 1000;
/// Records of several nodes reach the chain in commit order, which may differ from their
/// timestamps by a little; a scan reads this far past the start of its period.
const SKEW: SignedDuration = SignedDuration::from_secs(300);

/// One access decision as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub at: Timestamp,
    pub allowed: bool,
    /// The grant the call was judged against (the record's target), if any.
    pub grant: Option<String>,
    /// The scope of the matched operation (allowed calls).
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub credential: Option<String>,
    pub source: Option<IpAddr>,
}

impl Decision {
    /// The decision a record holds, if it is a readable `access.decision`.
    pub fn from_record(rec: &AuditRecord) -> Option<Self> {
        if rec.action != action::ACCESS_DECISION {
            return None;
        }
        let at: Timestamp = rec.at.parse().ok()?;
        let d = &rec.details;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        Some(Self {
            at,
            allowed: d["decision"] == "allow",
            grant: (!rec.target.is_empty()).then(|| rec.target.clone()),
            scope: text(&d["operation"]["scope"]),
            client_id: text(&d["client_id"]),
            credential: text(&d["credential"]),
            source: d["source"].as_str().and_then(|s| s.parse().ok()),
        })
    }
}

/// How far a scan read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scan {
    pub records: u64,
    /// The scan stopped at [`MAX_SCAN`] before reaching the start of its period.
    pub truncated: bool,
}

/// Reads the records of `action` in `[since, until]` newest first — those about `target`
/// when it is given, else all — and hands each to `f` with its sequence number and time
/// until `f` breaks. A record whose `at` does not parse is counted and skipped.
pub async fn scan_action(
    store: &dyn Store,
    action: &str,
    target: Option<&str>,
    since: Timestamp,
    until: Timestamp,
    mut f: impl FnMut(u64, &AuditRecord, Timestamp) -> ControlFlow<()>,
) -> Result<Scan, StoreError> {
    let mut scan = Scan::default();
    let mut before = 0;
    loop {
        let page = store
            .audit_query(&AuditQuery {
                before,
                target: target.map(str::to_owned),
                action: Some(action.to_owned()),
                limit: PAGE,
                newest_first: true,
                ..AuditQuery::default()
            })
            .await?;
        for row in &page {
            scan.records += 1;
            let rec: AuditRecord =
                serde_json::from_str(&row.body).map_err(|source| StoreError::Corrupt {
                    id: format!("audit record {}", row.seq),
                    source,
                })?;
            if let Ok(at) = rec.at.parse::<Timestamp>() {
                if at < since - SKEW {
                    return Ok(scan);
                }
                if at >= since && at <= until && f(row.seq, &rec, at).is_break() {
                    return Ok(scan);
                }
            }
            if scan.records >= MAX_SCAN {
                scan.truncated = true;
                return Ok(scan);
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => before = last.seq,
            _ => return Ok(scan),
        }
    }
}

/// Reads the `access.decision` records in `[since, until]` newest first — those of one
/// grant when `grant` is given, else all — and hands each to `f` until it breaks.
pub async fn scan_decisions(
    store: &dyn Store,
    grant: Option<&str>,
    since: Timestamp,
    until: Timestamp,
    mut f: impl FnMut(&Decision) -> ControlFlow<()>,
) -> Result<Scan, StoreError> {
    scan_action(
        store,
        action::ACCESS_DECISION,
        grant,
        since,
        until,
        |_, rec, _| match Decision::from_record(rec) {
            Some(d) => f(&d),
            None => ControlFlow::Continue(()),
        },
    )
    .await
}

/// Allowed calls per scope, the last allowed call and the denials of one grant in
/// `[since, until]`.
pub async fn grant_usage(
    store: &dyn Store,
    grant: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<(UsageTally, Scan), StoreError> {
    let mut tally = UsageTally::default();
    let scan = scan_decisions(store, Some(grant), since, until, |d| {
        if d.allowed {
            if let Some(scope) = &d.scope {
                tally.allowed(d.at, scope);
            }
        } else {
            tally.denied();
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok((tally, scan))
}

/// The usage evidence a review item shows for `grant`: over its recertification interval
/// ending `now` (a post-incident item: over the grant's life so far).
pub async fn evidence(
    store: &dyn Store,
    grant: &Grant,
    kind: ReviewKind,
    now: Timestamp,
) -> Result<UsageEvidence, StoreError> {
    let (start, end) = evidence_period(grant, kind, now);
    let (tally, _) = grant_usage(store, grant.id.as_str(), start, end).await?;
    Ok(tally.evidence(&grant.scopes, start, end))
}

/// The last allowed call of a grant in `[since, until]`.
pub async fn last_allowed_call(
    store: &dyn Store,
    grant: &str,
    since: Timestamp,
    until: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let mut last = None;
    scan_decisions(store, Some(grant), since, until, |d| {
        if d.allowed {
            last = Some(d.at);
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await?;
    Ok(last)
}

/// Which of the grant's scopes had an allowed call in `[since, until]` (stops once all had).
pub async fn used_scopes(
    store: &dyn Store,
    grant: &Grant,
    since: Timestamp,
    until: Timestamp,
) -> Result<BTreeSet<String>, StoreError> {
    let mut used = BTreeSet::new();
    let all = grant.scopes.len();
    scan_decisions(store, Some(grant.id.as_str()), since, until, |d| {
        if d.allowed
            && let Some(scope) = &d.scope
            && grant.scopes.iter().any(|s| s.as_str() == scope)
        {
            used.insert(scope.clone());
        }
        if used.len() == all {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await?;
    Ok(used)
}

/// Where one client id called from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSources {
    /// Source networks (IPv4 /24, IPv6 /64).
    pub networks: BTreeSet<String>,
    pub grants: BTreeSet<String>,
    pub credential: Option<String>,
    pub calls: u64,
}

/// The network a source address belongs to: its IPv4 /24 or IPv6 /64. The unspecified
/// address (source unknown) belongs to none.
pub fn network_of(ip: IpAddr) -> Option<String> {
    if ip.is_unspecified() {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return network_of(IpAddr::V4(v4));
            }
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
        }
    }
}

/// Source networks per client id over every access decision in `[since, until]`.
pub async fn sources_by_client(
    store: &dyn Store,
    since: Timestamp,
    until: Timestamp,
) -> Result<(BTreeMap<String, ClientSources>, Scan), StoreError> {
    let mut out: BTreeMap<String, ClientSources> = BTreeMap::new();
    let scan = scan_decisions(store, None, since, until, |d| {
        if let Some(client) = &d.client_id {
            let e = out.entry(client.clone()).or_default();
            e.calls += 1;
            if let Some(net) = d.source.and_then(network_of) {
                e.networks.insert(net);
            }
            if let Some(g) = &d.grant {
                e.grants.insert(g.clone());
            }
            if e.credential.is_none() {
                e.credential.clone_from(&d.credential);
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok((out, scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = |s: &str| network_of(s.parse().unwrap());
        assert_eq!(n("203.0.113.7").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(n("203.0.113.200"), n("203.0.113.7"));
        assert_ne!(n("203.0.114.7"), n("203.0.113.7"));
        assert_eq!(n("::ffff:203.0.113.9").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(n("2001:db8:1:2:3::4").as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(n("0.0.0.0"), None);
    }

    #[test]
    fn decisions_are_read_from_records() {
        let rec = AuditRecord {
            seq: 7,
            at: "2026-11-30T10:00:00Z".into(),
            actor: "chc_1".into(),
            action: action::ACCESS_DECISION.into(),
            target: "grt_x".into(),
            reason: None,
            details: serde_json::json!({ "decision": "allow", "client_id": "chc_1",
                "source": "10.1.2.3", "operation": { "scope": "orders:read" } }),
            prev: String::new(),
        };
        let d = Decision::from_record(&rec).unwrap();
        assert!(d.allowed);
        assert_eq!(d.scope.as_deref(), Some("orders:read"));
        assert_eq!(d.grant.as_deref(), Some("grt_x"));
        assert_eq!(d.source, Some("10.1.2.3".parse().unwrap()));
        let other = AuditRecord {
            action: action::GRANT_APPROVE.into(),
            ..rec
        };
        assert!(Decision::from_record(&other).is_none());
    }
}
