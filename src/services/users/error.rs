//! Why a users command is refused, and the one exhaustive mapping to the rpc error clients see.

use crate::bus::rpc::{FieldError, RpcError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user with that id")]
    NotFound,
    #[error("that email address belongs to another user")]
    EmailTaken,
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("the user changed since version {expected}; it is at version {current}")]
    Stale { expected: u64, current: u64 },
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the user is already disabled")]
    AlreadyDisabled,
    #[error("the user is already enabled")]
    AlreadyEnabled,
    #[error("the cursor is not valid")]
    BadCursor,
    /// A repeat of a refused create under the same `Idempotency-Key`: the first refusal.
    #[error(transparent)]
    Replayed(RpcError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<UserError> for RpcError {
    fn from(e: UserError) -> RpcError {
        let msg = e.to_string();
        match e {
            UserError::NotFound => RpcError::not_found("user"),
            UserError::EmailTaken => RpcError {
                status: 409,
                code: "email_taken".into(),
                message: msg,
                errors: vec![FieldError {
                    field: "email".into(),
                    message: "is taken".into(),
                }],
            },
            UserError::Invalid(errors) => RpcError::validation(errors),
            UserError::Stale { .. } => RpcError::new(412, "precondition_failed", msg),
            UserError::IdempotencyKeyReused => RpcError::new(422, "idempotency_key_reused", msg),
            UserError::AlreadyDisabled => RpcError::new(409, "already_disabled", msg),
            UserError::AlreadyEnabled => RpcError::new(409, "already_enabled", msg),
            UserError::BadCursor => RpcError::new(400, "invalid_cursor", msg),
            UserError::Replayed(e) => e,
            UserError::Store(e) => RpcError::store("users store", &e),
        }
    }
}
