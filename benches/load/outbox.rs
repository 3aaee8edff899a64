//! `outbox`: durable event writes through Souk's transactional outbox, end to end, against raw
//! JetStream publishing to the same server in the same run.
//!
//! Each write is what `POST /api/listings` commits: one `Store::write` (group commit) that puts
//! a listing (`listings::store::put_encoded`) and appends its `listing.created` event
//! (`bus::outbox::append_prepared`). As in the listings service, the writing task encodes both
//! before the job, so the store's one writer thread only inserts. `--clients` writers (default
//! 64) share [`EVENTS`] writes while a
//! `Relay` publishes the outbox to a real nats-server (JetStream file store, Souk's default
//! `sync_interval`). End to end = from the first write until `SOUK_LISTINGS` holds every event.
//!
//! Each run also measures the two halves apart: the same writes with no relay running (commit
//! acknowledged), then the relay draining that full outbox. The baseline publishes the same kind
//! of envelopes, with the same headers (`Nats-Msg-Id`, expected stream), straight to JetStream.

use crate::events::{self, publish_all};
use crate::natsd::{Natsd, Sync};
use crate::report::{Check, Section, spread, table};
use crate::{Ctx, procfs};
use souk::bus::outbox::{self, Relay};
use souk::bus::{Bus, Envelope};
use souk::services::listings::model::Listing;
use souk::services::listings::store as listings_store;
use souk::store::{Store, StoreError, encode};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Writes per run (and events the baseline publishes).
const EVENTS: usize = 40_000;
/// Sellers the listings belong to.
const SELLERS: usize = 100;
/// Bounds every wait: far beyond any plausible run, only a stuck relay hits it.
const TIMEOUT: Duration = Duration::from_secs(180);
const STREAM: &str = "SOUK_LISTINGS";

/// One run's figures, events/s unless noted.
#[derive(Clone, Copy)]
struct Figures {
    end_to_end: f64,
    writes_with_relay: f64,
    writes_alone: f64,
    writes_per_fsync: f64,
    relay_alone: f64,
    raw: f64,
    nats_cpu_per_event_us: f64,
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let writers = ctx.opts.clients;
    let sync = Sync::souk_default();
    let natsd = Natsd::start(sync)?;
    let bus = ctx.rt.block_on(natsd.bus())?;
    let sellers: Vec<String> = (0..SELLERS).map(|_| souk::ids::new("usr")).collect();

    let mut figures = Vec::new();
    for i in 0..runs {
        let f = ctx.rt.block_on(one_run(&bus, &natsd, &sellers, writers))?;
        eprintln!(
            "  run {}/{runs}: outbox end to end {:.0}/s, raw publish {:.0}/s",
            i + 1,
            f.end_to_end,
            f.raw
        );
        figures.push(f);
    }
    drop(natsd);

    let col = |get: fn(&Figures) -> f64| {
        spread(&figures.iter().map(get).collect::<Vec<_>>(), |v| {
            format!("{v:.0}")
        })
    };
    let ratios: Vec<f64> = figures.iter().map(|f| f.end_to_end / f.raw).collect();
    let rows = vec![
        vec![
            format!("outbox end to end ({writers} writers + relay, until the stream holds all)"),
            col(|f| f.end_to_end),
        ],
        vec![
            "… of which outbox writes, commit acknowledged (relay running)".into(),
            col(|f| f.writes_with_relay),
        ],
        vec![
            "outbox writes alone, commit acknowledged (no relay)".into(),
            col(|f| f.writes_alone),
        ],
        vec![
            "relay alone, draining that full outbox".into(),
            col(|f| f.relay_alone),
        ],
        vec![
            "baseline: raw JetStream async publish".into(),
            col(|f| f.raw),
        ],
        vec![
            "**outbox end to end / raw**".into(),
            spread(&ratios, |v| format!("{v:.2}")),
        ],
    ];
    let body = format!(
        "{EVENTS} `listing.created` events per measurement ({} B of JSON each), {runs} runs; \
         median (min–max). Each write is one `Store::write` putting a listing and appending its \
         event, both encoded by the writing task beforehand as the listings service does \
         (`put_encoded`, `outbox::append_prepared`); the relay publishes to a nats-server with JetStream \
         file storage and `sync_interval` {} (Souk's default). Baseline: async-nats \
         `send_publish` of the same kind of envelopes with the same headers, acks awaited by a \
         second task (5,000 in flight). Events per fsync in the writes-alone phase: {}; \
         nats-server CPU per event end to end: {}.\n\n{}",
        events::listing_created(&events::listing(7, &sellers[0]))
            .to_json()
            .len(),
        sync.label(),
        spread(
            &figures
                .iter()
                .map(|f| f.writes_per_fsync)
                .collect::<Vec<_>>(),
            |v| format!("{v:.0}")
        ),
        spread(
            &figures
                .iter()
                .map(|f| f.nats_cpu_per_event_us)
                .collect::<Vec<_>>(),
            |v| format!("{v:.0} µs")
        ),
        table(&["path", "events/s"], &rows)
    );
    let median = |xs: Vec<f64>| crate::report::median(&xs);
    let e2e = median(figures.iter().map(|f| f.end_to_end).collect());
    let ratio = median(ratios);
    Ok(Section {
        name: "outbox",
        title: "Outbox: durable event writes through group commit and the relay".into(),
        body,
        checks: vec![
            Check {
                what: format!("outbox end to end, {writers} writers"),
                target: "≥ 5,000 events/s".into(),
                measured: format!("{e2e:.0} events/s"),
                met: e2e >= 5000.0,
            },
            Check {
                what: "outbox end to end / raw JetStream publish".into(),
                target: "≥ 0.5".into(),
                measured: format!("{ratio:.2}"),
                met: ratio >= 0.5,
            },
        ],
    })
}

async fn one_run(
    bus: &Bus,
    natsd: &Natsd,
    sellers: &[String],
    writers: usize,
) -> anyhow::Result<Figures> {
    let js = &bus.jetstream;

    // End to end: writers and relay together.
    events::purge(js, STREAM).await?;
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-outbox-")
        .tempdir()?;
    let store = open_store(&dir.path().join("listings.redb")).await?;
    let work = batch(sellers);
    let cancel = CancellationToken::new();
    let relay = tokio::spawn(new_relay(bus, &store).run(cancel.clone()));
    let cpu_before = procfs::cpu_time(natsd.pid).unwrap_or_default();
    let started = Instant::now();
    let written = write_all(&store, bus, work, writers).await?;
    let writes_done = started.elapsed();
    let seen = events::wait_for_len(js, STREAM, EVENTS as u64, TIMEOUT).await?;
    let end_to_end = seen - started;
    let nats_cpu = procfs::cpu_time(natsd.pid)
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    cancel.cancel();
    relay.await??;
    drop(store);
    anyhow::ensure!(written == EVENTS, "{written} of {EVENTS} writes committed");

    // Baseline, between the two outbox measurements.
    events::purge(js, STREAM).await?;
    let raw = publish_all(
        js,
        events::listing_payloads(&bus.names, EVENTS, sellers),
        Some(STREAM),
    )
    .await;
    anyhow::ensure!(raw.errors == 0, "{} raw publishes failed", raw.errors);

    // The halves: writes with no relay, then the relay draining the full outbox.
    events::purge(js, STREAM).await?;
    let dir2 = tempfile::Builder::new()
        .prefix("souk-bench-outbox-")
        .tempdir()?;
    let store = open_store(&dir2.path().join("listings.redb")).await?;
    let work = batch(sellers);
    let commits_before = *store.commits().borrow();
    let started = Instant::now();
    write_all(&store, bus, work, writers).await?;
    let writes_alone = started.elapsed();
    let fsyncs = (*store.commits().borrow() - commits_before).max(1);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let relay = tokio::spawn(new_relay(bus, &store).run(cancel.clone()));
    let seen = events::wait_for_len(js, STREAM, EVENTS as u64, TIMEOUT).await?;
    let relay_alone = seen - started;
    cancel.cancel();
    relay.await??;

    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    Ok(Figures {
        end_to_end: rate(end_to_end),
        writes_with_relay: rate(writes_done),
        writes_alone: rate(writes_alone),
        writes_per_fsync: EVENTS as f64 / fsyncs as f64,
        relay_alone: rate(relay_alone),
        raw: raw.per_second(),
        nats_cpu_per_event_us: nats_cpu.as_secs_f64() * 1e6 / EVENTS as f64,
    })
}

async fn open_store(path: &std::path::Path) -> anyhow::Result<Store> {
    let path = path.to_path_buf();
    let store = tokio::task::spawn_blocking(move || Store::open(&path)).await??;
    store
        .write(listings_store::init)
        .await
        .map_err(|e| anyhow::anyhow!("initialising the store: {e}"))?;
    Ok(store)
}

fn new_relay(bus: &Bus, store: &Store) -> Relay {
    Relay {
        store: store.clone(),
        bus: bus.clone(),
        service: "listings".into(),
        retention: souk::config::Config::defaults().outbox_retention(),
        backlog: Arc::new(AtomicU64::new(0)),
        health: None,
    }
}

/// [`EVENTS`] listings and their events, made before the clock starts (the writers encode them
/// on the clock).
fn batch(sellers: &[String]) -> Vec<(Listing, Envelope)> {
    (0..EVENTS as u64)
        .map(|i| {
            let l = events::listing(i, &sellers[i as usize % sellers.len()]);
            let e = events::listing_created(&l);
            (l, e)
        })
        .collect()
}

/// `writers` tasks, each committing its share one write at a time; returns how many committed.
async fn write_all(
    store: &Store,
    bus: &Bus,
    work: Vec<(Listing, Envelope)>,
    writers: usize,
) -> anyhow::Result<usize> {
    let mut shares: Vec<Vec<(Listing, Envelope)>> = (0..writers).map(|_| Vec::new()).collect();
    for (i, w) in work.into_iter().enumerate() {
        shares[i % writers].push(w);
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let (store, names) = (store.clone(), bus.names.clone());
            tokio::spawn(async move {
                let mut done = 0;
                for (l, e) in share {
                    let value = encode(&l);
                    let event = outbox::prepare(&names, &e.kind, &e.id, e.to_json());
                    store
                        .write(move |t| {
                            listings_store::put_encoded(t, &l, &value)?;
                            outbox::append_prepared(t, &event)?;
                            Ok::<_, StoreError>(())
                        })
                        .await
                        .map_err(|e| anyhow::anyhow!("outbox write: {e}"))?;
                    done += 1;
                }
                Ok::<_, anyhow::Error>(done)
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await??;
    }
    Ok(done)
}
