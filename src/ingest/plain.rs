//! Plain indicator lists: one IP, CIDR, domain, URL, e-mail, hash or CVE id per line.
//!
//! The simplest and most common feed format (blocklists, abuse.ch exports, an analyst's
//! hand-made list) has no types and no metadata, so this module infers each line's kind from
//! its value ([`Key::infer`]) and yields [`Indicator`] records with [`Origin::Plain`] and an
//! empty `source` (the caller sets the file name).
//!
//! # Line syntax
//!
//! * A UTF-8 byte order mark at the start of the file, CRLF line ends and whitespace around a
//!   value are ignored.
//! * Blank lines and comment lines (first non-blank character `#` or `;`) are ignored and not
//!   counted as records.
//! * A trailing comment starts at a `#` or `;` that follows whitespace: `10.0.0.0/8 # lab`,
//!   `1.10.16.0/20 ; SBL256894` (Spamhaus DROP). A `#` inside a value, such as a URL fragment
//!   (`https://x.example/#/login`), is kept.
//! * Defanged values are refanged before inference, so that the published form of an
//!   indicator matches what appears in logs: `[.]`, `(.)`, `{.}` and `[dot]` become `.`; `[:]`
//!   becomes `:`; `[://]` becomes `://`; `[@]` and `[at]` become `@` (brackets case-insensitive);
//!   a leading `hxxp://`, `hxxps://` or `fxp://` (any case) becomes `http://`, `https://` or
//!   `ftp://`. Bracketed IPv6 addresses (`[2001:db8::1]`) are not defanging and are left alone.
//!   The record's `raw_value` is the refanged text.
//!
//! # Skipped lines
//!
//! A line that is not valid UTF-8 is skipped as [`SkipReason::Malformed`]; a value that is no
//! indicator (or an invalid one, such as `CVE-21-1`) as [`SkipReason::BadValue`] with the
//! [`KeyError`](crate::indicator::KeyError) of [`Key::infer`]
//! ([`Unrecognized`](crate::indicator::KeyError::Unrecognized) for plain junk). Both are located
//! by [`Location::Line`] (1-based) and carry the line (or its value) as detail. An empty file, or
//! one of only comments, is a valid empty list.

use super::{Collector, Location, SkipReason};
use crate::indicator::{Indicator, Key, Origin};

/// Parses a plain list into `out`, one record per non-blank, non-comment line.
///
/// # Errors
/// None in practice: every line problem is a skipped record. The `Result` matches the other
/// parsers' signature.
pub fn parse(bytes: &[u8], out: &mut Collector) -> Result<(), String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i as u64 + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(text) = std::str::from_utf8(line) else {
            out.begin_object();
            out.skip(
                Location::Line(n),
                SkipReason::Malformed,
                format!("not UTF-8: {}", String::from_utf8_lossy(line)),
            );
            continue;
        };
        let value = strip_comment(text);
        if value.is_empty() {
            continue;
        }
        out.begin_object();
        let refanged = refang(value);
        match Key::infer(&refanged) {
            Ok(key) => {
                out.push(Indicator::for_key(key, &refanged, Origin::Plain));
            }
            Err(e) => out.skip(Location::Line(n), SkipReason::BadValue(e), value),
        }
    }
    Ok(())
}

/// The value of a line: trimmed, without a comment line or a trailing comment.
fn strip_comment(line: &str) -> &str {
    let t = line.trim();
    if t.starts_with(['#', ';']) {
        return "";
    }
    let mut prev_space = false;
    for (i, c) in t.char_indices() {
        if prev_space && (c == '#' || c == ';') {
            return t[..i].trim_end();
        }
        prev_space = c.is_whitespace();
    }
    t
}

/// Undoes the common defanging conventions (see the module docs).
pub(crate) fn refang(value: &str) -> String {
    const SUBS: &[(&str, &str)] = &[
        ("[.]", "."),
        ("(.)", "."),
        ("{.}", "."),
        ("[dot]", "."),
        ("[://]", "://"),
        ("[:]", ":"),
        ("[@]", "@"),
        ("[at]", "@"),
    ];
    let mut s = value.to_string();
    if s.contains(['[', '(', '{']) {
        for (from, to) in SUBS {
            s = replace_ignore_case(&s, from, to);
        }
    }
    const SCHEMES: &[(&str, &str)] = &[
        ("hxxps://", "https://"),
        ("hxxp://", "http://"),
        ("fxp://", "ftp://"),
    ];
    for (from, to) in SCHEMES {
        if s.len() >= from.len()
            && s.is_char_boundary(from.len())
            && s[..from.len()].eq_ignore_ascii_case(from)
        {
            s.replace_range(..from.len(), to);
            break;
        }
    }
    s
}

/// Replaces every ASCII-case-insensitive occurrence of the ASCII pattern `from`.
fn replace_ignore_case(s: &str, from: &str, to: &str) -> String {
    let (hay, pat) = (s.as_bytes(), from.as_bytes());
    let mut out = String::with_capacity(s.len());
    let (mut i, mut copied) = (0, 0);
    while i + pat.len() <= hay.len() {
        if hay[i..i + pat.len()].eq_ignore_ascii_case(pat) {
            // `pat` is ASCII, so `i` and `i + pat.len()` are char boundaries.
            out.push_str(&s[copied..i]);
            out.push_str(to);
            i += pat.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{KeyError, Kind};
    use crate::ingest::{ingest, Format, IngestOptions};

    const LIST: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/plain-list.txt"));

    fn run(b: &[u8]) -> Collector {
        let mut c = Collector::new();
        assert_eq!(parse(b, &mut c), Ok(()));
        c
    }

    fn keys(c: &Collector) -> Vec<(Kind, String)> {
        c.indicators()
            .map(|i| (i.kind(), i.keys[0].value_string()))
            .collect()
    }

    fn problems(c: &Collector) -> Vec<(Location, SkipReason, String)> {
        c.report()
            .problems
            .iter()
            .map(|p| (p.location.clone(), p.reason, p.detail.clone()))
            .collect()
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn fixture() {
        let c = run(LIST.as_bytes());
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Ipv4, s("198.51.100.23")),
                (Kind::Cidr4, s("203.0.113.0/24")),
                (Kind::Ipv6, s("2001:db8::bad")),
                (Kind::Domain, s("evil-update.example")),
                (Kind::Url, s("http://evil-update.example/payload.exe")),
                (Kind::Url, s("https://phish.example/login?next=/#frag")),
                (Kind::Ipv4, s("1.2.3.4")),
                (Kind::Domain, s("evil.com")),
                (Kind::Md5, s("44d88612fea8a8f36de82e1278abb02f")),
                (Kind::Sha1, s("3395856ce81f2b7382dee72602f798b642f14140")),
                (
                    Kind::Sha256,
                    s("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f")
                ),
                (Kind::Cve, s("CVE-2021-44228")),
                (Kind::Email, s("bad.guy@phish.example")),
                (Kind::Cidr4, s("1.10.16.0/20")),
            ]
        );
        assert_eq!(
            problems(&c),
            vec![(
                Location::Line(16),
                SkipReason::BadValue(KeyError::Unrecognized),
                s("this is not an indicator")
            )]
        );
        let r = c.report();
        assert_eq!((r.read, r.kept, r.skipped_total()), (15, 14, 1));
        let v: Vec<_> = c.indicators().collect();
        assert!(v
            .iter()
            .all(|i| i.origin == Origin::Plain && i.source.is_empty() && i.id.is_empty()));
        // raw_value is the refanged, comment-free text; KQL columns follow the kind.
        assert_eq!(v[1].raw_value, "203.0.113.0/24");
        assert_eq!(v[1].kql_network_ip, "203.0.113.0/24");
        assert_eq!(v[3].raw_value, "Evil-Update.Example.");
        assert_eq!(v[3].kql_domain_name, "Evil-Update.Example.");
        assert_eq!(v[6].raw_value, "1.2.3.4");
        assert_eq!(v[7].kql_domain_name, "evil.com");
        assert_eq!(v[4].raw_value, "http://evil-update.example/payload.exe");
        assert_eq!(v[4].kql_domain_name, "");

        let mut c = Collector::new();
        assert_eq!(
            ingest(
                LIST.as_bytes(),
                "plain-list.txt",
                &IngestOptions::default(),
                &mut c
            ),
            Ok(Format::Plain)
        );
        assert_eq!(c.report().kept, 14);
    }

    #[test]
    fn bom_crlf_whitespace_and_comments() {
        let c = run(
            b"\xef\xbb\xbf  1.2.3.4  \r\n\r\n# c\r\n\tEvil.COM\t\r\n10.0.0.0/8\t# lab\r\njunk value\r\n; semi\r\nhttps://x.example/#/login\r\nevil.example#x\r\n",
        );
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Ipv4, s("1.2.3.4")),
                (Kind::Domain, s("evil.com")),
                (Kind::Cidr4, s("10.0.0.0/8")),
                (Kind::Url, s("https://x.example/#/login")),
            ]
        );
        assert_eq!(
            problems(&c),
            vec![
                (
                    Location::Line(6),
                    SkipReason::BadValue(KeyError::Unrecognized),
                    s("junk value")
                ),
                (
                    Location::Line(9),
                    SkipReason::BadValue(KeyError::Unrecognized),
                    s("evil.example#x")
                ),
            ]
        );
        assert_eq!(c.report().read, 6);
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_lists() {
        for doc in [
            &b""[..],
            b"\n\n",
            b"\xef\xbb\xbf",
            b"# only\r\n  ; comments\n\t\n",
        ] {
            let c = run(doc);
            assert_eq!((c.report().read, c.report().skipped_total()), (0, 0));
        }
    }

    #[test]
    fn non_utf8_and_binary_lines() {
        let c = run(b"1.2.3.4\n\xff\xfe bad\nevil.com\n\x00\x00\x00\n\x1f\x8b\x08\x00");
        assert_eq!(
            keys(&c),
            vec![(Kind::Ipv4, s("1.2.3.4")), (Kind::Domain, s("evil.com"))]
        );
        assert_eq!(
            problems(&c),
            vec![
                (
                    Location::Line(2),
                    SkipReason::Malformed,
                    s("not UTF-8: \u{fffd}\u{fffd} bad")
                ),
                (
                    Location::Line(4),
                    SkipReason::BadValue(KeyError::Unrecognized),
                    s("\0\0\0")
                ),
                (
                    Location::Line(5),
                    SkipReason::Malformed,
                    s("not UTF-8: \u{1f}\u{fffd}\u{8}\0")
                ),
            ]
        );
    }

    #[test]
    fn invalid_values_keep_their_error() {
        let c = run(b"CVE-21-1\nhttp:// space.example\na@b@c.example\n2001:db8::/129\n");
        let reasons: Vec<_> = problems(&c).into_iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(
            reasons,
            vec![
                (Location::Line(1), SkipReason::BadValue(KeyError::BadCve)),
                (Location::Line(2), SkipReason::BadValue(KeyError::BadUrl)),
                (Location::Line(3), SkipReason::BadValue(KeyError::BadEmail)),
                (
                    Location::Line(4),
                    SkipReason::BadValue(KeyError::Unrecognized)
                ),
            ]
        );
    }

    #[test]
    fn huge_lines() {
        let mut doc = "a".repeat(2 << 20);
        doc.push_str("\n1.2.3.4\n");
        doc.push_str(&"[.]".repeat(100_000));
        doc.push_str("\nhttp://long.example/");
        doc.push_str(&"x".repeat(100_000));
        let c = run(doc.as_bytes());
        let p = &c.report().problems;
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].location, Location::Line(1));
        assert!(p[0].detail.len() < 300);
        assert_eq!(p[1].location, Location::Line(3));
        assert_eq!(
            keys(&c).iter().map(|k| k.0).collect::<Vec<_>>(),
            [Kind::Ipv4, Kind::Url]
        );
    }

    #[test]
    fn refanging() {
        assert_eq!(refang("hXXps://a[.]b(.)c{.}d[DOT]e"), "https://a.b.c.d.e");
        assert_eq!(refang("hxxp[:]//evil[.]com"), "http://evil.com");
        assert_eq!(refang("HXXP[://]evil[.]com/x"), "http://evil.com/x");
        assert_eq!(refang("fxp://files[.]example"), "ftp://files.example");
        assert_eq!(refang("a[at]b[.]com"), "a@b.com");
        assert_eq!(refang("[2001:db8::1]"), "[2001:db8::1]");
        assert_eq!(refang("ünï[.]code"), "ünï.code");
        assert_eq!(refang("é"), "é");
        assert_eq!(refang("hxx"), "hxx");
        let c = run("[2001:db8::1]\n192[.]0[.]2[.]1/24\n".as_bytes());
        assert_eq!(
            keys(&c),
            vec![
                (Kind::Ipv6, s("2001:db8::1")),
                (Kind::Cidr4, s("192.0.2.0/24"))
            ]
        );
        assert_eq!(strip_comment("  # x"), "");
        assert_eq!(strip_comment("a #b"), "a");
        assert_eq!(strip_comment("a#b"), "a#b");
        assert_eq!(strip_comment("a\u{3000}#b"), "a");
    }
}
