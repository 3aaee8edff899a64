//! Helpers for the HTTP contract tests (`users_api`, `listings_api`, `catalog_api`): requests
//! that keep what a client sees (status, headers, body), problem assertions, fixtures, event
//! counts on the bus, and waits on the eventually consistent catalog (never blind sleeps).

use super::{Souk, stream_messages};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The longest any wait on the eventually consistent side may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running Souk and one HTTP client for it.
pub struct Api {
    pub souk: Souk,
    pub http: reqwest::Client,
}

/// An answer as a client sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Api {
    pub async fn start() -> Api {
        let souk = Souk::ready().await;
        let http = souk.http();
        Api { souk, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.souk.url)
    }

    /// A request to build on (headers, bodies) before [`Api::send`].
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// Sends `req`; every answer must carry an `X-Request-Id`.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.expect("the request reaches souk");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let reply = Reply {
            status,
            headers,
            text,
            body,
        };
        assert!(
            reply
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty()),
            "no X-Request-Id on {reply:?}"
        );
        reply
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.req(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// A JSON request with `If-Match: "<version>"` (or the raw value given).
    pub async fn if_match(
        &self,
        method: Method,
        path: &str,
        tag: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.req(method, path).header("if-match", tag);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Creates a user; panics unless 201.
    pub async fn user(&self, name: &str, email: Option<&str>) -> Value {
        let r = self
            .post("/api/users", json!({"name": name, "email": email}))
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }

    /// Creates a listing of `seller` with `fields` over sensible defaults; panics unless 201.
    pub async fn listing(&self, seller: &Value, fields: Value) -> Value {
        let mut body = json!({
            "seller_id": seller["id"], "title": "A thing", "listing_type": "sale", "price": 1000,
        });
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = self.post("/api/listings", body).await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body
    }

    /// Every page of the list at `path` (which has no `cursor` yet), walked with `limit`.
    pub async fn walk(&self, path: &str, limit: u32) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let page = match &cursor {
                None => format!("{path}{sep}limit={limit}"),
                Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            };
            let r = self.get(&page).await;
            assert_eq!(r.status, 200, "{page}: {r:?}");
            let got = r.body["items"].as_array().unwrap();
            assert!(got.len() <= limit as usize, "{page}: {} items", got.len());
            items.extend(got.iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => {
                    assert!(!got.is_empty(), "{page}: an empty page with a cursor");
                    cursor = Some(c.to_string());
                }
                None => {
                    assert!(r.body["next_cursor"].is_null(), "{r:?}");
                    return items;
                }
            }
        }
        panic!("{path}: paging never ends");
    }

    /// The envelopes in `stream` once the event of `kind` about `barrier` has arrived. A service
    /// relays its outbox in order, so an event a rejected request had written would be there too.
    pub async fn events_through(&self, stream: &str, kind: &str, barrier: &str) -> Vec<Value> {
        let nats = self.souk.nats().await;
        let deadline = Instant::now() + WAIT;
        loop {
            let events: Vec<Value> = stream_messages(&nats, stream)
                .await
                .into_iter()
                .map(|(_, _, e)| e)
                .collect();
            if events
                .iter()
                .any(|e| e["type"] == kind && e["aggregate_id"] == barrier)
            {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} event for {barrier} in {stream}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Users events, after a fresh `user.created` has gone through (see [`Api::events_through`]).
    pub async fn user_events(&self) -> Vec<Value> {
        let barrier = self.user("barrier", None).await;
        let events = self
            .events_through("SOUK_USERS", "user.created", id(&barrier))
            .await;
        let barrier = id(&barrier).to_string();
        events
            .into_iter()
            .filter(|e| e["aggregate_id"] != barrier.as_str())
            .collect()
    }

    /// Waits until the listings service's copy of sellers (consumer `listings-sellers`) has
    /// applied the user event `kind` about `user`: it is in the stream, and the consumer owes
    /// nothing.
    pub async fn sellers_copy_heard(&self, kind: &str, user: &str) {
        self.events_through("SOUK_USERS", kind, user).await;
        self.until("/api/admin/overview", |r| {
            r.body["streams"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["consumers"].as_array().into_iter().flatten())
                .any(|c| c["name"] == "listings-sellers" && c["lag"] == 0)
        })
        .await;
    }

    /// Listings events, after a fresh `listing.created` by `seller` has gone through.
    pub async fn listing_events(&self, seller: &Value) -> Vec<Value> {
        let barrier = self.listing(seller, json!({"title": "barrier"})).await;
        let events = self
            .events_through("SOUK_LISTINGS", "listing.created", id(&barrier))
            .await;
        let barrier = id(&barrier).to_string();
        events
            .into_iter()
            .filter(|e| e["aggregate_id"] != barrier.as_str())
            .collect()
    }

    /// `GET /api/catalog/{id}?min_version=N` (read-your-writes); panics unless 200.
    pub async fn catalog_item(&self, id: &str, min_version: u64) -> Value {
        let r = self
            .get(&format!("/api/catalog/{id}?min_version={min_version}"))
            .await;
        assert_eq!(r.status, 200, "catalog item {id} v{min_version}: {r:?}");
        r.body
    }

    /// Waits until the catalog holds every listing in `listings` at its version.
    pub async fn catalog_holds(&self, listings: &[Value]) {
        for l in listings {
            self.catalog_item(id(l), l["version"].as_u64().unwrap())
                .await;
        }
    }

    /// Polls `GET path` until `ok` accepts the answer; panics with the last one after [`WAIT`].
    pub async fn until(&self, path: &str, ok: impl Fn(&Reply) -> bool) -> Reply {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = self.get(path).await;
            if ok(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting on {path}: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts a problem+json answer with this status and code; returns the body.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        assert_eq!(self.body["code"], code, "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        assert_eq!(self.body["type"], "about:blank", "{self:?}");
        assert!(self.body["title"].is_string(), "{self:?}");
        &self.body
    }

    /// Asserts a 422 `validation_failed` naming exactly `fields` (in any order).
    #[track_caller]
    pub fn invalid(&self, fields: &[&str]) {
        self.problem(422, "validation_failed");
        assert_eq!(self.fields(), fields_set(fields), "{self:?}");
    }

    /// The fields named in `errors[]`, each with a message.
    pub fn fields(&self) -> BTreeSet<String> {
        let errors = self.body["errors"].as_array().cloned().unwrap_or_default();
        errors
            .iter()
            .map(|e| {
                assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
                e["field"].as_str().unwrap().to_string()
            })
            .collect()
    }

    /// A JSON entity answer with this status and `ETag: "<version>"`.
    #[track_caller]
    pub fn entity(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let tag = format!("\"{}\"", self.body["version"]);
        assert_eq!(self.header("etag"), Some(tag.as_str()), "{self:?}");
        &self.body
    }
}

pub fn fields_set(fields: &[&str]) -> BTreeSet<String> {
    fields.iter().map(|f| f.to_string()).collect()
}

pub fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|v| id(v).to_string()).collect()
}

/// The keys of a JSON object, to compare a shape with API.md's field list.
pub fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// An RFC 3339 UTC time as the API writes them.
pub fn is_time(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && humantime_like(s))
}

fn humantime_like(s: &str) -> bool {
    // `2026-11-21T10:00:00.123Z`: date, `T`, time; enough to tell a time from anything else.
    let b = s.as_bytes();
    s.len() >= 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':'
}

/// Checks that every kind of bad body on a JSON write route is refused the API's way: `valid` is
/// a body the route would accept, and each of `wrong` (raw JSON) put in `field` is a wrong type.
pub async fn bad_bodies(
    api: &Api,
    method: Method,
    path: &str,
    valid: Value,
    field: &str,
    wrong: &[&str],
) {
    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut req = api.req(method.clone(), path).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req
    };
    let json = Some("application/json");
    let mut broken: Vec<Vec<u8>> = [
        "{",
        "{\"name\": }",
        "not json",
        "",
        "[1,2",
        "\"open",
        "{'a':1}",
        "{\"a\":1,}",
    ]
    .iter()
    .map(|b| b.as_bytes().to_vec())
    .collect();
    broken.push(b"{\"name\":\"\xff\xfe\"}".to_vec());
    for trailing in [
        format!("{valid}}}"),
        format!("{valid} {valid}"),
        format!("{valid} x"),
    ] {
        broken.push(trailing.into());
    }
    for body in broken {
        let r = api.send(send(json, body.clone())).await;
        let shown: String = String::from_utf8_lossy(&body).chars().take(80).collect();
        assert_eq!(r.status, 400, "{shown}: {r:?}");
        r.problem(400, "malformed_json");
    }
    // Deeply nested JSON is refused, without a crash.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = api.send(send(json, deep.into())).await;
    assert!([400, 422].contains(&r.status), "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    // Wrong types (and numbers that fit no integer) name the field.
    for raw in wrong {
        let mut body = valid.clone();
        body[field] = json!("__WRONG__");
        let body = body.to_string().replace("\"__WRONG__\"", raw);
        let r = api.send(send(json, body.into())).await;
        assert_eq!(r.status, 422, "{field}: {raw}: {r:?}");
        r.invalid(&[field]);
    }
    // A number beyond any float is not JSON we can read, and never a 5xx.
    let mut body = valid.clone();
    body[field] = json!("__WRONG__");
    let body = body.to_string().replace("\"__WRONG__\"", "1e400");
    let r = api.send(send(json, body.into())).await;
    assert!((400..500).contains(&r.status), "1e400: {r:?}");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    // Unknown fields name the field.
    let mut extra = valid.clone();
    extra["is_admin"] = json!(true);
    api.send(send(json, extra.to_string().into()))
        .await
        .invalid(&["is_admin"]);
    // A field given twice is named too.
    let twice = format!("{{\"{field}\":{},{}", valid[field], &valid.to_string()[1..]);
    let r = api.send(send(json, twice.into())).await;
    r.invalid(&[field]);
    // Not JSON at all.
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let r = api.send(send(ct, valid.to_string().into())).await;
        r.problem(415, "unsupported_media_type");
    }
    // Ten megabytes.
    let mut big = valid.clone();
    big["padding"] = json!("x".repeat(10 << 20));
    let r = api.send(send(json, big.to_string().into())).await;
    r.problem(413, "payload_too_large");
}
