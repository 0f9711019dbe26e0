//! Integration tests of dm-dumpload against live MariaDB servers.

mod snapshot;
