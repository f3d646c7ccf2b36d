//! Opening "an index" the way the CLI's `--index` takes it: a compiled index file, mapped; or
//! raw indicator files, compiled in memory on the fly.

use super::{build, format::MAGIC, Index};
use crate::error::{Error, Result};
use crate::ingest::{IngestOptions, Report};
use crate::time::Timestamp;
use memmap2::Mmap;
use std::io::Read;
use std::path::PathBuf;

/// A file's bytes, mapped or in memory: the bytes behind an [`Index`] from [`load`] (a mapped
/// index file, or an index compiled in memory), and a feed's bytes while it is parsed.
pub enum IndexBytes {
    /// A mapped file.
    Mapped(Mmap),
    /// Bytes in memory (an index compiled from feeds, a feed read from a pipe).
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for IndexBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            IndexBytes::Mapped(m) => m,
            IndexBytes::Owned(v) => v,
        }
    }
}

/// Opens `paths` as one index: a single compiled index file is mapped; anything else is read
/// as indicator feeds and compiled in memory (the ingest report is returned then).
///
/// # Errors
/// [`Error::Io`], the errors of [`Index::from_bytes`], or the ingest errors of
/// [`crate::ingest::load_files`]; [`Error::Log`] when a compiled index is mixed with feeds.
pub fn load(
    paths: &[PathBuf],
    opts: &IngestOptions,
) -> Result<(Index<IndexBytes>, Option<Report>)> {
    let mut compiled = Vec::new();
    for p in paths {
        let mut magic = [0u8; 8];
        let n = std::fs::File::open(p)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
        compiled.push(n == 8 && magic == MAGIC);
    }
    if compiled.iter().any(|&c| c) {
        if paths.len() != 1 {
            return Err(Error::Log {
                file: paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                message: "a compiled index cannot be combined with other --index files".into(),
            });
        }
        let map = crate::mmap::map(&paths[0], false)?;
        return Ok((Index::from_bytes(IndexBytes::Mapped(map))?, None));
    }
    let (records, report) = crate::ingest::load_files(paths, opts)?;
    let bytes = build(&records, Timestamp::now())?;
    Ok((Index::from_bytes(IndexBytes::Owned(bytes))?, Some(report)))
}
