//! End-to-end tests of the `iocmatch` executable: real files in temporary directories, exit
//! codes, and the messages a user sees. Expected values are computed by hand from the fixtures
//! in `data/` (each assertion says which row it comes from).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iocmatch"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run iocmatch")
}

/// The NDJSON lines of `out`, parsed.
fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn compile(dir: &Path, files: &[PathBuf], extra: &[&str]) -> (PathBuf, Output) {
    let idx = dir.join("test.iocx");
    let mut c = bin();
    c.arg("compile").args(files).arg("-o").arg(&idx).args(extra);
    (idx.clone(), c.output().unwrap())
}

/// The output of `iocmatch hunt ARGS --index idx log`, which must succeed.
fn hunt_ok(idx: &Path, log: &Path, args: &[&str]) -> String {
    let o = bin()
        .arg("hunt")
        .args(args)
        .arg("--index")
        .arg(idx)
        .arg(log)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    out
}

/// `data/stix-bundle.json` compiled into `dir`.
fn compiled_stix_bundle(dir: &Path) -> PathBuf {
    let (idx, o) = compile(dir, &[data("stix-bundle.json")], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    idx
}

#[test]
fn compile_lookup_inspect_verify_on_the_bundled_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [
        "sentinel-legacy.csv",
        "plain-list.txt",
        "stix-bundle.json",
        "realdata/stix/oasis_apt1.json",
        "realdata/mstic_RapidReleaseTI_Indicators.csv",
    ]
    .iter()
    .map(|f| data(f))
    .collect();
    let (idx, out) = compile(
        dir.path(),
        &files,
        &["--build-time", "2026-01-01T00:00:00Z"],
    );
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("sentinel-legacy.csv: read as sentinel-csv"),
        "{err}"
    );
    assert!(err.contains("oasis_apt1.json: read as stix"), "{err}");
    assert!(
        err.contains("mstic_RapidReleaseTI_Indicators.csv: read as csv"),
        "{err}"
    );
    // sentinel-legacy.csv line 18 (row 15 spans two lines) has ExpirationDateTime 2024-13-45.
    assert!(
        err.contains("sentinel-legacy.csv: line 18: missing or invalid field"),
        "{err}"
    );
    let idx_s = idx.to_str().unwrap();

    // plain-list.txt: 203.0.113.0/24 contains 203.0.113.10, which sentinel-legacy.csv lists
    // three times (indicator--a1, three TimeGenerated rows): 4 records.
    let o = run(&["lookup", idx_s, "203.0.113.10", "--json"]);
    let (stdout, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    let lines = json_lines(&stdout);
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(
        lines.iter().filter(|v| v["id"] == "indicator--a1").count(),
        3
    );
    assert!(lines.iter().any(|v| v["value"] == "203.0.113.0/24"));
    assert!(lines.iter().any(|v| v["confidence"] == 85.5));

    // Uppercase IPv6 in the export (2001:DB8::BAD:1) is found by its canonical form.
    let o = run(&["lookup", idx_s, "2001:db8::bad:1"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // apt1: [ipv4-addr:value = '223.166.0.0/15'] covers 223.167.1.1.
    let o = run(&["lookup", idx_s, "223.167.1.1"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // Suffix semantics: a subdomain matches only with --subdomains, never a look-alike.
    let o = run(&["lookup", idx_s, "cdn.evil-update.example"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["lookup", idx_s, "cdn.evil-update.example", "--subdomains"]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["lookup", idx_s, "notevil-update.example", "--subdomains"]);
    assert_eq!(o.status.code(), Some(1));
    // A hash in upper case (plain-list.txt has it lower case).
    let o = run(&["lookup", idx_s, "44D88612FEA8A8F36DE82E1278ABB02F"]);
    assert_eq!(o.status.code(), Some(0));
    // Several values: exit 0 when any matched.
    let o = run(&["lookup", idx_s, "192.0.2.99", "CVE-2021-44228"]);
    let (stdout, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout.contains("192.0.2.99: no match"));

    let o = run(&["inspect", idx_s, "--json", "--now", "2024-05-01T00:00:00Z"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["build_time"], "2026-01-01T00:00:00Z");
    assert!(v["by_kind"]["cidr4"].as_u64().unwrap() >= 5);

    let o = run(&["verify", idx_s]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("OK"));
}

#[test]
fn builds_are_byte_identical_with_a_fixed_build_time() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        data("stix-bundle.json"),
        data("rest-iocs.json"),
        data("generic-feed.csv"),
    ];
    let (idx, o) = compile(dir.path(), &files, &["--build-time", "2026-01-01", "-q"]);
    assert!(o.status.success());
    let first = std::fs::read(&idx).unwrap();
    let (idx, o) = compile(dir.path(), &files, &["--build-time", "2026-01-01", "-q"]);
    assert!(o.status.success());
    assert_eq!(first, std::fs::read(idx).unwrap());

    // A feed that is not a regular file (a pipe, as `<(curl ...)` gives) is read instead of
    // mapped: the same index from the same bytes (a named pipe of the same file name, which
    // becomes the records' source).
    let single = |o: &Path, feed: &Path| {
        let out = bin()
            .arg("compile")
            .arg(feed)
            .arg("-o")
            .arg(o)
            .args(["--build-time", "2026-01-01", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}", text(&out));
        std::fs::read(o).unwrap()
    };
    let feed = data("generic-feed.csv");
    let mapped = single(&dir.path().join("a.iocx"), &feed);
    let fifo = dir.path().join("pipe").join("generic-feed.csv");
    std::fs::create_dir(fifo.parent().unwrap()).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&feed).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes))
    };
    let piped = single(&dir.path().join("b.iocx"), &fifo);
    writer.join().unwrap().unwrap();
    assert_eq!(mapped, piped);
}

#[test]
fn latest_keeps_the_newest_row_and_drops_inactive() {
    let dir = tempfile::tempdir().unwrap();
    let (idx, o) = compile(dir.path(), &[data("sentinel-legacy.csv")], &["--latest"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let idx_s = idx.to_str().unwrap();
    // indicator--a1: the 2024-03-09 row (confidence 85.5) is the newest of three.
    let o = run(&["lookup", idx_s, "203.0.113.10", "--json"]);
    let v = json_lines(&text(&o).0);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["confidence"], 85.5);
    // indicator--b2: the newest row (2024-03-10) has Active=false, so the domain is gone.
    // Older versions dropped: two of indicator--a1, one of indicator--b2.
    let o = run(&["lookup", idx_s, "evil-domain.example"]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&compile(dir.path(), &[data("sentinel-legacy.csv")], &["--latest"]).1);
    assert!(
        err.contains("3 older versions") && err.contains("1 inactive"),
        "{err}"
    );
}

#[test]
fn unrecognizable_or_empty_input_fails_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, br#"{"hello": "world"}"#).unwrap();
    let (idx, o) = compile(dir.path(), &[junk], &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("junk.json") && err.contains("not a recognizable indicator format"),
        "{err}"
    );
    assert!(!idx.exists());

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "not an indicator\nalso not one!\n").unwrap();
    let (_, o) = compile(dir.path(), &[bad], &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("no usable indicator"), "{err}");
    assert!(err.contains("bad.txt: line 1"), "{err}");

    let (_, o) = compile(dir.path(), &[dir.path().join("missing.csv")], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("missing.csv"));

    let o = run(&["compile", "--format", "yaml", "x", "-o", "y"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("unknown format"));
}

#[test]
fn corrupt_index_files_are_reported_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let (idx, o) = compile(dir.path(), &[data("plain-list.txt")], &["-q"]);
    assert!(o.status.success());
    let bytes = std::fs::read(&idx).unwrap();
    let bad = dir.path().join("bad.iocx");

    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    for cmd in ["inspect", "verify"] {
        let o = run(&[cmd, bad.to_str().unwrap()]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            err.contains("bad.iocx") && err.contains("truncated"),
            "{err}"
        );
    }
    let o = run(&["lookup", bad.to_str().unwrap(), "1.2.3.4"]);
    assert_eq!(o.status.code(), Some(2));

    // A flipped byte in the last section passes the header checks; verify catches it.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x55;
    std::fs::write(&bad, &flipped).unwrap();
    let o = run(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("checksum mismatch"), "{:?}", text(&o));

    std::fs::write(&bad, b"definitely not an index").unwrap();
    let o = run(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("not an iocmatch index"));
}

#[test]
fn output_is_written_atomically_and_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("no-such-dir").join("x.iocx");
    let o = bin()
        .args(["compile", data("plain-list.txt").to_str().unwrap(), "-o"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no-such-dir"), "{:?}", text(&o));
    // Replacing an index leaves no temporary files behind.
    let (_, o) = compile(dir.path(), &[data("plain-list.txt")], &["-q"]);
    assert!(o.status.success());
    let (_, o) = compile(dir.path(), &[data("rest-iocs.json")], &["-q"]);
    assert!(o.status.success());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["test.iocx".to_string()]);

    // A missing file is named once, with the system's reason once (not once per cause).
    let missing = dir.path().join("missing.csv");
    let idx = dir.path().join("test.iocx");
    for args in [
        vec![
            "hunt",
            "network",
            missing.to_str().unwrap(),
            "--index",
            idx.to_str().unwrap(),
        ],
        vec!["hunt", "network", "--index", missing.to_str().unwrap(), "-"],
        vec![
            "compile",
            missing.to_str().unwrap(),
            "-o",
            idx.to_str().unwrap(),
        ],
    ] {
        let o = run(&args);
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(err.matches("missing.csv").count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("No such file").count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn help_and_usage_errors() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    for cmd in ["compile", "inspect", "lookup", "verify"] {
        assert!(out.contains(cmd));
    }
    let o = run(&["lookup"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The README's "where they differ" table, row by row.
#[test]
fn kql_and_normalized_differ_as_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let ti = dir.path().join("ti.csv");
    std::fs::write(
        &ti,
        "NetworkIP,DomainName,ConfidenceScore,Description,ThreatType,ExpirationDateTime\n\
         1.2.3.4,,80,plain,C2,2026-12-01T00:00:00Z\n\
         2001:DB8::1,,50,upper v6,C2,2026-12-01\n\
         10.0.0.0/8,,40,cidr,Scan,2026-12-01\n\
         ,evil.example,90,domain only,Phish,2026-12-01\n\
         ,evil.com.,70,dotted,Phish,\n",
    )
    .unwrap();
    let nc = dir.path().join("nc.csv");
    std::fs::write(
        &nc,
        "TimeGenerated,SourceIP,DestinationIP\n\
         2026-06-01T00:00:00Z,10.9.9.9,1.2.3.4\n\
         2026-06-02T00:00:00Z,10.9.9.9,2001:db8::1\n\
         2026-06-03T00:00:00Z,10.9.9.9,10.1.1.1\n\
         2026-06-04T00:00:00Z,10.9.9.9,\n",
    )
    .unwrap();
    let dns = dir.path().join("dns.csv");
    std::fs::write(
        &dns,
        "TimeGenerated,ClientIP,Name\n2026-06-05T00:00:00Z,10.9.9.9,Evil.com\n",
    )
    .unwrap();
    let hunt = |q: &str, sem: &str, log: &Path| -> (Option<i32>, String) {
        let o = bin()
            .args([
                "hunt",
                q,
                "--semantics",
                sem,
                "--now",
                "2026-06-01T00:00:00Z",
                "-q",
                "--index",
            ])
            .arg(&ti)
            .arg(log)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let head = "TimeGenerated,SourceIP,DestinationIP,ConfidenceScore,Description\n";
    // kql: 1.2.3.4 by string; the empty DestinationIP joins the two domain-only rows, of
    // which the null expiration is dropped.
    assert_eq!(
        hunt("network", "kql", &nc),
        (
            Some(0),
            format!("{head}2026-06-04T00:00:00Z,10.9.9.9,,90,domain only\n2026-06-01T00:00:00Z,10.9.9.9,1.2.3.4,80,plain\n")
        )
    );
    // normalized: v6 canonical form and CIDR containment match; the empty key is skipped.
    assert_eq!(
        hunt("network", "normalized", &nc),
        (
            Some(0),
            format!(
                "{head}2026-06-03T00:00:00Z,10.9.9.9,10.1.1.1,40,cidr\n2026-06-02T00:00:00Z,10.9.9.9,2001:db8::1,50,upper v6\n\
                 2026-06-01T00:00:00Z,10.9.9.9,1.2.3.4,80,plain\n"
            )
        )
    );
    let dhead = "TimeGenerated,ClientIP,Name,ConfidenceScore,ThreatType\n";
    assert_eq!(hunt("dns", "kql", &dns), (Some(1), dhead.to_string()));
    assert_eq!(
        hunt("dns", "normalized", &dns),
        (
            Some(0),
            format!("{dhead}2026-06-05T00:00:00Z,10.9.9.9,Evil.com,70,Phish\n")
        )
    );
}

#[test]
fn the_readme_main_command_finds_matches() {
    let mut c = bin();
    c.args(["hunt", "network", "--now", "2024-05-01T00:00:00Z", "-q"]);
    for f in [
        "sentinel-legacy.csv",
        "plain-list.txt",
        "stix-bundle.json",
        "realdata/stix/oasis_apt1.json",
        "realdata/mstic_RapidReleaseTI_Indicators.csv",
    ] {
        c.arg("--index").arg(data(f));
    }
    let o = c
        .arg(data("samples/NetworkConnection.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    // 203.0.113.10 (three sentinel rows + the plain /24), the apt1 /15 around 223.167.20.9,
    // the uppercase IPv6 of sentinel-legacy.csv.
    assert!(
        out.contains("2024-04-28T08:05:00Z,10.0.4.22,223.167.20.9"),
        "{out}"
    );
    assert!(out.contains("2001:DB8::BAD:1,80,IPv6 C2"), "{out}");
    assert_eq!(out.matches(",203.0.113.10,").count(), 8, "{out}");
}

/// The same events as plain CSV, gzip, zstd, stdin, NDJSON and a Zeek conn.log (TSV and JSON)
/// give the same matches.
#[test]
fn hunt_reads_compressed_stdin_and_zeek_logs() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let ti = dir.path().join("ti.txt");
    std::fs::write(&ti, "203.0.113.7\n198.51.100.0/24\n").unwrap();
    let csv = "TimeGenerated,SourceIP,DestinationIP\n\
               2024-11-28T16:48:49Z,10.0.0.1,203.0.113.7\n\
               2024-11-28T16:48:50Z,10.0.0.2,8.8.8.8\n\
               2024-11-28T16:48:51Z,10.0.0.3,198.51.100.99\n";
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("plain.csv"), csv).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(csv.as_bytes()).unwrap();
    std::fs::write(p("log.csv.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        p("log.csv.zst"),
        zstd::encode_all(csv.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    std::fs::write(
        p("conn.log"),
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n\
         #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\n#types\ttime\tstring\taddr\tport\taddr\tport\n\
         1732812529.000000\tC1\t10.0.0.1\t5000\t203.0.113.7\t443\n\
         1732812530.000000\tC2\t10.0.0.2\t5001\t8.8.8.8\t53\n\
         1732812531.000000\tC3\t10.0.0.3\t5002\t198.51.100.99\t443\n#close\t2024-11-28-16-50-00\n",
    )
    .unwrap();
    std::fs::write(
        p("conn.json"),
        "{\"ts\":1732812529.0,\"uid\":\"C1\",\"id.orig_h\":\"10.0.0.1\",\"id.resp_h\":\"203.0.113.7\"}\n\
         {\"ts\":1732812530.0,\"uid\":\"C2\",\"id.orig_h\":\"10.0.0.2\",\"id.resp_h\":\"8.8.8.8\"}\n\
         {\"ts\":1732812531.0,\"uid\":\"C3\",\"id.orig_h\":\"10.0.0.3\",\"id.resp_h\":\"198.51.100.99\"}\n",
    )
    .unwrap();
    let want = "TimeGenerated,SourceIP,DestinationIP,ConfidenceScore,Description\n\
                2024-11-28T16:48:51Z,10.0.0.3,198.51.100.99,,\n\
                2024-11-28T16:48:49Z,10.0.0.1,203.0.113.7,,\n";
    for log in [
        "plain.csv",
        "log.csv.gz",
        "log.csv.zst",
        "conn.log",
        "conn.json",
    ] {
        let o = bin()
            .args(["hunt", "network", "-q", "--now", "2024-12-01", "--index"])
            .arg(&ti)
            .arg(p(log))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            want,
            "{log}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // stdin, compressed.
    let mut child = bin()
        .args(["hunt", "network", "-q", "--now", "2024-12-01", "--index"])
        .arg(&ti)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(p("log.csv.zst")).unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
    // --strict stops at a malformed record, naming its line.
    std::fs::write(
        p("bad.csv"),
        format!("{csv}2024-11-28T16:48:52Z,10.0.0.4\n"),
    )
    .unwrap();
    let o = bin()
        .args([
            "hunt",
            "network",
            "--strict",
            "--now",
            "2024-12-01",
            "--index",
        ])
        .arg(&ti)
        .arg(p("bad.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 5: wrong number of fields"));
    // A log without the key column is an error that says how to map it.
    std::fs::write(
        p("nokey.csv"),
        "TimeGenerated,src,dst\n2024-11-28T16:48:52Z,a,b\n",
    )
    .unwrap();
    let o = bin()
        .args(["hunt", "network", "--index"])
        .arg(&ti)
        .arg(p("nokey.csv"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--column DestinationIP=NAME"));
}

/// A record that never seems to end, on stdin (a quoted CSV field of 256 MiB with newlines in
/// it): its start is reported as too long and the rest dropped as it streams, so memory stays
/// bounded; the records after it are matched, on their true line numbers.
#[test]
fn hunt_on_a_stream_drops_an_endless_record_with_bounded_memory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let ti = dir.path().join("ti.txt");
    std::fs::write(&ti, "203.0.113.7\n").unwrap();
    let mut child = bin()
        .args(["hunt", "network", "--now", "2024-12-01", "--with", "Line"])
        .arg("--index")
        .arg(&ti)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    const MIB: usize = 1 << 20;
    // 256 pieces of 1 MiB, each ending in a newline inside the quotes: 256 lines.
    let mut piece = vec![b'x'; MIB - 1];
    piece.push(b'\n');
    let writer = std::thread::spawn(move || {
        stdin
            .write_all(
                b"TimeGenerated,SourceIP,DestinationIP\n\
                  2024-11-28T16:48:49Z,10.0.0.1,203.0.113.7\n\
                  2024-11-28T16:48:50Z,10.0.0.2,\"",
            )
            .unwrap();
        for _ in 0..256 {
            stdin.write_all(&piece).unwrap();
        }
        stdin
            .write_all(b"\"\n2024-11-28T16:48:51Z,10.0.0.3,203.0.113.7\n")
            .unwrap();
        stdin
    });
    let stdin = writer.join().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(hwm_kb > 0, "no /proc/{pid}/status");
    assert!(
        hwm_kb < 200 * 1024,
        "peak RSS {hwm_kb} kB with a 256 MiB record on stdin"
    );
    // The long record starts on line 3 and spans 257 lines: the next record is line 260.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("2024-11-28T16:48:51Z,10.0.0.3,") && lines[1].ends_with(",260"));
    assert!(lines[2].starts_with("2024-11-28T16:48:49Z,10.0.0.1,") && lines[2].ends_with(",2"));
    assert!(err.contains("record longer than 1 MiB"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

/// The indicator columns `--with` adds read the record's fixed part and one string each; their
/// values must be the STIX object's (the third `indicator--…0001` version in
/// `data/stix-bundle.json`: valid 2026-01-10 to 2026-12-31, confidence 85, its name and
/// description), with `null` where the object has none.
#[test]
fn hunt_with_indicator_columns_reads_each_from_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let idx = compiled_stix_bundle(dir.path());
    let log = dir.path().join("net.csv");
    std::fs::write(
        &log,
        "TimeGenerated,SourceIP,DestinationIP\n2026-06-01T00:00:00Z,10.0.0.1,203.0.113.7\n",
    )
    .unwrap();
    let with = "ValidFrom,ExpirationDateTime,IndicatorType,Name,Tags";
    let args = ["network", "--now", "2026-06-01", "--format", "ndjson", "-q"];
    let out = hunt_ok(&idx, &log, &[&args[..], &["--with", with]].concat());
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 1, "{out}");
    let r = &rows[0];
    assert_eq!(r["DestinationIP"], "203.0.113.7");
    assert_eq!(r["ConfidenceScore"], 85.0);
    assert_eq!(
        r["Description"],
        "Moved to a new address; the domain now resolves there too."
    );
    assert_eq!(r["ValidFrom"], "2026-01-10T00:00:00Z");
    assert_eq!(r["ExpirationDateTime"], "2026-12-31T00:00:00Z");
    assert_eq!(r["IndicatorType"], "ipv4");
    assert_eq!(r["Name"], "C2 server (v3)");
    assert_eq!(r["Tags"], "");
}

/// Output rows are formatted by several threads, a round of rows at a time: with one thread
/// and with three, 20,000 matches (three rounds) come out as the hand-built rows, in time
/// order, in CSV and NDJSON.
#[test]
fn rows_formatted_by_several_threads_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let idx = compiled_stix_bundle(dir.path());
    let log = dir.path().join("net.csv");
    let time = |i: u32| {
        format!(
            "2026-06-01T{:02}:{:02}:{:02}Z",
            i / 3600,
            i / 60 % 60,
            i % 60
        )
    };
    let n = 20_000u32;
    let mut text_in = String::from("TimeGenerated,SourceIP,DestinationIP\n");
    for i in 0..n {
        text_in.push_str(&format!(
            "{},10.0.{}.{},203.0.113.7\n",
            time(i),
            i / 250,
            i % 250
        ));
    }
    std::fs::write(&log, text_in).unwrap();
    let description = "Moved to a new address; the domain now resolves there too.";
    let mut want =
        String::from("TimeGenerated,SourceIP,DestinationIP,ConfidenceScore,Description\n");
    for i in (0..n).rev() {
        want.push_str(&format!(
            "{},10.0.{}.{},203.0.113.7,85,{description}\n",
            time(i),
            i / 250,
            i % 250
        ));
    }
    for threads in ["1", "3"] {
        for format in ["csv", "ndjson"] {
            let args = ["network", "--now", "2026-06-01", "-q", "--threads", threads];
            let out = hunt_ok(&idx, &log, &[&args[..], &["--format", format]].concat());
            if format == "csv" {
                assert!(out == want, "threads {threads}: csv rows differ");
                continue;
            }
            let rows = json_lines(&out);
            assert_eq!(rows.len(), n as usize, "threads {threads}");
            for (k, r) in rows.iter().enumerate() {
                let i = n - 1 - k as u32;
                assert_eq!(r["TimeGenerated"], time(i), "threads {threads}");
                assert_eq!(r["SourceIP"], format!("10.0.{}.{}", i / 250, i % 250));
                assert_eq!(r["ConfidenceScore"], 85.0);
                assert_eq!(r["Description"], description);
            }
        }
    }
}
