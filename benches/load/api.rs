//! `api`: the other HTTP write and read paths, each beside `GET /healthz` on the same Souk in the
//! same run, so each figure is read as a ratio of the gateway's floor:
//!
//! - `POST /api/users` (gateway → rpc → users.redb group commit with the outbox → 201);
//! - the public BFF (the reference gateway's shapes): `POST /public/users`,
//!   `POST /public/listings`, `GET /public/listings` (a page of the catalog's listing view);
//! - `GET /api/users/{id}` (a point read over rpc).
//!
//! `GET /public/listings` is read three ways: the page of the seller every `POST` writes for
//! (its newest listings are the newest of all), the page of a seller with three listings older
//! than all of those (a statement that walks every listing to find a seller's shows here), and
//! the page of every seller.
//!
//! Each endpoint runs `--runs` times alternating with `GET /healthz`; medians and spreads.

use crate::client::{self, Load};
use crate::healthz::Figures;
use crate::report::{Section, ms, spread, table};
use crate::souk::Souk;
use crate::{Ctx, listings};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use std::sync::Arc;
use std::time::Duration;

const WARM_UP: Duration = Duration::from_secs(1);

/// A `POST path` whose body is made from a number unique across every run of the scenario
/// (each run restarts the clients' own counters, and emails must stay unique).
fn json_post(
    path: &'static str,
    body: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
) -> client::MakeRequest {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    Arc::new(move |_, _| {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Request::post(path)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body(n))))
            .expect("a valid request")
    })
}

/// A `GET path`.
fn get(path: &'static str) -> client::MakeRequest {
    Arc::new(move |_, _| {
        Request::get(path)
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    })
}

/// A seller with three listings, made before the run's: returns its id once the catalog
/// shows them.
async fn small_seller(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let http = client::reqwest_client().build()?;
    let base = format!("http://{addr}/public");
    let user: serde_json::Value = http
        .post(format!("{base}/users"))
        .json(&serde_json::json!({"name": "Small seller"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = user["user"]["id"].as_str().unwrap_or_default().to_string();
    for price in [100, 200, 300] {
        http.post(format!("{base}/listings"))
            .json(&serde_json::json!({"user_id": id, "listing_type": "sale", "price": price}))
            .send()
            .await?
            .error_for_status()?;
    }
    for _ in 0..100 {
        let page: serde_json::Value = http
            .get(format!("{base}/listings?user_id={id}"))
            .send()
            .await?
            .json()
            .await?;
        if page["listings"].as_array().is_some_and(|l| l.len() == 3) {
            return Ok(id);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the small seller's three listings did not reach the catalog in 5 s")
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let (clients, duration) = (ctx.opts.clients, ctx.opts.duration);
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-api-")
        .tempdir()?;
    let souk = ctx.rt.block_on(Souk::start(&ctx.souk_bin, dir.path()))?;
    let seller = ctx.rt.block_on(listings::create_seller(souk.addr))?;
    let user_path: &'static str = Box::leak(format!("/api/users/{seller}").into_boxed_str());
    let list_path: &'static str = Box::leak(
        format!("/public/listings?page_num=1&page_size=20&user_id={seller}").into_boxed_str(),
    );
    let small = ctx.rt.block_on(small_seller(souk.addr))?;
    let small_path: &'static str = Box::leak(
        format!("/public/listings?page_num=1&page_size=20&user_id={small}").into_boxed_str(),
    );
    let s = seller.clone();
    let endpoints: Vec<(&str, client::MakeRequest, StatusCode)> = vec![
        (
            "`POST /api/users`",
            json_post("/api/users", |n| {
                format!(r#"{{"name":"Bench user {n}","email":"u{n}@bench.example"}}"#).into_bytes()
            }),
            StatusCode::CREATED,
        ),
        ("`GET /api/users/{id}`", get(user_path), StatusCode::OK),
        (
            "`POST /public/users`",
            json_post("/public/users", |n| {
                format!(r#"{{"name":"Public user {n}"}}"#).into_bytes()
            }),
            StatusCode::OK,
        ),
        (
            "`POST /public/listings`",
            json_post("/public/listings", move |n| {
                format!(
                    r#"{{"user_id":"{s}","listing_type":"{}","price":{}}}"#,
                    if n % 2 == 0 { "sale" } else { "rent" },
                    100 + n % 10_000
                )
                .into_bytes()
            }),
            StatusCode::OK,
        ),
        (
            "`GET /public/listings` (page of 20)",
            get(list_path),
            StatusCode::OK,
        ),
        (
            "`GET /public/listings`, a seller with 3 older listings",
            get(small_path),
            StatusCode::OK,
        ),
        (
            "`GET /public/listings`, every seller",
            get("/public/listings?page_num=1&page_size=20"),
            StatusCode::OK,
        ),
    ];
    let load = |request: &client::MakeRequest, expect, duration| Load {
        addr: souk.addr,
        clients,
        duration,
        request: request.clone(),
        expect,
    };
    let healthz = |duration| Load::get(souk.addr, "/healthz", clients, duration);
    ctx.rt.block_on(client::drive(&healthz(WARM_UP)));

    let mut rows = Vec::new();
    let mut floor = Vec::new();
    for (name, request, expect) in &endpoints {
        ctx.rt
            .block_on(client::drive(&load(request, *expect, WARM_UP)));
        let (mut e, mut h) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            e.push(Figures::from(
                &ctx.rt
                    .block_on(client::drive(&load(request, *expect, duration))),
            ));
            h.push(Figures::from(
                &ctx.rt.block_on(client::drive(&healthz(duration))),
            ));
        }
        eprintln!(
            "  {name}: {:.0} req/s ({} errors); /healthz {:.0} req/s",
            crate::report::median(&e.iter().map(|f| f.per_second).collect::<Vec<_>>()),
            e.iter().map(|f| f.errors).sum::<u64>(),
            crate::report::median(&h.iter().map(|f| f.per_second).collect::<Vec<_>>())
        );
        let ratio: Vec<f64> = e
            .iter()
            .zip(&h)
            .map(|(e, h)| e.per_second / h.per_second)
            .collect();
        let col =
            |get: fn(&Figures) -> Duration| spread(&e.iter().map(get).collect::<Vec<_>>(), ms);
        rows.push(vec![
            name.to_string(),
            spread(&e.iter().map(|x| x.per_second).collect::<Vec<_>>(), |v| {
                format!("{v:.0}")
            }),
            col(|x| x.p50),
            col(|x| x.p99),
            e.iter().map(|x| x.errors).sum::<u64>().to_string(),
            spread(&ratio, |v| format!("{v:.2}")),
        ]);
        floor.extend(h);
    }
    ctx.rt.block_on(souk.stop())?;
    rows.push(vec![
        "`GET /healthz` (all runs above)".into(),
        spread(
            &floor.iter().map(|x| x.per_second).collect::<Vec<_>>(),
            |v| format!("{v:.0}"),
        ),
        spread(&floor.iter().map(|x| x.p50).collect::<Vec<_>>(), ms),
        spread(&floor.iter().map(|x| x.p99).collect::<Vec<_>>(), ms),
        floor.iter().map(|x| x.errors).sum::<u64>().to_string(),
        "1.00".into(),
    ]);
    let body = format!(
        "{clients} concurrent keep-alive connections (admin API token on every request) for {} s \
         per run, {runs} runs per endpoint, each followed by a `GET /healthz` run on the same \
         Souk; median (min–max) over runs; the ratio is taken run by run against the `/healthz` \
         run right after.\n\n{}",
        duration.as_secs(),
        table(
            &[
                "endpoint",
                "req/s",
                "p50",
                "p99",
                "errors",
                "req/s vs `/healthz`"
            ],
            &rows
        )
    );
    Ok(Section {
        name: "api",
        title: "Users and public BFF endpoints".into(),
        body,
        checks: Vec::new(),
    })
}
