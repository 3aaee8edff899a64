//! `rebuild` (issue 4): rebuilding the catalog from 1,000,000 listing events (plus the
//! sellers' `user.created` events) held in the streams of a running souk.
//!
//! The harness publishes the market of [`catalog_data`] straight into souk's bundled
//! nats-server (`SOUK_USERS`, `SOUK_LISTINGS`), logged in with the credentials in
//! `<data>/nats/identity.json`, as the outbox relays would have (`Nats-Msg-Id` = event id).
//! Souk's live projector applies them as they arrive; the harness waits until it has caught
//! up (that drain rate is reported too), then, `--runs` times, `POST
//! /api/admin/projections/catalog/rebuild` and polls `GET /api/admin/projections` until the
//! rebuild is `done`. Baseline, alternating with the rebuilds: what the rebuild does to SQLite,
//! without NATS — `apply_batch` over the same envelopes (already decoded) into a fresh bulk
//! generation, 2,000 per transaction, then `finish_bulk` (see `catalog::load`).

use crate::Ctx;
use crate::catalog;
use crate::catalog_data::{self, Market};
use crate::client;
use crate::procfs;
use crate::report::{Check, Section, mib, spread, table};
use crate::souk::Souk;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::HOST;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use souk::services::catalog::projector::CatalogEvent;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TARGET: f64 = 50_000.0;
/// Publishes in flight before the harness waits for their acks.
const WINDOW: usize = 4096;
/// Bounds on the waits (a broken build must not hang the harness).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30 * 60);
const REBUILD_LIMIT: Duration = Duration::from_secs(30 * 60);
const POLL: Duration = Duration::from_millis(100);

struct RebuildRun {
    wall: Duration,
    reported_eps: u64,
    applied: u64,
    souk_cpu: Duration,
    nats_cpu: Duration,
    /// `finish_bulk` (full-text index, secondary indexes, counts, sync), from souk's log.
    indexing: Option<Duration>,
}

/// The `took` of the last "rebuilt catalog indexed" line in souk's log (`took=16.8s`,
/// Rust's `Debug` of a `Duration`).
fn indexing_time(souk: &Souk) -> Option<Duration> {
    let line = souk
        .log()
        .into_iter()
        .rev()
        .find(|l| l.text.contains("rebuilt catalog indexed"))?;
    let took = line.text.split("took=").nth(1)?.split_whitespace().next()?;
    let (number, scale) = if let Some(v) = took.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = took.strip_suffix("µs") {
        (v, 1e-6)
    } else {
        (took.strip_suffix('s')?, 1.0)
    };
    Some(Duration::from_secs_f64(number.parse::<f64>().ok()? * scale))
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let n = catalog_data::listings_wanted()?;
    let t = Instant::now();
    let market = catalog_data::generate(n);
    eprintln!(
        "  generated {} listings, {} sellers in {:.1?}",
        market.listings.len(),
        market.sellers.len(),
        t.elapsed()
    );
    let events = (market.sellers.len() + market.listings.len()) as u64;

    // What decoding the payloads costs (the rebuild decodes every message; the baseline not).
    let decode_each = decode_cost(&market);

    let dir = tempfile::Builder::new()
        .prefix("souk-bench-rebuild-")
        .tempdir()?;
    let souk = ctx.rt.block_on(Souk::start(&ctx.souk_bin, dir.path()))?;
    let (published, catch_up, stream_bytes) =
        ctx.rt.block_on(publish_all(&souk, dir.path(), &market))?;
    eprintln!(
        "  published {events} events in {published:.1?} ({:.0}/s); the live projector caught \
         up {catch_up:.1?} after the first publish ({:.0} events/s)",
        events as f64 / published.as_secs_f64(),
        events as f64 / catch_up.as_secs_f64()
    );

    let (mut base, mut base_split, mut rebuilds) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let bdir = tempfile::Builder::new()
            .prefix("souk-bench-rebuild-base-")
            .tempdir()?;
        let loaded = catalog::load(bdir.path(), &market)?;
        drop(bdir);
        base.push(loaded.per_second());
        base_split.push((loaded.apply, loaded.finish));
        let r = ctx.rt.block_on(rebuild_once(&souk))?;
        eprintln!(
            "  run {}/{runs}: rebuild {:.1?} (indexing {:.1?}; {} events/s reported, {} applied); \
             apply_batch alone {:.0} events/s",
            i + 1,
            r.wall,
            r.indexing,
            r.reported_eps,
            r.applied,
            base[i]
        );
        anyhow::ensure!(
            r.applied == events,
            "the rebuild applied {} events, not {events}",
            r.applied
        );
        rebuilds.push(r);
    }
    ctx.rt.block_on(souk.stop())?;

    let eps: Vec<f64> = rebuilds.iter().map(|r| r.reported_eps as f64).collect();
    let wall_eps: Vec<f64> = rebuilds
        .iter()
        .map(|r| events as f64 / r.wall.as_secs_f64())
        .collect();
    let ratio: Vec<f64> = wall_eps.iter().zip(&base).map(|(a, b)| a / b).collect();
    let f0 = |v: f64| format!("{v:.0}");
    let secs = |d: &[Duration]| {
        spread(
            &d.iter().map(|d| d.as_secs_f64()).collect::<Vec<_>>(),
            |v| format!("{v:.1} s"),
        )
    };
    let mut body = format!(
        "{} `listing.created` + {} `user.created` events ({} in the streams), published \
         straight into souk's nats-server in {:.1} s ({:.0} msg/s, {WINDOW} acks in flight). \
         Souk's live projector had applied them all {:.1} s after the first publish \
         ({:.0} events/s, while the publishing went on). Then {runs} rebuilds, each \
         alternating with the baseline; median (min–max). Decoding one listing envelope \
         (`CatalogEvent::decode`, which the rebuild does and the baseline does not) costs {:.1} µs.\n\n",
        market.listings.len(),
        market.sellers.len(),
        mib(stream_bytes),
        published.as_secs_f64(),
        events as f64 / published.as_secs_f64(),
        catch_up.as_secs_f64(),
        events as f64 / catch_up.as_secs_f64(),
        decode_each.as_secs_f64() * 1e6,
    );
    body += &table(
        &["what", "events/s", "time", "souk CPU", "nats-server CPU"],
        &[
            vec![
                "`POST …/catalog/rebuild` to `done` (harness clock)".into(),
                spread(&wall_eps, f0),
                secs(&rebuilds.iter().map(|r| r.wall).collect::<Vec<_>>()),
                secs(&rebuilds.iter().map(|r| r.souk_cpu).collect::<Vec<_>>()),
                secs(&rebuilds.iter().map(|r| r.nats_cpu).collect::<Vec<_>>()),
            ],
            vec![
                "of which indexing (`finish_bulk`, from souk's log)".into(),
                String::new(),
                {
                    let found: Vec<Duration> = rebuilds.iter().filter_map(|r| r.indexing).collect();
                    if found.is_empty() {
                        "not in the log".into()
                    } else {
                        secs(&found)
                    }
                },
                String::new(),
                String::new(),
            ],
            vec![
                "rebuild, as its progress reports (`events_per_second`)".into(),
                spread(&eps, f0),
                String::new(),
                String::new(),
                String::new(),
            ],
            vec![
                "baseline: `apply_batch` + `finish_bulk` alone, same envelopes, no NATS".into(),
                spread(&base, f0),
                format!(
                    "{} (apply {} + finish {})",
                    spread(
                        &base.iter().map(|b| events as f64 / b).collect::<Vec<_>>(),
                        |v| format!("{v:.1} s")
                    ),
                    secs(&base_split.iter().map(|b| b.0).collect::<Vec<_>>()),
                    secs(&base_split.iter().map(|b| b.1).collect::<Vec<_>>()),
                ),
                String::new(),
                String::new(),
            ],
            vec![
                "**rebuild / baseline**".into(),
                spread(&ratio, |v| format!("{v:.2}")),
                String::new(),
                String::new(),
                String::new(),
            ],
        ],
    );
    let median = crate::report::median(&eps);
    Ok(Section {
        name: "rebuild",
        title: "Catalog rebuild from 1M events".into(),
        body,
        checks: vec![Check {
            what: "catalog rebuild, events/s (reported)".into(),
            target: format!("≥ {TARGET:.0}"),
            measured: format!("{median:.0}"),
            met: median >= TARGET,
        }],
    })
}

/// Median cost of `CatalogEvent::decode` (what the rebuild does to each message) over a sample
/// of listing events.
fn decode_cost(market: &Market) -> Duration {
    let sample: Vec<Vec<u8>> = (0..market.listings.len())
        .step_by((market.listings.len() / 20_000).max(1))
        .map(|i| market.listing_event(i).to_json())
        .collect();
    let t = Instant::now();
    for b in &sample {
        std::hint::black_box(CatalogEvent::decode(b).ok());
    }
    t.elapsed() / sample.len().max(1) as u32
}

/// Publishes every event; returns the publishing time, the time until the live projector
/// had applied them all (both from the first publish), and the streams' size.
async fn publish_all(
    souk: &Souk,
    data_dir: &std::path::Path,
    market: &Market,
) -> anyhow::Result<(Duration, Duration, u64)> {
    let identity: Value = serde_json::from_slice(
        &std::fs::read(data_dir.join("nats").join("identity.json"))
            .context("reading the bundled server's identity.json")?,
    )?;
    let (status, body) = client::get(souk.addr, "/readyz").await?;
    anyhow::ensure!(status.is_success(), "/readyz {status}");
    let readyz: Value = serde_json::from_slice(&body)?;
    let url = readyz["checks"]["broker"]["detail"]
        .as_str()
        .and_then(|d| d.split(", ").nth(1))
        .context("no nats:// url in /readyz checks.broker.detail")?
        .to_string();
    anyhow::ensure!(
        url.starts_with("nats://127.0.0.1:"),
        "the bundled server is not on loopback: {url}"
    );
    let nats = async_nats::ConnectOptions::with_user_and_password(
        identity["user"].as_str().context("identity.user")?.into(),
        identity["password"]
            .as_str()
            .context("identity.password")?
            .into(),
    )
    .connect(&url)
    .await
    .context("connecting to the bundled nats-server")?;
    let js = async_nats::jetstream::context::ContextBuilder::new()
        .max_ack_inflight(WINDOW * 2)
        .backpressure_on_inflight(true)
        .build(nats.clone());

    let started = Instant::now();
    let users = market.sellers.len();
    let mut acks = Vec::with_capacity(WINDOW);
    for k in 0..users + market.listings.len() {
        let e = if k < users {
            market.seller_event(k)
        } else {
            market.listing_event(k - users)
        };
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(Bytes::from(e.to_json()))
            .message_id(&e.id);
        acks.push(
            js.send_publish(format!("souk.events.{}", e.kind), message)
                .await?,
        );
        if acks.len() == WINDOW {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    let published = started.elapsed();

    let mut stream_bytes = 0;
    for name in ["SOUK_USERS", "SOUK_LISTINGS"] {
        let mut s = js.get_stream(name).await?;
        stream_bytes += s.info().await?.state.bytes;
    }
    // Caught up: the catalog's positions reached both streams' ends, nothing pending.
    loop {
        if started.elapsed() > CATCH_UP_LIMIT {
            bail!("the live projector had not caught up after {CATCH_UP_LIMIT:?}");
        }
        let p = projection(souk.addr).await?;
        let pos = |k: &str| p["positions"][k].as_u64().unwrap_or(0);
        let lag: u64 = p["lag"]
            .as_object()
            .map_or(1, |m| m.values().filter_map(Value::as_u64).sum());
        if pos("user") == users as u64 && pos("listing") == market.listings.len() as u64 && lag == 0
        {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let caught_up = started.elapsed();
    nats.drain().await.ok();
    Ok((published, caught_up, stream_bytes))
}

async fn projection(addr: SocketAddr) -> anyhow::Result<Value> {
    let (status, body) = client::get(addr, "/api/admin/projections").await?;
    anyhow::ensure!(status == StatusCode::OK, "/api/admin/projections {status}");
    let v: Value = serde_json::from_slice(&body)?;
    v["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == "catalog"))
        .cloned()
        .context("no catalog projection")
}

async fn post(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::post(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    if let Some(b) = crate::client::bearer() {
        req.headers_mut()
            .insert(hyper::header::AUTHORIZATION, b.parse()?);
    }
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

async fn rebuild_once(souk: &Souk) -> anyhow::Result<RebuildRun> {
    let cpu = || -> anyhow::Result<(Duration, Duration)> {
        Ok((
            procfs::cpu_time(souk.pid).context("souk's CPU time")?,
            procfs::cpu_time(souk.nats_pid).context("nats-server's CPU time")?,
        ))
    };
    let before = cpu()?;
    let started = Instant::now();
    let (status, body) = post(souk.addr, "/api/admin/projections/catalog/rebuild").await?;
    anyhow::ensure!(
        status == StatusCode::ACCEPTED,
        "rebuild: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let first: Value = serde_json::from_slice(&body)?;
    let started_at = first["started_at"].clone();
    loop {
        if started.elapsed() > REBUILD_LIMIT {
            bail!("the rebuild was not done after {REBUILD_LIMIT:?}");
        }
        tokio::time::sleep(POLL).await;
        let p = projection(souk.addr).await?;
        let r = &p["rebuild"];
        if r["started_at"] != started_at {
            bail!("another rebuild started meanwhile: {r}");
        }
        match r["state"].as_str() {
            Some("running") => continue,
            Some("done") => {
                let wall = started.elapsed();
                let after = cpu()?;
                // The line is written before the state turns `done`.
                let indexing = indexing_time(souk);
                return Ok(RebuildRun {
                    indexing,
                    wall,
                    reported_eps: r["events_per_second"].as_u64().unwrap_or(0),
                    applied: r["applied"].as_u64().unwrap_or(0),
                    souk_cpu: after.0.saturating_sub(before.0),
                    nats_cpu: after.1.saturating_sub(before.1),
                });
            }
            _ => bail!("the rebuild failed: {r}"),
        }
    }
}
