//! `/api/users`: the users service over HTTP.
//!
//! | method, path                   | rpc                 |
//! |--------------------------------|---------------------|
//! | POST /api/users                | users.create        |
//! | GET /api/users                 | users.list          |
//! | GET /api/users/{id}            | users.get           |
//! | PUT /api/users/{id}            | users.replace       |
//! | PATCH /api/users/{id}          | users.patch         |
//! | POST /api/users/{id}/disable   | users.disable       |
//! | POST /api/users/{id}/enable    | users.enable        |
//! | DELETE /api/users/{id}         | users.delete        |

use super::error::Problem;
use super::extract::{Body, Ctx, IdempotencyKey, IfMatch, Params};
use super::{AppState, entity, page};
use crate::services::List;
use crate::services::users::model::*;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/users", post(create).get(list))
        .route(
            "/api/users/{id}",
            get(show).put(replace).patch(patch).delete(remove),
        )
        .route("/api/users/{id}/disable", post(disable))
        .route("/api/users/{id}/enable", post(enable))
}

async fn create(
    State(s): State<AppState>,
    ctx: Ctx,
    IdempotencyKey(key): IdempotencyKey,
    Body(user): Body<CreateUser>,
) -> Result<Response, Problem> {
    let req = CreateRequest {
        user,
        idempotency_key: key,
    };
    let user: User = s.call("users", "create", &req, &ctx).await?;
    Ok(entity(StatusCode::CREATED, user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    Params(p): Params<ListParams>,
) -> Result<axum::Json<List<User>>, Problem> {
    let page = page(p.limit, p.cursor)?;
    let req = ListRequest { q: p.q, page };
    Ok(axum::Json(s.call("users", "list", &req, &ctx).await?))
}

async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let user: User = s
        .call(
            "users",
            "get",
            &IdRequest {
                id,
                expected_version: None,
            },
            &ctx,
        )
        .await?;
    Ok(entity(StatusCode::OK, user))
}

async fn replace(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
    Body(user): Body<ReplaceUser>,
) -> Result<Response, Problem> {
    let req = ReplaceRequest {
        id,
        expected_version: v,
        user,
    };
    let user: User = s.call("users", "replace", &req, &ctx).await?;
    Ok(entity(StatusCode::OK, user))
}

async fn patch(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
    Body(patch): Body<PatchUser>,
) -> Result<Response, Problem> {
    let req = PatchRequest {
        id,
        expected_version: v,
        patch,
    };
    let user: User = s.call("users", "patch", &req, &ctx).await?;
    Ok(entity(StatusCode::OK, user))
}

async fn set_enabled(
    s: AppState,
    ctx: Ctx,
    v: Option<u64>,
    id: String,
    op: &str,
) -> Result<Response, Problem> {
    let user: User = s
        .call(
            "users",
            op,
            &IdRequest {
                id,
                expected_version: v,
            },
            &ctx,
        )
        .await?;
    Ok(entity(StatusCode::OK, user))
}

async fn disable(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    set_enabled(s, ctx, v, id, "disable").await
}

async fn enable(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    set_enabled(s, ctx, v, id, "enable").await
}

async fn remove(
    State(s): State<AppState>,
    ctx: Ctx,
    IfMatch(v): IfMatch,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let () = s
        .call(
            "users",
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
