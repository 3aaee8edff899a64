//! A nats-server owned by the harness, for the backbone scenarios that drive Souk's bus parts
//! in-process (outbox, consumers, projector): the server Souk embeds, extracted with
//! `souk::broker::binary::resolve` (once per version, under Cargo's target tmp dir), started
//! like `TestNats` in the integration tests but from a config file, so `sync_interval` can be
//! set the way Souk sets it. JetStream file store in a temp dir on the build's disk, listening
//! on 127.0.0.1 only, without authentication (nothing but this process talks to it).

use anyhow::{Context, bail};
use souk::bus::{Bus, Names};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// JetStream's `sync_interval`: how often the file store fsyncs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sync {
    /// The key left out: nats-server's default, 2 min.
    ServerDefault,
    /// `sync_interval: "<ms>ms"`; Souk's default is 10 s (`nats_sync_interval`).
    Every(Duration),
    /// `sync_interval: always`: fsync after every write.
    Always,
}

impl Sync {
    /// Souk's own default, read from its configuration so the bench follows it.
    pub fn souk_default() -> Sync {
        match souk::config::Config::defaults().nats.sync_interval {
            Some(d) => Sync::Every(d),
            None => Sync::Always,
        }
    }

    pub fn label(self) -> String {
        match self {
            Sync::ServerDefault => "default (2 min)".into(),
            Sync::Every(d) => format!("{} s", d.as_secs_f64()),
            Sync::Always => "always".into(),
        }
    }
}

const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Natsd {
    child: Child,
    pub pid: u32,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Natsd {
    pub fn start(sync: Sync) -> anyhow::Result<Natsd> {
        let dir = tempfile::Builder::new()
            .prefix("souk-bench-nats-")
            .tempdir_in(std::env::temp_dir())?;
        let ports = dir.path().join("ports");
        std::fs::create_dir(&ports)?;
        let sync_line = match sync {
            Sync::ServerDefault => String::new(),
            Sync::Every(d) => format!("  sync_interval: \"{}ms\"\n", d.as_millis()),
            Sync::Always => "  sync_interval: always\n".into(),
        };
        let conf = dir.path().join("nats-server.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: \"127.0.0.1:-1\"\nports_file_dir: {ports:?}\nmax_payload: 8MB\n\
                 jetstream {{\n  store_dir: {js:?}\n  max_memory_store: 268435456\n  \
                 max_file_store: 17179869184\n{sync_line}}}\n",
                ports = ports.display().to_string(),
                js = dir.path().join("js").display().to_string(),
            ),
        )?;
        let child = Command::new(server_binary()?)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nats-server")?;
        let pid = child.id();
        let mut natsd = Natsd {
            child,
            pid,
            url: String::new(),
            _dir: dir,
        };
        let started = Instant::now();
        natsd.url = loop {
            if let Some(url) = client_url(&ports) {
                break url;
            }
            if let Some(status) = natsd.child.try_wait()? {
                bail!("nats-server exited during start-up ({status})");
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("nats-server wrote no ports file within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Ok(natsd)
    }

    /// A bus on this server with Souk's streams in place, configured as Souk configures them.
    pub async fn bus(&self) -> anyhow::Result<Bus> {
        let client = async_nats::ConnectOptions::new()
            .name("souk-bench")
            .connect(self.url.as_str())
            .await
            .with_context(|| format!("connecting to {}", self.url))?;
        let bus = Bus {
            jetstream: async_nats::jetstream::new(client.clone()),
            client,
            names: Names::new("souk"),
        };
        souk::bus::streams::ensure(&bus, &souk::config::Config::defaults().streams).await?;
        Ok(bus)
    }
}

impl Drop for Natsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The embedded nats-server, extracted once per version beside the build.
fn server_binary() -> anyhow::Result<PathBuf> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("load-nats-server");
    std::fs::create_dir_all(&cache)?;
    Ok(souk::broker::binary::resolve(None, &cache)
        .context("extracting the embedded nats-server")?
        .path)
}

/// `nats://127.0.0.1:PORT` from the `<exe>_<pid>.ports` file, once it is complete.
fn client_url(ports_dir: &Path) -> Option<String> {
    let entry = std::fs::read_dir(ports_dir).ok()?.find_map(Result::ok)?;
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()?;
    json["nats"][0].as_str().map(str::to_string)
}
