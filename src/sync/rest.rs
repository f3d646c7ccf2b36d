//! REST feed pulls: `GET URL?type=T&limit=N` with `Authorization: Bearer KEY`, page after page.
//!
//! Each page must be a REST feed response as [`crate::ingest::rest`] reads it (a JSON object
//! with a `data` array, or one of its accepted spellings); an error document such as
//! `{"error":"invalid api key"}` fails the pull. The next page is where
//! [`crate::ingest::rest::next_page`] says: a value that looks like a URL (`http://…`,
//! `https://…`, `/…`, `?…`) is followed as a link, resolved against the page's URL and only on
//! the configured origin; anything else is a cursor, sent as the query parameter
//! [`RestSource::cursor_param`] (`cursor` by default) on the first page's URL. A cursor or link
//! seen twice ends the pull with an error instead of looping.
//!
//! [`RestSource::limit`] is the page size sent as `limit`. Each type is a source of its own in
//! the store, and a pull replaces that source's pages whole: the REST API gives the feed's
//! current content, with no incremental filter to rely on.

use super::http::{display_url, parse_url, Auth, Client};
use super::store::{compact, Store};
use super::{Ctx, Event, Job, SourceReport, SyncError};
use crate::ingest::{self, Collector};
use crate::time::Timestamp;
use serde_json::value::RawValue;
use std::collections::HashSet;
use url::Url;

/// Pages followed at most per type and pull.
const MAX_PAGES: u64 = 1_000_000;

/// What to pull from a REST feed API.
#[derive(Clone, Debug)]
pub struct RestSource {
    /// The endpoint (`https://host/api/v1/iocs`); its own query parameters are kept.
    pub url: String,
    /// Indicator types to request, one pull each (`type=ipv4`); empty: no `type` parameter.
    pub types: Vec<String>,
    /// Items per page, sent as `limit`.
    pub limit: u32,
    /// The query parameter a cursor is sent in.
    pub cursor_param: String,
}

impl Default for RestSource {
    fn default() -> RestSource {
        RestSource {
            url: String::new(),
            types: Vec::new(),
            limit: 100,
            cursor_param: "cursor".into(),
        }
    }
}

/// Pulls every requested type into `store` (in memory; the caller writes it).
pub(crate) fn pull(
    src: &RestSource,
    job: &Job,
    store: &mut Store,
    ctx: &mut Ctx<'_>,
) -> Result<Vec<SourceReport>, SyncError> {
    let base = parse_url(&src.url, "--url")?;
    if src.limit == 0 {
        return Err(SyncError::Config("--limit must be at least 1".into()));
    }
    let auth = match &job.key {
        Some(k) => Auth::Bearer(k.clone()),
        None => Auth::None,
    };
    let client = Client::new(&job.http, auth, &base);
    let types: Vec<Option<&str>> = if src.types.is_empty() {
        vec![None]
    } else {
        src.types.iter().map(|t| Some(t.as_str())).collect()
    };
    let mut reports = Vec::new();
    let mut pulled = Vec::new();
    for ty in types {
        let (report, pages) = pull_type(&client, &base, ty, src, ctx)?;
        pulled.push((source_key(&base, ty), ty, pages));
        reports.push(report);
    }
    // Only once every type arrived whole.
    for (key, ty, pages) in pulled {
        store.replace_rest(&key, pages);
        let state = store.source_mut(&key);
        state.label = match ty {
            Some(t) => format!("rest:{t}"),
            None => "rest".into(),
        };
        state.synced = Some(Timestamp::now().to_string());
    }
    Ok(reports)
}

fn source_key(base: &Url, ty: Option<&str>) -> String {
    match ty {
        Some(t) => format!("rest {} type={t}", display_url(base)),
        None => format!("rest {}", display_url(base)),
    }
}

/// `url` with `name=value` set (replacing any earlier value of `name`).
fn set_param(url: &Url, name: &str, value: &str) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut u = url.clone();
    u.set_query(None);
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(name, value);
    }
    u
}

fn pull_type(
    client: &Client,
    base: &Url,
    ty: Option<&str>,
    src: &RestSource,
    ctx: &mut Ctx<'_>,
) -> Result<(SourceReport, Vec<Box<RawValue>>), SyncError> {
    let name = match ty {
        Some(t) => format!("{} type={t}", display_url(base)),
        None => display_url(base),
    };
    let mut first = base.clone();
    if let Some(t) = ty {
        first = set_param(&first, "type", t);
    }
    first = set_param(&first, "limit", &src.limit.to_string());
    ctx.emit(Event::SourceStart {
        name: name.clone(),
        added_after: None,
    });
    let mut report = SourceReport {
        name: name.clone(),
        ..SourceReport::default()
    };
    let mut pages = Vec::new();
    let mut url = first.clone();
    let mut seen = HashSet::new();
    seen.insert(url.to_string());
    loop {
        let resp = client.get(&url, "application/json", ctx)?;
        let body = resp.body;
        let raw: Box<RawValue> =
            serde_json::from_slice(&body).map_err(|e| super::taxii::json_error(&e, &body, &url))?;
        let mut check = Collector::new();
        ingest::rest::parse(&body, &mut check).map_err(|why| SyncError::Protocol {
            url: display_url(&url),
            detail: format!("not a REST feed page: {}", client.scrub(&why)),
        })?;
        let items = check.report().read as usize;
        let next = ingest::rest::next_page(&body);
        report.pages += 1;
        report.received += items as u64;
        ctx.emit(Event::Page {
            name: name.clone(),
            page: report.pages,
            items,
            more: next.is_some(),
        });
        pages.push(compact(&raw).map_err(|detail| SyncError::Malformed {
            url: display_url(&url),
            detail,
        })?);
        let Some(next) = next else { break };
        let looks_like_link = next.starts_with("http://")
            || next.starts_with("https://")
            || next.starts_with('/')
            || next.starts_with('?');
        let next_url = if looks_like_link {
            url.join(&next).map_err(|e| SyncError::Protocol {
                url: display_url(&url),
                detail: format!("next-page link {next:?} is not a URL: {e}"),
            })?
        } else {
            set_param(&first, &src.cursor_param, &next)
        };
        if !seen.insert(next_url.to_string()) {
            return Err(SyncError::Protocol {
                url: display_url(&url),
                detail: format!("pagination loops: page {next:?} was already fetched"),
            });
        }
        if report.pages >= MAX_PAGES {
            return Err(SyncError::Protocol {
                url: display_url(base),
                detail: format!("more than {MAX_PAGES} pages: giving up"),
            });
        }
        ctx.check_stop()?;
        url = next_url;
    }
    Ok((report, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let u = Url::parse("https://h/api/v1/iocs?feed=a&limit=5").unwrap();
        let u = set_param(&u, "limit", "100");
        let u = set_param(&u, "type", "ipv4");
        assert_eq!(
            u.as_str(),
            "https://h/api/v1/iocs?feed=a&limit=100&type=ipv4"
        );
        let c = set_param(&u, "cursor", "a b&c");
        assert_eq!(
            c.as_str(),
            "https://h/api/v1/iocs?feed=a&limit=100&type=ipv4&cursor=a+b%26c"
        );
        assert_eq!(
            source_key(&u, Some("ipv4")),
            "rest https://h/api/v1/iocs?feed=a&limit=100&type=ipv4 type=ipv4"
        );
    }
}
