//! The local store of what the sync jobs pulled: one JSON-lines file, next to the index by
//! default (`INDEX.store.jsonl`), from which the whole index is rebuilt after every pull.
//!
//! # Format (version 1)
//!
//! The first line is a header; every other line is one record:
//!
//! ```text
//! {"iocmatch_store":1,"sources":{"taxii http://h/api/ c1":{"label":"taxii:c1","checkpoint":"2026-01-01T00:00:00.000000Z","synced":"2026-01-02T00:00:00Z"}}}
//! {"t":"stix","src":"taxii http://h/api/ c1","obj":{"type":"indicator","id":"indicator--…",…}}
//! {"t":"revoked","id":"indicator--…","modified":"2026-01-01T00:00:00.000Z"}
//! {"t":"rest","src":"rest http://h/api/v1/iocs type=ipv4","page":{"data":[…],"next":…}}
//! ```
//!
//! * `stix`: one STIX indicator object per id, the newest `modified` (ties: the later one
//!   pulled), stored as the server sent it (compacted).
//! * `revoked`: ids revoked for good. Their objects are gone from the store and a version that
//!   arrives later, revoked or not, is ignored, as STIX revocation is permanent.
//! * `rest`: the pages of a REST source's last pull (a REST pull replaces its source whole).
//! * `sources`: per source, the label its records carry as `source` when they name none, the
//!   TAXII checkpoint (the last `X-TAXII-Date-Added-Last`, sent back as `added_after`), and the
//!   time of the last successful pull.
//!
//! The file is replaced atomically (temporary file, `fsync`, rename), before the index. A
//! store that does not parse is an error, never silently dropped: a corrupt store would turn an
//! incremental pull into an index that lacks everything pulled before.

use super::SyncError;
use crate::indicator::Indicator;
use crate::ingest::{self, Collector, Report};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const VERSION: u64 = 1;

/// Per-source state kept across pulls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// What records from this source carry as `source` when the object names none.
    #[serde(default)]
    pub label: String,
    /// TAXII: the `X-TAXII-Date-Added-Last` of the last pull, sent as `added_after` next time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// When the last successful pull finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<String>,
}

#[derive(Clone, Debug)]
struct StixEntry {
    src: String,
    modified: Option<Timestamp>,
    raw: Box<RawValue>,
}

/// The store: STIX objects by id, revoked ids, REST pages by source, per-source checkpoints.
#[derive(Clone, Debug, Default)]
pub struct Store {
    sources: BTreeMap<String, SourceState>,
    objects: BTreeMap<String, StixEntry>,
    revoked: BTreeMap<String, Option<String>>,
    rest: BTreeMap<String, Vec<Box<RawValue>>>,
}

/// What merging one STIX object did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// A new id.
    Added,
    /// A newer version replaced the stored one.
    Updated,
    /// Not newer than the stored version, or the id is already revoked.
    Unchanged,
    /// The object revokes its id: every version is gone from the store for good.
    Revoked,
    /// Not an indicator, or no id: not stored.
    Ignored,
}

/// The fields of a STIX object the store looks at.
#[derive(Deserialize)]
struct Head {
    #[serde(default, rename = "type")]
    ty: Value,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    modified: Value,
    #[serde(default)]
    created: Value,
    #[serde(default)]
    revoked: Value,
}

impl Head {
    fn modified(&self) -> Option<Timestamp> {
        self.modified
            .as_str()
            .or_else(|| self.created.as_str())
            .and_then(Timestamp::parse)
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    iocmatch_store: u64,
    #[serde(default)]
    sources: BTreeMap<String, SourceState>,
}

#[derive(Deserialize)]
struct Line {
    t: String,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    obj: Option<Box<RawValue>>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    page: Option<Box<RawValue>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// Reads a store; a missing file is an empty store.
    ///
    /// # Errors
    /// [`SyncError::Io`] when it cannot be read, [`SyncError::Store`] with a line number when it
    /// is not a store.
    pub fn load(path: &Path) -> Result<Store, SyncError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Store::new()),
            Err(source) => {
                return Err(SyncError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Store::from_bytes(&bytes).map_err(|detail| SyncError::Store {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses a store's bytes.
    ///
    /// # Errors
    /// A message with the line number.
    pub fn from_bytes(bytes: &[u8]) -> Result<Store, String> {
        let mut lines = bytes
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.trim_ascii().is_empty());
        let Some((_, first)) = lines.next() else {
            return Ok(Store::new());
        };
        let header: Header = serde_json::from_slice(first)
            .map_err(|e| format!("line 1: not an iocmatch store header: {e}"))?;
        if header.iocmatch_store != VERSION {
            return Err(format!(
                "store format version {} (this build reads version {VERSION})",
                header.iocmatch_store
            ));
        }
        let mut store = Store {
            sources: header.sources,
            ..Store::default()
        };
        for (i, bytes) in lines {
            let n = i + 1;
            let line: Line = serde_json::from_slice(bytes).map_err(|e| format!("line {n}: {e}"))?;
            let missing = |f: &str| format!("line {n}: a {:?} record without {f}", line.t);
            match line.t.as_str() {
                "stix" => {
                    let raw = line.obj.ok_or_else(|| missing("obj"))?;
                    let src = line.src.ok_or_else(|| missing("src"))?;
                    let head: Head = serde_json::from_str(raw.get())
                        .map_err(|e| format!("line {n}: object: {e}"))?;
                    let id = head.id.as_str().ok_or_else(|| missing("an object id"))?;
                    let modified = head.modified();
                    store
                        .objects
                        .insert(id.to_string(), StixEntry { src, modified, raw });
                }
                "revoked" => {
                    let id = line.id.ok_or_else(|| missing("id"))?;
                    store.revoked.insert(id, line.modified);
                }
                "rest" => {
                    let src = line.src.ok_or_else(|| missing("src"))?;
                    let page = line.page.ok_or_else(|| missing("page"))?;
                    store.rest.entry(src).or_default().push(page);
                }
                other => return Err(format!("line {n}: unknown record type {other:?}")),
            }
        }
        Ok(store)
    }

    /// The store's bytes (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let header = Header {
            iocmatch_store: VERSION,
            sources: self.sources.clone(),
        };
        // Serializing these plain structs cannot fail.
        let _ = serde_json::to_writer(&mut out, &header);
        out.push(b'\n');
        let quote = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        for e in self.objects.values() {
            out.extend_from_slice(b"{\"t\":\"stix\",\"src\":");
            quote(&mut out, &e.src);
            out.extend_from_slice(b",\"obj\":");
            out.extend_from_slice(e.raw.get().as_bytes());
            out.extend_from_slice(b"}\n");
        }
        for (id, modified) in &self.revoked {
            out.extend_from_slice(b"{\"t\":\"revoked\",\"id\":");
            quote(&mut out, id);
            if let Some(m) = modified {
                out.extend_from_slice(b",\"modified\":");
                quote(&mut out, m);
            }
            out.extend_from_slice(b"}\n");
        }
        for (src, pages) in &self.rest {
            for p in pages {
                out.extend_from_slice(b"{\"t\":\"rest\",\"src\":");
                quote(&mut out, src);
                out.extend_from_slice(b",\"page\":");
                out.extend_from_slice(p.get().as_bytes());
                out.extend_from_slice(b"}\n");
            }
        }
        out
    }

    /// Writes the store atomically (temporary file in the same directory, `fsync`, rename).
    ///
    /// # Errors
    /// [`SyncError::Io`] naming the path.
    pub fn save(&self, path: &Path) -> Result<(), SyncError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| SyncError::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        let bytes = self.to_bytes();
        crate::index::write_atomic(path, &bytes).map_err(|e| match e {
            crate::Error::Io { path, source } => SyncError::Io { path, source },
            other => SyncError::Index(other),
        })?;
        // Make the rename itself durable before the index is replaced.
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// The state of a source (created empty when new).
    pub fn source_mut(&mut self, key: &str) -> &mut SourceState {
        self.sources.entry(key.to_string()).or_default()
    }

    /// The state of a source, if it was ever pulled.
    pub fn source(&self, key: &str) -> Option<&SourceState> {
        self.sources.get(key)
    }

    /// Merges one STIX object (its JSON text) pulled from source `src`.
    ///
    /// # Errors
    /// A message when the text is not a JSON object.
    pub fn merge_stix(&mut self, src: &str, raw: &RawValue) -> Result<Merge, String> {
        let head: Head = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
        let Some(id) = head.id.as_str().filter(|s| !s.is_empty()) else {
            return Ok(Merge::Ignored);
        };
        if head.ty.as_str() != Some("indicator") {
            return Ok(Merge::Ignored);
        }
        if self.revoked.contains_key(id) {
            return Ok(Merge::Unchanged);
        }
        if head.revoked.as_bool() == Some(true) {
            self.objects.remove(id);
            let m = head
                .modified
                .as_str()
                .or_else(|| head.created.as_str())
                .map(str::to_string);
            self.revoked.insert(id.to_string(), m);
            return Ok(Merge::Revoked);
        }
        let modified = head.modified();
        let outcome = match self.objects.get(id) {
            None => Merge::Added,
            Some(old) if modified >= old.modified => {
                if old.raw.get() == raw.get() {
                    return Ok(Merge::Unchanged);
                }
                Merge::Updated
            }
            Some(_) => return Ok(Merge::Unchanged),
        };
        let compact = compact(raw)?;
        self.objects.insert(
            id.to_string(),
            StixEntry {
                src: src.to_string(),
                modified,
                raw: compact,
            },
        );
        Ok(outcome)
    }

    /// Drops every STIX object pulled from `src` (before a full re-pull of it).
    pub fn clear_stix_source(&mut self, src: &str) {
        self.objects.retain(|_, e| e.src != src);
    }

    /// Replaces the REST pages of `src`.
    pub fn replace_rest(&mut self, src: &str, pages: Vec<Box<RawValue>>) {
        self.rest.insert(src.to_string(), pages);
    }

    /// STIX objects held.
    pub fn object_count(&self) -> usize {
        self.objects.len()
    }

    /// Revoked ids remembered.
    pub fn revoked_count(&self) -> usize {
        self.revoked.len()
    }

    /// REST pages held.
    pub fn rest_page_count(&self) -> usize {
        self.rest.values().map(Vec::len).sum()
    }

    /// Every indicator record the store yields, through the same parsers and rules as
    /// `compile` (newest version per id, revoked dropped), with the ingest report. Records
    /// without a source of their own get their source's label.
    pub fn indicators(&self) -> (Vec<Indicator>, Report) {
        let mut by_src: BTreeMap<&str, Vec<&RawValue>> = BTreeMap::new();
        for e in self.objects.values() {
            by_src.entry(e.src.as_str()).or_default().push(&e.raw);
        }
        let mut all = Vec::new();
        let mut report = Report::default();
        for (src, objs) in by_src {
            let label = self.label(src);
            let mut doc = Vec::with_capacity(objs.iter().map(|o| o.get().len() + 1).sum());
            doc.extend_from_slice(b"{\"objects\":[");
            for (i, o) in objs.iter().enumerate() {
                if i > 0 {
                    doc.push(b',');
                }
                doc.extend_from_slice(o.get().as_bytes());
            }
            doc.extend_from_slice(b"]}");
            let mut c = Collector::new();
            c.set_file(&label);
            // The objects were valid JSON objects when stored; a failure here drops only them.
            if let Err(why) = ingest::stix::parse(&doc, &mut c) {
                c.begin_object();
                c.skip(ingest::Location::File, ingest::SkipReason::Malformed, why);
            }
            absorb(&mut all, &mut report, c, &label);
        }
        for (src, pages) in &self.rest {
            let label = self.label(src);
            let mut c = Collector::new();
            c.set_file(&label);
            for p in pages {
                if let Err(why) = ingest::rest::parse(p.get().as_bytes(), &mut c) {
                    c.begin_object();
                    c.skip(ingest::Location::File, ingest::SkipReason::Malformed, why);
                }
            }
            absorb(&mut all, &mut report, c, &label);
        }
        (all, report)
    }

    fn label(&self, src: &str) -> String {
        self.sources
            .get(src)
            .map(|s| s.label.clone())
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| src.to_string())
    }
}

/// Finalizes one source's collector and adds its records and counts.
fn absorb(all: &mut Vec<Indicator>, report: &mut Report, c: Collector, label: &str) {
    let (mut records, r) = ingest::finalize(c, &Default::default());
    super::label_records(&mut records, label);
    all.extend(records);
    report.read += r.read;
    report.kept += r.kept;
    report.unusable += r.unusable;
    for (reason, n) in r.skipped {
        *report.skipped.entry(reason).or_insert(0) += n;
    }
    let room = ingest::MAX_PROBLEMS.saturating_sub(report.problems.len());
    report.problems.extend(r.problems.into_iter().take(room));
    report.superseded += r.superseded;
    report.revoked += r.revoked;
    report.inactive += r.inactive;
}

/// The object's JSON without insignificant whitespace (store lines are single lines).
pub(crate) fn compact(raw: &RawValue) -> Result<Box<RawValue>, String> {
    let v: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let s = serde_json::to_string(&v).map_err(|e| e.to_string())?;
    RawValue::from_string(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    fn ind(id: &str, modified: &str, ip: &str, extra: &str) -> Box<RawValue> {
        raw(&format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"{id}","created":"2024-01-01T00:00:00Z","modified":"{modified}","pattern":"[ipv4-addr:value = '{ip}']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"{extra}}}"#
        ))
    }

    #[test]
    fn newest_wins_and_revocation_is_permanent() {
        let mut s = Store::new();
        let a = "indicator--a";
        assert_eq!(
            s.merge_stix("x", &ind(a, "2024-02-01T00:00:00Z", "192.0.2.2", ""))
                .unwrap(),
            Merge::Added
        );
        assert_eq!(
            s.merge_stix("x", &ind(a, "2024-01-01T00:00:00Z", "192.0.2.1", ""))
                .unwrap(),
            Merge::Unchanged
        );
        assert_eq!(
            s.merge_stix("x", &ind(a, "2024-03-01T00:00:00Z", "192.0.2.3", ""))
                .unwrap(),
            Merge::Updated
        );
        let (recs, _) = s.indicators();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].raw_value, "192.0.2.3");
        assert_eq!(
            s.merge_stix(
                "x",
                &ind(a, "2024-04-01T00:00:00Z", "192.0.2.3", ",\"revoked\":true")
            )
            .unwrap(),
            Merge::Revoked
        );
        assert_eq!(
            s.merge_stix("x", &ind(a, "2024-05-01T00:00:00Z", "192.0.2.5", ""))
                .unwrap(),
            Merge::Unchanged
        );
        assert!(s.indicators().0.is_empty());
        assert_eq!(
            s.merge_stix("x", &raw(r#"{"type":"malware","id":"malware--m"}"#))
                .unwrap(),
            Merge::Ignored
        );
        assert_eq!(s.object_count(), 0);
        assert_eq!(s.revoked_count(), 1);
    }

    #[test]
    fn round_trip() {
        let mut s = Store::new();
        s.source_mut("taxii h c1").label = "taxii:c1".into();
        s.source_mut("taxii h c1").checkpoint = Some("2024-01-01T00:00:00.000000Z".into());
        s.merge_stix(
            "taxii h c1",
            &raw("{\n \"type\": \"indicator\", \"id\": \"indicator--b\", \"modified\": \"2024-01-01T00:00:00Z\", \"pattern\": \"[domain-name:value = 'evil.example']\", \"pattern_type\": \"stix\"\n}"),
        )
        .unwrap();
        s.merge_stix(
            "taxii h c1",
            &ind(
                "indicator--r",
                "2024-01-01T00:00:00Z",
                "192.0.2.9",
                ",\"revoked\":true",
            ),
        )
        .unwrap();
        s.replace_rest(
            "rest u type=ipv4",
            vec![raw(r#"{"data":[{"type":"ipv4","value":"198.51.100.1"}]}"#)],
        );
        let bytes = s.to_bytes();
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 4);
        let t = Store::from_bytes(&bytes).unwrap();
        assert_eq!(t.to_bytes(), bytes);
        let (recs, report) = t.indicators();
        assert_eq!(report.read, 2);
        let mut values: Vec<_> = recs.iter().map(|r| r.raw_value.as_str()).collect();
        values.sort_unstable();
        assert_eq!(values, ["198.51.100.1", "evil.example"]);
        assert!(recs.iter().any(|r| r.source == "taxii:c1"));
    }

    #[test]
    fn corrupt_store_is_an_error() {
        assert!(Store::from_bytes(b"").unwrap().object_count() == 0);
        assert!(Store::from_bytes(b"{\"iocmatch_store\":1}\n{\"t\":\"stix\"").is_err());
        assert!(Store::from_bytes(b"{\"iocmatch_store\":2}\n").is_err());
        assert!(Store::from_bytes(b"[1,2]\n").is_err());
        assert!(Store::from_bytes(b"{\"iocmatch_store\":1}\n{\"t\":\"what\"}\n").is_err());
    }
}
