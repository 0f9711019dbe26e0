//! Files still being written, and bytes that are not a binlog at all.
//!
//! - A reader tailing a file that grows in arbitrary pieces sees exactly the events of the whole
//!   file, in order: an incomplete last event is "partial, wait", never an error or a panic.
//! - Random bytes and mutated real events (with their checksum and size fixed up, so that the
//!   body decoders run) never panic: every failure is an error naming the position.

use std::io::Write as _;

use dm_binlog::{BinlogFileReader, EventDecoder, Read};
use dm_testkit::{or_skip, shared_fixture};
use proptest::prelude::*;

fn fixture(name: &str) -> Option<Vec<u8>> {
    let directory = shared_fixture("mysql-binlog").ok()?;
    std::fs::read(directory.join(name)).ok()
}

fn events_of(path: &std::path::Path) -> Vec<(u64, dm_binlog::Event)> {
    let mut reader = BinlogFileReader::open(path).expect("open");
    let mut events = Vec::new();
    while let Read::Event { offset, event } = reader.read_next().expect("decode") {
        events.push((offset, event));
    }
    events
}

#[test]
fn a_tailing_reader_sees_every_event_of_a_growing_file() {
    let directory = or_skip!(shared_fixture("mysql-binlog"));
    let source = directory.join("my57_21-multi-schema-crc32.binlog");
    let whole = std::fs::read(&source).expect("read");
    let expected = events_of(&source);
    let scratch = tempfile::tempdir().expect("temp dir");
    let growing = scratch.path().join("mysql-bin.000001");
    let mut file = std::fs::File::create(&growing).expect("create");
    // The magic first (a reader opens a file once it has started).
    file.write_all(&whole[..4]).expect("write");
    let mut reader = BinlogFileReader::open(&growing).expect("open");
    let mut seen = Vec::new();
    let mut written = 4;
    let mut step = 1;
    let mut partials = 0;
    while written < whole.len() {
        step = (step * 7 + 13) % 211 + 1;
        let end = (written + step).min(whole.len());
        file.write_all(&whole[written..end]).expect("append");
        file.flush().expect("flush");
        written = end;
        loop {
            match reader.read_next().expect("no error while tailing") {
                Read::Event { offset, event } => seen.push((offset, event)),
                Read::Partial { offset, available } => {
                    assert_eq!(offset, reader.offset());
                    assert!(available < u64::from(u32::MAX));
                    partials += 1;
                    break;
                }
                Read::End => break,
            }
        }
    }
    assert_eq!(seen, expected, "same events as reading the finished file");
    assert!(
        partials > 100,
        "the file was read while incomplete ({partials} times)"
    );
}

#[test]
fn a_file_that_is_not_a_binlog_is_refused() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let path = scratch.path().join("notes.txt");
    std::fs::write(&path, b"hello, not a binlog").expect("write");
    let error = BinlogFileReader::open(&path).expect_err("not a binlog");
    assert!(
        error.to_string().contains("is not a binlog file"),
        "{error}"
    );
}

/// Real events with the decoder state they are decoded in: (decoder after the format event,
/// event bytes, offset).
fn real_events() -> Vec<(EventDecoder, Vec<u8>, u64)> {
    let mut out = Vec::new();
    for name in [
        "my57_21-multi-schema-crc32.binlog",
        "my80_28-enum-set-char-full-meta.binlog",
        "my96_0-gtid-tagged.binlog",
        // TRANSACTION_PAYLOAD: mutations reach the zstd decoder and the inner events.
        "my80_31-payload-json-gtid.binlog",
    ] {
        let Some(bytes) = fixture(name) else { continue };
        let mut decoder = EventDecoder::new(name);
        let mut offset = 4usize;
        while let Ok(dm_binlog::Frame::Complete { length }) = dm_binlog::frame(&bytes[offset..]) {
            let event = bytes[offset..offset + length].to_vec();
            if decoder.decode(&event, offset as u64).is_err() {
                break;
            }
            out.push((decoder.clone(), event, offset as u64));
            offset += length;
        }
    }
    out
}

proptest! {
    // 10^5 mutated events in CI, as the issue asks; PROPTEST_CASES does not lower it.
    #![proptest_config(ProptestConfig { cases: 100_000, ..ProptestConfig::default() })]

    /// Mutated real events, size and checksum fixed up: the decoders of every event type meet
    /// wrong lengths, counts and bytes, and never panic.
    #[test]
    fn mutated_events_never_panic(
        pick in any::<prop::sample::Index>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let events = real_events_cached();
        prop_assume!(!events.is_empty());
        let (decoder, bytes, offset) = &events[pick.index(events.len())];
        let mut event = bytes.clone();
        for (index, byte) in mutations {
            let position = 19 + index.index(event.len().saturating_sub(23).max(1));
            if position < event.len() {
                event[position] = byte;
            }
        }
        if truncate && event.len() > 24 {
            let keep = 23 + cut.index(event.len() - 23);
            event.truncate(keep);
        }
        let length = event.len() as u32;
        event[9..13].copy_from_slice(&length.to_le_bytes());
        if decoder.format().checksum && event.len() >= 23 {
            let split = event.len() - 4;
            let crc = crc32fast::hash(&event[..split]);
            event[split..].copy_from_slice(&crc.to_le_bytes());
        }
        let mut decoder = decoder.clone();
        if let Err(error) = decoder.decode(&event, *offset) {
            prop_assert!(error.to_string().contains(&format!(":{offset}")), "{error}");
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Arbitrary bytes: framing and decoding never panic.
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = dm_binlog::frame(&bytes);
        let mut decoder = EventDecoder::new("random");
        let _ = decoder.decode(&bytes, 4);
    }
}

fn real_events_cached() -> &'static [(EventDecoder, Vec<u8>, u64)] {
    static EVENTS: std::sync::OnceLock<Vec<(EventDecoder, Vec<u8>, u64)>> =
        std::sync::OnceLock::new();
    EVENTS.get_or_init(real_events)
}
