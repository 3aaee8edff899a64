//! Souk's integration tests: one test binary, the real `souk` binary, the real nats-server.

mod appliance;
mod backbone;
mod consumers;
mod openapi;
mod public;
mod support;
