//! Sorting more rows than fit in memory: sorted runs spilled to disk, then merged.
//!
//! Rows stay in memory until their estimated size passes the budget; then the buffer is
//! sorted and written to a run file. Finishing merges the runs (or, when nothing was
//! spilled, just sorts the buffer), so memory is the budget plus one read buffer per run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::ExportError;

/// The heap `strings` hold, roughly (a few bytes of allocator overhead each), for a row's
/// [`Spill::memory_size`].
pub(crate) fn strings_heap_size(strings: &[&Option<String>]) -> usize {
    strings
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.len() + 16))
        .sum()
}

/// A row that can be sorted out of core.
pub(crate) trait Spill:
    Sized + Ord + serde::Serialize + serde::de::DeserializeOwned
{
    /// Roughly the memory the row holds (inline and on the heap), for the budget.
    fn memory_size(&self) -> usize;
}

pub(crate) struct ExternalSorter<T> {
    dir: PathBuf,
    name: &'static str,
    budget: usize,
    used: usize,
    buffer: Vec<T>,
    runs: Vec<PathBuf>,
}

impl<T: Spill> ExternalSorter<T> {
    /// Spills to `<dir>/<name>-<n>.run` once `budget` bytes are buffered.
    pub fn new(dir: &Path, name: &'static str, budget: usize) -> Self {
        ExternalSorter {
            dir: dir.to_path_buf(),
            name,
            budget: budget.max(1),
            used: 0,
            buffer: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, row: T) -> Result<(), ExportError> {
        self.used += row.memory_size();
        self.buffer.push(row);
        if self.used > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// How many runs went to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> Result<(), ExportError> {
        self.buffer.sort();
        std::fs::create_dir_all(&self.dir).map_err(ExportError::io("create folder", &self.dir))?;
        let path = self
            .dir
            .join(format!("{}-{}.run", self.name, self.runs.len()));
        let file = File::create(&path).map_err(ExportError::io("create spill file", &path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut record = Vec::new();
        for row in self.buffer.drain(..) {
            record.clear();
            record = postcard::to_extend(&row, record).map_err(|e| ExportError::Document {
                what: "spill file",
                path: path.clone(),
                reason: format!("a row could not be encoded: {e}"),
            })?;
            out.write_all(&(record.len() as u64).to_le_bytes())
                .and_then(|()| out.write_all(&record))
                .map_err(ExportError::io("write spill file", &path))?;
        }
        out.flush()
            .map_err(ExportError::io("write spill file", &path))?;
        self.buffer = Vec::new();
        self.used = 0;
        self.runs.push(path);
        Ok(())
    }

    /// Every row pushed, in order.
    pub fn finish(mut self) -> Result<Sorted<T>, ExportError> {
        if self.runs.is_empty() {
            self.buffer.sort();
            return Ok(Sorted::Memory(std::mem::take(&mut self.buffer).into_iter()));
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        let mut runs = Vec::with_capacity(self.runs.len());
        let mut heap = BinaryHeap::with_capacity(self.runs.len());
        for (index, path) in std::mem::take(&mut self.runs).into_iter().enumerate() {
            let file = File::open(&path).map_err(ExportError::io("open spill file", &path))?;
            let mut run = Run {
                reader: BufReader::with_capacity(1 << 16, file),
                path,
                scratch: Vec::new(),
            };
            if let Some(row) = run.next()? {
                heap.push(Reverse(Head { row, run: index }));
            }
            runs.push(run);
        }
        Ok(Sorted::Merge { runs, heap })
    }
}

/// No row comes near this; a larger length means a damaged run file.
const MAX_RECORD_BYTES: u64 = 1 << 32;

pub(crate) struct Run {
    reader: BufReader<File>,
    path: PathBuf,
    scratch: Vec<u8>,
}

impl Run {
    fn next<T: Spill>(&mut self) -> Result<Option<T>, ExportError> {
        let mut len = [0u8; 8];
        match self.reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(ExportError::io("read spill file", &self.path)(e)),
        }
        let len = u64::from_le_bytes(len);
        if len > MAX_RECORD_BYTES {
            return Err(ExportError::Document {
                what: "spill file",
                path: self.path.clone(),
                reason: format!("a record claims {len} bytes: the file is damaged"),
            });
        }
        let len = len as usize;
        self.scratch.clear();
        self.scratch.resize(len, 0);
        self.reader
            .read_exact(&mut self.scratch)
            .map_err(ExportError::io("read spill file", &self.path))?;
        postcard::from_bytes::<T>(&self.scratch)
            .map(Some)
            .map_err(|e| e.to_string())
            .map_err(|reason| ExportError::Document {
                what: "spill file",
                path: self.path.clone(),
                reason,
            })
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Runs are read once; free the disk as soon as the merge is done with them.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The next row of one run; ties go to the earlier run, so the order is stable.
pub(crate) struct Head<T> {
    row: T,
    run: usize,
}

impl<T: Ord> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl<T: Ord> Eq for Head<T> {}
impl<T: Ord> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: Ord> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.row.cmp(&other.row).then(self.run.cmp(&other.run))
    }
}

/// Sorted rows, from memory or merged from runs on disk.
pub(crate) enum Sorted<T> {
    Memory(std::vec::IntoIter<T>),
    Merge {
        runs: Vec<Run>,
        heap: BinaryHeap<Reverse<Head<T>>>,
    },
}

impl<T: Spill> Iterator for Sorted<T> {
    type Item = Result<T, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Sorted::Memory(rows) => rows.next().map(Ok),
            Sorted::Merge { runs, heap } => {
                let Reverse(Head { row, run }) = heap.pop()?;
                match runs[run].next() {
                    Ok(Some(next)) => heap.push(Reverse(Head { row: next, run })),
                    Ok(None) => {}
                    Err(e) => return Some(Err(e)),
                }
                Some(Ok(row))
            }
        }
    }
}

/// Consecutive rows of a sorted stream that belong together (`same`), as groups: each
/// message's versions. Never an empty group.
pub(crate) struct Groups<I, T> {
    rows: I,
    pending: Option<T>,
    same: fn(&T, &T) -> bool,
}

impl<I, T> Groups<I, T> {
    pub fn new(rows: I, same: fn(&T, &T) -> bool) -> Self {
        Groups {
            rows,
            pending: None,
            same,
        }
    }
}

impl<T, I: Iterator<Item = Result<T, ExportError>>> Iterator for Groups<I, T> {
    type Item = Result<Vec<T>, ExportError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = match self.pending.take() {
            Some(row) => row,
            None => match self.rows.next()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            },
        };
        let mut group = vec![first];
        loop {
            match self.rows.next() {
                None => break,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(row)) if (self.same)(&group[0], &row) => group.push(row),
                Some(Ok(row)) => {
                    self.pending = Some(row);
                    break;
                }
            }
        }
        Some(Ok(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
    struct Item(String, u64);

    impl Spill for Item {
        fn memory_size(&self) -> usize {
            self.0.len() + 32
        }
    }

    fn items(n: u64) -> Vec<Item> {
        // A scrambled order with repeated keys.
        (0..n)
            .map(|i| Item(format!("k{:03}", (i * 7919) % 97), i))
            .collect()
    }

    #[test]
    fn spilled_runs_merge_into_the_same_order_as_an_in_memory_sort() {
        let dir = tempfile::tempdir().unwrap();
        let mut small = ExternalSorter::new(&dir.path().join("day"), "t", 200);
        for item in items(1000) {
            small.push(item).unwrap();
        }
        assert!(small.spilled_runs() > 10, "the budget forces spills");
        let merged: Vec<Item> = small.finish().unwrap().map(Result::unwrap).collect();
        let mut expected = items(1000);
        expected.sort();
        assert_eq!(merged, expected);
        assert_eq!(
            std::fs::read_dir(dir.path().join("day")).unwrap().count(),
            0,
            "run files are removed once merged"
        );

        let mut large = ExternalSorter::new(dir.path(), "u", usize::MAX);
        for item in items(1000) {
            large.push(item).unwrap();
        }
        assert_eq!(large.spilled_runs(), 0);
        let sorted: Vec<Item> = large.finish().unwrap().map(Result::unwrap).collect();
        assert_eq!(sorted, expected);
    }

    #[test]
    fn a_damaged_run_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = ExternalSorter::new(dir.path(), "bad", 10);
        for item in items(5) {
            sorter.push(item).unwrap();
        }
        let run = dir.path().join("bad-0.run");
        let mut bytes = std::fs::read(&run).unwrap();
        bytes[..8].copy_from_slice(&[0xff; 8]); // an absurd length
        std::fs::write(&run, bytes).unwrap();
        let error = match sorter.finish() {
            Ok(mut rows) => rows.find_map(Result::err).expect("an error").to_string(),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains("bad-0.run") && error.contains("damaged"),
            "{error}"
        );
    }
}
