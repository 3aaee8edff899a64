//! The API's table of contents: every route, then the layers every request passes through.
//!
//! | method, path   | handler            |
//! |----------------|--------------------|
//! | GET /healthz   | `health::healthz`  |
//! | GET /readyz    | `health::readyz`   |

use super::{AppState, health};
use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request};
use axum::routing::get;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, NewRequestId))
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
