//! Shared by the binlog benches: sysbench's table schema, as the schema tracker would know it,
//! and the benches' sysbench workload (dm-testkit runs it).

use std::collections::HashMap;

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

/// `oltp_write_only` on `tables` tables of `table_size` rows (the benches' workload).
pub fn write_only(tables: usize, table_size: usize) -> dm_testkit::workloads::Sysbench<'static> {
    dm_testkit::workloads::Sysbench {
        workload: "oltp_write_only",
        tables,
        table_size,
    }
}
