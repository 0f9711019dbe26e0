//! DM's `mydumpers.<name>.extra-args`: dumpling command-line options in one string, read into
//! what they mean for this dumper. Pure and synchronous.
//!
//! ```text
//! "-B shop -T shop.items,shop.orders --where 'id > 10' -r 5000 --consistency none"
//!   -> words (shell-like quoting) -> options -> ExtraArgs { databases, tables, where, rows, .. }
//! ```
//!
//! Options that have a meaning here (DM's parsed subset, `dm/pkg/dumpling/utils.go`):
//!
//! | option | meaning |
//! |---|---|
//! | `-B`, `--database a,b` | dump only these databases (exact names; the block-allow list still applies) |
//! | `-T`, `--tables-list db.t,db.u` | dump exactly these tables: replaces the block-allow list for the dump, as in DM |
//! | `-t`, `--threads N` | connections reading in one snapshot (`threads`) |
//! | `-F`, `--filesize 64MiB` | chunk size (`chunk-filesize`) |
//! | `-s`, `--statement-size N` | bytes per INSERT (`statement-size`) |
//! | `-r`, `--rows N` | rows per chunk (`rows`) |
//! | `--where 'cond'` | rows to dump, every table (`where`) |
//! | `--consistency auto\|flush\|lock\|none` | how the snapshot is made consistent |
//! | `--no-locks` | DM's alias of `--consistency none` (refused with another consistency) |
//! | `-W`, `--no-views[=false]` | leave views out (or in) |
//! | `--escape-backslash`, `--transactional-consistency` | accepted when true: what this dumper always does |
//!
//! Everything else is refused by name with the reason: `--consistency snapshot` and
//! `--snapshot` (a TiDB TSO; dumpling refuses them for MySQL and MariaDB), `-f`/`--filter`
//! (use `block-allow-list`), `--ca`/`--cert`/`--key` (TLS), any other option, and a word that
//! is not an option.
//!
//! Quoting: DM splits the string at whitespace and strips one pair of quotes around a whole
//! word, so `--where 'id > 1'` reaches dumpling as three broken words. Here quotes group words
//! the way a shell does (`'...'` literal, `"..."` with `\"` and `\\`, `\` outside quotes
//! escapes one character). Every string DM reads as its author meant gives the same words.

use dm_core::TableRef;

/// What `extra-args` asks for; `None` where it says nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraArgs {
    /// `-B`: databases to dump.
    pub databases: Option<Vec<String>>,
    /// `-T`: tables to dump.
    pub tables: Option<Vec<TableRef>>,
    /// `-t`: reading connections.
    pub threads: Option<usize>,
    /// `-F`: chunk size as written (read like `chunk-filesize`).
    pub file_size: Option<String>,
    /// `-s`: statement bytes.
    pub statement_size: Option<u64>,
    /// `-r`: rows per chunk.
    pub rows: Option<u64>,
    /// `--where`.
    pub where_condition: Option<String>,
    /// `--consistency`, as written.
    pub consistency: Option<String>,
    /// `--no-locks`.
    pub no_locks: bool,
    /// `-W` / `--no-views`.
    pub no_views: Option<bool>,
    /// Options accepted with no effect (what this dumper always does), as written.
    pub without_effect: Vec<String>,
}

/// Splits `text` into words the way a shell does (quotes group, and are removed).
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(inner) => current.push(inner),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some(escaped @ ('"' | '\\')) => current.push(escaped),
                            Some(other) => {
                                current.push('\\');
                                current.push(other);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(inner) => current.push(inner),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match characters.next() {
                    Some(escaped) => current.push(escaped),
                    None => return Err("it ends with a lone backslash".into()),
                }
            }
            whitespace if whitespace.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            other => {
                in_word = true;
                current.push(other);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// How an option takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// The next word, or `=value`.
    Value,
    /// Nothing (true), or `=true|false`.
    Flag,
}

/// The options DM's dump knows: (long name, short name, how it takes a value).
const OPTIONS: [(&str, Option<char>, Takes); 17] = [
    ("database", Some('B'), Takes::Value),
    ("tables-list", Some('T'), Takes::Value),
    ("threads", Some('t'), Takes::Value),
    ("filesize", Some('F'), Takes::Value),
    ("statement-size", Some('s'), Takes::Value),
    ("rows", Some('r'), Takes::Value),
    ("where", None, Takes::Value),
    ("consistency", None, Takes::Value),
    ("no-locks", None, Takes::Flag),
    ("no-views", Some('W'), Takes::Flag),
    ("escape-backslash", None, Takes::Flag),
    ("transactional-consistency", None, Takes::Flag),
    ("snapshot", None, Takes::Value),
    ("filter", Some('f'), Takes::Value),
    ("ca", None, Takes::Value),
    ("cert", None, Takes::Value),
    ("key", None, Takes::Value),
];

/// A boolean as Go's `strconv.ParseBool` reads it (what dumpling's flags accept).
fn parse_flag(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn number<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{option} {value}` needs a whole number"))
}

/// Comma-separated values (`-B a,b`), empty ones dropped.
fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
}

impl ExtraArgs {
    /// Reads `extra-args`. An error names the word and says why it is refused.
    pub fn parse(text: &str) -> Result<ExtraArgs, String> {
        let words = split_words(text).map_err(|reason| format!("cannot be split: {reason}"))?;
        let mut parsed = ExtraArgs::default();
        let mut words = words.into_iter();
        while let Some(word) = words.next() {
            let (name, inline) = if let Some(long) = word.strip_prefix("--") {
                match long.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                    None => (long.to_owned(), None),
                }
            } else if let Some(short) = word.strip_prefix('-')
                && let Some(letter) = short.chars().next()
            {
                let rest = &short[letter.len_utf8()..];
                let Some((long, ..)) = OPTIONS
                    .iter()
                    .find(|(_, candidate, _)| *candidate == Some(letter))
                else {
                    return Err(format!("`-{letter}` is not an option of DM's dump"));
                };
                let inline = match rest.strip_prefix('=') {
                    Some(value) => Some(value.to_owned()),
                    None if rest.is_empty() => None,
                    None => Some(rest.to_owned()),
                };
                ((*long).to_owned(), inline)
            } else {
                return Err(format!(
                    "`{word}` is not an option: extra-args holds dump options; quote a value \
                     that has spaces (--where 'id > 10')"
                ));
            };
            let Some((_, _, takes)) = OPTIONS.iter().find(|(long, ..)| *long == name) else {
                return Err(format!("`--{name}` is not an option of DM's dump"));
            };
            let written = format!("--{name}");
            let value = match (takes, inline) {
                (Takes::Value, Some(value)) => value,
                (Takes::Value, None) => words
                    .next()
                    .ok_or_else(|| format!("`{word}` needs a value"))?,
                (Takes::Flag, None) => "true".to_owned(),
                (Takes::Flag, Some(value)) => value,
            };
            let flag = || {
                parse_flag(&value)
                    .ok_or_else(|| format!("`{written}={value}` is neither true nor false"))
            };
            match name.as_str() {
                "database" => parsed
                    .databases
                    .get_or_insert_with(Vec::new)
                    .extend(list(&value)),
                "tables-list" => {
                    let tables = parsed.tables.get_or_insert_with(Vec::new);
                    for item in list(&value) {
                        match item.split_once('.') {
                            Some((schema, table)) if !schema.is_empty() && !table.is_empty() => {
                                tables.push(TableRef::new(schema, table));
                            }
                            _ => {
                                return Err(format!(
                                    "`-T {item}`: --tables-list takes qualified names (database.table)"
                                ));
                            }
                        }
                    }
                }
                "threads" => {
                    let threads: usize = number(&written, &value)?;
                    if threads == 0 {
                        return Err(format!("`{written} 0`: give at least 1 connection"));
                    }
                    parsed.threads = Some(threads);
                }
                "filesize" => parsed.file_size = Some(value),
                "statement-size" => parsed.statement_size = Some(number(&written, &value)?),
                "rows" => parsed.rows = Some(number(&written, &value)?),
                "where" => parsed.where_condition = Some(value),
                "consistency" => parsed.consistency = Some(value),
                "no-locks" => parsed.no_locks = flag()?,
                "no-views" => parsed.no_views = Some(flag()?),
                "escape-backslash" | "transactional-consistency" => {
                    if !flag()? {
                        return Err(format!(
                            "`{written}=false` is not supported: {}",
                            if name == "escape-backslash" {
                                "the dump always escapes with backslashes (and the loader reads them so)"
                            } else {
                                "the dump releases its lock once every snapshot transaction has started"
                            }
                        ));
                    }
                    parsed.without_effect.push(written);
                }
                "snapshot" => {
                    return Err(format!(
                        "`{written}` is not supported: it names a TiDB snapshot (TSO), and this \
                         dumper reads MySQL and MariaDB"
                    ));
                }
                "filter" => {
                    return Err(format!(
                        "`{written}` is not supported: choose tables with the task's \
                         block-allow-list, or -B / -T"
                    ));
                }
                "ca" | "cert" | "key" => {
                    return Err(format!(
                        "`{written}` is not supported: the dump does not connect with TLS yet"
                    ));
                }
                _ => return Err(format!("`{written}` is not an option of DM's dump")),
            }
        }
        // An empty list means none given, as in dumpling (`-B ''` dumps every database).
        parsed.databases = parsed.databases.filter(|databases| !databases.is_empty());
        parsed.tables = parsed.tables.filter(|tables| !tables.is_empty());
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"--where 'id > 1' -B "a b" x\ y "q\"uote" ''"#).unwrap(),
            ["--where", "id > 1", "-B", "a b", "x y", "q\"uote", ""]
        );
        assert_eq!(
            split_words("  --where='name = \"x\"'  ").unwrap(),
            ["--where=name = \"x\""]
        );
        assert!(split_words("--where 'open").is_err());
        assert!(split_words("--where \"open").is_err());
        assert!(split_words("").unwrap().is_empty());
    }

    #[test]
    fn options_that_mean_something_are_read() {
        let parsed = ExtraArgs::parse(
            "-B shop,crm -T shop.items -Tshop.orders --where 'id > 10' -r 5000 -s=100 \
             --statement-size 200 -t 8 -F 16MiB --consistency lock -W --escape-backslash",
        )
        .unwrap();
        assert_eq!(
            parsed.databases,
            Some(vec!["shop".to_owned(), "crm".to_owned()])
        );
        assert_eq!(
            parsed.tables,
            Some(vec![
                TableRef::new("shop", "items"),
                TableRef::new("shop", "orders")
            ])
        );
        assert_eq!(parsed.where_condition.as_deref(), Some("id > 10"));
        assert_eq!(parsed.rows, Some(5000));
        assert_eq!(parsed.statement_size, Some(200), "the last one wins");
        assert_eq!(parsed.threads, Some(8));
        assert_eq!(parsed.file_size.as_deref(), Some("16MiB"));
        assert_eq!(parsed.consistency.as_deref(), Some("lock"));
        assert_eq!(parsed.no_views, Some(true));
        assert_eq!(parsed.without_effect, ["--escape-backslash"]);
        let parsed = ExtraArgs::parse("--no-locks --no-views=false --statement-size=100").unwrap();
        assert!(parsed.no_locks);
        assert_eq!(parsed.no_views, Some(false));
        assert_eq!(parsed.statement_size, Some(100));
        assert_eq!(ExtraArgs::parse("").unwrap(), ExtraArgs::default());
        assert_eq!(
            ExtraArgs::parse("-B '' -T ,").unwrap(),
            ExtraArgs::default(),
            "empty lists are no lists"
        );
    }

    #[test]
    fn everything_else_is_refused_by_name() {
        for (text, named) in [
            ("--snapshot 1234", "--snapshot"),
            ("-f 'shop.*'", "--filter"),
            ("--ca /x.pem", "--ca"),
            ("--skip-tz-utc", "--skip-tz-utc"),
            ("-m", "-m"),
            ("--where id > 1", "`>`"),
            ("--rows many", "--rows many"),
            ("-T items", "-T items"),
            ("-t 0", "--threads 0"),
            ("--where", "--where"),
            ("--escape-backslash=false", "--escape-backslash=false"),
            ("--no-locks=maybe", "--no-locks=maybe"),
            ("--where 'x", "not closed"),
        ] {
            let error = ExtraArgs::parse(text).expect_err(text);
            assert!(error.contains(named), "{text}: {error}");
        }
    }

    proptest! {
        /// A word without spaces or quote characters reads the same whether quoted or not,
        /// as in DM.
        #[test]
        fn plain_and_quoted_words_agree(word in "[A-Za-z0-9_.,=<>()-]{1,20}") {
            prop_assert_eq!(split_words(&word).unwrap(), vec![word.clone()]);
            prop_assert_eq!(split_words(&format!("'{word}'")).unwrap(), vec![word.clone()]);
            prop_assert_eq!(split_words(&format!("\"{word}\"")).unwrap(), vec![word.clone()]);
        }
    }
}
