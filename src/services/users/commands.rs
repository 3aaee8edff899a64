//! Users commands. Each runs inside one store transaction: check, change, and append the event
//! carrying the whole user after the change, so state and event commit together or not at all.

use super::error::UserError;
use super::model::*;
use super::store;
use crate::bus::{Envelope, Meta, Names, outbox};
use crate::services::check_version;
use crate::services::idempotency::{Replay, fingerprint, idempotency_key, remember, replay};
use redb::WriteTransaction;

fn emit(
    t: &WriteTransaction,
    names: &Names,
    kind: &str,
    user: &User,
    meta: &Meta,
) -> Result<(), UserError> {
    outbox::append(
        t,
        names,
        &Envelope::new(kind, &user.id, user.version, user, meta),
    )?;
    Ok(())
}

fn load(t: &WriteTransaction, id: &str, expected: Option<u64>) -> Result<User, UserError> {
    let user = store::get(t, id)?.ok_or(UserError::NotFound)?;
    check_version(expected, user.version).map_err(|current| UserError::Stale {
        expected: expected.unwrap_or(0),
        current,
    })?;
    Ok(user)
}

fn ensure_email_free(
    t: &WriteTransaction,
    email: Option<&str>,
    owner: &str,
) -> Result<(), UserError> {
    match email {
        Some(e) => match store::by_email(t, e)? {
            Some(holder) if holder != owner => Err(UserError::EmailTaken),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// The idempotency record's key (per caller) and the request's fingerprint, when the create
/// sent an `Idempotency-Key`.
pub fn idempotency(req: &CreateRequest, meta: &Meta) -> Option<(String, String)> {
    req.idempotency_key.as_ref().map(|k| {
        (
            idempotency_key("users.create", meta, k),
            fingerprint(&req.user),
        )
    })
}

pub fn create(
    t: &WriteTransaction,
    names: &Names,
    req: CreateRequest,
    meta: &Meta,
) -> Result<User, UserError> {
    let idempotency = idempotency(&req, meta);
    if let Some((key, print)) = &idempotency {
        match replay(t, key, print)? {
            Replay::New => {}
            Replay::Reply(reply) => {
                return serde_json::from_value(reply).map_err(|_| UserError::IdempotencyKeyReused);
            }
            Replay::Refused(e) => return Err(UserError::Replayed(e)),
            Replay::KeyReused => return Err(UserError::IdempotencyKeyReused),
        }
    }
    let body = req.user;
    let f = validate(
        &body.name,
        body.email.as_deref(),
        body.bio.as_deref().unwrap_or(""),
    )
    .map_err(UserError::Invalid)?;
    ensure_email_free(t, f.email.as_deref(), "")?;
    let now = crate::clock::now_rfc3339();
    let user = User {
        id: crate::ids::new("usr"),
        name: f.name,
        email: f.email,
        bio: f.bio,
        enabled: true,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    store::put(t, &user, None)?;
    emit(t, names, "user.created", &user, meta)?;
    if let Some((key, print)) = idempotency {
        remember(t, &key, print, &user)?;
    }
    Ok(user)
}

/// Applies new field values; an update that changes nothing emits nothing.
fn update(
    t: &WriteTransaction,
    names: &Names,
    before: User,
    f: Fields,
    meta: &Meta,
) -> Result<User, UserError> {
    if before.name == f.name && before.email == f.email && before.bio == f.bio {
        return Ok(before);
    }
    ensure_email_free(t, f.email.as_deref(), &before.id)?;
    let user = User {
        name: f.name,
        email: f.email,
        bio: f.bio,
        updated_at: crate::clock::now_rfc3339(),
        version: before.version + 1,
        ..before.clone()
    };
    store::put(t, &user, Some(&before))?;
    emit(t, names, "user.updated", &user, meta)?;
    Ok(user)
}

pub fn replace(
    t: &WriteTransaction,
    names: &Names,
    req: ReplaceRequest,
    meta: &Meta,
) -> Result<User, UserError> {
    let before = load(t, &req.id, req.expected_version)?;
    let u = req.user;
    let f = validate(&u.name, u.email.as_deref(), u.bio.as_deref().unwrap_or(""))
        .map_err(UserError::Invalid)?;
    update(t, names, before, f, meta)
}

pub fn patch(
    t: &WriteTransaction,
    names: &Names,
    req: PatchRequest,
    meta: &Meta,
) -> Result<User, UserError> {
    let before = load(t, &req.id, req.expected_version)?;
    let p = req.patch;
    let name = p.name.unwrap_or_else(|| before.name.clone());
    let email = match p.email {
        Some(e) => e,
        None => before.email.clone(),
    };
    let bio = p.bio.unwrap_or_else(|| before.bio.clone());
    let f = validate(&name, email.as_deref(), &bio).map_err(UserError::Invalid)?;
    update(t, names, before, f, meta)
}

pub fn set_enabled(
    t: &WriteTransaction,
    names: &Names,
    req: IdRequest,
    enabled: bool,
    meta: &Meta,
) -> Result<User, UserError> {
    let before = load(t, &req.id, req.expected_version)?;
    match (before.enabled, enabled) {
        (false, false) => return Err(UserError::AlreadyDisabled),
        (true, true) => return Err(UserError::AlreadyEnabled),
        _ => {}
    }
    let user = User {
        enabled,
        updated_at: crate::clock::now_rfc3339(),
        version: before.version + 1,
        ..before.clone()
    };
    store::put(t, &user, Some(&before))?;
    emit(
        t,
        names,
        if enabled {
            "user.enabled"
        } else {
            "user.disabled"
        },
        &user,
        meta,
    )?;
    Ok(user)
}

pub fn delete(
    t: &WriteTransaction,
    names: &Names,
    req: IdRequest,
    meta: &Meta,
) -> Result<(), UserError> {
    let before = load(t, &req.id, req.expected_version)?;
    store::remove(t, &before)?;
    let last = User {
        updated_at: crate::clock::now_rfc3339(),
        version: before.version + 1,
        ..before
    };
    emit(t, names, "user.deleted", &last, meta)
}
