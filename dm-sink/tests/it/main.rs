//! Integration tests of dm-sink against real MariaDB servers.

mod checkpoint;
mod conformance;
mod ed25519;
mod errors;
mod round_trip;
mod tls;
