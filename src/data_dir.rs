//! The data dir: created private (0700), made private when found open to others, and locked so
//! two Souks never share one store. Also the process umask that keeps every file Souk and its
//! nats-server create private to Souk's user. `serve` and the offline `admin` commands open it.

use crate::config::{Config, env_var};
use anyhow::Context;
use std::fs::{self, File, TryLockError};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Files created from here on are readable by Souk's user only (`auth.redb` holds password and
/// token hashes), whatever umask Souk was started with. The nats-server child inherits it.
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates the data dir (0700), takes its lock and makes the dir 0700 if group or others could
/// read it (one `info!` saying so). The lock lasts as long as the returned file.
pub fn open(config: &Config) -> anyhow::Result<File> {
    let dir = &config.data_dir;
    let hint = || {
        format!(
            "config `data_dir`, env {}, flag --data-dir",
            env_var("data_dir")
        )
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {} ({})", dir.display(), hint()))?;
    let path = dir.join("souk.lock");
    let mut lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot write in data dir {} ({})", dir.display(), hint()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            anyhow::bail!(
                "data dir {} is in use by another souk (pid {}); give each instance its own \
                 data dir ({})",
                dir.display(),
                holder.trim(),
                hint()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    lock.set_len(0)?;
    write!(lock, "{}", std::process::id())?;
    make_private(dir);
    Ok(lock)
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
