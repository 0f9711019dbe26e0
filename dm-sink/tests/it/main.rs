//! Integration tests of dm-sink against real MariaDB servers.

mod checkpoint;
mod errors;
mod round_trip;
