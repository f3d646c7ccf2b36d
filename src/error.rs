//! Typed errors of the library. Each names what was being read: the index file and the byte
//! offset where it went wrong, or the feed file and line.

use std::path::PathBuf;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an iocmatch index (wrong magic).
    #[error("not an iocmatch index (bad magic bytes at offset 0)")]
    NotAnIndex,
    /// The index was written by an incompatible format version.
    #[error("unsupported index format version {found} (this build reads version {expected}; recompile the feeds with `iocmatch compile`)")]
    Version {
        /// The version this build reads.
        expected: u32,
        /// The version in the file.
        found: u32,
    },
    /// The index is truncated or corrupt; `offset` is the byte offset of the bad field.
    #[error("corrupt index at byte offset {offset}: {what}")]
    Corrupt {
        /// Byte offset in the index file.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The whole-file checksum does not match (`verify`).
    #[error("index checksum mismatch: header says {expected:#010x}, contents give {found:#010x}")]
    Checksum {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the contents.
        found: u32,
    },
    /// The input is too large for the index format (for example more than 2^31 records).
    #[error("too large for the index format: {0}")]
    TooLarge(String),
    /// A log file cannot be hunted (no key column, unreadable header, `--strict` stop).
    #[error("{file}: {message}")]
    Log {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A feed file could not be ingested.
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
}

impl Error {
    /// Whether the message names the file it is about ([`Error::Io`], [`Error::Log`],
    /// [`Error::Ingest`]); the index format errors do not (the caller knows which file it
    /// opened).
    pub fn names_file(&self) -> bool {
        matches!(
            self,
            Error::Io { .. } | Error::Log { .. } | Error::Ingest(_)
        )
    }

    pub(crate) fn corrupt(offset: usize, what: impl Into<String>) -> Error {
        Error::Corrupt {
            offset: offset as u64,
            what: what.into(),
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
