//! Durable pull consumers: explicit acks, retries with backoff, a concurrency bound, a graceful
//! stop, and dead letters.
//!
//! A [`Handler`] gets events in batches (so a projection can apply many in one transaction) and
//! must be idempotent: it records what it applied (the event version per aggregate, or the event
//! id) in the same transaction as its writes, so a redelivery after a crash changes nothing.
//!
//! A failing event is redelivered after the next backoff step; after `max_deliver` attempts, or
//! at once when it can never succeed (not an envelope at all, or [`HandlerError::Permanent`]), it
//! is copied to `SOUK_DLQ` with the reason and then terminated in its source consumer. If the
//! copy cannot be stored the event is not terminated: it is retried, never dropped.

use super::deadletter;
use super::{Bus, Envelope};
use crate::health::Health;
use anyhow::Context;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One durable consumer's settings.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Durable name, `<service>-<purpose>` (see `Names::consumer`).
    pub name: String,
    pub stream: String,
    pub filter_subjects: Vec<String>,
    /// Attempts before an event is dead-lettered.
    pub max_deliver: i64,
    /// Delay before attempt 2, 3, …; the last step repeats.
    pub backoff: Vec<Duration>,
    /// How long a delivery may stay unacknowledged before JetStream redelivers it.
    pub ack_wait: Duration,
    /// Most events handed to the handler at once.
    pub batch: usize,
    /// Batches handled at once (1 keeps a single writer, e.g. the SQLite projector).
    pub concurrency: usize,
    /// JetStream deletes the consumer after this long without a client pulling from it (for
    /// consumers of read-model replicas, which may be retired); `None`: kept for ever.
    pub inactive_threshold: Option<Duration>,
}

impl Spec {
    pub fn new(name: String, stream: String, filter_subjects: Vec<String>) -> Spec {
        Spec {
            name,
            stream,
            filter_subjects,
            max_deliver: 5,
            backoff: vec![
                Duration::from_millis(100),
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(5),
            ],
            ack_wait: Duration::from_secs(30),
            batch: 256,
            concurrency: 1,
            inactive_threshold: None,
        }
    }

    fn delay_before(&self, attempt: u64) -> Duration {
        let i = (attempt.saturating_sub(1) as usize).min(self.backoff.len().saturating_sub(1));
        self.backoff
            .get(i)
            .copied()
            .unwrap_or(Duration::from_secs(1))
    }
}

/// How long events handed back at a stop wait before JetStream delivers them again.
const HAND_BACK_DELAY: Duration = Duration::from_millis(500);

/// One event as a handler receives it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub envelope: Envelope,
    pub subject: String,
    pub stream_seq: u64,
    /// 1 on first delivery.
    pub attempt: u64,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth trying again (a store was busy, a service did not answer).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed as it is; dead-letter it now.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies `batch` (in stream order) and returns one outcome per delivery, in order.
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>>;
}

/// Creates (or updates) the durable consumer and feeds the handler until `cancel`. Events in
/// flight when `cancel` fires are finished and acknowledged before it returns.
/// `ready` is a readiness check to mark passed once the consumer has caught up with its stream.
pub async fn run(
    bus: Bus,
    spec: Spec,
    handler: Arc<dyn Handler>,
    ready: Option<(Health, String)>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let stream = bus
        .jetstream
        .get_stream(&spec.stream)
        .await
        .with_context(|| format!("consumer {}: stream {}", spec.name, spec.stream))?;
    let deliver_policy = take_over(&stream, &spec).await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(spec.name.clone()),
            filter_subjects: spec.filter_subjects.clone(),
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            // Attempts are counted here, not by JetStream, so that the last one is dead-lettered
            // by us (with its reason) instead of silently stopping redelivery.
            max_deliver: -1,
            max_ack_pending: (spec.batch * 8) as i64,
            inactive_threshold: spec.inactive_threshold.unwrap_or_default(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating consumer {} on {}", spec.name, spec.stream))?;
    if let Some((health, check)) = ready {
        let (consumer, cancel) = (consumer.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(info) = consumer.get_info().await
                    && info.num_pending == 0
                    && info.num_ack_pending == 0
                {
                    health.set(&check, true, "caught up");
                    return;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
    }
    let spec = Arc::new(spec);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1)));
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(spec.batch)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .with_context(|| format!("consumer {}: subscribing", spec.name))?
        .ready_chunks(spec.batch);
    tracing::info!(consumer = %spec.name, stream = %spec.stream, ?deliver_policy, "consumer running");

    loop {
        // The permit first, then the chunk: while a batch is being handled, deliveries pile up
        // in the client's buffer and the next chunk takes them all (up to `batch`). Taken the
        // other way round, a chunk was cut from whatever had arrived before the wait, and the
        // catalog projector got ~70 events per transaction instead of up to 256.
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            permit = in_flight.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let chunk = tokio::select! {
            _ = cancel.cancelled() => break,
            chunk = messages.next() => match chunk {
                Some(chunk) => chunk,
                None => anyhow::bail!("consumer {}: the message stream ended", spec.name),
            },
        };
        let mut batch = Vec::with_capacity(chunk.len());
        let mut raw = Vec::with_capacity(chunk.len());
        for message in chunk {
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    // Missed heartbeats and the like: the stream recovers by itself.
                    tracing::warn!(consumer = %spec.name, "consumer: {e}");
                    continue;
                }
            };
            let (stream_seq, attempt) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
                Err(e) => {
                    tracing::warn!(consumer = %spec.name, "message without JetStream info: {e}");
                    continue;
                }
            };
            match Envelope::decode(&message.payload) {
                Ok(envelope) => {
                    batch.push(Delivery {
                        envelope,
                        subject: message.subject.to_string(),
                        stream_seq,
                        attempt,
                    });
                    raw.push(message);
                }
                Err(e) => {
                    let reason = format!("poison event: {e}");
                    dead_letter(&bus, &spec, &message, stream_seq, attempt, &reason).await;
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        // Handle the batch on its own task, at most `concurrency` at once; the permit is
        // released when its events are settled (acked, nak'd or dead-lettered).
        let (bus, spec, handler) = (bus.clone(), spec.clone(), handler.clone());
        tokio::spawn(async move {
            settle(&bus, &spec, handler.as_ref(), &batch, &raw).await;
            drop(permit);
        });
    }
    // Graceful stop: finish and settle what is in flight, and hand back what was delivered to
    // this client but not taken yet, so the next start gets it at once rather than after
    // `ack_wait` (an acknowledged write was missing from the catalog for ~30 s after a restart).
    // Handed back with a short delay: at once, the server would deliver it straight back to this
    // client's pull request, still open until `messages` is dropped.
    let mut returned = 0;
    while let Some(Some(chunk)) = futures::FutureExt::now_or_never(messages.next()) {
        for message in chunk.into_iter().flatten() {
            let _ = message.ack_with(AckKind::Nak(Some(HAND_BACK_DELAY))).await;
            returned += 1;
        }
    }
    drop(messages);
    if returned > 0 {
        tracing::info!(consumer = %spec.name, returned, "handed back events not yet handled");
    }
    let _ = in_flight.acquire_many(spec.concurrency.max(1) as u32).await;
    tracing::info!(consumer = %spec.name, "consumer stopped");
    Ok(())
}

/// Before the consumer is (re)created: the deliver policy to create it with.
///
/// A consumer whose last client was killed (`kill -9` of Souk, or a failed run of this task)
/// still holds what it had delivered to it, and JetStream redelivers that only after `ack_wait`
/// (30 s: the catalog missed acknowledged writes, and readiness said "catching up", that long
/// after every crash). So when it has unacknowledged deliveries and nobody is pulling from it,
/// it is replaced by one starting just after its acknowledgement floor: everything from there
/// is delivered again at once, and handlers skip what they already applied. Otherwise the
/// consumer's own deliver policy is kept (JetStream refuses to change it on an update).
async fn take_over(
    stream: &async_nats::jetstream::stream::Stream,
    spec: &Spec,
) -> anyhow::Result<DeliverPolicy> {
    use async_nats::jetstream::context::ConsumerInfoErrorKind;
    let info = match stream.consumer_info(&spec.name).await {
        Ok(info) => info,
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => return Ok(DeliverPolicy::All),
        Err(e) => return Err(e).with_context(|| format!("consumer {}: reading it", spec.name)),
    };
    if info.num_ack_pending == 0 || info.num_waiting > 0 {
        return Ok(info.config.deliver_policy);
    }
    let from = info.ack_floor.stream_sequence + 1;
    stream
        .delete_consumer(&spec.name)
        .await
        .with_context(|| format!("consumer {}: replacing it", spec.name))?;
    tracing::info!(
        consumer = %spec.name,
        unacknowledged = info.num_ack_pending,
        from_sequence = from,
        "taking over a consumer whose last client left events unacknowledged; they are \
         delivered again now instead of after ack_wait"
    );
    Ok(DeliverPolicy::ByStartSequence {
        start_sequence: from,
    })
}

/// Hands `batch` to the handler and acts on each outcome.
async fn settle(
    bus: &Bus,
    spec: &Spec,
    handler: &dyn Handler,
    batch: &[Delivery],
    raw: &[async_nats::jetstream::Message],
) {
    let outcomes = handler.handle(batch).await;
    for (i, (delivery, message)) in batch.iter().zip(raw.iter()).enumerate() {
        let outcome = outcomes.get(i).cloned().unwrap_or_else(|| {
            Err(HandlerError::Retry(
                "the handler returned no outcome".into(),
            ))
        });
        match outcome {
            Ok(()) => {
                count(&spec.name, "applied");
                if let Err(e) = message.ack().await {
                    tracing::warn!(consumer = %spec.name, seq = delivery.stream_seq, "ack failed (it will be redelivered and skipped): {e}");
                }
            }
            Err(HandlerError::Retry(reason)) if (delivery.attempt as i64) < spec.max_deliver => {
                let delay = spec.delay_before(delivery.attempt + 1);
                tracing::warn!(
                    consumer = %spec.name, seq = delivery.stream_seq, attempt = delivery.attempt,
                    retry_in = ?delay, "event failed, will retry: {reason}"
                );
                count(&spec.name, "retried");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            }
            Err(HandlerError::Retry(reason) | HandlerError::Permanent(reason)) => {
                dead_letter(
                    bus,
                    spec,
                    message,
                    delivery.stream_seq,
                    delivery.attempt,
                    &reason,
                )
                .await;
            }
        }
    }
}

/// Copies the message to the dead-letter stream, then terminates it here. If the copy fails,
/// the message is redelivered later instead: it is never dropped.
async fn dead_letter(
    bus: &Bus,
    spec: &Spec,
    message: &async_nats::jetstream::Message,
    stream_seq: u64,
    attempts: u64,
    reason: &str,
) {
    let letter = deadletter::Letter {
        consumer: spec.name.clone(),
        stream: spec.stream.clone(),
        stream_seq,
        subject: message.subject.to_string(),
        attempts,
        reason: reason.to_string(),
    };
    match deadletter::store(bus, &letter, message.payload.clone()).await {
        Ok(()) => {
            tracing::error!(
                consumer = %spec.name, seq = stream_seq, attempts,
                "event dead-lettered: {reason}. Inspect it at GET /api/admin/dead-letters"
            );
            count(&spec.name, "dead_lettered");
            let _ = message.ack_with(AckKind::Term).await;
        }
        Err(e) => {
            tracing::error!(consumer = %spec.name, seq = stream_seq, "could not dead-letter an event, will retry: {e:#}");
            let _ = message
                .ack_with(AckKind::Nak(Some(spec.delay_before(attempts + 1))))
                .await;
        }
    }
}

/// `souk_consumer_events_total{consumer, outcome}`
fn count(consumer: &str, outcome: &'static str) {
    metrics::counter!("souk_consumer_events_total", "consumer" => consumer.to_string(), "outcome" => outcome)
        .increment(1);
}
