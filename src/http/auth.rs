//! Who may call what. Every route's access rule is in [`access`]; the [`guard`] middleware runs
//! it on every matched route: it finds the credential (a bearer token or the session cookie),
//! asks the auth service who it belongs to (answers are cached for a moment), checks the role
//! and, for cookie requests that change something, the CSRF token. The caller becomes the actor
//! of every event the request causes.
//!
//! | route                                             | who                      |
//! |---------------------------------------------------|--------------------------|
//! | /healthz, /readyz, /api/openapi.json              | anyone                   |
//! | /, /console/… (the console's files)               | anyone                   |
//! | POST /api/auth/setup, /api/auth/login, GET …/setup| anyone (rate-limited)    |
//! | /api/auth/logout, /me, /password                  | any signed-in caller     |
//! | /metrics                                          | loopback, or any caller  |
//! | GET /api/catalog*                                 | viewer (anyone with `catalog_public`) |
//! | /api/admin/accounts*, /api/admin/tokens*          | admin                    |
//! | other /api/admin/* and /api/events*               | GET viewer, else admin   |
//! | everything else                                   | GET viewer, else editor  |

use super::AppState;
use super::error::Problem;
use super::extract::{Actor, Ctx};
use crate::services::auth::model::{Credential, CredentialKind};
use crate::services::auth::secrets;
use crate::services::auth::{Principal, Role};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie.
pub const COOKIE: &str = "souk_session";
/// How long the gateway trusts an answer of the auth service. Revocations made through this
/// gateway apply at once (it forgets everything it cached); through another node, within this.
const CACHE_TTL: Duration = Duration::from_secs(2);
const CACHE_MAX: usize = 10_000;
/// Failed sign-ins (login or setup) one address may make per window before it gets 429.
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Anyone,
    SignedIn,
    /// Loopback callers, or any signed-in caller.
    LoopbackOrSignedIn,
    Role(Role),
}

/// The access rule of a route (`path` as matched, e.g. `/api/users/{id}`).
pub fn access(method: &Method, path: &str, catalog_public: bool) -> Access {
    let read = matches!(*method, Method::GET | Method::HEAD);
    match path {
        "/healthz" | "/readyz" | "/api/openapi.json" => Access::Anyone,
        "/" | "/console/{version}/{*path}" => Access::Anyone,
        "/api/auth/setup" | "/api/auth/login" => Access::Anyone,
        "/metrics" => Access::LoopbackOrSignedIn,
        p if p.starts_with("/api/auth/") => Access::SignedIn,
        // The catalog's reads, in both its shapes (API.md: /public reads follow `catalog_public`).
        p if (p.starts_with("/api/catalog") || p == "/public/listings")
            && read
            && catalog_public =>
        {
            Access::Anyone
        }
        p if p.starts_with("/api/admin/accounts") || p.starts_with("/api/admin/tokens") => {
            Access::Role(Role::Admin)
        }
        p if p.starts_with("/api/admin") || p.starts_with("/api/events") => {
            Access::Role(if read { Role::Viewer } else { Role::Admin })
        }
        _ => Access::Role(if read { Role::Viewer } else { Role::Editor }),
    }
}

/// The caller of a request, once the guard has checked them.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// The session's hash when the caller came with the cookie.
    pub session: Option<String>,
}

/// The guard's state: the cache of authentication answers and the sign-in failure counts.
pub struct Gate {
    cache: Mutex<HashMap<String, (Principal, Instant)>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    pub catalog_public: bool,
    pub trust_proxy: bool,
    pub tls: bool,
}

impl Gate {
    pub fn new(security: &crate::config::Security) -> Gate {
        Gate {
            cache: Mutex::default(),
            failures: Mutex::default(),
            catalog_public: security.catalog_public,
            trust_proxy: security.trust_proxy,
            tls: security.tls_cert.is_some(),
        }
    }

    /// Drops every cached answer: after a logout, password change, role change or revocation.
    pub fn forget(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn cached(&self, key: &str, now: u64) -> Option<Principal> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (p, at) = cache.get(key)?;
        (at.elapsed() < CACHE_TTL && p.valid_until.is_none_or(|v| v > now)).then(|| p.clone())
    }

    fn remember(&self, key: String, p: &Principal) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (p.clone(), Instant::now()));
    }

    /// `Some(retry after)` while `ip` has used up its failed sign-ins.
    pub fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (n, since) = failures.get(&ip)?;
        let left = FAILURE_WINDOW.checked_sub(since.elapsed())?;
        (*n >= MAX_FAILURES).then_some(left)
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ip);
    }

    /// The client's address: the peer, or with `http_trust_proxy` the address the proxy saw
    /// (the last `X-Forwarded-For` entry).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.trust_proxy
            && let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        peer
    }

    /// Whether the client reached Souk over HTTPS (directly, or through a trusted proxy).
    pub fn secure(&self, headers: &HeaderMap) -> bool {
        self.tls
            || (self.trust_proxy
                && headers
                    .get("x-forwarded-proto")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")))
    }
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

fn unauthorized(code: &str, detail: &str) -> Response {
    (
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"souk\"")],
        Problem::new(StatusCode::UNAUTHORIZED, code, detail),
    )
        .into_response()
}

/// Who the request's credential belongs to: `Ok(None)` without one.
pub async fn authenticate(s: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, Response> {
    let (kind, secret) = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or(v.strip_prefix("bearer ")))
                .map(str::trim)
                .filter(|t| !t.is_empty());
            match token {
                Some(t) => (CredentialKind::Token, t),
                None => {
                    return Err(unauthorized(
                        "unauthorized",
                        "the Authorization header must be `Bearer <token>`",
                    ));
                }
            }
        }
        None => match session_cookie(headers) {
            Some(c) => (CredentialKind::Session, c),
            None => return Ok(None),
        },
    };
    let hash = secrets::digest(secret);
    let key = format!("{kind:?}:{hash}");
    let now = crate::services::auth::commands::now_secs();
    let principal = match s.gate.cached(&key, now) {
        Some(p) => p,
        None => {
            let ctx = Ctx(crate::bus::Meta::default());
            let p: Principal = s
                .call(
                    "auth",
                    "authenticate",
                    &Credential {
                        kind,
                        hash: hash.clone(),
                    },
                    &ctx,
                )
                .await
                .map_err(|p| {
                    if p.status() == StatusCode::UNAUTHORIZED {
                        let mut r = p.into_response();
                        r.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Bearer realm=\"souk\""),
                        );
                        r
                    } else {
                        p.into_response()
                    }
                })?;
            s.gate.remember(key, &p);
            p
        }
    };
    Ok(Some(Caller {
        principal,
        session: (kind == CredentialKind::Session).then_some(hash),
    }))
}

/// The middleware on every matched route: see the module docs.
pub async fn guard(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let rule = access(req.method(), &path, s.gate.catalog_public);
    if rule == Access::Anyone {
        // Sign-in routes still learn who is calling when they can (logout, me): not needed here.
        return next.run(req).await;
    }
    // Behind a trusted proxy on the same host every peer is loopback: the client is the one
    // the proxy names, as for the sign-in limits.
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| s.gate.client_ip(c.0.ip(), req.headers()).is_loopback());
    if rule == Access::LoopbackOrSignedIn && loopback {
        return next.run(req).await;
    }
    let caller = match authenticate(&s, req.headers()).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return unauthorized(
                "unauthorized",
                "sign in, or send an API token in `Authorization: Bearer …`",
            );
        }
        Err(response) => return response,
    };
    if let Access::Role(needed) = rule
        && caller.principal.role < needed
    {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this needs the {} role; the caller is {}",
                needed.as_str(),
                caller.principal.role.as_str()
            ),
        )
        .into_response();
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if caller.session.is_some() && !safe {
        let sent = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let expected = caller.principal.csrf_token.as_deref().unwrap_or("");
        if expected.is_empty() || !secrets::same(sent, expected) {
            return Problem::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "send the session's CSRF token (from GET /api/auth/me) in X-CSRF-Token",
            )
            .into_response();
        }
    }
    req.extensions_mut()
        .insert(Actor(caller.principal.id.clone()));
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_follow_the_table() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(access(&get, "/healthz", false), Access::Anyone);
        assert_eq!(access(&post, "/api/auth/login", false), Access::Anyone);
        assert_eq!(access(&get, "/", false), Access::Anyone);
        assert_eq!(
            access(&get, "/console/{version}/{*path}", false),
            Access::Anyone
        );
        assert_eq!(access(&get, "/api/auth/me", false), Access::SignedIn);
        assert_eq!(
            access(&get, "/api/users", false),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            access(&post, "/api/users", false),
            Access::Role(Role::Editor)
        );
        assert_eq!(
            access(&post, "/public/users", false),
            Access::Role(Role::Editor)
        );
        assert_eq!(
            access(&get, "/api/catalog", false),
            Access::Role(Role::Viewer)
        );
        assert_eq!(access(&get, "/api/catalog/{id}", true), Access::Anyone);
        assert_eq!(access(&get, "/public/listings", true), Access::Anyone);
        assert_eq!(
            access(&get, "/public/listings", false),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            access(&post, "/public/listings", true),
            Access::Role(Role::Editor)
        );
        assert_eq!(
            access(&get, "/api/admin/tokens", false),
            Access::Role(Role::Admin)
        );
        assert_eq!(
            access(&get, "/api/admin/overview", false),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            access(&post, "/api/admin/projections/{name}/rebuild", false),
            Access::Role(Role::Admin)
        );
        assert_eq!(access(&get, "/metrics", false), Access::LoopbackOrSignedIn);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; souk_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("souk_session="));
        assert_eq!(session_cookie(&h), None);
    }
}
