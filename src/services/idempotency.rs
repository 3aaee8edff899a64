//! `Idempotency-Key` for creates (API.md, Conventions): a repeat with the same key and body gets
//! the first response and emits no second event; the same key with another body is refused.
//!
//! A service keeps its records in its own store, in the create's transaction. Each record is
//! also listed by the time it was stored, so [`sweep`] removes the ones older than
//! `idempotency_retention` oldest first, without reading the others. A key is therefore
//! remembered for at least the retention (and at most one sweep period longer); after that a
//! repeat is a new request.

use crate::bus::Meta;
use crate::bus::rpc::RpcError;
use crate::store::{Store, StoreError};
use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Record key → [`IdempotentReply`].
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// (stored at, unix ms; record key) → (), oldest first.
const BY_TIME: TableDefinition<(u64, &str), ()> = TableDefinition::new("idempotency_by_time");

/// Records removed per transaction, so a sweep never holds the store's writer for long.
const SWEEP_BATCH: usize = 1_000;

/// The fingerprint of a create request, to tell a replay from a different request under the
/// same `Idempotency-Key`.
pub fn fingerprint<T: Serialize>(body: &T) -> String {
    let json = serde_json::to_vec(body).expect("requests serialise");
    Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a create stored under its idempotency key: its reply, or the rule it broke.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdempotentReply {
    pub fingerprint: String,
    pub reply: serde_json::Value,
    /// A create refused by a rule that depends on the moment (`email_taken`, `unknown_seller`):
    /// a repeat gets the same refusal, even once the rule would let it through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RpcError>,
}

/// The store key of a create's `Idempotency-Key`: per operation and per caller, so one caller's
/// key never answers another's request (nor replays another's response).
pub fn idempotency_key(op: &str, meta: &Meta, key: &str) -> String {
    format!("{op}:{}:{key}", meta.actor.as_deref().unwrap_or("-"))
}

/// Creates the idempotency tables of a service's store. Records kept by a Souk from before the
/// time index are listed in it as stored now, so they too leave after the retention.
pub fn init(t: &WriteTransaction) -> Result<(), StoreError> {
    let records = t.open_table(RECORDS)?;
    let mut by_time = t.open_table(BY_TIME)?;
    if by_time.is_empty()? && !records.is_empty()? {
        let now = now_ms();
        for row in records.iter()? {
            let (key, _) = row?;
            by_time.insert((now, key.value()), ())?;
        }
    }
    Ok(())
}

/// What an earlier create under the same idempotency key did.
#[derive(Debug)]
pub enum Replay {
    /// Nothing: this is the first.
    New,
    /// The same request was made: its reply.
    Reply(serde_json::Value),
    /// The same request was refused: the same refusal.
    Refused(RpcError),
    /// The key was used for a different request.
    KeyReused,
}

/// Looks up a create under its idempotency key and the request's fingerprint `print`.
pub fn replay(t: &WriteTransaction, key: &str, print: &str) -> Result<Replay, StoreError> {
    lookup(&t.open_table(RECORDS)?, key, print)
}

/// [`replay`] in a read transaction: answers a repeat without waiting for a durable commit.
pub fn replay_read(t: &ReadTransaction, key: &str, print: &str) -> Result<Replay, StoreError> {
    match t.open_table(RECORDS) {
        Ok(table) => lookup(&table, key, print),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(Replay::New),
        Err(e) => Err(e.into()),
    }
}

fn lookup(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
    print: &str,
) -> Result<Replay, StoreError> {
    Ok(match super::get_value::<IdempotentReply>(table, key)? {
        None => Replay::New,
        Some(prev) if prev.fingerprint != print => Replay::KeyReused,
        Some(IdempotentReply {
            refused: Some(e), ..
        }) => Replay::Refused(e),
        Some(prev) => Replay::Reply(prev.reply),
    })
}

/// The refusals a create remembers under its idempotency key: rules that depend on the moment.
/// A malformed request is refused the same way every time anyway, and a failure (503, 500) is
/// not an answer, so a retry may still succeed.
const REMEMBERED_REFUSALS: &[&str] = &["email_taken", "unknown_seller"];

/// After a create under `idempotency` (key, fingerprint) was refused with `error`, stores that
/// refusal for its repeats when it is one to remember. Best effort: a store failure is logged,
/// and the client still gets the refusal it was going to get.
pub async fn remember_refused(db: &Store, idempotency: Option<(String, String)>, error: &RpcError) {
    let Some((key, print)) = idempotency else {
        return;
    };
    if !REMEMBERED_REFUSALS.contains(&error.code.as_str()) {
        return;
    }
    // A repeat that was answered from the record (or a race that stored one) needs no durable
    // write: a read says so.
    let k = key.clone();
    let stored = db
        .read(move |t| match t.open_table(RECORDS) {
            Ok(table) => Ok(table.get(k.as_str())?.is_some()),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(e.into()),
        })
        .await;
    if matches!(stored, Ok(true)) {
        return;
    }
    let e = error.clone();
    if let Err(err) = db
        .write(move |t| remember_refusal(t, &key, print.clone(), &e))
        .await
    {
        tracing::warn!("could not remember a refused create's Idempotency-Key: {err}");
    }
}

/// Remembers that a create was refused by `error`, in a transaction of its own (the create's was
/// rolled back), unless something was stored under the key meanwhile.
pub fn remember_refusal(
    t: &WriteTransaction,
    key: &str,
    print: String,
    error: &RpcError,
) -> Result<(), StoreError> {
    if t.open_table(RECORDS)?.get(key)?.is_some() {
        return Ok(());
    }
    store(
        t,
        key,
        &IdempotentReply {
            fingerprint: print,
            reply: serde_json::Value::Null,
            refused: Some(error.clone()),
        },
    )
}

/// Remembers a create's reply under its idempotency key (same transaction as the create).
pub fn remember(
    t: &WriteTransaction,
    key: &str,
    print: String,
    reply: &impl Serialize,
) -> Result<(), StoreError> {
    store(
        t,
        key,
        &IdempotentReply {
            fingerprint: print,
            reply: serde_json::to_value(reply).expect("replies serialise"),
            refused: None,
        },
    )
}

fn store(t: &WriteTransaction, key: &str, record: &IdempotentReply) -> Result<(), StoreError> {
    t.open_table(RECORDS)?
        .insert(key, crate::store::codec::encode(record).as_slice())?;
    t.open_table(BY_TIME)?.insert((now_ms(), key), ())?;
    Ok(())
}

fn now_ms() -> u64 {
    crate::clock::unix_millis(SystemTime::now())
}

/// Removes up to `max` records stored before `cutoff_ms`, oldest first; answers how many.
pub fn sweep(t: &WriteTransaction, cutoff_ms: u64, max: usize) -> Result<usize, StoreError> {
    let mut records = t.open_table(RECORDS)?;
    let mut by_time = t.open_table(BY_TIME)?;
    let mut doomed = Vec::new();
    for row in by_time.range::<(u64, &str)>(..(cutoff_ms, ""))? {
        if doomed.len() >= max {
            break;
        }
        let (k, _) = row?;
        let (at, key) = k.value();
        doomed.push((at, key.to_string()));
    }
    for (at, key) in &doomed {
        by_time.remove((*at, key.as_str()))?;
        records.remove(key.as_str())?;
    }
    Ok(doomed.len())
}

/// How often the sweep runs for a given retention: often enough that a key outlives it by at
/// most a quarter of it, at most every ten minutes.
pub fn sweep_every(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_millis(250), Duration::from_secs(600))
}

/// Sweeps `service`'s records older than `retention` every [`sweep_every`] until cancelled.
pub async fn run_sweeper(
    db: Store,
    service: String,
    retention: Duration,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let every = sweep_every(retention);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        let cutoff = now_ms().saturating_sub(retention.as_millis() as u64);
        let mut removed = 0;
        loop {
            let n = db
                .write(move |t| sweep(t, cutoff, SWEEP_BATCH))
                .await
                .map_err(|e| anyhow::anyhow!("removing expired Idempotency-Key records: {e}"))?;
            removed += n;
            if n < SWEEP_BATCH || cancel.is_cancelled() {
                break;
            }
        }
        if removed > 0 {
            tracing::debug!(%service, removed, "expired Idempotency-Key records removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let db = tokio::task::spawn_blocking(move || Store::open(&path))
            .await
            .unwrap()
            .unwrap();
        db.write(init).await.unwrap();
        (dir, db)
    }

    async fn lookup_key(db: &Store, key: &'static str) -> Replay {
        db.read(move |t| replay_read(t, key, "print"))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn sweep_removes_only_records_older_than_the_cutoff_oldest_first() {
        let (_dir, db) = store().await;
        db.write(|t| remember(t, "a", "print".into(), &1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let cutoff = now_ms();
        tokio::time::sleep(Duration::from_millis(5)).await;
        db.write(|t| remember(t, "b", "print".into(), &2))
            .await
            .unwrap();
        assert_eq!(db.write(move |t| sweep(t, cutoff, 10)).await.unwrap(), 1);
        assert!(matches!(lookup_key(&db, "a").await, Replay::New));
        assert!(matches!(lookup_key(&db, "b").await, Replay::Reply(v) if v == 2));
        // Nothing older is left; `b` goes once the cutoff passes it, `max` at a time.
        assert_eq!(db.write(move |t| sweep(t, cutoff, 10)).await.unwrap(), 0);
        let later = now_ms() + 1;
        assert_eq!(db.write(move |t| sweep(t, later, 0)).await.unwrap(), 0);
        assert_eq!(db.write(move |t| sweep(t, later, 10)).await.unwrap(), 1);
        assert!(matches!(lookup_key(&db, "b").await, Replay::New));
    }

    #[tokio::test]
    async fn records_from_before_the_time_index_are_listed_at_start() {
        let (_dir, db) = store().await;
        // A record as an older Souk stored it: no entry in the time index.
        db.write(|t| {
            let record = IdempotentReply {
                fingerprint: "print".into(),
                reply: serde_json::json!(7),
                refused: None,
            };
            t.open_table(RECORDS)?
                .insert("old", crate::store::codec::encode(&record).as_slice())?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let before = now_ms();
        db.write(init).await.unwrap();
        assert!(matches!(lookup_key(&db, "old").await, Replay::Reply(v) if v == 7));
        // Listed as stored at start-up: kept until the retention has passed from then.
        assert_eq!(db.write(move |t| sweep(t, before, 10)).await.unwrap(), 0);
        let later = now_ms() + 1;
        assert_eq!(db.write(move |t| sweep(t, later, 10)).await.unwrap(), 1);
        assert!(matches!(lookup_key(&db, "old").await, Replay::New));
    }

    #[test]
    fn sweeps_run_often_enough_for_the_retention() {
        assert_eq!(
            sweep_every(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            sweep_every(Duration::from_millis(10)),
            Duration::from_millis(250)
        );
        assert_eq!(
            sweep_every(Duration::from_secs(24 * 3600)),
            Duration::from_secs(600)
        );
    }
}
