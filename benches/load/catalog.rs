//! `catalog` (issue 4): `GET /api/catalog` over 1,000,000 listings and ~20,000 sellers, through
//! the real HTTP API of the release souk, with a realistic query mix at `--clients` (64).
//!
//! 1. The market comes from [`catalog_data`] (seeded, deterministic).
//! 2. It is loaded into `catalog.sqlite` of a fresh data dir with the projector's own
//!    `apply_batch` over `user.created` / `listing.created` envelopes, 2,000 per transaction
//!    as a rebuild does (so the file is exactly what Souk would have built, schema, triggers
//!    and all) — before souk starts, which then opens that file as its catalog (`Db::open`).
//! 3. Baselines in the same run: the same searches run in the harness process straight on
//!    SQLite through `souk::services::catalog::query::search_json` (the same SQL and the
//!    same JSON page the catalog service answers: the raw query ceiling, one thread per core), `GET /healthz` of the same souk (HTTP alone), and
//!    `GET /api/catalog/{id}` (HTTP + the catalog's rpc hop + a primary-key read: everything
//!    but the search itself). Both souk and the harness wait for the in-memory search index
//!    (`index.rs`) to be built before measuring.
//! 4. Per query shape, sequentially (one client): raw SQL vs HTTP latency, so a miss can be
//!    traced to a shape.

use crate::Ctx;
use crate::catalog_data::{self, Market, Rng, Terms};
use crate::client::{self, Load, Outcome};
use crate::healthz::{Figures, figures_row};
use crate::procfs;
use crate::report::{Check, Section, mib, ms, spread, table};
use crate::souk::Souk;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode, Uri};
use souk::services::Page;
use souk::services::catalog::query::{self, Search};
use souk::services::catalog::store::Db;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events per `apply_batch` transaction, as the rebuild uses.
pub const BATCH: usize = 2000;
const WARM_UP: Duration = Duration::from_secs(2);
/// Per-shape sequential measurements: up to this long or this many queries per shape.
const SHAPE_TIME: Duration = Duration::from_millis(1500);
const SHAPE_MAX: usize = 300;
/// Entries of the query mix (clients walk it from different offsets).
const MIX_LEN: usize = 4096;
const P99_TARGET: Duration = Duration::from_millis(20);
const QPS_TARGET: f64 = 5000.0;
/// How long the search index may take to build before the bench gives up.
const INDEX_WAIT: Duration = Duration::from_secs(300);

/// A kind of query the mix draws from, with its share of the mix (percent).
struct Shape {
    name: &'static str,
    weight: u32,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "browse, newest",
        weight: 12,
    },
    Shape {
        name: "browse, price range, price_asc",
        weight: 6,
    },
    Shape {
        name: "browse, rent, price_desc",
        weight: 4,
    },
    Shape {
        name: "seller's listings, newest",
        weight: 8,
    },
    Shape {
        name: "common term, relevance",
        weight: 8,
    },
    Shape {
        name: "common term, price_asc",
        weight: 5,
    },
    Shape {
        name: "common term, newest",
        weight: 5,
    },
    Shape {
        name: "medium term, relevance",
        weight: 8,
    },
    Shape {
        name: "medium term + price range, price_desc",
        weight: 5,
    },
    Shape {
        name: "rare term, relevance",
        weight: 8,
    },
    Shape {
        name: "rare term + rent, newest",
        weight: 3,
    },
    Shape {
        name: "common + medium term, relevance",
        weight: 5,
    },
    Shape {
        name: "accented (`café`, `Creme`…), relevance",
        weight: 4,
    },
    Shape {
        name: "browse, newest, page 2–5 (cursor)",
        weight: 5,
    },
    Shape {
        name: "common term, price_asc, page 2–3 (cursor)",
        weight: 4,
    },
    Shape {
        name: "common term, relevance, page 2–5 (cursor = offset)",
        weight: 3,
    },
    Shape {
        name: "medium term, status=sold",
        weight: 2,
    },
    Shape {
        name: "two-letter prefix (`ca`), relevance",
        weight: 2,
    },
    Shape {
        name: "common term, newest, default limit 50",
        weight: 3,
    },
];

/// One query of the mix: the parameters, and its URI.
#[derive(Clone)]
struct Query {
    search: Search,
    uri: Uri,
}

/// What building a catalog cost.
pub struct Loaded {
    pub events: usize,
    /// Time inside `apply_batch` only (building the envelopes is not counted).
    pub apply: Duration,
    /// `finish_bulk`: the full-text index, the secondary indexes, the counts, a checkpoint.
    pub finish: Duration,
    pub file_bytes: u64,
}

impl Loaded {
    pub fn total(&self) -> Duration {
        self.apply + self.finish
    }

    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.total().as_secs_f64()
    }
}

/// Builds the market's catalog in `dir` the way a rebuild does, minus NATS: a bulk generation
/// (`Db::create_next_bulk`) filled by `apply_batch`, `BATCH` events per transaction, users
/// first, then `finish_bulk`, then swapped in (`catalog.current`) so souk opens it. Only
/// `apply_batch` and `finish_bulk` are timed.
pub fn load(dir: &Path, market: &Market) -> anyhow::Result<Loaded> {
    let db = Db::open(dir)?;
    let next = db.create_next_bulk()?;
    let (mut apply, mut events) = (Duration::ZERO, 0);
    for batch in market.event_batches(BATCH) {
        let t = Instant::now();
        let outcomes = souk::services::catalog::projector::apply_batch(&next, &batch)?;
        apply += t.elapsed();
        events += batch.len();
        anyhow::ensure!(
            outcomes.iter().all(Result::is_ok),
            "apply_batch refused a generated event"
        );
    }
    let t = Instant::now();
    next.finish_bulk()?;
    let finish = t.elapsed();
    db.swap(next)?;
    let file_bytes = std::fs::metadata(db.path())?.len();
    Ok(Loaded {
        events,
        apply,
        finish,
        file_bytes,
    })
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let (clients, duration) = (ctx.opts.clients, ctx.opts.duration);
    let n = catalog_data::listings_wanted()?;

    let t = Instant::now();
    let market = catalog_data::generate(n);
    let terms = catalog_data::terms(&market);
    let generated = t.elapsed();
    eprintln!(
        "  generated {} listings, {} sellers in {generated:.1?}",
        market.listings.len(),
        market.sellers.len()
    );

    let dir = tempfile::Builder::new()
        .prefix("souk-bench-catalog-")
        .tempdir()?;
    // `SOUK_BENCH_KEEP=1` leaves the data dir behind, to look at the catalog with `sqlite3`.
    let dir = if std::env::var_os("SOUK_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("  keeping {}", kept.display());
        Kept::Path(kept)
    } else {
        Kept::Temp(dir)
    };
    let loaded = load(dir.path(), &market)?;
    eprintln!(
        "  loaded {} events: apply_batch {:.1?} + finish_bulk {:.1?} ({:.0} events/s), file {}",
        loaded.events,
        loaded.apply,
        loaded.finish,
        loaded.per_second(),
        mib(loaded.file_bytes)
    );

    // Opening builds the in-memory search index in the background, as souk does at start.
    let rss_before = procfs::rss(std::process::id()).unwrap_or(0);
    let t = Instant::now();
    let db = Db::open(dir.path())?;
    while !db.current().text_index_ready() {
        anyhow::ensure!(
            t.elapsed() < INDEX_WAIT,
            "the search index was not ready after {INDEX_WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let index_built = t.elapsed();
    let index_rss = procfs::rss(std::process::id())
        .unwrap_or(0)
        .saturating_sub(rss_before);
    eprintln!(
        "  search index built in {index_built:.1?}, +{} RSS",
        mib(index_rss)
    );
    let t = Instant::now();
    let per_shape = instances(&db, &market, &terms)?;
    eprintln!(
        "  built the query instances (and their cursors) in {:.1?}",
        t.elapsed()
    );
    let mix = mix(&per_shape);

    // Per shape, sequentially, straight on SQLite (before souk runs: nothing else competes).
    let raw_shapes: Vec<ShapeFigures> = per_shape
        .iter()
        .map(|qs| raw_sequential(&db, qs))
        .collect::<anyhow::Result<_>>()?;

    let souk = ctx.rt.block_on(Souk::start(&ctx.souk_bin, dir.path()))?;
    let t = Instant::now();
    while !souk
        .log()
        .iter()
        .any(|l| l.text.contains("catalog search index ready"))
    {
        anyhow::ensure!(
            t.elapsed() < INDEX_WAIT,
            "souk's search index was not ready after {INDEX_WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let souk_index_built = t.elapsed() + souk.ready_after;
    let mix_uris: Arc<Vec<Uri>> = Arc::new(mix.iter().map(|q| q.uri.clone()).collect());
    let mix_load = Load {
        addr: souk.addr,
        clients,
        duration,
        request: walker(mix_uris.clone(), clients),
        expect: StatusCode::OK,
    };
    // The same answers through HTTP as straight from SQLite (the first query of each shape).
    for qs in &per_shape {
        check_same(ctx, souk.addr, &db, &qs[0])?;
    }
    ctx.rt.block_on(client::drive(&Load {
        duration: WARM_UP,
        ..clone_load(&mix_load)
    }));

    let http_shapes: Vec<ShapeFigures> = per_shape
        .iter()
        .map(|qs| http_sequential(ctx, souk.addr, qs))
        .collect();

    let point_id = market
        .listings
        .iter()
        .rev()
        .find(|l| l.status == "active")
        .map(|l| l.id.clone())
        .context("no active listing")?;
    let point_uri: Uri = format!("/api/catalog/{point_id}").parse()?;
    let point_load = Load {
        addr: souk.addr,
        clients,
        duration,
        request: walker(Arc::new(vec![point_uri]), clients),
        expect: StatusCode::OK,
    };
    let health_load = Load::get(souk.addr, "/healthz", clients, duration);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());

    let (mut s, mut r, mut h, mut p, mut costs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let before = cpu(&souk)?;
        let outcome = ctx.rt.block_on(client::drive(&mix_load));
        let after = cpu(&souk)?;
        costs.push((
            after.0.saturating_sub(before.0),
            after.1.saturating_sub(before.1),
            after.2.saturating_sub(before.2),
            outcome.ok,
        ));
        s.push(Figures::from(&outcome));
        r.push(Figures::from(&raw_concurrent(&db, &mix, threads, duration)));
        h.push(Figures::from(&ctx.rt.block_on(client::drive(&health_load))));
        p.push(Figures::from(&ctx.rt.block_on(client::drive(&point_load))));
        eprintln!(
            "  run {}/{runs}: search {:.0} q/s (p99 {}), raw SQL {:.0} q/s, healthz {:.0} req/s, \
             point get {:.0} req/s",
            i + 1,
            s[i].per_second,
            ms(s[i].p99),
            r[i].per_second,
            h[i].per_second,
            p[i].per_second,
        );
    }
    let peak = procfs::peak_rss(souk.pid);
    ctx.rt.block_on(souk.stop())?;
    drop(db);

    let mut body = format!(
        "{} listings ({} active), {} sellers, generated in {:.1} s from seed {:#x} \
         (`benches/load/catalog_data.rs`; `SOUK_BENCH_LISTINGS` scales it). Loaded as a rebuild \
         would, minus NATS: the projector's `apply_batch` into a bulk generation, {BATCH} \
         events per transaction, then `finish_bulk` (indexes): {} events in {:.1} s + {:.1} s \
         ({:.0} events/s); file {}. The in-memory search index over it (`index.rs`) took \
         {:.1} s to build in the harness (+{} RSS) and was ready {:.1} s after souk was \
         spawned.\n\n",
        market.listings.len(),
        market
            .listings
            .iter()
            .filter(|l| l.status == "active")
            .count(),
        market.sellers.len(),
        generated.as_secs_f64(),
        catalog_data::SEED,
        loaded.events,
        loaded.apply.as_secs_f64(),
        loaded.finish.as_secs_f64(),
        loaded.per_second(),
        mib(loaded.file_bytes),
        index_built.as_secs_f64(),
        mib(index_rss),
        souk_index_built.as_secs_f64(),
    );
    body += &format!(
        "Query mix: {MIX_LEN} queries over {} shapes (below), {clients} keep-alive clients for \
         {} s per run, {runs} runs; median (min–max) over runs. *raw SQL*: the same searches \
         through `query::search_json` (the page's JSON, as the catalog service answers it) in \
         the harness process, {threads} threads (one per core), no HTTP, no rpc. *healthz*: `GET /healthz` of the same souk. *point get*: `GET \
         /api/catalog/{{id}}` (HTTP + rpc + a primary-key read).\n\n",
        SHAPES.len(),
        duration.as_secs()
    );
    body += &throughput_table(&[
        ("souk `GET /api/catalog` (mix)", &s),
        ("raw SQL, same mix", &r),
        ("souk `GET /healthz`", &h),
        ("souk `GET /api/catalog/{id}`", &p),
    ]);
    let ratio = |a: &[Figures], b: &[Figures]| {
        let v: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(a, b)| a.per_second / b.per_second)
            .collect();
        spread(&v, |x| format!("{x:.2}"))
    };
    body += &format!(
        "\nThroughput ratios run by run: search / raw SQL {}, search / healthz {}, \
         search / point get {}.\n",
        ratio(&s, &r),
        ratio(&s, &h),
        ratio(&s, &p)
    );
    body += "\nSouk's processes during the search runs (CPU from `/proc/<pid>/stat`):\n\n";
    body += &cost_table(&costs, peak);
    body += &format!(
        "\nPer shape, one query at a time (raw: in-process `query::search_json`; HTTP: one \
         keep-alive client against the otherwise idle souk), {} s or {SHAPE_MAX} queries each. \
         *matches*: `total` of the shape's first query. Terms by share of listings containing \
         them: {}.\n\n",
        SHAPE_TIME.as_secs_f64(),
        term_note(&terms),
    );
    body += &shape_table(&per_shape, &raw_shapes, &http_shapes);

    let p99 = crate::report::median(&s.iter().map(|f| f.p99).collect::<Vec<_>>());
    let qps = crate::report::median(&s.iter().map(|f| f.per_second).collect::<Vec<_>>());
    Ok(Section {
        name: "catalog",
        title: "Catalog search over 1M listings".into(),
        body,
        checks: vec![
            Check {
                what: format!("catalog mix at {clients} clients, p99"),
                target: format!("< {}", ms(P99_TARGET)),
                measured: ms(p99),
                met: p99 < P99_TARGET,
            },
            Check {
                what: format!("catalog mix at {clients} clients, throughput"),
                target: format!("≥ {QPS_TARGET:.0} q/s"),
                measured: format!("{qps:.0} q/s"),
                met: qps >= QPS_TARGET,
            },
        ],
    })
}

/// A data dir removed at the end of the run, or kept for a look afterwards.
pub enum Kept {
    Temp(tempfile::TempDir),
    Path(std::path::PathBuf),
}

impl Kept {
    pub fn path(&self) -> &Path {
        match self {
            Kept::Temp(t) => t.path(),
            Kept::Path(p) => p,
        }
    }
}

fn clone_load(l: &Load) -> Load {
    Load {
        addr: l.addr,
        clients: l.clients,
        duration: l.duration,
        request: l.request.clone(),
        expect: l.expect,
    }
}

/// Client `i` walks `uris` from its own offset, so the clients spread over the whole mix.
fn walker(uris: Arc<Vec<Uri>>, clients: usize) -> client::MakeRequest {
    Arc::new(move |i, n| {
        let len = uris.len();
        let at = (i * len / clients.max(1) + n as usize) % len;
        Request::get(uris[at].clone())
            .body(Full::new(Bytes::new()))
            .expect("a GET with a parsed URI is valid")
    })
}

fn cpu(souk: &Souk) -> anyhow::Result<(Duration, Duration, Duration)> {
    Ok((
        procfs::cpu_time(souk.pid).context("souk's CPU time")?,
        procfs::cpu_time(souk.nats_pid).context("nats-server's CPU time")?,
        procfs::cpu_time(std::process::id()).context("the harness's CPU time")?,
    ))
}

fn uri(s: &Search) -> anyhow::Result<Uri> {
    let q = serde_urlencoded::to_string(s)?;
    Ok(format!("/api/catalog?{q}").parse()?)
}

fn limit(s: &Search) -> usize {
    Page {
        limit: s.limit,
        cursor: None,
    }
    .limit()
}

fn search(db: &Db, s: &Search) -> anyhow::Result<query::Results> {
    query::search(db, s, limit(s)).map_err(|e| anyhow::anyhow!("raw search {s:?}: {e}"))
}

/// Up to 16 queries per shape (6 for the cursor shapes, whose cursors are fetched here by
/// walking the pages before them).
fn instances(db: &Db, market: &Market, terms: &Terms) -> anyhow::Result<Vec<Vec<Query>>> {
    let mut rng = Rng::new(catalog_data::SEED ^ 0x51A9E5);
    let pick = |rng: &mut Rng, v: &[String]| v[rng.below(v.len())].clone();
    let price_range = |rng: &mut Rng| {
        let lo = [500, 1000, 2000, 5000, 10_000, 50_000][rng.below(6)];
        (lo, lo * (2 + rng.below(4) as i64))
    };
    let sellers = &market.sellers_by_size;
    let mut all = Vec::new();
    for (shape, _) in SHAPES.iter().enumerate() {
        let count = if matches!(shape, 13..=15) { 6 } else { 16 };
        let mut qs = Vec::with_capacity(count);
        for k in 0..count {
            let mut s = Search {
                limit: Some(20),
                ..Default::default()
            };
            let sort = |s: &mut Search, v: &str| s.sort = Some(v.into());
            let mut pages = 1;
            match shape {
                0 => sort(&mut s, "newest"),
                1 => {
                    let (lo, hi) = price_range(&mut rng);
                    (s.min_price, s.max_price) = (Some(lo), Some(hi));
                    sort(&mut s, "price_asc");
                }
                2 => {
                    s.listing_type = Some("rent".into());
                    sort(&mut s, "price_desc");
                }
                3 => {
                    // Half from the biggest shops, half from anyone.
                    let i = if k % 2 == 0 {
                        sellers[rng.below(20.min(sellers.len()))]
                    } else {
                        sellers[rng.below(sellers.len())]
                    };
                    s.seller_id = Some(market.sellers[i].id.clone());
                    sort(&mut s, "newest");
                }
                4 => s.q = Some(pick(&mut rng, &terms.common)),
                5 => {
                    s.q = Some(pick(&mut rng, &terms.common));
                    sort(&mut s, "price_asc");
                }
                6 => {
                    s.q = Some(pick(&mut rng, &terms.common));
                    sort(&mut s, "newest");
                }
                7 => s.q = Some(pick(&mut rng, &terms.medium)),
                8 => {
                    s.q = Some(pick(&mut rng, &terms.medium));
                    let (lo, hi) = price_range(&mut rng);
                    (s.min_price, s.max_price) = (Some(lo), Some(hi));
                    sort(&mut s, "price_desc");
                }
                9 => s.q = Some(pick(&mut rng, &terms.rare)),
                10 => {
                    s.q = Some(pick(&mut rng, &terms.rare));
                    s.listing_type = Some("rent".into());
                    sort(&mut s, "newest");
                }
                11 => {
                    s.q = Some(format!(
                        "{} {}",
                        pick(&mut rng, &terms.common),
                        pick(&mut rng, &terms.medium)
                    ))
                }
                12 => {
                    let w = pick(&mut rng, &terms.accented);
                    // As typed: with accents, capitalised, or plain ASCII.
                    s.q = Some(match k % 3 {
                        0 => w,
                        1 => w[..1].to_uppercase() + &w[1..],
                        _ => w
                            .replace(['é', 'è', 'ê'], "e")
                            .replace('ü', "u")
                            .replace('â', "a"),
                    });
                }
                13 => {
                    sort(&mut s, "newest");
                    pages = 2 + k % 4;
                }
                14 => {
                    s.q = Some(pick(&mut rng, &terms.common));
                    sort(&mut s, "price_asc");
                    pages = 2 + k % 2;
                }
                15 => {
                    s.q = Some(pick(&mut rng, &terms.common));
                    sort(&mut s, "relevance");
                    pages = 2 + k % 4;
                }
                16 => {
                    s.q = Some(pick(&mut rng, &terms.medium));
                    s.status = Some("sold".into());
                }
                17 => s.q = Some(["ca", "st", "po", "mo"][k % 4].into()),
                18 => {
                    s.q = Some(pick(&mut rng, &terms.common));
                    sort(&mut s, "newest");
                    s.limit = None;
                }
                _ => unreachable!("one arm per shape"),
            }
            // Walk to the page wanted; the cursor is what souk would have handed out.
            for _ in 1..pages {
                let r = search(db, &s)?;
                s.cursor = Some(
                    r.next_cursor
                        .context("a page before the last has a cursor")?,
                );
            }
            qs.push(Query {
                uri: uri(&s)?,
                search: s,
            });
        }
        all.push(qs);
    }
    Ok(all)
}

/// `MIX_LEN` queries drawn by shape weight (deterministic).
fn mix(per_shape: &[Vec<Query>]) -> Vec<Query> {
    let mut rng = Rng::new(catalog_data::SEED ^ 0x313);
    let total: u32 = SHAPES.iter().map(|s| s.weight).sum();
    (0..MIX_LEN)
        .map(|_| {
            let mut x = rng.below(total as usize) as u32;
            let shape = SHAPES
                .iter()
                .position(|s| {
                    if x < s.weight {
                        true
                    } else {
                        x -= s.weight;
                        false
                    }
                })
                .expect("x < total");
            let qs = &per_shape[shape];
            qs[rng.below(qs.len())].clone()
        })
        .collect()
}

/// One query through HTTP must give the same page as straight from SQLite. A query souk does
/// not answer in time (its rpc timeout) is reported, not fatal: that is a finding too.
fn check_same(ctx: &Ctx, addr: std::net::SocketAddr, db: &Db, q: &Query) -> anyhow::Result<()> {
    let raw = search(db, &q.search)?;
    let (status, body) = ctx.rt.block_on(client::get(addr, &q.uri.to_string()))?;
    if status == StatusCode::GATEWAY_TIMEOUT {
        eprintln!("  {}: souk answered 504 (too slow), not compared", q.uri);
        return Ok(());
    }
    anyhow::ensure!(
        status == StatusCode::OK,
        "{}: {status} {}",
        q.uri,
        String::from_utf8_lossy(&body)
    );
    let http: query::Results = serde_json::from_slice(&body)?;
    let ids = |r: &query::Results| r.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
    anyhow::ensure!(
        ids(&http) == ids(&raw) && http.total == raw.total,
        "{}: HTTP and raw SQL disagree",
        q.uri
    );
    Ok(())
}

struct ShapeFigures {
    queries: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    matches: u64,
}

fn shape_figures(mut lat: Vec<Duration>, matches: u64) -> ShapeFigures {
    lat.sort_unstable();
    let at = |q: f64| {
        let i = ((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        lat[i - 1]
    };
    ShapeFigures {
        queries: lat.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
        matches,
    }
}

fn raw_sequential(db: &Db, qs: &[Query]) -> anyhow::Result<ShapeFigures> {
    let started = Instant::now();
    let (mut lat, mut matches) = (Vec::new(), 0);
    // At least one query, however slow; then until the time or the count is up.
    while lat.len() < SHAPE_MAX && (lat.is_empty() || started.elapsed() < SHAPE_TIME) {
        let q = &qs[lat.len() % qs.len()];
        let t = Instant::now();
        let page = query::search_json(db, &q.search, limit(&q.search))
            .map_err(|e| anyhow::anyhow!("raw search {:?}: {e}", q.search))?;
        let took = t.elapsed();
        if lat.is_empty() {
            matches = serde_json::from_slice::<query::Results>(&page)?.total;
        }
        lat.push(took);
    }
    Ok(shape_figures(lat, matches))
}

fn http_sequential(ctx: &Ctx, addr: std::net::SocketAddr, qs: &[Query]) -> ShapeFigures {
    let uris = Arc::new(qs.iter().map(|q| q.uri.clone()).collect::<Vec<_>>());
    let outcome = ctx.rt.block_on(client::drive(&Load {
        addr,
        clients: 1,
        duration: SHAPE_TIME,
        request: walker(uris, 1),
        expect: StatusCode::OK,
    }));
    let mut lat: Vec<Duration> = outcome
        .latencies_us
        .iter()
        .map(|&us| Duration::from_micros(u64::from(us)))
        .collect();
    if lat.is_empty() {
        lat.push(Duration::ZERO);
    }
    shape_figures(lat, 0)
}

/// The mix straight on SQLite: `threads` closed loops until `duration` is over.
fn raw_concurrent(db: &Db, mix: &[Query], threads: usize, duration: Duration) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let results: Vec<(Vec<u32>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let (mut lat, mut errors) = (Vec::with_capacity(1 << 14), 0u64);
                    let mut n = t * mix.len() / threads;
                    while Instant::now() < deadline {
                        let q = &mix[n % mix.len()];
                        n += 1;
                        let at = Instant::now();
                        match query::search_json(db, &q.search, limit(&q.search)) {
                            Ok(_) => {
                                lat.push(at.elapsed().as_micros().min(u32::MAX as u128) as u32)
                            }
                            Err(_) => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a raw search thread"))
            .collect()
    });
    let mut out = Outcome {
        ok: 0,
        errors: 0,
        elapsed: started.elapsed(),
        latencies_us: Vec::new(),
    };
    for (lat, errors) in results {
        out.ok += lat.len() as u64;
        out.errors += errors;
        out.latencies_us.extend(lat);
    }
    out.latencies_us.sort_unstable();
    out
}

fn throughput_table(rows: &[(&str, &[Figures])]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|(name, f)| figures_row(name, f)).collect();
    table(
        &["what", "queries/s", "p50", "p90", "p99", "max", "errors"],
        &rows,
    )
}

fn cost_table(costs: &[(Duration, Duration, Duration, u64)], peak: Option<u64>) -> String {
    let row = |name: &str, get: fn(&(Duration, Duration, Duration, u64)) -> Duration| {
        let per_q: Vec<f64> = costs
            .iter()
            .map(|c| get(c).as_secs_f64() * 1e6 / c.3.max(1) as f64)
            .collect();
        let per_run: Vec<f64> = costs.iter().map(|c| get(c).as_secs_f64()).collect();
        vec![
            name.to_string(),
            spread(&per_run, |v| format!("{v:.2} s")),
            spread(&per_q, |v| format!("{v:.0} µs")),
        ]
    };
    let mut s = table(
        &["process", "CPU per run", "CPU per query"],
        &[
            row("souk", |c| c.0),
            row("nats-server (the rpc hop)", |c| c.1),
            row("harness (load generator)", |c| c.2),
        ],
    );
    s += &format!(
        "\nsouk peak RSS (VmHWM): {}.\n",
        peak.map_or("?".into(), mib)
    );
    s
}

fn term_note(terms: &Terms) -> String {
    let show = |ws: &[String]| {
        ws.iter()
            .take(4)
            .map(|w| {
                format!(
                    "`{w}` {:.3} %",
                    terms.share.get(w).copied().unwrap_or(0.0) * 100.0
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "common {}; medium {}; rare {}",
        show(&terms.common),
        show(&terms.medium),
        show(&terms.rare)
    )
}

fn shape_table(per_shape: &[Vec<Query>], raw: &[ShapeFigures], http: &[ShapeFigures]) -> String {
    let rows: Vec<Vec<String>> = SHAPES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            vec![
                s.name.to_string(),
                format!("{} %", s.weight),
                raw[i].matches.to_string(),
                ms(raw[i].p50),
                ms(raw[i].p99),
                ms(raw[i].max),
                ms(http[i].p50),
                ms(http[i].p99),
                format!(
                    "{:.2}",
                    http[i].p50.as_secs_f64() / raw[i].p50.as_secs_f64().max(1e-9)
                ),
                format!("{}/{}", raw[i].queries, per_shape[i].len()),
            ]
        })
        .collect();
    table(
        &[
            "shape",
            "of mix",
            "matches",
            "raw p50",
            "raw p99",
            "raw max",
            "HTTP p50",
            "HTTP p99",
            "HTTP/raw p50",
            "queries/variants",
        ],
        &rows,
    )
}
