//! The admin console: the files of `web/` (plain ES modules, CSS, HTML), embedded into the
//! binary by rust-embed (debug builds read them from disk, so edits show on reload).
//!
//! | path                          | answer                                                   |
//! |-------------------------------|----------------------------------------------------------|
//! | GET /                         | `index.html`, `no-cache`, with the versioned base in it  |
//! | GET /console/{version}/{*path}| a file of `web/`; immutable for a year when `version` is current |
//! | GET /other/extension-less/path| `index.html` too (the console's own pages: /users, /setup…) |
//! | anything else                 | 404 problem+json (a missing `/x.js`, any unknown `/api/…`) |
//!
//! Every file sits under one base, `/console/<hash of all files>/`, so a new build gets new
//! URLs and relative module imports stay inside the same version; only `index.html` is
//! revalidated. Compression (brotli, gzip) is applied here and not to the API, whose answers
//! are small and whose event streams must not be buffered. No route here needs a caller: the
//! console signs in through the API like any client.

use super::error::Problem;
use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use tower_http::compression::CompressionLayer;

#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Web;

/// Where every console file is served from: `/console/{version}/…`.
pub const PREFIX: &str = "/console/";
/// The placeholder in `index.html` that becomes `/console/<version>/`.
const BASE_MARK: &str = "%BASE%";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/console/{version}/{*path}", get(asset))
        .layer(CompressionLayer::new())
}

/// The router's fallback: the console's pages for extension-less paths outside the API, a
/// problem+json 404 for everything else.
pub fn fallback() -> Router {
    Router::new().fallback(spa).layer(CompressionLayer::new())
}

/// Every embedded file, by path under `web/`, with the MIME type it is served with.
pub fn files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Web::iter()
        .filter_map(|p| Web::get(&p).map(|f| (p.to_string(), content_type(&f))))
        .collect();
    out.sort();
    out
}

/// The hash of every file's path and content: the version in the assets' URLs.
pub fn version() -> String {
    fn compute() -> String {
        let mut paths: Vec<_> = Web::iter().collect();
        paths.sort();
        let mut h = Sha256::new();
        for p in paths {
            if let Some(f) = Web::get(&p) {
                h.update(p.as_bytes());
                h.update(f.metadata.sha256_hash());
            }
        }
        h.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
    // Debug builds read web/ from disk: recompute, so an edit gets a new version.
    if cfg!(debug_assertions) {
        return compute();
    }
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(compute).clone()
}

fn content_type(f: &rust_embed::EmbeddedFile) -> String {
    let mime = f.metadata.mimetype();
    if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

async fn index() -> Response {
    let Some(f) = Web::get("index.html") else {
        return Problem::not_found("console").into_response();
    };
    let base = format!("{PREFIX}{}/", version());
    let html = String::from_utf8_lossy(&f.data).replace(BASE_MARK, &base);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
        ],
        html,
    )
        .into_response()
}

async fn asset(Path((v, path)): Path<(String, String)>) -> Response {
    // An old page asking for a file of another version still gets the file, but not for keeps.
    let cache = if v == version() {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    file(&path, cache)
}

fn file(path: &str, cache: &'static str) -> Response {
    // Debug builds read from disk: never let a path step outside web/ (rust-embed checks too).
    let inside = !path.starts_with('/') && !path.split(['/', '\\']).any(|s| s == "..");
    let Some(f) = Web::get(path).filter(|_| inside) else {
        return Problem::not_found("file").into_response();
    };
    let ct = content_type(&f);
    let mut r = ([(header::CACHE_CONTROL, cache)], f.data.into_owned()).into_response();
    if let Ok(ct) = HeaderValue::from_str(&ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

async fn spa(req: Request) -> Response {
    let path = req.uri().path();
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    let api = under("/api") || under("/public") || path.starts_with(PREFIX);
    let last = path.rsplit('/').next().unwrap_or("");
    if api || last.contains('.') {
        return Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route").into_response();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
        .into_response();
    }
    index().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_known_type_and_index_has_the_base_mark() {
        let files = files();
        assert!(files.iter().any(|(p, _)| p == "index.html"));
        for (path, mime) in &files {
            assert_ne!(mime, "application/octet-stream", "{path}");
        }
        let index = Web::get("index.html").unwrap();
        assert!(String::from_utf8_lossy(&index.data).contains(BASE_MARK));
    }

    #[test]
    fn the_version_is_short_hex() {
        let v = version();
        assert_eq!(v.len(), 12);
        assert!(v.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
