//! Compiling indicator records into index bytes, and writing them atomically.

use super::format::{self, Section, FIXED_HEADER, HEADER_LEN, MAGIC, SECTIONS, VERSION};
use super::iptrie::IpBuilder;
use super::records::RecordsBuilder;
use super::strtable::{StrTableBuilder, TAG_RAW_DOMAIN_NAME, TAG_RAW_NETWORK_IP};
use crate::error::{Error, Result};
use crate::indicator::{normalize_domain, parse_ip_addr, Indicator, Key, Kind};
use crate::time::Timestamp;
use std::io::Write;
use std::path::Path;

/// Compiles records into an index image.
///
/// The output is byte-for-byte deterministic for the same records and `build_time` (the only
/// input that is not data; pass a fixed one for reproducible builds).
///
/// # Errors
/// [`Error::TooLarge`] beyond the format's limits (2^31 records, 4 GiB per string section).
pub fn build(indicators: &[Indicator], build_time: Timestamp) -> Result<Vec<u8>> {
    let count = u32::try_from(indicators.len())
        .ok()
        .filter(|&n| n < 0x8000_0000)
        .ok_or_else(|| {
            Error::TooLarge(format!("{} records (at most 2^31 - 1)", indicators.len()))
        })?;
    // Three independent passes over the records, run in parallel.
    let (recs, (ip, strs)) = rayon::join(
        || -> Result<_> {
            let mut recs = RecordsBuilder::with_capacity(indicators.len());
            for ind in indicators {
                recs.push(ind)?;
            }
            Ok(recs.finish())
        },
        || {
            rayon::join(
                || {
                    let mut ips = IpBuilder::default();
                    for (i, ind) in indicators.iter().enumerate() {
                        for key in &ind.keys {
                            if let Key::Ip(net) = key {
                                ips.add(*net, i as u32);
                            }
                        }
                    }
                    ips.finish()
                },
                || {
                    let (strs, flags) = string_keys(indicators);
                    strs.finish().map(|s| (s, flags))
                },
            )
        },
    );
    let (records, blocks, strings) = recs?;
    let ip = ip?;
    let (strs, flags) = strs?;
    let bodies: [&[u8]; SECTIONS] = [
        &records,
        &blocks,
        &strings,
        &ip.v4.starts,
        &ip.v4.values,
        &ip.v4.l1,
        &ip.v4.bitmap,
        &ip.v6.starts,
        &ip.v6.values,
        &ip.v6.l1,
        &ip.nodes,
        &ip.postings,
        &strs.slots,
        &strs.entries,
        &ip.v4.lone_addrs,
        &ip.v4.lone_ids,
        &ip.v4.lone_l1,
        &ip.v6.lone_addrs,
        &ip.v6.lone_ids,
        &ip.v6.lone_l1,
        &strs.filter,
        &ip.v4.interval_bitmap,
        &ip.v4.lone_filter,
    ];
    let total: usize = HEADER_LEN + bodies.iter().map(|b| b.len() + 7).sum::<usize>();
    let mut out = vec![0u8; HEADER_LEN];
    out.reserve(total);
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    out[24..32].copy_from_slice(&build_time.ticks().to_le_bytes());
    out[32..36].copy_from_slice(&count.to_le_bytes());
    out[36..40].copy_from_slice(&flags.to_le_bytes());
    out[44..48].copy_from_slice(&(SECTIONS as u32).to_le_bytes());
    out[48] = ip.v4.bitmap_bits;
    out[49] = ip.v4.l1_bits;
    out[50] = ip.v6.l1_bits;
    out[51] = ip.v4.lone_l1_bits;
    out[52] = ip.v6.lone_l1_bits;
    out[56..60].copy_from_slice(&strs.buckets.to_le_bytes());
    out[60..64].copy_from_slice(&strs.keys.to_le_bytes());
    for (i, body) in bodies.iter().enumerate() {
        while out.len() % 8 != 0 {
            out.push(0);
        }
        let at = FIXED_HEADER + 16 * i;
        let off = out.len() as u64;
        out[at..at + 8].copy_from_slice(&off.to_le_bytes());
        out[at + 8..at + 16].copy_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(body);
    }
    let len = out.len() as u64;
    out[16..24].copy_from_slice(&len.to_le_bytes());
    format::put_checksum(&mut out);
    debug_assert_eq!(Section::ALL.len(), SECTIONS);
    Ok(out)
}

/// The string-key table: normalized string keys, plus the KQL raw keys that no normalized
/// lookup followed by a raw-string comparison would reach (and only those, so that the two
/// paths of `Index::visit_kql_network_ip` never report a record twice). `""` is found through
/// the record flags instead.
fn string_keys(indicators: &[Indicator]) -> (StrTableBuilder, u32) {
    let mut strs = StrTableBuilder::default();
    let mut flags = 0u32;
    for (i, ind) in indicators.iter().enumerate() {
        let id = i as u32;
        for key in &ind.keys {
            if let Key::Str(kind, s) = key {
                strs.add(kind.tag(), s.as_bytes(), id);
            }
        }
        let ip_reachable = parse_ip_addr(&ind.kql_network_ip).is_some_and(|a| {
            ind.keys
                .iter()
                .any(|k| matches!(k, Key::Ip(n) if n.contains(&a)))
        });
        if !ip_reachable && !ind.kql_network_ip.is_empty() {
            strs.add(TAG_RAW_NETWORK_IP, ind.kql_network_ip.as_bytes(), id);
            if parse_ip_addr(&ind.kql_network_ip).is_some() {
                flags |= format::FLAG_RAW_IP_PARSEABLE;
            }
        }
        let domain_reachable = normalize_domain(&ind.kql_domain_name).is_ok_and(|d| {
            ind.keys
                .iter()
                .any(|k| matches!(k, Key::Str(Kind::Domain, s) if *s == d))
        });
        if !domain_reachable && !ind.kql_domain_name.is_empty() {
            strs.add(TAG_RAW_DOMAIN_NAME, ind.kql_domain_name.as_bytes(), id);
            if normalize_domain(&ind.kql_domain_name).is_ok() {
                flags |= format::FLAG_RAW_DOMAIN_NORMALIZABLE;
            }
        }
    }
    (strs, flags)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed to
/// disk, then renamed over `path`. A reader sees the old file or the new one, never half.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
