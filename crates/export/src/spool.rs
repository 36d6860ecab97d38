//! Lists that grow with the export (files read, files written, problems) kept on disk as
//! JSON lines until the manifest is written, so memory does not grow with them.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ExportError;

pub(crate) struct Spool<T> {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
    kind: PhantomData<T>,
}

impl<T: Serialize> Spool<T> {
    pub fn create(dir: &Path, name: &str) -> Result<Spool<T>, ExportError> {
        let path = dir.join(format!("{name}.jsonl"));
        let file = File::create(&path).map_err(ExportError::io("create", &path))?;
        Ok(Spool {
            path,
            out: BufWriter::new(file),
            len: 0,
            kind: PhantomData,
        })
    }

    pub fn push(&mut self, entry: &T) -> Result<(), ExportError> {
        serde_json::to_writer(&mut self.out, entry)
            .map_err(std::io::Error::other)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(ExportError::io("write", &self.path))?;
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Moves the entries of `other` after this spool's own.
    pub fn append(&mut self, mut other: Spool<T>) -> Result<(), ExportError> {
        other
            .out
            .flush()
            .map_err(ExportError::io("write", &other.path))?;
        let mut input = File::open(&other.path).map_err(ExportError::io("read", &other.path))?;
        std::io::copy(&mut input, &mut self.out).map_err(ExportError::io("write", &self.path))?;
        self.len += other.len;
        Ok(())
    }

    /// Writes the entries, in the order pushed, as the items of a JSON array (without
    /// the brackets), each on its own line after `indent`.
    pub fn write_items(mut self, out: &mut impl Write, indent: &str) -> std::io::Result<()> {
        self.out.flush()?;
        let reader = BufReader::new(File::open(&self.path)?);
        for (i, line) in reader.lines().enumerate() {
            let line = line?;
            if i > 0 {
                out.write_all(b",\n")?;
            }
            out.write_all(indent.as_bytes())?;
            out.write_all(line.as_bytes())?;
        }
        if self.len > 0 {
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_as_array_items_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path(), "t").unwrap();
        spool.push(&serde_json::json!({"a": 1})).unwrap();
        spool.push(&serde_json::json!("two\nlines")).unwrap();
        assert_eq!(spool.len(), 2);
        let mut out = b"[\n".to_vec();
        spool.write_items(&mut out, "  ").unwrap();
        out.extend_from_slice(b"]");
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, serde_json::json!([{"a": 1}, "two\nlines"]));
    }

    #[test]
    fn an_appended_spool_follows_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = Spool::create(dir.path(), "a").unwrap();
        first.push(&1).unwrap();
        let mut second = Spool::create(dir.path(), "b").unwrap();
        second.push(&2).unwrap();
        second.push(&3).unwrap();
        first.append(second).unwrap();
        assert_eq!(first.len(), 3);
        let mut out = b"[".to_vec();
        first.write_items(&mut out, "").unwrap();
        out.extend_from_slice(b"]");
        let parsed: Vec<u32> = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, vec![1, 2, 3]);
    }
}
