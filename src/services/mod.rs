//! The marketplace services. Each owns its store file and talks to the others only over the bus
//! (rpc for questions that need an answer now, events for everything that happened). They share
//! only the small helpers below and `bus`/`store`.

pub mod auth;
pub mod catalog;
pub mod listings;
pub mod runtime;
pub mod users;

use crate::bus::rpc::FieldError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

/// List paging as every list endpoint takes it: `limit` 1–200 (default 50) and an opaque cursor.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Page {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

impl Page {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as usize
    }
}

/// `{"items":[…],"next_cursor":"…"|null}`
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Cursors are opaque to clients: base64url of a small JSON position.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("cursor positions serialise"))
}

/// `None` for a cursor that is not one of ours (the caller answers 400 `invalid_cursor`).
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The fingerprint of a create request, to tell a replay from a different request under the
/// same `Idempotency-Key`.
pub fn fingerprint<T: Serialize>(body: &T) -> String {
    let json = serde_json::to_vec(body).expect("requests serialise");
    Sha256::digest(&json)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a create stored under its idempotency key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdempotentReply {
    pub fingerprint: String,
    pub reply: serde_json::Value,
}

/// For PATCH fields that may be set to null: absent → `None`, `null` → `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Checks a required text field: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError {
            field: field.into(),
            message: "must not be empty".into(),
        });
    } else if v.chars().count() > max {
        errors.push(FieldError {
            field: field.into(),
            message: format!("at most {max} characters"),
        });
    }
    v.to_string()
}

/// Checks an optional text field's length.
pub fn optional_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    if value.chars().count() > max {
        errors.push(FieldError {
            field: field.into(),
            message: format!("at most {max} characters"),
        });
    }
    value.to_string()
}

/// Optimistic concurrency: a write that names a version must find exactly that version.
pub fn check_version(expected: Option<u64>, current: u64) -> Result<(), u64> {
    match expected {
        Some(v) if v != current => Err(current),
        _ => Ok(()),
    }
}

/// Runs `f` in a shared durable write transaction of `db` (see [`crate::store::Store::write`]: it
/// may run more than once) and maps a refusal (the service's own error type) or a store failure
/// to the rpc error the client sees.
pub async fn write<T, E, F>(db: &crate::store::Store, f: F) -> Result<T, crate::bus::rpc::RpcError>
where
    T: Send + 'static,
    E: Send + 'static + From<crate::store::StoreError> + Into<crate::bus::rpc::RpcError>,
    F: Fn(&redb::WriteTransaction) -> Result<T, E> + Send + 'static,
{
    use crate::store::WriteError;
    db.write(f).await.map_err(|e| match e {
        WriteError::Rejected(e) => e.into(),
        WriteError::Store(e) => E::from(e).into(),
    })
}

const IDEMPOTENCY: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("idempotency");

/// A JSON value stored under `key` in a `&str → bytes` table.
pub fn get_value<T: DeserializeOwned>(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, crate::store::StoreError> {
    let value = table.get(key)?;
    value
        .map(|v| crate::store::codec::decode(v.value()))
        .transpose()
}

/// Creates the idempotency table of a service's store.
pub fn init_idempotency(t: &redb::WriteTransaction) -> Result<(), crate::store::StoreError> {
    t.open_table(IDEMPOTENCY)?;
    Ok(())
}

/// Looks up a create under its idempotency key: `Ok(None)` when new, `Ok(Some(reply))` for a
/// replay of the same request, `Err(())` when the key was used with a different request.
pub fn replay(
    t: &redb::WriteTransaction,
    key: &str,
    print: &str,
) -> Result<Result<Option<serde_json::Value>, ()>, crate::store::StoreError> {
    let table = t.open_table(IDEMPOTENCY)?;
    Ok(match get_value::<IdempotentReply>(&table, key)? {
        None => Ok(None),
        Some(prev) if prev.fingerprint == print => Ok(Some(prev.reply)),
        Some(_) => Err(()),
    })
}

/// Remembers a create's reply under its idempotency key (same transaction as the create).
pub fn remember(
    t: &redb::WriteTransaction,
    key: &str,
    print: String,
    reply: &impl Serialize,
) -> Result<(), crate::store::StoreError> {
    let reply = IdempotentReply {
        fingerprint: print,
        reply: serde_json::to_value(reply).expect("replies serialise"),
    };
    t.open_table(IDEMPOTENCY)?
        .insert(key, crate::store::codec::encode(&reply).as_slice())?;
    Ok(())
}
