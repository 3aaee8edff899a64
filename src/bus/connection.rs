//! Connecting to NATS: the bundled server with its generated
//! credentials, or existing servers named by `nats_url` with their credentials and TLS.
//!
//! Keeps the `bus` readiness check current from the client's connection events. Reconnects are
//! async-nats's own (unbounded, with backoff); the bundled server comes back on the same port.

use super::{Bus, Names};
use crate::config::NatsConfig;
use crate::health::Health;
use anyhow::Context;
use async_nats::{ConnectOptions, Event};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where and how to connect.
pub enum Target<'a> {
    /// The bundled server: its URL and generated credentials.
    Bundled {
        url: String,
        user: &'a str,
        password: &'a str,
    },
    /// Existing servers from the configuration.
    External(&'a NatsConfig),
}

/// Connects, retrying with backoff until it succeeds or `cancel` fires. Failures are logged
/// with what to check; readiness shows them meanwhile.
pub async fn connect(
    target: Target<'_>,
    prefix: &str,
    health: &Health,
    cancel: &CancellationToken,
) -> anyhow::Result<Bus> {
    let (urls, describe) = match &target {
        Target::Bundled { url, .. } => (url.clone(), format!("the bundled nats-server at {url}")),
        Target::External(c) => {
            let shown: Vec<String> = c
                .urls
                .iter()
                .map(|u| crate::config::redact_url(u))
                .collect();
            (c.urls.join(","), format!("NATS at {}", shown.join(",")))
        }
    };
    let mut delay = Duration::from_millis(100);
    loop {
        let options = options(&target, health.clone()).await?;
        tokio::select! {
            _ = cancel.cancelled() => anyhow::bail!("stopped while connecting to {describe}"),
            result = options.connect(urls.as_str()) => match result {
                Ok(client) => {
                    health.set("bus", true, format!("connected to {describe}"));
                    tracing::info!("connected to {describe}");
                    let jetstream = async_nats::jetstream::new(client.clone());
                    return Ok(Bus { client, jetstream, names: Names::new(prefix) });
                }
                Err(e) => {
                    let hint = match target {
                        Target::External(_) => " (check `nats_url` / SOUK_NATS_URL and the credentials)",
                        Target::Bundled { .. } => "",
                    };
                    tracing::warn!(retry_in = ?delay, "cannot connect to {describe}: {e}{hint}");
                    health.set("bus", false, format!("cannot connect to {describe}: {e}"));
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => anyhow::bail!("stopped while connecting to {describe}"),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn options(target: &Target<'_>, health: Health) -> anyhow::Result<ConnectOptions> {
    let creds = match target {
        Target::External(c) => c.creds_file.as_ref(),
        Target::Bundled { .. } => None,
    };
    let base = match creds {
        Some(path) => ConnectOptions::with_credentials_file(path.clone()).await.with_context(|| {
            format!(
                "reading NATS credentials {} (config `nats_creds_file`, env SOUK_NATS_CREDS_FILE)",
                path.display()
            )
        })?,
        None => ConnectOptions::new(),
    };
    let mut o = base
        .name("souk")
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback(move |event| {
            let health = health.clone();
            async move { on_event(&health, event) }
        });
    match target {
        Target::Bundled { user, password, .. } => {
            o = o.user_and_password(user.to_string(), password.to_string());
        }
        Target::External(c) => {
            if let (Some(user), Some(password)) = (&c.user, &c.password) {
                o = o.user_and_password(user.clone(), password.clone());
            }
            if let Some(ca) = &c.tls_ca_file {
                o = o.add_root_certificates(ca.clone()).require_tls(true);
            }
            if let (Some(cert), Some(key)) = (&c.tls_cert_file, &c.tls_key_file) {
                o = o
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
        }
    }
    Ok(o)
}

fn on_event(health: &Health, event: Event) {
    match event {
        Event::Connected => {
            tracing::debug!("bus connected");
            health.set("bus", true, "connected");
        }
        Event::Disconnected => {
            tracing::warn!("bus disconnected from NATS; reconnecting");
            health.set("bus", false, "disconnected from NATS; reconnecting");
        }
        other => tracing::debug!("bus event: {other}"),
    }
}
