//! A queued write job, with its result type erased so one queue carries every kind of job, and
//! the answer it sends its caller once the batch's outcome is known.

use super::{StoreError, WriteError};
use redb::WriteTransaction;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use tokio::sync::oneshot;

pub(super) trait Job: Send {
    /// Runs the closure. A rejection or panic is answered at once and leaves nothing to commit.
    fn run(self: Box<Self>, txn: &WriteTransaction, path: &Path) -> Ran;
    /// Answers without running, e.g. when the store is poisoned.
    fn refuse(self: Box<Self>, error: StoreError);
}

pub(super) enum Ran {
    /// Wrote; the answer waits for the batch's durable commit.
    Wrote(Box<dyn Answer>),
    /// Rejected or panicked, and already answered: roll its transaction back.
    Answered,
}

pub(super) trait Answer: Send {
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

pub(super) struct Task<F, T, E> {
    pub(super) f: F,
    pub(super) reply: oneshot::Sender<Result<T, WriteError<E>>>,
}

struct Done<T, E> {
    value: T,
    reply: oneshot::Sender<Result<T, WriteError<E>>>,
}

impl<F, T, E> Job for Task<F, T, E>
where
    F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn run(self: Box<Self>, txn: &WriteTransaction, path: &Path) -> Ran {
        let Task { f, reply } = *self;
        // Unwind safety: after a panic the transaction is aborted, so no state the job left
        // half-done is ever observed.
        match catch_unwind(AssertUnwindSafe(|| f(txn))) {
            Ok(Ok(value)) => Ran::Wrote(Box::new(Done { value, reply })),
            Ok(Err(e)) => {
                let _ = reply.send(Err(WriteError::Rejected(e)));
                Ran::Answered
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                tracing::error!(path = %path.display(), %message, "a write job panicked; rolled back");
                let _ = reply.send(Err(WriteError::Store(StoreError::Panicked {
                    path: path.to_path_buf(),
                    job: "write",
                    message,
                })));
                Ran::Answered
            }
        }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(WriteError::Store(error)));
    }
}

impl<T: Send, E: Send> Answer for Done<T, E> {
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let value = self.value;
        let _ = self
            .reply
            .send(outcome.map(|()| value).map_err(WriteError::Store));
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
