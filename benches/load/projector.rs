//! `projector`: catch-up throughput of the catalog projector. [`EVENTS`] `listing.created`
//! envelopes are published to SOUK_LISTINGS once; each run then starts a fresh durable consumer
//! (`souk::bus::consumer::run`, Souk's settings) feeding `catalog::projector::Projector` with a
//! fresh `catalog.sqlite`, and times it until the projector's stored position reaches the
//! stream's last sequence.
//!
//! Issue 3's target is for "an idempotent handler writing to SQLite in batches": the consumer
//! machinery, which the backbone provides to every service. [`Ledger`] is the smallest such
//! handler a service would write (the latest state per aggregate, kept only when the version
//! is newer, and the stream position, one transaction per batch, on Souk's SQLite settings);
//! it is timed through the same consumer on the same stream. The catalog projector is the
//! heaviest handler Souk has (five B-trees and a full-text index per event) and is reported
//! beside it.
//!
//! Baseline in the same run: `projector::apply_batch` called directly on the same envelopes, in
//! batches of the consumer's size, on another fresh file: the SQLite ceiling without NATS,
//! decoding or acks. Both files get the same sellers first (untimed), so the seller join works.

use crate::Ctx;
use crate::events;
use crate::natsd::{Natsd, Sync};
use crate::report::{Check, Section, median, spread, table};
use souk::bus::consumer::{self, Delivery, Handler, HandlerError, Spec};
use souk::bus::{Bus, Envelope};
use souk::services::catalog::projector::{CatalogEvent, Projector, apply_batch};
use souk::services::catalog::store::Db;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const EVENTS: usize = 200_000;
const SELLERS: usize = 1_000;
const STREAM: &str = "SOUK_LISTINGS";
/// Far beyond any plausible catch-up; only a stuck consumer hits it.
const TIMEOUT: Duration = Duration::from_secs(300);

/// The projector, counting the batches it is handed (a relaxed add per batch).
struct Counted {
    projector: Projector,
    batches: AtomicU64,
}

#[async_trait::async_trait]
impl Handler for Counted {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.projector.handle(batch).await
    }
}

/// The smallest idempotent SQLite read model: per aggregate the latest event's data, replaced
/// only by a newer version, and the stream position, in one transaction per batch.
struct Ledger {
    conn: Arc<Mutex<rusqlite::Connection>>,
    batches: AtomicU64,
}

impl Ledger {
    fn open(path: &std::path::Path) -> anyhow::Result<Ledger> {
        let conn = souk::store::open_sqlite(path)?;
        conn.execute_batch(
            "CREATE TABLE latest (
                 aggregate_id TEXT PRIMARY KEY,
                 version INTEGER NOT NULL,
                 kind TEXT NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE TABLE positions (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL);",
        )?;
        Ok(Ledger {
            conn: Arc::new(Mutex::new(conn)),
            batches: AtomicU64::new(0),
        })
    }

    fn position(&self) -> anyhow::Result<u64> {
        let conn = self.conn.lock().unwrap();
        let seq: Option<i64> =
            conn.query_row("SELECT max(seq) FROM positions", [], |r| r.get(0))?;
        Ok(seq.unwrap_or(0) as u64)
    }

    fn rows(&self) -> anyhow::Result<i64> {
        let conn = self.conn.lock().unwrap();
        Ok(conn.query_row("SELECT count(*) FROM latest", [], |r| r.get(0))?)
    }
}

fn apply_ledger(
    conn: &mut rusqlite::Connection,
    events: &[(String, u64, String, u64, String)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO latest(aggregate_id, version, kind, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(aggregate_id) DO UPDATE SET
                 version = excluded.version, kind = excluded.kind, data = excluded.data
             WHERE excluded.version > latest.version",
        )?;
        let mut last = 0;
        for (aggregate_id, version, kind, seq, data) in events {
            upsert.execute(rusqlite::params![aggregate_id, *version as i64, kind, data])?;
            last = last.max(*seq);
        }
        tx.prepare_cached(
            "INSERT INTO positions(stream, seq) VALUES ('listing', ?1)
             ON CONFLICT(stream) DO UPDATE SET seq = max(seq, excluded.seq)",
        )?
        .execute([last as i64])?;
    }
    tx.commit()
}

#[async_trait::async_trait]
impl Handler for Ledger {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let events: Vec<(String, u64, String, u64, String)> = batch
            .iter()
            .map(|d| {
                let e = &d.envelope;
                (
                    e.aggregate_id.clone(),
                    e.version,
                    e.kind.clone(),
                    d.stream_seq,
                    e.data.to_string(),
                )
            })
            .collect();
        let conn = self.conn.clone();
        let n = batch.len();
        let done =
            tokio::task::spawn_blocking(move || apply_ledger(&mut conn.lock().unwrap(), &events))
                .await;
        match done {
            Ok(Ok(())) => vec![Ok(()); n],
            Ok(Err(e)) => vec![Err(HandlerError::Retry(e.to_string())); n],
            Err(e) => vec![Err(HandlerError::Retry(e.to_string())); n],
        }
    }
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let natsd = Natsd::start(Sync::souk_default())?;
    let bus = ctx.rt.block_on(natsd.bus())?;
    let sellers: Vec<Envelope> = (0..SELLERS as u64).map(events::user_created).collect();
    let seller_ids: Vec<String> = sellers.iter().map(|e| e.aggregate_id.clone()).collect();
    eprintln!("  publishing {EVENTS} listing.created events…");
    let listings = events::listing_payloads(&bus.names, EVENTS, &seller_ids);
    let published = ctx.rt.block_on(events::publish_all(
        &bus.jetstream,
        listings.clone(),
        Some(STREAM),
    ));
    anyhow::ensure!(published.acked == EVENTS as u64, "publishing failed");
    let last_seq = ctx.rt.block_on(async {
        let mut s = bus.jetstream.get_stream(STREAM).await?;
        anyhow::Ok(s.info().await?.state.last_sequence)
    })?;
    // The baseline's input: what the consumer would hand over, stream positions included.
    let direct: Vec<(CatalogEvent, String, u64)> = listings
        .into_iter()
        .enumerate()
        .map(|(i, (_, e))| {
            (
                (&e).into(),
                "listing".to_string(),
                last_seq - EVENTS as u64 + 1 + i as u64,
            )
        })
        .collect();
    let batch = Spec::new(String::new(), String::new(), Vec::new()).batch;

    let (mut through, mut ceiling, mut per_batch) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ledger, mut ledger_batch) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let (rate, avg_batch) = ctx
            .rt
            .block_on(ledger_through_consumer(&bus, last_seq, i))?;
        ledger.push(rate);
        ledger_batch.push(avg_batch);
        eprintln!(
            "  run {}/{runs}: minimal idempotent SQLite handler via consumer {rate:.0}/s (avg batch {avg_batch:.0})",
            i + 1
        );
        let (rate, avg_batch) = ctx
            .rt
            .block_on(through_consumer(&bus, &sellers, last_seq, i))?;
        through.push(rate);
        per_batch.push(avg_batch);
        ceiling.push(direct_apply(&sellers, &direct, batch)?);
        eprintln!(
            "  run {}/{runs}: projector via consumer {:.0}/s (avg batch {avg_batch:.0}), apply_batch directly {:.0}/s",
            i + 1,
            through[i],
            ceiling[i]
        );
    }
    drop(natsd);

    let show = |v: f64| format!("{v:.0}");
    let ratio: Vec<f64> = through.iter().zip(&ceiling).map(|(a, b)| a / b).collect();
    let rows = vec![
        vec![
            "minimal idempotent SQLite handler (`Ledger`) through the durable consumer".into(),
            spread(&ledger, show),
            spread(&ledger_batch, |v| format!("{v:.0}")),
        ],
        vec![
            "catalog projector through the durable consumer".into(),
            spread(&through, show),
            spread(&per_batch, |v| format!("{v:.0}")),
        ],
        vec![
            "baseline: `apply_batch` directly, no NATS".into(),
            spread(&ceiling, show),
            batch.to_string(),
        ],
        vec![
            "**consumer / direct**".into(),
            spread(&ratio, |v| format!("{v:.2}")),
            String::new(),
        ],
    ];
    let body = format!(
        "{EVENTS} `listing.created` envelopes from {SELLERS} sellers (whose `user.created` \
         events are applied first, untimed), {runs} runs; median (min–max). Each run starts a \
         fresh durable consumer (Souk's settings) and a fresh SQLite file (WAL, \
         `synchronous=NORMAL`) on the build's disk, and is timed from its start until the \
         stored position reaches the stream's last sequence. `Ledger` keeps each aggregate's \
         latest data, replaced only by a newer version, and the stream position, one \
         transaction per batch: the handler issue 3's target describes. The catalog projector \
         writes the listing row, four indexes, the seller join, the counts and the FTS5 index \
         per event.\n\n{}",
        table(&["path", "events/s", "events per batch"], &rows)
    );
    let rate = median(&ledger);
    Ok(Section {
        name: "projector",
        title: "Consumer throughput into SQLite (the catalog projector and a minimal handler)"
            .into(),
        body,
        checks: vec![Check {
            what: "idempotent SQLite batch handler through a durable consumer".into(),
            target: "≥ 30,000 events/s".into(),
            measured: format!("{rate:.0} events/s"),
            met: rate >= 30_000.0,
        }],
    })
}

async fn ledger_through_consumer(
    bus: &Bus,
    last_seq: u64,
    run: usize,
) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-ledger-")
        .tempdir()?;
    let handler = Arc::new(Ledger::open(&dir.path().join("ledger.sqlite"))?);
    let h = handler.clone();
    let elapsed = timed_consumer(
        bus,
        format!("bench-ledger-{run}"),
        handler.clone(),
        last_seq,
        move || h.position(),
    )
    .await?;
    let rows = handler.rows()?;
    anyhow::ensure!(
        rows == EVENTS as i64,
        "the handler holds {rows} of {EVENTS} rows"
    );
    let batches = handler.batches.load(Ordering::Relaxed).max(1);
    Ok((
        EVENTS as f64 / elapsed.as_secs_f64(),
        EVENTS as f64 / batches as f64,
    ))
}

/// Runs `handler` behind a fresh durable consumer on the stream until `reached` (its stored
/// position, read on a blocking thread) is `last_seq`; the time that took. The consumer is
/// stopped and deleted afterwards.
async fn timed_consumer(
    bus: &Bus,
    name: String,
    handler: Arc<dyn Handler>,
    last_seq: u64,
    reached: impl Fn() -> anyhow::Result<u64> + Clone + Send + 'static,
) -> anyhow::Result<Duration> {
    let spec = Spec::new(
        name.clone(),
        STREAM.into(),
        vec!["souk.events.listing.>".into()],
    );
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let runner = tokio::spawn(consumer::run(
        bus.clone(),
        spec,
        handler,
        None,
        cancel.clone(),
    ));
    loop {
        let position = tokio::task::spawn_blocking(reached.clone()).await??;
        if position >= last_seq {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < TIMEOUT && !runner.is_finished(),
            "{name} reached {position} of {last_seq} in {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    runner.await??;
    let _ = bus
        .jetstream
        .get_stream(STREAM)
        .await?
        .delete_consumer(&name)
        .await;
    Ok(elapsed)
}

/// A fresh `catalog.sqlite` with the sellers in it.
fn fresh_db(dir: &tempfile::TempDir, sellers: &[Envelope]) -> anyhow::Result<Arc<Db>> {
    let db = Db::open(dir.path())?;
    let users: Vec<(CatalogEvent, String, u64)> = sellers
        .iter()
        .enumerate()
        .map(|(i, e)| (e.into(), "user".to_string(), i as u64 + 1))
        .collect();
    apply_batch(&db.current(), &users)?;
    Ok(db)
}

async fn through_consumer(
    bus: &Bus,
    sellers: &[Envelope],
    last_seq: u64,
    run: usize,
) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-projector-")
        .tempdir()?;
    let db = fresh_db(&dir, sellers)?;
    let handler = Arc::new(Counted {
        projector: Projector {
            db: db.clone(),
            applied: tokio::sync::watch::channel(0).0,
        },
        batches: AtomicU64::new(0),
    });
    let d = db.clone();
    let name = format!("bench-catalog-listings-{run}");
    let elapsed = timed_consumer(bus, name, handler.clone(), last_seq, move || {
        Ok(d.positions()?
            .into_iter()
            .find(|(stream, _)| stream == "listing")
            .map_or(0, |(_, seq)| seq))
    })
    .await?;
    check_count(&db)?;
    let batches = handler.batches.load(Ordering::Relaxed).max(1);
    Ok((
        EVENTS as f64 / elapsed.as_secs_f64(),
        EVENTS as f64 / batches as f64,
    ))
}

fn direct_apply(
    sellers: &[Envelope],
    events: &[(CatalogEvent, String, u64)],
    batch: usize,
) -> anyhow::Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-projector-")
        .tempdir()?;
    let db = fresh_db(&dir, sellers)?;
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        let outcomes = apply_batch(&db.current(), chunk)?;
        anyhow::ensure!(outcomes.iter().all(Result::is_ok), "an event was rejected");
    }
    let elapsed = started.elapsed();
    check_count(&db)?;
    Ok(EVENTS as f64 / elapsed.as_secs_f64())
}

/// Every listing made it into the catalog.
fn check_count(db: &Db) -> anyhow::Result<()> {
    let n: i64 = db.read(|c| {
        c.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
            .map_err(|e| souk::services::catalog::store::sqlite_error(&db.path(), "counting", e))
    })?;
    anyhow::ensure!(
        n == EVENTS as i64,
        "the catalog holds {n} of {EVENTS} items"
    );
    Ok(())
}
