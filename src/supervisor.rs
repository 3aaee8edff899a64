//! Named, supervised background tasks with restart policies and an orderly shutdown.
//!
//! Each task gets a child of one root cancellation token. Shutdown stops tasks in the reverse
//! order they were started (the HTTP server before the services, the services before the bus,
//! the bus before the broker), waits for each by name and logs it, and aborts a task that does
//! not stop within the timeout.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What to do when a task returns an error.
#[derive(Clone, Copy, Debug)]
pub enum Restart {
    /// An error ends the task; it is logged.
    Never,
    /// Restart after an exponential backoff from `initial`, capped at 10 s.
    OnError { initial: Duration },
}

struct Task {
    name: String,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

pub struct Supervisor {
    root: CancellationToken,
    tasks: Vec<Task>,
}

const BACKOFF_CAP: Duration = Duration::from_secs(10);

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor {
            root: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// The root token: cancelled when shutdown begins.
    pub fn token(&self) -> CancellationToken {
        self.root.clone()
    }

    /// Starts `run` as the task `name`. `run` receives the task's cancellation token and is
    /// called again after an error when the policy says so.
    pub fn spawn<F, Fut>(&mut self, name: impl Into<String>, policy: Restart, run: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let name = name.into();
        let cancel = self.root.child_token();
        let token = cancel.clone();
        let task_name = name.clone();
        let handle = tokio::spawn(async move {
            let mut delay = match policy {
                Restart::OnError { initial } => initial,
                Restart::Never => Duration::ZERO,
            };
            loop {
                let result = run(token.clone()).await;
                if token.is_cancelled() {
                    if let Err(e) = result {
                        tracing::warn!(task = %task_name, "task ended with an error while stopping: {e:#}");
                    }
                    return;
                }
                match (result, policy) {
                    (Ok(()), _) => {
                        tracing::debug!(task = %task_name, "task finished");
                        return;
                    }
                    (Err(e), Restart::Never) => {
                        tracing::error!(task = %task_name, "task failed and will not be restarted: {e:#}");
                        return;
                    }
                    (Err(e), Restart::OnError { .. }) => {
                        tracing::error!(task = %task_name, retry_in = ?delay, "task failed, restarting: {e:#}");
                    }
                }
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(BACKOFF_CAP);
            }
        });
        self.tasks.push(Task {
            name,
            cancel,
            handle,
        });
    }

    /// Stops every task, newest first, each within `timeout`.
    pub async fn shutdown(mut self, timeout: Duration) {
        while let Some(task) = self.tasks.pop() {
            task.cancel.cancel();
            let abort = task.handle.abort_handle();
            match tokio::time::timeout(timeout, task.handle).await {
                Ok(Ok(())) => tracing::info!(task = %task.name, "stopped"),
                Ok(Err(e)) if e.is_panic() => {
                    tracing::error!(task = %task.name, "task had panicked")
                }
                Ok(Err(_)) => tracing::info!(task = %task.name, "stopped (aborted)"),
                Err(_) => {
                    abort.abort();
                    tracing::warn!(task = %task.name, ?timeout, "did not stop in time; aborted");
                }
            }
        }
        self.root.cancel();
    }
}
