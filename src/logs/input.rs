//! Opening log inputs and cutting them into chunks of whole records.
//!
//! A plain file is memory-mapped and split at record boundaries into chunks that threads scan
//! independently; for CSV, where a quoted field may hold a newline, a boundary is a newline
//! preceded by an even number of quote characters, which chunks can establish in parallel
//! (count quotes per piece, then prefix parities). Compressed input (gzip, zstd: detected by
//! magic bytes) and standard input are read sequentially in large blocks, each cut at its last
//! record boundary, with the remainder carried into the next block.

use crate::error::{Error, Result};
use memmap2::Mmap;
use rayon::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where a log comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// Standard input (`-`).
    Stdin,
}

impl Source {
    /// The name used in messages.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".to_string(),
        }
    }
}

/// An opened input.
pub enum Opened {
    /// A plain file, to be mapped a window at a time.
    Plain(PlainFile),
    /// A sequential stream (compressed file or stdin).
    Stream(Box<dyn Read + Send>),
}

/// An open plain (uncompressed) file.
pub struct PlainFile {
    file: std::fs::File,
    path: PathBuf,
    len: u64,
}

impl PlainFile {
    /// The file's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file was empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maps bytes `range` of the file (clamped to its length), every page loaded up front.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    pub fn window(&self, range: std::ops::Range<u64>) -> Result<Mmap> {
        let range = range.start.min(self.len)..range.end.min(self.len);
        crate::mmap::map_range(&self.file, &self.path, Some(range), true)
    }
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Opens a source: compressed files and stdin as streams, plain files mapped.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn open(src: &Source) -> Result<Opened> {
    match src {
        Source::Stdin => Ok(Opened::Stream(decompressing(Box::new(std::io::stdin())))),
        Source::File(p) => {
            let io = |source| Error::Io {
                path: p.clone(),
                source,
            };
            let mut f = std::fs::File::open(p).map_err(io)?;
            let mut magic = [0u8; 4];
            let n = read_up_to(&mut f, &mut magic).map_err(io)?;
            if magic[..n].starts_with(GZIP) || magic[..n].starts_with(ZSTD) {
                let f = std::fs::File::open(p).map_err(io)?;
                return Ok(Opened::Stream(decompressing(Box::new(f))));
            }
            let len = f.metadata().map_err(io)?.len();
            Ok(Opened::Plain(PlainFile {
                file: f,
                path: p.clone(),
                len: if n == 0 { 0 } else { len },
            }))
        }
    }
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Wraps a stream in a decompressor chosen by its magic bytes.
fn decompressing(inner: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
    let mut r = std::io::BufReader::with_capacity(1 << 16, inner);
    let head = match std::io::BufRead::fill_buf(&mut r) {
        Ok(h) => h.to_vec(),
        Err(_) => Vec::new(),
    };
    if head.starts_with(GZIP) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(ZSTD) {
        match zstd::stream::read::Decoder::with_buffer(r) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(Failing(Some(e))),
        }
    } else {
        Box::new(r)
    }
}

/// A reader that fails once with a stored error.
struct Failing(Option<std::io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

/// The position after the last record boundary in `b` (0 if none): the last newline, or for
/// quoted formats the last newline at even quote parity, where `odd` is the parity before `b`.
pub fn last_boundary(b: &[u8], quoted: bool, odd: bool) -> usize {
    if !quoted {
        return memchr::memrchr(b'\n', b).map_or(0, |k| k + 1);
    }
    boundary_before(b, odd ^ parity(b))
}

/// The position after the first record boundary in `b` (`None` if none): the first newline,
/// or for quoted formats the first newline at even quote parity, where `odd` is the parity
/// before `b`.
pub fn first_boundary(b: &[u8], quoted: bool, odd: bool) -> Option<usize> {
    if !quoted {
        return memchr::memchr(b'\n', b).map(|k| k + 1);
    }
    let mut odd = odd;
    let mut from = 0;
    while let Some(k) = memchr::memchr2(b'\n', b'"', &b[from..]).map(|k| k + from) {
        if b[k] == b'"' {
            odd = !odd;
        } else if !odd {
            return Some(k + 1);
        }
        from = k + 1;
    }
    None
}

/// The part of `b` that still belongs to a record in progress (one being dropped for its
/// length): up to and including its end, the first record boundary, or all of `b` when it does
/// not end there. `odd` (the quote parity before `b`) moves past that part.
#[derive(Clone, Copy, Debug)]
pub struct RecordTail {
    /// Its length.
    pub len: usize,
    /// Whether the record ends within `b`.
    pub ended: bool,
    /// Newlines in it (for line numbering).
    pub newlines: u64,
}

impl RecordTail {
    /// The tail of the record in progress at the start of `b`.
    pub fn find(b: &[u8], quoted: bool, odd: &mut bool) -> RecordTail {
        let end = first_boundary(b, quoted, *odd);
        let len = end.unwrap_or(b.len());
        if quoted {
            *odd ^= parity(&b[..len]);
        }
        RecordTail {
            len,
            ended: end.is_some(),
            newlines: memchr::memchr_iter(b'\n', &b[..len]).count() as u64,
        }
    }
}

/// [`last_boundary`] of quoted `b` whose quote parity at its end (the parity before it and
/// its own quotes) is `total`.
fn boundary_before(b: &[u8], total: bool) -> usize {
    // Walk back from the end: the parity before a newline at `k` is the parity at the end
    // minus the quotes after `k`. A window nearly always ends a few bytes after its last
    // boundary, so this reads little beyond the one vectorized count of the quotes.
    let mut after = false;
    let mut end = b.len();
    while let Some(k) = memchr::memrchr2(b'\n', b'"', &b[..end]) {
        if b[k] == b'"' {
            after = !after;
        } else if total == after {
            return k + 1;
        }
        end = k;
    }
    0
}

/// Quote parity of `b` (true = odd number of `"`).
pub fn parity(b: &[u8]) -> bool {
    memchr::memchr_iter(b'"', b).count() % 2 == 1
}

/// Splits `data` into chunks of about `target` bytes, each ending at a record boundary;
/// returns `(start, end, first line offset)` with line offsets counted from `data`'s start.
pub fn split(data: &[u8], quoted: bool, target: usize) -> Vec<(usize, usize, u64)> {
    let bounds = split_bounds(data, quoted, target);
    let lines: Vec<u64> = bounds
        .par_iter()
        .map(|&(a, b)| memchr::memchr_iter(b'\n', &data[a..b]).count() as u64)
        .collect();
    let mut acc = 0u64;
    bounds
        .into_iter()
        .zip(lines)
        .map(|((a, b), l)| {
            let first = acc;
            acc += l;
            (a, b, first)
        })
        .collect()
}

/// [`split`] without the line offsets, for a caller that learns each chunk's line count from
/// scanning it ([`crate::logs::scan`] returns it) and so spares a pass over the data.
pub fn split_bounds(data: &[u8], quoted: bool, target: usize) -> Vec<(usize, usize)> {
    split_window(data, quoted, target, true).1
}

/// [`split_bounds`] of a window of a larger input: returns the window's length up to its last
/// record boundary (all of it when `whole`, the input's end), and the chunks of that part.
/// The quotes of a window are counted once, in parallel pieces, for both answers.
pub fn split_window(
    data: &[u8],
    quoted: bool,
    target: usize,
    whole: bool,
) -> (usize, Vec<(usize, usize)>) {
    let target = target.max(1);
    let n = data.len().div_ceil(target).max(1);
    // Parity of the quotes before each nominal cut, computed piecewise in parallel.
    let par: Vec<bool> = if quoted {
        let pieces: Vec<bool> = (0..n)
            .into_par_iter()
            .map(|i| {
                parity(&data[(i * target).min(data.len())..((i + 1) * target).min(data.len())])
            })
            .collect();
        let mut acc = false;
        let mut before: Vec<bool> = pieces
            .iter()
            .map(|&p| {
                let before = acc;
                acc ^= p;
                before
            })
            .collect();
        before.push(acc);
        before
    } else {
        vec![false; n + 1]
    };
    let take = if whole {
        data.len()
    } else if quoted {
        boundary_before(data, par[n])
    } else {
        last_boundary(data, false, false)
    };
    let data = &data[..take];
    let mut cuts: Vec<usize> = (1..n)
        .filter(|i| i * target < take)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|i| {
            let at = i * target;
            let rest = &data[at..];
            if !quoted {
                return memchr::memchr(b'\n', rest).map_or(data.len(), |k| at + k + 1);
            }
            let mut inq = par[i];
            for (k, &c) in rest.iter().enumerate() {
                if c == b'"' {
                    inq = !inq;
                } else if c == b'\n' && !inq {
                    return at + k + 1;
                }
            }
            data.len()
        })
        .collect();
    cuts.insert(0, 0);
    cuts.push(data.len());
    cuts.dedup();
    let chunks = cuts
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(a, b)| a < b)
        .collect();
    (take, chunks)
}

/// Cuts a stream into blocks of whole records, reading it block by block.
///
/// Memory stays bounded by the block size and [`MAX_RECORD`](super::MAX_RECORD) whatever the
/// stream holds: when no record boundary comes within the record limit, the bytes so far are
/// handed over as one block (whose last record the scanners then report as too long), and the
/// rest of that record is dropped as it arrives, up to its end.
pub struct StreamBlocks {
    carry: Vec<u8>,
    odd: bool,
    quoted: bool,
    min: usize,
    /// Inside an over-long record whose start was handed over.
    long: bool,
}

impl StreamBlocks {
    /// Blocks of at least `min` bytes (unless the stream ends), starting with `carry` (bytes
    /// already read); `quoted`: records may hold quoted newlines (CSV).
    pub fn new(carry: Vec<u8>, quoted: bool, min: usize) -> StreamBlocks {
        StreamBlocks {
            carry,
            odd: false,
            quoted,
            min: min.max(1),
            long: false,
        }
    }

    /// The next block, cut after its last record boundary, and the number of newlines dropped
    /// before it (the tail of an over-long record, for line numbering); `None` at the end.
    ///
    /// # Errors
    /// The stream's I/O error.
    pub fn next(&mut self, r: &mut dyn Read) -> std::io::Result<Option<(Vec<u8>, u64)>> {
        let mut buf = std::mem::take(&mut self.carry);
        let mut skipped = 0u64;
        let mut eof = false;
        loop {
            if self.long {
                let tail = RecordTail::find(&buf, self.quoted, &mut self.odd);
                skipped += tail.newlines;
                buf.drain(..tail.len);
                self.long = !tail.ended;
            }
            if !self.long && buf.len() >= self.min {
                let cut = last_boundary(&buf, self.quoted, self.odd);
                if cut > 0 {
                    let rest = buf.split_off(cut);
                    self.odd ^= parity(&buf);
                    self.carry = rest;
                    return Ok(Some((buf, skipped)));
                }
                if buf.len() > super::MAX_RECORD {
                    // No boundary within the record limit: its start goes to the scanner, which
                    // reports it; the rest is dropped as it comes.
                    self.odd ^= parity(&buf);
                    self.long = true;
                    return Ok(Some((buf, skipped)));
                }
            }
            if eof {
                if buf.is_empty() {
                    return Ok(None);
                }
                self.odd ^= parity(&buf);
                return Ok(Some((buf, skipped)));
            }
            let old = buf.len();
            buf.resize(old + self.min.max(1 << 16), 0);
            let n = loop {
                match r.read(&mut buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            buf.truncate(old + n);
            if n == 0 {
                eof = true;
            }
        }
    }
}

/// Expands directories (recursively, sorted by name) into their files.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Source::Stdin);
        } else if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(Source::File(p.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<Source>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out)?;
        } else if !e
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(Source::File(e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::testing::random_bytes;

    #[test]
    fn split_respects_quoted_newlines() {
        let mut data = Vec::new();
        for i in 0..500 {
            data.extend_from_slice(format!("{i},\"multi\nline {i}\",x\n").as_bytes());
        }
        for target in [1, 7, 64, 1000, 100_000] {
            let chunks = split(&data, true, target);
            let mut next = 0;
            for &(a, b, first) in &chunks {
                assert_eq!(a, next);
                // Every chunk starts at a record: a digit, never the "line" continuation.
                assert!(data[a].is_ascii_digit(), "target {target}");
                assert_eq!(first, memchr::memchr_iter(b'\n', &data[..a]).count() as u64);
                next = b;
            }
            assert_eq!(next, data.len());
        }
    }

    /// Every record boundary of `b` by a byte-by-byte parity scan.
    fn boundaries(b: &[u8], odd: bool) -> Vec<usize> {
        let mut inq = odd;
        let mut all = Vec::new();
        for (i, &c) in b.iter().enumerate() {
            if c == b'"' {
                inq = !inq;
            } else if c == b'\n' && !inq {
                all.push(i + 1);
            }
        }
        all
    }

    /// The backward walk (last boundary) and the forward search (first boundary) against a
    /// byte-by-byte parity scan, on random mixes of quotes, newlines and text, from both
    /// parities.
    #[test]
    fn last_and_first_boundary_match_a_byte_scan() {
        let forward = |b: &[u8], odd: bool| boundaries(b, odd).last().copied().unwrap_or(0);
        let mut rng = crate::gen::Rng::new(0x5eed_b0d1);
        for _ in 0..20_000 {
            let b = random_bytes(&mut rng, b"ab\"\n,\r", 40);
            for odd in [false, true] {
                assert_eq!(
                    last_boundary(&b, true, odd),
                    forward(&b, odd),
                    "{b:?} {odd}"
                );
            }
            let plain = memchr::memrchr(b'\n', &b).map_or(0, |k| k + 1);
            assert_eq!(last_boundary(&b, false, false), plain);
            for odd in [false, true] {
                let first = boundaries(&b, odd).first().copied();
                assert_eq!(first_boundary(&b, true, odd), first, "{b:?} {odd}");
            }
            let plain = memchr::memchr(b'\n', &b).map(|k| k + 1);
            assert_eq!(first_boundary(&b, false, true), plain);
        }
    }

    /// A window's boundary and chunks from one quote count equal the two-pass answer: the
    /// last boundary, then the chunks of the part before it.
    #[test]
    fn split_window_equals_boundary_then_split() {
        let mut rng = crate::gen::Rng::new(0x5717_0001);
        for _ in 0..3_000 {
            let b = random_bytes(&mut rng, b"abc,\"\n", 300);
            let target = 1 + rng.below(64) as usize;
            for quoted in [true, false] {
                let take = last_boundary(&b, quoted, false);
                let want = (take, split_bounds(&b[..take], quoted, target));
                assert_eq!(
                    split_window(&b, quoted, target, false),
                    want,
                    "{b:?} {target}"
                );
                // The chunks tile the window; each inner cut follows a newline outside quotes.
                let mut next = 0;
                for &(s, e) in &want.1 {
                    assert_eq!(s, next);
                    next = e;
                    let quotes = b[..e].iter().filter(|&&c| c == b'"').count();
                    if e < take {
                        assert!(b[e - 1] == b'\n' && (!quoted || quotes % 2 == 0));
                    }
                }
                assert_eq!(next, take);
            }
        }
    }

    /// Records around the record limit, some far longer, read through small irregular reads:
    /// every record within the limit comes out whole and in order, each longer one is cut
    /// short (its start handed over, its rest dropped), no block grows much past the limit,
    /// and the newlines handed over plus those dropped are all the stream's newlines.
    #[test]
    fn stream_blocks_drop_the_tails_of_overlong_records() {
        struct Dribble<'a>(&'a [u8], crate::gen::Rng);
        impl Read for Dribble<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = (self.1.below(200_000) as usize + 1)
                    .min(out.len())
                    .min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let limit = crate::logs::MAX_RECORD;
        let mut rng = crate::gen::Rng::new(0xb10c);
        let mut data = Vec::new();
        let mut short = Vec::new();
        for i in 0..300 {
            let len = match i % 37 {
                5 => limit + 1 + rng.below(3 * limit as u64) as usize,
                _ => rng.below(20_000) as usize,
            };
            // A quoted field with a newline inside, then padding, then the record's newline.
            let mut rec = format!("{i},\"a\nb\",").into_bytes();
            rec.resize(rec.len() + len, b'x');
            rec.push(b'\n');
            if rec.len() <= limit {
                short.push(rec.clone());
            }
            data.extend_from_slice(&rec);
        }
        let mut r = Dribble(&data, crate::gen::Rng::new(7));
        let mut blocks = StreamBlocks::new(Vec::new(), true, 64 << 10);
        let nl = |b: &[u8]| memchr::memchr_iter(b'\n', b).count() as u64;
        let (mut got, mut newlines, mut cut_short) = (Vec::new(), 0u64, 0);
        while let Some((b, skipped)) = blocks.next(&mut r).unwrap() {
            assert!(
                b.len() < limit + (64 << 10) + 200_000,
                "block of {}",
                b.len()
            );
            newlines += nl(&b) + skipped;
            // Whole records, then at most an over-long record's start.
            let mut rest = &b[..];
            while let Some(e) = first_boundary(rest, true, false) {
                got.push(rest[..e].to_vec());
                rest = &rest[e..];
            }
            if !rest.is_empty() {
                assert!(
                    rest.len() > limit,
                    "an unterminated piece of {}",
                    rest.len()
                );
                cut_short += 1;
            }
        }
        assert_eq!(newlines, nl(&data));
        assert_eq!(cut_short, (0..300).filter(|i| i % 37 == 5).count());
        assert_eq!(got.len(), short.len());
        assert!(got == short, "short records differ");
    }

    #[test]
    fn blocks_from_a_stream() {
        let mut data = Vec::new();
        for i in 0..1000 {
            data.extend_from_slice(format!("{i},\"a\nb\",c\n").as_bytes());
        }
        let mut r: &[u8] = &data;
        let mut blocks = StreamBlocks::new(Vec::new(), true, 100);
        let mut all = Vec::new();
        while let Some((b, skipped)) = blocks.next(&mut r).unwrap() {
            assert_eq!(skipped, 0);
            assert!(b.ends_with(b"\n"));
            assert!(b[0].is_ascii_digit());
            all.extend_from_slice(&b);
        }
        assert_eq!(all, data);
    }
}
