//! Integration tests of the facade package `dm`: the crates used together, on real data.

mod gtid_fixtures;
