//! One `souk serve` process under test: spawn it in a data dir on `127.0.0.1:0`, learn its
//! address from its log, wait for `/readyz`, find its nats-server child, stop it.
//!
//! Its log (stderr, text format) is kept line by line with the timestamps Souk wrote, so the
//! start-up scenario can tell where the time went without any instrumentation in Souk itself.

use crate::{client, clock, procfs};
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Generous: a cold start on a loaded 2-core machine is well under a second; this only stops a
/// broken build from hanging the harness.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often readiness is polled: the resolution of the start-up figures.
const READY_POLL: Duration = Duration::from_millis(2);

/// The `souk` to measure: `SOUK_BENCH_BIN`, else the one Cargo built beside this bench.
pub fn binary() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("SOUK_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_souk")));
    if !path.is_file() {
        bail!(
            "{} does not exist; run `cargo build --release` (or `cargo bench`, which builds it), \
             or point SOUK_BENCH_BIN at a souk binary",
            path.display()
        );
    }
    Ok(path)
}

/// A log line and when Souk wrote it (its own timestamp).
#[derive(Clone, Debug)]
pub struct LogLine {
    pub at: Option<SystemTime>,
    pub text: String,
}

pub struct Souk {
    child: Child,
    pub pid: u32,
    pub nats_pid: u32,
    pub addr: SocketAddr,
    /// Wall-clock time just before the spawn, to place log timestamps.
    pub spawned_at: SystemTime,
    /// From the spawn to the first `/readyz` 200 this harness saw.
    pub ready_after: Duration,
    log: Arc<Mutex<Vec<LogLine>>>,
}

impl Souk {
    /// Starts `souk serve` and returns once `/readyz` answers 200.
    pub async fn start(bin: &Path, data_dir: &Path) -> anyhow::Result<Souk> {
        // Every API route needs a credential: an admin token, made the way operators make one.
        let made = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "admin", "token", "create", "--name", "bench", "--role", "admin",
            ])
            .env_remove("SOUK_CONFIG")
            .stderr(Stdio::piped())
            .output()
            .await
            .context("running souk admin token create")?;
        if !made.status.success() {
            bail!(
                "souk admin token create failed: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        client::set_token(String::from_utf8_lossy(&made.stdout).trim());
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http")
            .arg("127.0.0.1:0")
            .arg("--log-format")
            .arg("text")
            .arg("--log-level")
            .arg("info")
            // Measure the defaults, not whatever the caller's shell has configured.
            .env_remove("SOUK_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // If the harness panics, Souk goes too (and takes nats-server with it).
            .kill_on_drop(true);
        let spawned_at = SystemTime::now();
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("souk exited at once")?;

        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, mut addr_rx) = watch::channel(None);
        let stderr = child.stderr.take().context("no stderr pipe")?;
        // Keep reading for the process's whole life: a full pipe would block Souk's logging.
        tokio::spawn({
            let log = log.clone();
            async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(text)) = lines.next_line().await {
                    if let Some(addr) = listening_addr(&text) {
                        addr_tx.send_replace(Some(addr));
                    }
                    let at = text
                        .split_whitespace()
                        .next()
                        .and_then(clock::parse_rfc3339_utc);
                    log.lock().unwrap().push(LogLine { at, text });
                }
            }
        });

        let addr = tokio::time::timeout(START_TIMEOUT, addr_rx.wait_for(Option::is_some))
            .await
            .map_err(|_| anyhow::anyhow!("souk did not log `listening on http://…` in time"))?
            .map_err(|_| anyhow::anyhow!("souk exited before it listened: {}", tail(&log)))?
            .expect("waited for Some");

        let body = loop {
            if spawned.elapsed() > START_TIMEOUT {
                bail!(
                    "souk was not ready within {START_TIMEOUT:?}: {}",
                    tail(&log)
                );
            }
            if let Some(status) = child.try_wait()? {
                bail!("souk exited during start-up ({status}): {}", tail(&log));
            }
            if let Ok((status, body)) = client::get(addr, "/readyz").await
                && status.is_success()
            {
                break body;
            }
            tokio::time::sleep(READY_POLL).await;
        };
        let ready_after = spawned.elapsed();
        let nats_pid = broker_pid(&body)?;
        Ok(Souk {
            child,
            pid,
            nats_pid,
            addr,
            spawned_at,
            ready_after,
            log,
        })
    }

    /// The log so far.
    pub fn log(&self) -> Vec<LogLine> {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, as systemd would, and wait until both Souk and its nats-server are gone.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
            bail!(
                "souk (pid {}) ignored SIGTERM for {STOP_TIMEOUT:?}; killed it",
                self.pid
            );
        }
        // Souk stops its child before it exits; this only catches a regression, bounded.
        for _ in 0..500 {
            if !procfs::alive(self.nats_pid) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        bail!(
            "nats-server (pid {}) outlived souk (pid {}) by 5 s",
            self.nats_pid,
            self.pid
        )
    }
}

/// `… INFO souk::app: listening on http://127.0.0.1:34945`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The broker check of `/readyz` reads `pid N, nats://…`.
fn broker_pid(readyz: &[u8]) -> anyhow::Result<u32> {
    let json: serde_json::Value = serde_json::from_slice(readyz).context("/readyz is not JSON")?;
    let detail = json["checks"]["broker"]["detail"]
        .as_str()
        .context("/readyz has no checks.broker.detail (is the bundled nats-server in use?)")?;
    detail
        .strip_prefix("pid ")
        .and_then(|r| r.split(',').next())
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("cannot read a pid in checks.broker.detail `{detail}`"))
}

fn tail(log: &Mutex<Vec<LogLine>>) -> String {
    let log = log.lock().unwrap();
    let start = log.len().saturating_sub(5);
    log[start..]
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}
