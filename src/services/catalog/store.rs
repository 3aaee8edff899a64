//! `catalog.sqlite`: the denormalised listing view (listing + seller name) with an FTS5 index,
//! the sellers seen, and the stream positions applied. One writer connection (the projector)
//! and a small pool of read connections.

use super::index::{self, Change, TextIndex};
use crate::store::StoreError;
use crate::store::sqlite::{open_sqlite, open_sqlite_reader};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// The tables. A generation being filled by a rebuild has only these (and the primary keys)
/// until [`Generation::finish_bulk`]; see [`DERIVED`].
const TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS items (
    id           TEXT PRIMARY KEY,
    seller_id    TEXT NOT NULL,
    seller_name  TEXT NOT NULL DEFAULT '',
    title        TEXT NOT NULL,
    description  TEXT NOT NULL,
    listing_type TEXT NOT NULL,
    price        INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    -- 1 when the listing was deleted or its seller was (kept for ordering by version)
    hidden       INTEGER NOT NULL DEFAULT 0
);
-- Kept by the projector (`apply_batch`), a batch at a time, not by row triggers: see there.
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
    title, description, content='items', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS sellers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT '',
    version    INTEGER NOT NULL,
    deleted    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS positions (
    stream TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
);
-- Visible items (hidden = 0) per status and type: the `total` of a search without text, price
-- or seller. Kept by the projector in the same transaction as the items.
CREATE TABLE IF NOT EXISTS item_counts (
    status       TEXT NOT NULL,
    listing_type TEXT NOT NULL,
    n            INTEGER NOT NULL,
    PRIMARY KEY (status, listing_type)
) WITHOUT ROWID;
"#;

/// What reads need beyond the tables: the secondary indexes. Cheaper to build once over a
/// filled table (a sort) than row by row, so a rebuild adds them at the end.
const DERIVED: &str = r#"
CREATE INDEX IF NOT EXISTS items_status_id ON items(hidden, status, id);
CREATE INDEX IF NOT EXISTS items_status_price ON items(hidden, status, price, id);
-- With hidden and status, so a seller's page is read from this index alone and the planner does
-- not prefer (hidden, status), which is far less selective.
CREATE INDEX IF NOT EXISTS items_seller_status ON items(seller_id, hidden, status, id);
DROP INDEX IF EXISTS items_seller;
CREATE TRIGGER IF NOT EXISTS items_ad AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, title, description)
        VALUES ('delete', old.rowid, old.title, old.description);
END;
-- Files written by earlier versions indexed text with row triggers; the projector does now.
DROP TRIGGER IF EXISTS items_ai;
DROP TRIGGER IF EXISTS items_au;
"#;

/// Read connections per generation, at most. Opening one parses the schema and starts with a
/// cold cache, so they are kept; and as searches are CPU-bound, more of them at once than a
/// few per core only adds switching. Callers beyond this wait for a free one. (An earlier pool
/// kept 8 but opened one per caller beyond that: under 64 concurrent searches it opened and
/// closed connections constantly.)
pub const READERS: usize = 8;

/// Each reader's page cache (KiB, as `cache_size` takes it negated). Not mapped with `mmap`:
/// each mapping of the whole file counts in the process's RSS, which read as tens of GiB.
const READER_CACHE_KIB: i64 = 16 * 1024;

/// The live writer's page cache (KiB): the indexes' upper pages of a catalog of a million
/// listings, so an event's inserts do not re-read them.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// WAL pages after which a commit of the live writer checkpoints (SQLite's default is 1,000).
/// A projector batch dirties a leaf of each random-order index (price, seller) per event, and a
/// checkpoint copies each page once however often the WAL holds it: at 1,000 pages the writer
/// checkpointed every few batches, which was ~15 % of its time, and catch-up ran at 8k
/// events/s; at 10,000 (~40 MiB of WAL) 14k (`benches/load`, `projector`).
const WRITER_AUTOCHECKPOINT: i64 = 10_000;

/// The WAL file is cut back to this after a checkpoint instead of keeping its largest size.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The live writer's settings (a new generation's writer gets them once its bulk fill is done).
fn tune_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
}

/// Prepared statements each reader keeps (rusqlite keeps 16 by default). A search's SQL
/// depends on which filters and which order it has, and the query mix of `benches/load`
/// (`catalog`) alone has more than 16 shapes: with the default, statements were parsed again
/// and again (~3 % of souk's CPU under that load).
const READER_STATEMENTS: usize = 128;

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = open_sqlite_reader(path)?;
    conn.set_prepared_statement_cache_capacity(READER_STATEMENTS);
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(|e| sqlite_error(path, "sizing a reader's cache", e))?;
    Ok(conn)
}

/// A read connection out of the pool; back in it when dropped.
struct Lease<'a> {
    generation: &'a Generation,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut readers = self
                .generation
                .readers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            readers.idle.push(conn);
        }
        self.generation.reader_free.notify_one();
    }
}

/// A generation's read connections: the idle ones, and how many exist.
#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// The writer's page cache while a rebuild fills a generation (KiB, as `cache_size` takes it
/// negated): the primary keys of a million rows stay in memory instead of being re-read.
const BULK_CACHE_KIB: i64 = 256 * 1024;

/// FTS5's pending-terms buffer while it indexes a rebuilt generation (bytes; its `hashsize`
/// option). With the default of 1 MiB the `rebuild` of a million listings writes ~hundreds of
/// small segments and merges them over and over: 10.6 s; with 64 MiB, 7.4 s (a stand-alone
/// copy of the schema, 1M rows). Set for the rebuild only: the live writer's transactions are
/// small and go back to the default ([`FTS_HASH`]).
const BULK_FTS_HASH: i64 = 64 * 1024 * 1024;

/// FTS5's default `hashsize`.
const FTS_HASH: i64 = 1024 * 1024;

/// Recounts `item_counts` from the items (a version 1 file, and the end of a bulk fill).
const RECOUNT: &str = "DELETE FROM item_counts;
    INSERT INTO item_counts(status, listing_type, n)
        SELECT status, listing_type, count(*) FROM items WHERE hidden = 0
        GROUP BY status, listing_type;";

/// The schema version this souk writes (`PRAGMA user_version`). 2 added `item_counts`, which
/// a version 1 souk would not keep up to date, hence the new number.
const SCHEMA_VERSION: i64 = 2;

/// A SQLite failure on the catalog file, in the store's error type.
pub fn sqlite_error(path: &Path, during: &'static str, e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        during,
        source: Arc::new(e),
    }
}

/// One catalog file and its connections: the projector's writer and a small reader pool.
pub struct Generation {
    path: PathBuf,
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Readers>,
    /// Signalled when a reader is returned (or one failed to open).
    reader_free: Condvar,
    /// Replaced by a rebuild: its files are removed once the last reader lets go of it.
    obsolete: AtomicBool,
    /// Being filled by a rebuild: no secondary indexes and no full-text index yet.
    bulk: AtomicBool,
    /// The in-memory search index over this file's rows (see `index.rs`).
    text: RwLock<TextState>,
    /// Held while building it, so two builds never interleave their queues.
    building: Mutex<()>,
}

/// Where a generation's in-memory search index is.
enum TextState {
    /// Not built (a generation being bulk-filled); searches use FTS5.
    Absent,
    /// Being built from the rows; the projector's changes since it began wait here, in order.
    Building(Vec<Change>),
    Ready(Box<TextIndex>),
    /// The rows cannot be indexed (logged); searches use FTS5.
    Failed,
}

impl Generation {
    fn open(path: &Path) -> Result<Arc<Generation>, StoreError> {
        Generation::open_as(path, false)
    }

    /// `bulk`: only the tables, no durability until [`Generation::finish_bulk`] (a rebuild
    /// that does not finish is thrown away anyway), and a large page cache.
    fn open_as(path: &Path, bulk: bool) -> Result<Arc<Generation>, StoreError> {
        let writer = open_sqlite(path)?;
        let found: i64 = writer
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| sqlite_error(path, "reading the catalog schema version", e))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::UnknownFormat {
                path: path.to_path_buf(),
                found: found as u8,
                supported: SCHEMA_VERSION as u8,
            });
        }
        let schema = if bulk {
            TABLES.to_string()
        } else if found < SCHEMA_VERSION {
            format!("BEGIN; {TABLES}{DERIVED}{RECOUNT} COMMIT;")
        } else {
            format!("{TABLES}{DERIVED}")
        };
        writer
            .execute_batch(&schema)
            .and_then(|()| writer.pragma_update(None, "user_version", SCHEMA_VERSION))
            .map_err(|e| sqlite_error(path, "creating the catalog schema", e))?;
        if bulk {
            // No journal either: each page is written once instead of to the WAL and then again
            // by checkpoints. A crash mid-fill leaves a broken file, which nobody reads: a
            // rebuild that does not finish is thrown away, and `finish_bulk` syncs the file.
            writer
                .pragma_update(None, "journal_mode", "OFF")
                .and_then(|()| writer.pragma_update(None, "synchronous", "OFF"))
                .and_then(|()| writer.pragma_update(None, "cache_size", -BULK_CACHE_KIB))
                .map_err(|e| sqlite_error(path, "preparing a bulk fill", e))?;
        } else {
            tune_writer(&writer).map_err(|e| sqlite_error(path, "tuning the writer", e))?;
        }
        Ok(Arc::new(Generation {
            path: path.to_path_buf(),
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Readers::default()),
            reader_free: Condvar::new(),
            obsolete: AtomicBool::new(false),
            bulk: AtomicBool::new(bulk),
            text: RwLock::new(TextState::Absent),
            building: Mutex::new(()),
        }))
    }

    /// Builds the in-memory search index in the background (a thread of its own: seconds for
    /// a million listings, during which searches run on FTS5).
    pub fn spawn_text_index(self: &Arc<Self>) {
        let generation = self.clone();
        let spawned = std::thread::Builder::new()
            .name("catalog-index".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match generation.build_text_index() {
                    Ok((rows, words)) => tracing::info!(
                        rows, words, took = ?started.elapsed(), file = %generation.path.display(),
                        "catalog search index ready"
                    ),
                    Err(e) => tracing::warn!(
                        error = %e, file = %generation.path.display(),
                        "catalog searches stay on SQLite FTS5 (slower on common words): {e}"
                    ),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the catalog index thread; searches stay on SQLite FTS5");
        }
    }

    /// Builds the search index from the rows (blocking), then applies what the projector
    /// changed meanwhile. Returns the rows and distinct words indexed.
    pub fn build_text_index(&self) -> Result<(u64, usize), anyhow::Error> {
        let _one = self.building.lock().unwrap();
        *self.text.write().unwrap() = TextState::Building(Vec::new());
        let built = (|| -> anyhow::Result<TextIndex> {
            // Changes committed from here on are queued; those the snapshot below also holds
            // are applied again, which leaves the same state (each carries the whole row).
            let conn = open_reader(&self.path)?;
            let err = |e| sqlite_error(&self.path, "reading the catalog to index it", e);
            let mut stmt = conn
                .prepare(
                    "SELECT rowid, id, seller_id, listing_type, status, price, hidden, title,
                            description
                     FROM items ORDER BY rowid",
                )
                .map_err(err)?;
            let mut rows = stmt.query([]).map_err(err)?;
            let mut text = TextIndex::default();
            while let Some(r) = rows.next().map_err(err)? {
                let item = index::Item {
                    rowid: r.get(0).map_err(err)?,
                    id: r.get(1).map_err(err)?,
                    seller_id: r.get(2).map_err(err)?,
                    listing_type: r.get(3).map_err(err)?,
                    status: r.get(4).map_err(err)?,
                    price: r.get(5).map_err(err)?,
                    hidden: r.get(6).map_err(err)?,
                    old_text: None,
                    new_text: Some((r.get(7).map_err(err)?, r.get(8).map_err(err)?)),
                };
                text.apply(&Change::Item(item))?;
            }
            Ok(text)
        })();
        let mut state = self.text.write().unwrap();
        let queued = match std::mem::replace(&mut *state, TextState::Failed) {
            TextState::Building(queued) => queued,
            _ => Vec::new(),
        };
        let mut text = built?;
        for change in &queued {
            text.apply(change)?;
        }
        let figures = (text.len(), text.words());
        *state = TextState::Ready(Box::new(text));
        Ok(figures)
    }

    /// Keeps the search index up to date with a committed batch (call in commit order).
    pub fn index_changes(&self, changes: Vec<Change>) {
        let mut state = self.text.write().unwrap();
        match &mut *state {
            TextState::Building(queued) => queued.extend(changes),
            TextState::Ready(text) => {
                for change in &changes {
                    if let Err(e) = text.apply(change) {
                        tracing::warn!(
                            error = %e, file = %self.path.display(),
                            "catalog searches go back to SQLite FTS5 (slower on common words): {e}"
                        );
                        *state = TextState::Failed;
                        return;
                    }
                }
            }
            TextState::Absent | TextState::Failed => {}
        }
    }

    /// Runs `f` on the search index, if it is ready.
    pub fn with_text_index<T>(&self, f: impl FnOnce(&TextIndex) -> T) -> Option<T> {
        match &*self.text.read().unwrap() {
            TextState::Ready(text) => Some(f(text)),
            _ => None,
        }
    }

    /// The search index's state for operators: `ready` (with its rows and words),
    /// `building`, or `off` (searches use FTS5).
    pub fn text_index_status(&self) -> serde_json::Value {
        match &*self.text.read().unwrap() {
            TextState::Ready(t) => {
                serde_json::json!({"state": "ready", "rows": t.len(), "words": t.words()})
            }
            TextState::Building(_) => serde_json::json!({"state": "building"}),
            TextState::Absent | TextState::Failed => serde_json::json!({"state": "off"}),
        }
    }

    /// Whether searches use the in-memory index (else FTS5).
    pub fn text_index_ready(&self) -> bool {
        matches!(&*self.text.read().unwrap(), TextState::Ready(_))
    }

    /// Whether a rebuild is still filling this generation (see [`Db::create_next_bulk`]).
    pub fn is_bulk(&self) -> bool {
        self.bulk.load(Ordering::SeqCst)
    }

    /// Ends a bulk fill: builds the full-text index from the rows in one pass, adds the
    /// secondary indexes, counts the items, and makes the file durable (`synchronous=NORMAL`, a
    /// full checkpoint) before anyone can swap it in, and logs how long each of these took.
    /// Blocking; seconds for a million rows.
    pub fn finish_bulk(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let mut phases = [std::time::Duration::ZERO; 4];
        let mut timed = |phase: usize, c: &Connection, sql: &str| {
            let started = std::time::Instant::now();
            let done = c.execute_batch(sql);
            phases[phase] = started.elapsed();
            done
        };
        self.write(|c| {
            timed(
                0,
                c,
                &format!(
                    "BEGIN;
                     INSERT INTO items_fts(items_fts, rank) VALUES ('hashsize', {BULK_FTS_HASH});
                     INSERT INTO items_fts(items_fts) VALUES ('rebuild');
                     INSERT INTO items_fts(items_fts, rank) VALUES ('hashsize', {FTS_HASH});"
                ),
            )
            .and_then(|()| timed(1, c, DERIVED))
            .and_then(|()| timed(2, c, &format!("{RECOUNT} COMMIT;")))
            .and_then(|()| c.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| tune_writer(c))
            .and_then(|()| {
                c.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get::<_, String>(0))
                    .map(drop)
            })
            .map_err(|e| sqlite_error(path, "indexing a rebuilt catalog", e))
        })?;
        // Everything was written without a sync: make it durable before it can be swapped in.
        let started = std::time::Instant::now();
        std::fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Io {
                path: path.clone(),
                during: "syncing a rebuilt catalog",
                source: Arc::new(e),
            })?;
        phases[3] = started.elapsed();
        let [text, indexes, counts, sync] = phases;
        tracing::info!(?text, ?indexes, ?counts, ?sync, file = %path.display(), "indexed a rebuilt catalog");
        self.bulk.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a read connection (blocking: call from `spawn_blocking`).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut readers = self.readers.lock().unwrap();
        let conn = 'leased: loop {
            if let Some(c) = readers.idle.pop() {
                // Not holding the lock while `f` runs: the lease takes it again to give back.
                drop(readers);
                break 'leased c;
            }
            if readers.open < READERS {
                readers.open += 1;
                drop(readers);
                match open_reader(&self.path) {
                    Ok(c) => break 'leased c,
                    Err(e) => {
                        self.readers.lock().unwrap().open -= 1;
                        self.reader_free.notify_one();
                        return Err(e);
                    }
                }
            }
            readers = self.reader_free.wait(readers).unwrap();
        };
        // Returned on the way out, even if `f` panics, so the pool never shrinks.
        let lease = Lease {
            generation: self,
            conn: Some(conn),
        };
        f(lease.conn.as_ref().expect("leased"))
    }

    /// Runs `f` on the writer connection (blocking).
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.writer.lock().unwrap();
        f(guard
            .as_mut()
            .expect("the writer is open until the generation is dropped"))
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.obsolete.load(Ordering::SeqCst) {
            return;
        }
        // Close every connection before the files go, so SQLite never touches a -wal by name
        // that belongs to no one.
        self.writer.get_mut().map(Option::take).ok();
        if let Ok(r) = self.readers.get_mut() {
            r.idle.clear();
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The live catalog: the current generation, which a rebuild replaces as a whole. The file in
/// use is named by `catalog.current` (absent: `catalog.sqlite`).
pub struct Db {
    dir: PathBuf,
    current: RwLock<Arc<Generation>>,
    /// Held (shared) by the projector while it applies a batch, and (exclusive) by a rebuild
    /// while it catches up and swaps, so no event lands in a generation being replaced.
    pub gate: tokio::sync::RwLock<()>,
}

pub const POINTER: &str = "catalog.current";

/// Removes catalog files other than `current`'s: a rebuild cut short (`kill -9`, a crash) or
/// a replaced generation whose removal a crash interrupted. Each can be as large as the catalog.
fn sweep(dir: &Path, current: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().to_string();
        let base = name
            .strip_suffix("-wal")
            .or_else(|| name.strip_suffix("-shm"))
            .unwrap_or(&name);
        let generation = base == DEFAULT_FILE
            || base
                .strip_prefix("catalog-")
                .and_then(|r| r.strip_suffix(".sqlite"))
                .is_some_and(|ts| !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()));
        if generation && base != current {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!(file = %name, bytes = size, "removed a catalog file no generation uses (a rebuild cut short, or a replaced catalog)")
                }
                Err(e) => {
                    tracing::warn!(file = %name, "could not remove an unused catalog file: {e}")
                }
            }
        }
    }
}
pub const DEFAULT_FILE: &str = "catalog.sqlite";

impl Db {
    /// Opens the catalog in `dir` (the data dir).
    pub fn open(dir: &Path) -> Result<Arc<Db>, StoreError> {
        let name = std::fs::read_to_string(dir.join(POINTER))
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .unwrap_or_else(|| DEFAULT_FILE.to_string());
        sweep(dir, &name);
        let generation = Generation::open(&dir.join(name))?;
        generation.spawn_text_index();
        Ok(Arc::new(Db {
            dir: dir.to_path_buf(),
            current: RwLock::new(generation),
            gate: tokio::sync::RwLock::new(()),
        }))
    }

    pub fn current(&self) -> Arc<Generation> {
        self.current.read().unwrap().clone()
    }

    pub fn path(&self) -> PathBuf {
        self.current().path.clone()
    }

    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.current().read(f)
    }

    /// A fresh, empty generation beside the current one, for a rebuild.
    pub fn create_next(&self) -> Result<Arc<Generation>, StoreError> {
        self.create_next_as(false)
    }

    /// Like [`Db::create_next`], in bulk mode: fill it with `apply_batch`, then call
    /// [`Generation::finish_bulk`] before anything else uses it.
    pub fn create_next_bulk(&self) -> Result<Arc<Generation>, StoreError> {
        self.create_next_as(true)
    }

    fn create_next_as(&self, bulk: bool) -> Result<Arc<Generation>, StoreError> {
        let name = format!(
            "catalog-{}.sqlite",
            crate::clock::unix_millis(std::time::SystemTime::now())
        );
        let path = self.dir.join(name);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        Generation::open_as(&path, bulk)
    }

    /// Makes `next` the catalog (call with `gate` held exclusively). The old generation's files
    /// go when its last reader finishes.
    pub fn swap(&self, next: Arc<Generation>) -> Result<(), StoreError> {
        let name = next
            .path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let tmp = self.dir.join(format!("{POINTER}.tmp"));
        let io = |during, e| StoreError::Io {
            path: tmp.clone(),
            during,
            source: Arc::new(e),
        };
        std::fs::write(&tmp, &name).map_err(|e| io("writing the catalog pointer", e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("syncing the catalog pointer", e))?;
        std::fs::rename(&tmp, self.dir.join(POINTER))
            .map_err(|e| io("switching the catalog pointer", e))?;
        let old = std::mem::replace(&mut *self.current.write().unwrap(), next);
        old.obsolete.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The highest applied sequence per stream.
    pub fn positions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let path = self.path();
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT stream, seq FROM positions ORDER BY stream")
                .map_err(|e| sqlite_error(&path, "reading positions", e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| sqlite_error(&path, "reading positions", e))?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_sweeps_catalog_files_no_generation_uses() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join(POINTER), "catalog-200.sqlite").unwrap();
        for f in [
            "catalog.sqlite",
            "catalog.sqlite-wal",
            "catalog-100.sqlite",
            "catalog-100.sqlite-shm",
            "catalog.replica",
            "catalog-notes.sqlite",
            "users.redb",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let db = Db::open(d).unwrap();
        assert!(db.path().ends_with("catalog-200.sqlite"));
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with("catalog-200.sqlite"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "catalog-notes.sqlite",
                "catalog.current",
                "catalog.replica",
                "users.redb"
            ]
        );
    }
}
