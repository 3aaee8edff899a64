//! The catalog's endpoints: `souk.rpc.catalog.search` and `souk.rpc.catalog.get`.

use super::Catalog;
use super::query::{self, CatalogItem, QueryError, SORTS, Search};
use crate::bus::rpc::{FieldError, RpcError, Service};
use crate::services::{MAX_LIMIT, Page};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for `min_version` (read-your-writes).
pub const MAX_WAIT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetRequest {
    pub id: String,
    pub min_version: Option<u64>,
}

pub fn service(catalog: Arc<Catalog>) -> Service {
    let c = catalog.clone();
    // The page is encoded by the search itself, straight from the rows (`query::search_json`).
    Service::new("catalog", "the searchable listing view")
        .raw_op("search", move |s: Search, _| {
            let c = c.clone();
            async move {
                validate(&s).map_err(RpcError::validation)?;
                let limit = Page {
                    limit: s.limit,
                    cursor: None,
                }
                .limit();
                let db = c.db.clone();
                let found = c
                    .read("catalog search task", move || {
                        query::search_json(&db, &s, limit)
                    })
                    .await?;
                found.map(Bytes::from).map_err(|e| match e {
                    QueryError::BadCursor => RpcError::new(400, "invalid_cursor", e.to_string()),
                    QueryError::Store(e) => RpcError::internal("catalog search", e),
                })
            }
        })
        .with(&catalog, "get", |c, req: GetRequest, _| async move {
            get(&c, req).await
        })
        .with(
            &catalog,
            "rebuild",
            |c, _: serde_json::Value, _| async move {
                let bus = c.bus.clone();
                super::rebuild::start(c, bus).ok_or_else(|| {
                    RpcError::new(
                        409,
                        "rebuild_running",
                        "a rebuild of the catalog is already running",
                    )
                })
            },
        )
        .with(
            &catalog,
            "projection",
            |c, _: serde_json::Value, _| async move { projection(&c).await },
        )
        .with(
            &catalog,
            "public_page",
            |c, req: super::public::PageRequest, _| async move {
                let db = c.db.clone();
                c.read("catalog page task", move || super::public::page(&db, &req))
                    .await?
                    .map_err(|e| RpcError::internal("catalog page", e))
            },
        )
}

async fn get(c: &Catalog, req: GetRequest) -> Result<CatalogItem, RpcError> {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut applied = c.applied.subscribe();
    let read = |db: Arc<super::store::Db>, id: String| {
        c.read("catalog read task", move || {
            (query::version_of(&db, &id), query::get(&db, &id))
        })
    };
    loop {
        applied.borrow_and_update();
        let (version, item) = read(c.db.clone(), req.id.clone()).await?;
        let version = version.map_err(|e| RpcError::internal("catalog read", e))?;
        let waiting = req
            .min_version
            .is_some_and(|min| version.is_none_or(|v| v < min));
        if !waiting || tokio::time::Instant::now() >= deadline {
            return item
                .map_err(|e| RpcError::internal("catalog read", e))?
                .ok_or_else(|| RpcError::not_found("catalog item"));
        }
        let _ = tokio::time::timeout_at(deadline, applied.changed()).await;
    }
}

/// The catalog as a projection: where it is in each stream, how far behind, and any rebuild.
async fn projection(c: &Catalog) -> Result<serde_json::Value, RpcError> {
    let db = c.db.clone();
    let positions = tokio::task::spawn_blocking(move || db.positions())
        .await
        .map_err(|e| RpcError::internal("catalog positions task", e))?
        .map_err(|e| RpcError::internal("catalog positions", e))?;
    let names = c.bus.names();
    let mut lag = serde_json::Map::new();
    for purpose in ["listings", "users"] {
        let name = c.consumer(purpose);
        if let Ok(info) = c.bus.jetstream.get_stream(names.stream(purpose)).await
            && let Ok(ci) = info.consumer_info(&name).await
        {
            lag.insert(name, (ci.num_pending + ci.num_ack_pending as u64).into());
        }
    }
    Ok(serde_json::json!({
        "name": "catalog",
        "positions": positions.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "lag": lag,
        "file": c.db.path().file_name().map(|f| f.to_string_lossy().to_string()),
        "rebuild": c.rebuilds.progress(),
        "search_index": c.db.current().text_index_status(),
    }))
}

/// Checks every parameter at once.
pub fn validate(s: &Search) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        })
    };
    if let Some(l) = s.limit
        && !(1..=MAX_LIMIT).contains(&l)
    {
        bad("limit", "must be from 1 to 200");
    }
    if s.sort.as_deref().is_some_and(|v| !SORTS.contains(&v)) {
        bad("sort", "must be newest, price_asc, price_desc or relevance");
    }
    if s.sort.as_deref() == Some("relevance") && s.q.as_deref().is_none_or(|q| q.trim().is_empty())
    {
        bad("sort", "relevance needs a search text in q");
    }
    let statuses = crate::services::listings::model::STATUSES;
    if s.status.as_deref().is_some_and(|v| !statuses.contains(&v)) {
        bad("status", "must be active, reserved, sold or archived");
    }
    let types = crate::services::listings::model::TYPES;
    if s.listing_type
        .as_deref()
        .is_some_and(|v| !types.contains(&v))
    {
        bad("listing_type", "must be sale or rent");
    }
    if s.min_price.is_some_and(|p| p < 0) {
        bad("min_price", "must not be negative");
    }
    if s.max_price.is_some_and(|p| p < 0) {
        bad("max_price", "must not be negative");
    }
    if let (Some(lo), Some(hi)) = (s.min_price, s.max_price)
        && lo > hi
    {
        bad("min_price", "must not be above max_price");
    }
    if s.q.as_deref().is_some_and(|q| q.len() > 500) {
        bad("q", "at most 500 characters");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
