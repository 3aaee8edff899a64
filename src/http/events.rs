//! The bus, seen from HTTP: stored events and a live tail.
//!
//! | method, path          | answer                                                         |
//! |-----------------------|----------------------------------------------------------------|
//! | GET /api/events       | stored events by subject, oldest first, paged per stream       |
//! | GET /api/events/live  | Server-Sent Events, one per event on the bus (`?subject=`)     |
//!
//! `subject` is a NATS subject filter under `souk.events.` (e.g. `souk.events.user.>`); the
//! events of every stream it touches are merged by time. `after_seq` starts after a sequence
//! (meaningful when the filter touches one stream); `cursor` continues a previous page.

use super::AppState;
use super::error::Problem;
use super::extract::Params;
use crate::bus::Bus;
use crate::bus::rpc::FieldError;
use crate::bus::subjects::PRODUCERS;
use crate::services::{decode_cursor, encode_cursor};
use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/events", get(list))
        .route("/api/events/live", get(live))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    subject: Option<String>,
    after_seq: Option<u64>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<Value>,
    next_cursor: Option<String>,
}

/// Checks a subject filter and returns it with the streams it can match.
fn streams_for(bus: &Bus, subject: Option<String>) -> Result<(String, Vec<String>), Problem> {
    let names = bus.names();
    let subject = subject.unwrap_or_else(|| names.all_events());
    let bad = |m: &str| {
        Problem::validation(vec![FieldError {
            field: "subject".into(),
            message: m.into(),
        }])
    };
    let prefix = format!("{}.events.", names.prefix());
    if !subject.starts_with(&prefix) && subject != names.all_events() {
        return Err(bad(&format!("must start with {prefix}")));
    }
    let tokens: Vec<&str> = subject.split('.').collect();
    if tokens
        .iter()
        .any(|t| t.is_empty() || t.contains(char::is_whitespace))
        || tokens.iter().rev().skip(1).any(|t| *t == ">")
    {
        return Err(bad("is not a valid subject filter"));
    }
    let aggregate = tokens.get(2).copied().unwrap_or(">");
    let streams = PRODUCERS
        .iter()
        .filter(|(_, aggs)| aggregate == ">" || aggregate == "*" || aggs.contains(&aggregate))
        .map(|(service, _)| names.stream(service))
        .collect();
    Ok((subject, streams))
}

async fn list(
    State(s): State<AppState>,
    Params(p): Params<ListParams>,
) -> Result<axum::Json<Page>, Problem> {
    let bus = s.bus()?;
    let limit = super::page(p.limit, None)?.limit();
    let (subject, streams) = streams_for(bus, p.subject)?;
    let mut after: BTreeMap<String, u64> = match &p.cursor {
        Some(c) => decode_cursor(c).ok_or_else(|| {
            Problem::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_cursor",
                "the cursor is not valid",
            )
        })?,
        None => streams
            .iter()
            .map(|st| (st.clone(), p.after_seq.unwrap_or(0)))
            .collect(),
    };
    // Up to `limit` from each stream, in stream order; then merged by time, the oldest `limit`
    // kept. The merge takes each stream's events in order (it compares the streams' next
    // events), so a page holds a prefix of each stream and the cursor skips and repeats nothing
    // even where times are out of order within a stream.
    let mut heads: Vec<std::collections::VecDeque<(String, u64, Value)>> = Vec::new();
    for stream in &streams {
        let st = bus
            .jetstream
            .get_stream(stream)
            .await
            .map_err(|e| Problem::internal("reading a stream", e))?;
        let mut from = after.get(stream).copied().unwrap_or(0).checked_add(1);
        let mut mine = std::collections::VecDeque::new();
        while let Some(seq) = from.filter(|_| mine.len() < limit) {
            match st
                .direct_get_next_for_subject(subject.as_str(), Some(seq))
                .await
            {
                Ok(m) => {
                    from = m.sequence.checked_add(1);
                    let mut v = match serde_json::from_slice::<Value>(&m.payload) {
                        Ok(v @ Value::Object(_)) => v,
                        // Not an event envelope (published by something else): shown, marked.
                        _ => serde_json::json!({
                            "unreadable": String::from_utf8_lossy(&m.payload),
                        }),
                    };
                    let at = v["occurred_at"].as_str().unwrap_or("").to_string();
                    if let Value::Object(o) = &mut v {
                        o.insert("seq".into(), m.sequence.into());
                        o.insert("stream".into(), stream.clone().into());
                    }
                    mine.push_back((at, m.sequence, v));
                }
                Err(_) => break,
            }
        }
        heads.push(mine);
    }
    let mut found: Vec<Value> = Vec::new();
    while found.len() < limit {
        let next = (0..heads.len())
            .filter_map(|i| heads[i].front().map(|h| (&h.0, &streams[i], i)))
            .min()
            .map(|(_, _, i)| i);
        let Some(i) = next else { break };
        let (_, seq, v) = heads[i].pop_front().expect("a head");
        after.insert(streams[i].clone(), seq);
        found.push(v);
    }
    let more = heads.iter().any(|h| !h.is_empty());
    let next_cursor = (more || found.len() == limit)
        .then(|| encode_cursor(&after))
        .filter(|_| !found.is_empty());
    Ok(axum::Json(Page {
        items: found,
        next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveParams {
    subject: Option<String>,
}

/// One SSE event per bus event: `event: <type>`, `data: <envelope>`.
async fn live(
    State(s): State<AppState>,
    Params(p): Params<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, Problem> {
    let bus = s.bus()?;
    let (subject, _) = streams_for(bus, p.subject)?;
    // Held by the stream: the slot frees when the client goes away.
    let permit = s.sse.clone().try_acquire_owned().map_err(|_| {
        Problem::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            "too many live event streams are open (config `http_max_sse`, env SOUK_HTTP_MAX_SSE)",
        )
    })?;
    let sub = bus
        .client
        .subscribe(subject)
        .await
        .map_err(|e| Problem::internal("subscribing", e))?;
    // Ends when Souk shuts down (the client reconnects to the next one, as SSE clients do).
    let events = sub
        .take_until(s.shutdown.clone().cancelled_owned())
        .map(move |m| {
            let _held = &permit;
            let kind = serde_json::from_slice::<Value>(&m.payload)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_string))
                .unwrap_or_else(|| "event".into());
            Ok(Event::default()
                .event(kind)
                .data(String::from_utf8_lossy(&m.payload)))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
