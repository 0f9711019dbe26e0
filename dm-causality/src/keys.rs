//! Causality keys: which unique values a row change touches.
//!
//! A change conflicts with another when both touch one value of one unique index of the
//! downstream table: then their order decides whether the downstream hits a duplicate key or
//! updates the wrong row. [`TableKeys`] knows a table's unique indexes (from the **downstream**
//! schema, mapped by column name onto the **upstream** row images) and turns a change into its
//! keys: for the before image and the after image, one key per unique index whose values are all
//! non-NULL (NULL never collides in a unique index, so a nullable unique key counts too when it
//! holds values).
//!
//! Keys are 64-bit hashes of (target table, index columns, normalised values) under a fixed seed,
//! so they are the same in every run. A hash collision between two different values can only make
//! two unrelated changes look related (they are then serialised); it can never hide a conflict.
//!
//! **Tables without a usable unique key** (none declared, or every unique value NULL in both
//! images) get one key for the whole target table: all their changes go to one worker, in binlog
//! order. That is slower than DM's whole-row key but safe for duplicate rows, which a whole-row key
//! cannot tell apart.

use std::hash::{BuildHasher, Hasher};

use dm_core::{KeyKind, Row, RowChange, TableRef, TableSchema};
use foldhash::fast::FixedState;

use crate::normalize::{Comparison, hash_value, values_equal};

/// The fixed hash seed: keys must be identical across runs and processes.
const SEED: u64 = 0x646d_2d63_6175_7361;

fn hasher() -> impl Hasher {
    FixedState::with_seed(SEED).build_hasher()
}

/// One column of a unique key, located in the upstream row.
#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyPart {
    /// Position of the column in the upstream row images.
    column: usize,
    /// How the index compares this column's values.
    comparison: Comparison,
}

/// One unique index of the target table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UniqueKey {
    /// Hash of the target table and the index's column names: distinguishes indexes.
    tag: u64,
    /// Its columns, in index order.
    parts: Vec<KeyPart>,
    /// Whether every column is NOT NULL downstream (a primary key, or a not-null unique key).
    identifies_rows: bool,
}

/// The identity hashes of a change's images (`None`: no image, or no identity).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageIdentities {
    /// Identity of the before image.
    pub before: Option<u64>,
    /// Identity of the after image.
    pub after: Option<u64>,
}

/// The unique keys of one target table, ready to compute causality keys of its changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableKeys {
    /// Primary key first, then unique keys in declaration order.
    keys: Vec<UniqueKey>,
    /// Index into `keys` of the row identity (the PK, else the first not-null unique key).
    identity: Option<usize>,
    /// The key of the whole table, for changes without any unique value.
    table_tag: u64,
}

impl TableKeys {
    /// Keys of `target` (the downstream table the changes go to), taking the unique indexes of
    /// `downstream` and locating their columns by name in `upstream`, whose layout the row images
    /// have. An index with a column the upstream table lacks cannot be computed and is left out;
    /// if that leaves none, the table is serialised as a whole.
    pub fn new(target: &TableRef, upstream: &TableSchema, downstream: &TableSchema) -> TableKeys {
        let mut table_hasher = hasher();
        table_hasher.write(target.schema.as_bytes());
        table_hasher.write_u8(0);
        table_hasher.write(target.table.as_bytes());
        let table_tag = table_hasher.finish();

        let mut ordered: Vec<_> = downstream.keys().iter().collect();
        ordered.sort_by_key(|key| key.kind != KeyKind::Primary);
        let mut keys = Vec::new();
        let mut identity = None;
        'keys: for key in ordered {
            let mut tag_hasher = hasher();
            tag_hasher.write_u64(table_tag);
            let mut parts = Vec::with_capacity(key.columns.len());
            let mut identifies_rows = true;
            for part in &key.columns {
                let Some(column) = downstream.columns().get(part.column) else {
                    continue 'keys;
                };
                let Some(position) = upstream.column_index(&column.name) else {
                    continue 'keys;
                };
                identifies_rows &= key.kind == KeyKind::Primary || !column.nullable;
                tag_hasher.write(column.name.to_ascii_lowercase().as_bytes());
                tag_hasher.write_u8(0);
                parts.push(KeyPart {
                    column: position,
                    comparison: Comparison::for_column(column, part.prefix_length),
                });
            }
            if identifies_rows && identity.is_none() {
                identity = Some(keys.len());
            }
            keys.push(UniqueKey {
                tag: tag_hasher.finish(),
                parts,
                identifies_rows,
            });
        }
        TableKeys {
            keys,
            identity,
            table_tag,
        }
    }

    /// Keys of a table whose upstream and downstream structures are the same.
    pub fn for_table(schema: &TableSchema) -> TableKeys {
        TableKeys::new(schema.table(), schema, schema)
    }

    /// Whether the table has a row identity (a PK or a not-null unique key).
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// The key of the whole table (what keyless changes use).
    pub fn table_key(&self) -> u64 {
        self.table_tag
    }

    #[inline]
    fn key_hash(key: &UniqueKey, row: &Row) -> Option<u64> {
        let mut key_hasher = hasher();
        key_hasher.write_u64(key.tag);
        for part in &key.parts {
            let value = row.get(part.column)?;
            if value.is_null() {
                return None;
            }
            hash_value(value, part.comparison, &mut key_hasher);
        }
        Some(key_hasher.finish())
    }

    /// Appends the change's causality keys to `keys` (cleared first), without duplicates: every
    /// unique value of the before and after images, or the table key when there is none.
    pub fn causality_keys(&self, change: &RowChange, keys: &mut Vec<u64>) {
        self.causality_keys_and_identity(change, keys);
    }

    /// [`TableKeys::causality_keys`], also returning the identity hashes of the before and after
    /// images (the same values [`TableKeys::identity_hash`] gives), computed in the same pass.
    pub fn causality_keys_and_identity(
        &self,
        change: &RowChange,
        keys: &mut Vec<u64>,
    ) -> ImageIdentities {
        keys.clear();
        let mut identities = ImageIdentities::default();
        for (image, row) in [(0, change.before()), (1, change.after())] {
            let Some(row) = row else { continue };
            for (index, key) in self.keys.iter().enumerate() {
                let Some(hash) = Self::key_hash(key, row) else {
                    continue;
                };
                if Some(index) == self.identity {
                    if image == 0 {
                        identities.before = Some(hash);
                    } else {
                        identities.after = Some(hash);
                    }
                }
                if !keys.contains(&hash) {
                    keys.push(hash);
                }
            }
        }
        if keys.is_empty() {
            keys.push(self.table_tag);
        }
        identities
    }

    /// The hash of a row's identity (PK or first not-null unique key); `None` when the table has
    /// no identity or the row lacks its values.
    pub fn identity_hash(&self, row: &Row) -> Option<u64> {
        let key = self.keys.get(self.identity?)?;
        debug_assert!(key.identifies_rows);
        Self::key_hash(key, row)
    }

    /// Whether two rows of this table have the same identity, as the index compares values.
    pub fn same_identity(&self, left: &Row, right: &Row) -> bool {
        let Some(key) = self.identity.and_then(|index| self.keys.get(index)) else {
            return false;
        };
        key.parts.iter().all(
            |part| match (left.get(part.column), right.get(part.column)) {
                (Some(left), Some(right)) if !left.is_null() && !right.is_null() => {
                    values_equal(left, right, part.comparison)
                }
                _ => false,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dm_core::{
        BinlogFileName, BinlogPosition, ColumnDefinition, ColumnType, IntegerWidth, KeyColumn,
        KeyDefinition, Location, RowChangeKind, Value,
    };
    use std::sync::Arc;

    fn schema(table: &str, unique_nullable: bool) -> TableSchema {
        let mut name =
            ColumnDefinition::new("name", ColumnType::VarChar { length: 20 }, unique_nullable);
        name.collation = Some("utf8mb4_general_ci".into());
        TableSchema::new(
            TableRef::new("shop", table),
            vec![
                ColumnDefinition::new(
                    "id",
                    ColumnType::Integer {
                        width: IntegerWidth::Int,
                        unsigned: false,
                    },
                    false,
                ),
                name,
                ColumnDefinition::new("note", ColumnType::Text { max_bytes: 65535 }, true),
            ],
            vec![
                KeyDefinition {
                    name: "uk_name".into(),
                    kind: KeyKind::Unique,
                    columns: vec![KeyColumn {
                        column: 1,
                        prefix_length: None,
                    }],
                },
                KeyDefinition {
                    name: "PRIMARY".into(),
                    kind: KeyKind::Primary,
                    columns: vec![KeyColumn {
                        column: 0,
                        prefix_length: None,
                    }],
                },
            ],
        )
        .unwrap()
    }

    fn change(schema: &Arc<TableSchema>, kind: RowChangeKind) -> RowChange {
        let location = Location::from_position(BinlogPosition::start_of(
            BinlogFileName::parse("mysql-bin.000001").unwrap(),
        ));
        RowChange::new(schema.clone(), kind, location, 0).unwrap()
    }

    fn row(id: i64, name: Option<&str>) -> Row {
        Row(vec![
            Value::Int(id),
            name.map_or(Value::Null, |name| Value::Text(name.into())),
            Value::Null,
        ])
    }

    #[test]
    fn updates_touch_old_and_new_unique_values() {
        let schema = Arc::new(schema("t", false));
        let keys = TableKeys::for_table(&schema);
        assert!(keys.has_identity());
        let mut out = Vec::new();
        keys.causality_keys(
            &change(
                &schema,
                RowChangeKind::Update {
                    before: row(1, Some("a")),
                    after: row(1, Some("b")),
                },
            ),
            &mut out,
        );
        // id=1 (once: before and after agree), name=a, name=b.
        assert_eq!(out.len(), 3);
        let mut insert_b = Vec::new();
        keys.causality_keys(
            &change(
                &schema,
                RowChangeKind::Insert {
                    after: row(2, Some("B ")),
                },
            ),
            &mut insert_b,
        );
        // name 'B ' equals 'b' under utf8mb4_general_ci: the two changes share a key.
        assert!(insert_b.iter().any(|key| out.contains(key)));
    }

    #[test]
    fn null_unique_values_do_not_collide_and_keyless_tables_serialise() {
        let schema = Arc::new(schema("t", true));
        let keys = TableKeys::for_table(&schema);
        let mut first = Vec::new();
        let mut second = Vec::new();
        keys.causality_keys(
            &change(
                &schema,
                RowChangeKind::Insert {
                    after: row(1, None),
                },
            ),
            &mut first,
        );
        keys.causality_keys(
            &change(
                &schema,
                RowChangeKind::Insert {
                    after: row(2, None),
                },
            ),
            &mut second,
        );
        assert_eq!(first.len(), 1, "only the primary key");
        assert_ne!(first, second);

        let keyless = Arc::new(
            TableSchema::new(schema.table().clone(), schema.columns().to_vec(), vec![]).unwrap(),
        );
        let keyless_keys = TableKeys::for_table(&keyless);
        assert!(!keyless_keys.has_identity());
        keyless_keys.causality_keys(
            &change(
                &keyless,
                RowChangeKind::Insert {
                    after: row(1, None),
                },
            ),
            &mut first,
        );
        assert_eq!(first, vec![keyless_keys.table_key()]);
    }

    #[test]
    fn identity_follows_the_downstream_keys_by_column_name() {
        let upstream = schema("t", false);
        // Downstream: the columns in another order, and `name` is the primary key there.
        let downstream = TableSchema::new(
            TableRef::new("merged", "t"),
            vec![upstream.columns()[1].clone(), upstream.columns()[0].clone()],
            vec![KeyDefinition {
                name: "PRIMARY".into(),
                kind: KeyKind::Primary,
                columns: vec![KeyColumn {
                    column: 0,
                    prefix_length: None,
                }],
            }],
        )
        .unwrap();
        let keys = TableKeys::new(&TableRef::new("merged", "t"), &upstream, &downstream);
        assert!(keys.same_identity(&row(1, Some("x")), &row(2, Some("X"))));
        assert!(!keys.same_identity(&row(1, Some("x")), &row(1, Some("y"))));
        assert_eq!(
            keys.identity_hash(&row(1, Some("x"))),
            keys.identity_hash(&row(9, Some("X ")))
        );
    }
}
