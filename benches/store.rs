//! Durable write throughput of `souk::store::Store` (group commit) against raw redb committing
//! one transaction per write, at 1, 8 and 64 concurrent writers, in one run on one disk.
//! Also compares, on one thread, the store's way of isolating the jobs of a batch (one shared
//! transaction; a refused job rolls it back and the jobs before it run again) with a transaction
//! per job, and shows why neither is done with ephemeral savepoints.
//!
//! `cargo bench --bench store` prints Markdown tables. Files go under Cargo's target tmp dir,
//! i.e. on the disk the build uses (not a tmpfs, where fsync would cost nothing).

use redb::{Database, Durability, TableDefinition};
use souk::store::{Store, encode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// How long each measurement runs.
const RUN: Duration = Duration::from_millis(1500);
const RUNS: usize = 3;
const WRITERS: [usize; 3] = [1, 8, 64];

fn main() {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let value: Arc<[u8]> = event().into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    println!(
        "\nDurable writes/s, {} B values, {RUN:?} per run, median of {RUNS} runs (min–max), files in {}\n",
        value.len(),
        tmp.display()
    );
    println!(
        "| writers | `Store::write` | writes per fsync | raw redb, 1 txn per write | speedup |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for writers in WRITERS {
        let (mut store, mut raw, mut per_commit) = (vec![], vec![], vec![]);
        // Interleaved, so drift on a shared machine hits both sides alike.
        for _ in 0..RUNS {
            let dir = tempfile::tempdir_in(tmp).unwrap();
            let (rate, ratio) = rt.block_on(through_store(&dir, writers, value.clone()));
            store.push(rate);
            per_commit.push(ratio);
            let dir = tempfile::tempdir_in(tmp).unwrap();
            raw.push(raw_redb(&dir, writers, value.clone()));
        }
        println!(
            "| {writers} | {} | {:.1} | {} | {:.1}× |",
            summary(&store),
            median(&per_commit),
            summary(&raw),
            median(&store) / median(&raw)
        );
    }

    let dir = tempfile::tempdir_in(tmp).unwrap();
    isolation_cost(&dir, &value);
}

/// A serialized event of a realistic size (~300 B).
fn event() -> Vec<u8> {
    encode(&serde_json::json!({
        "id": "evt_01jd8x3k9q2m7v5c4b6n1p0r8s", "type": "listing.created", "aggregate": "listing",
        "aggregate_id": "lst_01jd8x3k9q2m7v5c4b6n1p0r8t", "version": 1,
        "occurred_at": "2026-11-21T10:00:00.123Z", "correlation_id": "req_01jd8x3k9q2m7v5c",
        "actor": "acc_01jd8x3k9q2m7v5c", "data": {"title": "Walnut side table", "price": 12500,
        "currency": "EUR", "seller": "acc_01jd8x3k9q2m7v5c", "status": "active"}
    }))
}

/// Writes through `Store::write` from `writers` tasks; returns (writes/s, writes per commit).
async fn through_store(dir: &tempfile::TempDir, writers: usize, value: Arc<[u8]>) -> (f64, f64) {
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers as u64)
        .map(|w| {
            let (store, value, done) = (store.clone(), value.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while start.elapsed() < RUN {
                    let (key, value) = (w << 40 | i, value.clone());
                    store
                        .write(move |txn| {
                            txn.open_table(EVENTS)?.insert(key, &*value)?;
                            Ok::<_, redb::Error>(())
                        })
                        .await
                        .unwrap();
                    i += 1;
                }
                done.fetch_add(i, Ordering::Relaxed);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let writes = done.load(Ordering::Relaxed) as f64;
    let commits = *store.commits().borrow() as f64;
    (writes / elapsed, writes / commits)
}

/// What a service would do without the store: each writer thread commits its own write.
fn raw_redb(dir: &tempfile::TempDir, writers: usize, value: Arc<[u8]>) -> f64 {
    let db = Arc::new(Database::create(dir.path().join("raw.redb")).unwrap());
    let start = Instant::now();
    let threads: Vec<_> = (0..writers as u64)
        .map(|w| {
            let (db, value) = (db.clone(), value.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while start.elapsed() < RUN {
                    let txn = db.begin_write().unwrap();
                    txn.open_table(EVENTS)
                        .unwrap()
                        .insert(w << 40 | i, &*value)
                        .unwrap();
                    txn.commit().unwrap();
                    i += 1;
                }
                i
            })
        })
        .collect();
    let writes: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    writes as f64 / start.elapsed().as_secs_f64()
}

/// How a batch of jobs is committed, in [`isolation_cost`].
#[derive(Clone, Copy)]
enum Batching {
    /// A `Durability::None` transaction per job, the last one `Immediate` (the store's way
    /// before jobs shared a transaction).
    PerJob,
    /// All jobs in one transaction (the store's way).
    Shared,
    /// As `Shared`, but the batch's last job writes and then refuses: the transaction is rolled
    /// back and the others run again in a new one (what the store does then).
    SharedLastRefused,
}

/// Batches of 64 writes on one thread, each batch ending with one durable commit.
fn isolation_cost(dir: &tempfile::TempDir, value: &[u8]) {
    let db = Database::create(dir.path().join("isolation.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    drop(txn.open_table(EVENTS).unwrap());
    let refused = txn.ephemeral_savepoint().err();
    txn.commit().unwrap();
    println!("\n`ephemeral_savepoint()` after the batch's first job opened a table: {refused:?}\n");

    const BATCH: u64 = 64;
    let mut key = 0u64;
    let mut measure = |how: Batching| {
        let start = Instant::now();
        let mut writes = 0u64;
        while start.elapsed() < RUN {
            match how {
                Batching::PerJob => {
                    for j in 0..BATCH {
                        let mut txn = db.begin_write().unwrap();
                        if j + 1 < BATCH {
                            txn.set_durability(Durability::None).unwrap();
                        }
                        txn.open_table(EVENTS).unwrap().insert(key, value).unwrap();
                        txn.commit().unwrap();
                        key += 1;
                    }
                }
                Batching::Shared | Batching::SharedLastRefused => {
                    let mut txn = db.begin_write().unwrap();
                    for _ in 0..BATCH {
                        txn.open_table(EVENTS).unwrap().insert(key, value).unwrap();
                        key += 1;
                    }
                    if let Batching::SharedLastRefused = how {
                        txn.abort().unwrap();
                        txn = db.begin_write().unwrap();
                        key -= BATCH;
                        for _ in 0..BATCH - 1 {
                            txn.open_table(EVENTS).unwrap().insert(key, value).unwrap();
                            key += 1;
                        }
                        key += 1;
                    }
                    txn.commit().unwrap();
                }
            }
            writes += BATCH;
        }
        writes as f64 / start.elapsed().as_secs_f64()
    };
    let hows = [
        (
            Batching::PerJob,
            "a transaction per job (`Durability::None`, the last one `Immediate`)",
        ),
        (Batching::Shared, "one transaction for the batch (`Store`)"),
        (
            Batching::SharedLastRefused,
            "one transaction, the last job refused: rolled back, 63 run again",
        ),
    ];
    let mut rates = vec![vec![]; hows.len()];
    for _ in 0..RUNS {
        for (i, (how, _)) in hows.iter().enumerate() {
            rates[i].push(measure(*how));
        }
    }
    println!("| batches of {BATCH}, one thread | jobs/s |");
    println!("| --- | ---: |");
    for ((_, label), rates) in hows.iter().zip(&rates) {
        println!("| {label} | {} |", summary(rates));
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(xs: &[f64]) -> String {
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(0.0, f64::max);
    format!("{:.0} ({:.0}–{:.0})", median(xs), min, max)
}
