//! Souk: an event-driven marketplace backend in one binary.
//!
//! The library holds everything; `main.rs` only dispatches commands. [`app::start`] builds the
//! whole running system, for the `souk` binary and for the integration tests alike.

pub mod app;
pub mod broker;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod data_dir;
pub mod health;
pub mod http;
pub mod ids;
pub mod projections;
pub mod services;
pub mod store;
pub mod supervisor;
pub mod telemetry;

/// Souk's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
