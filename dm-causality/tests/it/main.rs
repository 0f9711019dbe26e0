//! Property tests of dm-causality against a strict in-memory model table.
//!
//! Each module states what it proves. The generator (`model.rs`) produces consistent change
//! sequences on a table with a primary key and a nullable unique key over a tiny key space, so
//! that primary keys collide, unique values move from row to row, and NULLs appear.

mod causality;
mod compaction;
mod model;
mod planning;
