//! The appliance: one binary that starts, supervises and stops its own nats-server.

use crate::support::api::Api;
use crate::support::{self, Souk, alive, eventually};
use nix::sys::signal::Signal;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn becomes_ready_with_its_own_nats_server() {
    let souk = Souk::ready().await;
    let body = souk.wait_ready(T).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["broker"]["ok"], true, "{body}");
    assert_eq!(body["checks"]["bus"]["ok"], true, "{body}");

    let health = souk.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert!(
        health.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    // The server runs from the extracted copy, with its config and credentials private.
    let pid = souk.nats_pid().expect("a nats-server ports file");
    assert!(alive(pid));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.starts_with(souk.data_dir.join("bin")),
        "{}",
        exe.display()
    );
    use std::os::unix::fs::PermissionsExt;
    for f in ["nats/identity.json", "nats/nats-server.conf"] {
        let mode = std::fs::metadata(souk.data_dir.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{f} is readable by others: {mode:o}");
    }
    // Credentials never appear on the command line.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let password = std::fs::read_to_string(souk.data_dir.join("nats/identity.json")).unwrap();
    let password: serde_json::Value = serde_json::from_str(&password).unwrap();
    let password = password["password"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(password));
}

#[tokio::test]
async fn request_id_is_taken_from_the_request() {
    let souk = Souk::ready().await;
    let r = souk
        .http()
        .get(format!("{}/healthz", souk.url))
        .header("x-request-id", "my-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "my-trace-42");
}

#[tokio::test]
async fn a_killed_nats_server_is_restarted_and_readiness_recovers() {
    let souk = Souk::ready().await;
    let first = souk.nats_pid().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();

    // Readiness reports the outage, then the restart.
    let mut saw_outage = false;
    let deadline = std::time::Instant::now() + T;
    loop {
        let r = souk.get("/readyz").await;
        if r.status() == 503 {
            saw_outage = true;
            assert_eq!(r.headers()["content-type"], "application/problem+json");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["code"], "not_ready");
        } else if saw_outage || souk.nats_pid().is_some_and(|p| p != first) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery; log:\n{}",
            souk.log.text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let body = souk.wait_ready(T).await;
    let second = souk.nats_pid().unwrap();
    assert_ne!(first, second);
    assert!(alive(second));
    assert!(
        body["checks"]["broker"]["detail"]
            .as_str()
            .unwrap()
            .contains(&second.to_string())
    );
    assert!(
        souk.log.text().contains("restarting it"),
        "{}",
        souk.log.text()
    );
}

/// When nats-server's config cannot be written (disk full, unwritable dir), the broker keeps
/// retrying with its backoff instead of giving up, and the server comes back once it can be
/// written. (A failed write used to end the broker task: never restarted, never ready again.)
/// The write is made to fail with a directory where its temporary file goes, which fails even
/// for root.
#[tokio::test]
async fn a_config_that_cannot_be_written_is_retried_until_it_can() {
    let souk = Souk::ready().await;
    let first = souk.nats_pid().unwrap();
    let blocker = souk.data_dir.join("nats/nats-server.tmp");
    std::fs::create_dir(&blocker).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();

    const FAILED: &str = "cannot write nats-server's config";
    assert!(
        eventually(T, || souk.log.text().matches(FAILED).count() >= 2).await,
        "the failed write was not retried; log:\n{}",
        souk.log.text()
    );
    let r = souk.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    let detail = body["checks"]["broker"]["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains(FAILED) && detail.contains("nats-server.conf"),
        "readiness names the file: {body}"
    );

    std::fs::remove_dir(&blocker).unwrap();
    souk.wait_ready(T).await;
    let second = souk.nats_pid().unwrap();
    assert_ne!(first, second);
    assert!(alive(second));
}

/// A hung nats-server (stopped, not dead) makes Souk not ready from its first missed health
/// check, well before the restart; resumed in time, it is ready again without one. (Readiness
/// used to stay 200 for the ~15 s until the restart.)
#[tokio::test]
async fn a_hung_nats_server_is_not_ready_at_once() {
    let souk = Souk::ready().await;
    let pid = nix::unistd::Pid::from_raw(souk.nats_pid().unwrap() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    let started = std::time::Instant::now();
    let mut detail = serde_json::Value::Null;
    while started.elapsed() < Duration::from_secs(8) {
        let r = souk.get("/readyz").await;
        if r.status() == 503 {
            let body: serde_json::Value = r.json().await.unwrap();
            detail = body["checks"]["broker"]["detail"].clone();
            if detail.as_str().is_some_and(|d| d.contains("not answering")) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    assert!(
        detail.as_str().is_some_and(|d| d.contains("not answering")),
        "readiness did not report the hang within {took:?}: {detail}"
    );
    souk.wait_ready(T).await;
    assert_eq!(
        souk.nats_pid(),
        Some(pid.as_raw() as u32),
        "no restart was needed"
    );
}

/// A change its client was answered 504 for is not made later: requests that queued up while
/// nats-server hung reach their service after the gateway gave up, and are dropped unstarted.
#[tokio::test]
async fn a_change_answered_504_is_not_made_when_nats_server_resumes() {
    let api = Api::start().await;
    let (souk, http) = (&api.souk, &api.http);
    let url = |p: &str| format!("{}{p}", souk.url);
    let user = api.post("/api/users", json!({"name": "Before"})).await;
    let id = user.body["id"].as_str().unwrap().to_string();
    let pid = nix::unistd::Pid::from_raw(souk.nats_pid().unwrap() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    let patch = http
        .patch(url(&format!("/api/users/{id}")))
        .json(&json!({"name": "Ghost patch"}))
        .send();
    let create = http
        .post(url("/api/users"))
        .json(&json!({"name": "Ghost user"}))
        .send();
    let (patch, create) = tokio::join!(patch, create);
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    for r in [patch.unwrap(), create.unwrap()] {
        assert_eq!(r.status(), 504);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "timeout", "{body}");
    }
    souk.wait_ready(T).await;
    // The queued requests reach the users service now (on a loaded machine one of them may not
    // reach it at all); whatever arrives must change nothing.
    let dropped = support::eventually(T, || {
        souk.log
            .text()
            .contains("dropped a request that arrived after its caller stopped waiting")
    })
    .await;
    assert!(dropped, "{}", souk.log.text());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = api.get(&format!("/api/users/{id}")).await.body;
    assert_eq!(
        (&after["name"], &after["version"]),
        (&json!("Before"), &json!(1))
    );
    let list = api.get("/api/users?q=Ghost").await.body;
    assert_eq!(list["items"], json!([]), "{list}");
}

/// JetStream out of storage: writes are still acknowledged (the outbox keeps their events), and
/// readiness says after a while which outbox is stuck and which setting to raise.
#[tokio::test]
async fn a_stuck_outbox_makes_souk_not_ready_and_names_the_setting() {
    let souk = Souk::builder()
        .env("SOUK_NATS_MAX_FILE_STORE", "2MiB")
        .start();
    souk.wait_ready(T).await;
    let api = Api {
        http: souk.http(),
        souk,
    };
    let seller = api.post("/api/users", json!({"name": "Seller"})).await.body;
    let description = "d".repeat(10_000);
    for i in 0..300 {
        let r = api
            .post(
                "/api/listings",
                json!({"seller_id": seller["id"], "title": format!("Item {i}"),
                       "listing_type": "sale", "price": 100, "description": description}),
            )
            .await;
        assert_eq!(r.status, 201, "create {i}: {r:?}");
    }
    let souk = &api.souk;
    let started = std::time::Instant::now();
    let detail = loop {
        let body: serde_json::Value = souk.get("/readyz").await.json().await.unwrap();
        let check = &body["checks"]["outbox:listings"];
        if check["ok"] == false {
            break check["detail"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "readiness never reported the stuck outbox: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        detail.contains("nats_max_file_store") && detail.contains("SOUK_NATS_MAX_FILE_STORE"),
        "{detail}"
    );
    assert!(souk.get("/readyz").await.status() == 503);
}

#[tokio::test]
async fn sigterm_exits_zero_and_leaves_no_nats_server() {
    let mut souk = Souk::ready().await;
    let nats = souk.nats_pid().unwrap();
    souk.signal(Signal::SIGTERM);
    let status = souk.wait_exit(T);
    assert!(status.success(), "exit {status}; log:\n{}", souk.log.text());
    assert!(!alive(nats), "nats-server {nats} outlived souk");
    let log = souk.log.text();
    assert!(log.contains("souk stopped"), "{log}");
    assert!(log.contains("nats-server stopped"), "{log}");
}

/// SIGHUP (a closed terminal, or `kill -HUP` from habit) stops Souk in order like SIGTERM; it
/// used to kill it outright (exit 129, nothing logged, nats-server stopped by its parent-death
/// signal rather than in order).
#[tokio::test]
async fn sighup_stops_in_order_like_sigterm() {
    let mut souk = Souk::ready().await;
    let nats = souk.nats_pid().unwrap();
    souk.signal(Signal::SIGHUP);
    let status = souk.wait_exit(T);
    assert!(status.success(), "exit {status}; log:\n{}", souk.log.text());
    assert!(!alive(nats), "nats-server {nats} outlived souk");
    let log = souk.log.text();
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.contains("nats-server stopped"), "{log}");
    assert!(log.contains("souk stopped"), "{log}");
}

/// An open live event stream (the console keeps one) ends when Souk stops, instead of holding
/// the stop for the whole `shutdown_timeout` (it used to take 10 s with the default).
#[tokio::test]
async fn sigterm_ends_open_event_streams_at_once() {
    let mut souk = Souk::builder().env("SOUK_SHUTDOWN_TIMEOUT", "30s").start();
    souk.wait_ready(T).await;
    let live = souk
        .http()
        .get(format!("{}/api/events/live", souk.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let started = std::time::Instant::now();
    souk.signal(Signal::SIGTERM);
    let status = souk.wait_exit(T);
    assert!(status.success(), "exit {status}; log:\n{}", souk.log.text());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "the stop took {took:?}");
    // The client saw its stream end, not a reset.
    let rest = tokio::time::timeout(Duration::from_secs(5), live.bytes()).await;
    assert!(matches!(rest, Ok(Ok(_))), "{rest:?}");
}

#[tokio::test]
async fn kill_9_of_souk_leaves_no_orphan_nats_server() {
    let mut souk = Souk::ready().await;
    let nats = souk.nats_pid().unwrap();
    souk.signal(Signal::SIGKILL);
    souk.wait_exit(T);
    assert!(
        eventually(Duration::from_secs(10), || !alive(nats)).await,
        "nats-server {nats} was orphaned"
    );
}

#[tokio::test]
async fn a_restart_on_the_same_data_dir_reuses_credentials_and_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Souk::builder().data_dir(dir.path()).start();
    first.wait_ready(T).await;
    let identity = std::fs::read(dir.path().join("nats/identity.json")).unwrap();
    first.signal(Signal::SIGTERM);
    assert!(first.wait_exit(T).success());

    let second = Souk::builder().data_dir(dir.path()).start();
    second.wait_ready(T).await;
    assert_eq!(
        std::fs::read(dir.path().join("nats/identity.json")).unwrap(),
        identity
    );
}

#[tokio::test]
async fn two_instances_with_their_own_data_dirs_run_side_by_side() {
    let a = Souk::builder().start();
    let b = Souk::builder().start();
    a.wait_ready(T).await;
    b.wait_ready(T).await;
    assert_ne!(a.url, b.url);
    assert_ne!(a.nats_pid(), b.nats_pid());
}

#[tokio::test]
async fn a_second_souk_on_the_same_data_dir_is_refused() {
    let a = Souk::ready().await;
    let out = support::command(&a.data_dir)
        .args(["serve", "--http", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another souk"), "{err}");
    assert!(err.contains("SOUK_DATA_DIR"), "{err}");
}

#[tokio::test]
async fn nats_url_uses_an_existing_server_and_starts_no_child() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::nats_server_binary(dir.path());
    let ports = dir.path().join("ports");
    std::fs::create_dir(&ports).unwrap();
    let mut nats = std::process::Command::new(server)
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-m",
            "-1",
            "-js",
            "--user",
            "ext",
            "--pass",
            "s3cret",
        ])
        .arg("-sd")
        .arg(dir.path().join("js"))
        .arg("--ports_file_dir")
        .arg(&ports)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(T, || support::nats_pid_in(&ports).is_some()).await);
    let pf = std::fs::read_dir(&ports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pf: serde_json::Value = serde_json::from_slice(&std::fs::read(pf).unwrap()).unwrap();
    let url = pf["nats"][0].as_str().unwrap().to_string();
    let monitor = pf["monitoring"][0].as_str().unwrap().to_string();

    let souk = Souk::builder()
        .arg("--nats-url")
        .arg(&url)
        .env("SOUK_NATS_USER", "ext")
        .env("SOUK_NATS_PASSWORD", "s3cret")
        .start();
    let body = souk.wait_ready(T).await;
    assert!(body["checks"].get("broker").is_none(), "{body}");
    assert!(
        !souk.data_dir.join("nats").exists(),
        "a bundled server was prepared"
    );
    let connz: serde_json::Value = reqwest::get(format!("{monitor}/connz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<_> = connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert!(names.contains(&"souk".into()), "{connz}");

    // Credentials inside the URL work too, and never show.
    let with_url = |password: &str| url.replacen("nats://", &format!("nats://ext:{password}@"), 1);
    let inline = Souk::builder()
        .arg("--nats-url")
        .arg(with_url("s3cret"))
        .start();
    inline.wait_ready(T).await;
    assert!(
        !inline.log.text().contains("s3cret"),
        "{}",
        inline.log.text()
    );

    // Wrong credentials: Souk stays up, not ready, and says why, without the password.
    let wrong = Souk::builder()
        .arg("--nats-url")
        .arg(with_url("wrong-pw"))
        .start();
    assert!(
        wrong.log.wait_for("cannot connect to NATS", T).is_some(),
        "{}",
        wrong.log.text()
    );
    let r = wrong.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"]["bus"]["ok"], false, "{body}");
    assert!(!body.to_string().contains("wrong-pw"), "{body}");
    assert!(
        !wrong.log.text().contains("wrong-pw"),
        "{}",
        wrong.log.text()
    );
    let _ = nats.kill();
    let _ = nats.wait();
}

/// Runs souk with `args` and expects it to fail, returning its stderr.
fn fails(dir: &std::path::Path, args: &[&str]) -> String {
    let out = support::command(dir)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "souk {args:?} succeeded; stderr:\n{err}"
    );
    err
}

#[test]
fn an_unknown_config_key_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("souk.toml");
    std::fs::write(
        &file,
        "http = \"127.0.0.1:0\"\nnats_ulr = \"nats://x:4222\"\n",
    )
    .unwrap();
    let err = fails(
        &dir.path().join("d"),
        &["--config", file.to_str().unwrap(), "serve"],
    );
    assert!(err.contains("unknown config key `nats_ulr`"), "{err}");
    assert!(err.contains("nats_url"), "the known keys are listed: {err}");
}

#[test]
fn a_bad_value_names_the_key_and_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::command(&dir.path().join("d"))
        .env("SOUK_SHUTDOWN_TIMEOUT", "soon")
        .arg("serve")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`shutdown_timeout`") && err.contains("SOUK_SHUTDOWN_TIMEOUT"),
        "{err}"
    );
}

#[test]
fn an_unusable_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = fails(&file.join("data"), &["serve", "--http", "127.0.0.1:0"]);
    assert!(err.contains("cannot create data dir"), "{err}");
    assert!(
        err.contains("SOUK_DATA_DIR") && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = fails(&dir.path().join("d"), &["serve", "--http", &addr]);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("SOUK_HTTP") && err.contains("--http"), "{err}");
}

#[test]
fn version_names_the_embedded_nats_server() {
    let out = std::process::Command::new(support::SOUK)
        .arg("version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains(&format!("souk {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("nats-server 2.15.1 (embedded"), "{text}");
}

#[test]
fn config_print_masks_secrets_and_shows_origins() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::command(&dir.path().join("d"))
        .env("SOUK_NATS_PASSWORD", "hunter2")
        .args(["config", "print"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("nats_password = \"********\"  # environment SOUK_NATS_PASSWORD"),
        "{text}"
    );
    assert!(text.contains("# flag --data-dir"), "{text}");
}

/// `--services` runs only the services named: theirs answer, the others' routes get 503
/// `service_unavailable` at once (no wait for a timeout), and the log says what is missing. A
/// service this build does not run is refused at start, naming the key.
#[tokio::test]
async fn services_runs_only_those_named() {
    let souk = Souk::builder().arg("--services").arg("auth,users").start();
    souk.wait_ready(T).await;
    let (status, user) = souk.post("/api/users", json!({"name": "Solo"})).await;
    assert_eq!(status, 201, "{user}");
    let started = std::time::Instant::now();
    let (status, body) = souk.json(reqwest::Method::GET, "/api/catalog", None).await;
    assert_eq!(
        (status, &body["code"]),
        (503, &json!("service_unavailable")),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        souk.log.wait_for("missing=listings,catalog", T).is_some(),
        "{}",
        souk.log.text()
    );

    let dir = tempfile::tempdir().unwrap();
    let err = fails(
        &dir.path().join("d"),
        &["serve", "--services", "users,carts"],
    );
    assert!(
        err.contains("unknown service `carts`") && err.contains("SOUK_SERVICES"),
        "{err}"
    );
}

/// DESIGN.md, Scale-out: another catalog instance on the same NATS builds its own replica from
/// the streams, history included, with consumers of its own. (Sharing the durable consumers,
/// each instance used to get half of the events.)
#[tokio::test]
async fn a_second_catalog_instance_builds_its_own_replica() {
    let a = Souk::ready().await;
    let (_, seller) = a.post("/api/users", json!({"name": "Seller"})).await;
    let listing = |i: usize| {
        json!({"seller_id": seller["id"], "title": format!("item {i}"),
            "listing_type": "sale", "price": 100 + i})
    };
    for i in 0..3 {
        assert_eq!(a.post("/api/listings", listing(i)).await.0, 201);
    }
    let (url, user, password) = a.nats_endpoint();
    let b = Souk::builder()
        .arg("--services")
        .arg("catalog")
        .arg("--nats-url")
        .arg(url)
        .env("SOUK_NATS_USER", &user)
        .env("SOUK_NATS_PASSWORD", &password)
        .start();
    b.wait_ready(T).await;
    for i in 3..8 {
        assert_eq!(a.post("/api/listings", listing(i)).await.0, 201);
    }
    let replica =
        |dir: &std::path::Path| std::fs::read_to_string(dir.join("catalog.replica")).unwrap();
    assert_eq!(
        replica(&a.data_dir),
        "",
        "the first catalog keeps the plain names"
    );
    let name = replica(&b.data_dir);
    assert!(name.starts_with('r') && name.len() == 9, "{name:?}");
    let items = |dir: &std::path::Path| {
        rusqlite::Connection::open(dir.join("catalog.sqlite"))
            .and_then(|c| c.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(-1)
    };
    let both = eventually(T, || items(&a.data_dir) == 8 && items(&b.data_dir) == 8).await;
    assert!(
        both,
        "a holds {}, b holds {}",
        items(&a.data_dir),
        items(&b.data_dir)
    );
    let log = b.log.text();
    assert!(log.contains(&format!("replica={name}")), "{log}");
    // Each replica's consumers go away a month after nobody pulls from them.
    let js = async_nats::jetstream::new(a.nats().await);
    let stream = js.get_stream("SOUK_LISTINGS").await.unwrap();
    for consumer in [
        "catalog-listings".to_string(),
        format!("catalog-{name}-listings"),
    ] {
        let info = stream.consumer_info(&consumer).await.unwrap();
        assert_eq!(
            info.config.inactive_threshold,
            Duration::from_secs(30 * 86_400),
            "{consumer}"
        );
    }
}
