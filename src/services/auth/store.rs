//! `auth.redb`: accounts (by id and by email), sessions (by secret hash, and by account for
//! sign-out everywhere), API tokens (by id and by secret hash), and the outbox of the
//! `account.*`/`token.*` audit events.

use super::model::{AccountRecord, SessionRecord, TokenRecord};
use crate::services::get_value;
use crate::store::{StoreError, codec};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("accounts_by_email");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// `<account id>/<session hash>`: an account's sessions, to end them all at once.
const ACCOUNT_SESSIONS: TableDefinition<&str, ()> = TableDefinition::new("sessions_by_account");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
const TOKEN_HASHES: TableDefinition<&str, &str> = TableDefinition::new("tokens_by_hash");

pub fn init(t: &WriteTransaction) -> Result<(), StoreError> {
    t.open_table(ACCOUNTS)?;
    t.open_table(EMAILS)?;
    t.open_table(SESSIONS)?;
    t.open_table(ACCOUNT_SESSIONS)?;
    t.open_table(TOKENS)?;
    t.open_table(TOKEN_HASHES)?;
    crate::bus::outbox::init(t)
}

// Accounts.

pub fn account(t: &WriteTransaction, id: &str) -> Result<Option<AccountRecord>, StoreError> {
    get_value(&t.open_table(ACCOUNTS)?, id)
}

pub fn read_account(t: &ReadTransaction, id: &str) -> Result<Option<AccountRecord>, StoreError> {
    get_value(&t.open_table(ACCOUNTS)?, id)
}

pub fn read_account_by_email(
    t: &ReadTransaction,
    email: &str,
) -> Result<Option<AccountRecord>, StoreError> {
    let id = t
        .open_table(EMAILS)?
        .get(email)?
        .map(|v| v.value().to_string());
    match id {
        Some(id) => read_account(t, &id),
        None => Ok(None),
    }
}

pub fn account_by_email(t: &WriteTransaction, email: &str) -> Result<Option<String>, StoreError> {
    Ok(t.open_table(EMAILS)?
        .get(email)?
        .map(|v| v.value().to_string()))
}

pub fn put_account(
    t: &WriteTransaction,
    a: &AccountRecord,
    before: Option<&AccountRecord>,
) -> Result<(), StoreError> {
    let mut emails = t.open_table(EMAILS)?;
    if let Some(old) = before {
        emails.remove(old.email.as_str())?;
    }
    emails.insert(a.email.as_str(), a.id.as_str())?;
    t.open_table(ACCOUNTS)?
        .insert(a.id.as_str(), codec::encode(a).as_slice())?;
    Ok(())
}

pub fn remove_account(t: &WriteTransaction, a: &AccountRecord) -> Result<(), StoreError> {
    t.open_table(EMAILS)?.remove(a.email.as_str())?;
    t.open_table(ACCOUNTS)?.remove(a.id.as_str())?;
    Ok(())
}

fn all_accounts(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<AccountRecord>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}

pub fn accounts(t: &WriteTransaction) -> Result<Vec<AccountRecord>, StoreError> {
    all_accounts(&t.open_table(ACCOUNTS)?)
}

pub fn read_accounts(t: &ReadTransaction) -> Result<Vec<AccountRecord>, StoreError> {
    all_accounts(&t.open_table(ACCOUNTS)?)
}

// Sessions.

pub fn read_session(t: &ReadTransaction, hash: &str) -> Result<Option<SessionRecord>, StoreError> {
    get_value(&t.open_table(SESSIONS)?, hash)
}

pub fn session(t: &WriteTransaction, hash: &str) -> Result<Option<SessionRecord>, StoreError> {
    get_value(&t.open_table(SESSIONS)?, hash)
}

pub fn put_session(t: &WriteTransaction, hash: &str, s: &SessionRecord) -> Result<(), StoreError> {
    t.open_table(SESSIONS)?
        .insert(hash, codec::encode(s).as_slice())?;
    t.open_table(ACCOUNT_SESSIONS)?
        .insert(format!("{}/{hash}", s.account_id).as_str(), ())?;
    Ok(())
}

pub fn remove_session(t: &WriteTransaction, hash: &str) -> Result<(), StoreError> {
    let removed: Option<SessionRecord> = {
        let mut table = t.open_table(SESSIONS)?;
        let v = table.remove(hash)?;
        v.map(|v| codec::decode(v.value())).transpose()?
    };
    if let Some(s) = removed {
        t.open_table(ACCOUNT_SESSIONS)?
            .remove(format!("{}/{hash}", s.account_id).as_str())?;
    }
    Ok(())
}

/// Ends every session of `account_id` except `keep`; returns how many ended.
pub fn end_sessions(
    t: &WriteTransaction,
    account_id: &str,
    keep: Option<&str>,
) -> Result<usize, StoreError> {
    let prefix = format!("{account_id}/");
    let hashes: Vec<String> = {
        let table = t.open_table(ACCOUNT_SESSIONS)?;
        let mut out = Vec::new();
        for row in table.range(prefix.as_str()..)? {
            let (k, _) = row?;
            let Some(hash) = k.value().strip_prefix(&prefix) else {
                break;
            };
            out.push(hash.to_string());
        }
        out
    };
    let mut n = 0;
    for hash in hashes.iter().filter(|h| Some(h.as_str()) != keep) {
        remove_session(t, hash)?;
        n += 1;
    }
    Ok(n)
}

/// Removes sessions past their end; returns how many.
pub fn prune_sessions(t: &WriteTransaction, now: u64, idle: u64) -> Result<usize, StoreError> {
    let dead: Vec<String> = {
        let table = t.open_table(SESSIONS)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let s: SessionRecord = codec::decode(v.value())?;
            if s.expires_at <= now || s.last_seen_at + idle <= now {
                out.push(k.value().to_string());
            }
        }
        out
    };
    for hash in &dead {
        remove_session(t, hash)?;
    }
    Ok(dead.len())
}

// Tokens.

pub fn read_token_by_hash(
    t: &ReadTransaction,
    hash: &str,
) -> Result<Option<TokenRecord>, StoreError> {
    let id = t
        .open_table(TOKEN_HASHES)?
        .get(hash)?
        .map(|v| v.value().to_string());
    match id {
        Some(id) => get_value(&t.open_table(TOKENS)?, &id),
        None => Ok(None),
    }
}

pub fn token(t: &WriteTransaction, id: &str) -> Result<Option<TokenRecord>, StoreError> {
    get_value(&t.open_table(TOKENS)?, id)
}

pub fn put_token(t: &WriteTransaction, tok: &TokenRecord) -> Result<(), StoreError> {
    t.open_table(TOKEN_HASHES)?
        .insert(tok.hash.as_str(), tok.id.as_str())?;
    t.open_table(TOKENS)?
        .insert(tok.id.as_str(), codec::encode(tok).as_slice())?;
    Ok(())
}

pub fn remove_token(t: &WriteTransaction, tok: &TokenRecord) -> Result<(), StoreError> {
    t.open_table(TOKEN_HASHES)?.remove(tok.hash.as_str())?;
    t.open_table(TOKENS)?.remove(tok.id.as_str())?;
    Ok(())
}

pub fn read_tokens(t: &ReadTransaction) -> Result<Vec<TokenRecord>, StoreError> {
    let table = t.open_table(TOKENS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}
