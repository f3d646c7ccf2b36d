//! rest feeds (placeholder until the parser lands).
use super::Collector;
/// Parses a rest feed.
///
/// # Errors
/// Always, for now.
pub fn parse(_bytes: &[u8], _out: &mut Collector) -> Result<(), String> {
    Err("not built yet".into())
}
