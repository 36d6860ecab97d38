//! The export folder: files written once, hashed while they are written, each recorded
//! (path, size, SHA-256, counts) in a spool that becomes the manifest's `outputs`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ExportError;
use crate::selection::Format;
use crate::spool::Spool;

/// One file of an export, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputEntry {
    /// Relative to the export folder, `/`-separated.
    pub path: String,
    pub format: String,
    pub bytes: u64,
    pub sha256: String,
    #[serde(flatten)]
    pub counts: OutputCounts,
}

/// What an output file holds. Formats fill what applies to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<u32>,
    /// Graph messages shown.
    #[serde(default)]
    pub messages: u64,
    /// Archived versions written (JSONL and CSV rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<u64>,
    /// RSMF events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<u64>,
}

/// The export folder and the record of what was written into it.
pub(crate) struct Outputs {
    root: PathBuf,
    spool: Spool<OutputEntry>,
}

impl Outputs {
    pub fn new(root: &Path, spool: Spool<OutputEntry>) -> Outputs {
        Outputs {
            root: root.to_path_buf(),
            spool,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts a file at `relative` (created, never overwritten).
    pub fn create(&self, relative: &str) -> Result<OutputFile, ExportError> {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(ExportError::io("create folder", parent))?;
        }
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(ExportError::io("create", &path))?;
        Ok(OutputFile {
            relative: relative.to_string(),
            path,
            out: BufWriter::with_capacity(1 << 16, file),
            hasher: Sha256::new(),
            bytes: 0,
        })
    }

    /// Writes a whole file at once.
    pub fn write_all(
        &mut self,
        relative: &str,
        bytes: &[u8],
        format: Format,
        counts: OutputCounts,
    ) -> Result<(), ExportError> {
        let mut file = self.create(relative)?;
        file.write_all(bytes)
            .map_err(ExportError::io("write", file.path.clone()))?;
        self.close(file, format, counts)
    }

    /// Finishes a file and records it.
    pub fn close(
        &mut self,
        mut file: OutputFile,
        format: Format,
        counts: OutputCounts,
    ) -> Result<(), ExportError> {
        // No fsync per file: the manifest, written last, is what says an export is complete.
        file.out
            .flush()
            .map_err(ExportError::io("write", file.path.clone()))?;
        self.spool.push(&OutputEntry {
            path: file.relative,
            format: format.name().to_string(),
            bytes: file.bytes,
            sha256: hex::encode(file.hasher.finalize()),
            counts,
        })
    }

    pub fn into_spool(self) -> Spool<OutputEntry> {
        self.spool
    }
}

/// An output file being written: bytes go to disk and into its SHA-256.
pub(crate) struct OutputFile {
    relative: String,
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
}

impl OutputFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes, naming the file in any error.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.write_all(bytes)
            .map_err(ExportError::io("write", self.path.clone()))
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
