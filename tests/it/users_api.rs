//! The Users section of API.md over real HTTP: every route, every error code, and that a refused
//! request writes nothing and emits no event. Also the conventions every route shares (bad
//! bodies, unknown routes and methods, `X-Request-Id`, which `Api::send` checks on every answer).

use crate::support::api::{Api, bad_bodies, fields_set, id, ids, is_time, keys};
use reqwest::Method;
use serde_json::{Value, json};

const USER_FIELDS: &[&str] = &[
    "id",
    "name",
    "email",
    "bio",
    "enabled",
    "created_at",
    "updated_at",
    "version",
];

fn path(user: &Value) -> String {
    format!("/api/users/{}", id(user))
}

/// The events of `kinds` about `user`, in order.
fn kinds_of(events: &[Value], user: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["aggregate_id"] == user)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_answers_201_with_the_user_and_etag_1_and_get_returns_it() {
    let api = Api::start().await;
    let r = api
        .post(
            "/api/users",
            json!({"name": "Ada Lovelace", "email": "ada@example.org", "bio": "Analyst"}),
        )
        .await;
    let user = r.entity(201).clone();
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(keys(&user), fields_set(USER_FIELDS));
    assert!(
        id(&user).starts_with("usr_") && id(&user).len() == 30,
        "{user}"
    );
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["email"], "ada@example.org");
    assert_eq!(user["bio"], "Analyst");
    assert_eq!(user["enabled"], true);
    assert_eq!(user["version"], 1);
    assert!(is_time(&user["created_at"]), "{user}");
    assert_eq!(user["created_at"], user["updated_at"]);

    let got = api.get(&path(&user)).await;
    assert_eq!(got.entity(200), &user);
    assert_eq!(got.header("etag"), Some("\"1\""));

    // Email and bio are optional: null and empty.
    let plain = api.post("/api/users", json!({"name": "Plain"})).await;
    assert_eq!(plain.entity(201)["email"], Value::Null);
    assert_eq!(plain.body["bio"], "");
    // JSON is JSON whatever the media type's case, parameters or `+json` suffix.
    for ct in [
        "Application/JSON; charset=UTF-8",
        "application/merge-patch+json",
    ] {
        let r = api
            .send(
                api.req(Method::PATCH, &path(&plain.body))
                    .header("content-type", ct)
                    .body(r#"{"bio": "set"}"#),
            )
            .await;
        assert_eq!(r.status, 200, "{ct}: {r:?}");
    }

    // The event carries the user as created.
    let events = api.user_events().await;
    let created: Vec<_> = events
        .iter()
        .filter(|e| e["aggregate_id"] == id(&user))
        .collect();
    assert_eq!(created.len(), 1, "{events:?}");
    assert_eq!(created[0]["type"], "user.created");
    assert_eq!(created[0]["data"], user);
}

#[tokio::test]
async fn list_is_newest_first_and_q_matches_name_or_email_prefix_in_any_case() {
    let api = Api::start().await;
    let ada = api.user("Ada Lovelace", Some("ada@example.org")).await;
    let adam = api.user("adam smith", None).await;
    let grace = api.user("Grace Hopper", Some("ADMIRAL@navy.example")).await;
    let bob = api.user("Bob", Some("bob@example.org")).await;

    let all = api.get("/api/users").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), Some("application/json"));
    assert_eq!(keys(&all.body), fields_set(&["items", "next_cursor"]));
    assert_eq!(all.body["next_cursor"], Value::Null);
    let items = all.body["items"].as_array().unwrap();
    assert_eq!(
        ids(items),
        ids(&[bob.clone(), grace.clone(), adam.clone(), ada.clone()])
    );
    assert_eq!(items[0], bob);

    for (q, expected) in [
        ("ad", vec![&grace, &adam, &ada]),
        ("AD", vec![&grace, &adam, &ada]),
        ("Ada", vec![&adam, &ada]),
        ("admiral@", vec![&grace]),
        ("ada%40example", vec![&ada]),
        ("%20bob%20", vec![&bob]),
        ("lovelace", vec![]),
        ("example.org", vec![]),
        ("zz", vec![]),
    ] {
        let r = api.get(&format!("/api/users?q={q}")).await;
        assert_eq!(r.status, 200, "{q}: {r:?}");
        let expected: Vec<Value> = expected.into_iter().cloned().collect();
        assert_eq!(
            ids(r.body["items"].as_array().unwrap()),
            ids(&expected),
            "q={q}"
        );
    }
}

#[tokio::test]
async fn limit_and_cursor_page_through_every_user_once() {
    let api = Api::start().await;
    let mut created = Vec::new();
    for i in 0..55 {
        let email = format!("p{i}@example.org");
        let name = if i % 2 == 0 { "Even" } else { "Odd" };
        created.push(api.user(&format!("{name} {i}"), Some(&email)).await);
    }
    created.reverse();

    // The default page is 50.
    let first = api.get("/api/users").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 50);
    assert!(first.body["next_cursor"].is_string());

    for limit in [1, 7, 50, 200] {
        assert_eq!(
            ids(&api.walk("/api/users", limit).await),
            ids(&created),
            "{limit}"
        );
    }
    // Paging keeps the filter.
    let evens: Vec<Value> = created
        .iter()
        .filter(|u| u["name"].as_str().unwrap().starts_with("Even"))
        .cloned()
        .collect();
    assert_eq!(ids(&api.walk("/api/users?q=even", 4).await), ids(&evens));

    for bad in [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "limit=99999999999999999999",
        "limit=1&limit=2",
    ] {
        api.get(&format!("/api/users?{bad}"))
            .await
            .invalid(&["limit"]);
    }
    for bad in ["garbage", "", "eyJub3QiOiJhIGN1cnNvciJ9", "%00%01"] {
        let r = api.get(&format!("/api/users?cursor={bad}")).await;
        r.problem(400, "invalid_cursor");
    }
    for unknown in ["page=2", "sort=name", "Q=ada"] {
        let field = unknown.split('=').next().unwrap();
        api.get(&format!("/api/users?{unknown}"))
            .await
            .invalid(&[field]);
    }
}

#[tokio::test]
async fn put_replaces_the_user_and_patch_changes_only_what_it_names() {
    let api = Api::start().await;
    let user = api.user("Lin", Some("lin@example.org")).await;
    let p = path(&user);

    let put = api
        .put(
            &p,
            json!({"name": "Lin Wei", "email": "wei@example.org", "bio": "Potter"}),
        )
        .await;
    let put = put.entity(200).clone();
    assert_eq!(keys(&put), fields_set(USER_FIELDS));
    assert_eq!(
        (put["name"].as_str(), put["email"].as_str()),
        (Some("Lin Wei"), Some("wei@example.org"))
    );
    assert_eq!(put["bio"], "Potter");
    assert_eq!(put["version"], 2);
    assert_eq!(put["created_at"], user["created_at"]);
    assert!(put["updated_at"].as_str() >= user["updated_at"].as_str());

    // PUT replaces: a bio left out is cleared.
    let put = api
        .put(&p, json!({"name": "Lin Wei", "email": "wei@example.org"}))
        .await;
    assert_eq!(put.entity(200)["bio"], "");
    assert_eq!(put.header("etag"), Some("\"3\""));

    // PATCH keeps what it does not name.
    let r = api.patch(&p, json!({"bio": "Ceramics"})).await;
    let patched = r.entity(200);
    assert_eq!(patched["name"], "Lin Wei");
    assert_eq!(patched["email"], "wei@example.org");
    assert_eq!(patched["bio"], "Ceramics");
    assert_eq!(patched["version"], 4);
    let r = api.patch(&p, json!({"name": "  Lin  "})).await;
    assert_eq!(r.entity(200)["name"], "Lin", "names are trimmed");
    assert_eq!(r.body["bio"], "Ceramics");

    // `email: null` removes the email, which another user may then take.
    let r = api.patch(&p, json!({"email": null})).await;
    assert_eq!(r.entity(200)["email"], Value::Null);
    assert_eq!(r.body["name"], "Lin");
    assert_eq!(r.body["version"], 6);
    api.user("Other", Some("wei@example.org")).await;

    // An empty PATCH changes nothing and costs no version.
    let r = api.patch(&p, json!({})).await;
    assert_eq!(r.entity(200)["version"], 6);
    assert_eq!(api.get(&p).await.body, r.body);

    let events = api.user_events().await;
    assert_eq!(
        kinds_of(&events, id(&user)),
        [
            "user.created",
            "user.updated",
            "user.updated",
            "user.updated",
            "user.updated",
            "user.updated"
        ]
    );
    assert_eq!(
        events
            .iter()
            .rev()
            .find(|e| e["aggregate_id"] == id(&user))
            .unwrap()["data"],
        r.body
    );
}

#[tokio::test]
async fn disable_and_enable_answer_409_when_it_is_already_so() {
    let api = Api::start().await;
    let user = api.user("Noor", None).await;
    let p = path(&user);

    let r = api.call(Method::POST, &format!("{p}/disable"), None).await;
    assert_eq!(r.entity(200)["enabled"], false);
    assert_eq!(r.body["version"], 2);
    assert_eq!(api.get(&p).await.body["enabled"], false);
    api.call(Method::POST, &format!("{p}/disable"), None)
        .await
        .problem(409, "already_disabled");

    let r = api.call(Method::POST, &format!("{p}/enable"), None).await;
    assert_eq!(r.entity(200)["enabled"], true);
    assert_eq!(r.body["version"], 3);
    api.call(Method::POST, &format!("{p}/enable"), None)
        .await
        .problem(409, "already_enabled");

    for op in ["disable", "enable"] {
        api.call(Method::POST, &format!("/api/users/usr_nobody/{op}"), None)
            .await
            .problem(404, "not_found");
    }
    let events = api.user_events().await;
    assert_eq!(
        kinds_of(&events, id(&user)),
        ["user.created", "user.disabled", "user.enabled"]
    );
}

#[tokio::test]
async fn delete_answers_204_and_then_the_user_is_gone_everywhere() {
    let api = Api::start().await;
    let user = api.user("Temp", Some("temp@example.org")).await;
    let keep = api.user("Keep", None).await;
    let p = path(&user);

    let r = api.delete(&p).await;
    assert_eq!(r.status, 204, "{r:?}");
    assert!(r.text.is_empty(), "{r:?}");

    let gone = api.get(&p).await;
    assert!(gone.problem(404, "not_found")["detail"].is_string());
    api.delete(&p).await.problem(404, "not_found");
    api.patch(&p, json!({"name": "X"}))
        .await
        .problem(404, "not_found");
    api.put(&p, json!({"name": "X", "email": null}))
        .await
        .problem(404, "not_found");
    api.call(Method::POST, &format!("{p}/disable"), None)
        .await
        .problem(404, "not_found");
    let list = api.get("/api/users").await;
    assert_eq!(ids(list.body["items"].as_array().unwrap()), [id(&keep)]);
    // Its email is free again.
    api.user("New Temp", Some("TEMP@example.org")).await;

    let events = api.user_events().await;
    assert_eq!(
        kinds_of(&events, id(&user)),
        ["user.created", "user.deleted"]
    );
}

#[tokio::test]
async fn an_email_belongs_to_one_user_whatever_its_case() {
    let api = Api::start().await;
    let ada = api.user("Ada", Some("Ada@Example.org")).await;
    let bob = api.user("Bob", Some("bob@example.org")).await;
    let before = api.get("/api/users").await.body;

    for email in ["ada@example.org", "ADA@EXAMPLE.ORG", " ada@example.org "] {
        let r = api
            .post("/api/users", json!({"name": "Copy", "email": email}))
            .await;
        r.problem(409, "email_taken");
        assert_eq!(r.fields(), fields_set(&["email"]), "{r:?}");
    }
    let r = api
        .patch(&path(&bob), json!({"email": "aDa@example.ORG"}))
        .await;
    r.problem(409, "email_taken");
    assert_eq!(r.fields(), fields_set(&["email"]));
    api.put(
        &path(&bob),
        json!({"name": "Bob", "email": "ada@example.org"}),
    )
    .await
    .problem(409, "email_taken");

    // Nothing was written.
    assert_eq!(api.get("/api/users").await.body, before);
    assert_eq!(api.get(&path(&bob)).await.body["email"], "bob@example.org");
    let events = api.user_events().await;
    assert_eq!(events.len(), 2, "{events:?}");

    // A user may change the case of their own email.
    let r = api
        .patch(&path(&ada), json!({"email": "ada@example.org"}))
        .await;
    assert_eq!(r.entity(200)["email"], "ada@example.org");
}

#[tokio::test]
async fn invalid_fields_are_named_and_nothing_is_written() {
    let api = Api::start().await;
    let user = api.user("Valid", Some("valid@example.org")).await;
    let before = api.get("/api/users").await.body;
    let long_name = "n".repeat(201);
    let long_bio = "b".repeat(2001);

    let cases: Vec<(Value, &[&str])> = vec![
        (json!({"name": ""}), &["name"]),
        (json!({"name": "   "}), &["name"]),
        (json!({"name": long_name}), &["name"]),
        (json!({"name": "A", "bio": long_bio}), &["bio"]),
        (json!({"name": "A", "email": "nope"}), &["email"]),
        (json!({"name": "A", "email": "a@b"}), &["email"]),
        (json!({"name": "A", "email": "@example.org"}), &["email"]),
        (json!({"name": "A", "email": "a b@example.org"}), &["email"]),
        (json!({"name": "A", "email": "a@b@example.org"}), &["email"]),
        (json!({"name": "", "email": "nope"}), &["name", "email"]),
        (json!({}), &["name"]),
        (json!({"email": "x@example.org"}), &["name"]),
    ];
    for (body, fields) in &cases {
        let r = api.post("/api/users", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {r:?}");
        r.invalid(fields);
    }
    // The same rules on PUT and PATCH.
    for (body, fields) in cases.iter().take(10) {
        let mut put = body.clone();
        put["email"] = put.get("email").cloned().unwrap_or(Value::Null);
        api.put(&path(&user), put).await.invalid(fields);
        api.patch(&path(&user), body.clone()).await.invalid(fields);
    }
    api.put(&path(&user), json!({"email": "v@example.org"}))
        .await
        .invalid(&["name"]);

    assert_eq!(api.get("/api/users").await.body, before);
    let events = api.user_events().await;
    assert_eq!(kinds_of(&events, id(&user)), ["user.created"]);
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn if_match_guards_every_write_on_a_user() {
    let api = Api::start().await;
    let user = api.user("Ines", None).await;
    let p = path(&user);
    let patch = Some(json!({"bio": "x"}));
    let put = Some(json!({"name": "Ines", "email": null, "bio": "y"}));

    // Stale: 412, nothing changes.
    for (method, route, body) in [
        (Method::PATCH, p.clone(), patch.clone()),
        (Method::PUT, p.clone(), put.clone()),
        (Method::DELETE, p.clone(), None),
        (Method::POST, format!("{p}/disable"), None),
    ] {
        for stale in ["\"0\"", "\"2\"", "\"18446744073709551615\""] {
            let r = api
                .if_match(method.clone(), &route, stale, body.clone())
                .await;
            r.problem(412, "precondition_failed");
        }
    }
    assert_eq!(api.get(&p).await.body, user);

    // The right version goes through, and the ETag moves on.
    let r = api
        .if_match(Method::PATCH, &p, "\"1\"", patch.clone())
        .await;
    assert_eq!(r.entity(200)["version"], 2);
    api.if_match(Method::PATCH, &p, "\"1\"", patch.clone())
        .await
        .problem(412, "precondition_failed");
    let r = api.if_match(Method::PUT, &p, "\"2\"", put.clone()).await;
    assert_eq!(r.header("etag"), Some("\"3\""));
    let r = api
        .if_match(Method::POST, &format!("{p}/disable"), "\"3\"", None)
        .await;
    assert_eq!(r.entity(200)["enabled"], false);
    api.if_match(Method::POST, &format!("{p}/enable"), "\"3\"", None)
        .await
        .problem(412, "precondition_failed");
    let r = api
        .if_match(Method::POST, &format!("{p}/enable"), "\"4\"", None)
        .await;
    assert_eq!(r.entity(200)["version"], 5);

    // Not an ETag: 400.
    for bad in [
        "abc",
        "\"x\"",
        "\"-1\"",
        "\"1.0\"",
        "\"99999999999999999999\"",
        "",
    ] {
        let r = api.if_match(Method::PATCH, &p, bad, patch.clone()).await;
        r.problem(400, "invalid_if_match");
        let r = api.if_match(Method::DELETE, &p, bad, None).await;
        r.problem(400, "invalid_if_match");
    }

    api.if_match(Method::DELETE, &p, "\"4\"", None)
        .await
        .problem(412, "precondition_failed");
    let r = api.if_match(Method::DELETE, &p, "\"5\"", None).await;
    assert_eq!(r.status, 204, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_with_the_same_if_match_let_exactly_one_through() {
    let api = Api::start().await;
    let user = api.user("Race", None).await;
    let p = path(&user);
    let answers = futures::future::join_all((0..10).map(|i| {
        api.if_match(
            Method::PATCH,
            &p,
            "\"1\"",
            Some(json!({"bio": format!("writer {i}")})),
        )
    }))
    .await;
    let ok: Vec<_> = answers.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 1, "{answers:?}");
    for r in answers.iter().filter(|r| r.status != 200) {
        r.problem(412, "precondition_failed");
    }
    let now = api.get(&p).await;
    assert_eq!(now.body["version"], 2);
    assert_eq!(now.body, ok[0].body);
    let events = api.user_events().await;
    assert_eq!(
        kinds_of(&events, id(&user)),
        ["user.created", "user.updated"]
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_create_and_emits_one_event() {
    let api = Api::start().await;
    let body = json!({"name": "Once", "email": "once@example.org"});
    let create = |key: &'static str, body: Value| {
        api.send(
            api.req(Method::POST, "/api/users")
                .header("idempotency-key", key)
                .json(&body),
        )
    };

    let first = create("key-1", body.clone()).await;
    let user = first.entity(201).clone();
    for _ in 0..3 {
        let again = create("key-1", body.clone()).await;
        assert_eq!(again.status, 201, "{again:?}");
        assert_eq!(again.body, user);
        assert_eq!(again.header("etag"), Some("\"1\""));
    }
    // Same key, another body.
    let r = create(
        "key-1",
        json!({"name": "Twice", "email": "twice@example.org"}),
    )
    .await;
    r.problem(422, "idempotency_key_reused");
    let r = create("key-1", json!({"name": "Once"})).await;
    r.problem(422, "idempotency_key_reused");
    // Another key is another create (and here the email is taken).
    create("key-2", body.clone())
        .await
        .problem(409, "email_taken");

    for bad in ["", "with space", "tab\there", &"k".repeat(256)] {
        let r = api
            .send(
                api.req(Method::POST, "/api/users")
                    .header("idempotency-key", bad)
                    .json(&body),
            )
            .await;
        r.problem(400, "invalid_idempotency_key");
    }
    let r = api
        .send(
            api.req(Method::POST, "/api/users")
                .header(
                    "idempotency-key",
                    reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
                )
                .json(&json!({"name": "Latin-1"})),
        )
        .await;
    r.problem(400, "invalid_idempotency_key");
    // 255 visible characters are a fine key.
    let long = "k".repeat(255);
    let r = api
        .send(
            api.req(Method::POST, "/api/users")
                .header("idempotency-key", long)
                .json(&json!({"name": "Long"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");

    let list = api.get("/api/users").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2, "{list:?}");
    let events = api.user_events().await;
    let created: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "user.created")
        .collect();
    assert_eq!(created.len(), 2, "{events:?}");
    assert_eq!(kinds_of(&events, id(&user)), ["user.created"]);
}

/// API.md: "a repeat with the same key and body returns the first response", a refusal too; and
/// a key is the caller's own, so another caller's request never gets (or reads) its answer.
#[tokio::test]
async fn an_idempotency_key_replays_a_refusal_and_belongs_to_its_caller() {
    let api = Api::start().await;
    let holder = api.user("Holder", Some("taken@example.org")).await;
    let body = json!({"name": "Late", "email": "taken@example.org"});
    let create = |http: reqwest::Client, key: &'static str| {
        api.send(
            http.post(api.url("/api/users"))
                .header("idempotency-key", key)
                .json(&body),
        )
    };
    let admin = api.souk.http();
    create(admin.clone(), "k-1")
        .await
        .problem(409, "email_taken");
    // The email is freed: the repeat still gets the first answer.
    api.patch(&path(&holder), json!({"email": "moved@example.org"}))
        .await
        .entity(200);
    let again = create(admin.clone(), "k-1").await;
    again.problem(409, "email_taken");
    assert_eq!(again.fields(), fields_set(&["email"]));

    // Another caller's request under the same key is a create of its own.
    let r = api
        .send(
            admin
                .post(api.url("/api/admin/tokens"))
                .json(&json!({"name": "second script", "role": "editor"})),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let editor = api.souk.http_as(r.body["token"].as_str().unwrap());
    let made = create(editor.clone(), "k-1").await.entity(201).clone();
    assert_eq!(made["email"], "taken@example.org");
    assert_eq!(create(editor, "k-1").await.entity(201), &made);
    create(admin.clone(), "k-1")
        .await
        .problem(409, "email_taken");
    // A new key is a new request: the email is the editor's user's now.
    create(admin, "k-2").await.problem(409, "email_taken");
    let events = api.user_events().await;
    assert_eq!(kinds_of(&events, id(&made)), ["user.created"]);
}

/// `idempotency_retention`: a key is remembered for that long, then forgotten, so a repeat
/// after it is a new create (and the key may carry another body).
#[tokio::test]
async fn an_idempotency_key_is_forgotten_after_the_retention() {
    let souk = crate::support::Souk::builder()
        .env("SOUK_IDEMPOTENCY_RETENTION", "3s")
        .start();
    souk.wait_ready(std::time::Duration::from_secs(30)).await;
    let http = souk.http();
    let api = Api { souk, http };
    let create = |body: Value| {
        api.send(
            api.req(Method::POST, "/api/users")
                .header("idempotency-key", "daily-import")
                .json(&body),
        )
    };
    let body = json!({"name": "Kept a while"});
    let started = std::time::Instant::now();
    let first = create(body.clone()).await.entity(201).clone();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(create(body.clone()).await.entity(201), &first);
    create(json!({"name": "Other"}))
        .await
        .problem(422, "idempotency_key_reused");

    // Once forgotten, the same request is a create of its own.
    let second = loop {
        let r = create(body.clone()).await;
        let user = r.entity(201).clone();
        if user["id"] != first["id"] {
            break user;
        }
        assert!(
            started.elapsed() < crate::support::api::WAIT,
            "the key was still remembered after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "forgotten after only {:?}",
        started.elapsed()
    );
    assert_eq!(second["name"], "Kept a while");
    // The key now remembers the second create.
    assert_eq!(create(body).await.entity(201), &second);
    let events = api.user_events().await;
    assert_eq!(kinds_of(&events, id(&first)), ["user.created"]);
    assert_eq!(kinds_of(&events, id(&second)), ["user.created"]);
}

#[tokio::test]
async fn unicode_names_round_trip_and_can_be_searched() {
    let api = Api::start().await;
    let names = [
        "🦀 Ferris",
        "👩‍👩‍👧 Family",
        "مريم الأحمد",
        "שרה כהן",
        "Zoe\u{0308} Combin\u{0303}ing",
        "Ǆemal Ⅻ",
        "日本語の名前",
        "a\u{200d}b\u{200f}c",
    ];
    let mut created = Vec::new();
    for name in names {
        let r = api
            .post("/api/users", json!({"name": name, "bio": name}))
            .await;
        let user = r.entity(201).clone();
        assert_eq!(user["name"], name);
        let got = api.get(&path(&user)).await;
        assert_eq!(got.body["name"], name);
        assert_eq!(got.body["bio"], name);
        created.push(user);
    }
    for (q, want) in [
        ("%F0%9F%A6%80", 0),
        ("%D9%85%D8%B1", 2),
        ("%D7%A9", 3),
        ("zoe%CC%88", 4),
        ("ǆ", 5),
    ] {
        let r = api.get(&format!("/api/users?q={q}")).await;
        assert_eq!(
            ids(r.body["items"].as_array().unwrap()),
            [id(&created[want])],
            "{q}"
        );
    }
}

#[tokio::test]
async fn bad_bodies_on_users_write_routes_are_refused_and_write_nothing() {
    let api = Api::start().await;
    let user = api.user("Target", Some("target@example.org")).await;
    let p = path(&user);
    let wrong = [
        "42",
        "true",
        "[\"a\"]",
        "{\"a\":1}",
        "99999999999999999999",
        "-1",
    ];
    let valid = json!({"name": "Fine", "email": "fine@example.org"});
    bad_bodies(
        &api,
        Method::POST,
        "/api/users",
        valid.clone(),
        "name",
        &wrong,
    )
    .await;
    bad_bodies(&api, Method::PUT, &p, valid.clone(), "email", &wrong).await;
    bad_bodies(&api, Method::PATCH, &p, json!({"bio": "b"}), "bio", &wrong).await;

    assert_eq!(api.get(&p).await.body, user);
    let events = api.user_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_with_a_request_id() {
    let api = Api::start().await;
    for p in [
        "/api/nope",
        "/api/users/x/y/z",
        "/api/listings/x/archive",
        "/api",
        "/api/",
    ] {
        let r = api.get(p).await;
        r.problem(404, "not_found");
    }
    for (method, p) in [
        (Method::DELETE, "/api/users"),
        (Method::PUT, "/api/users"),
        (Method::POST, "/api/users/usr_x"),
        (Method::GET, "/api/users/usr_x/disable"),
        (Method::PUT, "/api/listings/lst_x"),
        (Method::POST, "/api/catalog"),
        (Method::DELETE, "/api/catalog/lst_x"),
    ] {
        let r = api.call(method.clone(), p, None).await;
        r.problem(405, "method_not_allowed");
    }
    // The request id is the caller's when it sends one, on errors too.
    let r = api
        .send(
            api.req(Method::GET, "/api/users/usr_none")
                .header("x-request-id", "trace-77"),
        )
        .await;
    r.problem(404, "not_found");
    assert_eq!(r.header("x-request-id"), Some("trace-77"));
    let r = api
        .send(
            api.req(Method::POST, "/api/users")
                .header("x-request-id", "trace-78")
                .body("{"),
        )
        .await;
    r.problem(415, "unsupported_media_type");
    assert_eq!(r.header("x-request-id"), Some("trace-78"));
    // JSON is UTF-8: another declared charset is 415; utf-8 (any case, quoted) is fine.
    for (content_type, status) in [
        ("application/json; charset=UTF-16", 415),
        ("application/json;charset=latin1", 415),
        ("application/json; charset=\"UTF-8\"", 201),
        ("application/json;charset=utf-8", 201),
    ] {
        let r = api
            .send(
                api.req(Method::POST, "/api/users")
                    .header("content-type", content_type)
                    .body(r#"{"name": "Charset"}"#),
            )
            .await;
        assert_eq!(r.status, status, "{content_type}: {r:?}");
    }
}
