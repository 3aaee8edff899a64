//! The report: Markdown tables, target checks, and `BENCHMARKS.md`.
//!
//! `BENCHMARKS.md` keeps one block per scenario between `<!-- load:NAME -->` markers, each
//! stamped with its own date, machine and commit. A run replaces only the blocks of the
//! scenarios it ran, so `cargo bench --bench load -- healthz` does not erase the start-up figures.

use crate::{clock, procfs};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// When, where and what was measured, and how busy the machine was (shared machines are).
pub struct Stamp {
    pub date: String,
    pub machine: String,
    pub commit: String,
    pub load: String,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            date: clock::format_utc(SystemTime::now()),
            machine: procfs::machine(),
            commit: git_commit(),
            load: procfs::load_average(),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} · {} · commit {} · load average {} at start",
            self.date, self.machine, self.commit, self.load
        )
    }
}

/// `abc123def456`, with `-dirty` when tracked files (other than the report) have changes.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    let status = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!BENCHMARKS.md",
    ];
    let dirty = git(&status).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

/// A measured value against its target.
pub struct Check {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// What one scenario reports: its tables (Markdown) and its target checks.
pub struct Section {
    pub name: &'static str,
    pub title: String,
    pub body: String,
    pub checks: Vec<Check>,
}

impl Section {
    pub fn markdown(&self, stamp: &Stamp) -> String {
        let mut s = format!(
            "## {}\n\n_{}_\n\n{}\n",
            self.title,
            stamp.line(),
            self.body.trim()
        );
        if !self.checks.is_empty() {
            let checks: Vec<&Check> = self.checks.iter().collect();
            write!(s, "\n{}", checks_table(&checks)).unwrap();
        }
        s
    }
}

/// A Markdown table; the first column is left-aligned, the others (numbers) right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", header.join(" | "));
    for i in 0..header.len() {
        s += if i == 0 { " --- |" } else { " ---: |" };
    }
    s.push('\n');
    for row in rows {
        writeln!(s, "| {} |", row.join(" | ")).unwrap();
    }
    s
}

pub fn checks_table(checks: &[&Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            let verdict = if c.met { "met" } else { "**missed**" };
            vec![
                c.what.clone(),
                c.target.clone(),
                c.measured.clone(),
                verdict.into(),
            ]
        })
        .collect();
    table(&["target", "goal", "measured", ""], &rows)
}

/// `123.4 ms`, `850 µs`.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{} µs", d.as_micros())
    } else {
        format!("{ms:.1} ms")
    }
}

/// `12.3 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The median of a non-empty sample (the lower middle for even sizes, so it is a real run).
pub fn median<T: Copy + PartialOrd>(xs: &[T]) -> T {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in measurements"));
    v[(v.len() - 1) / 2]
}

/// Nearest-rank percentile of ascending µs samples, `q` in 0..=1 (1 is the maximum).
pub fn percentile(sorted_us: &[u32], q: f64) -> Duration {
    let n = sorted_us.len();
    if n == 0 {
        return Duration::ZERO;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Duration::from_micros(u64::from(sorted_us[rank - 1]))
}

pub fn min_max<T: Copy + PartialOrd>(xs: &[T]) -> (T, T) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in measurements"));
    (v[0], v[v.len() - 1])
}

/// `median (min–max)` of several runs, each shown with `show`.
pub fn spread<T: Copy + PartialOrd>(xs: &[T], show: impl Fn(T) -> String) -> String {
    if xs.len() == 1 {
        return show(xs[0]);
    }
    let (lo, hi) = min_max(xs);
    format!("{} ({}–{})", show(median(xs)), show(lo), show(hi))
}

/// `BENCHMARKS.md` at the root of the package.
pub fn benchmarks_md() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md")
}

const PREAMBLE: &str = "# Benchmarks

Measured by the load harness in `benches/load.rs` (issue 7) against the targets of issue 2:

```sh
cargo bench --bench load -- all                      # every scenario; rewrites every block below
cargo bench --bench load -- healthz --clients 16 --duration 5 --runs 5
cargo bench --bench load -- start --no-write         # print only
```

It runs the release `souk` that `cargo bench` builds (`<target>/release/souk`, release profile;
`SOUK_BENCH_BIN=/path/to/souk` measures another build) in a fresh temp data dir on
`127.0.0.1:0`, drives it over real HTTP/1.1 from the same machine, and replaces the blocks below
for the scenarios it ran; text outside the blocks is kept. Client and server share the
machine's cores, and the machines these figures come from are shared (see the load average in
each stamp): compare ratios within one run (souk / baseline) rather than absolute figures
across runs. \"MB\" in targets is 10^6 bytes; sizes are shown in MiB.
";

/// Writes `sections` into `path`, replacing each one's previous block or appending it.
pub fn update_file(path: &Path, sections: &[Section], stamp: &Stamp) -> anyhow::Result<()> {
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| PREAMBLE.to_string());
    for section in sections {
        let open = format!("<!-- load:{} -->", section.name);
        let close = format!("<!-- /load:{} -->", section.name);
        let block = format!("{open}\n{}\n{close}", section.markdown(stamp).trim_end());
        match (text.find(&open), text.find(&close)) {
            (Some(a), Some(b)) if a < b => text.replace_range(a..b + close.len(), &block),
            _ => {
                if !text.ends_with("\n\n") {
                    text.push('\n');
                }
                text += &block;
                text.push('\n');
            }
        }
    }
    std::fs::write(path, text)?;
    Ok(())
}
