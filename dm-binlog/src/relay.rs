//! The relay log: a local copy of the upstream binlog, laid out as DM lays it out, so that many
//! subtasks share one upstream connection and the binlog survives the upstream's purge.
//!
//! ```text
//! <relay-dir>/
//!   server-uuid.index              one sub-directory per line, in creation order
//!   <server-uuid>.000001/          a new one each time the upstream server changes
//!     mysql-bin.000001             magic + the upstream's events byte for byte (same offsets)
//!     mysql-bin.000002
//!     relay.meta                   binlog-name / binlog-pos / binlog-gtid of the last flushed
//!                                  transaction end
//!
//! RemoteSource --StreamEvent--> RelayWriter --files--> RelaySource --StreamEvent--> syncer
//! ```
//!
//! Invariants:
//! - a relay file has the upstream file's name and every event at the upstream's offset: events
//!   the server did not send (ANNOTATE_ROWS when not asked for) leave gaps that are filled with
//!   artificial IGNORABLE events, which [`RelaySource`] skips;
//! - events the writer already has (a reconnect re-sends part of a transaction) are compared
//!   with what is on disk and dropped, never written twice;
//! - `relay.meta` names a transaction end whose bytes are on disk (data is synced before the
//!   meta is replaced, and the meta is replaced by rename); on open, the writer cuts the last
//!   file after its last complete transaction (a torn event or a half-written transaction);
//! - [`RelaySource`] tails files still being written: a partial event means "wait";
//! - [`purge`] never removes the file being written nor any file at or after the oldest position
//!   a reader still needs;
//! - a write that fails (a full file system, ENOSPC or EDQUOT, or any other I/O error) leaves no
//!   torn file: the writer drops what its buffer still held, cuts the files after the last
//!   complete transaction on disk (as on open), and refuses events until the stream restarts
//!   at or before that point ([`RelayWriter::start_point`]), so that a lost stretch is never
//!   taken for a gap and filled.
//!
//! Errors: a full file system is [`BinlogError::DiskFull`] (transient: naming the relay
//! directory, the file, the bytes that did not fit and the bytes free); other I/O errors are
//! [`BinlogError::Io`]. The same writer goes on after either once the stream restarts from
//! its start point.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read as _, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dm_core::{BinlogFileName, BinlogPosition, Flavor, GtidSet, Location};

use crate::error::BinlogError;
use crate::event::{ARTIFICIAL, EventData, MAGIC, MAXIMUM_EVENT_SIZE, event_type};
use crate::file::{BinlogFileReader, Read};
use crate::location::LocationTracker;
use crate::stream::{EventStream, StartPoint, StreamEvent};

/// The index of sub-directories.
pub const INDEX_FILE: &str = "server-uuid.index";
/// The meta file of a sub-directory.
pub const META_FILE: &str = "relay.meta";
/// Header flag of events the writer generates to fill gaps (MySQL's LOG_EVENT_IGNORABLE_F).
const IGNORABLE: u16 = 0x80;
/// MySQL's IGNORABLE_LOG_EVENT type, used for gap fillers.
const IGNORABLE_EVENT: u8 = 28;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> BinlogError + '_ {
    move |source| BinlogError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where a sub-directory's relay stands: the last flushed transaction end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayMeta {
    /// The upstream binlog file.
    pub binlog_name: String,
    /// The offset in it.
    pub binlog_position: u64,
    /// The executed GTID set there, when known.
    pub binlog_gtid: Option<String>,
}

impl RelayMeta {
    /// Parses `relay.meta` (DM's TOML: `binlog-name = "..."`, `binlog-pos = N`,
    /// `binlog-gtid = "..."`).
    pub fn parse(text: &str) -> Result<RelayMeta, String> {
        let mut name = None;
        let mut position = None;
        let mut gtid = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line `{line}` is not `key = value`"))?;
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim() {
                "binlog-name" => name = Some(value),
                "binlog-pos" => {
                    position = Some(
                        value
                            .parse::<u64>()
                            .map_err(|_| format!("binlog-pos `{value}` is not a number"))?,
                    );
                }
                "binlog-gtid" => gtid = (!value.is_empty()).then_some(value),
                _ => {}
            }
        }
        Ok(RelayMeta {
            binlog_name: name.ok_or("binlog-name is missing")?,
            binlog_position: position.ok_or("binlog-pos is missing")?,
            binlog_gtid: gtid,
        })
    }

    /// Renders `relay.meta`.
    pub fn render(&self) -> String {
        format!(
            "binlog-name = \"{}\"\nbinlog-pos = {}\nbinlog-gtid = \"{}\"\n",
            self.binlog_name,
            self.binlog_position,
            self.binlog_gtid.as_deref().unwrap_or("")
        )
    }

    /// The point to resume the upstream stream from.
    pub fn location(&self, flavor: Flavor) -> Result<Location, BinlogError> {
        let malformed = |reason: String| BinlogError::Malformed {
            position: format!(
                "{META_FILE} ({}:{})",
                self.binlog_name, self.binlog_position
            ),
            event_type: "-".into(),
            reason,
        };
        let file = BinlogFileName::parse(&self.binlog_name)
            .map_err(|error| malformed(error.to_string()))?;
        let mut location = Location::from_position(BinlogPosition::new(file, self.binlog_position));
        if let Some(gtid) = &self.binlog_gtid {
            location.gtid_set = Some(Arc::new(
                GtidSet::parse(flavor, gtid).map_err(|error| malformed(error.to_string()))?,
            ));
        }
        Ok(location)
    }
}

/// One `<server-uuid>.<NNNNNN>` sub-directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubDirectory {
    /// The directory name.
    pub name: String,
    /// The upstream server's UUID.
    pub server_uuid: String,
    /// The local sequence number.
    pub sequence: u32,
}

impl SubDirectory {
    fn parse(name: &str) -> Option<SubDirectory> {
        let (uuid, sequence) = name.rsplit_once('.')?;
        Some(SubDirectory {
            name: name.to_owned(),
            server_uuid: uuid.to_owned(),
            sequence: sequence.parse().ok()?,
        })
    }
}

/// The sub-directories of a relay directory, in creation order.
pub fn read_index(root: &Path) -> Result<Vec<SubDirectory>, BinlogError> {
    let path = root.join(INDEX_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(&path)(error)),
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            SubDirectory::parse(line).ok_or_else(|| BinlogError::Malformed {
                position: path.display().to_string(),
                event_type: "-".into(),
                reason: format!("`{line}` is not `<server-uuid>.<sequence>`"),
            })
        })
        .collect()
}

/// The binlog files of a sub-directory, in sequence order.
pub fn relay_files(directory: &Path) -> Result<Vec<BinlogFileName>, BinlogError> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(error) => return Err(io_error(directory)(error)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(directory))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == META_FILE || name.ends_with(".tmp") {
            continue;
        }
        if let Ok(file) = BinlogFileName::parse(&name) {
            files.push(file);
        }
    }
    files.sort_by(|left, right| {
        (left.base(), left.sequence()).cmp(&(right.base(), right.sequence()))
    });
    Ok(files)
}

/// An open relay file being appended to.
#[derive(Debug)]
struct OpenFile {
    name: BinlogFileName,
    path: PathBuf,
    writer: BufWriter<File>,
    length: u64,
}

/// Writes the upstream stream into the relay directory.
#[derive(Debug)]
pub struct RelayWriter {
    root: PathBuf,
    flavor: Flavor,
    subdirectory: SubDirectory,
    file: Option<OpenFile>,
    /// The next file's name, from a ROTATE, until its FORMAT_DESCRIPTION arrives.
    next_file: Option<BinlogFileName>,
    tracker: Option<LocationTracker>,
    meta: Option<RelayMeta>,
    checksum: bool,
    /// A write failed and the files were cut back after the last complete transaction: the
    /// stream must restart at or before the cut, or an event past it would be taken for a gap
    /// (events the upstream did not send) and filled.
    restart_required: bool,
    /// A write failed and cutting the files back failed too: the next write or flush cuts
    /// them first.
    cut_pending: bool,
}

impl RelayWriter {
    /// Opens `root` for an upstream server: continues the newest sub-directory when it is the
    /// same server, and recovers its last file (cuts it after the last complete transaction);
    /// otherwise starts a new sub-directory.
    pub fn open(
        root: impl Into<PathBuf>,
        server_uuid: &str,
        flavor: Flavor,
    ) -> Result<Self, BinlogError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_error(&root))?;
        let subdirectories = read_index(&root)?;
        let mut writer = RelayWriter {
            root,
            flavor,
            subdirectory: SubDirectory {
                name: String::new(),
                server_uuid: server_uuid.to_owned(),
                sequence: 0,
            },
            file: None,
            next_file: None,
            tracker: None,
            meta: None,
            checksum: true,
            restart_required: false,
            cut_pending: false,
        };
        match subdirectories.last() {
            Some(last) if last.server_uuid == server_uuid => {
                writer.subdirectory = last.clone();
                writer.recover()?;
            }
            last => {
                let sequence = last.map_or(1, |last| last.sequence + 1);
                writer.start_subdirectory(sequence)?;
            }
        }
        Ok(writer)
    }

    /// The current sub-directory.
    pub fn subdirectory(&self) -> &SubDirectory {
        &self.subdirectory
    }

    /// The last flushed transaction end: where to resume the upstream stream (`None` for a new
    /// sub-directory: the task's configured start applies).
    pub fn meta(&self) -> Option<&RelayMeta> {
        self.meta.as_ref()
    }

    /// Where to start the upstream stream: the meta's location, by GTID set when `by_gtid` and
    /// the meta has one.
    pub fn start_point(&self, by_gtid: bool) -> Result<Option<StartPoint>, BinlogError> {
        let Some(meta) = &self.meta else {
            return Ok(None);
        };
        let location = meta.location(self.flavor)?;
        Ok(Some(match (&location.gtid_set, by_gtid) {
            (Some(set), true) => StartPoint::Gtid(set.as_ref().clone()),
            _ => StartPoint::Position(location.position),
        }))
    }

    /// The upstream server changed (failover): closes the current sub-directory and starts the
    /// next one; the GTID set carries over so the stream can resume by GTID.
    pub fn switch_upstream(&mut self, server_uuid: &str) -> Result<(), BinlogError> {
        self.flush()?;
        let gtid = self.meta.as_ref().and_then(|meta| meta.binlog_gtid.clone());
        self.file = None;
        self.next_file = None;
        self.subdirectory.server_uuid = server_uuid.to_owned();
        self.start_subdirectory(self.subdirectory.sequence + 1)?;
        self.meta = gtid.map(|gtid| RelayMeta {
            binlog_name: String::new(),
            binlog_position: 4,
            binlog_gtid: Some(gtid),
        });
        Ok(())
    }

    fn directory(&self) -> PathBuf {
        self.root.join(&self.subdirectory.name)
    }

    fn start_subdirectory(&mut self, sequence: u32) -> Result<(), BinlogError> {
        self.subdirectory.sequence = sequence;
        self.subdirectory.name = format!("{}.{sequence:06}", self.subdirectory.server_uuid);
        let directory = self.directory();
        std::fs::create_dir_all(&directory).map_err(io_error(&directory))?;
        let index = self.root.join(INDEX_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .map_err(io_error(&index))?;
        writeln!(file, "{}", self.subdirectory.name).map_err(io_error(&index))?;
        file.sync_all().map_err(io_error(&index))?;
        self.tracker = None;
        self.meta = None;
        Ok(())
    }

    /// Cuts the last file after its last complete transaction and sets the meta there. On a
    /// full file system the meta on disk stays as it was (still valid: it names a transaction
    /// end at or before the cut), and the first write reports the full disk.
    fn recover(&mut self) -> Result<(), BinlogError> {
        self.cut_after_last_transaction()?;
        match self.write_meta() {
            Err(BinlogError::Io { source, .. }) if dm_core::disk_full(&source).is_some() => Ok(()),
            other => other,
        }
    }

    /// Cuts the last file after its last complete transaction (removing later files) and sets
    /// the open file, the tracker and the meta (in memory) there.
    fn cut_after_last_transaction(&mut self) -> Result<(), BinlogError> {
        let directory = self.directory();
        let meta_path = directory.join(META_FILE);
        let meta = match std::fs::read_to_string(&meta_path) {
            Ok(text) => Some(
                RelayMeta::parse(&text).map_err(|reason| BinlogError::Malformed {
                    position: meta_path.display().to_string(),
                    event_type: "-".into(),
                    reason,
                })?,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(io_error(&meta_path)(error)),
        };
        let files = relay_files(&directory)?;
        if files.is_empty() {
            self.meta = meta;
            return Ok(());
        }
        // Scan from the meta's point (its GTID set is known there) through every later file.
        let (start_file, start_offset, start) = match &meta {
            Some(meta) if !meta.binlog_name.is_empty() => {
                let location = meta.location(self.flavor)?;
                (
                    location.position.file.clone(),
                    location.position.offset,
                    location,
                )
            }
            _ => {
                let first = files[0].clone();
                let location = Location::from_position(BinlogPosition::start_of(first.clone()));
                (first, 4, location)
            }
        };
        let mut last_complete = start;
        for file in files.iter().filter(|file| {
            (file.base(), file.sequence()) >= (start_file.base(), start_file.sequence())
        }) {
            let path = directory.join(file.to_string());
            let offset = if *file == start_file { start_offset } else { 4 };
            let mut tracker = LocationTracker::new(Location {
                position: BinlogPosition::new(file.clone(), offset),
                gtid_set: last_complete.gtid_set.clone(),
                suffix: 0,
            });
            let mut reader = BinlogFileReader::open_at(&path, offset)?;
            // A torn event, a checksum failure or the end: what follows is cut.
            while let Ok(Read::Event { offset, event }) = reader.read_next() {
                let size = u64::from(event.header.event_size);
                let next = match &event.data {
                    EventData::Rotate {
                        position,
                        next_file,
                    } => BinlogFileName::parse(next_file)
                        .map(|name| BinlogPosition::new(name, *position))
                        .unwrap_or_else(|_| BinlogPosition::new(file.clone(), offset + size)),
                    _ => BinlogPosition::new(file.clone(), offset + size),
                };
                self.checksum = reader.decoder().format().checksum;
                let stream_event = StreamEvent {
                    event,
                    raw: Vec::new(),
                    position: BinlogPosition::new(file.clone(), offset),
                    next_position: next,
                    artificial: false,
                };
                tracker.observe(&stream_event);
                if !tracker.in_transaction() {
                    // The file's own bytes end here; a rotate's target is in another file.
                    let mut end = tracker.transaction_end().clone();
                    end.position = BinlogPosition::new(file.clone(), offset + size);
                    last_complete = end;
                }
            }
        }
        // Keep files up to the last complete transaction, cut the rest.
        let keep_file = last_complete.position.file.clone();
        let keep_length = last_complete.position.offset.max(4);
        for file in &files {
            let path = directory.join(file.to_string());
            let order =
                (file.base(), file.sequence()).cmp(&(keep_file.base(), keep_file.sequence()));
            if order.is_gt() {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        let path = directory.join(keep_file.to_string());
        if files.contains(&keep_file) {
            let handle = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_error(&path))?;
            handle.set_len(keep_length).map_err(io_error(&path))?;
            handle.sync_all().map_err(io_error(&path))?;
            let mut handle = handle;
            handle.seek(SeekFrom::End(0)).map_err(io_error(&path))?;
            self.file = Some(OpenFile {
                name: keep_file.clone(),
                path,
                writer: BufWriter::with_capacity(256 * 1024, handle),
                length: keep_length,
            });
        } else {
            // The meta names the start of a file never created (the writer stopped between a
            // ROTATE and the next file's first event): the stream creates it.
            self.file = None;
            self.next_file = Some(keep_file.clone());
        }
        self.meta = Some(RelayMeta {
            binlog_name: keep_file.to_string(),
            binlog_position: keep_length,
            binlog_gtid: last_complete.gtid_set.as_ref().map(ToString::to_string),
        });
        self.tracker = Some(LocationTracker::new(Location {
            position: BinlogPosition::new(keep_file, keep_length),
            gtid_set: last_complete.gtid_set,
            suffix: 0,
        }));
        Ok(())
    }

    /// Writes one event of the upstream stream.
    ///
    /// On an error of the file system the files are cut back after the last complete
    /// transaction on disk (see the module's invariants) and the stream must restart from
    /// [`RelayWriter::start_point`]; until it does, events past the cut are refused.
    pub fn write(&mut self, event: &StreamEvent) -> Result<(), BinlogError> {
        if self.cut_pending {
            self.cut_after_failure()?;
        }
        self.write_event(event)
            .map_err(|error| self.fail(error, event.raw.len() as u64))
    }

    fn write_event(&mut self, event: &StreamEvent) -> Result<(), BinlogError> {
        if self.restart_required && !event.artificial {
            let restarts = match &self.file {
                Some(file) => {
                    file.name == event.position.file && event.position.offset <= file.length
                }
                None => event.position.offset == 4,
            };
            if !restarts {
                return Err(BinlogError::Unsupported {
                    address: self.root.display().to_string(),
                    reason: format!(
                        "the relay was cut back to {} after a failed write, and the event at {} is past it: restart the upstream stream from the writer's start point",
                        self.meta.as_ref().map_or_else(
                            || "the start of its sub-directory".to_owned(),
                            |meta| format!("{}:{}", meta.binlog_name, meta.binlog_position)
                        ),
                        event.position
                    ),
                });
            }
            self.restart_required = false;
        }
        if event.artificial {
            match &event.event.data {
                EventData::Rotate { next_file, .. } => {
                    let name = self.parse_name(next_file)?;
                    if self.file.as_ref().is_none_or(|file| file.name != name) {
                        self.next_file = Some(name);
                    }
                }
                EventData::FormatDescription(format) => {
                    self.checksum = format.checksum;
                    // A stream that starts inside a file we do not have: start the file with
                    // this description and fill up to the start.
                    if self.file.is_none()
                        && let Some(name) = self.next_file.take()
                    {
                        self.create_file(name, &event.raw)?;
                    }
                }
                _ => {}
            }
            return Ok(());
        }
        if let EventData::FormatDescription(format) = &event.event.data {
            self.checksum = format.checksum;
            let starts_file = self
                .file
                .as_ref()
                .is_none_or(|file| file.name != event.position.file);
            if starts_file && event.position.offset == 4 {
                self.next_file = None;
                self.create_file(event.position.file.clone(), &[])?;
            }
        }
        let Some(file) = self.file.as_mut() else {
            return Err(BinlogError::Unsupported {
                address: self.root.display().to_string(),
                reason: format!(
                    "the relay got the event at {} before the start of its file",
                    event.position
                ),
            });
        };
        if file.name != event.position.file {
            return Err(BinlogError::Unsupported {
                address: self.root.display().to_string(),
                reason: format!(
                    "the relay file is {} but the event at {} belongs to another file without a rotate between them",
                    file.name, event.position
                ),
            });
        }
        let offset = event.position.offset;
        let size = event.raw.len() as u64;
        if offset < file.length {
            // Already written (a reconnect re-sends the transaction's start): verify.
            if offset + size > file.length {
                return Err(self.mismatch(event, "overlaps the end of the relay file"));
            }
            let on_disk = read_range(&file.path, offset, size, &mut file.writer)?;
            if on_disk != event.raw {
                return Err(self.mismatch(event, "differs from the bytes already in the relay"));
            }
            return Ok(());
        }
        if offset > file.length {
            let gap = offset - file.length;
            let filled = write_gap_fillers(&mut file.writer, gap, offset, self.checksum)
                .map_err(io_error(&file.path))?;
            if !filled {
                return Err(BinlogError::Unsupported {
                    address: self.root.display().to_string(),
                    reason: format!(
                        "a gap of {gap} bytes before {} is too small or too large to fill with events",
                        event.position
                    ),
                });
            }
            file.length = offset;
        }
        file.writer
            .write_all(&event.raw)
            .map_err(io_error(&file.path))?;
        file.length += size;
        if let Some(tracker) = self.tracker.as_mut() {
            tracker.observe(event);
        } else {
            let mut tracker = LocationTracker::new(Location::from_position(event.position.clone()));
            tracker.observe(event);
            self.tracker = Some(tracker);
        }
        if let EventData::Rotate { next_file, .. } = &event.event.data {
            self.next_file = Some(self.parse_name(next_file)?);
        }
        Ok(())
    }

    fn mismatch(&self, event: &StreamEvent, what: &str) -> BinlogError {
        BinlogError::Malformed {
            position: event.position.to_string(),
            event_type: crate::event::event_type_name(event.event.header.event_type).into(),
            reason: format!(
                "the re-sent event {what}: the upstream binlog changed under the relay; purge the relay from this file"
            ),
        }
    }

    fn parse_name(&self, name: &str) -> Result<BinlogFileName, BinlogError> {
        BinlogFileName::parse(name).map_err(|error| BinlogError::Malformed {
            position: self.root.display().to_string(),
            event_type: "Rotate".into(),
            reason: error.to_string(),
        })
    }

    fn create_file(&mut self, name: BinlogFileName, description: &[u8]) -> Result<(), BinlogError> {
        self.flush_inner()?;
        let path = self.directory().join(name.to_string());
        let mut handle = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_error(&path))?;
        if let Err(error) = handle
            .write_all(&MAGIC)
            .and_then(|()| handle.write_all(description))
        {
            // No file without its magic and description: the next attempt creates it again.
            let _ = std::fs::remove_file(&path);
            return Err(io_error(&path)(error));
        }
        self.file = Some(OpenFile {
            name,
            path,
            writer: BufWriter::with_capacity(256 * 1024, handle),
            length: 4 + description.len() as u64,
        });
        Ok(())
    }

    /// Makes everything written durable and records the last transaction end in `relay.meta`.
    /// A failure cuts the files back as [`RelayWriter::write`] does.
    pub fn flush(&mut self) -> Result<(), BinlogError> {
        if self.cut_pending {
            self.cut_after_failure()?;
        }
        self.flush_inner().map_err(|error| self.fail(error, 0))
    }

    /// After a failed write or flush: drops what the buffer still held (it never reaches the
    /// disk), cuts the files after the last complete transaction on disk, and requires the
    /// stream to restart there. Returns the error to report: [`BinlogError::DiskFull`] for a
    /// full file system, naming the bytes that did not fit (`pending`, the failed write, plus
    /// what the cut removed) and the bytes free after the cut.
    fn fail(&mut self, error: BinlogError, pending: u64) -> BinlogError {
        let BinlogError::Io { path, source } = error else {
            // Not a failed write: nothing was written.
            return error;
        };
        let accepted = self
            .file
            .as_ref()
            .map(|file| (file.path.clone(), file.length));
        if let Some(file) = self.file.take() {
            // The buffer's bytes are dropped, not written: the cut decides what stays.
            let _ = file.writer.into_parts();
        }
        self.next_file = None;
        self.tracker = None;
        self.restart_required = true;
        if self.cut_after_failure().is_err() {
            self.cut_pending = true;
        }
        let Some(what) = dm_core::disk_full(&source) else {
            return BinlogError::Io { path, source };
        };
        let cut_away = match (&accepted, &self.file) {
            (Some((accepted_path, length)), Some(file)) if *accepted_path == file.path => {
                length.saturating_sub(file.length)
            }
            (Some((_, length)), _) => *length,
            (None, _) => 0,
        };
        BinlogError::DiskFull {
            directory: self.root.display().to_string(),
            file: path,
            what,
            needed: pending + cut_away,
            available: free_space(&self.root).unwrap_or(0),
            source,
        }
    }

    /// Cuts the files after the last complete transaction; the meta on disk is updated when
    /// there is room (an older one is still valid: it names a transaction end at or before
    /// the cut, and opening cuts again from there).
    fn cut_after_failure(&mut self) -> Result<(), BinlogError> {
        self.file = None;
        self.tracker = None;
        self.cut_after_last_transaction()?;
        self.cut_pending = false;
        let _ = self.write_meta();
        Ok(())
    }

    fn flush_inner(&mut self) -> Result<(), BinlogError> {
        if let Some(file) = self.file.as_mut() {
            file.writer.flush().map_err(io_error(&file.path))?;
            file.writer
                .get_ref()
                .sync_data()
                .map_err(io_error(&file.path))?;
        }
        if let Some(tracker) = &self.tracker {
            let end = tracker.transaction_end();
            let meta = RelayMeta {
                binlog_name: end.position.file.to_string(),
                binlog_position: end.position.offset,
                binlog_gtid: end.gtid_set.as_ref().map(ToString::to_string),
            };
            if self.meta.as_ref() != Some(&meta) {
                self.meta = Some(meta);
                self.write_meta()?;
            }
        }
        Ok(())
    }

    fn write_meta(&self) -> Result<(), BinlogError> {
        let Some(meta) = &self.meta else {
            return Ok(());
        };
        let directory = self.directory();
        let temporary = directory.join(format!("{META_FILE}.tmp"));
        let target = directory.join(META_FILE);
        let written = File::create(&temporary).and_then(|mut file| {
            file.write_all(meta.render().as_bytes())?;
            file.sync_all()
        });
        if let Err(error) = written {
            // The meta in place stays valid; no half-written copy is left beside it.
            let _ = std::fs::remove_file(&temporary);
            return Err(io_error(&temporary)(error));
        }
        std::fs::rename(&temporary, &target).map_err(io_error(&target))?;
        Ok(())
    }
}

/// Reads `size` bytes at `offset` of a file being written (flushing the writer first).
fn read_range(
    path: &Path,
    offset: u64,
    size: u64,
    writer: &mut BufWriter<File>,
) -> Result<Vec<u8>, BinlogError> {
    writer.flush().map_err(io_error(path))?;
    let mut file = File::open(path).map_err(io_error(path))?;
    file.seek(SeekFrom::Start(offset)).map_err(io_error(path))?;
    let mut bytes = vec![0; size as usize];
    file.read_exact(&mut bytes).map_err(io_error(path))?;
    Ok(bytes)
}

/// The IGNORABLE events that fill exactly `gap` bytes ending at `end`, as (size, end position)
/// each; none when the gap is too small for one event or larger than 4 GiB. Each event is at
/// most [`MAXIMUM_EVENT_SIZE`], so that readers accept it.
fn gap_fillers(gap: u64, end: u64, checksum: bool) -> Option<Vec<(u64, u64)>> {
    let minimum = crate::event::HEADER_LENGTH as u64 + if checksum { 4 } else { 0 };
    if gap < minimum || gap > u64::from(u32::MAX) {
        return None;
    }
    let mut fillers = Vec::new();
    let mut start = end - gap;
    let mut remaining = gap;
    while remaining > 0 {
        let mut size = remaining.min(MAXIMUM_EVENT_SIZE);
        if remaining - size != 0 && remaining - size < minimum {
            size = remaining - minimum;
        }
        start += size;
        remaining -= size;
        fillers.push((size, start));
    }
    Some(fillers)
}

/// Writes the IGNORABLE events that fill `gap` bytes ending at `end` ([`gap_fillers`]); false
/// when the gap cannot be filled. Their zero bodies are written in pieces: nothing the size of
/// the gap (which an upstream's `log_pos` decides) is allocated.
fn write_gap_fillers(
    writer: &mut impl Write,
    gap: u64,
    end: u64,
    checksum: bool,
) -> std::io::Result<bool> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let Some(fillers) = gap_fillers(gap, end, checksum) else {
        return Ok(false);
    };
    for (size, end) in fillers {
        let mut header = Vec::with_capacity(crate::event::HEADER_LENGTH);
        header.extend_from_slice(&0u32.to_le_bytes());
        header.push(IGNORABLE_EVENT);
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&(size as u32).to_le_bytes());
        header.extend_from_slice(&(end as u32).to_le_bytes());
        header.extend_from_slice(&(IGNORABLE | ARTIFICIAL).to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header);
        writer.write_all(&header)?;
        let mut body = size - header.len() as u64 - if checksum { 4 } else { 0 };
        while body > 0 {
            let piece = &ZEROS[..body.min(ZEROS.len() as u64) as usize];
            hasher.update(piece);
            writer.write_all(piece)?;
            body -= piece.len() as u64;
        }
        if checksum {
            writer.write_all(&hasher.finalize().to_le_bytes())?;
        }
    }
    Ok(true)
}

/// Reads a relay directory as an event stream, following files still being written.
#[derive(Debug)]
pub struct RelaySource {
    root: PathBuf,
    follow: bool,
    poll_interval: Duration,
    subdirectory: SubDirectory,
    file: BinlogFileName,
    reader: BinlogFileReader,
    /// Set after a ROTATE: the file to continue with.
    rotate_to: Option<BinlogFileName>,
}

impl RelaySource {
    /// Opens the relay at `start` (the newest sub-directory that has its file). `follow` waits
    /// for new events at the end; otherwise the stream ends there.
    pub fn open(
        root: impl Into<PathBuf>,
        start: &BinlogPosition,
        follow: bool,
    ) -> Result<Self, BinlogError> {
        let root = root.into();
        let subdirectories = read_index(&root)?;
        let subdirectory = subdirectories
            .iter()
            .rev()
            .find(|subdirectory| {
                root.join(&subdirectory.name)
                    .join(start.file.to_string())
                    .exists()
            })
            .cloned()
            .ok_or_else(|| BinlogError::BinlogPurged {
                address: root.display().to_string(),
                start: start.to_string(),
                message: "no relay sub-directory has this file".into(),
            })?;
        Self::open_in(root, &subdirectory.name, start, follow)
    }

    /// Opens the relay at `start` in the named sub-directory.
    pub fn open_in(
        root: impl Into<PathBuf>,
        subdirectory: &str,
        start: &BinlogPosition,
        follow: bool,
    ) -> Result<Self, BinlogError> {
        let root = root.into();
        let subdirectory = read_index(&root)?
            .into_iter()
            .find(|entry| entry.name == subdirectory)
            .ok_or_else(|| BinlogError::BinlogPurged {
                address: root.display().to_string(),
                start: format!("{subdirectory}/{start}"),
                message: "the relay has no such sub-directory".into(),
            })?;
        let path = root.join(&subdirectory.name).join(start.file.to_string());
        if !path.exists() {
            return Err(BinlogError::BinlogPurged {
                address: root.display().to_string(),
                start: format!("{}/{start}", subdirectory.name),
                message: "the relay file is not there (purged?)".into(),
            });
        }
        let reader = BinlogFileReader::open_at(&path, start.offset)?;
        Ok(RelaySource {
            root,
            follow,
            poll_interval: Duration::from_millis(20),
            subdirectory,
            file: start.file.clone(),
            reader,
            rotate_to: None,
        })
    }

    /// The sub-directory and file being read (what [`purge`] must keep).
    pub fn position(&self) -> RelayPosition {
        RelayPosition {
            subdirectory: self.subdirectory.name.clone(),
            file: self.file.clone(),
        }
    }

    fn open_file(
        &mut self,
        subdirectory: SubDirectory,
        file: BinlogFileName,
    ) -> Result<(), BinlogError> {
        let path = self.root.join(&subdirectory.name).join(file.to_string());
        self.reader = BinlogFileReader::open(&path)?;
        self.subdirectory = subdirectory;
        self.file = file;
        Ok(())
    }

    /// At the end of the current file: the file to continue with, if it is known to be complete
    /// (a later file exists in the sub-directory, or a later sub-directory exists).
    fn next_file(&self) -> Result<Option<(SubDirectory, BinlogFileName)>, BinlogError> {
        let directory = self.root.join(&self.subdirectory.name);
        let files = relay_files(&directory)?;
        let current = (self.file.base(), self.file.sequence());
        if let Some(next) = files
            .iter()
            .find(|file| (file.base(), file.sequence()) > current)
        {
            return Ok(Some((self.subdirectory.clone(), next.clone())));
        }
        let subdirectories = read_index(&self.root)?;
        if let Some(next) = subdirectories
            .iter()
            .find(|subdirectory| subdirectory.sequence > self.subdirectory.sequence)
            && let Some(first) = relay_files(&self.root.join(&next.name))?.first()
        {
            return Ok(Some((next.clone(), first.clone())));
        }
        Ok(None)
    }

    async fn read(&mut self) -> Result<Option<StreamEvent>, BinlogError> {
        loop {
            if let Some(next) = self.rotate_to.clone() {
                let path = self
                    .root
                    .join(&self.subdirectory.name)
                    .join(next.to_string());
                if path.exists() {
                    self.rotate_to = None;
                    let subdirectory = self.subdirectory.clone();
                    self.open_file(subdirectory, next)?;
                } else if let Some((subdirectory, file)) = self.next_file()? {
                    // The writer moved to another sub-directory (upstream switch).
                    self.rotate_to = None;
                    self.open_file(subdirectory, file)?;
                } else if self.follow {
                    tokio::time::sleep(self.poll_interval).await;
                    continue;
                } else {
                    return Ok(None);
                }
            }
            match self.reader.read_next()? {
                Read::Event { offset, event } => {
                    if event.header.event_type == IGNORABLE_EVENT
                        && event.header.flags & ARTIFICIAL != 0
                    {
                        continue;
                    }
                    let size = u64::from(event.header.event_size);
                    let position = BinlogPosition::new(self.file.clone(), offset);
                    let next_position = match &event.data {
                        EventData::Rotate {
                            position,
                            next_file,
                        } if event.header.event_type == event_type::ROTATE => {
                            let next = BinlogFileName::parse(next_file).map_err(|error| {
                                BinlogError::Malformed {
                                    position: format!("{}:{offset}", self.reader.path().display()),
                                    event_type: "ROTATE".into(),
                                    reason: error.to_string(),
                                }
                            })?;
                            self.rotate_to = Some(next.clone());
                            BinlogPosition::new(next, *position)
                        }
                        _ => BinlogPosition::new(self.file.clone(), offset + size),
                    };
                    return Ok(Some(StreamEvent {
                        raw: self.reader.last_event_bytes().to_vec(),
                        event,
                        position,
                        next_position,
                        artificial: false,
                    }));
                }
                Read::Partial { .. } | Read::End => {
                    if let Some((subdirectory, file)) = self.next_file()? {
                        // The file ended without a rotate (the upstream stopped or crashed, or
                        // the upstream server changed): its successor exists, so it is complete.
                        if matches!(self.reader.read_next()?, Read::End) {
                            self.open_file(subdirectory, file)?;
                            continue;
                        }
                    }
                    if !self.follow {
                        return Ok(None);
                    }
                    tokio::time::sleep(self.poll_interval).await;
                }
            }
        }
    }
}

impl EventStream for RelaySource {
    async fn next_event(&mut self) -> Result<Option<StreamEvent>, BinlogError> {
        self.read().await
    }
}

/// A reader's place in the relay: what [`purge`] must keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayPosition {
    /// The sub-directory name.
    pub subdirectory: String,
    /// The file.
    pub file: BinlogFileName,
}

/// What to purge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurgeRule {
    /// Every file before this one (`purge-relay -f`).
    Before(RelayPosition),
    /// Files last written longer ago than this (`expires`).
    OlderThan(Duration),
    /// The oldest files until this many bytes are free on the relay's file system
    /// (`remain-space`).
    KeepFree(u64),
}

/// Removes relay files by `rule`, never the file being written (the newest) nor any file at or
/// after `needed` (the oldest position a reader still needs). Returns the removed paths.
pub fn purge(
    root: &Path,
    rule: &PurgeRule,
    needed: Option<&RelayPosition>,
) -> Result<Vec<PathBuf>, BinlogError> {
    let subdirectories = read_index(root)?;
    let mut candidates = Vec::new();
    for (subdirectory_index, subdirectory) in subdirectories.iter().enumerate() {
        for file in relay_files(&root.join(&subdirectory.name))? {
            candidates.push((subdirectory_index, subdirectory.name.clone(), file));
        }
    }
    // The newest file is being written.
    candidates.pop();
    let order = |position: &RelayPosition| {
        subdirectories
            .iter()
            .position(|subdirectory| subdirectory.name == position.subdirectory)
            .map(|index| (index, position.file.sequence()))
    };
    let limit = needed.and_then(order);
    candidates
        .retain(|(index, _, file)| limit.is_none_or(|limit| (*index, file.sequence()) < limit));
    let path_of = |(_, subdirectory, file): &(usize, String, BinlogFileName)| {
        root.join(subdirectory).join(file.to_string())
    };
    let mut removed = Vec::new();
    match rule {
        PurgeRule::Before(before) => {
            let Some(before) = order(before) else {
                return Ok(removed);
            };
            for candidate in candidates
                .iter()
                .filter(|(index, _, file)| (*index, file.sequence()) < before)
            {
                let path = path_of(candidate);
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                removed.push(path);
            }
        }
        PurgeRule::OlderThan(age) => {
            let now = SystemTime::now();
            for candidate in &candidates {
                let path = path_of(candidate);
                let modified = std::fs::metadata(&path)
                    .and_then(|metadata| metadata.modified())
                    .map_err(io_error(&path))?;
                if now.duration_since(modified).unwrap_or_default() > *age {
                    std::fs::remove_file(&path).map_err(io_error(&path))?;
                    removed.push(path);
                }
            }
        }
        PurgeRule::KeepFree(bytes) => {
            for candidate in &candidates {
                if free_space(root)? >= *bytes {
                    break;
                }
                let path = path_of(candidate);
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

/// Bytes available to unprivileged users on the file system of `path`.
pub fn free_space(path: &Path) -> Result<u64, BinlogError> {
    let stats = rustix::fs::statvfs(path).map_err(|error| BinlogError::Io {
        path: path.display().to_string(),
        source: error.into(),
    })?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_names_what_is_missing() {
        let meta = RelayMeta {
            binlog_name: "mysql-bin.000003".into(),
            binlog_position: 1234,
            binlog_gtid: Some("0-1-20".into()),
        };
        assert_eq!(RelayMeta::parse(&meta.render()), Ok(meta));
        assert!(
            RelayMeta::parse("binlog-pos = 4")
                .expect_err("no name")
                .contains("binlog-name")
        );
        assert!(RelayMeta::parse("binlog-name = \"a.000001\"\nbinlog-pos = x").is_err());
    }

    #[test]
    fn gap_fillers_have_the_exact_size_and_a_valid_checksum() {
        let mut filler = Vec::new();
        assert!(write_gap_fillers(&mut filler, 60, 1000, true).expect("writes"));
        assert_eq!(filler.len(), 60);
        let mut decoder = crate::event::EventDecoder::for_stream("relay", true);
        let event = decoder.decode(&filler, 940).expect("decodes");
        assert_eq!(event.header.log_position, 1000);
        assert!(!write_gap_fillers(&mut Vec::new(), 10, 1000, true).expect("writes"));
        // Over 1 GiB: events of at most the limit, none too small, ending at the gap's end.
        let gap = 2 * MAXIMUM_EVENT_SIZE + 10;
        let fillers = gap_fillers(gap, gap + 4, true).expect("fits");
        assert_eq!(fillers.iter().map(|(size, _)| size).sum::<u64>(), gap);
        assert!(
            fillers
                .iter()
                .all(|(size, _)| (23..=MAXIMUM_EVENT_SIZE).contains(size))
        );
        assert_eq!(fillers.last().map(|(_, end)| *end), Some(gap + 4));
    }
}
