//! Data contracts shared by every stage: the feature schema, an in-memory column table,
//! CSV reading and writing (polars underneath), validation with errors that name the file,
//! column and row, and atomic output files.

pub mod frame;
pub mod schema;

pub use frame::{Frame, Labeled};
