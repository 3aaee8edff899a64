//! The marketplace services. Each owns its store file and talks to the others only over the bus
//! (rpc for questions that need an answer now, events for everything that happened). They share
//! only the small helpers below and `bus`/`store`.

pub mod auth;
pub mod catalog;
pub mod idempotency;
pub mod listings;
pub mod runtime;
pub mod users;

use crate::bus::rpc::FieldError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, de::DeserializeOwned};

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

/// For PATCH fields that may be left out but not set to null: absent → `None` (with
/// `#[serde(default)]`), a value → `Some`, `null` → an error naming the field (422).
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// For PATCH fields that may be set to null: absent → `None`, `null` → `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Checks a required text field: trimmed, not empty, at most `max` characters, one line (no
/// control characters: a NUL or an escape sequence in a name is a mistake or an attack).
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
    } else if v.chars().any(char::is_control) {
        errors.push(FieldError {
            field: field.into(),
            message: "must not contain control characters (one line of text)".into(),
        });
    }
    v.to_string()
}

/// Checks an optional text field's length and characters (several lines allowed).
pub fn optional_text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    if value.chars().count() > max {
        errors.push(FieldError {
            field: field.into(),
            message: format!("at most {max} characters"),
        });
    } else if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        errors.push(FieldError {
            field: field.into(),
            message: "must not contain control characters other than line breaks and tabs".into(),
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
