//! `listings`: `POST /api/listings` through the release `souk` (gateway → rpc to the listings
//! service → the users service asked for the seller → redb group commit with the outbox → 201)
//! at `--clients` connections for `--duration`, beside `GET /healthz` on the same Souk in the
//! same run: the gateway's floor, so "POST / healthz" is what the write path adds.
//!
//! One seller is created first. Runs alternate POST and GET, as in `healthz`.

use crate::client::{self, Load};
use crate::healthz::{Figures, throughput_table};
use crate::report::{Check, Section, median, spread, table};
use crate::souk::Souk;
use crate::{Ctx, events, procfs};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Request, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const WARM_UP: Duration = Duration::from_secs(1);

/// Creates one seller through the API; returns its id.
pub async fn create_seller(addr: SocketAddr) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let resp = http
        .post(format!("http://{addr}/api/users"))
        .json(&serde_json::json!({"name": "Bench Seller", "email": "seller@example.com"}))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 201, "POST /api/users: {}", resp.status());
    let user: serde_json::Value = resp.json().await?;
    Ok(user["id"].as_str().unwrap_or_default().to_string())
}

/// The JSON body of a `POST /api/listings` for the `n`-th listing of `seller`.
pub fn create_body(n: u64, seller: &str) -> Vec<u8> {
    let l = events::listing(n, seller);
    serde_json::to_vec(&serde_json::json!({
        "seller_id": l.seller_id,
        "title": l.title,
        "description": l.description,
        "listing_type": l.listing_type,
        "price": l.price,
        "currency": l.currency,
        "quantity": l.quantity,
    }))
    .expect("JSON")
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let (clients, duration) = (ctx.opts.clients, ctx.opts.duration);
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-listings-")
        .tempdir()?;
    let souk = ctx.rt.block_on(Souk::start(&ctx.souk_bin, dir.path()))?;
    let seller = ctx.rt.block_on(create_seller(souk.addr))?;
    let post = |duration| Load {
        addr: souk.addr,
        clients,
        duration,
        request: Arc::new({
            let seller = seller.clone();
            move |client, n| {
                Request::post("/api/listings")
                    .header(CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(create_body(
                        (client as u64) << 32 | n,
                        &seller,
                    ))))
                    .expect("a valid request")
            }
        }),
        expect: StatusCode::CREATED,
    };
    let get = |duration| Load::get(souk.addr, "/healthz", clients, duration);
    ctx.rt.block_on(client::drive(&post(WARM_UP)));
    ctx.rt.block_on(client::drive(&get(WARM_UP)));

    let (mut p, mut g, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    let cpu_now = || {
        [souk.pid, souk.nats_pid, std::process::id()]
            .map(|pid| procfs::cpu_time(pid).unwrap_or_default())
    };
    for i in 0..runs {
        let before = cpu_now();
        let outcome = ctx.rt.block_on(client::drive(&post(duration)));
        let after = cpu_now();
        let per_req = |k: usize| {
            after[k].saturating_sub(before[k]).as_secs_f64() * 1e6 / outcome.ok.max(1) as f64
        };
        cpu.push([per_req(0), per_req(1), per_req(2)]);
        p.push(Figures::from(&outcome));
        g.push(Figures::from(
            &ctx.rt.block_on(client::drive(&get(duration))),
        ));
        eprintln!(
            "  run {}/{runs}: POST /api/listings {:.0} req/s ({} errors), GET /healthz {:.0} req/s",
            i + 1,
            p[i].per_second,
            p[i].errors,
            g[i].per_second
        );
    }
    ctx.rt.block_on(souk.stop())?;

    let cpu_rows: Vec<Vec<String>> = ["souk", "nats-server", "harness (load generator)"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let v: Vec<f64> = cpu.iter().map(|c| c[k]).collect();
            vec![name.to_string(), spread(&v, |x| format!("{x:.0} µs"))]
        })
        .collect();
    let body = format!(
        "{clients} concurrent keep-alive connections for {} s per run, {runs} runs alternating \
         `POST /api/listings` (a ~500 B listing for one seller, expecting 201) and `GET /healthz` \
         on the same Souk; median (min–max) over runs.\n\n{}\nCPU per `POST` (utime + stime \
         during the POST runs, divided by the listings created):\n\n{}",
        duration.as_secs(),
        throughput_table(
            [
                "`POST /api/listings`",
                "`GET /healthz` (same run)",
                "**POST / healthz**"
            ],
            &p,
            &g
        ),
        table(&["process", "CPU per request"], &cpu_rows)
    );
    let rate = median(&p.iter().map(|f| f.per_second).collect::<Vec<_>>());
    Ok(Section {
        name: "listings",
        title: "`POST /api/listings` throughput".into(),
        body,
        checks: vec![Check {
            what: format!("`POST /api/listings`, {clients} clients"),
            target: "≥ 3,000 req/s".into(),
            measured: format!("{rate:.0} req/s"),
            met: rate >= 3000.0,
        }],
    })
}
