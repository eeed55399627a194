//! One fresh database per test (a temporary SQLite file, or a PostgreSQL database created
//! on `CHARTER_TEST_POSTGRES`), dropped when the test ends — also when it fails.

use std::future::Future;
use std::sync::Arc;

use charter_store::{
    AuditRecord, AuditWriter, Doc, Durability, Kind, Op, Store, Unit, WriterConfig,
};
use sqlx::Executor;

/// The PostgreSQL server tests create their databases on.
pub fn postgres_base() -> String {
    std::env::var("CHARTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store on a database of its own.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub store: Arc<dyn Store>,
    /// The PostgreSQL database's name.
    pub pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    async fn open(backend: Backend, pg: Option<(String, String)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg_name) = match (backend, pg) {
            (Backend::Sqlite, _) => (
                format!("sqlite://{}", dir.path().join("charter.db").display()),
                None,
            ),
            (Backend::Postgres, Some((url, name))) => (url, Some(name)),
            (Backend::Postgres, None) => unreachable!("a PostgreSQL test has a database"),
        };
        let store = charter_store::open(&url, Durability::Process)
            .await
            .unwrap();
        assert_eq!(
            store.backend(),
            match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            }
        );
        Self {
            backend,
            url,
            store,
            pg_name,
            _dir: dir,
        }
    }

    /// A writer task over this store.
    pub fn writer(&self) -> AuditWriter {
        AuditWriter::spawn(self.store.clone(), WriterConfig::default())
    }

    /// A second, independent store on the same database (another node).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        charter_store::open(&self.url, Durability::Process)
            .await
            .unwrap()
    }

    /// Runs one statement on a connection of its own, bypassing the store.
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await?;
                let done = pool.execute(sql).await;
                pool.close().await;
                Ok(done?.rows_affected())
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await?;
                let done = pool.execute(sql).await;
                pool.close().await;
                Ok(done?.rows_affected())
            }
        }
    }
}

/// Runs a test body against a fresh database of `backend`. The body runs as a task of its
/// own, so a failing body still lets the database be dropped before the failure is
/// re-raised.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(create_database().await),
    };
    let name = pg.as_ref().map(|(_, name)| name.clone());
    let outcome = tokio::spawn(async move { body(TestDb::open(backend, pg).await).await }).await;
    if let Some(name) = name {
        drop_database(&name).await;
    }
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("the test task did not finish: {e}"),
        }
    }
}

/// Runs a test body against both backends, as the modules `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($db:ident: TestDb) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn body($db: $crate::harness::TestDb) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::harness::run($crate::harness::Backend::Sqlite, body).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::harness::run($crate::harness::Backend::Postgres, body).await;
                }
            }
        )*
    };
}

async fn admin_pool() -> sqlx::PgPool {
    sqlx::PgPool::connect(&format!("{}/postgres", postgres_base()))
        .await
        .expect("PostgreSQL at CHARTER_TEST_POSTGRES")
}

/// Creates a database with a fresh name; returns its URL and name.
pub async fn create_database() -> (String, String) {
    let b: [u8; 8] = rand::random();
    let name = format!(
        "charter_st_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    let admin = admin_pool().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await;
    (format!("{}/{name}", postgres_base()), name)
}

pub async fn drop_database(name: &str) {
    if let Ok(admin) = sqlx::PgPool::connect(&format!("{}/postgres", postgres_base())).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
        admin.close().await;
    }
}

pub async fn database_exists(name: &str) -> bool {
    let admin = admin_pool().await;
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&admin)
        .await
        .unwrap();
    admin.close().await;
    found.is_some()
}

/// A document of `kind` with the given id and optional name and lookup key.
pub fn doc(kind: Kind, id: &str, name: Option<&str>, lookup: Option<&str>) -> Doc {
    Doc {
        kind,
        id: id.to_owned(),
        name: name.map(str::to_owned),
        lookup: lookup.map(str::to_owned),
        parent: None,
        status: None,
        body: format!("{{\"id\":\"{id}\"}}"),
        version: 1,
    }
}

/// The next version of a document, with a new body.
pub fn next(doc: &Doc, body: &str) -> Doc {
    Doc {
        body: body.to_owned(),
        version: doc.version + 1,
        ..doc.clone()
    }
}

/// An audit record about `target`.
pub fn record(action: &str, target: &str) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: "2026-11-30T10:00:00Z".into(),
        actor: "prn_test".into(),
        action: action.into(),
        target: target.into(),
        reason: None,
        details: serde_json::json!({ "target": target }),
        prev: String::new(),
    }
}

/// A unit of object writes, each explained by one audit record.
pub fn unit(ops: Vec<Op>) -> Unit {
    let audit = ops
        .iter()
        .map(|op| match op {
            Op::Insert(d) => record("test.insert", &d.id),
            Op::Update(d) => record("test.update", &d.id),
        })
        .collect();
    Unit { ops, audit }
}

/// A failing test body still drops its PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_still_drops_its_database() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let failed = tokio::spawn(run(Backend::Postgres, |db: TestDb| async move {
        let _ = tx.send(db.pg_name.clone().unwrap());
        panic!("deliberate failure");
    }))
    .await
    .unwrap_err();
    let payload = failed.into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("deliberate failure"),
        "the body's own panic is re-raised"
    );
    let name = rx.await.unwrap();
    assert!(!database_exists(&name).await, "{name} was left behind");
}
