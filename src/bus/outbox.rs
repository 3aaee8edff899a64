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
//! Tables (in the service's own redb file): `outbox` (local seq → record, written once),
//! `outbox_acks` (local seq → stream sequence and time, 16 bytes: marking events published
//! never rewrites them), `outbox_requeue` (events to publish again after a lost tail), and
//! `outbox_meta` (`next`; `pending` = the first local seq never published, so the relay's work
//! is a range scan; `stream:<NAME>` = highest acknowledged sequence in that stream).

use super::{Bus, Envelope, Names};
use crate::store::{Store, StoreError, codec};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use redb::{
    ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");
const ACKS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("outbox_acks");
const REQUEUE: TableDefinition<u64, ()> = TableDefinition::new("outbox_requeue");
const BATCH: usize = 512;
const PRUNE_EVERY: Duration = Duration::from_secs(5);
/// How long the relay may hold acknowledgements before recording them (see [`Unrecorded`]).
const RECORD_EVERY: Duration = Duration::from_millis(200);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    subject: String,
    stream: String,
    event_id: String,
    /// The envelope's JSON, published as is.
    payload: String,
}

/// What JetStream acknowledged for one outbox record.
#[derive(Clone, Debug)]
struct Ack {
    seq: u64,
    stream: String,
    stream_seq: u64,
    at_ms: u64,
}

/// Acknowledgements the relay holds before writing them down.
///
/// Recording them after every publish cost a store commit per relay round, and with the writers
/// busy that commit often formed a batch (an fsync) of its own: end to end ran at about half the
/// rate of the writes alone. They are written at most every [`RECORD_EVERY`] instead, and the
/// relay remembers in memory what it already published so it does not read those records again.
/// A crash loses at most that much of the record: those events are published again at start,
/// inside JetStream's duplicate window (`Nats-Msg-Id`), and consumers are idempotent anyway.
#[derive(Default)]
struct Unrecorded {
    acks: Vec<Ack>,
    since: Option<std::time::Instant>,
}

impl Unrecorded {
    fn add(&mut self, acked: Vec<Ack>) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.acks.extend(acked);
    }

    fn due(&self) -> bool {
        self.since.is_some_and(|s| s.elapsed() >= RECORD_EVERY)
    }

    /// How long an idle relay may wait before the acknowledgements it holds are due.
    fn wait(&self) -> Duration {
        match self.since {
            Some(s) => RECORD_EVERY.saturating_sub(s.elapsed()),
            None => PRUNE_EVERY,
        }
    }

    fn take(&mut self) -> Vec<Ack> {
        self.since = None;
        std::mem::take(&mut self.acks)
    }

    /// What `pending` must pass over: published, not yet recorded.
    fn skip(&self) -> Skip {
        Skip {
            after: self.acks.iter().map(|a| a.seq).max().unwrap_or(0),
            seqs: self.acks.iter().map(|a| a.seq).collect(),
        }
    }
}

/// Records [`pending`] leaves out: the relay published them and has not recorded that yet.
#[derive(Default)]
struct Skip {
    /// New records up to this one.
    after: u64,
    /// Requeued records among these.
    seqs: std::collections::HashSet<u64>,
}

/// Adds `event` to the outbox inside the caller's transaction. Commit the transaction and the
/// event is as durable as the state change it describes; the relay takes it from there.
pub fn append(txn: &WriteTransaction, names: &Names, event: &Envelope) -> Result<u64, StoreError> {
    append_prepared(
        txn,
        &prepare(names, &event.kind, &event.id, event.to_json()),
    )
}

/// An outbox record encoded ahead of its transaction, so that the encoding runs on the caller's
/// task instead of the store's single writer thread, which every write of the store waits for.
pub struct Prepared {
    record: Vec<u8>,
}

/// Encodes the outbox record of the event `event_id` of type `kind` whose envelope is `json`.
pub fn prepare(names: &Names, kind: &str, event_id: &str, json: Vec<u8>) -> Prepared {
    let aggregate = kind.split('.').next().unwrap_or(kind);
    let stream = names.stream_of_aggregate(aggregate).unwrap_or_else(|| {
        panic!("no stream holds `{aggregate}` events (bus::subjects::PRODUCERS)")
    });
    let record = Record {
        subject: names.event(kind),
        stream,
        event_id: event_id.to_string(),
        payload: String::from_utf8(json).expect("JSON is UTF-8"),
    };
    Prepared {
        record: codec::encode(&record),
    }
}

/// [`append`] of a [`Prepared`] record: only the inserts happen in the transaction.
pub fn append_prepared(txn: &WriteTransaction, event: &Prepared) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(META)?;
    let seq = meta.get("next")?.map(|v| v.value()).unwrap_or(1);
    meta.insert("next", seq + 1)?;
    txn.open_table(OUTBOX)?
        .insert(seq, event.record.as_slice())?;
    Ok(seq)
}

/// Creates the outbox tables so readers never meet a missing table.
pub fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(OUTBOX)?;
    txn.open_table(META)?;
    txn.open_table(ACKS)?;
    txn.open_table(REQUEUE)?;
    Ok(())
}

/// Events committed but not yet acknowledged by JetStream.
pub fn backlog(txn: &ReadTransaction) -> Result<u64, StoreError> {
    let meta = txn.open_table(META)?;
    let next = meta.get("next")?.map(|v| v.value()).unwrap_or(1);
    let pending = meta.get("pending")?.map(|v| v.value()).unwrap_or(1);
    let requeued = txn.open_table(REQUEUE)?.len()?;
    Ok(next.saturating_sub(pending) + requeued)
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
    /// Readiness: the check `outbox:<service>` fails while publishing has failed for
    /// [`STUCK_AFTER`] or longer.
    pub health: Option<crate::health::Health>,
}

/// How long publishing may fail (nats-server restarting, a leader election) before readiness
/// says the outbox is stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// What an operator can do about a publish failure, when its text says.
fn publish_hint(error: &str) -> &'static str {
    if error.contains("insufficient resources") {
        "; JetStream is out of storage: raise nats_max_file_store (SOUK_NATS_MAX_FILE_STORE) on \
         the bundled server, or free disk space under the data dir"
    } else if error.contains("maximum bytes") || error.contains("maximum messages") {
        "; the stream is full: raise stream_max_bytes (SOUK_STREAM_MAX_BYTES)"
    } else {
        ""
    }
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
        let check = format!("outbox:{}", self.service);
        if let Some(h) = &self.health {
            h.set(&check, true, "ok");
        }
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut commits = self.store.commits();
        let mut last_prune = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        let mut unrecorded = Unrecorded::default();
        loop {
            commits.borrow_and_update();
            let skip = unrecorded.skip();
            let (pending, waiting) = self
                .store
                .read(move |t| Ok((pending(t, BATCH, &skip)?, backlog(t)?)))
                .await?;
            let waiting = waiting.saturating_sub(unrecorded.acks.len() as u64);
            self.backlog.store(waiting, Ordering::Relaxed);
            metrics::gauge!("souk_outbox_backlog", "service" => self.service.clone())
                .set(waiting as f64);
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = tokio::time::Instant::now();
                self.record(&mut unrecorded).await?;
                self.prune().await?;
            }
            if pending.is_empty() {
                if unrecorded.due() {
                    self.record(&mut unrecorded).await?;
                }
                let record_in = unrecorded.wait();
                tokio::select! {
                    _ = cancel.cancelled() => {
                        self.record(&mut unrecorded).await?;
                        return Ok(());
                    }
                    _ = commits.changed() => {}
                    _ = tokio::time::sleep(record_in) => {}
                }
                continue;
            }
            let (acked, failure) = self.publish(&pending).await;
            if !acked.is_empty() {
                metrics::counter!("souk_outbox_published_total", "service" => self.service.clone())
                    .increment(acked.len() as u64);
                unrecorded.add(acked);
                if unrecorded.due() {
                    self.record(&mut unrecorded).await?;
                }
            }
            if let Some(e) = failure {
                let hint = publish_hint(&e);
                tracing::warn!(service = %self.service, retry_in = ?delay, "outbox: publishing paused: {e}{hint}");
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if let Some(h) = &self.health
                    && since.elapsed() >= STUCK_AFTER
                {
                    h.set(
                        &check,
                        false,
                        format!(
                            "{} events wait; publishing has failed for {} s: {e}{hint}",
                            self.backlog.load(Ordering::Relaxed),
                            since.elapsed().as_secs()
                        ),
                    );
                }
                tokio::select! {
                    _ = cancel.cancelled() => {
                        self.record(&mut unrecorded).await?;
                        return Ok(());
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            } else {
                delay = Duration::from_millis(50);
                if failing_since.take().is_some()
                    && let Some(h) = &self.health
                {
                    h.set(&check, true, "ok");
                }
            }
        }
    }

    /// Writes the acknowledgements gathered since the last time, in one durable commit.
    async fn record(&self, unrecorded: &mut Unrecorded) -> anyhow::Result<()> {
        let acked = unrecorded.take();
        if acked.is_empty() {
            return Ok(());
        }
        self.store
            .write(move |t| mark_published(t, &acked))
            .await
            .map_err(|e| anyhow::anyhow!("outbox: recording published events: {e}"))
    }

    /// Publishes in order with a window of acknowledgements in flight; stops at the first
    /// failure, returning what was acknowledged before it.
    async fn publish(&self, pending: &[(u64, Record)]) -> (Vec<Ack>, Option<String>) {
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
                Ok(ack) => futures.push((*seq, r.stream.clone(), ack)),
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
    futures: Vec<(
        u64,
        String,
        async_nats::jetstream::context::PublishAckFuture,
    )>,
) -> (Vec<Ack>, Option<String>) {
    let at_ms = crate::clock::unix_millis(SystemTime::now());
    let mut acked = Vec::with_capacity(futures.len());
    for (seq, stream, ack) in futures {
        match ack.await {
            Ok(ack) => acked.push(Ack {
                seq,
                stream,
                stream_seq: ack.sequence,
                at_ms,
            }),
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

/// Up to `limit` records to publish, in order: events to republish first (they are older),
/// then new ones from the `pending` cursor on; none that `skip` names.
fn pending(
    t: &ReadTransaction,
    limit: usize,
    skip: &Skip,
) -> Result<Vec<(u64, Record)>, StoreError> {
    let from = meta_get(t, "pending")?.unwrap_or(1).max(skip.after + 1);
    let table = match t.open_table(OUTBOX) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    if let Ok(requeue) = t.open_table(REQUEUE) {
        for row in requeue.iter()? {
            if out.len() >= limit {
                break;
            }
            let seq = row?.0.value();
            if skip.seqs.contains(&seq) {
                continue;
            }
            if let Some(v) = table.get(seq)? {
                out.push((seq, read_record(v.value())?));
            }
        }
    }
    for row in table.range(from..)?.take(limit - out.len()) {
        let (k, v) = row?;
        out.push((k.value(), read_record(v.value())?));
    }
    Ok(out)
}

/// Records what JetStream acknowledged: small rows beside the records, which stay untouched.
fn mark_published(t: &WriteTransaction, acked: &[Ack]) -> Result<(), StoreError> {
    let mut acks = t.open_table(ACKS)?;
    let mut requeue = t.open_table(REQUEUE)?;
    let mut meta = t.open_table(META)?;
    let mut cursor = meta.get("pending")?.map(|v| v.value()).unwrap_or(1);
    let mut marks: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for a in acked {
        acks.insert(a.seq, (a.stream_seq, a.at_ms))?;
        requeue.remove(a.seq)?;
        // Acknowledgements come in publishing order, so new ones extend the cursor's prefix.
        if a.seq >= cursor {
            cursor = a.seq + 1;
        }
        let best = marks.entry(&a.stream).or_insert(0);
        *best = (*best).max(a.stream_seq);
    }
    meta.insert("pending", cursor)?;
    for (stream, seq) in marks {
        let key = format!("stream:{stream}");
        let best = meta
            .get(key.as_str())?
            .map(|v| v.value())
            .unwrap_or(0)
            .max(seq);
        meta.insert(key.as_str(), best)?;
    }
    Ok(())
}

/// Deletes published records acknowledged before `cutoff_ms`, oldest first, a bounded number
/// per call (never one waiting to be republished).
fn prune(t: &WriteTransaction, cutoff_ms: u64) -> Result<usize, StoreError> {
    let mut table = t.open_table(OUTBOX)?;
    let mut acks = t.open_table(ACKS)?;
    let requeue = t.open_table(REQUEUE)?;
    let mut doomed = Vec::new();
    for row in acks.iter()? {
        let (k, v) = row?;
        let (_, at_ms) = v.value();
        if at_ms >= cutoff_ms || doomed.len() >= 10_000 {
            break;
        }
        if requeue.get(k.value())?.is_none() {
            doomed.push(k.value());
        }
    }
    for k in &doomed {
        acks.remove(*k)?;
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

/// Queues the records of `stream` acknowledged after `last` to be published again. Returns how
/// many, and whether the oldest retained one leaves a gap (lost events already pruned).
fn requeue_after(t: &WriteTransaction, stream: &str, last: u64) -> Result<(u64, bool), StoreError> {
    let table = t.open_table(OUTBOX)?;
    let acks = t.open_table(ACKS)?;
    let mut requeue = t.open_table(REQUEUE)?;
    let mut meta = t.open_table(META)?;
    let mut requeued = 0u64;
    let mut oldest_lost: Option<u64> = None;
    for row in acks.iter()? {
        let (k, v) = row?;
        let (stream_seq, _) = v.value();
        if stream_seq <= last {
            continue;
        }
        let Some(record) = table.get(k.value())? else {
            continue;
        };
        if read_record(record.value())?.stream != stream {
            continue;
        }
        oldest_lost = Some(oldest_lost.map_or(stream_seq, |o: u64| o.min(stream_seq)));
        requeue.insert(k.value(), ())?;
        requeued += 1;
    }
    meta.insert(format!("stream:{stream}").as_str(), last)?;
    // Called only when the stream is behind what was acknowledged, so nothing to requeue, or a
    // first requeued event past `last + 1`, means lost events are no longer here.
    let gap = oldest_lost.is_none_or(|o| o > last + 1);
    Ok((requeued, gap))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequences `pending` offers next (at most 10), leaving out `skip`.
    async fn pending_seqs(store: &Store, skip: Skip) -> Vec<u64> {
        store
            .read(move |t| pending(t, 10, &skip))
            .await
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect()
    }

    fn event(n: u64) -> Envelope {
        Envelope::new(
            "user.created",
            &format!("usr_{n}"),
            1,
            serde_json::json!({"n": n}),
            &Default::default(),
        )
    }

    #[tokio::test]
    async fn acks_advance_the_cursor_prune_keeps_requeued_and_unpublished() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        store.write(init).await.unwrap();
        let names = Names::new("souk");
        for n in 1..=4 {
            let (names, e) = (names.clone(), event(n));
            store.write(move |t| append(t, &names, &e)).await.unwrap();
        }
        let first = store
            .read(|t| pending(t, 10, &Skip::default()))
            .await
            .unwrap();
        assert_eq!(
            first.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let ack = |seq, stream_seq, at_ms| Ack {
            seq,
            stream: "SOUK_USERS".into(),
            stream_seq,
            at_ms,
        };
        let acked = vec![ack(1, 11, 100), ack(2, 12, 100), ack(3, 13, 5_000)];
        store
            .write(move |t| mark_published(t, &acked))
            .await
            .unwrap();
        assert_eq!(
            store
                .read(|t| pending(t, 10, &Skip::default()))
                .await
                .unwrap()[0]
                .0,
            4
        );
        // Published but not recorded yet: the relay passes over it.
        let skip = Skip {
            after: 4,
            seqs: [4].into(),
        };
        assert!(
            store
                .read(move |t| pending(t, 10, &skip))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.read(backlog).await.unwrap(), 1);
        assert_eq!(
            store.read(stream_marks).await.unwrap(),
            [("SOUK_USERS".to_string(), 13)]
        );

        // The stream lost everything after 11: records 2 and 3 go back in line, 2 first.
        let (requeued, gap) = store
            .write(|t| requeue_after(t, "SOUK_USERS", 11))
            .await
            .unwrap();
        assert_eq!((requeued, gap), (2, false));
        let again: Vec<u64> = pending_seqs(&store, Skip::default()).await;
        assert_eq!(again, [2, 3, 4]);
        let skip = Skip {
            after: 4,
            seqs: [2, 4].into(),
        };
        let rest: Vec<u64> = pending_seqs(&store, skip).await;
        assert_eq!(rest, [3], "requeued 2 was republished already, 4 too");

        // Pruning before 1000 ms removes record 1 only: 2 waits to be republished, 3 is recent.
        assert_eq!(store.write(|t| prune(t, 1_000)).await.unwrap(), 1);
        let left: Vec<u64> = pending_seqs(&store, Skip::default()).await;
        assert_eq!(left, [2, 3, 4]);
        let (_, gap) = store
            .write(|t| requeue_after(t, "SOUK_USERS", 5))
            .await
            .unwrap();
        assert!(gap, "sequences 6 to 11 are gone from the outbox: a gap");
    }
}
