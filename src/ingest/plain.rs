//! plain feeds (placeholder until the parser lands).
use super::Collector;
/// Parses a plain feed.
///
/// # Errors
/// Always, for now.
pub fn parse(_bytes: &[u8], _out: &mut Collector) -> Result<(), String> {
    Err("not built yet".into())
}
