//! `/api/listings`: the listings service over HTTP.
//!
//! | method, path              | rpc              |
//! |---------------------------|------------------|
//! | POST /api/listings        | listings.create  |
//! | GET /api/listings         | listings.list    |
//! | GET /api/listings/{id}    | listings.get     |
//! | PATCH /api/listings/{id}  | listings.patch   |
//! | DELETE /api/listings/{id} | listings.delete  |

use super::error::Problem;
use super::extract::{Body, Ctx, IdempotencyKey, IfMatch, Params};
use super::{AppState, entity, entity_json, page};
use crate::services::List;
use crate::services::listings::model::*;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/listings", post(create).get(list))
        .route("/api/listings/{id}", get(show).patch(patch).delete(remove))
}

async fn create(
    State(s): State<AppState>,
    ctx: Ctx,
    IdempotencyKey(key): IdempotencyKey,
    Body(listing): Body<CreateListing>,
) -> Result<Response, Problem> {
    let req = CreateRequest {
        listing,
        idempotency_key: key,
    };
    let listing = s.call_raw("listings", "create", &req, &ctx).await?;
    Ok(entity_json(StatusCode::CREATED, listing))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    seller_id: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    Params(p): Params<ListParams>,
) -> Result<axum::Json<List<Listing>>, Problem> {
    if p.status.as_deref().is_some_and(|v| !STATUSES.contains(&v)) {
        return Err(Problem::validation(vec![crate::bus::rpc::FieldError {
            field: "status".into(),
            message: "must be active, reserved, sold or archived".into(),
        }]));
    }
    let req = ListRequest {
        seller_id: p.seller_id,
        status: p.status,
        page: page(p.limit, p.cursor)?,
    };
    Ok(axum::Json(s.call("listings", "list", &req, &ctx).await?))
}

async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let listing: Listing = s
        .call(
            "listings",
            "get",
            &IdRequest {
                id,
                expected_version: None,
            },
            &ctx,
        )
        .await?;
    Ok(entity(StatusCode::OK, listing))
}

async fn patch(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
    Body(patch): Body<PatchListing>,
) -> Result<Response, Problem> {
    let req = PatchRequest {
        id,
        expected_version: v,
        patch,
    };
    let listing: Listing = s.call("listings", "patch", &req, &ctx).await?;
    Ok(entity(StatusCode::OK, listing))
}

async fn remove(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let () = s
        .call(
            "listings",
            "delete",
            &IdRequest {
                id,
                expected_version: v,
            },
            &ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
