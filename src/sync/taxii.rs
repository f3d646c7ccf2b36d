//! TAXII 2.1 client: discovery, API root, collections and objects endpoints.
//!
//! A pull of one API root:
//!
//! 1. With [`TaxiiSource::discovery`] set, `GET` the discovery URL and take its `default` API
//!    root (or its only one).
//! 2. `GET {api-root}`: the API root must list `application/taxii+json;version=2.1` among its
//!    `versions` (when it lists any).
//! 3. `GET {api-root}collections/`: each requested collection is found by id (or, failing
//!    that, by exact title, ignoring case) and must be readable (`can_read`).
//! 4. Per collection, `GET {api-root}collections/{id}/objects/?limit=N&match[type]=indicator`
//!    plus `added_after` (below), following `more`/`next` page by page (the `next` request
//!    repeats the same filters, as the spec requires). A server that sets `more` without a
//!    `next` is followed through `added_after` = the page's `X-TAXII-Date-Added-Last`. An empty
//!    page may be `{}`: a missing `more` is `false`.
//!
//! Every request carries `Accept: application/taxii+json;version=2.1` and, with a key, HTTP
//! basic auth with [`TaxiiSource::user`] (`apikey` by default; may be blank) and the key as the
//! password.
//!
//! # Incremental pulls and the import window
//!
//! After a collection's last page, the newest `X-TAXII-Date-Added-Last` seen is kept in the
//! store as the collection's checkpoint; the next pull sends it as `added_after`, so the server
//! returns only objects added since (TAXII compares `added_after` strictly with each object's
//! `date_added`). [`TaxiiSource::max_age`] bounds the same filter from below: `added_after` is
//! the later of the checkpoint and now − max-age. So the window applies to the server's
//! `date_added` (when the server received an object), not to an object's `modified` or
//! `valid_from`, the way Sentinel's TAXII connector applies its import window; objects already
//! in the store stay until they are revoked (their `valid_until` still governs expiry when
//! hunting). [`Job::full`](super::Job::full) ignores the checkpoint and replaces the
//! collection's objects in the store with what the server holds now.

use super::http::{display_url, parse_url, Auth, Client};
use super::store::{Merge, Store};
use super::{Ctx, Event, Job, SourceReport, SyncError};
use crate::time::Timestamp;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// The TAXII 2.1 media type, sent as `Accept`.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Pages followed at most per collection and pull (a guard against a server that loops).
const MAX_PAGES: u64 = 1_000_000;

/// What to pull from a TAXII 2.1 server.
#[derive(Clone, Debug)]
pub struct TaxiiSource {
    /// The API root URL (`https://host/api/taxii2/api/`); a missing trailing `/` is added.
    pub api_root: Option<String>,
    /// A discovery URL (`https://host/taxii2/`) to take the default API root from when
    /// `api_root` is not given.
    pub discovery: Option<String>,
    /// Collection ids (or titles) to pull.
    pub collections: Vec<String>,
    /// The basic-auth user name sent with the key (`apikey`; may be empty).
    pub user: String,
    /// Objects per page (`limit`); the server may send fewer.
    pub page_size: u32,
    /// The import window: only objects the server added within it are requested.
    pub max_age: Option<Duration>,
}

impl Default for TaxiiSource {
    fn default() -> TaxiiSource {
        TaxiiSource {
            api_root: None,
            discovery: None,
            collections: Vec::new(),
            user: "apikey".into(),
            page_size: 1000,
            max_age: None,
        }
    }
}

/// A collection as the collections endpoint lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectionInfo {
    /// The collection id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Whether this key may read it.
    pub can_read: bool,
    /// Whether this key may write it.
    pub can_write: bool,
}

#[derive(Deserialize)]
struct Discovery {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    api_roots: Vec<String>,
}

#[derive(Deserialize)]
struct ApiRootInfo {
    #[serde(default)]
    versions: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Collections {
    #[serde(default)]
    collections: Vec<RawCollection>,
}

#[derive(Deserialize)]
struct RawCollection {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    can_read: Option<bool>,
    #[serde(default)]
    can_write: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    more: Option<bool>,
    #[serde(default)]
    next: Option<Value>,
    #[serde(default, borrow)]
    objects: Option<Vec<&'a RawValue>>,
}

/// A connected API root.
struct Server {
    client: Client,
    root: Url,
}

impl Server {
    fn connect(src: &TaxiiSource, job: &Job, ctx: &mut Ctx<'_>) -> Result<Server, SyncError> {
        let auth = |base: &Url| {
            let auth = match &job.key {
                Some(k) => Auth::Basic(src.user.clone(), k.clone()),
                None => Auth::None,
            };
            Client::new(&job.http, auth, base)
        };
        let root = match (&src.api_root, &src.discovery) {
            (Some(r), _) => parse_url(r, "--api-root")?,
            (None, Some(d)) => {
                let durl = parse_url(d, "--discovery")?;
                let client = auth(&durl);
                let resp = client.get(&durl, MEDIA_TYPE, ctx)?;
                let disc: Discovery = parse_json(&resp.body, &durl)?;
                let pick = disc
                    .default
                    .clone()
                    .or_else(|| match disc.api_roots.as_slice() {
                        [only] => Some(only.clone()),
                        _ => None,
                    });
                let Some(pick) = pick else {
                    return Err(SyncError::Protocol {
                        url: display_url(&durl),
                        detail: format!(
                            "the server names no default API root; choose one with --api-root: {}",
                            disc.api_roots.join(", ")
                        ),
                    });
                };
                durl.join(&pick).map_err(|e| SyncError::Protocol {
                    url: display_url(&durl),
                    detail: format!("API root {pick:?} is not a URL: {e}"),
                })?
            }
            (None, None) => {
                return Err(SyncError::Config(
                    "give the API root (--api-root URL) or a discovery URL (--discovery URL)"
                        .into(),
                ))
            }
        };
        let root = with_slash(root);
        let client = auth(&root);
        Ok(Server { client, root })
    }

    fn check_api_root(&self, ctx: &mut Ctx<'_>) -> Result<(), SyncError> {
        let resp = self.client.get(&self.root, MEDIA_TYPE, ctx)?;
        let info: ApiRootInfo = parse_json(&resp.body, &self.root)?;
        if let Some(versions) = info.versions {
            let ok = versions
                .iter()
                .any(|v| v.replace(' ', "").eq_ignore_ascii_case(MEDIA_TYPE));
            if !ok {
                return Err(SyncError::Protocol {
                    url: display_url(&self.root),
                    detail: format!(
                        "the API root does not serve TAXII 2.1 (versions: {})",
                        versions.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    fn collections(&self, ctx: &mut Ctx<'_>) -> Result<Vec<CollectionInfo>, SyncError> {
        let url = self.endpoint(&["collections", ""]);
        let resp = self.client.get(&url, MEDIA_TYPE, ctx)?;
        let c: Collections = parse_json(&resp.body, &url)?;
        Ok(c.collections
            .into_iter()
            .map(|c| CollectionInfo {
                id: c.id,
                title: c.title.unwrap_or_default(),
                description: c.description.unwrap_or_default(),
                can_read: c.can_read.unwrap_or(false),
                can_write: c.can_write.unwrap_or(false),
            })
            .collect())
    }

    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut u = self.root.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty();
            p.extend(segments);
        }
        u
    }
}

fn with_slash(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}

/// Lists the collections of the API root (for `--list-collections`).
///
/// # Errors
/// [`SyncError`] as a pull: connection, HTTP status, malformed response.
pub fn list_collections(
    src: &TaxiiSource,
    job: &Job,
    stop: &std::sync::atomic::AtomicBool,
    events: &mut dyn FnMut(Event),
) -> Result<(String, Vec<CollectionInfo>), SyncError> {
    let mut ctx = Ctx { stop, events };
    let server = Server::connect(src, job, &mut ctx)?;
    server.check_api_root(&mut ctx)?;
    let list = server.collections(&mut ctx)?;
    Ok((display_url(&server.root), list))
}

/// Pulls every requested collection into `store` (in memory; the caller writes it).
pub(crate) fn pull(
    src: &TaxiiSource,
    job: &Job,
    store: &mut Store,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<SourceReport>, SyncError> {
    if src.collections.is_empty() {
        return Err(SyncError::Config(
            "name at least one collection (--collection ID; --list-collections shows them)".into(),
        ));
    }
    if src.page_size == 0 {
        return Err(SyncError::Config("the page size must be at least 1".into()));
    }
    let server = Server::connect(src, job, ctx)?;
    server.check_api_root(ctx)?;
    let available = server.collections(ctx)?;
    let mut chosen: Vec<&CollectionInfo> = Vec::new();
    for want in &src.collections {
        let found = available
            .iter()
            .find(|c| c.id == *want)
            .or_else(|| {
                available
                    .iter()
                    .find(|c| !c.title.is_empty() && c.title.eq_ignore_ascii_case(want))
            })
            .ok_or_else(|| SyncError::Protocol {
                url: display_url(&server.endpoint(&["collections", ""])),
                detail: format!(
                    "no collection {want:?} at this API root; there are: {}",
                    if available.is_empty() {
                        "none".to_string()
                    } else {
                        available
                            .iter()
                            .map(|c| format!("{} ({})", c.id, c.title))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            })?;
        if !found.can_read {
            return Err(SyncError::Protocol {
                url: display_url(&server.endpoint(&["collections", &found.id, ""])),
                detail: format!("collection {} is not readable with this key", found.id),
            });
        }
        if !chosen.iter().any(|c| c.id == found.id) {
            chosen.push(found);
        }
    }
    let window_start = src.max_age.map(|age| {
        let ticks = i64::try_from(age.as_nanos() / 100).unwrap_or(i64::MAX);
        Timestamp::from_ticks(Timestamp::now().ticks().saturating_sub(ticks))
            .unwrap_or(Timestamp::MIN)
    });
    let mut reports = Vec::new();
    for coll in chosen {
        reports.push(pull_collection(
            &server,
            coll,
            src,
            job.full,
            window_start,
            store,
            ctx,
        )?);
    }
    Ok(reports)
}

/// The store's key of a collection.
fn source_key(root: &Url, id: &str) -> String {
    format!("taxii {} {id}", display_url(root))
}

fn pull_collection(
    server: &Server,
    coll: &CollectionInfo,
    src: &TaxiiSource,
    full: bool,
    window_start: Option<Timestamp>,
    store: &mut Store,
    ctx: &mut Ctx<'_>,
) -> Result<SourceReport, SyncError> {
    let key = source_key(&server.root, &coll.id);
    let name = if coll.title.is_empty() || coll.title == coll.id {
        coll.id.clone()
    } else {
        format!("{} ({})", coll.id, coll.title)
    };
    let checkpoint = if full {
        None
    } else {
        store.source(&key).and_then(|s| s.checkpoint.clone())
    };
    let added_after = later(checkpoint.clone(), window_start.map(taxii_time));
    let mut report = SourceReport {
        name: name.clone(),
        added_after: added_after.clone(),
        checkpoint: checkpoint.clone(),
        ..SourceReport::default()
    };
    ctx.emit(Event::SourceStart {
        name: name.clone(),
        added_after: added_after.clone(),
    });
    if full {
        store.clear_stix_source(&key);
    }
    let base = server.endpoint(&["collections", &coll.id, "objects", ""]);
    let mut filter_after = added_after;
    let mut next: Option<String> = None;
    let mut newest = checkpoint;
    let mut seen_next = std::collections::HashSet::new();
    loop {
        let mut url = base.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &src.page_size.to_string());
            q.append_pair("match[type]", "indicator");
            if let Some(a) = &filter_after {
                q.append_pair("added_after", a);
            }
            if let Some(n) = &next {
                q.append_pair("next", n);
            }
        }
        let resp = server.client.get(&url, MEDIA_TYPE, ctx)?;
        let env: Envelope = parse_json(&resp.body, &url)?;
        let objects = env.objects.unwrap_or_default();
        let more = env.more.unwrap_or(false);
        report.pages += 1;
        report.received += objects.len() as u64;
        ctx.emit(Event::Page {
            name: name.clone(),
            page: report.pages,
            items: objects.len(),
            more,
        });
        for raw in &objects {
            let outcome = store
                .merge_stix(&key, raw)
                .map_err(|e| SyncError::Protocol {
                    url: display_url(&url),
                    detail: format!("an element of `objects` is not a STIX object: {e}"),
                })?;
            match outcome {
                Merge::Added => report.added += 1,
                Merge::Updated => report.updated += 1,
                Merge::Unchanged => report.unchanged += 1,
                Merge::Revoked => report.revoked += 1,
                Merge::Ignored => report.ignored += 1,
            }
        }
        let last = resp
            .header("X-TAXII-Date-Added-Last")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(l) = &last {
            if Timestamp::parse(l).is_none() {
                return Err(SyncError::Protocol {
                    url: display_url(&url),
                    detail: format!("X-TAXII-Date-Added-Last is not a timestamp: {l:?}"),
                });
            }
            newest = later(newest, Some(l.clone()));
        }
        if !more {
            break;
        }
        if report.pages >= MAX_PAGES {
            return Err(SyncError::Protocol {
                url: display_url(&base),
                detail: format!("more than {MAX_PAGES} pages: giving up"),
            });
        }
        match env.next {
            Some(Value::String(n)) if !n.is_empty() => {
                if !seen_next.insert(n.clone()) && objects.is_empty() {
                    return Err(SyncError::Protocol {
                        url: display_url(&url),
                        detail: "the server repeats the same `next` without objects".into(),
                    });
                }
                next = Some(n);
            }
            Some(Value::Number(n)) => next = Some(n.to_string()),
            _ => {
                // No `next`: continue after the newest object of this page.
                match last {
                    Some(l) if Some(&l) != filter_after.as_ref() => {
                        filter_after = Some(l);
                        next = None;
                    }
                    _ => {
                        return Err(SyncError::Protocol {
                            url: display_url(&url),
                            detail: "the page says `more` but gives neither `next` nor a new \
                                     X-TAXII-Date-Added-Last to continue from"
                                .into(),
                        })
                    }
                }
            }
        }
        ctx.check_stop()?;
    }
    let state = store.source_mut(&key);
    state.label = format!("taxii:{}", coll.id);
    state.checkpoint.clone_from(&newest);
    state.synced = Some(Timestamp::now().to_string());
    report.checkpoint = newest;
    Ok(report)
}

/// The later of two TAXII timestamps (as strings; unparsable ones lose).
fn later(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (ta, tb) = (Timestamp::parse(&a), Timestamp::parse(&b));
            if tb > ta {
                Some(b)
            } else {
                Some(a)
            }
        }
        (a, b) => a.or(b),
    }
}

/// A timestamp as TAXII writes them: `2026-01-02T03:04:05.123456Z`.
fn taxii_time(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s, sub) = t.to_parts();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}Z",
        sub / 10
    )
}

/// Parses a JSON response body, telling a page cut short from other malformed JSON.
pub(crate) fn parse_json<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    url: &Url,
) -> Result<T, SyncError> {
    serde_json::from_slice(body).map_err(|e| json_error(&e, body, url))
}

pub(crate) fn json_error(e: &serde_json::Error, body: &[u8], url: &Url) -> SyncError {
    let url = display_url(url);
    if e.is_eof() && !body.trim_ascii().is_empty() {
        SyncError::Truncated {
            url,
            detail: format!("the JSON ends early after {} bytes ({e})", body.len()),
        }
    } else if e.is_data() {
        SyncError::Protocol {
            url,
            detail: format!("unexpected response: {e}"),
        }
    } else {
        SyncError::Malformed {
            url,
            detail: if body.trim_ascii().is_empty() {
                "empty response body".into()
            } else {
                e.to_string()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = Timestamp::parse("2024-01-02T03:04:05.1234567Z").unwrap();
        assert_eq!(taxii_time(t), "2024-01-02T03:04:05.123456Z");
        assert_eq!(
            later(
                Some("2024-01-01T00:00:00.000000Z".into()),
                Some("2024-02-01T00:00:00Z".into())
            ),
            Some("2024-02-01T00:00:00Z".into())
        );
        assert_eq!(later(None, Some("x".into())), Some("x".into()));
        assert_eq!(later(None, None), None);
    }

    #[test]
    fn endpoints() {
        let s = Server {
            client: Client::new(
                &Default::default(),
                Auth::None,
                &Url::parse("http://h/").unwrap(),
            ),
            root: with_slash(Url::parse("http://h/api/taxii2/api").unwrap()),
        };
        assert_eq!(
            s.endpoint(&["collections", "a b/c", "objects", ""])
                .as_str(),
            "http://h/api/taxii2/api/collections/a%20b%2Fc/objects/"
        );
    }

    #[test]
    fn json_errors() {
        let u = Url::parse("http://h/x").unwrap();
        let e = parse_json::<Value>(b"{\"more\": tr", &u).unwrap_err();
        assert!(matches!(e, SyncError::Truncated { .. }), "{e}");
        let e = parse_json::<Value>(b"<html>", &u).unwrap_err();
        assert!(matches!(e, SyncError::Malformed { .. }), "{e}");
        let e = parse_json::<Value>(b"", &u).unwrap_err();
        assert!(matches!(e, SyncError::Malformed { .. }), "{e}");
        let e = parse_json::<Envelope>(b"{\"more\": 3}", &u).unwrap_err();
        assert!(matches!(e, SyncError::Protocol { .. }), "{e}");
    }
}
