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
//! checked and decoded by an [`EventDecoder`].

use std::fs::File;
use std::io::{Read as _, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::BinlogError;
use crate::event::{Event, EventDecoder, Frame, MAGIC, frame};

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
    pub fn read_next(&mut self) -> Result<Read, BinlogError> {
        let io_error = |source| BinlogError::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file
            .seek(SeekFrom::Start(self.offset))
            .map_err(io_error)?;
        self.buffer.clear();
        self.buffer.resize(crate::event::HEADER_LENGTH, 0);
        let header_bytes = read_up_to(&mut self.file, &mut self.buffer).map_err(io_error)?;
        if header_bytes == 0 {
            return Ok(Read::End);
        }
        self.buffer.truncate(header_bytes);
        let length = match frame(&self.buffer) {
            Ok(Frame::Partial) if header_bytes < crate::event::HEADER_LENGTH => {
                return Ok(Read::Partial {
                    offset: self.offset,
                    available: header_bytes as u64,
                });
            }
            Ok(Frame::Complete { length }) => length,
            Ok(Frame::Partial) => {
                let length = crate::event::EventHeader::parse(&self.buffer)
                    .map_or(0, |header| header.event_size as usize);
                self.buffer.resize(length, 0);
                let more = read_up_to(&mut self.file, &mut self.buffer[header_bytes..])
                    .map_err(io_error)?;
                if header_bytes + more < length {
                    return Ok(Read::Partial {
                        offset: self.offset,
                        available: (header_bytes + more) as u64,
                    });
                }
                length
            }
            Err(reason) => {
                return Err(BinlogError::Malformed {
                    position: format!("{}:{}", self.path.display(), self.offset),
                    event_type: "?".into(),
                    reason,
                });
            }
        };
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
