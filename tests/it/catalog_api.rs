//! The Catalog section of API.md over real HTTP: the listing view joined with its seller, read-
//! your-writes with `min_version`, full text, filters, the four sorts and their cursors, and the
//! scenarios that cross services (a seller renamed or deleted). The catalog is eventually
//! consistent, so tests wait with `min_version` or poll with a deadline, never blindly.

use crate::support::api::{Api, fields_set, id, ids, keys};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ITEM_FIELDS: &[&str] = &[
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
    "seller",
];

/// Every page of a catalog query: no page over `limit`, the same `total` on each, and the
/// items of all pages (checked for duplicates).
async fn walk(api: &Api, query: &str, limit: u32) -> (Vec<Value>, u64) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let mut path = format!("/api/catalog?{query}&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(
            keys(&r.body),
            fields_set(&["items", "next_cursor", "total"])
        );
        let t = r.body["total"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(t),
            t,
            "{path}: total changed between pages"
        );
        let page = r.body["items"].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        items.extend(page.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(items.len() <= 1000, "{query}: paging never ends");
    }
    let unique: BTreeSet<_> = ids(&items).into_iter().collect();
    assert_eq!(
        unique.len(),
        items.len(),
        "{query} limit {limit}: duplicates"
    );
    (items, total.unwrap())
}

/// The ids a catalog query answers on one page of up to 200, and its `total`.
async fn search(api: &Api, query: &str) -> (Vec<String>, u64) {
    let r = api.get(&format!("/api/catalog?{query}&limit=200")).await;
    assert_eq!(r.status, 200, "{query}: {r:?}");
    assert_eq!(r.body["next_cursor"], Value::Null);
    (
        ids(r.body["items"].as_array().unwrap()),
        r.body["total"].as_u64().unwrap(),
    )
}

fn newest_first(listings: &[Value]) -> Vec<String> {
    let mut v = ids(listings);
    v.sort();
    v.reverse();
    v
}

#[tokio::test]
async fn a_listing_appears_with_its_seller_and_min_version_reads_your_writes() {
    let api = Api::start().await;
    let seller = api.user("Mina", None).await;
    let listing = api
        .listing(&seller, json!({"title": "Loom", "description": "Oak"}))
        .await;
    let lid = id(&listing).to_string();

    let item = api.catalog_item(&lid, 1).await;
    assert_eq!(keys(&item), fields_set(ITEM_FIELDS));
    let mut as_listing = item.clone();
    as_listing.as_object_mut().unwrap().remove("seller");
    assert_eq!(as_listing, listing);
    assert_eq!(keys(&item["seller"]), fields_set(&["id", "name"]));
    assert_eq!(item["seller"]["id"], seller["id"]);
    // The seller's name arrives on its own stream: eventually there.
    let r = api
        .until(&format!("/api/catalog/{lid}"), |r| {
            r.body["seller"]["name"] == "Mina"
        })
        .await;
    assert_eq!(r.entity(200)["version"], 1);

    // Read-your-writes: the answer waits for the version just written.
    let patched = api
        .patch(
            &format!("/api/listings/{lid}"),
            json!({"title": "Big loom", "price": 42}),
        )
        .await;
    assert_eq!(patched.status, 200);
    let item = api.catalog_item(&lid, 2).await;
    assert_eq!(
        (
            item["title"].as_str(),
            item["price"].as_i64(),
            item["version"].as_u64()
        ),
        (Some("Big loom"), Some(42), Some(2))
    );
    // A version that never comes: the wait ends (≤ 2 s) with what the view holds.
    let item = api.catalog_item(&lid, 99).await;
    assert_eq!(item["version"], 2);

    api.get("/api/catalog/lst_nothing")
        .await
        .problem(404, "not_found");
    api.get("/api/catalog/lst_nothing?min_version=1")
        .await
        .problem(404, "not_found");
    for bad in ["x", "-1", "1.5", "99999999999999999999", ""] {
        let r = api
            .get(&format!("/api/catalog/{lid}?min_version={bad}"))
            .await;
        r.invalid(&["min_version"]);
    }
    api.get(&format!("/api/catalog/{lid}?version=2"))
        .await
        .invalid(&["version"]);
}

#[tokio::test]
async fn full_text_matches_word_prefixes_whatever_the_case_and_diacritics() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let mut l = Vec::new();
    for (title, description) in [
        ("Café racer", "A fast bike"),
        ("Cafetière", "Brews coffee"),
        ("Red bicycle", "Barely used"),
        ("Desk lamp", "Bright light for a CAFE table"),
        ("Über-cool jacket", ""),
        ("자전거", "Korean for bicycle"),
    ] {
        l.push(
            api.listing(&seller, json!({"title": title, "description": description}))
                .await,
        );
    }
    api.catalog_holds(&l).await;
    let set = |idx: &[usize]| -> BTreeSet<String> {
        idx.iter().map(|&i| id(&l[i]).to_string()).collect()
    };

    for (q, want) in [
        ("cafe", set(&[0, 1, 3])),
        ("café", set(&[0, 1, 3])),
        ("CAFÉ", set(&[0, 1, 3])),
        ("Cafe%CC%81", set(&[0, 1, 3])),
        ("caf", set(&[0, 1, 3])),
        ("cafet", set(&[1])),
        ("cafetiere", set(&[1])),
        ("bike", set(&[0])),
        ("bic", set(&[2, 5])),
        ("uber", set(&[4])),
        ("ÜBER", set(&[4])),
        ("cool", set(&[4])),
        ("red bic", set(&[2])),
        ("red bike", set(&[])),
        ("racer  cafe", set(&[0])),
        ("자전", set(&[5])),
        ("zzz", set(&[])),
    ] {
        let (got, total) = search(&api, &format!("q={q}")).await;
        assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want, "q={q}");
        assert_eq!(total as usize, want.len(), "q={q}");
    }
}

/// Listings for the filter and sort tests: `(seller, type, price, then)`, `then` being a patch.
async fn market(api: &Api) -> (Value, Value, Vec<Value>) {
    let s1 = api.user("First", None).await;
    let s2 = api.user("Second", None).await;
    let mut all = Vec::new();
    for (seller, kind, price, then) in [
        (&s1, "sale", 100, None),
        (&s1, "sale", 200, None),
        (&s2, "rent", 200, None),
        (&s1, "rent", 300, None),
        (&s2, "sale", 500, None),
        (&s2, "sale", 50, None),
        (&s1, "sale", 150, Some(json!({"quantity": 0}))),
        (&s2, "rent", 250, Some(json!({"status": "archived"}))),
        (&s1, "sale", 100, None),
        (&s2, "rent", 100, Some(json!({"status": "reserved"}))),
    ] {
        let mut l = api
            .listing(
                seller,
                json!({"listing_type": kind, "price": price, "title": format!("{kind} {price}")}),
            )
            .await;
        if let Some(p) = then {
            let r = api.patch(&format!("/api/listings/{}", id(&l)), p).await;
            assert_eq!(r.status, 200, "{r:?}");
            l = r.body;
        }
        all.push(l);
    }
    api.catalog_holds(&all).await;
    (s1, s2, all)
}

#[tokio::test]
async fn filters_narrow_the_catalog_only_active_by_default_and_total_counts_them() {
    let api = Api::start().await;
    let (s1, s2, all) = market(&api).await;
    let pick = |f: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        all.iter().filter(|l| f(l)).cloned().collect()
    };
    let active = |l: &Value| l["status"] == "active";
    let price = |l: &Value| l["price"].as_i64().unwrap();
    let (id1, id2) = (id(&s1).to_string(), id(&s2).to_string());

    let cases: Vec<(String, Vec<Value>)> = vec![
        ("".into(), pick(&active)),
        ("status=active".into(), pick(&active)),
        ("status=sold".into(), pick(&|l| l["status"] == "sold")),
        (
            "status=archived".into(),
            pick(&|l| l["status"] == "archived"),
        ),
        (
            "status=reserved".into(),
            pick(&|l| l["status"] == "reserved"),
        ),
        (
            format!("seller_id={id1}"),
            pick(&|l| active(l) && l["seller_id"] == id1.as_str()),
        ),
        (
            format!("seller_id={id2}"),
            pick(&|l| active(l) && l["seller_id"] == id2.as_str()),
        ),
        ("seller_id=usr_nobody".into(), vec![]),
        (
            "listing_type=rent".into(),
            pick(&|l| active(l) && l["listing_type"] == "rent"),
        ),
        (
            "listing_type=sale".into(),
            pick(&|l| active(l) && l["listing_type"] == "sale"),
        ),
        (
            "min_price=200".into(),
            pick(&|l| active(l) && price(l) >= 200),
        ),
        (
            "max_price=100".into(),
            pick(&|l| active(l) && price(l) <= 100),
        ),
        (
            "min_price=100&max_price=200".into(),
            pick(&|l| active(l) && (100..=200).contains(&price(l))),
        ),
        (
            "min_price=200&max_price=200".into(),
            pick(&|l| active(l) && price(l) == 200),
        ),
        (
            "min_price=0&max_price=9223372036854775807".into(),
            pick(&active),
        ),
        ("min_price=501".into(), vec![]),
        (
            format!("seller_id={id1}&listing_type=sale&min_price=100&max_price=150&status=sold"),
            pick(&|l| l["status"] == "sold"),
        ),
        (
            "q=sale&listing_type=sale&max_price=100&sort=newest".into(),
            pick(&|l| active(l) && l["listing_type"] == "sale" && price(l) <= 100),
        ),
    ];
    for (query, want) in &cases {
        let (got, total) = search(&api, query).await;
        assert_eq!(got, newest_first(want), "{query}");
        assert_eq!(total as usize, want.len(), "{query}");
    }
    // Every item shows its seller.
    let r = api.get("/api/catalog?limit=200").await;
    for item in r.body["items"].as_array().unwrap() {
        assert_eq!(item["seller"]["id"], item["seller_id"], "{item}");
        assert_eq!(keys(item), fields_set(ITEM_FIELDS));
    }
}

#[tokio::test]
async fn the_four_sorts_order_the_catalog_and_cursors_page_without_gaps_or_repeats() {
    let api = Api::start().await;
    let (_, _, all) = market(&api).await;
    let active: Vec<Value> = all
        .iter()
        .filter(|l| l["status"] == "active")
        .cloned()
        .collect();
    let by_price = |desc: bool| {
        let mut v: Vec<(i64, String)> = active
            .iter()
            .map(|l| (l["price"].as_i64().unwrap(), id(l).to_string()))
            .collect();
        v.sort();
        if desc {
            v.reverse();
        }
        v.into_iter().map(|(_, i)| i).collect::<Vec<_>>()
    };
    for (sort, want) in [
        ("", newest_first(&active)),
        ("sort=newest", newest_first(&active)),
        ("sort=price_asc", by_price(false)),
        ("sort=price_desc", by_price(true)),
    ] {
        let (got, total) = search(&api, sort).await;
        assert_eq!(got, want, "{sort}");
        assert_eq!(total as usize, want.len());
        for limit in [1, 2, 3, 7] {
            let (items, total) = walk(&api, sort, limit).await;
            assert_eq!(ids(&items), want, "{sort} limit {limit}");
            assert_eq!(total as usize, want.len());
        }
    }
    // Filters keep their place across pages too.
    let (items, total) = walk(&api, "sort=price_asc&min_price=100&max_price=300", 2).await;
    let want: Vec<String> = by_price(false)
        .into_iter()
        .filter(|i| {
            let p = active.iter().find(|l| id(l) == i).unwrap()["price"]
                .as_i64()
                .unwrap();
            (100..=300).contains(&p)
        })
        .collect();
    assert_eq!(ids(&items), want);
    assert_eq!(total as usize, want.len());

    // A cursor belongs to its sort.
    let r = api.get("/api/catalog?sort=price_asc&limit=1").await;
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    api.get(&format!("/api/catalog?sort=newest&cursor={cursor}"))
        .await
        .problem(400, "invalid_cursor");
    api.get(&format!("/api/catalog?sort=price_desc&cursor={cursor}"))
        .await
        .problem(400, "invalid_cursor");
}

#[tokio::test]
async fn relevance_ranks_the_best_match_first_and_is_the_default_with_q() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let mut l = Vec::new();
    for (title, description) in [
        (
            "Helmet",
            "Fits any bike, and many other things that are not about cycling at all, really",
        ),
        ("Bike", "Bike, bike, bike: the best bike"),
        ("Lamp", "Nothing to do with it"),
        ("Bike", ""),
        ("Gloves", "Warm"),
    ] {
        l.push(
            api.listing(&seller, json!({"title": title, "description": description}))
                .await,
        );
    }
    api.catalog_holds(&l).await;
    let want = vec![
        id(&l[1]).to_string(),
        id(&l[3]).to_string(),
        id(&l[0]).to_string(),
    ];
    for query in [
        "q=bike&sort=relevance",
        "q=bike",
        "q=BIKES%20bike&sort=relevance",
    ] {
        let (got, total) = search(&api, query).await;
        if query.contains("BIKES") {
            // "bikes*" matches no word here.
            assert_eq!((got.len(), total), (0, 0), "{query}");
            continue;
        }
        assert_eq!(got, want, "{query}");
        assert_eq!(total, 3);
        for limit in [1, 2] {
            let (items, total) = walk(&api, query, limit).await;
            assert_eq!(ids(&items), want, "{query} limit {limit}");
            assert_eq!(total, 3);
        }
    }
    // The other sorts apply to text results too.
    let (got, _) = search(&api, "q=bike&sort=newest").await;
    assert_eq!(
        got,
        vec![
            id(&l[3]).to_string(),
            id(&l[1]).to_string(),
            id(&l[0]).to_string()
        ]
    );
}

#[tokio::test]
async fn invalid_search_parameters_are_named_and_bad_cursors_are_400() {
    let api = Api::start().await;
    let long_q = "a".repeat(501);
    let cases: Vec<(String, &[&str])> = vec![
        ("sort=cheapest".into(), &["sort"]),
        ("sort=".into(), &["sort"]),
        ("sort=relevance".into(), &["sort"]),
        ("limit=0".into(), &["limit"]),
        ("limit=201".into(), &["limit"]),
        ("limit=-1".into(), &["limit"]),
        ("limit=ten".into(), &["limit"]),
        ("limit=99999999999999999999".into(), &["limit"]),
        ("min_price=300&max_price=200".into(), &["min_price"]),
        ("min_price=-1".into(), &["min_price"]),
        ("max_price=-1".into(), &["max_price"]),
        ("min_price=ten".into(), &["min_price"]),
        ("max_price=99999999999999999999".into(), &["max_price"]),
        ("min_price=-99999999999999999999".into(), &["min_price"]),
        ("status=gone".into(), &["status"]),
        ("listing_type=swap".into(), &["listing_type"]),
        (format!("q={long_q}"), &["q"]),
        ("page=2".into(), &["page"]),
        ("sort=newest&sort=price_asc".into(), &["sort"]),
        ("seller=usr_x".into(), &["seller"]),
        (
            "sort=cheapest&limit=0&status=gone".into(),
            &["sort", "limit", "status"],
        ),
    ];
    for (query, fields) in &cases {
        let r = api.get(&format!("/api/catalog?{query}")).await;
        assert_eq!(r.status, 422, "{query}: {r:?}");
        r.invalid(fields);
    }
    for cursor in ["nope", "", "eyJmb28iOjF9", "%FF%FE", "e30"] {
        let r = api.get(&format!("/api/catalog?cursor={cursor}")).await;
        r.problem(400, "invalid_cursor");
    }
}

#[tokio::test]
async fn search_text_is_only_ever_text() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let lamp = api
        .listing(
            &seller,
            json!({"title": "Table lamp", "description": "items; DROP"}),
        )
        .await;
    let near = api
        .listing(
            &seller,
            json!({"title": "Near the sea", "description": "flat"}),
        )
        .await;
    api.catalog_holds(&[lamp.clone(), near.clone()]).await;
    let before = search(&api, "").await;

    for q in [
        "\"",
        "*",
        "NEAR(",
        "NEAR(lamp sea)",
        "'; DROP TABLE items; --",
        "\"lamp",
        "lamp\"",
        "lamp*",
        "(",
        ")",
        "AND",
        "OR NOT",
        "title:lamp",
        "^lamp",
        "-lamp",
        "+",
        "{",
        "lamp OR 1=1",
        "\\",
        "\0",
        "%25",
        "\u{202e}lamp",
        "🦀",
        "ﷺ",
    ] {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        for query in [
            format!("q={encoded}"),
            format!("q={encoded}&sort=price_asc"),
        ] {
            let r = api.get(&format!("/api/catalog?{query}")).await;
            assert_eq!(r.status, 200, "{q:?}: {r:?}");
            assert!(
                r.body["items"].is_array() && r.body["total"].is_u64(),
                "{q:?}: {r:?}"
            );
        }
    }
    // Words inside the noise still match, as words.
    for (q, want) in [
        ("'; DROP TABLE items; --", vec![id(&lamp)]),
        ("\"lamp", vec![id(&lamp)]),
        ("NEAR(", vec![id(&near)]),
        ("title:lamp", vec![]),
        ("items; DROP", vec![id(&lamp)]),
    ] {
        let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let (got, _) = search(&api, &format!("q={encoded}")).await;
        assert_eq!(got, want, "{q:?}");
    }
    // Nothing broke.
    assert_eq!(search(&api, "").await, before);
    assert_eq!(api.catalog_item(id(&lamp), 1).await["title"], "Table lamp");
}

#[tokio::test]
async fn a_seller_s_listings_follow_their_rename_and_leave_with_them() {
    let api = Api::start().await;
    let seller = api.user("Old Name", None).await;
    let keeper = api.user("Keeper", None).await;
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(
            api.listing(&seller, json!({"title": format!("Vase {i}")}))
                .await,
        );
    }
    let sold = api.listing(&seller, json!({"title": "Sold vase"})).await;
    let sold = api
        .patch(
            &format!("/api/listings/{}", id(&sold)),
            json!({"quantity": 0}),
        )
        .await
        .body;
    let kept = api.listing(&keeper, json!({"title": "Kept vase"})).await;
    api.catalog_holds(&mine).await;
    api.catalog_holds(&[sold.clone(), kept.clone()]).await;

    // They appear with the seller's name.
    let by_seller = format!("/api/catalog?seller_id={}", id(&seller));
    let r = api
        .until(&by_seller, |r| {
            r.body["total"] == 3
                && r.body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i["seller"]["name"] == "Old Name")
        })
        .await;
    assert_eq!(
        ids(r.body["items"].as_array().unwrap()),
        newest_first(&mine)
    );

    // A rename shows in every item.
    let r = api
        .patch(
            &format!("/api/users/{}", id(&seller)),
            json!({"name": "New Name"}),
        )
        .await;
    assert_eq!(r.status, 200);
    api.until(&by_seller, |r| {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["seller"]["name"] == "New Name")
    })
    .await;
    for l in &mine {
        assert_eq!(
            api.catalog_item(id(l), 1).await["seller"]["name"],
            "New Name"
        );
    }
    api.until(&format!("/api/catalog/{}", id(&sold)), |r| {
        r.body["seller"]["name"] == "New Name"
    })
    .await;
    assert_eq!(
        api.catalog_item(id(&kept), 1).await["seller"]["name"],
        "Keeper"
    );

    // Deleting the seller archives their active listings and takes them out of the catalog.
    assert_eq!(
        api.delete(&format!("/api/users/{}", id(&seller)))
            .await
            .status,
        204
    );
    for l in &mine {
        let r = api
            .until(&format!("/api/listings/{}", id(l)), |r| {
                r.body["status"] == "archived"
            })
            .await;
        assert_eq!(r.entity(200)["version"], 2);
        // The view may hold the archived version before it hears of the deletion: eventually 404.
        let r = api
            .until(&format!("/api/catalog/{}?min_version=2", id(l)), |r| {
                r.status == 404
            })
            .await;
        r.problem(404, "not_found");
    }
    // A deleted seller's listing cannot be made live again.
    let listing = format!("/api/listings/{}", id(&mine[0]));
    let r = api.patch(&listing, json!({"status": "active"})).await;
    assert_eq!(
        r.problem(422, "unknown_seller")["errors"][0]["field"],
        "seller_id"
    );
    assert_eq!(api.get(&listing).await.entity(200)["version"], 2);
    let r = api.get(&format!("/api/listings/{}", id(&sold))).await;
    assert_eq!(r.body["status"], "sold", "a sold listing stays sold");
    api.until(&format!("/api/catalog/{}", id(&sold)), |r| r.status == 404)
        .await;
    for status in ["active", "archived", "sold"] {
        let (got, total) =
            search(&api, &format!("seller_id={}&status={status}", id(&seller))).await;
        assert_eq!((got.len(), total), (0, 0), "{status}");
    }
    let (got, _) = search(&api, "").await;
    assert_eq!(got, [id(&kept)]);

    // The archiving is told as events, caused by the deletion.
    let events = api.listing_events(&keeper).await;
    for l in &mine {
        let last = events
            .iter()
            .rev()
            .find(|e| e["aggregate_id"] == id(l))
            .unwrap();
        assert_eq!(
            (last["type"].as_str(), last["data"]["status"].as_str()),
            (Some("listing.updated"), Some("archived"))
        );
        assert!(
            last["causation_id"]
                .as_str()
                .is_some_and(|c| c.starts_with("evt_")),
            "{last}"
        );
    }
}

#[tokio::test]
async fn a_deleted_listing_leaves_the_catalog() {
    let api = Api::start().await;
    let seller = api.user("Seller", None).await;
    let a = api.listing(&seller, json!({"title": "Stays"})).await;
    let b = api.listing(&seller, json!({"title": "Goes"})).await;
    api.catalog_holds(&[a.clone(), b.clone()]).await;
    assert_eq!(search(&api, "q=goes").await.0, [id(&b)]);

    let r = api
        .call(Method::DELETE, &format!("/api/listings/{}", id(&b)), None)
        .await;
    assert_eq!(r.status, 204);
    api.get(&format!("/api/catalog/{}?min_version=2", id(&b)))
        .await
        .problem(404, "not_found");
    assert_eq!(search(&api, "").await, (vec![id(&a).to_string()], 1));
    assert_eq!(search(&api, "q=goes").await, (vec![], 0));
}
