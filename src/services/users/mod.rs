//! The users service: marketplace users in `users.redb`, served as the `souk-users` micro
//! service, publishing `user.created|updated|disabled|enabled|deleted` through its outbox.

pub mod commands;
pub mod error;
pub mod model;
pub mod rpc;
pub mod store;

pub use model::User;

use crate::services::runtime::Runtime;
use std::sync::Arc;

/// Opens `users.redb`, starts its outbox relay and registers `souk-users`.
pub async fn start(rt: &mut Runtime<'_>) -> anyhow::Result<()> {
    let db = rt.open_store("users.redb", store::init).await?;
    rt.relay("users", &db);
    rt.idempotency_sweeper("users", &db);
    let users = Arc::new(rpc::Users {
        db,
        names: rt.bus.names().clone(),
    });
    rt.rpc("users", move || rpc::service(users.clone()));
    Ok(())
}
