//! DM's online-DDL table rules (`online-ddl`, `shadow-table-rules`, `trash-table-rules`) as a
//! guard: online schema change tools (gh-ost, pt-online-schema-change) are not supported here
//! yet, so with `online-ddl: true` (DM's default) the task stops the first time one of their
//! tables appears, instead of replicating half of what DM would do.
//!
//! ```text
//! task.yaml online-ddl: true (default) --OnlineDdlGuard::new--> rules (anchored, one capture group)
//! binlog: DDL or rows on `shop`.`_orders_gho`
//!   --guard.classify("_orders_gho")--> Shadow of `orders`    --> the task stops (the reason says why
//!                                                                 and what to do)
//!   --InstanceRules::online_ddl_stop--> only when the block-allow list replicates `shop`.`orders`
//! online-ddl: false --> OnlineDdlGuard::disabled(): nothing matches; ghost tables are plain tables
//! ```
//!
//! The rules are DM's: regular expressions on the table name alone (not the schema), compared
//! case-sensitively, anchored with `^`/`$` when the user's rule is not, each with exactly one
//! capture group that yields the real table's name. When a list is empty DM's default applies:
//! shadow `^_(.+)_(?:new|gho)$`, trash `^_(.+)_(?:ghc|del|old)$`. A name matching both kinds is a
//! shadow table, as in DM.
//!
//! With `online-ddl: false` DM has no online-DDL handling either: the tools' tables replicate
//! like any other table, and their final `RENAME TABLE` swaps the tables downstream too. That
//! needs the block-allow list to let the tools' tables through.

use dm_core::TableRef;
use regex::Regex;

use crate::filter::RuleError;

/// DM's default shadow-table rule (gh-ost's `_t_gho`, pt-osc's `_t_new`).
pub const DEFAULT_SHADOW_TABLE_RULE: &str = "^_(.+)_(?:new|gho)$";
/// DM's default trash-table rule (gh-ost's `_t_ghc` and `_t_del`, pt-osc's `_t_old`).
pub const DEFAULT_TRASH_TABLE_RULE: &str = "^_(.+)_(?:ghc|del|old)$";

/// Which kind of online-DDL table a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnlineDdlTableKind {
    /// The tool's copy of the table being changed (`shadow-table-rules`).
    Shadow,
    /// The tool's bookkeeping or the old table after the swap (`trash-table-rules`).
    Trash,
}

impl OnlineDdlTableKind {
    fn key(self) -> &'static str {
        match self {
            OnlineDdlTableKind::Shadow => "shadow-table-rules",
            OnlineDdlTableKind::Trash => "trash-table-rules",
        }
    }
}

/// A table name that an online-DDL rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineDdlTable {
    /// Shadow or trash.
    pub kind: OnlineDdlTableKind,
    /// The real table's name (the rule's capture group).
    pub real_table: String,
    /// The rule that matched, anchored as it is applied.
    pub rule: String,
}

/// One compiled rule and its text.
#[derive(Debug, Clone)]
struct OnlineDdlRule {
    text: String,
    regex: Regex,
}

/// The online-DDL guard of a task: empty (matches nothing) when `online-ddl` is false.
#[derive(Debug, Clone, Default)]
pub struct OnlineDdlGuard {
    shadow: Vec<OnlineDdlRule>,
    trash: Vec<OnlineDdlRule>,
}

fn compile(key: &str, rules: &[String], default: &str) -> Result<Vec<OnlineDdlRule>, RuleError> {
    let defaults = [default.to_owned()];
    let rules = if rules.is_empty() {
        &defaults[..]
    } else {
        rules
    };
    rules
        .iter()
        .map(|rule| {
            let mut text = rule.clone();
            if !text.starts_with('^') {
                text.insert(0, '^');
            }
            if !text.ends_with('$') {
                text.push('$');
            }
            let regex = Regex::new(&text).map_err(|failure| RuleError {
                rule: key.to_owned(),
                reason: format!("`{text}` is not a valid regular expression: {failure}"),
            })?;
            // captures_len counts the whole match as group 0.
            if regex.captures_len() != 2 {
                return Err(RuleError {
                    rule: key.to_owned(),
                    reason: format!(
                        "`{text}` must hold exactly one capture group, the real table's name (as `{default}` does)"
                    ),
                });
            }
            Ok(OnlineDdlRule { text, regex })
        })
        .collect()
}

impl OnlineDdlGuard {
    /// No guard: `online-ddl: false`.
    pub fn disabled() -> Self {
        OnlineDdlGuard::default()
    }

    /// The guard of `online-ddl: true` with these rules (empty lists: DM's defaults).
    pub fn new(shadow_rules: &[String], trash_rules: &[String]) -> Result<Self, RuleError> {
        Ok(OnlineDdlGuard {
            shadow: compile(
                "shadow-table-rules",
                shadow_rules,
                DEFAULT_SHADOW_TABLE_RULE,
            )?,
            trash: compile("trash-table-rules", trash_rules, DEFAULT_TRASH_TABLE_RULE)?,
        })
    }

    /// Whether the guard is on (`online-ddl: true`).
    pub fn is_enabled(&self) -> bool {
        !self.shadow.is_empty() || !self.trash.is_empty()
    }

    /// The online-DDL table `table_name` is, if a rule matches it (shadow rules first).
    pub fn classify(&self, table_name: &str) -> Option<OnlineDdlTable> {
        let kinds = [
            (OnlineDdlTableKind::Shadow, &self.shadow),
            (OnlineDdlTableKind::Trash, &self.trash),
        ];
        kinds.into_iter().find_map(|(kind, rules)| {
            rules.iter().find_map(|rule| {
                let captures = rule.regex.captures(table_name)?;
                Some(OnlineDdlTable {
                    kind,
                    real_table: captures
                        .get(1)
                        .map_or_else(String::new, |real| real.as_str().to_owned()),
                    rule: rule.text.clone(),
                })
            })
        })
    }

    /// Why the task must stop when `table` appears in the binlog, if it is an online-DDL table.
    pub fn matches(&self, table: &TableRef) -> Option<String> {
        let found = self.classify(&table.table)?;
        Some(stop_reason(table, &found))
    }
}

/// The message of a task stopped by `table`, an online-DDL table.
pub(crate) fn stop_reason(table: &TableRef, found: &OnlineDdlTable) -> String {
    format!(
        "{table} matches the {key} rule `{rule}` (a gh-ost / pt-online-schema-change table of \
         `{schema}`.`{real}`): online schema change tools are not supported yet, and `online-ddl` \
         is true (DM's default). Set `online-ddl: false` in the task file to replicate the tool's \
         tables as plain tables (its final RENAME swaps them downstream too; the block-allow list \
         must let them through), or run the schema change on the downstream yourself and skip \
         the tool's events",
        key = found.kind.key(),
        rule = found.rule,
        schema = table.schema,
        real = found.real_table,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(rules: &[&str]) -> Vec<String> {
        rules.iter().map(|rule| (*rule).to_owned()).collect()
    }

    #[test]
    fn dm_default_rules_catch_gh_ost_and_pt_osc_tables() {
        let guard = OnlineDdlGuard::new(&[], &[]).expect("defaults");
        assert!(guard.is_enabled());
        for (name, kind, real) in [
            ("_orders_gho", OnlineDdlTableKind::Shadow, "orders"),
            ("_orders_new", OnlineDdlTableKind::Shadow, "orders"),
            ("_orders_ghc", OnlineDdlTableKind::Trash, "orders"),
            ("_orders_del", OnlineDdlTableKind::Trash, "orders"),
            ("_orders_old", OnlineDdlTableKind::Trash, "orders"),
            (
                "_order_items_gho",
                OnlineDdlTableKind::Shadow,
                "order_items",
            ),
        ] {
            let found = guard.classify(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(
                (found.kind, found.real_table.as_str()),
                (kind, real),
                "{name}"
            );
        }
        for name in [
            "orders",
            "orders_gho",
            "_orders_gho_x",
            "_ORDERS_GHO",
            "x_orders_new",
            "__gho",
        ] {
            assert_eq!(guard.classify(name), None, "{name}");
        }
        let reason = guard
            .matches(&TableRef::new("shop", "_orders_gho"))
            .expect("a shadow table");
        assert!(reason.contains("shadow-table-rules"), "{reason}");
        assert!(reason.contains("`shop`.`orders`"), "{reason}");
        assert!(reason.contains("online-ddl: false"), "{reason}");
        assert_eq!(guard.matches(&TableRef::new("shop", "orders")), None);
    }

    #[test]
    fn user_rules_are_anchored_and_need_one_capture_group() {
        let guard =
            OnlineDdlGuard::new(&names(&["tmp_(.+)"]), &names(&["(.+)_trash$"])).expect("rules");
        assert_eq!(
            guard.classify("tmp_orders").map(|found| found.real_table),
            Some("orders".into())
        );
        // Anchored: the default rules no longer apply, and `x_tmp_orders` does not match.
        assert_eq!(guard.classify("x_tmp_orders"), None);
        assert_eq!(guard.classify("_orders_gho"), None);
        assert_eq!(
            guard.classify("orders_trash").map(|found| found.kind),
            Some(OnlineDdlTableKind::Trash)
        );
        let error = OnlineDdlGuard::new(&names(&["_(.+)_(.+)_gho"]), &[]).expect_err("two groups");
        assert_eq!(error.rule, "shadow-table-rules");
        assert!(
            error.reason.contains("exactly one capture group"),
            "{error}"
        );
        let error = OnlineDdlGuard::new(&[], &names(&["_(.+"])).expect_err("bad regex");
        assert_eq!(error.rule, "trash-table-rules");
    }

    #[test]
    fn a_disabled_guard_matches_nothing() {
        let guard = OnlineDdlGuard::disabled();
        assert!(!guard.is_enabled());
        assert_eq!(guard.matches(&TableRef::new("shop", "_orders_gho")), None);
    }
}
