//! Keeping passwords out of logs, statuses and error messages.
//!
//! A configuration type that holds a password writes its `Debug` by hand and shows the
//! password as [`Redacted`]: `""` when none is set (worth knowing when a login fails), `"***"`
//! otherwise. Nothing in the workspace prints a password with `Display` either; the test
//! `tests/it/redaction.rs` of dm-subtask runs a subtask with a distinctive password and looks
//! for it in everything a run can show.

use std::fmt;

/// A password shown in a `Debug` output: `""` when empty, `"***"` otherwise.
#[derive(Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            formatter.write_str("\"\"")
        } else {
            formatter.write_str("\"***\"")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_shows_only_whether_it_is_set() {
        assert_eq!(format!("{:?}", Redacted("")), "\"\"");
        assert_eq!(format!("{:?}", Redacted("hunter2")), "\"***\"");
        assert_eq!(format!("{:#?}", Redacted("hunter2")), "\"***\"");
    }
}
