//! The HTTP front door: the API gateway (each route turns into an rpc request on the bus), the
//! health endpoints and the console (`console.rs`). It owns no store.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod catalog;
pub mod console;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod listings;
pub mod metrics;
pub mod openapi;
pub mod public;
pub mod router;
pub mod tls;
pub mod users;

use crate::bus::Bus;
use crate::health::Health;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use error::Problem;
use extract::Ctx;
use serde::{Serialize, de::DeserializeOwned};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long the gateway waits for a service's answer.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler can reach. Cheap to clone: axum clones the state for every extractor
/// and middleware of every request, so the parts sit behind one `Arc` (one refcount per clone
/// instead of one per part, and no copy of the data dir's path).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub health: Health,
    pub started: std::time::Instant,
    /// Set once the bus is connected; until then the API answers 503.
    pub bus: Arc<OnceLock<Bus>>,
    /// The outboxes of the services running here, once started.
    pub outboxes: Arc<OnceLock<Vec<crate::services::runtime::Outbox>>>,
    pub data_dir: std::path::PathBuf,
    /// Limits and sign-in settings (config `http_*`, `session_*`, `catalog_public`).
    pub security: Arc<crate::config::Security>,
    /// Authentication cache and sign-in failure counts.
    pub gate: Arc<auth::Gate>,
    /// Live event streams open at once (`http_max_sse`).
    pub sse: Arc<tokio::sync::Semaphore>,
    /// Cancelled when the HTTP server starts to shut down: open event streams end then, so a
    /// stop does not wait `shutdown_timeout` for clients that never hang up.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl AppState {
    pub fn bus(&self) -> Result<&Bus, Problem> {
        self.bus.get().ok_or_else(|| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "Souk is starting; try again shortly",
            )
        })
    }

    /// Sends `req` to `<service>.<op>` with the request's context and decodes the answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        service: &str,
        op: &str,
        req: &Req,
        ctx: &Ctx,
    ) -> Result<Resp, Problem> {
        Ok(self
            .bus()?
            .call(service, op, req, &ctx.0, RPC_TIMEOUT)
            .await?)
    }

    /// [`AppState::call`] that keeps the answer as the service's JSON, to pass it on as is.
    pub async fn call_raw<Req: Serialize>(
        &self,
        service: &str,
        op: &str,
        req: &Req,
        ctx: &Ctx,
    ) -> Result<bytes::Bytes, Problem> {
        Ok(self
            .bus()?
            .call_raw(service, op, req, &ctx.0, RPC_TIMEOUT)
            .await?)
    }
}

/// An entity response with `ETag: "<version>"`.
pub fn entity<T: Serialize>(status: StatusCode, body: T) -> Response {
    entity_json(status, serde_json::to_vec(&body).unwrap_or_default().into())
}

/// [`entity`] of JSON a service answered, sent as it came (no decode and encode in between).
pub fn entity_json(status: StatusCode, json: bytes::Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Version {
        version: Option<u64>,
    }
    let version = serde_json::from_slice::<Version>(&json)
        .ok()
        .and_then(|v| v.version);
    let etag = version.map(|v| format!("\"{v}\""));
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], json).into_response();
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// Paging parameters, checked: `limit` 1–200 (default 50).
pub fn page(limit: Option<u32>, cursor: Option<String>) -> Result<crate::services::Page, Problem> {
    if limit.is_some_and(|l| !(1..=crate::services::MAX_LIMIT).contains(&l)) {
        return Err(Problem::validation(vec![crate::bus::rpc::FieldError {
            field: "limit".into(),
            message: "must be from 1 to 200".into(),
        }]));
    }
    Ok(crate::services::Page { limit, cursor })
}

pub use router::router;
