//! A redb file with group commit: one [`Store`] per file, one writer thread per store.
//!
//! redb 4.5 fsyncs once per durable commit and lets one write transaction exist at a time, so
//! committing each request on its own caps a service at a few hundred writes per second. The
//! writer thread instead takes the job at the head of the queue, then whatever is already queued
//! behind it (up to [`MAX_BATCH_JOBS`] jobs or [`MAX_BATCH_TIME`] of work; it never waits for more
//! to arrive), and makes the whole batch durable with a single fsync.
//!
//! Isolation inside a batch. The obvious tool, an ephemeral savepoint per job, does not work in
//! redb 4.5: `ephemeral_savepoint()` is refused with `InvalidSavepoint` once the transaction has
//! opened a table, i.e. after the first job. So each job runs in its own write transaction,
//! committed with `Durability::None` (no fsync, ~30 µs here); the batch's last transaction commits
//! with `Durability::Immediate`, which makes every earlier one durable too. A rejected or panicking
//! job's transaction is aborted, leaving the others untouched; a panic is answered with
//! [`StoreError::Panicked`] and the rest of the batch commits normally (nothing needs a retry:
//! no other job shared its transaction). The price, measured by `benches/store.rs` on one thread
//! in batches of 64 (two runs, loaded machine): 16k–19k writes/s this way against 30k–68k/s in
//! one shared transaction that could not roll a single job back. 64 concurrent writers still
//! reach 8k–9k durable writes/s on this 2-core machine, ~60 writes per fsync.
//!
//! Readers must not see those not-yet-durable commits (an outbox relay would publish an event the
//! crash then loses), but a redb read transaction sees them. So after each durable commit the
//! writer opens one read transaction and publishes it; [`Store::read`] uses that snapshot. A
//! caller is answered only after the fsync and after the snapshot holding its write is published,
//! so reading one's own acknowledged write always works.
//!
//! A failed commit fails every job of its batch with [`StoreError::Commit`] and poisons the store:
//! redb refuses further writes after such a failure until the file is reopened, and the batch's
//! earlier non-durable commits must never be made durable by a later batch.

use super::StoreError;
use redb::{Database, Durability, ReadTransaction, ReadableDatabase, WriteTransaction};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

mod job;
#[cfg(test)]
mod tests;

use job::{Answer, Job, Ran, Task, panic_message};

/// At most this many jobs share one commit, so one batch cannot hold early callers for long.
pub const MAX_BATCH_JOBS: usize = 256;
/// A batch stops taking queued jobs after this much work; an fsync follows (~1–5 ms here).
pub const MAX_BATCH_TIME: Duration = Duration::from_millis(5);
/// Jobs waiting beyond this make [`Store::write`] wait (asynchronously) for room: backpressure.
const QUEUE_DEPTH: usize = 1024;

/// One redb file and its writer thread. Cheap to clone.
///
/// Dropping the last clone closes the queue and blocks until the writer has run every job still
/// queued (normally one batch, a few ms) and closed the file, so it can be reopened at once.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// Why a [`Store::write`] did not commit.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E> {
    /// The job returned this error; nothing it wrote was committed.
    #[error("{0}")]
    Rejected(E),
    /// The store failed (or the job panicked); see [`StoreError`].
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Inner {
    path: PathBuf,
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// What the writer publishes to readers after each durable commit.
struct Shared {
    snapshot: Mutex<Result<Arc<ReadTransaction>, StoreError>>,
    commits: watch::Sender<u64>,
}

#[derive(Clone, Copy)]
struct Limits {
    jobs: usize,
    time: Duration,
}

const LIMITS: Limits = Limits {
    jobs: MAX_BATCH_JOBS,
    time: MAX_BATCH_TIME,
};

impl Store {
    /// Opens the file, creating it if needed, and starts its writer thread. Blocking (a repair
    /// after a crash reads the whole file): call it at start-up or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: Arc::new(e),
        })?;
        Store::start(path, db, LIMITS)
    }

    fn start(path: &Path, db: Database, limits: Limits) -> Result<Store, StoreError> {
        let snapshot = db
            .begin_read()
            .map_err(|e| StoreError::redb(path, "starting a read transaction", e))?;
        let shared = Arc::new(Shared {
            snapshot: Mutex::new(Ok(Arc::new(snapshot))),
            commits: watch::Sender::new(0),
        });
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            db,
            path: path.to_path_buf(),
            queue,
            shared: shared.clone(),
            limits,
            poisoned: None,
        };
        let stem = path
            .file_stem()
            .unwrap_or(path.as_os_str())
            .to_string_lossy();
        let handle = thread::Builder::new()
            .name(format!("redb-writer-{stem}"))
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Io {
                path: path.to_path_buf(),
                during: "starting the writer thread",
                source: Arc::new(e),
            })?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                jobs: Some(jobs),
                shared,
                writer: Some(handle),
            }),
        })
    }

    /// Runs `f` in a write transaction on the writer thread and resolves once what it wrote is
    /// durable. If `f` returns `Err`, nothing it wrote is committed. Once queued, the job runs
    /// even if this future is dropped.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Task { f, reply });
        let sent = match &self.inner.jobs {
            Some(jobs) => jobs.send(job).await.is_ok(),
            None => false,
        };
        let gone = |message: &str| {
            WriteError::Store(StoreError::WriterFailed {
                path: self.inner.path.clone(),
                message: message.to_string(),
            })
        };
        if !sent {
            return Err(gone("the writer thread has stopped"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(gone("the writer thread dropped the job")))
    }

    /// Runs `f` on tokio's blocking pool against the state as of the last durable commit. It never
    /// sees a write that has not been acknowledged.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&ReadTransaction) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let snapshot = self.inner.shared.snapshot()?;
        let path = &self.inner.path;
        match tokio::task::spawn_blocking(move || f(&snapshot)).await {
            Ok(result) => result.map_err(|e| e.at(path)),
            Err(e) if e.is_panic() => Err(StoreError::Panicked {
                path: path.clone(),
                job: "read",
                message: panic_message(&*e.into_panic()),
            }),
            Err(_) => Err(StoreError::Closed { path: path.clone() }),
        }
    }

    /// The number of durable commits since the store was opened; changes after each one.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.inner.shared.commits.subscribe()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file's size in bytes (0 if it cannot be read, e.g. just deleted).
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.inner.path).map_or(0, |m| m.len())
    }

    /// Jobs waiting for the writer.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.inner
            .jobs
            .as_ref()
            .map_or(0, |j| j.max_capacity() - j.capacity())
    }
}

impl Shared {
    fn snapshot(&self) -> Result<Arc<ReadTransaction>, StoreError> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued, then exit and close the file.
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            // A job that owned the last clone drops it on the writer thread itself.
            if writer.thread().id() != thread::current().id() && writer.join().is_err() {
                tracing::error!(path = %self.path.display(), "the store writer thread panicked");
            }
        }
    }
}

struct Writer {
    db: Database,
    path: PathBuf,
    queue: mpsc::Receiver<Box<dyn Job>>,
    shared: Arc<Shared>,
    limits: Limits,
    /// Set by the first failed commit; every later job is refused with it.
    poisoned: Option<String>,
}

impl Writer {
    fn run(mut self) {
        // Ends when every Store clone is gone and the queue is empty.
        while let Some(first) = self.queue.blocking_recv() {
            if let Some(cause) = &self.poisoned {
                first.refuse(StoreError::Poisoned {
                    path: self.path.clone(),
                    cause: cause.clone(),
                });
                continue;
            }
            let mut answers = Vec::new();
            // A panic here comes from redb itself (jobs catch their own): the outcome of the
            // batch is unknown, so its callers are told so and the store refuses further writes.
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                if self.batch(first, &mut answers)? {
                    self.publish();
                }
                Ok(())
            }));
            let result = match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(panic) => Err(StoreError::WriterFailed {
                    path: self.path.clone(),
                    message: format!("redb panicked: {}", panic_message(&*panic)),
                }),
            };
            if let Err(e) = &result {
                tracing::error!(path = %self.path.display(), "store poisoned: {e}");
                self.poisoned = Some(e.to_string());
            }
            for answer in answers {
                answer.answer(result.clone());
            }
        }
        if let Err(e) = self.db.close() {
            tracing::warn!(path = %self.path.display(), "closing the store: {e}");
        }
    }

    /// Runs `first` and the jobs queued behind it, each in its own transaction, and makes them
    /// durable with one fsync. Returns whether anything was committed.
    fn batch(
        &mut self,
        first: Box<dyn Job>,
        answers: &mut Vec<Box<dyn Answer>>,
    ) -> Result<bool, StoreError> {
        let started = Instant::now();
        let mut taken = 1;
        let mut job = first;
        // Whether the last commit was non-durable and still needs a durable one after it.
        let mut unsynced = false;
        loop {
            let txn = match self.db.begin_write() {
                Ok(txn) => txn,
                Err(e) => {
                    let e = StoreError::redb(&self.path, "starting a write transaction", e);
                    job.refuse(e.clone());
                    return Err(e);
                }
            };
            let ran = job.run(&txn, &self.path);
            let next = if taken < self.limits.jobs && started.elapsed() < self.limits.time {
                self.queue.try_recv().ok()
            } else {
                None
            };
            taken += usize::from(next.is_some());
            let step = match ran {
                Ran::Wrote(answer) => {
                    answers.push(answer);
                    unsynced = next.is_some();
                    self.commit(txn, !unsynced)
                }
                Ran::Answered => txn
                    .abort()
                    .map_err(|e| StoreError::redb(&self.path, "rolling back a job", e)),
            };
            if let Err(e) = step {
                if let Some(next) = next {
                    next.refuse(e.clone());
                }
                return Err(e);
            }
            match next {
                Some(next) => job = next,
                None => break,
            }
        }
        if unsynced {
            // The batch ended with rejected jobs after non-durable commits: an empty durable
            // commit makes those durable.
            let txn = self
                .db
                .begin_write()
                .map_err(|e| StoreError::redb(&self.path, "starting a write transaction", e))?;
            self.commit(txn, true)?;
        }
        Ok(!answers.is_empty())
    }

    fn commit(&self, mut txn: WriteTransaction, durable: bool) -> Result<(), StoreError> {
        // Refused only if the job made a persistent savepoint; then this commit simply stays
        // durable, which is never wrong, only slower.
        if !durable {
            let _ = txn.set_durability(Durability::None);
        }
        txn.commit().map_err(|e| StoreError::Commit {
            path: self.path.clone(),
            source: Arc::new(e.into()),
        })
    }

    /// Publishes the durable state to readers and wakes the commit watchers.
    fn publish(&self) {
        let snapshot = self
            .db
            .begin_read()
            .map(Arc::new)
            .map_err(|e| StoreError::redb(&self.path, "starting a read transaction", e));
        if let Err(e) = &snapshot {
            // Reads fail loudly until the next commit rather than serve a stale snapshot.
            tracing::error!(path = %self.path.display(), "{e}");
        }
        *self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
        self.shared.commits.send_modify(|n| *n += 1);
    }
}
