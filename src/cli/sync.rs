//! `iocmatch sync taxii|rest`: pull a feed into a fresh index (once, or `--every` interval).
//! The protocol work is in [`iocmatch::sync`]; this file maps arguments, prints events on
//! stderr and turns SIGINT/SIGTERM into a clean stop.

use super::output::parse_time_arg;
use super::Outcome;
use anyhow::{anyhow, Context, Result};
use iocmatch::sync::{
    self, ApiKey, Event, HttpOptions, Job, RestSource, Source, SyncReport, TaxiiSource,
};
use iocmatch::time::Timestamp;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
#[command(
    after_help = "The API key is read from --key-file FILE or the environment variable \
IOCMATCH_API_KEY, never from the command line, and is never printed.\n\
Exit status: 0 = the index was written (or, with --every, polling was stopped), 2 = error \
(the previous index and store are left as they were)."
)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Pull indicator objects from TAXII 2.1 collections (incremental after the first pull).
    Taxii(TaxiiArgs),
    /// Pull indicators from a REST feed API (`GET URL?type=T&limit=N`, bearer token).
    Rest(RestArgs),
}

#[derive(clap::Args)]
struct TaxiiArgs {
    /// The API root URL, such as https://host/api/taxii2/api/.
    #[arg(long, value_name = "URL", required_unless_present = "discovery")]
    api_root: Option<String>,
    /// A discovery URL (https://host/taxii2/): use the server's default API root.
    #[arg(long, value_name = "URL", conflicts_with = "api_root")]
    discovery: Option<String>,
    /// A collection id (or exact title) to pull; repeat for several.
    #[arg(
        long = "collection",
        value_name = "ID",
        required_unless_present = "list_collections"
    )]
    collections: Vec<String>,
    /// List the API root's collections and exit.
    #[arg(long)]
    list_collections: bool,
    /// The basic-auth user sent with the key (the key is the password); may be "".
    #[arg(long, default_value = "apikey", value_name = "NAME")]
    user: String,
    /// Objects per page (the `limit` parameter; the server may cap it).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    page_size: u32,
    /// Import window: request only objects the server added within it (`added_after` lower
    /// bound on the server's date_added), such as 30d.
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    max_age: Option<Duration>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct RestArgs {
    /// The endpoint, such as https://host/api/v1/iocs.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The indicator type to request (`type=`); repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Items per page (the `limit` parameter).
    #[arg(long, default_value_t = 100, value_name = "N")]
    limit: u32,
    /// The query parameter that carries a pagination cursor.
    #[arg(long, default_value = "cursor", value_name = "NAME")]
    cursor_param: String,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct Common {
    /// The index file to replace (atomically). Required except with --list-collections.
    #[arg(long, short, value_name = "INDEX")]
    out: Option<PathBuf>,
    /// The store of pulled objects and checkpoints [default: INDEX.store.jsonl].
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Read the API key from this file (else from $IOCMATCH_API_KEY).
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Keep polling at this interval (such as 1h) until SIGINT/SIGTERM; a failed poll keeps
    /// the previous index and is retried at the next interval.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    every: Option<Duration>,
    /// Ignore the checkpoints: pull everything and replace the store's objects of the pulled
    /// collections.
    #[arg(long)]
    full: bool,
    /// Limit for one request, body included.
    #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = parse_duration)]
    timeout: Duration,
    /// Limit for connecting.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Retries of a request after a transient failure (connection, timeout, 429, 5xx).
    #[arg(long, default_value_t = 3, value_name = "N")]
    retries: u32,
    /// The first wait before a retry; it doubles each time (Retry-After takes precedence).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    retry_wait: Duration,
    /// The longest wait before a retry.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    max_wait: Duration,
    /// Build time stored in the index header (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    build_time: Option<Timestamp>,
    /// Print nothing but errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Print every request and page.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    sync::parse_duration(s)
}

pub fn run(a: Args) -> Result<Outcome> {
    let (source, common, list) = match a.cmd {
        Cmd::Taxii(t) => (
            Source::Taxii(TaxiiSource {
                api_root: t.api_root,
                discovery: t.discovery,
                collections: t.collections,
                user: t.user,
                page_size: t.page_size,
                max_age: t.max_age,
            }),
            t.common,
            t.list_collections,
        ),
        Cmd::Rest(r) => (
            Source::Rest(RestSource {
                url: r.url,
                types: r.types,
                limit: r.limit,
                cursor_param: r.cursor_param,
            }),
            r.common,
            false,
        ),
    };
    let out = match (&common.out, list) {
        (Some(o), _) => o.clone(),
        (None, true) => PathBuf::new(),
        (None, false) => return Err(anyhow!("--out INDEX is required")),
    };
    let key = match &common.key_file {
        Some(p) => Some(ApiKey::from_file(p)?),
        None => ApiKey::from_env(sync::KEY_ENV)?,
    };
    let job = Job {
        source,
        out,
        store: common.store.clone(),
        key,
        http: HttpOptions {
            connect_timeout: common.connect_timeout,
            timeout: common.timeout,
            retries: common.retries,
            backoff: common.retry_wait,
            max_wait: common.max_wait,
            ..HttpOptions::default()
        },
        full: common.full,
        build_time: common.build_time,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .context("installing the signal handlers")?;
    }
    let printer = Printer {
        quiet: common.quiet,
        verbose: common.verbose,
    };
    let mut on_event = |e: Event| printer.event(e);
    if list {
        let Source::Taxii(t) = &job.source else {
            return Err(anyhow!("--list-collections is for TAXII"));
        };
        let (root, colls) = sync::taxii::list_collections(t, &job, &stop, &mut on_event)?;
        println!("collections of {root}:");
        for c in colls {
            println!(
                "{}\t{}\t{}{}",
                c.id,
                c.title,
                if c.can_read { "read" } else { "no-read" },
                if c.can_write { ",write" } else { "" }
            );
        }
        return Ok(Outcome::Matched);
    }
    match common.every {
        None => {
            let report = sync::sync_once(&job, &stop, &mut on_event)?;
            printer.synced(&report);
            Ok(Outcome::Matched)
        }
        Some(every) => {
            if every.is_zero() {
                return Err(anyhow!("--every must be longer than 0"));
            }
            let s = sync::poll(&job, every, &stop, &mut on_event);
            if !common.quiet {
                eprintln!(
                    "sync: stopped after {} successful and {} failed polls",
                    s.synced, s.failed
                );
            }
            Ok(Outcome::Matched)
        }
    }
}

struct Printer {
    quiet: bool,
    verbose: bool,
}

impl Printer {
    fn event(&self, e: Event) {
        match e {
            Event::Failed(err) => eprintln!(
                "iocmatch: error: {err} (kept the previous index; retrying at the next interval)"
            ),
            _ if self.quiet => {}
            Event::Request { url } if self.verbose => eprintln!("GET {url}"),
            Event::Retry {
                url,
                attempt,
                attempts,
                wait,
                reason,
            } => eprintln!(
                "warning: {reason}; retrying in {:.1} s (attempt {attempt} of {attempts}) {url}",
                wait.as_secs_f64()
            ),
            Event::SourceStart { name, added_after } => match added_after {
                Some(a) => eprintln!("pulling {name}: objects added after {a}"),
                None => eprintln!("pulling {name}"),
            },
            Event::Page {
                name,
                page,
                items,
                more,
            } if self.verbose => eprintln!(
                "  {name}: page {page}: {items} items{}",
                if more { ", more follow" } else { "" }
            ),
            Event::Synced(r) => self.synced(&r),
            Event::Waiting { next_in } if self.verbose => {
                eprintln!("next poll in {:.0} s", next_in.as_secs_f64())
            }
            _ => {}
        }
    }

    fn synced(&self, r: &SyncReport) {
        if self.quiet {
            return;
        }
        for s in &r.sources {
            let mut line = format!("{}: {} pages, {} received", s.name, s.pages, s.received);
            if s.added + s.updated + s.unchanged + s.revoked + s.ignored > 0 {
                line.push_str(&format!(
                    " ({} new, {} updated, {} unchanged, {} revoked, {} not indicators)",
                    s.added, s.updated, s.unchanged, s.revoked, s.ignored
                ));
            }
            if let Some(c) = &s.checkpoint {
                line.push_str(&format!("; checkpoint {c}"));
            }
            eprintln!("{line}");
        }
        let skipped = r.ingest.skipped_total();
        if skipped > 0 {
            eprintln!("skipped {skipped} objects the index cannot use:");
            for (reason, n) in &r.ingest.skipped {
                eprintln!("  {n:>8}  {reason}");
            }
            for p in r.ingest.problems.iter().take(5) {
                eprintln!("  {p}");
            }
        }
        eprintln!(
            "wrote {}: {} records, {} bytes; store {} ({} objects, {} pages) in {:.2} s",
            r.index_path.display(),
            r.index_records,
            r.index_bytes,
            r.store_path.display(),
            r.store_objects,
            r.store_pages,
            r.elapsed.as_secs_f64()
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: super::Args,
    }

    #[test]
    fn arguments_are_consistent() {
        Wrap::command().debug_assert();
        assert!(Wrap::try_parse_from(["x", "rest", "--url", "http://h/", "--out", "i"]).is_ok());
        assert!(Wrap::try_parse_from(["x", "taxii", "--api-root", "http://h/"]).is_err());
        assert!(Wrap::try_parse_from([
            "x",
            "taxii",
            "--api-root",
            "http://h/",
            "--list-collections"
        ])
        .is_ok());
        // There is no option that takes the key itself.
        assert!(Wrap::try_parse_from(["x", "rest", "--url", "u", "--key", "k"]).is_err());
    }
}
