//! The event streams (one per producing service) and the dead-letter stream, created or updated
//! at start so that every instance, in any order, converges on the same configuration.

use super::Bus;
use super::subjects::PRODUCERS;
use anyhow::Context;
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
use std::time::Duration;

/// Stream settings from the configuration.
#[derive(Clone, Debug)]
pub struct StreamSettings {
    /// 1 on a single server; 3 (or 5) on a cluster.
    pub replicas: usize,
    /// Byte limit per stream; 0 = no limit (events are the audit trail: keep them).
    pub max_bytes: u64,
    /// Age limit; zero = keep forever.
    pub max_age: Duration,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a re-published event.
    pub duplicate_window: Duration,
}

/// Creates or updates every event stream and the dead-letter stream. Idempotent.
pub async fn ensure(bus: &Bus, settings: &StreamSettings) -> anyhow::Result<()> {
    let names = bus.names();
    for (service, _) in PRODUCERS {
        let config = Config {
            name: names.stream(service),
            subjects: names.stream_subjects(service),
            ..base(settings)
        };
        upsert(bus, config).await?;
    }
    let dlq = Config {
        name: names.dlq_stream(),
        subjects: vec![names.all_dlq()],
        // Dead letters wait for a person: never discard them to make room silently.
        discard: DiscardPolicy::New,
        ..base(settings)
    };
    upsert(bus, dlq).await
}

fn base(settings: &StreamSettings) -> Config {
    Config {
        storage: StorageType::File,
        num_replicas: settings.replicas,
        max_bytes: if settings.max_bytes == 0 {
            -1
        } else {
            settings.max_bytes as i64
        },
        max_age: settings.max_age,
        duplicate_window: settings.duplicate_window,
        allow_direct: true,
        ..Default::default()
    }
}

async fn upsert(bus: &Bus, config: Config) -> anyhow::Result<()> {
    let name = config.name.clone();
    bus.jetstream
        .create_or_update_stream(config)
        .await
        .with_context(|| format!("creating or updating stream {name}"))?;
    tracing::debug!(stream = %name, "stream ready");
    Ok(())
}
