//! The transactional outbox: a service commits its state and its events in ONE store
//! transaction ([`append`]); the [`Relay`] publishes them to JetStream in order, with
//! `Nats-Msg-Id` = event id (a re-publish inside the duplicate window is dropped by JetStream), and
//! records each event's stream sequence once JetStream acknowledged it.
//!
//! Power loss: JetStream acknowledges before it fsyncs (`sync_interval`), so a published event is
//! kept for `retention` (longer than the sync interval) before it is pruned. At start the relay
//! compares each stream's last sequence with the highest one it was acknowledged, and republishes
//! a lost tail from the outbox, in order.
//!
//! Tables (in the service's own redb file): `outbox` (local seq → record), `outbox_meta`
//! (`next`, `pending` = the first local seq not yet known published, `stream:<NAME>` = highest
//! acknowledged sequence in that stream).

use super::{Bus, Envelope, Names};
use crate::store::{Store, StoreError, codec};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");
const BATCH: usize = 512;
const PRUNE_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    subject: String,
    stream: String,
    event_id: String,
    /// The envelope's JSON, published as is.
    payload: String,
    published: Option<Published>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Published {
    stream_seq: u64,
    at_ms: u64,
}

/// Adds `event` to the outbox inside the caller's transaction. Commit the transaction and the
/// event is as durable as the state change it describes; the relay takes it from there.
pub fn append(txn: &WriteTransaction, names: &Names, event: &Envelope) -> Result<u64, StoreError> {
    let stream = names
        .stream_of_aggregate(&event.aggregate)
        .unwrap_or_else(|| {
            panic!(
                "no stream holds `{}` events (bus::subjects::PRODUCERS)",
                event.aggregate
            )
        });
    let record = Record {
        subject: names.event(&event.kind),
        stream,
        event_id: event.id.clone(),
        payload: String::from_utf8(event.to_json()).expect("JSON is UTF-8"),
        published: None,
    };
    let mut meta = txn.open_table(META)?;
    let seq = meta.get("next")?.map(|v| v.value()).unwrap_or(1);
    meta.insert("next", seq + 1)?;
    txn.open_table(OUTBOX)?
        .insert(seq, codec::encode(&record).as_slice())?;
    Ok(seq)
}

/// Creates the outbox tables so readers never meet a missing table.
pub fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(OUTBOX)?;
    txn.open_table(META)?;
    Ok(())
}

/// Events committed but not yet acknowledged by JetStream.
pub fn backlog(txn: &ReadTransaction) -> Result<u64, StoreError> {
    let meta = txn.open_table(META)?;
    let next = meta.get("next")?.map(|v| v.value()).unwrap_or(1);
    let pending = meta.get("pending")?.map(|v| v.value()).unwrap_or(1);
    Ok(next.saturating_sub(pending))
}

/// Publishes one store's outbox.
pub struct Relay {
    pub store: Store,
    pub bus: Bus,
    /// For logs: the owning service.
    pub service: String,
    /// How long a published event stays in the outbox (longer than JetStream's sync interval).
    pub retention: Duration,
    /// Current backlog, for readiness and the admin overview.
    pub backlog: Arc<AtomicU64>,
}

impl Relay {
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut delay = Duration::from_millis(50);
        while let Err(e) = self.recover_lost_tail().await {
            tracing::warn!(service = %self.service, retry_in = ?delay, "outbox: cannot check the streams yet: {e:#}");
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        let mut commits = self.store.commits();
        let mut last_prune = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            commits.borrow_and_update();
            let pending = self.store.read(|t| pending(t, BATCH)).await?;
            let waiting = self.store.read(backlog).await?;
            self.backlog.store(waiting, Ordering::Relaxed);
            metrics::gauge!("souk_outbox_backlog", "service" => self.service.clone())
                .set(waiting as f64);
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                self.prune().await?;
            }
            if pending.is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = commits.changed() => {}
                    _ = tokio::time::sleep(PRUNE_EVERY) => {}
                }
                continue;
            }
            let (acked, failure) = self.publish(&pending).await;
            if !acked.is_empty() {
                metrics::counter!("souk_outbox_published_total", "service" => self.service.clone())
                    .increment(acked.len() as u64);
                self.store
                    .write(move |t| mark_published(t, &acked))
                    .await
                    .map_err(|e| anyhow::anyhow!("outbox: recording published events: {e}"))?;
            }
            if let Some(e) = failure {
                tracing::warn!(service = %self.service, retry_in = ?delay, "outbox: publishing paused: {e}");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            } else {
                delay = Duration::from_millis(50);
            }
        }
    }

    /// Publishes in order with a window of acknowledgements in flight; stops at the first
    /// failure, returning what was acknowledged before it.
    async fn publish(&self, pending: &[(u64, Record)]) -> (Vec<(u64, Published)>, Option<String>) {
        let mut futures = Vec::with_capacity(pending.len());
        for (seq, r) in pending {
            let message = PublishMessage::build()
                .payload(Bytes::from(r.payload.clone()))
                .message_id(&r.event_id)
                .expected_stream(&r.stream);
            match self
                .bus
                .jetstream
                .send_publish(r.subject.clone(), message)
                .await
            {
                Ok(ack) => futures.push((*seq, ack)),
                Err(e) => {
                    return (
                        await_acks(futures).await.0,
                        Some(format!("publish failed: {e}")),
                    );
                }
            }
        }
        await_acks(futures).await
    }

    async fn prune(&self) -> anyhow::Result<()> {
        let cutoff = crate::clock::unix_millis(SystemTime::now())
            .saturating_sub(self.retention.as_millis() as u64);
        let pruned = self
            .store
            .write(move |t| prune(t, cutoff))
            .await
            .map_err(|e| anyhow::anyhow!("outbox: pruning: {e}"))?;
        if pruned > 0 {
            tracing::debug!(service = %self.service, pruned, "outbox pruned");
        }
        Ok(())
    }

    /// After a JetStream store lost its unsynced tail (power cut, restored backup), republish
    /// the events it lost from the outbox, in order.
    async fn recover_lost_tail(&self) -> anyhow::Result<()> {
        let recorded = self.store.read(stream_marks).await?;
        for (stream, acked) in recorded {
            let mut s = self.bus.jetstream.get_stream(&stream).await?;
            let last = s.info().await?.state.last_sequence;
            if last >= acked {
                continue;
            }
            let s2 = stream.clone();
            let (requeued, gap) = self
                .store
                .write(move |t| requeue_after(t, &s2, last))
                .await
                .map_err(|e| anyhow::anyhow!("outbox: requeueing: {e}"))?;
            tracing::warn!(
                service = %self.service, %stream, had = acked, now = last, requeued,
                "stream {stream} lost its tail (its store was restored or lost unsynced data); \
                 republishing {requeued} events from the outbox"
            );
            if gap {
                tracing::error!(
                    service = %self.service, %stream,
                    "some lost events of {stream} were already pruned from the outbox and cannot \
                     be republished; raise the outbox retention above nats_sync_interval"
                );
            }
        }
        Ok(())
    }
}

async fn await_acks(
    futures: Vec<(u64, async_nats::jetstream::context::PublishAckFuture)>,
) -> (Vec<(u64, Published)>, Option<String>) {
    let at_ms = crate::clock::unix_millis(SystemTime::now());
    let mut acked = Vec::with_capacity(futures.len());
    for (seq, ack) in futures {
        match ack.await {
            Ok(ack) => acked.push((
                seq,
                Published {
                    stream_seq: ack.sequence,
                    at_ms,
                },
            )),
            Err(e) => return (acked, Some(format!("not acknowledged: {e}"))),
        }
    }
    (acked, None)
}

fn read_record(bytes: &[u8]) -> Result<Record, StoreError> {
    codec::decode(bytes)
}

fn meta_get(t: &ReadTransaction, key: &str) -> Result<Option<u64>, StoreError> {
    match t.open_table(META) {
        Ok(m) => Ok(m.get(key)?.map(|v| v.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Up to `limit` unpublished records from the `pending` cursor on.
fn pending(t: &ReadTransaction, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
    let from = meta_get(t, "pending")?.unwrap_or(1);
    let table = match t.open_table(OUTBOX) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in table.range(from..)? {
        let (k, v) = row?;
        let r = read_record(v.value())?;
        if r.published.is_none() {
            out.push((k.value(), r));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

fn mark_published(t: &WriteTransaction, acked: &[(u64, Published)]) -> Result<(), StoreError> {
    let mut table = t.open_table(OUTBOX)?;
    let mut meta = t.open_table(META)?;
    for (seq, p) in acked {
        let Some(bytes) = table.get(*seq)?.map(|v| v.value().to_vec()) else {
            continue;
        };
        let mut r = read_record(&bytes)?;
        r.published = Some(*p);
        table.insert(*seq, codec::encode(&r).as_slice())?;
        let key = format!("stream:{}", r.stream);
        let best = meta
            .get(key.as_str())?
            .map(|v| v.value())
            .unwrap_or(0)
            .max(p.stream_seq);
        meta.insert(key.as_str(), best)?;
    }
    // Advance the cursor over everything now published.
    let mut cursor = meta.get("pending")?.map(|v| v.value()).unwrap_or(1);
    for row in table.range(cursor..)? {
        let (k, v) = row?;
        if read_record(v.value())?.published.is_none() {
            break;
        }
        cursor = k.value() + 1;
    }
    meta.insert("pending", cursor)?;
    Ok(())
}

/// Deletes published records older than `cutoff_ms`, oldest first, a bounded number per call.
fn prune(t: &WriteTransaction, cutoff_ms: u64) -> Result<usize, StoreError> {
    let mut table = t.open_table(OUTBOX)?;
    let pending = t
        .open_table(META)?
        .get("pending")?
        .map(|v| v.value())
        .unwrap_or(1);
    let mut doomed = Vec::new();
    for row in table.range(..pending)? {
        let (k, v) = row?;
        match read_record(v.value())?.published {
            Some(p) if p.at_ms < cutoff_ms => doomed.push(k.value()),
            _ => break,
        }
        if doomed.len() >= 10_000 {
            break;
        }
    }
    for k in &doomed {
        table.remove(*k)?;
    }
    Ok(doomed.len())
}

fn stream_marks(t: &ReadTransaction) -> Result<Vec<(String, u64)>, StoreError> {
    let meta = match t.open_table(META) {
        Ok(m) => m,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in meta.range("stream:".."stream;")? {
        let (k, v) = row?;
        out.push((
            k.value().trim_start_matches("stream:").to_string(),
            v.value(),
        ));
    }
    Ok(out)
}

/// Marks the records of `stream` published after `last` as unpublished again. Returns how many,
/// and whether the oldest retained one leaves a gap (lost events already pruned).
fn requeue_after(t: &WriteTransaction, stream: &str, last: u64) -> Result<(u64, bool), StoreError> {
    let mut table = t.open_table(OUTBOX)?;
    let mut meta = t.open_table(META)?;
    let mut requeued = Vec::new();
    let mut oldest_lost: Option<u64> = None;
    for row in table.iter()? {
        let (k, v) = row?;
        let r = read_record(v.value())?;
        if let Some(p) = r
            .published
            .filter(|p| r.stream == stream && p.stream_seq > last)
        {
            oldest_lost = Some(oldest_lost.map_or(p.stream_seq, |o: u64| o.min(p.stream_seq)));
            requeued.push((k.value(), r));
        }
    }
    let first = requeued.first().map(|(k, _)| *k);
    for (k, mut r) in requeued.iter().cloned() {
        r.published = None;
        table.insert(k, codec::encode(&r).as_slice())?;
    }
    if let Some(first) = first {
        let cursor = meta
            .get("pending")?
            .map(|v| v.value())
            .unwrap_or(1)
            .min(first);
        meta.insert("pending", cursor)?;
    }
    meta.insert(format!("stream:{stream}").as_str(), last)?;
    // Called only when the stream is behind what was acknowledged, so nothing to requeue, or a
    // first requeued event past `last + 1`, means lost events are no longer here.
    let gap = oldest_lost.is_none_or(|o| o > last + 1);
    Ok((requeued.len() as u64, gap))
}
