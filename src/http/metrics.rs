//! `GET /metrics` (Prometheus text, to loopback callers or with a token) and the
//! middleware that counts and times every request by its route.
//!
//! Besides what the recorder counts, each scrape reads what an operator alerts on, fresh:
//! readiness and its checks, dead letters by consumer, and every stream's and consumer's state
//! (a consumer's lag is `pending + ack_pending`). JetStream is given [`JETSTREAM_WAIT`]; when it
//! does not answer, `souk_jetstream_up` is 0 and those series are left out rather than stale.

use super::AppState;
use super::admin::{ConsumerState, StreamState};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// How long a scrape waits for JetStream's figures.
const JETSTREAM_WAIT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Who may read it is the guard's business (`auth::access`): loopback, or any signed-in caller.
async fn render(State(s): State<AppState>) -> Response {
    let mut text = crate::telemetry::metrics().render();
    operations(&s, &mut text).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// Appends readiness, dead letters, streams and consumers as gauges.
async fn operations(s: &AppState, out: &mut String) {
    let (ready, checks) = s.health.report();
    gauge(
        out,
        "souk_ready",
        "1 when every readiness check passes (GET /readyz answers 200), else 0.",
        [(vec![], u64::from(ready))],
    );
    gauge(
        out,
        "souk_check_ok",
        "Each readiness check: 1 passing, 0 failing (its detail is in GET /readyz).",
        checks
            .iter()
            .map(|(name, c)| (vec![("check", name.as_str())], u64::from(c.ok))),
    );
    let figures = match s.bus() {
        Ok(bus) => tokio::time::timeout(JETSTREAM_WAIT, async {
            let streams = super::admin::stream_states(bus).await?;
            // JetStream answered; a missing dead-letter stream is no dead letters (as in the
            // overview), not JetStream down.
            let dead = crate::bus::deadletter::counts(bus)
                .await
                .unwrap_or_default();
            anyhow::Ok((streams, dead))
        })
        .await
        .ok()
        .and_then(Result::ok),
        Err(_) => None,
    };
    gauge(
        out,
        "souk_jetstream_up",
        "1 when JetStream answered this scrape; 0 leaves the stream, consumer and dead-letter \
         series out.",
        [(vec![], u64::from(figures.is_some()))],
    );
    let Some((streams, dead)) = figures else {
        return;
    };
    gauge(
        out,
        "souk_dead_letters",
        "Events in the dead-letter stream, by the consumer that gave up on them.",
        dead.iter()
            .map(|(c, n)| (vec![("consumer", c.as_str())], *n)),
    );
    for (name, help, get) in STREAM_GAUGES {
        let series = streams
            .iter()
            .map(|s| (vec![("stream", s.name.as_str())], get(s)));
        gauge(out, name, help, series);
    }
    for (name, help, get) in CONSUMER_GAUGES {
        let series = streams.iter().flat_map(|s| {
            s.consumers.iter().map(move |c| {
                let labels = vec![("stream", s.name.as_str()), ("consumer", c.name.as_str())];
                (labels, get(c))
            })
        });
        gauge(out, name, help, series);
    }
}

type Gauge<T> = (&'static str, &'static str, fn(&T) -> u64);

const STREAM_GAUGES: [Gauge<StreamState>; 3] = [
    (
        "souk_stream_messages",
        "Messages held by the stream.",
        |s| s.messages,
    ),
    ("souk_stream_bytes", "Bytes held by the stream.", |s| {
        s.bytes
    }),
    (
        "souk_stream_last_sequence",
        "The stream's last sequence.",
        |s| s.last_seq,
    ),
];

const CONSUMER_GAUGES: [Gauge<ConsumerState>; 4] = [
    (
        "souk_consumer_lag",
        "Events the consumer still owes: not delivered yet plus delivered and unacknowledged.",
        ConsumerState::lag,
    ),
    (
        "souk_consumer_pending",
        "Events not delivered to the consumer yet.",
        |c| c.pending,
    ),
    (
        "souk_consumer_ack_pending",
        "Events delivered to the consumer and not acknowledged yet.",
        |c| c.ack_pending,
    ),
    (
        "souk_consumer_redelivered",
        "Events delivered to the consumer more than once and not acknowledged yet.",
        |c| c.redelivered,
    ),
];

/// One gauge family in Prometheus' text format.
fn gauge<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, value) in series {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts and times requests as `souk_http_requests_total` and
/// `souk_http_request_duration_seconds`, labelled by method, matched route and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("souk_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("souk_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_prometheus_text_with_escaped_labels() {
        let mut out = String::new();
        gauge(
            &mut out,
            "souk_x",
            "An x.",
            [(vec![("c", "a\"b\\c\nd")], 3)],
        );
        gauge(&mut out, "souk_y", "A y.", [(vec![], 0)]);
        assert_eq!(
            out,
            "# HELP souk_x An x.\n# TYPE souk_x gauge\nsouk_x{c=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP souk_y A y.\n# TYPE souk_y gauge\nsouk_y 0\n"
        );
    }
}
