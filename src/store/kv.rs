//! A redb file with group commit: one [`Store`] per file, one writer thread per store.
//!
//! redb 4.5 fsyncs once per durable commit and lets one write transaction exist at a time, so
//! committing each request on its own caps a store at a few thousand writes per second. The
//! writer thread instead takes the job at the head of the queue, then whatever is already queued
//! behind it (up to [`MAX_BATCH_JOBS`] jobs or [`MAX_BATCH_TIME`] of work; it never waits for more
//! to arrive), and makes the whole batch durable with a single fsync.
//!
//! Isolation inside a batch. The jobs of a batch share one write transaction. redb 4.5 cannot roll
//! one of them back on its own: `ephemeral_savepoint()` is refused with `InvalidSavepoint` once the
//! transaction has opened a table, i.e. after the first job. So when a job refuses (returns `Err`)
//! or panics, it is answered at once, the whole transaction is rolled back, and the jobs that had
//! written in it run again in a fresh one. That one is committed with `Durability::None` (no
//! fsync), so a later refusal in the same batch does not make them run a third time; the batch's
//! last commit is `Durability::Immediate`, which makes the earlier ones durable too. This is why a
//! write job is `Fn`: it may run more than once, only its last run's writes are committed and only
//! its last run's value is answered, and it must not act outside the transaction. Refusals are
//! rare (a stale `If-Match`, a taken email), and most jobs refuse before writing anything.
//! The gain, measured by `benches/store.rs` on one thread in batches of 64: 88k jobs/s in one
//! transaction against 21k/s with a `Durability::None` transaction per job, which is how jobs were
//! isolated before.
//!
//! Readers must not see those not-yet-durable commits (an outbox relay would publish an event the
//! crash then loses), but a redb read transaction sees them. So after each durable commit the
//! writer opens one read transaction and publishes it; [`Store::read`] uses that snapshot. A
//! caller is answered only after the fsync and after the snapshot holding its write is published,
//! so reading one's own acknowledged write always works.
//!
//! A failed commit fails every job of its batch with [`StoreError::Commit`] and poisons the store:
//! redb refuses further writes after such a failure until the file is reopened, and the batch's
//! earlier non-durable commits must never be made durable by a later batch. Reads go on from the
//! last durable snapshot. When a write arrives, at most every [`REOPEN_EVERY`], the writer checks
//! that the disk takes a write again (a small probe file beside the store) and then reopens the
//! file; redb recovers it to its last durable commit (a latched I/O error keeps it from writing
//! anything at close), and writes resume. So a full disk costs the writes made while it is full,
//! not a restart. [`Store::failures`] reports the poisoned state, for readiness.

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

use job::{Job, Task, panic_message};

/// At most this many jobs share one commit, so one batch cannot hold early callers for long.
pub const MAX_BATCH_JOBS: usize = 256;
/// A batch stops taking queued jobs after this much work; an fsync follows (~1–5 ms here).
pub const MAX_BATCH_TIME: Duration = Duration::from_millis(5);
/// Jobs waiting beyond this make [`Store::write`] wait (asynchronously) for room: backpressure.
const QUEUE_DEPTH: usize = 1024;
/// After a failed commit, how often a waiting write may make the writer try to reopen the file.
pub const REOPEN_EVERY: Duration = Duration::from_secs(2);
/// The probe written beside a poisoned store before reopening it: the disk must take this much.
const PROBE_BYTES: usize = 1 << 20;

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
    /// Why writes are refused (after a failed commit), or `None` while they work.
    failure: watch::Sender<Option<String>>,
}

#[derive(Clone, Copy)]
struct Limits {
    jobs: usize,
    time: Duration,
    reopen_every: Duration,
}

const LIMITS: Limits = Limits {
    jobs: MAX_BATCH_JOBS,
    time: MAX_BATCH_TIME,
    reopen_every: REOPEN_EVERY,
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
            failure: watch::Sender::new(None),
        });
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            db: Some(db),
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
    ///
    /// `f` may run more than once, each time in a fresh transaction from the same starting
    /// state, when another job of its batch fails: only the last run's writes are committed and
    /// only its value is returned. So `f` must not act outside the transaction (send, count,
    /// log as if it had committed).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, WriteError<E>>
    where
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Task::new(f, reply));
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

    /// Why the store refuses writes (a commit failed and the file is not reopened yet), or
    /// `None` while writes work; changes when that does.
    pub fn failures(&self) -> watch::Receiver<Option<String>> {
        self.inner.shared.failure.subscribe()
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
    /// `None` only while a poisoned store is between closing and a successful reopen.
    db: Option<Database>,
    path: PathBuf,
    queue: mpsc::Receiver<Box<dyn Job>>,
    shared: Arc<Shared>,
    limits: Limits,
    /// Set by a failed commit; jobs are refused with it until the file is reopened.
    poisoned: Option<Poisoned>,
}

struct Poisoned {
    cause: String,
    /// When the commit failed or the file was last tried again.
    tried: Instant,
}

impl Writer {
    fn run(mut self) {
        // Ends when every Store clone is gone and the queue is empty.
        while let Some(first) = self.queue.blocking_recv() {
            if self.poisoned.is_some() && !self.recover() {
                let cause = self.poisoned.as_ref().map(|p| p.cause.clone());
                first.refuse(StoreError::Poisoned {
                    path: self.path.clone(),
                    cause: cause.unwrap_or_default(),
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
                tracing::error!(
                    path = %self.path.display(),
                    "store poisoned: {e}. Writes to it are refused (503) until the disk takes \
                     writes again; souk then reopens the file by itself"
                );
                let cause = match e {
                    StoreError::Commit { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                self.shared.failure.send_replace(Some(cause.clone()));
                self.poisoned = Some(Poisoned {
                    cause,
                    tried: Instant::now(),
                });
            }
            for job in answers {
                job.answer(result.clone(), &self.path);
            }
        }
        if let Some(Err(e)) = self.db.take().map(Database::close) {
            tracing::warn!(path = %self.path.display(), "closing the store: {e}");
        }
    }

    /// A poisoned store: once [`Limits::reopen_every`] has passed since the last attempt, and the
    /// disk takes a probe write, closes the file and opens it again (redb recovers it to its last
    /// durable commit). Answers whether writes work again.
    fn recover(&mut self) -> bool {
        let Some(poisoned) = &mut self.poisoned else {
            return true;
        };
        if poisoned.tried.elapsed() < self.limits.reopen_every {
            return false;
        }
        poisoned.tried = Instant::now();
        let cause = poisoned.cause.clone();
        if let Err(e) = probe(&self.path) {
            tracing::debug!(path = %self.path.display(), "the disk does not take writes yet: {e}");
            return false;
        }
        // Readers let go of the old file first: redb keeps it (and its lock) open for them.
        self.set_snapshot(Err(StoreError::Poisoned {
            path: self.path.clone(),
            cause: format!("{cause}; reopening"),
        }));
        if let Some(Err(e)) = self.db.take().map(Database::close) {
            // Expected after an I/O error: redb leaves the file for the next open to recover.
            tracing::debug!(path = %self.path.display(), "closing the failed store: {e}");
        }
        match Database::create(&self.path) {
            Ok(db) => {
                self.db = Some(db);
                self.poisoned = None;
                self.publish();
                self.shared.failure.send_replace(None);
                tracing::warn!(
                    path = %self.path.display(),
                    "store reopened after a failed commit; writes work again"
                );
                true
            }
            Err(e) => {
                tracing::error!(
                    path = %self.path.display(),
                    retry_in = ?self.limits.reopen_every,
                    "reopening the store after a failed commit failed: {e}"
                );
                self.set_snapshot(Err(StoreError::Poisoned {
                    path: self.path.clone(),
                    cause: format!("reopening failed: {e}"),
                }));
                false
            }
        }
    }

    fn db(&self) -> &Database {
        self.db
            .as_ref()
            .expect("an open database whenever the store is not poisoned")
    }

    fn set_snapshot(&self, snapshot: Result<Arc<ReadTransaction>, StoreError>) {
        *self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    /// Runs `first` and the jobs queued behind it in one write transaction and makes them durable
    /// with one fsync. The jobs that wrote are added to `answers`; returns whether there are any.
    fn batch(
        &mut self,
        first: Box<dyn Job>,
        answers: &mut Vec<Box<dyn Job>>,
    ) -> Result<bool, StoreError> {
        let started = Instant::now();
        let mut taken = 1;
        let mut job = first;
        // `answers[..committed]` are committed non-durably; the rest wrote in `txn`.
        let mut committed = 0;
        let mut txn = match self.begin() {
            Ok(txn) => txn,
            Err(e) => {
                job.refuse(e.clone());
                return Err(e);
            }
        };
        loop {
            if job.run(&txn, &self.path) {
                answers.push(job);
            } else {
                // Answered already, but it may have written in the transaction the others share.
                self.abort(txn)?;
                txn = self.run_again(answers, &mut committed)?;
            }
            if taken == self.limits.jobs || started.elapsed() >= self.limits.time {
                break;
            }
            match self.queue.try_recv() {
                Ok(next) => {
                    job = next;
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        if answers.is_empty() {
            self.abort(txn)?;
            return Ok(false);
        }
        // Also makes the batch's non-durable commits durable, if it had any.
        self.commit(txn, true)?;
        Ok(true)
    }

    /// After a job failed and the shared transaction was rolled back: runs the jobs that had
    /// written in it again, in a fresh transaction, and commits them non-durably so that a later
    /// failure in the batch does not run them a third time. Returns a fresh transaction.
    fn run_again(
        &mut self,
        answers: &mut Vec<Box<dyn Job>>,
        committed: &mut usize,
    ) -> Result<WriteTransaction, StoreError> {
        'again: loop {
            let txn = self.begin()?;
            if *committed == answers.len() {
                return Ok(txn);
            }
            for i in *committed..answers.len() {
                if !answers[i].run(&txn, &self.path) {
                    // It wrote the first time but not now (it saw different data, e.g. the
                    // clock): it is answered, and the others run once more without it.
                    answers.remove(i);
                    self.abort(txn)?;
                    continue 'again;
                }
            }
            self.commit(txn, false)?;
            *committed = answers.len();
            return self.begin();
        }
    }

    fn begin(&self) -> Result<WriteTransaction, StoreError> {
        self.db()
            .begin_write()
            .map_err(|e| StoreError::redb(&self.path, "starting a write transaction", e))
    }

    fn abort(&self, txn: WriteTransaction) -> Result<(), StoreError> {
        txn.abort()
            .map_err(|e| StoreError::redb(&self.path, "rolling back a write transaction", e))
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
            .db()
            .begin_read()
            .map(Arc::new)
            .map_err(|e| StoreError::redb(&self.path, "starting a read transaction", e));
        if let Err(e) = &snapshot {
            // Reads fail loudly until the next commit rather than serve a stale snapshot.
            tracing::error!(path = %self.path.display(), "{e}");
        }
        self.set_snapshot(snapshot);
        self.shared.commits.send_modify(|n| *n += 1);
    }
}

/// Whether the disk under `store` takes (and syncs) a write of [`PROBE_BYTES`] again.
fn probe(store: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = store.as_os_str().to_owned();
    name.push(".probe");
    let path = PathBuf::from(name);
    let result = std::fs::File::create(&path).and_then(|mut f| {
        f.write_all(&vec![0u8; PROBE_BYTES])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&path);
    result
}
