//! The HTTP front door: the API gateway, health endpoints and (later) the console.
//!
//! Handlers talk to services only over the bus; this module owns no store.

pub mod error;
pub mod health;
pub mod router;

use crate::health::Health;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub health: Health,
    pub started: std::time::Instant,
}

pub use router::router;
