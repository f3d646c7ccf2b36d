//! The rsyslog recipe (`rsyslog/iocmatch.conf.example`): an `imfile` input following an NDJSON
//! log feeds an `omprog` action running `iocmatch filter`, whose output goes to a file.
//!
//! Only with `IOCMATCH_RSYSLOG_TEST=1`. Uses the example config itself (its paths swapped for a
//! temporary directory), starts `rsyslogd -n -f CONF -i PIDFILE` in the foreground, appends
//! events to the watched file in a few batches, waits until the matches file holds what
//! `iocmatch filter` gives on the same events, then stops rsyslogd by its pid. Installs the
//! Debian package `rsyslog` when it is missing and the test runs as root; skips otherwise.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOW: &str = "2025-01-01T00:00:00Z";

fn rsyslogd() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ["rsyslogd", "/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| works(p))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// rsyslogd, installed with apt-get when missing and root; `None` (with a message) otherwise.
fn find_or_install() -> Option<PathBuf> {
    if let Some(p) = rsyslogd() {
        return Some(p);
    }
    if !is_root() {
        eprintln!("rsyslog: skipped: rsyslogd is not installed and installing it needs root");
        return None;
    }
    eprintln!("rsyslog: installing the Debian package rsyslog");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-q", "rsyslog"]) {
        apt(&["update", "-q"]);
        apt(&["install", "-y", "-q", "rsyslog"]);
    }
    let found = rsyslogd();
    if found.is_none() {
        eprintln!("rsyslog: skipped: apt-get install rsyslog did not give a working rsyslogd");
    }
    found
}

fn iocmatch(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_iocmatch"))
        .args(args)
        .output()
        .expect("run iocmatch");
    assert!(
        out.status.success(),
        "iocmatch {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Whether any process's command line mentions `needle` (Linux `/proc`).
fn process_mentioning(needle: &str) -> Option<String> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                return Some(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    None
}

#[test]
fn rsyslog_imfile_omprog_runs_the_filter() {
    if std::env::var("IOCMATCH_RSYSLOG_TEST").as_deref() != Ok("1") {
        eprintln!(
            "rsyslog: skipped: set IOCMATCH_RSYSLOG_TEST=1 to run the rsyslog recipe test \
             (Debian package rsyslog)"
        );
        return;
    }
    let Some(rsyslogd) = find_or_install() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path().canonicalize().expect("canonical temp dir");
    let p = |name: &str| d.join(name).to_string_lossy().into_owned();
    let bin = env!("CARGO_BIN_EXE_iocmatch");

    iocmatch(&[
        "gen",
        "--seed",
        "11",
        "--indicators",
        "2000",
        "--events",
        "3000",
        "--now",
        NOW,
        "--out",
        &p("corpus"),
    ]);
    iocmatch(&[
        "compile",
        &p("corpus/indicators.csv"),
        "-o",
        &p("indicators.iocx"),
    ]);
    let events = std::fs::read(d.join("corpus/NetworkConnection.ndjson")).expect("events");
    let expected = {
        let mut child = Command::new(bin)
            .args([
                "filter",
                "network",
                "--index",
                &p("indicators.iocx"),
                "--input-format",
                "ndjson",
                "--now",
                NOW,
                "-q",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run iocmatch filter");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = events.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("iocmatch filter");
        feeder.join().expect("feeder").expect("write events");
        assert!(out.status.success(), "iocmatch filter: {}", out.status);
        out.stdout
    };
    let want_lines = expected.iter().filter(|&&b| b == b'\n').count();
    assert!(
        want_lines >= 10,
        "the corpus should match: {want_lines} matches"
    );

    // The shipped example, its paths swapped for the temporary directory's.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rsyslog/iocmatch.conf.example"),
    )
    .expect("rsyslog/iocmatch.conf.example");
    std::fs::create_dir(d.join("work")).expect("work dir");
    let mut conf = example;
    for (from, to) in [
        ("/var/lib/rsyslog-iocmatch", p("work")),
        ("/var/log/app/events.ndjson", p("events.ndjson")),
        ("/usr/local/bin/iocmatch", bin.to_string()),
        ("/var/lib/iocmatch/indicators.iocx", p("indicators.iocx")),
        ("/var/log/iocmatch/matches.ndjson", p("matches.ndjson")),
        // A fixed now(), so that the expected matches above are the same set.
        ("--line-buffered", format!("--now {NOW} --line-buffered")),
    ] {
        assert!(
            conf.contains(from),
            "the example config no longer has {from}"
        );
        conf = conf.replace(from, &to);
    }
    std::fs::write(d.join("rsyslog.conf"), &conf).expect("write config");
    std::fs::write(d.join("events.ndjson"), b"").expect("events file");

    let check = Command::new(&rsyslogd)
        .args(["-N1", "-f", &p("rsyslog.conf")])
        .output()
        .expect("rsyslogd -N1");
    assert!(
        check.status.success(),
        "rsyslogd -N1 rejects the config: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let log = std::fs::File::create(d.join("rsyslogd.log")).expect("log");
    let started = Instant::now();
    let mut child = Command::new(&rsyslogd)
        .args(["-n", "-f", &p("rsyslog.conf"), "-i", &p("rsyslogd.pid")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start rsyslogd");
    let rsyslog_log = || std::fs::read_to_string(d.join("rsyslogd.log")).unwrap_or_default();

    // Its pid, from the pid file it writes once running.
    let pid = loop {
        if let Ok(s) = std::fs::read_to_string(d.join("rsyslogd.pid")) {
            if let Ok(pid) = s.trim().parse::<u32>() {
                break pid;
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("rsyslogd exited ({st}): {}", rsyslog_log());
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("rsyslogd wrote no pid file: {}", rsyslog_log());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(pid, child.id(), "rsyslogd -n runs in the foreground");

    // Append the events in three batches, as an application would.
    let lines: Vec<&[u8]> = events.split_inclusive(|&b| b == b'\n').collect();
    let batch = lines.len().div_ceil(3);
    for (i, chunk) in lines.chunks(batch).enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.join("events.ndjson"))
            .expect("open events");
        f.write_all(&chunk.concat()).expect("append events");
    }

    // Wait for the matches (poll, with a timeout).
    let appended = Instant::now();
    let got = loop {
        let got = std::fs::read(d.join("matches.ndjson")).unwrap_or_default();
        if got.len() >= expected.len() || appended.elapsed() > Duration::from_secs(60) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let latency = appended.elapsed();

    // Stop rsyslogd by its pid; it closes the filter's stdin and the filter exits.
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -TERM {pid}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let index_path = p("indicators.iocx");
    let filter_deadline = Instant::now() + Duration::from_secs(10);
    let mut leftover = process_mentioning(&index_path);
    while leftover.is_some() && Instant::now() < filter_deadline {
        std::thread::sleep(Duration::from_millis(100));
        leftover = process_mentioning(&index_path);
    }
    eprintln!(
        "rsyslog: {} events -> {} matches in {:.2} s after the last append; rsyslogd {:?}",
        lines.len(),
        got.iter().filter(|&&b| b == b'\n').count(),
        latency.as_secs_f64(),
        exited
    );

    assert!(
        got == expected,
        "the matches file differs from iocmatch filter's output: {} bytes ({} lines) vs {} \
         bytes ({want_lines} lines)\nrsyslogd log:\n{}",
        got.len(),
        got.iter().filter(|&&b| b == b'\n').count(),
        expected.len(),
        rsyslog_log()
    );
    assert!(
        exited.is_some(),
        "rsyslogd did not stop within 20 s of SIGTERM"
    );
    assert!(
        leftover.is_none(),
        "the iocmatch filter started by omprog is still running: {leftover:?}"
    );
}
