//! Rebuilding the catalog from the streams, without taking reads down: a new generation is
//! filled beside the live one from every user and listing event (tables only; its indexes are
//! built once the bulk is in), then — with the projector paused — caught up to the streams'
//! ends and swapped in. Reads go on against the old
//! generation meanwhile. Progress is visible while it runs.

use super::Catalog;
use super::projector::{CatalogEvent, apply_batch};
use super::store::Generation;
use crate::bus::Bus;
use anyhow::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events applied to the new generation per SQLite transaction.
const BATCH: usize = 2000;

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Progress {
    /// `idle`, `running`, `done` or `failed`.
    pub state: String,
    pub applied: u64,
    pub total: u64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub events_per_second: Option<u64>,
    pub error: Option<String>,
}

/// The catalog's rebuild state (one at a time per instance).
pub struct Rebuilds {
    progress: Mutex<Progress>,
}

impl Default for Rebuilds {
    fn default() -> Self {
        Rebuilds {
            progress: Mutex::new(Progress {
                state: "idle".into(),
                ..Default::default()
            }),
        }
    }
}

impl Rebuilds {
    pub fn progress(&self) -> Progress {
        self.progress.lock().unwrap().clone()
    }

    /// Marks a rebuild as started; false when one is already running.
    fn begin(&self) -> bool {
        let mut p = self.progress.lock().unwrap();
        if p.state == "running" {
            return false;
        }
        *p = Progress {
            state: "running".into(),
            started_at: Some(crate::clock::now_rfc3339()),
            ..Default::default()
        };
        true
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().unwrap());
    }
}

/// Starts a rebuild in the background; `None` when one is already running.
pub fn start(catalog: Arc<Catalog>, bus: Bus) -> Option<Progress> {
    if !catalog.rebuilds.begin() {
        return None;
    }
    let progress = catalog.rebuilds.progress();
    tokio::spawn(async move {
        let started = Instant::now();
        let result = run(&catalog, &bus).await;
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        catalog.rebuilds.update(|p| {
            p.finished_at = Some(crate::clock::now_rfc3339());
            p.events_per_second = Some((p.applied as f64 / elapsed) as u64);
            match &result {
                Ok(()) => p.state = "done".into(),
                Err(e) => {
                    p.state = "failed".into();
                    p.error = Some(format!("{e:#}"));
                }
            }
        });
        match result {
            Ok(()) => tracing::info!(took = ?started.elapsed(), "catalog rebuilt from the streams"),
            Err(e) => {
                tracing::error!("catalog rebuild failed (the live catalog is untouched): {e:#}")
            }
        }
    });
    Some(progress)
}

/// The streams the catalog is built from, users first so listings find their seller's name.
fn sources(bus: &Bus) -> [(String, String); 2] {
    let n = bus.names();
    [
        (n.stream("users"), format!("{}.events.user.>", n.prefix())),
        (
            n.stream("listings"),
            format!("{}.events.listing.>", n.prefix()),
        ),
    ]
}

async fn run(catalog: &Catalog, bus: &Bus) -> anyhow::Result<()> {
    let db = catalog.db.clone();
    // Filled without secondary or full-text indexes, which are then built in one pass each.
    let next = tokio::task::spawn_blocking(move || db.create_next_bulk()).await??;
    let mut ends = Vec::new();
    for (stream, _) in sources(bus) {
        let mut s = bus
            .jetstream
            .get_stream(&stream)
            .await
            .with_context(|| format!("stream {stream}"))?;
        let state = s.info().await?.state.clone();
        ends.push(state.last_sequence);
        catalog.rebuilds.update(|p| p.total += state.messages);
    }
    // Bulk copy up to where the streams were when the rebuild began.
    let mut reached = Vec::new();
    for ((stream, filter), end) in sources(bus).into_iter().zip(&ends) {
        reached.push(copy(catalog, bus, &next, &stream, &filter, 1, *end).await?);
    }
    let indexing = next.clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || indexing.finish_bulk()).await??;
    tracing::info!(took = ?started.elapsed(), "rebuilt catalog indexed");
    // Searches on it use FTS5 until its in-memory index is built beside the catch-up below.
    next.spawn_text_index();
    // Pause the projector, copy what arrived meanwhile, swap.
    let _gate = catalog.db.gate.write().await;
    for (i, (stream, filter)) in sources(bus).into_iter().enumerate() {
        let end = bus
            .jetstream
            .get_stream(&stream)
            .await?
            .info()
            .await?
            .state
            .last_sequence;
        if end > reached[i] {
            // Counted already up to where the first pass was to end, even if it stopped short.
            let counted = reached[i].max(ends[i]);
            catalog
                .rebuilds
                .update(|p| p.total += end.saturating_sub(counted));
            let last = copy(catalog, bus, &next, &stream, &filter, reached[i] + 1, end).await?;
            // `copy` stops after 5 s without a message; swapping then would lose events for good.
            anyhow::ensure!(
                last >= end || !has_matching(bus, &stream, &filter, last + 1, end).await?,
                "reading {stream} stalled at sequence {last} of {end}; the rebuild is abandoned \
                 and the current catalog stays: try again"
            );
        }
    }
    let db = catalog.db.clone();
    tokio::task::spawn_blocking(move || db.swap(next)).await??;
    catalog.applied.send_modify(|v| *v += 1);
    Ok(())
}

/// Applies the events of `stream` (matching `filter`) with sequences `from..=to` to `target`;
/// returns the last sequence applied (or `from - 1`).
async fn copy(
    catalog: &Catalog,
    bus: &Bus,
    target: &Arc<Generation>,
    stream: &str,
    filter: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<u64> {
    if to < from {
        return Ok(from.saturating_sub(1));
    }
    let s = bus.jetstream.get_stream(stream).await?;
    let consumer = s
        .create_consumer(pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await
        .with_context(|| format!("reading {stream}"))?;
    let mut messages = consumer.messages().await?;
    let mut last = from - 1;
    let mut batch: Vec<(CatalogEvent, String, u64)> = Vec::with_capacity(BATCH);
    let mut applying = Pipeline {
        catalog,
        target: target.clone(),
        pending: None,
    };
    let aggregate = filter.split('.').nth(2).unwrap_or("").to_string();
    while last < to {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let message = match next {
            Ok(Some(m)) => m?,
            // Nothing more matches the filter up to `to` (the rest are other subjects).
            Ok(None) | Err(_) => break,
        };
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .stream_sequence;
        last = seq;
        if seq > to {
            break;
        }
        match CatalogEvent::decode(&message.payload) {
            Ok(e) => batch.push((e, aggregate.clone(), seq)),
            Err(e) => {
                tracing::warn!(%stream, seq, "rebuild skips an event that is not an envelope: {e}")
            }
        }
        if batch.len() >= BATCH || seq >= to {
            applying.flush(&mut batch).await?;
        }
    }
    applying.flush(&mut batch).await?;
    applying.wait().await?;
    Ok(last.min(to))
}

/// Applies batches on a blocking thread while the next one is read and decoded, so the two
/// overlap; batches still go in one at a time, in order.
struct Pipeline<'a> {
    catalog: &'a Catalog,
    target: Arc<Generation>,
    pending: Option<tokio::task::JoinHandle<anyhow::Result<u64>>>,
}

impl Pipeline<'_> {
    /// Hands `batch` over once the previous one is in.
    async fn flush(&mut self, batch: &mut Vec<(CatalogEvent, String, u64)>) -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.wait().await?;
        let events = std::mem::take(batch);
        let target = self.target.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            apply_batch(&target, &events)?;
            Ok(events.len() as u64)
        }));
        Ok(())
    }

    /// Waits for the batch in flight, if any.
    async fn wait(&mut self) -> anyhow::Result<()> {
        if let Some(task) = self.pending.take() {
            let n = task.await??;
            self.catalog.rebuilds.update(|p| p.applied += n);
        }
        Ok(())
    }
}

/// Whether `stream` holds a message matching `filter` with a sequence in `from..=to`.
pub async fn has_matching(
    bus: &Bus,
    stream: &str,
    filter: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<bool> {
    use async_nats::jetstream::stream::DirectGetErrorKind;
    let s = bus.jetstream.get_stream_no_info(stream).await?;
    match s.direct_get_next_for_subject(filter, Some(from)).await {
        Ok(m) => Ok(m.sequence <= to),
        Err(e) if matches!(e.kind(), DirectGetErrorKind::NotFound) => Ok(false),
        Err(e) => Err(anyhow::anyhow!(
            "checking {stream} after sequence {from}: {e}"
        )),
    }
}
