//! End-to-end tests of `iocmatch filter network|dns`, the pipeline stage of issue 5: the real
//! binary with its stdin and stdout as pipes (or files), indexes compiled by `iocmatch compile`
//! into temporary directories.
//!
//! Expected values are independent of the filter: hand-made indicators and events whose
//! annotations are worked out by hand (the comments say why each record matches), or, for the
//! generated corpora, what `iocmatch hunt` reports on the same file (its `Line` column re-sorted
//! into input order), or the arithmetic of a generator written here.
//!
//! Proof items of issue 5 covered: output and annotation (NDJSON `ti`, CSV and Zeek appended
//! columns, `--annotate-all`, `--invert`, exit 0 without a match), order preserved on a stream
//! large enough for parallel batches, constant memory over millions of records, trickle latency
//! (with and without `--line-buffered`), broken pipe, hot reload in the middle of a stream (file
//! replacement and SIGHUP), malformed records under each `--on-error`, SIGTERM, records longer
//! than the reader's blocks.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iocmatch"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The Sentinel `ThreatIntelligenceIndicator` CSV header the hand-made feeds use.
const TI_HEADER: &str =
    "TimeGenerated,IndicatorId,NetworkIP,DomainName,ConfidenceScore,Description,ThreatType,ExpirationDateTime,Active";

/// Hand-made feed F (rows named T1..T6 below).
///
/// * T1 203.0.113.7, live until 2099.
/// * T2 198.51.100.0/24, a range, description with a comma (CSV quoting).
/// * T3 198.51.100.9, inside T2's range, null expiration (live), fractional confidence.
/// * T4 192.0.2.1, expired in 2020: never live at the clock's now.
/// * T5 evil.example, a domain.
/// * T6 2001:db8::bad, IPv6.
const FEED_F: &str = "\
2024-01-01T00:00:00Z,ind-1,203.0.113.7,,90,C2 server,C2,2099-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,ind-2,198.51.100.0/24,,70,\"Scanner, range\",Botnet,2099-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,ind-3,198.51.100.9,,55.5,Exact host,Malware,,true
2024-01-01T00:00:00Z,ind-4,192.0.2.1,,40,Expired,C2,2020-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,ind-5,,evil.example,80,Phish,Phishing,2099-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,ind-6,2001:db8::bad,,60,V6 host,C2,2099-01-01T00:00:00Z,true
";

/// Writes `rows` (without header) as a Sentinel CSV feed and compiles it to `out` with
/// `iocmatch compile` (which replaces `out` atomically).
/// A temporary directory holding `f.iocx`, compiled from `FEED_F`.
fn feed_f_index() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("f.iocx");
    compile_feed(dir.path(), "f.csv", FEED_F, &idx);
    (dir, idx)
}

fn compile_feed(dir: &Path, name: &str, rows: &str, out: &Path) {
    let feed = dir.join(name);
    std::fs::write(&feed, format!("{TI_HEADER}\n{rows}")).unwrap();
    let o = bin()
        .arg("compile")
        .arg(&feed)
        .arg("-o")
        .arg(out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "compile {name}: {:?}", text(&o));
}

/// Runs `filter` with `args` on `input` given through a pipe.
fn filter(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .arg("filter")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let o = child.wait_with_output().unwrap();
    w.join().unwrap();
    o
}

fn spawn_filter(args: &[&str]) -> Child {
    bin()
        .arg("filter")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Lines of `r`, each with the instant it was read, from a thread.
fn line_channel<R: Read + Send + 'static>(r: R) -> Receiver<(Instant, String)> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut r = BufReader::new(r);
        loop {
            let mut l = String::new();
            match r.read_line(&mut l) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if tx.send((Instant::now(), l)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Reads all of `r` to a string in a thread.
fn slurp<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Waits for `child` to exit, at most `limit`; kills it (by its own handle) and fails otherwise.
fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the filter did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn send_signal(sig: &str, pid: u32) {
    let s = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(s.success(), "kill -{sig} {pid}");
}

/// A `kB` field of `/proc/PID/status`, in bytes.
fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = l[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The `ti` annotation of T1..T6, as the filter must write it (one JSON object per indicator).
fn ti(n: usize, field: &str) -> Value {
    let (value, kind, conf, tt, desc, exp) = match n {
        1 => (
            "203.0.113.7",
            "ipv4",
            90.0,
            "C2",
            "C2 server",
            json!("2099-01-01T00:00:00Z"),
        ),
        2 => (
            "198.51.100.0/24",
            "cidr4",
            70.0,
            "Botnet",
            "Scanner, range",
            json!("2099-01-01T00:00:00Z"),
        ),
        3 => (
            "198.51.100.9",
            "ipv4",
            55.5,
            "Malware",
            "Exact host",
            Value::Null,
        ),
        5 => (
            "evil.example",
            "domain",
            80.0,
            "Phishing",
            "Phish",
            json!("2099-01-01T00:00:00Z"),
        ),
        6 => (
            "2001:db8::bad",
            "ipv6",
            60.0,
            "C2",
            "V6 host",
            json!("2099-01-01T00:00:00Z"),
        ),
        _ => unreachable!(),
    };
    json!({
        "value": value, "kind": kind, "confidence": conf, "threat_type": tt,
        "description": desc, "id": format!("ind-{n}"), "expiration": exp, "field": field,
    })
}

/// `rec` with `"ti":[...]` inserted before its closing brace, checked textually: the record's
/// own bytes are unchanged; returns the parsed `ti` array, sorted by id.
fn split_ti(out: &str, rec: &str) -> Vec<Value> {
    let body = rec.strip_suffix('}').unwrap();
    let rest = out
        .strip_prefix(body)
        .unwrap_or_else(|| panic!("the record is not kept unchanged:\n in:  {rec}\n out: {out}"));
    let ti = rest
        .strip_prefix(",\"ti\":")
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or_else(|| panic!("no `ti` appended at the end: {out}"));
    let mut v: Vec<Value> = serde_json::from_str::<Vec<Value>>(ti).unwrap();
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    v
}

// Events E1..E6 of the NDJSON output test.
const E1: &str = r#"{"TimeGenerated":"2024-05-01T00:00:00Z","SourceIP":"10.0.0.1","DestinationIP":"203.0.113.7","DestinationPort":443}"#;
const E2: &str = r#"{"TimeGenerated":"2024-05-01T00:00:01Z","SourceIP":"10.0.0.2","DestinationIP":"8.8.8.8","DestinationPort":53}"#;
const E3: &str = r#"{"TimeGenerated":"2024-05-01T00:00:02Z","SourceIP":"10.0.0.3","DestinationIP":"198.51.100.9"}"#;
const E4: &str =
    r#"{"TimeGenerated":"2024-05-01T00:00:03Z","SourceIP":"10.0.0.4","DestinationIP":"192.0.2.1"}"#;
const E5: &str = r#"{"TimeGenerated":"2024-05-01T00:00:04Z","SourceIP":"10.0.0.5","DestinationIP":"198.51.100.200"}"#;
const E6: &str = r#"{"TimeGenerated":"2024-05-01T00:00:05Z","SourceIP":"10.0.0.6","DestinationIP":"2001:DB8::BAD"}"#;

#[test]
fn output_ndjson_csv_zeek_annotate_all_invert() {
    let (_dir, idx) = feed_f_index();
    let idx_s = idx.to_str().unwrap();

    // --- NDJSON, matches mode. E1 = T1 exactly; E2 nothing; E3 = T3 and inside T2's range;
    // E4 = T4, expired (not live at the clock's now); E5 inside T2's range; E6 = T6 (IPv6 in
    // upper case: the normalized mode compares canonical addresses).
    let events = [E1, E2, E3, E4, E5, E6];
    let input = events.join("\n") + "\n";
    let o = filter(&["network", "--index", idx_s], input.as_bytes());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    // One line exactly, byte for byte: `ti` keys in alphabetical order, confidence a number.
    assert_eq!(
        lines[0],
        r#"{"TimeGenerated":"2024-05-01T00:00:00Z","SourceIP":"10.0.0.1","DestinationIP":"203.0.113.7","DestinationPort":443,"ti":[{"confidence":90.0,"description":"C2 server","expiration":"2099-01-01T00:00:00Z","field":"DestinationIP","id":"ind-1","kind":"ipv4","threat_type":"C2","value":"203.0.113.7"}]}"#
    );
    let want: [(&str, Vec<Value>); 4] = [
        (E1, vec![ti(1, "DestinationIP")]),
        (E3, vec![ti(2, "DestinationIP"), ti(3, "DestinationIP")]),
        (E5, vec![ti(2, "DestinationIP")]),
        (E6, vec![ti(6, "DestinationIP")]),
    ];
    for (l, (rec, t)) in lines.iter().zip(&want) {
        assert_eq!(&split_ti(l, rec), t, "{l}");
    }
    assert!(
        err.contains("iocmatch filter: 6 records read, 4 matched, 4 written"),
        "{err}"
    );

    // --- --annotate-all: every record, in order; the unmatched ones get an empty `ti`.
    let o = filter(
        &["network", "--index", idx_s, "--annotate-all"],
        input.as_bytes(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    let want: [Vec<Value>; 6] = [
        vec![ti(1, "DestinationIP")],
        vec![],
        vec![ti(2, "DestinationIP"), ti(3, "DestinationIP")],
        vec![],
        vec![ti(2, "DestinationIP")],
        vec![ti(6, "DestinationIP")],
    ];
    for ((l, rec), t) in lines.iter().zip(events).zip(&want) {
        assert_eq!(&split_ti(l, rec), t, "{l}");
    }
    assert_eq!(
        lines[1],
        E2.strip_suffix('}').unwrap().to_string() + r#","ti":[]}"#
    );

    // --- --invert: exactly the complement (E2, E4), unchanged, in order.
    let o = filter(&["network", "--index", idx_s, "--invert"], input.as_bytes());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out, format!("{E2}\n{E4}\n"));

    // --- No match at all: still exit 0 (a pipeline stage), nothing written, in every mode.
    let none = format!("{E2}\n{E4}\n");
    let o = filter(&["network", "--index", idx_s], none.as_bytes());
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(o.stdout.is_empty());
    assert!(
        text(&o).1.contains("2 records read, 0 matched, 0 written"),
        "{:?}",
        text(&o)
    );
    let o = filter(
        &["network", "--index", idx_s, "--invert"],
        format!("{E1}\n").as_bytes(),
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(o.stdout.is_empty());
    // An empty stream too.
    let o = filter(&["network", "--index", idx_s], b"");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(o.stdout.is_empty());

    // --- DNS, NDJSON: D1 "Evil.Example" = T5 (case-insensitive); D2 a subdomain matches only
    // with --subdomains; D3 nothing.
    let d1 = r#"{"TimeGenerated":"2024-05-01T00:00:00Z","ClientIP":"10.0.0.1","Name":"Evil.Example","QueryType":"A"}"#;
    let d2 = r#"{"TimeGenerated":"2024-05-01T00:00:01Z","ClientIP":"10.0.0.2","Name":"cdn.evil.example","QueryType":"A"}"#;
    let d3 = r#"{"TimeGenerated":"2024-05-01T00:00:02Z","ClientIP":"10.0.0.3","Name":"benign.example","QueryType":"A"}"#;
    let dns = format!("{d1}\n{d2}\n{d3}\n");
    let o = filter(&["dns", "--index", idx_s], dns.as_bytes());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(split_ti(lines[0], d1), vec![ti(5, "Name")]);
    let o = filter(&["dns", "--index", idx_s, "--subdomains"], dns.as_bytes());
    let (out, _) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(split_ti(lines[1], d2), vec![ti(5, "Name")]);

    // --- CSV: the nine ti_* columns appended to the header and to each passed row; several
    // matches joined by `|`, position by position (the order of the matches is the filter's
    // choice, but it must be the same in every column); a cell with a comma quoted.
    let csv_in = "\
TimeGenerated,SourceIP,DestinationIP,DestinationPort
2024-05-01T00:00:00Z,10.0.0.1,203.0.113.7,443
2024-05-01T00:00:01Z,10.0.0.2,8.8.8.8,53
2024-05-01T00:00:02Z,10.0.0.3,198.51.100.9,80
";
    let header = "TimeGenerated,SourceIP,DestinationIP,DestinationPort,ti_count,ti_value,ti_kind,ti_confidence,ti_threat_type,ti_description,ti_id,ti_expiration,ti_field";
    let c1 = "2024-05-01T00:00:00Z,10.0.0.1,203.0.113.7,443,1,203.0.113.7,ipv4,90,C2,C2 server,ind-1,2099-01-01T00:00:00Z,DestinationIP";
    let c2 = "2024-05-01T00:00:01Z,10.0.0.2,8.8.8.8,53,0,,,,,,,,";
    // Row 3 = T2 and T3, in either order.
    let c3 = [
        "2024-05-01T00:00:02Z,10.0.0.3,198.51.100.9,80,2,198.51.100.0/24|198.51.100.9,cidr4|ipv4,70|55.5,Botnet|Malware,\"Scanner, range|Exact host\",ind-2|ind-3,2099-01-01T00:00:00Z|,DestinationIP|DestinationIP",
        "2024-05-01T00:00:02Z,10.0.0.3,198.51.100.9,80,2,198.51.100.9|198.51.100.0/24,ipv4|cidr4,55.5|70,Malware|Botnet,\"Exact host|Scanner, range\",ind-3|ind-2,|2099-01-01T00:00:00Z,DestinationIP|DestinationIP",
    ];
    let o = filter(&["network", "--index", idx_s], csv_in.as_bytes());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], header);
    assert_eq!(lines[1], c1);
    assert!(c3.contains(&lines[2]), "{}", lines[2]);
    let o = filter(
        &["network", "--index", idx_s, "--annotate-all"],
        csv_in.as_bytes(),
    );
    let (out, _) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[..3], [header, c1, c2]);
    assert!(c3.contains(&lines[3]), "{}", lines[3]);
    // --invert: the header and rows unchanged, no ti_* columns.
    let o = filter(
        &["network", "--index", idx_s, "--invert"],
        csv_in.as_bytes(),
    );
    assert_eq!(
        text(&o).0,
        "TimeGenerated,SourceIP,DestinationIP,DestinationPort\n2024-05-01T00:00:01Z,10.0.0.2,8.8.8.8,53\n"
    );

    // --- Zeek TSV: the header lines kept, #fields and #types extended by the nine ti_* fields
    // (type string), the record extended by tab-separated values.
    let zeek_head = [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#open\t2024-05-01-00-00-00",
    ];
    let fields = "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto";
    let types = "#types\ttime\tstring\taddr\tport\taddr\tport\tenum";
    let z1 = "1714521600.000000\tC1\t10.0.0.1\t5000\t203.0.113.7\t443\ttcp";
    let z2 = "1714521601.000000\tC2\t10.0.0.2\t5001\t8.8.8.8\t53\tudp";
    let z3 = "1714521602.000000\tC3\t10.0.0.3\t5002\t198.51.100.9\t80\ttcp";
    let zeek_in = format!(
        "{}\n{fields}\n{types}\n{z1}\n{z2}\n{z3}\n#close\t2024-05-01-00-00-10\n",
        zeek_head.join("\n")
    );
    let o = filter(
        &["network", "--index", idx_s, "--annotate-all"],
        zeek_in.as_bytes(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 11, "{out}");
    assert_eq!(lines[..6], zeek_head);
    let ti_names = "ti_count\tti_value\tti_kind\tti_confidence\tti_threat_type\tti_description\tti_id\tti_expiration\tti_field";
    assert_eq!(lines[6], format!("{fields}\t{ti_names}"));
    assert_eq!(lines[7], format!("{types}{}", "\tstring".repeat(9)));
    assert_eq!(
        lines[8],
        format!("{z1}\t1\t203.0.113.7\tipv4\t90\tC2\tC2 server\tind-1\t2099-01-01T00:00:00Z\tDestinationIP")
    );
    // No match: count 0, every other field unset.
    assert_eq!(lines[9], format!("{z2}\t0{}", "\t-".repeat(8)));
    // T2 and T3: each field lists both, joined by the set separator `,`, in the same order in
    // every field; an unset expiration leaves an empty element.
    let z3_ti = [
        "2\t198.51.100.0/24,198.51.100.9\tcidr4,ipv4\t70,55.5\tBotnet,Malware\tScanner, range,Exact host\tind-2,ind-3\t2099-01-01T00:00:00Z,\tDestinationIP,DestinationIP",
        "2\t198.51.100.9,198.51.100.0/24\tipv4,cidr4\t55.5,70\tMalware,Botnet\tExact host,Scanner, range\tind-3,ind-2\t,2099-01-01T00:00:00Z\tDestinationIP,DestinationIP",
    ]
    .map(|t| format!("{z3}\t{t}"));
    assert!(z3_ti.contains(&lines[10].to_string()), "{}", lines[10]);
    // Matches mode writes the header too, then only z1 and z3.
    let o = filter(&["network", "--index", idx_s], zeek_in.as_bytes());
    let (out, _) = text(&o);
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with(z1), "{out}");
    assert!(z3_ti.contains(&lines[1].to_string()), "{out}");
}

/// A generated stream of 200k NDJSON connections (33 MB): the filter's output, line by line,
/// is the records `hunt` reports as matched, in input order, each annotated with exactly the
/// indicators hunt joined it with. Stdin is a file first (1 MiB reads, so the filter batches
/// several MiB and scans them in parallel chunks), then a pipe; `--invert` is the complement.
#[test]
fn order_preserved_on_a_large_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let now = "2025-01-01T00:00:00Z";
    let o = bin()
        .args([
            "gen",
            "--seed",
            "5",
            "--indicators",
            "20000",
            "--events",
            "200000",
        ])
        .args(["--hit-rate", "0.2", "--now", now, "--out"])
        .arg(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let idx = d.join("idx.iocx");
    let o = bin()
        .arg("compile")
        .arg(d.join("indicators.csv"))
        .arg("-o")
        .arg(&idx)
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let log = d.join("NetworkConnection.ndjson");
    let idx_s = idx.to_str().unwrap();

    // hunt: one row per (event, indicator) pair, sorted by time; regroup by line.
    let o = bin()
        .args(["hunt", "network", "--index", idx_s, "--now", now])
        .args(["--format", "ndjson", "--with", "Line,IndicatorId", "-q"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o).1);
    let mut by_line: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for l in text(&o).0.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let line = v["Line"].as_u64().unwrap() as usize;
        by_line
            .entry(line)
            .or_default()
            .push(v["IndicatorId"].as_str().unwrap().to_string());
    }
    let src = std::fs::read_to_string(&log).unwrap();
    let src: Vec<&str> = src.lines().collect();
    assert_eq!(src.len(), 200_000);
    assert!(by_line.len() > 20_000, "{} matched lines", by_line.len());

    let args = ["network", "--index", idx_s, "--now", now];
    // From a file.
    let t = Instant::now();
    let o = bin()
        .arg("filter")
        .args(args)
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    let from_file = t.elapsed();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), by_line.len(), "{err}");
    for (l, (n, ids)) in lines.iter().zip(&by_line) {
        let got: Vec<String> = split_ti(l, src[n - 1])
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want, "line {n}");
    }
    assert!(
        err.contains(&format!(
            "200000 records read, {0} matched, {0} written",
            by_line.len()
        )),
        "{err}"
    );

    // Through a pipe: the same bytes.
    let t = Instant::now();
    let o2 = filter(&args, src.join("\n").as_bytes());
    eprintln!(
        "order: 200k records, {} matched; filter from a file {from_file:?}, through a pipe {:?}",
        by_line.len(),
        t.elapsed()
    );
    assert_eq!(o2.status.code(), Some(0));
    assert!(
        o2.stdout == o.stdout,
        "pipe output differs from file output"
    );
    // One worker thread, and more workers than cores: the same bytes.
    for n in ["1", "3"] {
        let o3 = filter(
            &[&args[..], &["--threads", n]].concat(),
            src.join("\n").as_bytes(),
        );
        assert_eq!(
            o3.status.code(),
            Some(0),
            "--threads {n}: {:?}",
            text(&o3).1
        );
        assert!(o3.stdout == o.stdout, "--threads {n}: output differs");
    }

    // --invert: exactly the unmatched records, unchanged, in order.
    let o = bin()
        .arg("filter")
        .args(args)
        .arg("--invert")
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let want: Vec<&str> = src
        .iter()
        .enumerate()
        .filter(|(i, _)| !by_line.contains_key(&(i + 1)))
        .map(|(_, l)| *l)
        .collect();
    let got = text(&o).0;
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "--invert is not the complement in order");

    // The CSV rendering of the same events (14 MB, also scanned in parallel chunks): each
    // passed row is the input row plus `,ti_count,...`, with ti_count = hunt's pairs for it.
    let log = d.join("NetworkConnection.csv");
    let o = bin()
        .args(["hunt", "network", "--index", idx_s, "--now", now])
        .args(["--with", "Line", "-q"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o).1);
    let mut by_line: BTreeMap<usize, usize> = BTreeMap::new();
    for l in text(&o).0.lines().skip(1) {
        *by_line
            .entry(l.rsplit(',').next().unwrap().parse().unwrap())
            .or_default() += 1;
    }
    let src = std::fs::read_to_string(&log).unwrap();
    let src: Vec<&str> = src.lines().collect();
    let o = bin()
        .arg("filter")
        .args(args)
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o).1);
    let out = text(&o).0;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), by_line.len() + 1);
    assert!(lines[0].starts_with(&format!("{},ti_count,", src[0])));
    for (l, (n, count)) in lines[1..].iter().zip(&by_line) {
        let rest = l
            .strip_prefix(src[n - 1])
            .and_then(|r| r.strip_prefix(','))
            .unwrap_or_else(|| panic!("line {n}: {l}"));
        assert!(rest.starts_with(&format!("{count},")), "line {n}: {l}");
    }
}

/// A few million records through a pipe in `--annotate-all` mode (output as large as the input,
/// drained as it comes): the peak resident set stays far below the stream size.
#[test]
fn constant_memory_on_a_long_stream() {
    let (_dir, idx) = feed_f_index();
    let idx_len = std::fs::metadata(&idx).unwrap().len();

    // Record i goes to 198.51.(i/256 % 256).(i % 256): one in 256 lies in T2's 198.51.100.0/24
    // (T3's 198.51.100.9 among them, twice annotated but one record).
    const BLOCK: usize = 65_536;
    const REPEAT: usize = 46;
    let mut block = Vec::with_capacity(BLOCK * 120);
    for i in 0..BLOCK {
        writeln!(
            block,
            r#"{{"TimeGenerated":"2024-05-01T00:00:00Z","SourceIP":"10.0.{}.{}","DestinationIP":"198.51.{}.{}","DestinationPort":443}}"#,
            i % 200,
            i % 250,
            (i / 256) % 256,
            i % 256
        )
        .unwrap();
    }
    let total = BLOCK * REPEAT;
    let stream_bytes = block.len() * REPEAT;

    let mut child = spawn_filter(&[
        "network",
        "--index",
        idx.to_str().unwrap(),
        "--annotate-all",
    ]);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let err = slurp(child.stderr.take().unwrap());
    let counter = thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 16, stdout);
        let (mut lines, mut hits) = (0usize, 0usize);
        let mut l = Vec::new();
        loop {
            l.clear();
            if r.read_until(b'\n', &mut l).unwrap() == 0 {
                return (lines, hits);
            }
            lines += 1;
            if !l.ends_with(b",\"ti\":[]}\n") {
                hits += 1;
            }
        }
    });
    // Sample VmRSS and VmHWM while the filter lives.
    let (stop_tx, stop_rx) = channel::<()>();
    let sampler = thread::spawn(move || {
        let (mut rss, mut hwm) = (0u64, 0u64);
        while stop_rx.try_recv().is_err() {
            rss = rss.max(proc_status(pid, "VmRSS:").unwrap_or(0));
            hwm = hwm.max(proc_status(pid, "VmHWM:").unwrap_or(0));
            thread::sleep(Duration::from_millis(20));
        }
        (rss, hwm)
    });
    let t = Instant::now();
    let writer = thread::spawn(move || {
        for _ in 0..REPEAT {
            stdin.write_all(&block).unwrap();
        }
        // Stdin stays open until the peak so far has been read.
        stdin
    });
    let stdin = writer.join().unwrap();
    let hwm_before_eof = proc_status(pid, "VmHWM:").unwrap_or(0);
    drop(stdin);
    let status = wait_for(&mut child, Duration::from_secs(120));
    let elapsed = t.elapsed();
    stop_tx.send(()).unwrap();
    let (rss, hwm) = sampler.join().unwrap();
    let (lines, hits) = counter.join().unwrap();
    let err = err.join().unwrap();
    let peak = hwm.max(rss).max(hwm_before_eof);
    let bound = idx_len + (100 << 20);
    eprintln!(
        "memory: {total} records, {} MB in {elapsed:?}; peak RSS {:.1} MB (VmHWM before EOF {:.1} MB, max sampled VmRSS {:.1} MB), bound {:.1} MB",
        stream_bytes >> 20,
        peak as f64 / 1048576.0,
        hwm_before_eof as f64 / 1048576.0,
        rss as f64 / 1048576.0,
        bound as f64 / 1048576.0
    );
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(lines, total, "{err}");
    assert_eq!(hits, 256 * REPEAT, "{err}");
    assert!(hwm_before_eof > 0, "no /proc/{pid}/status sample");
    assert!(
        peak < bound,
        "peak RSS {peak} bytes over {bound} on a {stream_bytes}-byte stream"
    );
    assert!(
        err.contains(&format!(
            "{total} records read, {} matched, {total} written",
            256 * REPEAT
        )),
        "{err}"
    );
}

/// One record into an idle filter comes out at once, not after a buffer fills; so does a second
/// one after a pause. With and without `--line-buffered`; NDJSON and CSV.
#[test]
fn trickle_latency() {
    let (_dir, idx) = feed_f_index();
    let idx_s = idx.to_str().unwrap();
    let csv_header = "TimeGenerated,SourceIP,DestinationIP,DestinationPort\n";
    let csv_rec = "2024-05-01T00:00:00Z,10.0.0.1,203.0.113.7,443\n";
    let nd = format!("{E1}\n");
    for (name, extra, header, rec) in [
        ("ndjson", None, "", nd.as_str()),
        (
            "ndjson --line-buffered",
            Some("--line-buffered"),
            "",
            nd.as_str(),
        ),
        ("csv", None, csv_header, csv_rec),
        (
            "csv --line-buffered",
            Some("--line-buffered"),
            csv_header,
            csv_rec,
        ),
    ] {
        let mut args = vec!["network", "--index", idx_s];
        args.extend(extra);
        let mut child = spawn_filter(&args);
        let mut stdin = child.stdin.take().unwrap();
        let rx = line_channel(child.stdout.take().unwrap());
        let err = slurp(child.stderr.take().unwrap());
        if !header.is_empty() {
            stdin.write_all(header.as_bytes()).unwrap();
            stdin.flush().unwrap();
            // The annotated header comes out with (or before) the first record; not timed.
        }
        // Let the filter start and go idle.
        thread::sleep(Duration::from_millis(300));
        let mut lat = Vec::new();
        for pause in [0u64, 700, 300] {
            thread::sleep(Duration::from_millis(pause));
            let t = Instant::now();
            stdin.write_all(rec.as_bytes()).unwrap();
            stdin.flush().unwrap();
            let line = loop {
                let (at, l) = rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_else(|_| panic!("{name}: no output 5 s after a record"));
                if !l.starts_with("TimeGenerated,") {
                    break (at.duration_since(t), l);
                }
            };
            assert!(line.1.contains("ind-1"), "{name}: {}", line.1);
            lat.push(line.0);
        }
        drop(stdin);
        let status = wait_for(&mut child, Duration::from_secs(10));
        eprintln!("latency {name}: {lat:?} (first record, after 700 ms idle, after 300 ms idle)");
        assert_eq!(status.code(), Some(0), "{}", err.join().unwrap());
        for (i, l) in lat.iter().enumerate() {
            assert!(
                *l < Duration::from_millis(500),
                "{name}: record {} took {l:?} to come out",
                i + 1
            );
        }
    }
}

/// `filter ... | head -1`: the reader goes away while records keep coming; the filter ends
/// quietly with 0.
#[test]
fn broken_pipe_exits_zero_quietly() {
    let (_dir, idx) = feed_f_index();
    for mode in [None, Some("--annotate-all")] {
        let mut args = vec!["network", "--index", idx.to_str().unwrap()];
        args.extend(mode);
        let mut child = spawn_filter(&args);
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let err = slurp(child.stderr.take().unwrap());
        let chunk: String = [E1, E2, E3]
            .iter()
            .map(|e| format!("{e}\n"))
            .collect::<String>()
            .repeat(500);
        let writer = thread::spawn(move || {
            let t = Instant::now();
            // Until the filter stops reading (EPIPE here) or 20 s.
            while t.elapsed() < Duration::from_secs(20) {
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    return true;
                }
                thread::sleep(Duration::from_millis(1));
            }
            false
        });
        let mut r = BufReader::new(stdout);
        let mut first = String::new();
        r.read_line(&mut first).unwrap();
        assert!(first.contains("\"ti\":["), "{first}");
        drop(r);
        let status = wait_for(&mut child, Duration::from_secs(20));
        let err = err.join().unwrap();
        assert!(
            writer.join().unwrap(),
            "the filter kept reading after its stdout closed"
        );
        assert_eq!(
            status.code(),
            Some(0),
            "{mode:?}: {status:?}, stderr: {err}"
        );
        let low = err.to_lowercase();
        assert!(
            !low.contains("error") && !low.contains("broken pipe") && !low.contains("panic"),
            "{mode:?}: stderr: {err}"
        );
    }
}

/// The writer side of the reload test: record `seq` goes to X (even) or Y (odd), one every 2 ms.
struct Stream {
    stdin: ChildStdin,
    seq: usize,
}

impl Stream {
    fn send(&mut self, n: usize) {
        for _ in 0..n {
            let dst = if self.seq % 2 == 0 {
                "203.0.113.7"
            } else {
                "203.0.113.8"
            };
            let r = format!(
                "{{\"TimeGenerated\":\"2024-05-01T00:00:00Z\",\"seq\":{},\"DestinationIP\":\"{dst}\"}}\n",
                self.seq
            );
            self.stdin.write_all(r.as_bytes()).unwrap();
            self.stdin.flush().unwrap();
            self.seq += 1;
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Streams until stderr says `what` (at most 10 s), then `after` more records.
    fn until(
        &mut self,
        what: &str,
        after: usize,
        errs: &Receiver<(Instant, String)>,
        seen: &mut Vec<String>,
    ) {
        let t = Instant::now();
        loop {
            while let Ok((_, l)) = errs.try_recv() {
                seen.push(l);
            }
            if seen.iter().any(|l| l.contains(what)) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "no {what:?} on stderr: {seen:?}"
            );
            self.send(5);
        }
        self.send(after);
    }
}

/// The index is replaced (atomic rename by `compile`) while records flow at a steady pace, then
/// reloaded again on SIGHUP. Every record comes out once, in order, matched by exactly one
/// index version, with a single switch point; the swaps are logged with the counts.
#[test]
fn hot_reload_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let idx = d.join("live.iocx");
    // A: X = 203.0.113.7 described "A", plus one more (2 indicators).
    // B: X described "B", Y = 203.0.113.8 (new), and one more (3 indicators).
    let a = "\
2024-01-01T00:00:00Z,x,203.0.113.7,,90,A,C2,2099-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,a-other,192.0.2.200,,90,A,C2,2099-01-01T00:00:00Z,true
";
    let b = "\
2024-01-01T00:00:00Z,x,203.0.113.7,,90,B,C2,2099-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,y,203.0.113.8,,90,B,C2,2099-01-01T00:00:00Z,true
2024-01-01T00:00:00Z,b-other,192.0.2.201,,90,B,C2,2099-01-01T00:00:00Z,true
";
    compile_feed(d, "a.csv", a, &idx);
    let mut child = spawn_filter(&[
        "network",
        "--index",
        idx.to_str().unwrap(),
        "--annotate-all",
    ]);
    let pid = child.id();
    let stdin = child.stdin.take().unwrap();
    let out = line_channel(child.stdout.take().unwrap());
    let errs = line_channel(child.stderr.take().unwrap());
    let mut stderr_lines: Vec<String> = Vec::new();

    let mut st = Stream { stdin, seq: 0 };
    st.send(200);
    let swap_at = st.seq;
    compile_feed(d, "b.csv", b, &idx);
    st.until("reloaded: 2 -> 3 indicators", 100, &errs, &mut stderr_lines);
    let hup_at = st.seq;
    send_signal("HUP", pid);
    st.until("reloaded: 3 -> 3 indicators", 100, &errs, &mut stderr_lines);
    let total = st.seq;
    drop(st);
    let status = wait_for(&mut child, Duration::from_secs(10));
    let out: Vec<String> = out.iter().map(|(_, l)| l).collect();
    stderr_lines.extend(errs.iter().map(|(_, l)| l));
    assert_eq!(status.code(), Some(0), "{stderr_lines:?}");

    // Every record once, in order; which version matched it.
    assert_eq!(out.len(), total, "{stderr_lines:?}");
    let mut versions = String::new();
    for (i, l) in out.iter().enumerate() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["seq"], i, "record {i} out of order: {l}");
        let ti = v["ti"].as_array().unwrap();
        let ver = match (i % 2, ti.len()) {
            // X: matched by A or by B, never both, never neither.
            (0, 1) => ti[0]["description"].as_str().unwrap().to_string(),
            // Y: only B has it.
            (1, 0) => "A".into(),
            (1, 1) if ti[0]["id"] == "y" => "B".into(),
            _ => panic!("record {i}: {l}"),
        };
        versions.push_str(&ver);
    }
    let switch = versions.find('B').expect("no record matched by index B");
    eprintln!(
        "reload: {total} records; B written at record {swap_at}, first B match at record {switch}; SIGHUP at {hup_at}"
    );
    assert!(
        switch >= swap_at,
        "B matched record {switch}, before it was compiled at {swap_at}"
    );
    assert!(
        versions[switch..].bytes().all(|c| c == b'B'),
        "an A match after the switch: {versions}"
    );
    assert!(switch < hup_at, "the file replacement alone did not switch");
    let reloads: Vec<&String> = stderr_lines
        .iter()
        .filter(|l| l.contains("reloaded"))
        .collect();
    assert_eq!(reloads.len(), 2, "{stderr_lines:?}");
    assert!(
        reloads[0].contains(idx.to_str().unwrap()),
        "{stderr_lines:?}"
    );
    // Matched: every X record, and the Y records B saw (odd positions from the switch on).
    let matched = total.div_ceil(2) + (switch..total).filter(|i| i % 2 == 1).count();
    assert!(
        stderr_lines.iter().any(|l| l.contains(&format!(
            "{total} records read, {matched} matched, {total} written"
        ))),
        "{stderr_lines:?}"
    );
}

/// Malformed records: line 3 cut short, line 5 not JSON, line 6 an unreadable address, line 7 an
/// unreadable time, line 8 no DestinationIP, line 9 not an object. Lines 1, 4, 10 match X.
#[test]
fn malformed_records_under_each_on_error() {
    let (_dir, idx) = feed_f_index();
    let idx_s = idx.to_str().unwrap();
    let recs = [
        r#"{"TimeGenerated":"2024-05-01T00:00:00Z","SourceIP":"10.0.0.1","DestinationIP":"203.0.113.7"}"#,
        r#"{"TimeGenerated":"2024-05-01T00:00:01Z","SourceIP":"10.0.0.2","DestinationIP":"8.8.8.8"}"#,
        r#"{"TimeGenerated":"2024-05-01T00:00:02Z","SourceIP":"10.0.0.3","Destination"#,
        r#"{"TimeGenerated":"2024-05-01T00:00:03Z","SourceIP":"10.0.0.4","DestinationIP":"203.0.113.7"}"#,
        "not json at all",
        r#"{"TimeGenerated":"2024-05-01T00:00:05Z","SourceIP":"10.0.0.4","DestinationIP":"not-an-ip"}"#,
        r#"{"TimeGenerated":"yesterday","SourceIP":"10.0.0.4","DestinationIP":"203.0.113.7"}"#,
        r#"{"TimeGenerated":"2024-05-01T00:00:07Z","SourceIP":"10.0.0.4"}"#,
        "[1,2]",
        r#"{"TimeGenerated":"2024-05-01T00:00:09Z","SourceIP":"10.0.0.1","DestinationIP":"203.0.113.7"}"#,
    ];
    let input = recs.join("\n") + "\n";
    let good = [0usize, 3, 9];
    let bad = [2usize, 4, 5, 6, 7, 8];

    // skip (the default): dropped, counted by reason.
    for args in [
        vec!["network", "--index", idx_s],
        vec!["network", "--index", idx_s, "--on-error", "skip"],
    ] {
        let o = filter(&args, input.as_bytes());
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        for (l, &g) in lines.iter().zip(&good) {
            assert_eq!(split_ti(l, recs[g]), vec![ti(1, "DestinationIP")]);
        }
        assert!(err.contains(", 6 malformed ("), "{err}");
        assert!(err.contains("3 matched, 3 written"), "{err}");
    }

    // pass: the malformed records unchanged, in their places.
    let o = filter(
        &["network", "--index", idx_s, "--on-error", "pass"],
        input.as_bytes(),
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let want: Vec<usize> = (0..recs.len())
        .filter(|i| good.contains(i) || bad.contains(i))
        .collect();
    assert_eq!(lines.len(), want.len(), "{out}");
    for (l, &i) in lines.iter().zip(&want) {
        if good.contains(&i) {
            assert_eq!(split_ti(l, recs[i]), vec![ti(1, "DestinationIP")]);
        } else {
            assert_eq!(*l, recs[i]);
        }
    }
    assert!(err.contains("3 matched, 9 written, 6 malformed ("), "{err}");
    // With --annotate-all, the valid unmatched record gets `ti:[]`, the malformed ones nothing.
    let o = filter(
        &[
            "network",
            "--index",
            idx_s,
            "--on-error",
            "pass",
            "--annotate-all",
        ],
        input.as_bytes(),
    );
    let (out, _) = text(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    assert!(lines[1].ends_with(r#","ti":[]}"#));
    for &b in &bad {
        assert_eq!(lines[b], recs[b]);
    }

    // fail: exit 2, the message names line 3 (the first malformed one).
    let o = filter(
        &["network", "--index", idx_s, "--on-error", "fail"],
        input.as_bytes(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("error"), "{err}");
    // Malformed CSV rows (a short row) under fail too: the line named is the file's line.
    let csv_in = "TimeGenerated,SourceIP,DestinationIP\n2024-05-01T00:00:00Z,10.0.0.1,203.0.113.7\n2024-05-01T00:00:01Z,10.0.0.2,not-an-ip\n";
    let o = filter(
        &["network", "--index", idx_s, "--on-error", "fail"],
        csv_in.as_bytes(),
    );
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

/// SIGTERM on a running filter (stdin still open): the summary on stderr, and the exit status
/// documented in `filter --help` for a processed stream, 0.
#[test]
fn sigterm_prints_the_summary() {
    let (_dir, idx) = feed_f_index();
    let mut child = spawn_filter(&["network", "--index", idx.to_str().unwrap()]);
    let mut stdin = child.stdin.take().unwrap();
    let rx = line_channel(child.stdout.take().unwrap());
    let err = slurp(child.stderr.take().unwrap());
    stdin
        .write_all(format!("{E1}\n{E2}\n{E3}\n").as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            rx.recv_timeout(Duration::from_secs(5))
                .expect("matches before SIGTERM")
                .1,
        );
    }
    send_signal("TERM", child.id());
    let t = Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(10));
    let took = t.elapsed();
    drop(stdin);
    let err = err.join().unwrap();
    eprintln!("sigterm: exited {status:?} {took:?} after the signal; stderr: {err}");
    assert_eq!(status.code(), Some(0), "{status:?}, stderr: {err}");
    assert!(
        err.contains("iocmatch filter: 3 records read, 2 matched, 2 written"),
        "{err}"
    );
    assert!(
        got[0].contains("ind-1") && got[1].contains("ind-3"),
        "{got:?}"
    );
    let help = bin().args(["filter", "--help"]).output().unwrap();
    assert!(text(&help)
        .0
        .contains("Exit status: 0 when the stream was processed"));
}

/// Records longer than the record limit (1 MiB), than the reader's block headroom (1 MiB) and
/// than a whole block (8 MiB), between ordinary ones: under each `--on-error` they are
/// dropped, passed unchanged, or stop the stream at their line, like any malformed record;
/// every other record comes back whole, in order, annotated.
#[test]
fn records_longer_than_a_block() {
    let (_dir, idx) = feed_f_index();
    let idx_s = idx.to_str().unwrap();
    let rec = |i: usize, dst: &str, pad: usize| {
        format!(
            r#"{{"TimeGenerated":"2024-05-01T00:00:{:02}Z","SourceIP":"10.0.0.{i}","DestinationIP":"{dst}","Pad":"{}"}}"#,
            i % 60,
            "x".repeat(pad)
        )
    };
    let long = |i: usize| i % 10 == 4 || i % 10 == 7;
    let mut recs = Vec::new();
    for i in 0..40 {
        let dst = if i % 3 == 0 { "203.0.113.7" } else { "8.8.8.8" };
        let pad = match i % 10 {
            4 => 3 << 20,  // longer than the limit and the headroom
            7 => 9 << 20,  // longer than a block
            _ => i * 1000, // ordinary
        };
        recs.push(rec(i, dst, pad));
    }
    let input = recs.join("\n") + "\n";
    let want_ti = |i: usize| {
        if i % 3 == 0 {
            vec![ti(1, "DestinationIP")]
        } else {
            vec![]
        }
    };

    let run = |on_error: &str| {
        let args = [
            "network",
            "--index",
            idx_s,
            "--annotate-all",
            "--on-error",
            on_error,
        ];
        filter(&args, input.as_bytes())
    };

    // skip (the default): the long records are dropped and counted.
    let o = run("skip");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let kept: Vec<usize> = (0..recs.len()).filter(|&i| !long(i)).collect();
    assert_eq!(lines.len(), kept.len(), "{err}");
    for (l, &i) in lines.iter().zip(&kept) {
        assert_eq!(split_ti(l, &recs[i]), want_ti(i), "record {i}");
    }
    assert!(
        err.contains(
            "40 records read, 12 matched, 32 written, 8 malformed (8 record longer than 1 MiB)"
        ),
        "{err}"
    );

    // pass: the long records unchanged, in their places.
    let o = run("pass");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), recs.len(), "{err}");
    for (i, (l, r)) in lines.iter().zip(&recs).enumerate() {
        if long(i) {
            assert!(*l == r.as_str(), "record {i} not passed unchanged");
        } else {
            assert_eq!(split_ti(l, r), want_ti(i), "record {i}");
        }
    }
    assert!(
        err.contains("40 records read, 12 matched, 40 written"),
        "{err}"
    );

    // fail: the records before the first long one, then an error naming its line.
    let o = run("fail");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(out.lines().count(), 4, "{err}");
    assert!(err.contains("line 5: record longer than 1 MiB"), "{err}");
}

/// A record that never seems to end (256 MiB without a newline) is dropped as it streams
/// through, not held: memory stays bounded, and the records after it are matched.
#[test]
fn endless_record_keeps_memory_bounded() {
    let (_dir, idx) = feed_f_index();
    let idx_len = std::fs::metadata(&idx).unwrap().len();
    let hit = r#"{"TimeGenerated":"2024-05-01T00:00:00Z","SourceIP":"10.0.0.1","DestinationIP":"203.0.113.7"}"#;
    let mut child = spawn_filter(&["network", "--index", idx.to_str().unwrap()]);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let out = slurp(child.stdout.take().unwrap());
    let err = slurp(child.stderr.take().unwrap());
    const MIB: usize = 1 << 20;
    let writer = thread::spawn(move || {
        writeln!(stdin, "{hit}").unwrap();
        stdin
            .write_all(br#"{"TimeGenerated":"2024-05-01T00:00:00Z","Pad":""#)
            .unwrap();
        let pad = vec![b'x'; MIB];
        for _ in 0..256 {
            stdin.write_all(&pad).unwrap();
        }
        stdin.write_all(b"\"}\n").unwrap();
        writeln!(stdin, "{hit}").unwrap();
        stdin.flush().unwrap();
        stdin
    });
    let stdin = writer.join().unwrap();
    let hwm = proc_status(pid, "VmHWM:").unwrap_or(0);
    drop(stdin);
    let status = wait_for(&mut child, Duration::from_secs(60));
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert_eq!(status.code(), Some(0), "{err}");
    let bound = idx_len as usize + 100 * MIB;
    assert!(hwm > 0, "no /proc/{pid}/status sample");
    assert!(
        (hwm as usize) < bound,
        "peak RSS {hwm} bytes over {bound} with a 256 MiB record"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    for l in lines {
        assert_eq!(split_ti(l, hit), vec![ti(1, "DestinationIP")]);
    }
    assert!(
        err.contains(
            "3 records read, 2 matched, 2 written, 1 malformed (1 record longer than 1 MiB)"
        ),
        "{err}"
    );
}

/// CSV: a record whose quoted field holds newlines and runs past the record limit. The quote
/// parity is followed through it, so under `pass` it comes back byte for byte, and the rows
/// after it, including rows with quoted newlines of their own, are matched as before.
#[test]
fn csv_record_longer_than_the_limit_with_quoted_newlines() {
    let (_dir, idx) = feed_f_index();
    let idx_s = idx.to_str().unwrap();
    let header = "TimeGenerated,SourceIP,DestinationIP,Note";
    let hit = "2024-05-01T00:00:00Z,10.0.0.1,203.0.113.7,plain";
    let quoted_hit = "2024-05-01T00:00:01Z,10.0.0.2,203.0.113.7,\"two\nlines, \"\"quoted\"\"\"";
    let miss = "2024-05-01T00:00:02Z,10.0.0.3,8.8.8.8,x";
    // 3 MiB of text with a newline every 1000 bytes, inside quotes (and a doubled quote).
    let mut note = String::from("\"start \"\" ");
    for _ in 0..3 * 1024 {
        note.push_str(&"y".repeat(999));
        note.push('\n');
    }
    note.push('"');
    let long = format!("2024-05-01T00:00:03Z,10.0.0.4,203.0.113.7,{note}");
    let input = [header, hit, long.as_str(), quoted_hit, miss, hit].join("\n") + "\n";
    // Fed in three parts with pauses, so that the filter sees the long record's start, over
    // the limit and unfinished, before the rest of it.
    let cut1 = input.find(&long).unwrap() + 1536 * 1024;
    let cut2 = cut1 + 1024 * 1024;
    let run = |on_error: &str| {
        let mut child = spawn_filter(&["network", "--index", idx_s, "--on-error", on_error]);
        let mut stdin = child.stdin.take().unwrap();
        let out = slurp(child.stdout.take().unwrap());
        let err = slurp(child.stderr.take().unwrap());
        for part in [&input[..cut1], &input[cut1..cut2], &input[cut2..]] {
            stdin.write_all(part.as_bytes()).unwrap();
            stdin.flush().unwrap();
            thread::sleep(Duration::from_millis(150));
        }
        drop(stdin);
        let status = wait_for(&mut child, Duration::from_secs(30));
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert_eq!(status.code(), Some(0), "{on_error}: {err}");
        (out, err)
    };
    let head = format!(
        "{header},ti_count,ti_value,ti_kind,ti_confidence,ti_threat_type,ti_description,ti_id,ti_expiration,ti_field\n"
    );
    let annotated = |row: &str| {
        format!(
            "{row},1,203.0.113.7,ipv4,90,C2,C2 server,ind-1,2099-01-01T00:00:00Z,DestinationIP\n"
        )
    };
    let (out, err) = run("skip");
    let want = [
        head.clone(),
        annotated(hit),
        annotated(quoted_hit),
        annotated(hit),
    ]
    .concat();
    assert!(out == want, "skip: {out:.400}");
    assert!(
        err.contains("5 records read, 3 matched, 3 written, 1 malformed"),
        "{err}"
    );
    let (out, err) = run("pass");
    let want = [
        head,
        annotated(hit),
        format!("{long}\n"),
        annotated(quoted_hit),
        annotated(hit),
    ]
    .concat();
    assert!(out == want, "pass: {out:.400}");
    assert!(
        err.contains("5 records read, 3 matched, 4 written, 1 malformed"),
        "{err}"
    );
}

/// NDJSON has no header: a first record longer than a record may be (here 3 MiB) is dropped
/// and counted like any other, not taken for a stream that is not NDJSON; the hunt reads the
/// same file the same way.
#[test]
fn a_first_ndjson_record_longer_than_the_limit_is_skipped() {
    let (dir, idx) = feed_f_index();
    let idx_s = idx.to_str().unwrap();
    let input = format!(
        "{{\"TimeGenerated\":\"2024-05-01T00:00:00Z\",\"SourceIP\":\"10.0.0.0\",\"DestinationIP\":\"203.0.113.7\",\"Pad\":\"{}\"}}\n\
         {{\"TimeGenerated\":\"2024-05-01T00:00:01Z\",\"SourceIP\":\"10.0.0.1\",\"DestinationIP\":\"203.0.113.7\"}}\n",
        "x".repeat(3 << 20)
    );
    let o = filter(&["network", "--index", idx_s], input.as_bytes());
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains(r#""SourceIP":"10.0.0.1""#), "{out}");
    assert!(err.contains("1 record longer than 1 MiB"), "{err}");
    let log = dir.path().join("long-first.ndjson");
    std::fs::write(&log, &input).unwrap();
    let o = bin()
        .args(["hunt", "network", "--index", idx_s, "--with", "Line"])
        .arg(&log)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().nth(1).unwrap().ends_with(",2"), "{out}");
    assert!(
        err.contains("1 record longer than 1 MiB; first at line 1"),
        "{err}"
    );
}
