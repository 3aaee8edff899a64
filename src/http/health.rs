//! `GET /healthz` (the process lives) and `GET /readyz` (every part is up and caught up).

use super::AppState;
use super::error::Problem;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let (ready, checks) = state.health.report();
    if ready {
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    let failing: Vec<String> = checks
        .iter()
        .filter(|(_, c)| !c.ok)
        .map(|(name, c)| format!("{name}: {}", c.detail))
        .collect();
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        failing.join("; "),
    )
    .with("checks", checks)
    .into_response()
}
