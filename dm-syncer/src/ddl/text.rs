//! The text of a Query event as the upstream executed it: comments removed, executable
//! comments (`/*!40100 ... */`, MariaDB's `/*M!100100 ... */`) kept or dropped by the rule the
//! upstream server applied, then cut into tokens.
//!
//! ```text
//! CREATE DATABASE /*!32312 IF NOT EXISTS*/ `app` /*!40100 DEFAULT CHARACTER SET utf8mb4 */ -- why
//!   --normalize (MySQL 8.0.36)--> CREATE DATABASE  IF NOT EXISTS  `app`  DEFAULT CHARACTER SET utf8mb4
//!   --tokens--> [CREATE] [DATABASE] [IF] [NOT] [EXISTS] [`app`] [DEFAULT] ...
//! ```
//!
//! Invariants: quoted strings and identifiers are never mistaken for comments and are kept byte
//! for byte (whitespace outside them becomes single spaces); a token's span
//! points into the normalized text, so a name can be replaced in place (routing) without
//! printing the statement again.

use std::ops::Range;

use dm_core::Flavor;

/// The upstream server whose executable comments a statement is read by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// MySQL or MariaDB.
    pub flavor: Flavor,
    /// `major * 10000 + minor * 100 + patch` (8.0.36 is 80036, 10.11.6 is 101106); `None` when
    /// unknown, in which case every executable comment counts as executed.
    pub id: Option<u32>,
}

impl ServerVersion {
    /// The version of a FORMAT_DESCRIPTION's or handshake's version text (`8.0.36-log`,
    /// `10.11.6-MariaDB-log`, `5.5.5-10.11.6-MariaDB`).
    pub fn parse(flavor: Flavor, text: &str) -> ServerVersion {
        let text = text.strip_prefix("5.5.5-").unwrap_or(text);
        let numbers: Vec<u32> = text
            .split(|character: char| !character.is_ascii_digit())
            .take(3)
            .map_while(|part| part.parse().ok())
            .collect();
        let id = match numbers.as_slice() {
            [major, minor, patch] if *minor < 100 && *patch < 100 => {
                Some(major * 10_000 + minor * 100 + patch)
            }
            _ => None,
        };
        ServerVersion { flavor, id }
    }

    /// A server of `flavor` whose version is not known.
    pub fn unknown(flavor: Flavor) -> ServerVersion {
        ServerVersion { flavor, id: None }
    }

    /// Whether this server runs `/*!<version> ... */` (`mariadb_only`: `/*M!<version> ... */`).
    fn executes(&self, version: Option<u32>, mariadb_only: bool) -> bool {
        if mariadb_only && self.flavor != Flavor::MariaDb {
            return false;
        }
        let Some(version) = version else {
            return true;
        };
        // MariaDB skips MySQL's comments for 5.7 and later features (50700..=99999).
        if self.flavor == Flavor::MariaDb && !mariadb_only && (50_700..100_000).contains(&version) {
            return false;
        }
        self.id.is_none_or(|id| version <= id)
    }
}

/// How a session's `sql_mode` reads quotes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quoting {
    /// `ANSI_QUOTES`: `"x"` is an identifier, not a string.
    pub ansi_quotes: bool,
    /// `NO_BACKSLASH_ESCAPES`: a backslash in a string is a plain character.
    pub no_backslash_escapes: bool,
}

impl Quoting {
    /// The quoting of a session with `sql_mode` (the Query event's bits; `None`: the defaults).
    pub fn of_sql_mode(sql_mode: Option<u64>) -> Quoting {
        let mask = sql_mode.unwrap_or(0);
        Quoting {
            ansi_quotes: mask & (1 << 2) != 0,
            no_backslash_escapes: mask & (1 << 20) != 0,
        }
    }
}

/// The statement without comments, with the executable comments the server ran inlined and
/// the others removed, trimmed, without a trailing `;`.
pub fn normalize(sql: &str, server: ServerVersion, quoting: Quoting) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut index = 0;
    // Inside an executed `/*! ... */`: its closing `*/` ends it.
    let mut in_executable = false;
    let mut copied_from = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'\'' | b'"' | b'`' => {
                index = end_of_quoted(bytes, index, quoting);
            }
            b'#' => {
                out.push_str(&sql[copied_from..index]);
                index = line_end(bytes, index);
                out.push(' ');
                copied_from = index;
            }
            b'-' if bytes.get(index + 1) == Some(&b'-')
                && bytes
                    .get(index + 2)
                    .is_none_or(|next| next.is_ascii_whitespace() || next.is_ascii_control()) =>
            {
                out.push_str(&sql[copied_from..index]);
                index = line_end(bytes, index);
                out.push(' ');
                copied_from = index;
            }
            b'*' if in_executable && bytes.get(index + 1) == Some(&b'/') => {
                out.push_str(&sql[copied_from..index]);
                out.push(' ');
                index += 2;
                copied_from = index;
                in_executable = false;
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                out.push_str(&sql[copied_from..index]);
                out.push(' ');
                let (mariadb_only, marker) = match (bytes.get(index + 2), bytes.get(index + 3)) {
                    (Some(b'!'), _) => (false, 3),
                    (Some(b'M'), Some(b'!')) => (true, 4),
                    _ => (false, 0),
                };
                if marker > 0 && !in_executable {
                    let digits_start = index + marker;
                    let mut digits_end = digits_start;
                    while digits_end < bytes.len() && bytes[digits_end].is_ascii_digit() {
                        digits_end += 1;
                    }
                    let version = sql[digits_start..digits_end].parse().ok();
                    if server.executes(version, mariadb_only) {
                        in_executable = true;
                        index = digits_end;
                        copied_from = index;
                        continue;
                    }
                }
                index = comment_end(bytes, index + 2);
                copied_from = index;
            }
            _ => index += 1,
        }
    }
    out.push_str(&sql[copied_from.min(sql.len())..]);
    let collapsed = collapse_whitespace(&out, quoting);
    let trimmed = collapsed.trim();
    trimmed
        .strip_suffix(';')
        .map_or(trimmed, str::trim_end)
        .to_owned()
}

/// Each run of whitespace outside quotes as one space (what the server reads the same way).
fn collapse_whitespace(text: &str, quoting: Quoting) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if matches!(byte, b'\'' | b'"' | b'`') {
            let end = end_of_quoted(bytes, index, quoting);
            out.push_str(&text[index..end]);
            index = end;
        } else if byte.is_ascii_whitespace() {
            while index < bytes.len() && bytes[index].is_ascii_whitespace() {
                index += 1;
            }
            out.push(' ');
        } else {
            let width = text[index..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[index..index + width]);
            index += width;
        }
    }
    out
}

/// The index after a quoted string or identifier starting at `start` (or the end of the text
/// when it is not closed). Doubled quotes and backslash escapes (in strings, unless
/// `NO_BACKSLASH_ESCAPES`) stay inside.
fn end_of_quoted(bytes: &[u8], start: usize, quoting: Quoting) -> usize {
    let quote = bytes[start];
    let identifier = quote == b'`' || (quote == b'"' && quoting.ansi_quotes);
    let mut index = start + 1;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'\\' && !identifier && !quoting.no_backslash_escapes {
            index += 2;
            continue;
        }
        if byte == quote {
            if bytes.get(index + 1) == Some(&quote) {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    bytes.len()
}

fn line_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|byte| *byte == b'\n')
        .map_or(bytes.len(), |offset| start + offset + 1)
}

fn comment_end(bytes: &[u8], start: usize) -> usize {
    bytes[start.min(bytes.len())..]
        .windows(2)
        .position(|pair| pair == b"*/")
        .map_or(bytes.len(), |offset| start + offset + 2)
}

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: a keyword or an unquoted identifier (letters, digits, `_`, `$`, non-ASCII).
    Word,
    /// A `` `quoted` `` identifier (`text` holds the name, doubled backticks undone).
    Identifier,
    /// A `'string'` or `"string"` (in ANSI_QUOTES mode `"x"` is an identifier; not needed here).
    String,
    /// A single punctuation character.
    Punctuation(char),
}

/// One token of a normalized statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is in the normalized text.
    pub span: Range<usize>,
    /// Its text (for an identifier: the name without quotes).
    pub text: String,
}

impl Token {
    /// Whether this is the bare word `keyword` (case-insensitive).
    pub fn is(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    /// Whether this can be a name part (a bare word or a quoted identifier).
    pub fn is_name(&self) -> bool {
        matches!(self.kind, TokenKind::Word | TokenKind::Identifier)
    }
}

/// The tokens of a normalized statement.
pub fn tokens(text: &str, quoting: Quoting) -> Vec<Token> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte.is_ascii_whitespace() {
            index += 1;
        } else if byte == b'`' || (byte == b'"' && quoting.ansi_quotes) {
            let end = end_of_quoted(bytes, index, quoting);
            let inner = &text[index + 1..end.saturating_sub(1).max(index + 1)];
            let quote = if byte == b'`' { "`" } else { "\"" };
            out.push(Token {
                kind: TokenKind::Identifier,
                span: index..end,
                text: inner.replace(&quote.repeat(2), quote),
            });
            index = end;
        } else if byte == b'\'' || byte == b'"' {
            let end = end_of_quoted(bytes, index, quoting);
            out.push(Token {
                kind: TokenKind::String,
                span: index..end,
                text: text[index..end].to_owned(),
            });
            index = end;
        } else if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80 {
            let start = index;
            while index < bytes.len()
                && (bytes[index].is_ascii_alphanumeric()
                    || bytes[index] == b'_'
                    || bytes[index] == b'$'
                    || bytes[index] >= 0x80)
            {
                index += 1;
            }
            out.push(Token {
                kind: TokenKind::Word,
                span: start..index,
                text: text[start..index].to_owned(),
            });
        } else {
            let character = text[index..].chars().next().unwrap_or(' ');
            let width = character.len_utf8();
            out.push(Token {
                kind: TokenKind::Punctuation(character),
                span: index..index + width,
                text: character.to_string(),
            });
            index += width;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(version: &str) -> ServerVersion {
        ServerVersion::parse(Flavor::MySql, version)
    }

    #[test]
    fn versions_parse_from_the_server_text() {
        assert_eq!(mysql("8.0.36-log").id, Some(80036));
        assert_eq!(
            ServerVersion::parse(Flavor::MariaDb, "5.5.5-10.11.6-MariaDB").id,
            Some(101106)
        );
        assert_eq!(mysql("").id, None);
    }

    #[test]
    fn comments_go_and_executable_comments_follow_the_server() {
        let mysql57 = mysql("5.7.44-log");
        assert_eq!(
            normalize(
                "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `app` /*!40100 DEFAULT CHARACTER SET utf8mb4 */ -- why\n;",
                mysql57,
                Quoting::default()
            ),
            "CREATE DATABASE IF NOT EXISTS `app` DEFAULT CHARACTER SET utf8mb4"
        );
        // A comment newer than the server is not executed.
        assert_eq!(
            normalize(
                "ALTER TABLE t ADD c INT /*!80013 , ADD d INT */",
                mysql57,
                Quoting::default()
            ),
            "ALTER TABLE t ADD c INT"
        );
        // MariaDB skips MySQL's 5.7+ comments and runs its own.
        let mariadb = ServerVersion::parse(Flavor::MariaDb, "10.11.6-MariaDB-log");
        assert_eq!(
            normalize(
                "CREATE TABLE t (a INT) /*!80016 X */ /*M!100100 Y */",
                mariadb,
                Quoting::default()
            ),
            "CREATE TABLE t (a INT) Y"
        );
        assert_eq!(
            normalize(
                "CREATE TABLE t (a INT) /*M!100100 Y */",
                mysql57,
                Quoting::default()
            ),
            "CREATE TABLE t (a INT)"
        );
        // Comment markers inside strings and names are text.
        assert_eq!(
            normalize(
                "# lead\nALTER TABLE `a/*b` COMMENT 'x -- y /* z */' # tail",
                mysql57,
                Quoting::default()
            ),
            "ALTER TABLE `a/*b` COMMENT 'x -- y /* z */'"
        );
        assert_eq!(
            normalize(
                "DROP TABLE `t` /* generated by server */",
                mysql57,
                Quoting::default()
            ),
            "DROP TABLE `t`"
        );
        assert_eq!(
            normalize("/* unterminated", mysql57, Quoting::default()),
            ""
        );
        // Under ANSI_QUOTES `"..."` names things; without backslash escapes `\'` ends a string.
        let ansi = Quoting::of_sql_mode(Some(1 << 2));
        let found = tokens("CREATE TABLE \"a\"\"b\" (x INT)", ansi);
        assert_eq!(found[2].kind, TokenKind::Identifier);
        assert_eq!(found[2].text, "a\"b");
        let plain = Quoting::of_sql_mode(Some(1 << 20));
        assert_eq!(
            normalize("ALTER TABLE t COMMENT 'c:\\' -- x", mysql57, plain),
            "ALTER TABLE t COMMENT 'c:\\'"
        );
    }

    #[test]
    fn tokens_keep_their_spans() {
        let text = "RENAME TABLE `my.db`.`t``1` TO b2, c TO `d`";
        let found = tokens(text, Quoting::default());
        assert_eq!(found[2].kind, TokenKind::Identifier);
        assert_eq!(found[2].text, "my.db");
        assert_eq!(found[4].text, "t`1");
        assert_eq!(&text[found[4].span.clone()], "`t``1`");
        assert!(found[0].is("rename"));
        assert_eq!(found[3].kind, TokenKind::Punctuation('.'));
    }
}
