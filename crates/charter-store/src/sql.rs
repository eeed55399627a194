//! The two SQL backends. They share every statement (written with `$n` placeholders, which
//! both PostgreSQL and SQLite accept) and differ only in how they connect, migrate and lock
//! the chain head; the shared part is expanded once per backend by `sql_backend!`.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use charter_evidence::action::on_subject_chain;
use charter_evidence::{ChainHead, StoredRecord};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{
    AuditQuery, Doc, Durability, Kind, ListFilter, Op, PreparedUnit, RecordColumns, Store,
    StoreError, UnitError,
};

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_subject_heads.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_subject_heads.sql"),
    ),
];

/// Audit rows per multi-row INSERT (7 binds each; far below either backend's limit).
const INSERT_CHUNK: usize = 200;

const DOC_COLUMNS: &str = "id, kind, name, lookup, parent, status, body, version";

fn kind_from(s: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.as_str() == s)
}

/// The embedded default: one SQLite file in WAL mode.
pub struct SqliteStore {
    pool: SqlitePool,
}

/// PostgreSQL, for several control-plane and gateway nodes sharing state.
pub struct PostgresStore {
    pool: PgPool,
}

impl SqliteStore {
    pub async fn open(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Process => SqliteSynchronous::Normal,
                Durability::Fsync => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate(SQLITE_MIGRATIONS).await?;
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SqliteStore {
    async fn feed(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
        Ok(None)
    }

    async fn lead(&self) -> Result<Option<crate::Leadership>, StoreError> {
        Ok(Some(crate::Leadership { conn: None }))
    }
}

/// The advisory lock key of the scheduler's leadership.
const LEADER_LOCK: i64 = 7_602;

impl PostgresStore {
    async fn lead(&self) -> Result<Option<crate::Leadership>, StoreError> {
        let mut conn = self.pool.acquire().await?.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut conn)
            .await?;
        Ok(got.then_some(crate::Leadership { conn: Some(conn) }))
    }

    async fn feed(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen("charter_changes").await?;
        Ok(Some(crate::ChangeFeed { listener }))
    }

    pub async fn open(url: &str, _durability: Durability) -> Result<Self, StoreError> {
        // PostgreSQL commits are durable with synchronous_commit=on in both modes.
        let options = PgConnectOptions::from_str(url)?.options([("synchronous_commit", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let store = Self { pool };
        store.migrate(POSTGRES_MIGRATIONS).await?;
        Ok(store)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

macro_rules! sql_backend {
    ($store:ident, $db:ty, $backend:literal, $lock_head:literal, $lock_migrations:literal, $notify:literal) => {
        impl $store {
            async fn migrate(&self, scripts: &'static [(i64, &'static str)]) -> Result<(), StoreError> {
                sqlx::raw_sql(
                    "CREATE TABLE IF NOT EXISTS charter_migrations (version BIGINT PRIMARY KEY)",
                )
                .execute(&self.pool)
                .await?;
                let mut tx = self.pool.begin().await?;
                if !$lock_migrations.is_empty() {
                    sqlx::raw_sql($lock_migrations).execute(&mut *tx).await?;
                }
                for (version, script) in scripts {
                    let applied: Option<i64> =
                        sqlx::query_scalar("SELECT version FROM charter_migrations WHERE version = $1")
                            .bind(version)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if applied.is_some() {
                        continue;
                    }
                    sqlx::raw_sql(*script)
                        .execute(&mut *tx)
                        .await
                        .map_err(|source| StoreError::Migration { version: *version, source })?;
                    sqlx::query("INSERT INTO charter_migrations (version) VALUES ($1)")
                        .bind(version)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            fn doc_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Doc, StoreError> {
                let kind: String = row.try_get("kind")?;
                let id: String = row.try_get("id")?;
                let kind = kind_from(&kind).ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Decode(format!("unknown kind of {id}").into()))
                })?;
                Ok(Doc {
                    kind,
                    id,
                    name: row.try_get("name")?,
                    lookup: row.try_get("lookup")?,
                    parent: row.try_get("parent")?,
                    status: row.try_get("status")?,
                    body: row.try_get("body")?,
                    version: row.try_get("version")?,
                })
            }

            fn record_from_row(row: &<$db as sqlx::Database>::Row) -> Result<StoredRecord, StoreError> {
                let seq: i64 = row.try_get("seq")?;
                Ok(StoredRecord {
                    seq: u64::try_from(seq).unwrap_or(0),
                    body: row.try_get("body")?,
                    hash: row.try_get("hash")?,
                })
            }

            /// One page of the audit log under `q`, selecting `columns`.
            async fn audit_select(&self, columns: &str, q: &AuditQuery) -> Result<Vec<<$db as sqlx::Database>::Row>, StoreError> {
                // PostgreSQL text cannot hold NUL; no stored value contains one.
                if [&q.target, &q.action, &q.actor].iter().any(|v| v.as_deref().is_some_and(|v| v.contains('\0'))) {
                    return Ok(Vec::new());
                }
                let order = if q.newest_first { "DESC" } else { "ASC" };
                let sql = format!(
                    "SELECT {columns} FROM audit_log WHERE seq > $1 \
                     AND ($2 = 0 OR seq < $2) \
                     AND (CAST($3 AS TEXT) IS NULL OR target = $3) \
                     AND (CAST($4 AS TEXT) IS NULL OR action = $4) \
                     AND (CAST($5 AS TEXT) IS NULL OR actor = $5) \
                     ORDER BY seq {order} LIMIT $6"
                );
                Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(i64::try_from(q.after).unwrap_or(i64::MAX))
                    .bind(i64::try_from(q.before).unwrap_or(i64::MAX))
                    .bind(&q.target)
                    .bind(&q.action)
                    .bind(&q.actor)
                    .bind(i64::from(q.limit))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn fetch_doc(&self, column: &str, kind: Kind, value: &str) -> Result<Option<Doc>, StoreError> {
                if value.contains('\0') {
                    return Ok(None);
                }
                let sql = format!("SELECT {DOC_COLUMNS} FROM objects WHERE kind = $1 AND {column} = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(kind.as_str())
                    .bind(value)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::doc_from_row).transpose()
            }

            async fn apply_op(
                conn: &mut <$db as sqlx::Database>::Connection,
                op: &Op,
            ) -> Result<Result<(), UnitError>, sqlx::Error> {
                match op {
                    Op::Insert(doc) => {
                        let done = sqlx::query(
                            "INSERT INTO objects (id, kind, name, lookup, parent, status, body, version) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                        )
                        .bind(&doc.id)
                        .bind(doc.kind.as_str())
                        .bind(&doc.name)
                        .bind(&doc.lookup)
                        .bind(&doc.parent)
                        .bind(&doc.status)
                        .bind(&doc.body)
                        .bind(doc.version)
                        .execute(&mut *conn)
                        .await?;
                        if done.rows_affected() == 0 {
                            return Ok(Err(UnitError::Conflict(format!(
                                "{} with this {} already exists",
                                doc.kind.noun(),
                                doc.kind.unique_keys()
                            ))));
                        }
                    }
                    Op::Update(doc) => {
                        // A unique-key clash on update is reported like a lost race.
                        let done = sqlx::query(
                            "UPDATE objects SET name = $1, lookup = $2, parent = $3, status = $4, body = $5, \
                             version = $6 WHERE id = $7 AND kind = $8 AND version = $9",
                        )
                        .bind(&doc.name)
                        .bind(&doc.lookup)
                        .bind(&doc.parent)
                        .bind(&doc.status)
                        .bind(&doc.body)
                        .bind(doc.version)
                        .bind(&doc.id)
                        .bind(doc.kind.as_str())
                        .bind(doc.version - 1)
                        .execute(&mut *conn)
                        .await;
                        let conflict = match done {
                            Ok(done) => done.rows_affected() == 0,
                            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => true,
                            Err(e) => return Err(e),
                        };
                        if conflict {
                            return Ok(Err(UnitError::Conflict(format!(
                                "{} {} was changed concurrently; read it again and retry",
                                doc.kind.as_str(),
                                doc.id
                            ))));
                        }
                    }
                }
                Ok(Ok(()))
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn get(&self, kind: Kind, id: &str) -> Result<Option<Doc>, StoreError> {
                self.fetch_doc("id", kind, id).await
            }

            async fn get_by_name(&self, kind: Kind, name: &str) -> Result<Option<Doc>, StoreError> {
                self.fetch_doc("name", kind, name).await
            }

            async fn get_by_lookup(&self, kind: Kind, lookup: &str) -> Result<Option<Doc>, StoreError> {
                self.fetch_doc("lookup", kind, lookup).await
            }

            async fn list(
                &self,
                kind: Kind,
                filter: &ListFilter,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<Doc>, StoreError> {
                if [after, filter.parent.as_deref(), filter.status.as_deref()].iter().flatten().any(|v| v.contains('\0')) {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {DOC_COLUMNS} FROM objects WHERE kind = $1 AND id > $2 \
                     AND (CAST($3 AS TEXT) IS NULL OR parent = $3) \
                     AND (CAST($4 AS TEXT) IS NULL OR status = $4) \
                     ORDER BY id LIMIT $5"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(kind.as_str())
                    .bind(after.unwrap_or(""))
                    .bind(&filter.parent)
                    .bind(&filter.status)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::doc_from_row).collect()
            }

            async fn count(&self, kind: Kind) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM objects WHERE kind = $1")
                    .bind(kind.as_str())
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn audit_query(&self, q: &AuditQuery) -> Result<Vec<StoredRecord>, StoreError> {
                let rows = self.audit_select("seq, body, hash", q).await?;
                rows.iter().map(Self::record_from_row).collect()
            }

            async fn audit_rows(&self, q: &AuditQuery) -> Result<Vec<(StoredRecord, RecordColumns)>, StoreError> {
                let rows = self.audit_select("seq, body, hash, at, actor, action, target", q).await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            Self::record_from_row(row)?,
                            RecordColumns {
                                at: row.try_get("at")?,
                                actor: row.try_get("actor")?,
                                action: row.try_get("action")?,
                                target: row.try_get("target")?,
                            },
                        ))
                    })
                    .collect()
            }

            async fn change_feed(&self) -> Result<Option<crate::ChangeFeed>, StoreError> {
                self.feed().await
            }


            async fn try_lead(&self) -> Result<Option<crate::Leadership>, StoreError> {
                self.lead().await
            }

            async fn audit_head(&self) -> Result<ChainHead, StoreError> {
                let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                let seq: i64 = row.try_get("seq")?;
                Ok(ChainHead { seq: u64::try_from(seq).unwrap_or(0), hash: row.try_get("hash")? })
            }

            async fn commit(&self, units: Vec<PreparedUnit>) -> Result<Vec<Result<Vec<u64>, UnitError>>, StoreError> {
                let mut tx = self.pool.begin().await?;
                let row = sqlx::query(concat!("SELECT seq, hash FROM audit_head WHERE id = 1", $lock_head))
                    .fetch_one(&mut *tx)
                    .await?;
                let seq: i64 = row.try_get("seq")?;
                let mut head = ChainHead { seq: u64::try_from(seq).unwrap_or(0), hash: row.try_get("hash")? };
                // The head of every sub-chain a record of the batch joins, read once; moved
                // as records are sealed and written back at the end.
                let mut subjects: HashMap<String, Option<String>> = HashMap::new();
                for rec in units.iter().flat_map(|u| u.audit.iter()) {
                    if on_subject_chain(&rec.action, &rec.target) && !subjects.contains_key(&rec.target) {
                        let hash: Option<String> =
                            sqlx::query_scalar("SELECT hash FROM audit_subject_head WHERE subject = $1")
                                .bind(&rec.target)
                                .fetch_optional(&mut *tx)
                                .await?;
                        subjects.insert(rec.target.clone(), hash);
                    }
                }
                let mut moved: HashMap<String, (u64, String)> = HashMap::new();
                let mut results = Vec::with_capacity(units.len());
                let mut changed: Vec<String> = Vec::new();
                // Sealed records of every applied unit, inserted together at the end (a
                // failure there rolls back the whole batch, object writes included).
                let mut pending: Vec<(u64, crate::PreparedRecord, String, String)> = Vec::new();
                for unit in units {
                    let sp = if unit.ops.is_empty() {
                        None
                    } else {
                        let mut sp = sqlx::Acquire::begin(&mut *tx).await?;
                        let mut outcome = Ok(());
                        for op in &unit.ops {
                            outcome = Self::apply_op(&mut sp, op).await?;
                            if outcome.is_err() {
                                break;
                            }
                        }
                        if let Err(e) = outcome {
                            sp.rollback().await?;
                            results.push(Err(e));
                            continue;
                        }
                        Some(sp)
                    };
                    let mut unit_head = head.clone();
                    let mut sealed = Vec::with_capacity(unit.audit.len());
                    // Sub-chain heads as they will be if this unit commits.
                    let mut unit_subjects: Vec<(String, u64, String)> = Vec::new();
                    let mut unlinkable = None;
                    for mut rec in unit.audit {
                        let subject = on_subject_chain(&rec.action, &rec.target).then(|| rec.target.clone());
                        if let Some(subject) = &subject {
                            let prev = unit_subjects
                                .iter()
                                .rev()
                                .find(|(s, _, _)| s == subject)
                                .map(|(_, _, h)| Some(h.clone()))
                                .unwrap_or_else(|| subjects.get(subject).cloned().flatten());
                            if let Err(e) = rec.link_subject(prev.as_deref()) {
                                unlinkable = Some(e.to_string());
                                break;
                            }
                        }
                        let (seq, body, hash) = rec.seal(&unit_head);
                        unit_head = ChainHead { seq, hash: hash.clone() };
                        if let Some(subject) = subject {
                            unit_subjects.push((subject, seq, hash.clone()));
                        }
                        sealed.push((seq, rec, body, hash));
                    }
                    if let Some(e) = unlinkable {
                        if let Some(sp) = sp {
                            sp.rollback().await?;
                        }
                        results.push(Err(UnitError::Unencodable(e)));
                        continue;
                    }
                    for (subject, seq, hash) in unit_subjects {
                        subjects.insert(subject.clone(), Some(hash.clone()));
                        moved.insert(subject, (seq, hash));
                    }
                    if let Some(sp) = sp {
                        sp.commit().await?;
                    }
                    for op in &unit.ops {
                        let (Op::Insert(d) | Op::Update(d)) = op;
                        changed.push(format!("{}:{}", d.kind.as_str(), d.id));
                    }
                    head = unit_head;
                    results.push(Ok(sealed.iter().map(|(seq, _, _, _)| *seq).collect()));
                    pending.extend(sealed);
                }
                for chunk in pending.chunks(INSERT_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO audit_log (seq, at, actor, action, target, body, hash) ",
                    );
                    qb.push_values(chunk, |mut row, (seq, rec, body, hash)| {
                        row.push_bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                            .push_bind(rec.at.as_str())
                            .push_bind(rec.actor.as_str())
                            .push_bind(rec.action.as_str())
                            .push_bind(rec.target.as_str())
                            .push_bind(body.as_str())
                            .push_bind(hash.as_str());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                for (subject, (seq, hash)) in &moved {
                    sqlx::query(
                        "INSERT INTO audit_subject_head (subject, seq, hash) VALUES ($1, $2, $3) \
                         ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    )
                    .bind(subject)
                    .bind(i64::try_from(*seq).unwrap_or(i64::MAX))
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                    .bind(i64::try_from(head.seq).unwrap_or(i64::MAX))
                    .bind(&head.hash)
                    .execute(&mut *tx)
                    .await?;
                if $notify && !changed.is_empty() {
                    // Delivered to listeners when the transaction commits.
                    for chunk in changed.chunks(64) {
                        sqlx::query("SELECT pg_notify('charter_changes', $1)")
                            .bind(chunk.join("\n"))
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(results)
            }
        }
    };
}

sql_backend!(SqliteStore, sqlx::Sqlite, "sqlite", "", "", false);
sql_backend!(
    PostgresStore,
    sqlx::Postgres,
    "postgres",
    " FOR UPDATE",
    "SELECT pg_advisory_xact_lock(7600)",
    true
);
