//! A Query event read once: what kind of statement it is, and for a DDL one
//! [`PlannedStatement`] per object it acts on, with the names it uses and where they are.
//!
//! ```text
//! Query event (schema, text) --normalize--> tokens --grammar--> QueryClass
//!   Control   BEGIN, COMMIT, ROLLBACK, SAVEPOINT, XA END/PREPARE/COMMIT/ROLLBACK
//!   Xa        XA START: a transaction whose outcome comes later
//!   Dml       INSERT, UPDATE, DELETE, REPLACE, LOAD DATA written as a statement
//!   Ddl       DdlPlan { statements: [PlannedStatement { DdlStatement, names, parsed AST }] }
//!   Ignored   GRANT, users, routines, triggers, temporary tables, ANALYZE, FLUSH, SET, ...
//!   Unreadable a DDL whose object cannot be told
//! ```
//!
//! MariaDB's `SET STATEMENT var = value FOR <statement>` is read as its statement (the
//! variables only tune the upstream's execution). MySQL 8's `CREATE TABLE ... START TRANSACTION`
//! (logged inside the transaction of a `CREATE TABLE ... SELECT`) loses its `START
//! TRANSACTION`, which only that server reads. Quotes are read as the session's `sql_mode` says
//! (`ANSI_QUOTES`, `NO_BACKSLASH_ESCAPES`).
//!
//! The leading words of every statement form are read by a small grammar over the tokens, so
//! the names (schemas, tables, quoted, with dots, after `IF [NOT] EXISTS`, several in one DROP or
//! RENAME) are found even when sqlparser cannot parse the rest (`ALTER TABLE ... ADD
//! PARTITION`, `ALTER DATABASE`, `CREATE TABLE ... PARTITION BY`). sqlparser's AST, when it has
//! one, serves the schema tracker. Filters, routes, the tracker and execution all take the plan;
//! none of them reads the text again.
//!
//! Invariants: each [`PlannedStatement`] acts on one object; its `sql` performs exactly that
//! statement (with the event's current schema selected); every name the grammar reads has a
//! span in `sql` (an `ALTER DATABASE` without a name an empty one where the name goes), so
//! [`PlannedStatement::qualified_sql`] replaces names in place, fully qualified and routed, and
//! never prints the statement anew.

use std::ops::Range;

use dm_core::{DdlEvent, DdlKind, DdlStatement, DdlTarget, Location, TableRef, quote_identifier};
use sqlparser::ast::Statement;
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::text::{Quoting, ServerVersion, Token, TokenKind, normalize, tokens};

/// What a Query event is.
#[derive(Clone, Debug)]
pub enum QueryClass {
    /// Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `XA END`, `XA PREPARE`,
    /// `XA COMMIT`, `XA ROLLBACK`).
    Control,
    /// `XA START`: the rows that follow belong to a transaction whose outcome (a later `XA
    /// COMMIT` or `XA ROLLBACK`, in another event group) is not known when they arrive.
    Xa,
    /// A row change written as a statement (the session's binlog_format was STATEMENT or MIXED).
    Dml(DmlStatement),
    /// A DDL the syncer replicates.
    Ddl(DdlPlan),
    /// A statement that changes no replicated table or schema: accounts, grants, routines,
    /// triggers, events, temporary tables, table maintenance, `FLUSH`, `SET`, ...
    Ignored,
    /// A DDL whose object cannot be told (`reason` says what was expected).
    Unreadable {
        /// What the grammar expected and did not find.
        reason: String,
    },
}

/// A DML statement in a Query event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmlStatement {
    /// The tables it writes, as far as they could be told.
    pub tables: Vec<TableRef>,
    /// Whether `tables` is every table it writes (false for multi-table forms and `WITH`).
    pub complete: bool,
}

/// Why a name appears in a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRole {
    /// The object the statement acts on.
    Target,
    /// The new name of a rename.
    RenamedTo,
    /// A table read but not changed (`CREATE TABLE ... LIKE source`).
    Source,
    /// A table whose rows the statement also changes (`ALTER TABLE ... EXCHANGE PARTITION p
    /// WITH TABLE other`).
    Exchanged,
}

/// A name in a statement and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedObject {
    /// The object (unqualified table names resolved with the current schema).
    pub object: DdlTarget,
    /// Why it is there.
    pub role: NameRole,
    /// Where it is written in the statement's `sql` (empty where an implied name goes, as after
    /// `ALTER DATABASE` without a name).
    pub span: Option<Range<usize>>,
}

/// One statement of a DDL about one object.
#[derive(Clone, Debug)]
pub struct PlannedStatement {
    /// Its kind, target and SQL (dm-core's vocabulary).
    pub statement: DdlStatement,
    /// Every name it uses, the target first.
    pub names: Vec<NamedObject>,
    /// sqlparser's AST of exactly this statement, when sqlparser reads it.
    pub parsed: Option<Statement>,
    /// Whether running it shows in the definitions (`SHOW CREATE`) of the objects it changes,
    /// or running it again leaves the same tables: false for `EXCHANGE PARTITION`, which swaps
    /// rows and leaves both definitions as they were.
    pub checkable: bool,
}

impl PlannedStatement {
    /// The objects whose downstream definition this statement changes (the target, and the new
    /// name of a rename).
    pub fn changed_objects(&self) -> impl Iterator<Item = &DdlTarget> {
        self.names
            .iter()
            .filter(|name| name.role != NameRole::Source)
            .map(|name| &name.object)
    }

    /// The statement with every name it names replaced by `route`'s answer, fully qualified
    /// (so that it runs whatever database is selected), and whether `route` renamed any.
    pub fn qualified_sql<Error>(
        &self,
        route: &mut dyn FnMut(&DdlTarget) -> Result<DdlTarget, Error>,
    ) -> Result<(String, bool), Error> {
        let mut replacements = Vec::new();
        let mut renamed = false;
        for name in &self.names {
            let routed = route(&name.object)?;
            renamed |= routed != name.object;
            if let Some(span) = &name.span {
                replacements.push((span.clone(), routed));
            }
        }
        replacements.sort_by_key(|(span, _)| span.start);
        let sql = &self.statement.sql;
        let mut out = String::with_capacity(sql.len() + 32);
        let mut copied = 0;
        for (span, routed) in replacements {
            out.push_str(&sql[copied..span.start]);
            if span.is_empty() {
                // An implied name goes right after the word before it.
                out.push(' ');
                out.push_str(&routed.to_string());
            } else {
                out.push_str(&routed.to_string());
            }
            copied = span.end;
        }
        out.push_str(&sql[copied..]);
        Ok((out, renamed))
    }
}

/// One DDL event, split per object.
#[derive(Clone, Debug)]
pub struct DdlPlan {
    /// The database selected in the upstream session (may be empty).
    pub current_schema: String,
    /// The text as the upstream logged it.
    pub original_sql: String,
    /// The statements, in execution order.
    pub statements: Vec<PlannedStatement>,
}

impl DdlPlan {
    /// dm-core's [`DdlEvent`] of this plan at `location`.
    pub fn event(&self, location: Location) -> DdlEvent {
        DdlEvent {
            original_sql: self.original_sql.clone(),
            current_schema: self.current_schema.clone(),
            statements: self
                .statements
                .iter()
                .map(|planned| planned.statement.clone())
                .collect(),
            location,
        }
    }
}

/// Reads one Query event: `current_schema` is the event's database, `sql` its text, `server`
/// the upstream that ran it (for its executable comments), `sql_mode` its session's (for quotes).
pub fn plan_query(
    current_schema: &str,
    sql: &str,
    server: ServerVersion,
    sql_mode: Option<u64>,
) -> QueryClass {
    let quoting = Quoting::of_sql_mode(sql_mode);
    plan_normalized(
        current_schema,
        sql,
        normalize(sql, server, quoting),
        quoting,
    )
}

fn plan_normalized(
    current_schema: &str,
    original: &str,
    normalized: String,
    quoting: Quoting,
) -> QueryClass {
    let tokens = tokens(&normalized, quoting);
    let mut reader = Reader {
        tokens: &tokens,
        at: 0,
        current_schema,
        checkable: true,
    };
    let Some(first) = reader.next() else {
        return QueryClass::Ignored;
    };
    let word = first.text.to_ascii_uppercase();
    let result = match word.as_str() {
        "XA" if reader.peek_is("START") || reader.peek_is("BEGIN") => return QueryClass::Xa,
        "BEGIN" | "COMMIT" | "ROLLBACK" | "XA" | "SAVEPOINT" | "RELEASE" => {
            return QueryClass::Control;
        }
        "START" if reader.peek_is("TRANSACTION") => return QueryClass::Control,
        // MariaDB's `SET STATEMENT var = value [, ...] FOR statement`: the statement.
        "SET" if reader.peek_is("STATEMENT") => {
            if !reader.seek("FOR") {
                return QueryClass::Ignored;
            }
            let rest = reader
                .peek()
                .map_or(normalized.len(), |token| token.span.end);
            let statement = normalized[rest..].trim().to_owned();
            return plan_normalized(current_schema, original, statement, quoting);
        }
        "INSERT" | "REPLACE" | "UPDATE" | "DELETE" | "LOAD" | "WITH" => {
            return QueryClass::Dml(reader.dml(&word));
        }
        // MySQL 8 logs a `CREATE TABLE ... SELECT` as `CREATE TABLE ... START TRANSACTION`
        // inside the rows' transaction: the option is for that server alone.
        "CREATE"
            if tokens.len() > 2
                && tokens[tokens.len() - 2].is("START")
                && tokens[tokens.len() - 1].is("TRANSACTION") =>
        {
            let end = tokens[tokens.len() - 2].span.start;
            let statement = normalized[..end].trim_end().to_owned();
            return plan_normalized(current_schema, original, statement, quoting);
        }
        "CREATE" => reader.create(),
        "ALTER" => reader.alter(),
        "DROP" => reader.drop(),
        "RENAME" => reader.rename(),
        "TRUNCATE" => reader.truncate(),
        _ => return QueryClass::Ignored,
    };
    let shapes = match result {
        Ok(Some(shapes)) => shapes,
        Ok(None) => return QueryClass::Ignored,
        Err(reason) => return QueryClass::Unreadable { reason },
    };
    // sqlparser reads MySQL's backtick names only: names in ANSI double quotes become backtick
    // names for it (the statement itself runs downstream under the upstream's sql_mode).
    let parse_text = if quoting.ansi_quotes {
        backtick_names(&normalized, &tokens)
    } else {
        normalized.clone()
    };
    let parsed = Parser::parse_sql(&MySqlDialect {}, &parse_text)
        .ok()
        .filter(|statements| statements.len() == 1)
        .and_then(|mut statements| statements.pop());
    let asts = split_ast(parsed, shapes.len());
    let statements = shapes
        .into_iter()
        .zip(asts)
        .map(|(shape, parsed)| shape.into_statement(&normalized, parsed))
        .collect();
    QueryClass::Ddl(DdlPlan {
        current_schema: current_schema.to_owned(),
        original_sql: original.to_owned(),
        statements,
    })
}

/// `text` with every double-quoted identifier token written in backticks.
fn backtick_names(text: &str, tokens: &[Token]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for token in tokens {
        if token.kind == TokenKind::Identifier && text[token.span.clone()].starts_with('"') {
            out.push_str(&text[copied..token.span.start]);
            out.push_str(&quote_identifier(&token.text));
            copied = token.span.end;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// sqlparser's statement split the way the grammar split the text (one name per DROP, one pair
/// per RENAME); `None`s when the two disagree.
fn split_ast(parsed: Option<Statement>, count: usize) -> Vec<Option<Statement>> {
    let split: Vec<Statement> = match parsed {
        None => Vec::new(),
        Some(Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            restrict,
            purge,
            temporary,
            table,
        }) if names.len() > 1 => names
            .into_iter()
            .map(|name| Statement::Drop {
                object_type,
                if_exists,
                names: vec![name],
                cascade,
                restrict,
                purge,
                temporary,
                table: table.clone(),
            })
            .collect(),
        Some(Statement::RenameTable(renames)) => renames
            .into_iter()
            .map(|rename| Statement::RenameTable(vec![rename]))
            .collect(),
        Some(other) => vec![other],
    };
    if split.len() == count {
        split.into_iter().map(Some).collect()
    } else {
        vec![None; count]
    }
}

/// A statement as the grammar read it: its kind, the text before, between and after its names.
struct Shape {
    kind: DdlKind,
    /// The statement's text: a range of the normalized text, or (split statements) pieces.
    text: ShapeText,
    /// Names with their spans in the normalized text.
    names: Vec<(DdlTarget, NameRole, Option<Range<usize>>)>,
    /// See [`PlannedStatement::checkable`].
    checkable: bool,
}

enum ShapeText {
    /// The whole normalized statement.
    Whole,
    /// `prefix` (a range) followed by the names, joined by `separator`s (a split DROP or RENAME).
    Pieces {
        prefix: Range<usize>,
        separator: &'static str,
    },
}

impl Shape {
    fn into_statement(self, normalized: &str, parsed: Option<Statement>) -> PlannedStatement {
        let (sql, names) = match self.text {
            ShapeText::Whole => (
                normalized.to_owned(),
                self.names
                    .into_iter()
                    .map(|(object, role, span)| NamedObject { object, role, span })
                    .collect::<Vec<_>>(),
            ),
            ShapeText::Pieces { prefix, separator } => {
                let mut sql = normalized[prefix].trim_end().to_owned();
                sql.push(' ');
                let mut names = Vec::new();
                for (index, (object, role, span)) in self.names.into_iter().enumerate() {
                    if index > 0 {
                        sql.push_str(separator);
                    }
                    let start = sql.len();
                    match &span {
                        Some(span) => sql.push_str(&normalized[span.clone()]),
                        None => sql.push_str(&object.to_string()),
                    }
                    let end = sql.len();
                    names.push(NamedObject {
                        object,
                        role,
                        span: Some(start..end),
                    });
                }
                (sql, names)
            }
        };
        let target = names.first().map_or_else(
            || DdlTarget::Schema(String::new()),
            |name| name.object.clone(),
        );
        PlannedStatement {
            statement: DdlStatement {
                kind: self.kind,
                target,
                sql,
            },
            names,
            parsed,
            checkable: self.checkable,
        }
    }
}

/// A cursor over the tokens of one statement.
struct Reader<'a> {
    tokens: &'a [Token],
    at: usize,
    current_schema: &'a str,
    /// Cleared when the statement's effect does not show in its objects' definitions.
    checkable: bool,
}

type Shapes = Result<Option<Vec<Shape>>, String>;

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.at)?;
        self.at += 1;
        Some(token)
    }

    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.at)
    }

    fn peek_is(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|token| token.is(keyword))
    }

    fn eat(&mut self, keyword: &str) -> bool {
        if self.peek_is(keyword) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_all(&mut self, keywords: &[&str]) -> bool {
        let start = self.at;
        for keyword in keywords {
            if !self.eat(keyword) {
                self.at = start;
                return false;
            }
        }
        true
    }

    fn eat_punctuation(&mut self, character: char) -> bool {
        if self
            .peek()
            .is_some_and(|token| token.kind == TokenKind::Punctuation(character))
        {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Skips a view's options (`ALGORITHM = MERGE`, `DEFINER = user@host`, `SQL SECURITY
    /// DEFINER`); true when `VIEW` follows them. A trigger, routine or event with a definer is
    /// not a view.
    fn skip_to_view(&mut self) -> bool {
        let start = self.at;
        loop {
            if self.eat("VIEW") {
                return true;
            }
            if self.eat("ALGORITHM") {
                let _ = self.eat_punctuation('=');
                self.at += 1;
            } else if self.eat("DEFINER") {
                let _ = self.eat_punctuation('=');
                // user, user@host, CURRENT_USER, CURRENT_USER()
                self.at += 1;
                if self.eat_punctuation('@') {
                    self.at += 1;
                }
                if self.eat_punctuation('(') {
                    let _ = self.eat_punctuation(')');
                }
            } else if self.eat_all(&["SQL", "SECURITY"]) {
                self.at += 1;
            } else {
                self.at = start;
                return false;
            }
        }
    }

    /// `[IF EXISTS]` / `[IF NOT EXISTS]`.
    fn if_exists(&mut self) {
        let _ = self.eat_all(&["IF", "NOT", "EXISTS"]) || self.eat_all(&["IF", "EXISTS"]);
    }

    /// One identifier: a quoted name or a bare word.
    fn identifier(&mut self) -> Option<&'a Token> {
        let token = self.peek()?;
        if token.is_name() {
            self.at += 1;
            Some(token)
        } else {
            None
        }
    }

    /// `name` or `schema.name`: the parts and the span.
    fn qualified(&mut self) -> Option<(Option<String>, String, Range<usize>)> {
        let first = self.identifier()?;
        let start = self.at;
        if self.eat_punctuation('.') {
            if let Some(second) = self.identifier() {
                return Some((
                    Some(first.text.clone()),
                    second.text.clone(),
                    first.span.start..second.span.end,
                ));
            }
            self.at = start;
        }
        Some((None, first.text.clone(), first.span.clone()))
    }

    fn table(&mut self, what: &str) -> Result<(TableRef, Range<usize>), String> {
        let (schema, table, span) = self
            .qualified()
            .ok_or_else(|| format!("a table name after {what}"))?;
        let schema = match schema {
            Some(schema) => schema,
            None if self.current_schema.is_empty() => {
                return Err(format!(
                    "table `{table}` has no database and none is selected"
                ));
            }
            None => self.current_schema.to_owned(),
        };
        Ok((TableRef::new(schema, table), span))
    }

    fn schema(&mut self, what: &str) -> Result<(String, Range<usize>), String> {
        let token = self
            .identifier()
            .ok_or_else(|| format!("a database name after {what}"))?;
        Ok((token.text.clone(), token.span.clone()))
    }

    /// Moves to the first `keyword` at parenthesis depth 0; true when found.
    fn seek(&mut self, keyword: &str) -> bool {
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match token.kind {
                TokenKind::Punctuation('(') => depth += 1,
                TokenKind::Punctuation(')') => depth = depth.saturating_sub(1),
                _ if depth == 0 && token.is(keyword) => return true,
                _ => {}
            }
            self.at += 1;
        }
        false
    }

    fn whole(kind: DdlKind, names: Vec<(DdlTarget, NameRole, Option<Range<usize>>)>) -> Shape {
        Shape {
            kind,
            text: ShapeText::Whole,
            names,
            checkable: true,
        }
    }

    fn create(&mut self) -> Shapes {
        let _ = self.eat_all(&["OR", "REPLACE"]);
        if self.eat("TEMPORARY") {
            return Ok(None);
        }
        if self.eat("DATABASE") || self.eat("SCHEMA") {
            self.if_exists();
            let (schema, span) = self.schema("CREATE DATABASE")?;
            return Ok(Some(vec![Self::whole(
                DdlKind::CreateSchema,
                vec![(DdlTarget::Schema(schema), NameRole::Target, Some(span))],
            )]));
        }
        if self.eat("TABLE") {
            self.if_exists();
            let (table, span) = self.table("CREATE TABLE")?;
            let mut names = vec![(DdlTarget::Table(table), NameRole::Target, Some(span))];
            // CREATE TABLE t LIKE s / CREATE TABLE t (LIKE s)
            let parenthesized = self.eat_punctuation('(');
            if self.eat("LIKE") {
                let (source, span) = self.table("LIKE")?;
                names.push((DdlTarget::Table(source), NameRole::Source, Some(span)));
            } else if parenthesized {
                self.at -= 1;
            }
            return Ok(Some(vec![Self::whole(DdlKind::CreateTable, names)]));
        }
        let start = self.at;
        // CREATE [ONLINE|OFFLINE] [UNIQUE|FULLTEXT|SPATIAL] INDEX ... ON table
        while self.eat("ONLINE")
            || self.eat("OFFLINE")
            || self.eat("UNIQUE")
            || self.eat("FULLTEXT")
            || self.eat("SPATIAL")
        {}
        if self.eat("INDEX") {
            if !self.seek("ON") {
                return Err("ON <table> in CREATE INDEX".into());
            }
            self.at += 1;
            let (table, span) = self.table("CREATE INDEX ... ON")?;
            return Ok(Some(vec![Self::whole(
                DdlKind::CreateIndex,
                vec![(DdlTarget::Table(table), NameRole::Target, Some(span))],
            )]));
        }
        self.at = start;
        if self.skip_to_view() {
            self.if_exists();
            let (view, span) = self.table("CREATE VIEW")?;
            return Ok(Some(vec![Self::whole(
                DdlKind::CreateView,
                vec![(DdlTarget::Table(view), NameRole::Target, Some(span))],
            )]));
        }
        // Procedures, functions, triggers, events, users, roles, sequences, servers, ...
        Ok(None)
    }

    fn alter(&mut self) -> Shapes {
        if self.eat("DATABASE") || self.eat("SCHEMA") {
            // ALTER DATABASE [name] options: without a name, the current database.
            let named = self.peek().filter(|token| {
                token.kind == TokenKind::Identifier
                    || (token.kind == TokenKind::Word
                        && ![
                            "CHARACTER",
                            "CHARSET",
                            "DEFAULT",
                            "COLLATE",
                            "COMMENT",
                            "READ",
                            "ENCRYPTION",
                            "UPGRADE",
                        ]
                        .iter()
                        .any(|option| token.is(option)))
            });
            let (schema, span) = match named {
                Some(token) => (token.text.clone(), Some(token.span.clone())),
                None if self.current_schema.is_empty() => {
                    return Err("a database name after ALTER DATABASE (none is selected)".into());
                }
                None => {
                    // The name is implied: an empty span where it would be written.
                    let at = self.tokens[self.at - 1].span.end;
                    (self.current_schema.to_owned(), Some(at..at))
                }
            };
            return Ok(Some(vec![Self::whole(
                DdlKind::AlterSchema,
                vec![(DdlTarget::Schema(schema), NameRole::Target, span)],
            )]));
        }
        let start = self.at;
        while self.eat("ONLINE") || self.eat("OFFLINE") || self.eat("IGNORE") {}
        if self.eat("TABLE") {
            self.if_exists();
            let (table, span) = self.table("ALTER TABLE")?;
            let mut names = vec![(DdlTarget::Table(table), NameRole::Target, Some(span))];
            let mut clauses = 0;
            let mut renamed = false;
            // Clauses are separated by commas at depth 0; a table rename is `RENAME [TO|AS]
            // name` (not RENAME COLUMN / INDEX / KEY).
            loop {
                clauses += 1;
                if self.eat("RENAME")
                    && !(self.peek_is("COLUMN") || self.peek_is("INDEX") || self.peek_is("KEY"))
                {
                    let _ = self.eat("TO") || self.eat("AS");
                    let (new, span) = self.table("RENAME TO")?;
                    names.push((DdlTarget::Table(new), NameRole::RenamedTo, Some(span)));
                    renamed = true;
                } else if self.eat_all(&["EXCHANGE", "PARTITION"]) {
                    // EXCHANGE PARTITION p WITH TABLE other: rows move, definitions stay.
                    self.checkable = false;
                    if self.seek("WITH") {
                        self.at += 1;
                        let _ = self.eat("TABLE");
                        let (other, span) = self.table("EXCHANGE PARTITION ... WITH TABLE")?;
                        names.push((DdlTarget::Table(other), NameRole::Exchanged, Some(span)));
                    }
                }
                if !self.seek_comma() {
                    break;
                }
            }
            let kind = match (renamed, clauses) {
                (true, 1) => match &names[1].0 {
                    DdlTarget::Table(to) => DdlKind::RenameTable { to: to.clone() },
                    DdlTarget::Schema(_) => DdlKind::AlterTable,
                },
                _ => DdlKind::AlterTable,
            };
            let mut shape = Self::whole(kind, names);
            shape.checkable = self.checkable;
            return Ok(Some(vec![shape]));
        }
        self.at = start;
        if self.skip_to_view() {
            let (view, span) = self.table("ALTER VIEW")?;
            return Ok(Some(vec![Self::whole(
                DdlKind::CreateView,
                vec![(DdlTarget::Table(view), NameRole::Target, Some(span))],
            )]));
        }
        Ok(None)
    }

    /// Moves past the next comma at depth 0; false at the end.
    fn seek_comma(&mut self) -> bool {
        let mut depth = 0usize;
        while let Some(token) = self.next() {
            match token.kind {
                TokenKind::Punctuation('(') => depth += 1,
                TokenKind::Punctuation(')') => depth = depth.saturating_sub(1),
                TokenKind::Punctuation(',') if depth == 0 => return true,
                _ => {}
            }
        }
        false
    }

    fn drop(&mut self) -> Shapes {
        if self.eat("TEMPORARY") {
            return Ok(None);
        }
        if self.eat("DATABASE") || self.eat("SCHEMA") {
            self.if_exists();
            let (schema, span) = self.schema("DROP DATABASE")?;
            return Ok(Some(vec![Self::whole(
                DdlKind::DropSchema,
                vec![(DdlTarget::Schema(schema), NameRole::Target, Some(span))],
            )]));
        }
        let (kind, what) = if self.eat("TABLE") || self.eat("TABLES") {
            (DdlKind::DropTable, "DROP TABLE")
        } else if self.eat("VIEW") {
            (DdlKind::DropView, "DROP VIEW")
        } else if self.eat("INDEX") {
            self.if_exists();
            if !self.seek("ON") {
                return Err("ON <table> in DROP INDEX".into());
            }
            self.at += 1;
            let (table, span) = self.table("DROP INDEX ... ON")?;
            return Ok(Some(vec![Self::whole(
                DdlKind::DropIndex,
                vec![(DdlTarget::Table(table), NameRole::Target, Some(span))],
            )]));
        } else {
            return Ok(None);
        };
        self.if_exists();
        let prefix_end = self.peek().map_or(0, |token| token.span.start);
        let mut tables = Vec::new();
        loop {
            tables.push(self.table(what)?);
            if !self.eat_punctuation(',') {
                break;
            }
        }
        Ok(Some(Self::split(kind, prefix_end, ", ", tables, |table| {
            vec![(DdlTarget::Table(table.0), NameRole::Target, Some(table.1))]
        })))
    }

    /// One shape per item when there are several (each `prefix` + its names), else the whole.
    fn split<Item>(
        kind: DdlKind,
        prefix_end: usize,
        separator: &'static str,
        items: Vec<Item>,
        names: impl Fn(Item) -> Vec<(DdlTarget, NameRole, Option<Range<usize>>)>,
    ) -> Vec<Shape> {
        let several = items.len() > 1;
        items
            .into_iter()
            .map(|item| {
                let names = names(item);
                let kind = match (&kind, names.get(1)) {
                    (DdlKind::RenameTable { .. }, Some((DdlTarget::Table(to), _, _))) => {
                        DdlKind::RenameTable { to: to.clone() }
                    }
                    _ => kind.clone(),
                };
                Shape {
                    kind,
                    text: if several {
                        ShapeText::Pieces {
                            prefix: 0..prefix_end,
                            separator,
                        }
                    } else {
                        ShapeText::Whole
                    },
                    names,
                    checkable: true,
                }
            })
            .collect()
    }

    fn rename(&mut self) -> Shapes {
        if !(self.eat("TABLE") || self.eat("TABLES")) {
            // RENAME USER
            return Ok(None);
        }
        // MariaDB: RENAME TABLE [IF EXISTS] a TO b, ...
        self.if_exists();
        let prefix_end = self.peek().map_or(0, |token| token.span.start);
        let mut pairs = Vec::new();
        loop {
            let old = self.table("RENAME TABLE")?;
            if !self.eat("TO") {
                return Err("TO in RENAME TABLE".into());
            }
            let new = self.table("RENAME TABLE ... TO")?;
            pairs.push((old, new));
            if !self.eat_punctuation(',') {
                break;
            }
        }
        let placeholder = DdlKind::RenameTable {
            to: TableRef::new("", ""),
        };
        Ok(Some(Self::split(
            placeholder,
            prefix_end,
            " TO ",
            pairs,
            |(old, new)| {
                vec![
                    (DdlTarget::Table(old.0), NameRole::Target, Some(old.1)),
                    (DdlTarget::Table(new.0), NameRole::RenamedTo, Some(new.1)),
                ]
            },
        )))
    }

    fn truncate(&mut self) -> Shapes {
        let _ = self.eat("TABLE");
        let (table, span) = self.table("TRUNCATE")?;
        Ok(Some(vec![Self::whole(
            DdlKind::TruncateTable,
            vec![(DdlTarget::Table(table), NameRole::Target, Some(span))],
        )]))
    }

    fn dml(&mut self, word: &str) -> DmlStatement {
        let mut tables = Vec::new();
        let mut complete = false;
        let modifiers = [
            "LOW_PRIORITY",
            "DELAYED",
            "HIGH_PRIORITY",
            "QUICK",
            "IGNORE",
            "CONCURRENT",
            "LOCAL",
        ];
        let skip_modifiers = |reader: &mut Reader<'_>| {
            while modifiers.iter().any(|modifier| reader.eat(modifier)) {}
        };
        let target = match word {
            "INSERT" | "REPLACE" => {
                skip_modifiers(self);
                let _ = self.eat("INTO");
                self.table("INSERT INTO").ok()
            }
            "UPDATE" => {
                skip_modifiers(self);
                let found = self.table("UPDATE").ok();
                // UPDATE a, b ... / UPDATE a JOIN b ...: more tables than the first.
                complete = !(self.eat_punctuation(',') || self.seek_join_before("SET"));
                found
            }
            "DELETE" => {
                skip_modifiers(self);
                if self.eat("FROM") {
                    let found = self.table("DELETE FROM").ok();
                    complete = !(self.eat_punctuation(',') || self.peek_is("USING"));
                    found
                } else {
                    None
                }
            }
            "LOAD" => {
                if self.seek("INTO") {
                    self.at += 1;
                    let _ = self.eat("TABLE");
                    self.table("LOAD DATA ... INTO TABLE").ok()
                } else {
                    None
                }
            }
            _ => None,
        };
        if matches!(word, "INSERT" | "REPLACE" | "LOAD") {
            complete = target.is_some();
        }
        if let Some((table, _)) = target {
            tables.push(table);
        } else {
            complete = false;
        }
        DmlStatement { tables, complete }
    }

    /// Whether a `JOIN` comes before `stop` at depth 0 (the position is kept).
    fn seek_join_before(&mut self, stop: &str) -> bool {
        let start = self.at;
        let mut depth = 0usize;
        let mut found = false;
        while let Some(token) = self.next() {
            match token.kind {
                TokenKind::Punctuation('(') => depth += 1,
                TokenKind::Punctuation(')') => depth = depth.saturating_sub(1),
                _ if depth == 0 && token.is(stop) => break,
                _ if depth == 0 && token.is("JOIN") => {
                    found = true;
                    break;
                }
                _ => {}
            }
        }
        self.at = start;
        found
    }
}

/// `schema.table` or `schema` quoted, for messages.
pub fn quoted_target(target: &DdlTarget) -> String {
    match target {
        DdlTarget::Schema(schema) => quote_identifier(schema),
        DdlTarget::Table(table) => table.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use dm_core::Flavor;

    use super::*;

    fn plan(schema: &str, sql: &str) -> DdlPlan {
        match plan_query(
            schema,
            sql,
            ServerVersion::parse(Flavor::MySql, "8.0.36"),
            None,
        ) {
            QueryClass::Ddl(plan) => plan,
            other => panic!("`{sql}` is not a DDL: {other:?}"),
        }
    }

    fn summary(plan: &DdlPlan) -> Vec<(DdlKind, String, String)> {
        plan.statements
            .iter()
            .map(|planned| {
                (
                    planned.statement.kind.clone(),
                    quoted_target(&planned.statement.target),
                    planned.statement.sql.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn schema_statements_name_their_database_whatever_the_form() {
        for (sql, kind, name) in [
            (
                "CREATE DATABASE IF NOT EXISTS app",
                DdlKind::CreateSchema,
                "`app`",
            ),
            ("create schema `my.db`", DdlKind::CreateSchema, "`my.db`"),
            (
                "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `app` /*!40100 DEFAULT CHARACTER SET latin1 */",
                DdlKind::CreateSchema,
                "`app`",
            ),
            ("DROP DATABASE IF EXISTS app", DdlKind::DropSchema, "`app`"),
            ("DROP SCHEMA `a``b`", DdlKind::DropSchema, "`a``b`"),
            (
                "ALTER DATABASE app CHARACTER SET utf8mb4",
                DdlKind::AlterSchema,
                "`app`",
            ),
            (
                "ALTER SCHEMA DEFAULT COLLATE utf8mb4_bin",
                DdlKind::AlterSchema,
                "`current`",
            ),
        ] {
            let found = plan("current", sql);
            assert_eq!(found.statements.len(), 1, "{sql}");
            assert_eq!(found.statements[0].statement.kind, kind, "{sql}");
            assert_eq!(
                quoted_target(&found.statements[0].statement.target),
                name,
                "{sql}"
            );
        }
    }

    #[test]
    fn table_statements_split_per_table_and_keep_their_spans() {
        let found = plan(
            "shop",
            "DROP TABLE IF EXISTS `a`, other.b /* generated by server */",
        );
        assert_eq!(
            summary(&found),
            vec![
                (
                    DdlKind::DropTable,
                    "`shop`.`a`".into(),
                    "DROP TABLE IF EXISTS `a`".into()
                ),
                (
                    DdlKind::DropTable,
                    "`other`.`b`".into(),
                    "DROP TABLE IF EXISTS other.b".into()
                ),
            ]
        );
        assert!(
            found
                .statements
                .iter()
                .all(|planned| planned.parsed.is_some())
        );
        let found = plan("shop", "RENAME TABLE a TO a_old, `n.e.w` TO a");
        assert_eq!(found.statements.len(), 2);
        assert_eq!(
            found.statements[1].statement.sql,
            "RENAME TABLE `n.e.w` TO a"
        );
        assert_eq!(
            found.statements[1].statement.kind,
            DdlKind::RenameTable {
                to: TableRef::new("shop", "a")
            }
        );
        let found = plan("shop", "ALTER TABLE t RENAME TO u");
        assert_eq!(
            found.statements[0].statement.kind,
            DdlKind::RenameTable {
                to: TableRef::new("shop", "u")
            }
        );
        let found = plan("shop", "ALTER TABLE t ADD COLUMN x INT, RENAME TO u");
        assert_eq!(found.statements[0].statement.kind, DdlKind::AlterTable);
        assert_eq!(found.statements[0].names.len(), 2);
        let found = plan("shop", "ALTER TABLE t RENAME COLUMN a TO b");
        assert_eq!(found.statements[0].names.len(), 1);
        // sqlparser cannot read these; the grammar still names their table.
        for sql in [
            "ALTER TABLE t ADD PARTITION (PARTITION p3 VALUES LESS THAN (40))",
            "ALTER TABLE t ENGINE=InnoDB",
            "CREATE TABLE t (a INT) PARTITION BY RANGE (a) (PARTITION p0 VALUES LESS THAN (10))",
        ] {
            let found = plan("shop", sql);
            assert!(found.statements[0].parsed.is_none(), "{sql}");
            assert_eq!(
                found.statements[0].statement.target,
                DdlTarget::Table(TableRef::new("shop", "t")),
                "{sql}"
            );
        }
        let found = plan("shop", "CREATE TABLE IF NOT EXISTS t2 (LIKE `x`.t1)");
        assert_eq!(found.statements[0].names[1].role, NameRole::Source);
        let found = plan("shop", "CREATE UNIQUE INDEX i USING BTREE ON t (a(10))");
        assert_eq!(found.statements[0].statement.kind, DdlKind::CreateIndex);
        let found = plan("shop", "DROP INDEX IF EXISTS i ON other.t");
        assert_eq!(
            found.statements[0].statement.target,
            DdlTarget::Table(TableRef::new("other", "t"))
        );
        let found = plan(
            "shop",
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS SELECT 1",
        );
        assert_eq!(found.statements[0].statement.kind, DdlKind::CreateView);
        assert_eq!(
            plan("shop", "TRUNCATE t").statements[0].statement.kind,
            DdlKind::TruncateTable
        );
    }

    #[test]
    fn routing_replaces_names_in_place_and_qualifies_them() {
        let to_shop = |target: &DdlTarget| {
            Ok::<_, ()>(match target {
                DdlTarget::Table(table) => {
                    DdlTarget::Table(TableRef::new("shop", table.table.clone()))
                }
                DdlTarget::Schema(_) => DdlTarget::Schema("shop".into()),
            })
        };
        let found = plan("shop_01", "ALTER TABLE orders ADD PARTITION PARTITIONS 2");
        let (sql, renamed) = found.statements[0]
            .qualified_sql(&mut |target: &DdlTarget| to_shop(target))
            .expect("routes");
        assert!(renamed);
        assert_eq!(
            sql,
            "ALTER TABLE `shop`.`orders` ADD PARTITION PARTITIONS 2"
        );
        let (sql, renamed) = found.statements[0]
            .qualified_sql(&mut |target: &DdlTarget| Ok::<_, ()>(target.clone()))
            .expect("routes");
        assert!(!renamed);
        assert_eq!(
            sql,
            "ALTER TABLE `shop_01`.`orders` ADD PARTITION PARTITIONS 2"
        );
        // An implied database name is written where it goes.
        let found = plan("shop_01", "ALTER DATABASE CHARACTER SET utf8mb4");
        let (sql, _) = found.statements[0]
            .qualified_sql(&mut |target: &DdlTarget| to_shop(target))
            .expect("routes");
        assert_eq!(sql, "ALTER DATABASE `shop` CHARACTER SET utf8mb4");
        // The table a partition is exchanged with is named, routed, and the statement marked
        // as one whose effect the definitions do not show.
        let found = plan(
            "shop_01",
            "ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE x",
        );
        assert!(!found.statements[0].checkable);
        assert_eq!(found.statements[0].names[1].role, NameRole::Exchanged);
        let (sql, _) = found.statements[0]
            .qualified_sql(&mut |target: &DdlTarget| to_shop(target))
            .expect("routes");
        assert_eq!(
            sql,
            "ALTER TABLE `shop`.`p` EXCHANGE PARTITION p0 WITH TABLE `shop`.`x`"
        );
        assert!(plan("d", "ALTER TABLE t ADD c INT").statements[0].checkable);
    }

    #[test]
    fn forms_upstreams_log_are_read_as_their_statement() {
        let mariadb = ServerVersion::parse(Flavor::MariaDb, "10.11.6-MariaDB-log");
        // MariaDB's SET STATEMENT ... FOR: the statement after FOR.
        let QueryClass::Ddl(found) = plan_query(
            "pe",
            "SET STATEMENT max_statement_time=600, lock_wait_timeout='FOR' FOR ALTER TABLE t MODIFY b VARCHAR(20)",
            mariadb,
            None,
        ) else {
            panic!("SET STATEMENT ... FOR ALTER is a DDL");
        };
        assert_eq!(
            found.statements[0].statement.sql,
            "ALTER TABLE t MODIFY b VARCHAR(20)"
        );
        assert!(found.statements[0].parsed.is_some());
        assert!(matches!(
            plan_query(
                "pe",
                "SET STATEMENT sql_mode='' FOR INSERT INTO t VALUES (1)",
                mariadb,
                None
            ),
            QueryClass::Dml(_)
        ));
        assert!(matches!(
            plan_query("pe", "SET @a = 1", mariadb, None),
            QueryClass::Ignored
        ));
        // MySQL 8's CREATE TABLE ... SELECT, logged inside the rows' transaction.
        let found = plan(
            "d",
            "CREATE TABLE `t2` (`a` int DEFAULT NULL) START TRANSACTION",
        );
        assert_eq!(
            found.statements[0].statement.sql,
            "CREATE TABLE `t2` (`a` int DEFAULT NULL)"
        );
        // MariaDB's RENAME TABLE IF EXISTS.
        let found = plan("d", "RENAME TABLE IF EXISTS c TO c3");
        assert_eq!(
            found.statements[0].statement.kind,
            DdlKind::RenameTable {
                to: TableRef::new("d", "c3")
            }
        );
        // ANSI_QUOTES: double quotes name things.
        let QueryClass::Ddl(found) = plan_query(
            "d",
            "CREATE TABLE \"t1\" (\"id\" INT PRIMARY KEY)",
            mariadb,
            Some(1 << 2),
        ) else {
            panic!("a DDL under ANSI_QUOTES");
        };
        assert_eq!(
            found.statements[0].statement.target,
            DdlTarget::Table(TableRef::new("d", "t1"))
        );
        assert!(
            found.statements[0].parsed.is_some(),
            "sqlparser reads it with backticks"
        );
        // A trigger whose body names a `view` column is not a view.
        assert!(matches!(
            plan_query(
                "d",
                "CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.view = 1",
                mariadb,
                None
            ),
            QueryClass::Ignored
        ));
        // XA START: a transaction whose outcome comes later.
        assert!(matches!(
            plan_query("d", "XA START 'x1'", mariadb, None),
            QueryClass::Xa
        ));
    }

    #[test]
    fn other_statements_are_told_apart() {
        let version = ServerVersion::unknown(Flavor::MariaDb);
        for sql in [
            "BEGIN",
            "COMMIT",
            "XA END 'x'",
            "XA COMMIT 'x'",
            "START TRANSACTION",
            "ROLLBACK TO s",
        ] {
            assert!(
                matches!(plan_query("", sql, version, None), QueryClass::Control),
                "{sql}"
            );
        }
        for sql in [
            "CREATE TEMPORARY TABLE t (a INT)",
            "DROP TEMPORARY TABLE IF EXISTS t",
            "GRANT ALL ON *.* TO x",
            "CREATE PROCEDURE p() BEGIN SELECT 1; END",
            "CREATE DEFINER=`root`@`%` TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @a = 1",
            "FLUSH PRIVILEGES",
            "ANALYZE TABLE t",
            "RENAME USER a TO b",
            "-- only a comment",
        ] {
            assert!(
                matches!(plan_query("d", sql, version, None), QueryClass::Ignored),
                "{sql}"
            );
        }
        let QueryClass::Dml(dml) =
            plan_query("d", "insert ignore into `t` values (1)", version, None)
        else {
            panic!("dml");
        };
        assert_eq!(dml.tables, vec![TableRef::new("d", "t")]);
        assert!(dml.complete);
        let QueryClass::Dml(dml) = plan_query(
            "d",
            "UPDATE a JOIN b ON a.id = b.id SET a.x = 1",
            version,
            None,
        ) else {
            panic!("dml");
        };
        assert!(!dml.complete);
        let QueryClass::Dml(dml) = plan_query("d", "DELETE FROM x.t WHERE a = 1", version, None)
        else {
            panic!("dml");
        };
        assert_eq!(dml.tables, vec![TableRef::new("x", "t")]);
        assert!(matches!(
            plan_query("", "CREATE TABLE t (a INT)", version, None),
            QueryClass::Unreadable { .. }
        ));
        assert!(matches!(
            plan_query("d", "ALTER TABLE", version, None),
            QueryClass::Unreadable { .. }
        ));
    }
}
