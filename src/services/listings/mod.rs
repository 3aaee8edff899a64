//! The listings service: listings in `listings.redb`, served as `souk-listings`, publishing
//! `listing.created|updated|deleted` through its outbox, and archiving the listings of sellers
//! who are deleted (it consumes `user.deleted`).

pub mod commands;
pub mod error;
pub mod model;
pub mod reactions;
pub mod rpc;
pub mod sellers;
pub mod store;

pub use model::Listing;

use crate::bus::consumer::Spec;
use crate::services::runtime::Runtime;
use std::sync::Arc;

/// Opens `listings.redb`, starts its outbox relay, its `user.deleted` reaction and `souk-listings`.
pub async fn start(rt: &mut Runtime<'_>) -> anyhow::Result<()> {
    let db = rt.open_store("listings.redb", store::init).await?;
    rt.relay("listings", &db);
    let names = rt.bus.names().clone();
    let spec = Spec::new(
        names.consumer("listings", "users"),
        names.stream("users"),
        vec![names.event("user.deleted")],
    );
    rt.consumer(
        spec,
        Arc::new(reactions::UserReactions {
            db: db.clone(),
            names,
        }),
    );
    let listings = Arc::new(rpc::Listings {
        db,
        bus: rt.bus.clone(),
        sellers: sellers::Sellers::new(rt.bus.clone()),
    });
    rt.rpc("listings", move || rpc::service(listings.clone()));
    Ok(())
}
