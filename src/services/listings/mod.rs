//! The listings service: listings in `listings.redb`, served as `souk-listings`, publishing
//! `listing.created|updated|deleted` through its outbox, archiving the listings of sellers
//! who are deleted (it consumes `user.deleted`), and keeping a local copy of sellers from user
//! events (consumer `listings-sellers`) so that a create rarely asks the users service.

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

/// Opens `listings.redb`, starts its outbox relay, its `user.deleted` reaction, its copy of
/// sellers and `souk-listings`.
pub async fn start(rt: &mut Runtime<'_>) -> anyhow::Result<()> {
    let db = rt.open_store("listings.redb", store::init).await?;
    rt.relay("listings", &db);
    rt.idempotency_sweeper("listings", &db);
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
    let names = rt.bus.names().clone();
    let spec = Spec::new(
        names.consumer("listings", "sellers"),
        names.stream("users"),
        sellers::SellerCopy::subjects(&names),
    );
    rt.consumer(spec, Arc::new(sellers::SellerCopy { db: db.clone() }));
    let listings = Arc::new(rpc::Listings {
        db: db.clone(),
        bus: rt.bus.clone(),
        sellers: sellers::Sellers::new(rt.bus.clone(), db),
    });
    rt.rpc("listings", move || rpc::service(listings.clone()));
    Ok(())
}
