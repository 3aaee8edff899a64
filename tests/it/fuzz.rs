//! Property tests over the decoders that take untrusted input: the event envelope, the request
//! bodies, the catalog query (parameters → validation → the real SQLite/FTS5 query) and cursors.
//! No input may panic; every refusal is a 4xx. CI runs the default 256 cases per property; a
//! longer run: `PROPTEST_CASES=20000 cargo test --test it fuzz`.

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;
use souk::services::catalog::query::{self, QueryError, Search};

/// Arbitrary JSON, nested a few levels, with the awkward strings and numbers.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(serde_json::json!(u64::MAX)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("\"; DROP TABLE items; --".into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_string()),
                    Just("email".to_string()),
                    Just("title".to_string()),
                    Just("price".to_string()),
                    Just("seller_id".to_string()),
                    Just("role".to_string()),
                    Just("password".to_string()),
                    Just("expires_at".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Decodes `bytes` as `T` the way every write route does; a refusal must be 400 or 422.
fn decodes_or_refuses<T: DeserializeOwned>(bytes: &[u8]) -> Result<(), TestCaseError> {
    match souk::http::extract::decode_json::<T>(bytes) {
        Ok(_) => Ok(()),
        Err(p) => {
            let status = p.status().as_u16();
            prop_assert!(
                status == 400 || status == 422,
                "status {status} for {:?}",
                String::from_utf8_lossy(bytes)
            );
            Ok(())
        }
    }
}

fn every_body(bytes: &[u8]) -> Result<(), TestCaseError> {
    use souk::services::auth::model as a;
    use souk::services::listings::model as l;
    use souk::services::users::model as u;
    decodes_or_refuses::<u::CreateUser>(bytes)?;
    decodes_or_refuses::<u::ReplaceUser>(bytes)?;
    decodes_or_refuses::<u::PatchUser>(bytes)?;
    decodes_or_refuses::<l::CreateListing>(bytes)?;
    decodes_or_refuses::<l::PatchListing>(bytes)?;
    decodes_or_refuses::<a::SetupBody>(bytes)?;
    decodes_or_refuses::<a::LoginBody>(bytes)?;
    decodes_or_refuses::<a::PasswordBody>(bytes)?;
    decodes_or_refuses::<a::AccountCreateBody>(bytes)?;
    decodes_or_refuses::<a::AccountPatchBody>(bytes)?;
    decodes_or_refuses::<a::TokenCreateBody>(bytes)?;
    Ok(())
}

proptest! {
    #[test]
    fn request_bodies_never_panic_and_refuse_with_4xx(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        every_body(&bytes)?;
    }

    #[test]
    fn json_request_bodies_never_panic_and_refuse_with_4xx(value in json()) {
        every_body(&serde_json::to_vec(&value).unwrap())?;
    }

    #[test]
    fn the_envelope_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), value in json()) {
        let _ = souk::bus::Envelope::decode(&bytes);
        let _ = souk::bus::Envelope::decode(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn cursors_never_panic(text in ".{0,80}", b64 in "[A-Za-z0-9_-]{0,80}") {
        let _ = souk::services::decode_cursor::<String>(&text);
        let _ = souk::services::decode_cursor::<Value>(&b64);
        let _ = souk::services::decode_cursor::<(String, i64)>(&b64);
    }
}

/// One real catalog store for the query properties.
fn catalog() -> &'static std::sync::Arc<souk::services::catalog::store::Db> {
    static DB: std::sync::OnceLock<(
        tempfile::TempDir,
        std::sync::Arc<souk::services::catalog::store::Db>,
    )> = std::sync::OnceLock::new();
    &DB.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let db = souk::services::catalog::store::Db::open(dir.path()).unwrap();
        (dir, db)
    })
    .1
}

/// Query-string pieces a client (or an attacker) might send.
fn query_string() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        ".{0,30}",
        Just("\"".to_string()),
        Just("*".to_string()),
        Just("NEAR(".to_string()),
        Just("'; DROP TABLE items; --".to_string()),
        Just("a OR b NOT c".to_string()),
        Just("title:lamp".to_string()),
        Just("^x".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775808".to_string()),
        Just("relevance".to_string()),
        Just("price_asc".to_string()),
        Just("active".to_string()),
        Just("sale".to_string()),
    ];
    let key = prop_oneof![
        Just("q"),
        Just("seller_id"),
        Just("listing_type"),
        Just("status"),
        Just("min_price"),
        Just("max_price"),
        Just("sort"),
        Just("limit"),
        Just("cursor"),
        Just("bogus"),
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, &v);
        }
        out.finish()
    })
}

proptest! {
    #[test]
    fn catalog_queries_are_answered_or_refused_never_an_internal_error(qs in query_string()) {
        // What the gateway does with the query string, then what the catalog service does.
        let Ok(search) = serde_urlencoded::from_str::<Search>(&qs) else { return Ok(()) };
        if souk::services::catalog::rpc::validate(&search).is_err() {
            return Ok(());
        }
        match query::search(catalog(), &search, 50) {
            Ok(_) | Err(QueryError::BadCursor) => {}
            Err(QueryError::Store(e)) => prop_assert!(false, "{qs:?} failed inside the store: {e}"),
        }
    }
}
