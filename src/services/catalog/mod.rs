//! The catalog: a CQRS read model of listings joined with their seller, in `catalog.sqlite`,
//! fed by two durable consumers (`catalog-listings`, `catalog-users`) and served as
//! `souk-catalog`. Eventually consistent with the write side; `min_version` gives
//! read-your-writes.
//!
//! Replicas (DESIGN.md, Scale-out): every catalog instance builds its own copy from the streams
//! and answers in the same queue group. Durable consumers share their messages among whoever
//! pulls, so each replica needs consumers of its own: the first one takes the plain names, and
//! a replica that finds them taken takes `catalog-<replica>-listings` and `-users` (see
//! [`replica`]). The choice is kept in `<data_dir>/catalog.replica`.

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
    /// This replica's name ("" for the first, whose consumers have the plain names).
    pub replica: String,
    pub applied: watch::Sender<u64>,
    pub rebuilds: rebuild::Rebuilds,
    pub bus: crate::bus::Bus,
    /// One permit per read connection: see [`Catalog::read`].
    reads: Semaphore,
}

impl Catalog {
    /// The durable consumer of this replica for `purpose` (`listings` or `users`).
    pub fn consumer(&self, purpose: &str) -> String {
        consumer_name(self.bus.names(), &self.replica, purpose)
    }

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

fn consumer_name(names: &crate::bus::Names, replica: &str, purpose: &str) -> String {
    if replica.is_empty() {
        names.consumer("catalog", purpose)
    } else {
        names.consumer("catalog", &format!("{replica}-{purpose}"))
    }
}

const REPLICA_FILE: &str = "catalog.replica";
/// See [`start`]: how long an unused catalog consumer is kept.
const REPLICA_CONSUMERS_EXPIRE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// This data dir's replica name: the one recorded in `catalog.replica`; else "" (the plain
/// consumer names) for a catalog that already exists here (made before replicas had names) or
/// when nobody holds the plain names yet; else a new name. Two replicas that both start for the
/// first time at the same instant can still pick the plain names together; start them one
/// after the other.
pub async fn replica(dir: &std::path::Path, bus: &crate::bus::Bus) -> anyhow::Result<String> {
    use anyhow::Context;
    let file = dir.join(REPLICA_FILE);
    if let Ok(name) = std::fs::read_to_string(&file) {
        return Ok(name.trim().to_string());
    }
    let existing = dir.join(store::DEFAULT_FILE).exists() || dir.join(store::POINTER).exists();
    let taken = !existing && {
        let names = bus.names();
        let stream = bus
            .jetstream
            .get_stream(names.stream("listings"))
            .await
            .context("looking for the catalog's consumers")?;
        stream
            .consumer_info(names.consumer("catalog", "listings"))
            .await
            .is_ok()
    };
    let name = if taken {
        let id = crate::ids::new("r");
        format!("r{}", &id[id.len() - 8..])
    } else {
        String::new()
    };
    std::fs::write(&file, &name)
        .with_context(|| format!("recording the catalog replica in {}", file.display()))?;
    if taken {
        tracing::info!(replica = %name, "another catalog holds the plain consumer names; this one is a replica with its own");
    }
    Ok(name)
}

/// Opens `catalog.sqlite`, starts the projector's two consumers and `souk-catalog`.
pub async fn start(rt: &mut Runtime<'_>) -> anyhow::Result<Arc<Catalog>> {
    let dir = rt.config.data_dir.clone();
    let replica = replica(&dir, rt.bus).await?;
    let db = tokio::task::spawn_blocking(move || store::Db::open(&dir)).await??;
    let (applied, _) = watch::channel(0);
    let catalog = Arc::new(Catalog {
        db: db.clone(),
        replica: replica.clone(),
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
        let mut spec = Spec::new(
            consumer_name(&names, &replica, purpose),
            names.stream(stream),
            vec![format!("{}.events.{aggregate}.>", names.prefix())],
        );
        // A replica retired for good (or whose data dir was wiped: it starts as a new one)
        // leaves its consumers behind; JetStream removes them after a month without a puller.
        // One back after longer replays the streams into its catalog, which changes nothing.
        spec.inactive_threshold = Some(REPLICA_CONSUMERS_EXPIRE);
        rt.consumer(spec, projector.clone());
    }
    let c = catalog.clone();
    rt.rpc("catalog", move || rpc::service(c.clone()));
    Ok(catalog)
}
