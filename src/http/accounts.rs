//! Signing in and managing who may: `/api/auth/*` and the admin's `/api/admin/accounts`,
//! `/api/admin/tokens`, over the auth service.
//!
//! | method, path                        | rpc                  |
//! |-------------------------------------|----------------------|
//! | GET /api/auth/setup                 | auth.status          |
//! | POST /api/auth/setup                | auth.setup           |
//! | POST /api/auth/login                | auth.login           |
//! | POST /api/auth/logout               | auth.logout          |
//! | GET /api/auth/me                    | (the guard's answer) |
//! | POST /api/auth/password             | auth.password        |
//! | GET, POST /api/admin/accounts       | auth.accounts_list, auth.accounts_create |
//! | PATCH, DELETE /api/admin/accounts/{id} | auth.accounts_patch, auth.accounts_delete |
//! | GET, POST /api/admin/tokens         | auth.tokens_list, auth.tokens_create |
//! | DELETE /api/admin/tokens/{id}       | auth.tokens_delete   |

use super::auth::{COOKIE, Caller};
use super::error::Problem;
use super::extract::{Body, Ctx, IfMatch};
use super::{AppState, entity};
use crate::services::List;
use crate::services::auth::model::*;
use crate::services::auth::rpc::Status;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Serialize;
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/setup", get(setup_status).post(setup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/auth/password", post(password))
        .route("/api/admin/accounts", get(accounts).post(create_account))
        .route(
            "/api/admin/accounts/{id}",
            patch(patch_account).delete(delete_account),
        )
        .route("/api/admin/tokens", get(tokens).post(create_token))
        .route(
            "/api/admin/tokens/{id}",
            axum::routing::delete(revoke_token),
        )
}

/// `GET /api/auth/me`, and the answer to a sign-in.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// `acc_…` for a console session, `tok_…` for an API token.
    pub id: String,
    pub email: Option<String>,
    pub role: Role,
    /// Send it in `X-CSRF-Token` with every cookie-authenticated request that changes something.
    pub csrf_token: Option<String>,
}

impl From<&Principal> for Me {
    fn from(p: &Principal) -> Me {
        Me {
            id: p.id.clone(),
            email: p.email.clone(),
            role: p.role,
            csrf_token: p.csrf_token.clone(),
        }
    }
}

fn cookie(s: &AppState, headers: &HeaderMap, value: &str, max_age: u64) -> HeaderValue {
    let secure = if s.gate.secure(headers) {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// 429 while the caller's address has used up its failed sign-ins.
fn too_many(s: &AppState, ip: std::net::IpAddr) -> Option<Response> {
    s.gate.blocked(ip).map(|left| {
        (
            [(header::RETRY_AFTER, (left.as_secs() + 1).to_string())],
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed sign-ins from this address; wait and try again",
            ),
        )
            .into_response()
    })
}

/// Counts a refused sign-in against the caller's address (only refusals of the secret itself).
fn count_failure(s: &AppState, ip: std::net::IpAddr, p: &Problem) {
    if p.status() == StatusCode::UNAUTHORIZED {
        s.gate.failed(ip);
    }
}

fn signed_in(s: &AppState, headers: &HeaderMap, status: StatusCode, new: NewSession) -> Response {
    let mut response = (status, Json(Me::from(&new.principal))).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(s, headers, &new.secret, new.max_age_secs),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn setup_status(State(s): State<AppState>, ctx: Ctx) -> Result<Json<Status>, Problem> {
    Ok(Json(
        s.call("auth", "status", &serde_json::json!({}), &ctx)
            .await?,
    ))
}

async fn setup(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ctx: Ctx,
    Body(body): Body<SetupBody>,
) -> Response {
    let ip = s.gate.client_ip(peer.ip(), &headers);
    if let Some(refused) = too_many(&s, ip) {
        return refused;
    }
    match s.call::<_, NewSession>("auth", "setup", &body, &ctx).await {
        Ok(new) => signed_in(&s, &headers, StatusCode::CREATED, new),
        Err(p) => {
            count_failure(&s, ip, &p);
            p.into_response()
        }
    }
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ctx: Ctx,
    Body(body): Body<LoginBody>,
) -> Response {
    let ip = s.gate.client_ip(peer.ip(), &headers);
    if let Some(refused) = too_many(&s, ip) {
        return refused;
    }
    match s.call::<_, NewSession>("auth", "login", &body, &ctx).await {
        Ok(new) => {
            s.gate.succeeded(ip);
            signed_in(&s, &headers, StatusCode::OK, new)
        }
        Err(p) => {
            count_failure(&s, ip, &p);
            p.into_response()
        }
    }
}

async fn logout(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ctx: Ctx,
) -> Result<Response, Problem> {
    if let Some(hash) = caller.session {
        s.call::<_, ()>("auth", "logout", &IdRequest { id: hash }, &ctx)
            .await?;
        s.gate.forget();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&s, &headers, "", 0));
    Ok(response)
}

async fn me(Extension(caller): Extension<Caller>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Me::from(&caller.principal)),
    )
        .into_response()
}

async fn password(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ctx: Ctx,
    Body(body): Body<PasswordBody>,
) -> Result<StatusCode, Problem> {
    let Some(account_id) = caller.principal.account_id.clone() else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "not_an_account",
            "API tokens have no password; sign in to change yours",
        ));
    };
    let req = PasswordRequest {
        account_id,
        keep_session: caller.session,
        body,
    };
    s.call::<_, ()>("auth", "password", &req, &ctx).await?;
    s.gate.forget();
    Ok(StatusCode::NO_CONTENT)
}

async fn accounts(State(s): State<AppState>, ctx: Ctx) -> Result<Json<List<Account>>, Problem> {
    Ok(Json(
        s.call("auth", "accounts_list", &serde_json::json!({}), &ctx)
            .await?,
    ))
}

async fn create_account(
    State(s): State<AppState>,
    ctx: Ctx,
    Body(body): Body<AccountCreateBody>,
) -> Result<Response, Problem> {
    let account: Account = s.call("auth", "accounts_create", &body, &ctx).await?;
    Ok(entity(StatusCode::CREATED, account))
}

async fn patch_account(
    State(s): State<AppState>,
    Path(id): Path<String>,
    IfMatch(expected_version): IfMatch,
    ctx: Ctx,
    Body(body): Body<AccountPatchBody>,
) -> Result<Response, Problem> {
    let req = AccountPatchRequest {
        id,
        expected_version,
        body,
    };
    let account: Account = s.call("auth", "accounts_patch", &req, &ctx).await?;
    s.gate.forget();
    Ok(entity(StatusCode::OK, account))
}

async fn delete_account(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Result<StatusCode, Problem> {
    s.call::<_, ()>("auth", "accounts_delete", &IdRequest { id }, &ctx)
        .await?;
    s.gate.forget();
    Ok(StatusCode::NO_CONTENT)
}

async fn tokens(State(s): State<AppState>, ctx: Ctx) -> Result<Json<List<ApiToken>>, Problem> {
    Ok(Json(
        s.call("auth", "tokens_list", &serde_json::json!({}), &ctx)
            .await?,
    ))
}

async fn create_token(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    ctx: Ctx,
    Body(body): Body<TokenCreateBody>,
) -> Result<Response, Problem> {
    let req = TokenCreateRequest {
        created_by: caller.principal.id,
        body,
    };
    let created: CreatedToken = s.call("auth", "tokens_create", &req, &ctx).await?;
    let mut response = (StatusCode::CREATED, Json(created)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_token(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ctx: Ctx,
) -> Result<StatusCode, Problem> {
    s.call::<_, ()>("auth", "tokens_delete", &IdRequest { id }, &ctx)
        .await?;
    s.gate.forget();
    Ok(StatusCode::NO_CONTENT)
}
