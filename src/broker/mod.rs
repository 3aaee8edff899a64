//! The bundled NATS JetStream server, run as a supervised child process.
//!
//! Owns `<data>/nats/` (identity and credentials, generated config, ports file, JetStream store
//! in `<data>/nats/jetstream`) and `<data>/bin/` (the extracted server). Publishes its state on a
//! watch channel that readiness and the bus follow. Talks to nothing else in Souk.
//!
//! Restarts: when the server exits, or stops answering its health endpoint for 5 s, it is
//! restarted after an exponential backoff (100 ms doubling to 10 s, reset after 30 s of health)
//! on the same ports as before, so connected clients reconnect to it by themselves.

pub mod binary;
pub mod conf;
pub mod process;
pub mod shim;

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use conf::Identity;

/// What the rest of Souk can see of the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerState {
    Starting,
    Ready {
        client_url: String,
        monitor_url: String,
        pid: u32,
    },
    /// Running but not healthy (e.g. JetStream unavailable); it is being watched, not killed.
    Unhealthy {
        pid: u32,
        detail: String,
    },
    /// Down; a restart is scheduled.
    Restarting {
        detail: String,
        attempt: u32,
    },
    Stopped,
}

pub struct Settings {
    pub data_dir: PathBuf,
    pub server: binary::ServerBinary,
    pub shim: Option<PathBuf>,
    pub max_memory_store: u64,
    pub max_file_store: u64,
    pub sync_interval: Option<Duration>,
    pub stop_timeout: Duration,
}

pub struct Broker {
    settings: Settings,
    dir: PathBuf,
    identity: Identity,
    state: watch::Sender<BrokerState>,
    http: reqwest::Client,
}

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
const HEALTHY_RESETS_BACKOFF: Duration = Duration::from_secs(30);
const CHECK_EVERY: Duration = Duration::from_secs(1);
const MISSED_CHECKS_BEFORE_RESTART: u32 = 5;

enum Ended {
    Cancelled,
    Failed(String),
}

impl Broker {
    /// Prepares `<data>/nats/` and the credentials. Nothing is started yet.
    pub fn new(settings: Settings) -> anyhow::Result<Arc<Broker>> {
        let dir = settings.data_dir.join("nats");
        private_dir(&dir)?;
        let identity = conf::load_or_create_identity(&dir)?;
        let http = crate::http::tls::client().build()?;
        let (state, _) = watch::channel(BrokerState::Starting);
        Ok(Arc::new(Broker {
            settings,
            dir,
            identity,
            state,
            http,
        }))
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn state(&self) -> watch::Receiver<BrokerState> {
        self.state.subscribe()
    }

    /// Waits for the first `Ready`, returning the client URL.
    pub async fn ready(&self) -> anyhow::Result<String> {
        let mut rx = self.state();
        let state = rx
            .wait_for(|s| matches!(s, BrokerState::Ready { .. } | BrokerState::Stopped))
            .await?
            .clone();
        match state {
            BrokerState::Ready { client_url, .. } => Ok(client_url),
            _ => anyhow::bail!("nats-server stopped before it became ready"),
        }
    }

    /// Runs and supervises the server until `cancel`, then stops it.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut ports: (Option<u16>, Option<u16>) = (None, None);
        let mut backoff = BACKOFF_START;
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            // A config that cannot be written (disk full, permissions) is a failed attempt like
            // any other: retried with the same backoff, so the server comes back once it can be.
            let ended = match self.launch(ports) {
                Err(e) => format!("{e:#}"),
                Ok(launch) => match self.run_once(&launch, &mut ports, started, &cancel).await {
                    Ok(Ended::Cancelled) => {
                        self.state.send_replace(BrokerState::Stopped);
                        return Ok(());
                    }
                    Ok(Ended::Failed(detail)) => detail,
                    Err(e) => format!("{e:#}"),
                },
            };
            if started.elapsed() > HEALTHY_RESETS_BACKOFF {
                backoff = BACKOFF_START;
                attempt = 0;
            }
            attempt += 1;
            metrics::counter!("souk_broker_restarts_total").increment(1);
            tracing::error!(attempt, retry_in = ?backoff, "nats-server is down: {ended}; restarting it");
            self.state.send_replace(BrokerState::Restarting {
                detail: ended,
                attempt,
            });
            tokio::select! {
                _ = cancel.cancelled() => {
                    self.state.send_replace(BrokerState::Stopped);
                    return Ok(());
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_CAP);
        }
    }

    /// Writes the server's config for this attempt and says how to start it.
    fn launch(&self, ports: (Option<u16>, Option<u16>)) -> anyhow::Result<process::Launch> {
        let config = conf::write_config(&conf::ServerConf {
            identity: &self.identity,
            dir: &self.dir,
            client_port: ports.0,
            monitor_port: ports.1,
            max_memory_store: self.settings.max_memory_store,
            max_file_store: self.settings.max_file_store,
            sync_interval: self.settings.sync_interval,
        })
        .with_context(|| {
            format!(
                "cannot write nats-server's config in {}; free some disk space there or make                  it writable by Souk's user (Souk keeps retrying)",
                self.dir.display()
            )
        })?;
        Ok(process::Launch {
            server: self.settings.server.path.clone(),
            config,
            shim: self.settings.shim.clone(),
            go_mem_limit: self.settings.max_memory_store + (128 << 20),
        })
    }

    /// Starts one server process and watches it until it fails or `cancel`.
    async fn run_once(
        &self,
        launch: &process::Launch,
        ports: &mut (Option<u16>, Option<u16>),
        started: Instant,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Ended> {
        let mut running = tokio::select! {
            _ = cancel.cancelled() => return Ok(Ended::Cancelled),
            r = process::spawn(launch, &self.dir) => r?,
        };
        *ports = (port_of(&running.client_url), port_of(&running.monitor_url));
        tokio::select! {
            _ = cancel.cancelled() => {
                process::stop(running, self.settings.stop_timeout).await;
                return Ok(Ended::Cancelled);
            }
            r = process::wait_ready(&mut running, &self.http) => r?,
        }
        tracing::info!(
            pid = running.pid,
            url = %running.client_url,
            monitor = %running.monitor_url,
            took = ?started.elapsed(),
            "nats-server ready"
        );
        let ready = BrokerState::Ready {
            client_url: running.client_url.clone(),
            monitor_url: running.monitor_url.clone(),
            pid: running.pid,
        };
        self.state.send_replace(ready.clone());

        let mut missed = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    let pid = running.pid;
                    let status = process::stop(running, self.settings.stop_timeout).await;
                    tracing::info!(pid, ?status, "nats-server stopped");
                    return Ok(Ended::Cancelled);
                }
                status = running.child.wait() => {
                    return Ok(Ended::Failed(format!("nats-server (pid {}) exited: {}", running.pid,
                        status.map_or_else(|e| e.to_string(), |s| s.to_string()))));
                }
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            match process::probe(&self.http, &running.monitor_url).await {
                process::Probe::Healthy => {
                    missed = 0;
                    if *self.state.borrow() != ready {
                        tracing::info!(pid = running.pid, "nats-server is healthy again");
                        self.state.send_replace(ready.clone());
                    }
                }
                process::Probe::Unhealthy(detail) => {
                    missed = 0;
                    tracing::warn!(
                        pid = running.pid,
                        "nats-server is alive but unhealthy: {detail}"
                    );
                    self.state.send_replace(BrokerState::Unhealthy {
                        pid: running.pid,
                        detail,
                    });
                }
                process::Probe::NoAnswer(detail) => {
                    missed += 1;
                    // Not ready from the first missed check (readiness says so at once); killed
                    // and restarted only after several, so one slow answer costs no restart.
                    if missed < MISSED_CHECKS_BEFORE_RESTART {
                        tracing::warn!(
                            pid = running.pid,
                            "nats-server did not answer a health check ({missed} of \
                             {MISSED_CHECKS_BEFORE_RESTART} before a restart): {detail}"
                        );
                        self.state.send_replace(BrokerState::Unhealthy {
                            pid: running.pid,
                            detail: format!(
                                "not answering health checks ({missed} missed): {detail}"
                            ),
                        });
                    }
                    if missed >= MISSED_CHECKS_BEFORE_RESTART {
                        let pid = running.pid;
                        let _ = running.child.start_kill();
                        let _ = running.child.wait().await;
                        return Ok(Ended::Failed(format!(
                            "nats-server (pid {pid}) stopped answering health checks ({detail}); killed it"
                        )));
                    }
                }
            }
        }
    }
}

/// Creates `dir` readable by Souk's user only (it holds credentials and the server's store).
pub(crate) fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting mode 0700 on {}", dir.display()))
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.parse().ok()
}
