//! Items sorted by partition day on local disk before they are archived.
//!
//! The writer commits one file per date partition in its buffer whenever the buffer fills.
//! Saved pages mix messages of many days, so archived in input order every commit would
//! write a small file to nearly every partition, and a file of a 1,400-column table costs
//! the same fixed work however few rows it holds. Sorted first, into one bucket file per
//! day, the items reach the writer a few days at a time and each commit writes a few large
//! files. The buckets take about as much disk as the inputs, in a scratch folder that is
//! removed when the run ends, or by the next run if this one is killed ([`Scratch`]).
//!
//! A bucket file is a sequence of [`Record`]s in postcard's compact serde encoding: what
//! the item is with its exact text, where it came from and when it was fetched.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::input::Found;
use crate::scratch::Scratch;

/// Days map to buckets modulo this: days this far apart share a bucket.
pub const BUCKETS: usize = 512;
/// A bucket is read back in units of about this size, so several workers can share a
/// large day.
const UNIT_BYTES: u64 = 4 * 1024 * 1024;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// One item on its way through a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record<'a> {
    #[serde(borrow)]
    pub found: Found<'a>,
    /// Index of the input file in the run's list of files.
    pub file: usize,
    /// The item's position in its file, as problems name it.
    pub item: Option<usize>,
    /// When the file was saved, in microseconds since the epoch.
    pub fetched_at_micros: i64,
}

/// The bucket of an item whose partition day is `day`.
fn bucket_of(day: i32) -> usize {
    day.rem_euclid(BUCKETS as i32) as usize
}

#[derive(Default)]
struct Bucket {
    file: Option<BufWriter<File>>,
    len: u64,
    /// Offsets at which a read-back unit starts.
    unit_starts: Vec<u64>,
    /// The earliest and latest days of its records.
    days: Option<RangeInclusive<i32>>,
}

/// The buckets being filled; shared by the workers that sort.
pub struct SpillWriter {
    dir: Scratch,
    buckets: Vec<Mutex<Bucket>>,
}

impl SpillWriter {
    /// Creates the temporary folder in `parent` (the system's temporary folder if `None`).
    pub fn new(parent: Option<&Path>) -> std::io::Result<Self> {
        let dir = Scratch::create(parent)?;
        Ok(Self {
            dir,
            buckets: (0..BUCKETS).map(|_| Mutex::default()).collect(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends `record`, of partition day `day`, to its bucket.
    pub fn put(&self, day: i32, record: &Record<'_>) -> std::io::Result<()> {
        let encoded = postcard::to_stdvec(record).map_err(std::io::Error::other)?;
        let index = bucket_of(day);
        let mut bucket = self.buckets[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if bucket.file.is_none() {
            let file = File::create(self.dir.path().join(bucket_name(index)))?;
            bucket.file = Some(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file));
        }
        bucket.days = Some(match bucket.days.take() {
            Some(days) => *days.start().min(&day)..=*days.end().max(&day),
            None => day..=day,
        });
        if bucket
            .unit_starts
            .last()
            .is_none_or(|&start| bucket.len - start >= UNIT_BYTES)
        {
            let len = bucket.len;
            bucket.unit_starts.push(len);
        }
        let file = bucket.file.as_mut().expect("opened above");
        file.write_all(&encoded)?;
        bucket.len += encoded.len() as u64;
        Ok(())
    }

    /// Closes the buckets and lists the units to read back, in order of their buckets'
    /// earliest days.
    pub fn finish(self) -> std::io::Result<Spilled> {
        let mut units = Vec::new();
        let mut bytes = 0;
        for (index, bucket) in self.buckets.into_iter().enumerate() {
            let bucket = bucket.into_inner().unwrap_or_else(|p| p.into_inner());
            let Some(file) = bucket.file else { continue };
            file.into_inner().map_err(|e| e.into_error())?;
            let path = self.dir.path().join(bucket_name(index));
            let ends = bucket
                .unit_starts
                .iter()
                .skip(1)
                .copied()
                .chain([bucket.len]);
            for (start, end) in bucket.unit_starts.iter().copied().zip(ends) {
                units.push(Unit {
                    path: path.clone(),
                    range: start..end,
                    days: bucket.days.clone().unwrap_or(0..=0),
                });
            }
            bytes += bucket.len;
        }
        // Stable: a bucket's units stay in file order.
        units.sort_by_key(|unit| *unit.days.start());
        Ok(Spilled {
            _dir: self.dir,
            units,
            bytes,
        })
    }
}

fn bucket_name(index: usize) -> String {
    format!("bucket-{index:03}")
}

/// A stretch of a bucket file holding whole records.
#[derive(Debug, Clone)]
pub struct Unit {
    path: PathBuf,
    range: Range<u64>,
    /// The partition days of its bucket's records, from the earliest to the latest.
    pub days: RangeInclusive<i32>,
}

impl Unit {
    pub fn bytes(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// The unit's records, as bytes for [`records`].
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.range.start))?;
        let mut bytes = vec![0; self.bytes() as usize];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// The sorted items, ready to be read back; the folder goes when this is dropped.
pub struct Spilled {
    _dir: Scratch,
    pub units: Vec<Unit>,
    /// Size of all buckets.
    pub bytes: u64,
}

/// The records in the bytes of a unit. A record that cannot be read means the bucket file
/// was damaged while the run used it; the error says where.
pub fn records(bytes: &[u8]) -> impl Iterator<Item = Result<Record<'_>, String>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let record = read_record(bytes, at).map(|(record, next)| {
            at = next;
            record
        });
        if record.is_err() {
            at = bytes.len();
        }
        Some(record)
    })
}

fn read_record(bytes: &[u8], at: usize) -> Result<(Record<'_>, usize), String> {
    let (record, rest) = postcard::take_from_bytes::<Record<'_>>(&bytes[at..])
        .map_err(|e| format!("temporary bucket file damaged at byte {at}: {e}"))?;
    Ok((record, bytes.len() - rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(found: Found<'_>, file: usize, item: Option<usize>) -> Record<'_> {
        Record {
            found,
            file,
            item,
            fetched_at_micros: -5,
        }
    }

    #[test]
    fn records_come_back_bucket_by_bucket_with_their_bytes_and_origin() {
        let temp = tempfile::tempdir().unwrap();
        let spill = SpillWriter::new(Some(temp.path())).unwrap();
        let big = format!("{{\"x\":\"{}\"}}", "é".repeat(UNIT_BYTES as usize));
        let written = [
            (7, record(Found::ChatMessage(r#"{"id":"1"}"#), 0, Some(3))),
            (2, record(Found::MailMessage(&big), 1, None)),
            (7, record(Found::User(r#"{"id":"u"}"#), 2, Some(0))),
            (2, record(Found::Chat("{}"), 3, Some(9))),
        ];
        for (bucket, r) in &written {
            spill.put(*bucket, r).unwrap();
        }
        let folder = spill.path().to_path_buf();
        let spilled = spill.finish().unwrap();
        // Bucket 2 splits after its large first record; bucket 7 is one unit.
        assert_eq!(spilled.units.len(), 3);
        let mut read = Vec::new();
        for unit in &spilled.units {
            let bytes = unit.read().unwrap();
            for r in records(&bytes) {
                let r = r.unwrap();
                read.push((
                    r.file,
                    r.item,
                    r.fetched_at_micros,
                    format!("{:?}", r.found),
                ));
            }
        }
        let expected: Vec<_> = [&written[1], &written[3], &written[0], &written[2]]
            .iter()
            .map(|(_, r)| {
                (
                    r.file,
                    r.item,
                    r.fetched_at_micros,
                    format!("{:?}", r.found),
                )
            })
            .collect();
        assert_eq!(read, expected);
        drop(spilled);
        assert!(!folder.exists(), "the temporary folder is removed");
    }

    #[test]
    fn a_damaged_bucket_is_an_error_not_a_panic() {
        let bytes =
            postcard::to_stdvec(&record(Found::ChatMessage(r#"{"id":"1"}"#), 4, Some(2))).unwrap();
        // Cut short anywhere, or with an unknown kind: one error naming the byte, then the end.
        for cut in 0..bytes.len() {
            let results: Vec<_> = records(&bytes[..cut]).collect();
            assert!(results.len() <= 1, "{cut}");
            if let Some(result) = results.first() {
                assert!(result.as_ref().unwrap_err().contains("damaged at byte 0"));
            }
        }
        let mut unknown = bytes.clone();
        unknown[0] = 9;
        let results: Vec<_> = records(&unknown).collect();
        assert!(results[0].as_ref().unwrap_err().contains("damaged"));
    }

    #[test]
    fn days_far_apart_share_buckets_and_negative_days_fit() {
        assert_eq!(bucket_of(3), 3);
        assert_eq!(bucket_of(3 + BUCKETS as i32), 3);
        assert_eq!(bucket_of(-1), BUCKETS - 1);
    }
}
