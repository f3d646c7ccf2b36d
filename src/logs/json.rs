//! NDJSON log records: one JSON object per line, fields by top-level key, literal dotted key
//! (Zeek's `id.orig_h`) or nested path (`source.ip`). A small scanner reads only the wanted
//! values and skips everything else without building a DOM; strings borrow from the input
//! unless they contain escapes.

use super::{Fields, Malformed, Prepared, Reader, Schema, LOGICAL, MAX_RECORD};
use crate::blockmask::scalar_end;
use std::borrow::Cow;

/// The key path of each logical field (`None` = not read).
#[derive(Clone, Debug)]
pub struct Paths {
    /// Segments per logical field.
    pub paths: [Option<Vec<String>>; LOGICAL],
    /// Per top-level key length (the last slot: that length or more), the fields whose first
    /// segment has it: most keys of a record are settled by one lookup, without a comparison.
    first_by_len: [u8; 64],
}

impl Paths {
    /// The paths of the logical fields.
    pub fn new(paths: [Option<Vec<String>>; LOGICAL]) -> Paths {
        let mut first_by_len = [0u8; 64];
        for (i, p) in paths.iter().enumerate() {
            if let Some(first) = p.as_ref().and_then(|p| p.first()) {
                first_by_len[first.len().min(63)] |= 1 << i;
            }
        }
        Paths {
            paths,
            first_by_len,
        }
    }
}

/// How many lines of the first block are sampled for key names.
const SAMPLE_LINES: usize = 200;

pub(super) fn prepare(
    head: &[u8],
    candidates: &[Vec<String>; LOGICAL],
) -> Result<Prepared, String> {
    // Keys (and nested paths, dotted) seen in the first lines: Zeek JSON omits unset fields,
    // so one line is not enough.
    let mut seen: Vec<String> = Vec::new();
    let mut parsed_any = false;
    for line in head.split(|&b| b == b'\n').take(SAMPLE_LINES) {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let mut keys = Vec::new();
        if collect_keys(line, 0, "", &mut keys, 0).is_some() {
            parsed_any = true;
            for k in keys {
                if !seen.contains(&k) {
                    seen.push(k);
                }
            }
        }
    }
    // A first record longer than the head (which holds MAX_RECORD bytes at most) is too long
    // to read anyway: it is skipped as such, and the fields are looked up by their first
    // candidate names, as when the sample lacks them.
    let first_too_long = head.len() >= MAX_RECORD && !head.contains(&b'\n');
    if !parsed_any && !first_too_long && head.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err("the first lines are not JSON objects".into());
    }
    let found = super::resolve(&seen, candidates);
    let mut schema = Schema::default();
    let mut paths: [Option<Vec<String>>; LOGICAL] = Default::default();
    for i in 0..LOGICAL {
        // A name not seen in the sample is still read (it may appear later); the first
        // candidate is the default.
        let name = match found[i] {
            Some(j) => Some(seen[j].clone()),
            None => candidates[i].first().cloned(),
        };
        if let Some(n) = name {
            paths[i] = Some(split_path(&n, &seen));
            schema.names[i] = Some(n);
        }
    }
    Ok(Prepared {
        reader: Reader::Json(Paths::new(paths)),
        header_len: 0,
        header_lines: 0,
        schema,
        columns: seen,
    })
}

/// A literal key containing dots stays one segment when records have it (Zeek); otherwise
/// the name is a nested path.
fn split_path(name: &str, seen_literal: &[String]) -> Vec<String> {
    if !name.contains('.')
        || seen_literal.iter().any(|s| s == name) && !is_nested(name, seen_literal)
    {
        vec![name.to_string()]
    } else {
        name.split('.').map(str::to_string).collect()
    }
}

fn is_nested(name: &str, seen: &[String]) -> bool {
    // `collect_keys` records nested keys with a `\u{1}` separator, literal keys as they are.
    let nested = name.replace('.', "\u{1}");
    seen.contains(&nested)
}

/// Collects key names (nested ones joined by `\u{1}`, and also by `.` for matching) up to a
/// small depth. Returns `None` if the line is not a JSON object.
fn collect_keys(
    b: &[u8],
    pos: usize,
    prefix: &str,
    out: &mut Vec<String>,
    depth: u32,
) -> Option<usize> {
    members(b, pos, |k, p| {
        let k = std::str::from_utf8(&k).ok()?;
        let full = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}\u{1}{k}")
        };
        let after = if b.get(p) == Some(&b'{') && depth < 3 {
            collect_keys(b, p, &full, out, depth + 1)?
        } else {
            skip_value(b, p)?
        };
        if full.contains('\u{1}') {
            out.push(full.replace('\u{1}', "."));
        }
        out.push(full);
        Some(after)
    })
}

/// Walks the object at `p` (after whitespace): calls `member(key, value position)` for each
/// member, which reads or skips the value and returns the position after it. Returns the
/// position after the object; `None` if the bytes there are not a well-formed object.
#[inline]
fn members<'a>(
    b: &'a [u8],
    p: usize,
    member: impl FnMut(Cow<'a, [u8]>, usize) -> Option<usize>,
) -> Option<usize> {
    walk(b, p, |_, p| key_and_colon(b, p), member)
}

/// The key at `p`, its colon and the whitespace after it: the key and its value's position.
#[inline]
fn key_and_colon(b: &[u8], p: usize) -> Option<(Cow<'_, [u8]>, usize)> {
    let (k, np) = key(b, p)?;
    let colon = ws(b, np);
    if b.get(colon) != Some(&b':') {
        return None;
    }
    Some((k, ws(b, colon + 1)))
}

/// [`members`] with the key step given: `lead(j, p)` reads member `j`'s key and colon at `p`
/// and returns what `member` needs of the key and the value's position.
#[inline]
fn walk<K>(
    b: &[u8],
    p: usize,
    mut lead: impl FnMut(usize, usize) -> Option<(K, usize)>,
    mut member: impl FnMut(K, usize) -> Option<usize>,
) -> Option<usize> {
    let mut p = ws(b, p);
    if b.get(p) != Some(&b'{') {
        return None;
    }
    p = ws(b, p + 1);
    if b.get(p) == Some(&b'}') {
        return Some(p + 1);
    }
    for j in 0.. {
        let (k, vp) = lead(j, p)?;
        let q = member(k, ws(b, vp))?;
        // Compact JSON: the separator follows the value at once.
        let q = match b.get(q) {
            Some(b',' | b'}') => q,
            _ => ws(b, q),
        };
        match b.get(q) {
            Some(b',') => p = ws(b, q + 1),
            Some(b'}') => return Some(q + 1),
            _ => return None,
        }
    }
    None
}

/// Skips whitespace inside a record: JSON's, but for the newline, which ends an NDJSON
/// record (so that [`scan`] can walk a record before it knows where its line ends).
#[inline]
fn ws(b: &[u8], mut p: usize) -> usize {
    while let Some(c) = b.get(p) {
        if !matches!(c, b' ' | b'\t' | b'\r') {
            break;
        }
        p += 1;
    }
    p
}

/// Skips the whitespace a line may have around its record (what `trim_ascii` trims, but the
/// newline).
#[inline]
fn line_ws(b: &[u8], mut p: usize) -> usize {
    while let Some(c) = b.get(p) {
        if !matches!(c, b' ' | b'\t' | b'\r' | b'\x0c') {
            break;
        }
        p += 1;
    }
    p
}

/// Parses a string at `p` (which must be `"`); returns it and the position after it.
/// Reads the string at `p`. `t`, when given, is `b` as text (checked once for a whole chunk),
/// from which an unescaped string is sliced without a check of its own.
fn string<'a>(b: &'a [u8], t: Option<&'a str>, p: usize) -> Option<(Cow<'a, str>, usize)> {
    if b.get(p) != Some(&b'"') {
        return None;
    }
    let start = p + 1;
    let k = quote_or_backslash(b, start)?;
    if b[k] == b'"' {
        let s = match t.and_then(|t| t.get(start..k)) {
            Some(s) => s,
            None => std::str::from_utf8(&b[start..k]).ok()?,
        };
        return Some((Cow::Borrowed(s), k + 1));
    }
    // An escape: decode the whole string the slow way.
    unescape(b, start)
}

/// Reads an object key at `p` as bytes: borrowed unless it has an escape. Keys are compared
/// byte for byte with the wanted path segments, so an unescaped key is not UTF-8 checked: a
/// key that is not UTF-8 can equal no wanted name.
#[inline]
fn key(b: &[u8], p: usize) -> Option<(Cow<'_, [u8]>, usize)> {
    if b.get(p) != Some(&b'"') {
        return None;
    }
    let start = p + 1;
    let k = quote_or_backslash(b, start)?;
    if b[k] == b'"' {
        return Some((Cow::Borrowed(&b[start..k]), k + 1));
    }
    let (s, n) = unescape(b, start)?;
    Some((Cow::Owned(s.into_owned().into_bytes()), n))
}

fn unescape(b: &[u8], start: usize) -> Option<(Cow<'_, str>, usize)> {
    let mut out: Vec<u8> = Vec::new();
    let mut i = start;
    loop {
        let c = *b.get(i)?;
        match c {
            b'"' => return Some((Cow::Owned(String::from_utf8(out).ok()?), i + 1)),
            b'\\' => {
                let e = *b.get(i + 1)?;
                i += 2;
                match e {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let hex = |at: usize| -> Option<u32> {
                            let s = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
                            u32::from_str_radix(s, 16).ok()
                        };
                        let mut cp = hex(i)?;
                        i += 4;
                        if (0xD800..0xDC00).contains(&cp)
                            && b.get(i) == Some(&b'\\')
                            && b.get(i + 1) == Some(&b'u')
                        {
                            let lo = hex(i + 2)?;
                            if (0xDC00..0xE000).contains(&lo) {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                i += 6;
                            }
                        }
                        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return None,
                }
            }
            c if c < 0x20 => return None,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Skips any JSON value at `p`; returns the position after it. Iterative over nesting.
fn skip_value(b: &[u8], p: usize) -> Option<usize> {
    let mut p = ws(b, p);
    let mut depth = 0usize;
    loop {
        match *b.get(p)? {
            b'"' => p = string_end(b, p)?,
            b'{' | b'[' => {
                depth += 1;
                p += 1;
                p = ws(b, p);
                continue;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                p += 1;
            }
            c if c == b'-' || c.is_ascii_alphanumeric() => p = scalar_end(b, p),
            _ => return None,
        }
        if depth == 0 {
            return Some(p);
        }
        p = ws(b, p);
        match b.get(p) {
            Some(b',' | b':') => p = ws(b, p + 1),
            Some(b'}' | b']') => {}
            _ => return None,
        }
    }
}

/// The first `"`, `\\` or newline at or after `from`, sixteen bytes at a time: JSON strings in
/// logs are short (an address or a timestamp is one or two steps), and a `memchr2` call costs
/// more than it saves on a few bytes. A newline there ends the record: no JSON string holds
/// one raw.
#[inline]
fn quote_or_backslash(b: &[u8], from: usize) -> Option<usize> {
    crate::blockmask::find_any(b, from, [b'"', b'\\', b'\n'])
}

fn string_end(b: &[u8], p: usize) -> Option<usize> {
    let mut i = p + 1;
    loop {
        let k = quote_or_backslash(b, i)?;
        match b[k] {
            b'"' => return Some(k + 1),
            b'\\' if b.get(k + 1).is_some_and(|&c| c != b'\n') => i = k + 2,
            _ => return None,
        }
    }
}

/// Reads a wanted value: strings and scalars as text, `null` as absent, arrays of scalars
/// joined with `", "` (Zeek's DNS `answers`), objects as absent.
fn value<'a>(b: &'a [u8], t: Option<&'a str>, p: usize) -> Option<(Option<Cow<'a, str>>, usize)> {
    match *b.get(p)? {
        b'"' => string(b, t, p).map(|(s, n)| (Some(s), n)),
        b'n' if b.get(p..p + 4) == Some(b"null") => Some((None, p + 4)),
        b'[' => {
            let end = skip_value(b, p)?;
            let mut parts: Vec<String> = Vec::new();
            let mut q = ws(b, p + 1);
            while q < end - 1 {
                let (v, n) = value(b, t, q)?;
                if let Some(v) = v {
                    parts.push(v.into_owned());
                }
                q = ws(b, n);
                if b.get(q) == Some(&b',') {
                    q = ws(b, q + 1);
                } else {
                    break;
                }
            }
            Some((Some(Cow::Owned(parts.join(", "))), end))
        }
        b'{' => Some((None, skip_value(b, p)?)),
        _ => {
            let end = skip_value(b, p)?;
            Some((std::str::from_utf8(&b[p..end]).ok().map(Cow::Borrowed), end))
        }
    }
}

/// What a key means for the wanted paths at its level: the fields whose path ends there
/// (`leaf`) and those whose path continues into its value (`deeper`). Both 0: skip the value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Action {
    leaf: u8,
    deeper: u8,
}

/// The [`Action`] of key `k` at `level` for the `want`ed fields.
#[inline]
fn action(paths: &Paths, level: usize, want: u8, k: &[u8]) -> Action {
    // At the top level, only paths whose first segment has the key's length can match.
    let want = if level == 0 {
        want & paths.first_by_len[k.len().min(63)]
    } else {
        want
    };
    let mut a = Action::default();
    if want == 0 {
        return a;
    }
    for (i, path) in paths.paths.iter().enumerate() {
        if want & (1 << i) == 0 {
            continue;
        }
        if let Some(path) = path {
            if path
                .get(level)
                .is_some_and(|s| crate::swar::same(s.as_bytes(), k))
            {
                if path.len() == level + 1 {
                    a.leaf |= 1 << i;
                } else {
                    a.deeper |= 1 << i;
                }
            }
        }
    }
    a
}

/// Reads or skips the value at `p` as `a` says; returns the position after it.
#[inline]
fn apply<'a>(
    b: &'a [u8],
    t: Option<&'a str>,
    p: usize,
    paths: &Paths,
    level: usize,
    a: Action,
    fields: &mut Fields<'a>,
) -> Option<usize> {
    if a.leaf != 0 {
        let (mut v, n) = value(b, t, p)?;
        // The last field wanting the value takes it; one before it (a key mapped to two
        // fields) gets a copy.
        let mut want = a.leaf;
        while want != 0 {
            let i = want.trailing_zeros() as usize;
            want &= want - 1;
            if let Some(f) = fields.get_mut(i) {
                *f = if want == 0 { v.take() } else { v.clone() };
            }
        }
        Some(n)
    } else if a.deeper != 0 && b.get(p) == Some(&b'{') {
        object(b, t, p, paths, level + 1, a.deeper, fields)
    } else {
        // A string or a scalar, as `skip_value` reads them, without its set-up for nesting.
        match b.get(p) {
            Some(b'"') => string_end(b, p),
            Some(&c) if c == b'-' || c.is_ascii_alphanumeric() => Some(scalar_end(b, p)),
            _ => skip_value(b, p),
        }
    }
}

/// Reads the object at `p`, filling `fields` for the paths whose segments from `level` on
/// match. Returns the position after the object.
fn object<'a>(
    b: &'a [u8],
    t: Option<&'a str>,
    p: usize,
    paths: &Paths,
    level: usize,
    want: u8,
    fields: &mut Fields<'a>,
) -> Option<usize> {
    members(b, p, |k, p| {
        apply(
            b,
            t,
            p,
            paths,
            level,
            action(paths, level, want, &k),
            fields,
        )
    })
}

/// The top-level keys of the last record, in order, with their [`Action`]s. The records of
/// one log nearly always repeat their keys in the same order, so a key that equals, byte for
/// byte, the one at the same position last time needs neither a parse of its own nor a
/// comparison with the wanted paths.
#[derive(Clone, Debug, Default)]
pub(super) struct Shape {
    /// Member leads (the quoted key, without escapes, and its colon) and actions; the first
    /// `len` are current.
    keys: Vec<(Vec<u8>, Action)>,
    len: usize,
}

impl Shape {
    /// If the member at `p` starts as the one remembered at position `j`: its action and the
    /// position after the remembered bytes (the value, or whitespace before it). Those bytes
    /// are the quoted key, without `\\` inside, then the colon and the whitespace around it,
    /// so bytes equal to them are that whole key and its colon.
    #[inline]
    fn known(&self, j: usize, b: &[u8], p: usize) -> Option<(Action, usize)> {
        if j >= self.len {
            return None;
        }
        let (lead, a) = self.keys.get(j)?;
        let end = p + lead.len();
        b.get(p..end)
            .is_some_and(|s| crate::swar::same(s, lead))
            .then_some((*a, end))
    }

    /// Remembers `lead`, a member's bytes from its key's opening quote to its value (with
    /// `plain`: a key without escapes), at position `j`, forgetting the positions after it.
    fn learn(&mut self, j: usize, lead: &[u8], plain: bool, a: Action) {
        if j > self.len {
            return;
        }
        self.len = j;
        if !plain {
            return;
        }
        match self.keys.get_mut(j) {
            Some(slot) => {
                slot.0.clear();
                slot.0.extend_from_slice(lead);
                slot.1 = a;
            }
            None => self.keys.push((lead.to_vec(), a)),
        }
        self.len = j + 1;
    }

    /// Reads the record at the start of `b` (`t`: `b` as text, as far as it is UTF-8) on the
    /// common path alone: compact members whose leads are, in order, all the remembered
    /// ones, each with a string or bare scalar value. Returns the position after the record,
    /// or `None` for anything else (the caller then walks the record with [`top_object`],
    /// which reads it as this does when this reads it at all, and leaves the shape as it is).
    #[inline]
    fn fast<'a>(&self, b: &'a [u8], t: Option<&'a str>, fields: &mut Fields<'a>) -> Option<usize> {
        let keys = self.keys.get(..self.len)?;
        let last = keys.len().checked_sub(1)?;
        if b.first() != Some(&b'{') {
            return None;
        }
        let t = t?;
        let mut p = 1;
        // A member whose path goes deeper (`a.deeper`) has an object value, which ends this
        // path, or a string or scalar one, which the walk skips too.
        for (j, (lead, a)) in keys.iter().enumerate() {
            let end = p + lead.len();
            if !b.get(p..end).is_some_and(|s| crate::swar::same(s, lead)) {
                return None;
            }
            p = end;
            let c = *b.get(p)?;
            let (v, n) = if c == b'"' {
                let k = quote_or_backslash(b, p + 1)?;
                if b[k] != b'"' {
                    return None;
                }
                (p + 1..k, k + 1)
            } else if (c.is_ascii_alphanumeric() || c == b'-') && !(c == b'n' && a.leaf != 0) {
                let e = scalar_end(b, p);
                (p..e, e)
            } else {
                return None;
            };
            if a.leaf != 0 {
                // `apply`'s hand-out, for a borrowed value only: the shared version, with its
                // take-or-clone of an owned one, cost 4 % of an NDJSON hunt's instructions.
                let s = t.get(v)?;
                let mut want = a.leaf;
                while want != 0 {
                    let i = want.trailing_zeros() as usize;
                    want &= want - 1;
                    if let Some(f) = fields.get_mut(i) {
                        *f = Some(Cow::Borrowed(s));
                    }
                }
            }
            match b.get(n) {
                Some(b',') => p = n + 1,
                Some(b'}') if j == last => return Some(n + 1),
                _ => return None,
            }
        }
        None
    }
}

/// [`object`] at the top level of a record, through `shape`.
#[inline]
fn top_object<'a>(
    b: &'a [u8],
    t: Option<&'a str>,
    paths: &Paths,
    shape: &mut Shape,
    fields: &mut Fields<'a>,
) -> Option<usize> {
    let mut members = 0;
    let end = walk(
        b,
        0,
        |j, p| {
            members = j + 1;
            shape.known(j, b, p).or_else(|| {
                let (k, vp) = key_and_colon(b, p)?;
                let a = action(paths, 0, 0xff, &k);
                shape.learn(j, &b[p..vp], matches!(k, Cow::Borrowed(_)), a);
                Some((a, vp))
            })
        },
        |a, p| apply(b, t, p, paths, 0, a, fields),
    );
    // A record with fewer members than the shape remembers (Zeek leaves unset fields out)
    // ends it there, so that [`Shape::fast`], which reads exactly the remembered members,
    // reads the records like it that follow.
    if end.is_some() {
        shape.len = shape.len.min(members);
    }
    end
}

/// Scans NDJSON records. Each is walked from its first byte, before its line's end is known:
/// a well-formed record holds no raw newline (JSON escapes them in strings, and the walk's
/// whitespace excludes it), so it ends on its own line, and only a malformed one needs a
/// search for its line's end. (Searching every line's end first read each record twice.)
pub(super) fn scan<'a>(
    paths: &Paths,
    b: &'a [u8],
    first_line: u64,
    lean: &mut impl FnMut(u64, std::ops::Range<usize>, &'a str, &'a str) -> bool,
    rec: &mut impl FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut impl FnMut(u64, std::ops::Range<usize>, super::Malformed),
) -> u64 {
    scan_with(paths, b, first_line, &mut Shape::default(), lean, rec, bad)
}

/// [`scan`] with the key layout learnt so far (see [`Shape`]).
pub(super) fn scan_with<'a>(
    paths: &Paths,
    b: &'a [u8],
    first_line: u64,
    shape: &mut Shape,
    lean: &mut impl FnMut(u64, std::ops::Range<usize>, &'a str, &'a str) -> bool,
    rec: &mut impl FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut impl FnMut(u64, std::ops::Range<usize>, super::Malformed),
) -> u64 {
    let text = super::valid_prefix(b);
    let mut line = first_line;
    let mut pos = 0;
    while pos < b.len() {
        let from = line_ws(b, pos);
        match b.get(from) {
            // Blank lines hold no record (a last one without its newline counts as a line).
            Some(b'\n') => {
                line += 1;
                pos = from + 1;
                continue;
            }
            None => {
                line += 1;
                break;
            }
            Some(_) => {}
        }
        let mut fields: Fields<'a> = Default::default();
        let t = text.get(from..);
        let walked = shape
            .fast(&b[from..], t, &mut fields)
            .or_else(|| {
                fields = Default::default();
                top_object(&b[from..], t, paths, shape, &mut fields)
            })
            .map(|after| line_ws(b, from + after))
            .filter(|&e| e == b.len() || b[e] == b'\n');
        let end = walked
            .unwrap_or_else(|| memchr::memchr(b'\n', &b[from..]).map_or(b.len(), |k| from + k));
        if end - pos > MAX_RECORD {
            bad(line, pos..end, Malformed::TooLong);
        } else if walked.is_some() {
            let borrowed = |slot: super::Logical| match &fields[slot as usize] {
                None => Some(""),
                Some(Cow::Borrowed(s)) => Some(*s),
                Some(Cow::Owned(_)) => None,
            };
            let taken = match (
                borrowed(super::Logical::Time),
                borrowed(super::Logical::Key),
            ) {
                (Some(t), Some(k)) => lean(line, pos..end, t, k),
                _ => false,
            };
            if !taken {
                rec(line, pos..end, fields);
            }
        } else {
            bad(line, pos..end, Malformed::Json);
        }
        line += 1;
        pos = end + 1;
    }
    line - first_line
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::logs::testing::{cands, owned};

    fn run(text: &str, c: &[&[&str]]) -> (crate::logs::testing::Recs, Vec<(u64, Malformed)>) {
        crate::logs::testing::run(crate::logs::LogFormat::Ndjson, text.as_bytes(), c, 1)
    }

    #[test]
    fn top_level_nested_and_zeek_keys() {
        let t = r#"{"TimeGenerated":"2026-01-01T00:00:00Z","SourceIP":"1.1.1.1","DestinationIP":"2.2.2.2","x":{"y":[1,{"z":"}"}]}}
{"ts":1732812529.5,"id.orig_h":"10.0.0.1","id.resp_h":"8.8.8.8","answers":["1.2.3.4","c.example"]}
{"TimeGenerated":null,"DestinationIP":"a\"b\u00e9"}
not json
{"DestinationIP":"x"} trailing

{"source":{"ip":"9.9.9.9"},"DestinationIP":"3.3.3.3"}
"#;
        let c: &[&[&str]] = &[
            &["TimeGenerated", "ts"],
            &["SourceIP", "id.orig_h", "source.ip"],
            &["DestinationIP", "id.resp_h"],
            &["answers"],
        ];
        let (recs, bads) = run(t, c);
        assert_eq!(
            recs[0],
            (
                1,
                vec![
                    Some("2026-01-01T00:00:00Z".into()),
                    Some("1.1.1.1".into()),
                    Some("2.2.2.2".into()),
                    None
                ]
            )
        );
        // The first matching candidate in the sample wins for each field: TimeGenerated,
        // SourceIP, DestinationIP; Zeek's line then reads as absent for those.
        assert_eq!(recs[1].1[3].as_deref(), Some("1.2.3.4, c.example"));
        assert_eq!(recs[2], (3, vec![None, None, Some("a\"bé".into()), None]));
        assert_eq!(bads, vec![(4, Malformed::Json), (5, Malformed::Json)]);
        assert_eq!(recs[3].0, 7);
    }

    /// One key read into two fields (`--column` can name the same key twice): both get the
    /// value, escaped or not, and a second record repeats it through the remembered keys.
    #[test]
    fn one_key_feeds_two_fields() {
        let t = "{\"a\":\"x\\u00e9\",\"b\":\"1.2.3.4\"}\n{\"a\":\"y\",\"b\":\"5.6.7.8\"}\n";
        let (recs, bads) = run(t, &[&["a"], &["b"], &["b"], &["a"]]);
        assert!(bads.is_empty());
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            recs,
            vec![
                (
                    1,
                    vec![
                        some("x\u{e9}"),
                        some("1.2.3.4"),
                        some("1.2.3.4"),
                        some("x\u{e9}")
                    ]
                ),
                (
                    2,
                    vec![some("y"), some("5.6.7.8"), some("5.6.7.8"), some("y")]
                ),
            ]
        );
    }

    /// [`scan`] walks each record before it knows its line's end; it must read exactly what
    /// cutting the chunk into lines first and reading each line on its own reads: the same
    /// records (line, span, fields), the same malformed lines, the same line count. On
    /// records built from pieces (raw newlines inside strings and between members, escaped
    /// newlines, form feeds, CR, stray bytes, invalid UTF-8), cut and mutated at random.
    #[test]
    fn walking_records_first_reads_what_cutting_lines_first_reads() {
        type Recs = Vec<(u64, std::ops::Range<usize>, Vec<Option<String>>)>;
        type Bads = Vec<(u64, std::ops::Range<usize>, Malformed)>;
        fn by_lines(paths: &Paths, b: &[u8], first_line: u64) -> (Recs, Bads, u64) {
            let text = crate::logs::valid_prefix(b);
            let (mut recs, mut bads) = (Vec::new(), Vec::new());
            let mut line = first_line;
            let mut pos = 0;
            let mut shape = Shape::default();
            while pos < b.len() {
                let end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |k| pos + k);
                let raw = &b[pos..end];
                let l = raw.trim_ascii_start();
                let from = pos + (raw.len() - l.len());
                let l = l.trim_ascii_end();
                if !l.is_empty() {
                    if end - pos > MAX_RECORD {
                        bads.push((line, pos..end, Malformed::TooLong));
                    } else {
                        let mut fields: Fields<'_> = Default::default();
                        let t = text.get(from..from + l.len());
                        match top_object(l, t, paths, &mut shape, &mut fields) {
                            Some(after) if ws(l, after) == l.len() => {
                                recs.push((line, pos..end, owned(&fields)))
                            }
                            _ => bads.push((line, pos..end, Malformed::Json)),
                        }
                    }
                }
                line += 1;
                pos = end + 1;
            }
            (recs, bads, line - first_line)
        }
        let c = crate::logs::testing::cands(&[&["t"], &["s"], &["k"], &["x.y"]]);
        let head = br#"{"t":"1","s":"2","k":"3","x":{"y":"4"}}"#;
        let Reader::Json(paths) = prepare(head, &c).unwrap().reader else {
            unreachable!()
        };
        let pieces: [&[u8]; 24] = [
            br#"{"n":"a\"#,
            br#"{"n":"b"#,
            br#"{"t":"2024-01-01T00:00:00Z","s":"10.0.0.1","k":"evil.com","n":5}"#,
            br#"{"k":"a\nb","t":null}"#,
            br#"{"k":"x"#,
            b"\n",
            b"\n",
            b"\r\n",
            b" ",
            b"\x0c",
            b"\t",
            br#"{"x":{"y":[1,"a b",{"z":"}"}]},"k":"q"}"#,
            br#"{"k":"\\"}"#,
            br#""}"#,
            b"\\",
            b"\"",
            b"{",
            b"}",
            b",",
            b":",
            b"\xff",
            b"\xc3\xa9",
            br#"{"s":"\u00e9\ud83d\ude00","k":"v"} x"#,
            br#"{"k" : "sp" , "t" : 7 }"#,
        ];
        let mut rng = crate::gen::Rng::new(0x15_0000_0002);
        let mut records = 0;
        for _ in 0..4000 {
            let mut b = Vec::new();
            for _ in 0..rng.below(30) {
                b.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
                if rng.below(3) == 0 {
                    b.push(b'\n');
                }
            }
            if !b.is_empty() && rng.below(4) == 0 {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = b"{}\"\n :,\\a\r"[rng.below(10) as usize];
            }
            let mut recs = Vec::new();
            let mut bads = Vec::new();
            let lines = scan(
                &paths,
                &b,
                7,
                &mut |_, _, _, _| false,
                &mut |l, span, f| recs.push((l, span, owned(&f))),
                &mut |l, span, why| bads.push((l, span, why)),
            );
            let want = by_lines(&paths, &b, 7);
            records += want.0.len();
            assert_eq!(
                (recs, bads, lines),
                want,
                "{:?}",
                String::from_utf8_lossy(&b)
            );
        }
        assert!(records > 2000, "{records} records");
    }

    /// [`Shape::fast`] against the walk it short-cuts: on records of a few key layouts (a
    /// layout mostly repeats, as in real logs) with values of every kind and, now and then,
    /// whitespace between tokens, whatever the fast path reads (position and fields) the walk
    /// reads too, without learning anything new; and it reads every compact record of string
    /// and number values after one of the same layout.
    #[test]
    fn the_fast_path_reads_what_the_walk_reads() {
        // `k` feeds two fields; `x.y` is a nested path, which the fast path leaves to the walk.
        let c = crate::logs::testing::cands(&[&["t"], &["k"], &["k"], &["x.y"]]);
        let head = br#"{"t":"1","k":"3","x":{"y":"4"}}"#;
        let Reader::Json(paths) = prepare(head, &c).unwrap().reader else {
            unreachable!()
        };
        let layouts: [&[&str]; 5] = [
            &["t", "s", "k", "n"],
            &["t", "s", "k"],
            &["k", "t"],
            &["t", "x", "k"],
            &["t", "s", "k", "n", "k"],
        ];
        let values: [&[u8]; 17] = [
            br#""2024-01-01T00:00:00Z""#,
            br#""10.0.0.1""#,
            br#""""#,
            br#""a\"b""#,
            br#""\u00e9""#,
            "\"\u{e9}t\u{e9}\"".as_bytes(),
            b"\"\xff\"",
            b"12",
            b"-1.5e+3",
            b"true",
            b"null",
            b"nan",
            b"[1,\"a\"]",
            br#"{"y":"4"}"#,
            br#"{"z":1}"#,
            b"1x\"",
            b"\"open",
        ];
        let mut rng = crate::gen::Rng::new(0x15_0000_0003);
        let mut shape = Shape::default();
        let mut layout = layouts[0];
        let (mut fast, mut plain, mut last_plain) = (0, 0, None);
        for _ in 0..20_000 {
            if rng.below(10) == 0 {
                layout = layouts[rng.below(layouts.len() as u64) as usize];
            }
            let spaced = rng.below(8) == 0;
            let mut b = b"{".to_vec();
            let mut common = !spaced && !layout.contains(&"x");
            for (j, k) in layout.iter().enumerate() {
                if j > 0 {
                    b.push(b',');
                }
                if spaced && rng.below(2) == 0 {
                    b.push(b' ');
                }
                b.extend_from_slice(format!("\"{k}\":").as_bytes());
                if spaced && rng.below(2) == 0 {
                    b.push(b' ');
                }
                // Mostly strings and numbers, as in logs; the rest of every kind.
                let v = if rng.below(3) == 0 {
                    values[rng.below(values.len() as u64) as usize]
                } else {
                    values[rng.below(2) as usize * 7]
                };
                common &= v == values[0] || v == values[7];
                b.extend_from_slice(v);
            }
            b.push(b'}');
            if rng.below(20) == 0 {
                b.truncate(rng.below(b.len() as u64) as usize);
                common = false;
            }
            let t = Some(crate::logs::valid_prefix(&b));
            let before = shape.clone();
            let mut quick: Fields<'_> = Default::default();
            let got = before.fast(&b, t, &mut quick);
            let mut walked: Fields<'_> = Default::default();
            let want = top_object(&b, t, &paths, &mut shape, &mut walked);
            let text = String::from_utf8_lossy(&b);
            if let Some(n) = got {
                fast += 1;
                assert_eq!(Some(n), want, "{text}");
                assert_eq!(owned(&quick), owned(&walked), "{text}");
                assert_eq!(shape.len, before.len, "{text}");
                assert_eq!(shape.keys[..shape.len], before.keys[..before.len], "{text}");
            }
            if common && last_plain == Some(layout) {
                plain += 1;
                assert!(got.is_some(), "{text}");
            }
            last_plain = common.then_some(layout);
        }
        assert!(plain > 800 && fast > plain, "{fast} fast, {plain} plain");
    }

    /// A first record longer than the head that detection reads (1 MiB) is skipped as too
    /// long, not taken for a file that is not NDJSON; the records after it are read.
    #[test]
    fn a_first_record_longer_than_the_head_is_skipped_as_too_long() {
        let mut text = br#"{"DestinationIP":"1.2.3.4","pad":""#.to_vec();
        text.resize(MAX_RECORD + 100, b'x');
        text.extend_from_slice(b"\"}\n{\"DestinationIP\":\"5.6.7.8\"}\n");
        let c = crate::logs::testing::cands(&[&[], &[], &["DestinationIP"]]);
        assert!(prepare(&text[..MAX_RECORD], &c).is_ok());
        let short = br#"{"DestinationIP":"1.2.3.4","pad":"xx"#;
        assert!(
            prepare(short, &c).is_err(),
            "a short broken head is still refused"
        );
        let (recs, bads) = crate::logs::testing::run(
            crate::logs::LogFormat::Ndjson,
            &text,
            &[&[], &[], &["DestinationIP"]],
            1,
        );
        assert_eq!(bads, vec![(1, Malformed::TooLong)]);
        assert_eq!(
            recs,
            vec![(2, vec![None, None, Some("5.6.7.8".into()), None])]
        );
    }

    /// String values of every length, with escapes at random places and invalid UTF-8 lines
    /// mixed in, read as `serde_json` reads them; a line with a bad byte is malformed and the
    /// lines after it (checked on their own) are not.
    #[test]
    fn strings_agree_with_serde_json() {
        let mut rng = crate::gen::Rng::new(0x15_0000_0001);
        let pieces = [
            "a",
            "é",
            "\\\"",
            "\\\\",
            "\\n",
            "\\u00e9",
            "\\ud83d\\ude00",
            "0123456789",
            " ",
        ];
        let mut text = b"{\"Name\":\"x\"}\n".to_vec();
        let mut want: Vec<(u64, Option<String>)> = Vec::new();
        let mut want_bad = Vec::new();
        for line in 2..3000u64 {
            if rng.below(10) == 0 {
                text.extend_from_slice(b"{\"Name\":\"bad\xff\"}\n");
                want_bad.push((line, Malformed::Json));
                continue;
            }
            let mut v = String::new();
            for _ in 0..rng.below(12) {
                v.push_str(pieces[rng.below(pieces.len() as u64) as usize]);
            }
            let l = format!("{{\"Other\":\"{v}\",\"Name\":\"{v}\",\"n\":{line}}}");
            let parsed: serde_json::Value = serde_json::from_str(&l).unwrap();
            want.push((line, parsed["Name"].as_str().map(str::to_string)));
            text.extend_from_slice(l.as_bytes());
            text.push(b'\n');
        }
        let (recs, bads) = crate::logs::testing::run(
            crate::logs::LogFormat::Ndjson,
            &text,
            &[&[], &[], &["Name"]],
            1,
        );
        let got: Vec<(u64, Option<String>)> = recs
            .into_iter()
            .skip(1)
            .map(|(l, f)| (l, f[2].clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(bads, want_bad);
    }

    /// The top-level length filter settles only keys no wanted path can match: decoys of the
    /// wanted lengths, escaped keys (longer raw than decoded) that decode to a wanted one, and
    /// keys of 63 bytes and more, wanted or not, read as `serde_json` reads them.
    #[test]
    fn keys_filtered_by_length_agree_with_serde_json() {
        let long = "k".repeat(70);
        let longer = "k".repeat(71);
        let lines = [
            r#"{"Nane":"decoy","Name":"a","Nam":"short"}"#.to_string(),
            r#"{"N\u0061me":"escaped","QueryType":"x"}"#.to_string(),
            r#"{"N\u0061mX":"escaped decoy","Name":"b"}"#.to_string(),
            format!(r#"{{"{longer}":"longer","{long}":"long","Name":"c"}}"#),
            format!(r#"{{"{long}X":"decoy","Name":"d"}}"#),
        ];
        let text = lines.join("\n") + "\n";
        let (recs, bads) = crate::logs::testing::run(
            crate::logs::LogFormat::Ndjson,
            text.as_bytes(),
            &[&[], &[long.as_str()], &["Name"]],
            1,
        );
        assert!(bads.is_empty(), "{bads:?}");
        assert_eq!(recs.len(), lines.len());
        for ((_, f), l) in recs.iter().zip(&lines) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(f[1].as_deref(), v[long.as_str()].as_str(), "{l}");
            assert_eq!(f[2].as_deref(), v["Name"].as_str(), "{l}");
        }
    }

    /// Records of one chunk whose keys change order, length and spelling from one line to the
    /// next (decoys one byte off a wanted key, escaped spellings of it, duplicates, nulls,
    /// whitespace around colons and after commas):
    /// what the remembered key order ([`Shape`]) settles must agree with serde_json.
    #[test]
    fn changing_key_orders_agree_with_serde_json() {
        let keys = [
            "Name",
            "Nam",
            "Names",
            "Namf",
            "N\\u0061me",
            "ClientIP",
            "ClientIPs",
            "TimeGenerated",
            "TimeGenerateX",
            "QueryType",
            "X",
        ];
        let values = [
            "a",
            "evil.com",
            "1.2.3.4",
            "q\\\"uote",
            "\\u00e9t\\u00e9",
            "",
            "x y",
        ];
        let mut rng = crate::gen::Rng::new(0x5eed_0005);
        let mut lines = Vec::new();
        let mut prev: Vec<&str> = Vec::new();
        for _ in 0..3000 {
            // Mostly the previous order (what the cache is for), sometimes a new one.
            let order: Vec<&str> = if !prev.is_empty() && rng.below(3) > 0 {
                let mut o = prev.clone();
                if rng.below(4) == 0 {
                    let i = rng.below(o.len() as u64) as usize;
                    o[i] = keys[rng.below(keys.len() as u64) as usize];
                }
                o
            } else {
                (0..rng.range(0, 7))
                    .map(|_| keys[rng.below(keys.len() as u64) as usize])
                    .collect()
            };
            let members: Vec<String> = order
                .iter()
                .map(|k| {
                    let v = if rng.below(10) == 0 {
                        "null".to_string()
                    } else {
                        format!("\"{}\"", values[rng.below(values.len() as u64) as usize])
                    };
                    // Now and then whitespace around the colon, which a lead includes.
                    let colon = [":", ":", ":", " :", ": ", " : "][rng.below(6) as usize];
                    format!("\"{k}\"{colon}{v}")
                })
                .collect();
            let comma = [",", ",", ", "][rng.below(3) as usize];
            lines.push(format!("{{{}}}", members.join(comma)));
            prev = order;
        }
        let text = lines.join("\n") + "\n";
        let (recs, bads) = crate::logs::testing::run(
            crate::logs::LogFormat::Ndjson,
            text.as_bytes(),
            &[&["TimeGenerated"], &["ClientIP"], &["Name"]],
            1,
        );
        assert!(bads.is_empty(), "{bads:?}");
        assert_eq!(recs.len(), lines.len());
        for ((_, f), l) in recs.iter().zip(&lines) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            for (slot, name) in [(0, "TimeGenerated"), (1, "ClientIP"), (2, "Name")] {
                assert_eq!(f[slot].as_deref(), v[name].as_str(), "{name} in {l}");
            }
        }
    }

    /// The scalar end, sixteen and eight bytes at a time, against a byte-by-byte definition.
    #[test]
    fn scalar_end_matches_bytewise() {
        let mut rng = crate::gen::Rng::new(0x5ca1_0001);
        let alphabet = b"09azAZ-+.e,}] \"\x00\x7f\x80\xff_@[`{/*:";
        for _ in 0..20_000 {
            let b = crate::logs::testing::random_bytes(&mut rng, alphabet, 40);
            for p in 0..=b.len() {
                let want = (p..b.len())
                    .find(|&i| {
                        let c = b[i];
                        !(c == b'-' || c == b'+' || c == b'.' || c.is_ascii_alphanumeric())
                    })
                    .unwrap_or(b.len());
                assert_eq!(scalar_end(&b, p), want, "{b:?} from {p}");
            }
        }
    }

    #[test]
    fn zeek_json_literal_dotted_keys() {
        let t = "{\"ts\":1732812529.123456,\"id.orig_h\":\"10.0.0.1\",\"query\":\"Evil.COM\"}\n{\"ts\":1.5,\"id.orig_h\":\"10.0.0.2\"}\n";
        let (recs, bads) = run(
            t,
            &[
                &["TimeGenerated", "ts"],
                &["ClientIP", "id.orig_h"],
                &["Name", "query"],
            ],
        );
        assert!(bads.is_empty());
        assert_eq!(
            recs[0].1,
            vec![
                Some("1732812529.123456".into()),
                Some("10.0.0.1".into()),
                Some("Evil.COM".into()),
                None
            ]
        );
        assert_eq!(recs[1].1[2], None);
    }

    #[test]
    fn nested_path_and_garbage_never_panics() {
        let (recs, _) = run(
            "{\"a\":{\"b\":{\"c\":\"deep\"}}}\n",
            &[&[], &[], &["a.b.c"]],
        );
        assert_eq!(recs[0].1[2].as_deref(), Some("deep"));
        let p = prepare(b"{\"a\":1}\n", &cands(&[&["a"]])).unwrap();
        let Reader::Json(paths) = &p.reader else {
            panic!()
        };
        let mut seed = 7u64;
        let base = br#"{"a":"x\u12","b":[{"c":[1,2,{"d":"\\"}]}],"e":-1.5e3,"f":true}"#;
        for cut in 0..base.len() {
            scan(
                paths,
                &base[..cut],
                1,
                &mut |_, _, _, _| false,
                &mut |_, _, _| {},
                &mut |_, _, _| {},
            );
        }
        for _ in 0..2000 {
            let mut v = base.to_vec();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % v.len() as u64) as usize;
            v[i] = (seed >> 32) as u8;
            scan(
                paths,
                &v,
                1,
                &mut |_, _, _, _| false,
                &mut |_, _, _| {},
                &mut |_, _, _| {},
            );
        }
    }
}
