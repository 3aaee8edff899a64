//! A queued write job, with its result type erased so one queue carries every kind of job, and
//! the answer it sends its caller once the batch's outcome is known.

use super::{StoreError, WriteError};
use redb::WriteTransaction;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use tokio::sync::oneshot;

pub(super) trait Job: Send {
    /// Runs the closure in `txn` and keeps its value. Returns `false` if it refused or panicked:
    /// it has then been answered already, and `txn` must be rolled back. A job that returned
    /// `true` may be run again in a fresh transaction (when a later job of its batch fails); the
    /// last run's value is the one answered.
    fn run(&mut self, txn: &WriteTransaction, path: &Path) -> bool;
    /// Answers with the value of the last run, or with the batch's failure.
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>, path: &Path);
    /// Answers without running, e.g. when the store is poisoned.
    fn refuse(self: Box<Self>, error: StoreError);
}

pub(super) struct Task<F, T, E> {
    f: F,
    value: Option<T>,
    reply: Option<oneshot::Sender<Result<T, WriteError<E>>>>,
}

impl<F, T, E> Task<F, T, E> {
    pub(super) fn new(f: F, reply: oneshot::Sender<Result<T, WriteError<E>>>) -> Self {
        Task {
            f,
            value: None,
            reply: Some(reply),
        }
    }

    fn send(&mut self, result: Result<T, WriteError<E>>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

impl<F, T, E> Job for Task<F, T, E>
where
    F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn run(&mut self, txn: &WriteTransaction, path: &Path) -> bool {
        // Unwind safety: after a panic the transaction is rolled back, so no state the job left
        // half-done is ever observed.
        match catch_unwind(AssertUnwindSafe(|| (self.f)(txn))) {
            Ok(Ok(value)) => {
                self.value = Some(value);
                true
            }
            Ok(Err(e)) => {
                self.send(Err(WriteError::Rejected(e)));
                false
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(path = %path.display(), %message, "a write job panicked; rolled back");
                self.send(Err(WriteError::Store(StoreError::Panicked {
                    path: path.to_path_buf(),
                    job: "write",
                    message,
                })));
                false
            }
        }
    }

    fn answer(mut self: Box<Self>, outcome: Result<(), StoreError>, path: &Path) {
        let result = match (outcome, self.value.take()) {
            (Ok(()), Some(value)) => Ok(value),
            (Err(e), _) => Err(WriteError::Store(e)),
            // Not reached: the writer answers this way only jobs whose last run wrote.
            (Ok(()), None) => Err(WriteError::Store(StoreError::WriterFailed {
                path: path.to_path_buf(),
                message: "a write job was answered before it ran".into(),
            })),
        };
        self.send(result);
    }

    fn refuse(mut self: Box<Self>, error: StoreError) {
        self.send(Err(WriteError::Store(error)));
    }
}

pub(super) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}
