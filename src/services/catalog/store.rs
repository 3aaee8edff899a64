//! `catalog.sqlite`: the denormalised listing view (listing + seller name) with an FTS5 index,
//! the sellers seen, and the stream positions applied. One writer connection (the projector)
//! and a small pool of read connections.

use crate::store::StoreError;
use crate::store::sqlite::{open_sqlite, open_sqlite_reader};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const SCHEMA: &str = r#"
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
CREATE INDEX IF NOT EXISTS items_status_id ON items(hidden, status, id);
CREATE INDEX IF NOT EXISTS items_status_price ON items(hidden, status, price, id);
CREATE INDEX IF NOT EXISTS items_seller ON items(seller_id, id);
CREATE VIRTUAL TABLE IF NOT EXISTS items_fts USING fts5(
    title, description, content='items', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS items_ai AFTER INSERT ON items BEGIN
    INSERT INTO items_fts(rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
CREATE TRIGGER IF NOT EXISTS items_ad AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, title, description)
        VALUES ('delete', old.rowid, old.title, old.description);
END;
CREATE TRIGGER IF NOT EXISTS items_au AFTER UPDATE OF title, description ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, title, description)
        VALUES ('delete', old.rowid, old.title, old.description);
    INSERT INTO items_fts(rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
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
"#;

/// The schema version this souk writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// A SQLite failure on the catalog file, in the store's error type.
pub fn sqlite_error(path: &Path, during: &'static str, e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        during,
        source: Arc::new(e),
    }
}

/// The catalog's SQLite file: the projector's connection and readers.
pub struct Db {
    path: PathBuf,
    pub writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Arc<Db>, StoreError> {
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
        writer
            .execute_batch(SCHEMA)
            .and_then(|()| writer.pragma_update(None, "user_version", SCHEMA_VERSION))
            .map_err(|e| sqlite_error(path, "creating the catalog schema", e))?;
        Ok(Arc::new(Db {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a read connection (blocking: call from `spawn_blocking`).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().unwrap().pop();
        let conn = match conn {
            Some(c) => c,
            None => open_sqlite_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap();
        if pool.len() < 8 {
            pool.push(conn);
        }
        result
    }

    /// The highest applied sequence per stream.
    pub fn positions(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT stream, seq FROM positions ORDER BY stream")
                .map_err(|e| sqlite_error(&self.path, "reading positions", e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| sqlite_error(&self.path, "reading positions", e))?;
            Ok(rows)
        })
    }
}
