//! The schema tracker: every upstream table's structure at the current binlog position, kept up
//! to date by replaying each DDL, so that row images decode with the right columns, signedness
//! and charsets.
//!
//! ```text
//! seed (downstream, or the snapshots stored with the checkpoint) --> SchemaTracker { table -> TableSchema }
//! PlannedStatement (crate::ddl) --its sqlparser AST--> apply: CREATE / ALTER / DROP / RENAME / INDEX
//!                   --no AST (PARTITION, ADD COLUMN (a, b), ...)--> by kind: Reload(tables): read
//!                     the table again from the downstream once the DDL ran there unchanged
//! unsaved_tables --> snapshots stored with the global checkpoint (restore at restart)
//! ```
//!
//! Invariants: a DDL either updates the tracked tables exactly as the server does, or says which
//! tables must be reloaded ([`TrackOutcome::Reload`]); it never leaves a table silently wrong.
//! Table names are case-sensitive as on Linux servers unless the task says otherwise; column and
//! index names are case-insensitive, as in MySQL.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dm_core::{
    ColumnDefinition, ColumnType, DdlKind, DdlTarget, Flavor, KeyColumn, KeyDefinition, KeyKind,
    TableRef, TableSchema,
};
use regex::Regex;
use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, CreateTableLikeKind, Expr, FunctionArg,
    FunctionArgExpr, FunctionArguments, IndexColumn, MySQLColumnPosition, ObjectName,
    ObjectNamePart, ObjectType, RenameTableNameKind, Statement, TableConstraint, Value,
};

use crate::ddl::{NameRole, PlannedStatement, QueryClass, ServerVersion, plan_query};

/// A DDL the tracker cannot follow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema tracker: {reason} (statement: {statement})")]
pub struct TrackerError {
    /// The statement, shortened.
    pub statement: String,
    /// What is wrong.
    pub reason: String,
}

/// What a DDL did to the tracked tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackOutcome {
    /// These tables changed (created, altered, renamed to, dropped).
    Changed(Vec<TableRef>),
    /// The statement could not be interpreted: read these tables again from the downstream
    /// after the statement ran there.
    Reload(Vec<TableRef>),
    /// No table structure changed (TRUNCATE, CREATE DATABASE, a view, a procedure...).
    Unchanged,
}

/// Key columns by name, with their prefix lengths.
type KeyParts = Vec<(String, Option<u32>)>;

/// A table being edited: keys hold column names so columns can move and be renamed.
#[derive(Debug, Clone)]
struct Editable {
    table: TableRef,
    columns: Vec<ColumnDefinition>,
    keys: Vec<(String, KeyKind, KeyParts)>,
}

impl Editable {
    fn from_schema(schema: &TableSchema) -> Self {
        Editable {
            table: schema.table().clone(),
            columns: schema.columns().to_vec(),
            keys: schema
                .keys()
                .iter()
                .map(|key| {
                    (
                        key.name.clone(),
                        key.kind,
                        key.columns
                            .iter()
                            .map(|part| {
                                (
                                    schema.columns()[part.column].name.clone(),
                                    part.prefix_length,
                                )
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|column| column.name.eq_ignore_ascii_case(name))
    }

    fn build(self) -> Result<TableSchema, String> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for (name, kind, parts) in &self.keys {
            let mut columns = Vec::with_capacity(parts.len());
            for (column, prefix_length) in parts {
                let index = self
                    .position(column)
                    .ok_or_else(|| format!("key `{name}` names a missing column `{column}`"))?;
                columns.push(KeyColumn {
                    column: index,
                    prefix_length: *prefix_length,
                });
            }
            keys.push(KeyDefinition {
                name: name.clone(),
                kind: *kind,
                columns,
            });
        }
        keys.sort_by_key(|key| key.kind != KeyKind::Primary);
        TableSchema::new(self.table, self.columns, keys).map_err(|error| error.to_string())
    }

    fn add_key(&mut self, name: Option<String>, kind: KeyKind, parts: KeyParts) {
        if parts.is_empty() {
            return;
        }
        if kind == KeyKind::Primary {
            self.keys
                .retain(|(_, existing, _)| *existing != KeyKind::Primary);
            // Primary key columns are NOT NULL.
            for (column, _) in &parts {
                if let Some(index) = self.position(column) {
                    self.columns[index].nullable = false;
                }
            }
        }
        let name = match kind {
            KeyKind::Primary => "PRIMARY".to_owned(),
            KeyKind::Unique => name.unwrap_or_else(|| {
                // MySQL names an unnamed index after its first column, then _2, _3...
                let base = parts[0].0.clone();
                let mut candidate = base.clone();
                let mut suffix = 2;
                while self
                    .keys
                    .iter()
                    .any(|(existing, _, _)| existing.eq_ignore_ascii_case(&candidate))
                {
                    candidate = format!("{base}_{suffix}");
                    suffix += 1;
                }
                candidate
            }),
        };
        self.keys.push((name, kind, parts));
    }

    fn drop_column(&mut self, name: &str) -> Result<(), String> {
        let index = self
            .position(name)
            .ok_or_else(|| format!("column `{name}` does not exist"))?;
        self.columns.remove(index);
        for (_, _, parts) in &mut self.keys {
            parts.retain(|(column, _)| !column.eq_ignore_ascii_case(name));
        }
        self.keys.retain(|(_, _, parts)| !parts.is_empty());
        Ok(())
    }

    fn rename_column(&mut self, old: &str, new: &str) {
        for (_, _, parts) in &mut self.keys {
            for (column, _) in parts.iter_mut() {
                if column.eq_ignore_ascii_case(old) {
                    *column = new.to_owned();
                }
            }
        }
    }

    /// Replaces the column at `index` (MODIFY / CHANGE), moving it when a position is given.
    fn redefine(
        &mut self,
        index: usize,
        column: ColumnDefinition,
        position: Option<&MySQLColumnPosition>,
        keys: Vec<KeySpec>,
    ) {
        self.columns.remove(index);
        if position.is_some() {
            self.place(column, position);
        } else {
            self.columns.insert(index, column);
        }
        for (name, kind, parts) in keys {
            self.add_key(name, kind, parts);
        }
    }

    fn place(&mut self, column: ColumnDefinition, position: Option<&MySQLColumnPosition>) {
        let index = match position {
            Some(MySQLColumnPosition::First) => 0,
            Some(MySQLColumnPosition::After(after)) => self
                .position(&after.value)
                .map_or(self.columns.len(), |index| index + 1),
            None => self.columns.len(),
        };
        self.columns.insert(index.min(self.columns.len()), column);
    }
}

/// The tracked tables.
#[derive(Debug, Clone, Default)]
pub struct SchemaTracker {
    case_sensitive: bool,
    tables: HashMap<TableRef, Arc<TableSchema>>,
    /// Default character sets of tables created by a tracked DDL (what a text column added or
    /// redefined without its own charset gets).
    default_charsets: HashMap<TableRef, String>,
    /// Default character sets of schemas (what a table created without one gets).
    schema_charsets: HashMap<String, String>,
    /// Tables (by key) set or removed since the last [`SchemaTracker::mark_saved`].
    unsaved: BTreeSet<TableRef>,
    /// Whether a schema's default character set changed since the last save.
    schema_charsets_unsaved: bool,
}

/// One tracked table as stored with a checkpoint (a `dm_core` checkpoint value, so that every
/// sink can store it).
pub use dm_core::TableSnapshot;

fn shorten(sql: &str) -> String {
    let mut end = sql.len().min(300);
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    sql[..end].to_owned()
}

fn name_part(part: &ObjectNamePart) -> String {
    match part {
        ObjectNamePart::Identifier(ident) => ident.value.clone(),
        ObjectNamePart::Function(function) => function.name.value.clone(),
    }
}

impl SchemaTracker {
    /// An empty tracker. `case_sensitive` false folds table names to lower case.
    pub fn new(case_sensitive: bool) -> Self {
        SchemaTracker {
            case_sensitive,
            tables: HashMap::new(),
            default_charsets: HashMap::new(),
            schema_charsets: HashMap::new(),
            unsaved: BTreeSet::new(),
            schema_charsets_unsaved: false,
        }
    }

    /// How this tracker names `table`: folded to lower case unless case-sensitive (shard DDL
    /// holds name tables the same way).
    pub fn key(&self, table: &TableRef) -> TableRef {
        if self.case_sensitive {
            table.clone()
        } else {
            TableRef::new(table.schema.to_lowercase(), table.table.to_lowercase())
        }
    }

    /// The structure of `table` at the current position.
    pub fn get(&self, table: &TableRef) -> Option<Arc<TableSchema>> {
        self.tables.get(&self.key(table)).cloned()
    }

    /// Sets a table's structure (seeding from a server, or after a reload).
    pub fn set(&mut self, schema: TableSchema) {
        let key = self.key(schema.table());
        self.unsaved.insert(key.clone());
        self.tables.insert(key, Arc::new(schema));
    }

    /// Forgets a table.
    pub fn remove(&mut self, table: &TableRef) {
        let key = self.key(table);
        self.tables.remove(&key);
        self.default_charsets.remove(&key);
        self.unsaved.insert(key);
    }

    /// The tables set or removed since the last save, by key: each with its snapshot, or
    /// `None` when it is no longer tracked.
    pub fn unsaved_tables(&self) -> Vec<(TableRef, Option<TableSnapshot>)> {
        self.unsaved
            .iter()
            .map(|key| {
                let snapshot = self.tables.get(key).map(|schema| TableSnapshot {
                    schema: (**schema).clone(),
                    default_charset: self.default_charsets.get(key).cloned(),
                });
                (key.clone(), snapshot)
            })
            .collect()
    }

    /// The schemas' default character sets.
    pub fn schema_charsets(&self) -> &HashMap<String, String> {
        &self.schema_charsets
    }

    /// The schemas' default character sets, when one changed since the last save.
    pub fn unsaved_schema_charsets(&self) -> Option<&HashMap<String, String>> {
        self.schema_charsets_unsaved
            .then_some(&self.schema_charsets)
    }

    /// Records that `tables` (keys, as [`SchemaTracker::unsaved_tables`] gave them) and, with
    /// `schema_charsets`, the schemas' character sets are stored.
    pub fn mark_saved(&mut self, tables: &[TableRef], schema_charsets: bool) {
        for table in tables {
            self.unsaved.remove(table);
        }
        if schema_charsets {
            self.schema_charsets_unsaved = false;
        }
    }

    /// Restores a table stored with a checkpoint (not marked unsaved: it is stored).
    pub fn restore(&mut self, snapshot: TableSnapshot) {
        let key = self.key(snapshot.schema.table());
        match snapshot.default_charset {
            Some(charset) => self.default_charsets.insert(key.clone(), charset),
            None => self.default_charsets.remove(&key),
        };
        self.tables.insert(key, Arc::new(snapshot.schema));
    }

    /// Restores the schemas' default character sets stored with a checkpoint.
    pub fn restore_schema_charsets(&mut self, charsets: HashMap<String, String>) {
        self.schema_charsets = charsets;
    }

    /// Records a schema's default character set (from `information_schema.SCHEMATA` when
    /// seeding; CREATE DATABASE statements record theirs).
    pub fn set_schema_charset(&mut self, schema: &str, charset: &str) {
        let schema = if self.case_sensitive {
            schema.to_owned()
        } else {
            schema.to_lowercase()
        };
        self.schema_charsets.insert(schema, charset.to_lowercase());
        self.schema_charsets_unsaved = true;
    }

    fn schema_charset(&self, schema: &str) -> Option<String> {
        let schema = if self.case_sensitive {
            schema.to_owned()
        } else {
            schema.to_lowercase()
        };
        self.schema_charsets.get(&schema).cloned()
    }

    fn default_charset(&self, table: &TableRef) -> Option<String> {
        self.default_charsets.get(&self.key(table)).cloned()
    }

    fn set_default_charset(&mut self, table: &TableRef, charset: Option<String>) {
        let key = self.key(table);
        self.unsaved.insert(key.clone());
        match charset {
            Some(charset) => {
                self.default_charsets.insert(key, charset);
            }
            None => {
                self.default_charsets.remove(&key);
            }
        }
    }

    /// The tracked tables.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableSchema>> {
        self.tables.values()
    }

    fn table_of(&self, name: &ObjectName, current_schema: &str) -> Result<TableRef, String> {
        match name.0.as_slice() {
            [table] => {
                if current_schema.is_empty() {
                    return Err(format!(
                        "table `{}` has no schema and no database is selected",
                        name_part(table)
                    ));
                }
                Ok(TableRef::new(current_schema, name_part(table)))
            }
            [schema, table] => Ok(TableRef::new(name_part(schema), name_part(table))),
            _ => Err(format!("`{name}` is not a table name")),
        }
    }

    /// Applies a DDL text executed with `current_schema` selected, statement by statement (a
    /// convenience over [`SchemaTracker::apply`]; the syncer plans each event once itself).
    pub fn apply_ddl(
        &mut self,
        current_schema: &str,
        sql: &str,
    ) -> Result<TrackOutcome, TrackerError> {
        let plan = match plan_query(
            current_schema,
            sql,
            ServerVersion::unknown(Flavor::MySql),
            None,
        ) {
            QueryClass::Ddl(plan) => plan,
            QueryClass::Unreadable { reason } => {
                return Err(TrackerError {
                    statement: shorten(sql),
                    reason: format!("the statement cannot be read: expected {reason}"),
                });
            }
            _ => return Ok(TrackOutcome::Unchanged),
        };
        let mut changed = Vec::new();
        let mut reload = Vec::new();
        for planned in &plan.statements {
            match self.apply(current_schema, planned)? {
                TrackOutcome::Changed(tables) => changed.extend(tables),
                TrackOutcome::Reload(tables) => reload.extend(tables),
                TrackOutcome::Unchanged => {}
            }
        }
        Ok(if !reload.is_empty() {
            reload.extend(changed);
            TrackOutcome::Reload(reload)
        } else if changed.is_empty() {
            TrackOutcome::Unchanged
        } else {
            TrackOutcome::Changed(changed)
        })
    }

    /// Applies one planned statement, executed with `current_schema` selected: through its AST
    /// when sqlparser read it, otherwise by its kind (a changed table is then reloaded from the
    /// downstream after the statement ran there).
    pub fn apply(
        &mut self,
        current_schema: &str,
        planned: &PlannedStatement,
    ) -> Result<TrackOutcome, TrackerError> {
        let error = |reason: String| TrackerError {
            statement: shorten(&planned.statement.sql),
            reason,
        };
        let mut changed = Vec::new();
        let mut reload = Vec::new();
        match &planned.parsed {
            Some(statement) => self
                .apply_statement(current_schema, statement.clone(), &mut changed, &mut reload)
                .map_err(error)?,
            None => self
                .apply_unparsed(planned, &mut changed, &mut reload)
                .map_err(error)?,
        }
        Ok(if !reload.is_empty() {
            reload.extend(changed);
            TrackOutcome::Reload(reload)
        } else if changed.is_empty() {
            TrackOutcome::Unchanged
        } else {
            TrackOutcome::Changed(changed)
        })
    }

    /// A statement sqlparser does not read, by its kind and names.
    fn apply_unparsed(
        &mut self,
        planned: &PlannedStatement,
        changed: &mut Vec<TableRef>,
        reload: &mut Vec<TableRef>,
    ) -> Result<(), String> {
        let table_named = |role: NameRole| {
            planned.names.iter().find_map(|name| match &name.object {
                DdlTarget::Table(table) if name.role == role => Some(table.clone()),
                _ => None,
            })
        };
        let target = table_named(NameRole::Target);
        let renamed_to = table_named(NameRole::RenamedTo);
        match (&planned.statement.kind, &planned.statement.target) {
            (DdlKind::CreateTable | DdlKind::CreateIndex | DdlKind::DropIndex, _) => {
                reload.extend(target);
            }
            (DdlKind::AlterTable, _) => match (target, renamed_to) {
                (Some(old), Some(new)) => {
                    // A rename among other clauses: the old name goes, the new one is read.
                    self.remove(&old);
                    changed.push(old);
                    reload.push(new);
                }
                (Some(table), None) => reload.push(table),
                (None, _) => {}
            },
            (DdlKind::DropTable, DdlTarget::Table(table)) => {
                self.remove(table);
                changed.push(table.clone());
            }
            (DdlKind::RenameTable { to }, DdlTarget::Table(old)) if self.get(old).is_none() => {
                // Not known here: the new name is read from the downstream.
                self.remove(to);
                reload.push(to.clone());
            }
            (DdlKind::RenameTable { to }, DdlTarget::Table(old)) => {
                let mut editable = self.edit(old)?;
                editable.table = to.clone();
                let schema = editable.build()?;
                let charset = self.default_charset(old);
                self.remove(old);
                self.set(schema);
                self.set_default_charset(to, charset);
                changed.push(old.clone());
                changed.push(to.clone());
            }
            (DdlKind::CreateSchema | DdlKind::AlterSchema, DdlTarget::Schema(schema)) => {
                if let Some(charset) = schema_charset_of(&planned.statement.sql) {
                    self.set_schema_charset(schema, &charset);
                }
            }
            (DdlKind::DropSchema, DdlTarget::Schema(schema)) => {
                changed.extend(self.drop_schema(schema));
            }
            // TRUNCATE, views: no table structure changes.
            _ => {}
        }
        Ok(())
    }

    /// Forgets every table of `schema`; returns them.
    fn drop_schema(&mut self, schema: &str) -> Vec<TableRef> {
        let fold = |text: &str| {
            if self.case_sensitive {
                text.to_owned()
            } else {
                text.to_lowercase()
            }
        };
        let dropped: Vec<TableRef> = self
            .tables
            .keys()
            .filter(|table| fold(&table.schema) == fold(schema))
            .cloned()
            .collect();
        for table in &dropped {
            self.remove(table);
        }
        dropped
    }

    fn edit(&self, table: &TableRef) -> Result<Editable, String> {
        self.get(table)
            .map(|schema| Editable::from_schema(&schema))
            .ok_or_else(|| format!("table {table} is not tracked"))
    }

    fn apply_statement(
        &mut self,
        current_schema: &str,
        statement: Statement,
        changed: &mut Vec<TableRef>,
        reload: &mut Vec<TableRef>,
    ) -> Result<(), String> {
        match statement {
            Statement::CreateTable(create) => {
                let table = self.table_of(&create.name, current_schema)?;
                if create.if_not_exists && self.get(&table).is_some() {
                    return Ok(());
                }
                if let Some(like) = &create.like {
                    let source = match like {
                        CreateTableLikeKind::Parenthesized(like)
                        | CreateTableLikeKind::Plain(like) => &like.name,
                    };
                    let source = self.table_of(source, current_schema)?;
                    let mut copy = self.edit(&source)?;
                    copy.table = table.clone();
                    let charset = self.default_charset(&source);
                    self.set(copy.build()?);
                    self.set_default_charset(&table, charset);
                    changed.push(table);
                    return Ok(());
                }
                if create.query.is_some() || create.columns.is_empty() {
                    // CREATE TABLE ... SELECT: the columns come from the query.
                    reload.push(table);
                    return Ok(());
                }
                let charset = table_charset(&create.to_string())
                    .or_else(|| self.schema_charset(&table.schema));
                let mut editable = Editable {
                    table: table.clone(),
                    columns: Vec::new(),
                    keys: Vec::new(),
                };
                for column in &create.columns {
                    let (definition, keys) = column_definition(column, charset.as_deref())?;
                    if definition.column_type.is_text() && definition.charset.is_none() {
                        // Neither the table nor its schema says which charset: ask the server.
                        reload.push(table);
                        return Ok(());
                    }
                    editable.columns.push(definition);
                    for (name, kind, parts) in keys {
                        editable.add_key(name, kind, parts);
                    }
                }
                for constraint in &create.constraints {
                    if let Some((name, kind, parts)) = constraint_key(constraint) {
                        editable.add_key(name, kind, parts);
                    }
                }
                self.set(editable.build()?);
                self.set_default_charset(&table, charset);
                changed.push(table);
            }
            Statement::AlterTable(alter) => {
                let mut table = self.table_of(&alter.name, current_schema)?;
                let mut editable = self.edit(&table)?;
                let original = table.clone();
                let default_charset = self.default_charset(&table);
                // A text column defined here without its own charset takes the table's default;
                // when that is not known (a seeded table), the table is reloaded instead.
                let mut needs_reload = false;
                let mut define =
                    |definition: &ColumnDef| -> Result<(ColumnDefinition, Vec<KeySpec>), String> {
                        let (column, keys) =
                            column_definition(definition, default_charset.as_deref())?;
                        if column.column_type.is_text() && column.charset.is_none() {
                            needs_reload = true;
                        }
                        Ok((column, keys))
                    };
                for operation in &alter.operations {
                    match operation {
                        AlterTableOperation::AddColumn {
                            column_def,
                            column_position,
                            if_not_exists,
                            ..
                        } => {
                            if *if_not_exists && editable.position(&column_def.name.value).is_some()
                            {
                                continue;
                            }
                            let (definition, keys) = define(column_def)?;
                            editable.place(definition, column_position.as_ref());
                            for (name, kind, parts) in keys {
                                editable.add_key(name, kind, parts);
                            }
                        }
                        AlterTableOperation::DropColumn {
                            column_names,
                            if_exists,
                            ..
                        } => {
                            for name in column_names {
                                if *if_exists && editable.position(&name.value).is_none() {
                                    continue;
                                }
                                editable.drop_column(&name.value)?;
                            }
                        }
                        AlterTableOperation::ModifyColumn {
                            col_name,
                            data_type,
                            options,
                            column_position,
                        } => {
                            let index = editable
                                .position(&col_name.value)
                                .ok_or_else(|| format!("column `{col_name}` does not exist"))?;
                            let name = editable.columns[index].name.clone();
                            let definition = ColumnDef {
                                name: col_name.clone(),
                                data_type: data_type.clone(),
                                options: wrap_options(options),
                            };
                            let (mut new, keys) = define(&definition)?;
                            new.name = name;
                            editable.redefine(index, new, column_position.as_ref(), keys);
                        }
                        AlterTableOperation::ChangeColumn {
                            old_name,
                            new_name,
                            data_type,
                            options,
                            column_position,
                        } => {
                            let index = editable
                                .position(&old_name.value)
                                .ok_or_else(|| format!("column `{old_name}` does not exist"))?;
                            let definition = ColumnDef {
                                name: new_name.clone(),
                                data_type: data_type.clone(),
                                options: wrap_options(options),
                            };
                            let (new, keys) = define(&definition)?;
                            editable.rename_column(&old_name.value, &new_name.value);
                            editable.redefine(index, new, column_position.as_ref(), keys);
                        }
                        AlterTableOperation::RenameColumn {
                            old_column_name,
                            new_column_name,
                        } => {
                            let index =
                                editable.position(&old_column_name.value).ok_or_else(|| {
                                    format!("column `{old_column_name}` does not exist")
                                })?;
                            editable.columns[index].name = new_column_name.value.clone();
                            editable.rename_column(&old_column_name.value, &new_column_name.value);
                        }
                        AlterTableOperation::AddConstraint { constraint, .. } => {
                            if let Some((name, kind, parts)) = constraint_key(constraint) {
                                editable.add_key(name, kind, parts);
                            }
                        }
                        AlterTableOperation::DropPrimaryKey { .. } => {
                            editable
                                .keys
                                .retain(|(_, kind, _)| *kind != KeyKind::Primary);
                        }
                        AlterTableOperation::DropIndex { name }
                        | AlterTableOperation::DropConstraint { name, .. } => {
                            editable
                                .keys
                                .retain(|(key, _, _)| !key.eq_ignore_ascii_case(&name.value));
                        }
                        AlterTableOperation::RenameTable { table_name } => {
                            let new_name = match table_name {
                                RenameTableNameKind::As(name) | RenameTableNameKind::To(name) => {
                                    name
                                }
                            };
                            // An unqualified new name is in the session's database (the
                            // table's own when none is selected), as the server resolves it.
                            let schema = if current_schema.is_empty() {
                                original.schema.as_str()
                            } else {
                                current_schema
                            };
                            table = self.table_of(new_name, schema)?;
                            editable.table = table.clone();
                        }
                        // Defaults, table options, partitions, locks, algorithms: no change to
                        // the columns or unique keys.
                        _ => {}
                    }
                }
                if needs_reload {
                    reload.push(table);
                    return Ok(());
                }
                let schema = editable.build()?;
                if table != original {
                    self.remove(&original);
                    changed.push(original);
                }
                self.set(schema);
                self.set_default_charset(&table, default_charset);
                changed.push(table);
            }
            Statement::Drop {
                object_type,
                names,
                if_exists,
                table: index_table,
                ..
            } => match object_type {
                ObjectType::Table => {
                    for name in &names {
                        let table = self.table_of(name, current_schema)?;
                        if self.get(&table).is_none() && !if_exists {
                            return Err(format!("table {table} is not tracked"));
                        }
                        self.remove(&table);
                        changed.push(table);
                    }
                }
                ObjectType::Schema | ObjectType::Database => {
                    for name in &names {
                        let schema = name.0.last().map(name_part).unwrap_or_default();
                        changed.extend(self.drop_schema(&schema));
                    }
                }
                ObjectType::Index => {
                    if let Some(index_table) = index_table {
                        let table = self.table_of(&index_table, current_schema)?;
                        let mut editable = self.edit(&table)?;
                        for name in &names {
                            let index = name.0.last().map(name_part).unwrap_or_default();
                            editable
                                .keys
                                .retain(|(key, _, _)| !key.eq_ignore_ascii_case(&index));
                        }
                        self.set(editable.build()?);
                        changed.push(table);
                    }
                }
                _ => {}
            },
            Statement::RenameTable(renames) => {
                for rename in renames {
                    let old = self.table_of(&rename.old_name, current_schema)?;
                    let new = self.table_of(&rename.new_name, current_schema)?;
                    if self.get(&old).is_none() {
                        // Not known here (MariaDB's RENAME TABLE IF EXISTS of a missing table,
                        // or a table never read): the new name is read from the downstream.
                        self.remove(&new);
                        reload.push(new);
                        continue;
                    }
                    let mut editable = self.edit(&old)?;
                    editable.table = new.clone();
                    let schema = editable.build()?;
                    let charset = self.default_charset(&old);
                    self.remove(&old);
                    self.set(schema);
                    self.set_default_charset(&new, charset);
                    changed.push(old);
                    changed.push(new);
                }
            }
            Statement::CreateIndex(create) => {
                let table = self.table_of(&create.table_name, current_schema)?;
                if create.unique {
                    let mut editable = self.edit(&table)?;
                    let name = create
                        .name
                        .as_ref()
                        .and_then(|name| name.0.last().map(name_part));
                    if let Some(parts) = index_parts(&create.columns) {
                        editable.add_key(name, KeyKind::Unique, parts);
                    }
                    self.set(editable.build()?);
                    changed.push(table);
                }
            }
            Statement::CreateDatabase { ref db_name, .. } => {
                let text = statement.to_string();
                if let Some(charset) = schema_charset_of(&text) {
                    let schema = db_name.0.last().map(name_part).unwrap_or_default();
                    self.set_schema_charset(&schema, &charset);
                }
            }
            // TRUNCATE, views, routines, grants...: no table structure changes.
            _ => {}
        }
        Ok(())
    }
}

fn wrap_options(options: &[ColumnOption]) -> Vec<sqlparser::ast::ColumnOptionDef> {
    options
        .iter()
        .map(|option| sqlparser::ast::ColumnOptionDef {
            name: None,
            option: option.clone(),
        })
        .collect()
}

/// The `CHARACTER SET` (or the charset of the `COLLATE`) of a CREATE DATABASE.
fn schema_charset_of(sql: &str) -> Option<String> {
    let pattern = Regex::new(r"(?i)(?:CHARSET|CHARACTER\s+SET)\s*=?\s*'?([A-Za-z0-9_]+)").ok()?;
    if let Some(captures) = pattern.captures(sql) {
        return captures.get(1).map(|found| found.as_str().to_lowercase());
    }
    let collate = Regex::new(r"(?i)COLLATE\s*=?\s*'?([A-Za-z0-9]+)_").ok()?;
    collate
        .captures(sql)
        .and_then(|captures| captures.get(1))
        .map(|found| found.as_str().to_lowercase())
}

/// `DEFAULT CHARSET=x` / `CHARACTER SET x` / `COLLATE x` among a CREATE TABLE's options.
fn table_charset(sql: &str) -> Option<String> {
    let tail = &sql[sql.rfind(')')?..];
    let pattern = Regex::new(r"(?i)(?:CHARSET|CHARACTER\s+SET)\s*=?\s*'?([A-Za-z0-9_]+)").ok()?;
    if let Some(captures) = pattern.captures(tail) {
        return captures.get(1).map(|found| found.as_str().to_lowercase());
    }
    let collate = Regex::new(r"(?i)COLLATE\s*=?\s*'?([A-Za-z0-9]+)_").ok()?;
    collate
        .captures(tail)
        .and_then(|captures| captures.get(1))
        .map(|found| found.as_str().to_lowercase())
}

type KeySpec = (Option<String>, KeyKind, KeyParts);

/// A column's definition and the keys its inline options declare.
fn column_definition(
    column: &ColumnDef,
    table_charset: Option<&str>,
) -> Result<(ColumnDefinition, Vec<KeySpec>), String> {
    let type_text = column.data_type.to_string();
    let lowered = type_text.to_lowercase();
    let head = lowered.split('(').next().unwrap_or_default();
    let words: Vec<&str> = head
        .split_whitespace()
        .filter(|word| !matches!(*word, "unsigned" | "signed" | "zerofill"))
        .collect();
    let data_type = match words.as_slice() {
        ["double", "precision"] => "double".to_owned(),
        ["character", "varying"] => "varchar".to_owned(),
        [first, ..] => (*first).to_owned(),
        [] => String::new(),
    };
    let column_type = ColumnType::from_sql(&data_type, &lowered)
        .map_err(|error| format!("column `{}`: {error}", column.name.value))?;
    let mut definition = ColumnDefinition::new(column.name.value.clone(), column_type, true);
    let mut keys = Vec::new();
    for option in &column.options {
        match &option.option {
            ColumnOption::NotNull => definition.nullable = false,
            ColumnOption::Null => definition.nullable = true,
            ColumnOption::CharacterSet(name) => {
                definition.charset = name.0.last().map(name_part).map(|text| text.to_lowercase());
            }
            ColumnOption::Collation(name) => {
                let collation = name
                    .0
                    .last()
                    .map(name_part)
                    .unwrap_or_default()
                    .to_lowercase();
                if definition.charset.is_none() {
                    definition.charset = collation.split('_').next().map(str::to_owned);
                }
                definition.collation = Some(collation);
            }
            ColumnOption::Generated { .. } => definition.generated = true,
            ColumnOption::PrimaryKey(_) => {
                definition.nullable = false;
                keys.push((
                    None,
                    KeyKind::Primary,
                    vec![(column.name.value.clone(), None)],
                ));
            }
            ColumnOption::Unique(_) => {
                keys.push((
                    None,
                    KeyKind::Unique,
                    vec![(column.name.value.clone(), None)],
                ));
            }
            _ => {}
        }
    }
    if definition.column_type.is_text() && definition.charset.is_none() {
        definition.charset = table_charset.map(str::to_owned);
    }
    if definition.column_type == ColumnType::Json && definition.charset.is_none() {
        // JSON text is utf8mb4 (MariaDB stores it as LONGTEXT in utf8mb4).
        definition.charset = Some("utf8mb4".into());
    }
    if data_type == "serial" {
        definition.nullable = false;
        keys.push((
            None,
            KeyKind::Unique,
            vec![(column.name.value.clone(), None)],
        ));
    }
    Ok((definition, keys))
}

/// The columns (and prefix lengths) of an index; `None` for a functional index.
fn index_parts(columns: &[IndexColumn]) -> Option<KeyParts> {
    columns
        .iter()
        .map(|column| match &column.column.expr {
            Expr::Identifier(ident) => Some((ident.value.clone(), None)),
            Expr::Function(function) => {
                let name = function.name.0.last().map(name_part)?;
                let FunctionArguments::List(list) = &function.args else {
                    return None;
                };
                let [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value)))] =
                    list.args.as_slice()
                else {
                    return None;
                };
                let Value::Number(number, _) = &value.value else {
                    return None;
                };
                Some((name, number.parse().ok()))
            }
            _ => None,
        })
        .collect()
}

/// The unique key a table constraint declares, if any.
fn constraint_key(constraint: &TableConstraint) -> Option<KeySpec> {
    match constraint {
        TableConstraint::PrimaryKey(key) => {
            Some((None, KeyKind::Primary, index_parts(&key.columns)?))
        }
        TableConstraint::Unique(key) => Some((
            key.index_name
                .as_ref()
                .or(key.name.as_ref())
                .map(|name| name.value.clone()),
            KeyKind::Unique,
            index_parts(&key.columns)?,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_say_what_changed_and_what_to_reload() {
        let mut tracker = SchemaTracker::new(false);
        tracker.set_schema_charset("Shop", "utf8mb4");
        assert_eq!(
            tracker.apply_ddl(
                "shop",
                "CREATE TABLE Items (id INT PRIMARY KEY, name VARCHAR(10))"
            ),
            Ok(TrackOutcome::Changed(vec![TableRef::new("shop", "Items")]))
        );
        // Names fold when the task is not case-sensitive.
        let schema = tracker
            .get(&TableRef::new("SHOP", "items"))
            .expect("tracked");
        assert_eq!(schema.columns()[1].charset.as_deref(), Some("utf8mb4"));
        assert_eq!(
            tracker.apply_ddl("shop", "TRUNCATE TABLE items"),
            Ok(TrackOutcome::Unchanged)
        );
        assert_eq!(
            tracker.apply_ddl("shop", "CREATE PROCEDURE p() BEGIN SELECT 1; END"),
            Ok(TrackOutcome::Unchanged)
        );
        assert_eq!(
            tracker.apply_ddl(
                "shop",
                "ALTER TABLE items PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10))"
            ),
            Ok(TrackOutcome::Reload(vec![TableRef::new("shop", "items")]))
        );
        // A table the tracker does not know cannot be altered silently.
        let error = tracker
            .apply_ddl("shop", "ALTER TABLE unknown ADD COLUMN x INT")
            .expect_err("untracked");
        assert!(error.reason.contains("not tracked"), "{error}");
        // A statement without a database needs one selected.
        assert!(tracker.apply_ddl("", "CREATE TABLE t (a INT)").is_err());
        // DROP DATABASE forgets its tables.
        assert_eq!(
            tracker.apply_ddl("", "DROP DATABASE shop"),
            Ok(TrackOutcome::Changed(vec![TableRef::new("shop", "items")]))
        );
        assert!(tracker.get(&TableRef::new("shop", "items")).is_none());
    }
}
