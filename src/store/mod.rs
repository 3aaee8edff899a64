//! The embedded stores every service uses: one owner per file, no sharing between services.
//!
//! - [`kv`]: a redb file behind a [`Store`] with one writer thread that group-commits concurrent
//!   writes (one fsync for many requests) and reads from the last durable snapshot.
//! - [`codec`]: the versioned byte encoding of every value kept in redb.
//! - [`sqlite`]: opening SQLite read models (the projector's connection and read-only ones).
//!
//! Talks to nothing but the local files; services build their tables on top of these helpers.
//! [`StoreError`] is the one error type of this boundary and always names the file involved.

pub mod codec;
pub mod kv;
pub mod sqlite;

pub use codec::{FORMAT_VERSION, decode, encode, try_encode};
pub use kv::{Store, WriteError};
pub use sqlite::{open_sqlite, open_sqlite_reader};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What went wrong with a store file, worded for the operator who reads the log.
///
/// `path` is empty while an error is created inside a job that does not know its file (e.g. from
/// `?` on a redb error or [`decode`]); [`Store::read`] fills it in, and [`StoreError::at`] does so
/// for callers that carry the error elsewhere. Sources sit behind `Arc` so the writer can hand the
/// same failure to every job of a batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open store file {}: {source}. Check that the data directory exists and is \
         writable, that no other souk process uses it, and that the disk is not full",
        .path.display()
    )]
    Open {
        path: PathBuf,
        source: Arc<redb::DatabaseError>,
    },
    #[error("{}: {during} failed: {source}", place(.path))]
    Redb {
        path: PathBuf,
        during: &'static str,
        source: Arc<redb::Error>,
    },
    #[error(
        "{}: commit failed: {source}. The writes of this batch may or may not be on disk; further \
         writes are refused until souk restarts and reopens (repairs) the file",
        place(.path)
    )]
    Commit {
        path: PathBuf,
        source: Arc<redb::Error>,
    },
    #[error(
        "{}: writes are refused because an earlier commit failed ({cause}); restart souk so the \
         file is reopened and repaired",
        place(.path)
    )]
    Poisoned { path: PathBuf, cause: String },
    #[error("{}: a {job} job panicked: {message}; nothing it wrote was committed", place(.path))]
    Panicked {
        path: PathBuf,
        job: &'static str,
        message: String,
    },
    #[error(
        "{}: the writer stopped without answering: {message}. The write may or may not be on disk; \
         restart souk",
        place(.path)
    )]
    WriterFailed { path: PathBuf, message: String },
    #[error("{}: the store is closed (souk is shutting down)", place(.path))]
    Closed { path: PathBuf },
    #[error(
        "{}: a value is in format version {found}, this souk reads only version {supported}; it \
         was written by a newer souk: run that version, or restore a backup made by this one",
        place(.path)
    )]
    UnknownFormat {
        path: PathBuf,
        found: u8,
        supported: u8,
    },
    #[error("{}: a stored value cannot be decoded: {source}", place(.path))]
    Decode {
        path: PathBuf,
        source: Arc<serde_json::Error>,
    },
    #[error("{}: a value cannot be encoded: {source}", place(.path))]
    Encode {
        path: PathBuf,
        source: Arc<serde_json::Error>,
    },
    #[error("{}: {during} failed: {source}", place(.path))]
    Sqlite {
        path: PathBuf,
        during: &'static str,
        source: Arc<rusqlite::Error>,
    },
    #[error("{}: {during} failed: {source}", place(.path))]
    Io {
        path: PathBuf,
        during: &'static str,
        source: Arc<std::io::Error>,
    },
}

/// "store file <path>", or a neutral word while the path is not known yet.
fn place(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "store".to_string()
    } else {
        format!("store file {}", path.display())
    }
}

impl StoreError {
    /// The file the error is about (empty if not known yet).
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Open { path, .. }
            | StoreError::Redb { path, .. }
            | StoreError::Commit { path, .. }
            | StoreError::Poisoned { path, .. }
            | StoreError::Panicked { path, .. }
            | StoreError::WriterFailed { path, .. }
            | StoreError::Closed { path }
            | StoreError::UnknownFormat { path, .. }
            | StoreError::Decode { path, .. }
            | StoreError::Encode { path, .. }
            | StoreError::Sqlite { path, .. }
            | StoreError::Io { path, .. } => path,
        }
    }

    /// Names the file, unless the error already names one.
    pub fn at(mut self, file: &Path) -> StoreError {
        let path = match &mut self {
            StoreError::Open { path, .. }
            | StoreError::Redb { path, .. }
            | StoreError::Commit { path, .. }
            | StoreError::Poisoned { path, .. }
            | StoreError::Panicked { path, .. }
            | StoreError::WriterFailed { path, .. }
            | StoreError::Closed { path }
            | StoreError::UnknownFormat { path, .. }
            | StoreError::Decode { path, .. }
            | StoreError::Encode { path, .. }
            | StoreError::Sqlite { path, .. }
            | StoreError::Io { path, .. } => path,
        };
        if path.as_os_str().is_empty() {
            *path = file.to_path_buf();
        }
        self
    }

    pub(crate) fn redb(path: &Path, during: &'static str, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Redb {
            path: path.to_path_buf(),
            during,
            source: Arc::new(e.into()),
        }
    }
}

/// `?` on redb calls inside [`Store::read`] and [`Store::write`] jobs; the store adds the path.
macro_rules! from_redb {
    ($($ty:ty => $during:literal),* $(,)?) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> StoreError {
                StoreError::redb(Path::new(""), $during, e)
            }
        }
    )*};
}

from_redb! {
    redb::Error => "a redb operation",
    redb::TransactionError => "starting a transaction",
    redb::TableError => "opening a table",
    redb::StorageError => "reading or writing a table",
    redb::CommitError => "committing",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_once_it_is_known() {
        let e: StoreError = redb::StorageError::ValueTooLarge(5_000_000_000).into();
        assert!(
            e.to_string()
                .starts_with("store: reading or writing a table failed")
        );
        let e = e.at(Path::new("/data/users.redb"));
        assert_eq!(e.path(), Path::new("/data/users.redb"));
        assert!(
            e.to_string().starts_with("store file /data/users.redb: "),
            "{e}"
        );
        // A path already known is kept.
        let e = e.at(Path::new("/elsewhere.redb"));
        assert_eq!(e.path(), Path::new("/data/users.redb"));
    }
}
