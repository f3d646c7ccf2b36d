//! STIX 2.1 patterns, reduced to what an exact-lookup index can answer.
//!
//! A STIX indicator says what to look for as a pattern such as
//! `[ipv4-addr:value = '198.51.100.0/24' OR domain-name:value = 'evil.example']`. The engine can
//! only answer "is this value a known key", so this module accepts exactly the patterns that are
//! a plain set of keys: comparisons with `=`/`==` (or `ISSUBSET` on IP paths) against string
//! literals, on a handful of object paths, joined by `OR` inside one observation expression or
//! between observation expressions. Everything else is still parsed in full (so that a broken
//! pattern is always reported as [`PatternError::Syntax`], whatever it contains) and then
//! rejected as [`PatternError::Unsupported`] with a short reason, rather than half-applied.
//!
//! The lexer and the recursive-descent parser are hand-written, follow the OASIS ANTLR grammar
//! (`STIXPattern.g4`), never panic, and bound their nesting depth.

use crate::indicator::Kind;
use std::fmt;

/// The deepest nesting of `(` and `[` accepted (guards the recursion against hostile input).
const MAX_DEPTH: usize = 64;

/// One supported comparison of a pattern: a lookup of `value` as a key of `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The kind named by the object path (`ipv4-addr:value` gives [`Kind::Ipv4`] even when the
    /// value is a CIDR; `file:hashes.'SHA-256'` gives [`Kind::Sha256`]).
    pub kind: Kind,
    /// The string literal with its `\'` and `\\` escapes resolved, otherwise as written.
    pub value: String,
}

/// Why a pattern yields no comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Not a STIX pattern: unbalanced brackets, an unterminated string, a bad escape, junk.
    Syntax(String),
    /// A valid pattern the engine cannot express as key lookups (AND, NOT, MATCHES, qualifiers,
    /// unknown object paths, non-string literals, ...); the text says which construct.
    Unsupported(String),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Syntax(m) => write!(f, "syntax error: {m}"),
            PatternError::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

impl std::error::Error for PatternError {}

/// Parses a STIX 2.x pattern into its key comparisons, in pattern order.
///
/// # Errors
/// [`PatternError::Syntax`] when the text is not a STIX pattern, else
/// [`PatternError::Unsupported`] when it uses anything beyond OR-joined equality tests on the
/// supported paths.
pub fn parse(pattern: &str) -> Result<Vec<Comparison>, PatternError> {
    let tokens = lex(pattern)?;
    let mut p = Parser {
        toks: &tokens,
        pos: 0,
        unsupported: None,
        out: Vec::new(),
    };
    p.obs_or(0)?;
    match p.peek() {
        Tok::Eof => {}
        t => {
            return Err(PatternError::Syntax(format!(
                "unexpected {} at offset {}",
                t.describe(),
                p.offset()
            )))
        }
    }
    match p.unsupported {
        Some(why) => Err(PatternError::Unsupported(why)),
        None => Ok(p.out),
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    And,
    Or,
    Not,
    FollowedBy,
    Like,
    Matches,
    IsSuperset,
    IsSubset,
    Exists,
    Last,
    In,
    Start,
    Stop,
    Seconds,
    Within,
    Repeats,
    Times,
}

impl Kw {
    fn from_ident(s: &str) -> Option<Kw> {
        Some(match s {
            "AND" => Kw::And,
            "OR" => Kw::Or,
            "NOT" => Kw::Not,
            "FOLLOWEDBY" => Kw::FollowedBy,
            "LIKE" => Kw::Like,
            "MATCHES" => Kw::Matches,
            "ISSUPERSET" => Kw::IsSuperset,
            "ISSUBSET" => Kw::IsSubset,
            "EXISTS" => Kw::Exists,
            "LAST" => Kw::Last,
            "IN" => Kw::In,
            "START" => Kw::Start,
            "STOP" => Kw::Stop,
            "SECONDS" => Kw::Seconds,
            "WITHIN" => Kw::Within,
            "REPEATS" => Kw::Repeats,
            "TIMES" => Kw::Times,
            _ => return None,
        })
    }

    fn text(self) -> &'static str {
        match self {
            Kw::And => "AND",
            Kw::Or => "OR",
            Kw::Not => "NOT",
            Kw::FollowedBy => "FOLLOWEDBY",
            Kw::Like => "LIKE",
            Kw::Matches => "MATCHES",
            Kw::IsSuperset => "ISSUPERSET",
            Kw::IsSubset => "ISSUBSET",
            Kw::Exists => "EXISTS",
            Kw::Last => "LAST",
            Kw::In => "IN",
            Kw::Start => "START",
            Kw::Stop => "STOP",
            Kw::Seconds => "SECONDS",
            Kw::Within => "WITHIN",
            Kw::Repeats => "REPEATS",
            Kw::Times => "TIMES",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Colon,
    Dot,
    Star,
    Op(Op),
    Kw(Kw),
    /// `[A-Za-z_][A-Za-z0-9_-]*` that is not a keyword.
    Ident(String),
    /// A string literal, unescaped.
    Str(String),
    /// `t'..'`, `h'..'` or `b'..'` (the prefix letter, lowercase).
    Typed(char),
    /// An integer or float literal, as written.
    Num(String),
    Eof,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LBrack => "'['".into(),
            Tok::RBrack => "']'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Colon => "':'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Star => "'*'".into(),
            Tok::Op(o) => format!("'{}'", o.text()),
            Tok::Kw(k) => k.text().into(),
            Tok::Ident(s) => format!("'{}'", clip(s, 40)),
            Tok::Str(s) => format!("string '{}'", clip(s, 40)),
            Tok::Typed(c) => format!("{c}'..' literal"),
            Tok::Num(n) => format!("number {}", clip(n, 40)),
            Tok::Eof => "end of pattern".into(),
        }
    }
}

/// At most `max` characters of `s`, for messages.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or("")),
        None => s.to_string(),
    }
}

fn syntax(msg: impl Into<String>) -> PatternError {
    PatternError::Syntax(msg.into())
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_cont(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Splits a pattern into tokens, each with its byte offset; always ends with [`Tok::Eof`].
fn lex(s: &str) -> Result<Vec<(Tok, usize)>, PatternError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let start = i;
        // Whitespace, including the non-ASCII spaces the grammar allows.
        if c.is_ascii_whitespace() || c == 0x0b {
            i += 1;
            continue;
        }
        if !c.is_ascii() {
            let ch = s
                .get(i..)
                .and_then(|r| r.chars().next())
                .unwrap_or('\u{fffd}');
            if ch.is_whitespace() {
                i += ch.len_utf8();
                continue;
            }
            return Err(syntax(format!("unexpected character {ch:?} at offset {i}")));
        }
        let next = b.get(i + 1).copied();
        let tok = match c {
            b'[' => Tok::LBrack,
            b']' => Tok::RBrack,
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b',' => Tok::Comma,
            b':' => Tok::Colon,
            b'.' => Tok::Dot,
            b'*' => Tok::Star,
            b'=' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Op::Eq)
            }
            b'=' => Tok::Op(Op::Eq),
            b'!' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Op::Ne)
            }
            b'<' if next == Some(b'>') => {
                i += 1;
                Tok::Op(Op::Ne)
            }
            b'<' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Op::Le)
            }
            b'<' => Tok::Op(Op::Lt),
            b'>' if next == Some(b'=') => {
                i += 1;
                Tok::Op(Op::Ge)
            }
            b'>' => Tok::Op(Op::Gt),
            b'\'' => {
                let (value, end) = string_literal(s, i)?;
                out.push((Tok::Str(value), start));
                i = end;
                continue;
            }
            b'0'..=b'9' | b'+' | b'-' => {
                let end = number(b, i)?;
                out.push((Tok::Num(s.get(i..end).unwrap_or("").to_string()), start));
                i = end;
                continue;
            }
            c if is_ident_start(c) => {
                let mut end = i + 1;
                while b.get(end).copied().is_some_and(is_ident_cont) {
                    end += 1;
                }
                let word = s.get(i..end).unwrap_or("");
                if end == i + 1 && b.get(end) == Some(&b'\'') && matches!(c, b't' | b'h' | b'b') {
                    // A typed literal: t'2016-01-01T00:00:00Z', h'ff00', b'AAAA'.
                    let (_, lit_end) = string_literal(s, end)?;
                    out.push((Tok::Typed(char::from(c)), start));
                    i = lit_end;
                    continue;
                }
                let tok = match Kw::from_ident(word) {
                    Some(k) => Tok::Kw(k),
                    None => Tok::Ident(word.to_string()),
                };
                out.push((tok, start));
                i = end;
                continue;
            }
            _ => {
                return Err(syntax(format!(
                    "unexpected character {:?} at offset {i}",
                    char::from(c)
                )))
            }
        };
        out.push((tok, start));
        i += 1;
    }
    out.push((Tok::Eof, s.len()));
    Ok(out)
}

/// Reads the string literal whose opening quote is at `open`; returns its unescaped value and
/// the offset just past the closing quote. Only `\'` and `\\` are escapes.
fn string_literal(s: &str, open: usize) -> Result<(String, usize), PatternError> {
    let b = s.as_bytes();
    let mut value = String::new();
    let mut seg = open + 1;
    let mut i = open + 1;
    loop {
        match b.get(i) {
            None => {
                return Err(syntax(format!(
                    "unterminated string starting at offset {open}"
                )))
            }
            Some(b'\'') => {
                // Quote and backslash are ASCII, so every slice boundary here is a char boundary.
                value.push_str(s.get(seg..i).unwrap_or(""));
                return Ok((value, i + 1));
            }
            Some(b'\\') => {
                value.push_str(s.get(seg..i).unwrap_or(""));
                match b.get(i + 1) {
                    Some(&e @ (b'\'' | b'\\')) => value.push(char::from(e)),
                    Some(_) => {
                        let ch = s.get(i + 1..).and_then(|r| r.chars().next()).unwrap_or('?');
                        return Err(syntax(format!(
                            "invalid escape '\\{ch}' at offset {i} (only \\' and \\\\ are allowed)"
                        )));
                    }
                    None => {
                        return Err(syntax(format!(
                            "unterminated string starting at offset {open}"
                        )))
                    }
                }
                i += 2;
                seg = i;
            }
            Some(_) => i += 1,
        }
    }
}

/// Reads `[+-]?digits(.digits)?` starting at `i`; returns the end offset.
fn number(b: &[u8], start: usize) -> Result<usize, PatternError> {
    let mut i = start;
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_from = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == digits_from {
        return Err(syntax(format!("malformed number at offset {start}")));
    }
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i).copied().is_some_and(is_ident_cont) {
        return Err(syntax(format!("malformed number at offset {start}")));
    }
    Ok(i)
}

// ---------------------------------------------------------------------------------------------
// Parser

static EOF: (Tok, usize) = (Tok::Eof, 0);

/// Recursive descent over the tokens. The whole pattern is always parsed; the first unsupported
/// construct is remembered in `unsupported` and reported only if the syntax is valid.
struct Parser<'a> {
    toks: &'a [(Tok, usize)],
    pos: usize,
    unsupported: Option<String>,
    out: Vec<Comparison>,
}

/// What a path names, for the supported paths.
enum PathKind {
    Supported(Kind),
    Unsupported(String),
}

/// A literal's shape.
enum Lit {
    Str(String),
    Other(&'static str),
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &'a Tok {
        &self.toks.get(self.pos).unwrap_or(&EOF).0
    }

    fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.1)
    }

    fn bump(&mut self) -> &'a Tok {
        let t = self.peek();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, t: &Tok, what: &str) -> Result<(), PatternError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, what: &str) -> PatternError {
        syntax(format!(
            "expected {what} at offset {}, found {}",
            self.offset(),
            self.peek().describe()
        ))
    }

    fn unsupported(&mut self, why: impl Into<String>) {
        if self.unsupported.is_none() {
            self.unsupported = Some(why.into());
        }
    }

    fn check_depth(depth: usize) -> Result<(), PatternError> {
        if depth > MAX_DEPTH {
            Err(PatternError::Unsupported(format!(
                "nesting deeper than {MAX_DEPTH} levels"
            )))
        } else {
            Ok(())
        }
    }

    // observationExpressions: a OR b OR ...
    fn obs_or(&mut self, depth: usize) -> Result<(), PatternError> {
        self.obs_and(depth)?;
        while self.eat(&Tok::Kw(Kw::Or)) {
            self.obs_and(depth)?;
        }
        Ok(())
    }

    fn obs_and(&mut self, depth: usize) -> Result<(), PatternError> {
        self.obs_seq(depth)?;
        while self.eat(&Tok::Kw(Kw::And)) {
            self.unsupported("AND between observation expressions");
            self.obs_seq(depth)?;
        }
        Ok(())
    }

    fn obs_seq(&mut self, depth: usize) -> Result<(), PatternError> {
        self.obs_qualified(depth)?;
        while self.eat(&Tok::Kw(Kw::FollowedBy)) {
            self.unsupported("FOLLOWEDBY");
            self.obs_qualified(depth)?;
        }
        Ok(())
    }

    fn obs_qualified(&mut self, depth: usize) -> Result<(), PatternError> {
        self.obs_primary(depth)?;
        loop {
            match self.peek() {
                Tok::Kw(Kw::Within) => {
                    self.bump();
                    self.unsupported("WITHIN qualifier");
                    self.expect_number("a number of seconds after WITHIN")?;
                    self.expect(&Tok::Kw(Kw::Seconds), "SECONDS")?;
                }
                Tok::Kw(Kw::Repeats) => {
                    self.bump();
                    self.unsupported("REPEATS qualifier");
                    self.expect_number("a count after REPEATS")?;
                    self.expect(&Tok::Kw(Kw::Times), "TIMES")?;
                }
                Tok::Kw(Kw::Start) => {
                    self.bump();
                    self.unsupported("START/STOP qualifier");
                    self.expect(&Tok::Typed('t'), "a t'..' timestamp after START")?;
                    self.expect(&Tok::Kw(Kw::Stop), "STOP")?;
                    self.expect(&Tok::Typed('t'), "a t'..' timestamp after STOP")?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect_number(&mut self, what: &str) -> Result<(), PatternError> {
        match self.peek() {
            Tok::Num(_) => {
                self.bump();
                Ok(())
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn obs_primary(&mut self, depth: usize) -> Result<(), PatternError> {
        Self::check_depth(depth)?;
        match self.peek() {
            Tok::LBrack => {
                self.bump();
                self.cmp_or(depth + 1)?;
                self.expect(&Tok::RBrack, "']' closing the observation expression")
            }
            Tok::LParen => {
                self.bump();
                self.obs_or(depth + 1)?;
                self.expect(&Tok::RParen, "')'")
            }
            _ => Err(self.unexpected("'[' or '('")),
        }
    }

    fn cmp_or(&mut self, depth: usize) -> Result<(), PatternError> {
        self.cmp_and(depth)?;
        while self.eat(&Tok::Kw(Kw::Or)) {
            self.cmp_and(depth)?;
        }
        Ok(())
    }

    fn cmp_and(&mut self, depth: usize) -> Result<(), PatternError> {
        self.cmp_primary(depth)?;
        while self.eat(&Tok::Kw(Kw::And)) {
            self.unsupported("AND");
            self.cmp_primary(depth)?;
        }
        Ok(())
    }

    fn cmp_primary(&mut self, depth: usize) -> Result<(), PatternError> {
        Self::check_depth(depth)?;
        match self.peek() {
            Tok::LParen => {
                self.bump();
                self.cmp_or(depth + 1)?;
                return self.expect(&Tok::RParen, "')'");
            }
            Tok::Kw(Kw::Exists) => {
                self.bump();
                self.unsupported("EXISTS");
                self.path()?;
                return Ok(());
            }
            _ => {}
        }
        let path = self.path()?;
        let negated = self.eat(&Tok::Kw(Kw::Not));
        if negated {
            self.unsupported("NOT");
        }
        let op_tok = self.bump();
        let (lit, op_name, ip_subset) = match op_tok {
            Tok::Op(Op::Eq) => (self.literal()?, None, false),
            Tok::Op(o) => (
                self.literal()?,
                Some(format!("operator {}", o.text())),
                false,
            ),
            Tok::Kw(Kw::In) => {
                self.set_literal()?;
                (Lit::Other("set"), Some("IN".to_string()), false)
            }
            Tok::Kw(k @ (Kw::Like | Kw::Matches | Kw::IsSuperset | Kw::IsSubset)) => {
                let lit = match self.bump() {
                    Tok::Str(s) => Lit::Str(s.clone()),
                    _ => {
                        self.pos = self.pos.saturating_sub(1);
                        return Err(self.unexpected(&format!("a string after {}", k.text())));
                    }
                };
                (lit, Some(k.text().to_string()), *k == Kw::IsSubset)
            }
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.unexpected("a comparison operator"));
            }
        };
        let kind = match path {
            PathKind::Supported(k) => k,
            PathKind::Unsupported(p) => {
                self.unsupported(format!("object path {p}"));
                return Ok(());
            }
        };
        let is_ip = matches!(kind, Kind::Ipv4 | Kind::Ipv6);
        if let Some(op) = op_name {
            if !(ip_subset && is_ip) {
                self.unsupported(op);
                return Ok(());
            }
        }
        match lit {
            Lit::Str(value) => {
                if !negated {
                    self.out.push(Comparison { kind, value });
                }
            }
            Lit::Other(what) => self.unsupported(format!("{what} literal")),
        }
        Ok(())
    }

    /// `type:prop(.prop | .'prop' | [n] | [*])*`, classified.
    fn path(&mut self) -> Result<PathKind, PatternError> {
        let ty = match self.bump() {
            Tok::Ident(s) => s.as_str(),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.unexpected("an object path such as ipv4-addr:value"));
            }
        };
        self.expect(&Tok::Colon, "':' after the object type")?;
        let mut text = format!("{ty}:");
        let mut comps: Vec<&'a str> = Vec::new();
        let mut indexed = false;
        let mut first = true;
        loop {
            if !first {
                match self.peek() {
                    Tok::Dot => {
                        self.bump();
                        text.push('.');
                    }
                    Tok::LBrack => {
                        self.bump();
                        match self.bump() {
                            Tok::Star => text.push_str("[*]"),
                            Tok::Num(n) if n.bytes().all(|c| c.is_ascii_digit()) => {
                                text.push('[');
                                text.push_str(n);
                                text.push(']');
                            }
                            _ => {
                                self.pos = self.pos.saturating_sub(1);
                                return Err(self.unexpected("a list index or '*'"));
                            }
                        }
                        self.expect(&Tok::RBrack, "']' closing the list index")?;
                        indexed = true;
                        continue;
                    }
                    _ => break,
                }
            }
            first = false;
            match self.bump() {
                Tok::Ident(s) => {
                    text.push_str(s);
                    comps.push(s);
                }
                Tok::Str(s) => {
                    text.push('\'');
                    text.push_str(s);
                    text.push('\'');
                    comps.push(s);
                }
                _ => {
                    self.pos = self.pos.saturating_sub(1);
                    return Err(self.unexpected("a property name"));
                }
            }
        }
        let kind = if indexed { None } else { path_kind(ty, &comps) };
        Ok(match kind {
            Some(Ok(k)) => PathKind::Supported(k),
            Some(Err(())) => PathKind::Unsupported(format!("{} (hash algorithm)", clip(&text, 80))),
            None => PathKind::Unsupported(clip(&text, 80)),
        })
    }

    fn literal(&mut self) -> Result<Lit, PatternError> {
        let lit = match self.peek() {
            Tok::Str(s) => Lit::Str(s.clone()),
            Tok::Typed('t') => Lit::Other("timestamp"),
            Tok::Typed('h') => Lit::Other("hex"),
            Tok::Typed(_) => Lit::Other("binary"),
            Tok::Num(_) => Lit::Other("number"),
            Tok::Ident(s) if s == "true" || s == "false" => Lit::Other("boolean"),
            _ => return Err(self.unexpected("a literal")),
        };
        self.bump();
        Ok(lit)
    }

    fn set_literal(&mut self) -> Result<(), PatternError> {
        self.expect(&Tok::LParen, "'(' opening the set after IN")?;
        if self.eat(&Tok::RParen) {
            return Ok(());
        }
        loop {
            self.literal()?;
            if self.eat(&Tok::RParen) {
                return Ok(());
            }
            self.expect(&Tok::Comma, "',' or ')' in the set")?;
        }
    }
}

/// The kind of a supported object path: `None` for other paths, `Some(Err)` for a file hash of
/// an algorithm the index does not hold.
fn path_kind(ty: &str, comps: &[&str]) -> Option<Result<Kind, ()>> {
    let t = |name: &str| ty.eq_ignore_ascii_case(name);
    match comps {
        [p] if p.eq_ignore_ascii_case("value") => {
            let k = if t("ipv4-addr") {
                Kind::Ipv4
            } else if t("ipv6-addr") {
                Kind::Ipv6
            } else if t("domain-name") {
                Kind::Domain
            } else if t("url") {
                Kind::Url
            } else if t("email-addr") {
                Kind::Email
            } else {
                return None;
            };
            Some(Ok(k))
        }
        [h, alg] if t("file") && h.eq_ignore_ascii_case("hashes") => {
            let norm: String = alg
                .chars()
                .filter(|c| !matches!(c, '-' | '_'))
                .flat_map(char::to_uppercase)
                .collect();
            Some(match norm.as_str() {
                "MD5" => Ok(Kind::Md5),
                "SHA1" => Ok(Kind::Sha1),
                "SHA256" => Ok(Kind::Sha256),
                "SHA512" => Ok(Kind::Sha512),
                _ => Err(()),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Vec<(Kind, String)> {
        match parse(p) {
            Ok(v) => v.into_iter().map(|c| (c.kind, c.value)).collect(),
            Err(e) => panic!("{p}: {e}"),
        }
    }

    fn unsupported(p: &str) -> String {
        match parse(p) {
            Err(PatternError::Unsupported(why)) => why,
            other => panic!("{p}: expected Unsupported, got {other:?}"),
        }
    }

    fn syntax_err(p: &str) -> String {
        match parse(p) {
            Err(PatternError::Syntax(why)) => why,
            other => panic!("{p}: expected Syntax, got {other:?}"),
        }
    }

    fn spec_lines() -> Vec<String> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/realdata/stix/oasis_pattern_spec_examples_v21.txt"
        ))
        .expect("spec examples");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn spec_examples_classified() {
        let lines = spec_lines();
        assert_eq!(lines.len(), 23);
        // Expected outcome per line: Ok(number of comparisons) or the unsupported reason
        // (the first unsupported construct met, left to right).
        let expected: [Result<usize, &str>; 23] = [
            Ok(1),
            Err("object path email-message:from_ref.value"),
            Err("AND"),
            Err("AND between observation expressions"),
            Err("FOLLOWEDBY"),
            Err("object path user-account:account_type"),
            Err("object path artifact:mime_type"),
            Err("object path file:name"),
            Err("object path file:extensions.'windows-pebinary-ext'.sections[*].entropy"),
            Err("object path file:mime_type"),
            Err("object path network-traffic:dst_ref.type"),
            Err("object path network-traffic:dst_ref.type"),
            Err("AND"),
            Ok(2),
            Err("object path x509-certificate:issuer"),
            Err("object path windows-registry-key:key"),
            Err("object path file:name"),
            Err("object path email-message:sender_ref.value"),
            Err("object path x-usb-device:usbdrive.serial_number"),
            Err("object path process:command_line"),
            Err("object path network-traffic:dst_ref.value"),
            Err("object path file:name"),
            Ok(1),
        ];
        for (i, (line, want)) in lines.iter().zip(expected).enumerate() {
            let got = parse(line);
            match (want, &got) {
                (Ok(n), Ok(v)) => assert_eq!(v.len(), n, "line {}: {line}", i + 1),
                (Err(why), Err(PatternError::Unsupported(w))) => {
                    assert_eq!(w, why, "line {}: {line}", i + 1)
                }
                _ => panic!("line {}: {line}: want {want:?}, got {got:?}", i + 1),
            }
        }
        assert_eq!(
            ok(&lines[0]),
            vec![(
                Kind::Sha256,
                "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f".to_string()
            )]
        );
        assert_eq!(
            ok(&lines[13]),
            vec![
                (Kind::Url, "http://example.com/foo".to_string()),
                (Kind::Url, "http://example.com/bar".to_string())
            ]
        );
        assert_eq!(
            ok(&lines[22]),
            vec![(Kind::Md5, "cead3f77f6cda6ec00f57d76c9a69faa".to_string())]
        );
    }

    #[test]
    fn unsupported_constructs_are_named() {
        // Constructs that only appear after a supported comparison, so they are the first seen.
        let base = "ipv4-addr:value = '1.2.3.4'";
        assert_eq!(unsupported(&format!("[{base} AND {base}]")), "AND");
        assert_eq!(
            unsupported(&format!("[{base}] AND [{base}]")),
            "AND between observation expressions"
        );
        assert_eq!(unsupported("[ipv4-addr:value NOT = '1.2.3.4']"), "NOT");
        assert_eq!(unsupported("[ipv4-addr:value != '1.2.3.4']"), "operator !=");
        assert_eq!(unsupported("[ipv4-addr:value <> '1.2.3.4']"), "operator !=");
        assert_eq!(unsupported("[ipv4-addr:value < '1.2.3.4']"), "operator <");
        assert_eq!(unsupported("[ipv4-addr:value >= '1.2.3.4']"), "operator >=");
        assert_eq!(
            unsupported("[domain-name:value MATCHES '^evil\\\\.com$']"),
            "MATCHES"
        );
        assert_eq!(unsupported("[url:value LIKE 'http://%']"), "LIKE");
        assert_eq!(
            unsupported("[ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]"),
            "IN"
        );
        assert_eq!(
            unsupported("[ipv4-addr:value ISSUPERSET '10.0.0.0/8']"),
            "ISSUPERSET"
        );
        assert_eq!(
            unsupported("[domain-name:value ISSUBSET 'evil.com']"),
            "ISSUBSET"
        );
        assert_eq!(unsupported("[EXISTS ipv4-addr:value]"), "EXISTS");
        assert_eq!(
            unsupported(&format!("[{base}] FOLLOWEDBY [{base}]")),
            "FOLLOWEDBY"
        );
        assert_eq!(
            unsupported(&format!("[{base}] REPEATS 5 TIMES")),
            "REPEATS qualifier"
        );
        assert_eq!(
            unsupported(&format!("[{base}] WITHIN 300 SECONDS")),
            "WITHIN qualifier"
        );
        assert_eq!(
            unsupported(&format!(
                "[{base}] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'"
            )),
            "START/STOP qualifier"
        );
        assert_eq!(
            unsupported("[file:hashes.'SSDEEP' = '3:abc:def']"),
            "object path file:hashes.'SSDEEP' (hash algorithm)"
        );
        assert_eq!(
            unsupported("[domain-name:resolves_to_refs[*].value = '1.2.3.4']"),
            "object path domain-name:resolves_to_refs[*].value"
        );
        assert_eq!(
            unsupported("[ipv4-addr:value = 16909060]"),
            "number literal"
        );
        assert_eq!(unsupported("[ipv4-addr:value = true]"), "boolean literal");
        assert_eq!(
            unsupported("[url:value = t'2016-01-01T00:00:00Z']"),
            "timestamp literal"
        );
        assert_eq!(unsupported("[url:value = h'ff00']"), "hex literal");
        assert_eq!(unsupported("[url:value = b'AAAA']"), "binary literal");
        // A long OR chain with one bad comparison in it is rejected whole.
        assert_eq!(
            unsupported(&format!("[{base} OR {base} OR file:name = 'x.exe']")),
            "object path file:name"
        );
    }

    #[test]
    fn equality_forms_and_paths() {
        assert_eq!(
            ok("[ipv4-addr:value == '198.51.100.0/24']"),
            vec![(Kind::Ipv4, "198.51.100.0/24".to_string())]
        );
        assert_eq!(
            ok("[ipv6-addr:value = '2001:db8::/32']"),
            vec![(Kind::Ipv6, "2001:db8::/32".to_string())]
        );
        assert_eq!(
            ok("[ipv4-addr:value ISSUBSET '223.166.0.0/15']"),
            vec![(Kind::Ipv4, "223.166.0.0/15".to_string())]
        );
        assert_eq!(
            ok("[email-addr:value='a@evil.example']"),
            vec![(Kind::Email, "a@evil.example".to_string())]
        );
        for (p, k) in [
            ("[file:hashes.MD5 = 'x']", Kind::Md5),
            ("[file:hashes.md5 = 'x']", Kind::Md5),
            ("[file:hashes.'MD5' = 'x']", Kind::Md5),
            ("[file:hashes.'SHA-1' = 'x']", Kind::Sha1),
            ("[file:hashes.SHA1 = 'x']", Kind::Sha1),
            ("[file:hashes.'SHA-256' = 'x']", Kind::Sha256),
            ("[file:hashes.SHA256 = 'x']", Kind::Sha256),
            ("[file:hashes.'sha-256' = 'x']", Kind::Sha256),
            ("[file:hashes.'SHA-512' = 'x']", Kind::Sha512),
            ("[file:hashes.SHA512 = 'x']", Kind::Sha512),
        ] {
            assert_eq!(ok(p), vec![(k, "x".to_string())], "{p}");
        }
    }

    #[test]
    fn or_chains_and_parentheses() {
        let p = "[domain-name:value = 'www.webserver.dynssl.com' OR ipv4-addr:value = \
                 '113.10.246.30' OR (ipv4-addr:value = '219.90.112.203' OR \
                 ((url:value = 'http://x.example/a')))]";
        assert_eq!(
            ok(p),
            vec![
                (Kind::Domain, "www.webserver.dynssl.com".to_string()),
                (Kind::Ipv4, "113.10.246.30".to_string()),
                (Kind::Ipv4, "219.90.112.203".to_string()),
                (Kind::Url, "http://x.example/a".to_string()),
            ]
        );
        assert_eq!(
            ok("([ipv4-addr:value = '1.2.3.4'] OR ([domain-name:value = 'a.example']))"),
            vec![
                (Kind::Ipv4, "1.2.3.4".to_string()),
                (Kind::Domain, "a.example".to_string())
            ]
        );
        let chain: Vec<String> = (0..500)
            .map(|i| format!("ipv4-addr:value = '10.0.{}.{}'", i / 256, i % 256))
            .collect();
        assert_eq!(ok(&format!("[{}]", chain.join(" OR "))).len(), 500);
        assert_eq!(ok(" \t\n[ url:value = 'http://a.example/' ]\r\n ").len(), 1);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            ok(r"[url:value = 'http://a.example/it\'s']"),
            vec![(Kind::Url, "http://a.example/it's".to_string())]
        );
        assert_eq!(
            ok(r"[url:value = 'http://a.example/a\\b']"),
            vec![(Kind::Url, r"http://a.example/a\b".to_string())]
        );
        assert_eq!(
            ok(r"[domain-name:value = 'bücher.example']"),
            vec![(Kind::Domain, "bücher.example".to_string())]
        );
        assert_eq!(
            ok("[domain-name:value = '']"),
            vec![(Kind::Domain, String::new())]
        );
        assert!(syntax_err(r"[url:value = 'a\nb']").contains("invalid escape"));
        assert!(syntax_err(r"[url:value = 'a\x41']").contains("invalid escape"));
        assert!(syntax_err(r"[url:value = 'abc\']").contains("unterminated"));
        assert!(syntax_err(r"[url:value = 'abc\").contains("unterminated"));
    }

    #[test]
    fn syntax_errors() {
        for p in [
            "",
            "   ",
            "ipv4-addr:value = '1.2.3.4'",
            "[ipv4-addr:value = '1.2.3.4'",
            "[ipv4-addr:value = '1.2.3.4']]",
            "([ipv4-addr:value = '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4)",
            "[ipv4-addr:value '1.2.3.4']",
            "[ipv4-addr:value = ]",
            "[ipv4-addr = '1.2.3.4']",
            "[:value = '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4' OR]",
            "[ipv4-addr:value = '1.2.3.4'] OR",
            "[ipv4-addr:value = '1.2.3.4'] garbage",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN SECONDS",
            "[ipv4-addr:value = '1.2.3.4'] START '2016' STOP t'x'",
            "[ipv4-addr:value = '1.2.3.4' and domain-name:value = 'x']",
            "[]",
            "[ipv4-addr:value = '1.2.3.4']; DROP TABLE",
            "[ipv4-addr:value MATCHES 5]",
            "[ipv4-addr:value IN '1.2.3.4']",
            "[file:hashes[x] = 'a']",
            "[NOT ipv4-addr:value = '1.2.3.4']",
            "[ipv4-addr:value = 1.2.3.4]",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN 5x SECONDS",
            "[ipv4-addr:value = '1.2.3.4']\u{0}",
        ] {
            syntax_err(p);
        }
        // Syntax wins over unsupported, wherever the error is.
        syntax_err("[file:name = 'a' AND file:size > 5");
        // Deep nesting is refused without exhausting the stack.
        let deep = format!(
            "{}[url:value = 'http://a.example/']{}",
            "(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(matches!(parse(&deep), Err(PatternError::Unsupported(_))));
        assert!(parse(&"[(".repeat(100_000)).is_err());
        let e = parse("[ipv4-addr:value = '1.2.3.4'").unwrap_err();
        assert_eq!(
            e.to_string(),
            "syntax error: expected ']' closing the observation expression at offset 28, found end of pattern"
        );
    }

    /// A small deterministic PRNG for the no-panic tests.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn never_panics() {
        let lines = spec_lines();
        for line in &lines {
            for (i, _) in line.char_indices() {
                let _ = parse(&line[..i]);
                let _ = parse(&line[i..]);
            }
        }
        let mut st = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            let len = (xorshift(&mut st) % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut st) as u8).collect();
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
        // Random token soup, which reaches deeper into the parser than random bytes.
        let atoms = [
            "[",
            "]",
            "(",
            ")",
            "ipv4-addr:value",
            "file:hashes.'SHA-256'",
            "=",
            "==",
            "!=",
            "'1.2.3.4'",
            "'a\\'b'",
            "OR",
            "AND",
            "NOT",
            "MATCHES",
            "ISSUBSET",
            "IN",
            "WITHIN",
            "5",
            "SECONDS",
            "REPEATS",
            "TIMES",
            "START",
            "STOP",
            "t'2016-01-01T00:00:00Z'",
            "FOLLOWEDBY",
            ",",
            ".",
            ":",
            "[*]",
            "EXISTS",
            "h'ff'",
            "-",
            "'",
            "\\",
            "é",
        ];
        for _ in 0..50_000 {
            let n = (xorshift(&mut st) % 16) as usize;
            let p: Vec<&str> = (0..n)
                .map(|_| atoms[(xorshift(&mut st) % atoms.len() as u64) as usize])
                .collect();
            let _ = parse(&p.join(" "));
            let _ = parse(&p.concat());
        }
    }
}
