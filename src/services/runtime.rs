//! What a service needs to start: its store opened, its outbox relay, its rpc service and its
//! consumers, each a named supervised task that restarts after a failure.

use crate::bus::Bus;
use crate::bus::consumer::{self, Handler, Spec};
use crate::bus::outbox::Relay;
use crate::bus::rpc::Service;
use crate::config::Config;
use crate::health::Health;
use crate::store::Store;
use crate::supervisor::{Restart, Supervisor};
use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

const RESTART: Restart = Restart::OnError {
    initial: Duration::from_millis(200),
};

/// An outbox and its current backlog, for the admin overview.
#[derive(Clone)]
pub struct Outbox {
    pub service: String,
    pub store: Store,
    pub backlog: Arc<AtomicU64>,
}

pub struct Runtime<'a> {
    pub config: &'a Config,
    pub bus: &'a Bus,
    pub health: &'a Health,
    pub supervisor: &'a mut Supervisor,
    /// Consumers started here, for the dead-letter retry service.
    pub consumers: Vec<(String, Arc<dyn Handler>)>,
    pub outboxes: Vec<Outbox>,
    /// How long published events stay in an outbox (beyond JetStream's sync interval).
    pub outbox_retention: Duration,
    /// Where this instance's HTTP API listens, e.g. `http://127.0.0.1:8080`, for links in logs.
    pub http_url: String,
}

impl Runtime<'_> {
    /// Opens `<data>/<file>` and creates its tables with `init`.
    pub async fn open_store(
        &self,
        file: &str,
        init: fn(&redb::WriteTransaction) -> Result<(), crate::store::StoreError>,
    ) -> anyhow::Result<Store> {
        let path = self.config.data_dir.join(file);
        let store = tokio::task::spawn_blocking(move || Store::open(&path)).await??;
        store
            .write(init)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("preparing {file}"))?;
        // Readiness follows the store: a failed commit makes it refuse writes until it reopens.
        let check = format!("store:{file}");
        self.health.set(&check, true, "ok");
        let (health, mut failures) = (self.health.clone(), store.failures());
        tokio::spawn(async move {
            // Ends with the store.
            while failures.changed().await.is_ok() {
                match failures.borrow_and_update().clone() {
                    Some(cause) => health.set(
                        &check,
                        false,
                        format!(
                            "writes refused after a failed commit ({cause}); souk reopens the \
                             file once the disk takes writes again"
                        ),
                    ),
                    None => health.set(&check, true, "ok"),
                }
            }
        });
        Ok(store)
    }

    /// Starts the outbox relay of `service`'s store.
    pub fn relay(&mut self, service: &str, store: &Store) {
        let backlog = Arc::new(AtomicU64::new(0));
        self.outboxes.push(Outbox {
            service: service.into(),
            store: store.clone(),
            backlog: backlog.clone(),
        });
        let (store, bus, name, retention, health) = (
            store.clone(),
            self.bus.clone(),
            service.to_string(),
            self.outbox_retention,
            self.health.clone(),
        );
        self.supervisor
            .spawn(format!("{service}-outbox"), RESTART, move |cancel| {
                let relay = Relay {
                    store: store.clone(),
                    bus: bus.clone(),
                    service: name.clone(),
                    retention,
                    backlog: backlog.clone(),
                    health: Some(health.clone()),
                };
                relay.run(cancel)
            });
    }

    /// Starts the task that forgets `service`'s `Idempotency-Key` records once they are older
    /// than `idempotency_retention` (none when it is zero: kept forever).
    pub fn idempotency_sweeper(&mut self, service: &str, store: &Store) {
        let retention = self.config.idempotency_retention;
        if retention.is_zero() {
            return;
        }
        let (store, name) = (store.clone(), service.to_string());
        self.supervisor
            .spawn(format!("{service}-idempotency"), RESTART, move |cancel| {
                crate::services::idempotency::run_sweeper(
                    store.clone(),
                    name.clone(),
                    retention,
                    cancel,
                )
            });
    }

    /// Registers `service`'s micro service; readiness waits for it.
    pub fn rpc(&mut self, service: &str, make: impl Fn() -> Service + Send + Sync + 'static) {
        let check = format!("service:{service}");
        self.health.expect(&check, "registering");
        let (bus, health) = (self.bus.clone(), self.health.clone());
        self.supervisor
            .spawn(format!("{service}-rpc"), RESTART, move |cancel| {
                let (bus, health, check) = (bus.clone(), health.clone(), check.clone());
                let service = make().on_ready(move || health.set(&check, true, "registered"));
                async move { service.run(&bus, cancel).await }
            });
    }

    /// Starts a durable consumer; readiness waits until it has caught up once.
    pub fn consumer(&mut self, spec: Spec, handler: Arc<dyn Handler>) {
        let check = format!("consumer:{}", spec.name);
        self.health.expect(&check, "catching up");
        self.consumers.push((spec.name.clone(), handler.clone()));
        let (bus, health) = (self.bus.clone(), self.health.clone());
        self.supervisor
            .spawn(spec.name.clone(), RESTART, move |cancel| {
                consumer::run(
                    bus.clone(),
                    spec.clone(),
                    handler.clone(),
                    Some((health.clone(), check.clone())),
                    cancel,
                )
            });
    }
}
