//! Test helpers: the real `souk` binary started in a temp dir on a random port, with the real
//! bundled nats-server. No mocks. Dropping a [`Souk`] kills it (and so its nats-server).

#![allow(dead_code)]

pub mod api;
pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const SOUK: &str = env!("CARGO_BIN_EXE_souk");

/// The captured stderr of a child, with a way to wait for a line.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<String>, Condvar)>);

impl Log {
    fn capture(pipe: impl std::io::Read + Send + 'static) -> Log {
        let log = Log::default();
        let l = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let (text, cv) = &*l.0;
                let mut t = text.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
                cv.notify_all();
            }
            l.0.1.notify_all();
        });
        log
    }

    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; returns the text after it up to the line's end.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let (text, cv) = &*self.0;
        let deadline = Instant::now() + timeout;
        let mut t = text.lock().unwrap();
        loop {
            if let Some(i) = t.find(needle) {
                let rest = &t[i + needle.len()..];
                return Some(rest.lines().next().unwrap_or("").to_string());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            t = cv
                .wait_timeout(t, left.min(Duration::from_millis(50)))
                .unwrap()
                .0;
        }
    }
}

/// How to start a Souk.
pub struct Builder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
}

impl Builder {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Use this data dir instead of a fresh temp dir (restarts on the same data).
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Spawns `souk serve` and waits until it listens. Panics with its log if it exits first.
    pub fn start(self) -> Souk {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = self.data_dir.unwrap_or_else(|| tmp.path().join("data"));
        let token = admin_token(&data_dir);
        let mut cmd = command(&data_dir);
        cmd.arg("serve")
            .arg("--http")
            .arg("127.0.0.1:0")
            .args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawning souk");
        let log = Log::capture(child.stderr.take().unwrap());
        let Some(addr) = log.wait_for("listening on ", Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!("souk did not start listening; its log:\n{}", log.text());
        };
        Souk {
            child,
            url: addr.trim().to_string(),
            data_dir,
            token,
            log,
            _tmp: tmp,
        }
    }
}

/// The admin API token the tests use, made once per data dir with `souk admin token create`
/// (the offline command operators use) and kept beside the stores for restarts.
pub fn admin_token(data_dir: &Path) -> String {
    let file = data_dir.join(".test-admin-token");
    if let Ok(t) = std::fs::read_to_string(&file) {
        return t;
    }
    let out = command(data_dir)
        .args([
            "admin", "token", "create", "--name", "tests", "--role", "admin",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("running souk admin token create");
    assert!(
        out.status.success(),
        "souk admin token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::fs::write(&file, &token).unwrap();
    token
}

/// `souk` with a clean environment apart from what the test sets.
pub fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(SOUK);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("SOUK_CONFIG")
        .env("SOUK_LOG_LEVEL", "info,souk=debug")
        .env("SOUK_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SOUK_") && k != "SOUK_LOG_LEVEL" && k != "SOUK_LOG_FORMAT" {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub struct Souk {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub data_dir: PathBuf,
    /// An admin API token; [`Souk::http`] sends it on every request.
    pub token: String,
    pub log: Log,
    _tmp: tempfile::TempDir,
}

impl Souk {
    pub fn builder() -> Builder {
        Builder {
            args: Vec::new(),
            env: Vec::new(),
            data_dir: None,
        }
    }

    /// A default Souk, ready.
    pub async fn ready() -> Souk {
        let s = Souk::builder().start();
        s.wait_ready(Duration::from_secs(30)).await;
        s
    }

    /// A client that sends the admin token on every request.
    pub fn http(&self) -> reqwest::Client {
        self.http_as(&self.token)
    }

    /// A client that sends `token` as its bearer credential.
    pub fn http_as(&self, token: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        souk::http::tls::client()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// A client with no credential at all.
    pub fn anonymous(&self) -> reqwest::Client {
        souk::http::tls::client().build().unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// Polls `/readyz` until 200; panics with the last answer and the log otherwise.
    pub async fn wait_ready(&self, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(r) = self.http().get(format!("{}/readyz", self.url)).send().await {
                let ok = r.status() == 200;
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if ok {
                    return body;
                }
                last = body.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "souk not ready after {timeout:?}; last /readyz: {last}\nlog:\n{}",
            self.log.text()
        );
    }

    /// The pid of the bundled nats-server, from its ports file.
    pub fn nats_pid(&self) -> Option<u32> {
        nats_pid_in(&self.data_dir.join("nats"))
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, timeout).unwrap_or_else(|| {
            panic!(
                "souk did not exit in {timeout:?}; log:\n{}",
                self.log.text()
            )
        })
    }
}

impl Drop for Souk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

pub fn nats_pid_in(dir: &Path) -> Option<u32> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".ports")?
                .rsplit('_')
                .next()?
                .parse()
                .ok()
        })
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Waits until `f` is true, polling; false on timeout.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

/// The nats-server binary this souk embeds, extracted into `dir`.
pub fn nats_server_binary(dir: &Path) -> PathBuf {
    souk::broker::binary::resolve(None, dir)
        .expect("extracting nats-server")
        .path
}

/// A nats-server with JetStream that the test owns (for in-process tests of the bus parts).
pub struct TestNats {
    pub child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl TestNats {
    pub async fn start() -> TestNats {
        let dir = tempfile::tempdir().unwrap();
        let server = nats_server_binary(dir.path());
        let ports = dir.path().join("ports");
        std::fs::create_dir(&ports).unwrap();
        let child = Command::new(server)
            .args(["-a", "127.0.0.1", "-p", "-1", "-js"])
            .arg("-sd")
            .arg(dir.path().join("js"))
            .arg("--ports_file_dir")
            .arg(&ports)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(eventually(Duration::from_secs(10), || nats_pid_in(&ports).is_some()).await);
        let pf = std::fs::read_dir(&ports)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let pf: serde_json::Value = serde_json::from_slice(&std::fs::read(pf).unwrap()).unwrap();
        TestNats {
            child,
            url: pf["nats"][0].as_str().unwrap().to_string(),
            dir,
        }
    }

    /// A bus on this server with Souk's streams in place.
    pub async fn bus(&self) -> souk::bus::Bus {
        let client = async_nats::connect(&self.url).await.unwrap();
        let bus = souk::bus::Bus {
            jetstream: async_nats::jetstream::new(client.clone()),
            client,
            names: souk::bus::Names::new("souk"),
        };
        souk::bus::streams::ensure(&bus, &souk::config::Config::defaults().streams)
            .await
            .unwrap();
        bus
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Souk {
    /// This Souk's bundled nats-server: its client URL, user and password.
    pub fn nats_endpoint(&self) -> (String, String, String) {
        let id: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.data_dir.join("nats/identity.json")).unwrap(),
        )
        .unwrap();
        let dir = self.data_dir.join("nats");
        let pf = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "ports"))
            .expect("a ports file")
            .path();
        let pf: serde_json::Value = serde_json::from_slice(&std::fs::read(pf).unwrap()).unwrap();
        (
            pf["nats"][0].as_str().unwrap().into(),
            id["user"].as_str().unwrap().into(),
            id["password"].as_str().unwrap().into(),
        )
    }

    /// A client on this Souk's bundled nats-server, with its generated credentials.
    pub async fn nats(&self) -> async_nats::Client {
        let (url, user, password) = self.nats_endpoint();
        async_nats::ConnectOptions::with_user_and_password(user, password)
            .connect(url)
            .await
            .unwrap()
    }

    /// Publishes `payload` to `subject` through JetStream, as a producer would, and waits for
    /// the stream's acknowledgement (a poison event, in the tests that send one).
    pub async fn jetstream_publish(&self, subject: &'static str, payload: &'static str) {
        async_nats::jetstream::new(self.nats().await)
            .publish(subject, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Sends a JSON request; returns the status and the JSON body (Null when empty).
    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http().request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.json(reqwest::Method::POST, path, Some(body)).await
    }
}

/// Every message of `stream`, oldest first: (sequence, subject, payload as JSON).
pub async fn stream_messages(
    client: &async_nats::Client,
    stream: &str,
) -> Vec<(u64, String, serde_json::Value)> {
    let js = async_nats::jetstream::new(client.clone());
    let s = js.get_stream(stream).await.unwrap();
    let mut out = Vec::new();
    let mut seq = 1;
    loop {
        match s.direct_get_next_for_subject(">", Some(seq)).await {
            Ok(m) => {
                seq = m.sequence + 1;
                let v = serde_json::from_slice(&m.payload).unwrap_or(serde_json::Value::Null);
                out.push((m.sequence, m.subject.to_string(), v));
            }
            Err(_) => return out,
        }
    }
}

/// Runs `cmd` to the end with `stdin` as its input, capturing its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
