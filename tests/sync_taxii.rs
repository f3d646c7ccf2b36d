//! `iocmatch sync taxii` against OASIS's reference TAXII 2.1 server, medallion (PyPI), started
//! on 127.0.0.1 by this harness with a generated data file: a collection with more objects than
//! one page, several versions of one indicator, a revoked indicator, a non-indicator object and
//! basic auth (`apikey` / KEY).
//!
//! Runs only with `IOCMATCH_TAXII_TEST=1` (`.ci/run` sets it). medallion is installed into a
//! virtual environment under the target directory (`target/medallion-venv`) when missing;
//! `IOCMATCH_MEDALLION=/path/to/medallion` uses an installed one instead.

use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The medallion version these tests were written against, with the versions of the
/// dependencies it was tested with.
const MEDALLION_PINS: &[&str] = &[
    "medallion==3.0.0",
    "Flask==3.1.3",
    "Werkzeug==3.1.9",
    "Flask-HTTPAuth==4.8.1",
];
const KEY: &str = "k3y-7f1c0ffee-not-a-real-secret";
const COLL: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
const PAGE: usize = 2;

fn enabled() -> bool {
    if std::env::var("IOCMATCH_TAXII_TEST").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipping the medallion TAXII tests: set IOCMATCH_TAXII_TEST=1 to run them \
         (they create a Python venv with medallion under the target directory)"
    );
    false
}

/// The medallion executable, installed once per test binary.
fn medallion_exe() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Ok(p) = std::env::var("IOCMATCH_MEDALLION") {
            return PathBuf::from(p);
        }
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .to_path_buf();
        let venv = target.join("medallion-venv");
        let exe = venv.join("bin").join("medallion");
        let pip = venv.join("bin").join("pip");
        if !exe.exists() {
            let st = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .expect("python3 -m venv");
            assert!(st.success(), "python3 -m venv failed");
            let st = Command::new(&pip)
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(MEDALLION_PINS)
                .status()
                .expect("pip install medallion");
            assert!(st.success(), "pip install {MEDALLION_PINS:?} failed");
        }
        exe
    })
    .clone()
}

fn indicator(id: u32, modified: &str, pattern: &str, extra: Value) -> Value {
    let mut o = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{id:012}"),
        "created": "2025-01-01T00:00:00.000Z",
        "modified": modified,
        "name": format!("fixture {id}"),
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00Z",
        "indicator_types": ["malicious-activity"]
    });
    if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
        o.extend(extra);
    }
    o
}

fn ip(id: u32, modified: &str, addr: &str) -> Value {
    indicator(
        id,
        modified,
        &format!("[ipv4-addr:value = '{addr}']"),
        json!({}),
    )
}

/// The fixture objects, each with the date_added medallion's manifest gives it.
fn fixture_objects() -> Vec<(Value, String)> {
    let mut v = Vec::new();
    let mut day = 0;
    let mut add = |o: Value| {
        day += 1;
        v.push((o, format!("2025-02-{day:02}T00:00:00.000000Z")));
    };
    // Ten plain IPv4 indicators (TEST-NET-3).
    for i in 1..=10 {
        add(ip(i, "2025-01-01T00:00:00.000Z", &format!("203.0.113.{i}")));
    }
    // Indicator 20 in three versions; the last one points at 198.51.100.3.
    add(ip(20, "2025-01-01T00:00:00.000Z", "198.51.100.1"));
    add(ip(20, "2025-01-05T00:00:00.000Z", "198.51.100.2"));
    add(ip(20, "2025-01-09T00:00:00.000Z", "198.51.100.3"));
    // Indicator 30: live, then revoked.
    add(ip(30, "2025-01-01T00:00:00.000Z", "192.0.2.30"));
    add(indicator(
        30,
        "2025-01-03T00:00:00.000Z",
        "[ipv4-addr:value = '192.0.2.30']",
        json!({"revoked": true}),
    ));
    // A domain indicator and an object that is not an indicator.
    add(indicator(
        40,
        "2025-01-01T00:00:00.000Z",
        "[domain-name:value = 'c2.evil.example']",
        json!({}),
    ));
    add(json!({
        "type": "malware", "spec_version": "2.1",
        "id": "malware--00000000-0000-4000-8000-000000000099",
        "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
        "name": "fixture malware", "is_family": false
    }));
    v
}

struct Medallion {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Medallion {
    fn start() -> Medallion {
        let exe = medallion_exe();
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = format!("http://127.0.0.1:{port}/api1/");
        let (objects, manifest): (Vec<Value>, Vec<Value>) = fixture_objects()
            .into_iter()
            .map(|(o, added)| {
                let m = json!({
                    "id": o["id"], "date_added": added, "version": o["modified"],
                    "media_type": "application/stix+json;version=2.1"
                });
                (o, m)
            })
            .unzip();
        let data = json!({
            "/discovery": {
                "title": "iocmatch test server",
                "default": root,
                "api_roots": [root]
            },
            "api1": {
                "information": {
                    "title": "Indicators",
                    "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": 9765625
                },
                "status": [],
                "collections": [{
                    "id": COLL,
                    "title": "ips",
                    "description": "fixture collection",
                    "can_read": true,
                    "can_write": true,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest
                }]
            }
        });
        let data_path = dir.path().join("data.json");
        std::fs::write(&data_path, serde_json::to_vec_pretty(&data).unwrap()).unwrap();
        let config = json!({
            "backend": {
                "module": "medallion.backends.memory_backend",
                "module_class": "MemoryBackend",
                "filename": data_path
            },
            "users": {"apikey": KEY},
            "taxii": {"max_page_size": PAGE}
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
        let log = std::fs::File::create(dir.path().join("medallion.log")).unwrap();
        let child = Command::new(&exe)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
        let m = Medallion {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "medallion did not start: {}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    fn root(&self) -> String {
        format!("http://127.0.0.1:{}/api1/", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("medallion.log")).unwrap_or_default()
    }

    /// Adds objects through the TAXII objects endpoint (POST), as a producer would.
    fn post(&self, objects: &[Value]) {
        let url = format!("{}collections/{COLL}/objects/", self.root());
        let body = serde_json::to_string(&json!({ "objects": objects })).unwrap();
        let auth = format!("Basic {}", b64(&format!("apikey:{KEY}")));
        let resp = ureq::post(&url)
            .set("Accept", "application/taxii+json;version=2.1")
            .set("Content-Type", "application/taxii+json;version=2.1")
            .set("Authorization", &auth)
            .send_string(&body)
            .unwrap_or_else(|e| panic!("POST {url}: {e}\n{}", self.log()));
        let status: Value = serde_json::from_str(&resp.into_string().unwrap()).unwrap();
        assert_eq!(
            status["success_count"].as_u64(),
            Some(objects.len() as u64),
            "{status}"
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Medallion {
    fn drop(&mut self) {
        self.kill();
    }
}

fn b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sync(args: &[&str], key_file: Option<&Path>, env_key: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iocmatch"));
    c.arg("sync").arg("taxii").args(args);
    c.env_remove("IOCMATCH_API_KEY");
    if let Some(k) = key_file {
        c.arg("--key-file").arg(k);
    }
    if let Some(k) = env_key {
        c.env("IOCMATCH_API_KEY", k);
    }
    c.stdin(Stdio::null()).output().unwrap()
}

/// `iocmatch sync taxii --api-root ROOT --collection COLLECTION --out OUT EXTRA...`.
fn pull(
    root: &str,
    collection: &str,
    out: &Path,
    extra: &[&str],
    key_file: Option<&Path>,
    env_key: Option<&str>,
) -> Output {
    let out = out.to_str().unwrap();
    let mut args = vec!["--api-root", root, "--collection", collection, "--out", out];
    args.extend_from_slice(extra);
    sync(&args, key_file, env_key)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ips(index: &Path, addr: &str) -> Vec<String> {
    let idx = iocmatch::Index::open(index).unwrap();
    idx.lookup_ip(addr.parse().unwrap())
        .unwrap()
        .iter()
        .map(|r| r.value().to_string())
        .collect()
}

fn has_domain(index: &Path, name: &str) -> bool {
    let idx = iocmatch::Index::open(index).unwrap();
    !idx.lookup_domain(name, false).unwrap().is_empty()
}

fn checkpoint(store: &Path) -> String {
    let text = std::fs::read_to_string(store).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let sources = header["sources"].as_object().unwrap();
    assert_eq!(sources.len(), 1, "{header}");
    sources.values().next().unwrap()["checkpoint"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn first_pull_then_incremental_pull() {
    if !enabled() {
        return;
    }
    let mut server = Medallion::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("taxii.iocx");
    let store = dir.path().join("taxii.iocx.store.jsonl");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let root = server.root();

    // Discovery lists the collection.
    let o = sync(
        &[
            "--discovery",
            &format!("http://127.0.0.1:{}/taxii2/", server.port),
            "--list-collections",
        ],
        Some(&key_file),
        None,
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), server.log());
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains(COLL) && listing.contains("ips"),
        "{listing}"
    );

    // First pull: 10 + 1 (newest of 3 versions) + 1 revoked + 1 domain indicators, and the
    // malware object filtered out by match[type]; page size 2 on the server.
    let o = pull(&root, "ips", &out, &["-v"], Some(&key_file), None);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}\n{}", server.log());
    assert!(!err.contains(KEY), "the key leaked: {err}");
    assert!(
        err.contains("page 7: 1 items"),
        "13 objects in pages of 2: {err}"
    );
    assert!(!err.contains("page 8"), "{err}");
    assert!(
        err.contains("13 received (12 new, 0 updated, 0 unchanged, 1 revoked"),
        "{err}"
    );
    for i in 1..=10 {
        let a = format!("203.0.113.{i}");
        assert_eq!(ips(&out, &a), [a]);
    }
    assert_eq!(ips(&out, "198.51.100.3"), ["198.51.100.3"]);
    assert!(ips(&out, "198.51.100.1").is_empty(), "older version");
    assert!(ips(&out, "198.51.100.2").is_empty(), "older version");
    assert!(ips(&out, "192.0.2.30").is_empty(), "revoked");
    assert!(has_domain(&out, "c2.evil.example"));
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 12);
    let first_checkpoint = checkpoint(&store);
    assert_eq!(
        first_checkpoint, "2025-02-16T00:00:00.000000Z",
        "date_added of the newest object returned"
    );

    // New objects arrive: a new indicator, a newer version of 20, an older version of 1 (must
    // not win), a revocation of 2.
    server.post(&[
        ip(50, "2025-03-01T00:00:00.000Z", "203.0.113.50"),
        ip(20, "2025-03-01T00:00:00.000Z", "198.51.100.4"),
        ip(1, "2024-12-01T00:00:00.000Z", "203.0.113.201"),
        indicator(
            2,
            "2025-03-01T00:00:00.000Z",
            "[ipv4-addr:value = '203.0.113.2']",
            json!({"revoked": true}),
        ),
    ]);

    // Incremental pull, with the key from the environment this time.
    let o = pull(&root, COLL, &out, &[], None, Some(KEY));
    let err = stderr(&o);
    assert!(o.status.success(), "{err}\n{}", server.log());
    assert!(
        err.contains(&format!("objects added after {first_checkpoint}")),
        "incremental pull must send added_after: {err}"
    );
    assert!(
        err.contains("4 received (1 new, 1 updated, 1 unchanged, 1 revoked"),
        "only the new objects: {err}"
    );
    assert!(server.log().contains("added_after="), "{}", server.log());
    assert_eq!(ips(&out, "203.0.113.50"), ["203.0.113.50"]);
    assert_eq!(ips(&out, "198.51.100.4"), ["198.51.100.4"]);
    assert!(ips(&out, "198.51.100.3").is_empty(), "superseded");
    assert_eq!(
        ips(&out, "203.0.113.1"),
        ["203.0.113.1"],
        "newer version kept"
    );
    assert!(
        ips(&out, "203.0.113.201").is_empty(),
        "older version ignored"
    );
    assert!(ips(&out, "203.0.113.2").is_empty(), "revoked");
    assert_eq!(
        ips(&out, "203.0.113.9"),
        ["203.0.113.9"],
        "old objects kept"
    );
    assert!(has_domain(&out, "c2.evil.example"));
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 12);
    let second_checkpoint = checkpoint(&store);
    assert!(second_checkpoint > first_checkpoint, "{second_checkpoint}");

    // Nothing new: an empty incremental page, index unchanged in content.
    let o = pull(&root, COLL, &out, &[], Some(&key_file), None);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 pages, 0 received"), "{err}");
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 12);
    assert_eq!(checkpoint(&store), second_checkpoint);

    // The import window: --max-age 30d on a fresh index sees only what was added today.
    let recent = dir.path().join("recent.iocx");
    let o = pull(
        &root,
        COLL,
        &recent,
        &["--max-age", "30d"],
        Some(&key_file),
        None,
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(ips(&recent, "203.0.113.50"), ["203.0.113.50"]);
    assert_eq!(ips(&recent, "198.51.100.4"), ["198.51.100.4"]);
    assert_eq!(
        ips(&recent, "203.0.113.201"),
        ["203.0.113.201"],
        "new to this store"
    );
    assert!(
        ips(&recent, "203.0.113.9").is_empty(),
        "added before the window"
    );
    assert_eq!(iocmatch::Index::open(&recent).unwrap().len(), 3, "{err}");

    // --full pulls everything again and gives the same index content.
    let o = pull(&root, COLL, &out, &["--full"], Some(&key_file), None);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("objects added after"), "{err}");
    assert_eq!(iocmatch::Index::open(&out).unwrap().len(), 12);
    server.kill();
}

#[test]
fn wrong_key_is_a_401_and_changes_nothing() {
    if !enabled() {
        return;
    }
    let server = Medallion::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.iocx");
    let store = dir.path().join("t.iocx.store.jsonl");
    let root = server.root();
    let o = pull(&root, COLL, &out, &[], None, Some(KEY));
    assert!(o.status.success(), "{}", stderr(&o));
    let (index_before, store_before) =
        (std::fs::read(&out).unwrap(), std::fs::read(&store).unwrap());

    let wrong = "wr0ng-key-that-must-not-be-printed";
    let bad_key = dir.path().join("bad-key");
    std::fs::write(&bad_key, wrong).unwrap();
    for (kf, env) in [(Some(bad_key.as_path()), None), (None, Some(wrong))] {
        let o = pull(&root, COLL, &out, &["-v"], kf, env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("HTTP 401"), "{err}");
        assert!(err.contains("unauthorized"), "{err}");
        assert!(!err.contains(wrong), "the key leaked: {err}");
        assert!(!err.contains("retrying"), "a 401 is not retried: {err}");
        assert_eq!(std::fs::read(&out).unwrap(), index_before);
        assert_eq!(std::fs::read(&store).unwrap(), store_before);
    }
    // No key at all: 401 as well.
    let o = pull(&root, COLL, &out, &[], None, None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("HTTP 401"), "{}", stderr(&o));
    // An unknown collection: a clear message listing what exists.
    let o = pull(&root, "nope", &out, &[], None, Some(KEY));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("no collection \"nope\"") && err.contains(COLL),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), index_before);
}

#[test]
fn server_going_away_mid_run_leaves_index_and_store_intact() {
    if !enabled() {
        return;
    }
    let mut server = Medallion::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.iocx");
    let store = dir.path().join("t.iocx.store.jsonl");
    let root = server.root();
    let o = pull(&root, COLL, &out, &[], None, Some(KEY));
    assert!(o.status.success(), "{}", stderr(&o));
    let (index_before, store_before) =
        (std::fs::read(&out).unwrap(), std::fs::read(&store).unwrap());

    // A full re-pull through the library; the server is killed once the first page is in.
    let job = iocmatch::sync::Job {
        source: iocmatch::sync::Source::Taxii(iocmatch::sync::TaxiiSource {
            api_root: Some(root.clone()),
            collections: vec![COLL.into()],
            page_size: 2,
            ..Default::default()
        }),
        out: out.clone(),
        store: None,
        key: Some(iocmatch::sync::ApiKey::new(KEY).unwrap()),
        http: iocmatch::sync::HttpOptions {
            retries: 2,
            backoff: Duration::from_millis(50),
            ..Default::default()
        },
        full: true,
        build_time: None,
    };
    let stop = AtomicBool::new(false);
    let mut retries = 0;
    let result = iocmatch::sync::sync_once(&job, &stop, &mut |e| match e {
        iocmatch::sync::Event::Page { page: 1, .. } => server.kill(),
        iocmatch::sync::Event::Retry { .. } => retries += 1,
        _ => {}
    });
    let e = result.expect_err("the server is gone");
    let msg = e.to_string();
    assert!(
        matches!(e, iocmatch::sync::SyncError::Connect { .. }),
        "{msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{}", server.port)), "{msg}");
    assert_eq!(retries, 2, "retried before giving up");
    assert_eq!(std::fs::read(&out).unwrap(), index_before);
    assert_eq!(std::fs::read(&store).unwrap(), store_before);

    // The command line says the same and exits 2.
    let o = pull(
        &root,
        COLL,
        &out,
        &["--retries", "1", "--retry-wait", "100ms"],
        None,
        Some(KEY),
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("retrying"), "{err}");
    assert!(!err.contains(KEY));
    assert_eq!(std::fs::read(&out).unwrap(), index_before);
    assert_eq!(std::fs::read(&store).unwrap(), store_before);
    let mut leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        ["t.iocx", "t.iocx.store.jsonl"],
        "no temporary files left"
    );
}
