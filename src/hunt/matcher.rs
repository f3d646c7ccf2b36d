//! Matching one record: parse its time, look its key(s) up, apply the expiry rule, emit rows.
//! Allocation-free on a miss; strings are copied only for output rows.

use super::{Expiry, HuntOptions, Match, Query, Semantics};
use crate::error::Result;
use crate::index::Index;
use crate::indicator::parse_ip_addr;
use crate::logs::{Fields, Logical, Malformed};
use crate::time::Timestamp;

/// Counters of one chunk.
#[derive(Default)]
pub(crate) struct Tally {
    pub records: u64,
    pub null_times: u64,
    pub pairs_expired: u64,
    pub skipped: Vec<(u64, Malformed)>,
}

/// Parses an event time: ISO / US forms, else epoch seconds (Zeek).
fn parse_time(s: &str) -> Option<Timestamp> {
    Timestamp::parse(s).or_else(|| Timestamp::parse_epoch(s))
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
        Expiry::Now => match f.expiration {
            Some(e) => e > opts.now,
            None => !kql,
        },
        Expiry::AtEvent => {
            t.is_some_and(|t| f.valid_from.is_none_or(|v| v <= t) && before_expiry(t))
        }
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

    /// Matches one record. `cands` is scratch space.
    pub(crate) fn record(
        &self,
        file: u32,
        line: u64,
        fields: &Fields<'_>,
        cands: &mut Vec<(u32, Logical)>,
        out: &mut Vec<Match>,
        tally: &mut Tally,
    ) -> Result<()> {
        tally.records += 1;
        let kql = self.opts.semantics == Semantics::Kql;
        let text = |l: Logical| fields[l as usize].as_deref().unwrap_or("");
        let time = match text(Logical::Time) {
            "" => None,
            s => match parse_time(s) {
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
