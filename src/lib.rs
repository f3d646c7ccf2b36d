//! iocmatch (crate docs come with the index).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod indicator;
pub mod ingest;
pub mod time;
