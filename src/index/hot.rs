//! A copy of an index's lookup sections in memory backed by 2 MiB pages.
//!
//! A hunt's first read per record goes to the IPv4 bitmaps or the string-key filter: megabytes
//! read at random while log bytes stream through the caches. With 4 KiB pages, nearly every
//! such read also misses the TLB (a page walk before the cache miss). Copied into anonymous
//! memory that the kernel backs with transparent huge pages (Linux, `madvise` mode included),
//! the same sections span a handful of TLB entries. The copy holds the sections that most
//! lookups read (a key's first probe), never what only a hit reads (the rest of the tries,
//! the string-key entries, records and strings): zeroing huge pages costs about a millisecond
//! per 2 MiB here, which only sections read for nearly every key repay. At most
//! [`HOT_LIMIT`] bytes, filled in the order of [`ORDER`].

use super::format::{Layout, Section, SECTIONS};
use memmap2::{Mmap, MmapMut};

/// The most bytes copied (sections that would pass it stay in the file map).
pub const HOT_LIMIT: usize = 16 << 20;

/// Page size the copy is aligned to, so that the kernel can back it with huge pages.
const HUGE: usize = 2 << 20;

/// The sections a key's first probe reads, most often read first: the IPv4 occupancy bitmap
/// (every IPv4 key), the string-key filter (every name), the interval bitmap and lone filter
/// (an IPv4 key in an occupied block), an IPv6 key's first-level entries and lone bucket, the
/// string-key directory (a name the filter lets through), the IPv4 first-level tables; last
/// the KQL filter (every key of a kql hunt), so that adding it (format 7) left the other
/// sections' places in the copy as they were.
const ORDER: [Section; 11] = [
    Section::V4Bitmap,
    Section::StrFilter,
    Section::V4IntervalBitmap,
    Section::V4LoneFilter,
    Section::V6L1,
    Section::V6LoneL1,
    Section::V6LoneAddrs,
    Section::StrSlots,
    Section::V4L1,
    Section::V4LoneL1,
    Section::KqlFilter,
];

/// The copied sections.
pub(crate) struct Hot {
    map: Mmap,
    /// Where each copied section lies in `map`.
    ranges: [Option<(usize, usize)>; SECTIONS],
}

impl Hot {
    /// Copies the sections of `data` (laid out as `layout` says) that fit in `limit` bytes,
    /// in [`ORDER`]. `None` when nothing fits.
    ///
    /// # Errors
    /// When the kernel refuses the anonymous map.
    pub(crate) fn copy(data: &[u8], layout: &Layout, limit: usize) -> std::io::Result<Option<Hot>> {
        let mut ranges = [None; SECTIONS];
        let mut total = 0usize;
        for s in ORDER {
            let len = layout.range(s).len();
            if len == 0 || total.saturating_add(len) > limit {
                continue;
            }
            // Each section starts on a cache line, as in the file.
            ranges[s as usize] = Some((total, total + len));
            total = (total + len).div_ceil(64) * 64;
        }
        if total == 0 {
            return Ok(None);
        }
        // One huge page more than needed, to start the copy on a huge-page boundary.
        let mut map = MmapMut::map_anon(total + HUGE)?;
        let skip = (HUGE - map.as_ptr() as usize % HUGE) % HUGE;
        // Before the first write, which is what allocates the pages. A kernel without
        // transparent huge pages refuses the advice; the copy still works, with small pages.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        for (s, r) in ranges.iter_mut().enumerate() {
            if let Some((a, b)) = r {
                let src = data.get(layout.range(Section::ALL[s])).unwrap_or(&[]);
                let (a, b) = (*a + skip, *b + skip);
                if let (Some(dst), true) = (map.get_mut(a..b), src.len() == b - a) {
                    dst.copy_from_slice(src);
                    *r = Some((a, b));
                } else {
                    *r = None;
                }
            }
        }
        Ok(Some(Hot {
            map: map.make_read_only()?,
            ranges,
        }))
    }

    /// The copy of section `s`, if it was copied.
    #[inline]
    pub(crate) fn get(&self, s: Section) -> Option<&[u8]> {
        let (a, b) = self.ranges[s as usize]?;
        self.map.get(a..b)
    }

    /// Bytes copied.
    pub(crate) fn len(&self) -> usize {
        self.ranges.iter().flatten().map(|(a, b)| b - a).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{parse_ip_net, Indicator, Key, Kind, Origin};
    use crate::time::Timestamp;

    fn sample() -> Vec<u8> {
        let mut inds: Vec<Indicator> = ["1.2.3.4", "10.0.0.0/8", "2001:db8::/32", "::1"]
            .iter()
            .map(|s| Indicator::for_key(Key::Ip(parse_ip_net(s).unwrap()), s, Origin::Plain))
            .collect();
        for d in ["evil.com", "bad.example"] {
            let key = Key::Str(Kind::Domain, d.into());
            inds.push(Indicator::for_key(key, d, Origin::Plain));
        }
        crate::index::build(&inds, Timestamp::MIN).unwrap()
    }

    /// Under every limit, the copy holds exactly the file's bytes of the sections it took,
    /// takes them in lookup order, never the records or strings, and stays under the limit.
    #[test]
    fn copies_sections_in_order_within_the_limit() {
        let data = sample();
        let layout = Layout::parse(&data).unwrap();
        let sizes: Vec<usize> = ORDER.iter().map(|&s| layout.range(s).len()).collect();
        let all: usize = sizes.iter().sum();
        assert!(all > 0);
        for limit in [0, 1, 64, 100, 1000, all / 2, all, usize::MAX] {
            let Some(hot) = Hot::copy(&data, &layout, limit).unwrap() else {
                assert!(sizes.iter().all(|&n| n == 0 || n > limit), "limit {limit}");
                continue;
            };
            assert!(hot.len() <= limit, "limit {limit}");
            // Greedy in ORDER: a section is left out only if it would pass the limit (each
            // section starts on a 64-byte boundary of the copy).
            let mut taken = 0usize;
            for (&s, &n) in ORDER.iter().zip(&sizes) {
                match hot.get(s) {
                    Some(b) => {
                        assert_eq!(b, &data[layout.range(s)], "{s:?}");
                        assert_eq!(b.as_ptr() as usize % 64, 0, "{s:?}");
                        taken = (taken + n).div_ceil(64) * 64;
                    }
                    None => assert!(n == 0 || taken + n > limit, "{s:?} left out, limit {limit}"),
                }
            }
            for s in Section::ALL.into_iter().filter(|s| !ORDER.contains(s)) {
                assert!(hot.get(s).is_none(), "{s:?}");
            }
        }
    }
}
