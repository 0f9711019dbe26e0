//! Integration tests of dm-task: DM users' task and source files, read as DM reads them.

mod dm_configs;
