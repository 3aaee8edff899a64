//! The event backbone: acknowledged writes are never lost nor applied twice, whatever crashes;
//! failing events are retried and dead-lettered; replays change nothing; a lost stream tail is
//! republished.

use crate::support::{Souk, stream_messages};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// `type` → aggregate ids, counting repeats, of the events in `stream`.
async fn created_ids(souk: &Souk, stream: &str, kind: &str) -> BTreeMap<String, usize> {
    let nats = souk.nats().await;
    let mut ids = BTreeMap::new();
    for (_, _, e) in stream_messages(&nats, stream).await {
        if e["type"] == kind {
            *ids.entry(e["aggregate_id"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    ids
}

/// Waits until every id in `acked` has its `kind` event in `stream`; returns all such ids.
async fn wait_for_events(
    souk: &Souk,
    stream: &str,
    kind: &str,
    acked: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + T;
    loop {
        let ids = created_ids(souk, stream, kind).await;
        if acked.iter().all(|id| ids.contains_key(id)) || Instant::now() > deadline {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_exactly_once(acked: &BTreeSet<String>, ids: &BTreeMap<String, usize>) {
    let missing: Vec<_> = acked.iter().filter(|id| !ids.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes have no event: {missing:?}",
        missing.len()
    );
    let doubled: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubled.is_empty(),
        "events published more than once: {doubled:?}"
    );
}

/// `n` POSTs from `clients` concurrent clients; `at(k)` runs once after the k-th answer.
async fn load(
    souk: &Souk,
    path: &str,
    n: usize,
    clients: usize,
    body: impl Fn(usize) -> Value + Send + Sync + 'static,
    crash_after: usize,
    crash: impl FnOnce() + Send + 'static,
) -> BTreeSet<String> {
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {}", souk.token).parse().unwrap(),
    );
    let http = souk::http::tls::client()
        .default_headers(auth)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let crash = Arc::new(Mutex::new(Some(crash)));
    let body = Arc::new(body);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, next, answered, acked, crash, body) = (
            http.clone(),
            next.clone(),
            answered.clone(),
            acked.clone(),
            crash.clone(),
            body.clone(),
        );
        let url = format!("{}{path}", souk.url);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                if let Ok(r) = http.post(&url).json(&body(i)).send().await
                    && r.status() == 201
                    && let Ok(v) = r.json::<Value>().await
                {
                    acked
                        .lock()
                        .unwrap()
                        .insert(v["id"].as_str().unwrap().to_string());
                }
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == crash_after
                    && let Some(f) = crash.lock().unwrap().take()
                {
                    f();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_of_nats_server_exactly_once() {
    let souk = Souk::ready().await;
    let nats_pid = souk.nats_pid().unwrap();
    let acked = load(
        &souk,
        "/api/users",
        1000,
        32,
        |i| json!({"name": format!("user {i}")}),
        300,
        move || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(nats_pid as i32), Signal::SIGKILL)
                .unwrap();
        },
    )
    .await;
    assert!(
        acked.len() > 300,
        "only {} writes were acknowledged",
        acked.len()
    );
    souk.wait_ready(T).await;
    assert_ne!(
        souk.nats_pid(),
        Some(nats_pid),
        "nats-server was not restarted"
    );
    let ids = wait_for_events(&souk, "SOUK_USERS", "user.created", &acked).await;
    assert_exactly_once(&acked, &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9_of_souk_and_the_catalog_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let first = Souk::builder().data_dir(dir.path()).start();
    first.wait_ready(T).await;
    let (status, seller) = first.post("/api/users", json!({"name": "Grace"})).await;
    assert_eq!(status, 201);
    let seller = seller["id"].as_str().unwrap().to_string();
    let souk_pid = first.child.id() as i32;
    let acked = load(
        &first,
        "/api/listings",
        1000,
        32,
        move |i| json!({"seller_id": seller, "title": format!("item {i}"), "listing_type": "sale", "price": 100 + i}),
        300,
        move || {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(souk_pid), Signal::SIGKILL).unwrap();
        },
    )
    .await;
    drop(first);
    assert!(
        acked.len() >= 250,
        "only {} writes were acknowledged",
        acked.len()
    );

    let again = Souk::builder().data_dir(dir.path()).start();
    again.wait_ready(T).await;
    let ids = wait_for_events(&again, "SOUK_LISTINGS", "listing.created", &acked).await;
    assert_exactly_once(&acked, &ids);

    // The read model equals the write side: every listing, at its version, and nothing else.
    let mut written = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let (_, page) = again
            .json(
                reqwest::Method::GET,
                &format!("/api/listings?limit=200{cursor}"),
                None,
            )
            .await;
        for l in page["items"].as_array().unwrap() {
            written.insert(
                l["id"].as_str().unwrap().to_string(),
                l["version"].as_u64().unwrap(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert!(acked.iter().all(|id| written.contains_key(id)));
    let deadline = Instant::now() + T;
    loop {
        let (_, c) = again
            .json(reqwest::Method::GET, "/api/catalog?limit=1", None)
            .await;
        if c["total"].as_u64() == Some(written.len() as u64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "catalog has {} of {} listings",
            c["total"],
            written.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (id, version) in written.iter().take(50) {
        let (status, item) = again
            .json(reqwest::Method::GET, &format!("/api/catalog/{id}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(item["version"].as_u64(), Some(*version));
        assert_eq!(item["seller"]["name"], "Grace");
    }

    // And it equals a rebuild from scratch, text searches included (the rebuilt generation
    // gets its own in-memory search index).
    let before = catalog_pages(&again).await;
    let searched = search_pages(&again).await;
    let (status, _) = again
        .post("/api/admin/projections/catalog/rebuild", json!({}))
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + T;
    loop {
        let (_, p) = again
            .json(reqwest::Method::GET, "/api/admin/projections", None)
            .await;
        if p["items"][0]["rebuild"]["state"] == "done" {
            break;
        }
        assert_ne!(p["items"][0]["rebuild"]["state"], "failed", "{p}");
        assert!(Instant::now() < deadline, "rebuild did not finish: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(catalog_pages(&again).await, before);
    loop {
        let (_, p) = again
            .json(reqwest::Method::GET, "/api/admin/projections", None)
            .await;
        if p["items"][0]["search_index"]["state"] == "ready" {
            assert_eq!(
                p["items"][0]["search_index"]["rows"].as_u64(),
                Some(before.len() as u64),
                "{p}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no search index after the rebuild: {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(search_pages(&again).await, searched);
}

/// Text searches over the items written above, by relevance and by price.
async fn search_pages(souk: &Souk) -> Vec<Value> {
    let mut out = Vec::new();
    for query in [
        "q=item&sort=relevance&limit=7",
        "q=ite+1&sort=price_desc&limit=9",
    ] {
        let (status, page) = souk
            .json(reqwest::Method::GET, &format!("/api/catalog?{query}"), None)
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page["total"].as_u64() > Some(0), "{query}: {page}");
        out.push(page);
    }
    out
}

/// Every catalog item, newest first, through the API's paging.
async fn catalog_pages(souk: &Souk) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = souk
            .json(
                reqwest::Method::GET,
                &format!("/api/catalog?limit=200{cursor}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_lost_stream_tail_is_republished_from_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let create = |souk: &Souk, seller: String, n: usize| {
        let url = souk.url.clone();
        let http = souk.http();
        async move {
            let mut ids = BTreeSet::new();
            for i in 0..n {
                let r = http
                    .post(format!("{url}/api/listings"))
                    .json(&json!({"seller_id": seller, "title": format!("lamp {i}"), "listing_type": "rent", "price": 5}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                ids.insert(
                    r.json::<Value>().await.unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            ids
        }
    };

    let mut souk = Souk::builder().data_dir(dir.path()).start();
    souk.wait_ready(T).await;
    let (_, seller) = souk.post("/api/users", json!({"name": "Lin"})).await;
    let seller = seller["id"].as_str().unwrap().to_string();
    let before = create(&souk, seller.clone(), 5).await;
    wait_for_events(&souk, "SOUK_LISTINGS", "listing.created", &before).await;
    souk.signal(Signal::SIGTERM);
    assert!(souk.wait_exit(T).success());
    let js = dir.path().join("nats/jetstream");
    let backup = dir.path().join("jetstream.backup");
    copy_dir(&js, &backup);

    let mut souk = Souk::builder().data_dir(dir.path()).start();
    souk.wait_ready(T).await;
    let after = create(&souk, seller, 5).await;
    wait_for_events(&souk, "SOUK_LISTINGS", "listing.created", &after).await;
    souk.signal(Signal::SIGTERM);
    assert!(souk.wait_exit(T).success());

    // The JetStream store goes back to the earlier copy: the last five events are gone from it.
    std::fs::remove_dir_all(&js).unwrap();
    copy_dir(&backup, &js);
    let souk = Souk::builder().data_dir(dir.path()).start();
    souk.wait_ready(T).await;
    let all: BTreeSet<String> = before.union(&after).cloned().collect();
    let ids = wait_for_events(&souk, "SOUK_LISTINGS", "listing.created", &all).await;
    assert_exactly_once(&all, &ids);
    assert!(
        souk.log.text().contains("lost its tail"),
        "{}",
        souk.log.text()
    );
    for id in &all {
        let (status, _) = souk
            .json(reqwest::Method::GET, &format!("/api/catalog/{id}"), None)
            .await;
        assert_eq!(status, 200, "{id} missing from the catalog");
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn malformed_and_oversized_rpc_requests_get_structured_errors() {
    let souk = Souk::ready().await;
    let nats = souk.nats().await;
    let reply = nats
        .request("souk.rpc.users.create", "{not json".into())
        .await
        .unwrap();
    let headers = reply.headers.expect("error headers");
    let err: Value = serde_json::from_str(headers.get("Souk-Error").unwrap().as_str()).unwrap();
    assert_eq!(err["code"], "malformed_request");
    assert_eq!(err["status"], 400);
    assert_eq!(
        headers.get("Nats-Service-Error-Code").unwrap().as_str(),
        "400"
    );

    let big = vec![b'x'; 3 << 20];
    let reply = nats
        .request("souk.rpc.users.create", big.into())
        .await
        .unwrap();
    let err: Value =
        serde_json::from_str(reply.headers.unwrap().get("Souk-Error").unwrap().as_str()).unwrap();
    assert_eq!(err["code"], "payload_too_large");

    // The service is still there and well.
    let (status, _) = souk.post("/api/users", json!({"name": "still fine"})).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_once_and_the_catalog_keeps_flowing() {
    let souk = Souk::ready().await;
    let nats = souk.nats().await;
    souk.jetstream_publish("souk.events.listing.created", "this is not an event")
        .await;

    let deadline = Instant::now() + T;
    let letters = loop {
        let letters = stream_messages(&nats, "SOUK_DLQ").await;
        if !letters.is_empty() || Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].1, "souk.dlq.catalog-listings");

    let (_, seller) = souk.post("/api/users", json!({"name": "Mo"})).await;
    let (status, l) = souk
        .post("/api/listings", json!({"seller_id": seller["id"], "title": "Kettle", "listing_type": "sale", "price": 900}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = souk
        .json(
            reqwest::Method::GET,
            &format!("/api/catalog/{}?min_version=1", l["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stream_messages(&nats, "SOUK_DLQ").await.len(),
        1,
        "the poison event looped"
    );
}

#[tokio::test]
async fn the_request_id_rides_from_http_through_rpc_into_the_events_it_causes() {
    let souk = Souk::ready().await;
    let r = souk
        .http()
        .post(format!("{}/api/users", souk.url))
        .header("x-request-id", "req-trace-7")
        .json(&json!({"name": "Traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_string();
    // Deleting the user makes the listings service react; its events name the cause.
    let (_, listing) = souk
        .post(
            "/api/listings",
            json!({"seller_id": id, "title": "Chair", "listing_type": "sale", "price": 10}),
        )
        .await;
    let r = souk
        .http()
        .delete(format!("{}/api/users/{id}", souk.url))
        .header("x-request-id", "req-trace-8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let nats = souk.nats().await;
    let deadline = Instant::now() + T;
    let (created, deleted, archived) = loop {
        let users = stream_messages(&nats, "SOUK_USERS").await;
        let listings = stream_messages(&nats, "SOUK_LISTINGS").await;
        let find = |events: &[(u64, String, Value)], kind: &str| {
            events
                .iter()
                .map(|e| e.2.clone())
                .find(|e| e["type"] == kind)
        };
        if let (Some(c), Some(d), Some(a)) = (
            find(&users, "user.created"),
            find(&users, "user.deleted"),
            find(&listings, "listing.updated"),
        ) {
            break (c, d, a);
        }
        assert!(Instant::now() < deadline, "events did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(created["correlation_id"], "req-trace-7");
    assert_eq!(deleted["correlation_id"], "req-trace-8");
    assert_eq!(archived["aggregate_id"], listing["id"]);
    assert_eq!(archived["data"]["status"], "archived");
    assert_eq!(
        archived["correlation_id"], "req-trace-8",
        "the reaction keeps the request's id"
    );
    assert_eq!(
        archived["causation_id"], deleted["id"],
        "and names the event that caused it"
    );
    assert_eq!(archived["actor"], "system");
}
