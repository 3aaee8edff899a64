//! Realistic events and plain JetStream publishing, shared by the backbone scenarios.
//!
//! Events are the ones Souk's listings and users services emit: envelopes built with
//! `Envelope::new` around the services' own entity types, with titles and descriptions of a
//! marketplace's usual length (a listing.created envelope is ~640 B of JSON).
//!
//! [`publish_all`] is the "raw" yardstick: async-nats JetStream publishes with a wide ack window
//! (async-nats's default 5,000 acknowledgements in flight, with backpressure), the acks awaited
//! in order by a second task, so the publisher never waits for one.

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use souk::bus::{Envelope, Meta, Names};
use souk::services::listings::model::Listing;
use souk::services::users::model::User;
use std::time::{Duration, Instant};

const WORDS: &[&str] = &[
    "vintage", "oak", "desk", "bicycle", "lamp", "walnut", "ceramic", "kettle", "camera", "lens",
    "sofa", "linen", "brass", "mirror", "garden", "chair", "wool", "rug", "record", "player",
];

/// A few words from the list, different for each `n`.
fn words(n: u64, count: usize) -> String {
    let mut x = n
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..count)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0x9E3779B97F4A7C15);
            WORDS[(x % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `n`-th listing a seller puts up: the entity as the listings service stores it.
pub fn listing(n: u64, seller_id: &str) -> Listing {
    let now = souk::clock::now_rfc3339();
    Listing {
        id: souk::ids::new("lst"),
        seller_id: seller_id.to_string(),
        title: format!("{} #{n}", words(n, 4)),
        description: format!(
            "{}. Collection only, cash or card. {}.",
            words(n + 1, 24),
            words(n + 2, 12)
        ),
        listing_type: if n.is_multiple_of(5) { "rent" } else { "sale" }.into(),
        price: 500 + (n % 997) as i64 * 125,
        currency: "EUR".into(),
        quantity: 1 + (n % 3) as i64,
        status: "active".into(),
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    }
}

/// A `listing.created` envelope for `listing`, with a request's context as the gateway sets it.
pub fn listing_created(l: &Listing) -> Envelope {
    let meta = Meta {
        correlation_id: Some(souk::ids::new("req")),
        causation_id: None,
        actor: Some(l.seller_id.clone()),
    };
    Envelope::new("listing.created", &l.id, 1, l, &meta)
}

/// A `user.created` envelope for a new seller.
pub fn user_created(n: u64) -> Envelope {
    let now = souk::clock::now_rfc3339();
    let u = User {
        id: souk::ids::new("usr"),
        name: format!("Seller {n}"),
        email: Some(format!("seller{n}@example.com")),
        bio: words(n, 10),
        enabled: true,
        created_at: now.clone(),
        updated_at: now,
        version: 1,
    };
    Envelope::new("user.created", &u.id, 1, &u, &Meta::default())
}

/// `n` fresh `listing.created` envelopes from `sellers`, each with its subject.
pub fn listing_payloads(names: &Names, n: usize, sellers: &[String]) -> Vec<(String, Envelope)> {
    (0..n as u64)
        .map(|i| {
            let e = listing_created(&listing(i, &sellers[i as usize % sellers.len()]));
            (names.event(&e.kind), e)
        })
        .collect()
}

const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`publish_all`] measured.
pub struct Published {
    pub acked: u64,
    pub errors: u64,
    /// From the first publish to the last acknowledgement.
    pub elapsed: Duration,
}

impl Published {
    pub fn per_second(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64()
    }
}

/// Publishes every message and waits for all acknowledgements. Each carries `Nats-Msg-Id` = its
/// event id and, with `expected_stream`, `Nats-Expected-Stream`, as Souk's relay sends them.
/// The ack timeout is raised to [`ACK_TIMEOUT`]: with 5,000 in flight against `sync_interval:
/// always` the last ack of a window can take longer than async-nats's default 5 s.
pub async fn publish_all(
    js: &async_nats::jetstream::Context,
    messages: Vec<(String, Envelope)>,
    expected_stream: Option<&str>,
) -> Published {
    let mut js = js.clone();
    js.set_timeout(ACK_TIMEOUT);
    let prepared: Vec<(String, PublishMessage)> = messages
        .into_iter()
        .map(|(subject, e)| {
            let mut m = PublishMessage::build()
                .payload(Bytes::from(e.to_json()))
                .message_id(&e.id);
            if let Some(s) = expected_stream {
                m = m.expected_stream(s);
            }
            (subject, m)
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PublishAckFuture>();
    let acks = tokio::spawn(async move {
        let (mut acked, mut errors) = (0u64, 0u64);
        while let Some(ack) = rx.recv().await {
            match ack.await {
                Ok(_) => acked += 1,
                Err(e) => {
                    if errors == 0 {
                        eprintln!("  a publish was not acknowledged: {e}");
                    }
                    errors += 1
                }
            }
        }
        (acked, errors)
    });
    let started = Instant::now();
    let mut send_errors = 0;
    for (subject, m) in prepared {
        match js.send_publish(subject, m).await {
            Ok(ack) => {
                let _ = tx.send(ack);
            }
            Err(e) => {
                if send_errors == 0 {
                    eprintln!("  a publish failed: {e}");
                }
                send_errors += 1
            }
        }
    }
    drop(tx);
    let (acked, errors) = acks.await.unwrap_or((0, 0));
    Published {
        acked,
        errors: errors + send_errors,
        elapsed: started.elapsed(),
    }
}

/// Empties `stream` (between runs, so each run counts from zero).
pub async fn purge(js: &async_nats::jetstream::Context, stream: &str) -> anyhow::Result<()> {
    js.get_stream(stream).await?.purge().await?;
    Ok(())
}

/// How many messages `stream` holds now.
pub async fn stream_len(js: &async_nats::jetstream::Context, stream: &str) -> anyhow::Result<u64> {
    let mut s = js.get_stream(stream).await?;
    Ok(s.info().await?.state.messages)
}

/// Polls until `stream` holds `n` messages; returns when it saw that, or fails after `timeout`.
pub async fn wait_for_len(
    js: &async_nats::jetstream::Context,
    stream: &str,
    n: u64,
    timeout: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let len = stream_len(js, stream).await?;
        if len >= n {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{stream} holds {len} of {n} messages after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
