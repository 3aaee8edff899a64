//! Request/reply between Souk's parts: each service is a NATS micro service (`souk-<service>`,
//! endpoints `souk.rpc.<service>.<op>`, one queue group, so more instances share the load), with
//! typed JSON requests and replies.
//!
//! A domain error travels as an [`RpcError`] (HTTP status, stable code, message, field errors):
//! in the micro error headers (`Nats-Service-Error`, `Nats-Service-Error-Code`, so `$SRV.STATS`
//! counts it) and whole, as JSON, in the `Souk-Error` header. The gateway turns it into
//! problem+json without losing the code. The request context ([`Meta`]) rides in headers.

use super::Bus;
use super::envelope::Meta;
use async_nats::HeaderMap;
use async_nats::service::ServiceExt;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub const ERROR_HEADER: &str = "Souk-Error";
const CORRELATION_HEADER: &str = "Souk-Correlation-Id";
const CAUSATION_HEADER: &str = "Souk-Causation-Id";
const ACTOR_HEADER: &str = "Souk-Actor";
/// When the caller stops waiting (unix ms), less [`START_MARGIN`]: a service does not start a
/// request it receives later. Without it, requests queued while nats-server was stalled ran
/// after their callers had been answered 504, so a client's retry applied a change twice.
/// Across machines this assumes clocks agree within about the margin (NTP).
const DEADLINE_HEADER: &str = "Souk-Deadline";
/// Time left for a request that starts at its deadline to finish before its caller gives up.
const START_MARGIN: Duration = Duration::from_secs(1);
/// Requests larger than this are refused before decoding: an HTTP body (1 MiB at most) plus the
/// rpc wrapper fits well inside.
pub const MAX_REQUEST: usize = 2 << 20;
/// Requests one endpoint handles at once; more wait (backpressure, not unbounded tasks).
const IN_FLIGHT: usize = 256;

/// A rejection that crosses the bus and reaches the client as problem+json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcError {
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl RpcError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> RpcError {
        RpcError {
            status,
            code: code.to_string(),
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn not_found(what: &str) -> RpcError {
        RpcError::new(404, "not_found", format!("no {what} with that id"))
    }

    /// 422 `validation_failed` with one error per field.
    pub fn validation(errors: Vec<FieldError>) -> RpcError {
        let message = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        RpcError {
            status: 422,
            code: "validation_failed".into(),
            message,
            errors,
        }
    }

    /// A store failure: 503 `store_unavailable` while the store refuses writes after a failed
    /// commit (a full disk; it recovers by itself), otherwise [`RpcError::internal`].
    pub fn store(context: &str, err: &crate::store::StoreError) -> RpcError {
        use crate::store::StoreError;
        match err {
            StoreError::Commit { .. } | StoreError::Poisoned { .. } => {
                let id = crate::ids::new("err");
                tracing::warn!(error_id = %id, "{context}: {err}");
                let outcome = if matches!(err, StoreError::Commit { .. }) {
                    "this change may or may not have been saved: check before trying again"
                } else {
                    "nothing was changed: try again shortly"
                };
                RpcError::new(
                    503,
                    "store_unavailable",
                    format!("the {context} cannot save changes right now (error {id}); {outcome}"),
                )
            }
            _ => RpcError::internal(context, err),
        }
    }

    /// An infrastructure failure: the details go to the log, not to the client.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> RpcError {
        let id = crate::ids::new("err");
        // `{:#}` writes an error's causes too (anyhow's chain), which the log needs.
        tracing::error!(error_id = %id, "{context}: {err:#}");
        RpcError::new(
            500,
            "internal",
            format!("internal error {id}; the server log has details"),
        )
    }
}

/// A request as a handler sees it.
pub struct Request {
    pub payload: Bytes,
    pub meta: Meta,
}

type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Result<Bytes, RpcError>> + Send + Sync>;

/// Builds a micro service from typed operations, then runs it.
pub struct Service {
    service: String,
    description: String,
    ops: Vec<(String, Handler)>,
    ready: Option<Box<dyn FnOnce() + Send>>,
}

impl Service {
    pub fn new(service: &str, description: &str) -> Service {
        Service {
            service: service.into(),
            description: description.into(),
            ops: Vec::new(),
            ready: None,
        }
    }

    /// Called once every endpoint is subscribed (readiness).
    pub fn on_ready(mut self, f: impl FnOnce() + Send + 'static) -> Service {
        self.ready = Some(Box::new(f));
        self
    }

    /// Adds operation `op`: its JSON request is decoded into `Req` (a malformed one gets a 400
    /// `malformed_request` reply without reaching `f`), and `Resp` is encoded as the reply.
    pub fn op<Req, Resp, F, Fut>(self, op: &str, f: F) -> Service
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Req, Meta) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.raw_op(op, move |req: Req, meta| {
            let f = f.clone();
            async move {
                let resp = f(req, meta).await?;
                serde_json::to_vec(&resp)
                    .map(Bytes::from)
                    .map_err(|e| RpcError::internal("encoding a reply", e))
            }
        })
    }

    /// Like [`Service::op`] for a handler that answers JSON it already encoded (the reply is
    /// sent as is), so an entity encoded once for the store is not encoded again.
    pub fn raw_op<Req, F, Fut>(mut self, op: &str, f: F) -> Service
    where
        Req: DeserializeOwned + Send + 'static,
        F: Fn(Req, Meta) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, RpcError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let handler: Handler = Arc::new(move |req: Request| {
            let f = f.clone();
            Box::pin(async move {
                let body: Req = serde_json::from_slice(&req.payload).map_err(|e| {
                    RpcError::new(
                        400,
                        "malformed_request",
                        format!("the request is not valid: {e}"),
                    )
                })?;
                f(body, req.meta).await
            })
        });
        self.ops.push((op.to_string(), handler));
        self
    }

    /// Like [`Service::op`], for handlers that share a state: `f(state, request, meta)`.
    pub fn with<S, Req, Resp, F, Fut>(self, state: &Arc<S>, op: &str, f: F) -> Service
    where
        S: Send + Sync + 'static,
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Arc<S>, Req, Meta) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RpcError>> + Send + 'static,
    {
        let state = state.clone();
        self.op(op, move |req, meta| f(state.clone(), req, meta))
    }

    /// Registers the micro service and serves every operation until `cancel`.
    pub async fn run(self, bus: &Bus, cancel: CancellationToken) -> anyhow::Result<()> {
        let names = bus.names();
        let service = bus
            .client
            .service_builder()
            .description(&self.description)
            .start(names.micro(&self.service), crate::VERSION)
            .await
            .map_err(|e| {
                anyhow::anyhow!("starting micro service {}: {e}", names.micro(&self.service))
            })?;
        let mut tasks = tokio::task::JoinSet::new();
        for (op, handler) in self.ops {
            let subject = names.rpc(&self.service, &op);
            let mut endpoint = service
                .endpoint_builder()
                .name(&op)
                .add(subject.clone())
                .await
                .map_err(|e| anyhow::anyhow!("adding endpoint {subject}: {e}"))?;
            let cancel = cancel.clone();
            tasks.spawn(async move {
                let limit = Arc::new(Semaphore::new(IN_FLIGHT));
                loop {
                    let request = tokio::select! {
                        _ = cancel.cancelled() => break,
                        r = endpoint.next() => match r { Some(r) => r, None => break },
                    };
                    let Ok(permit) = limit.clone().acquire_owned().await else {
                        break;
                    };
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        answer(request, handler).await;
                        drop(permit);
                    });
                }
                // Let requests in flight finish before the service goes away.
                let _ = limit.acquire_many(IN_FLIGHT as u32).await;
            });
        }
        tracing::info!(service = %names.micro(&self.service), "service registered");
        if let Some(ready) = self.ready {
            ready();
        }
        while tasks.join_next().await.is_some() {}
        let _ = service.stop().await;
        Ok(())
    }
}

async fn answer(request: async_nats::service::Request, handler: Handler) {
    let message = &request.message;
    let late = late_by(message.headers.as_ref(), std::time::SystemTime::now());
    let result = if let Some(late) = late {
        tracing::warn!(
            subject = %message.subject,
            late_by = ?late,
            "dropped a request that arrived after its caller stopped waiting (was nats-server \
             stalled?); nothing was done"
        );
        Err(RpcError::new(
            504,
            "timeout",
            "the request arrived after its caller stopped waiting; nothing was done".to_string(),
        ))
    } else if message.payload.len() > MAX_REQUEST {
        Err(RpcError::new(
            413,
            "payload_too_large",
            format!("requests are limited to {MAX_REQUEST} bytes"),
        ))
    } else {
        let meta = meta_from(message.headers.as_ref());
        handler(Request {
            payload: message.payload.clone(),
            meta,
        })
        .await
    };
    let sent = match result {
        Ok(body) => request.respond(Ok(body)).await,
        Err(e) => {
            let mut headers = HeaderMap::new();
            headers.insert(
                ERROR_HEADER,
                serde_json::to_string(&e).unwrap_or_default().as_str(),
            );
            let micro = async_nats::service::error::Error {
                status: e.message.clone(),
                code: e.status as usize,
            };
            request.respond_with_headers(Err(micro), headers).await
        }
    };
    if let Err(e) = sent {
        tracing::warn!("could not send an rpc reply: {e}");
    }
}

/// Why a call did not return a reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The service answered with a domain error.
    #[error(transparent)]
    Rejected(RpcError),
    #[error("no instance of {0} is running")]
    NoResponders(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("calling {subject}: {message}")]
    Transport { subject: String, message: String },
}

impl Bus {
    /// Calls `<service>.<op>` with `req` and decodes the reply.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        service: &str,
        op: &str,
        req: &Req,
        meta: &Meta,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let reply = self.call_raw(service, op, req, meta, timeout).await?;
        serde_json::from_slice(&reply).map_err(|e| CallError::Transport {
            subject: self.names().rpc(service, op),
            message: format!("unreadable reply: {e}"),
        })
    }

    /// [`Bus::call`] that returns the reply's JSON undecoded, for a caller that passes it on.
    pub async fn call_raw<Req: Serialize>(
        &self,
        service: &str,
        op: &str,
        req: &Req,
        meta: &Meta,
        timeout: Duration,
    ) -> Result<Bytes, CallError> {
        let subject = self.names().rpc(service, op);
        let payload = Bytes::from(serde_json::to_vec(req).expect("requests serialise"));
        let mut headers = meta_headers(meta);
        let start_by = if timeout > START_MARGIN * 2 {
            timeout - START_MARGIN
        } else {
            timeout
        };
        let deadline = crate::clock::unix_millis(std::time::SystemTime::now() + start_by);
        headers.insert(DEADLINE_HEADER, deadline.to_string().as_str());
        let request = async_nats::Request::new()
            .payload(payload)
            .headers(headers)
            .timeout(Some(timeout));
        let transport = |message: String| CallError::Transport {
            subject: subject.clone(),
            message,
        };
        let reply = match self.client.send_request(subject.clone(), request).await {
            Ok(reply) => reply,
            Err(e) => {
                use async_nats::RequestErrorKind as K;
                return Err(match e.kind() {
                    K::NoResponders => CallError::NoResponders(self.names().micro(service)),
                    K::TimedOut => CallError::Timeout(subject.clone()),
                    K::MaxPayloadExceeded | K::Other | K::InvalidSubject => {
                        transport(e.to_string())
                    }
                });
            }
        };
        if let Some(err) = reply.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
            let err: RpcError = serde_json::from_str(err.as_str())
                .map_err(|e| transport(format!("unreadable error reply: {e}")))?;
            return Err(CallError::Rejected(err));
        }
        Ok(reply.payload)
    }
}

/// How long after its deadline a request arrived, if it has one and arrived late.
fn late_by(headers: Option<&HeaderMap>, now: std::time::SystemTime) -> Option<Duration> {
    let deadline: u64 = headers?.get(DEADLINE_HEADER)?.as_str().parse().ok()?;
    let now = crate::clock::unix_millis(now);
    (now > deadline).then(|| Duration::from_millis(now - deadline))
}

pub fn meta_headers(meta: &Meta) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        (CORRELATION_HEADER, &meta.correlation_id),
        (CAUSATION_HEADER, &meta.causation_id),
        (ACTOR_HEADER, &meta.actor),
    ] {
        if let Some(v) = value {
            h.insert(name, v.as_str());
        }
    }
    h
}

pub fn meta_from(headers: Option<&HeaderMap>) -> Meta {
    let get = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    Meta {
        correlation_id: get(CORRELATION_HEADER),
        causation_id: get(CAUSATION_HEADER),
        actor: get(ACTOR_HEADER),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use std::path::PathBuf;

    #[test]
    fn a_store_that_refuses_writes_is_a_503_and_other_store_failures_a_500() {
        let refused = StoreError::Poisoned {
            path: PathBuf::from("/data/users.redb"),
            cause: "No space left on device (os error 28)".into(),
        };
        let e = RpcError::store("users store", &refused);
        assert_eq!((e.status, e.code.as_str()), (503, "store_unavailable"));
        assert!(e.message.contains("nothing was changed"), "{}", e.message);
        // The client learns neither the path nor the cause; the log has them.
        assert!(!e.message.contains("/data") && !e.message.contains("space"));
        let closed = StoreError::Closed {
            path: PathBuf::from("/data/users.redb"),
        };
        let e = RpcError::store("users store", &closed);
        assert_eq!((e.status, e.code.as_str()), (500, "internal"));
    }

    #[test]
    fn a_request_is_late_only_past_its_deadline() {
        let at = |ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let mut h = HeaderMap::new();
        assert_eq!(late_by(Some(&h), at(5_000)), None);
        assert_eq!(late_by(None, at(5_000)), None);
        h.insert(DEADLINE_HEADER, "4000");
        assert_eq!(late_by(Some(&h), at(4_000)), None);
        assert_eq!(late_by(Some(&h), at(3_000)), None);
        assert_eq!(
            late_by(Some(&h), at(6_500)),
            Some(Duration::from_millis(2_500))
        );
        h.insert(DEADLINE_HEADER, "not a number");
        assert_eq!(late_by(Some(&h), at(6_500)), None);
    }
}
