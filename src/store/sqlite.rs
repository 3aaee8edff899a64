//! Opening SQLite read models: one writer connection (the projector) and any number of readers.
//!
//! Durability choice, stated here so it is never silent: the projector's connection uses WAL with
//! `synchronous=NORMAL`. A power loss may drop the last few committed transactions, but never
//! corrupts the file. That suits a read model because it stores the stream position it applied in
//! the same transaction as the rows, so after such a loss it resumes from an earlier position and
//! replays the lost events from JetStream. Stores that are the source of truth live in redb.
//!
//! A `Connection` is `Send` but not `Sync`: keep each one on one thread (`spawn_blocking`).

use super::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a connection waits for another one's lock before reporting `SQLITE_BUSY`. WAL readers
/// never block the writer; this covers checkpoints and a second writer started by mistake.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Plans that do not depend on bound values (SQLite's "query planner stability guarantee").
///
/// Without it, SQLite marks a statement to be prepared again whenever a parameter it compared
/// while planning is bound anew; the bundled SQLite (3.54) checks whether an equality's value
/// is 0 or 1 for its row estimates, which marks nearly every `col = ?`. rusqlite clears the
/// bindings of a statement it puts back in its cache, and clearing them expires a statement so
/// marked, so every cached statement was parsed and planned again on every run: ~8 % of
/// souk's CPU during the catalog search load (`benches/load`, `catalog`, perf). Souk's queries
/// do not rely on value-dependent plans (there are no `sqlite_stat4` samples to plan from; the
/// shapes that need a particular index name it).
fn fixed_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map(|_| ())
}

/// Opens (creating if needed) the projector's read-write connection: WAL, `synchronous=NORMAL`,
/// foreign keys on, a busy timeout.
pub fn open_sqlite(path: &Path) -> Result<Connection, StoreError> {
    let err = |during| move |e| sqlite_error(path, during, e);
    let conn = Connection::open(path).map_err(err("opening the SQLite file"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("setting busy_timeout"))?;
    fixed_plans(&conn).map_err(err("fixing query plans (SQLITE_DBCONFIG_ENABLE_QPSG)"))?;
    // journal_mode answers with the mode in force; a file system without shared memory support
    // silently stays in another mode, which would make readers block the projector.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(err("switching to WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            during: "switching to WAL",
            source: Arc::new(std::io::Error::other(format!(
                "journal_mode stayed {mode:?}; put the data directory on a local file system"
            ))),
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err("setting synchronous=NORMAL"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(err("turning foreign keys on"))?;
    Ok(conn)
}

/// Opens a read-only connection to a file the projector has created. It sees each projector
/// commit as soon as it is made, and any write through it fails.
pub fn open_sqlite_reader(path: &Path) -> Result<Connection, StoreError> {
    let err = |during| move |e| sqlite_error(path, during, e);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(err("opening the SQLite file read-only"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("setting busy_timeout"))?;
    fixed_plans(&conn).map_err(err("fixing query plans (SQLITE_DBCONFIG_ENABLE_QPSG)"))?;
    Ok(conn)
}

fn sqlite_error(path: &Path, during: &'static str, e: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        during,
        source: Arc::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma<T: rusqlite::types::FromSql>(conn: &Connection, name: &str) -> T {
        conn.pragma_query_value(None, name, |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn projector_connection_is_wal_normal_with_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_sqlite(&dir.path().join("catalog.sqlite")).unwrap();
        assert_eq!(pragma::<String>(&conn, "journal_mode"), "wal");
        assert_eq!(pragma::<i64>(&conn, "synchronous"), 1, "1 = NORMAL");
        assert_eq!(pragma::<i64>(&conn, "foreign_keys"), 1);
        assert_eq!(pragma::<i64>(&conn, "busy_timeout"), 5000);
        // Foreign keys are enforced, not just reported as on.
        conn.execute_batch(
            "CREATE TABLE seller (id TEXT PRIMARY KEY);
             CREATE TABLE listing (id TEXT PRIMARY KEY, seller TEXT NOT NULL REFERENCES seller(id));",
        )
        .unwrap();
        let orphan = conn.execute("INSERT INTO listing VALUES ('l1', 'nobody')", []);
        assert!(orphan.is_err());
    }

    #[test]
    fn reader_sees_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let writer = open_sqlite(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        let reader = open_sqlite_reader(&path).unwrap();
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        assert!(reader.execute("INSERT INTO t VALUES (3)", []).is_err());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.sqlite");
        let e = open_sqlite_reader(&path).unwrap_err();
        assert_eq!(e.path(), path);
        assert!(e.to_string().contains("missing.sqlite"), "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
    }

    /// A statement from the cache runs its stored plan again, on the writer and on a reader,
    /// however its parameters change: it is not parsed and planned again on each run.
    #[test]
    fn cached_statements_are_not_prepared_again_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let writer = open_sqlite(&path).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE items (id TEXT PRIMARY KEY, status TEXT NOT NULL, price INTEGER
                     NOT NULL, hidden INTEGER NOT NULL DEFAULT 0);
                 CREATE INDEX items_status_id ON items(hidden, status, id);
                 INSERT INTO items VALUES ('a', 'active', 5, 0), ('b', 'sold', 7, 0);",
            )
            .unwrap();
        let reader = open_sqlite_reader(&path).unwrap();
        // The shapes of a catalog search and of the projector's seller lookup.
        let shapes = [
            "SELECT id FROM items WHERE hidden = 0 AND status = ?1 ORDER BY id DESC LIMIT 21",
            "SELECT id FROM items WHERE hidden = 0 AND status = 'active' AND price >= ?1",
            "SELECT (SELECT price FROM items WHERE id = ?1)",
        ];
        let values = [
            [
                rusqlite::types::Value::from("active".to_string()),
                "sold".to_string().into(),
            ],
            [5.into(), 7.into()],
            ["a".to_string().into(), "b".to_string().into()],
        ];
        for conn in [&writer, &reader] {
            for (sql, values) in shapes.iter().zip(&values) {
                for v in values.iter().cycle().take(6) {
                    let mut stmt = conn.prepare_cached(sql).unwrap();
                    let rows = stmt.query_map([v], |_| Ok(())).unwrap().count();
                    assert!(rows <= 1, "{sql}");
                }
                let stmt = conn.prepare_cached(sql).unwrap();
                assert_eq!(
                    stmt.get_status(rusqlite::StatementStatus::RePrepare),
                    0,
                    "{sql} was prepared again"
                );
            }
        }
    }
}
