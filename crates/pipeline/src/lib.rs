//! The one pipeline from sources to the archive. A source pushes the items it reads into
//! lanes; the [`driver`] transforms them, buffers the rows, commits them through the sink,
//! and saves each checkpoint only after the rows it covers are durable. Two sources use
//! it: [`sync`] (Microsoft Graph, scope by scope, resumable from checkpoints) and
//! [`ingest`] (saved Graph responses, sorted by day first). Both leave a run summary in
//! the archive and return it. While `sync` reads messages, [`content`] captures the
//! images, files and attachments they point to. [`status`] reports where an archive's scopes and runs stand.
//! Both keep what they put on local disk in a [`scratch`] folder, reclaimed if a run is killed.
//! Linking it sets the program's allocator: jemalloc, tuned to hand freed pages back.

mod allocator;
pub mod content;
pub mod driver;
pub mod ingest;
pub mod progress;
pub mod run;
pub mod scratch;
pub mod status;
pub mod sync;

pub use driver::{Driver, DriverOptions, ItemKind, Lane, Rows, Written};
pub use progress::{Progress, Snapshot};
