//! Wiring: builds a running Souk from a [`Config`]. `main` and the integration tests both call
//! [`start`], so tests run exactly what production runs.
//!
//! Start-up order, one log line each: data dir (locked) → HTTP listener (so `/healthz` answers
//! and a port clash fails fast) → nats-server (bundled) or the configured NATS → bus → services.
//! Shutdown runs the other way: HTTP closes first, the broker stops last.

use crate::broker::{self, Broker, BrokerState};
use crate::bus::{self, Bus};
use crate::config::{Config, env_var};
use crate::health::Health;
use crate::http::{self, AppState};
use crate::services;
use crate::supervisor::{Restart, Supervisor};
use anyhow::Context;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running Souk.
pub struct App {
    pub http_addr: SocketAddr,
    pub health: Health,
    pub broker: Option<Arc<Broker>>,
    pub bus: Bus,
    http_cancel: CancellationToken,
    http_task: JoinHandle<()>,
    supervisor: Supervisor,
    shutdown_timeout: Duration,
    _lock: File,
}

/// Why [`start`] did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("start-up was interrupted")]
    Interrupted,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Starts everything and returns once Souk is ready. `shim` is Souk's own executable when it
/// runs as the `souk` binary (see `broker::shim`). `interrupt` aborts a start in progress
/// (a signal during start-up); whatever had started is stopped in order.
pub async fn start(
    config: Config,
    shim: Option<PathBuf>,
    interrupt: CancellationToken,
) -> Result<App, StartError> {
    let started = Instant::now();
    let lock = crate::data_dir::open(&config).map_err(anyhow::Error::from)?;
    tracing::info!(data_dir = %config.data_dir.display(), "using data dir");

    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {} (config `http`, env {}, flag --http): {e}. Is another souk \
             running? Choose another address, e.g. --http 127.0.0.1:0 for any free port.",
                config.http,
                env_var("http")
            )
        })?;
    let http_addr = listener.local_addr().context("reading the bound address")?;
    let health = Health::default();
    health.expect("bus", "not connected yet");
    // Passes last: no window where the checks declared so far pass before every part has
    // declared its own.
    health.expect("startup", "starting");
    let http_cancel = CancellationToken::new();
    let bus_slot = Arc::new(std::sync::OnceLock::new());
    let outbox_slot = Arc::new(std::sync::OnceLock::new());
    let state = AppState::new(http::Shared {
        health: health.clone(),
        started,
        bus: bus_slot.clone(),
        outboxes: outbox_slot.clone(),
        data_dir: config.data_dir.clone(),
        security: Arc::new(config.security.clone()),
        gate: Arc::new(http::auth::Gate::new(&config.security)),
        sse: Arc::new(tokio::sync::Semaphore::new(config.security.max_sse)),
        shutdown: http_cancel.clone(),
    });
    let tls = match (&config.security.tls_cert, &config.security.tls_key) {
        (Some(cert), Some(key)) => Some(http::tls::acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let http_task = serve_http(listener, tls, http::router(state), http_cancel.clone());
    tracing::info!("listening on {scheme}://{http_addr}");
    // For the links Souk prints (the setup link): usable in a browser as they are.
    let http_url = format!("{scheme}://{}", reachable(http_addr));

    let mut supervisor = Supervisor::new();
    let metrics = crate::telemetry::metrics();
    supervisor.spawn("metrics", Restart::Never, move |cancel| async move {
        // Histograms are summarised on upkeep; without it their memory grows.
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(5)) => metrics.run_upkeep(),
            }
        }
    });
    let running = async {
        let (broker, bus) = connect(&config, shim, &health, &mut supervisor, &interrupt).await?;
        let _ = bus_slot.set(bus.clone());
        let outboxes = start_services(&config, &http_url, &bus, &health, &mut supervisor).await?;
        let _ = outbox_slot.set(outboxes);
        Ok::<_, StartError>((broker, bus))
    };
    match running.await {
        Ok((broker, bus)) => {
            health.set("startup", true, "done");
            tracing::info!(took = ?started.elapsed(), "souk is ready");
            notify_systemd(sd_notify::NotifyState::Ready);
            Ok(App {
                http_addr,
                health,
                broker,
                bus,
                http_cancel,
                http_task,
                supervisor,
                shutdown_timeout: config.shutdown_timeout,
                _lock: lock,
            })
        }
        Err(e) => {
            http_cancel.cancel();
            let _ = http_task.await;
            supervisor.shutdown(config.shutdown_timeout).await;
            Err(e)
        }
    }
}

/// Starts the bundled server (or not), waits for it, and connects the bus.
async fn connect(
    config: &Config,
    shim: Option<PathBuf>,
    health: &Health,
    supervisor: &mut Supervisor,
    interrupt: &CancellationToken,
) -> Result<(Option<Arc<Broker>>, Bus), StartError> {
    if !config.nats.bundled() {
        let urls: Vec<String> = config
            .nats
            .urls
            .iter()
            .map(|u| crate::config::redact_url(u))
            .collect();
        tracing::info!(urls = %urls.join(","), "using existing NATS; no bundled server");
        let target = bus::Target::External(&config.nats);
        let bus = bus::connect(target, &config.prefix, health, interrupt)
            .await
            .map_err(|_| StartError::Interrupted)?;
        spawn_bus_drain(supervisor, &bus);
        return Ok((None, bus));
    }

    let data_dir = config.data_dir.clone();
    let configured = config.nats.server_bin.clone();
    let server = tokio::task::spawn_blocking(move || {
        broker::binary::resolve(configured.as_deref(), &data_dir)
    })
    .await
    .context("resolving nats-server")??;
    tracing::info!(path = %server.path.display(), origin = ?server.origin, "using nats-server");

    let broker = Broker::new(broker::Settings {
        data_dir: config.data_dir.clone(),
        server,
        shim,
        max_memory_store: config.nats.max_memory_store,
        max_file_store: config.nats.max_file_store,
        sync_interval: config.nats.sync_interval,
        stop_timeout: config.shutdown_timeout,
    })?;
    health.expect("broker", "starting");
    let b = broker.clone();
    supervisor.spawn("broker", Restart::Never, move |cancel| {
        b.clone().run(cancel)
    });
    let (b, h) = (broker.clone(), health.clone());
    supervisor.spawn("broker-health", Restart::Never, move |cancel| {
        follow_broker(b.clone(), h.clone(), cancel)
    });

    let url = tokio::select! {
        _ = interrupt.cancelled() => return Err(StartError::Interrupted),
        url = broker.ready() => url?,
    };
    let identity = broker.identity();
    let target = bus::Target::Bundled {
        url,
        user: &identity.user,
        password: &identity.password,
    };
    let bus = bus::connect(target, &config.prefix, health, interrupt)
        .await
        .map_err(|_| StartError::Interrupted)?;
    spawn_bus_drain(supervisor, &bus);
    Ok((Some(broker), bus))
}

/// Ensures the streams, then starts the services this instance runs (`services`), each with its
/// store, outbox relay, consumers and rpc endpoints, and the dead-letter retry service.
async fn start_services(
    config: &Config,
    http_url: &str,
    bus: &Bus,
    health: &Health,
    supervisor: &mut Supervisor,
) -> anyhow::Result<Vec<services::runtime::Outbox>> {
    crate::bus::streams::ensure(bus, &config.streams)
        .await
        .context(
            "setting up the event streams: check that the NATS server has JetStream enabled and \
             room for them (config nats_max_file_store, env SOUK_NATS_MAX_FILE_STORE, on the \
             bundled server), and the stream_* settings (env SOUK_STREAM_*)",
        )?;
    tracing::info!("event streams ready");
    let mut rt = services::runtime::Runtime {
        config,
        bus,
        health,
        supervisor,
        consumers: Vec::new(),
        outboxes: Vec::new(),
        outbox_retention: config.outbox_retention(),
        http_url: http_url.to_string(),
    };
    if config.runs("auth") {
        services::auth::start(&mut rt)
            .await
            .context("starting the auth service")?;
    }
    if config.runs("users") {
        services::users::start(&mut rt)
            .await
            .context("starting the users service")?;
    }
    if config.runs("listings") {
        services::listings::start(&mut rt)
            .await
            .context("starting the listings service")?;
    }
    if config.runs("catalog") {
        services::catalog::start(&mut rt)
            .await
            .context("starting the catalog service")?;
    }
    let consumers = std::mem::take(&mut rt.consumers);
    if !consumers.is_empty() {
        let b = bus.clone();
        rt.rpc("deadletters", move || {
            crate::bus::deadletter::retry_service(&b, consumers.clone())
        });
    }
    tracing::info!(services = %config.services.join(","), "services started");
    let missing: Vec<&str> = crate::config::SERVICES
        .iter()
        .copied()
        .filter(|s| !config.runs(s))
        .collect();
    if config.nats.bundled() && !missing.is_empty() {
        tracing::warn!(
            missing = %missing.join(","),
            "this Souk runs its own NATS server but not every service, so requests for the \
             missing ones answer 503 (and without auth, every API request does) unless another \
             Souk runs them against this server; set `services` (env SOUK_SERVICES) to `all`, \
             or point `nats_url` at the cluster where they run"
        );
    }
    Ok(rt.outboxes)
}

/// Keeps the `broker` readiness check in step with the broker's state.
async fn follow_broker(
    broker: Arc<Broker>,
    health: Health,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut rx = broker.state();
    loop {
        let state = rx.borrow_and_update().clone();
        let (ok, detail) = match state {
            BrokerState::Starting => (false, "starting".to_string()),
            BrokerState::Ready {
                pid, client_url, ..
            } => (true, format!("pid {pid}, {client_url}")),
            BrokerState::Unhealthy { pid, detail } => {
                (false, format!("pid {pid} unhealthy: {detail}"))
            }
            BrokerState::Restarting { detail, attempt } => {
                (false, format!("restarting (attempt {attempt}): {detail}"))
            }
            BrokerState::Stopped => (false, "stopped".to_string()),
        };
        health.set("broker", ok, detail);
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            changed = rx.changed() => if changed.is_err() { return Ok(()) },
        }
    }
}

/// On shutdown, flush what the bus still holds before the broker goes away.
fn spawn_bus_drain(supervisor: &mut Supervisor, bus: &Bus) {
    let client = bus.client.clone();
    supervisor.spawn("bus", Restart::Never, move |cancel| {
        let client = client.clone();
        async move {
            cancel.cancelled().await;
            client.drain().await.context("draining the bus")
        }
    });
}

/// Serves `router` until `stop` is cancelled, then lets requests in flight finish.
fn serve_http(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: axum::Router,
    stop: CancellationToken,
) -> JoinHandle<()> {
    use axum::serve::ListenerExt;
    tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = match tls {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            Some(acceptor) => match http::tls::TlsListener::new(listener, acceptor) {
                Ok(tls) => {
                    axum::serve(tls.tap_io(|_| {}), app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = served {
            tracing::error!("HTTP server failed: {e}");
        }
    })
}

impl App {
    /// Stops everything in order: HTTP, services, bus, broker.
    pub async fn stop(self) {
        tracing::info!("shutting down");
        notify_systemd(sd_notify::NotifyState::Stopping);
        self.http_cancel.cancel();
        let abort = self.http_task.abort_handle();
        if tokio::time::timeout(self.shutdown_timeout, self.http_task)
            .await
            .is_err()
        {
            abort.abort();
            tracing::warn!("HTTP connections did not close in time; closed them");
        }
        tracing::info!(task = "http", "stopped");
        self.supervisor.shutdown(self.shutdown_timeout).await;
        tracing::info!("souk stopped");
    }
}

/// `souk serve`: start, run until SIGTERM or Ctrl-C, stop.
pub async fn serve(config: Config, shim: Option<PathBuf>) -> anyhow::Result<()> {
    let interrupt = CancellationToken::new();
    let signals = tokio::spawn({
        let interrupt = interrupt.clone();
        async move {
            wait_for_signal().await;
            interrupt.cancel();
        }
    });
    let app = match start(config, shim, interrupt.clone()).await {
        Ok(app) => app,
        Err(StartError::Interrupted) => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
        Err(StartError::Failed(e)) => return Err(e),
    };
    interrupt.cancelled().await;
    signals.abort();
    app.stop().await;
    Ok(())
}

/// SIGHUP (the terminal closed, or an operator's `kill -HUP` expecting a reload) stops Souk in
/// order like SIGTERM rather than killing it outright: Souk has nothing to reload.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("installing the SIGHUP handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = hup.recv() => tracing::info!("SIGHUP received; stopping (Souk does not reload)"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
    }
}

/// Where a browser on this host reaches a listener on `addr`: a wildcard bind (0.0.0.0, [::])
/// is not an address to open, so it becomes loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(&[state]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_for_a_wildcard_bind_use_loopback() {
        let url = |bind: &str| format!("http://{}", reachable(bind.parse().unwrap()));
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080");
        assert_eq!(url("192.0.2.7:8080"), "http://192.0.2.7:8080");
        assert_eq!(url("[2001:db8::1]:443"), "http://[2001:db8::1]:443");
        assert_eq!(url("127.0.0.1:1"), "http://127.0.0.1:1");
    }
}
