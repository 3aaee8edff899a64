//! The public BFF API keeps the reference gateway's shapes and statuses.

use crate::support::Souk;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn is_micros(v: &Value) -> bool {
    // Unix microseconds of a time after 2020 and before 2100.
    v.as_i64()
        .is_some_and(|t| (1_577_836_800_000_000..4_102_444_800_000_000).contains(&t))
}

#[tokio::test]
async fn users_and_listings_in_the_reference_shapes() {
    let souk = Souk::ready().await;
    let (status, body) = souk.post("/public/users", json!({"name": "Ann"})).await;
    assert_eq!(status, 200, "{body}");
    let user = &body["user"];
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(user["name"], "Ann");
    assert!(
        is_micros(&user["created_at"]) && is_micros(&user["updated_at"]),
        "{user}"
    );
    assert_eq!(
        user.as_object().unwrap().len(),
        4,
        "exactly id, name, created_at, updated_at: {user}"
    );

    let uid = user["id"].as_str().unwrap();
    let mut ids = Vec::new();
    for (kind, price) in [("sale", 100), ("rent", 250), ("sale", 999)] {
        let (status, body) = souk
            .post(
                "/public/listings",
                json!({"user_id": uid, "listing_type": kind, "price": price}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let l = &body["listing"];
        assert_eq!(
            (
                l["user_id"].as_str(),
                l["listing_type"].as_str(),
                l["price"].as_i64()
            ),
            (Some(uid), Some(kind), Some(price))
        );
        assert!(is_micros(&l["created_at"]), "{l}");
        assert_eq!(l.as_object().unwrap().len(), 6, "{l}");
        ids.push(l["id"].as_str().unwrap().to_string());
    }
    // The listing created here has a generated title in the full API.
    let (_, full) = souk
        .json(
            reqwest::Method::GET,
            &format!("/api/listings/{}", ids[0]),
            None,
        )
        .await;
    assert!(!full["title"].as_str().unwrap().is_empty());

    // Newest first, paged, with the user embedded: once the catalog holds all three listings
    // and their seller (two streams, so the seller's name may arrive after the listings).
    for id in &ids {
        let (status, _) = souk
            .json(
                reqwest::Method::GET,
                &format!("/api/catalog/{id}?min_version=1"),
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let (status, page) = souk
            .json(
                reqwest::Method::GET,
                "/public/listings?page_num=1&page_size=2",
                None,
            )
            .await;
        assert_eq!(status, 200);
        if page["listings"][0]["user"]["name"] == "Ann" || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(page["result"], true);
    let listings = page["listings"].as_array().unwrap();
    assert_eq!(listings[0]["id"], ids[2].as_str());
    assert_eq!(listings[1]["id"], ids[1].as_str());
    assert_eq!(listings[0]["user"]["name"], "Ann");
    assert!(is_micros(&listings[0]["user"]["created_at"]), "{page}");
    let (_, second) = souk
        .json(
            reqwest::Method::GET,
            "/public/listings?page_num=2&page_size=2",
            None,
        )
        .await;
    assert_eq!(second["listings"][0]["id"], ids[0].as_str());
    let (_, other) = souk
        .json(
            reqwest::Method::GET,
            "/public/listings?user_id=usr_nobody",
            None,
        )
        .await;
    assert_eq!(other["listings"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn errors_in_the_reference_shape() {
    let souk = Souk::ready().await;
    let failed = |status: u16, body: &Value| {
        assert_eq!(body["result"], false, "{body}");
        assert!(!body["error"].as_str().unwrap().is_empty(), "{body}");
        status
    };
    let (s, b) = souk.post("/public/users", json!({})).await;
    assert_eq!(failed(s, &b), 400);
    let (s, b) = souk.post("/public/users", json!({"name": "  "})).await;
    assert_eq!(failed(s, &b), 400);
    let (_, user) = souk.post("/public/users", json!({"name": "Bo"})).await;
    let uid = user["user"]["id"].as_str().unwrap();
    for bad in [
        json!({"user_id": uid, "listing_type": "swap", "price": 10}),
        json!({"user_id": uid, "listing_type": "sale", "price": 0}),
        json!({"user_id": uid, "listing_type": "sale", "price": "ten"}),
        json!({"listing_type": "sale", "price": 10}),
    ] {
        let (s, b) = souk.post("/public/listings", bad.clone()).await;
        assert_eq!(failed(s, &b), 400, "{bad}");
    }
    let (s, b) = souk
        .post(
            "/public/listings",
            json!({"user_id": "usr_nobody", "listing_type": "sale", "price": 10}),
        )
        .await;
    assert_eq!(failed(s, &b), 404);
    for q in [
        "page_num=0",
        "page_num=abc",
        "page_num=-1",
        "page_size=0",
        "page_size=1000",
    ] {
        let (s, b) = souk
            .json(reqwest::Method::GET, &format!("/public/listings?{q}"), None)
            .await;
        assert_eq!(failed(s, &b), 400, "{q}");
    }
    let r = souk
        .http()
        .post(format!("{}/public/users", souk.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["result"], false);

    // A body over `http_body_limit` (1 MiB): 413, in the same shape, and nothing is made.
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(1 << 20));
    for path in ["/public/users", "/public/listings"] {
        let r = souk
            .http()
            .post(format!("{}{path}", souk.url))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{path}");
        let (s, b) = (413, r.json::<Value>().await.unwrap());
        assert_eq!(failed(s, &b), 413, "{path}");
        assert!(
            b["error"].as_str().unwrap().contains("http_body_limit"),
            "{b}"
        );
    }
    let (_, listed) = souk
        .json(reqwest::Method::GET, "/public/listings?page_size=100", None)
        .await;
    assert_eq!(listed["listings"], json!([]), "{listed}");
}
