//! Integration tests of dm-dumpload against live MariaDB servers.

mod round_trip;
mod snapshot;
mod support;
