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

/// What a create stored under its idempotency key: its reply, or the rule it broke.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdempotentReply {
    pub fingerprint: String,
    pub reply: serde_json::Value,
    /// A create refused by a rule that depends on the moment (`email_taken`, `unknown_seller`):
    /// a repeat gets the same refusal, even once the rule would let it through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<crate::bus::rpc::RpcError>,
}

/// The store key of a create's `Idempotency-Key`: per operation and per caller, so one caller's
/// key never answers another's request (nor replays another's response).
pub fn idempotency_key(op: &str, meta: &crate::bus::Meta, key: &str) -> String {
    format!("{op}:{}:{key}", meta.actor.as_deref().unwrap_or("-"))
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

/// What an earlier create under the same idempotency key did.
#[derive(Debug)]
pub enum Replay {
    /// Nothing: this is the first.
    New,
    /// The same request was made: its reply.
    Reply(serde_json::Value),
    /// The same request was refused: the same refusal.
    Refused(crate::bus::rpc::RpcError),
    /// The key was used for a different request.
    KeyReused,
}

/// Looks up a create under its idempotency key and the request's fingerprint `print`.
pub fn replay(
    t: &redb::WriteTransaction,
    key: &str,
    print: &str,
) -> Result<Replay, crate::store::StoreError> {
    let table = t.open_table(IDEMPOTENCY)?;
    Ok(match get_value::<IdempotentReply>(&table, key)? {
        None => Replay::New,
        Some(prev) if prev.fingerprint != print => Replay::KeyReused,
        Some(IdempotentReply {
            refused: Some(e), ..
        }) => Replay::Refused(e),
        Some(prev) => Replay::Reply(prev.reply),
    })
}

/// The refusals a create remembers under its idempotency key: rules that depend on the moment.
/// A malformed request is refused the same way every time anyway, and a failure (503, 500) is
/// not an answer, so a retry may still succeed.
const REMEMBERED_REFUSALS: &[&str] = &["email_taken", "unknown_seller"];

/// After a create under `idempotency` (key, fingerprint) was refused with `error`, stores that
/// refusal for its repeats when it is one to remember. Best effort: a store failure is logged,
/// and the client still gets the refusal it was going to get.
pub async fn remember_refused(
    db: &crate::store::Store,
    idempotency: Option<(String, String)>,
    error: &crate::bus::rpc::RpcError,
) {
    let Some((key, print)) = idempotency else {
        return;
    };
    if !REMEMBERED_REFUSALS.contains(&error.code.as_str()) {
        return;
    }
    // A repeat that was answered from the record (or a race that stored one) needs no durable
    // write: a read says so.
    let k = key.clone();
    let stored = db
        .read(move |t| match t.open_table(IDEMPOTENCY) {
            Ok(table) => Ok(redb::ReadableTable::get(&table, k.as_str())?.is_some()),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(e.into()),
        })
        .await;
    if matches!(stored, Ok(true)) {
        return;
    }
    let e = error.clone();
    if let Err(err) = db
        .write(move |t| remember_refusal(t, &key, print.clone(), &e))
        .await
    {
        tracing::warn!("could not remember a refused create's Idempotency-Key: {err}");
    }
}

/// Remembers that a create was refused by `error`, in a transaction of its own (the create's was
/// rolled back), unless something was stored under the key meanwhile.
pub fn remember_refusal(
    t: &redb::WriteTransaction,
    key: &str,
    print: String,
    error: &crate::bus::rpc::RpcError,
) -> Result<(), crate::store::StoreError> {
    let mut table = t.open_table(IDEMPOTENCY)?;
    if redb::ReadableTable::get(&table, key)?.is_some() {
        return Ok(());
    }
    let record = IdempotentReply {
        fingerprint: print,
        reply: serde_json::Value::Null,
        refused: Some(error.clone()),
    };
    table.insert(key, crate::store::codec::encode(&record).as_slice())?;
    Ok(())
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
        refused: None,
    };
    t.open_table(IDEMPOTENCY)?
        .insert(key, crate::store::codec::encode(&reply).as_slice())?;
    Ok(())
}
