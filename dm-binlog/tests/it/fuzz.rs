//! Fuzzed binlog bytes (issue 18, item 6): real MySQL binlogs from the shared fixtures, mutated
//! (bit flips, truncations, event-length fields set out of range, length and count fields set to
//! extreme values with the checksum fixed up so that the body decoders meet them, bytes deleted
//! or repeated), read through every decoding path: the file reader (which the relay reader
//! uses), the event decoder, the row decoder (values, JSON, table-map metadata), and the
//! replica-protocol client streaming from dm-testkit's scripted MySQL source.
//!
//! Each case must end without a panic, with a classed error (`class()`, a DM-11xxx `code()`) or
//! a result, and holding at no moment more than [`allocation_bound`] bytes (measured by the
//! counting allocator of this test binary). `catch_unwind` only reports a panic with the input
//! that caused it; a panic fails the test.
//!
//! Cases: `DM_FUZZ_CASES` (default 100 000) is the total across the fuzz tests of dm-binlog and
//! dm-task; each test runs its share. `DM_FUZZ_SEED` changes the inputs (default fixed, so a CI
//! run is repeatable). A long run (`cargo test`: nextest's timeout would stop it):
//! `DM_FUZZ_CASES=10000000 DM_FUZZ_SEED=$RANDOM cargo test -p dm-binlog -p dm-task --test it
//! fuzz_ -- --nocapture` (README, "Fuzzing").
//!
//! Regressions found by these tests are at the end of this file, as bytes.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dm_binlog::{
    BinlogError, BinlogFileReader, EventData, EventDecoder, Frame, Read, RemoteOptions,
    RemoteSource, RowsEvent, StartPoint, TableMap, decode_rows, frame, schema_from_table_map,
};
use dm_core::{BinlogPosition, ClassifiedError};
use dm_testkit::{FakeMySqlScript, FakeMySqlSource, or_skip, shared_fixture};

use dm_testkit::fuzz::{Random, allocation_bound, cases, peak_of, seed};

/// A binlog fixture and where its events are.
struct Fixture {
    name: String,
    bytes: Vec<u8>,
    /// (offset, length) of each event, the format description first.
    events: Vec<(usize, usize)>,
    checksum: bool,
}

fn binlog_paths(directory: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            binlog_paths(&path, out);
        } else if name.ends_with(".binlog")
            || (name.starts_with("binlog.0") && !name.ends_with(".index"))
        {
            out.push(path);
        }
    }
}

fn fixtures(directory: &Path) -> Vec<Fixture> {
    let mut paths = Vec::new();
    binlog_paths(directory, &mut paths);
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path).expect("read fixture");
        if bytes.len() < 4 + 19 || bytes[..4] != [0xfe, b'b', b'i', b'n'] {
            continue;
        }
        let mut events = Vec::new();
        let mut offset = 4;
        while let Ok(Frame::Complete { length }) = frame(&bytes[offset..]) {
            events.push((offset, length));
            offset += length;
        }
        if events.len() < 2 {
            continue;
        }
        let mut decoder = EventDecoder::new("fixture");
        let (start, length) = events[0];
        if decoder.decode(&bytes[start..start + length], 4).is_err() {
            continue;
        }
        out.push(Fixture {
            name: path
                .strip_prefix(directory)
                .unwrap_or(&path)
                .display()
                .to_string(),
            checksum: decoder.format().checksum,
            bytes,
            events,
        });
    }
    assert!(
        !out.is_empty(),
        "no binlog fixtures in {}",
        directory.display()
    );
    out
}

/// Values that break length and count fields, in the widths fields have.
fn hostile_value(random: &mut Random) -> Vec<u8> {
    match random.below(12) {
        0 => vec![0xff],
        1 => vec![0xff, 0xff],
        2 => vec![0xff, 0xff, 0xff],
        3 => vec![0xff, 0xff, 0xff, 0xff],
        4 => vec![0xff, 0xff, 0xff, 0x7f],
        5 => vec![0xff; 8],
        // Length-encoded integers: 2, 3 and 8 bytes, and the invalid 0xff prefix.
        6 => vec![0xfc, 0xff, 0xff],
        7 => vec![0xfd, 0xff, 0xff, 0xff],
        8 => {
            let mut value = vec![0xfe];
            value.extend_from_slice(&u64::MAX.to_le_bytes());
            value
        }
        9 => vec![0x00],
        10 => vec![0x00, 0x00, 0x00, 0x40],
        _ => (random.number() as u32).to_le_bytes().to_vec(),
    }
}

/// Event-size values out of range: below the header, off by one, at and past MySQL's limit, ~4 GiB.
fn hostile_event_size(random: &mut Random, real: usize) -> u32 {
    match random.below(12) {
        0 => 0,
        1 => 18,
        2 => 19,
        3 => real.saturating_sub(1) as u32,
        4 => real as u32 + 1,
        5 => real as u32 + 1000,
        6 => 1 << 30,
        7 => (1 << 30) + 1,
        8 => 0x7fff_ffff,
        9 => 0xffff_fff0,
        10 => u32::MAX,
        _ => random.number() as u32,
    }
}

/// Recomputes the CRC32 of every whole event of `bytes` framed as `events` (the original
/// framing, shifted by nothing: only same-length mutations are fixed up).
fn fix_checksums(bytes: &mut [u8], events: &[(usize, usize)]) {
    for &(offset, length) in events {
        let end = offset + length;
        if end <= bytes.len() && length >= 23 {
            let crc = crc32fast::hash(&bytes[offset..end - 4]);
            bytes[end - 4..end].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// A binlog built from a fixture: its format description and a window of its events, mutated.
/// Returns the bytes and what was done (for the report).
fn mutated_file(fixture: &Fixture, random: &mut Random) -> (Vec<u8>, String) {
    let (fde_offset, fde_length) = fixture.events[0];
    let whole = random.chance(40);
    let (first, count) = if whole {
        (1, fixture.events.len() - 1)
    } else {
        let first = 1 + random.below(fixture.events.len() - 1);
        let count = (1 + random.below(6)).min(fixture.events.len() - first);
        (first, count)
    };
    let mut bytes = fixture.bytes[..4].to_vec();
    let mut events = vec![(4, fde_length)];
    bytes.extend_from_slice(&fixture.bytes[fde_offset..fde_offset + fde_length]);
    for &(offset, length) in &fixture.events[first..first + count] {
        events.push((bytes.len(), length));
        bytes.extend_from_slice(&fixture.bytes[offset..offset + length]);
    }
    let mut what = format!(
        "{} events {first}..{} ({} bytes): ",
        fixture.name,
        first + count,
        bytes.len()
    );
    let mutations = 1 + random.below(3);
    for _ in 0..mutations {
        let (target, target_length) = events[random.below(events.len())];
        match random.below(7) {
            0 => {
                let flips = 1 + random.below(4);
                for _ in 0..flips {
                    let position = 4 + random.below(bytes.len() - 4);
                    bytes[position] ^= 1 << random.below(8);
                }
                what.push_str(&format!("{flips} bit flips; "));
            }
            1 => {
                let keep = 4 + random.below(bytes.len() - 4);
                bytes.truncate(keep);
                what.push_str(&format!("cut at {keep}; "));
                break;
            }
            2 => {
                let size = hostile_event_size(random, target_length);
                if target + 13 <= bytes.len() {
                    bytes[target + 9..target + 13].copy_from_slice(&size.to_le_bytes());
                }
                if random.chance(2) {
                    fix_checksums(&mut bytes, &events);
                }
                what.push_str(&format!("event at {target}: size {size}; "));
            }
            3 | 4 => {
                let value = hostile_value(random);
                let body = target + 19;
                let end = (target + target_length).min(bytes.len());
                if body + value.len() <= end {
                    let position = body + random.below(end - body - value.len() + 1);
                    bytes[position..position + value.len()].copy_from_slice(&value);
                    what.push_str(&format!("{value:02x?} at {position}; "));
                }
                fix_checksums(&mut bytes, &events);
            }
            5 => {
                let count = 1 + random.below(8);
                let position = 4 + random.below(bytes.len() - 4);
                for index in position..(position + count).min(bytes.len()) {
                    bytes[index] = random.number() as u8;
                }
                fix_checksums(&mut bytes, &events);
                what.push_str(&format!("{count} random bytes at {position}; "));
            }
            _ => {
                let start = 4 + random.below(bytes.len() - 4);
                let length = 1 + random.below(64).min(bytes.len() - start - 1);
                if random.chance(2) {
                    bytes.drain(start..start + length);
                    what.push_str(&format!("{length} bytes at {start} deleted; "));
                } else {
                    let copy = bytes[start..start + length].to_vec();
                    bytes.splice(start..start, copy);
                    what.push_str(&format!("{length} bytes at {start} repeated; "));
                }
                break;
            }
        }
        if bytes.len() <= 4 {
            break;
        }
    }
    (bytes, what)
}

/// Every failure is a classed dm-binlog error: a class, a DM-11xxx code, a message.
fn check_classed(error: &BinlogError, what: &str) {
    let _class = error.class();
    let code = error.code().0;
    assert!(
        (11001..12000).contains(&code),
        "{what}: error without a dm-binlog code ({code}): {error}"
    );
    assert!(!error.to_string().is_empty(), "{what}: empty message");
    assert!(!error.workaround().is_empty(), "{what}: no workaround");
}

/// Decodes the rows of every rows event whose table map came before it, with the schema the
/// map describes; returns how many rows decoded.
fn decode_rows_of(maps: &HashMap<u64, TableMap>, rows: &RowsEvent) -> Result<usize, BinlogError> {
    let Some(map) = maps.get(&rows.table_id) else {
        return Ok(0);
    };
    let schema = schema_from_table_map(map)?;
    Ok(decode_rows(rows, map, &schema)?.len())
}

/// Reads a file to its end, decoding rows as `binlog-dump --file` does. Errors are returned.
fn read_file(path: &Path, what: &str) -> Result<(), BinlogError> {
    let mut reader = BinlogFileReader::open(path)?;
    let mut maps = HashMap::new();
    // Far more than any window has events: a reader that stops advancing fails here.
    for _ in 0..100_000 {
        match reader.read_next()? {
            Read::Event { event, .. } => {
                let mut events = vec![event];
                while let Some(event) = events.pop() {
                    match event.data {
                        EventData::TableMap(map) => {
                            maps.insert(map.table_id, map);
                        }
                        EventData::Rows(rows) => {
                            if let Err(error) = decode_rows_of(&maps, &rows) {
                                check_classed(&error, what);
                            }
                        }
                        EventData::TransactionPayload { events: inner, .. } => {
                            events.extend(inner.into_iter().rev());
                        }
                        _ => {}
                    }
                }
            }
            Read::Partial { .. } | Read::End => return Ok(()),
        }
    }
    panic!("{what}: the reader did not reach the end of a small file");
}

/// Runs one case: no panic (reported with the input), bounded allocation, classed errors.
fn run_case(
    what: &str,
    input: &[u8],
    tally: &mut Tally,
    work: impl FnOnce() -> Result<(), BinlogError>,
) -> usize {
    let (outcome, peak) = peak_of(|| std::panic::catch_unwind(AssertUnwindSafe(work)));
    match outcome {
        Ok(Ok(())) => tally.count("ok"),
        Ok(Err(error)) => {
            check_classed(&error, what);
            tally.count(&format!("DM-{}", error.code().0));
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            panic!(
                "{what}: panicked ({message}) on {} bytes:\n{}",
                input.len(),
                hex(input)
            );
        }
    }
    assert!(
        peak <= allocation_bound(input.len()),
        "{what}: held {peak} bytes at once for {} bytes of input:\n{}",
        input.len(),
        hex(input)
    );
    peak
}

/// How the cases of a test ended (printed with its timing).
#[derive(Default)]
struct Tally(std::collections::BTreeMap<String, u64>);

impl Tally {
    fn count(&mut self, outcome: &str) {
        *self.0.entry(outcome.to_owned()).or_default() += 1;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(outcome, count)| format!("{outcome} {count}"))
            .collect();
        write!(formatter, "{}", parts.join(", "))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(4096)];
    let mut text: String = shown.iter().map(|byte| format!("{byte:02x}")).collect();
    if shown.len() < bytes.len() {
        text.push_str("...");
    }
    text
}

fn from_hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|digit| (digit as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

/// Mutated binlog files through the file reader (framing, checksums, every event decoder) and
/// the row decoder, as `binlog-dump --file` reads them; the relay reader reads with the same
/// file reader.
#[test]
fn fuzz_binlog_files_through_the_reader_and_the_row_decoder() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let fixtures = fixtures(&directory);
    let cases = cases(0.30);
    // In memory when the system has a tmpfs: rewriting a file on ext4 flushes it to the disk
    // each time (auto_da_alloc), which would make this test wait on the disk.
    let scratch = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temp dir");
    let path = scratch.path().join("mysql-bin.000001");
    let mut random = Random::new(seed());
    let started = Instant::now();
    let mut highest = 0;
    let mut tally = Tally::default();
    for case in 0..cases {
        let fixture = &fixtures[random.below(fixtures.len())];
        let (bytes, what) = mutated_file(fixture, &mut random);
        std::fs::write(&path, &bytes).expect("write case");
        let what = format!("case {case}: {what}");
        let peak = run_case(&what, &bytes, &mut tally, || read_file(&path, &what));
        highest = highest.max(peak);
    }
    eprintln!(
        "{cases} mutated files in {:.1?}, at most {highest} bytes held at once; {tally}",
        started.elapsed()
    );
}

/// Real events decoded alone, with their size and checksum fixed up after extreme values were
/// written over their length and count fields: every body decoder meets them.
#[test]
fn fuzz_events_with_extreme_length_fields() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let fixtures = fixtures(&directory);
    // (decoder in the state after the events before, event bytes, offset)
    let mut events = Vec::new();
    for fixture in &fixtures {
        let mut decoder = EventDecoder::new(fixture.name.clone());
        for &(offset, length) in &fixture.events {
            let bytes = &fixture.bytes[offset..offset + length];
            let before = decoder.clone();
            if decoder.decode(bytes, offset as u64).is_err() {
                break;
            }
            events.push((before, bytes.to_vec(), offset as u64, fixture.checksum));
        }
    }
    let cases = cases(0.25);
    let mut random = Random::new(seed() ^ 0xe7e7);
    let started = Instant::now();
    let mut highest = 0;
    let mut tally = Tally::default();
    for case in 0..cases {
        let (decoder, original, offset, checksum) = &events[random.below(events.len())];
        let mut event = original.clone();
        let mutations = 1 + random.below(3);
        for _ in 0..mutations {
            let value = hostile_value(&mut random);
            if event.len() > 19 + value.len() {
                let position = 19 + random.below(event.len() - 19 - value.len());
                event[position..position + value.len()].copy_from_slice(&value);
            }
        }
        if random.chance(4) && event.len() > 20 {
            let keep = 19 + random.below(event.len() - 19);
            event.truncate(keep);
        }
        let length = event.len() as u32;
        event[9..13].copy_from_slice(&length.to_le_bytes());
        if *checksum && event.len() >= 23 {
            let split = event.len() - 4;
            let crc = crc32fast::hash(&event[..split]);
            event[split..].copy_from_slice(&crc.to_le_bytes());
        }
        let what = format!("case {case}: event at {offset}");
        let mut decoder = decoder.clone();
        let peak = run_case(&what, &event, &mut tally, || {
            let decoded = decoder.decode(&event, *offset)?;
            if let EventData::TableMap(map) = &decoded.data {
                schema_from_table_map(map)?;
            }
            Ok(())
        });
        highest = highest.max(peak);
    }
    eprintln!(
        "{cases} mutated events in {:.1?}, at most {highest} bytes held at once; {tally}",
        started.elapsed()
    );
}

/// The table maps and rows events of the fixtures (those inside compressed payloads too), in
/// pairs: each rows event with the map it refers to.
fn rows_with_maps(fixtures: &[Fixture]) -> Vec<(TableMap, RowsEvent)> {
    let mut pairs = Vec::new();
    for fixture in fixtures {
        let mut decoder = EventDecoder::new(fixture.name.clone());
        let mut maps = HashMap::new();
        for &(offset, length) in &fixture.events {
            let Ok(event) = decoder.decode(&fixture.bytes[offset..offset + length], offset as u64)
            else {
                break;
            };
            let mut events = vec![event];
            while let Some(event) = events.pop() {
                match event.data {
                    EventData::TableMap(map) => {
                        maps.insert(map.table_id, map);
                    }
                    EventData::Rows(rows) => {
                        if let Some(map) = maps.get(&rows.table_id) {
                            pairs.push((map.clone(), rows));
                        }
                    }
                    EventData::TransactionPayload { events: inner, .. } => {
                        events.extend(inner.into_iter().rev());
                    }
                    _ => {}
                }
            }
        }
    }
    pairs
}

/// Writes a hostile value, random bytes or bit flips somewhere in `bytes`, or cuts it.
fn mutate_bytes(bytes: &mut Vec<u8>, random: &mut Random) {
    if bytes.is_empty() {
        bytes.extend_from_slice(&hostile_value(random));
        return;
    }
    match random.below(5) {
        0 => {
            let value = hostile_value(random);
            let position = random.below(bytes.len());
            for (index, byte) in value.into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(position + index) {
                    *slot = byte;
                }
            }
        }
        1 => {
            let position = random.below(bytes.len());
            bytes[position] ^= 1 << random.below(8);
        }
        2 => {
            let keep = random.below(bytes.len());
            bytes.truncate(keep);
        }
        3 => {
            let position = random.below(bytes.len());
            bytes[position] = random.number() as u8;
        }
        _ => {
            let position = random.below(bytes.len() + 1);
            let value = hostile_value(random);
            bytes.splice(position..position, value);
        }
    }
}

/// Real rows events and their table maps, mutated: the row images (values, JSON documents and
/// partial-JSON diffs), the column types and metadata of the map, its optional metadata, the
/// column bitmaps. Decoded with the schema the mutated map describes and with the original
/// one (a tracked schema that no longer matches the bytes).
#[test]
fn fuzz_row_images_and_table_maps() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let fixtures = fixtures(&directory);
    let pairs = rows_with_maps(&fixtures);
    assert!(pairs.len() > 20, "only {} rows events", pairs.len());
    let cases = cases(0.30);
    let mut random = Random::new(seed() ^ 0x7017);
    let started = Instant::now();
    let mut highest = 0;
    let mut tally = Tally::default();
    for case in 0..cases {
        let (original_map, original_rows) = &pairs[random.below(pairs.len())];
        let mut map = original_map.clone();
        let mut rows = original_rows.clone();
        let mutations = 1 + random.below(3);
        for _ in 0..mutations {
            match random.below(10) {
                0..=4 => mutate_bytes(&mut rows.rows, &mut random),
                5 => mutate_bytes(&mut map.column_metadata, &mut random),
                6 => mutate_bytes(&mut map.optional_metadata, &mut random),
                7 if random.chance(4) => {
                    let keep = random.below(map.column_types.len() + 1);
                    map.column_types.truncate(keep);
                }
                7 => {
                    if !map.column_types.is_empty() {
                        let index = random.below(map.column_types.len());
                        map.column_types[index] = random.number() as u8;
                    }
                }
                8 => mutate_bytes(&mut rows.columns_present, &mut random),
                _ => rows.partial_json = !rows.partial_json,
            }
        }
        let what = format!("case {case}: rows of {}.{}", map.schema, map.table);
        let mut input_bytes = rows.rows.clone();
        input_bytes.extend_from_slice(&map.column_metadata);
        input_bytes.extend_from_slice(&map.optional_metadata);
        input_bytes.extend_from_slice(&map.column_types);
        let peak = run_case(&what, &input_bytes, &mut tally, || {
            if let Ok(schema) = schema_from_table_map(original_map)
                && let Err(error) = decode_rows(&rows, &map, &schema)
            {
                check_classed(&error, "with the tracked schema");
            }
            let schema = schema_from_table_map(&map)?;
            decode_rows(&rows, &map, &schema)?;
            Ok(())
        });
        highest = highest.max(peak);
    }
    eprintln!(
        "{cases} mutated row images in {:.1?}, at most {highest} bytes held at once; {tally}",
        started.elapsed()
    );
}

/// A recorded stream (a real MySQL 8 binlog served by dm-testkit's scripted source) with one
/// mutated event, read by the replica-protocol client: classed errors, no panic. Each case is a
/// connection, so this test runs few cases.
#[tokio::test(flavor = "current_thread")]
async fn fuzz_a_recorded_stream_through_the_replica_client() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let bytes = std::fs::read(directory.join("my80_31-payload-json-gtid.binlog")).expect("read");
    let script = FakeMySqlScript::from_binlog_file("binlog.000001", &bytes, "pw");
    // A connection costs a login (~0.25 s in a debug build): 30 cases by default.
    let cases = cases(0.0003);
    let mut random = Random::new(seed() ^ 0x5e7e);
    let started = Instant::now();
    let mut tally = Tally::default();
    for case in 0..cases {
        let mut script = script.clone();
        let index = 1 + random.below(script.events.len() - 1);
        let mut event = script.events[index].clone();
        let mut what = format!("case {case}: event {index} ");
        match random.below(3) {
            0 => {
                let size = hostile_event_size(&mut random, event.len());
                event[9..13].copy_from_slice(&size.to_le_bytes());
                what.push_str(&format!("size {size}"));
            }
            1 => {
                mutate_bytes(&mut event, &mut random);
                what.push_str("mutated");
            }
            _ => {
                let value = hostile_value(&mut random);
                if event.len() > 23 + value.len() {
                    let position = 19 + random.below(event.len() - 23 - value.len());
                    event[position..position + value.len()].copy_from_slice(&value);
                    let length = event.len() as u32;
                    event[9..13].copy_from_slice(&length.to_le_bytes());
                    let split = event.len() - 4;
                    let crc = crc32fast::hash(&event[..split]);
                    event[split..].copy_from_slice(&crc.to_le_bytes());
                }
                what.push_str("length field");
            }
        }
        script.events[index] = event.clone();
        let source = FakeMySqlSource::start(script).await.expect("fake source");
        let mut options = RemoteOptions::new("127.0.0.1", source.port(), "repl", "pw", 9);
        options.stop_at_end = true;
        let start = StartPoint::Position(BinlogPosition::parse("binlog.000001:4").expect("start"));
        let outcome = AssertUnwindSafe(async {
            let mut stream = RemoteSource::connect(&options, &start).await?;
            while stream.next_event().await?.is_some() {}
            Ok::<(), BinlogError>(())
        });
        match futures_catch(outcome).await {
            Ok(Ok(())) => tally.count("ok"),
            Ok(Err(error)) => {
                check_classed(&error, &what);
                tally.count(&format!("DM-{}", error.code().0));
            }
            Err(message) => panic!("{what}: panicked ({message}) on:\n{}", hex(&event)),
        }
    }
    eprintln!(
        "{cases} mutated recorded streams in {:.1?}; {tally}",
        started.elapsed()
    );
}

/// Runs a future, reporting a panic as its message (the test then fails with the input).
async fn futures_catch<T>(
    future: AssertUnwindSafe<impl std::future::Future<Output = T>>,
) -> Result<T, String> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|context| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(context))) {
            Ok(std::task::Poll::Ready(value)) => std::task::Poll::Ready(Ok(value)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default())),
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Regressions: inputs that once panicked or allocated what their bytes do not justify.

/// issue 18: a real MySQL 5.7 binlog whose event header claims ~4 GiB made `binlog-dump --file`
/// allocate 4.1 GB before it reported a partial event. Now: refused before any allocation,
/// with the position and the size claimed.
#[test]
fn regression_an_event_claiming_four_gib_is_refused_without_allocating() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let mut bytes = std::fs::read(directory.join("my57_44-crud-minimal.binlog")).expect("fixture");
    // The second event (after the format description).
    let fde_length = u32::from_le_bytes([bytes[13], bytes[14], bytes[15], bytes[16]]) as usize;
    let second = 4 + fde_length;
    bytes[second + 9..second + 13].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let scratch = tempfile::tempdir().expect("temp dir");
    let path = scratch.path().join("mysql-bin.000001");
    std::fs::write(&path, &bytes).expect("write");
    let (outcome, peak) = peak_of(|| {
        let mut reader = BinlogFileReader::open(&path).expect("open");
        assert!(matches!(reader.read_next(), Ok(Read::Event { .. })));
        reader.read_next()
    });
    let error = outcome.expect_err("refused");
    assert!(
        matches!(
            error,
            BinlogError::EventTooLarge {
                size: 0xffff_fff0,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.code().0, 11012);
    assert!(error.to_string().contains(&format!(":{second}")), "{error}");
    assert!(peak < 1 << 20, "held {peak} bytes");
    // Under the limit but past the end of the file: partial, holding only what the file has.
    bytes[second + 9..second + 13].copy_from_slice(&((1u32 << 30) - 1).to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let (outcome, peak) = peak_of(|| {
        let mut reader = BinlogFileReader::open(&path).expect("open");
        assert!(matches!(reader.read_next(), Ok(Read::Event { .. })));
        reader.read_next()
    });
    assert!(matches!(outcome, Ok(Read::Partial { .. })), "{outcome:?}");
    assert!(peak < 4 << 20, "held {peak} bytes");
}

/// A server (or something pretending to be one) that announces a 16 MiB packet and sends a few
/// bytes: the client holds what arrived, not what was announced.
#[tokio::test(flavor = "current_thread")]
async fn regression_a_packet_header_alone_allocates_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream
            .write_all(&[0xff, 0xff, 0xff, 0, 10, b'8', b'.', b'0', 0])
            .await
            .expect("write");
        stream.shutdown().await.expect("close");
    });
    let options = RemoteOptions::new("127.0.0.1", port, "repl", "pw", 9);
    let start = StartPoint::Position(BinlogPosition::parse("binlog.000001:4").expect("start"));
    let mut peak = 0;
    let outcome = {
        let connect = RemoteSource::connect(&options, &start);
        let mut connect = std::pin::pin!(connect);
        std::future::poll_fn(|context| {
            let (poll, held) = peak_of(|| connect.as_mut().poll(context));
            peak = peak.max(held);
            poll
        })
        .await
    };
    server.await.expect("server");
    let error = outcome.expect_err("the server closed the connection");
    check_classed(&error, "a cut handshake");
    assert!(peak < 4 << 20, "held {peak} bytes for a 9-byte packet");
}

/// A rows event of a table map without columns: each row took no bytes, so the decoder
/// produced empty rows without end (memory grew until the process died). Now an error.
#[test]
fn regression_rows_of_a_table_without_columns_end() {
    let map = TableMap {
        table_id: 7,
        schema: "d".into(),
        table: "t".into(),
        column_types: Vec::new(),
        column_metadata: Vec::new(),
        null_bitmap: Vec::new(),
        optional_metadata: Vec::new(),
    };
    let rows = RowsEvent {
        kind: dm_binlog::RowsKind::Write,
        table_id: 7,
        flags: 0,
        column_count: 0,
        columns_present: Vec::new(),
        columns_present_after: None,
        rows: vec![0; 3],
        partial_json: false,
    };
    let schema = schema_from_table_map(&map).expect("a schema without columns");
    let (outcome, peak) = peak_of(|| decode_rows(&rows, &map, &schema));
    let error = outcome.expect_err("no rows without bytes");
    check_classed(&error, "zero columns");
    assert!(peak < 1 << 16, "held {peak} bytes");
}

/// A table map declaring BIT with 40 whole bytes: the width (`bytes * 8 + bits`) overflowed a
/// u8 (a panic in debug builds, a wrong width in release). Now an error naming the column.
#[test]
fn regression_a_bit_column_wider_than_64_bits_is_an_error() {
    let map = TableMap {
        table_id: 7,
        schema: "d".into(),
        table: "t".into(),
        column_types: vec![16],
        column_metadata: vec![0, 40],
        null_bitmap: vec![0],
        optional_metadata: Vec::new(),
    };
    let error = schema_from_table_map(&map).expect_err("BIT(320)");
    check_classed(&error, "BIT(320)");
    assert!(error.to_string().contains("BIT(64)"), "{error}");
}

/// A binary JSON document whose array entries all point at one nested array, five levels
/// deep: 3 KB that decoded to 200^5 values (memory without bound). Now refused: a document
/// decodes to no more values than it has bytes.
#[test]
fn regression_json_values_sharing_bytes_do_not_multiply() {
    const ENTRIES: usize = 200;
    const LEVELS: usize = 5;
    let level_size = 4 + 3 * ENTRIES;
    let mut document = vec![0x02];
    for level in 0..LEVELS {
        let size = (LEVELS - level) * level_size;
        document.extend_from_slice(&(ENTRIES as u16).to_le_bytes());
        document.extend_from_slice(&(size as u16).to_le_bytes());
        for _ in 0..ENTRIES {
            // Every entry: an array (or, at the deepest level, a literal) at the next level.
            if level + 1 < LEVELS {
                document.push(0x02);
                document.extend_from_slice(&(level_size as u16).to_le_bytes());
            } else {
                document.extend_from_slice(&[0x04, 1, 0]);
            }
        }
    }
    let (outcome, peak) = peak_of(|| dm_binlog::json::decode_json(&document));
    let error = outcome.expect_err("shared values");
    assert!(error.contains("share"), "{error}");
    assert!(
        peak < 1 << 20,
        "held {peak} bytes for {} bytes",
        document.len()
    );
    // The same shape without sharing (one level) decodes.
    let mut flat = vec![0x02];
    flat.extend_from_slice(&(ENTRIES as u16).to_le_bytes());
    flat.extend_from_slice(&(level_size as u16).to_le_bytes());
    for _ in 0..ENTRIES {
        flat.extend_from_slice(&[0x04, 1, 0]);
    }
    assert!(dm_binlog::json::decode_json(&flat).is_ok());
}

/// Events the fuzz tests found that failed them, each decoded as in a stream with CRC32
/// checksums (and its table map turned into a schema, as `binlog-dump` does).
#[test]
fn regression_events_found_by_fuzzing() {
    for (what, hex_bytes) in REGRESSION_EVENTS {
        let bytes = from_hex(hex_bytes);
        let mut decoder = EventDecoder::for_stream("regression", true);
        run_case(what, &bytes, &mut Tally::default(), || {
            let event = decoder.decode(&bytes, 4)?;
            if let EventData::TableMap(map) = &event.data {
                schema_from_table_map(map)?;
            }
            Ok(())
        });
    }
}

/// (what failed, the event in hex).
const REGRESSION_EVENTS: &[(&str, &str)] = &[(
    // fuzz_events_with_extreme_length_fields, case 24492 (seed 0x5eedf00d): the TABLE_MAP of
    // my80_26-bit.binlog with its BIT(8) metadata overwritten: BIT with 0xff bytes made the
    // schema's width overflow (`attempt to multiply with overflow`).
    "BIT metadata 0xff bytes",
    "8848ed611301000000460000009f03000000007c00000000000100056d7973716c0003666f6f000310fc1005\
     0300ffffff070203fcff0004060161016201630c01e08fa68665",
)];
