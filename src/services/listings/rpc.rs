//! The listings service's endpoints (`souk.rpc.listings.<op>`).

use super::commands;
use super::error::ListingError;
use super::model::*;
use super::sellers::{Sellers, Verdict};
use super::store;
use crate::bus::rpc::{RpcError, Service};
use crate::bus::{Bus, Meta};
use crate::services::idempotency::{Replay, replay_read};
use crate::services::{List, decode_cursor, encode_cursor, write};
use crate::store::Store;
use bytes::Bytes;
use std::sync::Arc;

pub struct Listings {
    pub db: Store,
    pub bus: Bus,
    pub sellers: Arc<Sellers>,
}

pub fn service(listings: Arc<Listings>) -> Service {
    Service::new("listings", "marketplace listings")
        .raw_op("create", {
            let l = listings.clone();
            move |req: CreateRequest, meta: Meta| {
                let l = l.clone();
                async move { create(&l, req, meta).await.map(Bytes::from) }
            }
        })
        .with(
            &listings,
            "patch",
            |l, req: PatchRequest, meta: Meta| async move {
                let names = l.bus.names().clone();
                write(&l.db, move |t| {
                    commands::patch(t, &names, req.clone(), &meta)
                })
                .await
            },
        )
        .with(
            &listings,
            "delete",
            |l, req: IdRequest, meta: Meta| async move {
                let names = l.bus.names().clone();
                write(&l.db, move |t| {
                    commands::delete(t, &names, req.clone(), &meta)
                })
                .await
            },
        )
        .with(&listings, "get", |l, req: IdRequest, _| async move {
            let found =
                l.db.read(move |t| store::read(t, &req.id))
                    .await
                    .map_err(ListingError::Store)?;
            found.ok_or_else(|| ListingError::NotFound.into())
        })
        .with(&listings, "list", |l, req: ListRequest, _| async move {
            list(&l.db, req).await.map_err(RpcError::from)
        })
}

/// The seller must exist and be enabled: asked of the users service (see [`super::sellers`]).
/// Answers the listing's JSON, encoded once for the store, the event and this reply.
async fn create(l: &Listings, req: CreateRequest, meta: Meta) -> Result<Vec<u8>, RpcError> {
    let fields = commands::new_fields(&req.listing)?;
    let idempotency = commands::idempotency(&req, &meta);
    if idempotency.is_none() || !is_replay(l, idempotency.clone()).await? {
        let refused = match l.sellers.check(&req.listing.seller_id, &meta).await {
            Verdict::MaySell => None,
            Verdict::MayNot => Some(ListingError::UnknownSeller.into()),
            Verdict::Unavailable(e) => Some(ListingError::UsersUnavailable(e).into()),
        };
        if let Some(e) = refused {
            crate::services::idempotency::remember_refused(&l.db, idempotency, &e).await;
            return Err(e);
        }
    }
    let new = commands::prepare_create(l.bus.names(), &req, fields, &meta);
    let created = write(&l.db, move |t| commands::create(t, &new)).await;
    if let Err(e) = &created {
        crate::services::idempotency::remember_refused(&l.db, idempotency, e).await;
    }
    created
}

/// Whether a keyed create is a repeat (then the create's own transaction answers it, and the
/// seller is not checked again). A read: a repeat waits for no durable commit.
async fn is_replay(l: &Listings, idempotency: Option<(String, String)>) -> Result<bool, RpcError> {
    let Some((key, print)) = idempotency else {
        return Ok(false);
    };
    let found =
        l.db.read(move |t| replay_read(t, &key, &print))
            .await
            .map_err(ListingError::Store)?;
    Ok(!matches!(found, Replay::New))
}

async fn list(db: &Store, req: ListRequest) -> Result<List<Listing>, ListingError> {
    let limit = req.page.limit();
    let before: Option<String> = match &req.page.cursor {
        Some(c) => Some(decode_cursor::<String>(c).ok_or(ListingError::BadCursor)?),
        None => None,
    };
    let status = req.status.clone();
    let seller = req.seller_id.clone();
    let keep = move |l: &Listing| status.as_deref().is_none_or(|s| l.status == s);
    let mut items = db
        .read(move |t| store::scan(t, seller.as_deref(), before.as_deref(), limit + 1, keep))
        .await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|l| encode_cursor(&l.id))
    } else {
        None
    };
    Ok(List { items, next_cursor })
}
