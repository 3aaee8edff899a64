//! `souk admin …`: manage console accounts and API tokens straight in the data dir while Souk
//! is stopped (redb allows one process per store, so a running Souk makes these refuse with a
//! clear message). Changes emit their audit events into the outbox; Souk publishes them at its
//! next start.

use super::commands::{self, now_secs};
use super::error::AuthError;
use super::model::*;
use super::store;
use crate::bus::{Meta, Names};
use crate::config::Config;
use crate::store::{Store, WriteError};
use anyhow::bail;

/// The data dir's lock (refused while Souk runs) and `auth.redb`.
async fn open(config: &Config) -> anyhow::Result<(std::fs::File, Store)> {
    use crate::data_dir::OpenError;
    let lock = match crate::data_dir::open(config) {
        Ok(lock) => lock,
        Err(e @ OpenError::InUse { .. }) => {
            return Err(anyhow::Error::new(e).context(
                "stop Souk first, or use the API instead (POST /api/admin/accounts, POST \
                 /api/admin/tokens)",
            ));
        }
        // Not about a running Souk (permissions, a read-only disk): the error says what.
        Err(OpenError::Failed(e)) => return Err(e),
    };
    let path = config.data_dir.join("auth.redb");
    let db = tokio::task::spawn_blocking(move || Store::open(&path)).await??;
    db.write(store::init)
        .await
        .map_err(|e| anyhow::anyhow!("preparing auth.redb: {e}"))?;
    Ok((lock, db))
}

fn system() -> Meta {
    Meta {
        actor: Some("system".into()),
        ..Meta::default()
    }
}

fn refused(e: WriteError<AuthError>) -> anyhow::Error {
    match e {
        WriteError::Rejected(AuthError::Invalid(errors)) => anyhow::anyhow!(
            "{}",
            errors
                .iter()
                .map(|f| format!("{} {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        WriteError::Rejected(e) => anyhow::anyhow!("{e}"),
        WriteError::Store(e) => anyhow::anyhow!("{e}"),
    }
}

fn checked(email: &str, password: &str) -> anyhow::Result<String> {
    let mut errors = Vec::new();
    let email = check_email(email, &mut errors);
    check_password("password", password, &mut errors);
    if let Some(f) = errors.first() {
        bail!("{} {}", f.field, f.message);
    }
    Ok(email)
}

/// `souk admin create`: a new console account (admin unless told otherwise).
pub async fn create(
    config: &Config,
    email: &str,
    password: &str,
    role: Role,
) -> anyhow::Result<Account> {
    let email = checked(email, password)?;
    let (_lock, db) = open(config).await?;
    let hash = commands::hash(password.to_string()).await;
    let names = Names::new(&config.prefix);
    let account = db
        .write(move |t| {
            commands::insert_account(t, &names, email.clone(), role, hash.clone(), &system())
        })
        .await
        .map_err(refused)?;
    Ok(Account::from(&account))
}

/// `souk admin reset-password`: a new password; every session of the account ends.
pub async fn reset_password(config: &Config, email: &str, password: &str) -> anyhow::Result<()> {
    let email = checked(email, password)?;
    let (_lock, db) = open(config).await?;
    let hash = commands::hash(password.to_string()).await;
    let names = Names::new(&config.prefix);
    let unknown = anyhow::anyhow!(
        "no console account has the email {email} in data dir {}; `souk admin create` makes one",
        config.data_dir.display()
    );
    db.write(move |t| {
        let id =
            store::account_by_email(t, &email)?.ok_or(AuthError::NotFound("console account"))?;
        let before = store::account(t, &id)?.ok_or(AuthError::NotFound("console account"))?;
        commands::set_password(t, &names, &before, hash.clone(), None, &system())?;
        Ok(())
    })
    .await
    .map_err(|e| match e {
        WriteError::Rejected(AuthError::NotFound(_)) => unknown,
        e => refused(e),
    })
}

/// `souk admin token create`: a new API token; the secret is returned once.
pub async fn create_token(
    config: &Config,
    name: &str,
    role: Role,
    expires_in: Option<std::time::Duration>,
) -> anyhow::Result<CreatedToken> {
    let expires_at = expires_in.map(|d| {
        crate::clock::rfc3339(
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(now_secs()) + d,
        )
    });
    let body = commands::check_token(&TokenCreateBody {
        name: name.to_string(),
        role,
        expires_at,
    })
    .map_err(|e| refused(WriteError::Rejected(e)))?;
    let (_lock, db) = open(config).await?;
    let names = Names::new(&config.prefix);
    db.write(move |t| commands::insert_token(t, &names, body.clone(), "system".into(), &system()))
        .await
        .map_err(refused)
}
