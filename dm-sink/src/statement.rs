//! SQL for runs of row changes against one downstream table: pure functions from rows to text.
//!
//! ```text
//! INSERT  INTO `s`.`t` (`a`,`b`) VALUES (1,'x'),(2,'y')
//! REPLACE INTO `s`.`t` (`a`,`b`) VALUES (1,'x'),(2,'y')                        (safe mode)
//! INSERT  INTO `s`.`t` (`a`,`b`) VALUES (1,'z') ON DUPLICATE KEY UPDATE `a`=VALUES(`a`),`b`=VALUES(`b`)
//! UPDATE `s`.`t` SET `a`=1,`b`='z' WHERE `a`=1 LIMIT 1
//! DELETE FROM `s`.`t` WHERE `a` IN (1,2)          DELETE FROM `s`.`t` WHERE (`a`=1 AND `b`=2) OR (...)
//! ```
//!
//! Rows are positional in the change's layout (the upstream table's columns); statements name
//! the columns, so a downstream table with more columns or another column order works.
//! Generated columns are never written. The WHERE clause addresses a row by the identity
//! columns the caller chose (the downstream's primary key or a not-null unique key); with none,
//! by every comparable column (`IS NULL` for NULLs) and `LIMIT 1`.

use dm_core::{Row, TableRef, TableSchema, Value};

use crate::literal::{comparable, write_identifier, write_table, write_value};

/// The verb of a multi-row insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertVerb {
    /// `INSERT`: a duplicate key is an error.
    Insert,
    /// `REPLACE`: delete rows with a conflicting key, then insert (safe mode).
    Replace,
    /// `INSERT ... ON DUPLICATE KEY UPDATE` every written column (updates by identity).
    Upsert,
}

fn written_columns(layout: &TableSchema) -> impl Iterator<Item = (usize, &str)> + '_ {
    layout
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, column)| !column.generated)
        .map(|(index, column)| (index, column.name.as_str()))
}

/// Appends a multi-row INSERT, REPLACE or upsert of `rows`.
pub fn write_insert<'a>(
    out: &mut String,
    verb: InsertVerb,
    target: &TableRef,
    layout: &TableSchema,
    rows: impl IntoIterator<Item = &'a Row>,
) {
    out.push_str(match verb {
        InsertVerb::Replace => "REPLACE INTO ",
        InsertVerb::Insert | InsertVerb::Upsert => "INSERT INTO ",
    });
    write_table(out, target);
    out.push_str(" (");
    for (position, (_, name)) in written_columns(layout).enumerate() {
        if position > 0 {
            out.push(',');
        }
        write_identifier(out, name);
    }
    out.push_str(") VALUES ");
    for (row_number, row) in rows.into_iter().enumerate() {
        if row_number > 0 {
            out.push(',');
        }
        out.push('(');
        for (position, (index, _)) in written_columns(layout).enumerate() {
            if position > 0 {
                out.push(',');
            }
            write_value(out, row.get(index).unwrap_or(&Value::Null));
        }
        out.push(')');
    }
    if verb == InsertVerb::Upsert {
        out.push_str(" ON DUPLICATE KEY UPDATE ");
        for (position, (_, name)) in written_columns(layout).enumerate() {
            if position > 0 {
                out.push(',');
            }
            write_identifier(out, name);
            out.push_str("=VALUES(");
            write_identifier(out, name);
            out.push(')');
        }
    }
}

/// Appends the condition addressing `row`: its identity columns, or with none every comparable
/// column.
fn write_condition(out: &mut String, layout: &TableSchema, identity: &[usize], row: &Row) {
    let all: Vec<usize>;
    let columns = if identity.is_empty() {
        all = layout
            .columns()
            .iter()
            .enumerate()
            .filter(|(_, column)| !column.generated && comparable(column))
            .map(|(index, _)| index)
            .collect();
        &all
    } else {
        identity
    };
    for (position, index) in columns.iter().enumerate() {
        if position > 0 {
            out.push_str(" AND ");
        }
        let name = layout
            .columns()
            .get(*index)
            .map_or("", |column| column.name.as_str());
        write_identifier(out, name);
        match row.get(*index).unwrap_or(&Value::Null) {
            Value::Null => out.push_str(" IS NULL"),
            value => {
                out.push('=');
                write_value(out, value);
            }
        }
    }
}

/// Appends `UPDATE ... SET <after> WHERE <before's identity> LIMIT 1`.
pub fn write_update(
    out: &mut String,
    target: &TableRef,
    layout: &TableSchema,
    identity: &[usize],
    before: &Row,
    after: &Row,
) {
    out.push_str("UPDATE ");
    write_table(out, target);
    out.push_str(" SET ");
    for (position, (index, name)) in written_columns(layout).enumerate() {
        if position > 0 {
            out.push(',');
        }
        write_identifier(out, name);
        out.push('=');
        write_value(out, after.get(index).unwrap_or(&Value::Null));
    }
    out.push_str(" WHERE ");
    write_condition(out, layout, identity, before);
    out.push_str(" LIMIT 1");
}

/// Appends a DELETE of `rows` by identity: `IN (...)` for a one-column identity without NULLs,
/// `(...) OR (...)` otherwise. Without identity only one row may be given (`LIMIT 1`: of two
/// equal rows, one goes).
pub fn write_delete(
    out: &mut String,
    target: &TableRef,
    layout: &TableSchema,
    identity: &[usize],
    rows: &[&Row],
) {
    out.push_str("DELETE FROM ");
    write_table(out, target);
    out.push_str(" WHERE ");
    if let [column] = identity
        && rows
            .iter()
            .all(|row| !matches!(row.get(*column), None | Some(Value::Null)))
    {
        let name = layout
            .columns()
            .get(*column)
            .map_or("", |column| column.name.as_str());
        write_identifier(out, name);
        out.push_str(" IN (");
        for (position, row) in rows.iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            write_value(out, row.get(*column).unwrap_or(&Value::Null));
        }
        out.push(')');
        return;
    }
    if rows.len() == 1 {
        write_condition(out, layout, identity, rows[0]);
    } else {
        for (position, row) in rows.iter().enumerate() {
            if position > 0 {
                out.push_str(" OR ");
            }
            out.push('(');
            write_condition(out, layout, identity, row);
            out.push(')');
        }
    }
    if identity.is_empty() {
        out.push_str(" LIMIT 1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{ColumnDefinition, ColumnType, IntegerWidth};

    fn layout() -> TableSchema {
        let mut generated = ColumnDefinition::new("g", ColumnType::Double, true);
        generated.generated = true;
        TableSchema::new(
            TableRef::new("shop", "items"),
            vec![
                ColumnDefinition::new(
                    "id",
                    ColumnType::Integer {
                        width: IntegerWidth::Int,
                        unsigned: false,
                    },
                    false,
                ),
                ColumnDefinition::new("name", ColumnType::VarChar { length: 20 }, true),
                generated,
                ColumnDefinition::new("price", ColumnType::Double, true),
            ],
            Vec::new(),
        )
        .expect("schema")
    }

    fn row(id: i64, name: Option<&str>) -> Row {
        Row(vec![
            Value::Int(id),
            name.map_or(Value::Null, |name| Value::Text(name.into())),
            Value::Double(1.5),
            Value::Double(2.25),
        ])
    }

    #[test]
    fn inserts_replaces_and_upserts_name_the_written_columns() {
        let target = TableRef::new("dst", "items");
        let rows = [row(1, Some("tea")), row(2, None)];
        let mut sql = String::new();
        write_insert(&mut sql, InsertVerb::Insert, &target, &layout(), &rows);
        assert_eq!(
            sql,
            "INSERT INTO `dst`.`items` (`id`,`name`,`price`) VALUES (1,'tea',2.25),(2,NULL,2.25)"
        );
        sql.clear();
        write_insert(&mut sql, InsertVerb::Upsert, &target, &layout(), &rows[..1]);
        assert_eq!(
            sql,
            "INSERT INTO `dst`.`items` (`id`,`name`,`price`) VALUES (1,'tea',2.25) ON DUPLICATE KEY UPDATE `id`=VALUES(`id`),`name`=VALUES(`name`),`price`=VALUES(`price`)"
        );
        sql.clear();
        write_insert(
            &mut sql,
            InsertVerb::Replace,
            &target,
            &layout(),
            &rows[1..],
        );
        assert!(sql.starts_with("REPLACE INTO `dst`.`items`"));
    }

    #[test]
    fn updates_and_deletes_address_rows_by_identity_or_by_every_comparable_column() {
        let target = TableRef::new("dst", "items");
        let mut sql = String::new();
        write_update(
            &mut sql,
            &target,
            &layout(),
            &[0],
            &row(1, Some("tea")),
            &row(3, None),
        );
        assert_eq!(
            sql,
            "UPDATE `dst`.`items` SET `id`=3,`name`=NULL,`price`=2.25 WHERE `id`=1 LIMIT 1"
        );
        sql.clear();
        write_delete(
            &mut sql,
            &target,
            &layout(),
            &[0],
            &[&row(1, None), &row(2, None)],
        );
        assert_eq!(sql, "DELETE FROM `dst`.`items` WHERE `id` IN (1,2)");
        sql.clear();
        write_delete(
            &mut sql,
            &target,
            &layout(),
            &[0, 1],
            &[&row(1, None), &row(2, Some("x"))],
        );
        assert_eq!(
            sql,
            "DELETE FROM `dst`.`items` WHERE (`id`=1 AND `name` IS NULL) OR (`id`=2 AND `name`='x')"
        );
        sql.clear();
        // No identity: every comparable column (not the floating-point ones), one row.
        write_delete(&mut sql, &target, &layout(), &[], &[&row(1, None)]);
        assert_eq!(
            sql,
            "DELETE FROM `dst`.`items` WHERE `id`=1 AND `name` IS NULL LIMIT 1"
        );
    }
}
