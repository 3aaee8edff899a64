//! The catalog projector: applies listing and user events to `catalog.sqlite`, a batch per
//! SQLite transaction together with the stream positions it reached.
//!
//! Idempotent and order-tolerant by version: events carry the whole entity, so an event whose
//! version is not newer than the row's is skipped (a redelivery, a replay, or an older event
//! arriving late). Deletions keep a hidden row with their version, so a late older event cannot
//! bring a deleted listing back.

use super::store::{Db, Generation, sqlite_error};
use crate::bus::Envelope;
use crate::bus::consumer::{Delivery, Handler, HandlerError};
use crate::store::StoreError;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::watch;

/// The fields of a `listing.*` event the catalog keeps.
#[derive(Deserialize)]
struct ListingData {
    id: String,
    seller_id: String,
    title: String,
    description: String,
    listing_type: String,
    price: i64,
    currency: String,
    quantity: i64,
    status: String,
    created_at: String,
    updated_at: String,
    version: u64,
}

#[derive(Deserialize)]
struct UserData {
    id: String,
    name: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    updated_at: String,
    version: u64,
}

pub struct Projector {
    pub db: Arc<Db>,
    /// Bumped after every applied batch; `GET /api/catalog/{id}?min_version=` waits on it.
    pub applied: watch::Sender<u64>,
}

#[async_trait::async_trait]
impl Handler for Projector {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        let db = self.db.clone();
        let events: Vec<(Envelope, String, u64)> = batch
            .iter()
            .map(|d| (d.envelope.clone(), stream_of(&d.subject), d.stream_seq))
            .collect();
        let n = events.len();
        // A rebuild swaps generations only while no batch is in flight.
        let _gate = db.gate.read().await;
        let generation = db.current();
        let result = tokio::task::spawn_blocking(move || apply_batch(&generation, &events)).await;
        match result {
            Ok(Ok(outcomes)) => {
                self.applied.send_modify(|v| *v += 1);
                outcomes
            }
            Ok(Err(e)) => vec![Err(HandlerError::Retry(e.to_string())); n],
            Err(e) => vec![Err(HandlerError::Retry(format!("projector task failed: {e}"))); n],
        }
    }
}

/// The stream an event subject belongs to, for the positions table (`listing.*` → listings).
fn stream_of(subject: &str) -> String {
    subject.split('.').nth(2).unwrap_or("unknown").to_string()
}

/// Applies events in one transaction. An event whose data does not fit is permanent (it would
/// fail the same way every time) and is reported without failing the others.
pub fn apply_batch(
    generation: &Generation,
    events: &[(Envelope, String, u64)],
) -> Result<Vec<Result<(), HandlerError>>, StoreError> {
    let path = generation.path().to_path_buf();
    let err = |e| sqlite_error(&path, "applying catalog events", e);
    generation.write(|conn| {
        let tx = conn.transaction().map_err(err)?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut reached: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
        for (event, stream, seq) in events {
            let outcome = match event.aggregate.as_str() {
                "listing" => match event.data_as::<ListingData>() {
                    Ok(l) => apply_listing(&tx, event, &l).map_err(err)?,
                    Err(e) => Err(HandlerError::Permanent(format!("listing event data: {e}"))),
                },
                "user" => match event.data_as::<UserData>() {
                    Ok(u) => apply_user(&tx, event, &u).map_err(err)?,
                    Err(e) => Err(HandlerError::Permanent(format!("user event data: {e}"))),
                },
                _ => Ok(()),
            };
            let best = reached.entry(stream.as_str()).or_insert(0);
            *best = (*best).max(*seq);
            outcomes.push(outcome);
        }
        // One position row per stream per batch, not per event.
        for (stream, seq) in reached {
            tx.prepare_cached(
                "INSERT INTO positions(stream, seq) VALUES (?1, ?2)
                 ON CONFLICT(stream) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .and_then(|mut st| st.execute(params![stream, seq as i64]))
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(outcomes)
    })
}

fn apply_listing(
    tx: &Transaction,
    event: &Envelope,
    l: &ListingData,
) -> rusqlite::Result<Result<(), HandlerError>> {
    let current: Option<i64> = tx
        .prepare_cached("SELECT version FROM items WHERE id = ?1")?
        .query_row([&l.id], |r| r.get(0))
        .optional()?;
    if current.is_some_and(|v| v as u64 >= l.version) {
        return Ok(Ok(()));
    }
    let seller: Option<(String, bool)> = tx
        .prepare_cached("SELECT name, deleted FROM sellers WHERE id = ?1")?
        .query_row([&l.seller_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seller_name, seller_deleted) = seller.unwrap_or_default();
    let hidden = event.kind == "listing.deleted" || seller_deleted;
    tx.prepare_cached(
        "INSERT INTO items(id, seller_id, seller_name, title, description, listing_type, price,
                           currency, quantity, status, created_at, updated_at, version, hidden)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(id) DO UPDATE SET
            seller_id = excluded.seller_id, seller_name = excluded.seller_name,
            title = excluded.title, description = excluded.description,
            listing_type = excluded.listing_type, price = excluded.price,
            currency = excluded.currency, quantity = excluded.quantity, status = excluded.status,
            created_at = excluded.created_at, updated_at = excluded.updated_at,
            version = excluded.version, hidden = excluded.hidden",
    )?
    .execute(params![
        l.id,
        l.seller_id,
        seller_name,
        l.title,
        l.description,
        l.listing_type,
        l.price,
        l.currency,
        l.quantity,
        l.status,
        l.created_at,
        l.updated_at,
        l.version as i64,
        hidden
    ])?;
    Ok(Ok(()))
}

fn apply_user(
    tx: &Transaction,
    event: &Envelope,
    u: &UserData,
) -> rusqlite::Result<Result<(), HandlerError>> {
    let current: Option<i64> = tx
        .prepare_cached("SELECT version FROM sellers WHERE id = ?1")?
        .query_row([&u.id], |r| r.get(0))
        .optional()?;
    if current.is_some_and(|v| v as u64 >= u.version) {
        return Ok(Ok(()));
    }
    let deleted = event.kind == "user.deleted";
    tx.prepare_cached(
        "INSERT INTO sellers(id, name, version, deleted, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, version = excluded.version,
            deleted = excluded.deleted, created_at = excluded.created_at,
            updated_at = excluded.updated_at",
    )?
    .execute(params![
        u.id,
        u.name,
        u.version as i64,
        deleted,
        u.created_at,
        u.updated_at
    ])?;
    // A rename shows in every item of the seller; a deleted seller's items leave the catalog.
    tx.prepare_cached(
        "UPDATE items SET seller_name = ?2, hidden = CASE WHEN ?3 THEN 1 ELSE hidden END
         WHERE seller_id = ?1",
    )?
    .execute(params![u.id, u.name, deleted])?;
    Ok(Ok(()))
}
