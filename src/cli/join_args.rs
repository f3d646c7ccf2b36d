//! The arguments `hunt` and `filter` share: which join, its semantics, and where the fields are.

use anyhow::{bail, Context, Result};
use iocmatch::hunt::{Expiry, HuntOptions, Query, Semantics};
use iocmatch::logs::{LogFormat, Logical};

pub fn parse_query(s: &str) -> Result<Query, String> {
    match s {
        "network" => Ok(Query::Network),
        "dns" => Ok(Query::Dns),
        _ => Err(format!("unknown query {s:?}: `network` or `dns`")),
    }
}

pub fn parse_semantics(s: &str) -> Result<Semantics, String> {
    match s {
        "kql" => Ok(Semantics::Kql),
        "normalized" => Ok(Semantics::Normalized),
        _ => Err(format!("unknown semantics {s:?}: `normalized` or `kql`")),
    }
}

pub fn parse_expiry(s: &str) -> Result<Expiry, String> {
    match s {
        "now" => Ok(Expiry::Now),
        "at-event" => Ok(Expiry::AtEvent),
        _ => Err(format!("unknown expiry rule {s:?}: `now` or `at-event`")),
    }
}

pub fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    LogFormat::from_name(s).ok_or_else(|| format!("unknown log format {s:?}: csv, ndjson or zeek"))
}

/// Loads `--index`: a compiled index (mapped) or feeds compiled in memory, naming the paths in
/// any error.
pub fn load_index(
    paths: &[std::path::PathBuf],
    opts: &iocmatch::ingest::IngestOptions,
) -> Result<(
    iocmatch::Index<iocmatch::index::IndexBytes>,
    Option<iocmatch::ingest::Report>,
)> {
    iocmatch::index::load(paths, opts).map_err(|e| {
        // Name the files unless the error already does (I/O and feed errors name theirs).
        let context = if e.names_file() {
            "cannot load the index".to_string()
        } else {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            format!("cannot load the index from {}", names.join(", "))
        };
        anyhow::Error::new(e).context(context)
    })
}

/// Copies the index's lookup sections into huge pages ([`iocmatch::Index::load_hot_sections`])
/// for a long hunt. Failure only costs speed: the index reads its file map as before.
pub fn load_hot(index: &mut iocmatch::Index<iocmatch::index::IndexBytes>) {
    let _ = index.load_hot_sections();
}

/// Whether a hunt over `sources` is long enough to pay for [`load_hot`]: standard input (a
/// stream of unknown length), or files of 32 MiB or more in all.
pub fn long_hunt(sources: &[iocmatch::logs::input::Source]) -> bool {
    use iocmatch::logs::input::Source;
    let mut bytes = 0u64;
    for s in sources {
        match s {
            Source::Stdin => return true,
            Source::File(p) => bytes += std::fs::metadata(p).map_or(0, |m| m.len()),
        }
    }
    bytes >= 32 << 20
}

/// Applies `--match F,F` and `--column FIELD=NAME` to `opts`.
pub fn apply_fields(
    opts: &mut HuntOptions,
    match_fields: &[String],
    columns: &[String],
) -> Result<()> {
    let q = opts.query;
    if !match_fields.is_empty() {
        opts.match_fields = match_fields
            .iter()
            .map(
                |f| match q.logical(f.trim()).filter(|l| *l != Logical::Time) {
                    Some(Logical::Extra) if q == Query::Network => None,
                    l => l,
                },
            )
            .zip(match_fields)
            .map(|(l, f)| match l {
                Some(l) => Ok(l),
                None => bail!(
                    "--match {f}: not a matchable field of this query (use {})",
                    if q == Query::Network {
                        "SourceIP,DestinationIP"
                    } else {
                        "Name,IPAddresses"
                    }
                ),
            })
            .collect::<Result<_>>()?;
    }
    for c in columns {
        let (field, name) = c.split_once('=').with_context(|| {
            format!("--column {c}: expected FIELD=NAME, e.g. DestinationIP=dst_ip")
        })?;
        let l = q
            .logical(field.trim())
            .with_context(|| format!("--column {c}: {field} is not a field of this query"))?;
        opts.columns[l as usize] = Some(name.trim().to_string());
    }
    Ok(())
}
