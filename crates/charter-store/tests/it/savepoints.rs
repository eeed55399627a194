//! Group commit with a savepoint per unit: a unit that conflicts is rolled back alone, and
//! its neighbours in the same commit are written and chained without a gap.

use charter_store::{Doc, Kind, Op, UnitError, WriteError, prepare};

use crate::both_backends;
use crate::harness::{doc, next, unit};

both_backends! {
    async fn a_conflicting_unit_does_not_fail_its_neighbours(db: TestDb) {
        let store = &db.store;
        let b = doc(Kind::Partner, "prt_b", Some("B"), None);
        let seeded = store.commit(vec![prepare(unit(vec![Op::Insert(b.clone())])).unwrap()]).await.unwrap();
        assert_eq!(seeded, vec![Ok(vec![1])]);

        let a = doc(Kind::Partner, "prt_a", Some("A"), None);
        let c = doc(Kind::Partner, "prt_c", Some("C"), None);
        let stale = Doc { version: 3, ..next(&b, "{\"stale\":true}") };
        let renamed_onto_a = Doc { name: Some("A".into()), ..next(&b, "{\"renamed\":true}") };
        let units = vec![
            unit(vec![Op::Insert(a.clone())]),
            // Claims to replace version 2; the stored one is 1.
            unit(vec![Op::Update(stale.clone())]),
            // A unique-name clash on update is an error inside the transaction (PostgreSQL
            // aborts everything after it unless the savepoint is rolled back).
            unit(vec![Op::Update(renamed_onto_a)]),
            // The name A was taken earlier in this very commit.
            unit(vec![Op::Insert(doc(Kind::Partner, "prt_d", Some("A"), None))]),
            // All or nothing: the good insert goes with the bad update.
            unit(vec![Op::Insert(doc(Kind::Partner, "prt_e", Some("E"), None)), Op::Update(stale)]),
            unit(vec![Op::Insert(c.clone())]),
        ];
        let results = store
            .commit(units.into_iter().map(|u| prepare(u).unwrap()).collect())
            .await
            .unwrap();
        assert_eq!(results.len(), 6);
        assert_eq!(results[0], Ok(vec![2]));
        for (i, r) in results.iter().enumerate().take(5).skip(1) {
            assert!(matches!(r, Err(UnitError::Conflict(_))), "unit {i}: {r:?}");
        }
        assert_eq!(results[5], Ok(vec![3]), "the neighbour after the failures is chained without a gap");

        assert_eq!(store.get(Kind::Partner, "prt_a").await.unwrap(), Some(a.clone()));
        assert_eq!(store.get(Kind::Partner, "prt_c").await.unwrap(), Some(c));
        assert_eq!(store.get(Kind::Partner, "prt_b").await.unwrap(), Some(b), "untouched by the failed updates");
        assert_eq!(store.get(Kind::Partner, "prt_d").await.unwrap(), None);
        assert_eq!(store.get(Kind::Partner, "prt_e").await.unwrap(), None, "a failed unit is rolled back whole");
        assert_eq!(store.get_by_name(Kind::Partner, "A").await.unwrap(), Some(a));
        assert_eq!(store.count(Kind::Partner).await.unwrap(), 3);

        let head = store.audit_head().await.unwrap();
        assert_eq!(head.seq, 3);
        let records = store.audit_query(&charter_store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
        let targets: Vec<String> = records
            .iter()
            .map(|r| serde_json::from_str::<charter_store::AuditRecord>(&r.body).unwrap().target)
            .collect();
        assert_eq!(targets, ["prt_b", "prt_a", "prt_c"], "only applied units leave records");
        assert_eq!(charter_store::verify_chain(store.as_ref()).await.unwrap(), Ok(head));
    }

    async fn the_writer_refuses_only_the_conflicting_submitters(db: TestDb) {
        let writer = db.writer();
        let base = doc(Kind::Grant, "grt_base", None, None);
        writer.submit(unit(vec![Op::Insert(base.clone())])).await.unwrap();

        let mut tasks = Vec::new();
        for i in 0..40 {
            let writer = writer.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let op = if i % 4 == 0 {
                    // Every one of these claims the same version 2: at most one wins.
                    Op::Update(next(&base, &format!("{{\"by\":{i}}}")))
                } else {
                    Op::Insert(doc(Kind::Grant, &format!("grt_{i:02}"), None, None))
                };
                (i, writer.submit(unit(vec![op])).await)
            }));
        }
        let mut updates_won = 0;
        let mut seqs = vec![1];
        for task in tasks {
            let (i, result) = task.await.unwrap();
            match result {
                Ok(s) => {
                    assert_eq!(s.len(), 1);
                    seqs.extend(s);
                    if i % 4 == 0 {
                        updates_won += 1;
                    }
                }
                Err(WriteError::Unit(UnitError::Conflict(_))) => {
                    assert_eq!(i % 4, 0, "an insert of a fresh id was refused");
                }
                Err(e) => panic!("submitter {i}: {e}"),
            }
        }
        assert_eq!(updates_won, 1);
        seqs.sort_unstable();
        // The base, 30 inserts and the one winning update.
        assert_eq!(seqs, (1..=32).collect::<Vec<u64>>());
        assert_eq!(db.store.count(Kind::Grant).await.unwrap(), 31);
        assert_eq!(db.store.get(Kind::Grant, "grt_base").await.unwrap().unwrap().version, 2);
        let head = db.store.audit_head().await.unwrap();
        assert_eq!(charter_store::verify_chain(db.store.as_ref()).await.unwrap(), Ok(head));
    }
}
