//! `sync`: what JetStream's `sync_interval` costs in publish throughput. Three nats-servers,
//! identical but for `sync_interval` (the server's default of 2 min, Souk's default, `always`),
//! each taking the same raw async publishes ([`events::publish_all`]) in the same run; the
//! modes take turns within each run so drift on a shared machine hits all three alike.

use crate::events::{self, publish_all};
use crate::natsd::{Natsd, Sync};
use crate::report::{Section, median, spread, table};
use crate::{Ctx, procfs};

/// Messages per measurement.
const MESSAGES: usize = 40_000;
const WARM_UP: usize = 2_000;
const STREAM: &str = "SOUK_LISTINGS";

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let modes = [Sync::ServerDefault, Sync::souk_default(), Sync::Always];
    let mut servers = Vec::new();
    for sync in modes {
        let natsd = Natsd::start(sync)?;
        let bus = ctx.rt.block_on(natsd.bus())?;
        servers.push((sync, natsd, bus));
    }
    let sellers = vec![souk::ids::new("usr")];
    // Per mode: msg/s and nats-server CPU µs per message, one entry per run.
    let mut rates = vec![Vec::new(); modes.len()];
    let mut cpu = vec![Vec::new(); modes.len()];
    for (_, _, bus) in &servers {
        let warm = events::listing_payloads(&bus.names, WARM_UP, &sellers);
        ctx.rt
            .block_on(publish_all(&bus.jetstream, warm, Some(STREAM)));
    }
    for i in 0..runs {
        for (m, (sync, natsd, bus)) in servers.iter().enumerate() {
            let messages = events::listing_payloads(&bus.names, MESSAGES, &sellers);
            ctx.rt.block_on(events::purge(&bus.jetstream, STREAM))?;
            let before = procfs::cpu_time(natsd.pid).unwrap_or_default();
            let p = ctx
                .rt
                .block_on(publish_all(&bus.jetstream, messages, Some(STREAM)));
            let used = procfs::cpu_time(natsd.pid)
                .unwrap_or_default()
                .saturating_sub(before);
            anyhow::ensure!(p.errors == 0, "{} publishes failed", p.errors);
            eprintln!(
                "  run {}/{runs}: sync_interval {}: {:.0} msg/s",
                i + 1,
                sync.label(),
                p.per_second()
            );
            rates[m].push(p.per_second());
            cpu[m].push(used.as_secs_f64() * 1e6 / MESSAGES as f64);
        }
    }
    drop(servers);

    let rows: Vec<Vec<String>> = modes
        .iter()
        .enumerate()
        .map(|(m, sync)| {
            // Ratios run by run, against the server-default measurement of the same run.
            let ratio: Vec<f64> = rates[m].iter().zip(&rates[0]).map(|(a, b)| a / b).collect();
            let name = match sync {
                Sync::ServerDefault => "not set: 2 min (nats-server's default)".to_string(),
                Sync::Every(_) => format!("{} (Souk's default)", sync.label()),
                Sync::Always => sync.label(),
            };
            vec![
                name,
                spread(&rates[m], |v| format!("{v:.0}")),
                spread(&ratio, |v| format!("{v:.2}")),
                spread(&cpu[m], |v| format!("{v:.1} µs")),
            ]
        })
        .collect();
    let always = median(&rates[2]) / median(&rates[0]);
    let body = format!(
        "{MESSAGES} `listing.created` envelopes per measurement, {runs} runs, modes in turn; \
         median (min–max). Each server: JetStream file store on the build's disk, Souk's \
         streams; publishes as the outbox relay sends them (`Nats-Msg-Id`, expected stream), \
         acks awaited by a second task (5,000 in flight). `always` runs at {:.0} % of the \
         default's rate here, i.e. {:.0}x slower.\n\n{}",
        always * 100.0,
        1.0 / always,
        table(
            &[
                "`sync_interval`",
                "msg/s",
                "vs default",
                "nats-server CPU per message"
            ],
            &rows
        )
    );
    Ok(Section {
        name: "sync",
        title: "JetStream `sync_interval`: publish throughput".into(),
        body,
        checks: Vec::new(),
    })
}
