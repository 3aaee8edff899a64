//! The `souk` command: parse the command line, load the configuration, start logging, run.

use clap::Parser;
use souk::cli::{AdminCommand, Cli, Command, ConfigCommand, ProjectionsCommand, TokenCommand};
use souk::config::Config;
use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: profiled during a catalog rebuild, Souk spent about a
/// quarter of its CPU in glibc's `malloc`/`free` (events decode into many small allocations on
/// several threads at once).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every file Souk and its nats-server create is private to Souk's user.
    souk::data_dir::private_umask();
    if let Command::NatsExec(args) = &cli.command {
        return souk::broker::shim::exec(args);
    }
    let file = cli
        .global
        .config
        .clone()
        .or_else(|| std::env::var_os("SOUK_CONFIG").map(Into::into));
    let config = match Config::load(file.as_deref(), |k| std::env::var(k).ok(), &cli.overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("souk: {e}");
            return ExitCode::from(2);
        }
    };
    souk::telemetry::init(config.log_format, &config.log_level);
    for var in Config::unknown_env_vars(std::env::vars().map(|(k, _)| k)) {
        tracing::warn!(
            "{var} is set but is not a Souk setting; see `souk config print` for the keys"
        );
    }

    match cli.command {
        Command::Serve(_) => run_serve(config),
        Command::Version => {
            println!("souk {}", souk::VERSION);
            match souk::broker::binary::embedded() {
                Some((v, sha)) => println!("nats-server {v} (embedded, sha256 {sha})"),
                None => println!("nats-server: none embedded (uses nats_server_bin or PATH)"),
            }
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Print,
        } => {
            print!("{}", config.render());
            ExitCode::SUCCESS
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild { name, url, token },
        } => {
            let token = token.or_else(|| std::env::var("SOUK_TOKEN").ok());
            run_async(souk::projections::rebuild(&config, &name, url, token))
        }
        Command::Admin { command } => run_async(admin(config, command)),
        Command::NatsExec(_) => unreachable!("handled above"),
    }
}

/// `souk admin …`, offline against the data dir. A data dir that did not exist is created (the
/// first admin may be made before the first start), and the operator is told, since a mistyped
/// `--data-dir` would otherwise put the account where no Souk looks.
async fn admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    let existed = config.data_dir.exists();
    let made = match &command {
        AdminCommand::Create { .. } => "the account is",
        AdminCommand::Token { .. } => "the token is",
        AdminCommand::ResetPassword { .. } => "accounts are",
    };
    let done = admin_in(&config, command).await;
    if !existed && config.data_dir.exists() {
        let dir = std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
        eprintln!(
            "note: {} did not exist and was created; {made} only seen by a `souk serve` using \
             this data dir (config `data_dir`, env {}, flag --data-dir)",
            dir.display(),
            souk::config::env_var("data_dir")
        );
    }
    done
}

async fn admin_in(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    use souk::services::auth::{Role, offline};
    let role = |text: &str| {
        Role::parse(text)
            .ok_or_else(|| anyhow::anyhow!("unknown role `{text}`; use admin, editor or viewer"))
    };
    match command {
        AdminCommand::Create { email, role: r, .. } => {
            let password = read_password()?;
            let account = offline::create(config, &email, &password, role(&r)?).await?;
            println!(
                "created {} account {} ({})",
                account.role.as_str(),
                account.email,
                account.id
            );
        }
        AdminCommand::ResetPassword { email, .. } => {
            let password = read_password()?;
            offline::reset_password(config, &email, &password).await?;
            println!("password set for {email}; their sessions have ended");
        }
        AdminCommand::Token {
            command:
                TokenCommand::Create {
                    name,
                    role: r,
                    expires_in,
                },
        } => {
            let expires_in = expires_in
                .map(|d| souk::config::parse_duration(&d))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
            let created = offline::create_token(config, &name, role(&r)?, expires_in).await?;
            eprintln!(
                "created {} token {} ({}); it is shown only now:",
                created.info.role.as_str(),
                created.info.name,
                created.info.id
            );
            println!("{}", created.token);
        }
    }
    Ok(())
}

/// One line of standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        anyhow::bail!("no password on standard input (pipe it in: `echo … | souk admin create …`)");
    }
    Ok(password)
}

fn run_serve(config: Config) -> ExitCode {
    let shim = std::env::current_exe().ok();
    run_async(souk::app::serve(config, shim))
}

/// Runs a command on a multi-threaded runtime; an error is logged and printed.
fn run_async(command: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("souk: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("souk: {e:#}");
            if e.chain().any(|c| c.is::<souk::config::Unusable>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
