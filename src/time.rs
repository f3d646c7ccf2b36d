//! Timestamps at KQL's precision (100 ns ticks) and the date spellings real feeds and exports use.
//!
//! Every datetime in iocmatch is a [`Timestamp`]: signed 100-nanosecond ticks since the Unix epoch,
//! UTC. That is the resolution of Kusto's `datetime`, so comparisons such as
//! `ExpirationDateTime > now()` give the same answer here as in Sentinel. Parsing never allocates,
//! which lets the log readers call it in their hot loop.

use std::fmt;

/// 100 ns ticks per second.
pub const TICKS_PER_SEC: i64 = 10_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// A point in time: 100 ns ticks since 1970-01-01T00:00:00Z.
///
/// Covers years 1 to 9999 (KQL's range); [`Timestamp::MAX`] is `9999-12-31T23:59:59.9999999Z`,
/// which some exports write for "never expires".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// `0001-01-01T00:00:00Z`.
    pub const MIN: Timestamp = Timestamp(-62_135_596_800 * TICKS_PER_SEC);
    /// `9999-12-31T23:59:59.9999999Z`, KQL's `datetime(max)`.
    pub const MAX: Timestamp = Timestamp(253_402_300_800 * TICKS_PER_SEC - 1);

    /// Builds a timestamp from ticks, or `None` outside `MIN..=MAX`.
    pub fn from_ticks(ticks: i64) -> Option<Timestamp> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&ticks)
            .then_some(Timestamp(ticks))
    }

    /// 100 ns ticks since the Unix epoch.
    pub fn ticks(self) -> i64 {
        self.0
    }

    /// Builds a timestamp from whole seconds since the Unix epoch.
    pub fn from_unix_secs(secs: i64) -> Option<Timestamp> {
        secs.checked_mul(TICKS_PER_SEC).and_then(Self::from_ticks)
    }

    /// The current time of the system clock (the CLI's default for `now()`).
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ticks = i64::try_from(d.as_nanos() / 100).unwrap_or(Self::MAX.0);
        Timestamp(ticks.min(Self::MAX.0))
    }

    /// Parses any of the spellings feeds and exports use, returning `None` when `s` is none of them:
    ///
    /// * RFC 3339 / ISO 8601: `2026-11-28T16:48:49.1234567Z`, 0 or more fraction digits (kept to
    ///   100 ns, further digits truncated), `T` or a space, zone `Z`, `+hh:mm`, `+hhmm`, `+hh`
    ///   or none (UTC); also a bare date `2026-11-28`.
    /// * US dates: `11/28/2026`, and the Log Analytics portal export form
    ///   `11/28/2026, 4:48:49.123 PM` (comma optional, seconds and fraction optional, 12-hour clock
    ///   when `AM`/`PM` follows, 24-hour clock otherwise).
    ///
    /// Leading and trailing ASCII whitespace is ignored.
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.trim_ascii().as_bytes();
        if b.len() >= 8 && b[4] == b'-' {
            parse_iso(b)
        } else {
            parse_us(b)
        }
    }

    /// Parses Zeek's epoch seconds with an optional fraction (`1732812529.123456`).
    pub fn parse_epoch(s: &str) -> Option<Timestamp> {
        let b = s.trim_ascii().as_bytes();
        let (neg, b) = match b.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, b),
        };
        let dot = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
        let (int, frac) = (&b[..dot], b.get(dot + 1..).unwrap_or(&[]));
        if int.is_empty() || int.len() > 12 || (dot < b.len() && frac.is_empty()) {
            return None;
        }
        let secs = digits(int)?;
        let ticks = secs.checked_mul(TICKS_PER_SEC)? + fraction_ticks(frac)?;
        Self::from_ticks(if neg { -ticks } else { ticks })
    }

    /// Splits into (year, month, day, hour, minute, second, 100 ns ticks within the second).
    pub fn to_parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.0.div_euclid(TICKS_PER_SEC);
        let sub = self.0.rem_euclid(TICKS_PER_SEC) as u32;
        let days = secs.div_euclid(SECS_PER_DAY);
        let sod = secs.rem_euclid(SECS_PER_DAY) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, sod / 3600, sod / 60 % 60, sod % 60, sub)
    }
}

/// KQL's rendering: `yyyy-MM-ddTHH:mm:ss[.fffffff]Z`, trailing fraction zeros trimmed.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, len) = self.iso_bytes();
        f.write_str(std::str::from_utf8(&b[..len]).map_err(|_| fmt::Error)?)
    }
}

impl Timestamp {
    /// Appends the [`Display`](fmt::Display) form to `out`, without the formatting machinery
    /// (for output rows written by the thousand).
    pub fn push_to(&self, out: &mut Vec<u8>) {
        let (b, len) = self.iso_bytes();
        out.extend_from_slice(&b[..len]);
    }

    /// The display form's bytes and length: written as bytes (a compile writes a million).
    /// Every timestamp lies in years 1-9999 (`MIN..=MAX`), so four digits hold the year.
    fn iso_bytes(&self) -> ([u8; 28], usize) {
        let (y, mo, d, h, mi, s, sub) = self.to_parts();
        let mut b = *b"0000-00-00T00:00:00.0000000Z";
        let put = |b: &mut [u8], at: usize, v: u32, n: usize| {
            let mut v = v;
            for k in (at..at + n).rev() {
                b[k] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(&mut b, 0, u32::try_from(y).unwrap_or(0), 4);
        for (at, v) in [(5, mo), (8, d), (11, h), (14, mi), (17, s)] {
            put(&mut b, at, v, 2);
        }
        let mut end = 19;
        if sub != 0 {
            put(&mut b, 20, sub, 7);
            end = 27;
            while b[end - 1] == b'0' {
                end -= 1;
            }
        }
        b[end] = b'Z';
        (b, end + 1)
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Ticks from fraction digits: the first seven count, the rest must be digits and are truncated.
fn fraction_ticks(frac: &[u8]) -> Option<i64> {
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = 0i64;
    for i in 0..7 {
        v = v * 10 + frac.get(i).map_or(0, |&c| i64::from(c - b'0'));
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Assembles a timestamp from validated calendar fields.
#[allow(clippy::too_many_arguments)]
fn assemble(
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    sub: i64,
    offset_secs: i64,
) -> Option<Timestamp> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    // A leap second (":60") is folded into the next second's start, as most parsers do.
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * SECS_PER_DAY
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s)
        - offset_secs;
    Timestamp::from_ticks(secs.checked_mul(TICKS_PER_SEC)?.checked_add(sub)?)
}

/// The layout logs write most, `yyyy-MM-ddTHH:mm:ss[.f{1,7}]Z`, read at fixed offsets: `None`
/// when `b` has another layout (the general parser decides), else the parse result.
#[inline]
fn parse_iso_fixed(b: &[u8]) -> Option<Option<Timestamp>> {
    let (date, sub) = fixed_then_fraction(b, 19)?;
    let d2 = |i: usize| two_digits(date, i);
    if date[4] != b'-' || date[7] != b'-' || date[10] != b'T' || date[13] != b':' {
        return None;
    }
    if date[16] != b':' {
        return None;
    }
    let y = d2(0)? * 100 + d2(2)?;
    let (mo, d, h, mi, s) = (d2(5)?, d2(8)?, d2(11)?, d2(14)?, d2(17)?);
    Some(assemble(i64::from(y), mo, d, h, mi, s, sub, 0))
}

/// Splits `<fixed bytes>[.f{1,7}]Z` into the fixed part (`len` bytes, unchecked) and the
/// fraction as ticks; `None` for any other shape.
#[inline]
fn fixed_then_fraction(b: &[u8], len: usize) -> Option<(&[u8], i64)> {
    let (&b'Z', body) = b.split_last()? else {
        return None;
    };
    let (fixed, frac) = match body.len().checked_sub(len)? {
        0 => (body, &[][..]),
        2..=8 if body[len] == b'.' => (&body[..len], &body[len + 1..]),
        _ => return None,
    };
    Some((fixed, ticks7(frac)?))
}

/// [`fraction7z`]'s check: `.` and seven digits then `Z`, as one word of eight digits (a `0`
/// first).
#[cfg(test)]
fn fraction7z_digits(b: &[u8]) -> Option<u64> {
    let (&b'.', rest) = b.split_first()? else {
        return None;
    };
    let w = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    if rest.len() != 8 || w >> 56 != u64::from(b'Z') {
        return None;
    }
    let d = w << 8 | u64::from(b'0');
    // Every byte in '0'..='9': high nibble 3, and still 3 after adding 6 to the low one (a
    // carry out of a byte comes only from a byte that already fails).
    const HI: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    let ok = (d & HI) | ((d.wrapping_add(0x0606_0606_0606_0606) & HI) >> 4);
    (ok == 0x3333_3333_3333_3333).then_some(d)
}

/// `.fffffffZ` (exactly seven fraction digits) as 100 ns ticks, `None` for any other shape:
/// the checked form of [`fraction7_ticks`], for the test against the digit loop (the
/// same-minute shortcut checks the whole layout first).
#[cfg(test)]
fn fraction7z(b: &[u8]) -> Option<i64> {
    fraction7z_digits(b).map(fraction7_ticks)
}

/// Eight ASCII digits (a `0`, then the seven of a fraction) read as one little-endian word,
/// as 100 ns ticks: combined with three multiplies (digit pairs, then quads, then the eight),
/// without a loop.
#[inline]
fn fraction7_ticks(d: u64) -> i64 {
    let v = (d & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561) >> 8;
    let v = (v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601) >> 16;
    let v = (v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001) >> 32;
    v as i64
}

/// The same-minute shortcut's layout of a time's bytes 12-27 (`H:mm:ss.fffffffZ`), a `0`
/// standing for any digit.
const MINUTE_TAIL: &[u8; 16] = b"0:00:00.0000000Z";

/// The digit positions of [`MINUTE_TAIL`] (bit `j` for byte `j`).
const MINUTE_TAIL_DIGITS: u16 = digit_positions(MINUTE_TAIL);

/// The positions of the `0` bytes of `layout`, as bits.
const fn digit_positions(layout: &[u8; 16]) -> u16 {
    let mut bits = 0;
    let mut j = 0;
    while j < 16 {
        if layout[j] == b'0' {
            bits |= 1 << j;
        }
        j += 1;
    }
    bits
}

/// The two ASCII digits at `b[i..i + 2]` as a number.
#[inline]
fn two_digits(b: &[u8], i: usize) -> Option<u32> {
    let (h, l) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    (h < 10 && l < 10).then(|| u32::from(h) * 10 + u32::from(l))
}

/// Up to seven fraction digits as 100 ns ticks (`None` on a non-digit).
#[inline]
fn ticks7(frac: &[u8]) -> Option<i64> {
    let mut sub = 0i64;
    for k in 0..7 {
        let digit = match frac.get(k) {
            Some(c) if c.is_ascii_digit() => i64::from(c - b'0'),
            Some(_) => return None,
            None => 0,
        };
        sub = sub * 10 + digit;
    }
    Some(sub)
}

/// Parses the times of one log in order, as [`Timestamp::parse`] does, remembering the hour
/// of the last `yyyy-MM-ddTHH:mm:ss[.f{1,7}]Z` time it read: a log's consecutive records
/// nearly always share it, and then only the minutes, seconds and fraction are left to read.
/// It also remembers the minute of the last such time with seven fraction digits (the layout
/// Sentinel and most .NET writers use): a log's next record nearly always shares that too, and
/// then only the seconds and the fraction are read, the fraction eight bytes at once.
#[derive(Clone, Debug, Default)]
pub struct TimeCursor {
    /// `yyyy-MM-ddTHH` of the last fixed-layout time, when `base` is known.
    hour: [u8; 13],
    /// Ticks at the start of that hour.
    base: Option<i64>,
    /// `yyyy-MM-ddTHH:mm` of the last fixed-layout time with seven fraction digits, and the
    /// ticks at the start of that minute.
    minute: Option<([u8; 16], i64)>,
}

impl TimeCursor {
    /// [`Timestamp::parse`], with the shortcuts above.
    #[inline]
    pub fn parse(&mut self, s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if let Some(start) = self.same_minute(b) {
            // The layout is checked: two second digits, and seven fraction digits after the
            // `.` at byte 19, read with a `0` in its place.
            let s = i64::from(b[17].wrapping_sub(b'0')) * 10 + i64::from(b[18].wrapping_sub(b'0'));
            let frac = b
                .get(19..27)
                .and_then(|w| w.try_into().ok())
                .map(u64::from_le_bytes);
            if let Some(w) = frac {
                let sub = fraction7_ticks(w & !0xFF | u64::from(b'0'));
                return Timestamp::from_ticks(start + s * TICKS_PER_SEC + sub);
            }
        }
        if let Some(base) = self.base {
            if b.get(..13) == Some(&self.hour[..]) {
                if let Some(t) = within_hour(&b[13..], base) {
                    // 28 bytes in this layout: seven fraction digits, what the shortcut reads.
                    if let (Some((_, start)), 28) = (t, b.len()) {
                        self.minute = b[..16].try_into().ok().map(|text| (text, start));
                    }
                    return t.map(|(t, _)| t);
                }
            }
        }
        let t = Timestamp::parse(s);
        if t.is_some() && b.len() >= 20 {
            self.learn(b);
        }
        t
    }

    /// Whether [`TimeCursor::parse`] gives a time for `s`: on the same-minute shortcut, from
    /// the layout alone (no value is computed), else through `parse`.
    #[inline]
    pub fn parses(&mut self, s: &str) -> bool {
        self.parses_quickly(s) || self.parse(s).is_some()
    }

    /// `true` when [`TimeCursor::parses`] is, decided from the remembered minute alone;
    /// `false` otherwise (also for some times that parse): the shortcut's case, small enough
    /// to inline where nearly every time takes it. Every second of the minute (to a leap
    /// second's end) is in range, so the shortcut gives a time.
    #[inline(always)]
    pub(crate) fn parses_quickly(&self, s: &str) -> bool {
        self.same_minute(s.as_bytes())
            .is_some_and(|start| start + 61 * TICKS_PER_SEC <= Timestamp::MAX.0)
    }

    /// The ticks at the start of the remembered minute, for a time in the shortcut's case: 28
    /// bytes in that minute, the layout `H:mm:ss.fffffffZ` from byte 12 (checked in one step),
    /// seconds up to 60 (as `within_hour` reads them: `:60`, a leap second, folds into the
    /// next minute; other seconds take the hour's path, which rejects them).
    #[inline(always)]
    fn same_minute(&self, b: &[u8]) -> Option<i64> {
        let (text, start) = self.minute.as_ref()?;
        let tail: &[u8; 16] = b.get(12..28)?.try_into().ok()?;
        (b.len() == 28
            && b[..16] == text[..]
            && crate::blockmask::lane_layout(tail, MINUTE_TAIL, MINUTE_TAIL_DIGITS)
            && u16::from_be_bytes([b[17], b[18]]) <= u16::from_be_bytes(*b"60"))
        .then_some(*start)
    }

    /// Remembers the hour of `b` if it has the fixed layout.
    #[cold]
    fn learn(&mut self, b: &[u8]) {
        if !matches!(parse_iso_fixed(b), Some(Some(_))) {
            return;
        }
        let mut start = *b"0000-00-00T00:00:00Z";
        start[..13].copy_from_slice(&b[..13]);
        if let Some(Some(t)) = parse_iso_fixed(&start) {
            self.hour.copy_from_slice(&b[..13]);
            self.base = Some(t.0);
        }
    }
}

/// The rest of a fixed-layout time after its hour, `:mm:ss[.f{1,7}]Z`, added to the hour's
/// ticks: `None` when `rest` has another layout, else the parse result (as
/// [`parse_iso_fixed`] would give for the whole string) with the ticks at the start of its
/// minute.
#[inline]
fn within_hour(rest: &[u8], base: i64) -> Option<Option<(Timestamp, i64)>> {
    let (ms, sub) = fixed_then_fraction(rest, 6)?;
    if ms[0] != b':' || ms[3] != b':' {
        return None;
    }
    let (mi, s) = (i64::from(two_digits(ms, 1)?), i64::from(two_digits(ms, 4)?));
    // As `assemble` checks (a leap second folds into the next minute).
    if mi > 59 || s > 60 {
        return Some(None);
    }
    let minute = base + mi * 60 * TICKS_PER_SEC;
    Some(Timestamp::from_ticks(minute + s * TICKS_PER_SEC + sub).map(|t| (t, minute)))
}

/// A tiny cursor over ASCII bytes.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        u32::try_from(digits(&self.b[start..self.i])?).ok()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn rest(&self) -> &'a [u8] {
        &self.b[self.i..]
    }
    fn fraction(&mut self) -> Option<i64> {
        if !self.eat(b'.') && !self.eat(b',') {
            return Some(0);
        }
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        fraction_ticks(&self.b[start..self.i])
    }
}

fn parse_iso(b: &[u8]) -> Option<Timestamp> {
    match parse_iso_fixed(b) {
        Some(t) => t,
        None => parse_iso_general(b),
    }
}

/// Any ISO 8601 layout [`Timestamp::parse`] accepts.
fn parse_iso_general(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cur { b, i: 0 };
    let y = c.num(4, 4)?;
    if !c.eat(b'-') {
        return None;
    }
    let mo = c.num(2, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    let d = c.num(2, 2)?;
    let (mut h, mut mi, mut s, mut sub) = (0, 0, 0, 0);
    if c.eat(b'T') || c.eat(b't') || c.eat(b' ') {
        h = c.num(2, 2)?;
        if !c.eat(b':') {
            return None;
        }
        mi = c.num(2, 2)?;
        if c.eat(b':') {
            s = c.num(2, 2)?;
            sub = c.fraction()?;
        }
    }
    let offset = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.num(2, 2)?;
            c.eat(b':');
            let om = if c.peek().is_some() { c.num(2, 2)? } else { 0 };
            if oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        Some(_) => return None,
    };
    if !c.rest().is_empty() {
        return None;
    }
    assemble(i64::from(y), mo, d, h, mi, s, sub, offset)
}

fn parse_us(b: &[u8]) -> Option<Timestamp> {
    let mut c = Cur { b, i: 0 };
    let mo = c.num(1, 2)?;
    if !c.eat(b'/') {
        return None;
    }
    let d = c.num(1, 2)?;
    if !c.eat(b'/') {
        return None;
    }
    let y = c.num(4, 4)?;
    let (mut h, mut mi, mut s, mut sub) = (0, 0, 0, 0);
    c.eat(b',');
    if c.eat(b' ') {
        while c.eat(b' ') {}
        h = c.num(1, 2)?;
        if !c.eat(b':') {
            return None;
        }
        mi = c.num(2, 2)?;
        if c.eat(b':') {
            s = c.num(2, 2)?;
            sub = c.fraction()?;
        }
        while c.eat(b' ') {}
        let rest = c.rest();
        if !rest.is_empty() {
            let pm = if rest.eq_ignore_ascii_case(b"PM") {
                true
            } else if rest.eq_ignore_ascii_case(b"AM") {
                false
            } else {
                return None;
            };
            if h == 0 || h > 12 {
                return None;
            }
            h = (h % 12) + if pm { 12 } else { 0 };
            c.i = c.b.len();
        }
    }
    if !c.rest().is_empty() {
        return None;
    }
    assemble(i64::from(y), mo, d, h, mi, s, sub, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte formatter equals the formatting-machinery rendering (and parses back) on
    /// random instants over the whole range, with and without fractions.
    #[test]
    fn display_matches_the_format_macro_rendering() {
        let mut rng = crate::gen::Rng::new(0x7157);
        let (lo, hi) = (Timestamp::MIN.0, Timestamp::MAX.0);
        for i in 0..200_000u64 {
            let mut t = lo + (rng.next_u64() % (hi - lo) as u64) as i64;
            if i % 3 == 0 {
                t -= t.rem_euclid(TICKS_PER_SEC); // whole seconds
            } else if i % 3 == 1 {
                t -= t.rem_euclid(10_000); // milliseconds
            }
            let Some(ts) = Timestamp::from_ticks(t) else {
                continue;
            };
            let (y, mo, d, h, mi, s, sub) = ts.to_parts();
            let mut want = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if sub != 0 {
                want.push_str(format!(".{sub:07}").trim_end_matches('0'));
            }
            want.push('Z');
            assert_eq!(ts.to_string(), want);
            assert_eq!(Timestamp::parse(&want), Some(ts), "{want}");
        }
    }

    /// The cursor gives [`Timestamp::parse`]'s answer on sequences that mostly stay within an
    /// hour (its shortcut), with mutated bytes, other layouts, leap seconds, invalid minutes
    /// and the ends of the range mixed in.
    #[test]
    fn time_cursor_agrees_with_parse() {
        let mut rng = crate::gen::Rng::new(0x7143_0001);
        let mut next = move |n: u64| rng.below(n);
        let hours = [
            "2024-12-02T00",
            "2024-02-29T23",
            "2023-02-29T10",
            "9999-12-31T23",
            "0001-01-01T00",
            "2024-12-02T24",
        ];
        let alphabet = b"0123456789:.Z zT-";
        let mut cursor = TimeCursor::default();
        let mut checker = TimeCursor::default();
        let mut shortcut_valid = 0;
        let mut hour = hours[0];
        for _ in 0..300_000 {
            if next(8) == 0 {
                hour = hours[next(hours.len() as u64) as usize];
            }
            let frac = match next(3) {
                0 => String::new(),
                _ => format!(
                    ".{}",
                    &format!("{:07}", next(10_000_000))[..1 + next(7) as usize]
                ),
            };
            let mut s = format!("{hour}:{:02}:{:02}{frac}Z", next(62), next(62)).into_bytes();
            if next(4) == 0 {
                let at = next(s.len() as u64) as usize;
                s[at] = alphabet[next(alphabet.len() as u64) as usize];
            }
            if next(20) == 0 {
                s = b"2024-12-02 00:00:01".to_vec();
            }
            let text = String::from_utf8(s).unwrap();
            let before = cursor.base.is_some() && text.as_bytes().get(..13) == Some(&cursor.hour);
            let got = cursor.parse(&text);
            assert_eq!(got, Timestamp::parse(&text), "{text}");
            assert_eq!(checker.parses(&text), got.is_some(), "{text}");
            shortcut_valid += usize::from(before && got.is_some());
        }
        assert!(
            shortcut_valid > 50_000,
            "shortcut taken {shortcut_valid} times"
        );
    }

    /// [`fraction7z`] agrees with the loop that reads a fraction digit by digit, on every
    /// byte in every position and on random digits.
    #[test]
    fn fraction7z_agrees_with_the_digit_loop() {
        let reference = |b: &[u8]| -> Option<i64> {
            let frac = b.strip_prefix(b".")?.strip_suffix(b"Z")?;
            (frac.len() == 7).then_some(())?;
            ticks7(frac)
        };
        let mut rng = crate::gen::Rng::new(0x7143_0002);
        let mut checked = 0;
        for _ in 0..20_000 {
            let mut s = format!(".{:07}Z", rng.below(10_000_000)).into_bytes();
            assert_eq!(fraction7z(&s), reference(&s), "{s:?}");
            assert!(fraction7z(&s).is_some());
            let at = rng.below(9) as usize;
            for c in 0..=255u8 {
                s[at] = c;
                assert_eq!(fraction7z(&s), reference(&s), "{s:?}");
                checked += 1;
            }
        }
        assert!(checked > 5_000_000);
        for bad in [&b".1234567Z "[..], b".123456Z", b".12345678", b"", b"."] {
            assert_eq!(fraction7z(bad), None, "{bad:?}");
        }
    }

    /// The cursor's same-minute shortcut gives [`Timestamp::parse`]'s answer on runs of times
    /// within one minute (seven fraction digits, as busy logs write them), with mutated bytes,
    /// other fraction lengths, leap seconds, invalid seconds and the ends of the range mixed
    /// in.
    #[test]
    fn time_cursor_same_minute_shortcut_agrees_with_parse() {
        let mut rng = crate::gen::Rng::new(0x7143_0003);
        let mut next = move |n: u64| rng.below(n);
        let seconds = [
            "2024-12-02T00:00:00",
            "2024-12-31T23:59:60",
            "2024-02-29T12:34:56",
            "9999-12-31T23:59:59",
            "0001-01-01T00:00:00",
            "2024-12-02T00:60:00",
        ];
        // `/` and `;` border the digits and the colon.
        let alphabet = b"0123456789:.Z zT-/;";
        let mut cursor = TimeCursor::default();
        // One driven by `parses` alone, as the lean pre-filter drives its cursor.
        let mut checker = TimeCursor::default();
        let mut shortcut = 0;
        let mut second = seconds[0];
        for _ in 0..300_000 {
            if next(10) == 0 {
                second = seconds[next(seconds.len() as u64) as usize];
            }
            let digits = if next(8) == 0 { next(9) } else { 7 } as usize;
            let frac = format!("{:07}", next(10_000_000));
            let frac = match digits {
                0 => String::new(),
                n => format!(".{}", &frac[..n.min(7)]) + &"5".repeat(n.saturating_sub(7)),
            };
            // Another second of the same minute, now and then an invalid one.
            let sec = match next(4) {
                0 => format!("{:02}", next(62)),
                1 => format!("{:02}", 60 + next(40)),
                _ => second[17..].to_string(),
            };
            let mut s = format!("{}{sec}{frac}Z", &second[..17]).into_bytes();
            if next(5) == 0 {
                let at = next(s.len() as u64) as usize;
                s[at] = alphabet[next(alphabet.len() as u64) as usize];
            }
            let text = String::from_utf8(s).unwrap();
            let taken = cursor
                .minute
                .is_some_and(|(t, _)| text.len() == 28 && text.as_bytes()[..16] == t);
            let got = cursor.parse(&text);
            assert_eq!(got, Timestamp::parse(&text), "{text}");
            assert_eq!(checker.parses(&text), got.is_some(), "{text}");
            shortcut += usize::from(taken && got.is_some());
        }
        assert!(shortcut > 100_000, "shortcut taken {shortcut} times");
    }

    /// The fixed-offset fast path agrees with the general parser wherever it answers, and
    /// answers for the common layout.
    #[test]
    fn fixed_layout_fast_path_agrees_with_general_parser() {
        let mut rng = crate::gen::Rng::new(0x9e37_79b9_7f4a_7c15u64);
        let mut next = move |n: u64| rng.below(n);
        let alphabet = b"0123456789-:Tt .Zz+,";
        let mut answered = 0;
        for _ in 0..200_000 {
            let digits = next(9) as usize; // 0..=8 fraction digits
            let mut s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                next(10_000),
                next(14),
                next(33),
                next(26),
                next(61),
                next(62)
            )
            .into_bytes();
            if digits > 0 {
                s.push(b'.');
                for _ in 0..digits {
                    s.push(b'0' + next(10) as u8);
                }
            }
            s.push(b'Z');
            for _ in 0..next(3) {
                let at = next(s.len() as u64) as usize;
                s[at] = alphabet[next(alphabet.len() as u64) as usize];
            }
            if let Some(fast) = parse_iso_fixed(&s) {
                answered += 1;
                assert_eq!(
                    fast,
                    parse_iso_general(&s),
                    "{}",
                    String::from_utf8_lossy(&s)
                );
            }
        }
        assert!(
            answered > 50_000,
            "the fast path answered only {answered} times"
        );
        let t = Timestamp::parse("2024-05-01T12:34:56.1234567Z").unwrap();
        assert_eq!(
            parse_iso_fixed(b"2024-05-01T12:34:56.1234567Z"),
            Some(Some(t))
        );
    }

    fn ts(s: &str) -> String {
        Timestamp::parse(s).map_or_else(|| "-".to_string(), |t| t.to_string())
    }

    #[test]
    fn iso_forms() {
        assert_eq!(ts("2026-11-28T16:48:49Z"), "2026-11-28T16:48:49Z");
        assert_eq!(
            ts("2026-11-28T16:48:49.1234567Z"),
            "2026-11-28T16:48:49.1234567Z"
        );
        assert_eq!(
            ts("2026-11-28T16:48:49.123456789Z"),
            "2026-11-28T16:48:49.1234567Z"
        );
        assert_eq!(ts("2026-11-28T16:48:49.100Z"), "2026-11-28T16:48:49.1Z");
        assert_eq!(ts("2026-11-28T16:48:49"), "2026-11-28T16:48:49Z");
        assert_eq!(ts("2026-11-28 16:48:49"), "2026-11-28T16:48:49Z");
        assert_eq!(ts("2026-11-28T16:48Z"), "2026-11-28T16:48:00Z");
        assert_eq!(ts("2026-11-28T16:48:49+02:00"), "2026-11-28T14:48:49Z");
        assert_eq!(ts("2026-11-28T16:48:49-0130"), "2026-11-28T18:18:49Z");
        assert_eq!(ts("2026-11-28"), "2026-11-28T00:00:00Z");
        assert_eq!(ts("1969-12-31T23:59:59.9Z"), "1969-12-31T23:59:59.9Z");
        assert_eq!(
            ts("9999-12-31T23:59:59.9999999Z"),
            "9999-12-31T23:59:59.9999999Z"
        );
        assert_eq!(
            Timestamp::parse("9999-12-31T23:59:59.9999999Z"),
            Some(Timestamp::MAX)
        );
        assert_eq!(ts("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn us_forms() {
        assert_eq!(ts("12/7/2022"), "2022-12-07T00:00:00Z");
        assert_eq!(ts("11/28/2026, 4:48:49.123 PM"), "2026-11-28T16:48:49.123Z");
        assert_eq!(ts("11/28/2026, 12:00:00.000 AM"), "2026-11-28T00:00:00Z");
        assert_eq!(ts("11/28/2026, 12:30:00 PM"), "2026-11-28T12:30:00Z");
        assert_eq!(ts("11/28/2026 16:48:49"), "2026-11-28T16:48:49Z");
        assert_eq!(
            ts("12/31/9999, 11:59:59.999 PM"),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-29",
            "2026-11-28T24:00:00Z",
            "2026-11-28X",
            "2026-11-28T16:48:49.Z",
            "13/1/2026",
            "1/1/2026, 13:00 PM",
            "now",
            "2026-11-28T16:48:49+25:00",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad:?}");
        }
        assert_eq!(ts("2024-02-29"), "2024-02-29T00:00:00Z");
    }

    #[test]
    fn epoch() {
        let t = Timestamp::parse_epoch("1732812529.123456").unwrap();
        assert_eq!(t.to_string(), "2024-11-28T16:48:49.123456Z");
        assert_eq!(Timestamp::parse_epoch("0").unwrap().ticks(), 0);
        assert_eq!(Timestamp::parse_epoch("1."), None);
        assert_eq!(Timestamp::parse_epoch("abc"), None);
        assert_eq!(Timestamp::parse_epoch("-"), None);
    }

    #[test]
    fn roundtrip_days() {
        for days in (-719_162..2_932_896).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
