//! Integration tests of dm-dumpload against live MariaDB servers, and of the loader over a fake
//! of the load traits without one (`serverless`).

mod resume;
mod round_trip;
mod selection;
mod serverless;
mod snapshot;
mod support;
mod task_files;
mod time_zone;
mod tls;
