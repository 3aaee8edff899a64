//! The public BFF API, in the shapes of the reference users/listings gateway, for clients
//! written against it: same paths, fields and status codes, except that ids are Souk's strings.
//! Errors are that gateway's `{"result": false, "error": "…"}`, not problem+json, and times are
//! integers (Unix microseconds).
//!
//! | method, path          | answer                                                          |
//! |-----------------------|-----------------------------------------------------------------|
//! | POST /public/users    | `{name}` → 200 `{"user":{id,name,created_at,updated_at}}`       |
//! | POST /public/listings | `{user_id, listing_type, price}` → 200 `{"listing":{…}}`        |
//! | GET /public/listings  | `?page_num&page_size&user_id` → 200 `{"result":true,"listings":[…]}` |

use super::AppState;
use super::error::Problem;
use super::extract::Ctx;
use crate::bus::rpc::CallError;
use crate::services::catalog::public::{PageRequest, Row};
use crate::services::listings::model::{
    CreateListing, CreateRequest as CreateListingRequest, Listing,
};
use crate::services::users::model::{CreateRequest as CreateUserRequest, CreateUser, User};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/public/users", post(create_user))
        .route("/public/listings", post(create_listing).get(list))
}

/// The reference gateway's error shape.
fn fail(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"result": false, "error": error.into()})),
    )
        .into_response()
}

/// A bus or service failure, in the reference shape; domain codes map to its statuses.
fn from_call(e: CallError) -> Response {
    match e {
        CallError::Rejected(e) => match e.code.as_str() {
            "unknown_seller" | "not_found" => fail(StatusCode::NOT_FOUND, "user not found"),
            "validation_failed" | "malformed_request" => fail(StatusCode::BAD_REQUEST, e.message),
            _ => Problem::from(CallError::Rejected(e)).into_response(),
        },
        other => Problem::from(other).into_response(),
    }
}

/// RFC 3339 → Unix microseconds (0 when unknown).
fn micros(t: &str) -> i64 {
    crate::clock::parse_rfc3339(t).map_or(0, |t| crate::clock::unix_millis(t) as i64 * 1000)
}

/// The body as a JSON object, if it is one.
fn body(bytes: &Bytes) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

const NOT_AN_OBJECT: &str = "request body must be a JSON object";

/// The request body within `http_body_limit` (read as `/api` reads it); a larger one is refused
/// with 413 in the reference shape.
struct Raw(Bytes);

impl<S: Send + Sync> FromRequest<S> for Raw {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Raw, Response> {
        super::extract::read_body(req)
            .await
            .map(Raw)
            .map_err(|p| fail(p.status(), p.0.detail))
    }
}

async fn create_user(State(s): State<AppState>, ctx: Ctx, Raw(bytes): Raw) -> Response {
    let Some(o) = body(&bytes) else {
        return fail(StatusCode::BAD_REQUEST, NOT_AN_OBJECT);
    };
    let Some(name) = o
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return fail(StatusCode::BAD_REQUEST, "name is required");
    };
    let req = CreateUserRequest {
        user: CreateUser {
            name: name.to_string(),
            email: None,
            bio: None,
        },
        idempotency_key: None,
    };
    let bus = match s.bus() {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    match bus
        .call::<_, User>("users", "create", &req, &ctx.0, super::RPC_TIMEOUT)
        .await
    {
        Ok(u) => axum::Json(json!({"user": {
            "id": u.id, "name": u.name,
            "created_at": micros(&u.created_at), "updated_at": micros(&u.updated_at),
        }}))
        .into_response(),
        Err(e) => from_call(e),
    }
}

async fn create_listing(State(s): State<AppState>, ctx: Ctx, Raw(bytes): Raw) -> Response {
    let Some(o) = body(&bytes) else {
        return fail(StatusCode::BAD_REQUEST, NOT_AN_OBJECT);
    };
    let Some(user_id) = o.get("user_id").and_then(Value::as_str) else {
        return fail(StatusCode::BAD_REQUEST, "user_id is required");
    };
    let listing_type = o.get("listing_type").and_then(Value::as_str).unwrap_or("");
    if listing_type != "sale" && listing_type != "rent" {
        return fail(StatusCode::BAD_REQUEST, "listing_type must be sale or rent");
    }
    let Some(price) = o.get("price").and_then(Value::as_i64).filter(|p| *p >= 1) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "price must be an integer of at least 1",
        );
    };
    let req = CreateListingRequest {
        listing: CreateListing {
            seller_id: user_id.to_string(),
            title: format!("Listing for {listing_type} at {price}"),
            listing_type: listing_type.to_string(),
            price,
            description: None,
            currency: None,
            quantity: None,
        },
        idempotency_key: None,
    };
    let bus = match s.bus() {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    match bus
        .call::<_, Listing>("listings", "create", &req, &ctx.0, super::RPC_TIMEOUT)
        .await
    {
        Ok(l) => axum::Json(json!({"listing": {
            "id": l.id, "user_id": l.seller_id, "listing_type": l.listing_type, "price": l.price,
            "created_at": micros(&l.created_at), "updated_at": micros(&l.updated_at),
        }}))
        .into_response(),
        Err(e) => from_call(e),
    }
}

async fn list(State(s): State<AppState>, ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let page_num = match get("page_num").map(str::parse::<u32>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        _ => {
            return fail(
                StatusCode::BAD_REQUEST,
                "page_num must be a positive integer",
            );
        }
    };
    let page_size = match get("page_size").map(str::parse::<u32>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        _ => {
            return fail(
                StatusCode::BAD_REQUEST,
                "page_size must be an integer from 1 to 100",
            );
        }
    };
    let user_id = get("user_id").filter(|u| !u.is_empty()).map(str::to_string);
    let bus = match s.bus() {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let req = PageRequest {
        page_num,
        page_size,
        user_id,
    };
    match bus
        .call::<_, Vec<Row>>("catalog", "public_page", &req, &ctx.0, super::RPC_TIMEOUT)
        .await
    {
        Ok(rows) => {
            let listings: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "id": r.id, "listing_type": r.listing_type, "price": r.price,
                        "created_at": micros(&r.created_at), "updated_at": micros(&r.updated_at),
                        "user": {
                            "id": r.user_id, "name": r.user_name,
                            "created_at": micros(&r.user_created_at), "updated_at": micros(&r.user_updated_at),
                        },
                    })
                })
                .collect();
            axum::Json(json!({"result": true, "listings": listings})).into_response()
        }
        Err(e) => from_call(e),
    }
}
