//! Operations for admins: what is running and how far behind it is, and dead letters.
//!
//! | method, path                              | answer                                      |
//! |-------------------------------------------|---------------------------------------------|
//! | GET /api/admin/overview                   | services, broker, streams, consumers, outboxes, dead letters, stores |
//! | GET /api/admin/dead-letters               | `?consumer&limit&cursor` → dead letters, oldest first |
//! | POST /api/admin/dead-letters/{id}/retry   | hands the event to its consumer's handler again |
//! | DELETE /api/admin/dead-letters/{id}       | discards it                                 |
//! | GET /api/admin/projections                | read models: position, lag, rebuild progress |
//! | POST /api/admin/projections/{name}/rebuild | 202: rebuilds beside the live one, then swaps |

use super::AppState;
use super::error::Problem;
use super::extract::{Ctx, Params};
use crate::bus::deadletter::{self, RetryReply};
use crate::bus::{Bus, rpc::FieldError};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/overview", get(overview))
        .route("/api/admin/dead-letters", get(dead_letters))
        .route("/api/admin/dead-letters/{id}/retry", post(retry))
        .route("/api/admin/dead-letters/{id}", delete(discard))
        .route("/api/admin/projections", get(projections))
        .route("/api/admin/projections/{name}/rebuild", post(rebuild))
}

async fn overview(State(s): State<AppState>) -> Result<axum::Json<Value>, Problem> {
    let bus = s.bus()?;
    let (ready, checks) = s.health.report();
    let outboxes: Vec<Value> = s
        .outboxes
        .get()
        .map(|o| {
            o.iter()
                .map(
                    |o| json!({"service": o.service, "backlog": o.backlog.load(Ordering::Relaxed)}),
                )
                .collect()
        })
        .unwrap_or_default();
    let dead: std::collections::BTreeMap<String, u64> =
        deadletter::counts(bus).await.unwrap_or_default();
    Ok(axum::Json(json!({
        "version": crate::VERSION,
        "nats_server": crate::broker::binary::embedded().map(|(v, _)| v),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "ready": ready,
        "checks": checks,
        "services": service_stats(bus).await,
        "streams": streams(bus).await?,
        "outboxes": outboxes,
        "dead_letters": {"total": dead.values().sum::<u64>(), "by_consumer": dead},
        "stores": stores(&s.data_dir),
    })))
}

/// `$SRV.STATS` from every Souk micro service that answers within 250 ms.
async fn service_stats(bus: &Bus) -> Vec<Value> {
    let inbox = bus.client.new_inbox();
    let Ok(mut sub) = bus.client.subscribe(inbox.clone()).await else {
        return Vec::new();
    };
    if bus
        .client
        .publish_with_reply("$SRV.STATS", inbox, "".into())
        .await
        .is_err()
    {
        return Vec::new();
    }
    let prefix = format!("{}-", bus.names().prefix());
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, sub.next()).await {
        if let Ok(v) = serde_json::from_slice::<Value>(&m.payload)
            && v["name"].as_str().is_some_and(|n| n.starts_with(&prefix))
        {
            out.push(v);
        }
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// A stream's state and its consumers', as JetStream reports them.
pub(super) struct StreamState {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub consumers: Vec<ConsumerState>,
}

pub(super) struct ConsumerState {
    pub name: String,
    pub pending: u64,
    pub ack_pending: u64,
    pub redelivered: u64,
    pub delivered_seq: u64,
}

impl ConsumerState {
    /// Filtered consumers skip most of the stream: lag is what they still owe.
    pub fn lag(&self) -> u64 {
        self.pending + self.ack_pending
    }
}

/// Souk's event streams and the dead-letter stream (those that exist), with their consumers.
pub(super) async fn stream_states(bus: &Bus) -> anyhow::Result<Vec<StreamState>> {
    let mut out = Vec::new();
    let mut names: Vec<String> = crate::bus::subjects::PRODUCERS
        .iter()
        .map(|(s, _)| bus.names().stream(s))
        .collect();
    names.push(bus.names().dlq_stream());
    for name in names {
        let Ok(mut stream) = bus.jetstream.get_stream(&name).await else {
            continue;
        };
        let info = stream.info().await?.clone();
        let mut consumers = Vec::new();
        let mut list = stream.consumers();
        while let Some(Ok(c)) = list.next().await {
            consumers.push(ConsumerState {
                name: c.name,
                pending: c.num_pending,
                ack_pending: c.num_ack_pending as u64,
                redelivered: c.num_redelivered as u64,
                delivered_seq: c.delivered.stream_sequence,
            });
        }
        out.push(StreamState {
            name,
            messages: info.state.messages,
            bytes: info.state.bytes,
            first_seq: info.state.first_sequence,
            last_seq: info.state.last_sequence,
            consumers,
        });
    }
    Ok(out)
}

async fn streams(bus: &Bus) -> Result<Vec<Value>, Problem> {
    let states = stream_states(bus)
        .await
        .map_err(|e| Problem::internal("reading stream info", e))?;
    Ok(states
        .into_iter()
        .map(|s| {
            let consumers: Vec<Value> = s
                .consumers
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "pending": c.pending,
                        "ack_pending": c.ack_pending,
                        "redelivered": c.redelivered,
                        "delivered_seq": c.delivered_seq,
                        "lag": c.lag(),
                    })
                })
                .collect();
            json!({
                "name": s.name,
                "messages": s.messages,
                "bytes": s.bytes,
                "first_seq": s.first_seq,
                "last_seq": s.last_seq,
                "consumers": consumers,
            })
        })
        .collect())
}

fn stores(dir: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().to_string();
            if (name.ends_with(".redb") || name.ends_with(".sqlite"))
                && let Ok(m) = e.metadata()
            {
                // A SQLite store is its file and its write-ahead log (which can be the larger
                // between checkpoints).
                let wal = std::fs::metadata(dir.join(format!("{name}-wal"))).map_or(0, |w| w.len());
                out.push(json!({"file": name, "bytes": m.len() + wal, "wal_bytes": wal}));
            }
        }
    }
    out.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LetterParams {
    consumer: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn dead_letters(
    State(s): State<AppState>,
    Params(p): Params<LetterParams>,
) -> Result<axum::Json<Value>, Problem> {
    let bus = s.bus()?;
    let limit = super::page(p.limit, None)?.limit();
    let after = match &p.cursor {
        Some(c) => crate::services::decode_cursor::<u64>(c).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                "the cursor is not valid",
            )
        })?,
        None => 0,
    };
    if p.consumer
        .as_deref()
        .is_some_and(|c| c.is_empty() || c.contains(['.', '*', '>', ' ']))
    {
        return Err(Problem::validation(vec![FieldError {
            field: "consumer".into(),
            message: "is not a consumer name".into(),
        }]));
    }
    let (items, next) = deadletter::list(bus, p.consumer.as_deref(), after, limit)
        .await
        .map_err(|e| Problem::internal("listing dead letters", e))?;
    Ok(axum::Json(
        json!({"items": items, "next_cursor": next.map(|n| crate::services::encode_cursor(&n))}),
    ))
}

fn letter_id(id: &str) -> Result<u64, Problem> {
    // Stream sequences start at 1.
    id.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::not_found("dead letter"))
}

async fn retry(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<axum::Json<RetryReply>, Problem> {
    let bus = s.bus()?;
    let id = letter_id(&id)?;
    let (letter, _) = deadletter::get(bus, id)
        .await
        .map_err(|e| Problem::internal("reading a dead letter", e))?
        .ok_or_else(|| Problem::not_found("dead letter"))?;
    let op = format!("retry-{}", letter.letter.consumer);
    Ok(axum::Json(
        s.call("deadletters", &op, &json!({ "id": id }), &ctx)
            .await?,
    ))
}

async fn discard(State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    let id = letter_id(&id)?;
    match deadletter::discard(s.bus()?, id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found("dead letter")),
        Err(e) => Err(Problem::internal("discarding a dead letter", e)),
    }
}

/// The read models Souk keeps (today: the catalog).
const PROJECTIONS: &[&str] = &["catalog"];

async fn projections(State(s): State<AppState>, ctx: Ctx) -> Result<axum::Json<Value>, Problem> {
    let mut items = Vec::new();
    for name in PROJECTIONS {
        items.push(
            s.call::<_, Value>(name, "projection", &json!({}), &ctx)
                .await?,
        );
    }
    Ok(axum::Json(json!({ "items": items })))
}

async fn rebuild(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(name): Path<String>,
) -> Result<(StatusCode, axum::Json<Value>), Problem> {
    if !PROJECTIONS.contains(&name.as_str()) {
        return Err(Problem::not_found("projection"));
    }
    let progress: Value = s.call(&name, "rebuild", &json!({}), &ctx).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(progress)))
}
