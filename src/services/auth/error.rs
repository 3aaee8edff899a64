//! Why an auth request is refused, and the one mapping to the rpc error clients see.

use crate::bus::rpc::{FieldError, RpcError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error(
        "the setup token is wrong, used or expired; restart Souk for a new one, or run `souk admin create`"
    )]
    InvalidSetupToken,
    #[error("Souk is already set up: an admin account exists")]
    AlreadySetUp,
    #[error("sign in, or send an API token in `Authorization: Bearer …`")]
    Unauthenticated,
    #[error("the session has ended; sign in again")]
    SessionExpired,
    #[error("the API token has expired")]
    TokenExpired,
    #[error("no {0} with that id")]
    NotFound(&'static str),
    #[error("another console account has that email")]
    EmailTaken,
    #[error("this is the last admin account; make another admin first")]
    LastAdmin,
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("the account changed since version {expected}; it is at version {current}")]
    Stale { expected: u64, current: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    pub fn field(field: &str, message: &str) -> AuthError {
        AuthError::Invalid(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl From<AuthError> for RpcError {
    fn from(e: AuthError) -> RpcError {
        let msg = e.to_string();
        match e {
            AuthError::InvalidCredentials => RpcError::new(401, "invalid_credentials", msg),
            AuthError::InvalidSetupToken => RpcError::new(401, "invalid_setup_token", msg),
            AuthError::AlreadySetUp => RpcError::new(409, "already_set_up", msg),
            AuthError::Unauthenticated => RpcError::new(401, "unauthorized", msg),
            AuthError::SessionExpired => RpcError::new(401, "session_expired", msg),
            AuthError::TokenExpired => RpcError::new(401, "token_expired", msg),
            AuthError::NotFound(what) => RpcError::not_found(what),
            AuthError::EmailTaken => RpcError {
                status: 409,
                code: "email_taken".into(),
                message: msg,
                errors: vec![FieldError {
                    field: "email".into(),
                    message: "is taken".into(),
                }],
            },
            AuthError::LastAdmin => RpcError::new(409, "last_admin", msg),
            AuthError::Invalid(errors) => RpcError::validation(errors),
            AuthError::Stale { .. } => RpcError::new(412, "precondition_failed", msg),
            AuthError::Store(e) => RpcError::store("auth store", &e),
        }
    }
}
