//! Index unit tests: lookups against a brute-force scan of the indicator list, KQL raw-key
//! paths, and corruption (truncation at every offset, flipped bytes) that must never panic.

use super::*;
use crate::indicator::{parse_ip_net, Indicator, Key, Origin};
use ipnet::IpNet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// splitmix64: a seeded, dependency-free generator for reproducible random sets.
pub(crate) struct Rng(u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ip_ind(s: &str) -> Indicator {
    let net = parse_ip_net(s).unwrap();
    Indicator::for_key(Key::Ip(net), s, Origin::Plain)
}

fn build_index(inds: &[Indicator]) -> Index<Vec<u8>> {
    let bytes = build(inds, Timestamp::from_unix_secs(1_700_000_000).unwrap()).unwrap();
    Index::from_bytes(bytes).unwrap()
}

fn brute(inds: &[Indicator], a: IpAddr) -> Vec<u32> {
    let mut v: Vec<u32> = inds
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            i.keys
                .iter()
                .any(|k| matches!(k, Key::Ip(n) if n.contains(&a)))
        })
        .map(|(i, _)| i as u32)
        .collect();
    v.sort_unstable();
    v
}

/// The ids a `visit_*` call passes to its callback, sorted.
fn sorted_ids(visit: impl FnOnce(&mut dyn FnMut(u32) -> Result<()>) -> Result<()>) -> Vec<u32> {
    let mut v = Vec::new();
    visit(&mut |id| {
        v.push(id);
        Ok(())
    })
    .unwrap();
    v.sort_unstable();
    v
}

fn got(idx: &Index<Vec<u8>>, a: IpAddr) -> Vec<u32> {
    sorted_ids(|f| idx.visit_ip(a, f))
}

#[test]
fn v4_random_prefixes_match_brute_force() {
    for seed in 0..4u64 {
        let mut r = Rng(seed);
        // Cluster addresses in a few /8s so that prefixes overlap and nest often.
        let base = |r: &mut Rng| -> u32 {
            ((r.below(4) as u32 + 10) << 24) | (r.next() as u32 & 0x00ff_ffff)
        };
        let mut inds = Vec::new();
        for _ in 0..3000 {
            let len = match r.below(10) {
                0 => 8 + r.below(9) as u8,
                1..=3 => 17 + r.below(15) as u8,
                _ => 32,
            };
            let net =
                IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(base(&mut r)), len).unwrap()).trunc();
            inds.push(ip_ind(&net.to_string()));
            if r.below(20) == 0 {
                inds.push(ip_ind(&net.to_string())); // duplicate key
            }
        }
        inds.push(ip_ind("0.0.0.0/0"));
        inds.push(ip_ind("255.255.255.255"));
        let mut idx = build_index(&inds);
        // The even seeds read the lookup sections from a copy in huge pages.
        if seed % 2 == 0 {
            assert!(idx.load_hot_sections().unwrap() > 0);
        }
        let mut probes: Vec<IpAddr> = (0..5000)
            .map(|_| IpAddr::V4(Ipv4Addr::from(base(&mut r))))
            .collect();
        probes.extend((0..2000).map(|_| IpAddr::V4(Ipv4Addr::from(r.next() as u32))));
        for ind in &inds {
            if let Key::Ip(n) = &ind.keys[0] {
                probes.push(n.network());
                probes.push(n.broadcast());
            }
        }
        probes.push("0.0.0.0".parse().unwrap());
        for &a in &probes {
            assert_eq!(got(&idx, a), brute(&inds, a), "seed {seed} addr {a}");
        }
        // The batch lookup gives every probe's answer, in probe order.
        let mut batch: Vec<Vec<u32>> = vec![Vec::new(); probes.len()];
        let mut order = Vec::new();
        idx.visit_ips(&probes, |i, id| {
            batch[i].push(id);
            order.push(i);
            Ok(())
        })
        .unwrap();
        assert!(order.windows(2).all(|w| w[0] <= w[1]));
        for (a, mut ids) in probes.iter().zip(batch) {
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids, brute(&inds, *a), "seed {seed} batch addr {a}");
        }
        idx.verify().unwrap();
    }
}

#[test]
fn v6_random_prefixes_match_brute_force() {
    let mut r = Rng(42);
    let base = |r: &mut Rng| -> u128 {
        (0x2001_0db8u128 + u128::from(r.below(3))) << 96
            | u128::from(r.next()) << 32
            | u128::from(r.below(4))
    };
    let mut inds = Vec::new();
    for _ in 0..3000 {
        let len = match r.below(10) {
            0 => 32 + r.below(32) as u8,
            1..=3 => 64 + r.below(64) as u8,
            _ => 128,
        };
        let net =
            IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::from(base(&mut r)), len).unwrap()).trunc();
        inds.push(ip_ind(&net.to_string()));
    }
    inds.push(ip_ind("::/0"));
    inds.push(ip_ind("1.2.3.4"));
    let idx = build_index(&inds);
    let mut hot_idx = build_index(&inds);
    assert!(hot_idx.load_hot_sections().unwrap() > 0);
    let mut probes: Vec<IpAddr> = (0..5000)
        .map(|_| IpAddr::V6(Ipv6Addr::from(base(&mut r))))
        .collect();
    for ind in &inds {
        if let Key::Ip(n) = &ind.keys[0] {
            probes.push(n.network());
            probes.push(n.broadcast());
        }
    }
    // Without ::/0, which contains them all, these miss (and a lone address's neighbours
    // share its bucket at most by chance).
    for _ in 0..2000 {
        probes.push(IpAddr::V6(Ipv6Addr::from(
            u128::from(r.next()) << 64 | u128::from(r.next()),
        )));
    }
    for ind in &inds {
        if let Key::Ip(IpNet::V6(n)) = &ind.keys[0] {
            let a = u128::from(n.broadcast());
            probes.push(IpAddr::V6(Ipv6Addr::from(a.wrapping_add(1))));
        }
    }
    let some = &inds[..inds.len() - 2];
    let some_idx = build_index(some);
    let mut misses = 0;
    for a in probes {
        assert_eq!(got(&idx, a), brute(&inds, a), "addr {a}");
        assert_eq!(got(&hot_idx, a), brute(&inds, a), "hot sections, addr {a}");
        // The batch probe is exact for IPv6: absent iff nothing contains the address.
        if let IpAddr::V6(v6) = a {
            let want = brute(some, a);
            misses += usize::from(want.is_empty());
            assert_eq!(some_idx.ipv6_absent(v6, false), want.is_empty(), "addr {a}");
        }
    }
    assert!(misses > 1000, "{misses} misses");
    // IPv4-mapped IPv6 is looked up as IPv4; ::/0 does not contain IPv4 addresses.
    assert!(!idx.ipv6_absent("::ffff:1.2.3.4".parse().unwrap(), false));
    assert_eq!(
        got(&idx, "::ffff:1.2.3.4".parse().unwrap()),
        vec![inds.len() as u32 - 1]
    );
    idx.verify().unwrap();
    hot_idx.verify().unwrap();
}

#[test]
fn lone_addresses_with_and_without_prefixes_in_their_bucket_match_brute_force() {
    // Lone addresses spread over the whole space (some repeated in several records),
    // prefixes (top-level single-record ones with children among them) in a few regions only:
    // exact answers at the lone addresses and their neighbours.
    for seed in 0..3u64 {
        let mut r = Rng(100 + seed);
        let mut inds: Vec<Indicator> = Vec::new();
        for i in 0..4000 {
            let a = if i % 10 == 9 {
                inds[r.below(i) as usize].keys[0].clone()
            } else {
                Key::Ip(IpNet::V4(Ipv4Addr::from(r.next() as u32).into()))
            };
            let Key::Ip(n) = a else { unreachable!() };
            inds.push(ip_ind(&n.addr().to_string()));
        }
        for _ in 0..300 {
            let len = 12 + r.below(21) as u8;
            let a = ((r.below(8) as u32 + 40) << 24) | (r.next() as u32 & 0x00ff_ffff);
            let net = IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).unwrap()).trunc();
            inds.push(ip_ind(&net.to_string()));
        }
        let idx = build_index(&inds);
        let mut probes: Vec<u32> = (0..3000).map(|_| r.next() as u32).collect();
        for ind in &inds {
            if let Key::Ip(IpNet::V4(n)) = &ind.keys[0] {
                let a = u32::from(n.network());
                probes.extend([a, a.wrapping_add(1), a.wrapping_sub(1)]);
                probes.push(u32::from(n.broadcast()).wrapping_add(1));
            }
        }
        for a in probes {
            let a = IpAddr::V4(Ipv4Addr::from(a));
            assert_eq!(got(&idx, a), brute(&inds, a), "seed {seed} addr {a}");
        }
        idx.verify().unwrap();
    }
}

/// Records whose raw KQL column is their one key's text are marked so, and a KQL join on
/// them answers exactly as string comparison does, for events spelled like the key and
/// otherwise (spaces, case, other notations).
#[test]
fn kql_records_marked_as_their_own_key_join_like_strings() {
    let with_raw = |mut i: Indicator, ip: &str, dom: &str| {
        i.kql_network_ip = ip.into();
        i.kql_domain_name = dom.into();
        i
    };
    let dom_ind =
        |v: &str| Indicator::for_key(Key::parse_as(Kind::Domain, v).unwrap(), v, Origin::Plain);
    let inds = vec![
        with_raw(ip_ind("1.2.3.4"), "1.2.3.4", ""),  // 0 marked
        with_raw(ip_ind("1.2.3.4"), " 1.2.3.4", ""), // 1 not: a space
        with_raw(ip_ind("2001:db8::1"), "2001:db8::1", ""), // 2 marked
        with_raw(ip_ind("2001:db8::1"), "2001:DB8::1", ""), // 3 not: case
        with_raw(ip_ind("10.0.0.0/8"), "10.0.0.0/8", ""), // 4 not: a prefix
        with_raw(dom_ind("evil.example"), "", "evil.example"), // 5 marked
        with_raw(dom_ind("evil.example"), "", "Evil.Example"), // 6 not: case
    ];
    let idx = build_index(&inds);
    let marks: Vec<u8> = (0..inds.len() as u32)
        .map(|i| records::kind_byte(idx.sect(Section::Records), i).unwrap() & 0xC0)
        .collect();
    assert_eq!(marks, [0x80, 0, 0x80, 0, 0, 0x40, 0]);
    idx.verify().unwrap();
    for s in [
        "1.2.3.4",
        " 1.2.3.4",
        "1.2.3.4 ",
        "[1.2.3.4]",
        "::ffff:1.2.3.4",
        "2001:db8::1",
        "2001:DB8::1",
        "2001:db8:0::1",
        "10.0.0.0/8",
        "10.1.2.3",
        "evil.example",
        "Evil.Example",
        "evil.example.",
        "EVIL.EXAMPLE",
        "",
    ] {
        let brute = |raw: fn(&Indicator) -> &str| -> Vec<u32> {
            (0..inds.len() as u32)
                .filter(|&i| raw(&inds[i as usize]) == s)
                .collect()
        };
        let net = sorted_ids(|f| idx.visit_kql_network_ip(s, f));
        assert_eq!(net, brute(|i| &i.kql_network_ip), "NetworkIP {s:?}");
        let dom = sorted_ids(|f| idx.visit_kql_domain_name(s, f));
        assert_eq!(dom, brute(|i| &i.kql_domain_name), "DomainName {s:?}");
    }
}

/// `verify` finds a record marked as its own KQL key whose raw column differs.
#[test]
fn verify_finds_a_false_own_key_mark() {
    let dom = Indicator::for_key(
        Key::parse_as(Kind::Domain, "evil.example").unwrap(),
        "evil.example",
        Origin::Plain,
    );
    let inds = vec![ip_ind("1.2.3.4"), dom];
    let mut bytes = build(&inds, Timestamp::from_unix_secs(1_700_000_000).unwrap()).unwrap();
    let at = Index::from_bytes(bytes.clone())
        .unwrap()
        .layout
        .range(Section::Records)
        .start;
    // The domain record is not marked as its own NetworkIP: mark it so.
    assert_eq!(bytes[at + format::RECORD_SIZE + 22] & 0x80, 0);
    bytes[at + format::RECORD_SIZE + 22] |= 0x80;
    format::put_checksum(&mut bytes);
    let e = Index::from_bytes(bytes)
        .unwrap()
        .verify()
        .unwrap_err()
        .to_string();
    assert!(e.contains("marked as its own KQL key"), "{e}");
}

/// The lone filter: never rules out an indicator address (the brute force decides), and
/// rules out most misses that share a block with a lone address but no prefix.
#[test]
fn lone_filter_keeps_every_address_and_drops_most_neighbours() {
    let mut r = Rng(7);
    let mut inds: Vec<Indicator> = (0..20_000)
        .map(|_| ip_ind(&Ipv4Addr::from(r.next() as u32).to_string()))
        .collect();
    // Prefixes in 10.0.0.0/8 only, so that blocks elsewhere hold lone addresses alone.
    for _ in 0..200 {
        let a = (10 << 24) | (r.next() as u32 & 0x00ff_ffff);
        let net = ipnet::Ipv4Net::new(Ipv4Addr::from(a), 20 + r.below(9) as u8).unwrap();
        inds.push(ip_ind(&net.trunc().to_string()));
    }
    let idx = build_index(&inds);
    let bits = idx.layout.v4_bitmap_bits;
    assert!(bits > 0);
    let (mut neighbours, mut ruled_out) = (0, 0);
    for ind in &inds {
        let Key::Ip(IpNet::V4(n)) = &ind.keys[0] else {
            unreachable!()
        };
        let a = u32::from(n.network());
        assert!(!idx.ipv4_absent(Ipv4Addr::from(a), false), "{n}");
        if n.prefix_len() < 32 {
            continue;
        }
        // Other addresses of the same block, outside 10/8.
        for k in 1..=4u32 {
            let b = a ^ (k * 0x11);
            let same_block = b >> (32 - u32::from(bits)) == a >> (32 - u32::from(bits));
            if !same_block || b >> 24 == 10 || !brute(&inds, IpAddr::V4(b.into())).is_empty() {
                continue;
            }
            neighbours += 1;
            ruled_out += u32::from(idx.ipv4_absent(Ipv4Addr::from(b), false));
        }
    }
    assert!(neighbours > 50_000, "{neighbours}");
    assert!(
        ruled_out as f64 > 0.95 * neighbours as f64,
        "{ruled_out} of {neighbours} neighbours ruled out"
    );
}

/// `verify` finds a lone address that the lone filter would rule out.
#[test]
fn verify_finds_a_lone_address_missing_from_the_filter() {
    let inds: Vec<Indicator> = (0..500u32)
        .map(|i| ip_ind(&Ipv4Addr::from(i.wrapping_mul(0x9E37_79B9)).to_string()))
        .collect();
    let mut bytes = build(&inds, Timestamp::from_unix_secs(1_700_000_000).unwrap()).unwrap();
    let range = Index::from_bytes(bytes.clone())
        .unwrap()
        .layout
        .range(Section::V4LoneFilter);
    assert!(!range.is_empty());
    bytes[range].fill(0);
    format::put_checksum(&mut bytes);
    let idx = Index::from_bytes(bytes).unwrap();
    let e = idx.verify().unwrap_err().to_string();
    assert!(
        e.contains("ruled out by the IPv4 bitmap or lone filter"),
        "{e}"
    );
}

#[test]
fn lone_ipv6_addresses_crowded_into_one_slash32_spread_over_buckets() {
    // As real feeds have them: thousands of addresses in one provider's /32. Buckets by
    // leading bits would put them all in one; hashed buckets hold about four each.
    let mut r = Rng(7);
    let mut inds = Vec::new();
    for _ in 0..8000 {
        let a = 0x2a01_04f8u128 << 96 | u128::from(r.next()) << 32 | u128::from(r.below(1 << 16));
        inds.push(ip_ind(&Ipv6Addr::from(a).to_string()));
    }
    let idx = build_index(&inds);
    let fam = idx.v6();
    let buckets = 1usize << fam.lone_l1_bits;
    let largest = (0..buckets)
        .map(|k| {
            let at = |k: usize| crate::index::format::u32_at(fam.lone_l1, k * 4).unwrap();
            at(k + 1) - at(k)
        })
        .max()
        .unwrap();
    assert!(buckets >= 1024, "{buckets} buckets");
    assert!(
        largest <= 24,
        "a bucket of {largest} addresses among {buckets}"
    );
    for ind in inds.iter().step_by(7) {
        let Key::Ip(n) = &ind.keys[0] else {
            unreachable!()
        };
        let a = n.addr();
        assert_eq!(got(&idx, a), brute(&inds, a), "addr {a}");
        let next = IpAddr::V6(Ipv6Addr::from(
            u128::from_be_bytes(match a {
                IpAddr::V6(v) => v.octets(),
                IpAddr::V4(_) => unreachable!(),
            }) + 1,
        ));
        assert_eq!(got(&idx, next), brute(&inds, next), "addr {next}");
    }
    idx.verify().unwrap();
}

#[test]
fn many_domains_match_a_reference_map() {
    // Enough keys for thousands of string-table buckets: every key found with all its ids,
    // misses miss, domain_absent never rules out a present key, batch = single lookups.
    let mut r = Rng(7);
    let mut inds = Vec::new();
    let mut want: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for i in 0..20_000u32 {
        let name = if i > 0 && r.below(10) == 0 {
            inds.get(r.below(u64::from(i)) as usize)
                .map(|d: &Indicator| d.raw_value.clone())
                .unwrap_or_default()
        } else {
            format!("h{:x}.example{}.com", r.next() % 100_000_000, r.below(50))
        };
        want.entry(name.clone()).or_default().push(i);
        inds.push(str_ind(Kind::Domain, &name));
    }
    let mut idx = build_index(&inds);
    assert!(idx.load_hot_sections().unwrap() > 0);
    let mut names: Vec<String> = want.keys().cloned().collect();
    names.sort();
    names.extend((0..20_000).map(|_| format!("m{:x}.example.com", r.next())));
    for name in &names {
        let mut ids = Vec::new();
        idx.visit_domain(name, false, |id| {
            ids.push(id);
            Ok(())
        })
        .unwrap();
        let expect = want.get(name).cloned().unwrap_or_default();
        assert_eq!(ids, expect, "{name}");
        if !expect.is_empty() {
            assert!(!idx.domain_absent(name, false), "{name}");
            assert!(idx.domain_probe_byte(name).is_some());
        }
    }
    let mut batch: Vec<Vec<u32>> = vec![Vec::new(); names.len()];
    idx.visit_domains(&names, false, |i, id| {
        batch[i].push(id);
        Ok(())
    })
    .unwrap();
    for (name, ids) in names.iter().zip(batch) {
        assert_eq!(ids, want.get(name).cloned().unwrap_or_default(), "{name}");
    }
    idx.verify().unwrap();
}

fn str_ind(kind: Kind, v: &str) -> Indicator {
    Indicator::for_key(Key::parse_as(kind, v).unwrap(), v, Origin::Plain)
}

#[test]
fn domain_exact_and_label_suffix() {
    let inds = vec![
        str_ind(Kind::Domain, "evil.com"),
        str_ind(Kind::Domain, "B.Evil.COM."),
        str_ind(Kind::Domain, "evil.com"),
        str_ind(Kind::Domain, "other.org"),
    ];
    let idx = build_index(&inds);
    let ids = |name: &str, suffix: bool| -> Vec<u32> {
        idx.lookup_domain(name, suffix)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect()
    };
    assert_eq!(ids("evil.com", false), vec![0, 2]);
    assert_eq!(ids("EVIL.com.", false), vec![0, 2]);
    assert_eq!(ids("a.b.evil.com", false), Vec::<u32>::new());
    assert_eq!(ids("a.b.evil.com", true), vec![0, 1, 2]);
    assert_eq!(ids("b.evil.com", true), vec![0, 1, 2]);
    assert_eq!(ids("notevil.com", true), Vec::<u32>::new());
    assert_eq!(ids("evil.com.au", true), Vec::<u32>::new());
    assert_eq!(ids("com", true), Vec::<u32>::new());
    assert_eq!(ids("", true), Vec::<u32>::new());
    assert_eq!(ids(".", true), Vec::<u32>::new());
    // The batch lookup answers as the single one, name by name, in both modes.
    let names = [
        "evil.com",
        "EVIL.com.",
        "a.b.evil.com",
        "b.evil.com",
        "notevil.com",
        "",
        ".",
        "com",
        "Bücher.example",
        "other.org",
    ];
    for suffix in [false, true] {
        let mut batch: Vec<Vec<u32>> = vec![Vec::new(); names.len()];
        idx.visit_domains(&names, suffix, |i, id| {
            batch[i].push(id);
            Ok(())
        })
        .unwrap();
        for (name, mut got) in names.iter().zip(batch) {
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, ids(name, suffix), "{name:?} suffix {suffix}");
        }
    }
    let r = idx.record(1).unwrap();
    assert_eq!(r.value(), "b.evil.com");
    assert_eq!(r.field(Field::RawValue), "B.Evil.COM.");
}

#[test]
fn hashes_urls_emails_cves() {
    let md5 = "D41D8CD98F00B204E9800998ECF8427E";
    let inds = vec![
        str_ind(Kind::Md5, md5),
        str_ind(Kind::Url, "HTTP://Evil.com/Path"),
        str_ind(Kind::Email, "Bad@Evil.com"),
        str_ind(Kind::Cve, "cve-2021-44228"),
    ];
    let idx = build_index(&inds);
    assert_eq!(idx.lookup_hash(&md5.to_lowercase()).unwrap()[0].id, 0);
    assert_eq!(idx.lookup_hash(md5).unwrap()[0].kind(), Kind::Md5);
    assert!(idx.lookup_hash(&md5[1..]).unwrap().is_empty());
    assert_eq!(idx.lookup_url("http://EVIL.com/Path").unwrap()[0].id, 1);
    assert!(idx.lookup_url("http://evil.com/path").unwrap().is_empty());
    assert_eq!(idx.lookup_email("bad@evil.COM").unwrap()[0].id, 2);
    assert_eq!(idx.lookup_cve("CVE-2021-44228").unwrap()[0].id, 3);
    assert_eq!(idx.lookup("cve-2021-44228", false).unwrap()[0].id, 3);
}

#[test]
fn kql_raw_keys() {
    let mut a = ip_ind("2001:DB8::1");
    a.kql_network_ip = "2001:DB8::1".into();
    let b = ip_ind("2001:db8::1");
    let mut c = Indicator {
        kql_domain_name: "Evil.com".into(),
        keys: vec![Key::parse_as(Kind::Domain, "Evil.com").unwrap()],
        ..Indicator::default()
    };
    c.raw_value = "Evil.com".into();
    let empty = Indicator {
        kql_domain_name: "not a domain".into(),
        ..Indicator::default()
    };
    let cidr = ip_ind("10.0.0.0/8");
    let inds = vec![a, b, c, empty, cidr];
    let idx = build_index(&inds);
    let net = |s: &str| sorted_ids(|f| idx.visit_kql_network_ip(s, f));
    let dom = |s: &str| sorted_ids(|f| idx.visit_kql_domain_name(s, f));
    assert_eq!(net("2001:DB8::1"), vec![0]);
    assert_eq!(net("2001:db8::1"), vec![1]);
    assert_eq!(net("2001:0db8::1"), Vec::<u32>::new());
    // Strings are never null: an empty NetworkIP joins an empty DestinationIP.
    assert_eq!(net(""), vec![2, 3]);
    assert_eq!(net("10.0.0.0/8"), vec![4]);
    assert_eq!(net("10.1.1.1"), Vec::<u32>::new());
    assert_eq!(dom("Evil.com"), vec![2]);
    assert_eq!(dom("evil.com"), Vec::<u32>::new());
    assert_eq!(dom("not a domain"), vec![3]);
    assert_eq!(dom(""), vec![0, 1, 4]);
    // Normalized lookups still see through case.
    assert_eq!(
        idx.lookup_ip("2001:db8::1".parse().unwrap()).unwrap().len(),
        2
    );
    assert_eq!(idx.lookup_domain("EVIL.COM", false).unwrap().len(), 1);
}

#[test]
fn records_roundtrip_fields() {
    let mut ind = ip_ind("1.2.3.4");
    ind.id = "indicator--1".into();
    ind.description = "C2 – ünïcode".into();
    ind.confidence = Some(85.5);
    ind.expiration = Timestamp::parse("2026-12-01T00:00:00.1234567Z");
    ind.valid_from = Timestamp::parse("2026-01-01");
    ind.active = Some(false);
    ind.origin = Origin::SentinelLegacy;
    ind.modified = Timestamp::parse("2026-11-01T10:00:00Z");
    let idx = build_index(&[ind.clone(), Indicator::default()]);
    let r = idx.record(0).unwrap();
    assert_eq!(r.field(Field::Id), "indicator--1");
    assert_eq!(r.field(Field::Description), ind.description);
    assert_eq!(r.confidence(), Some(85.5));
    assert_eq!(r.expiration(), ind.expiration);
    assert_eq!(idx.expiration(0).unwrap(), ind.expiration);
    assert_eq!(r.valid_from(), ind.valid_from);
    assert_eq!(r.active(), Some(false));
    assert_eq!(r.origin(), Origin::SentinelLegacy);
    assert_eq!(r.field(Field::Modified), "2026-11-01T10:00:00Z");
    let u = idx.record(1).unwrap();
    assert_eq!(
        (u.kind(), u.confidence(), u.expiration(), u.active()),
        (Kind::Unusable, None, None, None)
    );
    assert!(idx.record(2).is_err());
    assert!(idx.field(2, Field::Id).is_err());
}

/// Every string field of thousands of records reads back as given, whether its value repeats
/// in the next record (stored once per run for the per-record fields), further away (the
/// dictionary fields), or not at all; with empty values and values equal to the raw value.
#[test]
fn record_strings_roundtrip_with_repeats_near_and_far() {
    let mut rng = Rng(0x5157_41b5);
    let pick =
        |rng: &mut Rng, pool: &[&str]| pool[rng.below(pool.len() as u64) as usize].to_string();
    let mut inds = Vec::new();
    for i in 0..3000 {
        // Runs of one to three equal addresses, some repeated far apart.
        let host = if rng.below(3) == 0 { i / 3 % 50 } else { i / 3 };
        let mut ind = ip_ind(&format!(
            "10.{}.{}.{}",
            host >> 16 & 255,
            host >> 8 & 255,
            host & 255
        ));
        ind.id = match rng.below(3) {
            0 => format!("id-{}", i / 2),
            1 => String::new(),
            _ => format!("id-{i}"),
        };
        ind.description = pick(&mut rng, &["", "C2", "Scanner, range", "ünïcode – desc"]);
        ind.threat_type = pick(&mut rng, &["", "C2", "Botnet"]);
        ind.kql_network_ip = if rng.below(4) == 0 {
            String::new()
        } else {
            ind.raw_value.clone()
        };
        ind.modified = Timestamp::parse(&format!("2026-11-01T10:{:02}:00Z", i / 7 % 60));
        inds.push(ind);
    }
    let idx = build_index(&inds);
    for (id, ind) in inds.iter().enumerate() {
        let r = idx.record(id as u32).unwrap();
        let want = [
            (Field::RawValue, ind.raw_value.clone()),
            (Field::Id, ind.id.clone()),
            (Field::Description, ind.description.clone()),
            (Field::ThreatType, ind.threat_type.clone()),
            (Field::KqlNetworkIp, ind.kql_network_ip.clone()),
            (
                Field::Modified,
                ind.modified.map(|t| t.to_string()).unwrap_or_default(),
            ),
        ];
        for (f, v) in want {
            assert_eq!(r.field(f), v, "record {id} field {f:?}");
            assert_eq!(
                idx.field(id as u32, f).unwrap(),
                v,
                "record {id} field {f:?}"
            );
        }
    }
    idx.verify().unwrap();
}

/// The one-field read equals the whole-record read, for every field of every record of the
/// corruption tests' sample index (string fields equal to the raw value, empty and present).
#[test]
fn single_field_reads_match_whole_records() {
    let idx = Index::from_bytes(sample_bytes()).unwrap();
    assert!(idx.len() > 3);
    for id in 0..idx.len() as u32 {
        let r = idx.record(id).unwrap();
        for (i, f) in Field::ALL.into_iter().enumerate() {
            assert_eq!(f as usize, i);
            assert_eq!(
                idx.field(id, f).unwrap(),
                r.field(f),
                "record {id} field {f:?}"
            );
        }
    }
}

#[test]
fn deterministic_bytes() {
    let inds: Vec<Indicator> = ["1.2.3.4", "10.0.0.0/8", "::1"]
        .iter()
        .map(|s| ip_ind(s))
        .collect();
    let t = Timestamp::from_unix_secs(1).unwrap();
    assert_eq!(build(&inds, t).unwrap(), build(&inds, t).unwrap());
}

/// The image written part by part (`compile`, `sync`) is the bytes `build` joins, with the
/// checksum computed from the parts equal to the joined file's: sections of odd lengths, so
/// that padding appears between them.
#[test]
fn image_written_by_parts_equals_the_joined_bytes() {
    let mut inds: Vec<Indicator> = ["1.2.3.4", "10.0.0.0/8", "2001:db8::/33", "::1"]
        .iter()
        .map(|s| ip_ind(s))
        .collect();
    let d = Key::Str(crate::indicator::Kind::Domain, "evil.example".into());
    inds.push(Indicator::for_key(d, "evil.example", Origin::Plain));
    let t = Timestamp::from_unix_secs(1).unwrap();
    let bytes = build(&inds, t).unwrap();
    let image = build_image(&inds, t).unwrap();
    assert_eq!(image.len(), bytes.len());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.iocx");
    image.write_atomic(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let stored = format::u32_at(&bytes, format::CHECKSUM_AT).unwrap();
    assert_eq!(stored, format::checksum(&bytes));
    Index::from_bytes(bytes).unwrap().verify().unwrap();
}

#[test]
fn empty_index_works() {
    let idx = build_index(&[]);
    assert!(idx.is_empty());
    assert!(idx
        .lookup_ip("1.2.3.4".parse().unwrap())
        .unwrap()
        .is_empty());
    assert!(idx.lookup_ip("::1".parse().unwrap()).unwrap().is_empty());
    assert!(idx.lookup_domain("a.b", true).unwrap().is_empty());
    idx.verify().unwrap();
}

fn sample_bytes() -> Vec<u8> {
    let mut inds: Vec<Indicator> = [
        "1.2.3.4",
        "10.0.0.0/8",
        "10.1.0.0/16",
        "10.1.0.0/16",
        "2001:db8::/32",
        "::1",
    ]
    .iter()
    .map(|s| ip_ind(s))
    .collect();
    inds.push(str_ind(Kind::Domain, "evil.com"));
    inds.push(str_ind(Kind::Sha1, &"a".repeat(40)));
    inds.push(Indicator::default());
    build(&inds, Timestamp::from_unix_secs(5).unwrap()).unwrap()
}

/// Exercises every read path; errors are fine, panics are not. With `hot`, the lookup
/// sections are read from their copy in huge pages.
fn exercise(b: Vec<u8>, hot: bool) {
    let Ok(mut idx) = Index::from_bytes(b) else {
        return;
    };
    if hot {
        idx.load_hot_sections().unwrap();
    }
    for a in [
        "1.2.3.4",
        "10.1.2.3",
        "10.2.0.0",
        "2001:db8::5",
        "::1",
        "0.0.0.0",
        "255.255.255.255",
    ] {
        let _ = idx.lookup_ip(a.parse().unwrap());
        let _ = idx.visit_kql_network_ip(a, |_| Ok(()));
    }
    let _ = idx.lookup_domain("x.evil.com", true);
    let _ = idx.visit_kql_domain_name("", |_| Ok(()));
    let _ = idx.lookup_hash(&"a".repeat(40));
    for r in idx.records() {
        let _ = r;
    }
    for id in 0..idx.len() as u32 {
        for f in Field::ALL {
            let _ = idx.field(id, f);
        }
    }
    let _ = idx.verify();
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let b = sample_bytes();
    for len in 0..b.len() {
        let r = Index::from_bytes(b[..len].to_vec());
        assert!(r.is_err(), "truncated at {len} opened");
    }
}

#[test]
fn flipped_bytes_never_panic_and_verify_catches_them() {
    let b = sample_bytes();
    let mut r = Rng(7);
    for i in 0..b.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut c = b.clone();
            c[i] ^= mask;
            if let Ok(idx) = Index::from_bytes(c.clone()) {
                assert!(idx.verify().is_err(), "flip at {i} not caught by verify");
            }
            exercise(c, mask == 0x80);
        }
    }
    for k in 0..2000 {
        let mut c = b.clone();
        for _ in 0..4 {
            let i = r.below(c.len() as u64) as usize;
            c[i] = r.next() as u8;
        }
        exercise(c, k % 2 == 0);
    }
}

#[test]
fn wrong_magic_and_version() {
    let mut b = sample_bytes();
    assert!(matches!(
        Index::from_bytes(b"hello".to_vec()),
        Err(Error::NotAnIndex)
    ));
    b[8] = 9;
    assert!(matches!(
        Index::from_bytes(b.clone()),
        Err(Error::Version { found: 9, .. })
    ));
    b[0] = b'X';
    assert!(matches!(Index::from_bytes(b), Err(Error::NotAnIndex)));
}

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index<Vec<u8>>>();
    assert_send_sync::<Index<memmap2::Mmap>>();
    assert_send_sync::<Record<'static>>();
}

#[test]
fn confidence_is_kept_exactly() {
    let inds: Vec<Indicator> = [
        Some(85.5),
        Some(33.333),
        Some(-1.0),
        Some(1000.0),
        Some(0.125),
        Some(100.0),
        None,
        Some(0.07),
    ]
    .into_iter()
    .map(|c| {
        let mut i = ip_ind("1.2.3.4");
        i.confidence = c;
        i
    })
    .collect();
    let idx = build_index(&inds);
    let got: Vec<Option<f64>> = (0..inds.len() as u32)
        .map(|i| idx.record(i).unwrap().confidence())
        .collect();
    let want: Vec<Option<f64>> = inds.iter().map(|i| i.confidence).collect();
    assert_eq!(got, want);
}

#[test]
fn kql_raw_entries_that_look_like_addresses_are_still_found() {
    // A row whose raw NetworkIP is an address but which has no IP key (say, its key came from
    // another column): only the raw table reaches it, and the header flag says to probe it.
    let odd = Indicator {
        kql_network_ip: "9.9.9.9".into(),
        kql_domain_name: "Odd.Example".into(),
        ..Indicator::default()
    };
    let idx = build_index(&[ip_ind("1.2.3.4"), odd]);
    let mut v = Vec::new();
    idx.visit_kql_network_ip("9.9.9.9", |id| {
        v.push(id);
        Ok(())
    })
    .unwrap();
    idx.visit_kql_domain_name("Odd.Example", |id| {
        v.push(id);
        Ok(())
    })
    .unwrap();
    assert_eq!(v, vec![1, 1]);
    // Without such rows the flags are clear and the probe is skipped.
    let plain = build_index(&[ip_ind("1.2.3.4")]);
    assert_eq!(plain.layout().flags, 0);
    assert_ne!(idx.layout().flags, 0);
}

/// The KQL filter lets every raw join string through (so the joins, which consult it first,
/// still equal a brute-force scan of the raw strings) and rules out most other strings.
#[test]
fn kql_filter_keeps_every_raw_string_and_drops_most_others() {
    let mut r = Rng(11);
    let mut inds = Vec::new();
    for i in 0..6000u32 {
        let ind = match i % 3 {
            0 => ip_ind(&Ipv4Addr::from(r.next() as u32).to_string()),
            1 => ip_ind(&format!("{}/24", Ipv4Addr::from(r.next() as u32 & !0xff))),
            _ => {
                // Mixed case: the raw string is what KQL compares, not the normalized key.
                let d = format!("Host{}.Example{}.com", r.below(1000), r.below(50));
                let mut ind = str_ind(Kind::Domain, &d);
                ind.kql_domain_name = d;
                ind
            }
        };
        inds.push(ind);
    }
    let idx = build_index(&inds);
    let raw = |col: KqlColumn, ind: &Indicator| match col {
        KqlColumn::NetworkIp => ind.kql_network_ip.clone(),
        KqlColumn::DomainName => ind.kql_domain_name.clone(),
    };
    let brute_kql = |col: KqlColumn, s: &str| -> Vec<u32> {
        (0..inds.len() as u32)
            .filter(|&i| raw(col, &inds[i as usize]) == s)
            .collect()
    };
    let join = |col: KqlColumn, s: &str| match col {
        KqlColumn::NetworkIp => sorted_ids(|f| idx.visit_kql_network_ip(s, f)),
        KqlColumn::DomainName => sorted_ids(|f| idx.visit_kql_domain_name(s, f)),
    };
    for ind in &inds {
        for col in [KqlColumn::NetworkIp, KqlColumn::DomainName] {
            let s = raw(col, ind);
            assert!(!idx.kql_absent(col, &s), "{col:?} {s:?}");
            if !s.is_empty() {
                assert_eq!(join(col, &s), brute_kql(col, &s), "{col:?} {s:?}");
            }
        }
    }
    // Other spellings of present keys and absent keys: joined exactly, mostly ruled out.
    let (mut absent, mut passed) = (0u32, 0u32);
    for (i, ind) in inds.iter().enumerate() {
        let (col, s) = match i % 3 {
            0 => (
                KqlColumn::NetworkIp,
                format!("{}", Ipv4Addr::from(r.next() as u32)),
            ),
            1 => (
                KqlColumn::NetworkIp,
                ind.kql_network_ip.replace("/24", "/25"),
            ),
            _ => (KqlColumn::DomainName, ind.kql_domain_name.to_lowercase()),
        };
        let want = brute_kql(col, &s);
        assert_eq!(join(col, &s), want, "{col:?} {s:?}");
        if want.is_empty() {
            absent += 1;
            passed += u32::from(!idx.kql_absent(col, &s));
        }
    }
    assert!(absent > 5000, "{absent}");
    assert!(
        passed * 20 < absent,
        "{passed} of {absent} absent keys passed"
    );
    // "" is never ruled out: it joins the records whose raw column is empty.
    assert!(!idx.kql_absent(KqlColumn::NetworkIp, ""));
}

/// The KQL filter's hash is part of the format: [`kql_hash`] must equal its definition in
/// FORMAT.md, written here with words assembled byte by byte, for every length up to 48.
#[test]
fn kql_hash_matches_its_definition() {
    fn word(b: &[u8]) -> u64 {
        b.iter()
            .enumerate()
            .fold(0, |w, (i, &c)| w | u64::from(c) << (8 * i))
    }
    fn mum(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        (r as u64) ^ ((r >> 64) as u64)
    }
    fn reference(tag: u8, k: &[u8]) -> u64 {
        let (p0, p1) = (0xa076_1d64_78bd_642f_u64, 0xe703_7ed1_a0b4_28db_u64);
        let n = k.len();
        let seed = (u64::from(tag) << 56) ^ n as u64;
        if n > 16 {
            let mut h = seed;
            let mut at = 0;
            while at + 16 < n {
                h = mum(
                    word(&k[at..at + 8]) ^ p0 ^ h,
                    word(&k[at + 8..at + 16]) ^ p1,
                );
                at += 16;
            }
            return mum(
                word(&k[n - 16..n - 8]) ^ p0 ^ h,
                word(&k[n - 8..]) ^ p1 ^ seed,
            );
        }
        let (a, b) = if n >= 8 {
            (word(&k[..8]), word(&k[n - 8..]))
        } else if n >= 4 {
            (word(&k[..4]), word(&k[n - 4..]))
        } else if n > 0 {
            (word(&[k[n - 1], k[n / 2], k[0]]), 0)
        } else {
            (0, 0)
        };
        mum(a ^ p0 ^ seed, b ^ p1)
    }
    let bytes: Vec<u8> = (0..48u32).map(|i| (i * 41 + 7) as u8).collect();
    let mut seen = std::collections::HashSet::new();
    for n in 0..=48 {
        for tag in [TAG_RAW_NETWORK_IP, TAG_RAW_DOMAIN_NAME] {
            let h = kql_hash(tag, &bytes[..n]);
            assert_eq!(h, reference(tag, &bytes[..n]), "length {n}");
            assert!(seen.insert(h), "length {n}: a repeated hash");
        }
    }
}

/// `verify` finds a raw join string missing from the KQL filter, and the joins do consult the
/// filter: with it cleared, a present key joins nothing.
#[test]
fn verify_finds_a_raw_string_missing_from_the_kql_filter() {
    let inds = vec![ip_ind("1.2.3.4"), str_ind(Kind::Domain, "evil.com")];
    let mut bytes = build(&inds, Timestamp::from_unix_secs(1_700_000_000).unwrap()).unwrap();
    let before = Index::from_bytes(bytes.clone()).unwrap();
    assert_eq!(
        sorted_ids(|f| before.visit_kql_network_ip("1.2.3.4", f)),
        vec![0]
    );
    let range = before.layout.range(Section::KqlFilter);
    assert!(!range.is_empty());
    bytes[range].fill(0);
    format::put_checksum(&mut bytes);
    let idx = Index::from_bytes(bytes).unwrap();
    let e = idx.verify().unwrap_err().to_string();
    assert!(e.contains("missing from the KQL filter"), "{e}");
    assert!(idx.kql_absent(KqlColumn::NetworkIp, "1.2.3.4"));
    assert!(sorted_ids(|f| idx.visit_kql_network_ip("1.2.3.4", f)).is_empty());
}

#[test]
fn suffix_hashes_are_the_hashes_of_every_label_suffix() {
    // Against the label suffixes spelled out by hand (each hashed on its own).
    let mut h = [0u64; 8];
    for (name, want) in [
        ("evil.com", &["evil.com", "com"][..]),
        (
            "a.b.evil.com",
            &["a.b.evil.com", "b.evil.com", "evil.com", "com"][..],
        ),
        ("localhost", &["localhost"][..]),
        (
            "x-1.y_2.co.uk",
            &["x-1.y_2.co.uk", "y_2.co.uk", "co.uk", "uk"][..],
        ),
    ] {
        let n = domain_suffix_hashes(name, &mut h).unwrap();
        let want: Vec<u64> = want.iter().map(|s| domain_hash(s)).collect();
        assert_eq!(&h[..n], &want[..], "{name}");
    }
    // Eight suffixes fit; a ninth does not.
    assert_eq!(domain_suffix_hashes("a.b.c.d.e.f.g.h", &mut h), Some(8));
    assert_eq!(domain_suffix_hashes("a.b.c.d.e.f.g.h.i", &mut h), None);
}

#[test]
fn lower_ascii_flags_uppercase_and_non_ascii_anywhere() {
    let reference = |b: &[u8]| !b.iter().any(|c| c.is_ascii_uppercase() || !c.is_ascii());
    let mut rng = Rng(11);
    // Every byte value at every position of names of 0 to 20 bytes.
    for len in 0..=20usize {
        for pos in 0..len {
            for c in 0..=255u8 {
                let mut b: Vec<u8> = (0..len)
                    .map(|_| b"ab-.9_z"[rng.below(7) as usize])
                    .collect();
                b[pos] = c;
                assert_eq!(lower_ascii(&b), reference(&b), "{b:?}");
            }
        }
    }
}
