//! iocmatch (crate docs come with the index).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod gen;
pub mod index;
pub mod indicator;
pub mod ingest;
pub mod time;

pub use error::{Error, Result};
pub use index::Index;
