//! End-to-end hunt benchmarks: `iocmatch::hunt::hunt` over generated logs, as the CLI runs it
//! minus the output rendering.
//!
//! Setup (once, outside the timings): `gen::write_corpus` writes a corpus of `HUNT_INDICATORS`
//! indicators (default 100 000) and `HUNT_EVENTS` events per log (default 1 000 000), seed 42,
//! hit rate 1 %, into a temporary directory; `indicators.csv` is ingested and compiled in memory
//! (`ingest::load_files` + `index::build`, what `--index indicators.csv` does).
//!
//! * `hunt/{network,dns}_{csv,ndjson}_{kql,normalized}`: one hunt over the whole file with all
//!   cores (`threads = 0`), throughput in bytes of the file (criterion prints MB/s as MiB/s);
//!   records/s = events / median time.
//! * `threads/network_csv_kql/{1,2}`: the same hunt with 1 and 2 worker threads.
//!
//! The setup prints the file sizes, the index size and the match count of every case, so that
//! records/s can be derived from the medians. Run: `cargo bench --bench hunt` (add
//! `-- --quick` for a fast look, or a filter such as `-- network_csv`).

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use iocmatch::gen::{self, GenConfig};
use iocmatch::hunt::{hunt, HuntOptions, Progress, Query, Semantics};
use iocmatch::index::{build, Index};
use iocmatch::ingest::{self, IngestOptions};
use iocmatch::logs::input::Source;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

struct Fixture {
    /// Keeps the corpus alive for the whole run.
    _dir: tempfile::TempDir,
    path: PathBuf,
    cfg: GenConfig,
    index: Vec<u8>,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = GenConfig {
            seed: 42,
            indicators: env_usize("HUNT_INDICATORS", 100_000),
            events: env_usize("HUNT_EVENTS", 1_000_000),
            ..GenConfig::default()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        gen::write_corpus(dir.path(), &cfg).expect("gen");
        let (records, _) = ingest::load_files(
            &[dir.path().join("indicators.csv")],
            &IngestOptions::default(),
        )
        .expect("ingest");
        let index = build(&records, cfg.now).expect("build");
        eprintln!(
            "corpus: {} indicators ({} records, index {:.1} MiB), {} events per log in {}",
            cfg.indicators,
            records.len(),
            index.len() as f64 / (1 << 20) as f64,
            cfg.events,
            dir.path().display()
        );
        for name in gen::CORPUS_FILES {
            eprintln!(
                "  {name}: {:.1} MB",
                file_size(&dir.path().join(name)) as f64 / 1e6
            );
        }
        Fixture {
            path: dir.path().to_path_buf(),
            _dir: dir,
            cfg,
            index,
        }
    })
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn options(f: &Fixture, query: Query, semantics: Semantics, threads: usize) -> HuntOptions {
    let mut o = HuntOptions::new(query);
    o.semantics = semantics;
    o.now = f.cfg.now;
    o.threads = threads;
    o
}

/// One hunt; returns the match count.
fn run(idx: &Index<&[u8]>, sources: &[Source], opts: &HuntOptions) -> usize {
    let progress = Progress::default();
    let (matches, report) = hunt(idx, sources, opts, &progress).expect("hunt");
    black_box(report.records());
    matches.len()
}

/// (query, its name, log file stem, log format).
const CASES: [(Query, &str, &str, &str); 4] = [
    (Query::Network, "network", "NetworkConnection", "csv"),
    (Query::Dns, "dns", "DnsEvents", "csv"),
    (Query::Network, "network", "NetworkConnection", "ndjson"),
    (Query::Dns, "dns", "DnsEvents", "ndjson"),
];

fn bench_hunt(c: &mut Criterion) {
    let f = fixture();
    let idx = Index::from_bytes(&f.index[..]).expect("index");
    let mut g = c.benchmark_group("hunt");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10));
    for (query, qname, file, ext) in CASES {
        let path = f.path.join(format!("{file}.{ext}"));
        let sources = [Source::File(path.clone())];
        for (sem, sname) in [
            (Semantics::Kql, "kql"),
            (Semantics::Normalized, "normalized"),
        ] {
            let opts = options(f, query, sem, 0);
            eprintln!(
                "hunt/{qname}_{ext}_{sname}: {} matches over {} events",
                run(&idx, &sources, &opts),
                f.cfg.events
            );
            g.throughput(Throughput::Bytes(file_size(&path)));
            g.bench_function(format!("{qname}_{ext}_{sname}"), |b| {
                b.iter(|| run(&idx, &sources, &opts))
            });
        }
    }
    g.finish();
}

fn bench_threads(c: &mut Criterion) {
    let f = fixture();
    let idx = Index::from_bytes(&f.index[..]).expect("index");
    let path = f.path.join("NetworkConnection.csv");
    let sources = [Source::File(path.clone())];
    let mut g = c.benchmark_group("threads");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(file_size(&path)));
    for threads in [1, 2] {
        let opts = options(f, Query::Network, Semantics::Kql, threads);
        g.bench_function(format!("network_csv_kql/{threads}"), |b| {
            b.iter(|| run(&idx, &sources, &opts))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_hunt, bench_threads);
criterion_main!(benches);
