//! The archive's contract: which tables it holds, where every object lives, and the
//! records written beside the data. Everything that writes or reads an archive (the
//! sink, the pipeline, `status`, `verify`, `export`, the `schemas/` generation and the
//! tests) takes these definitions from here, so a table, a path or a record format is
//! decided once.
//!
//! - [`Table`]: each table's folder, Arrow schema (from `transform`), version key and
//!   partition column, and how its views pick a message's latest version.
//! - [`layout`]: the key of every object: data files, commit records, run summaries, the
//!   state location and its checkpoints.
//! - [`records`]: the JSON documents of the archive and its state: commit records, the
//!   write-ahead record, run summaries. Each carries a `format` with a version; every
//!   kind, outcome and check in them is an enum with a stable serialised name.
//! - [`chain`]: each writer's chain of records, and how `verify` checks it.
//! - [`signing`]: Ed25519 signatures over records, for writers given a private key.

pub mod chain;
pub mod layout;
pub mod records;
pub mod signing;
mod tables;

pub use tables::{PARTITION_COLUMN, SCHEMA_VERSION, SCHEMA_VERSION_KEY, Table, TableSpec, Views};
