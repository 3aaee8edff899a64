//! The Listing entity, its commands and their validation.

use crate::bus::rpc::FieldError;
use crate::services::{Page, optional_text, required_text};
use serde::{Deserialize, Serialize};

/// `{id, seller_id, title, description, listing_type, price, currency, quantity, status,
///   created_at, updated_at, version}`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Listing {
    pub id: String,
    pub seller_id: String,
    pub title: String,
    pub description: String,
    pub listing_type: String,
    pub price: i64,
    pub currency: String,
    pub quantity: i64,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

pub const TYPES: &[&str] = &["sale", "rent"];
pub const STATUSES: &[&str] = &["active", "reserved", "sold", "archived"];
pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;
/// Prices and stock beyond this are surely a mistake (and keep sums far from overflow).
pub const AMOUNT_MAX: i64 = 1_000_000_000_000;

/// `POST /api/listings`
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateListing {
    pub seller_id: String,
    pub title: String,
    pub listing_type: String,
    pub price: i64,
    #[serde(default)]
    pub description: Option<String>,
    /// An ISO 4217 code in capitals (default `USD`); `XXX` and `XTS` are refused.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub quantity: Option<i64>,
}

/// `PATCH /api/listings/{id}`
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchListing {
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub title: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub price: Option<i64>,
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub quantity: Option<i64>,
    #[serde(
        default,
        deserialize_with = "crate::services::present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateRequest {
    pub listing: CreateListing,
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdRequest {
    pub id: String,
    #[serde(default)]
    pub expected_version: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PatchRequest {
    pub id: String,
    pub expected_version: Option<u64>,
    pub patch: PatchListing,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ListRequest {
    pub seller_id: Option<String>,
    pub status: Option<String>,
    #[serde(flatten)]
    pub page: Page,
}

/// The listing's editable fields after validation.
pub struct Fields {
    pub title: String,
    pub description: String,
    pub listing_type: String,
    pub price: i64,
    pub currency: String,
    pub quantity: i64,
    pub status: String,
}

/// A code on ISO 4217's list (current, historic or a fund), but not `XXX` ("no currency") or
/// `XTS` (reserved for testing): a price is in some currency.
pub fn is_currency(code: &str) -> bool {
    !matches!(code, "XXX" | "XTS") && iso_currency::Currency::from_code(code).is_some()
}

/// Checks every field at once; `creating` requires stock ≥ 1 (later it may fall to 0).
pub fn validate(f: Fields, creating: bool) -> Result<Fields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if !TYPES.contains(&f.listing_type.as_str()) {
        bad("listing_type", "must be `sale` or `rent`".into());
    }
    if !(1..=AMOUNT_MAX).contains(&f.price) {
        bad(
            "price",
            format!("must be a whole number of minor units from 1 to {AMOUNT_MAX}"),
        );
    }
    let min_quantity = if creating { 1 } else { 0 };
    if !(min_quantity..=AMOUNT_MAX).contains(&f.quantity) {
        bad(
            "quantity",
            format!("must be from {min_quantity} to {AMOUNT_MAX}"),
        );
    }
    if !is_currency(&f.currency) {
        bad(
            "currency",
            "must be an ISO 4217 currency code in capitals, such as USD or EUR".into(),
        );
    }
    if !STATUSES.contains(&f.status.as_str()) {
        bad(
            "status",
            "must be active, reserved, sold or archived".into(),
        );
    }
    let title = required_text("title", &f.title, TITLE_MAX, &mut errors);
    let description = optional_text("description", &f.description, DESCRIPTION_MAX, &mut errors);
    if errors.is_empty() {
        Ok(Fields {
            title,
            description,
            ..f
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_4217_codes() {
        for ok in ["USD", "EUR", "JPY", "CHF", "KWD", "CLF", "XAU"] {
            assert!(is_currency(ok), "{ok}");
        }
        for bad in [
            "usd", "Usd", "ABC", "EURO", "US", "", "XXX", "XTS", "US\u{0}",
        ] {
            assert!(!is_currency(bad), "{bad:?}");
        }
    }

    fn fields() -> Fields {
        Fields {
            title: "Bike".into(),
            description: String::new(),
            listing_type: "sale".into(),
            price: 1999,
            currency: "USD".into(),
            quantity: 1,
            status: "active".into(),
        }
    }

    #[test]
    fn rules() {
        assert!(validate(fields(), true).is_ok());
        let e = validate(
            Fields {
                price: 0,
                listing_type: "swap".into(),
                ..fields()
            },
            true,
        )
        .err()
        .unwrap();
        let names: Vec<_> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, ["listing_type", "price"]);
        assert!(
            validate(
                Fields {
                    quantity: 0,
                    ..fields()
                },
                true
            )
            .is_err()
        );
        assert!(
            validate(
                Fields {
                    quantity: 0,
                    ..fields()
                },
                false
            )
            .is_ok()
        );
        assert!(
            validate(
                Fields {
                    currency: "usd".into(),
                    ..fields()
                },
                true
            )
            .is_err()
        );
        assert!(
            validate(
                Fields {
                    price: AMOUNT_MAX + 1,
                    ..fields()
                },
                true
            )
            .is_err()
        );
    }
}
