//! eDiscovery exports read back from a teams-archiver archive, and proof that nothing
//! was altered.
//!
//! [`export`] selects messages (custodians, chats, teams and channels, a time range,
//! keywords, deleted messages, every version) reading only the date partitions the
//! selection needs, and writes them as RSMF 2.0 for Relativity, JSONL, CSV and HTML
//! transcripts, and mail as EML and mbox, with the images, files and attachments they
//! point to copied once each into `files/<sha256>/<name>`, and `export_manifest.json`:
//! the selection, every archive file and blob read with its SHA-256, every file written
//! with its SHA-256 and counts. Memory stays within
//! a budget however large the archive (a day's rows are sorted out of core), and the
//! same archive and selection give byte-identical files.
//!
//! [`verify_archive`] checks an archive's files against its commit records and run
//! summaries and every row's `content_sha256` against its `raw_json`; [`verify_export`]
//! checks an export against its manifest. Each mismatch is named.

mod columns;
mod content;
mod conversation;
mod directory;
mod error;
mod export;
mod formats;
mod mail_rows;
mod manifest;
mod message;
mod mime;
mod output;
mod reader;
mod rows;
mod selection;
mod sort;
mod spool;
mod verify;
mod view;

pub use conversation::ConversationKey;
pub use error::ExportError;
pub use export::{ExportReport, ExportRequest, export};
pub use formats::rsmf::RsmfLimits;
pub use manifest::{ExportManifest, MANIFEST_FILE, SelectionRecord, Totals};
pub use output::{OutputCounts, OutputEntry};
pub use reader::ArchiveFileRead;
pub use selection::{Format, Selection};
pub use verify::{
    ExpectedHeads, Problem, ProblemKind, VerifyReport, verify_archive, verify_export,
};
