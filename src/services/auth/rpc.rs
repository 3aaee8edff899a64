//! The auth service's endpoints (`souk.rpc.auth.<op>`). Only the gateway calls them; it hashes
//! session and token secrets before they cross the bus.

use super::commands::Auth;
use super::model::*;
use crate::bus::rpc::{RpcError, Service};
use crate::services::List;
use std::sync::Arc;

fn list<T>(items: Vec<T>) -> List<T> {
    List {
        items,
        next_cursor: None,
    }
}

#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = SetupStatus)]
pub struct Status {
    /// True while no admin account exists (the console shows its setup screen).
    pub setup_needed: bool,
}

pub fn service(auth: Arc<Auth>) -> Service {
    Service::new("auth", "console accounts, sessions and API tokens")
        .with(&auth, "status", |a, _: serde_json::Value, _| async move {
            Ok(Status {
                setup_needed: !a.has_admin().await.map_err(RpcError::from)?,
            })
        })
        .with(&auth, "setup", |a, req: SetupBody, meta| async move {
            a.setup(req, meta).await.map_err(RpcError::from)
        })
        .with(&auth, "login", |a, req: LoginBody, _| async move {
            a.login(req).await.map_err(RpcError::from)
        })
        .with(&auth, "logout", |a, req: IdRequest, _| async move {
            a.logout(req.id).await.map_err(RpcError::from)
        })
        .with(&auth, "authenticate", |a, req: Credential, _| async move {
            a.authenticate(req).await.map_err(RpcError::from)
        })
        .with(
            &auth,
            "password",
            |a, req: PasswordRequest, meta| async move {
                a.change_password(req, meta).await.map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "accounts_list",
            |a, _: serde_json::Value, _| async move {
                a.accounts().await.map(list).map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "accounts_create",
            |a, req: AccountCreateBody, meta| async move {
                a.create_account(req, meta).await.map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "accounts_patch",
            |a, req: AccountPatchRequest, meta| async move {
                a.patch_account(req, meta).await.map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "accounts_delete",
            |a, req: IdRequest, meta| async move {
                a.delete_account(req.id, meta).await.map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "tokens_list",
            |a, _: serde_json::Value, _| async move {
                a.tokens().await.map(list).map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "tokens_create",
            |a, req: TokenCreateRequest, meta| async move {
                a.create_token(req, meta).await.map_err(RpcError::from)
            },
        )
        .with(
            &auth,
            "tokens_delete",
            |a, req: IdRequest, meta| async move {
                a.revoke_token(req.id, meta).await.map_err(RpcError::from)
            },
        )
}
