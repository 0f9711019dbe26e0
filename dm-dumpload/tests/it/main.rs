//! Integration tests of dm-dumpload against live MariaDB servers.

mod resume;
mod round_trip;
mod selection;
mod snapshot;
mod support;
mod task_files;
mod time_zone;
