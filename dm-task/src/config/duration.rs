//! Go's duration text, as DM's task and source files write durations: `safe-mode-duration:
//! "60s"`, `checker.backoff-max: 5m0s`, `validators.*.row-error-delay: 30m`.
//!
//! ```text
//! "1m30s" -> 90 s      "1.5h" -> 5400 s      "300ms" -> 0.3 s      "0s" / "0" -> zero
//! "60" (no unit), "1d" (unknown unit), "-5s" (negative), "" -> Err(what is wrong)
//! ```
//!
//! A duration is one or more decimal numbers (a fraction allowed), each followed by its unit:
//! `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m`, `h`. Only `0` may stand without a unit. Go also
//! reads negative durations; no key of DM's means anything by one, so they are refused here.
//! Pure: the caller names the key in its error.

use std::time::Duration;

/// Go's largest duration (`math.MaxInt64` nanoseconds, about 292 years).
const MAX_NANOSECONDS: u128 = i64::MAX as u128;

/// Parses Go duration text such as `60s`, `1m30s` or `0s`; the error says what is wrong with it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let shown = text;
    let mut rest = text.trim();
    if let Some(unsigned) = rest.strip_prefix('+') {
        rest = unsigned;
    } else if rest.starts_with('-') {
        return Err(format!(
            "`{shown}` is negative: give a duration such as 60s"
        ));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("an empty duration: give one such as 60s or 1m30s".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let integer_end = rest
            .find(|character: char| !character.is_ascii_digit())
            .unwrap_or(rest.len());
        let (integer, after_integer) = rest.split_at(integer_end);
        let (fraction, after_number) = match after_integer.strip_prefix('.') {
            Some(after_point) => {
                let fraction_end = after_point
                    .find(|character: char| !character.is_ascii_digit())
                    .unwrap_or(after_point.len());
                after_point.split_at(fraction_end)
            }
            None => ("", after_integer),
        };
        if integer.is_empty() && fraction.is_empty() {
            return Err(format!(
                "`{shown}` is not a duration: expected a number at `{rest}` (write e.g. 60s, 1m30s)"
            ));
        }
        let unit_end = after_number
            .find(|character: char| character.is_ascii_digit() || character == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "`{shown}` has a number without a unit: add one of ns, us, ms, s, m, h (e.g. 60s)"
                ));
            }
            other => {
                return Err(format!(
                    "`{shown}` has the unknown unit `{other}`: use ns, us, ms, s, m or h"
                ));
            }
        };
        let too_long =
            || format!("`{shown}` is longer than Go's largest duration (about 292 years)");
        let whole: u128 = if integer.is_empty() {
            0
        } else {
            integer.parse().map_err(|_| too_long())?
        };
        let mut amount = whole.checked_mul(scale).ok_or_else(too_long)?;
        if !fraction.is_empty() {
            // Nanosecond precision needs at most 18 fraction digits of an hour.
            let kept = &fraction[..fraction.len().min(18)];
            let numerator: u128 = kept.parse().map_err(|_| too_long())?;
            let denominator = 10u128.pow(kept.len() as u32);
            amount += numerator * scale / denominator;
        }
        total = total.checked_add(amount).ok_or_else(too_long)?;
        if total > MAX_NANOSECONDS {
            return Err(too_long());
        }
        rest = after_unit;
    }
    let seconds = (total / 1_000_000_000) as u64;
    let nanoseconds = (total % 1_000_000_000) as u32;
    Ok(Duration::new(seconds, nanoseconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_read_as_go_reads_them() {
        let seconds = Duration::from_secs;
        assert_eq!(parse_duration("60s"), Ok(seconds(60)));
        assert_eq!(parse_duration("1m30s"), Ok(seconds(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5m0s"), Ok(seconds(300)));
        assert_eq!(parse_duration("1.5h"), Ok(seconds(5400)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2h45m"), Ok(seconds(2 * 3600 + 45 * 60)));
        assert_eq!(parse_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("1\u{b5}s"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("+10s"), Ok(seconds(10)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
    }

    #[test]
    fn what_go_refuses_is_refused_with_the_reason() {
        for (text, reason) in [
            ("60", "without a unit"),
            ("1d", "unknown unit `d`"),
            ("", "empty"),
            ("s", "expected a number"),
            ("-5s", "negative"),
            ("1.s5", "without a unit"),
            ("9999999999999999999999h", "largest duration"),
            ("3000000h", "largest duration"),
        ] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains(reason), "{text}: {error}");
        }
    }
}
