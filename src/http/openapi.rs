//! `GET /api/openapi.json`: the OpenAPI 3.1 document, built from one table of every route (the
//! API's table of contents) and the schemas of the request and response types themselves, so a
//! field added to a type shows in the document. A test checks every route here is served.

use super::AppState;
use crate::bus::rpc::FieldError;
use crate::services::catalog::query::{CatalogItem, Results, Seller};
use crate::services::listings::model::{CreateListing, Listing, PatchListing};
use crate::services::users::model::{CreateUser, PatchUser, ReplaceUser, User};
use axum::Router;
use axum::routing::get;
use std::collections::BTreeMap;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    RefOr, Required, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { axum::Json(document()) }),
    )
}

/// One route as the document describes it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: (name, JSON type, description).
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Request body schema (a component name), if any.
    pub body: Option<&'static str>,
    /// Success status and body schema (a component name, `List<Name>` for a list, or none).
    pub ok: (u16, Option<&'static str>),
    /// Error statuses with the `code`s they carry.
    pub errors: &'static [(u16, &'static str)],
}

const PAGE: [(&str, &str, &str); 2] = [
    ("limit", "integer", "1 to 200 (default 50)"),
    ("cursor", "string", "the next_cursor of the previous page"),
];
const WRITE_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "malformed_json, invalid_if_match, invalid_idempotency_key",
    ),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (422, "validation_failed"),
];

/// Every route, in the order of API.md.
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/healthz",
        tag: "health",
        summary: "Alive: 200 while the process lives",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[],
    },
    Route {
        method: "get",
        path: "/readyz",
        tag: "health",
        summary: "Ready: every part up and caught up; else 503 naming the failing parts",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[(503, "not_ready")],
    },
    Route {
        method: "get",
        path: "/metrics",
        tag: "health",
        summary: "Prometheus text: requests, outbox backlogs, consumer outcomes, broker restarts (loopback callers, or any token)",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[],
    },
    Route {
        method: "get",
        path: "/api/openapi.json",
        tag: "meta",
        summary: "This document",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[],
    },
    Route {
        method: "get",
        path: "/api/auth/setup",
        tag: "auth",
        summary: "Whether first-run setup is still needed (no admin account yet)",
        query: &[],
        body: None,
        ok: (200, Some("SetupStatus")),
        errors: &[],
    },
    Route {
        method: "post",
        path: "/api/auth/setup",
        tag: "auth",
        summary: "Create the first admin with the one-time setup token from Souk's log; signs them in (session cookie)",
        query: &[],
        body: Some("SetupBody"),
        ok: (201, Some("Me")),
        errors: &[
            (401, "invalid_setup_token"),
            (409, "already_set_up"),
            (429, "too_many_attempts"),
        ],
    },
    Route {
        method: "post",
        path: "/api/auth/login",
        tag: "auth",
        summary: "Sign in: sets the HttpOnly SameSite=Strict session cookie",
        query: &[],
        body: Some("LoginBody"),
        ok: (200, Some("Me")),
        errors: &[(401, "invalid_credentials"), (429, "too_many_attempts")],
    },
    Route {
        method: "post",
        path: "/api/auth/logout",
        tag: "auth",
        summary: "Sign out: the session ends on the server and the cookie is cleared",
        query: &[],
        body: None,
        ok: (204, None),
        errors: &[],
    },
    Route {
        method: "get",
        path: "/api/auth/me",
        tag: "auth",
        summary: "The caller: id, email, role and the CSRF token cookie requests must send",
        query: &[],
        body: None,
        ok: (200, Some("Me")),
        errors: &[],
    },
    Route {
        method: "post",
        path: "/api/auth/password",
        tag: "auth",
        summary: "Change your password; your other sessions end",
        query: &[],
        body: Some("PasswordBody"),
        ok: (204, None),
        errors: &[(403, "not_an_account")],
    },
    Route {
        method: "get",
        path: "/api/admin/accounts",
        tag: "auth",
        summary: "Console accounts",
        query: &[],
        body: None,
        ok: (200, Some("List<Account>")),
        errors: &[],
    },
    Route {
        method: "post",
        path: "/api/admin/accounts",
        tag: "auth",
        summary: "Create a console account",
        query: &[],
        body: Some("AccountCreateBody"),
        ok: (201, Some("Account")),
        errors: &[(409, "email_taken")],
    },
    Route {
        method: "patch",
        path: "/api/admin/accounts/{id}",
        tag: "auth",
        summary: "Change an account's role, email or password (a new password ends its sessions; If-Match)",
        query: &[],
        body: Some("AccountPatchBody"),
        ok: (200, Some("Account")),
        errors: &[
            (404, "not_found"),
            (409, "email_taken, last_admin"),
            (412, "precondition_failed"),
        ],
    },
    Route {
        method: "delete",
        path: "/api/admin/accounts/{id}",
        tag: "auth",
        summary: "Remove an account and end its sessions",
        query: &[],
        body: None,
        ok: (204, None),
        errors: &[(404, "not_found"), (409, "last_admin")],
    },
    Route {
        method: "get",
        path: "/api/admin/tokens",
        tag: "auth",
        summary: "API tokens (never their secrets)",
        query: &[],
        body: None,
        ok: (200, Some("List<ApiToken>")),
        errors: &[],
    },
    Route {
        method: "post",
        path: "/api/admin/tokens",
        tag: "auth",
        summary: "Create an API token; the secret is in `token`, shown only in this answer",
        query: &[],
        body: Some("TokenCreateBody"),
        ok: (201, Some("CreatedToken")),
        errors: &[],
    },
    Route {
        method: "delete",
        path: "/api/admin/tokens/{id}",
        tag: "auth",
        summary: "Revoke an API token",
        query: &[],
        body: None,
        ok: (204, None),
        errors: &[(404, "not_found")],
    },
    Route {
        method: "post",
        path: "/api/users",
        tag: "users",
        summary: "Create a user (accepts Idempotency-Key)",
        query: &[],
        body: Some("CreateUser"),
        ok: (201, Some("User")),
        errors: &[
            (409, "email_taken"),
            (422, "validation_failed, idempotency_key_reused"),
        ],
    },
    Route {
        method: "get",
        path: "/api/users",
        tag: "users",
        summary: "Users, newest first; q is a name or email prefix",
        query: &[
            ("q", "string", "name or email prefix, any case"),
            PAGE[0],
            PAGE[1],
        ],
        body: None,
        ok: (200, Some("List<User>")),
        errors: &[(400, "invalid_cursor")],
    },
    Route {
        method: "get",
        path: "/api/users/{id}",
        tag: "users",
        summary: "A user (ETag: its version)",
        query: &[],
        body: None,
        ok: (200, Some("User")),
        errors: &[(404, "not_found")],
    },
    Route {
        method: "put",
        path: "/api/users/{id}",
        tag: "users",
        summary: "Replace a user (If-Match)",
        query: &[],
        body: Some("ReplaceUser"),
        ok: (200, Some("User")),
        errors: &[
            (404, "not_found"),
            (409, "email_taken"),
            (412, "precondition_failed"),
        ],
    },
    Route {
        method: "patch",
        path: "/api/users/{id}",
        tag: "users",
        summary: "Change some fields (email: null removes it; If-Match)",
        query: &[],
        body: Some("PatchUser"),
        ok: (200, Some("User")),
        errors: &[
            (404, "not_found"),
            (409, "email_taken"),
            (412, "precondition_failed"),
        ],
    },
    Route {
        method: "post",
        path: "/api/users/{id}/disable",
        tag: "users",
        summary: "Disable a user",
        query: &[],
        body: None,
        ok: (200, Some("User")),
        errors: &[
            (404, "not_found"),
            (409, "already_disabled"),
            (412, "precondition_failed"),
        ],
    },
    Route {
        method: "post",
        path: "/api/users/{id}/enable",
        tag: "users",
        summary: "Enable a user",
        query: &[],
        body: None,
        ok: (200, Some("User")),
        errors: &[
            (404, "not_found"),
            (409, "already_enabled"),
            (412, "precondition_failed"),
        ],
    },
    Route {
        method: "delete",
        path: "/api/users/{id}",
        tag: "users",
        summary: "Delete a user; their active listings are archived",
        query: &[],
        body: None,
        ok: (204, None),
        errors: &[(404, "not_found"), (412, "precondition_failed")],
    },
    Route {
        method: "post",
        path: "/api/listings",
        tag: "listings",
        summary: "Create a listing (accepts Idempotency-Key)",
        query: &[],
        body: Some("CreateListing"),
        ok: (201, Some("Listing")),
        errors: &[
            (
                422,
                "unknown_seller, validation_failed, idempotency_key_reused",
            ),
            (503, "dependency_unavailable"),
        ],
    },
    Route {
        method: "get",
        path: "/api/listings",
        tag: "listings",
        summary: "Listings, newest first",
        query: &[
            ("seller_id", "string", "only this seller's"),
            ("status", "string", "active, reserved, sold or archived"),
            PAGE[0],
            PAGE[1],
        ],
        body: None,
        ok: (200, Some("List<Listing>")),
        errors: &[(400, "invalid_cursor")],
    },
    Route {
        method: "get",
        path: "/api/listings/{id}",
        tag: "listings",
        summary: "A listing (ETag: its version)",
        query: &[],
        body: None,
        ok: (200, Some("Listing")),
        errors: &[(404, "not_found")],
    },
    Route {
        method: "patch",
        path: "/api/listings/{id}",
        tag: "listings",
        summary: "Change some fields; stock 0 makes it sold (If-Match)",
        query: &[],
        body: Some("PatchListing"),
        ok: (200, Some("Listing")),
        errors: &[
            (404, "not_found"),
            (412, "precondition_failed"),
            (422, "unknown_seller"),
        ],
    },
    Route {
        method: "delete",
        path: "/api/listings/{id}",
        tag: "listings",
        summary: "Delete a listing",
        query: &[],
        body: None,
        ok: (204, None),
        errors: &[(404, "not_found"), (412, "precondition_failed")],
    },
    Route {
        method: "get",
        path: "/api/catalog",
        tag: "catalog",
        summary: "Search the catalog; only active items unless status is given; sort defaults to relevance with q, else newest",
        query: &[
            (
                "q",
                "string",
                "full text over title and description: every word must match, each as a prefix, in any case and with or without diacritics (cafe finds Café)",
            ),
            ("seller_id", "string", ""),
            ("listing_type", "string", "sale or rent"),
            ("status", "string", ""),
            ("min_price", "integer", ""),
            ("max_price", "integer", ""),
            (
                "sort",
                "string",
                "newest, price_asc, price_desc or relevance (rarer words weigh more, and more again in the title or when repeated; ties newest first)",
            ),
            PAGE[0],
            PAGE[1],
        ],
        body: None,
        ok: (200, Some("Results")),
        errors: &[(400, "invalid_cursor"), (422, "validation_failed")],
    },
    Route {
        method: "get",
        path: "/api/catalog/{id}",
        tag: "catalog",
        summary: "A catalog item; min_version waits up to 2 s for that version (read-your-writes)",
        query: &[("min_version", "integer", "")],
        body: None,
        ok: (200, Some("CatalogItem")),
        errors: &[(404, "not_found")],
    },
    Route {
        method: "get",
        path: "/api/events",
        tag: "events",
        summary: "Stored events by subject filter, oldest first",
        query: &[
            ("subject", "string", "e.g. souk.events.user.>"),
            ("after_seq", "integer", ""),
            PAGE[0],
            PAGE[1],
        ],
        body: None,
        ok: (200, None),
        errors: &[(400, "invalid_cursor"), (422, "validation_failed")],
    },
    Route {
        method: "get",
        path: "/api/events/live",
        tag: "events",
        summary: "Server-Sent Events, one per bus event",
        query: &[("subject", "string", "")],
        body: None,
        ok: (200, None),
        errors: &[(422, "validation_failed")],
    },
    Route {
        method: "get",
        path: "/api/admin/overview",
        tag: "admin",
        summary: "Services, broker, streams, consumers, outboxes, dead letters, stores",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[],
    },
    Route {
        method: "get",
        path: "/api/admin/dead-letters",
        tag: "admin",
        summary: "Dead letters, oldest first",
        query: &[("consumer", "string", ""), PAGE[0], PAGE[1]],
        body: None,
        ok: (200, None),
        errors: &[(400, "invalid_cursor")],
    },
    Route {
        method: "post",
        path: "/api/admin/dead-letters/{id}/retry",
        tag: "admin",
        summary: "Hand a dead letter to its consumer's handler again",
        query: &[],
        body: None,
        ok: (200, Some("RetryReply")),
        errors: &[
            (404, "not_found"),
            (409, "retry_failed"),
            (422, "not_an_event"),
        ],
    },
    Route {
        method: "delete",
        path: "/api/admin/dead-letters/{id}",
        tag: "admin",
        summary: "Discard a dead letter",
        query: &[],
        body: None,
        ok: (204, None),
        errors: &[(404, "not_found")],
    },
    Route {
        method: "get",
        path: "/api/admin/projections",
        tag: "admin",
        summary: "Read models: positions, lag, rebuild progress (and the catalog's `search_index`: `ready` with `rows` and `words`, `building`, or `off`)",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[],
    },
    Route {
        method: "post",
        path: "/api/admin/projections/{name}/rebuild",
        tag: "admin",
        summary: "Rebuild a read model beside the live one, then swap",
        query: &[],
        body: None,
        ok: (202, Some("Progress")),
        errors: &[(404, "not_found"), (409, "rebuild_running")],
    },
    Route {
        method: "post",
        path: "/public/users",
        tag: "public",
        summary: "Reference gateway shape: {name} → {user}; errors {result:false,error}",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[(400, ""), (413, "")],
    },
    Route {
        method: "post",
        path: "/public/listings",
        tag: "public",
        summary: "Reference gateway shape: {user_id, listing_type, price} → {listing}",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[(400, ""), (404, ""), (413, "")],
    },
    Route {
        method: "get",
        path: "/public/listings",
        tag: "public",
        summary: "Reference gateway shape: newest first, page_num/page_size/user_id",
        query: &[
            ("page_num", "integer", ""),
            ("page_size", "integer", ""),
            ("user_id", "string", ""),
        ],
        body: None,
        ok: (200, None),
        errors: &[(400, "")],
    },
];

fn schema_ref(name: &str) -> RefOr<Schema> {
    if let Some(inner) = name.strip_prefix("List<").and_then(|n| n.strip_suffix('>')) {
        let list = ObjectBuilder::new()
            .property(
                "items",
                ArrayBuilder::new().items(Ref::from_schema_name(inner)),
            )
            .required("items")
            .property(
                "next_cursor",
                ObjectBuilder::new().schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Null,
                ])),
            )
            .required("next_cursor")
            .build();
        return RefOr::T(Schema::Object(list));
    }
    RefOr::Ref(Ref::from_schema_name(name))
}

fn json(name: &str) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema_ref(name))).build()
}

fn method(m: &str) -> HttpMethod {
    match m {
        "post" => HttpMethod::Post,
        "put" => HttpMethod::Put,
        "patch" => HttpMethod::Patch,
        "delete" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// A route's error statuses, each with every `code` it can carry: its own, then those every
/// route of its kind shares (a body's, a query's, the gateway's when a service does not answer).
fn error_codes(r: &Route, rule: super::auth::Access) -> BTreeMap<u16, Vec<&'static str>> {
    let mut out: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
    let mut add = |status: u16, codes: &'static str| {
        let list = out.entry(status).or_default();
        for code in codes.split(", ").filter(|c| !c.is_empty()) {
            if !list.contains(&code) {
                list.push(code);
            }
        }
    };
    for (status, codes) in r.errors {
        add(*status, codes);
    }
    if r.body.is_some() {
        for (status, codes) in WRITE_ERRORS {
            add(*status, codes);
        }
    }
    if !r.query.is_empty() {
        add(422, "validation_failed");
    }
    if rule != super::auth::Access::Anyone && r.path.starts_with("/api/") {
        add(503, "not_ready, service_unavailable, store_unavailable");
        add(504, "timeout");
    }
    out
}

/// The whole document.
pub fn document() -> OpenApi {
    use super::auth::{Access, access};
    let mut paths = PathsBuilder::new();
    for r in ROUTES {
        let rule = access(
            &axum::http::Method::from_bytes(r.method.to_uppercase().as_bytes())
                .expect("routes use standard methods"),
            r.path,
            false,
        );
        let who = match rule {
            Access::Anyone => "Open to anyone.".to_string(),
            Access::SignedIn => "Any signed-in caller (session or API token).".to_string(),
            Access::LoopbackOrSignedIn => "Loopback callers, or any API token.".to_string(),
            Access::Role(role) => format!(
                "Needs the `{}` role or higher.{}",
                role.as_str(),
                if r.path.starts_with("/api/catalog")
                    || r.path == "/public/listings" && r.method == "get"
                {
                    " Open to anyone when `catalog_public` is true."
                } else {
                    ""
                }
            ),
        };
        let mut op = OperationBuilder::new()
            .summary(Some(r.summary))
            .description(Some(who))
            .tag(r.tag);
        if rule != Access::Anyone {
            op = op.securities(Some([
                utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
                utoipa::openapi::security::SecurityRequirement::new(
                    "session",
                    Vec::<String>::new(),
                ),
            ]));
            let problem = || {
                ContentBuilder::new()
                    .schema(Some(schema_ref("Problem")))
                    .build()
            };
            op = op.response(
                "401",
                ResponseBuilder::new()
                    .description("code: unauthorized, session_expired, token_expired")
                    .content("application/problem+json", problem())
                    .build(),
            );
            if matches!(rule, Access::Role(_)) || r.method != "get" {
                op = op.response(
                    "403",
                    ResponseBuilder::new()
                        .description("code: forbidden (role too weak), csrf_failed (a cookie request that changes something without X-CSRF-Token)")
                        .content("application/problem+json", problem())
                        .build(),
                );
            }
        }
        for segment in r.path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True),
            );
        }
        for (name, ty, description) in r.query {
            let ty = if *ty == "integer" {
                Type::Integer
            } else {
                Type::String
            };
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .description(Some(*description).filter(|d| !d.is_empty()))
                    .schema(Some(ObjectBuilder::new().schema_type(ty))),
            );
        }
        if let Some(body) = r.body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", json(body))
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        let mut ok = ResponseBuilder::new().description("success");
        if let Some(schema) = r.ok.1 {
            ok = ok.content("application/json", json(schema));
        }
        op = op.response(r.ok.0.to_string(), ok.build());
        // The public BFF answers its own errors in the reference gateway's shape.
        let (error_type, error_schema) = if r.path.starts_with("/public/") {
            ("application/json", "PublicError")
        } else {
            ("application/problem+json", "Problem")
        };
        for (status, codes) in error_codes(r, rule) {
            let content = ContentBuilder::new()
                .schema(Some(schema_ref(error_schema)))
                .build();
            let description = if codes.is_empty() {
                "error".to_string()
            } else {
                format!("code: {}", codes.join(", "))
            };
            op = op.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(description)
                    .content(error_type, content)
                    .build(),
            );
        }
        paths = paths.path(r.path, PathItem::new(method(r.method), op.build()));
    }
    use crate::services::auth::model as auth_model;
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
    };
    let mut components = ComponentsBuilder::new()
        .schema("Problem", problem_schema())
        .schema("PublicError", public_error_schema())
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`souk_…`) from POST /api/admin/tokens or `souk admin token create`"))
                    .build(),
            ),
        )
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::COOKIE,
                "The console session from POST /api/auth/login; requests that change something also send X-CSRF-Token",
            ))),
        );
    macro_rules! schemas {
        ($($t:ty),*) => { $( components = components.schema(<$t as ToSchema>::name(), <$t as PartialSchema>::schema()); )* };
    }
    schemas!(
        User,
        CreateUser,
        ReplaceUser,
        PatchUser,
        Listing,
        CreateListing,
        PatchListing,
        CatalogItem,
        Seller,
        Results,
        FieldError
    );
    schemas!(
        auth_model::Role,
        auth_model::Account,
        auth_model::ApiToken,
        auth_model::CreatedToken,
        auth_model::SetupBody,
        auth_model::LoginBody,
        auth_model::PasswordBody,
        auth_model::AccountCreateBody,
        auth_model::AccountPatchBody,
        auth_model::TokenCreateBody,
        super::accounts::Me,
        crate::services::auth::rpc::Status
    );
    schemas!(
        crate::bus::deadletter::RetryReply,
        crate::services::catalog::rebuild::Progress
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Souk")
                .version(crate::VERSION)
                .description(Some(
                    "Souk's HTTP API. JSON in and out; unknown fields are refused; errors are \
                     application/problem+json with a stable `code`; every response carries \
                     X-Request-Id; GET sends ETag: \"<version>\" and writes take If-Match. \
                     A create's Idempotency-Key (1-255 visible ASCII characters) is the caller's \
                     own and is remembered for `idempotency_retention` (24 hours by default); a \
                     repeat after that is a new create.",
                )),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// `{type, title, status, code, detail, errors[]}`
/// `{"result": false, "error": "…"}`, the reference gateway's error.
fn public_error_schema() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .property("result", ObjectBuilder::new().schema_type(Type::Boolean))
            .property("error", ObjectBuilder::new().schema_type(Type::String))
            .required("result")
            .required("error")
            .build(),
    )
}

fn problem_schema() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    Schema::Object(
        ObjectBuilder::new()
            .property("type", string())
            .property("title", string())
            .property("status", ObjectBuilder::new().schema_type(Type::Integer))
            .property("code", string())
            .property("detail", string())
            .property(
                "errors",
                ArrayBuilder::new().items(Ref::from_schema_name("FieldError")),
            )
            .required("type")
            .required("title")
            .required("status")
            .required("code")
            .build(),
    )
}
