//! Dead letters: events a consumer gave up on, kept in `SOUK_DLQ` (subject `souk.dlq.<consumer>`)
//! with the original bytes and, in headers, the consumer, source stream and sequence, attempts
//! and the reason. An admin can list them, retry one (it is handed to the same handler again,
//! in the process that runs that consumer) or discard it.
//!
//! A letter's id is its sequence in `SOUK_DLQ`.

use super::consumer::{Delivery, Handler};
use super::rpc::{RpcError, Service};
use super::{Bus, Envelope};
use anyhow::Context;
use async_nats::HeaderMap;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

const H_CONSUMER: &str = "Souk-Dlq-Consumer";
const H_STREAM: &str = "Souk-Dlq-Stream";
const H_SEQ: &str = "Souk-Dlq-Sequence";
const H_SUBJECT: &str = "Souk-Dlq-Subject";
const H_ATTEMPTS: &str = "Souk-Dlq-Attempts";
const H_REASON: &str = "Souk-Dlq-Reason";

/// Why and where an event was given up on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Letter {
    pub consumer: String,
    pub stream: String,
    pub stream_seq: u64,
    pub subject: String,
    pub attempts: u64,
    pub reason: String,
}

/// A stored dead letter, as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeadLetter {
    pub id: String,
    #[serde(flatten)]
    pub letter: Letter,
    pub dead_lettered_at: String,
    /// The event envelope, or the raw text when it was not an envelope at all.
    pub event: serde_json::Value,
}

/// Stores a dead letter durably (acknowledged by JetStream). Re-storing the same source event
/// for the same consumer is a no-op within the duplicate window.
pub async fn store(bus: &Bus, letter: &Letter, payload: Bytes) -> anyhow::Result<()> {
    let mut h = HeaderMap::new();
    h.insert(H_CONSUMER, letter.consumer.as_str());
    h.insert(H_STREAM, letter.stream.as_str());
    h.insert(H_SEQ, letter.stream_seq.to_string().as_str());
    h.insert(H_SUBJECT, letter.subject.as_str());
    h.insert(H_ATTEMPTS, letter.attempts.to_string().as_str());
    // Header values are one line; keep reasons readable and bounded.
    let reason: String = letter
        .reason
        .replace(['\r', '\n'], " ")
        .chars()
        .take(1000)
        .collect();
    h.insert(H_REASON, reason.as_str());
    let id = format!(
        "dlq-{}-{}-{}",
        letter.consumer, letter.stream, letter.stream_seq
    );
    h.insert("Nats-Msg-Id", id.as_str());
    bus.jetstream
        .publish_with_headers(bus.names().dlq(&letter.consumer), h, payload)
        .await
        .context("publishing the dead letter")?
        .await
        .context("storing the dead letter")?;
    Ok(())
}

fn decode(m: async_nats::jetstream::message::StreamMessage) -> DeadLetter {
    let get = |name: &str| {
        m.headers
            .get(name)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default()
    };
    let letter = Letter {
        consumer: get(H_CONSUMER),
        stream: get(H_STREAM),
        stream_seq: get(H_SEQ).parse().unwrap_or(0),
        subject: get(H_SUBJECT),
        attempts: get(H_ATTEMPTS).parse().unwrap_or(0),
        reason: get(H_REASON),
    };
    let event = serde_json::from_slice(&m.payload)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&m.payload).into()));
    let at = std::time::UNIX_EPOCH
        + std::time::Duration::from_nanos(m.time.unix_timestamp_nanos().max(0) as u64);
    DeadLetter {
        id: m.sequence.to_string(),
        letter,
        dead_lettered_at: crate::clock::rfc3339(at),
        event,
    }
}

/// Up to `limit` letters after id `after` (0 = from the start), oldest first, optionally only
/// one consumer's; and the id to continue after, if there may be more.
pub async fn list(
    bus: &Bus,
    consumer: Option<&str>,
    after: u64,
    limit: usize,
) -> anyhow::Result<(Vec<DeadLetter>, Option<u64>)> {
    let stream = bus.jetstream.get_stream(bus.names().dlq_stream()).await?;
    let subject = match consumer {
        Some(c) => bus.names().dlq(c),
        None => bus.names().all_dlq(),
    };
    let mut out = Vec::new();
    let mut next = after + 1;
    while out.len() < limit {
        match stream
            .direct_get_next_for_subject(subject.as_str(), Some(next))
            .await
        {
            Ok(m) => {
                next = m.sequence + 1;
                out.push(decode(m));
            }
            Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
                return Ok((out, None));
            }
            Err(e) => return Err(e).context("reading dead letters"),
        }
    }
    let more = out.last().map(|l| l.id.parse().unwrap_or(0));
    Ok((out, more))
}

pub async fn get(bus: &Bus, id: u64) -> anyhow::Result<Option<(DeadLetter, Bytes)>> {
    let stream = bus.jetstream.get_stream(bus.names().dlq_stream()).await?;
    match stream.direct_get(id).await {
        Ok(m) => {
            let payload = m.payload.clone();
            Ok(Some((decode(m), payload)))
        }
        Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e).context("reading a dead letter"),
    }
}

/// Removes a letter; false when there was none with that id.
pub async fn discard(bus: &Bus, id: u64) -> anyhow::Result<bool> {
    let stream = bus.jetstream.get_stream(bus.names().dlq_stream()).await?;
    use async_nats::jetstream::{ErrorCode, stream::DeleteMessageErrorKind};
    match stream.delete_message(id).await {
        Ok(deleted) => Ok(deleted),
        Err(e) => match e.kind() {
            DeleteMessageErrorKind::JetStream(js)
                if [ErrorCode::SEQUENCE_NOT_FOUND, ErrorCode::NO_MESSAGE_FOUND]
                    .contains(&js.error_code()) =>
            {
                Ok(false)
            }
            // Past the stream's last sequence the server answers a generic delete failure; a
            // letter that is not there is "none with that id" whatever it says.
            _ if matches!(get(bus, id).await, Ok(None)) => Ok(false),
            _ => Err(e).context("discarding a dead letter"),
        },
    }
}

/// How many letters wait, per consumer.
pub async fn counts(bus: &Bus) -> anyhow::Result<BTreeMap<String, u64>> {
    let stream = bus.jetstream.get_stream(bus.names().dlq_stream()).await?;
    let prefix = format!("{}.dlq.", bus.names().prefix());
    let info = stream.info_with_subjects(bus.names().all_dlq()).await;
    let mut out = BTreeMap::new();
    if let Ok(subjects) = info {
        let subjects: Vec<(String, usize)> = futures::TryStreamExt::try_collect(subjects)
            .await
            .unwrap_or_default();
        for (subject, n) in subjects {
            out.insert(subject.trim_start_matches(&prefix).to_string(), n as u64);
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct RetryRequest {
    pub id: u64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetryReply {
    pub id: String,
    pub retried: bool,
}

/// The `deadletters` service of one process: a `retry-<consumer>` operation for each consumer
/// it runs, so a retry reaches the process (and handler) that owns that consumer.
pub fn retry_service(bus: &Bus, consumers: Vec<(String, Arc<dyn Handler>)>) -> Service {
    let mut service = Service::new("deadletters", "retries dead-lettered events");
    for (name, handler) in consumers {
        let bus = bus.clone();
        service = service.op(&format!("retry-{name}"), move |req: RetryRequest, _meta| {
            let (bus, handler, name) = (bus.clone(), handler.clone(), name.clone());
            async move { retry(&bus, &name, handler.as_ref(), req.id).await }
        });
    }
    service
}

async fn retry(
    bus: &Bus,
    consumer: &str,
    handler: &dyn Handler,
    id: u64,
) -> Result<RetryReply, RpcError> {
    let (letter, payload) = get(bus, id)
        .await
        .map_err(|e| RpcError::internal("reading a dead letter", e))?
        .filter(|(l, _)| l.letter.consumer == consumer)
        .ok_or_else(|| RpcError::not_found("dead letter"))?;
    let envelope = Envelope::decode(&payload).map_err(|e| {
        RpcError::new(
            422,
            "not_an_event",
            format!("this dead letter is not an event and cannot be retried: {e}"),
        )
    })?;
    let delivery = Delivery {
        envelope,
        subject: letter.letter.subject.clone(),
        stream_seq: letter.letter.stream_seq,
        attempt: letter.letter.attempts + 1,
    };
    match handler
        .handle(std::slice::from_ref(&delivery))
        .await
        .into_iter()
        .next()
    {
        Some(Ok(())) => {
            discard(bus, id)
                .await
                .map_err(|e| RpcError::internal("removing a retried dead letter", e))?;
            tracing::info!(consumer, id, "dead letter retried and applied");
            Ok(RetryReply {
                id: id.to_string(),
                retried: true,
            })
        }
        Some(Err(e)) => Err(RpcError::new(
            409,
            "retry_failed",
            format!("the handler failed again: {e}"),
        )),
        None => Err(RpcError::new(
            409,
            "retry_failed",
            "the handler returned no outcome",
        )),
    }
}
