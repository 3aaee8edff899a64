//! `freshness`: how soon a new listing shows in the catalog. Listings are written at a paced
//! [`RATE`]/s (open loop: one task per write, on a pool of keep-alive connections) for
//! `--duration`; after each `201`, the harness asks `GET /api/catalog/{id}?min_version=1`, which
//! Souk answers as soon as its projector has applied the listing (it waits on the projector,
//! up to 2 s). Freshness = from the `201` arriving to that `200` arriving.
//!
//! That figure includes one catalog GET round trip; the "GET of a visible item" row (a second,
//! plain GET of the same id right after) shows what that trip costs on its own.

use crate::report::{Check, Section, median, ms, percentile, spread, table};
use crate::souk::Souk;
use crate::{Ctx, listings};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Listing writes per second.
const RATE: u64 = 500;
/// Bounds the wait for the last requests after the pacing ends.
const DRAIN: Duration = Duration::from_secs(30);

/// One listing's timings, µs.
struct Sample {
    post: u32,
    fresh: u32,
    visible_get: u32,
}

/// One run's samples (ascending per column) and failures.
struct Tally {
    post: Vec<u32>,
    fresh: Vec<u32>,
    visible_get: Vec<u32>,
    errors: u64,
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let duration = ctx.opts.duration;
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-freshness-")
        .tempdir()?;
    let souk = ctx.rt.block_on(Souk::start(&ctx.souk_bin, dir.path()))?;
    let seller = ctx.rt.block_on(listings::create_seller(souk.addr))?;
    let base = format!("http://{}", souk.addr);
    // Warm-up: connections, the catalog's caches, the projector's first batch.
    ctx.rt
        .block_on(one_run(&base, &seller, Duration::from_secs(1), 0));
    let mut tallies = Vec::new();
    for i in 0..runs {
        let t = ctx
            .rt
            .block_on(one_run(&base, &seller, duration, i as u64 + 1));
        eprintln!(
            "  run {}/{runs}: freshness p50 {}, p99 {} ({} writes, {} errors)",
            i + 1,
            ms(percentile(&t.fresh, 0.5)),
            ms(percentile(&t.fresh, 0.99)),
            t.fresh.len(),
            t.errors
        );
        tallies.push(t);
    }
    ctx.rt.block_on(souk.stop())?;

    let row = |name: &str, get: fn(&Tally) -> &Vec<u32>| {
        let mut r = vec![name.to_string()];
        for q in [0.5, 0.9, 0.99, 1.0] {
            let v: Vec<Duration> = tallies.iter().map(|t| percentile(get(t), q)).collect();
            r.push(spread(&v, ms));
        }
        r
    };
    let rows = vec![
        row("freshness: `201` → catalog `200`", |t| &t.fresh),
        row("… GET of a visible item (floor)", |t| &t.visible_get),
        row("`POST /api/listings` at this rate", |t| &t.post),
    ];
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    let body = format!(
        "{RATE} listing writes/s for {} s per run, {runs} runs; median (min–max) over runs; \
         {errors} failed requests in all. Freshness uses \
         `GET /api/catalog/{{id}}?min_version=1` (answered once the projector has applied the \
         listing) sent as soon as the `201` arrives.\n\n{}",
        duration.as_secs(),
        table(&["from → to", "p50", "p90", "p99", "max"], &rows)
    );
    let p50 = median(
        &tallies
            .iter()
            .map(|t| percentile(&t.fresh, 0.5))
            .collect::<Vec<_>>(),
    );
    let p99 = median(
        &tallies
            .iter()
            .map(|t| percentile(&t.fresh, 0.99))
            .collect::<Vec<_>>(),
    );
    Ok(Section {
        name: "freshness",
        title: "Catalog freshness under a paced listing load".into(),
        body,
        checks: vec![
            Check {
                what: format!("catalog freshness p50 at {RATE} writes/s"),
                target: "< 5 ms".into(),
                measured: ms(p50),
                met: p50 < Duration::from_millis(5),
            },
            Check {
                what: format!("catalog freshness p99 at {RATE} writes/s"),
                target: "< 25 ms".into(),
                measured: ms(p99),
                met: p99 < Duration::from_millis(25),
            },
        ],
    })
}

async fn one_run(base: &str, seller: &str, duration: Duration, run: u64) -> Tally {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .expect("a client");
    let base: Arc<str> = base.into();
    let seller: Arc<str> = seller.into();
    let n = RATE * duration.as_secs().max(1);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tick.tick().await;
        let (http, base, seller) = (http.clone(), base.clone(), seller.clone());
        tasks.spawn(async move { one_listing(&http, &base, &seller, run << 40 | i).await });
    }
    let mut tally = Tally {
        post: Vec::new(),
        fresh: Vec::new(),
        visible_get: Vec::new(),
        errors: 0,
    };
    let deadline = tokio::time::Instant::now() + DRAIN;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
        match joined {
            Ok(Some(s)) => {
                tally.post.push(s.post);
                tally.fresh.push(s.fresh);
                tally.visible_get.push(s.visible_get);
            }
            _ => tally.errors += 1,
        }
    }
    tally.errors += tasks.len() as u64;
    tasks.abort_all();
    for v in [&mut tally.post, &mut tally.fresh, &mut tally.visible_get] {
        v.sort_unstable();
    }
    tally
}

/// Writes one listing and waits for it in the catalog; `None` on any unexpected answer.
async fn one_listing(http: &reqwest::Client, base: &str, seller: &str, n: u64) -> Option<Sample> {
    let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
    let sent = Instant::now();
    let resp = http
        .post(format!("{base}/api/listings"))
        .header("content-type", "application/json")
        .body(listings::create_body(n, seller))
        .send()
        .await
        .ok()?;
    if resp.status() != 201 {
        return None;
    }
    let created: serde_json::Value = resp.json().await.ok()?;
    let created_at = Instant::now();
    let id = created["id"].as_str()?;
    let resp = http
        .get(format!("{base}/api/catalog/{id}?min_version=1"))
        .send()
        .await
        .ok()?;
    let ok = resp.status() == 200;
    resp.bytes().await.ok()?;
    let visible_at = Instant::now();
    if !ok {
        return None;
    }
    let resp = http
        .get(format!("{base}/api/catalog/{id}"))
        .send()
        .await
        .ok()?;
    let ok = resp.status() == 200;
    resp.bytes().await.ok()?;
    let again = visible_at.elapsed();
    ok.then(|| Sample {
        post: us(created_at - sent),
        fresh: us(visible_at - created_at),
        visible_get: us(again),
    })
}
