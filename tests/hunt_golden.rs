//! Golden tests of `iocmatch hunt network|dns` over the fixtures in `data/hunt/`.
//!
//! Every expected row below was worked out by hand from the rules of issue 3 (the KQL semantics of
//! the two Sentinel hunting queries, and the normalized mode); none was produced by running
//! iocmatch. The comment above each row says which event (`E`n / `D`n) joined which indicator row
//! (`T`n) and why; events and indicators that produce nothing are accounted for too. Row names are
//! positions in the fixture files, tabulated in `data/hunt/README.md`.
//!
//! Ordering rule used throughout: `sort by TimeGenerated desc`, null times last, ties in input
//! order of the events (file order, then record order), then in indicator row order of the TI file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOW: &str = "2026-06-01T00:00:00Z";

const NETWORK_HEADER: &str = "TimeGenerated,SourceIP,DestinationIP,ConfidenceScore,Description";
const DNS_HEADER: &str = "TimeGenerated,ClientIP,Name,ConfidenceScore,ThreatType";

/// `hunt network --semantics kql`: `==` on raw strings, null expirations dropped, `> now()` strict.
const NETWORK_KQL: &[&str] = &[
    NETWORK_HEADER,
    // E22 (2026-06-15, the latest): "10.1.2.3" == T6's "10.1.2.3"; T6 expires now + 100 ns, which
    // is > now. T4 "10.0.0.0/8" and T5 "10.1.0.0/16" are strings here, not ranges.
    "2026-06-15T00:00:00Z,172.16.0.22,10.1.2.3,85.5,Lateral movement host",
    // E20 (05-27): "203.0.113.55" equals no NetworkIP. Nothing.
    // E17 (05-26, ties E18 and comes first in the file): T13, whose empty ConfidenceScore is null.
    "2026-05-26T00:00:00Z,172.16.0.17,192.0.2.30,,No confidence",
    // E18 ("2026-05-26 00:00:00", no zone = UTC, same instant as E17): T18.
    "2026-05-26T00:00:00Z,172.16.0.18,198.51.100.7,88,Dual-key row",
    // E15, E16 (05-25): T7 expires exactly at now, T8 100 ns before: `> now()` is false. Nothing.
    // E12 (05-24T08) "unknown": no NetworkIP is "unknown". Nothing.
    // E11 (05-24T07) "10.1.0.0/16" is a plain string in KQL and equals T5's NetworkIP text.
    "2026-05-24T07:00:00Z,172.16.0.11,10.1.0.0/16,55,Internal range /16",
    // E10 (05-24T06) DestinationIP "" == NetworkIP "" of T14, T15, T16, T17, T19 (Kusto strings are
    // never null, so isnotnull() kept them). T16 (null expiration) and T17 (expired) are dropped;
    // T14, T15, T19 remain, in TI row order.
    "2026-05-24T06:00:00Z,172.16.0.10,,95,Phishing kit",
    "2026-05-24T06:00:00Z,172.16.0.10,,80,Phishing kit (mirror)",
    "2026-05-24T06:00:00Z,172.16.0.10,,10,File hash indicator",
    // E8 (05-23T12:00Z) "::ffff:203.0.113.5" and E9 (05-23T11:00Z) "2001:db8:ff::abcd" equal no
    // NetworkIP string (T12 is the text "2001:db8:ff::/48"). Nothing.
    // E5, E6, E7 (05-22, a three-way tie, file order): each spelling equals exactly one row.
    // E5 "2001:db8::1" == T9.
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,75,IPv6 lower",
    // E6 "2001:DB8::1" == T10 (case-sensitive).
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,76,IPv6 upper",
    // E7 "2001:0db8::1" == T11 (no canonicalization).
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,77,IPv6 leading zero",
    // E3 "10.1.99.1", E4 "10.200.0.1" (05-21): no equal string (CIDRs do not apply). Nothing.
    // E1 (05-20T08:00, ties E2, first in the file): T1 and T2 (T3 expired 2026-01-01). T2's
    // "70.0" is integral: printed 70. T2's description holds a comma and quotes: quoted, doubled.
    "2026-05-20T08:00:00Z,172.16.0.1,203.0.113.5,90,C2 server",
    "2026-05-20T08:00:00Z,172.16.0.1,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E2 (".0000000Z": the same instant, zeros trimmed on output): T6, 85.5 kept as is.
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,85.5,Lateral movement host",
    // E19 (05-19T23:59:59.9999999Z, all seven digits kept): T13.
    "2026-05-19T23:59:59.9999999Z,172.16.0.19,192.0.2.30,,No confidence",
    // E21 (2025-12-31T23:00Z): T1, T2. T3 is still dropped: the filter compares with now().
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,90,C2 server",
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // Null times last, in file order. E13 (empty time): T1, T2.
    ",172.16.0.13,203.0.113.5,90,C2 server",
    ",172.16.0.13,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E14 ("not-a-date": null in kql, counted, still joined): T6.
    ",172.16.0.14,10.1.2.3,85.5,Lateral movement host",
];

/// `hunt network --semantics normalized` (the default): canonical IPs, CIDR containment, null
/// expiration = never expires; invalid keys (empty, "10.1.0.0/16", "unknown") and the
/// unparseable time of E14 are skipped. `--subdomains` changes nothing for IPs.
const NETWORK_NORMALIZED: &[&str] = &[
    NETWORK_HEADER,
    // E22 (06-15) 10.1.2.3: inside T4 10.0.0.0/8 (null expiration: never expires), inside T5
    // 10.1.0.0/16, equal to T6 (expires now + 100 ns > now). TI row order.
    "2026-06-15T00:00:00Z,172.16.0.22,10.1.2.3,50,RFC1918 sweep /8",
    "2026-06-15T00:00:00Z,172.16.0.22,10.1.2.3,55,Internal range /16",
    "2026-06-15T00:00:00Z,172.16.0.22,10.1.2.3,85.5,Lateral movement host",
    // E20 203.0.113.55: in no indicator. Nothing.
    // E17 (05-26): T13.
    "2026-05-26T00:00:00Z,172.16.0.17,192.0.2.30,,No confidence",
    // E18 (same instant): T18.
    "2026-05-26T00:00:00Z,172.16.0.18,198.51.100.7,88,Dual-key row",
    // E15, E16: T7 (expiration == now) and T8 (now - 100 ns) fail `> now()`. Nothing.
    // E12 "unknown", E11 "10.1.0.0/16" (a network, not an address), E10 "": skipped.
    // E8 (05-23T12:00Z) ::ffff:203.0.113.5 is IPv4-mapped: 203.0.113.5 -> T1, T2 (T3 expired).
    // The DestinationIP cell is the event's own text.
    "2026-05-23T12:00:00Z,172.16.0.8,::ffff:203.0.113.5,90,C2 server",
    "2026-05-23T12:00:00Z,172.16.0.8,::ffff:203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E9 (13:00+02:00 = 11:00Z, after E8) 2001:db8:ff::abcd: inside T12 2001:db8:ff::/48.
    "2026-05-23T11:00:00Z,172.16.0.9,2001:db8:ff::abcd,65,IPv6 range",
    // E5, E6, E7 (05-22, tie, file order): all three are 2001:db8::1, as are T9, T10, T11.
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,75,IPv6 lower",
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,76,IPv6 upper",
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,77,IPv6 leading zero",
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,75,IPv6 lower",
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,76,IPv6 upper",
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,77,IPv6 leading zero",
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,75,IPv6 lower",
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,76,IPv6 upper",
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,77,IPv6 leading zero",
    // E3 (09:30:15.1234567, later than E4's .123) 10.1.99.1: CIDR-only hit, T4 and T5.
    "2026-05-21T09:30:15.1234567Z,172.16.0.3,10.1.99.1,50,RFC1918 sweep /8",
    "2026-05-21T09:30:15.1234567Z,172.16.0.3,10.1.99.1,55,Internal range /16",
    // E4 10.200.0.1: only T4 (outside 10.1.0.0/16).
    "2026-05-21T09:30:15.123Z,172.16.0.4,10.200.0.1,50,RFC1918 sweep /8",
    // E1 (05-20T08:00, ties E2): T1, T2.
    "2026-05-20T08:00:00Z,172.16.0.1,203.0.113.5,90,C2 server",
    "2026-05-20T08:00:00Z,172.16.0.1,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E2 10.1.2.3: T4, T5, T6 (overlapping CIDRs and the exact row, TI order).
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,50,RFC1918 sweep /8",
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,55,Internal range /16",
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,85.5,Lateral movement host",
    // E19: T13.
    "2026-05-19T23:59:59.9999999Z,172.16.0.19,192.0.2.30,,No confidence",
    // E21 (2025-12-31T23:00Z): T1, T2 (T3 expired before now).
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,90,C2 server",
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E13: an empty time is null (not malformed), the key is valid: T1, T2, sorted last.
    ",172.16.0.13,203.0.113.5,90,C2 server",
    ",172.16.0.13,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E14 "not-a-date": an unparseable time is skipped in normalized mode (issue 3, "Malformed
    // records"). Nothing.
];

/// `hunt network --expiry at-event` (normalized): an indicator counts when the event's own time
/// lies in [valid_from, expiration); the 6-column TI file has no valid_from (no lower bound) and a
/// null expiration has no upper bound. now() plays no part.
const NETWORK_AT_EVENT: &[&str] = &[
    NETWORK_HEADER,
    // E22 (2026-06-15) 10.1.2.3: T4 (no expiration), T5 (expires 09-01 > event). T6 expired at
    // 2026-06-01T00:00:00.0000001, before the event: dropped.
    "2026-06-15T00:00:00Z,172.16.0.22,10.1.2.3,50,RFC1918 sweep /8",
    "2026-06-15T00:00:00Z,172.16.0.22,10.1.2.3,55,Internal range /16",
    // E17: T13 (expires 07-01).
    "2026-05-26T00:00:00Z,172.16.0.17,192.0.2.30,,No confidence",
    // E18: T18 (expires 08-01).
    "2026-05-26T00:00:00Z,172.16.0.18,198.51.100.7,88,Dual-key row",
    // E15 (05-25) 192.0.2.10: T7 expires 06-01, after the event: kept here (dropped by now()).
    "2026-05-25T00:00:00Z,172.16.0.15,192.0.2.10,40,Expires exactly now",
    // E16 (05-25) 192.0.2.20: T8 expires 05-31T23:59:59.9999999, after the event: kept.
    "2026-05-25T00:00:00Z,172.16.0.16,192.0.2.20,45,Expired 100 ns ago",
    // E8: T1, T2 (T3 expired 2026-01-01, before the event).
    "2026-05-23T12:00:00Z,172.16.0.8,::ffff:203.0.113.5,90,C2 server",
    "2026-05-23T12:00:00Z,172.16.0.8,::ffff:203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E9: T12.
    "2026-05-23T11:00:00Z,172.16.0.9,2001:db8:ff::abcd,65,IPv6 range",
    // E5, E6, E7: T9, T10, T11 each (expire 12-01).
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,75,IPv6 lower",
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,76,IPv6 upper",
    "2026-05-22T00:00:00Z,172.16.0.5,2001:db8::1,77,IPv6 leading zero",
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,75,IPv6 lower",
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,76,IPv6 upper",
    "2026-05-22T00:00:00Z,172.16.0.6,2001:DB8::1,77,IPv6 leading zero",
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,75,IPv6 lower",
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,76,IPv6 upper",
    "2026-05-22T00:00:00Z,172.16.0.7,2001:0db8::1,77,IPv6 leading zero",
    // E3: T4, T5. E4: T4.
    "2026-05-21T09:30:15.1234567Z,172.16.0.3,10.1.99.1,50,RFC1918 sweep /8",
    "2026-05-21T09:30:15.1234567Z,172.16.0.3,10.1.99.1,55,Internal range /16",
    "2026-05-21T09:30:15.123Z,172.16.0.4,10.200.0.1,50,RFC1918 sweep /8",
    // E1: T1, T2 (T3 expired before the event).
    "2026-05-20T08:00:00Z,172.16.0.1,203.0.113.5,90,C2 server",
    "2026-05-20T08:00:00Z,172.16.0.1,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    // E2: T4, T5, T6.
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,50,RFC1918 sweep /8",
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,55,Internal range /16",
    "2026-05-20T08:00:00Z,172.16.0.2,10.1.2.3,85.5,Lateral movement host",
    // E19: T13.
    "2026-05-19T23:59:59.9999999Z,172.16.0.19,192.0.2.30,,No confidence",
    // E21 (2025-12-31T23:00Z), the retro-hunt case: T1, T2 and T3 too (T3 expired 2026-01-01,
    // one hour after the event).
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,90,C2 server",
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,70,\"Beacon, stage 2 \"\"loader\"\"\"",
    "2025-12-31T23:00:00Z,172.16.0.21,203.0.113.5,60,Old report",
    // E13: null time lies in no interval (T1, T2, T3 all have finite expirations). Nothing.
    // E14: unparseable time, skipped. Nothing.
];

/// `hunt dns --semantics kql`: `Name == DomainName` on raw strings.
const DNS_KQL: &[&str] = &[
    DNS_HEADER,
    // D15 "x.EVIL.example.", D13 "C2.EXAMPLE", D11 "www.c2.example.": no equal DomainName.
    // D14 (05-16T00:00:00.1Z) "c2.example" == T18; ThreatType has a comma: quoted.
    "2026-05-16T00:00:00.1Z,172.16.1.14,c2.example,88,\"C2, Botnet\"",
    // D9 (05-14, ties D10, first in the file): T18.
    "2026-05-14T00:00:00Z,172.16.1.9,c2.example,88,\"C2, Botnet\"",
    // D10 Name "" == DomainName "" of T1..T13 and T19. Live among them (expiration > now): T1, T2,
    // T5, T6, T9, T10, T11, T12, T13, T19. Dropped: T3 (past), T4 (null), T7 (== now), T8 (past).
    "2026-05-14T00:00:00Z,172.16.1.10,,90,C2",
    "2026-05-14T00:00:00Z,172.16.1.10,,70,C2",
    "2026-05-14T00:00:00Z,172.16.1.10,,55,Scan",
    "2026-05-14T00:00:00Z,172.16.1.10,,85.5,C2",
    "2026-05-14T00:00:00Z,172.16.1.10,,75,C2",
    "2026-05-14T00:00:00Z,172.16.1.10,,76,C2",
    "2026-05-14T00:00:00Z,172.16.1.10,,77,C2",
    "2026-05-14T00:00:00Z,172.16.1.10,,65,Proxy",
    "2026-05-14T00:00:00Z,172.16.1.10,,,Unknown",
    "2026-05-14T00:00:00Z,172.16.1.10,,10,Malware",
    // D7 "tracker.example" == T16, but T16's expiration is null: dropped. D8 == T17, expired.
    // D5 "a.b.evil.example", D6 "notevil.example", D4 "evil.example.": no equal string.
    // D1 (05-10T10:00, three-way tie D1, D2, D3): "evil.example" == T14 only.
    "2026-05-10T10:00:00Z,172.16.1.1,evil.example,95,Phishing",
    // D2 "EVIL.example." == T15 only (case and dot are part of the string).
    "2026-05-10T10:00:00Z,172.16.1.2,EVIL.example.,80,Phishing",
    // D3 "Evil.Example": nothing.
    // D12 (null time, last): "evil.example" == T14.
    ",172.16.1.12,evil.example,95,Phishing",
];

/// `hunt dns --semantics normalized`: case-insensitive, trailing dot ignored, exact names only.
const DNS_NORMALIZED: &[&str] = &[
    DNS_HEADER,
    // D15 (05-17) is a subdomain: nothing without --subdomains. D11 likewise.
    // D13 (05-16T00:00:00.1000000Z = .1) "C2.EXAMPLE" = c2.example: T18. Ties D14, first in file.
    "2026-05-16T00:00:00.1Z,172.16.1.13,C2.EXAMPLE,88,\"C2, Botnet\"",
    // D14: T18.
    "2026-05-16T00:00:00.1Z,172.16.1.14,c2.example,88,\"C2, Botnet\"",
    // D9: T18. D10 (empty Name): skipped.
    "2026-05-14T00:00:00Z,172.16.1.9,c2.example,88,\"C2, Botnet\"",
    // D7: T16, whose null expiration never expires here. D8: T17 expired.
    "2026-05-13T00:00:00Z,172.16.1.7,tracker.example,30,Malware",
    // D5, D6 (05-12): subdomain / look-alike. Nothing.
    // D4 "evil.example." = evil.example: T14 and T15 (EVIL.example. = evil.example too).
    "2026-05-11T00:00:00Z,172.16.1.4,evil.example.,95,Phishing",
    "2026-05-11T00:00:00Z,172.16.1.4,evil.example.,80,Phishing",
    // D1, D2, D3 (05-10T10:00, tie, file order): each is evil.example: T14, T15.
    "2026-05-10T10:00:00Z,172.16.1.1,evil.example,95,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.1,evil.example,80,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.2,EVIL.example.,95,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.2,EVIL.example.,80,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.3,Evil.Example,95,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.3,Evil.Example,80,Phishing",
    // D12 (null time, last): T14, T15.
    ",172.16.1.12,evil.example,95,Phishing",
    ",172.16.1.12,evil.example,80,Phishing",
];

/// `hunt dns --semantics normalized --subdomains`: DNS_NORMALIZED plus the label-suffix matches.
const DNS_NORMALIZED_SUBDOMAINS: &[&str] = &[
    DNS_HEADER,
    // D15 (05-17) "x.EVIL.example." ends with the label evil.example: T14, T15.
    "2026-05-17T00:00:00Z,172.16.1.15,x.EVIL.example.,95,Phishing",
    "2026-05-17T00:00:00Z,172.16.1.15,x.EVIL.example.,80,Phishing",
    // D13, D14: T18 (exact, as without --subdomains).
    "2026-05-16T00:00:00.1Z,172.16.1.13,C2.EXAMPLE,88,\"C2, Botnet\"",
    "2026-05-16T00:00:00.1Z,172.16.1.14,c2.example,88,\"C2, Botnet\"",
    // D11 (05-15T00:00:00.5Z) "www.c2.example." is under c2.example: T18.
    "2026-05-15T00:00:00.5Z,172.16.1.11,www.c2.example.,88,\"C2, Botnet\"",
    // D9: T18.
    "2026-05-14T00:00:00Z,172.16.1.9,c2.example,88,\"C2, Botnet\"",
    // D7: T16.
    "2026-05-13T00:00:00Z,172.16.1.7,tracker.example,30,Malware",
    // D5 (05-12) "a.b.evil.example": under evil.example: T14, T15.
    // D6 "notevil.example" is not under evil.example (no label boundary): nothing.
    "2026-05-12T00:00:00Z,172.16.1.5,a.b.evil.example,95,Phishing",
    "2026-05-12T00:00:00Z,172.16.1.5,a.b.evil.example,80,Phishing",
    // D4, D1, D2, D3, D12 exactly as without --subdomains.
    "2026-05-11T00:00:00Z,172.16.1.4,evil.example.,95,Phishing",
    "2026-05-11T00:00:00Z,172.16.1.4,evil.example.,80,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.1,evil.example,95,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.1,evil.example,80,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.2,EVIL.example.,95,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.2,EVIL.example.,80,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.3,Evil.Example,95,Phishing",
    "2026-05-10T10:00:00Z,172.16.1.3,Evil.Example,80,Phishing",
    ",172.16.1.12,evil.example,95,Phishing",
    ",172.16.1.12,evil.example,80,Phishing",
];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("hunt")
        .join(name)
}

fn ti() -> String {
    data("ti.csv").display().to_string()
}

fn network_log() -> String {
    data("NetworkConnection.csv").display().to_string()
}

fn dns_log() -> String {
    data("DnsEvents.csv").display().to_string()
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iocmatch"))
        .args(args)
        .output()
        .expect("run iocmatch")
}

fn csv_text(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Fails with the lines that differ, both ways, and the full outputs.
fn assert_golden(what: &str, out: &Output, expected: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: exit status (0 = matches found)\nstderr:\n{stderr}"
    );
    assert_same_text(what, &stdout, &csv_text(expected), &stderr);
}

fn assert_same_text(what: &str, got: &str, want: &str, stderr: &str) {
    if got == want {
        return;
    }
    let got_lines: Vec<&str> = got.lines().collect();
    let want_lines: Vec<&str> = want.lines().collect();
    let missing: Vec<&&str> = want_lines
        .iter()
        .filter(|l| !got_lines.contains(l))
        .collect();
    let extra: Vec<&&str> = got_lines
        .iter()
        .filter(|l| !want_lines.contains(l))
        .collect();
    let first_diff = got_lines
        .iter()
        .zip(&want_lines)
        .position(|(g, w)| g != w)
        .unwrap_or(got_lines.len().min(want_lines.len()));
    panic!(
        "{what}: output differs from the golden rows\n\
         expected {} lines, got {}; first differing line: {}\n\
         expected but missing: {missing:#?}\nunexpected: {extra:#?}\n\
         --- expected\n{want}--- got\n{got}--- stderr\n{stderr}",
        want_lines.len(),
        got_lines.len(),
        first_diff + 1,
    );
}

/// One hunt run: kind, log file, extra flags, golden rows (header first).
type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a [&'a str]);

fn hunt(kind: &str, index: &str, log: &str, extra: &[&str]) -> Output {
    let mut args = vec!["hunt", kind, "--index", index, "--now", NOW];
    args.extend_from_slice(extra);
    args.push(log);
    run(&args)
}

#[test]
fn network_kql_interface_command() {
    // Exactly the command line scripts depend on (issue 3, "Interface").
    let (ti, log) = (ti(), network_log());
    let out = run(&[
        "hunt",
        "network",
        "--index",
        &ti,
        "--semantics",
        "kql",
        "--now",
        NOW,
        "--format",
        "csv",
        &log,
    ]);
    assert_golden("network kql", &out, NETWORK_KQL);
}

#[test]
fn network_normalized() {
    let (ti, log) = (ti(), network_log());
    let out = hunt("network", &ti, &log, &["--semantics", "normalized"]);
    assert_golden("network normalized", &out, NETWORK_NORMALIZED);
    // normalized is the default.
    let out = hunt("network", &ti, &log, &[]);
    assert_golden("network (default semantics)", &out, NETWORK_NORMALIZED);
    // --subdomains concerns domains only.
    let out = hunt("network", &ti, &log, &["--subdomains"]);
    assert_golden("network normalized --subdomains", &out, NETWORK_NORMALIZED);
}

#[test]
fn network_expiry_at_event() {
    let (ti, log) = (ti(), network_log());
    let out = hunt(
        "network",
        &ti,
        &log,
        &["--semantics", "normalized", "--expiry", "at-event"],
    );
    assert_golden("network --expiry at-event", &out, NETWORK_AT_EVENT);
}

#[test]
fn dns_kql() {
    let (ti, log) = (ti(), dns_log());
    let out = hunt("dns", &ti, &log, &["--semantics", "kql", "--format", "csv"]);
    assert_golden("dns kql", &out, DNS_KQL);
}

#[test]
fn dns_normalized() {
    let (ti, log) = (ti(), dns_log());
    let out = hunt("dns", &ti, &log, &["--semantics", "normalized"]);
    assert_golden("dns normalized", &out, DNS_NORMALIZED);
    let out = hunt("dns", &ti, &log, &[]);
    assert_golden("dns (default semantics)", &out, DNS_NORMALIZED);
}

#[test]
fn dns_normalized_subdomains() {
    let (ti, log) = (ti(), dns_log());
    let out = hunt(
        "dns",
        &ti,
        &log,
        &["--semantics", "normalized", "--subdomains"],
    );
    assert_golden(
        "dns normalized --subdomains",
        &out,
        DNS_NORMALIZED_SUBDOMAINS,
    );
}

/// The golden CSV as rows of cells (header dropped), through a real CSV parser.
fn csv_rows(lines: &[&str]) -> Vec<Vec<String>> {
    let text = csv_text(lines);
    csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// One NDJSON object as the CSV cells it stands for: null -> "", numbers without a fraction
/// when integral (as the CSV prints ConfidenceScore), strings verbatim.
fn ndjson_row(line: &str, columns: &[&str]) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"));
    columns
        .iter()
        .map(|c| {
            let cell = obj.get(*c).unwrap_or_else(|| panic!("no {c:?} in {line}"));
            match cell {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => {
                    let f = n.as_f64().unwrap();
                    if f.fract() == 0.0 && f.abs() < 1e15 {
                        format!("{}", f as i64)
                    } else {
                        format!("{f}")
                    }
                }
                other => panic!("unexpected {c:?} value {other} in {line}"),
            }
        })
        .collect()
}

#[test]
fn ndjson_gives_the_same_rows() {
    let (ti, net, dns) = (ti(), network_log(), dns_log());
    let cases: [Case; 5] = [
        ("network", &net, &["--semantics", "kql"], NETWORK_KQL),
        (
            "network",
            &net,
            &["--semantics", "normalized"],
            NETWORK_NORMALIZED,
        ),
        ("dns", &dns, &["--semantics", "kql"], DNS_KQL),
        ("dns", &dns, &["--semantics", "normalized"], DNS_NORMALIZED),
        (
            "dns",
            &dns,
            &["--semantics", "normalized", "--subdomains"],
            DNS_NORMALIZED_SUBDOMAINS,
        ),
    ];
    for (kind, log, flags, golden) in cases {
        let cols: Vec<&str> = golden[0].split(',').collect();
        let mut extra = flags.to_vec();
        extra.extend_from_slice(&["--format", "ndjson"]);
        let out = hunt(kind, &ti, log, &extra);
        let what = format!("{kind} {flags:?} --format ndjson");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
        let got: Vec<Vec<String>> = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| ndjson_row(l, &cols))
            .collect();
        assert_eq!(got, csv_rows(golden), "{what}\n{stdout}");
    }
}

#[test]
fn precompiled_index_gives_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("ti.iocx");
    let idx_s = idx.to_str().unwrap();
    let out = run(&[
        "compile",
        &ti(),
        "-o",
        idx_s,
        "--build-time",
        "2026-01-01T00:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "compile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (net, dns) = (network_log(), dns_log());
    let cases: [Case; 5] = [
        ("network", &net, &["--semantics", "kql"], NETWORK_KQL),
        (
            "network",
            &net,
            &["--semantics", "normalized"],
            NETWORK_NORMALIZED,
        ),
        ("network", &net, &["--expiry", "at-event"], NETWORK_AT_EVENT),
        ("dns", &dns, &["--semantics", "kql"], DNS_KQL),
        (
            "dns",
            &dns,
            &["--semantics", "normalized", "--subdomains"],
            DNS_NORMALIZED_SUBDOMAINS,
        ),
    ];
    for (i, (kind, log, flags, golden)) in cases.into_iter().enumerate() {
        let what = format!("{kind} {flags:?} with a compiled index");
        let out = hunt(kind, idx_s, log, flags);
        assert_golden(&what, &out, golden);
        // The same through -o FILE.
        let file = dir.path().join(format!("out{i}.csv"));
        let mut extra = flags.to_vec();
        let file_s = file.to_str().unwrap();
        extra.extend_from_slice(&["-o", file_s]);
        let out = hunt(kind, idx_s, log, &extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what} -o: {stderr}");
        let written = std::fs::read_to_string(&file).expect("the -o file");
        assert_same_text(&format!("{what} -o"), &written, &csv_text(golden), &stderr);
    }
}

#[test]
fn no_match_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // E20 (near miss) and E12 ("unknown"): no indicator in either semantics. No empty
    // DestinationIP, which kql would join with the key-less rows T14, T15, T19.
    let net = dir.path().join("NetworkConnection.csv");
    std::fs::write(
        &net,
        "TimeGenerated,SourceIP,DestinationIP,DestinationPort,Protocol\n\
         2026-05-27T00:00:00Z,172.16.0.20,203.0.113.55,443,TCP\n\
         2026-05-24T08:00:00Z,172.16.0.12,unknown,0,TCP\n",
    )
    .unwrap();
    // D6 (look-alike) and D8 (expired T17): nothing even with --subdomains.
    let dns = dir.path().join("DnsEvents.csv");
    std::fs::write(
        &dns,
        "TimeGenerated,ClientIP,Name,QueryType,IPAddresses\n\
         2026-05-12T00:00:00Z,172.16.1.6,notevil.example,A,192.0.2.200\n\
         2026-05-13T00:00:00Z,172.16.1.8,old.example,A,192.0.2.202\n",
    )
    .unwrap();
    let (ti, net, dns) = (ti(), net.display().to_string(), dns.display().to_string());
    let cases: [(&str, &str, &[&str], &str); 4] = [
        ("network", &net, &["--semantics", "kql"], NETWORK_HEADER),
        (
            "network",
            &net,
            &["--semantics", "normalized"],
            NETWORK_HEADER,
        ),
        ("dns", &dns, &["--semantics", "kql"], DNS_HEADER),
        (
            "dns",
            &dns,
            &["--semantics", "normalized", "--subdomains"],
            DNS_HEADER,
        ),
    ];
    for (kind, log, flags, header) in cases {
        let out = hunt(kind, &ti, log, flags);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind} {flags:?}: exit 1 = no match\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // No data rows: nothing at all, or the header alone.
        assert!(
            stdout.is_empty() || stdout == format!("{header}\n"),
            "{kind} {flags:?}: {stdout:?}"
        );
    }
}
