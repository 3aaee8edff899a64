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
