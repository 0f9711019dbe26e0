//! The shared test material beside the repository (`../shared/fixtures`), read in place.
//!
//! The fixtures (real MySQL binlogs, DM's own test data) are never copied into the repository.
//! They are found at `$DM_SHARED_DIR/fixtures/...` when that variable is set, else at
//! `<workspace>/../shared/fixtures/...`. When absent, the lookup is
//! [`TestkitError::MissingFixture`], which [`crate::or_skip!`] skips on outside CI.

use std::path::{Path, PathBuf};

use crate::error::TestkitError;

/// The `shared/` directory: `$DM_SHARED_DIR`, or `../shared` beside the workspace.
fn shared_directory() -> PathBuf {
    match std::env::var_os("DM_SHARED_DIR") {
        Some(directory) => PathBuf::from(directory),
        // This crate lives at <workspace>/dm-testkit.
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

/// The path of `shared/fixtures/<relative>`, if it exists.
pub fn shared_fixture(relative: &str) -> Result<PathBuf, TestkitError> {
    let path = shared_directory().join("fixtures").join(relative);
    if path.exists() {
        Ok(path)
    } else {
        Err(TestkitError::MissingFixture {
            path: path.display().to_string(),
            hint:
                "the shared fixtures live beside the repository in ../shared (or set DM_SHARED_DIR)"
                    .into(),
        })
    }
}
