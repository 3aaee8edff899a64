//! The load harness (issue 7): runs the release `souk` in a temp data dir on port 0, drives it
//! over real HTTP on 127.0.0.1, prints Markdown tables and updates `BENCHMARKS.md`.
//!
//! ```sh
//! cargo bench --bench load -- <scenario> [--runs N] [--clients C] [--duration S] [--no-write]
//! ```
//!
//! Which `souk` it runs: the one Cargo builds for this bench (`CARGO_BIN_EXE_souk`, i.e.
//! `<target>/release/souk` with the release settings), so the harness never measures a stale
//! binary; `SOUK_BENCH_BIN=/path/to/souk` measures another build instead.
//!
//! The modules live in `benches/load/` (a bench's crate root looks for them beside itself,
//! hence the `#[path]`s). Adding a scenario: one module under `benches/load/` with `pub fn run(&Ctx) -> Result<Section>`
//! and one row in [`SCENARIOS`]. Starting Souk (`souk`), driving HTTP load (`client`), reading
//! `/proc` (`procfs`) and the report (`report`) are shared.

#[path = "load/args.rs"]
mod args;
#[path = "load/baseline.rs"]
mod baseline;
#[path = "load/client.rs"]
mod client;
#[path = "load/clock.rs"]
mod clock;
#[path = "load/events.rs"]
mod events;
#[path = "load/natsd.rs"]
mod natsd;
#[path = "load/procfs.rs"]
mod procfs;
#[path = "load/report.rs"]
mod report;
#[path = "load/souk.rs"]
mod souk;

#[path = "load/api.rs"]
mod api;
#[path = "load/freshness.rs"]
mod freshness;
#[path = "load/healthz.rs"]
mod healthz;
#[path = "load/idle.rs"]
mod idle;
#[path = "load/latency.rs"]
mod latency;
#[path = "load/listings.rs"]
mod listings;
#[path = "load/outbox.rs"]
mod outbox;
#[path = "load/projector.rs"]
mod projector;
#[path = "load/size.rs"]
mod size;
#[path = "load/start.rs"]
mod start;
#[path = "load/sync.rs"]
mod sync;

// Issue 4's catalog scenarios, and the seeded market they share.
#[path = "load/catalog.rs"]
mod catalog;
#[path = "load/catalog_data.rs"]
mod catalog_data;
#[path = "load/rebuild.rs"]
mod rebuild;

use report::Section;
use std::path::PathBuf;
use std::process::ExitCode;

/// The same allocator as `souk` (see `src/main.rs`), so the in-process baselines (raw SQLite,
/// `apply_batch` alone) are not handicapped by glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Everything a scenario gets.
pub struct Ctx {
    pub opts: args::Opts,
    pub souk_bin: PathBuf,
    /// The load generator's runtime: multi-threaded with the default worker count, like
    /// Souk's own, so client and server compete for the cores the same way in every scenario.
    pub rt: tokio::runtime::Runtime,
}

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(&Ctx) -> anyhow::Result<Section>,
}

/// Every scenario, in the order `all` runs them (cheap ones first).
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "size",
        about: "size of the release binary",
        run: size::run,
    },
    Scenario {
        name: "start",
        about: "cold and warm start to the first /readyz 200 (--runs, default 5)",
        run: start::run,
    },
    Scenario {
        name: "idle",
        about: "idle RSS of souk + nats-server after start (--runs, default 3)",
        run: idle::run,
    },
    Scenario {
        name: "healthz",
        about: "GET /healthz throughput vs a bare axum baseline (--runs 3, --clients 64, --duration 10)",
        run: healthz::run,
    },
    Scenario {
        name: "listings",
        about: "POST /api/listings vs GET /healthz on the same souk (--runs 3, --clients 64, --duration 10)",
        run: listings::run,
    },
    Scenario {
        name: "api",
        about: "POST /api/users, GET /api/users/{id} and the /public BFF endpoints, each vs GET /healthz (--runs 3, --clients 64, --duration 10)",
        run: api::run,
    },
    Scenario {
        name: "freshness",
        about: "POST /api/listings 201 -> catalog GET 200 at 500 writes/s (--runs 3, --duration 10)",
        run: freshness::run,
    },
    Scenario {
        name: "outbox",
        about: "outbox writes + relay end to end vs raw JetStream publish (--runs 3, --clients 64 writers)",
        run: outbox::run,
    },
    Scenario {
        name: "sync",
        about: "raw JetStream publish at sync_interval 2 min, 10 s and always (--runs 3)",
        run: sync::run,
    },
    Scenario {
        name: "latency",
        about: "publish-to-handler latency, durable consumer vs core NATS, 1,000/s (--runs 3, --duration 10)",
        run: latency::run,
    },
    Scenario {
        name: "projector",
        about: "consumer into SQLite over 200k events: a minimal idempotent handler, the catalog projector, apply_batch alone (--runs 3)",
        run: projector::run,
    },
    // Issue 4: minutes each (a 1M-listing catalog is generated and loaded first).
    Scenario {
        name: "catalog",
        about: "GET /api/catalog over 1M listings, query mix vs raw SQL (--runs 3, --clients 64, --duration 10)",
        run: catalog::run,
    },
    Scenario {
        name: "rebuild",
        about: "catalog rebuild from 1M events in the streams vs apply_batch alone (--runs 3)",
        run: rebuild::run,
    },
];

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load: {e}\n\n{}", args::usage(SCENARIOS));
            return ExitCode::from(2);
        }
    };
    // A missed target is a finding, not a harness failure: the tables say which.
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: args::Opts) -> anyhow::Result<()> {
    let selected: Vec<&Scenario> = if opts.scenario == "all" {
        SCENARIOS.iter().collect()
    } else {
        SCENARIOS
            .iter()
            .filter(|s| s.name == opts.scenario)
            .collect()
    };
    anyhow::ensure!(!selected.is_empty(), "unknown scenario `{}`", opts.scenario);
    let ctx = Ctx {
        souk_bin: souk::binary()?,
        rt: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        opts,
    };
    let stamp = report::Stamp::now();
    eprintln!("load: souk = {}", ctx.souk_bin.display());
    eprintln!("load: {}", stamp.line());

    let mut sections = Vec::new();
    for scenario in selected {
        eprintln!("load: running `{}`: {}", scenario.name, scenario.about);
        let section = (scenario.run)(&ctx)?;
        println!("{}", section.markdown(&stamp));
        sections.push(section);
    }

    if sections.len() > 1 {
        let checks: Vec<&report::Check> = sections.iter().flat_map(|s| &s.checks).collect();
        println!("## Targets\n\n{}", report::checks_table(&checks));
    }
    if ctx.opts.write {
        let path = report::benchmarks_md();
        report::update_file(&path, &sections, &stamp)?;
        eprintln!("load: updated {}", path.display());
    }
    Ok(())
}
