//! Index benchmarks on a generated corpus of one million mixed indicators (`iocmatch::gen`,
//! seed 42: 60 % IPv4, 5 % IPv4 CIDRs, 5 % IPv6, 30 % domains, 5 % duplicate values).
//!
//! * `compile/1M_mixed`: `index::build` of the million records.
//! * `lookup/*`: batches of pre-generated queries against the built index, each batch one
//!   iteration, throughput in lookups: `ipv4_1M_random` (uniform random addresses, mostly
//!   misses), `ipv4_hits` (all hits: indicator addresses and addresses inside indicator CIDRs),
//!   `ipv6_random` (half indicator addresses, half random global addresses), `domain_exact`
//!   and `domain_suffix` (half indicator domains, half other generated domains; the suffix
//!   variant prepends one to three labels and looks every label suffix up); the names lie in
//!   one contiguous buffer, as in a log chunk. The `*_batch` variants run the same queries
//!   through the batch API (`Index::visit_ips`, `Index::visit_domains`), which reads the first
//!   memory location of 32 keys back to back so that their cache misses overlap.
//! * `open/1M`: `Index::open` of the index file plus one lookup (constant time: only the
//!   header is read).
//! * `gen/*`: corpus generation speed (indicators, and 1M events of each log written to a sink).
//!
//! The setup prints the index size and its breakdown once.

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use iocmatch::gen::{self, GenConfig, GenIndicator, Rng};
use iocmatch::index::{build, format::Section, Index};
use iocmatch::indicator::{Indicator, Key, Kind, Origin};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

const N: usize = 1_000_000;
const LOOKUPS: usize = 1_000_000;

struct Fixture {
    cfg: GenConfig,
    rows: Vec<GenIndicator>,
    inds: Vec<Indicator>,
    bytes: Vec<u8>,
}

fn config() -> GenConfig {
    GenConfig {
        seed: 42,
        indicators: N,
        events: N,
        ..GenConfig::default()
    }
}

/// A generated row as a parser would produce it: the key from `Key::parse_as` (the row's
/// declared kind) or, failing that, `Key::infer`, then `Indicator::for_key`.
fn to_indicator(r: &GenIndicator) -> Option<Indicator> {
    let key = Key::parse_as(r.kind, &r.value)
        .or_else(|_| Key::infer(&r.value))
        .ok()?;
    let mut ind = Indicator::for_key(key, &r.value, Origin::SentinelLegacy);
    ind.id.clone_from(&r.id);
    ind.description = r.description.to_string();
    ind.threat_type = r.threat_type.to_string();
    ind.confidence = Some(f64::from(r.confidence));
    ind.expiration = r.expiration;
    ind.modified = Some(r.time_generated);
    ind.active = Some(true);
    Some(ind)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = config();
        let rows = gen::indicators(&cfg);
        let inds: Vec<Indicator> = rows.iter().filter_map(to_indicator).collect();
        assert_eq!(inds.len(), rows.len());
        let bytes = build(&inds, cfg.now).expect("build");
        let idx = Index::from_bytes(&bytes[..]).expect("index");
        let strings = idx.layout().range(Section::Strings).len();
        let raw_string_bytes: usize = inds
            .iter()
            .map(|i| {
                i.raw_value.len()
                    + i.kql_network_ip.len()
                    + i.kql_domain_name.len()
                    + i.id.len()
                    + i.description.len()
                    + i.threat_type.len()
            })
            .sum();
        eprintln!(
            "index: {} indicators, {} bytes ({:.1} MiB), {:.1} bytes/indicator; \
             interned strings section {} bytes (the rows hold {} string bytes before interning); \
             without the strings section {:.1} bytes/indicator",
            N,
            bytes.len(),
            bytes.len() as f64 / (1 << 20) as f64,
            bytes.len() as f64 / N as f64,
            strings,
            raw_string_bytes,
            (bytes.len() - strings) as f64 / N as f64
        );
        let sections: Vec<String> = Section::ALL
            .iter()
            .map(|&s| format!("{s:?}={}", idx.layout().range(s).len()))
            .collect();
        eprintln!("index sections (bytes): {}", sections.join(" "));
        Fixture {
            cfg,
            rows,
            inds,
            bytes,
        }
    })
}

fn index() -> Index<&'static [u8]> {
    Index::from_bytes(&fixture().bytes[..]).expect("index")
}

fn count_ips(idx: &Index<&[u8]>, addrs: &[IpAddr]) -> u64 {
    let mut n = 0u64;
    for &a in addrs {
        idx.visit_ip(a, |_| {
            n += 1;
            Ok(())
        })
        .expect("lookup");
    }
    n
}

fn count_ips_batch(idx: &Index<&[u8]>, addrs: &[IpAddr]) -> u64 {
    let mut n = 0u64;
    idx.visit_ips(addrs, |_, _| {
        n += 1;
        Ok(())
    })
    .expect("lookup");
    n
}

fn count_domains(idx: &Index<&[u8]>, names: &[&str], suffix: bool) -> u64 {
    let mut n = 0u64;
    for name in names {
        idx.visit_domain(name, suffix, |_| {
            n += 1;
            Ok(())
        })
        .expect("lookup");
    }
    n
}

fn count_domains_batch(idx: &Index<&[u8]>, names: &[&str], suffix: bool) -> u64 {
    let mut n = 0u64;
    idx.visit_domains(names, suffix, |_, _| {
        n += 1;
        Ok(())
    })
    .expect("lookup");
    n
}

/// The names in one contiguous buffer, as a log chunk holds them (a `Vec<String>` would add a
/// cache miss per name to every lookup, for the heap string).
fn contiguous(names: &[String]) -> (String, Vec<(usize, usize)>) {
    let mut buf = String::new();
    let mut spans = Vec::with_capacity(names.len());
    for n in names {
        spans.push((buf.len(), buf.len() + n.len()));
        buf.push_str(n);
    }
    (buf, spans)
}

/// The share of queries with at least one match.
fn hit_share(hits: impl Iterator<Item = bool>) -> f64 {
    let (mut h, mut n) = (0usize, 0usize);
    for x in hits {
        h += usize::from(x);
        n += 1;
    }
    h as f64 / n.max(1) as f64
}

fn compile(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("compile");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(N as u64));
    g.bench_function("1M_mixed", |b| {
        b.iter(|| build(black_box(&f.inds), f.cfg.now).expect("build").len())
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let f = fixture();
    let mut idx = index();
    // As `hunt` and `filter` do for long runs, unless IOCMATCH_BENCH_NO_HOT is set (to measure
    // lookups straight from the bytes).
    if std::env::var_os("IOCMATCH_BENCH_NO_HOT").is_none() {
        let n = idx.load_hot_sections().expect("hot sections");
        eprintln!("lookup sections copied into huge pages: {n} bytes");
    }
    let mut rng = Rng::new(7);
    let ip_rows: Vec<&GenIndicator> = f
        .rows
        .iter()
        .filter(|r| matches!(r.kind, Kind::Ipv4 | Kind::Cidr4))
        .collect();
    let v6_rows: Vec<Ipv6Addr> = f
        .rows
        .iter()
        .filter(|r| r.kind == Kind::Ipv6)
        .filter_map(|r| r.value.parse().ok())
        .collect();
    let domains: Vec<&str> = f
        .rows
        .iter()
        .filter(|r| r.kind == Kind::Domain)
        .map(|r| r.value.as_str())
        .collect();
    // Domains of another corpus: nearly all misses.
    let others: Vec<String> = gen::indicators(&GenConfig {
        seed: 4242,
        indicators: LOOKUPS,
        ..config()
    })
    .into_iter()
    .filter(|r| r.kind == Kind::Domain)
    .map(|r| r.value)
    .collect();

    let random_v4: Vec<IpAddr> = (0..LOOKUPS)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next_u64() as u32)))
        .collect();
    let hits_v4: Vec<IpAddr> = (0..LOOKUPS)
        .map(|_| {
            let r = ip_rows[rng.below(ip_rows.len() as u64) as usize];
            let (a, len) = match r.value.split_once('/') {
                Some((a, l)) => (a, l.parse::<u32>().expect("len")),
                None => (r.value.as_str(), 32),
            };
            let base = u32::from(a.parse::<Ipv4Addr>().expect("v4"));
            let host = u32::MAX.checked_shr(len).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(base | (rng.next_u64() as u32 & host)))
        })
        .collect();
    let mixed_v6: Vec<IpAddr> = (0..LOOKUPS)
        .map(|i| {
            let a = if i % 2 == 0 {
                v6_rows[rng.below(v6_rows.len() as u64) as usize]
            } else {
                Ipv6Addr::from(
                    (0x2000u128 << 112)
                        | (u128::from(rng.next_u64() >> 3) << 64)
                        | u128::from(rng.next_u64()),
                )
            };
            IpAddr::V6(a)
        })
        .collect();
    let exact_names: Vec<String> = (0..LOOKUPS)
        .map(|i| {
            if i % 2 == 0 {
                domains[rng.below(domains.len() as u64) as usize].to_string()
            } else {
                others[rng.below(others.len() as u64) as usize].clone()
            }
        })
        .collect();
    const LABELS: &[&str] = &[
        "www", "cdn", "api", "login", "x1", "static", "mail", "update",
    ];
    let suffix_names: Vec<String> = exact_names
        .iter()
        .map(|d| {
            let mut s = String::new();
            for _ in 0..rng.range(1, 3) {
                s.push_str(LABELS[rng.below(LABELS.len() as u64) as usize]);
                s.push('.');
            }
            s.push_str(d);
            s
        })
        .collect();

    let (exact_buf, exact_spans) = contiguous(&exact_names);
    let exact: Vec<&str> = exact_spans.iter().map(|&(a, b)| &exact_buf[a..b]).collect();
    let (suffix_buf, suffix_spans) = contiguous(&suffix_names);
    let suffixed: Vec<&str> = suffix_spans
        .iter()
        .map(|&(a, b)| &suffix_buf[a..b])
        .collect();

    let ip_hit = |a: &IpAddr| idx.lookup_ip(*a).is_ok_and(|v| !v.is_empty());
    let name_hit = |n: &String, s: bool| idx.lookup_domain(n, s).is_ok_and(|v| !v.is_empty());
    eprintln!(
        "query hit shares: ipv4_1M_random {:.3}, ipv4_hits {:.3}, ipv6_random {:.3}, \
         domain_exact {:.3}, domain_suffix {:.3}",
        hit_share(random_v4.iter().take(100_000).map(ip_hit)),
        hit_share(hits_v4.iter().take(100_000).map(ip_hit)),
        hit_share(mixed_v6.iter().take(100_000).map(ip_hit)),
        hit_share(exact_names.iter().take(100_000).map(|n| name_hit(n, false))),
        hit_share(suffix_names.iter().take(100_000).map(|n| name_hit(n, true))),
    );

    let mut g = c.benchmark_group("lookup");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(LOOKUPS as u64));
    g.bench_function("ipv4_1M_random", |b| {
        b.iter(|| count_ips(&idx, black_box(&random_v4)))
    });
    g.bench_function("ipv4_1M_random_batch", |b| {
        b.iter(|| count_ips_batch(&idx, black_box(&random_v4)))
    });
    g.bench_function("ipv4_hits", |b| {
        b.iter(|| count_ips(&idx, black_box(&hits_v4)))
    });
    g.bench_function("ipv6_random", |b| {
        b.iter(|| count_ips(&idx, black_box(&mixed_v6)))
    });
    g.bench_function("domain_exact", |b| {
        b.iter(|| count_domains(&idx, black_box(&exact), false))
    });
    g.bench_function("domain_exact_batch", |b| {
        b.iter(|| count_domains_batch(&idx, black_box(&exact), false))
    });
    g.bench_function("domain_suffix", |b| {
        b.iter(|| count_domains(&idx, black_box(&suffixed), true))
    });
    g.bench_function("domain_suffix_batch", |b| {
        b.iter(|| count_domains_batch(&idx, black_box(&suffixed), true))
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.iocidx");
    std::fs::write(&path, &f.bytes).expect("write index");
    let probe = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));
    let mut g = c.benchmark_group("open");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1M", |b| {
        b.iter(|| {
            let idx = Index::open(black_box(&path)).expect("open");
            let mut n = 0u32;
            idx.visit_ip(probe, |_| {
                n += 1;
                Ok(())
            })
            .expect("lookup");
            n
        })
    });
    g.finish();
}

fn generate(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("gen");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("indicators_1M", |b| {
        b.iter(|| gen::indicators(black_box(&f.cfg)).len())
    });
    g.bench_function("network_csv_1M", |b| {
        b.iter(|| gen::write_network_csv(&mut std::io::sink(), &f.cfg, &f.rows).expect("write"))
    });
    g.bench_function("dns_csv_1M", |b| {
        b.iter(|| gen::write_dns_csv(&mut std::io::sink(), &f.cfg, &f.rows).expect("write"))
    });
    g.finish();
}

fn settings() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = settings();
    targets = compile, lookup, open, generate
}
criterion_main!(benches);
