//! `idle`: resident memory of Souk and its nats-server together, a few seconds after ready,
//! with no traffic. Target < 60 MB. Each run is a fresh Souk in an empty data dir.

use crate::Ctx;
use crate::procfs;
use crate::report::{Check, Section, mib, spread, table};
use crate::souk::Souk;
use anyhow::Context;
use std::time::Duration;

const TARGET_BYTES: u64 = 60_000_000;
/// Long enough for start-up allocations to settle and a couple of nats-server health checks
/// (every 1 s) to have happened; short enough to keep the scenario quick.
const SETTLE: Duration = Duration::from_secs(3);

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let n = ctx.opts.runs_or(3);
    let (mut souk_rss, mut nats_rss, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let dir = tempfile::Builder::new()
            .prefix("souk-bench-idle-")
            .tempdir()?;
        let (s, nats) = ctx.rt.block_on(async {
            let souk = Souk::start(&ctx.souk_bin, dir.path()).await?;
            tokio::time::sleep(SETTLE).await;
            let s = procfs::rss(souk.pid).context("reading souk's VmRSS")?;
            let nats = procfs::rss(souk.nats_pid).context("reading nats-server's VmRSS")?;
            souk.stop().await?;
            anyhow::Ok((s, nats))
        })?;
        eprintln!(
            "  run {}/{n}: souk {} + nats-server {}",
            i + 1,
            mib(s),
            mib(nats)
        );
        souk_rss.push(s);
        nats_rss.push(nats);
        total.push(s + nats);
    }
    let rows = vec![
        vec!["souk".into(), spread(&souk_rss, mib)],
        vec!["nats-server".into(), spread(&nats_rss, mib)],
        vec!["**together**".into(), spread(&total, mib)],
    ];
    let body = format!(
        "{}\nVmRSS {} s after the first `/readyz` 200, median (min–max) of {n} runs.\n",
        table(&["process", "idle RSS"], &rows),
        SETTLE.as_secs()
    );
    let median = crate::report::median(&total);
    Ok(Section {
        name: "idle",
        title: "Idle memory".into(),
        body,
        checks: vec![Check {
            what: "idle RSS, souk + nats-server".into(),
            target: "< 60 MB".into(),
            measured: format!("{:.1} MB", median as f64 / 1e6),
            met: median < TARGET_BYTES,
        }],
    })
}
