//! The status variables of a QUERY event: the session state the statement ran in upstream
//! (`sql_mode` above all, which decides how a DDL's text parses: `ANSI_QUOTES`,
//! `IGNORE_SPACE`, `NO_BACKSLASH_ESCAPES`, ...).
//!
//! ```text
//! status_variables = { code u8, value }*     (value layout fixed by the code)
//! ```
//!
//! Reading stops at the first code it does not know (a newer server's addition): what was
//! read before stays valid, and nothing after is guessed. Bytes that end early give what was
//! complete; nothing here panics.

/// What a QUERY event's status variables say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryStatus {
    /// `@@sql_mode` as the server's bit mask (`Q_SQL_MODE_CODE`).
    pub sql_mode: Option<u64>,
    /// `@@time_zone` when not the server's default (`Q_TIME_ZONE_CODE`).
    pub time_zone: Option<String>,
    /// Client, connection and server collation ids (`Q_CHARSET_CODE`).
    pub charset: Option<(u16, u16, u16)>,
}

/// The `sql_mode` bits that MySQL, MariaDB and TiDB all name the same way, by bit.
const PORTABLE_SQL_MODES: &[(u32, &str)] = &[
    (0, "REAL_AS_FLOAT"),
    (1, "PIPES_AS_CONCAT"),
    (2, "ANSI_QUOTES"),
    (3, "IGNORE_SPACE"),
    (5, "ONLY_FULL_GROUP_BY"),
    (6, "NO_UNSIGNED_SUBTRACTION"),
    (7, "NO_DIR_IN_CREATE"),
    (19, "NO_AUTO_VALUE_ON_ZERO"),
    (20, "NO_BACKSLASH_ESCAPES"),
    (21, "STRICT_TRANS_TABLES"),
    (22, "STRICT_ALL_TABLES"),
    (23, "NO_ZERO_IN_DATE"),
    (24, "NO_ZERO_DATE"),
    (25, "ALLOW_INVALID_DATES"),
    (26, "ERROR_FOR_DIVISION_BY_ZERO"),
    (29, "HIGH_NOT_PRECEDENCE"),
    (30, "NO_ENGINE_SUBSTITUTION"),
    (31, "PAD_CHAR_TO_FULL_LENGTH"),
];

/// The `sql_mode` value to set downstream for an upstream mask: the modes every
/// MySQL-compatible server knows. Combination modes (`ANSI`, `TRADITIONAL`...) are carried by
/// their component bits, which the server also sets; modes only one server has
/// (`NO_AUTO_CREATE_USER`, `EMPTY_STRING_IS_NULL`...) are left out.
pub fn sql_mode_text(mask: u64) -> String {
    PORTABLE_SQL_MODES
        .iter()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

impl QueryStatus {
    /// Reads the status variables of a QUERY event.
    pub fn parse(bytes: &[u8]) -> QueryStatus {
        let mut status = QueryStatus::default();
        let mut rest = bytes;
        let take = |rest: &mut &[u8], count: usize| -> Option<Vec<u8>> {
            let (taken, after) = (rest.get(..count)?, rest.get(count..)?);
            *rest = after;
            Some(taken.to_vec())
        };
        let little = |bytes: &[u8]| {
            bytes
                .iter()
                .rev()
                .fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
        };
        while let Some((&code, after)) = rest.split_first() {
            rest = after;
            let complete = match code {
                // Q_FLAGS2
                0 => take(&mut rest, 4).is_some(),
                // Q_SQL_MODE
                1 => take(&mut rest, 8)
                    .map(|value| status.sql_mode = Some(little(&value)))
                    .is_some(),
                // Q_CATALOG (length, text, NUL)
                2 => take(&mut rest, 1)
                    .and_then(|length| take(&mut rest, usize::from(length[0]) + 1))
                    .is_some(),
                // Q_AUTO_INCREMENT (increment, offset)
                3 => take(&mut rest, 4).is_some(),
                // Q_CHARSET
                4 => take(&mut rest, 6)
                    .map(|value| {
                        let id = |at: usize| (little(&value[at..at + 2])) as u16;
                        status.charset = Some((id(0), id(2), id(4)));
                    })
                    .is_some(),
                // Q_TIME_ZONE
                5 => take(&mut rest, 1)
                    .and_then(|length| take(&mut rest, usize::from(length[0])))
                    .map(|zone| status.time_zone = Some(String::from_utf8_lossy(&zone).into()))
                    .is_some(),
                // Q_CATALOG_NZ
                6 => take(&mut rest, 1)
                    .and_then(|length| take(&mut rest, usize::from(length[0])))
                    .is_some(),
                // Q_LC_TIME_NAMES, Q_CHARSET_DATABASE
                7 | 8 => take(&mut rest, 2).is_some(),
                // Q_TABLE_MAP_FOR_UPDATE
                9 => take(&mut rest, 8).is_some(),
                // Q_MASTER_DATA_WRITTEN
                10 => take(&mut rest, 4).is_some(),
                // Q_INVOKER (user, host)
                11 => take(&mut rest, 1)
                    .and_then(|length| take(&mut rest, usize::from(length[0])))
                    .and_then(|_| take(&mut rest, 1))
                    .and_then(|length| take(&mut rest, usize::from(length[0])))
                    .is_some(),
                // Anything after is not needed: stop rather than guess its layout.
                _ => false,
            };
            if !complete {
                break;
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_mode_and_time_zone_are_read_and_unknown_codes_stop_the_reading() {
        let mut bytes = vec![0, 0, 0, 0, 0];
        bytes.push(1);
        let mask: u64 = (1 << 2) | (1 << 3) | (1 << 20) | (1 << 28);
        bytes.extend_from_slice(&mask.to_le_bytes());
        bytes.extend_from_slice(&[6, 3, b's', b't', b'd']);
        bytes.extend_from_slice(&[4, 33, 0, 33, 0, 45, 0]);
        bytes.extend_from_slice(&[5, 6, b'+', b'0', b'8', b':', b'0', b'0']);
        bytes.extend_from_slice(&[200, 1, 2, 3]);
        let status = QueryStatus::parse(&bytes);
        assert_eq!(status.sql_mode, Some(mask));
        assert_eq!(status.charset, Some((33, 33, 45)));
        assert_eq!(status.time_zone.as_deref(), Some("+08:00"));
        assert_eq!(
            sql_mode_text(mask),
            "ANSI_QUOTES,IGNORE_SPACE,NO_BACKSLASH_ESCAPES"
        );
        // Cut anywhere: what was complete is kept, no panic.
        for end in 0..bytes.len() {
            let _ = QueryStatus::parse(&bytes[..end]);
        }
        assert_eq!(QueryStatus::parse(&bytes[..6]).sql_mode, None);
    }
}
