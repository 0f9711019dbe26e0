//! Fuzzed task and source files (issue 18, item 6): DM's own files (`../shared/fixtures/dm-tests`,
//! placeholders filled as DM's run.sh fills them), DM's template and `dmctl config export`
//! output (`data/`) and this repository's commented samples (`examples/config/`), mutated: bit
//! flips, truncations, lines deleted, repeated or swapped, indentation broken, scalars replaced
//! by hostile values (huge and negative numbers, long strings, YAML anchors, aliases and tags,
//! unbalanced brackets), keys exchanged between files. Each file goes through what a task's
//! start does with it: `parse`, `from_yaml`, the refusals and warnings, the rules of every
//! instance, the syncer settings, the source's replica settings.
//!
//! Each case must end without a panic, with a classed error (`TaskError`: class and DM-14xxx
//! code) or a result, and holding at no moment more than 16 MiB + 64 times the file's size
//! (the counting allocator of this test binary). `catch_unwind` only reports a panic with the
//! file that caused it.
//!
//! Cases: this test runs 15% of `DM_FUZZ_CASES` (default 100 000, the total across the fuzz
//! tests of dm-binlog and dm-task); `DM_FUZZ_SEED` changes the inputs. The long run is in the
//! README ("Fuzzing").

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dm_core::ClassifiedError;
use dm_task::config::{SourceConfig, TaskConfig};
use dm_task::error::TaskError;
use dm_testkit::{or_skip, shared_fixture};

use dm_testkit::fuzz::{Random, allocation_bound, cases, peak_of, seed};

/// A seed file: whether it is a source file, and its text.
struct Seed {
    name: String,
    source: bool,
    text: String,
}

fn yaml_files(directory: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml")
        {
            out.push(path);
        }
    }
}

fn seeds(dm_tests: &Path) -> Vec<Seed> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = Vec::new();
    yaml_files(&workspace.join("examples/config"), &mut paths);
    yaml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data"),
        &mut paths,
    );
    yaml_files(dm_tests, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).expect("read seed");
            Seed {
                source: name.contains("source"),
                name: path.display().to_string(),
                text: crate::dm_configs::substitute_placeholders(&text, "sql"),
            }
        })
        .collect()
}

/// Scalars that break parsers and checks.
const HOSTILE_SCALARS: &[&str] = &[
    "",
    "~",
    "-1",
    "0",
    "4294967296",
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999999999999999999",
    "1e309",
    ".nan",
    "-.inf",
    "0x7fffffff",
    "0o777",
    "true",
    "[",
    "]",
    "{",
    "}",
    "{a: [b, {c: d}]}",
    "[1, 2, [3, [4]]]",
    "&anchor value",
    "*anchor",
    "*missing",
    "!!binary aGVsbG8=",
    "!!int x",
    "!custom tag",
    "'unterminated",
    "\"unterminated",
    "\"\\u0000\\xff\"",
    "|",
    ">-",
    "? complex key",
    "- item",
    ": :",
    "%YAML 1.2",
    "---",
    "...",
    "*",
    "**",
    "(a|b",
    "[a-",
    "\\",
    "${VAR}",
    "1h1h1h1h",
    "-5m",
    "9999999999h",
    "300000000000000000000s",
    "1.5.6",
    "mysql-bin.|999999999999",
    "mysql-bin.999999",
    ":99999999999999999999",
    "00000000-0000-0000-0000-000000000000:1-0",
    "3ccc475b-2343-11e7-be21-6c0b84d59f30:18446744073709551615-1",
    "2006-01-02 15:04:05",
    "9999-99-99 99:99:99",
];

fn hostile_scalar(random: &mut Random) -> String {
    match random.below(10) {
        0 => "x".repeat(random.below(1 << 16)),
        1 => "[".repeat(1 + random.below(300)),
        2 => "{".repeat(1 + random.below(300)),
        3 => format!("{}", random.number()),
        _ => (*random.pick(HOSTILE_SCALARS)).to_owned(),
    }
}

/// The mutated text and what was done.
fn mutate(seed: &Seed, other: &Seed, random: &mut Random) -> (String, String) {
    let mut lines: Vec<String> = seed.text.lines().map(str::to_owned).collect();
    let mut what = String::new();
    let mutations = 1 + random.below(4);
    for _ in 0..mutations {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let index = random.below(lines.len());
        match random.below(10) {
            0 => {
                // Bit flips in the bytes (the text may stop being UTF-8: read lossily, as a
                // caller reading a file into a String would refuse it before).
                let mut bytes = lines[index].clone().into_bytes();
                if !bytes.is_empty() {
                    let position = random.below(bytes.len());
                    bytes[position] ^= 1 << random.below(8);
                }
                lines[index] = String::from_utf8_lossy(&bytes).into_owned();
                what.push_str(&format!("bit flip line {index}; "));
            }
            1 => {
                let keep = random.below(lines.len() + 1);
                lines.truncate(keep);
                if let Some(last) = lines.last_mut() {
                    let cut = random.below(last.len() + 1);
                    let cut = (0..=cut)
                        .rev()
                        .find(|cut| last.is_char_boundary(*cut))
                        .unwrap_or(0);
                    last.truncate(cut);
                }
                what.push_str(&format!("cut at line {keep}; "));
            }
            2 => {
                lines.remove(index);
                what.push_str(&format!("line {index} deleted; "));
            }
            3 => {
                let line = lines[index].clone();
                let times = 1 + random.below(3);
                for _ in 0..times {
                    lines.insert(index, line.clone());
                }
                what.push_str(&format!("line {index} repeated; "));
            }
            4 => {
                let other_index = random.below(lines.len());
                lines.swap(index, other_index);
                what.push_str(&format!("lines {index} and {other_index} swapped; "));
            }
            5 => {
                let line = &mut lines[index];
                if random.below(2) == 0 {
                    line.insert_str(0, &" ".repeat(1 + random.below(6)));
                } else {
                    let trimmed = line.trim_start().to_owned();
                    *line = trimmed;
                }
                what.push_str(&format!("indentation of line {index}; "));
            }
            6 | 7 => {
                // A value replaced: after the first `: ` or `- `, or the whole line.
                let scalar = hostile_scalar(random);
                let line = &mut lines[index];
                if let Some(colon) = line.find(": ") {
                    line.truncate(colon + 2);
                    line.push_str(&scalar);
                } else if let Some(dash) = line.find("- ") {
                    line.truncate(dash + 2);
                    line.push_str(&scalar);
                } else {
                    *line = scalar;
                }
                what.push_str(&format!("value of line {index}; "));
            }
            8 => {
                // A line of the other file, at the same indentation.
                let other_lines: Vec<&str> = other.text.lines().collect();
                if !other_lines.is_empty() {
                    let line = (*random.pick(&other_lines)).to_owned();
                    lines.insert(index, line);
                }
                what.push_str(&format!("line from {} at {index}; ", other.name));
            }
            _ => {
                // A YAML bomb: anchors whose aliases multiply.
                let mut bomb = vec!["a0: &a0 [x, x, x, x, x, x, x, x, x, x]".to_owned()];
                for level in 1..(2 + random.below(8)) {
                    bomb.push(format!(
                        "a{level}: &a{level} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]",
                        p = level - 1
                    ));
                }
                let at = random.below(lines.len() + 1);
                lines.splice(at..at, bomb);
                what.push_str(&format!("alias bomb at line {at}; "));
            }
        }
    }
    (lines.join("\n"), what)
}

/// What starting a task does with a file; every error as the crate's classed error.
fn read_as_dm_does(text: &str, source: bool, name: &str) -> Result<(), TaskError> {
    if source {
        let parsed = SourceConfig::parse(text, name)?;
        let _ = parsed.refusals();
        let _ = parsed.warnings();
        SourceConfig::from_yaml(text, name)?;
        return Ok(());
    }
    let task = TaskConfig::parse(text, name)?;
    let _ = task.refusals();
    let _ = task.warnings();
    let _ = task.ignored_checks();
    for instance in &task.mysql_instances {
        task.rules_for(instance)?;
        let _ = task.syncer_for(instance);
    }
    TaskConfig::from_yaml(text, name)?;
    Ok(())
}

fn check_classed(error: &TaskError, what: &str) {
    let _class = error.class();
    let code = error.code().0;
    assert!(
        (14000..15000).contains(&code),
        "{what}: error without a dm-task code ({code}): {error}"
    );
    assert!(!error.to_string().is_empty(), "{what}: empty message");
    assert!(!error.workaround().is_empty(), "{what}: no workaround");
}

fn run_case(what: &str, text: &str, source: bool) -> (usize, bool) {
    let (outcome, peak) = peak_of(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            read_as_dm_does(text, source, "fuzz.yaml")
        }))
    });
    let ok = match outcome {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            check_classed(&error, what);
            false
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            panic!("{what}: panicked ({message}) on this file:\n{text}");
        }
    };
    assert!(
        peak <= allocation_bound(text.len()),
        "{what}: held {peak} bytes at once for a file of {} bytes:\n{text}",
        text.len()
    );
    (peak, ok)
}

#[test]
fn fuzz_task_and_source_files() {
    let dm_tests = or_skip!(shared_fixture("dm-tests"));
    let seeds = seeds(&dm_tests);
    assert!(seeds.len() > 50, "{} seed files", seeds.len());
    let cases = cases(0.15);
    let mut random = Random::new(seed() ^ 0xda5c);
    let started = Instant::now();
    let (mut highest, mut accepted) = (0, 0);
    for case in 0..cases {
        let seed = random.pick(&seeds);
        let other = random.pick(&seeds);
        let (text, what) = mutate(seed, other, &mut random);
        let what = format!("case {case}: {}: {what}", seed.name);
        let (peak, ok) = run_case(&what, &text, seed.source);
        highest = highest.max(peak);
        accepted += u64::from(ok);
    }
    eprintln!(
        "{cases} mutated task and source files in {:.1?} ({accepted} accepted), at most {highest} bytes held at once",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Regressions.

/// The classic YAML bomb (nine levels of ten aliases: 10^9 strings from 1 KB): refused or read
/// without expanding it.
#[test]
fn regression_an_alias_bomb_is_not_expanded() {
    let mut text =
        String::from("name: t\ntask-mode: all\nbomb0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let previous = format!("*a{}", level - 1);
        text.push_str(&format!(
            "bomb{level}: &a{level} [{}]\n",
            vec![previous; 10].join(", ")
        ));
    }
    for source in [false, true] {
        let (peak, ok) = run_case("alias bomb", &text, source);
        assert!(!ok, "a bomb is not a valid file");
        assert!(peak < 4 << 20, "held {peak} bytes");
    }
}
