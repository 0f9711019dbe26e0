//! Integration tests of dm-sink against real MariaDB servers.

mod checkpoint;
mod conformance;
mod errors;
mod round_trip;
mod tls;
