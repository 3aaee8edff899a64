//! `users.redb`: users by id, the case-insensitive email index, idempotency records, and the
//! outbox. Every change and its event commit in one transaction.

use super::model::User;
use crate::services::get_value;
use crate::store::{StoreError, codec};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const EMAILS: TableDefinition<&str, &str> = TableDefinition::new("users_by_email");

pub fn init(t: &WriteTransaction) -> Result<(), StoreError> {
    t.open_table(USERS)?;
    t.open_table(EMAILS)?;
    crate::services::idempotency::init(t)?;
    crate::bus::outbox::init(t)
}

pub fn get(t: &WriteTransaction, id: &str) -> Result<Option<User>, StoreError> {
    get_value(&t.open_table(USERS)?, id)
}

pub fn read(t: &ReadTransaction, id: &str) -> Result<Option<User>, StoreError> {
    get_value(&t.open_table(USERS)?, id)
}

/// Stores `user`, keeping the email index in step with `before`.
pub fn put(t: &WriteTransaction, user: &User, before: Option<&User>) -> Result<(), StoreError> {
    let mut emails = t.open_table(EMAILS)?;
    if let Some(old) = before.and_then(|b| b.email.as_deref()) {
        emails.remove(super::model::email_key(old).as_str())?;
    }
    if let Some(new) = user.email.as_deref() {
        emails.insert(super::model::email_key(new).as_str(), user.id.as_str())?;
    }
    t.open_table(USERS)?
        .insert(user.id.as_str(), codec::encode(user).as_slice())?;
    Ok(())
}

pub fn remove(t: &WriteTransaction, user: &User) -> Result<(), StoreError> {
    if let Some(email) = user.email.as_deref() {
        t.open_table(EMAILS)?
            .remove(super::model::email_key(email).as_str())?;
    }
    t.open_table(USERS)?.remove(user.id.as_str())?;
    Ok(())
}

/// The user holding `email` (any case), if any.
pub fn by_email(t: &WriteTransaction, email: &str) -> Result<Option<String>, StoreError> {
    let table = t.open_table(EMAILS)?;
    let value = table.get(super::model::email_key(email).as_str())?;
    Ok(value.map(|v| v.value().to_string()))
}

/// Newest first, from before `before` (an id), keeping users `keep` accepts, at most `limit`.
/// Ids sort by creation time, so walking the table backwards is newest first.
pub fn scan(
    t: &ReadTransaction,
    before: Option<&str>,
    limit: usize,
    keep: impl Fn(&User) -> bool,
) -> Result<Vec<User>, StoreError> {
    let table = t.open_table(USERS)?;
    let rows = match before {
        Some(b) => table.range(..b)?,
        None => table.range::<&str>(..)?,
    };
    let mut out = Vec::new();
    for row in rows.rev() {
        let (_, v) = row?;
        let user: User = codec::decode(v.value())?;
        if keep(&user) {
            out.push(user);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
