//! `GET /metrics`: Prometheus text about requests, outboxes, consumers and the broker.

use crate::support::Souk;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn metrics_count_requests_outbox_and_consumers() {
    let souk = Souk::ready().await;
    let (status, _) = souk.post("/api/users", json!({"name": "Metered"})).await;
    assert_eq!(status, 201);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = souk.get("/metrics").await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = r.text().await.unwrap();
        let ready = text.contains(
            r#"souk_http_requests_total{method="POST",route="/api/users",status="201"} 1"#,
        ) && text.contains(r#"souk_outbox_published_total{service="users"} 1"#)
            && text.contains(
                r#"souk_consumer_events_total{consumer="catalog-users",outcome="applied"} 1"#,
            )
            && text.contains("souk_http_request_duration_seconds_bucket");
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the write:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/metrics` is open to loopback callers. Behind a trusted reverse proxy on the same host every
/// peer is loopback, so the caller is the client the proxy names in `X-Forwarded-For`: a remote
/// one needs a token. (It used to get the metrics without one.) Without `http_trust_proxy` the
/// header is anyone's to send and is ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_only_a_forwarded_loopback_client_needs_no_token() {
    let status = |souk: &Souk, forwarded: Option<&str>, token: bool| {
        let client = if token { souk.http() } else { souk.anonymous() };
        let mut req = client.get(format!("{}/metrics", souk.url));
        if let Some(ip) = forwarded {
            req = req.header("x-forwarded-for", ip);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let proxied = Souk::builder().env("SOUK_HTTP_TRUST_PROXY", "true").start();
    proxied.wait_ready(Duration::from_secs(30)).await;
    assert_eq!(status(&proxied, Some("203.0.113.9"), false).await, 401);
    assert_eq!(
        status(&proxied, Some("127.0.0.1, 203.0.113.9"), false).await,
        401,
        "the proxy's own (rightmost) entry counts"
    );
    assert_eq!(status(&proxied, Some("203.0.113.9"), true).await, 200);
    assert_eq!(status(&proxied, Some("127.0.0.1"), false).await, 200);
    assert_eq!(status(&proxied, None, false).await, 200, "the proxy's host");
    drop(proxied);

    let direct = Souk::ready().await;
    assert_eq!(status(&direct, Some("203.0.113.9"), false).await, 200);
}

/// The series an operator alerts on, read fresh at each scrape: readiness, dead letters by
/// consumer, streams and consumers' lag. A frozen nats-server (SIGSTOP) makes the scrape say
/// so (`souk_jetstream_up 0`, not ready) within a few seconds instead of hanging or showing
/// stale figures.
#[tokio::test]
async fn metrics_show_readiness_dead_letters_and_consumer_lag() {
    use nix::sys::signal::{Signal, kill};
    let souk = Souk::ready().await;
    let scrape = async || {
        let r = souk.get("/metrics").await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let text = scrape().await;
    for line in [
        "souk_ready 1",
        "souk_jetstream_up 1",
        r#"souk_check_ok{check="broker"} 1"#,
        r#"souk_stream_messages{stream="SOUK_LISTINGS"} 0"#,
        r#"souk_consumer_lag{stream="SOUK_LISTINGS",consumer="catalog-listings"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("souk_dead_letters{"), "{text}");

    souk.jetstream_publish("souk.events.listing.created", "this is not an event")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape().await;
        let lines: Vec<&str> = text.lines().collect();
        if lines.contains(&r#"souk_dead_letters{consumer="catalog-listings"} 1"#)
            && lines.contains(&r#"souk_stream_messages{stream="SOUK_LISTINGS"} 1"#)
            && lines.contains(&r#"souk_stream_messages{stream="SOUK_DLQ"} 1"#)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead letter never showed:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pid = nix::unistd::Pid::from_raw(souk.nats_pid().unwrap() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    let started = Instant::now();
    let mut text = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        text = scrape().await;
        if text.lines().any(|l| l == "souk_jetstream_up 0") {
            break;
        }
    }
    let took = started.elapsed();
    kill(pid, Signal::SIGCONT).unwrap();
    assert!(
        text.lines().any(|l| l == "souk_jetstream_up 0") && !text.contains("souk_consumer_lag{"),
        "a frozen nats-server was not reported within {took:?}:\n{text}"
    );
    assert!(took < Duration::from_secs(8), "a scrape took {took:?}");
}
