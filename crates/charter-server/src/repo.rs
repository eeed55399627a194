//! The repository every service works through: the store, the audit writer, the live view
//! and the clock, with the helpers that turn a domain change into an audited write and the
//! one paging walk for callers that need every object of a kind.
//!
//! Invariants: an object changes only together with the audit record that explains it (one
//! `Unit`), a write is acknowledged only once durable, and the live view is updated from what
//! was committed — never ahead of it.
//!
//! Audit details: `create` records `{after}` and `update` records `{changed, after}`, where
//! `after` is the object in its *stored document format* (charter-core's serde form, via
//! [`to_value`]) and `changed` is [`diff`] of the two stored documents' top-level fields.
//! They are not the admin API's reply shape (the `wire` module): the audit trail describes what
//! was stored, so a change to the API's wire types never changes what the audit records.

use std::sync::{Arc, Mutex};

use charter_core::Clock;
use charter_evidence::StoredRecord;
use charter_gateway::Live;
use charter_store::{
    AuditQuery, AuditRecord, AuditWriter, ListFilter, Op, Record, Store, Unit, Versioned,
};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::chain_guard::ChainGuard;
use crate::error::{ApiError, ApiResult};

/// Rows fetched per page by [`Repo::list_all`].
pub const PAGE: usize = 500;
/// Audit records fetched per page by [`Repo::audit_all`].
pub const AUDIT_PAGE: u32 = 1000;

pub struct Repo {
    pub store: Arc<dyn Store>,
    pub writer: AuditWriter,
    /// This node's in-memory view (shared with the in-process gateway).
    pub live: Arc<Live>,
    pub clock: Arc<dyn Clock>,
    /// The audit chain as this process last verified it: evidence is signed only over a
    /// chain that verifies (`chain_guard`).
    pub chain: ChainGuard,
    /// The last id seed handed out: (milliseconds, 80-bit random part).
    last_id: Mutex<(u64, u128)>,
}

impl Repo {
    pub fn new(
        store: Arc<dyn Store>,
        writer: AuditWriter,
        live: Arc<Live>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            writer,
            live,
            clock,
            chain: ChainGuard::default(),
            last_id: Mutex::new((0, 0)),
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Unix milliseconds and 80 random bits for a new object id. Within one millisecond
    /// (or if the clock steps back) the previous seed is incremented, so ids issued by this
    /// process sort in creation order.
    pub fn id_seed(&self) -> (u64, [u8; 10]) {
        let now = u64::try_from(self.now().as_millisecond()).unwrap_or(0);
        let mut last = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
        let (millis, random) = if now > last.0 {
            (now, u128::from_be_bytes(pad(rand::random())))
        } else {
            (last.0, (last.1 + 1) & ((1u128 << 80) - 1))
        };
        *last = (millis, random);
        let bytes = random.to_be_bytes();
        let mut out = [0u8; 10];
        out.copy_from_slice(&bytes[6..]);
        (millis, out)
    }

    /// An audit record stamped with the current time; the writer seals it onto the chain.
    pub fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        reason: Option<String>,
        details: Value,
    ) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at: self.now().to_string(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason,
            details,
            prev: String::new(),
        }
    }

    /// Loads an object by id; a malformed or unknown id is 404.
    pub async fn load<T: Record>(&self, id: &str, what: &str) -> ApiResult<Versioned<T>> {
        if !plausible_id(id) {
            return Err(ApiError::not_found(what));
        }
        match self.store.get(T::KIND, id).await? {
            Some(doc) => Ok(Versioned::from_doc(&doc)?),
            None => Err(ApiError::not_found(what)),
        }
    }

    /// An object a request refers to (an owner, a partner, an API): one that does not exist
    /// makes the request invalid (422), unlike an unknown id in the path (404).
    pub async fn referenced<T: Record>(&self, id: &str, what: &str) -> ApiResult<T> {
        match self.store.get(T::KIND, id).await? {
            Some(doc) => Ok(Versioned::<T>::from_doc(&doc)?.value),
            None => Err(ApiError::Invalid(format!("{what} {id} does not exist"))),
        }
    }

    /// Every object of `T`'s kind that passes the filter, read a page at a time.
    pub async fn list_all<T: Record>(&self, filter: ListFilter) -> ApiResult<Vec<Versioned<T>>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(T::KIND, &filter, after.as_deref(), PAGE as u32)
                .await?;
            for doc in &page {
                out.push(Versioned::from_doc(doc)?);
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Every audit record that matches `query` from `query.after` on, oldest first, read a
    /// page at a time (`query.limit` is the page size; 0 means the default).
    pub async fn audit_all(&self, mut query: AuditQuery) -> ApiResult<Vec<StoredRecord>> {
        query.newest_first = false;
        query.before = 0;
        if query.limit == 0 {
            query.limit = AUDIT_PAGE;
        }
        let mut out = Vec::new();
        loop {
            let page = self.store.audit_query(&query).await?;
            let full = page.len() == query.limit as usize;
            let Some(last) = page.last() else { break };
            query.after = last.seq;
            out.extend(page);
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Writes a unit (object changes and their audit records), waits until it is durable,
    /// and applies it to the live view.
    pub async fn write(&self, unit: Unit) -> ApiResult<Vec<u64>> {
        let docs: Vec<_> = unit
            .ops
            .iter()
            .map(|op| match op {
                Op::Insert(d) | Op::Update(d) => d.clone(),
            })
            .collect();
        let seqs = self.writer.submit(unit).await?;
        for doc in &docs {
            self.live.apply(doc);
        }
        Ok(seqs)
    }

    /// Creates an object with its audit record.
    pub async fn create<T: Record>(
        &self,
        value: &T,
        lookup: Option<String>,
        actor: &str,
        action: &str,
        reason: Option<String>,
    ) -> ApiResult<()> {
        let details = json!({ "after": to_value(value) });
        let rec = self.record(actor, action, value.id(), reason, details);
        self.write(Unit {
            ops: vec![Op::Insert(Versioned::new_doc(value, lookup))],
            audit: vec![rec],
        })
        .await?;
        Ok(())
    }

    /// Replaces an object read at `old`, recording what changed.
    pub async fn update<T: Record>(
        &self,
        old: &Versioned<T>,
        new: &T,
        actor: &str,
        action: &str,
        reason: Option<String>,
        extra: Option<Value>,
    ) -> ApiResult<()> {
        let mut details = json!({ "changed": diff(&to_value(&old.value), &to_value(new)), "after": to_value(new) });
        if let (Some(Value::Object(extra)), Value::Object(d)) = (extra, &mut details) {
            d.extend(extra);
        }
        let rec = self.record(actor, action, new.id(), reason, details);
        self.write(Unit {
            ops: vec![Op::Update(old.next_doc(new))],
            audit: vec![rec],
        })
        .await?;
        Ok(())
    }
}

fn pad(random: [u8; 10]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[6..].copy_from_slice(&random);
    out
}

/// Whether a path segment could be an object id at all (prefix, `_`, 26 characters); others
/// are answered 404 without asking the store.
pub fn plausible_id(id: &str) -> bool {
    id.len() == 30 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Top-level fields whose value changed: `{field: [before, after]}`.
pub fn diff(before: &Value, after: &Value) -> Value {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return json!([before, after]);
    };
    let mut out = Map::new();
    for (k, av) in a {
        let bv = b.get(k).unwrap_or(&Value::Null);
        if bv != av {
            out.insert(k.clone(), json!([bv, av]));
        }
    }
    Value::Object(out)
}
