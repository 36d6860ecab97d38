//! Date-partitioned Parquet over object_store: deterministic file names, a commit
//! protocol that makes a checkpoint follow durable data, and the checkpoint store.
//!
//! The sink makes rows durable as Parquet exactly once, then moves checkpoints. It knows
//! no table by name: callers describe each with an [`archive::TableSpec`] (schema, `Date32`
//! partition column, version key columns) and append Arrow record batches. Where each
//! object goes and what the records hold is the archive's contract ([`archive::layout`],
//! [`archive::records`]); the version index lives at `<state>/version-index.redb` when the
//! state is local.
//!
//! Files are zstd Parquet with `TIMESTAMP(MICROS, UTC)` timestamps and standard
//! three-level lists; the partition column is only in the directory name. `<hash>` is
//! derived from the sorted version keys of the file's rows, and rows are written in key
//! order, so the same rows give the same name and the same bytes. Files are created,
//! never overwritten or deleted, and appear only complete (on local disk they are
//! written as `<name>#<n>` and renamed; recovery removes what a crash left under such
//! a name). Each file is encoded on a blocking thread, one per core at a time, and
//! streamed to the store while its SHA-256 is computed. Encoding choices follow each
//! file's data (see `encoding`): leaves a file leaves empty are written bare, which is
//! what makes files of wide, sparse tables cheap.
//!
//! # Commit protocol
//!
//! [`ArchiveWriter::commit`] writes a write-ahead record naming the files, the files,
//! an immutable commit record, the version keys into the index, the checkpoints, and
//! then removes the write-ahead record. [`ArchiveWriter::open`] first completes an
//! interrupted commit (files that exist are committed and indexed, missing ones are
//! forgotten: their scopes' checkpoints never moved, so their rows come again and
//! everything already stored is dropped as known). A checkpoint is therefore never
//! ahead of durable data, and a version is never stored twice.
//!
//! # Version index
//!
//! The keys of committed rows, per table, in redb on local disk: in the state directory
//! when the state is local, otherwise in a cache directory ([`WriterOptions::index_dir`]).
//! Everything in it is derivable from the archive: it records which commit records it
//! has applied and, on open, applies the ones it has not seen (another machine's commits,
//! or all of them for a new or lost cache) by reading the key columns of their files. An
//! index that knows commits the archive does not have is rebuilt.
//!
//! # One writer per state location
//!
//! The write-ahead record and the index belong to one writer at a time (a second writer
//! on the same local index is refused). Writers that share an archive, such as shards,
//! each use their own state location. Where the store offers conditional creation
//! (local disk, S3, GCS, Azure), files that fit in one request and commit records are
//! created with `PutMode::Create`; multipart uploads cannot be conditional, so larger
//! files rely on a check that the name is absent just before writing.

mod blobs;
mod checkpoint;
mod encoding;
mod error;
mod index;
mod location;
mod object_writer;
mod parquet_file;
mod s3_versions;
mod store_io;
mod table;
mod writer;

pub use blobs::{BlobPut, BlobStore};
pub use checkpoint::{Checkpoint, CheckpointStore};
pub use error::SinkError;
pub use location::Location;
pub use parquet_file::{ObjectReader, read_batches};
pub use s3_versions::KeyVersions;
pub use store_io::{put_archive_object, read_records};
pub use writer::{
    AppendStats, ArchiveWriter, CommitReport, PROTOCOL_TARGET, ProtocolStep, RecoveryReport,
    WriterOptions,
};
