//! Reading binlog files (and relay logs, which share the format), including files still being
//! written.
//!
//! ```text
//! file: fe 'bin' | event | event | ... | event (maybe still being written)
//!                  ^ BinlogFileReader::read_next -> Read::Event { offset, event } ... Read::Partial | Read::End
//! ```
//!
//! The reader frames events by their header's size. A last event that is not complete yet is
//! [`Read::Partial`] (call `read_next` again later: the reader re-reads from that event's start), never
//! an error: a relay reader tails files another task is appending to. Every complete event is
//! checked and decoded by an [`EventDecoder`]. A header claiming more than MySQL's 1 GiB event
//! limit is [`BinlogError::EventTooLarge`], and a body is buffered only as far as the file has
//! it, so a damaged length costs no memory.

use std::fs::File;
use std::io::{Read as _, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::BinlogError;
use crate::event::{
    Event, EventDecoder, EventHeader, HEADER_LENGTH, MAGIC, MAXIMUM_EVENT_SIZE, event_type_name,
};

/// What the reader reserves for an event's body before its bytes are read; a larger body grows
/// the buffer as its bytes arrive.
const INITIAL_BODY_CAPACITY: usize = 1 << 20;

/// The outcome of one read.
#[derive(Debug)]
pub enum Read {
    /// An event that starts at `offset`.
    Event {
        /// Where it starts in the file.
        offset: u64,
        /// The decoded event.
        event: Event,
    },
    /// The file ends inside an event starting at `offset` (`available` of its bytes exist).
    Partial {
        /// Where the incomplete event starts.
        offset: u64,
        /// How many of its bytes the file has so far.
        available: u64,
    },
    /// The file ends exactly after the last event.
    End,
}

/// Reads the events of one binlog file in order.
#[derive(Debug)]
pub struct BinlogFileReader {
    path: PathBuf,
    file: File,
    /// Offset of the next event.
    offset: u64,
    decoder: EventDecoder,
    buffer: Vec<u8>,
    /// Length of the last event read (its bytes are `buffer[..last_length]`).
    last_length: usize,
}

impl BinlogFileReader {
    /// Opens a binlog file and checks its magic number.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BinlogError> {
        let path = path.as_ref().to_owned();
        let io_error = |source| BinlogError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = File::open(&path).map_err(io_error)?;
        let mut magic = [0u8; 4];
        let read = file.read(&mut magic).map_err(io_error)?;
        if read < 4 || magic != MAGIC {
            return Err(BinlogError::NotABinlog {
                path: path.display().to_string(),
            });
        }
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(BinlogFileReader {
            path,
            file,
            offset: MAGIC.len() as u64,
            decoder: EventDecoder::new(name),
            buffer: Vec::with_capacity(64 * 1024),
            last_length: 0,
        })
    }

    /// Opens a file to read from `offset`: the format description at the start is read first
    /// (the events after it need it), then reading continues at `offset`.
    pub fn open_at(path: impl AsRef<Path>, offset: u64) -> Result<Self, BinlogError> {
        let mut reader = BinlogFileReader::open(path)?;
        if offset > reader.offset {
            match reader.read_next()? {
                Read::Event { .. } => {}
                Read::Partial { .. } | Read::End => {
                    return Err(BinlogError::Malformed {
                        position: format!("{}:4", reader.path.display()),
                        event_type: "FORMAT_DESCRIPTION".into(),
                        reason: format!(
                            "the file has no complete first event, so it cannot be read from offset {offset}"
                        ),
                    });
                }
            }
            reader.offset = offset;
        }
        Ok(reader)
    }

    /// The bytes of the last event [`Self::read_next`] returned, header to checksum.
    pub fn last_event_bytes(&self) -> &[u8] {
        &self.buffer[..self.last_length.min(self.buffer.len())]
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The offset of the next event.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The decoder, with the format in force.
    pub fn decoder(&self) -> &EventDecoder {
        &self.decoder
    }

    /// Reads the next event.
    ///
    /// Memory: the header's length is checked against [`MAXIMUM_EVENT_SIZE`] before anything
    /// else, and the body is read incrementally: the buffer holds at most what the file really
    /// has of the event (times the vector's growth factor), whatever its header claims.
    pub fn read_next(&mut self) -> Result<Read, BinlogError> {
        let io_error = |source| BinlogError::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file
            .seek(SeekFrom::Start(self.offset))
            .map_err(io_error)?;
        self.buffer.clear();
        self.buffer.resize(HEADER_LENGTH, 0);
        let header_bytes = read_up_to(&mut self.file, &mut self.buffer).map_err(io_error)?;
        if header_bytes == 0 {
            return Ok(Read::End);
        }
        self.buffer.truncate(header_bytes);
        let Some(header) = EventHeader::parse(&self.buffer) else {
            return Ok(Read::Partial {
                offset: self.offset,
                available: header_bytes as u64,
            });
        };
        let position = || format!("{}:{}", self.path.display(), self.offset);
        if u64::from(header.event_size) > MAXIMUM_EVENT_SIZE {
            return Err(BinlogError::EventTooLarge {
                position: position(),
                what: format!("{} event", event_type_name(header.event_type)),
                size: u64::from(header.event_size),
                limit: MAXIMUM_EVENT_SIZE,
            });
        }
        let length = header.event_size as usize;
        if length < HEADER_LENGTH {
            return Err(BinlogError::Malformed {
                position: position(),
                event_type: event_type_name(header.event_type).into(),
                reason: format!(
                    "event size {length} is smaller than the {HEADER_LENGTH}-byte header"
                ),
            });
        }
        // Read the rest as it comes: a file that ends early costs only what it holds.
        let wanted = length - HEADER_LENGTH;
        self.buffer.reserve(wanted.min(INITIAL_BODY_CAPACITY));
        let more = (&mut self.file)
            .take(wanted as u64)
            .read_to_end(&mut self.buffer)
            .map_err(io_error)?;
        if more < wanted {
            return Ok(Read::Partial {
                offset: self.offset,
                available: (HEADER_LENGTH + more) as u64,
            });
        }
        let offset = self.offset;
        let event = self.decoder.decode(&self.buffer[..length], offset)?;
        self.offset += length as u64;
        self.last_length = length;
        Ok(Read::Event { offset, event })
    }
}

/// Reads until `buffer` is full or the file ends; returns how many bytes were read.
fn read_up_to(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}
