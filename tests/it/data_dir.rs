//! The data dir: kept private whoever created it.

use crate::support::{Souk, command};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
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
    use std::io::Write;
    let mut cmd = command(data);
    cmd.arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tweak(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const CREATE: &[&str] = &["create", "--email", "ops@example.com", "--password-stdin"];

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
