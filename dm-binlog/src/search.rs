//! `--start-time`: the first transaction at or after a point in time, found by a binary search
//! over the upstream's binlog files (by the time of each file's first transaction), then a scan
//! of the one file where it must be.
//!
//! ```text
//! SHOW BINARY LOGS -> [f1, f2, ..., fn]
//! binary search: last file whose first transaction is at or before the time  (one short read each)
//! scan it (and the next files if needed): first transaction start with timestamp >= time
//! ```
//!
//! Event timestamps are the upstream's (seconds, its clock). A transaction's time is its first
//! event's; the result is always a transaction boundary, so a stream started there is whole.
//! [`parse_start_time`] reads the time as tools take it: unix seconds, or DM's
//! `'YYYY-MM-DD hh:mm:ss'` (UTC).

use dm_core::{BinlogPosition, Location};

use crate::error::BinlogError;
use crate::event::EventData;
use crate::location::LocationTracker;
use crate::remote::{RemoteOptions, RemoteSource, list_binary_logs};
use crate::stream::StartPoint;

/// Whether an event starts a transaction (and is not file bookkeeping).
fn starts_transaction(data: &EventData) -> bool {
    matches!(
        data,
        EventData::MySqlGtid { .. }
            | EventData::MariaDbGtid { .. }
            | EventData::AnonymousGtid
            | EventData::Query { .. }
    )
}

fn probe_options(options: &RemoteOptions) -> RemoteOptions {
    let mut probe = options.clone();
    probe.stop_at_end = true;
    probe.replica_name = format!("{}-time-search", options.replica_name);
    probe
}

/// The time of the first transaction of `file`, or `None` when it has none.
async fn first_transaction_time(
    options: &RemoteOptions,
    file: &str,
) -> Result<Option<u32>, BinlogError> {
    let start = StartPoint::Position(BinlogPosition::parse(&format!("{file}:4")).map_err(
        |error| BinlogError::Unsupported {
            address: options.address(),
            reason: error.to_string(),
        },
    )?);
    let mut source = RemoteSource::connect(options, &start).await?;
    let mut found = None;
    while let Some(event) = source.next_event().await? {
        if event.artificial {
            continue;
        }
        if event.position.file.to_string() != file {
            break;
        }
        if starts_transaction(&event.event.data) {
            found = Some(event.event.header.timestamp);
            break;
        }
    }
    source.close().await;
    Ok(found)
}

/// A `--start-time` value: unix seconds, or `YYYY-MM-DD hh:mm:ss` (DM's form; a `T` may
/// separate date and time) read as UTC; `None` when it is neither.
pub fn parse_start_time(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u32>() {
        return Some(seconds);
    }
    let (date, time) = text.split_once([' ', 'T'])?;
    let numbers = |part: &str, separator: char| -> Option<Vec<i64>> {
        part.trim()
            .split(separator)
            .map(|number| number.parse::<i64>().ok())
            .collect()
    };
    let [year, month, day] = <[i64; 3]>::try_from(numbers(date, '-')?).ok()?;
    let [hour, minute, second] = <[i64; 3]>::try_from(numbers(time, ':')?).ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    u32::try_from(days * 86_400 + hour * 3_600 + minute * 60 + second).ok()
}

/// The position of the first transaction whose first event is at or after `time` (unix
/// seconds); `None` when every transaction is older (start at the end of the binlog).
pub async fn find_start_by_time(
    options: &RemoteOptions,
    time: u32,
) -> Result<Option<BinlogPosition>, BinlogError> {
    let options = probe_options(options);
    let files = list_binary_logs(&options).await?;
    if files.is_empty() {
        return Ok(None);
    }
    // The last file whose first transaction is at or before `time` (files are in time order);
    // files without transactions are skipped over towards older ones.
    let (mut low, mut high) = (0usize, files.len());
    while high - low > 1 {
        let middle = (low + high) / 2;
        match first_transaction_time(&options, &files[middle].0).await? {
            Some(first) if first <= time => low = middle,
            Some(_) => high = middle,
            None => {
                // No transaction in the middle file: decide by the files after it.
                let mut later = None;
                for (name, _) in &files[middle + 1..high] {
                    if let Some(first) = first_transaction_time(&options, name).await? {
                        later = Some(first);
                        break;
                    }
                }
                match later {
                    Some(first) if first <= time => low = middle,
                    _ => high = middle,
                }
            }
        }
    }
    // Scan from that file to the first transaction start at or after `time`.
    let start = BinlogPosition::parse(&format!("{}:4", files[low].0)).map_err(|error| {
        BinlogError::Unsupported {
            address: options.address(),
            reason: error.to_string(),
        }
    })?;
    let mut source = RemoteSource::connect(&options, &StartPoint::Position(start.clone())).await?;
    let mut tracker = LocationTracker::new(Location::from_position(start));
    let mut found = None;
    while let Some(event) = source.next_event().await? {
        let between_transactions = !tracker.in_transaction();
        tracker.observe(&event);
        if !event.artificial
            && between_transactions
            && starts_transaction(&event.event.data)
            && event.event.header.timestamp >= time
        {
            found = Some(event.position);
            break;
        }
    }
    source.close().await;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::parse_start_time;

    #[test]
    fn start_times_read_as_unix_seconds_or_dm_dates() {
        assert_eq!(parse_start_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_start_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(parse_start_time("2026-11-24 08:00:00"), Some(1_795_507_200));
        assert_eq!(parse_start_time("2026-11-24T08:00:00"), Some(1_795_507_200));
        assert_eq!(parse_start_time(" 2000-02-29 23:59:59 "), Some(951_868_799));
        assert_eq!(parse_start_time("2026-13-01 00:00:00"), None);
        assert_eq!(parse_start_time("yesterday"), None);
        assert_eq!(parse_start_time("2026-11-24"), None);
    }
}
