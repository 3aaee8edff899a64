//! Why a listings command is refused, and the one exhaustive mapping to rpc errors.

use crate::bus::rpc::{FieldError, RpcError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error("no listing with that id")]
    NotFound,
    #[error("the seller does not exist or is disabled")]
    UnknownSeller,
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("the listing changed since version {expected}; it is at version {current}")]
    Stale { expected: u64, current: u64 },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the cursor is not valid")]
    BadCursor,
    #[error("the users service is not available: {0}")]
    UsersUnavailable(String),
    /// A repeat of a refused create under the same `Idempotency-Key`: the first refusal.
    #[error(transparent)]
    Replayed(RpcError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ListingError> for RpcError {
    fn from(e: ListingError) -> RpcError {
        let msg = e.to_string();
        match e {
            ListingError::NotFound => RpcError::not_found("listing"),
            ListingError::UnknownSeller => RpcError {
                status: 422,
                code: "unknown_seller".into(),
                message: msg,
                errors: vec![FieldError {
                    field: "seller_id".into(),
                    message: "no enabled user with this id".into(),
                }],
            },
            ListingError::Invalid(errors) => RpcError::validation(errors),
            ListingError::Stale { .. } => RpcError::new(412, "precondition_failed", msg),
            ListingError::IdempotencyKeyReused => RpcError::new(422, "idempotency_key_reused", msg),
            ListingError::BadCursor => RpcError::new(400, "invalid_cursor", msg),
            ListingError::UsersUnavailable(_) => RpcError::new(503, "dependency_unavailable", msg),
            ListingError::Replayed(e) => e,
            ListingError::Store(e) => RpcError::store("listings store", &e),
        }
    }
}
