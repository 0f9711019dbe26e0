//! Every binlog in `../shared/fixtures/mysql-binlog` (written by MySQL 5.1 to 9.6, Percona 8.4,
//! Aurora 5.7) is read to its end: checksums verified, every event decoded, and the event counts
//! per type equal to the ones the fixtures' README lists (counted there by an independent walker).
//! Specific decoded values are checked against what the README and the files' own text say.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use dm_binlog::{BinlogFileReader, EventData, Read, event_type_name};
use dm_testkit::{or_skip, shared_fixture};

/// Reads a file to its end: events (offset, data), per-type counts, and a trailing partial event.
struct ReadResult {
    events: Vec<(u64, dm_binlog::Event)>,
    counts: BTreeMap<String, u64>,
    /// Counts of the events inside TRANSACTION_PAYLOAD events.
    payload_counts: BTreeMap<String, u64>,
    partial: Option<u64>,
}

fn read_all(path: &Path) -> ReadResult {
    let mut reader = BinlogFileReader::open(path).unwrap_or_else(|error| panic!("{error}"));
    let mut result = ReadResult {
        events: Vec::new(),
        counts: BTreeMap::new(),
        payload_counts: BTreeMap::new(),
        partial: None,
    };
    loop {
        match reader
            .read_next()
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        {
            Read::Event { offset, event } => {
                *result
                    .counts
                    .entry(event_type_name(event.header.event_type).to_owned())
                    .or_default() += 1;
                if let EventData::TransactionPayload { events, .. } = &event.data {
                    for inner in events {
                        *result
                            .payload_counts
                            .entry(event_type_name(inner.header.event_type).to_owned())
                            .or_default() += 1;
                    }
                }
                result.events.push((offset, event));
            }
            Read::Partial { available, .. } => {
                result.partial = Some(available);
                return result;
            }
            Read::End => return result,
        }
    }
}

/// A gzipped fixture, unpacked into a temp file.
fn unpacked(path: &Path, directory: &Path) -> PathBuf {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open gz"))
        .read_to_end(&mut bytes)
        .expect("gunzip");
    let target = directory.join(path.file_stem().expect("stem"));
    std::fs::write(&target, bytes).expect("write unpacked");
    target
}

fn readme_name(abbreviation: &str) -> String {
    match abbreviation {
        "FDE" => "FORMAT_DESCRIPTION".into(),
        "PREV_GTIDS" => "PREVIOUS_GTIDS".into(),
        "ANON_GTID" => "ANONYMOUS_GTID".into(),
        "TRX_PAYLOAD" => "TRANSACTION_PAYLOAD".into(),
        "TYPE_100" => event_type_name(100).into(),
        other => other.into(),
    }
}

#[test]
fn every_fixture_reads_with_the_counts_its_readme_lists() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let readme = std::fs::read_to_string(directory.join("README.md")).expect("README");
    let scratch = tempfile::tempdir().expect("temp dir");
    let mut checked = 0;
    for line in readme.lines().filter(|line| line.starts_with("| `")) {
        let columns: Vec<&str> = line.split('|').collect();
        let name = columns[1].trim().trim_matches('`');
        let listed = columns[5].trim();
        let (counted, trailing) = listed.split_once(';').unwrap_or((listed, ""));
        let (counted, inside) = counted.split_once('[').unwrap_or((counted, ""));
        let parse_counts = |text: &str| {
            let mut counts = BTreeMap::new();
            for part in text
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
            {
                let (abbreviation, count) = part.rsplit_once(' ').expect("NAME count");
                counts.insert(
                    readme_name(abbreviation),
                    count.parse::<u64>().expect("count"),
                );
            }
            counts
        };
        let expected = parse_counts(counted);
        let expected_inside = parse_counts(
            inside
                .trim_start_matches("inside payload:")
                .trim_end_matches(']'),
        );
        let mut path = directory.join(name);
        if name.ends_with(".gz") {
            path = unpacked(&path, scratch.path());
        }
        let result = read_all(&path);
        assert_eq!(result.counts, expected, "{name}");
        assert_eq!(
            result.payload_counts, expected_inside,
            "{name}: events inside payloads"
        );
        let trailing_bytes = trailing
            .split_whitespace()
            .next()
            .and_then(|count| count.parse::<u64>().ok());
        assert_eq!(
            result.partial, trailing_bytes,
            "{name}: trailing partial event"
        );
        checked += 1;
    }
    assert!(checked >= 55, "checked {checked} fixtures");
}

#[test]
fn positions_chain_and_gtids_decode_as_the_servers_wrote_them() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    // Each event ends where its header says (binlogs, not relay logs, which keep source positions).
    for name in [
        "my57_21-multi-schema-crc32.binlog",
        "my57_40-gtid-emoji.binlog",
        "ps84_10-rotation/binlog.000003",
    ] {
        for (offset, event) in read_all(&directory.join(name)).events {
            assert_eq!(
                u64::from(event.header.log_position),
                offset + u64::from(event.header.event_size),
                "{name} at {offset}"
            );
        }
    }

    let previous = |name: &str| {
        read_all(&directory.join(name))
            .events
            .into_iter()
            .find_map(|(_, event)| match event.data {
                EventData::PreviousGtids(set) => Some(set.to_string()),
                _ => None,
            })
            .expect("a PREVIOUS_GTIDS event")
    };
    assert_eq!(
        previous("my80_40-prev-gtids-untagged.binlog"),
        "b9b88c66-0755-11f1-9899-4a9da94c4d71:1-2"
    );
    // MySQL 9.6, tagged format: untagged 1-13 and tag `mytag` 1-2 of one server.
    assert_eq!(
        previous("my96_0-gtid-tagged.binlog"),
        "55778904-0299-11f1-b1b8-4ef0c4956feb:1-13:mytag:1-2"
    );

    // MySQL 9.6's tagged GTID event (type 42): the transaction after PREVIOUS_GTIDS' mytag:1-2.
    let tagged = read_all(&directory.join("my96_0-gtid-tagged.binlog"))
        .events
        .into_iter()
        .find_map(|(_, event)| match event.data {
            EventData::MySqlGtid {
                gtid,
                last_committed,
                sequence_number,
            } => Some((gtid.to_string(), last_committed, sequence_number)),
            _ => None,
        });
    assert_eq!(
        tagged,
        Some((
            "55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3".to_owned(),
            Some(0),
            Some(1)
        ))
    );

    // 5.7 GTID stream: PREVIOUS_GTIDS 1-52, then transactions 53..62 of the same server.
    let result = read_all(&directory.join("my57_40-gtid-emoji.binlog"));
    let mut transactions = Vec::new();
    let mut prefix = String::new();
    for (_, event) in &result.events {
        match &event.data {
            EventData::PreviousGtids(set) => prefix = set.to_string(),
            EventData::MySqlGtid {
                gtid,
                sequence_number,
                ..
            } => {
                assert!(
                    sequence_number.is_some(),
                    "5.7 GTID events carry the logical clock"
                );
                transactions.push(gtid.transaction);
                assert!(
                    prefix.starts_with(&gtid.source.to_string()),
                    "{prefix} / {gtid}"
                );
            }
            _ => {}
        }
    }
    assert!(prefix.ends_with(":1-52"), "{prefix}");
    assert_eq!(transactions, (53..=62).collect::<Vec<u64>>());

    // MySQL 5.6's shorter GTID event (no logical clock).
    let result = read_all(&directory.join("my56_41-gtid.binlog"));
    let clocks: Vec<Option<i64>> = result
        .events
        .iter()
        .filter_map(|(_, event)| match &event.data {
            EventData::MySqlGtid {
                sequence_number, ..
            } => Some(*sequence_number),
            _ => None,
        })
        .collect();
    assert_eq!(clocks.len(), 6);
    assert!(clocks.iter().all(Option::is_none));

    // Rotation chain: each file's ROTATE names the next file.
    let rotate = read_all(&directory.join("ps84_10-rotation/binlog.000002"))
        .events
        .into_iter()
        .find_map(|(_, event)| match event.data {
            EventData::Rotate {
                next_file,
                position,
            } => Some((next_file, position)),
            _ => None,
        });
    assert_eq!(rotate, Some(("binlog.000003".to_owned(), 4)));
}

#[test]
fn a_damaged_event_fails_its_checksum_naming_the_position() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let mut bytes =
        std::fs::read(directory.join("my57_21-multi-schema-crc32.binlog")).expect("read");
    let result = read_all(&directory.join("my57_21-multi-schema-crc32.binlog"));
    let (offset, event) = &result.events[5];
    // Flip one byte inside the sixth event's body.
    bytes[*offset as usize + 25] ^= 0x40;
    let scratch = tempfile::tempdir().expect("temp dir");
    let damaged = scratch.path().join("damaged.000001");
    std::fs::write(&damaged, bytes).expect("write");
    let mut reader = BinlogFileReader::open(&damaged).expect("open");
    let error = loop {
        match reader.read_next() {
            Ok(Read::Event { .. }) => {}
            Ok(other) => panic!("expected a checksum error, got {other:?}"),
            Err(error) => break error,
        }
    };
    let message = error.to_string();
    assert!(
        message.contains(&format!("damaged.000001:{offset}")) && message.contains("checksum"),
        "{message} (event {})",
        event_type_name(event.header.event_type)
    );
}
