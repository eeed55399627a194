//! Sealing: every committed record gets the next sequence number and the hash of its
//! predecessor, whoever submitted it and however commits were grouped.

use charter_evidence::{AuditRecord, ChainHead, GENESIS_HASH, record_hash};
use charter_store::{AuditQuery, AuditWriter, Kind, Op, Store, Unit};

use crate::both_backends;
use crate::harness::{TestDb, doc, record, unit};

/// Every stored record, oldest first.
async fn all_records(store: &dyn Store) -> Vec<charter_evidence::StoredRecord> {
    let mut out = Vec::new();
    loop {
        let page = store
            .audit_query(&AuditQuery {
                after: out
                    .last()
                    .map_or(0, |r: &charter_evidence::StoredRecord| r.seq),
                limit: 50,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Checks by hand what `verify_chain` checks, and that both agree with the head.
async fn assert_chained(store: &dyn Store, records: u64) {
    let stored = all_records(store).await;
    assert_eq!(stored.len() as u64, records);
    let mut prev = GENESIS_HASH.to_owned();
    for (i, row) in stored.iter().enumerate() {
        let rec: AuditRecord = serde_json::from_str(&row.body).unwrap();
        assert_eq!(row.seq, i as u64 + 1, "consecutive");
        assert_eq!(rec.seq, row.seq, "the body carries its seq");
        assert_eq!(
            rec.prev, prev,
            "record {} links to its predecessor",
            row.seq
        );
        assert_eq!(row.hash, record_hash(&row.body));
        assert_eq!(rec.canonical().unwrap(), row.body, "stored canonically");
        prev = row.hash.clone();
    }
    let head = store.audit_head().await.unwrap();
    assert_eq!(
        head,
        ChainHead {
            seq: records,
            hash: if records == 0 {
                GENESIS_HASH.to_owned()
            } else {
                prev
            }
        }
    );
    assert_eq!(charter_store::verify_chain(store).await.unwrap(), Ok(head));
}

fn records(n: usize, target: &str) -> Unit {
    Unit {
        ops: Vec::new(),
        audit: (0..n)
            .map(|i| record(&format!("test.r{i}"), target))
            .collect(),
    }
}

/// `tasks` submitters, `units` units each, through `writers` (round robin); returns every
/// acknowledged seq.
async fn submit_concurrently(writers: &[AuditWriter], tasks: usize, units: usize) -> Vec<u64> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let writer = writers[t % writers.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for u in 0..units {
                // Units of one or two records, some with an object write.
                let mut unit = records(1 + (u % 2), &format!("t{t}u{u}"));
                if u % 3 == 0 {
                    unit.ops.push(Op::Insert(doc(
                        Kind::Gateway,
                        &format!("gw_{t}_{u}"),
                        None,
                        None,
                    )));
                }
                let got = writer.submit(unit).await.unwrap();
                assert_eq!(got.len(), 1 + (u % 2));
                assert!(
                    got.windows(2).all(|w| w[1] == w[0] + 1),
                    "one unit's records are adjacent: {got:?}"
                );
                seqs.extend(got);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort_unstable();
    all
}

both_backends! {
    async fn an_empty_log_is_the_genesis_head(db: TestDb) {
        assert_chained(db.store.as_ref(), 0).await;
    }

    async fn records_get_consecutive_seqs_and_link_to_their_predecessor(db: TestDb) {
        let writer = db.writer();
        assert_eq!(writer.submit(records(1, "a")).await.unwrap(), vec![1]);
        assert_eq!(writer.submit(records(3, "b")).await.unwrap(), vec![2, 3, 4]);
        assert_eq!(writer.submit(Unit::default()).await.unwrap(), Vec::<u64>::new());
        assert_eq!(writer.submit(unit(vec![Op::Insert(doc(Kind::Partner, "prt_1", None, None))])).await.unwrap(), vec![5]);
        assert_eq!(writer.submit(records(2, "c")).await.unwrap(), vec![6, 7]);
        assert_chained(db.store.as_ref(), 7).await;

        // The indexed columns are the record's own fields.
        let r3: AuditRecord = serde_json::from_str(&all_records(db.store.as_ref()).await[2].body).unwrap();
        assert_eq!((r3.action.as_str(), r3.target.as_str(), r3.actor.as_str()), ("test.r1", "b", "prn_test"));
        let by_target = db.store.audit_query(&AuditQuery { target: Some("b".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(by_target.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3, 4]);
    }

    async fn concurrent_submitters_share_one_gap_free_chain(db: TestDb) {
        let writer = db.writer();
        let seqs = submit_concurrently(&[writer], 8, 25).await;
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "every seq handed out once, none skipped");
        assert_eq!(seqs.len(), 8 * (13 + 2 * 12), "13 units of one record and 12 of two per task");
        assert_chained(db.store.as_ref(), seqs.len() as u64).await;
    }

    async fn a_reopened_store_continues_the_chain(db: TestDb) {
        db.writer().submit(records(2, "before")).await.unwrap();
        let again = db.reopen().await;
        let writer = AuditWriter::spawn(again.clone(), Default::default());
        assert_eq!(writer.submit(records(1, "after")).await.unwrap(), vec![3]);
        assert_chained(again.as_ref(), 3).await;
    }
}

/// Several PostgreSQL nodes append to one chain (the head row is locked per commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_nodes_share_one_chain_on_postgres() {
    crate::harness::run(crate::harness::Backend::Postgres, |db: TestDb| async move {
        let mut writers = vec![db.writer()];
        for _ in 0..2 {
            writers.push(AuditWriter::spawn(db.reopen().await, Default::default()));
        }
        let seqs = submit_concurrently(&writers, 6, 20).await;
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected);
        assert_chained(db.store.as_ref(), seqs.len() as u64).await;
    })
    .await;
}
