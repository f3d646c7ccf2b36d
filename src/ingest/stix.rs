//! STIX 2.1 (placeholder until the STIX parser lands).
use super::Collector;
/// Parses STIX.
///
/// # Errors
/// Always, for now.
pub fn parse(_bytes: &[u8], _out: &mut Collector) -> Result<(), String> {
    Err("STIX parser not built yet".into())
}
