//! `Index::verify`: the whole-file checksum, then a walk of every structure that checks each
//! reference and each ordering the lookups rely on. Bounded by the section sizes (no loops
//! driven by stored values), and like every other reader it returns errors, never panics.

use super::format::{self, Section};
use super::iptrie::{self, FamilyView};
use super::records::{self, Field};
use super::{Index, KqlColumn, VerifySummary};
use crate::error::{Error, Result};
use crate::indicator::Kind;

impl<S: AsRef<[u8]>> Index<S> {
    /// Checks the whole-file checksum, then walks every record, string, interval, prefix node,
    /// lone address and string key, checking every reference and ordering.
    ///
    /// # Errors
    /// [`Error::Checksum`] or the first [`Error::Corrupt`] found.
    pub fn verify(&self) -> Result<VerifySummary> {
        let found = format::checksum(self.as_bytes());
        if found != self.layout.checksum {
            return Err(Error::Checksum {
                expected: self.layout.checksum,
                found,
            });
        }
        let fixed = self.sect(Section::Records);
        for r in self.records() {
            let r = r?;
            // A record marked as its own KQL key must be: its raw column is its value.
            let k = records::kind_byte(fixed, r.id).unwrap_or(0);
            let ip_ok = k & records::KIND_KQL_IP_IS_KEY == 0
                || (matches!(r.kind(), Kind::Ipv4 | Kind::Ipv6)
                    && r.field(Field::KqlNetworkIp) == r.value());
            let domain_ok = k & records::KIND_KQL_DOMAIN_IS_KEY == 0
                || (r.kind() == Kind::Domain && r.field(Field::KqlDomainName) == r.value());
            if !ip_ok || !domain_ok {
                return Err(Error::corrupt(
                    self.at(Section::Records)
                        + r.id as usize * format::RECORD_SIZE
                        + records::KIND_AT,
                    "record marked as its own KQL key, but its raw column differs",
                ));
            }
            // The KQL filter must let every raw join string through.
            for col in KqlColumn::ALL {
                if self.kql_absent(col, r.field(col.field())) {
                    return Err(Error::corrupt(
                        self.at(Section::KqlFilter),
                        format!(
                            "record {}'s raw {col:?} string is missing from the KQL filter",
                            r.id
                        ),
                    ));
                }
            }
        }
        let mut sum = VerifySummary {
            records: self.len() as u64,
            ..VerifySummary::default()
        };
        use Section::*;
        sum.ip_intervals +=
            self.verify_family(self.v4(), 4, [V4Starts, V4L1, V4LoneAddrs, V4LoneL1])?;
        sum.ip_intervals +=
            self.verify_family(self.v6(), 16, [V6Starts, V6L1, V6LoneAddrs, V6LoneL1])?;
        self.strtable().for_each(|_, _, ids| {
            sum.string_keys += 1;
            for id in ids.iter() {
                self.checked(id)?;
            }
            Ok(())
        })?;
        Ok(sum)
    }

    /// Checks one address family; `sects` = starts, l1, lone addresses, lone l1 (for offsets).
    fn verify_family(&self, fam: FamilyView<'_>, width: usize, sects: [Section; 4]) -> Result<u64> {
        let key = |b: &[u8], i: usize| -> Option<u128> {
            let b = b.get(i * width..(i + 1) * width)?;
            Some(if width == 4 {
                u128::from(u32::from_le_bytes(b.try_into().ok()?))
            } else {
                u128::from_be_bytes(b.try_into().ok()?)
            })
        };
        let bad = |s: Section, i: usize, what: &str| {
            Error::corrupt(self.at(s) + i * width, what.to_string())
        };
        let nodes = self.sect(Section::Nodes);
        let postings = self.sect(Section::Postings);
        let n = fam.starts.len() / width;
        for i in 0..n {
            let s = key(fam.starts, i).ok_or_else(|| bad(sects[0], i, "interval out of range"))?;
            let ordered = if i == 0 {
                s == 0
            } else {
                key(fam.starts, i - 1).is_some_and(|p| p < s)
            };
            if !ordered {
                return Err(bad(sects[0], i, "interval starts not ascending from 0"));
            }
            let v = format::u32_at(fam.values, i * 4).unwrap_or(iptrie::EMPTY);
            iptrie::visit(v, nodes, postings, self.at(Section::Nodes), &mut |id| {
                self.checked(id).map(drop)
            })?;
        }
        for b in 0..(1usize << fam.l1_bits) {
            let lo = format::u32_at(fam.l1, b * 4).unwrap_or(u32::MAX) as usize;
            let hi = format::u32_at(fam.l1, b * 4 + 4).unwrap_or(u32::MAX) as usize;
            if lo > hi || hi >= n {
                return Err(Error::corrupt(
                    self.at(sects[1]) + b * 4,
                    "first-level table out of range",
                ));
            }
        }
        let m = fam.lone_ids.len() / 4;
        let bits = fam.lone_l1_bits;
        let mut prev: Option<(usize, u128)> = None;
        let mut buckets = Vec::with_capacity(m);
        for i in 0..m {
            let a = key(fam.lone_addrs, i)
                .ok_or_else(|| bad(sects[2], i, "lone address out of range"))?;
            let here = (iptrie::lone_bucket(a, bits), a);
            buckets.push(here.0);
            if prev.is_some_and(|p| p > here) {
                return Err(bad(
                    sects[2],
                    i,
                    "lone addresses not in (bucket, address) order",
                ));
            }
            prev = Some(here);
            // The bitmaps and the lone filter must let every lone IPv4 address through.
            if width == 4 && self.v4_bitmap_absent(a as u32) {
                return Err(bad(
                    sects[2],
                    i,
                    "lone address ruled out by the IPv4 bitmap or lone filter",
                ));
            }
            self.checked(fam.lone_id(i)?)?;
        }
        // Each bucket's first index, as the writer computes it.
        for (b, &first) in iptrie::bucket_starts(&buckets, bits).iter().enumerate() {
            if format::u32_at(fam.lone_l1, b * 4).is_none_or(|v| v as usize != first) {
                return Err(Error::corrupt(
                    self.at(sects[3]) + b * 4,
                    "lone first-level table does not match the addresses",
                ));
            }
        }
        Ok(n as u64)
    }
}
