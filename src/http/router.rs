//! The API's table of contents: every route group, then the layers every request passes
//! through (request id, tracing, body limit, panics turned into 500s).
//!
//! | group             | file           |
//! |-------------------|----------------|
//! | /healthz, /readyz | `health.rs`    |
//! | /api/users        | `users.rs`     |
//! | /api/listings     | `listings.rs`  |
//! | /api/catalog      | `catalog.rs`   |
//! | /api/events       | `events.rs`    |
//! | /api/admin        | `admin.rs`     |
//! | /public           | `public.rs`    |
//! | /api/openapi.json | `openapi.rs` (also the table of every route) |
//! | /metrics          | `metrics.rs`   |

use super::error::Problem;
use super::{AppState, admin, catalog, events, health, listings, metrics, openapi, public, users};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1 << 20;

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(users::routes())
        .merge(listings::routes())
        .merge(catalog::routes())
        .merge(events::routes())
        .merge(admin::routes())
        .merge(public::routes())
        .merge(openapi::routes())
        .merge(metrics::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(Problem::internal("handler", "panicked"))
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        // Failures are logged where they happen (with an error id for 500s); a 503 from /readyz
        // while starting is expected, not an error worth the log.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::new(request_id, NewRequestId))
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// `req_…` ids for requests that arrive without an `X-Request-Id`.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&crate::ids::new("req"))
            .ok()
            .map(RequestId::new)
    }
}
