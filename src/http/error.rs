//! `application/problem+json` responses (RFC 9457) with a stable `code`, and the one mapping
//! from what the bus answers to what the client sees.

use crate::bus::rpc::{CallError, FieldError, RpcError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// A problem response; boxed so that `Result<T, Problem>` stays small on the happy path.
#[derive(Debug)]
pub struct Problem(pub Box<Details>);

#[derive(Debug, Serialize)]
pub struct Details {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension members (e.g. `checks` on `/readyz`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem(Box::new(Details {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            code: code.to_string(),
            detail: detail.into(),
            errors: Vec::new(),
            extra: Map::new(),
        }))
    }

    /// 422 `validation_failed` naming each bad field.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn validation(errors: Vec<FieldError>) -> Problem {
        Problem::from(RpcError::validation(errors))
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::from(RpcError::not_found(what))
    }

    pub fn with(mut self, key: &str, value: impl Serialize) -> Problem {
        self.0.extra.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// An infrastructure failure: logged with an id; the client gets the id, not the details.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> Problem {
        Problem::from(RpcError::internal(context, err))
    }
}

impl From<RpcError> for Problem {
    fn from(e: RpcError) -> Problem {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut p = Problem::new(status, &e.code, e.message);
        p.0.errors = e.errors;
        p
    }
}

impl From<CallError> for Problem {
    fn from(e: CallError) -> Problem {
        match e {
            CallError::Rejected(e) => Problem::from(e),
            CallError::NoResponders(service) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                format!("{service} is not running (check `services` on the Souk instances)"),
            ),
            CallError::Timeout(subject) => Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "{subject} did not answer in time; a change it was asked to make may still \
                     happen"
                ),
            ),
            CallError::Transport { subject, message } => {
                Problem::internal(&format!("calling {subject}"), message)
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // A part of Souk is down or recovering (a restarting nats-server, a full disk).
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static("5"));
        }
        response
    }
}
