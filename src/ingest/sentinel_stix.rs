//! ThreatIntelIndicators exports (placeholder until the parser lands).
use super::Collector;
/// Parses a ThreatIntelIndicators CSV export.
///
/// # Errors
/// Always, for now.
pub fn parse_csv(_bytes: &[u8], _out: &mut Collector) -> Result<(), String> {
    Err("not built yet".into())
}
/// Parses a ThreatIntelIndicators JSON export.
///
/// # Errors
/// Always, for now.
pub fn parse_json(_bytes: &[u8], _out: &mut Collector) -> Result<(), String> {
    Err("not built yet".into())
}
