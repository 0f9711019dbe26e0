//! What the dump reads beyond the block-allow list, and in which session time zone: DM's
//! `where`, `-B`, `-T`, `-W` and `skip-tz-utc` / `timezone`. Pure and synchronous.
//!
//! ```text
//! table t of database d is dumped  <=>  (-B absent or d in -B)
//!                                   and (-T given ? (d, t) in -T : block-allow list allows d.t)
//! its rows                          =   SELECT ... WHERE (where) AND (chunk range)
//! read in the session time zone     =   skip-tz-utc: false -> '+00:00'
//!                                       else the task's timezone, else the upstream's own
//! ```
//!
//! The time zone decides what zone-dependent expressions of the dump mean (a `where` comparing
//! a TIMESTAMP with a literal, `NOW()`); it never moves a value: TIMESTAMP columns are read as
//! `UNIX_TIMESTAMP(column)` (the stored instant, whatever the session zone, also in a
//! daylight-saving fall-back hour where two instants print the same) and written as UTC
//! text, which the loader reads under `time_zone = '+00:00'`. Table definitions are read under
//! `'+00:00'` too, so TIMESTAMP defaults also keep their instants.

use dm_core::TableRef;
use dm_task::filter::BlockAllowList;

/// What to dump, beyond the block-allow list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpSelection {
    /// `-B`: only these databases (exact names, each must exist); `None`: every database.
    pub databases: Option<Vec<String>>,
    /// `-T`: exactly these tables; replaces the block-allow list for the dump, as in DM (the
    /// syncer still follows the list); `None`: the list decides.
    pub tables: Option<Vec<TableRef>>,
    /// Whether `-T` names compare case-sensitively (the task's `case-sensitive`).
    pub case_sensitive: bool,
    /// `where`: a condition every dumped row satisfies (every table; DM's and dumpling's
    /// meaning).
    pub where_condition: Option<String>,
    /// Whether views are dumped (`-W` / `--no-views` turns them off).
    pub views: bool,
}

impl Default for DumpSelection {
    /// Everything the block-allow list allows, views included, every row.
    fn default() -> Self {
        DumpSelection {
            databases: None,
            tables: None,
            case_sensitive: false,
            where_condition: None,
            views: true,
        }
    }
}

impl DumpSelection {
    fn same(&self, left: &str, right: &str) -> bool {
        if self.case_sensitive {
            left == right
        } else {
            left.to_lowercase() == right.to_lowercase()
        }
    }

    fn in_databases(&self, schema: &str) -> bool {
        self.databases
            .as_ref()
            .is_none_or(|databases| databases.iter().any(|name| name == schema))
    }

    /// Whether anything of `schema` may be dumped.
    pub fn allows_schema(&self, filter: &BlockAllowList, schema: &str) -> bool {
        if !self.in_databases(schema) {
            return false;
        }
        match &self.tables {
            Some(tables) => tables.iter().any(|table| self.same(&table.schema, schema)),
            None => filter.allows_schema(schema),
        }
    }

    /// Whether `schema`.`table` is dumped.
    pub fn allows_table(&self, filter: &BlockAllowList, schema: &str, table: &str) -> bool {
        if !self.in_databases(schema) {
            return false;
        }
        match &self.tables {
            Some(tables) => tables
                .iter()
                .any(|listed| self.same(&listed.schema, schema) && self.same(&listed.table, table)),
            None => filter.allows_table(schema, table),
        }
    }

    /// The `-B` databases that are not in `existing` (dumpling refuses such a dump).
    pub fn missing_databases(&self, existing: &[String]) -> Vec<String> {
        self.databases
            .iter()
            .flatten()
            .filter(|name| !existing.contains(name))
            .cloned()
            .collect()
    }

    /// The `-T` tables that are not among `found` (the objects the dump selected): a name
    /// that matches nothing is a mistake to report, not an empty dump.
    pub fn missing_tables(&self, found: &[TableRef]) -> Vec<String> {
        self.tables
            .iter()
            .flatten()
            .filter(|listed| {
                !found.iter().any(|table| {
                    self.same(&listed.schema, &table.schema)
                        && self.same(&listed.table, &table.table)
                })
            })
            .map(|listed| format!("{}.{}", listed.schema, listed.table))
            .collect()
    }

    /// The `WHERE` condition of a chunk: the user's condition and the chunk's key range.
    pub fn chunk_condition(&self, range: Option<&str>) -> Option<String> {
        match (self.where_condition.as_deref(), range) {
            (None, None) => None,
            (Some(condition), None) => Some(format!("({condition})")),
            (None, Some(range)) => Some(range.to_owned()),
            (Some(condition), Some(range)) => Some(format!("({condition}) AND ({range})")),
        }
    }
}

/// The session time zone the dump reads rows in.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum DumpTimeZone {
    /// The upstream's own (`@@GLOBAL.time_zone`): `skip-tz-utc: true` (DM's default) with no
    /// task `timezone`.
    #[default]
    Upstream,
    /// A zone the upstream knows: an offset (`+08:00`; `skip-tz-utc: false` is `+00:00`) or a
    /// name (`Asia/Shanghai`; needs the upstream's time zone tables).
    Zone(String),
}

impl DumpTimeZone {
    /// The statement that puts a session in this zone.
    pub fn statement(&self) -> String {
        match self {
            DumpTimeZone::Upstream => "SET SESSION time_zone = @@GLOBAL.time_zone".to_owned(),
            DumpTimeZone::Zone(zone) => {
                format!(
                    "SET SESSION time_zone = {}",
                    dm_mysql::literal::quote_text(zone)
                )
            }
        }
    }

    /// Reads a task's `timezone` the way DM does: an offset from `-12:59` to `+14:00` (`+08`
    /// is `+08:00`), `UTC`, or a zone name; `SYSTEM` and `Local` are refused (as DM does: the zone would depend on
    /// which machine runs the task).
    pub fn parse(text: &str) -> Result<DumpTimeZone, String> {
        let text = text.trim();
        if text == "SYSTEM" || text == "Local" {
            return Err(format!(
                "timezone `{text}` is not supported (as in DM): give an offset such as +08:00 or a zone name such as Asia/Shanghai"
            ));
        }
        if text.eq_ignore_ascii_case("UTC") || text == "Z" {
            return Ok(DumpTimeZone::Zone("+00:00".to_owned()));
        }
        if let Some(sign) = text.chars().next().filter(|sign| matches!(sign, '+' | '-')) {
            let invalid =
                || format!("timezone `{text}`: an offset is written +HH:MM, from -12:59 to +14:00");
            let (hours, minutes) = text[1..].split_once(':').unwrap_or((&text[1..], "00"));
            let valid_digits = |part: &str, most: usize| {
                !part.is_empty() && part.len() <= most && part.bytes().all(|b| b.is_ascii_digit())
            };
            if !valid_digits(hours, 2) || minutes.len() != 2 || !valid_digits(minutes, 2) {
                return Err(invalid());
            }
            let hours: u32 = hours.parse().map_err(|_| invalid())?;
            let minutes: u32 = minutes.parse().map_err(|_| invalid())?;
            let total = hours * 60 + minutes;
            let most = if sign == '-' { 12 * 60 + 59 } else { 14 * 60 };
            if minutes > 59 || total > most {
                return Err(invalid());
            }
            return Ok(DumpTimeZone::Zone(format!(
                "{sign}{:02}:{:02}",
                total / 60,
                total % 60
            )));
        }
        let valid_name = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '+' | '-'));
        if !valid_name {
            return Err(format!(
                "timezone `{text}`: give an offset such as +08:00 or a zone name such as Asia/Shanghai"
            ));
        }
        Ok(DumpTimeZone::Zone(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_databases_then_the_list_or_the_table_list() {
        let filter = BlockAllowList::default();
        let all = DumpSelection::default();
        assert!(all.allows_table(&filter, "shop", "items"));
        assert!(
            !all.allows_schema(&filter, "mysql"),
            "system schemas stay out"
        );
        let databases = DumpSelection {
            databases: Some(vec!["shop".into()]),
            ..DumpSelection::default()
        };
        assert!(databases.allows_table(&filter, "shop", "items"));
        assert!(!databases.allows_table(&filter, "crm", "items"));
        assert!(
            !databases.allows_schema(&filter, "Shop"),
            "-B names are exact"
        );
        assert_eq!(
            databases.missing_databases(&["crm".into()]),
            vec!["shop".to_owned()]
        );
        let tables = DumpSelection {
            tables: Some(vec![TableRef::new("Shop", "Items")]),
            ..DumpSelection::default()
        };
        assert!(tables.allows_table(&filter, "shop", "items"));
        assert!(!tables.allows_table(&filter, "shop", "orders"));
        assert!(tables.allows_schema(&filter, "shop"));
        assert!(!tables.allows_schema(&filter, "crm"));
        assert!(
            tables
                .missing_tables(&[TableRef::new("shop", "items")])
                .is_empty()
        );
        assert_eq!(
            tables.missing_tables(&[TableRef::new("shop", "orders")]),
            vec!["Shop.Items".to_owned()]
        );
        let exact = DumpSelection {
            case_sensitive: true,
            ..tables
        };
        assert!(!exact.allows_table(&filter, "shop", "items"));
    }

    #[test]
    fn conditions_combine_with_the_chunk_range() {
        let mut selection = DumpSelection::default();
        assert_eq!(selection.chunk_condition(None), None);
        assert_eq!(
            selection.chunk_condition(Some("`id` < 5")).as_deref(),
            Some("`id` < 5")
        );
        selection.where_condition = Some("a = 1 OR b = 2".into());
        assert_eq!(
            selection.chunk_condition(Some("`id` < 5")).as_deref(),
            Some("(a = 1 OR b = 2) AND (`id` < 5)")
        );
        assert_eq!(
            selection.chunk_condition(None).as_deref(),
            Some("(a = 1 OR b = 2)")
        );
    }

    #[test]
    fn time_zones_read_like_dm() {
        let zone = |text: &str| DumpTimeZone::parse(text);
        assert_eq!(zone("+04:00"), Ok(DumpTimeZone::Zone("+04:00".into())));
        assert_eq!(zone("-8:30"), Ok(DumpTimeZone::Zone("-08:30".into())));
        assert_eq!(zone("+08"), Ok(DumpTimeZone::Zone("+08:00".into())));
        assert_eq!(zone("UTC"), Ok(DumpTimeZone::Zone("+00:00".into())));
        assert_eq!(
            zone("Asia/Shanghai"),
            Ok(DumpTimeZone::Zone("Asia/Shanghai".into()))
        );
        for bad in [
            "SYSTEM", "Local", "+15:00", "-13:00", "+8:5", "+08:", "x'y", "a b", "",
        ] {
            assert!(zone(bad).is_err(), "{bad}");
        }
        assert_eq!(
            DumpTimeZone::Zone("+04:00".into()).statement(),
            "SET SESSION time_zone = '+04:00'"
        );
    }
}
