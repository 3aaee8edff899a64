//! The catalog: a CQRS read model of listings joined with their seller, in `catalog.sqlite`,
//! fed by two durable consumers (`catalog-listings`, `catalog-users`) and served as
//! `souk-catalog`. Eventually consistent with the write side; `min_version` gives
//! read-your-writes.

pub mod index;
pub mod projector;
pub mod public;
pub mod query;
pub mod rebuild;
pub mod rpc;
pub mod store;

use crate::bus::rpc::RpcError;
use std::sync::Arc;
use tokio::sync::{Semaphore, watch};

pub struct Catalog {
    pub db: Arc<store::Db>,
    pub applied: watch::Sender<u64>,
    pub rebuilds: rebuild::Rebuilds,
    pub bus: crate::bus::Bus,
    /// One permit per read connection: see [`Catalog::read`].
    reads: Semaphore,
}

impl Catalog {
    /// Runs the blocking read `f` on the blocking pool, at most [`store::READERS`] at a time.
    /// Reads beyond that wait here, as tasks, instead of as blocking threads parked on the
    /// reader pool: under 64 concurrent searches that was ~56 threads waking each other.
    pub async fn read<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RpcError> {
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|e| RpcError::internal(what, e))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| RpcError::internal(what, e))
    }
}

use crate::bus::consumer::Spec;
use crate::services::runtime::Runtime;

/// Opens `catalog.sqlite`, starts the projector's two consumers and `souk-catalog`.
pub async fn start(rt: &mut Runtime<'_>) -> anyhow::Result<Arc<Catalog>> {
    let dir = rt.config.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || store::Db::open(&dir)).await??;
    let (applied, _) = watch::channel(0);
    let catalog = Arc::new(Catalog {
        db: db.clone(),
        applied: applied.clone(),
        rebuilds: rebuild::Rebuilds::default(),
        bus: rt.bus.clone(),
        reads: Semaphore::new(store::READERS),
    });
    let projector: Arc<dyn crate::bus::consumer::Handler> =
        Arc::new(projector::Projector { db, applied });
    let names = rt.bus.names().clone();
    for (purpose, stream, aggregate) in [
        ("listings", "listings", "listing"),
        ("users", "users", "user"),
    ] {
        let spec = Spec::new(
            names.consumer("catalog", purpose),
            names.stream(stream),
            vec![format!("{}.events.{aggregate}.>", names.prefix())],
        );
        rt.consumer(spec, projector.clone());
    }
    let c = catalog.clone();
    rt.rpc("catalog", move || rpc::service(c.clone()));
    Ok(catalog)
}
