//! Integration tests of dm-mysql against a real MariaDB server.

mod catalog;
