//! Durable consumers in-process, on a real nats-server: retries with backoff, dead letters and
//! their retry, and replays that change nothing.

use crate::support::TestNats;
use async_trait::async_trait;
use serde_json::json;
use souk::bus::consumer::{self, Delivery, Handler, HandlerError, Spec};
use souk::bus::{Bus, Envelope, Meta, deadletter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const T: Duration = Duration::from_secs(30);

async fn publish(bus: &Bus, e: &Envelope) -> u64 {
    let subject = bus.names().event(&e.kind);
    bus.jetstream
        .publish(subject, e.to_json().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

fn listing(id: &str, version: u64, title: &str, seller: &str) -> Envelope {
    let data = json!({
        "id": id, "seller_id": seller, "title": title, "description": "", "listing_type": "sale",
        "price": 100 * version, "currency": "USD", "quantity": 1, "status": "active",
        "created_at": "2026-11-21T10:00:00.000Z", "updated_at": "2026-11-21T10:00:00.000Z", "version": version
    });
    let kind = if version == 1 {
        "listing.created"
    } else {
        "listing.updated"
    };
    Envelope::new(kind, id, version, data, &Meta::default())
}

/// Fails every delivery of one aggregate until it is "fixed".
#[derive(Default)]
struct Flaky {
    broken: String,
    fixed: AtomicBool,
    applied: Mutex<Vec<String>>,
    failures: Mutex<Vec<Instant>>,
}

#[async_trait]
impl Handler for Flaky {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        batch
            .iter()
            .map(|d| {
                if d.envelope.aggregate_id == self.broken && !self.fixed.load(Ordering::SeqCst) {
                    self.failures.lock().unwrap().push(Instant::now());
                    Err(HandlerError::Retry("the disk is on fire".into()))
                } else {
                    self.applied
                        .lock()
                        .unwrap()
                        .push(d.envelope.aggregate_id.clone());
                    Ok(())
                }
            })
            .collect()
    }
}

/// Runs `handler` as the durable consumer `spec` on its own task until the token is cancelled.
fn spawn_consumer(
    bus: &Bus,
    spec: Spec,
    handler: Arc<dyn Handler>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    // What the consumer logs (a takeover, events handed back) shows in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_ansi(false)
        .with_env_filter("souk=info")
        .try_init();
    let cancel = CancellationToken::new();
    let run = tokio::spawn(consumer::run(
        bus.clone(),
        spec,
        handler,
        None,
        cancel.clone(),
    ));
    (cancel, run)
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failing_event_is_retried_with_backoff_dead_lettered_and_retried_once_fixed() {
    let nats = TestNats::start().await;
    let bus = nats.bus().await;
    let mut seqs = Vec::new();
    for i in 1..=5 {
        seqs.push(publish(&bus, &listing(&format!("lst_{i}"), 1, "x", "usr_1")).await);
    }
    let handler = Arc::new(Flaky {
        broken: "lst_3".into(),
        ..Default::default()
    });
    let mut spec = Spec::new(
        "test-flaky".into(),
        "SOUK_LISTINGS".into(),
        vec!["souk.events.listing.>".into()],
    );
    spec.max_deliver = 3;
    spec.backoff = vec![Duration::from_millis(200), Duration::from_millis(400)];
    let (cancel, run) = spawn_consumer(&bus, spec, handler.clone());

    until("the dead letter", async || {
        deadletter::list(&bus, None, 0, 10).await.unwrap().0.len() == 1
    })
    .await;
    let (letters, _) = deadletter::list(&bus, Some("test-flaky"), 0, 10)
        .await
        .unwrap();
    let letter = &letters[0];
    assert_eq!(letter.letter.attempts, 3);
    assert_eq!(letter.letter.stream_seq, seqs[2]);
    assert!(
        letter.letter.reason.contains("the disk is on fire"),
        "{letter:?}"
    );
    assert_eq!(letter.event["aggregate_id"], "lst_3");

    // Other events kept flowing; the failures were spaced by the backoff.
    let mut applied = handler.applied.lock().unwrap().clone();
    applied.sort();
    assert_eq!(applied, ["lst_1", "lst_2", "lst_4", "lst_5"]);
    let failures = handler.failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 3);
    assert!(
        failures[1] - failures[0] >= Duration::from_millis(180),
        "{:?}",
        failures[1] - failures[0]
    );
    assert!(
        failures[2] - failures[1] >= Duration::from_millis(380),
        "{:?}",
        failures[2] - failures[1]
    );

    // Retrying while still broken keeps the letter, and says why.
    let retry_cancel = CancellationToken::new();
    let service = deadletter::retry_service(
        &bus,
        vec![("test-flaky".into(), handler.clone() as Arc<dyn Handler>)],
    );
    let b = bus.clone();
    let rc = retry_cancel.clone();
    tokio::spawn(async move { service.run(&b, rc).await });
    let id: u64 = letter.id.parse().unwrap();
    let call = async |id: u64| {
        bus.call::<_, deadletter::RetryReply>(
            "deadletters",
            "retry-test-flaky",
            &json!({"id": id}),
            &Meta::default(),
            T,
        )
        .await
    };
    until("the retry service", async || {
        !matches!(
            call(id).await,
            Err(souk::bus::rpc::CallError::NoResponders(_))
        )
    })
    .await;
    match call(id).await {
        Err(souk::bus::rpc::CallError::Rejected(e)) => assert_eq!(e.code, "retry_failed"),
        other => panic!("expected retry_failed, got {other:?}"),
    }
    assert_eq!(
        deadletter::list(&bus, None, 0, 10).await.unwrap().0.len(),
        1
    );

    handler.fixed.store(true, Ordering::SeqCst);
    let reply = call(id).await.unwrap();
    assert!(reply.retried);
    assert_eq!(
        handler
            .applied
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == "lst_3")
            .count(),
        1
    );
    assert!(
        deadletter::list(&bus, None, 0, 10)
            .await
            .unwrap()
            .0
            .is_empty()
    );
    match call(id).await {
        Err(souk::bus::rpc::CallError::Rejected(e)) => assert_eq!(e.code, "not_found"),
        other => panic!("a second retry should find nothing, got {other:?}"),
    }
    cancel.cancel();
    retry_cancel.cancel();
    run.await.unwrap().unwrap();
}

fn dump(db: &souk::services::catalog::store::Db) -> Vec<String> {
    db.read(|c| {
        let mut out = Vec::new();
        for sql in [
            "SELECT id, seller_name, title, price, version, hidden FROM items ORDER BY id",
            "SELECT id, name, version, deleted FROM sellers ORDER BY id",
        ] {
            let mut stmt = c.prepare(sql).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let cell = |i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) => {
                            format!("{:?}", String::from_utf8_lossy(t))
                        }
                        other => format!("{other:?}"),
                    };
                    Ok((0..n).map(cell).collect::<Vec<_>>().join("|"))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        Ok(out)
    })
    .unwrap()
}

#[tokio::test]
async fn replaying_a_whole_stream_into_a_current_read_model_changes_nothing() {
    let nats = TestNats::start().await;
    let bus = nats.bus().await;
    let user = |id: &str, name: &str, version: u64, kind: &str| {
        Envelope::new(
            kind,
            id,
            version,
            json!({"id": id, "name": name, "version": version}),
            &Meta::default(),
        )
    };
    publish(&bus, &user("usr_a", "Ann", 1, "user.created")).await;
    for i in 0..30 {
        publish(&bus, &listing(&format!("lst_{i:02}"), 1, "chair", "usr_a")).await;
    }
    // Updates, one arriving out of order (v3 before v2), and a deletion.
    publish(&bus, &listing("lst_01", 3, "stool", "usr_a")).await;
    publish(&bus, &listing("lst_01", 2, "chair v2", "usr_a")).await;
    let mut deleted = listing("lst_02", 2, "chair", "usr_a");
    deleted.kind = "listing.deleted".into();
    publish(&bus, &deleted).await;
    publish(&bus, &user("usr_a", "Ann B.", 2, "user.updated")).await;

    let dir = tempfile::tempdir().unwrap();
    let db = souk::services::catalog::store::Db::open(dir.path()).unwrap();
    let (applied, _) = tokio::sync::watch::channel(0);
    let projector: Arc<dyn Handler> = Arc::new(souk::services::catalog::projector::Projector {
        db: db.clone(),
        applied,
    });
    let cancel = CancellationToken::new();
    let consume = |name: &str| {
        let specs = [
            ("SOUK_LISTINGS", "souk.events.listing.>"),
            ("SOUK_USERS", "souk.events.user.>"),
        ];
        for (stream, filter) in specs {
            let spec = Spec::new(
                format!("{name}-{stream}"),
                stream.into(),
                vec![filter.into()],
            );
            tokio::spawn(consumer::run(
                bus.clone(),
                spec,
                projector.clone(),
                None,
                cancel.clone(),
            ));
        }
    };
    let settled = async |db: &souk::services::catalog::store::Db| {
        let mut last = Vec::new();
        until("the projection to settle", async || {
            let now = dump(db);
            let stable = now == last && now.len() == 31;
            last = now;
            stable
        })
        .await;
        last
    };
    consume("first");
    let first = settled(&db).await;
    assert!(
        first
            .iter()
            .any(|r| r.contains("\"stool\"") && r.contains("\"Ann B.\"")),
        "{first:#?}"
    );
    assert!(
        first
            .iter()
            .any(|r| r.starts_with("\"lst_02\"") && r.ends_with("|Integer(1)")),
        "{first:#?}"
    );

    consume("replay");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = settled(&db).await;
    assert_eq!(first, second);
    cancel.cancel();
}

/// Counts how many batches are in the handler at once.
#[derive(Default)]
struct Slow {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Handler for Slow {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(batch.len(), Ordering::SeqCst);
        batch.iter().map(|_| Ok(())).collect()
    }
}

#[tokio::test]
async fn batches_run_concurrently_up_to_the_limit_and_a_stop_finishes_them() {
    let nats = TestNats::start().await;
    let bus = nats.bus().await;
    for i in 0..12 {
        publish(&bus, &listing(&format!("lst_c{i}"), 1, "x", "usr_1")).await;
    }
    let handler = Arc::new(Slow::default());
    let mut spec = Spec::new(
        "test-slow".into(),
        "SOUK_LISTINGS".into(),
        vec!["souk.events.listing.>".into()],
    );
    spec.batch = 1;
    spec.concurrency = 4;
    let (cancel, run) = spawn_consumer(&bus, spec, handler.clone());
    until("some batches", async || {
        handler.done.load(Ordering::SeqCst) >= 4
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    assert_eq!(
        handler.now.load(Ordering::SeqCst),
        0,
        "a stop waits for batches in flight"
    );
    let most = handler.most.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&most),
        "{most} batches ran at once; the limit is 4"
    );
}

/// Takes its time over each batch and notes what it applied.
#[derive(Default)]
struct Lagging {
    applied: Mutex<Vec<String>>,
}

#[async_trait]
impl Handler for Lagging {
    async fn handle(&self, batch: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut applied = self.applied.lock().unwrap();
        batch
            .iter()
            .map(|d| {
                applied.push(d.envelope.aggregate_id.clone());
                Ok(())
            })
            .collect()
    }
}

/// A graceful stop hands back the events delivered to the consumer but not handled yet, so the
/// next start applies them at once instead of after `ack_wait` (30 s here).
#[tokio::test]
async fn a_stopped_consumer_hands_back_what_it_had_not_handled() {
    let nats = TestNats::start().await;
    let bus = nats.bus().await;
    for i in 0..60 {
        publish(&bus, &listing(&format!("lst_{i}"), 1, "x", "usr_1")).await;
    }
    let mut spec = Spec::new(
        "test-slow".into(),
        "SOUK_LISTINGS".into(),
        vec!["souk.events.listing.>".into()],
    );
    spec.batch = 4;
    assert_eq!(spec.ack_wait, Duration::from_secs(30));
    let handler = Arc::new(Lagging::default());
    let (cancel, run) = spawn_consumer(&bus, spec.clone(), handler.clone());
    until("a first batch", async || {
        !handler.applied.lock().unwrap().is_empty()
    })
    .await;
    cancel.cancel();
    run.await.unwrap().unwrap();
    let before = handler.applied.lock().unwrap().len();
    assert!(
        before < 60,
        "the stop came before the end ({before} applied)"
    );

    let started = Instant::now();
    let (cancel, run) = spawn_consumer(&bus, spec, handler.clone());
    let deadline = started + Duration::from_secs(15);
    loop {
        let mut seen = handler.applied.lock().unwrap().clone();
        seen.sort();
        seen.dedup();
        if seen.len() == 60 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 60 applied {:?} after the restart: the rest waits for ack_wait",
            seen.len(),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    run.await.unwrap().unwrap();
}

/// The rebuild's check that a catch-up left nothing out: a direct get by wildcard subject
/// from a sequence, bounded by an end.
#[tokio::test]
async fn a_stream_is_asked_whether_matching_events_remain_in_a_range() {
    use souk::services::catalog::rebuild::has_matching;
    let nats = TestNats::start().await;
    let bus = nats.bus().await;
    let stream = bus.names().stream("listings");
    for subject in [
        "souk.events.listing.created",
        "souk.events.listing.updated",
        "souk.events.listing.created",
    ] {
        bus.jetstream
            .publish(subject, "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let any = "souk.events.listing.>";
    assert!(has_matching(&bus, &stream, any, 1, 3).await.unwrap());
    assert!(has_matching(&bus, &stream, any, 3, 3).await.unwrap());
    assert!(!has_matching(&bus, &stream, any, 4, 10).await.unwrap());
    let updated = "souk.events.listing.updated";
    assert!(has_matching(&bus, &stream, updated, 1, 2).await.unwrap());
    assert!(!has_matching(&bus, &stream, updated, 3, 3).await.unwrap());
    assert!(!has_matching(&bus, &stream, updated, 1, 1).await.unwrap());
}

/// Takes a batch and never finishes it: a Souk killed while handling.
struct Stall {
    got: AtomicBool,
}

#[async_trait]
impl Handler for Stall {
    async fn handle(&self, _: &[Delivery]) -> Vec<Result<(), HandlerError>> {
        self.got.store(true, Ordering::SeqCst);
        std::future::pending().await
    }
}

/// After a client dies holding deliveries (here: its task aborted mid-batch and its connection
/// closed), the next start gets them at once, not after `ack_wait`.
#[tokio::test]
async fn events_a_dead_client_held_come_back_at_once_not_after_ack_wait() {
    let nats = TestNats::start().await;
    let bus = nats.bus().await;
    for i in 1..=20 {
        publish(&bus, &listing(&format!("lst_{i}"), 1, "x", "usr_1")).await;
    }
    let mut spec = Spec::new(
        "test-takeover".into(),
        "SOUK_LISTINGS".into(),
        vec!["souk.events.listing.>".into()],
    );
    spec.ack_wait = Duration::from_secs(120);
    let stall = Arc::new(Stall {
        got: AtomicBool::new(false),
    });
    {
        let dying = nats.bus().await;
        let (_cancel, run) = spawn_consumer(&dying, spec.clone(), stall.clone());
        until("the stalled batch", async || {
            stall.got.load(Ordering::SeqCst)
        })
        .await;
        run.abort();
        let _ = run.await;
        dying.client.drain().await.unwrap();
    }
    let handler = Arc::new(Flaky::default());
    let started = Instant::now();
    let (cancel, run) = spawn_consumer(&bus, spec, handler.clone());
    until("every event", async || {
        handler.applied.lock().unwrap().len() == 20
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited {:?}: the held events came back only after ack_wait",
        started.elapsed()
    );
    cancel.cancel();
    run.await.unwrap().unwrap();
}
