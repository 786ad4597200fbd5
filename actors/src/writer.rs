//! Group commit: the hot writes of calls (opening a task with its reservation, settling it,
//! marking the hand-over) from every caller go through one [`Writer`], which runs whatever has
//! queued up meanwhile in ONE database transaction and answers each caller only after that
//! transaction committed, so each caller still learns of its own writes only once they are
//! durable.
//!
//! Why: a commit is the expensive part of a small write (with SQLite `synchronous=FULL` it
//! waits for the disk; under SQLite there is one writer at a time anyway), so sharing one
//! commit among many calls multiplies throughput while keeping every call's durability.
//!
//! A job that fails (not enough tokens, a lost `requestId` race, a database error) must not
//! take the others down with it, and must leave nothing half-written. Savepoints would cost
//! two statements per job on the fast path, so the writer is optimistic instead: the batch runs
//! without them; if any job fails, the whole transaction is rolled back and each job runs again
//! alone, in a transaction of its own. Jobs are therefore written to be run more than once
//! (they only write to the database; their result is delivered once, at the end).
//!
//! In a batch of several jobs, the writes no job reads back (inserts, counters) are held back
//! and written together just before the commit ([`crate::later`]): a few statements per
//! batch instead of several per call. A failure there splits the batch like any other.

use crate::{
    db::{self, WriteTxn},
    error::{HubError, HubResult},
};
use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DbBackend};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use tokio::sync::{mpsc, oneshot};

/// Most jobs one transaction takes; a bound on how long one commit keeps the others waiting.
const MAX_BATCH: usize = 256;

/// The handle to the group-commit loop (cheap to clone; the loop ends with the last handle).
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
    stats: Arc<Stats>,
}

/// What the writer has done so far (for the benchmark, metrics and tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Jobs whose work was committed.
    pub committed_jobs: AtomicU64,
    /// Batches rolled back because a job failed, then run job by job.
    pub split_batches: AtomicU64,
}

impl Writer {
    /// Starts the loop. On SQLite it gets a thread of its own (see [`own_thread`]); on
    /// PostgreSQL it runs on the current tokio runtime, whose reactor owns the pool's sockets.
    pub fn start(db: DatabaseConnection) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let work = run(db.clone(), rx, stats.clone());
        match db.get_database_backend() {
            DbBackend::Sqlite => own_thread(work),
            _ => {
                tokio::spawn(work);
            }
        }
        Self { jobs, stats }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Runs `work` in the next group transaction and returns its result once that transaction
    /// committed (or the error that stopped it). `work` may run twice (see the module doc).
    pub async fn run<T, F>(&self, work: F) -> HubResult<T>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t WriteTxn) -> BoxFuture<'t, HubResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Typed {
            work,
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| HubError::Internal(anyhow::anyhow!("the writer has stopped")))?;
        answer
            .await
            .map_err(|_| HubError::Internal(anyhow::anyhow!("the writer dropped a job")))?
    }
}

/// A job, type-erased for the queue.
trait Job: Send {
    /// Runs the work in `txn`, keeping its result; whether it succeeded.
    fn run<'t>(&'t mut self, txn: &'t WriteTxn) -> BoxFuture<'t, bool>;
    /// Delivers the kept result, or `failed` when the transaction did not commit.
    fn finish(self: Box<Self>, failed: Option<String>);
}

struct Typed<T, F> {
    work: F,
    result: Option<HubResult<T>>,
    reply: oneshot::Sender<HubResult<T>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send + 'static,
    F: for<'t> Fn(&'t WriteTxn) -> BoxFuture<'t, HubResult<T>> + Send + 'static,
{
    fn run<'t>(&'t mut self, txn: &'t WriteTxn) -> BoxFuture<'t, bool> {
        Box::pin(async move {
            let result = (self.work)(txn).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, failed: Option<String>) {
        let result = match (failed, self.result) {
            // The work failed: its own error, whatever happened to the transaction.
            (_, Some(Err(err))) => Err(err),
            (None, Some(ok)) => ok,
            (Some(why), _) => Err(HubError::Internal(anyhow::anyhow!(why))),
            (None, None) => Err(HubError::Internal(anyhow::anyhow!("the job did not run"))),
        };
        let _ = self.reply.send(result);
    }
}

/// Runs the loop on a thread of its own, with a one-thread runtime, until the last handle
/// is dropped.
///
/// Why: building statements, binding and decoding rows for every call's writes is CPU work,
/// and on the runtime that started the hub it shared one thread with the registry and the
/// wallet actors (actix's main arbiter); the benchmark found that thread at 100 % while the
/// second core idled. SQLite connections need no reactor (sqlx talks to each over a channel
/// to a worker thread of its own), so the pool can be used from any runtime.
fn own_thread(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("agenthub-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work),
                Err(err) => tracing::error!(error = %err, "the writer's runtime did not start"),
            }
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "the writer's thread did not start");
    }
}

async fn run(
    db: DatabaseConnection,
    mut rx: mpsc::UnboundedReceiver<Box<dyn Job>>,
    stats: Arc<Stats>,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&db, std::mem::take(&mut batch), &stats).await;
    }
}

/// Runs a batch in one transaction; on any failure, runs each job alone.
async fn commit_batch(db: &DatabaseConnection, mut batch: Vec<Box<dyn Job>>, stats: &Stats) {
    match attempt(db, &mut batch).await {
        Ok(()) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats
                .committed_jobs
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.into_iter().for_each(|job| job.finish(None));
        }
        Err(why) if batch.len() == 1 => {
            if let Some(job) = batch.pop() {
                job.finish(Some(why));
            }
        }
        Err(_) => {
            stats.split_batches.fetch_add(1, Ordering::Relaxed);
            for mut job in batch {
                let alone = attempt(db, std::slice::from_mut(&mut job)).await;
                if alone.is_ok() {
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    stats.committed_jobs.fetch_add(1, Ordering::Relaxed);
                }
                job.finish(alone.err());
            }
        }
    }
}

/// One transaction over `jobs`: committed when every job succeeded, else rolled back.
async fn attempt(db: &DatabaseConnection, jobs: &mut [Box<dyn Job>]) -> Result<(), String> {
    let mut txn = db::begin_write(db).await.map_err(|e| e.to_string())?;
    if jobs.len() > 1 {
        // A job alone holds nothing back, so a failure at the flush is always its own.
        txn.hold_back();
    }
    for job in jobs.iter_mut() {
        if !job.run(&txn).await {
            let _ = txn.rollback().await;
            return Err("rolled back".into());
        }
    }
    txn.commit().await.map_err(|e| e.to_string())
}
