//! The OpenAPI document and the router agree: every documented route is served.

use crate::support::Souk;
use serde_json::Value;

#[tokio::test]
async fn every_documented_route_is_served_and_documented() {
    let souk = Souk::ready().await;
    let (status, doc) = souk
        .json(reqwest::Method::GET, "/api/openapi.json", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["components"]["schemas"]["User"]["properties"]["email"].is_object(),
        "{}",
        doc["components"]
    );
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        souk::http::openapi::ROUTES.len(),
        "a route shares a method and path with another"
    );

    // Each status lists every code it carries: the route's own and the shared ones merged.
    let codes = |method: &str, path: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["description"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} documents no {status}"))
            .to_string()
    };
    let create = codes("post", "/api/listings", "422");
    for code in [
        "unknown_seller",
        "validation_failed",
        "idempotency_key_reused",
    ] {
        assert!(create.contains(code), "POST /api/listings 422: {create}");
    }
    assert!(codes("patch", "/api/listings/{id}", "422").contains("unknown_seller"));
    for (method, path) in [("get", "/api/users"), ("get", "/api/catalog/{id}")] {
        assert!(
            codes(method, path, "422").contains("validation_failed"),
            "{path}"
        );
        assert!(codes(method, path, "504").contains("timeout"), "{path}");
    }
    let list = &doc["paths"]["/api/users"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(
        list["properties"]["next_cursor"]["type"],
        serde_json::json!(["string", "null"]),
        "{list}"
    );
    // The public BFF's own errors are the reference shape, not problem+json.
    let public = &doc["paths"]["/public/users"]["post"]["responses"]["413"]["content"];
    assert_eq!(
        public["application/json"]["schema"]["$ref"], "#/components/schemas/PublicError",
        "{public}"
    );

    for r in souk::http::openapi::ROUTES {
        assert!(
            doc["paths"][r.path][r.method].is_object(),
            "{} {} is not in the document",
            r.method,
            r.path
        );
        let path = r
            .path
            .replace("{id}", "usr_00000000000000000000000000")
            .replace("{name}", "catalog");
        let method = reqwest::Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
        let mut req = souk.http().request(method, format!("{}{path}", souk.url));
        if matches!(r.method, "post" | "put" | "patch") {
            req = req.header("content-type", "application/json").body("{}");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert_ne!(
            status, 405,
            "{} {} is documented but not routed for that method",
            r.method, r.path
        );
        if path.ends_with("/live") {
            continue; // an event stream: headers are enough
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_ne!(
            body["detail"], "no such route",
            "{} {} is documented but not routed",
            r.method, r.path
        );
    }
}
