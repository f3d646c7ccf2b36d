//! Generic CSV feeds (placeholder until the parser lands).
use super::{Collector, IngestOptions};
/// Parses a generic CSV feed.
///
/// # Errors
/// Always, for now.
pub fn parse(_bytes: &[u8], _opts: &IngestOptions, _out: &mut Collector) -> Result<(), String> {
    Err("not built yet".into())
}
