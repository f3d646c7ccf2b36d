//! Differential test of `iocmatch hunt network|dns --semantics kql` against an independent KQL
//! engine: duckdb-kql, which translates KQL to DuckDB SQL and runs it offline. The two queries
//! run verbatim (`now()` replaced by `datetime(NOW)`) through `tests/duckdb_kql/run_kql.py`.
//!
//! Opt-in: runs only with `IOCMATCH_KQL_DIFF=1` (it needs Python 3 and, the first time, PyPI).
//! It then creates a venv in `target/kql-venv` (or `$IOCMATCH_KQL_VENV`) when missing and
//! installs exactly `duckdb-kql[duckdb]==1.1.2 duckdb==2.0.1` (with their pinned dependency
//! `antlr4-python3-runtime==4.13.2`, and `pytz`).
//!
//! What duckdb-kql 1.1.2 (on DuckDB 2.0.1) does differently from Kusto, and how this test
//! stays on Kusto's rules (the brief's KQL rules) regardless:
//!
//! * Datetimes are DuckDB `TIMESTAMP`s: microseconds, not Kusto's 100 ns ticks. Even a literal
//!   is truncated: `datetime(2024-05-01T10:00:00.1234567Z) > datetime(2024-05-01T10:00:00.123456Z)`
//!   is `false` there, `true` in Kusto. So the datasets here put every instant (times,
//!   expirations, `now`) on microsecond boundaries, with at most 6 fraction digits; the
//!   100 ns boundaries are covered by `hunt_reference.rs`.
//! * DuckDB strings can be NULL, Kusto strings cannot. duckdb-kql translates `isnotnull(s)` to
//!   `s IS NOT NULL` and a join's `==` to `IS NOT DISTINCT FROM`, so a NULL `NetworkIP` would be
//!   dropped by the `where` (Kusto keeps `""`), and NULL keys would join each other. run_kql.py
//!   therefore loads every empty string cell as `''`, never NULL — Kusto's model.
//! * `sort by` becomes `ORDER BY ... DESC NULLS LAST`, which is not stable in DuckDB: rows with
//!   equal times come out in no particular order, whereas Kusto (and iocmatch, by spec) keep
//!   input order (events, then TI rows). So the order is compared as a sequence of tie groups:
//!   the time column must be identical row by row, and each group of equal times must hold the
//!   same multiset of rows.
//! * Text DuckDB casts to a timestamp that Kusto would not read, e.g. `epoch` (1970-01-01): the
//!   generator never writes it (its unparseable times are null in both).
//!
//! Each dataset is also checked against the literal reference of `common::reference` (ignoring
//! tie order), which cross-checks that reference against an engine written by someone else.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What is installed into the venv, exactly.
const REQUIREMENTS: &[&str] = &["duckdb-kql[duckdb]==1.1.2", "duckdb==2.0.1"];
const EXPECTED_VERSIONS: &str = "duckdb-kql 1.1.2, duckdb 2.0.1";

fn venv_dir() -> PathBuf {
    std::env::var_os("IOCMATCH_KQL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("kql-venv")
        })
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The venv's Python, after creating the venv and installing [`REQUIREMENTS`] unless a stamp
/// file says that exact set is already there.
fn ensure_venv() -> PathBuf {
    let dir = venv_dir();
    let python = dir.join("bin").join("python");
    let stamp = dir.join(".iocmatch-requirements");
    let wanted = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) || !python.exists()
    {
        eprintln!(
            "creating {} and installing {}",
            dir.display(),
            REQUIREMENTS.join(" ")
        );
        let host = std::env::var("IOCMATCH_PYTHON").unwrap_or_else(|_| "python3".into());
        run_ok(
            Command::new(&host)
                .args(["-m", "venv", "--clear"])
                .arg(&dir),
            "python3 -m venv",
        );
        run_ok(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(REQUIREMENTS),
            "pip install",
        );
        std::fs::write(&stamp, &wanted).unwrap();
    }
    let versions = run_ok(
        Command::new(&python).args([
            "-c",
            "import importlib.metadata as m; \
             print(f\"duckdb-kql {m.version('duckdb-kql')}, duckdb {m.version('duckdb')}\")",
        ]),
        "version check",
    );
    assert_eq!(versions.trim(), EXPECTED_VERSIONS, "venv {}", dir.display());
    python
}

fn run_kql(python: &Path, q: Query, files: &Files, now: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/duckdb_kql/run_kql.py");
    run_ok(
        Command::new(python)
            .arg(script)
            .arg(q.name())
            .arg("--ti")
            .arg(&files.ti)
            .args(["--now", now])
            .args(files.logs(q)),
        "run_kql.py",
    )
}

/// Compares two outputs of the same query: the header, the row multisets, the time column row by
/// row, and the multiset of rows in each group of equal times. Tie order is not compared.
fn compare(name_a: &str, a: &str, name_b: &str, b: &str) -> Vec<String> {
    let (ra, rb) = match (parse_csv(a.as_bytes()), parse_csv(b.as_bytes())) {
        (Ok(x), Ok(y)) => (x, y),
        _ => return vec![format!("unparseable CSV:\n{name_a}:\n{a}\n{name_b}:\n{b}")],
    };
    let mut problems = Vec::new();
    if ra.first() != rb.first() {
        problems.push(format!(
            "header: {name_a} {:?}, {name_b} {:?}",
            ra.first(),
            rb.first()
        ));
        return problems;
    }
    let (ra, rb) = (&ra[1..], &rb[1..]);
    let (only_a, only_b) = multiset_diff(ra, rb);
    if !only_a.is_empty() || !only_b.is_empty() {
        problems.push(format!(
            "rows: {name_a} {} vs {name_b} {}; only in {name_a} ({}): {:?}\nonly in {name_b} ({}): {:?}",
            ra.len(),
            rb.len(),
            only_a.len(),
            &only_a[..only_a.len().min(8)],
            only_b.len(),
            &only_b[..only_b.len().min(8)]
        ));
        return problems;
    }
    let times_a: Vec<&str> = ra.iter().map(|r| r[0].as_str()).collect();
    let times_b: Vec<&str> = rb.iter().map(|r| r[0].as_str()).collect();
    if times_a != times_b {
        let i = times_a
            .iter()
            .zip(&times_b)
            .position(|(x, y)| x != y)
            .unwrap();
        problems.push(format!(
            "sort order differs at row {i}: {name_a} time {:?}, {name_b} time {:?}",
            times_a[i], times_b[i]
        ));
        return problems;
    }
    let mut start = 0;
    while start < ra.len() {
        let mut end = start + 1;
        while end < ra.len() && ra[end][0] == ra[start][0] {
            end += 1;
        }
        let (x, y) = multiset_diff(&ra[start..end], &rb[start..end]);
        if !x.is_empty() || !y.is_empty() {
            problems.push(format!(
                "tie group of time {:?} (rows {start}..{end}) differs: {x:?} vs {y:?}",
                ra[start][0]
            ));
        }
        start = end;
    }
    problems
}

#[test]
fn hunt_kql_agrees_with_duckdb_kql() {
    if std::env::var("IOCMATCH_KQL_DIFF").as_deref() != Ok("1") {
        eprintln!(
            "SKIPPED hunt_kql_agrees_with_duckdb_kql: set IOCMATCH_KQL_DIFF=1 to run the \
             differential test against duckdb-kql (creates target/kql-venv with pip on first use)"
        );
        return;
    }
    let python = ensure_venv();
    let n: u64 = std::env::var("IOCMATCH_KQL_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let opts = GenOptions {
        micros: true,
        ..GenOptions::default()
    };
    let mut failures = Vec::new();
    let mut total_rows = 0;
    for seed in (0..n).map(|i| 0xd0c_0000 + i) {
        let ds = generate(&mut Rng::new(seed), opts);
        let dir = tempfile::tempdir().unwrap();
        let files = ds.write(dir.path());
        let idx = compile_index(&files.ti, dir.path());
        let mut problems = Vec::new();
        for q in [Query::Network, Query::Dns] {
            let duck = run_kql(&python, q, &files, &ds.now_text);
            total_rows += duck.lines().count() - 1;
            let reference = render(q, &reference(q, &files, ds.now));
            for p in compare("duckdb-kql", &duck, "reference", &reference) {
                problems.push(format!(
                    "{}: duckdb-kql vs the test's reference: {p}",
                    q.name()
                ));
            }
            match hunt_stdout(q, "kql", &idx, &ds.now_text, files.logs(q)) {
                Ok(ioc) => {
                    for p in compare("duckdb-kql", &duck, "iocmatch", &ioc) {
                        problems.push(format!("{}: duckdb-kql vs iocmatch: {p}", q.name()));
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            let kept = dir.keep();
            for p in problems {
                failures.push(format!(
                    "seed {seed} (files in {}, --now {}): {p}",
                    kept.display(),
                    ds.now_text
                ));
            }
        }
    }
    assert!(total_rows > 0, "the datasets produced no row at all");
    assert!(
        failures.is_empty(),
        "{} difference(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
