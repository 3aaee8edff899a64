//! Souk's configuration: one struct, filled from defaults → TOML file → `SOUK_*` env → flags.
//!
//! Every key is listed once in [`KEYS`] with its default and help; that table drives parsing,
//! the environment variable names, `souk config print` and the README's table. Every value,
//! whatever its source, goes through the same parser, so every error names the key, its
//! environment variable and where the bad value came from. Unknown keys in the file are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One configuration key.
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub secret: bool,
    pub help: &'static str,
}

const fn key(name: &'static str, default: &'static str, help: &'static str) -> Key {
    Key {
        name,
        default,
        secret: false,
        help,
    }
}

/// Every configuration key, in the order `souk config print` shows them.
pub const KEYS: &[Key] = &[
    key(
        "data_dir",
        "./souk-data",
        "Where Souk keeps its stores, the NATS store and credentials.",
    ),
    key(
        "http",
        "127.0.0.1:8080",
        "HTTP listen address; port 0 picks a free port.",
    ),
    key(
        "http_tls_cert",
        "",
        "PEM certificate chain to serve HTTPS directly (with `http_tls_key`); empty serves plain HTTP.",
    ),
    key("http_tls_key", "", "PEM private key for `http_tls_cert`."),
    key(
        "http_body_limit",
        "1MiB",
        "Largest request body accepted; bigger ones get 413.",
    ),
    key(
        "http_max_concurrency",
        "512",
        "Requests handled at once; more wait their turn (within `http_request_timeout`).",
    ),
    key(
        "http_request_timeout",
        "30s",
        "Longest a request may take before it is answered 503 `request_timeout`.",
    ),
    key(
        "http_max_sse",
        "32",
        "Live event streams (`/api/events/live`) open at once; more get 429.",
    ),
    key(
        "http_cors_origins",
        "",
        "Origins allowed to call the API from a browser (comma-separated); empty turns CORS off.",
    ),
    key(
        "http_trust_proxy",
        "false",
        "Trust `X-Forwarded-For`/`X-Forwarded-Proto` from a reverse proxy in front of Souk.",
    ),
    key(
        "session_idle_timeout",
        "1h",
        "A console session ends after this long without a request.",
    ),
    key(
        "session_max_age",
        "12h",
        "A console session ends this long after login, however busy.",
    ),
    key(
        "catalog_public",
        "false",
        "Let anyone read `GET /api/catalog*` without signing in.",
    ),
    key(
        "log_format",
        "text",
        "`text` for people, `json` for log collectors.",
    ),
    key(
        "log_level",
        "info",
        "Log filter, e.g. `info` or `souk=debug,nats=warn`.",
    ),
    key(
        "prefix",
        "souk",
        "Prefix of every subject and stream, so installations can share NATS.",
    ),
    key(
        "services",
        "all",
        "Comma-separated services to run here, or `all`.",
    ),
    key(
        "shutdown_timeout",
        "10s",
        "How long shutdown waits for each part before forcing it.",
    ),
    key(
        "idempotency_retention",
        "24h",
        "How long a create's `Idempotency-Key` is remembered; a repeat after that is a new request. 0s keeps them forever.",
    ),
    key(
        "nats_url",
        "",
        "Existing NATS servers (comma-separated); empty starts the bundled server. A `user:password@` in a URL works as nats_user/nats_password and is never shown.",
    ),
    key("nats_user", "", "User name for `nats_url`."),
    Key {
        name: "nats_password",
        default: "",
        secret: true,
        help: "Password for `nats_url`.",
    },
    key(
        "nats_creds_file",
        "",
        "A NATS `.creds` file for `nats_url`.",
    ),
    key(
        "nats_tls_ca_file",
        "",
        "CA certificate (PEM) to verify `nats_url` servers.",
    ),
    key(
        "nats_tls_cert_file",
        "",
        "Client certificate (PEM) for `nats_url` with mutual TLS.",
    ),
    key(
        "nats_tls_key_file",
        "",
        "Client key (PEM) for `nats_tls_cert_file`.",
    ),
    key(
        "nats_server_bin",
        "",
        "nats-server to run instead of the embedded one.",
    ),
    key(
        "nats_max_memory_store",
        "64MiB",
        "JetStream memory-store limit of the bundled server.",
    ),
    key(
        "nats_max_file_store",
        "10GiB",
        "JetStream file-store limit of the bundled server.",
    ),
    key(
        "nats_sync_interval",
        "10s",
        "How often the bundled JetStream fsyncs; `always` syncs every write (about 20x slower).",
    ),
    key(
        "stream_replicas",
        "1",
        "Replicas of each event stream (3 or 5 on a NATS cluster).",
    ),
    key(
        "stream_max_bytes",
        "0",
        "Size limit of each event stream; 0 keeps everything.",
    ),
    key(
        "stream_max_age",
        "0s",
        "Age limit of events in a stream; 0s keeps them forever.",
    ),
    key(
        "stream_duplicate_window",
        "2m",
        "How long JetStream drops a re-published event id.",
    ),
];

/// A setting that names something Souk cannot use (a TLS file that cannot be read), found when
/// `serve` starts rather than when the configuration loads. `souk` exits 2 for it, as for any
/// invalid configuration, so systemd does not restart it in a loop (`RestartPreventExitStatus=2`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    pub prefix: String,
    pub services: Vec<String>,
    pub shutdown_timeout: Duration,
    /// How long creates' `Idempotency-Key` records are kept; zero keeps them forever.
    pub idempotency_retention: Duration,
    pub nats: NatsConfig,
    pub streams: crate::bus::streams::StreamSettings,
    pub security: Security,
    /// Where each key's value came from, for `souk config print` and error messages.
    pub origins: BTreeMap<&'static str, Origin>,
    values: BTreeMap<&'static str, String>,
}

/// Limits and sign-in settings of the HTTP front door.
#[derive(Clone, Debug)]
pub struct Security {
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub body_limit: usize,
    pub max_concurrency: usize,
    pub request_timeout: Duration,
    pub max_sse: usize,
    pub cors_origins: Vec<String>,
    pub trust_proxy: bool,
    pub session_idle: Duration,
    pub session_max_age: Duration,
    pub catalog_public: bool,
}

/// How Souk reaches NATS: its own bundled server, or an existing one.
#[derive(Clone, Debug, Default)]
pub struct NatsConfig {
    pub urls: Vec<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub server_bin: Option<PathBuf>,
    pub max_memory_store: u64,
    pub max_file_store: u64,
    /// `None` = `always` (fsync every write).
    pub sync_interval: Option<Duration>,
}

impl NatsConfig {
    /// True when Souk should start and supervise its own nats-server.
    pub fn bundled(&self) -> bool {
        self.urls.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The services this build of Souk runs. Carts, orders, billing and notifications join the list
/// as they are built; until then naming one is an error, not a silent no-op (and `all` does not
/// claim them in the start-up log).
pub const SERVICES: &[&str] = &["auth", "users", "listings", "catalog"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment {v}"),
            Origin::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown config key `{key}` in {path}; known keys: {known}")]
    UnknownKey {
        key: String,
        path: PathBuf,
        known: String,
    },
    #[error("invalid value {value:?} for `{key}` (env {env}, from {origin}): {why}")]
    Invalid {
        key: &'static str,
        env: String,
        value: String,
        origin: Origin,
        why: String,
    },
}

/// The environment variable that sets `key`.
pub fn env_var(key: &str) -> String {
    format!("SOUK_{}", key.to_uppercase().replace('.', "_"))
}

/// Environment variables with the `SOUK_` prefix that are not configuration keys. They are
/// read elsewhere (the build, the tests) and must not be reported as unknown. The embedded
/// server's version and checksum are the build script's `rustc-env`, which `cargo run` (README's
/// start command) also sets for the running program.
const NON_CONFIG_ENV: &[&str] = &[
    "SOUK_NATS_SERVER",
    "SOUK_CONFIG",
    "SOUK_TOKEN",
    "SOUK_NATS_VERSION",
    "SOUK_NATS_SHA256",
];

impl Config {
    /// Layers the sources in order of precedence. `env` looks a variable up (std::env::var in
    /// production, a map in tests); `flags` are `(key, value, flag name)` from the command line.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(&'static str, String, &'static str)],
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, Origin)> = KEYS
            .iter()
            .map(|k| (k.name, (k.default.to_string(), Origin::Default)))
            .collect();

        if let Some(path) = file {
            for (name, value) in read_file(path)? {
                values.insert(name, (value, Origin::File(path.to_path_buf())));
            }
        }
        for k in KEYS {
            let var = env_var(k.name);
            if let Some(v) = env(&var) {
                values.insert(k.name, (v, Origin::Env(var)));
            }
        }
        for (name, value, flag) in flags {
            let k = KEYS
                .iter()
                .find(|k| k.name == *name)
                .expect("flag maps to a known key");
            values.insert(k.name, (value.clone(), Origin::Flag((*flag).to_string())));
        }
        Self::parse(values)
    }

    fn parse(values: BTreeMap<&'static str, (String, Origin)>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| &values[name];
        let invalid = |name: &'static str, why: String| {
            let (value, origin) = get(name);
            let value = match KEYS.iter().find(|k| k.name == name) {
                Some(k) if k.secret => "********".to_string(),
                _ if name == "nats_url" => value
                    .split(',')
                    .map(redact_url)
                    .collect::<Vec<_>>()
                    .join(","),
                _ => value.clone(),
            };
            ConfigError::Invalid {
                key: name,
                env: env_var(name),
                value,
                origin: origin.clone(),
                why,
            }
        };
        let text = |name: &'static str| get(name).0.trim().to_string();
        let opt = |name: &'static str| Some(text(name)).filter(|v| !v.is_empty());
        let path = |name: &'static str| opt(name).map(PathBuf::from);
        let size = |name: &'static str| parse_size(&text(name)).map_err(|why| invalid(name, why));
        let duration =
            |name: &'static str| parse_duration(&text(name)).map_err(|why| invalid(name, why));

        let data_dir = opt("data_dir")
            .map(PathBuf::from)
            .ok_or_else(|| invalid("data_dir", "must not be empty".into()))?;
        let http: SocketAddr = text("http").parse().map_err(|_| {
            invalid(
                "http",
                "expected an address like 127.0.0.1:8080 or [::1]:0".into(),
            )
        })?;
        let log_format = match text("log_format").as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(invalid("log_format", "expected `text` or `json`".into())),
        };
        let log_level = text("log_level");
        tracing_subscriber::EnvFilter::try_new(&log_level)
            .map_err(|e| invalid("log_level", e.to_string()))?;
        let prefix = text("prefix");
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                "prefix",
                "use letters, digits, `-` and `_` only".into(),
            ));
        }
        let services = parse_services(&text("services")).map_err(|why| invalid("services", why))?;
        let mut urls: Vec<String> = text("nats_url")
            .split(',')
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        let mut from_url: Option<(String, String)> = None;
        for url in &mut urls {
            if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                return Err(invalid(
                    "nats_url",
                    format!("`{}` must start with nats:// or tls://", redact_url(url)),
                ));
            }
            if let Some((clean, user, password)) = split_credentials(url) {
                *url = clean;
                from_url = Some((user, password));
            }
        }
        let (url_user, url_password) = from_url.unzip();
        let nats = NatsConfig {
            urls,
            // `nats://user:password@host` works like nats_user and nats_password (which win), and
            // the URL is kept without them, so they never reach a log line or /readyz.
            user: opt("nats_user").or(url_user),
            password: opt("nats_password").or(url_password),
            creds_file: path("nats_creds_file"),
            tls_ca_file: path("nats_tls_ca_file"),
            tls_cert_file: path("nats_tls_cert_file"),
            tls_key_file: path("nats_tls_key_file"),
            server_bin: path("nats_server_bin"),
            max_memory_store: size("nats_max_memory_store")?,
            max_file_store: size("nats_max_file_store")?,
            sync_interval: match text("nats_sync_interval").as_str() {
                "always" => None,
                _ => Some(duration("nats_sync_interval")?)
                    .filter(|d| !d.is_zero())
                    .map(Some)
                    .ok_or_else(|| {
                        invalid("nats_sync_interval", "must be above 0, or `always`".into())
                    })?,
            },
        };
        let replicas: usize = text("stream_replicas")
            .parse()
            .ok()
            .filter(|r| (1..=5).contains(r))
            .ok_or_else(|| invalid("stream_replicas", "must be a number from 1 to 5".into()))?;
        let duplicate_window = duration("stream_duplicate_window")?;
        if duplicate_window < Duration::from_secs(120) {
            return Err(invalid(
                "stream_duplicate_window",
                "must be at least 2m".into(),
            ));
        }
        let max_age = duration("stream_max_age")?;
        // JetStream refuses a stream whose duplicate window outlasts its events.
        if !max_age.is_zero() && max_age < duplicate_window {
            return Err(invalid(
                "stream_max_age",
                format!(
                    "must be 0s (keep events forever) or at least stream_duplicate_window \
                     ({}, env SOUK_STREAM_DUPLICATE_WINDOW)",
                    text("stream_duplicate_window")
                ),
            ));
        }
        // The bundled server is one node: it cannot hold more than one copy of a stream.
        if replicas > 1 && nats.urls.is_empty() {
            return Err(invalid(
                "stream_replicas",
                "must be 1 with the bundled nats-server; replicas need nats_url pointing at a \
                 NATS cluster"
                    .into(),
            ));
        }
        let streams = crate::bus::streams::StreamSettings {
            replicas,
            max_bytes: size("stream_max_bytes")?,
            max_age,
            duplicate_window,
        };
        if nats.tls_cert_file.is_some() != nats.tls_key_file.is_some() {
            return Err(invalid(
                "nats_tls_key_file",
                "set both nats_tls_cert_file and nats_tls_key_file".into(),
            ));
        }
        let boolean = |name: &'static str| match text(name).as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid(name, "expected `true` or `false`".into())),
        };
        let count = |name: &'static str| {
            text(name)
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid(name, "must be a whole number above 0".into()))
        };
        let positive = |name: &'static str| {
            let d = duration(name)?;
            if d.is_zero() {
                return Err(invalid(name, "must be above 0".into()));
            }
            Ok(d)
        };
        let cors_origins: Vec<String> = text("http_cors_origins")
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || axum::http::HeaderValue::from_str(origin).is_err()
            {
                return Err(invalid(
                    "http_cors_origins",
                    format!("`{origin}` is not an origin like https://shop.example.com"),
                ));
            }
        }
        let security = Security {
            tls_cert: path("http_tls_cert"),
            tls_key: path("http_tls_key"),
            body_limit: usize::try_from(size("http_body_limit")?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("http_body_limit", "must be above 0".into()))?,
            max_concurrency: count("http_max_concurrency")?,
            request_timeout: positive("http_request_timeout")?,
            max_sse: count("http_max_sse")?,
            cors_origins,
            trust_proxy: boolean("http_trust_proxy")?,
            session_idle: positive("session_idle_timeout")?,
            session_max_age: positive("session_max_age")?,
            catalog_public: boolean("catalog_public")?,
        };
        if security.tls_cert.is_some() != security.tls_key.is_some() {
            return Err(invalid(
                "http_tls_key",
                "set both http_tls_cert and http_tls_key".into(),
            ));
        }
        Ok(Config {
            data_dir,
            http,
            log_format,
            log_level,
            prefix,
            services,
            // 0s would not wait at all: every stop would kill nats-server mid-write.
            shutdown_timeout: positive("shutdown_timeout")?,
            idempotency_retention: duration("idempotency_retention")?,
            nats,
            streams,
            security,
            origins: values.iter().map(|(k, (_, o))| (*k, o.clone())).collect(),
            values: values.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        })
    }

    /// The defaults alone (tests and tools start from here).
    pub fn defaults() -> Config {
        Config::load(None, |_| None, &[]).expect("defaults are valid")
    }

    /// The effective configuration as TOML, secrets masked, each line saying where it came from.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for k in KEYS {
            let value = &self.values[k.name];
            let redacted;
            let shown = if k.secret && !value.is_empty() {
                "********"
            } else if k.name == "nats_url" {
                redacted = value
                    .split(',')
                    .map(redact_url)
                    .collect::<Vec<_>>()
                    .join(",");
                &redacted
            } else {
                value
            };
            let origin = &self.origins[k.name];
            out.push_str(&format!(
                "{} = {}  # {origin}\n",
                k.name,
                toml_string(shown)
            ));
        }
        out
    }

    /// `SOUK_*` variables that set nothing: most likely a typo the operator should hear about.
    pub fn unknown_env_vars(vars: impl Iterator<Item = String>) -> Vec<String> {
        vars.filter(|v| v.starts_with("SOUK_"))
            .filter(|v| !NON_CONFIG_ENV.contains(&v.as_str()))
            .filter(|v| !KEYS.iter().any(|k| env_var(k.name) == *v))
            .collect()
    }

    /// How long published events stay in an outbox: longer than JetStream may hold them unsynced.
    pub fn outbox_retention(&self) -> Duration {
        let sync = self.nats.sync_interval.unwrap_or(Duration::ZERO);
        (sync * 3).max(Duration::from_secs(30))
    }

    /// Whether `service` runs in this process.
    pub fn runs(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }
}

fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    // `[catalog] public = true` (or `catalog.public = true`) is the key `catalog_public`.
    let mut flat = Vec::new();
    for (name, value) in table {
        match value {
            toml::Value::Table(inner) => {
                for (sub, v) in inner {
                    flat.push((format!("{name}_{sub}"), v));
                }
            }
            v => flat.push((name, v)),
        }
    }
    let mut out = Vec::new();
    for (name, value) in flat {
        let Some(k) = KEYS.iter().find(|k| k.name == name) else {
            let known = KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ");
            return Err(ConfigError::UnknownKey {
                key: name,
                path: path.to_path_buf(),
                known,
            });
        };
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        out.push((k.name, value));
    }
    Ok(out)
}

fn parse_services(list: &str) -> Result<Vec<String>, String> {
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err("name at least one service, or `all`".into());
    }
    if names == ["all"] {
        return Ok(SERVICES.iter().map(|s| s.to_string()).collect());
    }
    for n in &names {
        if !SERVICES.contains(n) {
            return Err(format!(
                "unknown service `{n}`; known: all, {}",
                SERVICES.join(", ")
            ));
        }
    }
    Ok(SERVICES
        .iter()
        .filter(|s| names.contains(s))
        .map(|s| s.to_string())
        .collect())
}

/// Sizes like `64MiB`, `10GiB`, `512KiB`, `1GB` or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a size like 64MiB or 1GiB".to_string())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "unknown size unit `{u}`; use B, KiB, MiB, GiB, TiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| "size is too large".to_string())
}

/// `url` with any user and password replaced by `********`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rsplit_once('@')) {
            Some((_, host)) => {
                let path = &rest[rest.find('/').unwrap_or(rest.len())..];
                format!("{scheme}://********@{host}{path}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// A NATS URL's user and password (percent-decoded) and the URL without them, when it has both.
/// A user alone (a token) stays in the URL, as NATS reads it.
fn split_credentials(text: &str) -> Option<(String, String, String)> {
    let mut url = url::Url::parse(text).ok()?;
    let password = url.password()?.to_string();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = (decode(url.username()), decode(&password));
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some((url.to_string(), user, password))
}

/// Durations like `250ms`, `10s`, `2m`, `1h`, `30d`; at most [`MAX_DURATION_DAYS`] days.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a duration like 500ms, 10s, 2m or 30d".to_string())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err("expected a duration with a unit: ms, s, m, h or d".into()),
    };
    let max = MAX_DURATION_DAYS * 86_400_000;
    match n.checked_mul(millis_per_unit) {
        Some(ms) if ms <= max => Ok(Duration::from_millis(ms)),
        _ => Err(format!("too long: at most {MAX_DURATION_DAYS}d")),
    }
}

/// The longest duration any setting takes (ten years): longer ones are mistakes, and some
/// (nats-server's `sync_interval`) would not parse downstream.
pub const MAX_DURATION_DAYS: u64 = 3650;

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn precedence_is_defaults_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("souk.toml");
        std::fs::write(
            &file,
            "http = \"127.0.0.1:1\"\nlog_level = \"debug\"\nprefix = \"f\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[("SOUK_LOG_LEVEL", "warn"), ("SOUK_PREFIX", "e")]),
            &[("prefix", "flag".into(), "--prefix")],
        )
        .unwrap();
        assert_eq!(c.http.port(), 1);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.prefix, "flag");
        assert_eq!(c.origins["data_dir"], Origin::Default);
        assert_eq!(c.origins["http"], Origin::File(file));
    }

    #[test]
    fn unknown_file_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("souk.toml");
        std::fs::write(&file, "htp = \"127.0.0.1:1\"\n").unwrap();
        let err = Config::load(Some(&file), |_| None, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown config key `htp`"), "{err}");
    }

    #[test]
    fn bad_values_name_key_env_and_origin() {
        let err = Config::load(None, env(&[("SOUK_HTTP", "nope")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`http`") && err.contains("SOUK_HTTP"), "{err}");
        assert!(err.contains("environment SOUK_HTTP"), "{err}");
        let err = Config::load(
            None,
            |_| None,
            &[("services", "users,bogus".into(), "--services")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown service `bogus`"), "{err}");
    }

    /// `shutdown_timeout = "0s"` would make every stop kill nats-server at once, so it is
    /// refused like a zero `http_request_timeout`, naming the key and its env var.
    #[test]
    fn durations_that_must_be_above_zero_refuse_zero() {
        for (key, var) in [
            ("shutdown_timeout", "SOUK_SHUTDOWN_TIMEOUT"),
            ("http_request_timeout", "SOUK_HTTP_REQUEST_TIMEOUT"),
        ] {
            let err = Config::load(None, env(&[(var, "0s")]), &[])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("`{key}`")) && err.contains(var),
                "{err}"
            );
            assert!(err.contains("must be above 0"), "{err}");
        }
        let c = Config::load(None, env(&[("SOUK_SHUTDOWN_TIMEOUT", "1ms")]), &[]).unwrap();
        assert_eq!(c.shutdown_timeout, Duration::from_millis(1));
    }

    #[test]
    fn credentials_in_a_nats_url_are_used_and_never_shown() {
        let url = "nats://alice:s3cr%40t@nats.example.com:4222,nats://n2:4222";
        let c = Config::load(None, env(&[("SOUK_NATS_URL", url)]), &[]).unwrap();
        assert_eq!(
            c.nats.urls,
            ["nats://nats.example.com:4222", "nats://n2:4222"]
        );
        assert_eq!(c.nats.user.as_deref(), Some("alice"));
        assert_eq!(c.nats.password.as_deref(), Some("s3cr@t"));
        let shown = c.render();
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(
            shown.contains("nats://********@nats.example.com:4222,nats://n2:4222"),
            "{shown}"
        );
        // nats_user and nats_password win over the URL's.
        let c = Config::load(
            None,
            env(&[("SOUK_NATS_URL", url), ("SOUK_NATS_PASSWORD", "other")]),
            &[],
        )
        .unwrap();
        assert_eq!(c.nats.password.as_deref(), Some("other"));
        // A bad URL's message does not repeat its password.
        let e = Config::load(None, env(&[("SOUK_NATS_URL", "http://bob:pw@h")]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nats_url") && !e.contains("pw@"), "{e}");
        assert_eq!(redact_url("tls://tok@h:1/x"), "tls://********@h:1/x");
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
    }

    #[test]
    fn stream_settings_nats_would_refuse_are_named_at_load() {
        let refused =
            |vars: &[(&str, &str)]| Config::load(None, env(vars), &[]).unwrap_err().to_string();
        let e = refused(&[("SOUK_STREAM_MAX_AGE", "1m")]);
        assert!(
            e.contains("stream_max_age") && e.contains("stream_duplicate_window"),
            "{e}"
        );
        let e = refused(&[("SOUK_STREAM_REPLICAS", "3")]);
        assert!(
            e.contains("stream_replicas") && e.contains("nats_url"),
            "{e}"
        );
        let ok = Config::load(
            None,
            env(&[
                ("SOUK_STREAM_MAX_AGE", "2m"),
                ("SOUK_STREAM_REPLICAS", "3"),
                ("SOUK_NATS_URL", "nats://a:4222"),
            ]),
            &[],
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn secrets_are_masked_when_printed() {
        let c = Config::load(None, env(&[("SOUK_NATS_PASSWORD", "hunter2")]), &[]).unwrap();
        let shown = c.render();
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("nats_password = \"********\""));
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10").is_err());
        // README's `souk admin token create --expires-in 30d`.
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_duration("3650d").unwrap(),
            Duration::from_secs(3650 * 86_400)
        );
        // Beyond ten years (or past u64 milliseconds) is an error, not an overflow.
        assert!(
            parse_duration("3651d")
                .unwrap_err()
                .contains("at most 3650d")
        );
        assert!(parse_duration("99999999999999h").is_err());
        assert!(parse_duration("18446744073709551615d").is_err());
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../README.md");
        for k in KEYS {
            let row = format!("| `{}` | `{}` |", k.name, env_var(k.name));
            assert!(
                readme.contains(&row),
                "README.md lacks a row for `{}`",
                k.name
            );
            let default = if k.default.is_empty() {
                "| |".to_string()
            } else {
                format!("| `{}` |", k.default)
            };
            assert!(
                readme
                    .lines()
                    .any(|l| l.starts_with(&row) && l.contains(&default)),
                "README.md shows another default for `{}`",
                k.name
            );
        }
    }

    #[test]
    fn unknown_env_vars_are_found() {
        // SOUK_NATS_VERSION and SOUK_NATS_SHA256: `cargo run` sets them from build.rs.
        let vars = [
            "SOUK_HTTP",
            "SOUK_HTPP",
            "SOUK_NATS_SERVER",
            "SOUK_NATS_VERSION",
            "SOUK_NATS_SHA256",
            "PATH",
        ]
        .map(String::from);
        assert_eq!(
            Config::unknown_env_vars(vars.into_iter()),
            vec!["SOUK_HTPP".to_string()]
        );
    }
}
