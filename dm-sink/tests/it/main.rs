//! Integration tests of dm-sink against real MariaDB servers.

mod errors;
mod round_trip;
