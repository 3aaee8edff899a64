//! The harness's command line: `<scenario> [--runs N] [--clients C] [--duration S] [--no-write]`.
//!
//! Every number is bounded, so a typo cannot start an hour-long or unbounded run.

use crate::Scenario;
use std::time::Duration;

pub struct Opts {
    pub scenario: String,
    /// `None`: each scenario's own default (5 for start-up, 3 for the others).
    pub runs: Option<usize>,
    pub clients: usize,
    pub duration: Duration,
    /// Whether to update `BENCHMARKS.md` (off with `--no-write`, for quick experiments).
    pub write: bool,
}

impl Opts {
    pub fn runs_or(&self, default: usize) -> usize {
        self.runs.unwrap_or(default)
    }
}

pub fn usage(scenarios: &[Scenario]) -> String {
    let mut s = String::from(
        "usage: cargo bench --bench load -- <scenario> [--runs N] [--clients C] [--duration S] [--no-write]\n\nscenarios:\n",
    );
    for sc in scenarios {
        s += &format!("  {:<10} {}\n", sc.name, sc.about);
    }
    s += "  all        every scenario above\n";
    s
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
    let mut opts = Opts {
        scenario: String::new(),
        runs: None,
        clients: 64,
        duration: Duration::from_secs(10),
        write: true,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str, max: u64| -> Result<u64, String> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{name} takes a whole number from 1 to {max}, not `{v}`"
                )),
            }
        };
        match arg.as_str() {
            // `cargo bench` passes `--bench` to every bench binary; it means nothing here.
            "--bench" => {}
            "--runs" => opts.runs = Some(value("--runs", 100)? as usize),
            "--clients" => opts.clients = value("--clients", 4096)? as usize,
            "--duration" => opts.duration = Duration::from_secs(value("--duration", 600)?),
            "--no-write" => opts.write = false,
            "-h" | "--help" => return Err("help".into()),
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s if opts.scenario.is_empty() => opts.scenario = s.to_string(),
            s => {
                return Err(format!(
                    "one scenario at a time (got `{}` and `{s}`)",
                    opts.scenario
                ));
            }
        }
    }
    if opts.scenario.is_empty() {
        return Err("name a scenario".into());
    }
    Ok(opts)
}
