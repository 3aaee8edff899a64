//! `start`: time from spawning `souk serve` to the first `/readyz` 200, cold (empty data dir,
//! so the embedded nats-server is extracted) and warm (a data dir that has run before).
//! Targets: cold median < 500 ms, warm median < 250 ms.
//!
//! Where the time goes comes from Souk's own log timestamps: each start-up step logs one line
//! (see `src/app.rs`), placed on the harness's clock relative to the spawn.

use crate::Ctx;
use crate::report::{Check, Section, median, min_max, ms, table};
use crate::souk::Souk;
use std::time::Duration;

const COLD_TARGET: Duration = Duration::from_millis(500);
const WARM_TARGET: Duration = Duration::from_millis(250);

/// Start-up steps as Souk logs them (`message` → label). A step missing from a run (e.g. the
/// extraction, on a warm start) is left blank. New steps in Souk's log belong here.
const STEPS: &[(&str, &str)] = &[
    ("using data dir", "data dir created and locked"),
    (
        "listening on http://",
        "HTTP listening (`/healthz` answers)",
    ),
    ("extracted the bundled nats-server", "nats-server extracted"),
    (
        "using nats-server",
        "nats-server resolved (checksum verified)",
    ),
    ("nats-server ready", "nats-server ready (its `/healthz`)"),
    ("connected to the bundled nats-server", "bus connected"),
    ("souk is ready", "souk is ready"),
];

/// One start-up: the harness-observed total and each step's offset from the spawn.
struct Run {
    ready: Duration,
    first_line: Option<Duration>,
    steps: Vec<Option<Duration>>,
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let n = ctx.opts.runs_or(5);
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut kept = None;
    for i in 0..n {
        let dir = tempfile::Builder::new()
            .prefix("souk-bench-start-")
            .tempdir()?;
        cold.push(once(ctx, dir.path())?);
        eprintln!("  cold {}/{n}: {}", i + 1, ms(cold[i].ready));
        kept = Some(dir);
    }
    let dir = kept.expect("at least one run");
    for i in 0..n {
        warm.push(once(ctx, dir.path())?);
        eprintln!("  warm {}/{n}: {}", i + 1, ms(warm[i].ready));
    }

    let summary = |label: &str, runs: &[Run], target: Duration| {
        let t: Vec<Duration> = runs.iter().map(|r| r.ready).collect();
        let (lo, hi) = min_max(&t);
        vec![
            label.to_string(),
            n.to_string(),
            ms(median(&t)),
            ms(lo),
            ms(hi),
            format!("< {} ms", target.as_millis()),
        ]
    };
    let mut body = table(
        &[
            "start to first `/readyz` 200",
            "runs",
            "median",
            "min",
            "max",
            "target",
        ],
        &[
            summary("cold (empty data dir)", &cold, COLD_TARGET),
            summary("warm (data dir reused)", &warm, WARM_TARGET),
        ],
    );
    body += "\nWhere the time goes, in the median cold and warm runs (offset from the spawn, from \
             Souk's own log timestamps; Δ = since the step above):\n\n";
    body += &steps_table(&cold, &warm);

    let cold_median = median(&cold.iter().map(|r| r.ready).collect::<Vec<_>>());
    let warm_median = median(&warm.iter().map(|r| r.ready).collect::<Vec<_>>());
    Ok(Section {
        name: "start",
        title: "Start-up".into(),
        body,
        checks: vec![
            Check {
                what: "cold start, median".into(),
                target: "< 500 ms".into(),
                measured: ms(cold_median),
                met: cold_median < COLD_TARGET,
            },
            Check {
                what: "warm start, median".into(),
                target: "< 250 ms".into(),
                measured: ms(warm_median),
                met: warm_median < WARM_TARGET,
            },
        ],
    })
}

fn once(ctx: &Ctx, dir: &std::path::Path) -> anyhow::Result<Run> {
    ctx.rt.block_on(async {
        let souk = Souk::start(&ctx.souk_bin, dir).await?;
        let offset = |at: Option<std::time::SystemTime>| {
            at.and_then(|t| t.duration_since(souk.spawned_at).ok())
        };
        let log = souk.log();
        let first_line = log.first().and_then(|l| offset(l.at));
        let steps = STEPS
            .iter()
            .map(|(msg, _)| {
                log.iter()
                    .find(|l| l.text.contains(&format!(": {msg}")))
                    .and_then(|l| offset(l.at))
            })
            .collect();
        let run = Run {
            ready: souk.ready_after,
            first_line,
            steps,
        };
        souk.stop().await?;
        Ok(run)
    })
}

fn steps_table(cold: &[Run], warm: &[Run]) -> String {
    // Rows: the process's first log line, each step, then the harness's own observation.
    let column = |runs: &[Run]| -> Vec<Option<Duration>> {
        let run = median_run(runs);
        let mut col = vec![run.first_line];
        col.extend(run.steps.iter().copied());
        col.push(Some(run.ready));
        col
    };
    let (c, w) = (column(cold), column(warm));
    let labels = std::iter::once("process up (first log line)")
        .chain(STEPS.iter().map(|(_, label)| *label))
        .chain(std::iter::once("harness sees `/readyz` 200"));
    let cell = |col: &[Option<Duration>], i: usize| -> [String; 2] {
        let Some(at) = col[i] else {
            return ["–".into(), "".into()];
        };
        let prev = col[..i].iter().rev().flatten().next().copied();
        let delta = prev.map_or(at, |p| at.saturating_sub(p));
        [ms(at), format!("+{}", ms(delta))]
    };
    let rows: Vec<Vec<String>> = labels
        .enumerate()
        .map(|(i, label)| {
            let [ca, cd] = cell(&c, i);
            let [wa, wd] = cell(&w, i);
            vec![label.to_string(), ca, cd, wa, wd]
        })
        .collect();
    table(&["step", "cold at", "cold Δ", "warm at", "warm Δ"], &rows)
}

/// The run whose total is the median: its steps add up, unlike per-step medians across runs.
fn median_run(runs: &[Run]) -> &Run {
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by_key(|r| r.ready);
    sorted[(sorted.len() - 1) / 2]
}
