//! Optimistic concurrency: an update names the version it replaces and loses to any write
//! that got there first.

use charter_store::{Doc, Kind, Op, UnitError, WriteError};

use crate::both_backends;
use crate::harness::{TestDb, doc, next, unit};

fn is_conflict(r: &Result<Vec<u64>, WriteError>) -> bool {
    matches!(r, Err(WriteError::Unit(UnitError::Conflict(_))))
}

both_backends! {
    async fn an_update_must_replace_the_version_it_read(db: TestDb) {
        let writer = db.writer();
        let v1 = doc(Kind::Api, "api_orders", Some("orders"), Some("https://api.example.com/orders"));
        writer.submit(unit(vec![Op::Insert(v1.clone())])).await.unwrap();

        let v2 = next(&v1, "{\"edit\":1}");
        writer.submit(unit(vec![Op::Update(v2.clone())])).await.unwrap();
        // A second writer that also read version 1.
        let lost = writer.submit(unit(vec![Op::Update(next(&v1, "{\"edit\":2}"))])).await;
        assert!(is_conflict(&lost), "{lost:?}");
        assert_eq!(db.store.get(Kind::Api, "api_orders").await.unwrap(), Some(v2.clone()));

        // Skipping a version is refused as well.
        let ahead = Doc { version: 4, ..next(&v2, "{\"edit\":3}") };
        assert!(is_conflict(&writer.submit(unit(vec![Op::Update(ahead)])).await));

        let v3 = next(&v2, "{\"edit\":3}");
        writer.submit(unit(vec![Op::Update(v3.clone())])).await.unwrap();
        assert_eq!(db.store.get(Kind::Api, "api_orders").await.unwrap(), Some(v3));
        assert_eq!(db.store.audit_head().await.unwrap().seq, 3, "refused updates leave no record");
    }

    async fn an_update_of_nothing_is_a_conflict(db: TestDb) {
        let writer = db.writer();
        let missing = next(&doc(Kind::Partner, "prt_missing", None, None), "{}");
        assert!(is_conflict(&writer.submit(unit(vec![Op::Update(missing)])).await));
        // The same id under another kind is another object.
        let grant = doc(Kind::Grant, "x_1", None, None);
        writer.submit(unit(vec![Op::Insert(grant.clone())])).await.unwrap();
        let as_partner = Doc { kind: Kind::Partner, ..next(&grant, "{}") };
        assert!(is_conflict(&writer.submit(unit(vec![Op::Update(as_partner)])).await));
        assert_eq!(db.store.get(Kind::Grant, "x_1").await.unwrap(), Some(grant));
        assert_eq!(db.store.get(Kind::Partner, "x_1").await.unwrap(), None);
    }

    async fn racing_updates_of_one_version_have_one_winner(db: TestDb) {
        race(&[db.writer()], &db).await;
    }
}

/// Ten submitters update one object from the same version through `writers`; exactly one
/// wins.
async fn race(writers: &[charter_store::AuditWriter], db: &TestDb) {
    let v1 = doc(Kind::Grant, "grt_race", None, None);
    writers[0]
        .submit(unit(vec![Op::Insert(v1.clone())]))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for round in 0..10 {
        let writer = writers[round % writers.len()].clone();
        let v2 = next(&v1, &format!("{{\"round\":{round}}}"));
        tasks.push(tokio::spawn(async move {
            writer.submit(unit(vec![Op::Update(v2)])).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        let result = task.await.unwrap();
        match result {
            Ok(_) => won += 1,
            Err(ref e) => assert!(is_conflict(&result), "{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        db.store
            .get(Kind::Grant, "grt_race")
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
}

/// Several nodes, each with its own store and writer, on one PostgreSQL database. (One
/// SQLite file has one writer: its process's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_nodes_have_one_winner_on_postgres() {
    crate::harness::run(crate::harness::Backend::Postgres, |db: TestDb| async move {
        let other = charter_store::AuditWriter::spawn(db.reopen().await, Default::default());
        race(&[db.writer(), other], &db).await;
    })
    .await;
}
