//! STIX patterns (placeholder).
