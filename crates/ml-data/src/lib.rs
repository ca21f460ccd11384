//! Data contracts shared by every stage: the feature schema and the raw files' optional `id`
//! key, an in-memory column table, CSV reading (a one-pass parser of our own) and writing
//! (polars' writer), validation with errors that name the file, column and row, the
//! stratified split, atomic output files and the SHA-256 checksums provenance records.

pub mod atomic;
mod csv;
pub mod date;
pub mod digest;
pub mod error;
pub mod frame;
pub mod io;
pub mod key;
pub mod schema;
pub mod split;

pub use date::Date;
pub use error::{CellProblem, DataError};
pub use frame::{Frame, Labeled};
pub use key::{Keyed, KeyedBy, RowKeys};
