//! The data dir: created private (0700), made private when found open to others, and locked so
//! two Souks never share one store. Also the process umask that keeps every file Souk and its
//! nats-server create private to Souk's user. `serve` and the offline `admin` commands open it.

use crate::config::{Config, env_var};
use std::fs::{self, File, TryLockError};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Why the data dir could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another Souk (or `souk admin`) holds its lock.
    #[error(
        "data dir {dir} is in use by another souk (pid {pid}); give each instance its own data \
         dir ({hint})"
    )]
    InUse {
        dir: String,
        pid: String,
        hint: String,
    },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Files created from here on are readable by Souk's user only (`auth.redb` holds password and
/// token hashes), whatever umask Souk was started with. The nats-server child inherits it.
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates the data dir (0700), takes its lock and makes the dir 0700 if group or others could
/// read it (one `info!` saying so). The lock lasts as long as the returned file.
pub fn open(config: &Config) -> Result<File, OpenError> {
    let dir = &config.data_dir;
    let hint = || {
        format!(
            "config `data_dir`, env {}, flag --data-dir",
            env_var("data_dir")
        )
    };
    let failed = |what: &str, e: std::io::Error| {
        OpenError::Failed(anyhow::anyhow!(
            "{what} {} ({}): {e}{}",
            dir.display(),
            hint(),
            access_hint(&e)
        ))
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed("cannot create data dir", e))?;
    let path = dir.join("souk.lock");
    let mut lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| failed("cannot write in data dir", e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            return Err(OpenError::InUse {
                dir: dir.display().to_string(),
                pid: holder.trim().to_string(),
                hint: hint(),
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(anyhow::Error::new(e)
                .context(format!("cannot lock {}", path.display()))
                .into());
        }
    }
    lock.set_len(0)
        .and_then(|()| write!(lock, "{}", std::process::id()))
        .map_err(|e| failed("cannot write in data dir", e))?;
    make_private(dir);
    Ok(lock)
}

/// What to do about an error that is about access rather than the directory's contents.
fn access_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::PermissionDenied => {
            "; run souk as the user that owns the data dir (for the packaged service: \
             `sudo -u souk souk …`), or give that user write access to it"
        }
        ErrorKind::ReadOnlyFilesystem => "; the data dir is on a read-only file system",
        _ => "",
    }
}

/// A data dir made by the operator (e.g. `mkdir -m 0755`) is closed to group and others. When
/// that is not allowed (the dir belongs to another user), Souk says so and carries on: the
/// files it creates are private anyway (see [`private_umask`]).
fn make_private(dir: &Path) {
    let Ok(meta) = fs::metadata(dir) else { return };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return;
    }
    let private = mode & !0o077;
    match fs::set_permissions(dir, fs::Permissions::from_mode(private)) {
        Ok(()) => tracing::info!(
            data_dir = %dir.display(),
            "data dir was mode {mode:04o}, open to other users; made it {private:04o}"
        ),
        Err(e) => tracing::warn!(
            data_dir = %dir.display(),
            "data dir is mode {mode:04o}, open to other users, and cannot be made {private:04o} \
             ({e}); run `chmod {private:o} {}` as its owner",
            dir.display()
        ),
    }
}
