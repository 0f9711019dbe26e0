//! Integration tests of dm-binlog: the event layer against real MySQL binlogs (the shared
//! fixtures), against a live MariaDB's binlog, against files still being written, on a full
//! file system, and against random bytes.

mod allocation;
mod controller;
mod differential;
mod disk_full;
mod ed25519;
mod fixtures;
mod fuzz;
mod mariadb;
mod mysql_rows;
mod mysql_stream;
mod partial;
mod relay;
mod remote;
mod search;
mod source_checks;
mod tls;
mod values;
