//! May this seller list? First the local copy of sellers that the listings service keeps from
//! user events (consumer `listings-sellers`, table `known_sellers` in `listings.redb`, as
//! DESIGN.md's Stores table has it); then, when the copy does not know the seller or holds them
//! disabled, the users service (`souk.rpc.users.sellers`), which owns that truth.
//!
//! - Known enabled: may list, no question asked. This is what makes a create one rpc hop
//!   (gateway → listings) instead of two.
//! - Known deleted: may not (final; ids are never reused).
//! - Unknown (created a moment ago, before its `user.created` reached the copy) or disabled
//!   (perhaps enabled again a moment ago): asked, so a brand-new seller is never refused.
//!
//! The race this opens, on purpose: the copy is behind the users service by its outbox relay,
//! JetStream and this consumer, typically a few milliseconds (more while the bus is slow or
//! down). A create for a seller disabled within that window is accepted, though the disable was
//! already acknowledged. API.md's "disabled seller → 422" then holds once the event has reached
//! the copy, not at the instant the disable answered. Why that is acceptable: a disable does not
//! touch the seller's existing listings, so such a listing is like one created a moment before
//! the disable. A deletion leaves no such listing live: the create's own transaction refuses a
//! seller whose deletion has reached this store (`store::seller_deleted`), and the deletion's
//! reaction archives any create that committed before it. As for the reference users/listings system:
//! its users have no disabled state at all (see the `/public` shapes in API.md), and its gateway
//! answers an unknown user with 404 at create time (NOTES.md), i.e. it checks existence when
//! asked; its source was not at hand to say more. The strict instant for disables was Souk's own
//! promise, kept at the cost of a second round trip per create (2,100–3,100 req/s, issue 4).
//!
//! The questions: each create joins the queue; up to [`ASKING`] questions are in flight at a
//! time, and each carries every id queued before it was sent, so every answer comes from a read
//! the users service made after the create arrived.

use super::store::{self, Known};
use crate::bus::consumer::{Delivery, Handler, HandlerError};
use crate::bus::rpc::CallError;
use crate::bus::{Bus, Meta, Names};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

/// Ids per question at most (the rest wait for the next one).
const MAX_IDS: usize = 512;
/// Questions in flight at once.
const ASKING: usize = 2;
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
    /// Tasks asking (at most [`ASKING`]); each sends its next question when one returns.
    asking: usize,
}

pub struct Sellers {
    bus: Bus,
    db: Store,
    queue: Mutex<Queue>,
}

impl Sellers {
    pub fn new(bus: Bus, db: Store) -> Arc<Sellers> {
        Arc::new(Sellers {
            bus,
            db,
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Whether `seller` may list: from the local copy when it knows, else asked.
    pub async fn check(self: &Arc<Self>, seller: &str, meta: &Meta) -> Verdict {
        let id = seller.to_string();
        match self.db.read(move |t| store::known_seller(t, &id)).await {
            Ok(Some(Known::Enabled)) => Verdict::MaySell,
            Ok(Some(Known::Deleted)) => Verdict::MayNot,
            Ok(Some(Known::Disabled) | None) => self.ask(seller, meta).await,
            Err(e) => {
                tracing::warn!("reading the known sellers, asking the users service: {e}");
                self.ask(seller, meta).await
            }
        }
    }

    /// Asks the users service whether `seller` may list now. `meta` traces the question when
    /// this create starts it.
    pub async fn ask(self: &Arc<Self>, seller: &str, meta: &Meta) -> Verdict {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.waiting.push((seller.to_string(), tx));
            let start = q.asking < ASKING;
            q.asking += usize::from(start);
            start
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
                    q.asking -= 1;
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

/// Keeps the local copy of sellers from user events (consumer `listings-sellers`): one store
/// write per batch; an event older than what the copy holds changes nothing.
pub struct SellerCopy {
    pub db: Store,
}

impl SellerCopy {
    /// The user events the copy follows.
    pub fn subjects(names: &Names) -> Vec<String> {
        [
            "user.created",
            "user.updated",
            "user.enabled",
            "user.disabled",
            "user.deleted",
        ]
        .iter()
        .map(|kind| names.event(kind))
        .collect()
    }
}

/// What a user event says about the seller, if anything.
fn heard(d: &Delivery) -> Option<Known> {
    let e = &d.envelope;
    let enabled = || match e.data.get("enabled").and_then(|v| v.as_bool()) {
        Some(true) => Some(Known::Enabled),
        Some(false) => Some(Known::Disabled),
        None => None,
    };
    match e.kind.as_str() {
        "user.created" | "user.updated" | "user.enabled" | "user.disabled" => enabled(),
        "user.deleted" => Some(Known::Deleted),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Handler for SellerCopy {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        let heard: Vec<(String, u64, Known)> = batch
            .iter()
            .filter_map(|d| {
                heard(d).map(|k| (d.envelope.aggregate_id.clone(), d.envelope.version, k))
            })
            .collect();
        let outcome = if heard.is_empty() {
            Ok(())
        } else {
            self.db
                .write(move |t| {
                    for (user, version, state) in &heard {
                        store::hear_of_seller(t, user, *version, *state)?;
                    }
                    Ok::<_, crate::store::StoreError>(())
                })
                .await
                .map_err(|e| HandlerError::Retry(e.to_string()))
        };
        vec![outcome; batch.len()]
    }
}
