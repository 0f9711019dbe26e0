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
//! that already holds a complete dump is never overwritten.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    std::fs::create_dir_all(directory).map_err(|error| file_error(directory, error))?;
    let Some(DumpItem::Header(header)) = input.recv().await else {
        return Err(DumpError::Interrupted("the header".into()));
    };
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
        writers.spawn_blocking(move || {
            write_chunk(&path, compression, stream).map(|file| {
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
    while let Some(joined) = writers.join_next().await {
        let (table, file) = joined
            .map_err(|error| DumpError::Unexpected(format!("a chunk writer failed: {error}")))??;
        files[table].push(file);
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
    std::fs::write(&temporary, text).map_err(|error| file_error(&temporary, error))?;
    let final_path = directory.join(METADATA_FILE);
    std::fs::rename(&temporary, &final_path).map_err(|error| file_error(&final_path, error))?;
    Ok(DumpDirectory {
        path: directory.to_owned(),
        header,
        files,
    })
}

/// Writes one chunk's statements, a line each; returns its table index and record.
fn write_chunk(
    path: &Path,
    compression: Compression,
    mut stream: ChunkStream,
) -> Result<(usize, ChunkFile), DumpError> {
    let file = File::create(path).map_err(|error| file_error(path, error))?;
    let buffered = BufWriter::with_capacity(1 << 20, file);
    let mut writer: Box<dyn Write> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
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
                        .map_err(|error| file_error(path, error))?;
                    hasher.update(part);
                    bytes += part.len() as u64;
                }
            }
            Some(Ok(ChunkMessage::End { rows, .. })) => {
                writer.flush().map_err(|error| file_error(path, error))?;
                drop(writer);
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
}
