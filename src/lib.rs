//! iocmatch: offline, embedded threat-intelligence matching.
//!
//! Indicator feeds (STIX 2.1 bundles and TAXII envelopes, Sentinel `ThreatIntelligenceIndicator`
//! and `ThreatIntelIndicators` exports, generic CSV feeds, REST feed responses, plain lists) are
//! parsed into [`Indicator`](indicator::Indicator) records ([`ingest`]), compiled into one
//! index file ([`index::build`]), and memory-mapped for lookups ([`Index`]): an IP structure
//! that returns every address and CIDR containing an address, a domain table with label-suffix
//! lookups, and hash tables for URLs, e-mails, file hashes and CVE ids. Every record keeps the
//! raw strings KQL compares, so both a KQL-exact and a normalized join can be answered.
//!
//! # Example
//!
//! ```
//! use iocmatch::indicator::{Indicator, Key, Origin};
//! use iocmatch::time::Timestamp;
//! use iocmatch::Index;
//!
//! let feed = b"# C2 list\n203.0.113.7\n198.51.100.0/24\nevil.example\n";
//! let mut collector = iocmatch::ingest::Collector::new();
//! iocmatch::ingest::ingest(feed, "c2.txt", &Default::default(), &mut collector)?;
//! let (records, report) = iocmatch::ingest::finalize(collector, &Default::default());
//! assert_eq!(report.read, 3);
//!
//! let bytes = iocmatch::index::build(&records, Timestamp::now())?;
//! let index = Index::from_bytes(bytes)?; // or Index::open(path) to memory-map a file
//!
//! let hits = index.lookup_ip("198.51.100.9".parse().unwrap())?;
//! assert_eq!(hits[0].value(), "198.51.100.0/24");
//! assert_eq!(index.lookup_domain("www.Evil.Example.", true)?.len(), 1);
//! assert!(index.lookup_domain("notevil.example", true)?.is_empty());
//! # Ok::<(), iocmatch::Error>(())
//! ```
//!
//! # Thread safety
//!
//! [`Index`] is `Send + Sync`; share one `&Index` between threads. Lookups never allocate on
//! a miss ([`Index::visit_ip`], [`Index::visit_domain`] never allocate at all).
//!
//! # Many lookups
//!
//! A lookup's cost is mostly waiting for memory: the first byte it reads (the IPv4 occupancy
//! bitmap, a name's hash bucket) is rarely cached. [`Index::visit_ips`] and
//! [`Index::visit_domains`] take a slice of keys and read those first bytes for groups of keys
//! back to back, so the cache misses overlap; they answer exactly as the single lookups do.
//! [`Index::field`] reads one string of a record without decoding the others.
//!
//! # Untrusted input
//!
//! Feeds, logs and index files are treated as hostile: bad records are skipped and reported
//! with their file and line or object id; index reads are bounds-checked, so a corrupt file
//! yields [`Error::Corrupt`] with a byte offset, never a panic. The library never prints.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod blockmask;
pub mod error;
pub mod gen;
pub mod hunt;
pub mod index;
pub mod indicator;
pub mod ingest;
pub mod logs;
mod mmap;
mod swar;
pub mod sync;
pub mod time;

pub use error::{Error, Result};
pub use index::Index;
