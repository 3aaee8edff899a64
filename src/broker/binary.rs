//! Which nats-server to run, and the extraction of the embedded one.
//!
//! Order: `nats_server_bin` (config/flag) → the server embedded at build time (extracted once
//! per version into `<data>/bin/`, its checksum verified on every start) → `nats-server` on
//! `PATH`. A binary built without an embedded server says so when it falls back.

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[cfg(souk_embedded_nats)]
static EMBEDDED_ZST: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nats-server.zst"));
#[cfg(not(souk_embedded_nats))]
static EMBEDDED_ZST: &[u8] = &[];

/// The nats-server embedded at build time: `(version, sha256)`, if any.
pub fn embedded() -> Option<(&'static str, &'static str)> {
    let version = env!("SOUK_NATS_VERSION");
    (!EMBEDDED_ZST.is_empty()).then_some((version, env!("SOUK_NATS_SHA256")))
}

#[derive(Clone, Debug)]
pub enum Origin {
    Embedded,
    Configured,
    Path,
}

#[derive(Clone, Debug)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub origin: Origin,
}

/// Finds the nats-server to run. Blocking (hashing, decompression, file writes): call it from
/// `spawn_blocking` or before the runtime is busy.
pub fn resolve(configured: Option<&Path>, data_dir: &Path) -> anyhow::Result<ServerBinary> {
    if let Some(path) = configured {
        if !path.is_file() {
            bail!(
                "nats-server binary {} does not exist (config `nats_server_bin`, env \
                 SOUK_NATS_SERVER_BIN, flag --nats-server-bin)",
                path.display()
            );
        }
        return Ok(ServerBinary {
            path: path.to_path_buf(),
            origin: Origin::Configured,
        });
    }
    if let Some((version, sha)) = embedded() {
        let path = extract(data_dir, version, sha)?;
        return Ok(ServerBinary {
            path,
            origin: Origin::Embedded,
        });
    }
    tracing::warn!(
        "this souk was built without an embedded nats-server; looking for `nats-server` on PATH \
         (set `nats_server_bin` / SOUK_NATS_SERVER_BIN / --nats-server-bin to choose one)"
    );
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file());
    match found {
        Some(path) => Ok(ServerBinary {
            path,
            origin: Origin::Path,
        }),
        None => bail!(
            "no nats-server available: this souk has none embedded and none is on PATH. Install \
             nats-server, set `nats_server_bin` (env SOUK_NATS_SERVER_BIN, flag --nats-server-bin), \
             or use an existing NATS with `nats_url` (env SOUK_NATS_URL, flag --nats-url)"
        ),
    }
}

/// Writes the embedded server to `<data>/bin/nats-server-<version>-<sha12>` unless a copy with
/// the right checksum is already there. The write is atomic: temp file, 0700 (Souk's user runs
/// it; nothing else needs to), fsync, rename.
fn extract(data_dir: &Path, version: &str, sha: &str) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("bin");
    let path = dir.join(format!("nats-server-{version}-{}", &sha[..12]));
    if path.is_file() {
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if hex_sha256(&bytes) == sha {
            return Ok(path);
        }
        tracing::warn!(path = %path.display(), "extracted nats-server does not match its checksum; extracting it again");
    }
    super::private_dir(&dir)?;
    let bytes = zstd::decode_all(EMBEDDED_ZST).context("decompressing the embedded nats-server")?;
    if hex_sha256(&bytes) != sha {
        bail!("the embedded nats-server is corrupt (checksum mismatch); rebuild souk");
    }
    let tmp = dir.join(format!(".nats-server-{}.tmp", std::process::id()));
    {
        let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.set_permissions(fs::Permissions::from_mode(0o700))?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
    fs::File::open(&dir)?.sync_all()?;
    tracing::info!(path = %path.display(), version, "extracted the bundled nats-server");
    Ok(path)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
