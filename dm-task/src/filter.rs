//! What a task replicates and where it goes: table patterns, the block-allow list, table routes
//! and the binlog event filter, as DM's task file defines them. Pure and synchronous.
//!
//! ```text
//! upstream `shop_01`.`orders` --BlockAllowList::allows--> yes --TableRouter::route--> `shop`.`orders`
//!                              --EventFilter::decide(insert / "drop table" / SQL)--> Do | Ignore | Error
//! ```
//!
//! Patterns are DM's: a wildcard (`*` any run, `?` one character, `[a-z]` / `[!a]` a class) or, with
//! a leading `~`, a regular expression. Names compare case-insensitively unless the task is
//! `case-sensitive`. System schemas (`mysql`, `information_schema`, `performance_schema`, `sys`,
//! `metrics_schema`, `inspection_schema`) are never replicated.

use dm_core::{DdlKind, TableRef};
use regex::Regex;

/// A rule that does not make sense, named so the user can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule}: {reason}")]
pub struct RuleError {
    /// The rule (`routes.rule-1`, `block-allow-list.bw-1.do-tables[0]`...).
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A schema or table name pattern.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// A wildcard pattern, lower-cased when matching is case-insensitive.
    Wildcard(Vec<WildcardToken>),
    /// `~regex`.
    Regex(Regex),
}

/// One element of a wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WildcardToken {
    /// A literal character.
    Literal(char),
    /// `?`.
    AnyOne,
    /// `*`.
    AnyRun,
    /// `[...]`: ranges of characters, negated with `!`.
    Class {
        /// Inclusive ranges.
        ranges: Vec<(char, char)>,
        /// `[!...]`.
        negated: bool,
    },
}

impl Pattern {
    /// Parses `text`; `case_sensitive` false lower-cases literals (names are lower-cased too).
    pub fn parse(text: &str, case_sensitive: bool, rule: &str) -> Result<Pattern, RuleError> {
        let error = |reason: String| RuleError {
            rule: rule.to_owned(),
            reason,
        };
        if let Some(expression) = text.strip_prefix('~') {
            let expression = if case_sensitive {
                expression.to_owned()
            } else {
                format!("(?i){expression}")
            };
            return Regex::new(&expression)
                .map(Pattern::Regex)
                .map_err(|failure| {
                    error(format!(
                        "`{text}` is not a valid regular expression: {failure}"
                    ))
                });
        }
        let text = if case_sensitive {
            text.to_owned()
        } else {
            text.to_lowercase()
        };
        let mut tokens = Vec::new();
        let mut characters = text.chars();
        while let Some(character) = characters.next() {
            tokens.push(match character {
                '*' => WildcardToken::AnyRun,
                '?' => WildcardToken::AnyOne,
                '[' => {
                    let mut ranges = Vec::new();
                    let mut negated = false;
                    let mut closed = false;
                    let mut first = true;
                    while let Some(member) = characters.next() {
                        match member {
                            '!' if first => negated = true,
                            ']' if !first => {
                                closed = true;
                                break;
                            }
                            start => {
                                let mut lookahead = characters.clone();
                                if lookahead.next() == Some('-')
                                    && let Some(end) = lookahead.next()
                                    && end != ']'
                                {
                                    characters = lookahead;
                                    ranges.push((start, end));
                                } else {
                                    ranges.push((start, start));
                                }
                            }
                        }
                        first = false;
                    }
                    if !closed {
                        return Err(error(format!("`{text}` has an unclosed `[`")));
                    }
                    WildcardToken::Class { ranges, negated }
                }
                literal => WildcardToken::Literal(literal),
            });
        }
        Ok(Pattern::Wildcard(tokens))
    }

    /// Whether `name` (already lower-cased when matching is case-insensitive) matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Regex(expression) => expression.is_match(name),
            Pattern::Wildcard(tokens) => {
                let name: Vec<char> = name.chars().collect();
                wildcard_match(tokens, &name)
            }
        }
    }
}

/// Iterative wildcard matching with one backtrack point per `*` (linear in practice).
fn wildcard_match(tokens: &[WildcardToken], name: &[char]) -> bool {
    let (mut token, mut position) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while position < name.len() {
        let step = match tokens.get(token) {
            Some(WildcardToken::AnyRun) => {
                star = Some((token, position));
                token += 1;
                continue;
            }
            Some(WildcardToken::AnyOne) => true,
            Some(WildcardToken::Literal(literal)) => *literal == name[position],
            Some(WildcardToken::Class { ranges, negated }) => {
                let inside = ranges
                    .iter()
                    .any(|(start, end)| (*start..=*end).contains(&name[position]));
                inside != *negated
            }
            None => false,
        };
        if step {
            token += 1;
            position += 1;
        } else if let Some((star_token, star_position)) = star {
            token = star_token + 1;
            position = star_position + 1;
            star = Some((star_token, star_position + 1));
        } else {
            return false;
        }
    }
    tokens[token.min(tokens.len())..]
        .iter()
        .all(|remaining| *remaining == WildcardToken::AnyRun)
}

/// A name as patterns compare it: lower-cased unless the task is case-sensitive.
fn fold(name: &str, case_sensitive: bool) -> String {
    if case_sensitive {
        name.to_owned()
    } else {
        name.to_lowercase()
    }
}

/// Schemas never replicated.
pub const SYSTEM_SCHEMAS: [&str; 6] = [
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "metrics_schema",
    "inspection_schema",
];

/// A `schema-pattern` + `table-pattern` pair.
#[derive(Debug, Clone)]
pub struct TablePattern {
    schema: Pattern,
    table: Pattern,
}

impl TablePattern {
    /// Parses both patterns.
    pub fn parse(
        schema: &str,
        table: &str,
        case_sensitive: bool,
        rule: &str,
    ) -> Result<Self, RuleError> {
        Ok(TablePattern {
            schema: Pattern::parse(schema, case_sensitive, rule)?,
            table: Pattern::parse(table, case_sensitive, rule)?,
        })
    }

    fn matches(&self, schema: &str, table: &str) -> bool {
        self.schema.matches(schema) && self.table.matches(table)
    }
}

/// DM's `block-allow-list`: `do-dbs`, `ignore-dbs`, `do-tables`, `ignore-tables`.
#[derive(Debug, Clone, Default)]
pub struct BlockAllowList {
    case_sensitive: bool,
    do_schemas: Vec<Pattern>,
    ignore_schemas: Vec<Pattern>,
    do_tables: Vec<TablePattern>,
    ignore_tables: Vec<TablePattern>,
}

impl BlockAllowList {
    /// Builds the list. Empty lists allow everything but the system schemas.
    pub fn new(
        case_sensitive: bool,
        do_schemas: Vec<Pattern>,
        ignore_schemas: Vec<Pattern>,
        do_tables: Vec<TablePattern>,
        ignore_tables: Vec<TablePattern>,
    ) -> Self {
        BlockAllowList {
            case_sensitive,
            do_schemas,
            ignore_schemas,
            do_tables,
            ignore_tables,
        }
    }

    fn fold(&self, name: &str) -> String {
        fold(name, self.case_sensitive)
    }

    /// Whether events of `schema` (a database-level statement) are replicated.
    pub fn allows_schema(&self, schema: &str) -> bool {
        let schema = self.fold(schema);
        if SYSTEM_SCHEMAS.contains(&schema.as_str()) {
            return false;
        }
        if !self.do_schemas.is_empty() {
            return self
                .do_schemas
                .iter()
                .any(|pattern| pattern.matches(&schema));
        }
        !self
            .ignore_schemas
            .iter()
            .any(|pattern| pattern.matches(&schema))
    }

    /// Whether rows and DDL of `schema`.`table` are replicated: the schema must pass
    /// ([`Self::allows_schema`]); then a table matching `do-tables` passes, one matching
    /// `ignore-tables` does not, and any other passes only when `do-tables` is empty.
    pub fn allows_table(&self, schema: &str, table: &str) -> bool {
        if !self.allows_schema(schema) {
            return false;
        }
        let (schema, table) = (self.fold(schema), self.fold(table));
        if self
            .do_tables
            .iter()
            .any(|pattern| pattern.matches(&schema, &table))
        {
            return true;
        }
        if self
            .ignore_tables
            .iter()
            .any(|pattern| pattern.matches(&schema, &table))
        {
            return false;
        }
        self.do_tables.is_empty()
    }
}

/// One routing rule.
#[derive(Debug, Clone)]
pub struct RouteRule {
    /// The rule's name (for errors).
    pub name: String,
    schema: Pattern,
    /// `None`: a schema-level rule (tables keep their names).
    table: Option<Pattern>,
    target_schema: String,
    target_table: Option<String>,
}

impl RouteRule {
    /// A rule routing `schema_pattern` (and `table_pattern`, if any) to `target_schema` (and
    /// `target_table`).
    pub fn new(
        name: &str,
        schema_pattern: &str,
        table_pattern: Option<&str>,
        target_schema: &str,
        target_table: Option<&str>,
        case_sensitive: bool,
    ) -> Result<Self, RuleError> {
        let rule = format!("routes.{name}");
        if target_schema.is_empty() {
            return Err(RuleError {
                rule,
                reason: "target-schema is empty".into(),
            });
        }
        if table_pattern.is_none() && target_table.is_some_and(|table| !table.is_empty()) {
            return Err(RuleError {
                rule,
                reason: "target-table needs a table-pattern".into(),
            });
        }
        Ok(RouteRule {
            name: name.to_owned(),
            schema: Pattern::parse(schema_pattern, case_sensitive, &rule)?,
            table: table_pattern
                .filter(|pattern| !pattern.is_empty())
                .map(|pattern| Pattern::parse(pattern, case_sensitive, &rule))
                .transpose()?,
            target_schema: target_schema.to_owned(),
            target_table: target_table
                .filter(|table| !table.is_empty())
                .map(str::to_owned),
        })
    }
}

/// DM's table routing: a table-level rule wins over a schema-level rule; two rules of one level
/// matching one table is an error (DM's "at most one rule per table").
#[derive(Debug, Clone, Default)]
pub struct TableRouter {
    case_sensitive: bool,
    rules: Vec<RouteRule>,
}

impl TableRouter {
    /// A router over `rules`.
    pub fn new(case_sensitive: bool, rules: Vec<RouteRule>) -> Self {
        TableRouter {
            case_sensitive,
            rules,
        }
    }

    fn fold(&self, name: &str) -> String {
        fold(name, self.case_sensitive)
    }

    fn single<'a>(
        &self,
        mut matches: impl Iterator<Item = &'a RouteRule>,
        what: &str,
    ) -> Result<Option<&'a RouteRule>, RuleError> {
        let first = matches.next();
        if let (Some(first), Some(second)) = (first, matches.next()) {
            return Err(RuleError {
                rule: format!("routes.{} and routes.{}", first.name, second.name),
                reason: format!("both route {what}; a table may match one rule of each level"),
            });
        }
        Ok(first)
    }

    /// The downstream table of upstream `table` (itself when no rule matches).
    pub fn route(&self, table: &TableRef) -> Result<TableRef, RuleError> {
        let (schema, name) = (self.fold(&table.schema), self.fold(&table.table));
        let table_rule = self.single(
            self.rules.iter().filter(|rule| {
                rule.table
                    .as_ref()
                    .is_some_and(|pattern| rule.schema.matches(&schema) && pattern.matches(&name))
            }),
            &table.to_string(),
        )?;
        if let Some(rule) = table_rule {
            return Ok(TableRef::new(
                rule.target_schema.clone(),
                rule.target_table
                    .clone()
                    .unwrap_or_else(|| table.table.clone()),
            ));
        }
        Ok(TableRef::new(
            self.route_schema(&table.schema)?,
            table.table.clone(),
        ))
    }

    /// The downstream schema of upstream `schema` (for database-level statements and tables
    /// without a table-level rule).
    pub fn route_schema(&self, schema: &str) -> Result<String, RuleError> {
        let folded = self.fold(schema);
        let rule = self.single(
            self.rules
                .iter()
                .filter(|rule| rule.table.is_none() && rule.schema.matches(&folded)),
            &format!("`{schema}`"),
        )?;
        Ok(rule.map_or_else(|| schema.to_owned(), |rule| rule.target_schema.clone()))
    }
}

/// What the binlog event filter decides for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterAction {
    /// Replicate it.
    Do,
    /// Skip it (a skipped DDL is still applied to the schema tracker).
    Ignore,
    /// Stop the task with an error naming the rule.
    Error,
}

/// The kind of event a filter rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterEvent {
    /// A row insert.
    Insert,
    /// A row update.
    Update,
    /// A row delete.
    Delete,
    /// A DDL statement of this kind.
    Ddl(DdlEventKind),
}

/// DDL kinds the filter distinguishes (DM's event names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DdlEventKind {
    /// `create database`.
    CreateDatabase,
    /// `drop database`.
    DropDatabase,
    /// `alter database`.
    AlterDatabase,
    /// `create table`.
    CreateTable,
    /// `drop table`.
    DropTable,
    /// `truncate table`.
    TruncateTable,
    /// `rename table`.
    RenameTable,
    /// `alter table`.
    AlterTable,
    /// `create index`.
    CreateIndex,
    /// `drop index`.
    DropIndex,
    /// `create view`.
    CreateView,
    /// `drop view`.
    DropView,
}

impl From<&DdlKind> for DdlEventKind {
    fn from(kind: &DdlKind) -> Self {
        match kind {
            DdlKind::CreateSchema => DdlEventKind::CreateDatabase,
            DdlKind::DropSchema => DdlEventKind::DropDatabase,
            DdlKind::AlterSchema => DdlEventKind::AlterDatabase,
            DdlKind::CreateTable => DdlEventKind::CreateTable,
            DdlKind::DropTable => DdlEventKind::DropTable,
            DdlKind::AlterTable => DdlEventKind::AlterTable,
            DdlKind::RenameTable { .. } => DdlEventKind::RenameTable,
            DdlKind::TruncateTable => DdlEventKind::TruncateTable,
            DdlKind::CreateIndex => DdlEventKind::CreateIndex,
            DdlKind::DropIndex => DdlEventKind::DropIndex,
            DdlKind::CreateView => DdlEventKind::CreateView,
            DdlKind::DropView => DdlEventKind::DropView,
        }
    }
}

/// Which events a rule names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct EventSet {
    all_dml: bool,
    all_ddl: bool,
    events: Vec<FilterEvent>,
}

impl EventSet {
    fn contains(&self, event: FilterEvent) -> bool {
        match event {
            FilterEvent::Ddl(_) if self.all_ddl => true,
            FilterEvent::Insert | FilterEvent::Update | FilterEvent::Delete if self.all_dml => true,
            event => self.events.contains(&event),
        }
    }
}

/// DDL event names DM accepts but that this filter does not tell apart from `alter table`
/// (partition, foreign key and "incompatible change" kinds): they never match on their own.
const ACCEPTED_WITHOUT_EFFECT: [&str; 26] = [
    "add table partition",
    "drop table partition",
    "truncate table partition",
    "exchange table partition",
    "reorganize table partition",
    "coalesce table partition",
    "rebuild table partition",
    "create foreign key",
    "drop foreign key",
    "value range decrease",
    "precision decrease",
    "modify column",
    "rename column",
    "rename index",
    "drop column",
    "drop primary key",
    "drop unique key",
    "modify default value",
    "modify constraint",
    "modify columns order",
    "modify charset",
    "modify collation",
    "remove auto increment",
    "modify storage engine",
    "reorganize partition",
    "multi schema change",
];

fn parse_events(names: &[String], rule: &str) -> Result<EventSet, RuleError> {
    let mut set = EventSet::default();
    for name in names {
        let lowered = name.trim().to_lowercase();
        let event = match lowered.as_str() {
            "all" => {
                set.all_dml = true;
                set.all_ddl = true;
                continue;
            }
            "all dml" => {
                set.all_dml = true;
                continue;
            }
            "all ddl" => {
                set.all_ddl = true;
                continue;
            }
            "none" | "none dml" | "none ddl" => continue,
            "insert" => FilterEvent::Insert,
            "update" => FilterEvent::Update,
            "delete" => FilterEvent::Delete,
            "create database" | "create schema" => FilterEvent::Ddl(DdlEventKind::CreateDatabase),
            "drop database" | "drop schema" => FilterEvent::Ddl(DdlEventKind::DropDatabase),
            "alter database" | "alter schema" => FilterEvent::Ddl(DdlEventKind::AlterDatabase),
            "create table" => FilterEvent::Ddl(DdlEventKind::CreateTable),
            "drop table" => FilterEvent::Ddl(DdlEventKind::DropTable),
            // DM's own integration tests write `truncate` too.
            "truncate table" | "truncate" => FilterEvent::Ddl(DdlEventKind::TruncateTable),
            "rename table" => FilterEvent::Ddl(DdlEventKind::RenameTable),
            "alter table" => FilterEvent::Ddl(DdlEventKind::AlterTable),
            "create index" => FilterEvent::Ddl(DdlEventKind::CreateIndex),
            "drop index" => FilterEvent::Ddl(DdlEventKind::DropIndex),
            "create view" => FilterEvent::Ddl(DdlEventKind::CreateView),
            "drop view" => FilterEvent::Ddl(DdlEventKind::DropView),
            other if ACCEPTED_WITHOUT_EFFECT.contains(&other) => continue,
            other => {
                return Err(RuleError {
                    rule: rule.to_owned(),
                    reason: format!(
                        "`{other}` is not an event name (all, all dml, all ddl, insert, update, delete, create table, drop table, ...)"
                    ),
                });
            }
        };
        set.events.push(event);
    }
    Ok(set)
}

/// One binlog event filter rule.
#[derive(Debug, Clone)]
pub struct EventFilterRule {
    name: String,
    schema: Pattern,
    table: Option<Pattern>,
    events: EventSet,
    sql_patterns: Vec<Regex>,
    action: FilterAction,
}

impl EventFilterRule {
    /// A rule as the task file's `filters.<name>` gives it.
    pub fn new(
        name: &str,
        schema_pattern: &str,
        table_pattern: Option<&str>,
        events: &[String],
        sql_patterns: &[String],
        action: &str,
        case_sensitive: bool,
    ) -> Result<Self, RuleError> {
        let rule = format!("filters.{name}");
        let action = match action.to_lowercase().as_str() {
            "do" => FilterAction::Do,
            "ignore" => FilterAction::Ignore,
            "error" => FilterAction::Error,
            other => {
                return Err(RuleError {
                    rule,
                    reason: format!("action `{other}` is not Do, Ignore or Error"),
                });
            }
        };
        let sql_patterns = sql_patterns
            .iter()
            .map(|pattern| {
                Regex::new(&format!("(?i){pattern}")).map_err(|failure| RuleError {
                    rule: rule.clone(),
                    reason: format!(
                        "sql-pattern `{pattern}` is not a valid regular expression: {failure}"
                    ),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(EventFilterRule {
            name: name.to_owned(),
            schema: Pattern::parse(schema_pattern, case_sensitive, &rule)?,
            table: table_pattern
                .filter(|pattern| !pattern.is_empty())
                .map(|pattern| Pattern::parse(pattern, case_sensitive, &rule))
                .transpose()?,
            events: parse_events(events, &rule)?,
            sql_patterns,
            action,
        })
    }

    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// DM's binlog event filter: table-level rules, then schema-level rules, each in order. A `Do`
/// rule ignores what it does not name; an `Ignore` rule ignores what it names; an `Error` rule
/// stops the task on what it names. An event no rule stops is replicated.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    case_sensitive: bool,
    rules: Vec<EventFilterRule>,
}

impl EventFilter {
    /// A filter over `rules`.
    pub fn new(case_sensitive: bool, rules: Vec<EventFilterRule>) -> Self {
        EventFilter {
            case_sensitive,
            rules,
        }
    }

    /// Decides for an event on `schema`.`table` (`table` empty for database statements), of
    /// `event` kind and, for DDL, with statement `sql`. Returns the action and the deciding
    /// rule's name.
    pub fn decide(
        &self,
        schema: &str,
        table: &str,
        event: Option<FilterEvent>,
        sql: Option<&str>,
    ) -> (FilterAction, Option<&str>) {
        let (schema, table) = (
            fold(schema, self.case_sensitive),
            fold(table, self.case_sensitive),
        );
        // As DM's rule selector: a table pattern also decides a database statement (empty
        // table name) when it matches the empty name (`*` does).
        let table_level = self.rules.iter().filter(|rule| {
            rule.table
                .as_ref()
                .is_some_and(|pattern| rule.schema.matches(&schema) && pattern.matches(&table))
        });
        let schema_level = self
            .rules
            .iter()
            .filter(|rule| rule.table.is_none() && rule.schema.matches(&schema));
        for rule in table_level.chain(schema_level) {
            let named = event.is_some_and(|event| rule.events.contains(event))
                || sql.is_some_and(|sql| rule.sql_patterns.iter().any(|regex| regex.is_match(sql)));
            match (rule.action, named) {
                (FilterAction::Error, true) => return (FilterAction::Error, Some(&rule.name)),
                (FilterAction::Ignore, true) | (FilterAction::Do, false) => {
                    return (FilterAction::Ignore, Some(&rule.name));
                }
                _ => {}
            }
        }
        (FilterAction::Do, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text, false, "test").expect("pattern")
    }

    #[test]
    fn wildcards_and_regexes_match_as_dm_does() {
        assert!(pattern("shop_*").matches("shop_01"));
        assert!(pattern("shop_*").matches("shop_"));
        assert!(!pattern("shop_*").matches("shop"));
        assert!(pattern("t?").matches("t1"));
        assert!(!pattern("t?").matches("t12"));
        assert!(pattern("t[0-9]").matches("t7"));
        assert!(!pattern("t[!0-9]").matches("t7"));
        assert!(pattern("a*b*c").matches("axxbyyc"));
        assert!(!pattern("a*b*c").matches("axxbyy"));
        assert!(pattern("~^shop_\\d+$").matches("shop_42"));
        assert!(!pattern("~^shop_\\d+$").matches("shop_x"));
        // Case-insensitive by default: patterns and names fold.
        assert!(pattern("Shop_*").matches("shop_1"));
        assert!(pattern("~^SHOP").matches("shop"));
        assert!(Pattern::parse("~(", false, "routes.r").is_err());
        assert!(Pattern::parse("t[0-9", false, "routes.r").is_err());
    }

    proptest::proptest! {
        /// The wildcard matcher agrees with the same pattern as a regular expression.
        #[test]
        fn wildcards_agree_with_regular_expressions(
            pattern_text in "[ab*?]{0,8}",
            name in "[ab]{0,10}",
        ) {
            let reference: String = pattern_text
                .chars()
                .map(|character| match character {
                    '*' => ".*".to_owned(),
                    '?' => ".".to_owned(),
                    other => other.to_string(),
                })
                .collect();
            let reference = Regex::new(&format!("^{reference}$")).expect("regex");
            proptest::prop_assert_eq!(
                pattern(&pattern_text).matches(&name),
                reference.is_match(&name),
                "pattern {} name {}", pattern_text, name
            );
        }
    }

    #[test]
    fn the_block_allow_list_follows_dm_rules() {
        let table = |schema: &str, table: &str| {
            TablePattern::parse(schema, table, false, "bw").expect("pattern")
        };
        let list = BlockAllowList::new(
            false,
            vec![pattern("shop*"), pattern("log")],
            Vec::new(),
            vec![table("shop*", "orders"), table("log", "~^m")],
            vec![table("shop*", "tmp_*")],
        );
        assert!(list.allows_table("shop_1", "orders"));
        assert!(list.allows_table("LOG", "Messages"));
        assert!(!list.allows_table("shop_1", "goods"), "not in do-tables");
        assert!(!list.allows_table("user", "orders"), "not in do-dbs");
        assert!(!list.allows_table("mysql", "user"));
        assert!(list.allows_schema("shop_2"));
        let open = BlockAllowList::new(
            false,
            Vec::new(),
            vec![pattern("secret")],
            Vec::new(),
            vec![table("*", "tmp_*")],
        );
        assert!(open.allows_table("any", "thing"));
        assert!(!open.allows_table("secret", "thing"));
        assert!(!open.allows_table("any", "tmp_1"));
        assert!(!open.allows_schema("information_schema"));
    }

    #[test]
    fn routes_prefer_table_rules_and_refuse_ambiguity() {
        let router = TableRouter::new(
            false,
            vec![
                RouteRule::new(
                    "shards",
                    "shop_*",
                    Some("orders_*"),
                    "shop",
                    Some("orders"),
                    false,
                )
                .expect("rule"),
                RouteRule::new("schemas", "shop_*", None, "shop", None, false).expect("rule"),
            ],
        );
        assert_eq!(
            router
                .route(&TableRef::new("shop_01", "orders_07"))
                .expect("route"),
            TableRef::new("shop", "orders")
        );
        assert_eq!(
            router
                .route(&TableRef::new("shop_01", "goods"))
                .expect("route"),
            TableRef::new("shop", "goods")
        );
        assert_eq!(
            router.route(&TableRef::new("other", "t")).expect("route"),
            TableRef::new("other", "t")
        );
        assert_eq!(router.route_schema("SHOP_02").expect("route"), "shop");
        let ambiguous = TableRouter::new(
            false,
            vec![
                RouteRule::new("a", "s*", Some("t*"), "x", None, false).expect("rule"),
                RouteRule::new("b", "s", Some("t1"), "y", None, false).expect("rule"),
            ],
        );
        let error = ambiguous
            .route(&TableRef::new("s", "t1"))
            .expect_err("two rules");
        assert!(
            error.rule.contains("routes.a") && error.rule.contains("routes.b"),
            "{error}"
        );
        assert!(RouteRule::new("bad", "s", None, "", None, false).is_err());
    }

    #[test]
    fn event_filters_do_ignore_and_error() {
        let names = |list: &[&str]| {
            list.iter()
                .map(|name| (*name).to_owned())
                .collect::<Vec<_>>()
        };
        let filter = EventFilter::new(
            false,
            vec![
                EventFilterRule::new(
                    "no-truncate",
                    "shop*",
                    Some("*"),
                    &names(&["truncate table", "drop table"]),
                    &names(&["^DROP\\s+PROCEDURE"]),
                    "Ignore",
                    false,
                )
                .expect("rule"),
                EventFilterRule::new(
                    "only-inserts",
                    "log",
                    Some("*"),
                    &names(&["insert"]),
                    &[],
                    "Do",
                    false,
                )
                .expect("rule"),
                EventFilterRule::new(
                    "no-drop-db",
                    "*",
                    None,
                    &names(&["drop database"]),
                    &[],
                    "Error",
                    false,
                )
                .expect("rule"),
            ],
        );
        let truncate = Some(FilterEvent::Ddl(DdlEventKind::TruncateTable));
        assert_eq!(
            filter.decide("shop_1", "t", truncate, None).0,
            FilterAction::Ignore
        );
        assert_eq!(
            filter
                .decide("shop_1", "t", Some(FilterEvent::Insert), None)
                .0,
            FilterAction::Do
        );
        assert_eq!(
            filter
                .decide("shop_1", "t", None, Some("drop procedure p"))
                .0,
            FilterAction::Ignore
        );
        assert_eq!(
            filter.decide("log", "m", Some(FilterEvent::Update), None).0,
            FilterAction::Ignore
        );
        assert_eq!(
            filter.decide("log", "m", Some(FilterEvent::Insert), None).0,
            FilterAction::Do
        );
        let drop_database = Some(FilterEvent::Ddl(DdlEventKind::DropDatabase));
        assert_eq!(
            filter.decide("anything", "", drop_database, None),
            (FilterAction::Error, Some("no-drop-db"))
        );
        assert!(
            EventFilterRule::new("x", "*", None, &names(&["explode table"]), &[], "Do", false)
                .expect_err("unknown event")
                .reason
                .contains("explode table")
        );
        assert!(EventFilterRule::new("x", "*", None, &[], &[], "Maybe", false).is_err());
    }
}
