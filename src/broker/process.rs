//! One nats-server child: spawn, port discovery, readiness, log forwarding, health, stop.
//!
//! The child is started through `souk __nats-exec` when Souk runs as its own binary, so that on
//! Linux it gets a parent-death signal and never outlives Souk, not even a `kill -9` (see
//! `shim.rs`). It runs in its own process group so a terminal's Ctrl-C reaches only Souk, which
//! then stops it in order.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// How to launch the server.
#[derive(Clone, Debug)]
pub struct Launch {
    pub server: PathBuf,
    pub config: PathBuf,
    /// Souk's own executable, to run the server under `__nats-exec`; `None` starts it directly
    /// (library use, e.g. tests that embed the app: the child then dies with the `Child` handle).
    pub shim: Option<PathBuf>,
    /// Heap limit passed to the Go runtime (`GOMEMLIMIT`).
    pub go_mem_limit: u64,
}

/// A running server and where it listens.
pub struct Running {
    pub child: Child,
    pub pid: u32,
    pub client_url: String,
    pub monitor_url: String,
}

#[derive(Deserialize)]
struct PortsFile {
    nats: Vec<String>,
    monitoring: Vec<String>,
}

/// Spawns the server and waits until its ports file names its listeners. Readiness (JetStream
/// up) is checked separately by [`wait_ready`], which may take long on a recovering store.
pub async fn spawn(launch: &Launch, ports_dir: &Path) -> anyhow::Result<Running> {
    remove_stale_ports_files(ports_dir);
    let mut cmd = match &launch.shim {
        Some(souk) => {
            let mut c = Command::new(souk);
            c.arg("__nats-exec")
                .arg("--parent-pid")
                .arg(std::process::id().to_string())
                .arg("--");
            c.arg(&launch.server);
            c
        }
        None => Command::new(&launch.server),
    };
    cmd.arg("-c")
        .arg(&launch.config)
        .env_remove("NOTIFY_SOCKET")
        .env("GOMEMLIMIT", launch.go_mem_limit.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = spawn_retrying(&mut cmd)
        .with_context(|| format!("starting {}", launch.server.display()))?;
    let pid = child.id().context("nats-server exited immediately")?;
    forward_logs(child.stdout.take());
    forward_logs(child.stderr.take());

    let started = Instant::now();
    let mut next_note = Duration::from_secs(5);
    let ports_file = loop {
        if let Some(status) = child.try_wait()? {
            bail!("nats-server exited during start ({status}); its log lines above say why");
        }
        if let Some(p) = find_ports_file(ports_dir, pid) {
            break p;
        }
        if started.elapsed() > next_note {
            tracing::info!(pid, waited = ?started.elapsed(), "waiting for nats-server to open its listeners");
            next_note += Duration::from_secs(5);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let ports: PortsFile = serde_json::from_slice(&tokio::fs::read(&ports_file).await?)
        .with_context(|| format!("reading {}", ports_file.display()))?;
    let client_url = ports
        .nats
        .into_iter()
        .next()
        .context("ports file names no client port")?;
    let monitor_url = ports
        .monitoring
        .into_iter()
        .next()
        .context("ports file names no monitoring port")?;
    Ok(Running {
        child,
        pid,
        client_url,
        monitor_url,
    })
}

/// ETXTBSY: a freshly written executable can briefly be "busy" if another thread forked while
/// it was open for writing. Retry a few times before giving up.
fn spawn_retrying(cmd: &mut Command) -> std::io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 20 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Waits until `/healthz?js-enabled-only=true` answers 200. A server that is alive but still
/// recovering its JetStream store is given all the time it needs (it is never killed here);
/// progress is logged every few seconds.
pub async fn wait_ready(running: &mut Running, http: &reqwest::Client) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut next_note = Duration::from_secs(3);
    let mut delay = Duration::from_millis(2);
    loop {
        if let Some(status) = running.child.try_wait()? {
            bail!("nats-server exited before it was ready ({status})");
        }
        match probe(http, &running.monitor_url).await {
            Probe::Healthy => return Ok(()),
            Probe::Unhealthy(detail) | Probe::NoAnswer(detail) => {
                if started.elapsed() > next_note {
                    tracing::info!(
                        pid = running.pid,
                        waited = ?started.elapsed(),
                        "nats-server is not ready yet (JetStream may be recovering its store): {detail}"
                    );
                    next_note += Duration::from_secs(5);
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

pub enum Probe {
    Healthy,
    /// The server answered but is not healthy (e.g. JetStream unavailable): alive, not ready.
    Unhealthy(String),
    /// No answer at all: hung or gone.
    NoAnswer(String),
}

pub async fn probe(http: &reqwest::Client, monitor_url: &str) -> Probe {
    let url = format!("{monitor_url}/healthz?js-enabled-only=true");
    match http.get(&url).timeout(Duration::from_secs(2)).send().await {
        Ok(r) if r.status().is_success() => Probe::Healthy,
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            Probe::Unhealthy(format!("{status}: {}", body.trim()))
        }
        Err(e) => Probe::NoAnswer(e.to_string()),
    }
}

/// Stops the server: SIGTERM, then SIGKILL after `timeout`.
pub async fn stop(mut running: Running, timeout: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = running.child.try_wait() {
        return Some(status);
    }
    let _ = kill(Pid::from_raw(running.pid as i32), Signal::SIGTERM);
    match tokio::time::timeout(timeout, running.child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            tracing::warn!(
                pid = running.pid,
                ?timeout,
                "nats-server did not stop after SIGTERM; killing it"
            );
            let _ = running.child.start_kill();
            running.child.wait().await.ok()
        }
    }
}

fn find_ports_file(dir: &Path, pid: u32) -> Option<PathBuf> {
    let suffix = format!("_{pid}.ports");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&suffix))
        })
}

fn remove_stale_ports_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for p in entries.filter_map(Result::ok).map(|e| e.path()) {
            if p.extension().is_some_and(|e| e == "ports") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Copies the server's log lines into Souk's log under the `nats` target. The server's own
/// informational chatter goes to debug; warnings and errors keep their level.
fn forward_logs(pipe: Option<impl AsyncRead + Unpin + Send + 'static>) {
    let Some(pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log_line(&line);
        }
    });
}

/// One line like `[1234] [WRN] message` (the config sets `logtime: false`).
fn log_line(line: &str) {
    let rest = match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
        Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => line,
    };
    let (level, msg) = match rest.get(..6) {
        Some(tag @ ("[INF] " | "[WRN] " | "[ERR] " | "[FTL] " | "[DBG] " | "[TRC] ")) => {
            (&tag[1..4], &rest[6..])
        }
        _ => ("", rest),
    };
    match level {
        // Souk's credentials are plaintext in a 0600 file only Souk reads; the server's advice
        // to use bcrypt or nkeys does not apply to a loopback-only sidecar.
        "WRN" if msg.starts_with("Plaintext passwords detected") => {
            tracing::debug!(target: "nats", "{msg}")
        }
        "WRN" => tracing::warn!(target: "nats", "{msg}"),
        "ERR" | "FTL" => tracing::error!(target: "nats", "{msg}"),
        "TRC" => tracing::trace!(target: "nats", "{msg}"),
        "INF" | "DBG" => tracing::debug!(target: "nats", "{msg}"),
        // The exec shim's own failure ("cannot run …"): nats-server never started.
        _ if msg.starts_with("souk __nats-exec:") => tracing::error!(target: "nats", "{msg}"),
        _ => tracing::info!(target: "nats", "{msg}"),
    }
}
