//! Corners of the contract: If-Match `*`, object-only bodies, PUT's required email, blank `q`,
//! dead-letter ids that name no letter.

use crate::support::Souk;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn if_match_star_accepts_any_version() {
    let souk = Souk::ready().await;
    let (_, user) = souk.post("/api/users", json!({"name": "Star"})).await;
    let r = souk
        .http()
        .patch(format!(
            "{}/api/users/{}",
            souk.url,
            user["id"].as_str().unwrap()
        ))
        .header("if-match", "*")
        .json(&json!({"name": "Star 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["etag"], "\"2\"");
}

#[tokio::test]
async fn a_json_array_is_not_an_object() {
    let souk = Souk::ready().await;
    let (status, body) = souk
        .json(
            Method::POST,
            "/api/users",
            Some(json!(["Arr", null, "bio"])),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "validation_failed");
    let (_, list) = souk.json(Method::GET, "/api/users", None).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn put_requires_email_and_takes_null() {
    let souk = Souk::ready().await;
    let (_, user) = souk
        .post(
            "/api/users",
            json!({"name": "Pat", "email": "pat@example.org"}),
        )
        .await;
    let path = format!("/api/users/{}", user["id"].as_str().unwrap());
    let (status, body) = souk
        .json(Method::PUT, &path, Some(json!({"name": "Pat"})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "email", "{body}");
    let (_, still) = souk.json(Method::GET, &path, None).await;
    assert_eq!(still["email"], "pat@example.org");
    let (status, body) = souk
        .json(
            Method::PUT,
            &path,
            Some(json!({"name": "Pat", "email": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["email"].is_null());
}

#[tokio::test]
async fn a_blank_q_is_no_text_filter() {
    let souk = Souk::ready().await;
    let (_, seller) = souk.post("/api/users", json!({"name": "Quinn"})).await;
    let (_, l) = souk
        .post(
            "/api/listings",
            json!({"seller_id": seller["id"], "title": "Lamp", "listing_type": "sale", "price": 5}),
        )
        .await;
    let (status, _) = souk
        .json(
            Method::GET,
            &format!("/api/catalog/{}?min_version=1", l["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    for q in ["", "%20%20"] {
        let (status, found) = souk
            .json(Method::GET, &format!("/api/catalog?q={q}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(found["total"], 1, "q={q:?}: {found}");
    }
    let (status, body) = souk
        .json(Method::GET, "/api/catalog?q=%20&sort=relevance", None)
        .await;
    assert_eq!(status, 422, "{body}");
}

/// Any id that names no dead letter is 404 `not_found`: past the stream's end, 0, not a number.
/// (Ids past the end and 0 used to answer 500.)
#[tokio::test]
async fn dead_letter_ids_that_name_no_letter_are_404() {
    let souk = Souk::ready().await;
    for id in ["1", "99", "0", "-1", "abc", "18446744073709551616"] {
        let path = format!("/api/admin/dead-letters/{id}");
        let (status, body) = souk.json(Method::DELETE, &path, None).await;
        assert_eq!(
            (status, &body["code"]),
            (404, &json!("not_found")),
            "DELETE {id}: {body}"
        );
        let (status, body) = souk
            .json(Method::POST, &format!("{path}/retry"), None)
            .await;
        assert_eq!(
            (status, &body["code"]),
            (404, &json!("not_found")),
            "retry {id}: {body}"
        );
    }
}

/// PATCH fields may be left out, but only `email` may be set to null: `{"name": null}` used to
/// answer 200 and change nothing. Now 422 naming the field, and nothing is written.
#[tokio::test]
async fn patch_null_on_a_required_field_is_422() {
    let souk = Souk::ready().await;
    let (_, user) = souk.post("/api/users", json!({"name": "Nully"})).await;
    let uid = user["id"].as_str().unwrap();
    let (_, listing) = souk
        .post(
            "/api/listings",
            json!({"seller_id": uid, "title": "Lamp", "listing_type": "sale", "price": 10}),
        )
        .await;
    let lid = listing["id"].as_str().unwrap();
    for (path, field) in [
        (format!("/api/users/{uid}"), "name"),
        (format!("/api/users/{uid}"), "bio"),
        (format!("/api/listings/{lid}"), "title"),
        (format!("/api/listings/{lid}"), "price"),
        (format!("/api/listings/{lid}"), "status"),
    ] {
        let (status, body) = souk
            .json(Method::PATCH, &path, Some(json!({ field: null })))
            .await;
        assert_eq!(
            (status, &body["code"]),
            (422, &json!("validation_failed")),
            "{field}: {body}"
        );
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        let (_, now) = souk.json(Method::GET, &path, None).await;
        assert_eq!(now["version"], 1, "{field}: nothing is written");
    }
    // email: null still removes the email.
    let (status, body) = souk
        .json(
            Method::PATCH,
            &format!("/api/users/{uid}"),
            Some(json!({"email": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// `GET /api/events` pages through every stream the filter touches, merged by time: each
/// stored message exactly once even when times are out of order within a stream, a message that
/// is not an event envelope shown (marked `unreadable`) instead of as `null`, and an `after_seq`
/// at the end of the range is an empty page (it used to wrap round to the start).
#[tokio::test]
async fn events_pages_hold_every_message_once() {
    let souk = Souk::ready().await;
    let js = async_nats::jetstream::new(souk.nats().await);
    let event = |kind: &str, id: &str, at: &str| {
        json!({"id": format!("evt_{id}"), "type": kind, "aggregate": kind.split('.').next(),
            "aggregate_id": id, "version": 1, "occurred_at": at, "data": {}})
        .to_string()
    };
    let mut sent = Vec::new();
    for (subject, payload) in [
        (
            "souk.events.user.created",
            event("user.created", "u1", "2026-01-01T00:00:03Z"),
        ),
        (
            "souk.events.user.created",
            event("user.created", "u2", "2026-01-01T00:00:01Z"),
        ),
        (
            "souk.events.listing.created",
            event("listing.created", "l1", "2026-01-01T00:00:02Z"),
        ),
        ("souk.events.user.created", "not json at all".to_string()),
        (
            "souk.events.listing.created",
            event("listing.created", "l2", "2026-01-01T00:00:00Z"),
        ),
        (
            "souk.events.user.created",
            event("user.created", "u3", "2026-01-01T00:00:05Z"),
        ),
        (
            "souk.events.listing.created",
            event("listing.created", "l3", "2026-01-01T00:00:04Z"),
        ),
    ] {
        let ack = js
            .publish(subject, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
        sent.push((ack.stream, ack.sequence));
    }
    let unreadable = sent[3].clone();
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/api/events?limit=2&cursor={c}"),
            None => "/api/events?limit=2".to_string(),
        };
        let (status, page) = souk.json(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().unwrap() {
            assert!(item.is_object(), "{page}");
            seen.push((
                item["stream"].as_str().unwrap().to_string(),
                item["seq"].as_u64().unwrap(),
            ));
            if item["seq"] == unreadable.1 && item["stream"] == unreadable.0.as_str() {
                assert_eq!(item["unreadable"], "not json at all", "{item}");
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut want: Vec<(String, u64)> = sent.clone();
    want.sort();
    // (Souk's own events, e.g. the test token's in SOUK_AUTH, are on the pages too.)
    let mut got: Vec<_> = seen
        .iter()
        .filter(|(st, _)| st != "SOUK_AUTH")
        .cloned()
        .collect();
    got.sort();
    assert_eq!(got, want, "pages: {seen:?}");

    let (status, page) = souk
        .json(
            Method::GET,
            &format!("/api/events?after_seq={}", u64::MAX),
            None,
        )
        .await;
    assert_eq!((status, &page["items"]), (200, &json!([])), "{page}");
}

/// Control characters: none in one-line fields (a user's name, a listing's title), only line
/// breaks and tabs in text (bio, description). Refused with 422 naming the field.
#[tokio::test]
async fn control_characters_are_refused_where_they_do_not_belong() {
    let souk = Souk::ready().await;
    for (body, field) in [
        (json!({"name": "Nul\u{0}name"}), "name"),
        (json!({"name": "Esc\u{1b}[31mred"}), "name"),
        (json!({"name": "Ok", "bio": "bell\u{7}"}), "bio"),
    ] {
        let (status, r) = souk.post("/api/users", body.clone()).await;
        assert_eq!(
            (status, &r["errors"][0]["field"]),
            (422, &json!(field)),
            "{body}: {r}"
        );
    }
    let (status, user) = souk
        .post(
            "/api/users",
            json!({"name": "Tab Ok", "bio": "line one\nline\ttwo\r\n"}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let (status, r) = souk
        .post(
            "/api/listings",
            json!({"seller_id": user["id"], "title": "Lamp\u{0}", "listing_type": "sale", "price": 5}),
        )
        .await;
    assert_eq!(
        (status, &r["errors"][0]["field"]),
        (422, &json!("title")),
        "{r}"
    );
}

/// The overview's store sizes count a SQLite store's write-ahead log: between checkpoints it
/// holds the recent writes (the catalog file alone said 4 KiB with 34 MB in its log).
#[tokio::test]
async fn the_overview_counts_a_sqlite_stores_log() {
    let souk = Souk::ready().await;
    let (_, user) = souk.post("/api/users", json!({"name": "Sized"})).await;
    let (_, listing) = souk
        .post(
            "/api/listings",
            json!({"seller_id": user["id"], "title": "Lamp", "listing_type": "sale", "price": 5}),
        )
        .await;
    let (status, _) = souk
        .json(
            Method::GET,
            &format!(
                "/api/catalog/{}?min_version=1",
                listing["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, overview) = souk.json(Method::GET, "/api/admin/overview", None).await;
    let catalog = overview["stores"]
        .as_array()
        .unwrap_or_else(|| panic!("{overview}"))
        .iter()
        .find(|s| s["file"] == "catalog.sqlite")
        .unwrap_or_else(|| panic!("{overview}"))
        .clone();
    let (bytes, wal) = (
        catalog["bytes"].as_u64().unwrap(),
        catalog["wal_bytes"].as_u64().unwrap(),
    );
    let on_disk = std::fs::metadata(souk.data_dir.join("catalog.sqlite"))
        .unwrap()
        .len();
    assert!(wal > 0, "{catalog}");
    assert_eq!(bytes, on_disk + wal, "{catalog}");
}
