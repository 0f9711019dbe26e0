//! The dump directory: a dump on disk, loadable later, elsewhere, or again.
//!
//! ```text
//! <dir>/metadata.json              written last: its presence means the dump is complete
//!       <database>.<table>.<chunk>.sql[.gz]   one multi-row INSERT per line (gzip optional)
//! ```
//!
//! `metadata.json` holds the snapshot's binlog location (and the safe-mode exit point of a
//! `consistency: none` dump), the upstream's `sql_mode`, every `CREATE DATABASE`/`TABLE`
//! statement, the column list of the INSERTs, view definitions, and per chunk: its key range,
//! file, rows, bytes and the CRC-32 of its uncompressed content. File names are the database
//! and table names with everything but `[A-Za-z0-9_-]` written as `%XX` (UTF-8 bytes), so any
//! name makes a valid, unambiguous file name; the loader goes by `metadata.json`, never by
//! names. `docs/dump-format.md` documents the format.
//!
//! Invariants: a chunk file is accepted only when its size and CRC-32 match the metadata (a
//! changed or truncated file is named, with its path, and its rows rolled back); a directory
//! that already holds a complete dump is never overwritten; a chunk is written as
//! `<file>.partial` and renamed when complete, and a failed one is removed, so a file with a
//! chunk's name is always complete; a dump into a directory without `metadata.json` first
//! removes the chunk files of an earlier, incomplete dump (they belong to another snapshot).
//!
//! Errors: a full file system (ENOSPC, EDQUOT) is [`DumpError::DiskFull`], transient, naming
//! the directory, the file, the bytes written and needed and the bytes free; other failures
//! are [`DumpError::File`].

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dm_core::Flavor;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::error::DumpError;
use crate::item::{
    ChunkMessage, ChunkStream, DatabaseDump, DumpHeader, DumpItem, LocationRecord, TableDump,
    ViewDump,
};

/// The name of the metadata file.
pub const METADATA_FILE: &str = "metadata.json";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// How chunk files are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain `.sql` files.
    #[default]
    None,
    /// `.sql.gz` files (fast gzip level).
    Gzip,
}

/// One chunk's file, as the metadata records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkFile {
    /// The chunk's number in its table.
    pub chunk: u32,
    /// The file's name in the directory.
    pub file: String,
    /// Rows in it.
    pub rows: u64,
    /// Uncompressed bytes, line breaks included.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the uncompressed bytes.
    pub crc32: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct TableMetadata {
    #[serde(flatten)]
    table: TableDump,
    files: Vec<ChunkFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Metadata {
    format: u32,
    flavor: String,
    location: LocationRecord,
    exit_point: Option<LocationRecord>,
    upstream_sql_mode: String,
    compression: Compression,
    databases: Vec<DatabaseDump>,
    tables: Vec<TableMetadata>,
    views: Vec<ViewDump>,
}

/// A complete dump directory, read back.
#[derive(Debug, Clone)]
pub struct DumpDirectory {
    /// The directory.
    pub path: PathBuf,
    /// Its header.
    pub header: Arc<DumpHeader>,
    /// Per table (same order as the header's), its chunk files.
    pub files: Vec<Vec<ChunkFile>>,
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> DumpError {
    DumpError::File {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

/// The suffix of a chunk file being written.
const PARTIAL: &str = ".partial";

/// Bytes free for this user on the file system of `path` (0 when it cannot be told).
fn free_space(path: &Path) -> u64 {
    rustix::fs::statvfs(path)
        .map(|stats| stats.f_bavail.saturating_mul(stats.f_frsize))
        .unwrap_or(0)
}

/// What a dump writes, for the error of a full file system.
#[derive(Debug)]
struct Space {
    /// The dump directory.
    directory: PathBuf,
    /// The upstream's estimate of the tables' size.
    estimated: u64,
    /// Bytes of complete chunk files.
    written: AtomicU64,
}

impl Space {
    /// A write of `path` failed with `error`, `pending` bytes not written: a full file system as
    /// [`DumpError::DiskFull`], anything else as [`DumpError::File`].
    fn error(&self, path: &Path, error: std::io::Error, pending: u64) -> DumpError {
        let Some(what) = dm_core::disk_full(&error) else {
            return file_error(path, error);
        };
        let written = self.written.load(Ordering::Relaxed);
        DumpError::DiskFull {
            directory: self.directory.display().to_string(),
            file: path.display().to_string(),
            what,
            written,
            needed: self.estimated.max(written + pending),
            available: free_space(&self.directory),
            source: error,
        }
    }
}

/// Whether `name` is a chunk file's name (`<db>.<table>.<NNNNN>.sql[.gz]`), or one being
/// written (`.partial`).
fn is_chunk_file(name: &str) -> bool {
    let name = name.strip_suffix(PARTIAL).unwrap_or(name);
    let Some(stem) = name
        .strip_suffix(".sql.gz")
        .or_else(|| name.strip_suffix(".sql"))
    else {
        return false;
    };
    let parts: Vec<&str> = stem.split('.').collect();
    let part = |text: &str| {
        !text.is_empty()
            && text.bytes().all(|byte| {
                byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || byte == b'%'
            })
    };
    matches!(parts.as_slice(), [database, table, chunk]
        if part(database) && part(table) && chunk.len() >= 5 && chunk.bytes().all(|byte| byte.is_ascii_digit()))
}

/// Removes the chunk files of an incomplete dump (no `metadata.json`): another snapshot's rows,
/// never loaded, and in the way of a dump that needs their space. Returns how many.
fn remove_incomplete_dump(directory: &Path) -> Result<usize, DumpError> {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(file_error(directory, error)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|error| file_error(directory, error))?;
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|name| is_chunk_file(name) || name == "metadata.json.partial")
        {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|error| file_error(&path, error))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// `name` with everything but `[A-Za-z0-9_-]` as `%XX`.
pub fn file_name_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn chunk_file_name(table: &TableDump, chunk: u32, compression: Compression) -> String {
    format!(
        "{}.{}.{chunk:05}.sql{}",
        file_name_part(&table.schema),
        file_name_part(&table.table),
        match compression {
            Compression::None => "",
            Compression::Gzip => ".gz",
        }
    )
}

/// Writes what a dump produces into `directory` (created if missing); `metadata.json` last.
/// The chunk files of an earlier, incomplete dump there are removed first.
pub async fn write_directory(
    directory: &Path,
    compression: Compression,
    mut input: mpsc::Receiver<DumpItem>,
) -> Result<DumpDirectory, DumpError> {
    if directory.join(METADATA_FILE).exists() {
        return Err(DumpError::File {
            path: directory.display().to_string(),
            reason: "already holds a complete dump (metadata.json); load it, or remove the directory to dump again".into(),
        });
    }
    let removed = remove_incomplete_dump(directory)?;
    if removed > 0 {
        tracing::info!(
            directory = %directory.display(),
            files = removed,
            "removed the files of an incomplete dump"
        );
    }
    let Some(DumpItem::Header(header)) = input.recv().await else {
        return Err(DumpError::Interrupted("the header".into()));
    };
    let space = Arc::new(Space {
        directory: directory.to_owned(),
        estimated: header
            .tables
            .iter()
            .map(|table| table.estimated_bytes)
            .sum(),
        written: AtomicU64::new(0),
    });
    std::fs::create_dir_all(directory).map_err(|error| space.error(directory, error, 0))?;
    let mut writers = tokio::task::JoinSet::new();
    while let Some(item) = input.recv().await {
        let DumpItem::Chunk(stream) = item else {
            return Err(DumpError::Unexpected("a second dump header".into()));
        };
        let Some(table) = header.tables.get(stream.table) else {
            return Err(DumpError::Unexpected(format!(
                "chunk of unknown table {}",
                stream.table
            )));
        };
        let name = chunk_file_name(table, stream.chunk, compression);
        let path = directory.join(&name);
        let space = space.clone();
        writers.spawn_blocking(move || {
            write_chunk(&path, compression, stream, &space).map(|file| {
                (
                    file.0,
                    ChunkFile {
                        file: name,
                        ..file.1
                    },
                )
            })
        });
    }
    let mut files: Vec<Vec<ChunkFile>> = vec![Vec::new(); header.tables.len()];
    // Of the writers' errors, the cause (a full disk) rather than the interruptions it caused.
    let mut first_error: Option<DumpError> = None;
    while let Some(joined) = writers.join_next().await {
        match joined
            .map_err(|error| DumpError::Unexpected(format!("a chunk writer failed: {error}")))
            .and_then(|written| written)
        {
            Ok((table, file)) => files[table].push(file),
            Err(error) => {
                if first_error
                    .as_ref()
                    .is_none_or(|first| matches!(first, DumpError::Interrupted(_)))
                {
                    first_error = Some(error);
                }
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    for (table, files) in header.tables.iter().zip(&mut files) {
        files.sort_by_key(|file| file.chunk);
        if files.len() != table.chunks.len() {
            return Err(DumpError::Interrupted(format!(
                "{}.{} ({} of {} chunks written)",
                table.schema,
                table.table,
                files.len(),
                table.chunks.len()
            )));
        }
    }
    let metadata = Metadata {
        format: FORMAT_VERSION,
        flavor: header.flavor.name().to_ascii_lowercase(),
        location: LocationRecord::new(&header.location),
        exit_point: header.exit_point.as_ref().map(LocationRecord::new),
        upstream_sql_mode: header.upstream_sql_mode.clone(),
        compression,
        databases: header.databases.clone(),
        tables: header
            .tables
            .iter()
            .cloned()
            .zip(files.iter().cloned())
            .map(|(table, files)| TableMetadata { table, files })
            .collect(),
        views: header.views.clone(),
    };
    let text = serde_json::to_vec_pretty(&metadata)
        .map_err(|error| DumpError::Unexpected(format!("encoding metadata.json: {error}")))?;
    let temporary = directory.join("metadata.json.partial");
    if let Err(error) = std::fs::write(&temporary, &text) {
        let _ = std::fs::remove_file(&temporary);
        return Err(space.error(&temporary, error, text.len() as u64));
    }
    let final_path = directory.join(METADATA_FILE);
    std::fs::rename(&temporary, &final_path).map_err(|error| file_error(&final_path, error))?;
    Ok(DumpDirectory {
        path: directory.to_owned(),
        header,
        files,
    })
}

/// Writes one chunk's statements, a line each, as `<path>.partial` renamed to `path` when
/// complete; a failed one is removed. Returns its table index and record.
fn write_chunk(
    path: &Path,
    compression: Compression,
    stream: ChunkStream,
    space: &Space,
) -> Result<(usize, ChunkFile), DumpError> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(PARTIAL);
    let partial = PathBuf::from(partial);
    let written = write_chunk_file(&partial, compression, stream, space).and_then(|record| {
        std::fs::rename(&partial, path)
            .map(|()| record)
            .map_err(|error| file_error(path, error))
    });
    match written {
        Ok(record) => {
            space.written.fetch_add(
                std::fs::metadata(path).map_or(record.1.bytes, |metadata| metadata.len()),
                Ordering::Relaxed,
            );
            Ok(record)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(match error {
                // Free space as it is once the torn file is gone.
                DumpError::DiskFull {
                    directory,
                    file,
                    what,
                    written,
                    needed,
                    source,
                    ..
                } => DumpError::DiskFull {
                    available: free_space(&space.directory),
                    directory,
                    file: file
                        .strip_suffix(PARTIAL)
                        .map(str::to_owned)
                        .unwrap_or(file),
                    what,
                    written,
                    needed,
                    source,
                },
                other => other,
            })
        }
    }
}

fn write_chunk_file(
    path: &Path,
    compression: Compression,
    mut stream: ChunkStream,
    space: &Space,
) -> Result<(usize, ChunkFile), DumpError> {
    let file = File::create(path).map_err(|error| space.error(path, error, 0))?;
    let buffered = BufWriter::with_capacity(1 << 20, file);
    let mut writer = match compression {
        Compression::None => ChunkWriter::Plain(buffered),
        Compression::Gzip => ChunkWriter::Gzip(flate2::write::GzEncoder::new(
            buffered,
            flate2::Compression::fast(),
        )),
    };
    let mut hasher = crc32fast::Hasher::new();
    let mut bytes = 0u64;
    loop {
        match stream.messages.blocking_recv() {
            Some(Ok(ChunkMessage::Statement(statement, _))) => {
                for part in [statement.as_bytes(), b"\n"] {
                    writer
                        .write_all(part)
                        .map_err(|error| space.error(path, error, bytes + part.len() as u64))?;
                    hasher.update(part);
                    bytes += part.len() as u64;
                }
            }
            Some(Ok(ChunkMessage::End { rows, .. })) => {
                writer
                    .finish()
                    .map_err(|error| space.error(path, error, bytes))?;
                return Ok((
                    stream.table,
                    ChunkFile {
                        chunk: stream.chunk,
                        file: String::new(),
                        rows,
                        bytes,
                        crc32: hasher.finalize(),
                    },
                ));
            }
            Some(Err(error)) => return Err(error),
            None => return Err(DumpError::Interrupted(path.display().to_string())),
        }
    }
}

/// A chunk file's writer: plain or gzip over a buffer.
enum ChunkWriter {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

impl ChunkWriter {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            ChunkWriter::Plain(writer) => writer.write_all(bytes),
            ChunkWriter::Gzip(writer) => writer.write_all(bytes),
        }
    }

    /// Writes the gzip trailer (which dropping the encoder would write ignoring errors) and the
    /// buffer's rest, reporting any failure.
    fn finish(self) -> std::io::Result<()> {
        let buffered = match self {
            ChunkWriter::Plain(writer) => writer,
            ChunkWriter::Gzip(writer) => writer.finish()?,
        };
        buffered.into_inner().map_err(|error| error.into_error())?;
        Ok(())
    }
}

/// Reads a complete dump directory's metadata.
pub fn read_directory(directory: &Path) -> Result<DumpDirectory, DumpError> {
    let path = directory.join(METADATA_FILE);
    let text = std::fs::read(&path).map_err(|error| DumpError::File {
        path: path.display().to_string(),
        reason: format!("{error} (is this a complete dump directory? the dump writes it last)"),
    })?;
    let metadata: Metadata =
        serde_json::from_slice(&text).map_err(|error| DumpError::Corrupted {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
    let corrupted = |reason: String| DumpError::Corrupted {
        path: path.display().to_string(),
        reason,
    };
    if metadata.format != FORMAT_VERSION {
        return Err(corrupted(format!(
            "format {} is not the format {FORMAT_VERSION} this version reads",
            metadata.format
        )));
    }
    let flavor = match metadata.flavor.as_str() {
        "mariadb" => Flavor::MariaDb,
        "mysql" => Flavor::MySql,
        other => return Err(corrupted(format!("unknown flavor `{other}`"))),
    };
    let location = metadata
        .location
        .location(flavor)
        .map_err(|error| corrupted(error.to_string()))?;
    let exit_point = match &metadata.exit_point {
        Some(record) => Some(
            record
                .location(flavor)
                .map_err(|error| corrupted(error.to_string()))?,
        ),
        None => None,
    };
    let mut tables = Vec::new();
    let mut files = Vec::new();
    for entry in metadata.tables {
        let planned: Vec<u32> = entry
            .table
            .chunks
            .iter()
            .map(|chunk| chunk.number)
            .collect();
        let stored: Vec<u32> = entry.files.iter().map(|file| file.chunk).collect();
        if planned != stored
            || entry
                .files
                .iter()
                .any(|file| file.file.contains(['/', '\\']) || file.file.starts_with('.'))
        {
            return Err(corrupted(format!(
                "the chunk files of {}.{} do not match its chunks",
                entry.table.schema, entry.table.table
            )));
        }
        tables.push(entry.table);
        files.push(entry.files);
    }
    Ok(DumpDirectory {
        path: directory.to_owned(),
        header: Arc::new(DumpHeader {
            flavor,
            location,
            exit_point,
            upstream_sql_mode: metadata.upstream_sql_mode,
            databases: metadata.databases,
            tables,
            views: metadata.views,
        }),
        files,
    })
}

/// Capacity of each chunk's statement channel when reading files.
const CHUNK_CHANNEL: usize = 4;

impl DumpDirectory {
    /// Total uncompressed bytes of the chunk files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().flatten().map(|file| file.bytes).sum()
    }

    /// Sends the header, then every chunk not in `finished` (database, table, chunk), read
    /// from its file and checked against the metadata.
    pub async fn stream(
        &self,
        finished: &HashSet<(String, String, u32)>,
        output: mpsc::Sender<DumpItem>,
    ) -> Result<(), DumpError> {
        if output
            .send(DumpItem::Header(self.header.clone()))
            .await
            .is_err()
        {
            return Ok(());
        }
        for (index, (table, files)) in self.header.tables.iter().zip(&self.files).enumerate() {
            for file in files {
                if finished.contains(&(table.schema.clone(), table.table.clone(), file.chunk)) {
                    continue;
                }
                let path = self.path.join(&file.file);
                let (sender, messages) = mpsc::channel(CHUNK_CHANNEL);
                let stream = ChunkStream {
                    table: index,
                    chunk: file.chunk,
                    origin: path.display().to_string(),
                    messages,
                };
                if output.send(DumpItem::Chunk(stream)).await.is_err() {
                    return Ok(());
                }
                let record = file.clone();
                tokio::task::spawn_blocking(move || {
                    let message = match read_chunk(&path, &record, &sender) {
                        Ok(()) => Ok(ChunkMessage::End {
                            rows: record.rows,
                            bytes: record.bytes,
                        }),
                        Err(error) => Err(error),
                    };
                    let _ = sender.blocking_send(message);
                });
            }
        }
        Ok(())
    }
}

/// Sends a chunk file's lines; checks size and CRC at the end.
fn read_chunk(
    path: &Path,
    record: &ChunkFile,
    sender: &mpsc::Sender<Result<ChunkMessage, DumpError>>,
) -> Result<(), DumpError> {
    let corrupted = |reason: String| DumpError::Corrupted {
        path: path.display().to_string(),
        reason,
    };
    let file = File::open(path).map_err(|error| file_error(path, error))?;
    let raw: Box<dyn Read> = if record.file.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let mut hasher = crc32fast::Hasher::new();
    let mut bytes = 0u64;
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|error| {
            corrupted(format!("reading it failed after {bytes} bytes: {error}"))
        })?;
        if read == 0 {
            break;
        }
        number += 1;
        hasher.update(&line);
        bytes += line.len() as u64;
        if bytes > record.bytes {
            return Err(corrupted(format!(
                "it is longer than the {} bytes the metadata records",
                record.bytes
            )));
        }
        if line.last() != Some(&b'\n') {
            return Err(corrupted(format!("line {number} is cut short")));
        }
        line.pop();
        let statement = String::from_utf8(std::mem::take(&mut line))
            .map_err(|_| corrupted(format!("line {number} is not UTF-8")))?;
        if sender
            .blocking_send(Ok(ChunkMessage::Statement(statement, 0)))
            .is_err()
        {
            return Ok(()); // the loader stopped
        }
    }
    let crc32 = hasher.finalize();
    if bytes != record.bytes || crc32 != record.crc32 {
        return Err(corrupted(format!(
            "{bytes} bytes with CRC-32 {crc32:08x}, the metadata records {} bytes with CRC-32 {:08x}",
            record.bytes, record.crc32
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_name_makes_one_safe_file_name() {
        assert_eq!(file_name_part("orders_2026-11"), "orders_2026-11");
        assert_eq!(file_name_part("a.b/c d`é"), "a%2Eb%2Fc%20d%60%C3%A9");
        assert_ne!(file_name_part("a.b"), file_name_part("a%2Eb"));
    }

    #[test]
    fn only_chunk_files_count_as_an_incomplete_dump() {
        let table = TableDump {
            schema: "shop 1".into(),
            table: "it.ems".into(),
            create_statement: String::new(),
            columns: Vec::new(),
            estimated_rows: 0,
            estimated_bytes: 0,
            chunks: Vec::new(),
            keyed: true,
        };
        for compression in [Compression::None, Compression::Gzip] {
            let name = chunk_file_name(&table, 12, compression);
            assert!(is_chunk_file(&name), "{name}");
            assert!(is_chunk_file(&format!("{name}{PARTIAL}")), "{name}");
        }
        for other in [
            "metadata.json",
            "notes.sql",
            "a.b.12.sql",
            "a.b.00001.txt",
            "a.b.c.00001.sql",
        ] {
            assert!(!is_chunk_file(other), "{other}");
        }
    }
}
