//! `latency`: publish-to-handler latency through a durable JetStream consumer
//! (`souk::bus::consumer::run`, Souk's consumer runner with its acks and batching), at a paced
//! [`RATE`] events/s for `--duration`, beside the same through a plain core NATS subscription.
//!
//! The publisher notes each event's send instant in a side map keyed by event id just before
//! it publishes (as the outbox relay does: JetStream publish with `Nats-Msg-Id`, acks awaited
//! elsewhere); the handler looks it up when the event reaches it. Both ends are in this process,
//! on one clock. The baseline handler decodes the envelope too, as the consumer runner does.

use crate::Ctx;
use crate::events;
use crate::natsd::{Natsd, Sync};
use crate::report::{Check, Section, median, ms, percentile, spread, table};
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures::StreamExt;
use souk::bus::consumer::{self, Delivery, Handler, HandlerError, Spec};
use souk::bus::{Bus, Envelope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Events per second, evenly paced.
const RATE: u64 = 1_000;
const STREAM: &str = "SOUK_LISTINGS";
const CORE_SUBJECT: &str = "bench.latency.core";
/// After the last publish, how long stragglers may take before the run fails.
const DRAIN: Duration = Duration::from_secs(30);

/// Send instants by event id, and the latencies seen (µs).
#[derive(Default)]
struct Clock {
    sent: Mutex<HashMap<String, Instant>>,
    seen_us: Mutex<Vec<u32>>,
}

impl Clock {
    fn arrived(&self, id: &str, at: Instant) {
        if let Some(sent) = self.sent.lock().unwrap().remove(id) {
            let us = at.duration_since(sent).as_micros().min(u32::MAX as u128) as u32;
            self.seen_us.lock().unwrap().push(us);
        }
    }

    fn count(&self) -> usize {
        self.seen_us.lock().unwrap().len()
    }

    /// p50, p90, p99, max.
    fn figures(&self) -> [Duration; 4] {
        let mut v = self.seen_us.lock().unwrap().clone();
        v.sort_unstable();
        [0.50, 0.90, 0.99, 1.0].map(|q| percentile(&v, q))
    }
}

struct Recorder(Arc<Clock>);

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        let now = Instant::now();
        for d in batch {
            self.0.arrived(&d.envelope.id, now);
        }
        vec![Ok(()); batch.len()]
    }
}

pub fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    let runs = ctx.opts.runs_or(3);
    let duration = ctx.opts.duration;
    let n = (RATE * duration.as_secs()) as usize;
    let natsd = Natsd::start(Sync::souk_default())?;
    let bus = ctx.rt.block_on(natsd.bus())?;
    let sellers = vec![souk::ids::new("usr")];
    let (mut durable, mut core) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let events = events::listing_payloads(&bus.names, n, &sellers);
        durable.push(ctx.rt.block_on(through_consumer(&bus, events, i))?);
        let events = events::listing_payloads(&bus.names, n, &sellers);
        core.push(ctx.rt.block_on(through_core(&bus, events))?);
        eprintln!(
            "  run {}/{runs}: durable consumer p50 {}, p99 {}; core subscription p50 {}, p99 {}",
            i + 1,
            ms(durable[i][0]),
            ms(durable[i][2]),
            ms(core[i][0]),
            ms(core[i][2])
        );
    }
    drop(natsd);

    let row = |name: &str, f: &[[Duration; 4]]| {
        let mut r = vec![name.to_string()];
        for k in 0..4 {
            r.push(spread(&f.iter().map(|x| x[k]).collect::<Vec<_>>(), ms));
        }
        r
    };
    let ratio = |k: usize| {
        let r: Vec<f64> = durable
            .iter()
            .zip(&core)
            .map(|(d, c)| d[k].as_secs_f64() / c[k].as_secs_f64().max(1e-6))
            .collect();
        spread(&r, |v| format!("{v:.1}"))
    };
    let rows = vec![
        row("durable consumer (`bus::consumer::run`)", &durable),
        row("baseline: core NATS subscription", &core),
        vec![
            "**durable / core**".into(),
            ratio(0),
            ratio(1),
            ratio(2),
            ratio(3),
        ],
    ];
    let body = format!(
        "{n} `listing.created` events paced at {RATE}/s ({} s) per path per run, {runs} runs \
         alternating the paths; median (min–max) over runs. Durable: JetStream publish to \
         SOUK_LISTINGS (file store, Souk's `sync_interval`), a pull consumer run by \
         `souk::bus::consumer::run` (explicit acks, batches of up to 256), a handler that only \
         notes the arrival time. Baseline: core publish and subscribe on one subject, the \
         handler decoding the envelope. Latency from just before the publish call to the \
         handler.\n\n{}",
        duration.as_secs(),
        table(&["path", "p50", "p90", "p99", "max"], &rows)
    );
    let p50 = median(&durable.iter().map(|f| f[0]).collect::<Vec<_>>());
    let p99 = median(&durable.iter().map(|f| f[2]).collect::<Vec<_>>());
    Ok(Section {
        name: "latency",
        title: "Publish-to-handler latency through a durable consumer".into(),
        body,
        checks: vec![
            Check {
                what: "durable consumer latency p50 at 1,000 events/s".into(),
                target: "< 2 ms".into(),
                measured: ms(p50),
                met: p50 < Duration::from_millis(2),
            },
            Check {
                what: "durable consumer latency p99 at 1,000 events/s".into(),
                target: "< 10 ms".into(),
                measured: ms(p99),
                met: p99 < Duration::from_millis(10),
            },
        ],
    })
}

async fn through_consumer(
    bus: &Bus,
    events: Vec<(String, Envelope)>,
    run: usize,
) -> anyhow::Result<[Duration; 4]> {
    events::purge(&bus.jetstream, STREAM).await?;
    let clock = Arc::new(Clock::default());
    let cancel = CancellationToken::new();
    let spec = Spec::new(
        format!("bench-latency-{run}"),
        STREAM.into(),
        vec!["souk.events.listing.>".into()],
    );
    let handler = Arc::new(Recorder(clock.clone()));
    let runner = tokio::spawn(consumer::run(
        bus.clone(),
        spec,
        handler,
        None,
        cancel.clone(),
    ));
    // Let the consumer be created and its first pull be waiting before the clock starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let n = events.len();
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let acker = tokio::spawn(async move {
        let mut failed = 0u64;
        while let Some(ack) = acks.recv().await {
            let ack: async_nats::jetstream::context::PublishAckFuture = ack;
            failed += u64::from(ack.await.is_err());
        }
        failed
    });
    paced(events, |subject, e| {
        let message = PublishMessage::build()
            .payload(Bytes::from(e.to_json()))
            .message_id(&e.id)
            .expected_stream(STREAM);
        let (js, clock, acks_tx) = (bus.jetstream.clone(), clock.clone(), acks_tx.clone());
        async move {
            clock
                .sent
                .lock()
                .unwrap()
                .insert(e.id.clone(), Instant::now());
            if let Ok(ack) = js.send_publish(subject, message).await {
                let _ = acks_tx.send(ack);
            }
        }
    })
    .await;
    drop(acks_tx);
    let failed = acker.await?;
    wait_for(&clock, n).await?;
    cancel.cancel();
    runner.await??;
    let _ = bus
        .jetstream
        .get_stream(STREAM)
        .await?
        .delete_consumer(&format!("bench-latency-{run}"))
        .await;
    anyhow::ensure!(failed == 0, "{failed} publishes were not acknowledged");
    Ok(clock.figures())
}

async fn through_core(bus: &Bus, events: Vec<(String, Envelope)>) -> anyhow::Result<[Duration; 4]> {
    let clock = Arc::new(Clock::default());
    let mut sub = bus.client.subscribe(CORE_SUBJECT).await?;
    bus.client.flush().await?;
    let n = events.len();
    let receiver = tokio::spawn({
        let clock = clock.clone();
        async move {
            for _ in 0..n {
                let Some(m) = sub.next().await else { break };
                let now = Instant::now();
                if let Ok(e) = Envelope::decode(&m.payload) {
                    clock.arrived(&e.id, now);
                }
            }
        }
    });
    paced(events, |_, e| {
        let (client, clock) = (bus.client.clone(), clock.clone());
        async move {
            let payload = Bytes::from(e.to_json());
            clock
                .sent
                .lock()
                .unwrap()
                .insert(e.id.clone(), Instant::now());
            let _ = client.publish(CORE_SUBJECT, payload).await;
        }
    })
    .await;
    wait_for(&clock, n).await?;
    receiver.abort();
    Ok(clock.figures())
}

/// Sends one event per tick of a [`RATE`] Hz timer, catching up after a late tick.
async fn paced<F, Fut>(events: Vec<(String, Envelope)>, mut send: F)
where
    F: FnMut(String, Envelope) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for (subject, e) in events {
        tick.tick().await;
        send(subject, e).await;
    }
}

async fn wait_for(clock: &Clock, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN;
    while clock.count() < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} events arrived within {DRAIN:?} of the last publish",
            clock.count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}
