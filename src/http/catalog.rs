//! `/api/catalog`: the catalog read model over HTTP.
//!
//! | method, path                  | rpc             |
//! |-------------------------------|-----------------|
//! | GET /api/catalog              | catalog.search  |
//! | GET /api/catalog/{listing_id} | catalog.get     |

use super::error::Problem;
use super::extract::{Ctx, Params};
use super::{AppState, entity};
use crate::services::catalog::query::{CatalogItem, Search};
use crate::services::catalog::rpc::GetRequest;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/catalog", get(search))
        .route("/api/catalog/{id}", get(show))
}

/// The page goes out as the catalog wrote it (`Results`), not decoded and encoded again.
async fn search(
    State(s): State<AppState>,
    ctx: Ctx,
    Params(search): Params<Search>,
) -> Result<Response, Problem> {
    let page = s.call_raw("catalog", "search", &search, &ctx).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], page).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShowParams {
    min_version: Option<u64>,
}

async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Params(p): Params<ShowParams>,
) -> Result<Response, Problem> {
    let item: CatalogItem = s
        .call(
            "catalog",
            "get",
            &GetRequest {
                id,
                min_version: p.min_version,
            },
            &ctx,
        )
        .await?;
    Ok(entity(StatusCode::OK, item))
}
