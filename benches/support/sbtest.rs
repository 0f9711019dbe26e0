//! Shared by the binlog benches: sysbench's table schema, as the schema tracker would know it,
//! and a sysbench runner against a dm-testkit server.

use std::collections::HashMap;
use std::process::Command;

use dm::core::{
    ColumnDefinition, ColumnType, IntegerWidth, KeyColumn, KeyDefinition, KeyKind, TableRef,
    TableSchema,
};

/// `sbtest.<table>` as `sysbench oltp_*` creates it.
pub fn sbtest_schema(table: &str) -> TableSchema {
    let integer = |name: &str| {
        ColumnDefinition::new(
            name,
            ColumnType::Integer {
                width: IntegerWidth::Int,
                unsigned: false,
            },
            false,
        )
    };
    let text = |name: &str, length| {
        let mut column = ColumnDefinition::new(name, ColumnType::Char { length }, false);
        column.charset = Some("utf8mb4".into());
        column
    };
    TableSchema::new(
        TableRef::new("sbtest", table),
        vec![integer("id"), integer("k"), text("c", 120), text("pad", 60)],
        vec![KeyDefinition {
            name: "PRIMARY".into(),
            kind: KeyKind::Primary,
            columns: vec![KeyColumn {
                column: 0,
                prefix_length: None,
            }],
        }],
    )
    .expect("the sysbench schema is valid")
}

/// The schemas of `sbtest1` to `sbtest<tables>`, by table name.
pub fn sbtest_schemas(tables: usize) -> HashMap<String, TableSchema> {
    (1..=tables)
        .map(|index| {
            let name = format!("sbtest{index}");
            (name.clone(), sbtest_schema(&name))
        })
        .collect()
}

/// Runs `sysbench oltp_write_only <phase>` on the server at `port` (database `sbtest`), with a
/// fixed seed; returns its report.
pub fn sysbench(
    port: u16,
    tables: usize,
    table_size: usize,
    phase: &str,
    extra: &[String],
) -> Result<String, String> {
    let mut arguments = vec![
        "oltp_write_only".to_owned(),
        "--db-driver=mysql".into(),
        "--mysql-host=127.0.0.1".into(),
        format!("--mysql-port={port}"),
        "--mysql-user=root".into(),
        "--mysql-db=sbtest".into(),
        format!("--tables={tables}"),
        format!("--table-size={table_size}"),
        "--rand-seed=1".into(),
    ];
    arguments.extend_from_slice(extra);
    arguments.push(phase.into());
    let output = Command::new("sysbench")
        .args(&arguments)
        .output()
        .map_err(|error| format!("sysbench: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "sysbench {phase}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
