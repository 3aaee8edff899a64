//! The Listings section of API.md over real HTTP: every route and error code, the seller rule,
//! stock falling to 0, filters and paging, and that a refused request writes nothing.

use crate::support::api::{Api, bad_bodies, fields_set, id, ids, is_time, keys};
use reqwest::Method;
use serde_json::{Value, json};

const LISTING_FIELDS: &[&str] = &[
    "id",
    "seller_id",
    "title",
    "description",
    "listing_type",
    "price",
    "currency",
    "quantity",
    "status",
    "created_at",
    "updated_at",
    "version",
];

fn path(listing: &Value) -> String {
    format!("/api/listings/{}", id(listing))
}

fn kinds_of(events: &[Value], listing: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["aggregate_id"] == listing)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_answers_201_with_the_listing_its_defaults_and_etag_1() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let r = api
        .post(
            "/api/listings",
            json!({"seller_id": seller["id"], "title": "Road bike", "listing_type": "sale", "price": 1999}),
        )
        .await;
    let listing = r.entity(201).clone();
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(keys(&listing), fields_set(LISTING_FIELDS));
    assert!(id(&listing).starts_with("lst_") && id(&listing).len() == 30);
    assert_eq!(listing["seller_id"], seller["id"]);
    assert_eq!(listing["title"], "Road bike");
    assert_eq!(listing["description"], "");
    assert_eq!(listing["listing_type"], "sale");
    assert_eq!(listing["price"], 1999);
    assert_eq!(listing["currency"], "USD");
    assert_eq!(listing["quantity"], 1);
    assert_eq!(listing["status"], "active");
    assert_eq!(listing["version"], 1);
    assert!(is_time(&listing["created_at"]) && listing["created_at"] == listing["updated_at"]);

    let full = api
        .post(
            "/api/listings",
            json!({"seller_id": seller["id"], "title": "Flat", "listing_type": "rent", "price": 1,
                   "description": "Two rooms", "currency": "EUR", "quantity": 3}),
        )
        .await;
    let full = full.entity(201).clone();
    assert_eq!(
        (
            &full["listing_type"],
            &full["price"],
            &full["currency"],
            &full["quantity"],
            &full["description"]
        ),
        (
            &json!("rent"),
            &json!(1),
            &json!("EUR"),
            &json!(3),
            &json!("Two rooms")
        )
    );

    let got = api.get(&path(&listing)).await;
    assert_eq!(got.entity(200), &listing);
    api.get("/api/listings/lst_nothing")
        .await
        .problem(404, "not_found");

    let events = api.listing_events(&seller).await;
    assert_eq!(kinds_of(&events, id(&listing)), ["listing.created"]);
    let e = events
        .iter()
        .find(|e| e["aggregate_id"] == id(&listing))
        .unwrap();
    assert_eq!(e["data"], listing);
}

#[tokio::test]
async fn only_an_existing_enabled_seller_may_list() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let gone = api.user("Gone", None).await;
    let off = api.user("Off", None).await;
    let r = api
        .call(
            Method::POST,
            &format!("/api/users/{}/disable", id(&off)),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        api.delete(&format!("/api/users/{}", id(&gone)))
            .await
            .status,
        204
    );
    // The listings service checks sellers against its copy, kept from user events: a disable
    // holds there once the event has arrived (a few ms; see services/listings/sellers.rs).
    api.sellers_copy_heard("user.disabled", id(&off)).await;
    api.sellers_copy_heard("user.deleted", id(&gone)).await;
    let body = |seller: &Value| json!({"seller_id": seller["id"], "title": "Lamp", "listing_type": "sale", "price": 500});

    for who in [
        json!({"id": "usr_nobody"}),
        json!({"id": ""}),
        gone.clone(),
        off.clone(),
    ] {
        let r = api.post("/api/listings", body(&who)).await;
        r.problem(422, "unknown_seller");
        assert_eq!(r.fields(), fields_set(&["seller_id"]), "{r:?}");
    }
    assert_eq!(api.get("/api/listings").await.body["items"], json!([]));

    // Enabled again, they may.
    let r = api
        .call(
            Method::POST,
            &format!("/api/users/{}/enable", id(&off)),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let listing = api.post("/api/listings", body(&off)).await;
    listing.entity(201);

    let events = api.listing_events(&seller).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["aggregate_id"], listing.body["id"]);
}

#[tokio::test]
async fn a_seller_may_list_the_moment_they_are_created() {
    // Before the copy of sellers has heard of them the users service is asked, so a create
    // right after the seller's own never fails.
    let api = Api::start().await;
    for n in 0..10 {
        let seller = api.user(&format!("New {n}"), None).await;
        let r = api
            .post(
                "/api/listings",
                json!({"seller_id": seller["id"], "title": "Fresh", "listing_type": "sale", "price": 100}),
            )
            .await;
        assert_eq!(r.entity(201)["seller_id"], seller["id"]);
    }
}

#[tokio::test]
async fn a_seller_known_enabled_then_disabled_is_refused_and_enabled_again_may_list() {
    let api = Api::start().await;
    let seller = api.user("Known", None).await;
    api.sellers_copy_heard("user.created", id(&seller)).await;
    let body =
        json!({"seller_id": seller["id"], "title": "Chair", "listing_type": "sale", "price": 700});
    api.post("/api/listings", body.clone()).await.entity(201);

    let off = format!("/api/users/{}/disable", id(&seller));
    assert_eq!(api.call(Method::POST, &off, None).await.status, 200);
    api.sellers_copy_heard("user.disabled", id(&seller)).await;
    let r = api.post("/api/listings", body.clone()).await;
    r.problem(422, "unknown_seller");
    assert_eq!(r.fields(), fields_set(&["seller_id"]), "{r:?}");

    // Enabled again: the copy still says disabled until it hears, so the users service is
    // asked, and the create passes at once.
    let on = format!("/api/users/{}/enable", id(&seller));
    assert_eq!(api.call(Method::POST, &on, None).await.status, 200);
    api.post("/api/listings", body.clone()).await.entity(201);

    // Deleted: refused, from the copy once it has heard.
    assert_eq!(
        api.delete(&format!("/api/users/{}", id(&seller)))
            .await
            .status,
        204
    );
    api.sellers_copy_heard("user.deleted", id(&seller)).await;
    api.post("/api/listings", body)
        .await
        .problem(422, "unknown_seller");
}

#[tokio::test]
async fn invalid_fields_are_named_and_nothing_is_written() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let ok =
        json!({"seller_id": seller["id"], "title": "Desk", "listing_type": "sale", "price": 100});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, &[&str])> = vec![
        (with("price", json!(0)), &["price"]),
        (with("price", json!(-5)), &["price"]),
        (with("price", json!(i64::MIN)), &["price"]),
        (with("price", json!(i64::MAX)), &["price"]),
        (with("price", json!(1_000_000_000_001_i64)), &["price"]),
        (with("listing_type", json!("swap")), &["listing_type"]),
        (with("listing_type", json!("SALE")), &["listing_type"]),
        (with("listing_type", json!("")), &["listing_type"]),
        (with("quantity", json!(0)), &["quantity"]),
        (with("quantity", json!(-1)), &["quantity"]),
        (with("quantity", json!(i64::MAX)), &["quantity"]),
        (with("currency", json!("usd")), &["currency"]),
        (with("currency", json!("US")), &["currency"]),
        (with("currency", json!("EURO")), &["currency"]),
        (with("currency", json!("")), &["currency"]),
        (with("currency", json!("ABC")), &["currency"]),
        (with("currency", json!("XXX")), &["currency"]),
        (with("title", json!("")), &["title"]),
        (with("title", json!("   ")), &["title"]),
        (with("title", json!("t".repeat(201))), &["title"]),
        (
            with("description", json!("d".repeat(10_001))),
            &["description"],
        ),
        (without("title"), &["title"]),
        (without("price"), &["price"]),
        (without("listing_type"), &["listing_type"]),
        (without("seller_id"), &["seller_id"]),
        (
            with("price", json!(0)).merged("listing_type", json!("swap")),
            &["price", "listing_type"],
        ),
    ];
    for (body, fields) in &cases {
        let r = api.post("/api/listings", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {r:?}");
        r.invalid(fields);
    }
    // Bad fields are reported even for an unknown seller (no need to ask the users service).
    let mut unknown = with("price", json!(0));
    unknown["seller_id"] = json!("usr_nobody");
    api.post("/api/listings", unknown).await.invalid(&["price"]);

    assert_eq!(api.get("/api/listings").await.body["items"], json!([]));
    assert!(api.listing_events(&seller).await.is_empty());
}

trait Merged {
    fn merged(self, k: &str, v: Value) -> Value;
}

impl Merged for Value {
    fn merged(mut self, k: &str, v: Value) -> Value {
        self[k] = v;
        self
    }
}

#[tokio::test]
async fn list_filters_by_seller_and_status_newest_first_and_pages() {
    let api = Api::start().await;
    let ana = api.user("Ana", None).await;
    let ben = api.user("Ben", None).await;
    let mut all = Vec::new();
    for i in 0..9 {
        let seller = if i % 3 == 0 { &ben } else { &ana };
        all.push(
            api.listing(seller, json!({"title": format!("item {i}")}))
                .await,
        );
    }
    // Two of Ana's are sold and archived.
    let r = api.patch(&path(&all[1]), json!({"quantity": 0})).await;
    assert_eq!(r.body["status"], "sold");
    all[1] = r.body.clone();
    let r = api
        .patch(&path(&all[2]), json!({"status": "archived"}))
        .await;
    all[2] = r.body.clone();
    all.reverse();
    let of = |pred: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        all.iter().filter(|l| pred(l)).cloned().collect()
    };

    let list = api.get("/api/listings").await;
    assert_eq!(list.status, 200);
    assert_eq!(keys(&list.body), fields_set(&["items", "next_cursor"]));
    assert_eq!(list.body["items"], json!(all));
    assert_eq!(list.body["next_cursor"], Value::Null);

    let ana_id = id(&ana).to_string();
    let cases: Vec<(String, Vec<Value>)> = vec![
        (
            format!("seller_id={}", id(&ana)),
            of(&|l| l["seller_id"] == ana_id.as_str()),
        ),
        (
            format!("seller_id={}", id(&ben)),
            of(&|l| l["seller_id"] != ana_id.as_str()),
        ),
        ("status=active".into(), of(&|l| l["status"] == "active")),
        ("status=sold".into(), of(&|l| l["status"] == "sold")),
        ("status=archived".into(), of(&|l| l["status"] == "archived")),
        ("status=reserved".into(), vec![]),
        (
            format!("seller_id={}&status=active", id(&ana)),
            of(&|l| l["seller_id"] == ana_id.as_str() && l["status"] == "active"),
        ),
        (format!("seller_id={}&status=sold", id(&ben)), vec![]),
        ("seller_id=usr_nobody".into(), vec![]),
    ];
    for (query, want) in &cases {
        for limit in [1, 2, 50] {
            let got = api.walk(&format!("/api/listings?{query}"), limit).await;
            assert_eq!(ids(&got), ids(want), "{query} limit {limit}");
        }
    }

    for bad in ["status=gone", "status=ACTIVE", "status="] {
        api.get(&format!("/api/listings?{bad}"))
            .await
            .invalid(&["status"]);
    }
    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "limit=-3",
        "limit=99999999999999999999",
    ] {
        api.get(&format!("/api/listings?{bad}"))
            .await
            .invalid(&["limit"]);
    }
    api.get("/api/listings?cursor=nope")
        .await
        .problem(400, "invalid_cursor");
    api.get("/api/listings?sort=price").await.invalid(&["sort"]);
    api.get("/api/listings?seller=x").await.invalid(&["seller"]);
}

#[tokio::test]
async fn patch_changes_named_fields_and_zero_stock_means_sold() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let listing = api
        .listing(&seller, json!({"quantity": 2, "description": "old"}))
        .await;
    let p = path(&listing);

    let r = api
        .patch(&p, json!({"title": "New title", "price": 2500}))
        .await;
    let patched = r.entity(200).clone();
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(keys(&patched), fields_set(LISTING_FIELDS));
    assert_eq!(
        (patched["title"].as_str(), patched["price"].as_i64()),
        (Some("New title"), Some(2500))
    );
    assert_eq!(patched["description"], "old");
    assert_eq!(patched["quantity"], 2);
    assert_eq!(patched["created_at"], listing["created_at"]);

    let r = api
        .patch(&p, json!({"description": "", "quantity": 1}))
        .await;
    assert_eq!(r.entity(200)["description"], "");
    assert_eq!(r.body["status"], "active");
    let r = api.patch(&p, json!({"quantity": 0})).await;
    assert_eq!(r.entity(200)["status"], "sold");
    assert_eq!(r.body["quantity"], 0);
    assert_eq!(r.body["version"], 4);
    assert_eq!(api.get(&p).await.body, r.body);

    let r = api
        .patch(&p, json!({"status": "reserved", "quantity": 1}))
        .await;
    assert_eq!(r.entity(200)["status"], "reserved");

    // What may not change, and values out of range.
    let before = api.get(&p).await.body;
    for (body, field) in [
        (json!({"listing_type": "rent"}), "listing_type"),
        (json!({"seller_id": "usr_other"}), "seller_id"),
        (json!({"currency": "EUR"}), "currency"),
        (json!({"id": "lst_x"}), "id"),
        (json!({"version": 9}), "version"),
        (json!({"status": "gone"}), "status"),
        (json!({"price": 0}), "price"),
        (json!({"quantity": -1}), "quantity"),
        (json!({"title": " "}), "title"),
    ] {
        let r = api.patch(&p, body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {r:?}");
        r.invalid(&[field]);
    }
    assert_eq!(api.get(&p).await.body, before);
    api.patch("/api/listings/lst_nothing", json!({"title": "x"}))
        .await
        .problem(404, "not_found");

    let events = api.listing_events(&seller).await;
    assert_eq!(
        kinds_of(&events, id(&listing)),
        [
            "listing.created",
            "listing.updated",
            "listing.updated",
            "listing.updated",
            "listing.updated"
        ]
    );
}

#[tokio::test]
async fn if_match_guards_patch_and_delete_of_a_listing() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let listing = api.listing(&seller, json!({})).await;
    let p = path(&listing);
    let body = Some(json!({"price": 5}));

    for stale in ["\"2\"", "\"0\""] {
        api.if_match(Method::PATCH, &p, stale, body.clone())
            .await
            .problem(412, "precondition_failed");
        api.if_match(Method::DELETE, &p, stale, None)
            .await
            .problem(412, "precondition_failed");
    }
    for bad in ["two", "\"\"", "\"-2\""] {
        api.if_match(Method::PATCH, &p, bad, body.clone())
            .await
            .problem(400, "invalid_if_match");
    }
    assert_eq!(api.get(&p).await.body, listing);
    let r = api.if_match(Method::PATCH, &p, "\"1\"", body.clone()).await;
    assert_eq!(r.entity(200)["price"], 5);
    api.if_match(Method::DELETE, &p, "\"1\"", None)
        .await
        .problem(412, "precondition_failed");
    assert_eq!(
        api.if_match(Method::DELETE, &p, "\"2\"", None).await.status,
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_with_the_same_if_match_let_exactly_one_through() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let listing = api.listing(&seller, json!({"quantity": 100})).await;
    let p = path(&listing);
    let answers = futures::future::join_all((0..10).map(|i| {
        api.if_match(
            Method::PATCH,
            &p,
            "\"1\"",
            Some(json!({"quantity": 50 + i})),
        )
    }))
    .await;
    let ok: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    for r in answers.iter().filter(|r| r.status != 200) {
        r.problem(412, "precondition_failed");
    }
    assert_eq!(api.get(&p).await.body, ok[0].body);
    let events = api.listing_events(&seller).await;
    assert_eq!(
        kinds_of(&events, id(&listing)),
        ["listing.created", "listing.updated"]
    );
}

#[tokio::test]
async fn delete_answers_204_and_then_404() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let listing = api.listing(&seller, json!({})).await;
    let other = api.listing(&seller, json!({})).await;
    let p = path(&listing);

    let r = api.delete(&p).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.text.is_empty());
    api.get(&p).await.problem(404, "not_found");
    api.delete(&p).await.problem(404, "not_found");
    api.patch(&p, json!({"price": 2}))
        .await
        .problem(404, "not_found");
    let list = api
        .get(&format!("/api/listings?seller_id={}", id(&seller)))
        .await;
    assert_eq!(ids(list.body["items"].as_array().unwrap()), [id(&other)]);

    let events = api.listing_events(&seller).await;
    assert_eq!(
        kinds_of(&events, id(&listing)),
        ["listing.created", "listing.deleted"]
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_listing_create() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let body =
        json!({"seller_id": seller["id"], "title": "Once", "listing_type": "sale", "price": 10});
    let create = |key: &'static str, body: Value| {
        api.send(
            api.req(Method::POST, "/api/listings")
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let first = create("order-form-1", body.clone()).await;
    let listing = first.entity(201).clone();
    let again = create("order-form-1", body.clone()).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, listing);

    let mut other = body.clone();
    other["price"] = json!(11);
    create("order-form-1", other)
        .await
        .problem(422, "idempotency_key_reused");
    create("bad key", body.clone())
        .await
        .problem(400, "invalid_idempotency_key");

    let list = api.get("/api/listings").await;
    assert_eq!(ids(list.body["items"].as_array().unwrap()), [id(&listing)]);
    let events = api.listing_events(&seller).await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn bad_bodies_on_listings_write_routes_are_refused_and_write_nothing() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let listing = api.listing(&seller, json!({})).await;
    let wrong = [
        "\"ten\"",
        "true",
        "[1]",
        "{\"n\":1}",
        "1.5",
        "99999999999999999999",
        "-99999999999999999999",
        "null",
    ];
    let valid =
        json!({"seller_id": seller["id"], "title": "T", "listing_type": "sale", "price": 1});
    bad_bodies(&api, Method::POST, "/api/listings", valid, "price", &wrong).await;
    let wrong_patch = &wrong[..7];
    bad_bodies(
        &api,
        Method::PATCH,
        &path(&listing),
        json!({"quantity": 3}),
        "quantity",
        wrong_patch,
    )
    .await;
    bad_bodies(
        &api,
        Method::PATCH,
        &path(&listing),
        json!({"title": "x"}),
        "title",
        &["1", "[]", "false"],
    )
    .await;

    assert_eq!(api.get(&path(&listing)).await.body, listing);
    let list = api.get("/api/listings").await;
    assert_eq!(ids(list.body["items"].as_array().unwrap()), [id(&listing)]);
    let events = api.listing_events(&seller).await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn unicode_titles_round_trip() {
    let api = Api::start().await;
    let seller = api.user("سوق", None).await;
    for title in [
        "Café crème ☕",
        "דירה להשכרה",
        "Zoe\u{0308}'s 🚲 bike",
        "자전거",
        "👩‍🔧 repair kit",
    ] {
        let l = api
            .listing(&seller, json!({"title": title, "description": title}))
            .await;
        assert_eq!(l["title"], title);
        let got = api.get(&path(&l)).await;
        assert_eq!(
            (got.body["title"].as_str(), got.body["description"].as_str()),
            (Some(title), Some(title))
        );
    }
}

/// Creates racing their seller's deletion: each is refused (422 `unknown_seller`) or archived by
/// the deletion's reaction; none stays live. 16 clients keep creating from before the deletion
/// until each is refused, across the moment the deletion's event reaches the listings service.
/// (Without the check inside the create's transaction, a dozen stayed active in each round.)
#[tokio::test]
async fn creates_racing_a_sellers_deletion_leave_no_live_listing() {
    let api = Api::start().await;
    let api = &api;
    for round in 0..3 {
        let seller = api.user(&format!("Racer {round}"), None).await;
        let seller_id = id(&seller);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let client = |c: usize| async move {
            let mut answers = Vec::new();
            for i in 0.. {
                if std::time::Instant::now() > until {
                    break;
                }
                let body = json!({"seller_id": seller_id, "title": format!("r{c}-{i}"),
                    "listing_type": "sale", "price": 5});
                let r = api.post("/api/listings", body).await;
                let refused = r.status == 422;
                answers.push(r);
                if refused {
                    break;
                }
            }
            answers
        };
        let user = format!("/api/users/{}", id(&seller));
        let (answers, deleted) =
            tokio::join!(futures::future::join_all((0..16).map(client)), async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                api.delete(&user).await
            },);
        assert_eq!(deleted.status, 204, "{deleted:?}");
        let answers: Vec<_> = answers.into_iter().flatten().collect();
        for r in &answers {
            assert!(
                r.status == 201 || r.body["code"] == "unknown_seller",
                "{r:?}"
            );
        }
        assert!(
            answers.iter().any(|r| r.status == 201),
            "none was made before the deletion"
        );
        assert_eq!(
            answers.iter().filter(|r| r.status == 422).count(),
            16,
            "every client is refused in the end"
        );
        api.sellers_copy_heard("user.deleted", id(&seller)).await;
        let live =
            |status: &str| format!("/api/listings?seller_id={}&status={status}", id(&seller));
        api.until(&live("active"), |r| {
            r.body["items"].as_array().is_some_and(Vec::is_empty)
        })
        .await;
        let r = api.get(&live("reserved")).await;
        assert_eq!(r.body["items"], json!([]), "round {round}: {r:?}");
    }
}
