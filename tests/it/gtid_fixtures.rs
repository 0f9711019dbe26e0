//! The GTID parser against what real MySQL servers wrote.
//!
//! `mysqlbinlog -vv` prints each transaction's GTID as `SET @@SESSION.GTID_NEXT= 'uuid:N'`. Every
//! such GTID in the shared fixtures' sidecars must parse, land in a set that contains it, and the
//! set must print and parse back to itself; the transactions of one server in one file must form
//! the contiguous run MySQL numbers them with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dm::core::{Flavor, Gtid, GtidSet, MySqlGtid};
use dm_testkit::{or_skip, shared_fixture};

fn sidecars(directory: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(directory).expect("read the fixtures directory");
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sidecars(&path, found);
        } else if path.to_string_lossy().ends_with(".mysqlbinlog.txt") {
            found.push(path);
        }
    }
}

/// The GTIDs `mysqlbinlog` set with `GTID_NEXT`, in file order (not ANONYMOUS / AUTOMATIC).
fn gtid_next_values(text: &str) -> Vec<String> {
    text.match_indices("GTID_NEXT= '")
        .filter_map(|(index, marker)| {
            let rest = &text[index + marker.len()..];
            rest.split_once('\'').map(|(value, _)| value.to_owned())
        })
        .filter(|value| value != "ANONYMOUS" && value != "AUTOMATIC")
        .collect()
}

#[test]
fn every_gtid_in_the_mysql_fixtures_parses_into_a_consistent_set() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let mut files = Vec::new();
    sidecars(&directory, &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no mysqlbinlog sidecars in {}",
        directory.display()
    );

    let mut total = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a sidecar");
        let mut set = GtidSet::empty(Flavor::MySql);
        let mut per_source: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for value in gtid_next_values(&text) {
            let gtid = Gtid::parse(Flavor::MySql, &value)
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            assert_eq!(
                gtid.to_string(),
                value.to_lowercase(),
                "GTIDs print as MySQL writes them"
            );
            set.insert(&gtid).expect("same flavour");
            assert!(set.contains_gtid(&gtid).expect("same flavour"));
            if let Gtid::MySql(MySqlGtid {
                source,
                transaction,
                ..
            }) = &gtid
            {
                per_source
                    .entry(source.to_string())
                    .or_default()
                    .push(*transaction);
            }
            total += 1;
        }
        let printed = set.to_string();
        assert_eq!(
            GtidSet::parse(Flavor::MySql, &printed).expect("a printed set parses"),
            set,
            "{}",
            file.display()
        );
        for (source, transactions) in per_source {
            // MySQL numbers one server's transactions 1, 2, 3, ... in commit order.
            let first = transactions[0];
            let expected: Vec<u64> = (first..first + transactions.len() as u64).collect();
            assert_eq!(transactions, expected, "{}: {source}", file.display());
            let interval = if transactions.len() == 1 {
                format!("{source}:{first}")
            } else {
                format!("{source}:{first}-{}", first + transactions.len() as u64 - 1)
            };
            assert!(printed.contains(&interval), "{printed} holds {interval}");
        }
    }
    assert!(
        total >= 7,
        "expected the GTID fixtures to hold GTIDs, found {total}"
    );
}
