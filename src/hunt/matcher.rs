//! Matching one record: parse its time, look its key(s) up, apply the expiry rule, emit rows.
//! Allocation-free on a miss; strings are copied only for output rows.

use super::{Expiry, HuntOptions, Match, Query, Semantics};
use crate::error::{Error, Result};
use crate::index::{Index, KqlColumn, KqlFilter};
use crate::indicator::{normalize_domain_cow, parse_ip_addr};
use crate::logs::{self, Fields, Logical, Malformed, Reader};
use crate::time::{TimeCursor, Timestamp};
use std::borrow::Cow;
use std::ops::Range;

/// Counters of one chunk, and its time cursor.
#[derive(Default)]
pub(crate) struct Tally {
    pub records: u64,
    pub null_times: u64,
    pub pairs_expired: u64,
    pub skipped: Vec<(u64, Malformed)>,
    /// Reads the chunk's event times in order.
    pub times: TimeCursor,
}

/// Parses an event time: ISO / US forms, else epoch seconds (Zeek).
#[inline]
fn parse_time(times: &mut TimeCursor, s: &str) -> Option<Timestamp> {
    times.parse(s).or_else(|| Timestamp::parse_epoch(s))
}

/// Whether [`parse_time`] gives a time for `s`, cheaper: for the records the lean
/// pre-filter rules out, whose times are only counted when they do not parse.
#[inline(always)]
fn time_parses(times: &mut TimeCursor, s: &str) -> bool {
    times.parses_quickly(s) || time_parses_slowly(times, s)
}

/// [`time_parses`] past the cursor's shortcut.
#[cold]
#[inline(never)]
fn time_parses_slowly(times: &mut TimeCursor, s: &str) -> bool {
    times.parse(s).is_some() || Timestamp::parse_epoch(s).is_some()
}

/// A quick plausibility check for a DNS name: what no indicator key can equal.
fn plausible_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || matches!(b, b',' | b'/' | b'"' | b'\\'))
}

/// The expiry rule: with [`Expiry::Now`], `expiration > now` (a null expiration is dropped in
/// kql mode, never expires in normalized mode); with [`Expiry::AtEvent`], the event time lies in
/// `[valid_from, expiration)` (no event time: not live).
pub(crate) fn live(opts: &HuntOptions, f: &crate::index::Fixed, t: Option<Timestamp>) -> bool {
    let kql = opts.semantics == Semantics::Kql;
    let before_expiry = |at: Timestamp| match f.expiration {
        Some(e) => at < e,
        None => !kql,
    };
    match opts.expiry {
        Expiry::Now => live_now(opts, f.expiration),
        Expiry::AtEvent => {
            t.is_some_and(|t| f.valid_from.is_none_or(|v| v <= t) && before_expiry(t))
        }
    }
}

/// [`live`] with [`Expiry::Now`], which reads the expiration alone.
pub(crate) fn live_now(opts: &HuntOptions, expiration: Option<Timestamp>) -> bool {
    match expiration {
        Some(e) => e > opts.now,
        None => opts.semantics != Semantics::Kql,
    }
}

pub(crate) struct Matcher<'i, S: AsRef<[u8]>> {
    pub index: &'i Index<S>,
    pub opts: &'i HuntOptions,
}

impl<S: AsRef<[u8]>> Matcher<'_, S> {
    /// Whether record `id` is live for an event at `t`.
    fn live(&self, id: u32, t: Option<Timestamp>) -> Result<bool> {
        Ok(live(self.opts, &self.index.fixed(id)?, t))
    }

    /// Looks up one value of one field, pushing `(record, field)` candidates.
    fn lookup(&self, field: Logical, value: &str, out: &mut Vec<(u32, Logical)>) -> Result<bool> {
        let idx = self.index;
        let mut push = |id: u32| {
            out.push((id, field));
            Ok(())
        };
        let ip_field = self.opts.query == Query::Network || field != Logical::Key;
        match (self.opts.semantics, ip_field) {
            (Semantics::Kql, true) => idx.visit_kql_network_ip(value, &mut push)?,
            (Semantics::Kql, false) => idx.visit_kql_domain_name(value, &mut push)?,
            (Semantics::Normalized, true) => match parse_ip_addr(value) {
                Some(a) => idx.visit_ip(a, &mut push)?,
                None => return Ok(false),
            },
            (Semantics::Normalized, false) => {
                if !plausible_domain(value) {
                    return Ok(false);
                }
                idx.visit_domain(value, self.opts.subdomains, &mut push)?
            }
        }
        Ok(true)
    }

    /// The key of `fields` whose absence from the index a cheap probe can prove (in
    /// [`scan_batched`]), when the query matches its key alone: in kql mode its raw string's
    /// [`KqlFilter`] hash, else its [`Matcher::parsed_probe`].
    #[inline]
    fn probe_key(&self, fields: &Fields<'_>) -> Probe {
        if !self.opts.key_only() {
            return Probe::Unknown;
        }
        let key = fields[Logical::Key as usize].as_deref().unwrap_or("");
        if self.opts.semantics == Semantics::Kql {
            // A KQL join is raw-string equality: the key's bytes are hashed as they stand (no
            // parse, no normalization) for the index's KQL filter. `""` joins the records
            // flagged for it instead.
            return match key {
                "" => Probe::Unknown,
                _ => Probe::Raw(KqlFilter::hash(self.kql_column(), key)),
            };
        }
        self.parsed_probe(key)
    }

    /// The KQL column the query's key joins.
    fn kql_column(&self) -> KqlColumn {
        match self.opts.query {
            Query::Network => KqlColumn::NetworkIp,
            Query::Dns => KqlColumn::DomainName,
        }
    }

    /// The probe of a key parsed or normalized: a valid IPv4 or IPv6 key of the network query,
    /// or a valid name of the DNS query (exact lookups only, or label suffixes in normalized
    /// mode). In kql mode, for the few keys the KQL filter lets through (hits, and about 2 %
    /// of the others), as a second probe.
    #[inline]
    fn parsed_probe(&self, key: &str) -> Probe {
        let kql = self.opts.semantics == Semantics::Kql;
        match self.opts.query {
            Query::Network => match parse_ip_addr(key).map(crate::index::canonical) {
                Some(std::net::IpAddr::V4(a)) => Probe::V4(a),
                Some(std::net::IpAddr::V6(a)) => Probe::V6(a),
                None => Probe::Unknown,
            },
            Query::Dns => match normalize_domain_cow(key) {
                // Normalized mode must still see an implausible name, to count it. A name the
                // normalizer takes unchanged (lowercase letters, digits, `-`, `_`, dots) is
                // plausible without the check.
                Ok(d) if kql || matches!(d, Cow::Borrowed(_)) || plausible_domain(key) => {
                    if kql || !self.opts.subdomains {
                        return Probe::Domain(crate::index::domain_hash(&d));
                    }
                    // Label suffixes (normalized mode): the name and each of its suffixes.
                    let mut h = [0; SUFFIXES];
                    match crate::index::domain_suffix_hashes(&d, &mut h) {
                        Some(n) => Probe::Suffixes(h, n as u8),
                        None => Probe::Unknown,
                    }
                }
                _ => Probe::Unknown,
            },
        }
    }

    /// Matches one record. `cands` is scratch space; `no_match` says the batch's probes ruled
    /// its key out (see [`scan_batched`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        file: u32,
        line: u64,
        fields: &Fields<'_>,
        no_match: bool,
        cands: &mut Vec<(u32, Logical)>,
        out: &mut Vec<Match>,
        tally: &mut Tally,
    ) -> Result<()> {
        tally.records += 1;
        let kql = self.opts.semantics == Semantics::Kql;
        let text = |l: Logical| fields[l as usize].as_deref().unwrap_or("");
        let time = match text(Logical::Time) {
            "" => None,
            s => match parse_time(&mut tally.times, s) {
                Some(t) => Some(t),
                None if kql => {
                    tally.null_times += 1;
                    None
                }
                None => {
                    tally.skipped.push((line, Malformed::BadTime));
                    return Ok(());
                }
            },
        };
        if no_match {
            return Ok(());
        }
        cands.clear();
        let mut any_valid = false;
        for &field in &self.opts.match_fields {
            let value = text(field);
            if field == Logical::Extra {
                // DNS answers: a ", "-separated list, each element an address to look up.
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    any_valid |= self.lookup(field, part, cands)?;
                }
            } else {
                any_valid |= self.lookup(field, value, cands)?;
            }
        }
        if !kql && !any_valid {
            tally.skipped.push((line, Malformed::BadKey));
            return Ok(());
        }
        if cands.is_empty() {
            return Ok(());
        }
        // Indicator order within a record (the filter's `ti` order; hunt sorts the same way).
        cands.sort_unstable_by_key(|&(id, f)| (id, f as u8));
        if !kql {
            // A record with several matching keys (or suffixes) joins once per field.
            cands.dedup();
        }
        for &(id, field) in cands.iter() {
            if !self.live(id, time)? {
                tally.pairs_expired += 1;
                continue;
            }
            let matched_value = match field {
                Logical::Key => String::new(),
                _ => text(field).to_string(),
            };
            out.push(Match {
                time,
                source: text(Logical::Source).to_string(),
                key: text(Logical::Key).to_string(),
                matched: field,
                matched_value,
                record: id,
                file,
                line,
            });
        }
        Ok(())
    }
}

/// A record's key, prepared for the batch's probes; a key they rule out becomes
/// [`Probe::Absent`].
#[derive(Clone, Copy)]
enum Probe {
    /// No cheap proof applies.
    Unknown,
    /// A network event's IPv4 key (IPv4-mapped IPv6 included).
    V4(std::net::Ipv4Addr),
    /// A network event's IPv6 key.
    V6(std::net::Ipv6Addr),
    /// The string-table hash of a DNS event's name, normalized.
    Domain(u64),
    /// The string-table hashes of a DNS event's name, normalized, and of its label suffixes
    /// (the first `n`), for a lookup with subdomains.
    Suffixes([u64; SUFFIXES], u8),
    /// The [`KqlFilter`] hash of a KQL-exact hunt's key.
    Raw(u64),
    /// A key the index has ruled out: the record matches nothing.
    Absent,
}

/// Label suffixes a [`Probe::Suffixes`] holds; a name with more takes the full lookup.
const SUFFIXES: usize = 8;

/// One item of a scanned chunk, in input order.
pub(crate) enum Item<'a> {
    /// A record: its line, byte span and needed fields, and whether the batch's probes ruled
    /// its key out.
    Record(u64, Range<usize>, Fields<'a>, bool),
    /// A record the reader rejected.
    Bad(u64, Range<usize>, Malformed),
}

/// Records per batch (and per batch of the lean pre-filter): enough independent bitmap
/// probes to keep the memory system busy.
const BATCH: usize = 32;

/// Records a [`scan_batched`] in lean mode ruled out before building their fields: they are
/// never handed to its callback, and count here.
#[derive(Debug, Default)]
pub(crate) struct LeanCounts {
    /// Records ruled out.
    pub records: u64,
    /// Of those, the ones with an unparseable time (read as null in kql mode).
    pub null_times: u64,
}

/// A record the lean pre-filter holds until its KQL filter word is read: its line, span,
/// time and key text, and the key's hash.
struct LeanEntry<'a> {
    line: u64,
    span: Range<usize>,
    time: &'a str,
    key: &'a str,
    hash: u64,
}

/// Scans `chunk` and hands its items to `f` in batches whose index probes ran back to back:
/// one record's probe is a likely cache miss (the bitmap is megabytes, the log streams
/// through the cache), and independent misses overlap where dependent per-record work would
/// wait for each in turn. Returns what [`logs::scan`] returns: the chunk's line ends and its
/// CSV quote parity.
///
/// Items come in input order, unless `lean` is given. Then a kql hunt that matches the key
/// alone takes each record's time and key first ([`logs::scan_lean`]) and checks the key's
/// [`KqlFilter`] bit in a batch of its own: the records it rules out (nearly all) are
/// counted in `lean` and never built or handed to `f`, and the others are read again
/// ([`logs::Rereader`]) and join the batches, in order among themselves.
///
/// # Errors
/// [`crate::Error::Log`] when a record the pre-filter passed cannot be read again (which the
/// readers' tests rule out).
pub(crate) fn scan_batched<'a, S: AsRef<[u8]>, F: FnMut(&Item<'a>)>(
    m: &Matcher<'_, S>,
    reader: &Reader,
    chunk: &'a [u8],
    first_line: u64,
    lean: Option<&mut LeanCounts>,
    f: &mut F,
) -> Result<(u64, bool)> {
    let kql = m.opts.semantics == Semantics::Kql;
    let v4 = m.index.v4_filter();
    let names = m.index.domain_filter();
    let v6 = m.index.v6_filter();
    let raw = m.index.kql_filter();
    // The first byte each key's lookup needs (a kql hunt's KQL filter word; the IPv4
    // occupancy bitmap, the string table's filter word of the name and of each label suffix,
    // the IPv6 lone bucket's first-level entry) is prefetched as its record arrives, so that
    // the miss completes while the batch's other records are scanned (network 2M csv, 1
    // thread: 2-8 % less time in four sets of alternating runs; network 2M ndjson 5 %, dns
    // 0-3 %). The batch then reads what those bytes lead to.
    let first_bytes = |key: &Probe| {
        let hashes = match key {
            Probe::V4(a) => return crate::index::prefetch_opt(v4.occupancy_byte(*a)),
            Probe::V6(a) => return crate::index::prefetch_opt(v6.probe_byte(*a, true)),
            Probe::Raw(h) => return crate::index::prefetch_opt(raw.byte(*h)),
            Probe::Domain(h) => std::slice::from_ref(h),
            Probe::Suffixes(h, n) => &h[..usize::from(*n)],
            Probe::Unknown | Probe::Absent => &[],
        };
        for &h in hashes {
            crate::index::prefetch_opt(names.filter_byte(h));
        }
    };
    let flush = |p: &mut Pending<'a>, f: &mut F| {
        let keys = p.keys.get_mut(..p.items.len()).unwrap_or_default();
        // Passes: memory touches, back to back and unconditional so that their cache misses
        // overlap; absence checks on what is now cached; the records.
        let mut bytes: [Option<&u8>; BATCH] = [None; BATCH];
        // The keys of a KQL-exact hunt are decided from their filter words, first of all.
        // The few the filter lets through are probed again, parsed: most of those are false
        // positives, which the passes below then rule out in the batch, where a full lookup
        // each would wait for its misses in turn (2M network.csv: about 80k such keys, 10 % of
        // the hunt's time).
        if keys.iter().any(|k| matches!(k, Probe::Raw(_))) {
            for (key, item) in keys.iter_mut().zip(&p.items) {
                if let (Probe::Raw(h), Item::Record(_, _, fields, _)) = (*key, item) {
                    *key = if raw.maybe(h) {
                        let text = fields[Logical::Key as usize].as_deref().unwrap_or("");
                        let again = m.parsed_probe(text);
                        first_bytes(&again);
                        again
                    } else {
                        Probe::Absent
                    };
                }
            }
        }
        // A name goes through the string table's filter first, which rules out nearly every
        // absent name with one read of a small, cached array; only the names it lets through
        // (hits, and about 1 % of the others) read the directory and their entries.
        if keys
            .iter()
            .any(|k| matches!(k, Probe::Domain(_) | Probe::Suffixes(..)))
        {
            for key in keys.iter_mut() {
                match *key {
                    // (In kql mode a raw `DomainName` string may still match: domain_absent
                    // decides, from the filter and the header flags alone.)
                    Probe::Domain(h) if names.absent(h, kql) => {
                        *key = Probe::Absent;
                    }
                    Probe::Suffixes(h, n) => {
                        *key = if h[..usize::from(n)].iter().any(|&h| names.maybe(h)) {
                            Probe::Unknown
                        } else {
                            Probe::Absent
                        };
                    }
                    _ => {}
                }
            }
        }
        // A name's entries are found through the bucket directory: read those first.
        if keys.iter().any(|k| matches!(k, Probe::Domain(_))) {
            for (byte, key) in bytes.iter_mut().zip(keys.iter()) {
                *byte = match key {
                    Probe::Domain(h) => names.dir_byte(*h),
                    _ => None,
                };
            }
            crate::index::touch(&bytes);
        }
        // IPv4 keys are decided in one tight loop: the occupancy bit of one key does not wait
        // for the previous key's (their cache misses overlap); the few in an occupied block
        // read an interval bit and a lone filter word too.
        if keys.iter().any(|k| matches!(k, Probe::V4(_))) {
            for key in keys.iter_mut() {
                if let Probe::V4(a) = *key {
                    if v4.absent(a, kql) {
                        *key = Probe::Absent;
                    }
                }
            }
        }
        for (byte, key) in bytes.iter_mut().zip(keys.iter()) {
            *byte = match key {
                Probe::Unknown
                | Probe::Absent
                | Probe::Suffixes(..)
                | Probe::V4(_)
                | Probe::Raw(_) => None,
                Probe::V6(a) => v6.probe_byte(*a, false),
                Probe::Domain(h) => {
                    // The entries the lookup will walk (most names here are hits).
                    names.entry_bytes(*h, |b| {
                        if let Some(b) = b {
                            std::hint::black_box(*b);
                        }
                    });
                    None
                }
            };
        }
        crate::index::touch(&bytes);
        for (item, key) in p.items.iter_mut().zip(keys.iter()) {
            if let Item::Record(_, _, _, no_match) = item {
                // An IPv6 key is decided now that its lone bucket is cached; the others were
                // decided above (a domain or IPv4 key past its filter is looked up).
                *no_match = match *key {
                    Probe::Absent => true,
                    Probe::V6(a) => v6.absent(a, kql),
                    _ => false,
                };
            }
        }
        // By reference: moving each item out again would copy its fields a second time.
        for item in &p.items {
            f(item);
        }
        p.items.clear();
    };
    let pending = std::cell::RefCell::new(Pending {
        items: Vec::with_capacity(BATCH),
        keys: [Probe::Unknown; BATCH],
    });
    let f = std::cell::RefCell::new(f);
    // `known`: the probe, when the caller has it.
    let push = |item: Item<'a>, known: Option<Probe>| {
        let key = match (&item, known) {
            (_, Some(key)) => key,
            (Item::Record(_, _, fields, _), None) => m.probe_key(fields),
            (Item::Bad(..), None) => Probe::Unknown,
        };
        first_bytes(&key);
        let mut p = pending.borrow_mut();
        let n = p.items.len();
        if let Some(slot) = p.keys.get_mut(n) {
            *slot = key;
        }
        p.items.push(item);
        if n + 1 == BATCH {
            flush(&mut p, &mut f.borrow_mut());
        }
    };
    let lean_on = lean.is_some() && kql && m.opts.key_only();
    let col = m.kql_column();
    let mut none = LeanCounts::default();
    let counts = std::cell::RefCell::new(lean.unwrap_or(&mut none));
    let lean_batch = std::cell::RefCell::new(Vec::<LeanEntry<'a>>::with_capacity(BATCH));
    let times = std::cell::RefCell::new(TimeCursor::default());
    let error = std::cell::RefCell::new(None);
    let reread = std::cell::RefCell::new(logs::Rereader::new(reader));
    // Whether the index rules a parsed probe out, read at once: the decisions the batch's
    // passes make (see `flush`), for the few keys past the KQL filter.
    let absent_now = |key: Probe| match key {
        Probe::V4(a) => v4.absent(a, kql),
        Probe::V6(a) => v6.absent(a, kql),
        Probe::Domain(h) => names.absent(h, kql),
        Probe::Absent => true,
        Probe::Unknown | Probe::Suffixes(..) | Probe::Raw(_) => false,
    };
    let lean_flush = |batch: &mut Vec<LeanEntry<'a>>| {
        let mut counts = counts.borrow_mut();
        for e in batch.drain(..) {
            // Past the KQL filter: the second, parsed probe, which rules out most of the
            // filter's false positives (a DNS log's repeated names make those 4 % of its
            // records) before their records are read again.
            let again = raw.maybe(e.hash).then(|| m.parsed_probe(e.key));
            if let Some(key) = again.filter(|&k| !absent_now(k)) {
                let fields = reread.borrow_mut().fields_at(chunk, e.span.clone());
                match fields {
                    Some(fields) => push(Item::Record(e.line, e.span, fields, false), Some(key)),
                    None => {
                        error.borrow_mut().get_or_insert_with(|| Error::Log {
                            file: String::new(),
                            message: format!(
                                "line {}: internal error: the record could not be read again",
                                e.line
                            ),
                        });
                    }
                }
            } else {
                counts.records += 1;
                if !e.time.is_empty() && !time_parses(&mut times.borrow_mut(), e.time) {
                    counts.null_times += 1;
                }
            }
        }
    };
    let end = logs::scan_lean(
        reader,
        chunk,
        first_line,
        &mut |line, span, time, key| {
            // `""` joins the records flagged for it: the full path.
            if !lean_on || key.is_empty() {
                return false;
            }
            let hash = KqlFilter::hash(col, key);
            crate::index::prefetch_opt(raw.byte(hash));
            let mut batch = lean_batch.borrow_mut();
            batch.push(LeanEntry {
                line,
                span,
                time,
                key,
                hash,
            });
            if batch.len() == BATCH {
                lean_flush(&mut batch);
            }
            true
        },
        &mut |line, span, fields| push(Item::Record(line, span, fields, false), None),
        &mut |line, span, why| push(Item::Bad(line, span, why), None),
    );
    lean_flush(&mut lean_batch.borrow_mut());
    flush(&mut pending.borrow_mut(), &mut f.borrow_mut());
    match error.into_inner() {
        Some(e) => Err(e),
        None => Ok(end),
    }
}

/// A batch being filled: its items, and `keys[i]`, the probe of `items[i]`.
struct Pending<'a> {
    items: Vec<Item<'a>>,
    keys: [Probe; BATCH],
}
