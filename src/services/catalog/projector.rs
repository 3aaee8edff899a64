//! The catalog projector: applies listing and user events to `catalog.sqlite`, a batch per
//! SQLite transaction together with the stream positions it reached.
//!
//! Idempotent and order-tolerant by version: events carry the whole entity, so an event whose
//! version is not newer than the row's is skipped (a redelivery, a replay, or an older event
//! arriving late). Deletions keep a hidden row with their version, so a late older event cannot
//! bring a deleted listing back.

use super::index::{self, Change};
use super::store::{Db, Generation, sqlite_error};
use crate::bus::Envelope;
use crate::bus::consumer::{Delivery, Handler, HandlerError};
use crate::bus::envelope::EnvelopeError;
use crate::store::StoreError;
use rusqlite::{OptionalExtension, ToSql, Transaction, params, params_from_iter};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
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

/// An event as the catalog applies it: its type and its data, typed.
pub struct CatalogEvent {
    kind: String,
    data: Data,
}

enum Data {
    Listing(ListingData),
    User(UserData),
    /// Data that does not fit its type: permanent, it would fail the same way every time.
    Unfit(String),
    /// An aggregate the catalog does not keep.
    Other,
}

impl CatalogEvent {
    /// Straight from an event's bytes (the rebuild): `data` is decoded once, into its type,
    /// instead of into a `serde_json::Value` first (that was ~10 % of a rebuild's CPU).
    pub fn decode(bytes: &[u8]) -> Result<CatalogEvent, EnvelopeError> {
        let e = Envelope::<&RawValue>::decode_as(bytes)?;
        let raw = e.data.get();
        let data = match Data::of(&e.aggregate, &mut serde_json::Deserializer::from_str(raw)) {
            // Rare (a poison event): read again through a `Value` so the reason is worded as
            // the live projector words it, without a position inside `data` alone.
            Data::Unfit(_) => {
                let value = serde_json::from_str(raw).unwrap_or(serde_json::Value::Null);
                Data::of(&e.aggregate, &value)
            }
            data => data,
        };
        Ok(CatalogEvent { kind: e.kind, data })
    }
}

impl From<&Envelope> for CatalogEvent {
    fn from(e: &Envelope) -> CatalogEvent {
        CatalogEvent {
            kind: e.kind.clone(),
            data: Data::of(&e.aggregate, &e.data),
        }
    }
}

impl Data {
    fn of<'de, D: serde::Deserializer<'de>>(aggregate: &str, data: D) -> Data {
        let unfit = |e: D::Error| Data::Unfit(format!("{aggregate} event data: {e}"));
        match aggregate {
            "listing" => ListingData::deserialize(data).map_or_else(unfit, Data::Listing),
            "user" => UserData::deserialize(data).map_or_else(unfit, Data::User),
            _ => Data::Other,
        }
    }
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
        let events: Vec<(CatalogEvent, String, u64)> = batch
            .iter()
            .map(|d| ((&d.envelope).into(), stream_of(&d.subject), d.stream_seq))
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
///
/// The full-text index is kept here rather than by row triggers: FTS5 writes its pending terms
/// out as a new segment at every statement savepoint, and a trigger-firing upsert opens one per
/// row, so per-row triggers cost a segment (and later merges) per event. Instead the rows whose
/// text changed are collected and indexed by two statements at the end of the batch. A
/// generation being bulk-filled by a rebuild ([`Generation::is_bulk`]) skips this: its index
/// is built in one pass when the fill is done.
pub fn apply_batch(
    generation: &Generation,
    events: &[(CatalogEvent, String, u64)],
) -> Result<Vec<Result<(), HandlerError>>, StoreError> {
    let path = generation.path().to_path_buf();
    let err = |e| sqlite_error(&path, "applying catalog events", e);
    let index_text = !generation.is_bulk();
    generation.write(|conn| {
        let tx = conn.transaction().map_err(err)?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut text = TextChanges::default();
        let mut counts = Counts::default();
        // For the in-memory search index, once committed (not kept while bulk-filling).
        let mut changes = index_text.then(Vec::new);
        // The highest sequence applied per stream, written once at the end.
        let mut reached: Vec<(&str, u64)> = Vec::new();
        for (event, stream, seq) in events {
            let outcome = match &event.data {
                Data::Listing(l) => {
                    apply_listing(&tx, &event.kind, l, &mut text, &mut counts, &mut changes)
                        .map_err(err)?
                }
                Data::User(u) => {
                    apply_user(&tx, &event.kind, u, &mut counts, &mut changes).map_err(err)?
                }
                Data::Unfit(e) => Err(HandlerError::Permanent(e.clone())),
                Data::Other => Ok(()),
            };
            match reached.iter_mut().find(|(s, _)| *s == stream.as_str()) {
                Some(r) => r.1 = r.1.max(*seq),
                None => reached.push((stream, *seq)),
            }
            outcomes.push(outcome);
        }
        // A generation being bulk-filled gets both in one pass at the end.
        if index_text {
            text.apply(&tx).map_err(err)?;
            counts.apply(&tx).map_err(err)?;
        }
        let mut positions = tx
            .prepare_cached(
                "INSERT INTO positions(stream, seq) VALUES (?1, ?2)
                 ON CONFLICT(stream) DO UPDATE SET seq = max(seq, excluded.seq)",
            )
            .map_err(err)?;
        for (stream, seq) in reached {
            positions
                .execute(params![stream, seq as i64])
                .map_err(err)?;
        }
        drop(positions);
        tx.commit().map_err(err)?;
        // Still holding the writer: batches reach the index in commit order.
        if let Some(changes) = changes {
            generation.index_changes(changes);
        }
        Ok(outcomes)
    })
}

/// The full-text work of one batch: the indexed text of rows that existed before the batch and
/// changed (to remove, exactly as it was indexed), and every row whose text is new (to add).
#[derive(Default)]
struct TextChanges {
    removed: Vec<(i64, String, String)>,
    added: Vec<i64>,
    /// Rows already in `added`: their indexed text is still the one from before the batch.
    touched: HashSet<i64>,
}

impl TextChanges {
    /// Row `rowid` now has new text; `before` is its text when it existed before.
    fn changed(&mut self, rowid: i64, before: Option<(String, String)>) {
        if !self.touched.insert(rowid) {
            return;
        }
        if let Some((title, description)) = before {
            self.removed.push((rowid, title, description));
        }
        self.added.push(rowid);
    }

    fn apply(self, tx: &Transaction) -> rusqlite::Result<()> {
        let mut remove = tx.prepare_cached(
            "INSERT INTO items_fts(items_fts, rowid, title, description)
             VALUES ('delete', ?1, ?2, ?3)",
        )?;
        for (rowid, title, description) in &self.removed {
            remove.execute(params![rowid, title, description])?;
        }
        if !self.added.is_empty() {
            let ids = serde_json::to_string(&self.added).expect("integers serialise");
            tx.prepare_cached(
                "INSERT INTO items_fts(rowid, title, description)
                 SELECT rowid, title, description FROM items
                 WHERE rowid IN (SELECT value FROM json_each(?1))",
            )?
            .execute([ids])?;
        }
        Ok(())
    }
}

/// Changes to `item_counts` in one batch: visible items per (status, listing_type).
#[derive(Default)]
struct Counts(HashMap<(String, String), i64>);

impl Counts {
    fn add(&mut self, status: &str, listing_type: &str, n: i64) {
        *self
            .0
            .entry((status.to_string(), listing_type.to_string()))
            .or_default() += n;
    }

    fn apply(self, tx: &Transaction) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO item_counts(status, listing_type, n) VALUES (?1, ?2, ?3)
             ON CONFLICT(status, listing_type) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((status, listing_type), n) in self.0 {
            if n != 0 {
                stmt.execute(params![status, listing_type, n])?;
            }
        }
        Ok(())
    }
}

/// A catalog row as it was before an event.
struct Before {
    rowid: i64,
    version: i64,
    title: String,
    description: String,
    status: String,
    listing_type: String,
    hidden: bool,
}

/// The upsert of an item by id. `?1`–`?12` are a listing's fields ([`listing_fields`]); the
/// seller's name and `hidden` are the SQL given, and `guard` ends the update clause.
macro_rules! upsert_item {
    ($seller_name:literal, $hidden:literal, $guard:literal) => {
        concat!(
            "INSERT INTO items(id, seller_id, seller_name, title, description, listing_type,
                               price, currency, quantity, status, created_at, updated_at,
                               version, hidden)
             VALUES (?1, ?2, ",
            $seller_name,
            ", ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ",
            $hidden,
            ")
             ON CONFLICT(id) DO UPDATE SET
                seller_id = excluded.seller_id, seller_name = excluded.seller_name,
                title = excluded.title, description = excluded.description,
                listing_type = excluded.listing_type, price = excluded.price,
                currency = excluded.currency, quantity = excluded.quantity,
                status = excluded.status, created_at = excluded.created_at,
                updated_at = excluded.updated_at, version = excluded.version,
                hidden = excluded.hidden",
            $guard
        )
    };
}

/// `?1`–`?12` of [`upsert_item`] (`version` is `l.version`, as SQLite stores it).
fn listing_fields<'a>(l: &'a ListingData, version: &'a i64) -> [&'a dyn ToSql; 12] {
    [
        &l.id,
        &l.seller_id,
        &l.title,
        &l.description,
        &l.listing_type,
        &l.price,
        &l.currency,
        &l.quantity,
        &l.status,
        &l.created_at,
        &l.updated_at,
        version,
    ]
}

fn apply_listing(
    tx: &Transaction,
    kind: &str,
    l: &ListingData,
    text: &mut TextChanges,
    counts: &mut Counts,
    changes: &mut Option<Vec<Change>>,
) -> rusqlite::Result<Result<(), HandlerError>> {
    let Some(changes) = changes else {
        bulk_listing(tx, kind, l)?;
        return Ok(Ok(()));
    };
    let current: Option<Before> = tx
        .prepare_cached(
            "SELECT rowid, version, title, description, status, listing_type, hidden
             FROM items WHERE id = ?1",
        )?
        .query_row([&l.id], |r| {
            Ok(Before {
                rowid: r.get(0)?,
                version: r.get(1)?,
                title: r.get(2)?,
                description: r.get(3)?,
                status: r.get(4)?,
                listing_type: r.get(5)?,
                hidden: r.get(6)?,
            })
        })
        .optional()?;
    if current
        .as_ref()
        .is_some_and(|b| b.version as u64 >= l.version)
    {
        return Ok(Ok(()));
    }
    let seller: Option<(String, bool)> = tx
        .prepare_cached("SELECT name, deleted FROM sellers WHERE id = ?1")?
        .query_row([&l.seller_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seller_name, seller_deleted) = seller.unwrap_or_default();
    let hidden = kind == "listing.deleted" || seller_deleted;
    tx.prepare_cached(upsert_item!("?14", "?13", ""))?
        .execute(params_from_iter(
            listing_fields(l, &(l.version as i64))
                .into_iter()
                .chain([&hidden as &dyn ToSql, &seller_name]),
        ))?;
    if !hidden {
        counts.add(&l.status, &l.listing_type, 1);
    }
    // What the search index needs.
    let new_text = || Some((l.title.clone(), l.description.clone()));
    let (rowid, old_text, new_text) = match current {
        None => {
            let rowid = tx.last_insert_rowid();
            text.changed(rowid, None);
            (rowid, None, new_text())
        }
        Some(b) => {
            if !b.hidden {
                counts.add(&b.status, &b.listing_type, -1);
            }
            if b.title != l.title || b.description != l.description {
                let old = (b.title, b.description);
                let kept = Some(old.clone());
                text.changed(b.rowid, Some(old));
                (b.rowid, kept, new_text())
            } else {
                (b.rowid, None, None)
            }
        }
    };
    changes.push(Change::Item(index::Item {
        rowid,
        id: l.id.clone(),
        seller_id: l.seller_id.clone(),
        listing_type: l.listing_type.clone(),
        status: l.status.clone(),
        price: l.price,
        hidden,
        old_text,
        new_text,
    }));
    Ok(Ok(()))
}

/// [`apply_listing`] into a generation being bulk-filled, which keeps no counts and no text
/// index until it is finished: one statement, with the version check and the seller's name in
/// it, instead of reading the row and the seller first (a rebuild applies a million of these).
/// The seller's fields are scalar subqueries: as `INSERT … SELECT … LEFT JOIN sellers` the same
/// upsert ran 4.5 times slower than the two reads and the insert it replaces.
fn bulk_listing(tx: &Transaction, kind: &str, l: &ListingData) -> rusqlite::Result<()> {
    let deleted = kind == "listing.deleted";
    tx.prepare_cached(upsert_item!(
        "coalesce((SELECT name FROM sellers WHERE id = ?2), '')",
        "?13 OR coalesce((SELECT deleted FROM sellers WHERE id = ?2), 0)",
        " WHERE excluded.version > items.version"
    ))?
    .execute(params_from_iter(
        listing_fields(l, &(l.version as i64))
            .into_iter()
            .chain([&deleted as &dyn ToSql]),
    ))?;
    Ok(())
}

fn apply_user(
    tx: &Transaction,
    kind: &str,
    u: &UserData,
    counts: &mut Counts,
    changes: &mut Option<Vec<Change>>,
) -> rusqlite::Result<Result<(), HandlerError>> {
    let current: Option<i64> = tx
        .prepare_cached("SELECT version FROM sellers WHERE id = ?1")?
        .query_row([&u.id], |r| r.get(0))
        .optional()?;
    if current.is_some_and(|v| v as u64 >= u.version) {
        return Ok(Ok(()));
    }
    let deleted = kind == "user.deleted";
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
    if deleted {
        if let Some(changes) = changes {
            changes.push(Change::SellerDeleted(u.id.clone()));
        }
        // The seller's visible items are about to be hidden.
        let mut stmt = tx.prepare_cached(
            "SELECT status, listing_type, count(*) FROM items
             WHERE seller_id = ?1 AND hidden = 0 GROUP BY status, listing_type",
        )?;
        let rows = stmt.query_map([&u.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (status, listing_type, n) = row?;
            counts.add(&status, &listing_type, -n);
        }
    }
    // A rename shows in every item of the seller; a deleted seller's items leave the catalog.
    tx.prepare_cached(
        "UPDATE items SET seller_name = ?2, hidden = CASE WHEN ?3 THEN 1 ELSE hidden END
         WHERE seller_id = ?1",
    )?
    .execute(params![u.id, u.name, deleted])?;
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Meta;
    use serde_json::json;

    type Event = (Envelope, String, u64);

    fn typed(events: &[Event]) -> Vec<(CatalogEvent, String, u64)> {
        events
            .iter()
            .map(|(e, stream, seq)| (e.into(), stream.clone(), *seq))
            .collect()
    }

    fn user(id: &str, version: u64, kind: &str, name: &str) -> Event {
        let data = json!({"id": id, "name": name, "version": version});
        let e = Envelope::new(kind, id, version, data, &Meta::default());
        (e, "user".into(), version)
    }

    fn listing(
        id: &str,
        seller: &str,
        version: u64,
        kind: &str,
        title: &str,
        status: &str,
    ) -> Event {
        let data = json!({
            "id": id, "seller_id": seller, "title": title, "description": format!("about {title}"),
            "listing_type": "sale", "price": 100 * version as i64, "currency": "EUR",
            "quantity": 1, "status": status, "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T00:00:00.000Z", "version": version,
        });
        let e = Envelope::new(kind, id, version, data, &Meta::default());
        (e, "listing".into(), version)
    }

    /// The full-text index matches the rows exactly, and `item_counts` matches a recount.
    fn consistent(g: &Generation) {
        g.write(|c| {
            c.execute(
                "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("the full-text index matches the items");
            let counts = |sql: &str| -> Vec<(String, String, i64)> {
                let mut stmt = c.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            };
            assert_eq!(
                counts(
                    "SELECT status, listing_type, n FROM item_counts WHERE n != 0 ORDER BY 1, 2"
                ),
                counts(
                    "SELECT status, listing_type, count(*) FROM items WHERE hidden = 0
                     GROUP BY 1, 2 ORDER BY 1, 2"
                )
            );
            Ok(())
        })
        .unwrap();
    }

    fn matches(g: &Generation, word: &str) -> Vec<String> {
        g.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT i.id FROM items_fts f JOIN items i ON i.rowid = f.rowid
                     WHERE items_fts MATCH ?1 ORDER BY i.id",
                )
                .unwrap();
            Ok(stmt
                .query_map([word], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect())
        })
        .unwrap()
    }

    /// Every item's columns that events set, as text, by id.
    fn rows(g: &Generation) -> Vec<Vec<String>> {
        g.read(|c| {
            let mut stmt = c
                .prepare(
                    "SELECT id, seller_id, seller_name, title, status, version, hidden,
                            description, listing_type, price, currency, quantity, created_at,
                            updated_at
                     FROM items ORDER BY id",
                )
                .unwrap();
            Ok(stmt
                .query_map([], |r| {
                    (0..14)
                        .map(|i| {
                            Ok(r.get_ref(i)?
                                .as_str()
                                .map(String::from)
                                .unwrap_or_else(|_| {
                                    r.get::<_, i64>(i)
                                        .map(|v| v.to_string())
                                        .unwrap_or_default()
                                }))
                        })
                        .collect::<rusqlite::Result<Vec<String>>>()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect())
        })
        .unwrap()
    }

    fn apply(g: &Generation, events: &[Event]) {
        let outcomes = apply_batch(g, &typed(events)).unwrap();
        assert!(outcomes.iter().all(Result::is_ok));
    }

    /// Creates, text edits (two of one row in one batch), other edits, stale events, a deleted
    /// listing and a deleted seller: the text index and the counts follow, batch by batch.
    fn exercise(g: &Generation, check_each_batch: bool) {
        let check = |g: &Generation| {
            if check_each_batch {
                consistent(g)
            }
        };
        apply(
            g,
            &[
                user("usr_1", 1, "user.created", "Ada"),
                user("usr_2", 1, "user.created", "Bo"),
                listing("lst_a", "usr_1", 1, "listing.created", "red bike", "active"),
                listing("lst_b", "usr_1", 1, "listing.created", "blue chair", "sold"),
                listing(
                    "lst_c",
                    "usr_2",
                    1,
                    "listing.created",
                    "green lamp",
                    "active",
                ),
                // Before its seller: named once the seller's event arrives.
                listing("lst_f", "usr_3", 1, "listing.created", "glider", "active"),
            ],
        );
        check(g);
        apply(
            g,
            &[
                user("usr_3", 1, "user.created", "Cy"),
                listing(
                    "lst_a",
                    "usr_1",
                    2,
                    "listing.updated",
                    "red bicycle",
                    "active",
                ),
                listing(
                    "lst_a",
                    "usr_1",
                    3,
                    "listing.updated",
                    "Café bicycle",
                    "active",
                ),
                listing(
                    "lst_b",
                    "usr_1",
                    2,
                    "listing.updated",
                    "blue chair",
                    "active",
                ),
                listing(
                    "lst_b",
                    "usr_1",
                    1,
                    "listing.created",
                    "stale chair",
                    "sold",
                ),
                listing(
                    "lst_c",
                    "usr_2",
                    2,
                    "listing.updated",
                    "green lamp",
                    "reserved",
                ),
                listing(
                    "lst_d",
                    "usr_2",
                    1,
                    "listing.created",
                    "lamp shade",
                    "active",
                ),
            ],
        );
        check(g);
        apply(
            g,
            &[
                user("usr_2", 2, "user.deleted", "Bo"),
                listing(
                    "lst_e",
                    "usr_2",
                    1,
                    "listing.created",
                    "late lamp",
                    "active",
                ),
                listing(
                    "lst_b",
                    "usr_1",
                    3,
                    "listing.deleted",
                    "blue chair",
                    "active",
                ),
            ],
        );
        check(g);
    }

    /// The rebuild reads events from their bytes, the live projector from decoded envelopes:
    /// both apply the same, down to which events are refused and why.
    #[test]
    fn events_read_from_their_bytes_apply_as_decoded_envelopes_do() {
        let mut events = vec![
            user("usr_1", 1, "user.created", "Ada"),
            listing(
                "lst_a",
                "usr_1",
                1,
                "listing.created",
                "Café lamp",
                "active",
            ),
            listing(
                "lst_b",
                "usr_1",
                1,
                "listing.created",
                "blue chair",
                "active",
            ),
            listing(
                "lst_b",
                "usr_1",
                2,
                "listing.deleted",
                "blue chair",
                "active",
            ),
            user("usr_1", 2, "user.updated", "Ada L."),
        ];
        // Data that does not fit: a price that is text, a user without a name.
        let mut bad = listing("lst_c", "usr_1", 1, "listing.created", "kite", "active");
        bad.0.data["price"] = serde_json::json!("cheap");
        events.push(bad);
        let mut nameless = user("usr_2", 1, "user.created", "x");
        nameless.0.data.as_object_mut().unwrap().remove("name");
        events.push(nameless);
        // Not the catalog's: applied as nothing, but still an outcome.
        let other = Envelope::new("order.created", "ord_1", 1, json!({}), &Meta::default());
        events.push((other, "order".into(), 1));

        let from_bytes: Vec<(CatalogEvent, String, u64)> = events
            .iter()
            .map(|(e, stream, seq)| {
                let read = CatalogEvent::decode(&e.to_json()).expect("a well-formed envelope");
                (read, stream.clone(), *seq)
            })
            .collect();
        let rows = |events: &[(CatalogEvent, String, u64)]| {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(dir.path()).unwrap();
            let g = db.current();
            let outcomes: Vec<String> = apply_batch(&g, events)
                .unwrap()
                .iter()
                .map(|o| format!("{o:?}"))
                .collect();
            let rows: Vec<(String, String, i64, i64)> = g
                .read(|c| {
                    let mut stmt = c
                        .prepare("SELECT id, seller_name, version, hidden FROM items ORDER BY id")
                        .unwrap();
                    Ok(stmt
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect())
                })
                .unwrap();
            (outcomes, rows)
        };
        let (outcomes, items) = rows(&from_bytes);
        assert_eq!((outcomes.clone(), items.clone()), rows(&typed(&events)));
        assert_eq!(
            items,
            [
                ("lst_a".to_string(), "Ada L.".to_string(), 1, 0),
                ("lst_b".to_string(), "Ada L.".to_string(), 2, 1),
            ]
        );
        assert!(outcomes[5].contains("Permanent") && outcomes[5].contains("listing event data"));
        assert!(outcomes[6].contains("Permanent") && outcomes[6].contains("user event data"));
        assert_eq!(outcomes[7], "Ok(())");

        // Bytes that are no envelope are refused as `Envelope::decode` refuses them.
        let mut unversioned = events[1].0.clone();
        unversioned.version = 0;
        for bad in [
            &b""[..],
            b"{",
            b"null",
            b"{\"id\":1}",
            &[0xff, 0xfe],
            &unversioned.to_json(),
        ] {
            assert_eq!(
                CatalogEvent::decode(bad).err(),
                Envelope::decode(bad).err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn text_index_and_counts_follow_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let g = db.current();
        exercise(&g, true);
        assert_eq!(matches(&g, "cafe"), ["lst_a"]);
        assert!(matches(&g, "red").is_empty());
        assert!(matches(&g, "stale").is_empty());
        assert_eq!(matches(&g, "lamp"), ["lst_c", "lst_d", "lst_e"]);
    }

    #[test]
    fn a_bulk_fill_ends_with_the_same_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let next = db.create_next_bulk().unwrap();
        assert!(next.is_bulk());
        exercise(&next, false);
        next.finish_bulk().unwrap();
        assert!(!next.is_bulk());
        consistent(&next);
        // The same rows as the live projector's, which applies event by event.
        let live_dir = tempfile::tempdir().unwrap();
        let live = Db::open(live_dir.path()).unwrap();
        exercise(&live.current(), false);
        assert_eq!(rows(&next), rows(&live.current()));
        let f = ["lst_f", "usr_3", "Cy", "glider", "active", "1", "0"];
        assert!(rows(&next).iter().any(|r| r[..7] == f), "{:?}", rows(&next));
        // The full-text index's larger buffer was for the fill only.
        let hashsize: Option<i64> = next
            .read(|c| {
                Ok(c.query_row(
                    "SELECT v FROM items_fts_config WHERE k = 'hashsize'",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .unwrap())
            })
            .unwrap();
        assert_eq!(hashsize, Some(1024 * 1024));
        assert_eq!(matches(&next, "cafe"), ["lst_a"]);
        // After the fill, events are applied as on a live generation.
        apply(
            &next,
            &[listing(
                "lst_a",
                "usr_1",
                4,
                "listing.updated",
                "red kite",
                "sold",
            )],
        );
        consistent(&next);
        assert_eq!(matches(&next, "kite"), ["lst_a"]);
    }
}
