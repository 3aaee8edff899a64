//! Console accounts, their sessions and API tokens: what is stored, what clients see, and the
//! requests the `souk-auth` service takes. Secrets are never stored: a password is kept as its
//! argon2id hash, a session or token as the SHA-256 of its random secret.

use crate::bus::rpc::FieldError;
use serde::{Deserialize, Serialize};

/// What a caller may do. Ordered: every role can do what the roles below it can.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything but accounts and tokens.
    Viewer,
    /// Also writes marketplace data.
    Editor,
    /// Also manages accounts, tokens, dead letters, projections and backups.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A console account as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountRecord {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
    pub version: u64,
}

/// A console account as clients (and events) see it: never the password hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub created_at: String,
    pub updated_at: String,
    pub last_login_at: Option<String>,
    pub version: u64,
}

impl From<&AccountRecord> for Account {
    fn from(a: &AccountRecord) -> Account {
        Account {
            id: a.id.clone(),
            email: a.email.clone(),
            role: a.role,
            created_at: a.created_at.clone(),
            updated_at: a.updated_at.clone(),
            last_login_at: a.last_login_at.clone(),
            version: a.version,
        }
    }
}

/// A signed-in console session, stored under the SHA-256 of its cookie value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account_id: String,
    /// Unix seconds.
    pub created_at: u64,
    pub last_seen_at: u64,
    /// Absolute end (unix seconds), however busy the session is.
    pub expires_at: u64,
    /// The token mutating cookie requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
}

/// An API token as stored (the secret itself is shown once and never kept).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub hash: String,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

/// An API token as clients (and events) see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    /// The account (or `system` for `souk admin token create`) that made it.
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

impl From<&TokenRecord> for ApiToken {
    fn from(t: &TokenRecord) -> ApiToken {
        ApiToken {
            id: t.id.clone(),
            name: t.name.clone(),
            role: t.role,
            created_at: t.created_at.clone(),
            created_by: t.created_by.clone(),
            last_used_at: t.last_used_at.clone(),
            expires_at: t.expires_at.clone(),
        }
    }
}

/// `POST /api/admin/tokens` answer: the token and, this once, its secret.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: ApiToken,
    /// The bearer secret. Shown only in this answer; Souk keeps only its hash.
    pub token: String,
}

/// Who a credential belongs to, as the gateway caches it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Principal {
    /// `acc_…` for a session, `tok_…` for an API token: the actor of every event it causes.
    pub id: String,
    pub email: Option<String>,
    pub role: Role,
    /// For sessions: the CSRF token mutating requests must send.
    pub csrf_token: Option<String>,
    /// For sessions: the account behind it.
    pub account_id: Option<String>,
    /// Unix seconds after which the credential no longer works (idle or absolute end, expiry).
    pub valid_until: Option<u64>,
}

/// A new session handed to the gateway to set as a cookie.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewSession {
    pub secret: String,
    pub max_age_secs: u64,
    pub principal: Principal,
    pub account: Account,
}

// Requests (`souk.rpc.auth.<op>`).

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    pub setup_token: String,
    pub email: String,
    pub password: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PasswordRequest {
    pub account_id: String,
    /// The caller's session hash: the one session that survives.
    pub keep_session: Option<String>,
    pub body: PasswordBody,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreateBody {
    pub email: String,
    pub password: String,
    pub role: Role,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatchBody {
    pub role: Option<Role>,
    /// A new password; it signs the account out everywhere.
    pub password: Option<String>,
    pub email: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AccountPatchRequest {
    pub id: String,
    pub expected_version: Option<u64>,
    pub body: AccountPatchBody,
}

#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreateBody {
    pub name: String,
    pub role: Role,
    /// RFC 3339; the token stops working then. Absent: no expiry.
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TokenCreateRequest {
    pub created_by: String,
    pub body: TokenCreateBody,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct IdRequest {
    pub id: String,
}

/// A credential to check: the SHA-256 (hex) of a session cookie or of a bearer token.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Credential {
    pub kind: CredentialKind,
    pub hash: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    Session,
    Token,
}

/// Passwords: at least this many characters (and at most 1,024, to bound hashing work).
pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 1024;

pub fn check_password(field: &str, password: &str, errors: &mut Vec<FieldError>) {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be at least {MIN_PASSWORD} characters"),
        });
    } else if n > MAX_PASSWORD {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be at most {MAX_PASSWORD} characters"),
        });
    }
}

/// A console email: trimmed, lowercased, one `@` with text on both sides.
pub fn check_email(email: &str, errors: &mut Vec<FieldError>) -> String {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !e.chars().any(char::is_whitespace);
    if !ok {
        errors.push(FieldError {
            field: "email".into(),
            message: "must be an email address".into(),
        });
    }
    e
}
