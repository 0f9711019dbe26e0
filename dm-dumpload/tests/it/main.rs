//! Integration tests of dm-dumpload against live MariaDB servers.

mod mode_all;
mod resume;
mod round_trip;
mod snapshot;
mod support;
