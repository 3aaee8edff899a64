//! Request extractors that answer bad input the API's way: 415 for a body that is not JSON,
//! 400 `malformed_json` for broken JSON, 422 `validation_failed` naming the field for wrong types
//! or unknown fields, 413 over the body limit; query strings likewise; `If-Match`,
//! `Idempotency-Key` and the request context (request id, actor).

use super::error::Problem;
use crate::bus::Meta;
use crate::bus::rpc::FieldError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A JSON body decoded into `T` (whose unknown fields are refused by `deny_unknown_fields`).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, _: &S) -> Result<Self, Problem> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut parts = content_type.split(';');
        let json = parts.next().is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
        // JSON is UTF-8 (RFC 8259); a body declared in another charset is not read as if it were.
        let other_charset = parts.filter_map(|p| p.split_once('=')).any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("charset")
                && !["utf-8", "utf8"]
                    .contains(&v.trim().trim_matches('"').to_ascii_lowercase().as_str())
        });
        if json && other_charset {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send JSON as UTF-8: Content-Type: application/json (charset, if any, utf-8)",
            ));
        }
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req).await?;
        decode_json(&bytes).map(Body)
    }
}

/// An over-limit body is still read (and dropped) up to this size, so that a client that is still
/// sending it hears the 413 rather than a connection reset (hyper closes a connection whose
/// request body was left unread); beyond it the connection is closed.
const DRAIN_LIMIT: usize = 64 << 20;

/// The request body limit in force (config `http_body_limit`), set by the router.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub usize);

/// The body, at most [`BodyLimit`] bytes (1 MiB by default), else 413.
pub async fn read_body(req: Request) -> Result<Bytes, Problem> {
    use futures::StreamExt;
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(super::router::BODY_LIMIT, |l| l.0);
    let drain_limit = DRAIN_LIMIT.max(limit);
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than the limit of {limit} bytes (config `http_body_limit`)"
            ),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > drain_limit as u64) {
        return Err(too_large());
    }
    let mut chunks = req.into_body().into_data_stream();
    let (mut body, mut seen) = (Vec::new(), 0);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("cannot read the body: {e}"),
            )
        })?;
        seen += chunk.len();
        if seen <= limit {
            body.extend_from_slice(&chunk);
        } else if seen > drain_limit {
            break;
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(body.into())
}

/// Decodes JSON, telling syntax errors (400) from shape errors (422, with the field's path).
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Syntax first, over the whole body: decoding into `T` stops at the first shape error and
    // never looks past the value, so `{"x": }` would pass for a shape error and `{…} junk` for
    // valid JSON. Skipping strings does not check their UTF-8, so that is checked on its own.
    let syntax = std::str::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| e.to_string())
        });
    if let Err(e) = syntax {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        ));
    }
    // serde fills a struct from an array too (`["Ann", null]`); the API takes objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::validation(vec![FieldError {
            field: String::new(),
            message: "the body must be a JSON object".into(),
        }]));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let field = e.path().to_string();
            let inner = e.into_inner();
            use serde_json::error::Category;
            match inner.classify() {
                Category::Syntax | Category::Eof | Category::Io => Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("the body is not valid JSON: {inner}"),
                )),
                Category::Data => Err(invalid(field, inner.to_string())),
            }
        }
    }
}

fn invalid(field: String, message: String) -> Problem {
    let field = if field == "." {
        unknown_field(&message).unwrap_or_default()
    } else {
        field
    };
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    Problem::validation(vec![FieldError { field, message }])
}

/// serde reports an unknown, missing or repeated field at the parent's path; name the field.
fn unknown_field(message: &str) -> Option<String> {
    let rest = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))?;
    Some(rest.split('`').next()?.to_string())
}

/// Query parameters decoded into `T`; wrong types or unknown parameters → 422 naming them.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(Params)
            .map_err(|e| {
                let field = e.path().to_string();
                invalid(field, e.into_inner().to_string())
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// `If-Match: "<version>"`, if sent.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = v.to_str().unwrap_or("").trim();
        // `*` matches any current version (RFC 9110): no check.
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let version = text.trim_start_matches("W/").trim_matches('"');
        version
            .parse::<u64>()
            .map(|v| IfMatch(Some(v)))
            .map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_if_match",
                    "If-Match must be an ETag like \"3\" from a GET",
                )
            })
    }
}

/// `Idempotency-Key`, if sent: 1–255 visible ASCII characters.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(IdempotencyKey(None));
        };
        match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
                Ok(IdempotencyKey(Some(k.to_string())))
            }
            _ => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )),
        }
    }
}

/// The request's context for the events it causes: its id and (once auth lands) its actor.
pub struct Ctx(pub Meta);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let actor = parts.extensions.get::<Actor>().map(|a| a.0.clone());
        Ok(Ctx(Meta {
            correlation_id: request_id,
            causation_id: None,
            actor,
        }))
    }
}

/// Who is calling, set by the authentication layer.
#[derive(Clone, Debug)]
pub struct Actor(pub String);
