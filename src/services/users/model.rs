//! The User entity, the commands that change it, and their validation.

use crate::bus::rpc::FieldError;
use crate::services::{Page, nullable, optional_text, required_text};
use serde::{Deserialize, Serialize};

/// `{id, name, email, bio, enabled, created_at, updated_at, version}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub bio: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

/// `POST /api/users`
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub bio: Option<String>,
}

/// `PUT /api/users/{id}`: the whole user (`bio` optional, cleared when absent).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceUser {
    pub name: String,
    /// Required, and may be null (API.md: `{name, email, bio?}`).
    #[serde(deserialize_with = "required_nullable")]
    pub email: Option<String>,
    #[serde(default)]
    pub bio: Option<String>,
}

/// `PATCH /api/users/{id}`: any of the fields; `email: null` removes the email.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub bio: Option<String>,
}

/// A key that must be present but may be `null` (a plain `Option` field may be left out).
fn required_nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// The rpc requests of the users service.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateRequest {
    pub user: CreateUser,
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdRequest {
    pub id: String,
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// `souk.rpc.users.sellers`: which of these users exist and are enabled.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SellersRequest {
    pub ids: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SellersReply {
    /// The ids of the request that exist and are enabled; the others do not or are not.
    pub enabled: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplaceRequest {
    pub id: String,
    pub expected_version: Option<u64>,
    pub user: ReplaceUser,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PatchRequest {
    pub id: String,
    pub expected_version: Option<u64>,
    pub patch: PatchUser,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ListRequest {
    pub q: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

pub const NAME_MAX: usize = 200;
pub const BIO_MAX: usize = 2000;
pub const EMAIL_MAX: usize = 254;

/// Validated fields of a user, ready to store.
pub struct Fields {
    pub name: String,
    pub email: Option<String>,
    pub bio: String,
}

/// Checks name, email and bio together, so the client hears about every bad field at once.
pub fn validate(name: &str, email: Option<&str>, bio: &str) -> Result<Fields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = required_text("name", name, NAME_MAX, &mut errors);
    let bio = optional_text("bio", bio, BIO_MAX, &mut errors);
    let email = email
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    if let Some(e) = &email
        && !valid_email(e)
    {
        errors.push(FieldError {
            field: "email".into(),
            message: "is not a valid email address".into(),
        });
    }
    if errors.is_empty() {
        Ok(Fields { name, email, bio })
    } else {
        Err(errors)
    }
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after it, no
/// spaces or control characters, at most 254 characters. Delivery is the real test.
fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    e.len() <= EMAIL_MAX
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The key of the case-insensitive email index.
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reports_every_field() {
        let errs = validate("  ", Some("nope"), &"x".repeat(BIO_MAX + 1))
            .err()
            .unwrap();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "bio", "email"]);
        let ok = validate(" Ada ", Some(" ada@example.org "), "")
            .ok()
            .unwrap();
        assert_eq!(ok.name, "Ada");
        assert_eq!(ok.email.as_deref(), Some("ada@example.org"));
        assert!(validate("Ada", Some(""), "").ok().unwrap().email.is_none());
        for bad in ["a@b", "@b.c", "a b@c.d", "a@b.c@d.e", "a@.b", "a@b."] {
            assert!(validate("A", Some(bad), "").is_err(), "{bad}");
        }
    }
}
