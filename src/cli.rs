//! The command line: subcommands and the flags that override configuration keys.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "souk",
    version,
    about = "An event-driven marketplace backend in one binary"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Default)]
pub struct GlobalArgs {
    /// TOML configuration file (env SOUK_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (config `data_dir`, env SOUK_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// `text` or `json` (config `log_format`, env SOUK_LOG_FORMAT).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter (config `log_level`, env SOUK_LOG_LEVEL).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start Souk: the bundled NATS server, the services and the HTTP API.
    Serve(ServeArgs),
    /// Print the versions of Souk and of the bundled nats-server.
    Version,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Read models: rebuild one from the event streams.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Console accounts and API tokens, straight in the data dir (while Souk is stopped).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Internal: runs the bundled nats-server so that it dies with Souk.
    #[command(name = "__nats-exec", hide = true)]
    NatsExec(NatsExecArgs),
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// HTTP listen address (config `http`, env SOUK_HTTP).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Use existing NATS servers instead of the bundled one (config `nats_url`, env SOUK_NATS_URL).
    #[arg(long, value_name = "URLS")]
    pub nats_url: Option<String>,
    /// nats-server binary to run instead of the embedded one (config `nats_server_bin`).
    #[arg(long, value_name = "PATH")]
    pub nats_server_bin: Option<String>,
    /// Services to run here, comma-separated, or `all` (config `services`, env SOUK_SERVICES).
    #[arg(long, value_name = "LIST")]
    pub services: Option<String>,
    /// PEM certificate chain: serve HTTPS (config `http_tls_cert`, env SOUK_HTTP_TLS_CERT).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// PEM private key for --tls-cert (config `http_tls_key`, env SOUK_HTTP_TLS_KEY).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ProjectionsCommand {
    /// Rebuild a read model (`catalog`) in the running Souk, beside the live one, and swap it in.
    Rebuild {
        /// The read model: `catalog`.
        name: String,
        /// The running Souk's address (default: from config `http`; https://localhost:PORT when
        /// `http_tls_cert` is set, trusting only that certificate).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// An admin API token (env SOUK_TOKEN).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a console account; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (one line); required, so it never shows in
        /// the process list or shell history.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// `admin`, `editor` or `viewer`.
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// Set a new password for a console account (its sessions end); read from standard input.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// API tokens for scripts.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print its secret (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// `admin`, `editor` or `viewer`.
        #[arg(long)]
        role: String,
        /// Stop working after this long, e.g. `30d` (default: never).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and where each value came from.
    Print,
}

#[derive(Args, Debug)]
pub struct NatsExecArgs {
    /// The pid of the Souk process the server must not outlive.
    #[arg(long)]
    pub parent_pid: i32,
    /// The nats-server binary and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

impl Cli {
    /// Flags that override configuration keys, as `(key, value, flag)`.
    pub fn overrides(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut out = Vec::new();
        let g = &self.global;
        let mut add = |key, value: &Option<String>, flag| {
            if let Some(v) = value {
                out.push((key, v.clone(), flag));
            }
        };
        add("data_dir", &g.data_dir, "--data-dir");
        add("log_format", &g.log_format, "--log-format");
        add("log_level", &g.log_level, "--log-level");
        if let Command::Serve(s) = &self.command {
            add("http", &s.http, "--http");
            add("nats_url", &s.nats_url, "--nats-url");
            add("nats_server_bin", &s.nats_server_bin, "--nats-server-bin");
            add("services", &s.services, "--services");
            add("http_tls_cert", &s.tls_cert, "--tls-cert");
            add("http_tls_key", &s.tls_key, "--tls-key");
        }
        out
    }
}
