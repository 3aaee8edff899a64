//! The API's table of contents: every route group, then the layers every request passes
//! through: request id, tracing, panics turned into 500s, security headers, CORS (when
//! configured), the global concurrency limit and request timeout, the body limit, and on every
//! matched route the access guard (`auth.rs`) and request metrics.
//!
//! | group                                | file           |
//! |--------------------------------------|----------------|
//! | /healthz, /readyz                    | `health.rs`    |
//! | /api/auth, /api/admin/accounts, /api/admin/tokens | `accounts.rs` |
//! | /api/users                           | `users.rs`     |
//! | /api/listings                        | `listings.rs`  |
//! | /api/catalog                         | `catalog.rs`   |
//! | /api/events                          | `events.rs`    |
//! | /api/admin                           | `admin.rs`     |
//! | /public                              | `public.rs`    |
//! | /api/openapi.json                    | `openapi.rs` (also the table of every route) |
//! | /metrics                             | `metrics.rs`   |
//! | /, /console/…, and the fallback      | `console.rs` (the web console; extension-less paths outside /api) |

use super::error::Problem;
use super::extract::BodyLimit;
use super::{
    AppState, accounts, admin, auth, catalog, console, events, health, listings, metrics, openapi,
    public, users,
};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

/// Request bodies above this are refused with 413 (the default of `http_body_limit`).
pub const BODY_LIMIT: usize = 1 << 20;

/// Only what Souk itself serves: no inline scripts, no framing, no foreign origins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let security = state.security.clone();
    let limiter = Limiter {
        permits: std::sync::Arc::new(tokio::sync::Semaphore::new(security.max_concurrency)),
        timeout: security.request_timeout,
    };
    let mut app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(accounts::routes())
        .merge(users::routes())
        .merge(listings::routes())
        .merge(catalog::routes())
        .merge(events::routes())
        .merge(admin::routes())
        .merge(public::routes())
        .merge(openapi::routes())
        .merge(metrics::routes())
        .merge(console::routes())
        .fallback_service(console::fallback())
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(from_fn_with_state(state.clone(), auth::guard))
        .route_layer(from_fn(metrics::track))
        .with_state(state)
        .layer(Extension(BodyLimit(security.body_limit)))
        .layer(DefaultBodyLimit::max(security.body_limit))
        .layer(from_fn_with_state(limiter, limit));
    if !security.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = security
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_MATCH,
                    HeaderName::from_static("idempotency-key"),
                    HeaderName::from_static("x-request-id"),
                ])
                .expose_headers([header::ETAG, HeaderName::from_static("x-request-id")])
                .max_age(std::time::Duration::from_secs(600)),
        );
    }
    let headers = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ];
    for (name, value) in headers {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    app.layer(CatchPanicLayer::custom(|_| {
        axum::response::IntoResponse::into_response(Problem::internal("handler", "panicked"))
    }))
    .layer(PropagateRequestIdLayer::new(request_id.clone()))
    // Failures are logged where they happen (with an error id for 500s); a 503 from /readyz
    // while starting is expected, not an error worth the log.
    .layer(
        TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
    )
    .layer(SetRequestIdLayer::new(request_id, NewRequestId))
}

/// The global concurrency limit (`http_max_concurrency`) and request timeout
/// (`http_request_timeout`): a request waits for a slot, and gets 503 if the wait plus the
/// handling take longer than the timeout. A streaming body (SSE) is not timed: only the time to
/// its headers is.
#[derive(Clone)]
struct Limiter {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    timeout: std::time::Duration,
}

async fn limit(State(l): State<Limiter>, req: Request, next: Next) -> Response {
    let work = async {
        let _permit = l.permits.acquire().await;
        next.run(req).await
    };
    match tokio::time::timeout(l.timeout, work).await {
        Ok(response) => response,
        Err(_) => (
            [(header::RETRY_AFTER, "1")],
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request took longer than {:?} (config `http_request_timeout`, env SOUK_HTTP_REQUEST_TIMEOUT)",
                    l.timeout
                ),
            ),
        )
            .into_response(),
    }
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
