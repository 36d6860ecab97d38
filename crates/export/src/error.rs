//! What can stop an export or a verification, each naming what and where.

use std::path::PathBuf;

/// Why an export or a verification could not run to the end.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The request itself is wrong (a flag value, an empty selection of formats).
    #[error("{0}")]
    Request(String),

    /// The archive location could not be opened.
    #[error(transparent)]
    Location(Box<sink::SinkError>),

    /// Listing or reading an object of the archive failed.
    #[error("{operation} {key} in {archive}")]
    Store {
        operation: &'static str,
        archive: String,
        key: String,
        #[source]
        source: Box<object_store::Error>,
    },

    /// A Parquet file of the archive could not be decoded.
    #[error("reading {key} in {archive}")]
    Parquet {
        archive: String,
        key: String,
        #[source]
        source: Box<parquet::errors::ParquetError>,
    },

    /// A file of the archive does not have the shape its table promises.
    #[error("{key} in {archive}: {reason}")]
    Shape {
        archive: String,
        key: String,
        reason: String,
    },

    /// A local file (export output, spill file, manifest) could not be read or written.
    #[error("{operation} {}", path.display())]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A document (commit record, run summary, export manifest) is not what it claims.
    #[error("{what} {}: {reason}", path.display())]
    Document {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },

    /// An output file could not be encoded (zip, MIME, CSV).
    #[error("writing {}: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
}

impl From<sink::SinkError> for ExportError {
    fn from(error: sink::SinkError) -> Self {
        ExportError::Location(Box::new(error))
    }
}

impl ExportError {
    /// The error and every cause under it, on one line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }

    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ExportError::Io {
            operation,
            path,
            source,
        }
    }
}
