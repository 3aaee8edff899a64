//! Souk's integration tests: one test binary, the real `souk` binary, the real nats-server.

mod appliance;
mod backbone;
mod catalog_api;
mod console;
mod consumers;
mod contract_edges;
mod data_dir;
mod fuzz;
mod listings_api;
mod metrics;
mod openapi;
mod public;
mod security;
mod support;
mod users_api;
