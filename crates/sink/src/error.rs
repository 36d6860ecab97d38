//! The one error type of the sink: every variant names what it was doing and on what.

use arrow::error::ArrowError;
use parquet::errors::ParquetError;

/// Everything that can go wrong while writing the archive or the state store.
///
/// Each variant names the table, partition, object key or file involved and the
/// operation that failed; errors from object stores keep object_store's own message
/// (which carries the service's reply).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A location (archive or state) could not be parsed or opened.
    #[error("cannot open location `{location}`: {reason}")]
    Location { location: String, reason: String },

    /// A writer option is unusable.
    #[error("invalid writer options: {reason}")]
    InvalidOptions { reason: String },

    /// A table spec is unusable (missing column, unsupported type).
    #[error("table `{table}`: invalid table spec: {reason}")]
    InvalidTableSpec { table: String, reason: String },

    /// `append` named a table the writer was not opened with.
    #[error("table `{table}` is not one of the tables this writer was opened with ({known})")]
    UnknownTable { table: String, known: String },

    /// A blob could not be stored as asked.
    #[error("blob `{key}`: {detail}")]
    Blob { key: String, detail: String },

    /// A batch does not have the table's schema.
    #[error("table `{table}`: batch does not match the table schema: {detail}")]
    SchemaMismatch { table: String, detail: String },

    /// A row has no value in a column that must have one (partition or version key).
    #[error("table `{table}`, row {row} of the batch: column `{column}` is null ({why})")]
    NullValue {
        table: String,
        row: usize,
        column: String,
        why: &'static str,
    },

    /// A partition value cannot be written as a `YYYY-MM-DD` directory name.
    #[error(
        "table `{table}`, row {row} of the batch: partition value {days} days from 1970-01-01 is outside years 0000-9999"
    )]
    PartitionOutOfRange {
        table: String,
        row: usize,
        days: i32,
    },

    /// A record of the archive or the state (commit record, write-ahead record) is
    /// not readable as its type.
    #[error("`{location}` key `{key}`: {source}")]
    Record {
        location: String,
        key: String,
        #[source]
        source: archive::records::RecordError,
    },

    /// Arrow refused to build or reshape a batch.
    #[error("table `{table}`, partition `{partition}`: {operation}: {source}")]
    Arrow {
        table: String,
        partition: String,
        operation: &'static str,
        #[source]
        source: Box<ArrowError>,
    },

    /// An object store operation failed.
    #[error("{operation} `{key}` in {location}: {source}")]
    Store {
        operation: &'static str,
        location: String,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },

    /// Encoding or decoding a Parquet file failed.
    #[error("{operation} Parquet file `{key}` in {location}: {source}")]
    Parquet {
        operation: &'static str,
        location: String,
        key: String,
        #[source]
        source: Box<ParquetError>,
    },

    /// A JSON document in the archive or state store could not be read or written.
    #[error("{operation} `{key}` in {location}: {source}")]
    Json {
        operation: &'static str,
        location: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },

    /// The archive holds something that contradicts what the writer knows.
    #[error("`{key}` in {location}: {reason}")]
    Inconsistent {
        location: String,
        key: String,
        reason: String,
    },

    /// The local version index failed.
    #[error("version index `{path}`: {operation}: {reason}")]
    Index {
        path: String,
        operation: &'static str,
        reason: String,
    },

    /// A local file or directory operation failed.
    #[error("{operation} `{path}`: {source}")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A previous commit failed part-way; the writer must be reopened so that the
    /// write-ahead record is completed before anything else is written.
    #[error(
        "an earlier commit failed ({reason}); reopen the writer to recover before appending or committing again"
    )]
    Poisoned { reason: String },
}

impl SinkError {
    pub(crate) fn index(
        path: &std::path::Path,
        operation: &'static str,
        source: impl std::fmt::Display,
    ) -> Self {
        SinkError::Index {
            path: path.display().to_string(),
            operation,
            reason: source.to_string(),
        }
    }
}
