//! Charter's persistence. One trait, [`Store`], with a SQLite backend (the embedded default)
//! and a PostgreSQL backend (shared by several nodes); both run the same SQL and their own
//! migrations.
//!
//! Objects are JSON documents keyed by id, with a few indexed columns (`name`, `lookup`,
//! `parent`, `status`) to find them by. Every change is a [`Unit`]: object writes plus the
//! audit records that explain them, applied atomically by the one [`AuditWriter`] task, which
//! groups many units into one commit.
//!
//! Architecture invariants:
//! - nothing changes an object without an audit record in the same transaction;
//! - the audit log is append-only and hash-chained (encoding in `charter-evidence`);
//! - a caller's write is acknowledged only once its transaction has committed.

mod record;
mod sql;
mod writer;

use async_trait::async_trait;
pub use charter_evidence::{AuditRecord, ChainHead, PreparedRecord, RecordColumns, StoredRecord};
pub use record::{CredentialRecord, Kind, Record, Verifier, Versioned};
pub use sql::{PostgresStore, SqliteStore};
pub use writer::{AuditWriter, WriterConfig, prepare};

/// How hard a commit tries to survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a killed process (SQLite WAL with `synchronous=NORMAL`; PostgreSQL
    /// `synchronous_commit=on`).
    #[default]
    Process,
    /// Survives power loss: every commit waits for the disk (SQLite `synchronous=FULL`).
    Fsync,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored object {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode audit record: {0}")]
    Encoding(#[from] charter_evidence::CanonicalError),
    #[error("unsupported database URL (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("the store did not take the write: {0}")]
    Unavailable(String),
    #[error("the audit writer has stopped")]
    WriterGone,
    #[error("migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
}

/// Why one unit of a batch was not applied (the rest of the batch is unaffected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// A unique name or key is taken, or the object changed since it was read.
    #[error("{0}")]
    Conflict(String),
    /// An audit record could not be encoded (nothing of the unit was written).
    #[error("{0}")]
    Unencodable(String),
}

/// Why a submitted unit was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored object: its JSON body and the columns it is found by.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub kind: Kind,
    pub id: String,
    /// Unique per kind when set.
    pub name: Option<String>,
    /// A second unique key per kind (a token hash, an audience, a client id).
    pub lookup: Option<String>,
    pub parent: Option<String>,
    pub status: Option<String>,
    pub body: String,
    pub version: i64,
}

/// One object write inside a [`Unit`].
#[derive(Debug, Clone)]
pub enum Op {
    /// Create; fails the unit if the id, name or lookup is taken.
    Insert(Doc),
    /// Replace; fails the unit unless the stored version is `doc.version - 1`.
    Update(Doc),
}

/// Object writes and their audit records, applied all-or-nothing.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub ops: Vec<Op>,
    pub audit: Vec<AuditRecord>,
}

/// A unit whose audit records have been prepared (their `details` canonicalised) by the
/// submitter, so the writer only seals them.
#[derive(Debug, Clone, Default)]
pub struct PreparedUnit {
    pub ops: Vec<Op>,
    pub audit: Vec<PreparedRecord>,
}

/// Filters for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub parent: Option<String>,
    pub status: Option<String>,
}

/// Filters for [`Store::audit_query`].
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only records with `seq` greater than this.
    pub after: u64,
    /// Only records with `seq` less than this (0: no bound).
    pub before: u64,
    pub target: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub limit: u32,
    /// Newest first (for `audit tail`).
    pub newest_first: bool,
}

/// The persistence boundary. Implemented by [`SqliteStore`] and [`PostgresStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<(), StoreError>;
    async fn get(&self, kind: Kind, id: &str) -> Result<Option<Doc>, StoreError>;
    async fn get_by_name(&self, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError>;
    async fn get_by_lookup(&self, kind: Kind, lookup: &str) -> Result<Option<Doc>, StoreError>;
    /// Objects of a kind in id (creation) order, after the `after` id.
    async fn list(
        &self,
        kind: Kind,
        filter: &ListFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Doc>, StoreError>;
    async fn count(&self, kind: Kind) -> Result<u64, StoreError>;
    async fn audit_query(&self, query: &AuditQuery) -> Result<Vec<StoredRecord>, StoreError>;
    /// [`Store::audit_query`] with each row's stored columns (`at`, `actor`, `action`,
    /// `target`), for verification: the columns are what queries select by, and must agree
    /// with the body.
    async fn audit_rows(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<(StoredRecord, RecordColumns)>, StoreError>;
    async fn audit_head(&self) -> Result<ChainHead, StoreError>;
    /// Applies a batch of units in one transaction, each inside its own savepoint, sealing
    /// their audit records onto the chain. The outer error means nothing was committed.
    async fn commit(
        &self,
        units: Vec<PreparedUnit>,
    ) -> Result<Vec<Result<Vec<u64>, UnitError>>, StoreError>;
    /// Objects other nodes change, as they commit (PostgreSQL `LISTEN/NOTIFY`); `None` for
    /// an embedded store, where every writer is in this process.
    async fn change_feed(&self) -> Result<Option<ChangeFeed>, StoreError>;
    /// Tries to become the one node that runs the lifecycle scheduler. An embedded store
    /// always leads; with PostgreSQL a session advisory lock held on a dedicated connection
    /// decides, and is released when the connection (or the node) goes away.
    async fn try_lead(&self) -> Result<Option<Leadership>, StoreError>;
}

/// Held by the node that leads.
pub struct Leadership {
    conn: Option<sqlx::PgConnection>,
}

impl Leadership {
    /// Whether the lock is still held (its connection still answers).
    pub async fn alive(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok(),
        }
    }
}

/// Committed object changes, as `(kind, id)`, from every node sharing the database.
pub struct ChangeFeed {
    listener: sqlx::postgres::PgListener,
}

impl ChangeFeed {
    /// Waits for the next notification. An error means notifications may have been lost:
    /// reconnect and resynchronise.
    pub async fn next(&mut self) -> Result<Vec<(Kind, String)>, StoreError> {
        let n = self.listener.recv().await?;
        Ok(n.payload()
            .lines()
            .filter_map(|line| {
                let (kind, id) = line.split_once(':')?;
                let kind = Kind::ALL.into_iter().find(|k| k.as_str() == kind)?;
                Some((kind, id.to_owned()))
            })
            .collect())
    }
}

/// Opens the store a URL names (`sqlite://path` or `postgres://…`), creating and migrating
/// it as needed.
pub async fn open(
    url: &str,
    durability: Durability,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            SqliteStore::open(url, durability).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            PostgresStore::open(url, durability).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// Recomputes the whole chain from the first record ([`verify_chain_from`] from genesis).
pub async fn verify_chain(
    store: &dyn Store,
) -> Result<Result<ChainHead, charter_evidence::ChainBreak>, StoreError> {
    verify_chain_from(store, ChainHead::genesis(), None).await
}

/// Records read per page while verifying.
const VERIFY_PAGE: u32 = 1000;

/// The one loop that verifies the stored chain: reads the records after `start` a page at a
/// time (up to record `until`, or to the end of the log) and feeds them, with their stored
/// columns, to a [`charter_evidence::ChainVerifier`] continuing from `start` — which must be
/// a head the caller already trusts (genesis, or a checkpoint whose record it has checked).
/// Every row's `at`, `actor`, `action` and `target` columns must equal its body's: they are
/// what the server selects and filters records by. Returns the last record that verified,
/// or the first break. `GET /v1/audit/verify` walks from genesis; the checkpoint writer from
/// its last checkpoint; the evidence guard from the head it last verified.
pub async fn verify_chain_from(
    store: &dyn Store,
    start: ChainHead,
    until: Option<u64>,
) -> Result<Result<ChainHead, charter_evidence::ChainBreak>, StoreError> {
    let mut after = start.seq;
    let mut verifier = charter_evidence::ChainVerifier::starting_at(start);
    // `before` is exclusive; 0 means no bound.
    let before = until.map_or(0, |u| u.saturating_add(1));
    while until.is_none_or(|u| after < u) {
        let page = store
            .audit_rows(&AuditQuery {
                after,
                before,
                limit: VERIFY_PAGE,
                ..AuditQuery::default()
            })
            .await?;
        let Some((last, _)) = page.last() else { break };
        after = last.seq;
        for (rec, columns) in &page {
            if let Err(brk) = verifier.push_row(rec, columns) {
                return Ok(Err(brk));
            }
        }
    }
    Ok(Ok(verifier.head()))
}
