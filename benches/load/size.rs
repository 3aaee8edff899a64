//! `size`: how big the release binary is (target < 25 MB), and how much of it is the embedded,
//! zstd-compressed nats-server.

use crate::Ctx;
use crate::report::{Check, Section, mib, table};
use std::path::{Path, PathBuf};

const TARGET_BYTES: u64 = 25_000_000;

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let total = std::fs::metadata(&ctx.souk_bin)?.len();
    let mut rows = vec![vec![
        "`souk` (release)".to_string(),
        format!("{total}"),
        mib(total),
    ]];
    if let Some(zst) = embedded_archive(&ctx.souk_bin) {
        let packed = std::fs::metadata(&zst)?.len();
        rows.push(vec![
            "of which embedded nats-server (zstd -19)".into(),
            format!("{packed}"),
            mib(packed),
        ]);
        rows.push(vec![
            "of which Souk itself and its crates".into(),
            format!("{}", total.saturating_sub(packed)),
            mib(total.saturating_sub(packed)),
        ]);
    }
    Ok(Section {
        name: "size",
        title: "Binary size".into(),
        body: table(&["file", "bytes", "size"], &rows),
        checks: vec![Check {
            what: "release binary".into(),
            target: "< 25 MB".into(),
            measured: format!("{:.1} MB", total as f64 / 1e6),
            met: total < TARGET_BYTES,
        }],
    })
}

/// The compressed server that `build.rs` embedded: the newest `nats-server.zst` among the
/// build-script outputs beside the binary (`<target>/release/build/souk-*/out/`). Absent for
/// `SOUK_BENCH_BIN` builds elsewhere or builds without an embedded server.
fn embedded_archive(bin: &Path) -> Option<PathBuf> {
    let build = bin.parent()?.join("build");
    std::fs::read_dir(build)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("souk-"))
        .map(|e| e.path().join("out/nats-server.zst"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
}
