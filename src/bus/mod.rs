//! The event backbone every service uses: the NATS connection, the event envelope, every
//! subject and stream name, stream set-up, the transactional outbox and its relay, durable
//! consumers with dead letters, and request/reply (rpc) between services.
//!
//! See DESIGN.md, "A write, end to end": a service commits its state and its events in one
//! store transaction (`outbox`), the relay publishes them with `Nats-Msg-Id` = event id, and
//! consumers apply them idempotently (`consumer`), dead-lettering what keeps failing.

pub mod connection;
pub mod consumer;
pub mod deadletter;
pub mod envelope;
pub mod outbox;
pub mod rpc;
pub mod streams;
pub mod subjects;

pub use connection::{Target, connect};
pub use envelope::{Envelope, Meta};
pub use subjects::Names;

/// What every service gets: the client, JetStream, and the names of everything.
#[derive(Clone)]
pub struct Bus {
    pub client: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub names: Names,
}

impl Bus {
    pub fn names(&self) -> &Names {
        &self.names
    }
}
