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
        summary: "Prometheus text: requests, outbox backlogs, consumer outcomes, broker restarts (loopback only)",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[(403, "forbidden")],
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
        errors: &[(404, "not_found"), (412, "precondition_failed")],
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
                "full text over title and description; each word a prefix",
            ),
            ("seller_id", "string", ""),
            ("listing_type", "string", "sale or rent"),
            ("status", "string", ""),
            ("min_price", "integer", ""),
            ("max_price", "integer", ""),
            (
                "sort",
                "string",
                "newest, price_asc, price_desc or relevance",
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
        summary: "Read models: positions, lag, rebuild progress",
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
        errors: &[(400, "")],
    },
    Route {
        method: "post",
        path: "/public/listings",
        tag: "public",
        summary: "Reference gateway shape: {user_id, listing_type, price} → {listing}",
        query: &[],
        body: None,
        ok: (200, None),
        errors: &[(400, ""), (404, "")],
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
                ObjectBuilder::new().schema_type(Type::String),
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

/// The whole document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for r in ROUTES {
        let mut op = OperationBuilder::new().summary(Some(r.summary)).tag(r.tag);
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
        for (status, codes) in r.errors {
            let problem = ContentBuilder::new()
                .schema(Some(schema_ref("Problem")))
                .build();
            let description = if codes.is_empty() {
                "error".to_string()
            } else {
                format!("code: {codes}")
            };
            op = op.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", problem)
                    .build(),
            );
        }
        if r.body.is_some() {
            for (status, codes) in WRITE_ERRORS {
                let problem = ContentBuilder::new()
                    .schema(Some(schema_ref("Problem")))
                    .build();
                op = op.response(
                    status.to_string(),
                    ResponseBuilder::new()
                        .description(format!("code: {codes}"))
                        .content("application/problem+json", problem)
                        .build(),
                );
            }
        }
        paths = paths.path(r.path, PathItem::new(method(r.method), op.build()));
    }
    let mut components = ComponentsBuilder::new().schema("Problem", problem_schema());
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
                     X-Request-Id; GET sends ETag: \"<version>\" and writes take If-Match.",
                )),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// `{type, title, status, code, detail, errors[]}`
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
