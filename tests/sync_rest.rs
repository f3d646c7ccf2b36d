//! `iocmatch sync rest` against a small HTTP server written here (std `TcpListener` on a
//! thread): cursor and next-link pagination, `limit`, the bearer token, a 429 with
//! `Retry-After: 1`, 401, malformed and truncated pages, and `--every` with a failing poll.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "rest-t0ken-5ecr3t-value";

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Req {
    path: String,
    query: HashMap<String, String>,
    authorization: String,
}

/// What the handler answers: status, extra headers, body, and the Content-Length to claim
/// (`None`: the body's length).
struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    claimed_len: Option<usize>,
}

fn ok(body: String) -> Resp {
    Resp {
        status: 200,
        headers: vec![],
        body,
        claimed_len: None,
    }
}

fn status(code: u16, body: &str) -> Resp {
    Resp {
        status: code,
        headers: vec![],
        body: body.into(),
        claimed_len: None,
    }
}

type Handler = Box<dyn FnMut(&Req) -> Resp + Send>;

/// Serves on 127.0.0.1 (free port) until the test process ends; returns the base URL and the
/// request log.
fn serve(handler: Handler) -> (String, Arc<Mutex<Vec<Req>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = Arc::clone(&log);
    let handler = Arc::new(Mutex::new(handler));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut authorization = String::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") {
                        authorization = v.trim().to_string();
                    }
                }
            }
            let (path, q) = target.split_once('?').unwrap_or((&target, ""));
            let query = url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect();
            let req = Req {
                path: path.to_string(),
                query,
                authorization,
            };
            log2.lock().unwrap().push(req.clone());
            let resp = (handler.lock().unwrap())(&req);
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                resp.status,
                resp.claimed_len.unwrap_or(resp.body.len())
            );
            for (k, v) in &resp.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(resp.body.as_bytes());
            let _ = stream.flush();
        }
    });
    (format!("http://127.0.0.1:{port}/api/v1/iocs"), log)
}

/// A feed of `n` IPv4 IOCs served with a cursor, checking the token and the limit.
fn cursor_feed(n: usize) -> impl FnMut(&Req) -> Resp + Send {
    move |req: &Req| {
        if req.authorization != format!("Bearer {TOKEN}") {
            return status(
                401,
                &format!(
                    "{{\"error\":\"invalid token {}\"}}",
                    req.authorization.trim_start_matches("Bearer ")
                ),
            );
        }
        let limit: usize = req
            .query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100);
        let start: usize = req
            .query
            .get("cursor")
            .and_then(|c| c.strip_prefix("c").and_then(|c| c.parse().ok()))
            .unwrap_or(0);
        let end = (start + limit).min(n);
        let data: Vec<String> = (start..end)
            .map(|i| {
                format!(
                    r#"{{"id":"ioc-{i}","type":"ipv4","value":"198.51.100.{}","confidence":80,"first_seen":"2026-01-01T00:00:00Z"}}"#,
                    i + 1
                )
            })
            .collect();
        let next = if end < n {
            format!("\"c{end}\"")
        } else {
            "null".into()
        };
        ok(format!(
            r#"{{"data":[{}],"meta":{{"next_cursor":{next},"count":{}}}}}"#,
            data.join(","),
            end - start
        ))
    }
}

fn sync(url: &str, out: &Path, extra: &[&str], key: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iocmatch"));
    c.args(["sync", "rest", "--url", url, "--out"])
        .arg(out)
        .args(extra)
        .env_remove("IOCMATCH_API_KEY")
        .stdin(Stdio::null());
    if let Some(k) = key {
        c.env("IOCMATCH_API_KEY", k);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn count_ips(index: &Path, prefix: &str, n: usize) -> usize {
    let idx = iocmatch::Index::open(index).unwrap();
    (1..=n)
        .filter(|i| {
            !idx.lookup_ip(format!("{prefix}{i}").parse().unwrap())
                .unwrap()
                .is_empty()
        })
        .count()
}

#[test]
fn cursor_pagination_limit_and_a_429_retry() {
    let mut feed = cursor_feed(5);
    let mut throttled = false;
    let (url, log) = serve(Box::new(move |req: &Req| {
        // The second page is refused once with a 429.
        if req.query.get("cursor").map(String::as_str) == Some("c2") && !throttled {
            throttled = true;
            let mut r = status(429, r#"{"error":"slow down"}"#);
            r.headers.push(("Retry-After", "1".into()));
            return r;
        }
        feed(req)
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rest.iocx");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, TOKEN).unwrap();
    let started = Instant::now();
    let o = sync(
        &url,
        &out,
        &[
            "--type",
            "ipv4",
            "--limit",
            "2",
            "--key-file",
            key_file.to_str().unwrap(),
            "-v",
        ],
        None,
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 honoured"
    );
    assert!(err.contains("HTTP 429"), "{err}");
    assert!(err.contains("retrying in 1.0 s"), "{err}");
    assert!(err.contains("3 pages, 5 received"), "{err}");
    assert!(!err.contains(TOKEN), "the key leaked: {err}");
    let reqs = log.lock().unwrap().clone();
    assert_eq!(reqs.len(), 4, "3 pages + 1 retry: {reqs:?}");
    for r in &reqs {
        assert_eq!(r.path, "/api/v1/iocs");
        assert_eq!(r.query.get("type").map(String::as_str), Some("ipv4"));
        assert_eq!(r.query.get("limit").map(String::as_str), Some("2"));
        assert_eq!(r.authorization, format!("Bearer {TOKEN}"));
    }
    let cursors: Vec<Option<&str>> = reqs
        .iter()
        .map(|r| r.query.get("cursor").map(String::as_str))
        .collect();
    assert_eq!(cursors, [None, Some("c2"), Some("c2"), Some("c4")]);
    assert_eq!(count_ips(&out, "198.51.100.", 5), 5);
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 5);

    // A second pull replaces the source (no duplicates).
    let o = sync(&url, &out, &["--type", "ipv4", "--limit", "3"], Some(TOKEN));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 pages, 5 received"), "{}", stderr(&o));
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 5);
}

#[test]
fn next_links_and_several_types() {
    let (url, log) = serve(Box::new(|req: &Req| {
        let ty = req.query.get("type").cloned().unwrap_or_default();
        let page: u32 = req
            .query
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let body = match (ty.as_str(), page) {
            ("ipv4", 1) => r#"{"data":[{"type":"ipv4","value":"203.0.113.1"}],"links":{"next":"/api/v1/iocs?type=ipv4&limit=1&page=2"}}"#.to_string(),
            ("ipv4", 2) => r#"{"data":[{"type":"ipv4","value":"203.0.113.2"}],"links":{"next":null}}"#.to_string(),
            ("domain", _) => r#"{"data":[{"type":"domain","value":"bad.example"}],"has_more":false,"next":"ignored"}"#.to_string(),
            _ => return status(404, "no such type"),
        };
        ok(body)
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rest.iocx");
    let o = sync(
        &url,
        &out,
        &["--type", "ipv4", "--type", "domain", "--limit", "1"],
        Some(TOKEN),
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let idx = iocmatch::Index::open(&out).unwrap();
    assert_eq!(idx.len(), 3);
    assert!(!idx.lookup_domain("bad.example", false).unwrap().is_empty());
    assert!(!idx
        .lookup_ip("203.0.113.2".parse().unwrap())
        .unwrap()
        .is_empty());
    assert_eq!(log.lock().unwrap().len(), 3);

    // A next link to another origin is not followed with the key.
    let (evil, _) = serve(Box::new(|_req: &Req| {
        ok(r#"{"data":[],"next":"http://127.0.0.2:9/steal"}"#.into())
    }));
    let o = sync(&evil, &out, &[], Some(TOKEN));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("refusing to send the API key"), "{err}");
}

#[test]
fn bad_token_malformed_and_truncated_pages_keep_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rest.iocx");
    let store = dir.path().join("rest.iocx.store.jsonl");
    let (url, _) = serve(Box::new(cursor_feed(3)));
    let o = sync(&url, &out, &["--type", "ipv4"], Some(TOKEN));
    assert!(o.status.success(), "{}", stderr(&o));
    let (index_before, store_before) =
        (std::fs::read(&out).unwrap(), std::fs::read(&store).unwrap());
    let unchanged = || {
        assert_eq!(std::fs::read(&out).unwrap(), index_before);
        assert_eq!(std::fs::read(&store).unwrap(), store_before);
    };

    // Wrong token: the server echoes it back; it must not reach the output.
    let wrong = "wrong-t0ken-never-print-me";
    let o = sync(&url, &out, &["--type", "ipv4"], Some(wrong));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains("invalid token ***"), "{err}");
    assert!(!err.contains(wrong), "the key leaked: {err}");
    unchanged();

    // Page 2 is malformed JSON.
    let mut feed = cursor_feed(3);
    let (bad, _) = serve(Box::new(move |req: &Req| {
        if req.query.contains_key("cursor") {
            ok(r#"{"data":[{"type":"ipv4","value":"198.51.100.9"},]}"#.into())
        } else {
            feed(req)
        }
    }));
    let o = sync(&bad, &out, &["--type", "ipv4", "--limit", "2"], Some(TOKEN));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("malformed JSON"), "{err}");
    assert!(err.contains("cursor=c2"), "names the page: {err}");
    unchanged();

    // Page 2 is cut short: valid length, JSON that stops in the middle.
    let mut feed = cursor_feed(3);
    let (cut, _) = serve(Box::new(move |req: &Req| {
        if req.query.contains_key("cursor") {
            ok(r#"{"data":[{"type":"ipv4","val"#.into())
        } else {
            feed(req)
        }
    }));
    let o = sync(&cut, &out, &["--type", "ipv4", "--limit", "2"], Some(TOKEN));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cut short"), "{err}");
    unchanged();

    // The connection closes before Content-Length bytes: retried, then a clear error.
    let (short, log) = serve(Box::new(|_req: &Req| Resp {
        status: 200,
        headers: vec![],
        body: r#"{"data":[{"type":"ipv4","#.into(),
        claimed_len: Some(500),
    }));
    let o = sync(
        &short,
        &out,
        &["--retries", "1", "--retry-wait", "50ms"],
        Some(TOKEN),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("response cut short"), "{err}");
    assert_eq!(log.lock().unwrap().len(), 2, "one retry");
    unchanged();

    // An error document with status 200 is not a feed page.
    let (doc, _) = serve(Box::new(|_req: &Req| {
        ok(r#"{"error":"quota exceeded"}"#.into())
    }));
    let o = sync(&doc, &out, &[], Some(TOKEN));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not a REST feed page"), "{err}");
    unchanged();

    // A server error that persists: retried, then exit 2.
    let (down, log) = serve(Box::new(|_req: &Req| status(503, "maintenance")));
    let o = sync(
        &down,
        &out,
        &["--retries", "2", "--retry-wait", "10ms"],
        Some(TOKEN),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("HTTP 503"), "{err}");
    assert_eq!(log.lock().unwrap().len(), 3);
    unchanged();

    // Nothing listening: connection refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = sync(
        &format!("http://127.0.0.1:{port}/x"),
        &out,
        &["--retries", "0"],
        Some(TOKEN),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    unchanged();
}

#[test]
fn every_keeps_polling_through_a_failure_and_stops_on_sigterm() {
    let mut feed = cursor_feed(2);
    let mut calls = 0;
    let (url, log) = serve(Box::new(move |req: &Req| {
        calls += 1;
        // The second poll fails.
        if calls == 2 {
            return status(500, "boom");
        }
        feed(req)
    }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rest.iocx");
    let child = Command::new(env!("CARGO_BIN_EXE_iocmatch"))
        .args([
            "sync",
            "rest",
            "--url",
            &url,
            "--every",
            "1s",
            "--retries",
            "0",
            "--out",
        ])
        .arg(&out)
        .env("IOCMATCH_API_KEY", TOKEN)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "polls did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(err.contains("kept the previous index"), "{err}");
    assert!(
        err.contains("stopped after 2 successful and 1 failed polls"),
        "{err}"
    );
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 2);
}
