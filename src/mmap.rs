//! The crate's one `unsafe` operation: mapping a file read-only.

use crate::error::{Error, Result};
use memmap2::Mmap;
use std::path::Path;

/// Maps `path` read-only. With `populate`, the kernel maps every page up front
/// (`MAP_POPULATE`): one pass instead of a page fault per few pages, for a file that will be
/// read through (a log); without, pages are mapped as they are touched (an index, of which a
/// hunt reads a small part).
///
/// # Errors
/// [`Error::Io`] naming the path.
pub(crate) fn map(path: &Path, populate: bool) -> Result<Mmap> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    map_range(&file, path, None, populate)
}

/// Maps `range` (byte offsets; `None` = the whole file) of the open `file` read-only, as [`map`]
/// does. A log is mapped a window at a time, so the memory it occupies stays bounded whatever
/// its size.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub(crate) fn map_range(
    file: &std::fs::File,
    path: &Path,
    range: Option<std::ops::Range<u64>>,
    populate: bool,
) -> Result<Mmap> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // SAFETY: the map is read-only and private to this process, and every read from it is
    // bounds-checked against the length taken here, so no access leaves the mapping. The hazard
    // of a mapped file is another process changing it while mapped. iocmatch never modifies a
    // file in place: indexes are replaced by writing a new file and renaming it, which leaves
    // existing maps of the old inode intact, and log and feed files are only read. A foreign
    // in-place rewrite yields wrong bytes (an index reports them as corruption; a log or feed
    // reports malformed records or other values), never undefined reads. A foreign truncation
    // while mapped can raise SIGBUS, as with every mmap-based reader; the README says not to
    // truncate files being hunted or compiled. A
    // window (`range`) lies within the length the caller read from the open file (memmap2
    // aligns its offset to a page and exposes exactly the requested bytes).
    #[allow(unsafe_code)]
    let map = unsafe {
        let mut opts = memmap2::MmapOptions::new();
        if populate {
            opts.populate();
        }
        if let Some(r) = range {
            let len = usize::try_from(r.end.saturating_sub(r.start)).unwrap_or(usize::MAX);
            opts.offset(r.start).len(len);
        }
        opts.map(file)
    }
    .map_err(io)?;
    Ok(map)
}
