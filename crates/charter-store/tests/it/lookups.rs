//! Objects are found by id, by `name` and by the second unique key, `lookup` (a token hash,
//! an API's audience, a client id); both keys are unique per kind.

use charter_store::{Doc, Kind, Op, UnitError, WriteError};

use crate::both_backends;
use crate::harness::{doc, next, unit};

both_backends! {
    async fn objects_are_found_by_their_lookup_key(db: TestDb) {
        let writer = db.writer();
        let cred = doc(Kind::Credential, "crd_1", None, Some("client-1"));
        let key = doc(Kind::Principal, "prn_1", Some("alice"), Some("token-hash-1"));
        writer.submit(unit(vec![Op::Insert(cred.clone()), Op::Insert(key.clone())])).await.unwrap();

        assert_eq!(db.store.get_by_lookup(Kind::Credential, "client-1").await.unwrap(), Some(cred.clone()));
        assert_eq!(db.store.get_by_lookup(Kind::Principal, "token-hash-1").await.unwrap(), Some(key.clone()));
        assert_eq!(db.store.get_by_name(Kind::Principal, "alice").await.unwrap(), Some(key.clone()));
        // Keys are per kind.
        assert_eq!(db.store.get_by_lookup(Kind::Principal, "client-1").await.unwrap(), None);
        assert_eq!(db.store.get_by_lookup(Kind::Credential, "client-2").await.unwrap(), None);
        assert_eq!(db.store.get_by_lookup(Kind::Credential, "client-1\0").await.unwrap(), None);
        assert_eq!(db.store.get_by_name(Kind::Principal, "\0").await.unwrap(), None);
        assert_eq!(db.store.get(Kind::Principal, "prn_\0").await.unwrap(), None);

        // Replacing the key (a rotated token): the old one finds nothing.
        let rotated = Doc { lookup: Some("token-hash-2".into()), ..next(&key, "{\"rotated\":true}") };
        writer.submit(unit(vec![Op::Update(rotated.clone())])).await.unwrap();
        assert_eq!(db.store.get_by_lookup(Kind::Principal, "token-hash-1").await.unwrap(), None);
        assert_eq!(db.store.get_by_lookup(Kind::Principal, "token-hash-2").await.unwrap(), Some(rotated));
    }

    async fn lookup_and_name_are_unique_per_kind(db: TestDb) {
        let writer = db.writer();
        writer.submit(unit(vec![Op::Insert(doc(Kind::Api, "api_1", Some("orders"), Some("aud-1")))])).await.unwrap();
        let conflict = |r: Result<Vec<u64>, WriteError>| matches!(r, Err(WriteError::Unit(UnitError::Conflict(_))));
        // Same lookup, same kind.
        assert!(conflict(writer.submit(unit(vec![Op::Insert(doc(Kind::Api, "api_2", Some("billing"), Some("aud-1")))])).await));
        // Same name, same kind.
        assert!(conflict(writer.submit(unit(vec![Op::Insert(doc(Kind::Api, "api_3", Some("orders"), Some("aud-3")))])).await));
        // Moving another object onto a taken key.
        let other = doc(Kind::Api, "api_4", Some("billing"), Some("aud-4"));
        writer.submit(unit(vec![Op::Insert(other.clone())])).await.unwrap();
        let clash = Doc { lookup: Some("aud-1".into()), ..next(&other, "{}") };
        assert!(conflict(writer.submit(unit(vec![Op::Update(clash)])).await));
        assert_eq!(db.store.get_by_lookup(Kind::Api, "aud-4").await.unwrap(), Some(other));
        // The same keys under another kind, and any number of objects without keys.
        writer.submit(unit(vec![Op::Insert(doc(Kind::Gateway, "gw_1", Some("orders"), Some("aud-1")))])).await.unwrap();
        writer.submit(unit(vec![Op::Insert(doc(Kind::Api, "api_5", None, None)), Op::Insert(doc(Kind::Api, "api_6", None, None))])).await.unwrap();
        assert_eq!(db.store.count(Kind::Api).await.unwrap(), 4);
        assert_eq!(db.store.get_by_lookup(Kind::Api, "aud-1").await.unwrap().unwrap().id, "api_1");
    }
}
