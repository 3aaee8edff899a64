//! Security (issue 6): every route × every kind of caller, sessions and CSRF, brute force,
//! setup, tokens, roles, audit actors, limits and headers, the locked-down bus, offline admin.

use crate::support::{Souk, command};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery";

/// A client that keeps cookies (the console's way), with no other credential.
fn browser() -> Client {
    souk::http::tls::client()
        .cookie_store(true)
        .build()
        .unwrap()
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// A new console account made through the API with the admin token.
async fn account(souk: &Souk, email: &str, role: &str) -> Value {
    let (status, _, body) = send(
        souk.http()
            .post(format!("{}/api/admin/accounts", souk.url))
            .json(&json!({"email": email, "password": PASSWORD, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// A new API token with `role`; returns (id, secret).
async fn token(souk: &Souk, role: &str) -> (String, String) {
    let (status, _, body) = send(
        souk.http()
            .post(format!("{}/api/admin/tokens", souk.url))
            .json(&json!({"name": format!("{role} script"), "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().into(),
        body["token"].as_str().unwrap().into(),
    )
}

/// Signs `email` in on a cookie client; returns the client and its CSRF token.
async fn login(souk: &Souk, email: &str) -> (Client, String) {
    let c = browser();
    let (status, headers, body) = send(
        c.post(format!("{}/api/auth/login", souk.url))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP: no Secure flag: {cookie}"
    );
    (c, body["csrf_token"].as_str().unwrap().to_string())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Anyone,
    SignedIn,
    Viewer,
    Editor,
    Admin,
}

/// The contract, restated independently of the code: who may call each route.
fn need(method: &str, path: &str) -> Need {
    let read = method == "get";
    match path {
        "/healthz" | "/readyz" | "/api/openapi.json" | "/metrics" => Need::Anyone,
        "/api/auth/setup" | "/api/auth/login" => Need::Anyone,
        "/api/auth/logout" | "/api/auth/me" | "/api/auth/password" => Need::SignedIn,
        p if p.starts_with("/api/admin/accounts") || p.starts_with("/api/admin/tokens") => {
            Need::Admin
        }
        p if p.starts_with("/api/admin") || p.starts_with("/api/events") => {
            if read {
                Need::Viewer
            } else {
                Need::Admin
            }
        }
        _ if read => Need::Viewer,
        _ => Need::Editor,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_every_kind_of_caller_as_its_role_allows() {
    // Sessions end after 1 s idle, so one can be made to expire.
    let souk = Souk::builder()
        .env("SOUK_SESSION_IDLE_TIMEOUT", "1s")
        .start();
    souk.wait_ready(T).await;
    let (_, viewer) = token(&souk, "viewer").await;
    let (_, editor) = token(&souk, "editor").await;
    let (revoked_id, revoked) = token(&souk, "admin").await;
    let (status, _, _) = send(
        souk.http()
            .delete(format!("{}/api/admin/tokens/{revoked_id}", souk.url)),
    )
    .await;
    assert_eq!(status, 204);
    account(&souk, "expired@example.com", "admin").await;
    let (expired, expired_csrf) = login(&souk, "expired@example.com").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let doc: Value = souk
        .http()
        .get(format!("{}/api/openapi.json", souk.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if path.ends_with("/live") {
                continue; // an endless stream; its guard is the same as /api/events
            }
            let need = need(method, path);
            let url = format!(
                "{}{}",
                souk.url,
                path.replace("{id}", "xyz_00000000000000000000000000")
                    .replace("{name}", "nope")
            );
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let callers: [(&str, Client, Option<&str>); 6] = [
                ("no auth", souk.anonymous(), None),
                ("viewer", souk.http_as(&viewer), None),
                ("editor", souk.http_as(&editor), None),
                ("admin", souk.http(), None),
                ("revoked token", souk.http_as(&revoked), None),
                (
                    "expired session",
                    expired.clone(),
                    Some(expired_csrf.as_str()),
                ),
            ];
            for (who, client, csrf) in callers {
                let mut req = client.request(m.clone(), &url);
                if let Some(c) = csrf {
                    req = req.header("x-csrf-token", c);
                }
                if matches!(method.as_str(), "post" | "put" | "patch") {
                    req = req.header("content-type", "application/json").body("{}");
                }
                let (status, headers, body) = send(req).await;
                let allowed = match (need, who) {
                    (Need::Anyone, _) => true,
                    (_, "no auth" | "revoked token" | "expired session") => false,
                    (Need::SignedIn | Need::Viewer, _) => true,
                    (Need::Editor, who) => who != "viewer",
                    (Need::Admin, who) => who == "admin",
                };
                let ctx = format!("{method} {path} as {who}: {status} {body}");
                if allowed {
                    assert_ne!(status, 401, "{ctx}");
                    assert_ne!(body["code"], "forbidden", "{ctx}");
                    assert_ne!(body["code"], "csrf_failed", "{ctx}");
                } else if matches!(who, "no auth" | "revoked token" | "expired session") {
                    assert_eq!(status, 401, "{ctx}");
                    assert!(headers.contains_key("www-authenticate"), "{ctx}");
                    assert_eq!(headers["content-type"], "application/problem+json", "{ctx}");
                } else {
                    assert_eq!(status, 403, "{ctx}");
                    assert_eq!(body["code"], "forbidden", "{ctx}");
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked > 6 * 40,
        "only {checked} checks: is the route table complete?"
    );
}

#[tokio::test]
async fn first_run_setup_takes_the_logged_token_once() {
    let souk = Souk::ready().await;
    let anon = souk.anonymous();
    let line = souk
        .log
        .wait_for("/setup#token=", T)
        .expect("the setup link is logged");
    let setup_token = line.split_whitespace().next().unwrap().to_string();
    assert!(
        souk.log
            .text()
            .contains(&format!("{}/setup#token=", souk.url))
    );
    let status_url = format!("{}/api/auth/setup", souk.url);
    let (_, _, body) = send(anon.get(&status_url)).await;
    assert_eq!(body, json!({"setup_needed": true}));

    let (status, _, body) = send(anon.post(&status_url).json(
        &json!({"setup_token": "not-it", "email": "root@example.com", "password": PASSWORD}),
    ))
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (401, Some("invalid_setup_token"))
    );
    let (status, _, body) = send(anon.post(&status_url).json(
        &json!({"setup_token": setup_token, "email": "root@example.com", "password": "short"}),
    ))
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "password");

    let c = browser();
    let (status, headers, me) = send(c.post(&status_url).json(
        &json!({"setup_token": setup_token, "email": "Root@Example.com", "password": PASSWORD}),
    ))
    .await;
    assert_eq!(status, 201, "{me}");
    assert!(headers.contains_key("set-cookie"));
    assert_eq!(me["role"], "admin");
    assert_eq!(me["email"], "root@example.com");
    // Signed in by the setup: the cookie works.
    let (status, _, again) = send(c.get(format!("{}/api/auth/me", souk.url))).await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], me["id"]);

    let (status, _, body) = send(anon.post(&status_url).json(
        &json!({"setup_token": setup_token, "email": "two@example.com", "password": PASSWORD}),
    ))
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("already_set_up"))
    );
    let (_, _, body) = send(anon.get(&status_url)).await;
    assert_eq!(body, json!({"setup_needed": false}));
}

#[tokio::test]
async fn cookie_requests_that_change_something_need_the_csrf_token() {
    let souk = Souk::ready().await;
    account(&souk, "ed@example.com", "editor").await;
    let (c, csrf) = login(&souk, "ed@example.com").await;
    let users = format!("{}/api/users", souk.url);
    // Reads need no CSRF token.
    let (status, _, _) = send(c.get(&users)).await;
    assert_eq!(status, 200);
    let (status, _, body) = send(c.post(&users).json(&json!({"name": "Mallory's page"}))).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let (status, _, body) = send(
        c.post(&users)
            .header("x-csrf-token", "guess")
            .json(&json!({"name": "Mallory's page"})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    // Nothing was written.
    let (_, _, list) = send(c.get(&users)).await;
    assert_eq!(list["items"], json!([]));
    let (status, _, user) = send(
        c.post(&users)
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "Ann"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    // The session's account is the actor of the event.
    let me: Value = send(c.get(format!("{}/api/auth/me", souk.url))).await.2;
    assert_eq!(me["csrf_token"], csrf.as_str());
    let actor = event_actor(&souk, "user.created", user["id"].as_str().unwrap()).await;
    assert_eq!(actor, me["id"].as_str().unwrap());

    // Logging out ends the session on the server, not only in the browser.
    let cookie_jar_client = c.clone();
    let (status, headers, _) = send(
        c.post(format!("{}/api/auth/logout", souk.url))
            .header("x-csrf-token", &csrf),
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let (status, _, _) = send(cookie_jar_client.get(&users)).await;
    assert_eq!(status, 401);
}

/// The actor recorded on the first `kind` event of `id`, from `GET /api/events`.
async fn event_actor(souk: &Souk, kind: &str, id: &str) -> String {
    for _ in 0..100 {
        let events: Value = souk
            .http()
            .get(format!(
                "{}/api/events?subject=souk.events.>&limit=200",
                souk.url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(e) = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == kind && e["aggregate_id"] == id)
        {
            return e["actor"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} event for {id}");
}

#[tokio::test]
async fn the_eleventh_bad_login_from_one_address_is_refused_but_others_still_sign_in() {
    let souk = Souk::ready().await;
    account(&souk, "viv@example.com", "viewer").await;
    let login_url = format!("{}/api/auth/login", souk.url);
    let attacker = souk.anonymous();
    for i in 1..=10 {
        let (status, _, body) =
            send(attacker.post(&login_url).json(
                &json!({"email": "viv@example.com", "password": format!("guess number {i}")}),
            ))
            .await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (401, Some("invalid_credentials")),
            "attempt {i}"
        );
    }
    let (status, headers, body) = send(
        attacker
            .post(&login_url)
            .json(&json!({"email": "viv@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=301).contains(&retry), "{retry}");
    // An unknown email counts the same and answers the same.
    let (status, _, _) = send(
        attacker
            .post(&login_url)
            .json(&json!({"email": "nobody@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 429);

    // Another address (127.0.0.2 reaches the loopback listener too) signs in.
    let elsewhere = souk::http::tls::client()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let (status, _, body) = send(
        elsewhere
            .post(&login_url)
            .json(&json!({"email": "viv@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A wrong password for a known email and for an unknown one look alike.
    let (_, _, known) = send(
        elsewhere
            .post(&login_url)
            .json(&json!({"email": "viv@example.com", "password": "wrong password!"})),
    )
    .await;
    let (_, _, unknown) = send(
        elsewhere
            .post(&login_url)
            .json(&json!({"email": "nobody@example.com", "password": "wrong password!"})),
    )
    .await;
    assert_eq!(known["detail"], unknown["detail"]);
}

#[tokio::test]
async fn tokens_are_shown_once_work_until_revoked_or_expired_and_record_their_use() {
    let souk = Souk::ready().await;
    let (id, secret) = token(&souk, "editor").await;
    assert!(secret.starts_with("souk_"), "{secret}");
    let (_, _, list) = send(souk.http().get(format!("{}/api/admin/tokens", souk.url))).await;
    let listed = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(
        listed.get("token").is_none(),
        "the secret is never listed: {listed}"
    );
    assert!(listed.get("hash").is_none(), "{listed}");
    assert_eq!(listed["role"], "editor");
    assert_eq!(listed["last_used_at"], Value::Null);
    assert!(
        !std::fs::read(souk.data_dir.join("auth.redb"))
            .unwrap()
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the secret is not stored"
    );

    let client = souk.http_as(&secret);
    let (status, _, user) = send(
        client
            .post(format!("{}/api/users", souk.url))
            .json(&json!({"name": "Scripted"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        event_actor(&souk, "user.created", user["id"].as_str().unwrap()).await,
        id
    );
    let (_, _, list) = send(souk.http().get(format!("{}/api/admin/tokens", souk.url))).await;
    let used = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap()["last_used_at"]
        .clone();
    assert!(used.is_string(), "{list}");
    // An editor cannot manage tokens.
    let (status, _, _) = send(client.get(format!("{}/api/admin/tokens", souk.url))).await;
    assert_eq!(status, 403);

    let (status, _, _) = send(
        souk.http()
            .delete(format!("{}/api/admin/tokens/{id}", souk.url)),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, body) = send(client.get(format!("{}/api/users", souk.url))).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _, _) = send(
        souk.http()
            .delete(format!("{}/api/admin/tokens/{id}", souk.url)),
    )
    .await;
    assert_eq!(status, 404);

    // Expiry: in the past is refused; a near one stops working when it passes.
    let past = send(
        souk.http()
            .post(format!("{}/api/admin/tokens", souk.url))
            .json(&json!({"name": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(past.0, 422);
    assert_eq!(past.2["errors"][0]["field"], "expires_at");
    let soon = souk::clock::rfc3339(std::time::SystemTime::now() + Duration::from_secs(2));
    let (status, _, short) = send(
        souk.http()
            .post(format!("{}/api/admin/tokens", souk.url))
            .json(&json!({"name": "brief", "role": "viewer", "expires_at": soon})),
    )
    .await;
    assert_eq!(status, 201, "{short}");
    let brief = souk.http_as(short["token"].as_str().unwrap());
    let (status, _, _) = send(brief.get(format!("{}/api/users", souk.url))).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (status, _, body) = send(brief.get(format!("{}/api/users", souk.url))).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        matches!(body["code"].as_str(), Some("token_expired")),
        "{body}"
    );
    // A malformed Authorization header is refused, not ignored.
    let (status, _, _) = send(
        souk.anonymous()
            .get(format!("{}/api/users", souk.url))
            .header("authorization", "Basic YWRtaW46YWRtaW4="),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn accounts_roles_and_passwords_take_effect_at_once() {
    let souk = Souk::ready().await;
    let ed = account(&souk, "ed@example.com", "editor").await;
    assert_eq!(ed["role"], "editor");
    assert!(ed.get("password_hash").is_none(), "{ed}");
    // Duplicate email (any case), weak password, unknown role, unknown field.
    let admin = souk.http();
    let accounts = format!("{}/api/admin/accounts", souk.url);
    let (s, _, b) = send(
        admin
            .post(&accounts)
            .json(&json!({"email": "ED@example.com", "password": PASSWORD, "role": "viewer"})),
    )
    .await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (409, Some("email_taken")));
    let (s, _, b) = send(
        admin
            .post(&accounts)
            .json(&json!({"email": "x@example.com", "password": "short", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, _, _) = send(
        admin
            .post(&accounts)
            .json(&json!({"email": "x@example.com", "password": PASSWORD, "role": "root"})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _, _) = send(admin.post(&accounts).json(
        &json!({"email": "x@example.com", "password": PASSWORD, "role": "viewer", "sudo": true}),
    ))
    .await;
    assert_eq!(s, 422);

    let (ed_a, csrf_a) = login(&souk, "ed@example.com").await;
    let (ed_b, csrf_b) = login(&souk, "ed@example.com").await;
    let users = format!("{}/api/users", souk.url);
    let (s, _, _) = send(
        ed_a.post(&users)
            .header("x-csrf-token", &csrf_a)
            .json(&json!({"name": "A"})),
    )
    .await;
    assert_eq!(s, 201);

    // Demoted to viewer: writes are refused from the next request on.
    let one = format!("{accounts}/{}", ed["id"].as_str().unwrap());
    let (s, _, b) = send(
        admin
            .patch(&one)
            .header("if-match", "\"1\"")
            .json(&json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["version"], 2);
    let (s, _, b) = send(
        ed_a.post(&users)
            .header("x-csrf-token", &csrf_a)
            .json(&json!({"name": "B"})),
    )
    .await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (403, Some("forbidden")));
    let (s, _, _) = send(
        admin
            .patch(&one)
            .header("if-match", "\"1\"")
            .json(&json!({"role": "editor"})),
    )
    .await;
    assert_eq!(s, 412);

    // Changing one's own password keeps this session and ends the others.
    let (s, _, b) = send(
        ed_a.post(format!("{}/api/auth/password", souk.url))
            .header("x-csrf-token", &csrf_a)
            .json(&json!({"current_password": "not my password", "new_password": "another long password"})),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "current_password");
    let (s, _, _) = send(
        ed_a.post(format!("{}/api/auth/password", souk.url))
            .header("x-csrf-token", &csrf_a)
            .json(&json!({"current_password": PASSWORD, "new_password": "another long password"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = send(ed_a.get(&users)).await;
    assert_eq!(s, 200);
    let (s, _, _) = send(ed_b.get(&users).header("x-csrf-token", &csrf_b)).await;
    assert_eq!(s, 401);
    let (s, _, _) = send(
        browser()
            .post(format!("{}/api/auth/login", souk.url))
            .json(&json!({"email": "ed@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 401, "the old password no longer works");

    // An admin setting a password ends every session of that account.
    let (s, _, _) = send(
        admin
            .patch(&one)
            .json(&json!({"password": "reset by the admin"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = send(ed_a.get(&users)).await;
    assert_eq!(s, 401);

    // The last admin stays.
    let root = account(&souk, "root@example.com", "admin").await;
    let root_url = format!("{accounts}/{}", root["id"].as_str().unwrap());
    let (s, _, b) = send(admin.patch(&root_url).json(&json!({"role": "viewer"}))).await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (409, Some("last_admin")));
    let (s, _, b) = send(admin.delete(&root_url)).await;
    assert_eq!((s.as_u16(), b["code"].as_str()), (409, Some("last_admin")));
    // Deleting an account ends its sessions.
    let (s, _, _) = send(admin.delete(&one)).await;
    assert_eq!(s, 204);
    let (s, _, _) = send(admin.delete(&one)).await;
    assert_eq!(s, 404);
    let (_, _, list) = send(admin.get(&accounts)).await;
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["root@example.com"]);
    // Account changes are on the audit trail, without secrets.
    let events: Value = send(admin.get(format!(
        "{}/api/events?subject=souk.events.account.>",
        souk.url
    )))
    .await
    .2;
    let text = events.to_string();
    assert!(text.contains("account.deleted"), "{text}");
    assert!(
        !text.contains("argon2"),
        "no password hash on the bus: {text}"
    );
}

#[tokio::test]
async fn limits_headers_cors_and_a_public_catalog_are_configurable() {
    let souk = Souk::builder()
        .env("SOUK_HTTP_BODY_LIMIT", "2KiB")
        .env("SOUK_HTTP_MAX_SSE", "1")
        .env("SOUK_HTTP_CORS_ORIGINS", "https://shop.example.com")
        .env("SOUK_CATALOG_PUBLIC", "true")
        .start();
    souk.wait_ready(T).await;
    let big = json!({"name": "x".repeat(3000)});
    let (s, _, b) = send(
        souk.http()
            .post(format!("{}/api/users", souk.url))
            .json(&big),
    )
    .await;
    assert_eq!(
        (s.as_u16(), b["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    let (s, h, _) = send(souk.anonymous().get(format!("{}/api/catalog", souk.url))).await;
    assert_eq!(s, 200, "the catalog is public");
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(h[name], value);
    }
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    // Its /public shape too (API.md: reads follow `catalog_public`); writes still need a token.
    let (s, _, b) = send(
        souk.anonymous()
            .get(format!("{}/public/listings", souk.url)),
    )
    .await;
    assert_eq!((s.as_u16(), &b["result"]), (200, &json!(true)), "{b}");
    let (s, _, _) = send(
        souk.anonymous()
            .post(format!("{}/public/users", souk.url))
            .json(&json!({"name": "Anon"})),
    )
    .await;
    assert_eq!(s, 401, "public writes need a token");
    let (s, _, _) = send(souk.anonymous().get(format!("{}/api/users", souk.url))).await;
    assert_eq!(s, 401, "only the catalog is public");

    let cors = |origin: &'static str| {
        souk.anonymous()
            .request(Method::OPTIONS, format!("{}/api/users", souk.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
    };
    let (_, h, _) = send(cors("https://shop.example.com")).await;
    assert_eq!(h["access-control-allow-origin"], "https://shop.example.com");
    let (_, h, _) = send(cors("https://evil.example.com")).await;
    assert!(!h.contains_key("access-control-allow-origin"), "{h:?}");

    // One live stream at a time here; a second one gets 429 until the first goes.
    let live = format!("{}/api/events/live", souk.url);
    let first = souk.http().get(&live).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let (s, _, b) = send(souk.http().get(&live)).await;
    assert_eq!(
        (s.as_u16(), b["code"].as_str()),
        (429, Some("too_many_streams"))
    );
    drop(first);
    let mut ok = false;
    for _ in 0..100 {
        let r = souk.http().get(&live).send().await.unwrap();
        if r.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the slot frees when the client goes away");
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let souk = Souk::ready().await;
    let (_, h, _) = send(
        souk.anonymous()
            .request(Method::OPTIONS, format!("{}/api/users", souk.url))
            .header("origin", "https://shop.example.com")
            .header("access-control-request-method", "GET"),
    )
    .await;
    assert!(!h.contains_key("access-control-allow-origin"), "{h:?}");
    let (s, _, _) = send(souk.anonymous().get(format!("{}/api/catalog", souk.url))).await;
    assert_eq!(s, 401, "the catalog is private by default");
}

#[tokio::test]
async fn the_bundled_nats_server_refuses_clients_without_souks_credentials() {
    let souk = Souk::ready().await;
    let nats = souk.data_dir.join("nats");
    let pf = std::fs::read_dir(&nats)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "ports"))
        .unwrap()
        .path();
    let ports: Value = serde_json::from_slice(&std::fs::read(pf).unwrap()).unwrap();
    let url = ports["nats"][0].as_str().unwrap().to_string();
    assert!(url.contains("127.0.0.1"), "loopback only: {url}");
    for m in ports["monitoring"].as_array().unwrap() {
        assert!(m.as_str().unwrap().contains("127.0.0.1"), "{m}");
    }
    let none = tokio::time::timeout(Duration::from_secs(10), async_nats::connect(&url)).await;
    assert!(
        matches!(none, Ok(Err(_))),
        "a client without credentials was not refused: {none:?}"
    );
    let wrong = async_nats::ConnectOptions::with_user_and_password("souk".into(), "guess".into())
        .connect(&url)
        .await;
    assert!(wrong.is_err(), "a client with wrong credentials connected");
    // Souk's own credentials work (so the refusals above are about credentials).
    souk.nats().await;

    use std::os::unix::fs::PermissionsExt;
    for file in ["identity.json", "nats-server.conf"] {
        let mode = std::fs::metadata(nats.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let mode = std::fs::metadata(&souk.data_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the data dir");
}

#[tokio::test]
async fn admin_commands_work_offline_and_refuse_while_souk_runs() {
    const RESET_BOSS: &[&str] = &[
        "admin",
        "reset-password",
        "--email",
        "boss@example.com",
        "--password-stdin",
    ];
    const CREATE_BOSS: &[&str] = &[
        "admin",
        "create",
        "--email",
        "boss@example.com",
        "--password-stdin",
    ];
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str], stdin: &str| {
        let mut cmd = command(&data);
        cmd.args(args);
        crate::support::run_with_stdin(cmd, stdin)
    };
    let out = run(CREATE_BOSS, "too short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    let out = run(CREATE_BOSS, &format!("{PASSWORD}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(CREATE_BOSS, &format!("{PASSWORD}\n"));
    assert!(!out.status.success(), "a second account with one email");

    let souk = Souk::builder().data_dir(&data).start();
    souk.wait_ready(T).await;
    assert!(
        !souk.log.text().contains("setup#token"),
        "an admin exists: no setup link"
    );
    let (c, _) = login(&souk, "boss@example.com").await;
    let (s, _, me) = send(c.get(format!("{}/api/auth/me", souk.url))).await;
    assert_eq!(s, 200);
    assert_eq!(me["role"], "admin");
    // While Souk runs, the offline commands refuse and say why.
    let out = run(RESET_BOSS, "a brand new password\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop Souk first"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The account's creation is on the audit trail, by `system`.
    let (_, _, events) = send(souk.http().get(format!(
        "{}/api/events?subject=souk.events.account.>",
        souk.url
    )))
    .await;
    let created = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "account.created")
        .expect("account.created published at start")
        .clone();
    assert_eq!(created["actor"], "system");
    drop(c);
    drop(souk);

    let out = run(RESET_BOSS, "a brand new password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        &[
            "admin",
            "reset-password",
            "--email",
            "nobody@example.com",
            "--password-stdin",
        ],
        "a brand new password\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no console account has the email nobody@example.com"),
        "{err}"
    );
    assert!(!err.contains("with that id"), "{err}");
    let souk = Souk::builder().data_dir(&data).start();
    souk.wait_ready(T).await;
    let (s, _, _) = send(
        browser()
            .post(format!("{}/api/auth/login", souk.url))
            .json(&json!({"email": "boss@example.com", "password": "a brand new password"})),
    )
    .await;
    assert_eq!(s, 200);
}

/// Sends one HTTP/1.1 request over TLS, trusting only `ca` (PEM); returns the raw answer.
async fn https(addr: &str, ca: &str, request: String) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn https_serves_the_api_and_marks_the_session_cookie_secure() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    create_offline(&data, "tls@example.com");
    let souk = Souk::builder()
        .data_dir(&data)
        .arg("--tls-cert")
        .arg(cert_file.to_str().unwrap())
        .arg("--tls-key")
        .arg(key_file.to_str().unwrap())
        .start();
    let addr = souk
        .url
        .strip_prefix("https://")
        .expect("souk says it serves https")
        .to_string();
    let ca = cert.cert.pem();
    let health = https(
        &addr,
        &ca,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = json!({"email": "tls@example.com", "password": PASSWORD}).to_string();
    // Sign-in needs the auth service: wait until Souk is ready.
    let mut answer = String::new();
    for _ in 0..200 {
        answer = https(
            &addr,
            &ca,
            format!(
                "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Plain HTTP on the TLS port gets no answer it could mistake for one.
    let plain = souk
        .anonymous()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
}

#[tokio::test]
async fn a_bad_tls_setting_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let out = command(&dir.path().join("data"))
        .args(["serve", "--http", "127.0.0.1:0", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    // A configuration error (2): systemd's RestartPreventExitStatus=2 does not restart it.
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http_tls_cert")
            && err.contains("SOUK_HTTP_TLS_CERT")
            && err.contains("No such file or directory")
            && !err.contains("Os {"),
        "{err}"
    );
    let out = command(&dir.path().join("data"))
        .args(["serve", "--http", "127.0.0.1:0", "--tls-cert"])
        .arg(&missing)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("http_tls_key"));
}

/// `souk admin create` for `email` in `data` (Souk stopped).
fn create_offline(data: &std::path::Path, email: &str) {
    let mut cmd = command(data);
    cmd.args(["admin", "create", "--email", email, "--password-stdin"]);
    let out = crate::support::run_with_stdin(cmd, &format!("{PASSWORD}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Souk on a fresh data dir that already holds the console account `email` (made offline),
/// started with `env`. Keep the temp dir alive as long as the Souk.
async fn with_account(email: &str, env: &[(&str, &str)]) -> (tempfile::TempDir, Souk) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    create_offline(&data, email);
    let mut builder = Souk::builder().data_dir(&data);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let souk = builder.start();
    souk.wait_ready(T).await;
    (dir, souk)
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_and_scheme_count() {
    let (_dir, souk) =
        with_account("proxied@example.com", &[("SOUK_HTTP_TRUST_PROXY", "true")]).await;
    let login_url = format!("{}/api/auth/login", souk.url);
    let from = |ip: &'static str, password: &str| {
        souk.anonymous()
            .post(&login_url)
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .header("x-forwarded-proto", "https")
            .json(&json!({"email": "proxied@example.com", "password": password}))
    };
    let (status, headers, _) = send(from("198.51.100.1", PASSWORD)).await;
    assert_eq!(status, 200);
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("; Secure"),
        "the proxy said https: {cookie}"
    );
    for _ in 0..10 {
        let (status, _, _) = send(from("198.51.100.2", "wrong password!")).await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = send(from("198.51.100.2", PASSWORD)).await;
    assert_eq!(status, 429, "the client the proxy names is limited");
    let (status, _, _) = send(from("198.51.100.3", PASSWORD)).await;
    assert_eq!(status, 200, "another client behind the same proxy is not");
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_503_and_souk_stays_up() {
    // Checking an argon2id password takes tens of milliseconds; 5 ms is too short for it.
    let (_dir, souk) =
        with_account("slow@example.com", &[("SOUK_HTTP_REQUEST_TIMEOUT", "5ms")]).await;
    let (status, headers, body) = send(
        souk.anonymous()
            .post(format!("{}/api/auth/login", souk.url))
            .json(&json!({"email": "slow@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (503, Some("request_timeout")),
        "{body}"
    );
    assert!(headers.contains_key("retry-after"));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("http_request_timeout")
    );
    let (status, _, _) = send(souk.anonymous().get(format!("{}/healthz", souk.url))).await;
    assert_eq!(status, 200);
}

/// `souk projections rebuild` reaches a Souk that serves HTTPS: by default as `localhost` on the
/// configured port, trusting only the certificate in `http_tls_cert`. (It spoke plain HTTP only,
/// and said "cannot reach souk; is it running?" to a running Souk.) A certificate that is not
/// the one served is refused, with a hint about `--url`.
#[tokio::test]
async fn the_rebuild_command_speaks_https_when_souk_does() {
    let dir = tempfile::tempdir().unwrap();
    let write_cert = |name: &str| {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert_file, key_file) = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        (cert_file, key_file, cert.cert.pem())
    };
    let (cert_file, key_file, ca) = write_cert("served");
    let (other_cert, other_key, _) = write_cert("other");
    let souk = Souk::builder()
        .arg("--tls-cert")
        .arg(cert_file.to_str().unwrap())
        .arg("--tls-key")
        .arg(key_file.to_str().unwrap())
        .start();
    let addr = souk.url.strip_prefix("https://").unwrap().to_string();
    let ready = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for _ in 0..300 {
        if https(&addr, &ca, ready.into())
            .await
            .starts_with("HTTP/1.1 200")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The command reads the same configuration as `serve`: both TLS files.
    let rebuild = |cert: &std::path::Path, key: &std::path::Path| {
        command(&souk.data_dir)
            .args(["projections", "rebuild", "catalog", "--token", &souk.token])
            .env("SOUK_HTTP", &addr)
            .env("SOUK_HTTP_TLS_CERT", cert)
            .env("SOUK_HTTP_TLS_KEY", key)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    };
    let out = rebuild(&cert_file, &key_file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("done:"), "{stderr}");

    let out = rebuild(&other_cert, &other_key);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot reach souk at https://localhost:") && stderr.contains("--url"),
        "{stderr}"
    );
}

/// `souk projections rebuild catalog` against a plain-HTTP Souk found from `http`: it follows the
/// rebuild to its end; a token that is not an admin's is refused with Souk's own words.
#[tokio::test]
async fn the_rebuild_command_follows_a_rebuild_and_says_why_it_was_refused() {
    let souk = Souk::ready().await;
    let addr = souk.url.strip_prefix("http://").unwrap().to_string();
    let rebuild = |token: &str| {
        command(&souk.data_dir)
            .args(["projections", "rebuild", "catalog", "--token", token])
            .env("SOUK_HTTP", &addr)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    };
    let out = rebuild(&souk.token);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("done:"), "{stderr}");
    let out = rebuild("not-a-token");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("souk refused the rebuild (401"),
        "{stderr}"
    );
}
