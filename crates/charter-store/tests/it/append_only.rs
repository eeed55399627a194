//! The audit table refuses UPDATE and DELETE at the database (triggers), whoever asks.

use charter_store::{Kind, Op};

use crate::both_backends;
use crate::harness::{doc, unit};

both_backends! {
    async fn the_audit_table_refuses_update_and_delete(db: TestDb) {
        let writer = db.writer();
        for i in 0..3 {
            writer.submit(unit(vec![Op::Insert(doc(Kind::Partner, &format!("prt_{i}"), None, None))])).await.unwrap();
        }
        let head = db.store.audit_head().await.unwrap();
        assert_eq!(head.seq, 3);

        for statement in [
            "UPDATE audit_log SET actor = 'someone_else' WHERE seq = 2",
            "UPDATE audit_log SET body = body WHERE seq = 3",
            "UPDATE audit_log SET seq = seq + 100",
            "DELETE FROM audit_log WHERE seq = 3",
            "DELETE FROM audit_log",
        ] {
            let err = db.raw(statement).await.expect_err(statement).to_string();
            assert!(err.contains("append-only"), "{statement}: {err}");
        }

        assert_eq!(db.store.audit_head().await.unwrap(), head);
        assert_eq!(charter_store::verify_chain(db.store.as_ref()).await.unwrap(), Ok(head));
        // Appending still works.
        assert_eq!(writer.submit(unit(vec![Op::Insert(doc(Kind::Partner, "prt_3", None, None))])).await.unwrap(), vec![4]);
    }

    async fn objects_are_not_append_only(db: TestDb) {
        // The triggers guard the log only: the document table is updated in place.
        db.writer().submit(unit(vec![Op::Insert(doc(Kind::Partner, "prt_1", None, None))])).await.unwrap();
        assert_eq!(db.raw("UPDATE objects SET status = 'x' WHERE id = 'prt_1'").await.unwrap(), 1);
    }
}
