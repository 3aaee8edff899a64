//! The users service's endpoints (`souk.rpc.users.<op>`).

use super::commands;
use super::error::UserError;
use super::model::*;
use super::store;
use crate::bus::rpc::{RpcError, Service};
use crate::bus::{Meta, Names};
use crate::services::{List, decode_cursor, encode_cursor, write};
use crate::store::Store;
use std::sync::Arc;

pub struct Users {
    pub db: Store,
    pub names: Names,
}

pub fn service(users: Arc<Users>) -> Service {
    Service::new("users", "marketplace users")
        .with(
            &users,
            "create",
            |u, req: CreateRequest, meta: Meta| async move {
                let n = u.names.clone();
                let idempotency = commands::idempotency(&req, &meta);
                let created =
                    write(&u.db, move |t| commands::create(t, &n, req.clone(), &meta)).await;
                if let Err(e) = &created {
                    crate::services::idempotency::remember_refused(&u.db, idempotency, e).await;
                }
                created
            },
        )
        .with(
            &users,
            "replace",
            |u, req: ReplaceRequest, meta: Meta| async move {
                let n = u.names.clone();
                write(&u.db, move |t| commands::replace(t, &n, req.clone(), &meta)).await
            },
        )
        .with(
            &users,
            "patch",
            |u, req: PatchRequest, meta: Meta| async move {
                let n = u.names.clone();
                write(&u.db, move |t| commands::patch(t, &n, req.clone(), &meta)).await
            },
        )
        .with(
            &users,
            "disable",
            |u, req: IdRequest, meta: Meta| async move {
                let n = u.names.clone();
                write(&u.db, move |t| {
                    commands::set_enabled(t, &n, req.clone(), false, &meta)
                })
                .await
            },
        )
        .with(
            &users,
            "enable",
            |u, req: IdRequest, meta: Meta| async move {
                let n = u.names.clone();
                write(&u.db, move |t| {
                    commands::set_enabled(t, &n, req.clone(), true, &meta)
                })
                .await
            },
        )
        .with(
            &users,
            "delete",
            |u, req: IdRequest, meta: Meta| async move {
                let n = u.names.clone();
                write(&u.db, move |t| commands::delete(t, &n, req.clone(), &meta)).await
            },
        )
        .with(&users, "get", |u, req: IdRequest, _| async move {
            let found =
                u.db.read(move |t| store::read(t, &req.id))
                    .await
                    .map_err(UserError::Store)?;
            found.ok_or_else(|| UserError::NotFound.into())
        })
        .with(&users, "sellers", |u, req: SellersRequest, _| async move {
            sellers(&u.db, req).await.map_err(RpcError::from)
        })
        .with(&users, "list", |u, req: ListRequest, _| async move {
            list(&u.db, req).await.map_err(RpcError::from)
        })
}

/// Which of `ids` may sell (exist and are enabled), from one snapshot. Lets the listings service
/// ask once for all the creates waiting at the same time instead of once per create.
async fn sellers(db: &Store, req: SellersRequest) -> Result<SellersReply, UserError> {
    let enabled = db
        .read(move |t| {
            let mut enabled = Vec::new();
            for id in req.ids {
                if store::read(t, &id)?.is_some_and(|u| u.enabled) {
                    enabled.push(id);
                }
            }
            Ok(enabled)
        })
        .await?;
    Ok(SellersReply { enabled })
}

async fn list(db: &Store, req: ListRequest) -> Result<List<User>, UserError> {
    let limit = req.page.limit();
    let before: Option<String> = match &req.page.cursor {
        Some(c) => Some(decode_cursor::<String>(c).ok_or(UserError::BadCursor)?),
        None => None,
    };
    let q = req
        .q
        .map(|q| q.trim().to_lowercase())
        .filter(|q| !q.is_empty());
    let matches = move |u: &User| match &q {
        None => true,
        Some(q) => {
            u.name.to_lowercase().starts_with(q.as_str())
                || u.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().starts_with(q.as_str()))
        }
    };
    let mut items = db
        .read(move |t| store::scan(t, before.as_deref(), limit + 1, matches))
        .await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|u| encode_cursor(&u.id))
    } else {
        None
    };
    Ok(List { items, next_cursor })
}
