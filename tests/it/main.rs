//! Souk's integration tests: one test binary, the real `souk` binary, the real nats-server.

mod appliance;
mod backbone;
mod catalog_api;
mod consumers;
mod contract_edges;
mod listings_api;
mod metrics;
mod openapi;
mod public;
mod support;
mod users_api;
