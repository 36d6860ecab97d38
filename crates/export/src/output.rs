//! The export folder: files written once, hashed as they are made, each recorded (path,
//! size, SHA-256, counts) in a spool that becomes the manifest's `outputs`.
//!
//! Small whole files (an RSMF, a day's HTML) are handed to a few writer threads: an export
//! creates one file per conversation and day, and file systems create files in parallel
//! much faster than one after another. Their digests are taken before the hand-off, so
//! the manifest lists them in the order they were made, whichever thread writes them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ExportError;
use crate::selection::Format;
use crate::spool::Spool;

/// Whole files up to this size go to the writer threads; larger ones are written in place.
const POOLED_FILE_BYTES: usize = 1024 * 1024;
/// Files waiting for a writer thread (bounds the memory they hold).
const POOL_QUEUE: usize = 32;

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

/// A whole file for a writer thread.
struct Job {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// Writer threads, and the first error any of them met.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    failed: Arc<Mutex<Option<ExportError>>>,
}

impl Pool {
    fn start() -> Pool {
        let (jobs, queue) = sync_channel::<Job>(POOL_QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let failed = Arc::new(Mutex::new(None));
        let count = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        let threads = (0..count)
            .map(|_| {
                let (queue, failed) = (Arc::clone(&queue), Arc::clone(&failed));
                std::thread::spawn(move || write_jobs(&queue, &failed))
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            threads,
            failed,
        }
    }

    fn error(&self) -> Option<ExportError> {
        self.failed.lock().ok().and_then(|mut f| f.take())
    }

    fn submit(&mut self, job: Job) -> Result<(), ExportError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let path = job.path.clone();
        match &self.jobs {
            Some(jobs) if jobs.send(job).is_ok() => Ok(()),
            _ => Err(self.error().unwrap_or_else(|| ExportError::Io {
                operation: "write",
                path,
                source: std::io::Error::other("the file writers stopped"),
            })),
        }
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        self.error().map_or(Ok(()), Err)
    }
}

fn write_jobs(queue: &Mutex<Receiver<Job>>, failed: &Mutex<Option<ExportError>>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        if let Err(e) = write_new(&job.path, &job.bytes)
            && let Ok(mut failed) = failed.lock()
        {
            failed.get_or_insert(e);
        }
    }
}

/// Creates `path` (never overwriting) with `bytes`.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(ExportError::io("create folder", parent))?;
    }
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(ExportError::io("create", path))?;
    file.write_all(bytes)
        .map_err(ExportError::io("write", path))
}

/// The export folder and the record of what was written into it.
pub(crate) struct Outputs {
    root: PathBuf,
    spool: Spool<OutputEntry>,
    pool: Pool,
}

impl Outputs {
    pub fn new(root: &Path, spool: Spool<OutputEntry>) -> Outputs {
        Outputs {
            root: root.to_path_buf(),
            spool,
            pool: Pool::start(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts a file at `relative` (created, never overwritten), written as it goes.
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

    /// Records and writes a whole file.
    pub fn write_all(
        &mut self,
        relative: &str,
        bytes: Vec<u8>,
        format: Format,
        counts: OutputCounts,
    ) -> Result<(), ExportError> {
        self.spool.push(&OutputEntry {
            path: relative.to_string(),
            format: format.name().to_string(),
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            counts,
        })?;
        let path = self.root.join(relative);
        if bytes.len() <= POOLED_FILE_BYTES {
            self.pool.submit(Job { path, bytes })
        } else {
            write_new(&path, &bytes)
        }
    }

    /// Finishes a file written as it went, and records it.
    pub fn close(
        &mut self,
        file: OutputFile,
        format: Format,
        counts: OutputCounts,
    ) -> Result<(), ExportError> {
        self.close_as(file, format.name(), counts)
    }

    /// As [`Outputs::close`], for files that belong to no one format (copied blobs).
    pub fn close_as(
        &mut self,
        mut file: OutputFile,
        format: &str,
        counts: OutputCounts,
    ) -> Result<(), ExportError> {
        // No fsync per file: the manifest, written last, is what says an export is complete.
        file.out
            .flush()
            .map_err(ExportError::io("write", file.path.clone()))?;
        self.spool.push(&OutputEntry {
            path: file.relative,
            format: format.to_string(),
            bytes: file.bytes,
            sha256: hex::encode(file.hasher.finalize()),
            counts,
        })
    }

    /// Removes a file begun but not to be kept; it is not recorded.
    pub fn discard(&self, file: OutputFile) {
        let path = file.path.clone();
        drop(file);
        let _ = std::fs::remove_file(&path);
        // The folder made for it, unless it holds other files.
        if let Some(parent) = path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }

    /// Records a file written elsewhere (appended to over the export, like an mbox).
    pub fn record(&mut self, entry: &OutputEntry) -> Result<(), ExportError> {
        self.spool.push(entry)
    }

    /// Waits for every file to be written; the record of them.
    pub fn finish(mut self) -> Result<Spool<OutputEntry>, ExportError> {
        self.pool.finish()?;
        Ok(self.spool)
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
    /// Writes, naming the file in any error.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.write_all(bytes)
            .map_err(ExportError::io("write", self.path.clone()))
    }

    /// The SHA-256 (hex) of the bytes written so far.
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// How many bytes were written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn path(&self) -> &Path {
        &self.path
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_files_are_written_and_listed_in_the_order_made() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut outputs = Outputs::new(&out, Spool::create(dir.path(), "o").unwrap());
        for i in 0..100 {
            let relative = format!("d{}/f{i}.txt", i % 7);
            outputs
                .write_all(
                    &relative,
                    format!("file {i}").into_bytes(),
                    Format::Html,
                    OutputCounts::default(),
                )
                .unwrap();
        }
        let spool = outputs.finish().unwrap();
        let mut listed = Vec::new();
        spool.write_items(&mut listed, "").unwrap();
        let paths: Vec<String> = String::from_utf8(listed)
            .unwrap()
            .split(",\n")
            .map(|l| serde_json::from_str::<OutputEntry>(l.trim()).unwrap().path)
            .collect();
        let expected: Vec<String> = (0..100).map(|i| format!("d{}/f{i}.txt", i % 7)).collect();
        assert_eq!(paths, expected);
        for i in [0, 42, 99] {
            let text = std::fs::read_to_string(out.join(format!("d{}/f{i}.txt", i % 7))).unwrap();
            assert_eq!(text, format!("file {i}"));
        }
    }

    #[test]
    fn a_write_that_fails_fails_the_export_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut outputs = Outputs::new(&out, Spool::create(dir.path(), "o").unwrap());
        outputs
            .write_all(
                "a.txt",
                b"1".to_vec(),
                Format::Html,
                OutputCounts::default(),
            )
            .unwrap();
        // The same name again: files are never overwritten.
        let again = outputs.write_all(
            "a.txt",
            b"2".to_vec(),
            Format::Html,
            OutputCounts::default(),
        );
        let error = match again {
            Err(e) => e,
            Ok(()) => outputs.finish().err().expect("the second write fails"),
        };
        assert!(error.to_string().contains("a.txt"), "{error}");
    }
}
