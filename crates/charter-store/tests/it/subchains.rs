//! Per-subject sub-chains: the writer links each lifecycle record to the previous record of
//! the same target (`details.subject_prev`), within one commit, across commits, and never
//! through a unit that was rolled back; traffic is not linked.

use charter_store::{AuditRecord, Kind, Op, Unit, prepare};
use serde_json::Value;

use crate::both_backends;
use crate::harness::{doc, next, record};

/// `details.subject_prev` of every stored record (absent: `None`), oldest first.
async fn links(store: &dyn charter_store::Store) -> Vec<(u64, String, String, Option<Value>)> {
    let rows = store
        .audit_query(&charter_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let rec: AuditRecord = serde_json::from_str(&r.body).unwrap();
            (
                r.seq,
                r.hash.clone(),
                rec.action,
                rec.details.get("subject_prev").cloned(),
            )
        })
        .collect()
}

both_backends! {
    async fn lifecycle_records_link_to_their_subjects_previous_record(db: TestDb) {
        let store = &db.store;
        let g = doc(Kind::Grant, "grt_1", None, None);
        // Commit 1: the request, a call (traffic) and another grant's request.
        let first = vec![
            Unit { ops: vec![Op::Insert(g.clone())], audit: vec![record("grant.request", "grt_1")] },
            Unit { ops: vec![], audit: vec![record("access.decision", "grt_1")] },
            Unit { ops: vec![], audit: vec![record("grant.request", "grt_2")] },
        ];
        store.commit(first.into_iter().map(|u| prepare(u).unwrap()).collect()).await.unwrap();
        // Commit 2: a unit that conflicts (rolled back), then two records of grt_1 in one unit.
        let stale = charter_store::Doc { version: 5, ..next(&g, "{\"x\":1}") };
        let mut forged = record("grant.approve", "grt_1");
        forged.details["subject_prev"] = Value::String("f".repeat(64));
        let second = vec![
            Unit { ops: vec![Op::Update(stale)], audit: vec![record("grant.suspend", "grt_1")] },
            Unit { ops: vec![Op::Update(next(&g, "{\"y\":1}"))], audit: vec![forged, record("grant.revoke", "grt_1")] },
        ];
        let results = store.commit(second.into_iter().map(|u| prepare(u).unwrap()).collect()).await.unwrap();
        assert!(results[0].is_err(), "{results:?}");

        let l = links(store.as_ref()).await;
        let actions: Vec<&str> = l.iter().map(|(_, _, a, _)| a.as_str()).collect();
        assert_eq!(actions, ["grant.request", "access.decision", "grant.request", "grant.approve", "grant.revoke"]);
        assert_eq!(l[0].3, Some(Value::Null), "the first record of a subject links to nothing");
        assert_eq!(l[1].3, None, "traffic is not linked");
        assert_eq!(l[2].3, Some(Value::Null), "another subject has its own sub-chain");
        // Across commits, past the rolled-back unit, overriding what the submitter wrote.
        assert_eq!(l[3].3, Some(Value::String(l[0].1.clone())));
        // Within one unit.
        assert_eq!(l[4].3, Some(Value::String(l[3].1.clone())));
        let head = store.audit_head().await.unwrap();
        assert_eq!(charter_store::verify_chain(store.as_ref()).await.unwrap(), Ok(head));
    }
}
