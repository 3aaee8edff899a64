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
