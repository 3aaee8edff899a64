//! May this seller list? Asked of the users service (`souk.rpc.users.sellers`), which owns that
//! truth, once for all the creates waiting at the same time rather than once per create.
//!
//! Each create joins the queue; one question is in flight at a time, and it carries every id
//! queued before it was sent. So every answer comes from a read the users service made after
//! the create arrived: a seller disabled or deleted just before a create is refused, exactly as
//! with one call per create. Under load a question carries tens of creates; alone, a create
//! waits for one round trip as before (plus, at worst, the one already in flight).
//!
//! Why not a local copy of the sellers fed by user events: the copy is behind the users
//! service by the relay and the consumer (milliseconds), so a create right after a disable
//! would pass; the API promises it is refused.

use crate::bus::rpc::CallError;
use crate::bus::{Bus, Meta};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// Ids per question at most (the rest wait for the next one).
const MAX_IDS: usize = 512;
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the users service said about one seller.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Exists and is enabled.
    MaySell,
    /// Unknown, deleted or disabled.
    MayNot,
    /// The question could not be answered.
    Unavailable(String),
}

#[derive(Serialize)]
struct Question<'a> {
    ids: &'a [String],
}

#[derive(Deserialize)]
struct Answer {
    enabled: Vec<String>,
}

type Waiter = (String, oneshot::Sender<Verdict>);

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiter>,
    /// A question is in flight; its task sends the next one when it returns.
    asking: bool,
}

pub struct Sellers {
    bus: Bus,
    queue: Mutex<Queue>,
}

impl Sellers {
    pub fn new(bus: Bus) -> Arc<Sellers> {
        Arc::new(Sellers {
            bus,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Whether `seller` may list now. `meta` traces the question when this create starts it.
    pub async fn check(self: &Arc<Self>, seller: &str, meta: &Meta) -> Verdict {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push((seller.to_string(), tx));
            !std::mem::replace(&mut q.asking, true)
        };
        if start {
            let (this, meta) = (self.clone(), meta.clone());
            tokio::spawn(async move { this.ask_while_waiting(meta).await });
        }
        rx.await
            .unwrap_or_else(|_| Verdict::Unavailable("the seller check was dropped".into()))
    }

    /// Sends questions until nobody is waiting.
    async fn ask_while_waiting(self: Arc<Self>, meta: Meta) {
        loop {
            let batch: Vec<Waiter> = {
                let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if q.waiting.is_empty() {
                    q.asking = false;
                    return;
                }
                let n = q.waiting.len().min(MAX_IDS);
                q.waiting.drain(..n).collect()
            };
            let mut ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            let reply = self
                .bus
                .call::<_, Answer>("users", "sellers", &Question { ids: &ids }, &meta, TIMEOUT)
                .await;
            let enabled: Result<HashSet<String>, String> = reply
                .map(|a| a.enabled.into_iter().collect())
                .map_err(|e: CallError| e.to_string());
            for (id, tx) in batch {
                let verdict = match &enabled {
                    Ok(set) if set.contains(&id) => Verdict::MaySell,
                    Ok(_) => Verdict::MayNot,
                    Err(e) => Verdict::Unavailable(e.clone()),
                };
                let _ = tx.send(verdict);
            }
        }
    }
}
