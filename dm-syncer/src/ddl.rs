//! Routing a DDL statement: every table (and database) it names is replaced by its target, and
//! the statement is printed again with fully qualified names.
//!
//! ```text
//! USE shop_01; ALTER TABLE orders ADD c INT   --route shop_*.orders -> shop.orders-->
//! ALTER TABLE `shop`.`orders` ADD COLUMN c INT
//! ```
//!
//! The statement is parsed with sqlparser's MySQL dialect and printed back (the printed form is
//! equivalent; sqlparser's round trip keeps the AST). A statement sqlparser cannot parse cannot
//! be rewritten: [`route_ddl`] returns `None` and the caller refuses to run it under a route
//! that changes names.

use dm_core::TableRef;
use sqlparser::ast::{
    CreateTableLikeKind, Ident, ObjectName, ObjectNamePart, RenameTableNameKind, Statement,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::filter::RuleError;

/// The statement without the comments and whitespace before its first word (`-- ...`,
/// `# ...`, `/* ... */`; an executable `/*! ... */` comment is part of the statement and kept).
pub fn skip_leading_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if rest.starts_with("--") || rest.starts_with('#') {
            rest = rest
                .find('\n')
                .map_or("", |end| &rest[end + 1..])
                .trim_start();
        } else if rest.starts_with("/*") && !rest.starts_with("/*!") && !rest.starts_with("/*M!") {
            rest = rest
                .find("*/")
                .map_or("", |end| &rest[end + 2..])
                .trim_start();
        } else {
            return rest;
        }
    }
}

fn part(name: &ObjectNamePart) -> String {
    match name {
        ObjectNamePart::Identifier(ident) => ident.value.clone(),
        ObjectNamePart::Function(function) => function.name.value.clone(),
    }
}

fn quoted(value: &str) -> ObjectNamePart {
    ObjectNamePart::Identifier(Ident::with_quote('`', value))
}

/// Rewrites statements' names with `route_table` and `route_schema`. Returns `Ok(None)` when
/// sqlparser cannot parse the statement.
pub fn route_ddl(
    current_schema: &str,
    sql: &str,
    route_table: &dyn Fn(&TableRef) -> Result<TableRef, RuleError>,
    route_schema: &dyn Fn(&str) -> Result<String, RuleError>,
) -> Result<Option<String>, RuleError> {
    let Ok(mut statements) = Parser::parse_sql(&MySqlDialect {}, sql) else {
        return Ok(None);
    };
    let table = |name: &mut ObjectName| -> Result<(), RuleError> {
        let upstream = match name.0.as_slice() {
            [table] => TableRef::new(current_schema, part(table)),
            [schema, table] => TableRef::new(part(schema), part(table)),
            _ => return Ok(()),
        };
        let target = route_table(&upstream)?;
        name.0 = vec![quoted(&target.schema), quoted(&target.table)];
        Ok(())
    };
    let schema = |name: &mut ObjectName| -> Result<(), RuleError> {
        if let Some(last) = name.0.last() {
            let target = route_schema(&part(last))?;
            name.0 = vec![quoted(&target)];
        }
        Ok(())
    };
    for statement in &mut statements {
        match statement {
            Statement::CreateTable(create) => {
                table(&mut create.name)?;
                if let Some(
                    CreateTableLikeKind::Parenthesized(like) | CreateTableLikeKind::Plain(like),
                ) = &mut create.like
                {
                    table(&mut like.name)?;
                }
            }
            Statement::AlterTable(alter) => {
                table(&mut alter.name)?;
                for operation in &mut alter.operations {
                    if let sqlparser::ast::AlterTableOperation::RenameTable { table_name } =
                        operation
                    {
                        match table_name {
                            RenameTableNameKind::As(name) | RenameTableNameKind::To(name) => {
                                table(name)?;
                            }
                        }
                    }
                }
            }
            Statement::Drop {
                object_type,
                names,
                table: index_table,
                ..
            } => match object_type {
                sqlparser::ast::ObjectType::Schema | sqlparser::ast::ObjectType::Database => {
                    for name in names {
                        schema(name)?;
                    }
                }
                sqlparser::ast::ObjectType::Index => {
                    if let Some(index_table) = index_table {
                        table(index_table)?;
                    }
                }
                _ => {
                    for name in names {
                        table(name)?;
                    }
                }
            },
            Statement::RenameTable(renames) => {
                for rename in renames {
                    table(&mut rename.old_name)?;
                    table(&mut rename.new_name)?;
                }
            }
            Statement::CreateIndex(create) => table(&mut create.table_name)?,
            Statement::Truncate(truncate) => {
                for target in &mut truncate.table_names {
                    table(&mut target.name)?;
                }
            }
            Statement::CreateDatabase { db_name, .. } => schema(db_name)?,
            Statement::CreateSchema {
                schema_name: sqlparser::ast::SchemaName::Simple(name),
                ..
            } => schema(name)?,
            _ => {}
        }
    }
    Ok(Some(
        statements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_comments_are_skipped() {
        assert_eq!(
            skip_leading_comments("-- why\n  # more\n/* block */ ALTER TABLE t ADD c INT"),
            "ALTER TABLE t ADD c INT"
        );
        assert_eq!(
            skip_leading_comments("/*!40000 ALTER */"),
            "/*!40000 ALTER */"
        );
        assert_eq!(skip_leading_comments("-- only a comment"), "");
        assert_eq!(skip_leading_comments("/* unterminated"), "");
    }

    fn route(sql: &str) -> Option<String> {
        route_ddl(
            "shop_01",
            sql,
            &|table: &TableRef| {
                Ok(if table.schema.starts_with("shop_") {
                    TableRef::new("shop", table.table.clone())
                } else {
                    table.clone()
                })
            },
            &|schema: &str| {
                Ok(if schema.starts_with("shop_") {
                    "shop".to_owned()
                } else {
                    schema.to_owned()
                })
            },
        )
        .expect("routes")
    }

    #[test]
    fn names_are_replaced_by_their_targets() {
        assert_eq!(
            route("ALTER TABLE orders ADD COLUMN c INT").as_deref(),
            Some("ALTER TABLE `shop`.`orders` ADD COLUMN c INT")
        );
        assert_eq!(
            route("RENAME TABLE orders TO orders_old, other.t TO other.u").as_deref(),
            Some("RENAME TABLE `shop`.`orders` TO `shop`.`orders_old`, `other`.`t` TO `other`.`u`")
        );
        assert_eq!(
            route("CREATE TABLE t2 LIKE `shop_02`.t1").as_deref(),
            Some("CREATE TABLE `shop`.`t2` LIKE `shop`.`t1`")
        );
        assert_eq!(
            route("CREATE DATABASE shop_05").as_deref(),
            Some("CREATE DATABASE `shop`")
        );
        assert_eq!(
            route("DROP INDEX i ON orders").as_deref(),
            Some("DROP INDEX i ON `shop`.`orders`")
        );
        assert_eq!(
            route("TRUNCATE TABLE orders").as_deref(),
            Some("TRUNCATE TABLE `shop`.`orders`")
        );
        assert_eq!(
            route("ALTER TABLE t ADD PARTITION PARTITIONS 2"),
            None,
            "not parsable: not rewritten"
        );
    }
}
