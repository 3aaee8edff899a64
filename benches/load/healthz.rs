//! `healthz`: `GET /healthz` throughput and latency at `--clients` connections for
//! `--duration`, against Souk and against the in-process axum [`Baseline`] in the same run,
//! plus the CPU time and peak memory of Souk and its nats-server meanwhile.
//!
//! Runs alternate souk, baseline, souk, baseline… so drift on a shared machine (another
//! tenant, thermal limits) hits both alike, and each souk/baseline ratio pairs runs taken
//! seconds apart.

use crate::Ctx;
use crate::baseline::Baseline;
use crate::client::{self, Load, Outcome};
use crate::procfs;
use crate::report::{Section, mib, ms, spread, table};
use crate::souk::Souk;
use anyhow::Context;
use std::time::Duration;

/// Opens the connections and warms caches and allocators before anything is measured.
const WARM_UP: Duration = Duration::from_secs(1);

/// One run's headline figures (shared with the other HTTP scenarios).
#[derive(Clone, Copy)]
pub struct Figures {
    pub per_second: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub errors: u64,
}

impl From<&Outcome> for Figures {
    fn from(o: &Outcome) -> Figures {
        Figures {
            per_second: o.per_second(),
            p50: o.percentile(0.50),
            p90: o.percentile(0.90),
            p99: o.percentile(0.99),
            max: o.percentile(1.0),
            errors: o.errors,
        }
    }
}

/// CPU used during one souk run, and how many requests it served. The harness's own share
/// (the load generator) shows how the cores were split between client and server.
struct Cost {
    souk: Duration,
    nats: Duration,
    harness: Duration,
    requests: u64,
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let (clients, duration) = (ctx.opts.clients, ctx.opts.duration);
    let dir = tempfile::Builder::new()
        .prefix("souk-bench-healthz-")
        .tempdir()?;
    let souk = ctx.rt.block_on(Souk::start(&ctx.souk_bin, dir.path()))?;
    let base = Baseline::start()?;
    let souk_load = Load::get(souk.addr, "/healthz", clients, duration);
    let base_load = Load::get(base.addr, "/healthz", clients, duration);

    for addr in [souk.addr, base.addr] {
        ctx.rt.block_on(client::drive(&Load::get(
            addr, "/healthz", clients, WARM_UP,
        )));
    }
    let (mut s, mut b, mut costs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let cpu = || -> anyhow::Result<(Duration, Duration, Duration)> {
            Ok((
                procfs::cpu_time(souk.pid).context("souk's CPU time")?,
                procfs::cpu_time(souk.nats_pid).context("nats-server's CPU time")?,
                procfs::cpu_time(std::process::id()).context("the harness's CPU time")?,
            ))
        };
        let before = cpu()?;
        let outcome = ctx.rt.block_on(client::drive(&souk_load));
        let after = cpu()?;
        costs.push(Cost {
            souk: after.0.saturating_sub(before.0),
            nats: after.1.saturating_sub(before.1),
            harness: after.2.saturating_sub(before.2),
            requests: outcome.ok,
        });
        s.push(Figures::from(&outcome));
        b.push(Figures::from(&ctx.rt.block_on(client::drive(&base_load))));
        eprintln!(
            "  run {}/{runs}: souk {:.0} req/s, baseline {:.0} req/s",
            i + 1,
            s[i].per_second,
            b[i].per_second
        );
    }
    let peak = (procfs::peak_rss(souk.pid), procfs::peak_rss(souk.nats_pid));
    ctx.rt.block_on(souk.stop())?;
    drop(base);

    let mut body = format!(
        "{clients} concurrent keep-alive connections for {} s per run, {runs} runs alternating \
         souk and baseline; median (min–max) over runs. Baseline: a bare axum `/healthz` with \
         the same body on a tokio multi-thread runtime in the harness process.\n\n",
        duration.as_secs()
    );
    body += &throughput_table(
        ["souk", "baseline (bare axum)", "**souk / baseline**"],
        &s,
        &b,
    );
    body += "\nSouk's processes during the souk runs (CPU: utime + stime from `/proc/<pid>/stat`; \
             peak RSS: VmHWM, since start):\n\n";
    body += &cost_table(&costs, peak);
    Ok(Section {
        name: "healthz",
        title: "`GET /healthz` throughput".into(),
        body,
        checks: Vec::new(),
    })
}

/// Two sets of runs and their ratio, run by run: `labels` = [first, second, ratio row].
/// One table row: `name`, then the median (min–max) of rate, p50, p90, p99, max, and the errors.
pub fn figures_row(name: &str, f: &[Figures]) -> Vec<String> {
    let col = |get: fn(&Figures) -> Duration| spread(&f.iter().map(get).collect::<Vec<_>>(), ms);
    vec![
        name.to_string(),
        spread(&f.iter().map(|x| x.per_second).collect::<Vec<_>>(), |v| {
            format!("{v:.0}")
        }),
        col(|x| x.p50),
        col(|x| x.p90),
        col(|x| x.p99),
        col(|x| x.max),
        f.iter().map(|x| x.errors).sum::<u64>().to_string(),
    ]
}

pub fn throughput_table(labels: [&str; 3], s: &[Figures], b: &[Figures]) -> String {
    let row = figures_row;
    // Ratios are taken run by run (each run against the baseline run right after it).
    let ratio = |get: fn(&Figures) -> f64| {
        let r: Vec<f64> = s.iter().zip(b).map(|(s, b)| get(s) / get(b)).collect();
        spread(&r, |v| format!("{v:.2}"))
    };
    let rows = vec![
        row(labels[0], s),
        row(labels[1], b),
        vec![
            labels[2].into(),
            ratio(|x| x.per_second),
            ratio(|x| x.p50.as_secs_f64()),
            ratio(|x| x.p90.as_secs_f64()),
            ratio(|x| x.p99.as_secs_f64()),
            ratio(|x| x.max.as_secs_f64()),
            String::new(),
        ],
    ];
    table(
        &["server", "req/s", "p50", "p90", "p99", "max", "errors"],
        &rows,
    )
}

fn cost_table(costs: &[Cost], peak: (Option<u64>, Option<u64>)) -> String {
    let row = |name: &str, cpu: fn(&Cost) -> Duration, peak: Option<u64>| {
        let per_run: Vec<f64> = costs.iter().map(|c| cpu(c).as_secs_f64()).collect();
        // µs of CPU per request served: comparable across client counts and durations.
        let per_req: Vec<f64> = costs
            .iter()
            .map(|c| cpu(c).as_secs_f64() * 1e6 / c.requests.max(1) as f64)
            .collect();
        vec![
            name.to_string(),
            spread(&per_run, |v| format!("{v:.2} s")),
            spread(&per_req, |v| format!("{v:.1} µs")),
            peak.map_or("?".into(), mib),
        ]
    };
    table(
        &["process", "CPU per run", "CPU per request", "peak RSS"],
        &[
            row("souk", |c| c.souk, peak.0),
            row("nats-server", |c| c.nats, peak.1),
            row(
                "harness (load generator)",
                |c| c.harness,
                procfs::peak_rss(std::process::id()),
            ),
        ],
    )
}
