//! `list` pages in id order with an `after` cursor; `audit_query` pages by seq.

use charter_store::{AuditQuery, Doc, Kind, ListFilter, Op, Store};

use crate::both_backends;
use crate::harness::{doc, record, unit};

/// Every page of `list`, `limit` at a time.
async fn pages(store: &dyn Store, kind: Kind, filter: &ListFilter, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list(kind, filter, after.as_deref(), limit)
            .await
            .unwrap();
        assert!(page.len() <= limit as usize);
        assert!(page.iter().all(|d| d.kind == kind));
        let ids: Vec<String> = page.iter().map(|d| d.id.clone()).collect();
        let Some(last) = ids.last().cloned() else {
            return pages;
        };
        after = Some(last);
        pages.push(ids);
    }
}

both_backends! {
    async fn list_pages_past_a_page_in_id_order(db: TestDb) {
        let writer = db.writer();
        // Written out of order, in several commits; another kind interleaved.
        let mut ids: Vec<String> = (0..25).map(|i| format!("prt_{:02}", (i * 7) % 25)).collect();
        for chunk in ids.chunks(4) {
            let mut ops: Vec<Op> = chunk
                .iter()
                .map(|id| {
                    let n: usize = id[4..].parse().unwrap();
                    Op::Insert(Doc {
                        parent: Some(if n.is_multiple_of(2) { "even" } else { "odd" }.into()),
                        status: Some(if n < 10 { "active" } else { "offboarded" }.into()),
                        ..doc(Kind::Partner, id, None, None)
                    })
                })
                .collect();
            ops.push(Op::Insert(doc(Kind::Grant, &format!("grt_{}", chunk[0]), None, None)));
            writer.submit(unit(ops)).await.unwrap();
        }
        ids.sort();

        let all = pages(db.store.as_ref(), Kind::Partner, &ListFilter::default(), 10).await;
        assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(all.concat(), ids);
        assert_eq!(db.store.count(Kind::Partner).await.unwrap(), 25);
        assert_eq!(db.store.count(Kind::Grant).await.unwrap(), 7);

        // A page that ends exactly at the end: the next one is empty.
        let exact = pages(db.store.as_ref(), Kind::Partner, &ListFilter::default(), 5).await;
        assert_eq!(exact.len(), 5);

        // Filters page the same way.
        let even = ListFilter { parent: Some("even".into()), ..Default::default() };
        let got = pages(db.store.as_ref(), Kind::Partner, &even, 4).await.concat();
        let want: Vec<String> = ids.iter().filter(|id| id[4..].parse::<u32>().unwrap().is_multiple_of(2)).cloned().collect();
        assert_eq!(got, want);
        let odd_active = ListFilter { parent: Some("odd".into()), status: Some("active".into()) };
        assert_eq!(
            pages(db.store.as_ref(), Kind::Partner, &odd_active, 2).await.concat(),
            ["prt_01", "prt_03", "prt_05", "prt_07", "prt_09"]
        );

        // An `after` that names nothing still pages from where it would sort.
        let tail = db.store.list(Kind::Partner, &ListFilter::default(), Some("prt_22x"), 10).await.unwrap();
        assert_eq!(tail.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["prt_23", "prt_24"]);
        // Hostile cursors and filters find nothing rather than fail.
        assert!(db.store.list(Kind::Partner, &ListFilter::default(), Some("prt_\0"), 10).await.unwrap().is_empty());
    }

    async fn audit_query_pages_by_seq(db: TestDb) {
        let writer = db.writer();
        for i in 0..23 {
            let mut rec = record(if i % 3 == 0 { "test.third" } else { "test.other" }, &format!("t{}", i % 2));
            rec.actor = format!("prn_{}", i % 5);
            writer.submit(charter_store::Unit { ops: Vec::new(), audit: vec![rec] }).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = db.store.audit_query(&AuditQuery { after, limit: 10, ..Default::default() }).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            seen.extend(page.iter().map(|r| r.seq));
        }
        assert_eq!(seen, (1..=23).collect::<Vec<u64>>());

        let newest = db.store.audit_query(&AuditQuery { before: 20, limit: 3, newest_first: true, ..Default::default() }).await.unwrap();
        assert_eq!(newest.iter().map(|r| r.seq).collect::<Vec<_>>(), [19, 18, 17]);

        let filtered = db.store.audit_query(&AuditQuery {
            action: Some("test.third".into()), target: Some("t0".into()), limit: 100, ..Default::default()
        }).await.unwrap();
        // i % 3 == 0 and i % 2 == 0: i = 0, 6, 12, 18 → seq i + 1.
        assert_eq!(filtered.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 7, 13, 19]);
        let by_actor = db.store.audit_query(&AuditQuery { actor: Some("prn_4".into()), after: 5, limit: 100, ..Default::default() }).await.unwrap();
        assert_eq!(by_actor.iter().map(|r| r.seq).collect::<Vec<_>>(), [10, 15, 20]);
        assert!(db.store.audit_query(&AuditQuery { actor: Some("a\0".into()), limit: 10, ..Default::default() }).await.unwrap().is_empty());
    }
}
