//! The data dir: kept private whoever created it, and the offline `admin` commands say what they
//! did to it (created it) or why they cannot use it (permissions), not something misleading.

use crate::support::{Souk, command};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery";

/// Every file and directory under `dir` whose mode lets group or others in, with its mode.
fn open_to_others(dir: &Path, skip: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        if path != skip && mode & 0o077 != 0 {
            found.push(format!("{} {mode:04o}", path.display()));
        }
        if meta.is_dir() {
            found.extend(open_to_others(&path, skip));
        }
    }
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A data dir made by the operator with `mkdir -m 0755`: `serve` closes it to other users (and
/// says so), and every file Souk and its nats-server create in it is private, whatever the
/// umask Souk was started with. (It used to stay 0755 with `auth.redb` and the other stores
/// 0644: password and token hashes readable by every local user.)
#[tokio::test]
async fn serve_makes_an_open_data_dir_private_and_creates_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The helper's admin token is made by `souk admin …`, which would fix the dir first; a
    // placeholder keeps this test about `serve`.
    let placeholder = data.join(".test-admin-token");
    std::fs::write(&placeholder, "unused").unwrap();
    let souk = Souk::builder().data_dir(&data).start();
    souk.wait_ready(T).await;

    assert_eq!(mode(&data), 0o700, "the data dir");
    for store in ["auth.redb", "users.redb", "listings.redb", "catalog.sqlite"] {
        assert_eq!(mode(&data.join(store)), 0o600, "{store}");
    }
    let open = open_to_others(&data, &placeholder);
    assert!(open.is_empty(), "open to others: {open:?}");
    let log = souk.log.text();
    assert!(log.contains("data dir was mode 0755"), "{log}");
    assert!(log.contains("made it 0700"), "{log}");
}

/// Runs `souk admin …` on `data` with `stdin`; `tweak` adjusts the command first.
fn admin(
    data: &Path,
    args: &[&str],
    stdin: &str,
    tweak: impl FnOnce(&mut std::process::Command),
) -> Output {
    let mut cmd = command(data);
    cmd.arg("admin").args(args);
    tweak(&mut cmd);
    crate::support::run_with_stdin(cmd, stdin)
}

const CREATE: &[&str] = &["create", "--email", "ops@example.com", "--password-stdin"];

/// `souk admin create` on a data dir that does not exist (first run before the first start, or
/// a mistyped `--data-dir`) still creates it, but says so, naming the absolute path, so an
/// account made in the wrong place does not go unnoticed. A second run says nothing.
#[test]
fn admin_commands_say_when_they_created_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let relative = Path::new("typo-data");
    let absolute = dir.path().join(relative);
    let out = admin(relative, CREATE, &format!("{PASSWORD}\n"), |c| {
        c.current_dir(dir.path());
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "note: {} did not exist and was created",
            absolute.display()
        )),
        "{err}"
    );
    assert!(err.contains("only seen by a `souk serve` using"), "{err}");
    assert!(err.contains("SOUK_DATA_DIR"), "{err}");
    assert_eq!(mode(&absolute), 0o700);
    assert_eq!(mode(&absolute.join("auth.redb")), 0o600);

    let out = admin(
        &absolute,
        &["token", "create", "--name", "ci", "--role", "viewer"],
        "",
        |_| {},
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("note:"), "the data dir existed: {err}");

    let out = admin(
        &dir.path().join("other"),
        &["token", "create", "--name", "ci", "--role", "viewer"],
        "",
        |_| {},
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("the token is only seen by"), "{err}");
}

/// `souk admin …` on a data dir opened to others (`mkdir -m 0755`) makes it private too.
#[test]
fn admin_commands_make_an_open_data_dir_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = admin(&data, CREATE, &format!("{PASSWORD}\n"), |_| {});
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("made it 0700"), "{err}");
    assert_eq!(mode(&data), 0o700);
    let open = open_to_others(&data, Path::new(""));
    assert!(open.is_empty(), "open to others: {open:?}");
}

/// A data dir the command may not write in is reported as that, naming the path, not as "stop
/// Souk first" (which sent operators looking for a Souk that was not running). As root, which
/// may write anywhere, the command runs as `nobody`.
#[test]
fn an_unwritable_data_dir_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let root = std::fs::metadata(&data).unwrap().uid() == 0;
    let mode = if root { 0o755 } else { 0o555 };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(mode)).unwrap();
    let out = admin(&data, CREATE, &format!("{PASSWORD}\n"), |c| {
        if root {
            use std::os::unix::process::CommandExt;
            c.uid(65534).gid(65534);
        }
    });
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("stop Souk first"), "{err}");
    assert!(
        err.contains(&format!("cannot write in data dir {}", data.display())),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("as the user that owns the data dir"), "{err}");
}
