//! The audit writer: one task that owns every write. Callers submit a [`Unit`] and await
//! its commit; the task drains whatever is queued into one transaction (group commit), so
//! the cost of a durable commit is shared by everyone who arrived meanwhile.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::{PreparedRecord, PreparedUnit, Store, StoreError, Unit, UnitError, WriteError};

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Units waiting to be written before submitters wait for room.
    pub queue: usize,
    /// Most units in one commit.
    pub max_batch: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue: 8192,
            max_batch: 512,
        }
    }
}

/// Canonicalises a unit's audit details on the caller's task, off the writer's path.
pub fn prepare(unit: Unit) -> Result<PreparedUnit, UnitError> {
    let audit = unit
        .audit
        .iter()
        .map(PreparedRecord::prepare)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| UnitError::Unencodable(e.to_string()))?;
    Ok(PreparedUnit {
        ops: unit.ops,
        audit,
    })
}

/// Where a unit's result goes: a waiting caller, or nowhere (fire-and-forget records).
type Reply = Option<oneshot::Sender<Result<Vec<u64>, WriteError>>>;

/// Handle to the writer task; cheap to clone. The task stops when every handle is dropped.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<(PreparedUnit, Reply)>,
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Store>, config: WriterConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        tokio::spawn(run(store, rx, config.max_batch.max(1)));
        Self { tx }
    }

    /// Writes a unit and returns the sequence numbers of its audit records once the commit
    /// holding them is durable.
    pub async fn submit(&self, unit: Unit) -> Result<Vec<u64>, WriteError> {
        let unit = prepare(unit)?;
        let (reply, done) = oneshot::channel();
        self.tx
            .send((unit, Some(reply)))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Queues a unit without waiting for its commit (records that must not hold a response,
    /// such as a call's outcome). A failed commit is logged by the writer.
    pub async fn submit_detached(&self, unit: PreparedUnit) -> Result<(), WriteError> {
        self.tx
            .send((unit, None))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        Ok(())
    }

    /// Queues a unit without waiting at all if there is room; `Err` gives it back when the
    /// queue is full.
    pub fn try_submit_detached(&self, unit: PreparedUnit) -> Result<(), PreparedUnit> {
        self.tx.try_send((unit, None)).map_err(|e| match e {
            mpsc::error::TrySendError::Full((u, _)) | mpsc::error::TrySendError::Closed((u, _)) => {
                u
            }
        })
    }

    /// Units waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(PreparedUnit, Reply)>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let (units, replies): (Vec<PreparedUnit>, Vec<Reply>) = batch.drain(..).unzip();
        metrics::histogram!("charter_audit_commit_batch_size").record(units.len() as f64);
        match store.commit(units).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    match reply {
                        Some(reply) => {
                            let _ = reply.send(result.map_err(|e: UnitError| WriteError::Unit(e)));
                        }
                        None => {
                            if let Err(e) = result {
                                tracing::error!(error = %e, "a queued audit unit was refused");
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit commit failed; nothing in the batch was written");
                let msg = e.to_string();
                for reply in replies.into_iter().flatten() {
                    let _ =
                        reply.send(Err(WriteError::Store(StoreError::Unavailable(msg.clone()))));
                }
            }
        }
    }
}
