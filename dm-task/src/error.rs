//! The task configuration's error: a file that cannot be run, or a rule that does not make
//! sense. Both are the user's to fix, so both are definite.

use dm_core::{ClassifiedError, ErrorClass, ErrorCode};

use crate::config::ConfigError;
use crate::filter::RuleError;

/// Errors of dm-task. The codes are those these errors had in dm-syncer (DM-14006, DM-14002):
/// a code never changes meaning once released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// A task or source file cannot be run: invalid, or a key whose feature is not built here.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A filter, route, expression-filter or online-DDL rule is invalid.
    #[error(transparent)]
    Rule(#[from] RuleError),
}

impl ClassifiedError for TaskError {
    fn class(&self) -> ErrorClass {
        ErrorClass::Definite
    }

    fn code(&self) -> ErrorCode {
        match self {
            TaskError::Config(_) => ErrorCode(14006),
            TaskError::Rule(_) => ErrorCode(14002),
        }
    }

    fn workaround(&self) -> &'static str {
        match self {
            TaskError::Config(_) => {
                "fix the named key in the named file; docs/dm-config-keys.md says what each DM key does here"
            }
            TaskError::Rule(_) => "fix the rule in the task file",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_errors_keep_their_codes_and_print_one_layer() {
        let config = TaskError::from(ConfigError {
            file: "task.yaml".into(),
            reason: "`name` is empty".into(),
        });
        assert_eq!(config.code(), ErrorCode(14006));
        assert_eq!(config.class(), ErrorClass::Definite);
        assert_eq!(config.to_string(), "task.yaml: `name` is empty");
        let rule = TaskError::from(RuleError {
            rule: "routes.r".into(),
            reason: "bad".into(),
        });
        assert_eq!(rule.code(), ErrorCode(14002));
        assert_eq!(rule.to_string(), "routes.r: bad");
    }
}
