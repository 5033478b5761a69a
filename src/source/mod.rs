//! Where a collector's records come from: a JetStream stream, read through a durable pull
//! consumer ([`jetstream`]) that one collector at a time holds ([`lease`]).

pub mod jetstream;
pub mod lease;
