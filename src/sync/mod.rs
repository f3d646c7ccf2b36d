//! Sync: pull indicators from a TAXII 2.1 server or a REST feed API into a fresh index.
//!
//! A sync job ([`Job`]) fetches everything new from its [`Source`], merges it into a local
//! [`store`] of what was pulled so far, rebuilds the complete index from the store and replaces
//! the index file atomically. So an incremental pull (TAXII `added_after`) still yields an index
//! with every live indicator, and a running `hunt`/`filter` that memory-maps the index sees the
//! old file or the new one, never half of one.
//!
//! * [`taxii`]: discovery, API root, collections and objects endpoints of TAXII 2.1, pagination
//!   through `more`/`next`, `added_after` checkpoints kept per collection, `match[type]=indicator`,
//!   an import window ([`TaxiiSource::max_age`]).
//! * [`rest`]: `GET URL?type=T&limit=N` with a bearer token, following the pagination cursor or
//!   next-page link that [`crate::ingest::rest::next_page`] finds in each response.
//! * [`http`]: the blocking HTTP client (rustls with the system's root certificates), timeouts,
//!   retries with exponential backoff that honour `Retry-After` on 429/503.
//! * [`store`]: the JSON-lines store next to the index.
//!
//! # Failure
//!
//! Everything is fetched and the new index is built in memory before anything is written; then
//! the store is replaced (temporary file + rename), then the index. Any failure before that
//! (connection refused, timeout, HTTP 401/403/404, 429/5xx after the retries, malformed JSON, a
//! page cut short, a stop request) returns a [`SyncError`] and leaves the previous store and
//! index untouched.
//!
//! # The API key
//!
//! An [`ApiKey`] is read from a file or an environment variable, never from the command line. It
//! has no `Display`, its `Debug` is redacted, and every error message built from server or
//! transport text is scrubbed of it (and of its base64 form) before it leaves this module.
//!
//! The library never prints: progress is reported through an [`Event`] callback.

pub mod http;
pub mod rest;
pub mod store;
pub mod taxii;

use crate::indicator::Indicator;
use crate::ingest::Report;
use crate::time::Timestamp;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use http::HttpOptions;
pub use rest::RestSource;
pub use store::Store;
pub use taxii::TaxiiSource;

/// The environment variable an API key may come from.
pub const KEY_ENV: &str = "IOCMATCH_API_KEY";

/// Everything a sync can fail with. Messages name the URL or file concerned and never contain
/// the API key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// No connection could be made (refused, DNS failure, TLS handshake failure, reset).
    #[error("cannot connect to {url}: {detail}")]
    Connect {
        /// The URL requested (without credentials).
        url: String,
        /// What the transport said.
        detail: String,
    },
    /// The server did not answer in time.
    #[error("{url}: timed out ({detail})")]
    Timeout {
        /// The URL requested.
        url: String,
        /// Which timeout.
        detail: String,
    },
    /// The server answered with an error status (after the retries, for 429 and 5xx).
    #[error("{url}: HTTP {status} {}{}", status_meaning(*status), if detail.is_empty() { String::new() } else { format!(" (server said: {detail})") })]
    Http {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the response body, scrubbed.
        detail: String,
    },
    /// The response body ended before it was complete.
    #[error("{url}: response cut short: {detail}")]
    Truncated {
        /// The URL requested.
        url: String,
        /// What was seen.
        detail: String,
    },
    /// The response is not valid JSON.
    #[error("{url}: malformed JSON: {detail}")]
    Malformed {
        /// The URL requested.
        url: String,
        /// The parser's message with line and column.
        detail: String,
    },
    /// Valid JSON that breaks the protocol (not a TAXII envelope, not a REST page, pagination
    /// that loops, an unknown collection...).
    #[error("{url}: {detail}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// A bad setting (URL, key file, option).
    #[error("{0}")]
    Config(String),
    /// The store file cannot be read as a store.
    #[error("store {path}: {detail} (the index was not changed; move the store away to pull everything anew)")]
    Store {
        /// The store file.
        path: PathBuf,
        /// What is wrong, with a line number.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Building or writing the index failed.
    #[error("building the index: {0}")]
    Index(#[from] crate::Error),
    /// A stop was requested (SIGINT/SIGTERM) before the sync finished; nothing was written.
    #[error("stopped before the sync finished: nothing was written")]
    Stopped,
}

fn status_meaning(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        401 => "unauthorized: the server rejected the API key (check --key-file / IOCMATCH_API_KEY and the user name)",
        403 => "forbidden: this key may not read this resource",
        404 => "not found: check the URL, API root and collection id",
        406 => "not acceptable: the server does not speak this media type",
        408 => "request timeout",
        416 => "range not satisfiable",
        429 => "too many requests (gave up after the retries)",
        500..=599 => "server error (gave up after the retries)",
        _ => "unexpected status",
    }
}

impl SyncError {
    /// Whether the error is an HTTP status, and which.
    pub fn status(&self) -> Option<u16> {
        match self {
            SyncError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// An API key. Read it with [`ApiKey::from_file`] or [`ApiKey::from_env`]; it is sent as the
/// HTTP basic-auth password (TAXII) or bearer token (REST) and appears nowhere else.
#[derive(Clone)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// A key from its text; surrounding whitespace (a trailing newline) is dropped.
    ///
    /// # Errors
    /// [`SyncError::Config`] when it is empty or holds control characters (which cannot go into
    /// an HTTP header). The message does not quote the key.
    pub fn new(text: &str) -> Result<ApiKey, SyncError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(SyncError::Config("the API key is empty".into()));
        }
        if t.chars().any(char::is_control) {
            return Err(SyncError::Config(
                "the API key holds control characters (more than one line?)".into(),
            ));
        }
        Ok(ApiKey(t.to_string()))
    }

    /// Reads the key from a file (its whole content, trimmed).
    ///
    /// # Errors
    /// [`SyncError::Io`] when the file cannot be read, [`SyncError::Config`] when it is empty.
    pub fn from_file(path: &Path) -> Result<ApiKey, SyncError> {
        let text = std::fs::read_to_string(path).map_err(|source| SyncError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ApiKey::new(&text).map_err(|e| SyncError::Config(format!("{}: {e}", path.display())))
    }

    /// Reads the key from the environment variable `var` (normally [`KEY_ENV`]); `None` when it
    /// is unset.
    ///
    /// # Errors
    /// [`SyncError::Config`] when it is set but empty or not valid.
    pub fn from_env(var: &str) -> Result<Option<ApiKey>, SyncError> {
        match std::env::var(var) {
            Ok(v) => ApiKey::new(&v)
                .map(Some)
                .map_err(|e| SyncError::Config(format!("${var}: {e}"))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(SyncError::Config(format!(
                "${var}: the API key is not valid UTF-8"
            ))),
        }
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// Where a sync pulls from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A TAXII 2.1 server.
    Taxii(TaxiiSource),
    /// A REST feed API.
    Rest(RestSource),
}

/// One sync job: a source, the index to write, the store, the credentials and HTTP settings.
#[derive(Clone, Debug)]
pub struct Job {
    /// Where to pull from.
    pub source: Source,
    /// The index file to replace.
    pub out: PathBuf,
    /// The store file; `None` means [`default_store_path`] of `out`.
    pub store: Option<PathBuf>,
    /// The API key, if the server needs one.
    pub key: Option<ApiKey>,
    /// Timeouts, retries, size limits.
    pub http: HttpOptions,
    /// Ignore the checkpoints and replace the store's objects of the pulled sources with what
    /// the server holds now (TAXII); REST pulls always replace their source.
    pub full: bool,
    /// Build time written into the index header; `None` means now.
    pub build_time: Option<Timestamp>,
}

impl Job {
    /// The store file this job uses.
    pub fn store_path(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| default_store_path(&self.out))
    }
}

/// The default store next to an index: `INDEX.store.jsonl`.
pub fn default_store_path(index: &Path) -> PathBuf {
    let mut s = index.as_os_str().to_os_string();
    s.push(".store.jsonl");
    PathBuf::from(s)
}

/// Progress of a sync, for the caller to show or log. Nothing in an event holds the key.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A request is about to be sent.
    Request {
        /// The URL.
        url: String,
    },
    /// A request failed in a way worth retrying; the next attempt follows after `wait`.
    Retry {
        /// The URL.
        url: String,
        /// The attempt that comes next (2 = first retry).
        attempt: u32,
        /// Attempts in all.
        attempts: u32,
        /// How long until it.
        wait: Duration,
        /// What went wrong.
        reason: String,
    },
    /// A TAXII collection or REST source is about to be pulled.
    SourceStart {
        /// A short name (collection id and title, REST URL and type).
        name: String,
        /// The `added_after` sent, for an incremental TAXII pull.
        added_after: Option<String>,
    },
    /// A page arrived.
    Page {
        /// The source's short name.
        name: String,
        /// 1-based page number.
        page: u64,
        /// Objects (TAXII) or items (REST) on it.
        items: usize,
        /// Whether the server says more pages follow.
        more: bool,
    },
    /// A sync finished and both files were written.
    Synced(Box<SyncReport>),
    /// A poll failed; the previous index and store are kept and the next poll will retry.
    Failed(SyncError),
    /// Polling waits until the next interval.
    Waiting {
        /// Time until the next poll.
        next_in: Duration,
    },
}

/// What one pulled source contributed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// A short name (collection id and title, or REST URL and type).
    pub name: String,
    /// Pages fetched.
    pub pages: u64,
    /// Objects (TAXII) or items (REST) received.
    pub received: u64,
    /// TAXII: objects new to the store.
    pub added: u64,
    /// TAXII: objects that replaced an older version in the store.
    pub updated: u64,
    /// TAXII: objects not newer than the stored version (or of an already revoked id).
    pub unchanged: u64,
    /// TAXII: ids revoked by this pull (removed from the store for good).
    pub revoked: u64,
    /// TAXII: objects that are not indicators or have no id (not stored).
    pub ignored: u64,
    /// TAXII: the `added_after` sent (`None`: a full pull).
    pub added_after: Option<String>,
    /// TAXII: the checkpoint kept for the next pull (`X-TAXII-Date-Added-Last`).
    pub checkpoint: Option<String>,
}

/// The outcome of a successful sync.
#[derive(Clone, Debug)]
pub struct SyncReport {
    /// Per source pulled.
    pub sources: Vec<SourceReport>,
    /// STIX objects in the store after the merge.
    pub store_objects: usize,
    /// REST pages in the store after the merge.
    pub store_pages: usize,
    /// Records in the new index.
    pub index_records: usize,
    /// The ingest report of the rebuild (skipped records with reasons, dropped versions).
    pub ingest: Report,
    /// The store written.
    pub store_path: PathBuf,
    /// The index written.
    pub index_path: PathBuf,
    /// Bytes of the index.
    pub index_bytes: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The context every request runs in: the stop flag and the event sink.
pub(crate) struct Ctx<'a> {
    pub(crate) stop: &'a AtomicBool,
    pub(crate) events: &'a mut dyn FnMut(Event),
}

impl Ctx<'_> {
    pub(crate) fn emit(&mut self, e: Event) {
        (self.events)(e);
    }

    pub(crate) fn check_stop(&self) -> Result<(), SyncError> {
        if self.stop.load(Ordering::Relaxed) {
            Err(SyncError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Sleeps `d`, waking early (with [`SyncError::Stopped`]) when a stop is requested.
    pub(crate) fn sleep(&self, d: Duration) -> Result<(), SyncError> {
        sleep_unless_stopped(d, self.stop)
            .then_some(())
            .ok_or(SyncError::Stopped)
    }
}

/// Sleeps `d` in short steps; returns `false` as soon as `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// Runs one sync: pull, merge into the store, rebuild the index, write the store then the
/// index (each atomically).
///
/// # Errors
/// A [`SyncError`]; the store and index files are then exactly as before.
pub fn sync_once(
    job: &Job,
    stop: &AtomicBool,
    events: &mut dyn FnMut(Event),
) -> Result<SyncReport, SyncError> {
    let start = Instant::now();
    let mut ctx = Ctx { stop, events };
    let store_path = job.store_path();
    let mut store = Store::load(&store_path)?;
    let sources = match &job.source {
        Source::Taxii(t) => taxii::pull(t, job, &mut store, &mut ctx)?,
        Source::Rest(r) => rest::pull(r, job, &mut store, &mut ctx)?,
    };
    ctx.check_stop()?;
    let (records, ingest) = store.indicators();
    let image = crate::index::build_image(&records, job.build_time.unwrap_or_else(Timestamp::now))?;
    ctx.check_stop()?;
    store.save(&store_path)?;
    image.write_atomic(&job.out)?;
    Ok(SyncReport {
        sources,
        store_objects: store.object_count(),
        store_pages: store.rest_page_count(),
        index_records: records.len(),
        ingest,
        store_path,
        index_path: job.out.clone(),
        index_bytes: image.len(),
        elapsed: start.elapsed(),
    })
}

/// Counts of a polling run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Polls that succeeded.
    pub synced: u64,
    /// Polls that failed (the previous index was kept each time).
    pub failed: u64,
}

/// Runs [`sync_once`] every `every` (measured from the start of each poll) until `stop` is set.
/// A failed poll is reported as [`Event::Failed`] and retried at the next interval; the index and
/// store it would have replaced are kept. A stop request interrupts the wait at once, and a
/// running poll at its next request or retry wait (writing nothing).
pub fn poll(
    job: &Job,
    every: Duration,
    stop: &AtomicBool,
    events: &mut dyn FnMut(Event),
) -> PollSummary {
    let mut summary = PollSummary::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match sync_once(job, stop, events) {
            Ok(r) => {
                summary.synced += 1;
                events(Event::Synced(Box::new(r)));
            }
            Err(SyncError::Stopped) => break,
            Err(e) => {
                summary.failed += 1;
                events(Event::Failed(e));
            }
        }
        let next_in = every.saturating_sub(started.elapsed());
        if stop.load(Ordering::Relaxed) {
            break;
        }
        events(Event::Waiting { next_in });
        if !sleep_unless_stopped(next_in, stop) {
            break;
        }
    }
    summary
}

/// Parses a duration such as `30d`, `1h`, `90m`, `45s`, `500ms`, `2w` (a bare number is
/// seconds).
///
/// # Errors
/// A message naming the accepted units.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: not a duration (examples: 30d, 1h, 15m, 30s, 500ms)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" | "mins" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        other => {
            return Err(format!(
                "{s:?}: unknown unit {other:?} (one of ms, s, m, h, d, w)"
            ))
        }
    };
    let total = n * secs;
    if !total.is_finite() || !(0.0..=1e11).contains(&total) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Sets the source of records that carry none to `label` (as `compile` uses the file name).
pub(crate) fn label_records(records: &mut [Indicator], label: &str) {
    for r in records {
        if r.source.is_empty() {
            r.source = label.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn key_is_never_shown() {
        let k = ApiKey::new(" s3cret\n").unwrap();
        assert_eq!(k.expose(), "s3cret");
        assert!(!format!("{k:?}").contains("s3cret"));
        assert!(ApiKey::new(" \n").is_err());
        let e = ApiKey::new("a\nb").unwrap_err().to_string();
        assert!(!e.contains('a') || !e.contains("a\nb"));
    }

    #[test]
    fn default_store() {
        assert_eq!(
            default_store_path(Path::new("/x/iocs.idx")),
            PathBuf::from("/x/iocs.idx.store.jsonl")
        );
    }
}
