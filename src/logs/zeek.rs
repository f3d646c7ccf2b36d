//! Zeek TSV logs: `#separator`, `#set_separator`, `#empty_field`, `#unset_field` and
//! `#fields` header lines, then one tab-separated record per line; `#close` and other `#` lines
//! are skipped wherever they appear (concatenated logs repeat the header).

use super::{Fields, Malformed, Prepared, Reader, Schema, LOGICAL, MAX_RECORD};
use std::borrow::Cow;

/// The header's conventions and the field positions.
#[derive(Clone, Debug)]
pub struct Header {
    sep: u8,
    set_sep: u8,
    unset: String,
    empty: String,
    index: [Option<usize>; LOGICAL],
}

fn unescape_sep(s: &str) -> Option<u8> {
    match s.strip_prefix("\\x") {
        Some(h) => u8::from_str_radix(h, 16).ok(),
        None => s.bytes().next(),
    }
}

pub(super) fn prepare(
    head: &[u8],
    candidates: &[Vec<String>; LOGICAL],
) -> Result<Prepared, String> {
    let mut sep = b'\t';
    let mut set_sep = b',';
    let mut unset = "-".to_string();
    let mut empty = "(empty)".to_string();
    let mut names: Option<Vec<String>> = None;
    let mut len = 0usize;
    let mut lines = 0u64;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if !line.starts_with(b"#") {
            break;
        }
        len += line.len();
        lines += 1;
        let text = std::str::from_utf8(line)
            .map_err(|_| "a header line is not UTF-8")?
            .trim_end();
        if let Some(v) = text.strip_prefix("#separator ") {
            sep = unescape_sep(v.trim()).ok_or("bad #separator")?;
            continue;
        }
        let mut parts = text.split(char::from(sep));
        match parts.next() {
            Some("#set_separator") => set_sep = parts.next().and_then(unescape_sep).unwrap_or(b','),
            Some("#unset_field") => unset = parts.next().unwrap_or("-").to_string(),
            Some("#empty_field") => empty = parts.next().unwrap_or("(empty)").to_string(),
            Some("#fields") => names = Some(parts.map(str::to_string).collect()),
            _ => {}
        }
    }
    let names = names.ok_or("no #fields header line")?;
    let index = super::resolve(&names, candidates);
    let mut schema = Schema::default();
    for (i, ix) in index.iter().enumerate() {
        schema.names[i] = ix.map(|j| names[j].clone());
    }
    Ok(Prepared {
        reader: Reader::Zeek(Header {
            sep,
            set_sep,
            unset,
            empty,
            index,
        }),
        header_len: len,
        header_lines: lines,
        schema,
        columns: names,
    })
}

pub(super) fn scan<'a>(
    h: &Header,
    b: &'a [u8],
    first_line: u64,
    rec: &mut impl FnMut(u64, std::ops::Range<usize>, Fields<'a>),
    bad: &mut impl FnMut(u64, std::ops::Range<usize>, Malformed),
) -> u64 {
    let mut line = first_line;
    let mut pos = 0;
    while pos < b.len() {
        let end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |k| pos + k);
        let l = &b[pos..end];
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if !l.is_empty() && !l.starts_with(b"#") {
            if l.len() > MAX_RECORD {
                bad(line, pos..end, Malformed::TooLong);
            } else {
                let mut fields: Fields<'a> = Default::default();
                let mut broken = false;
                for (col, v) in l.split(|&c| c == h.sep).enumerate() {
                    for (slot, ix) in h.index.iter().enumerate() {
                        if *ix != Some(col) {
                            continue;
                        }
                        let Ok(s) = std::str::from_utf8(v) else {
                            broken = true;
                            continue;
                        };
                        fields[slot] = if s == h.unset {
                            None
                        } else if s == h.empty {
                            Some(Cow::Borrowed(""))
                        } else if s.as_bytes().contains(&h.set_sep) && h.set_sep != b',' {
                            Some(Cow::Owned(s.replace(char::from(h.set_sep), ", ")))
                        } else if h.set_sep == b',' && s.contains(',') {
                            Some(Cow::Owned(s.split(',').collect::<Vec<_>>().join(", ")))
                        } else {
                            Some(Cow::Borrowed(s))
                        };
                    }
                }
                if broken {
                    bad(line, pos..end, Malformed::Utf8);
                } else {
                    rec(line, pos..end, fields);
                }
            }
        }
        line += 1;
        pos = end + 1;
    }
    line - first_line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_and_dns_logs() {
        let t = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n\
                 #fields\tts\tuid\tid.orig_h\tquery\tanswers\n#types\ttime\tstring\taddr\tstring\tvector[string]\n\
                 1732812529.123456\tC1\t10.0.0.1\tevil.com\t1.2.3.4,5.6.7.8\n\
                 1732812530.0\tC2\t10.0.0.2\t-\t(empty)\n#close\t2026-01-01-00-00-00\n";
        let names: [&[&str]; 4] = [&["ts"], &["id.orig_h"], &["query"], &["answers"]];
        let p = prepare(t.as_bytes(), &crate::logs::testing::cands(&names)).unwrap();
        assert_eq!(p.header_lines, 7);
        let (recs, bads) =
            crate::logs::testing::run(crate::logs::LogFormat::ZeekTsv, t.as_bytes(), &names, 8);
        assert!(bads.is_empty());
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].0, 8);
        assert_eq!(recs[0].1[3].as_deref(), Some("1.2.3.4, 5.6.7.8"));
        assert_eq!(recs[1].1[2], None);
        assert_eq!(recs[1].1[3].as_deref(), Some(""));
    }
}
