//! Reading the archive: its date partitions, its Parquet files (only the columns asked
//! for, batch by batch), each file's SHA-256 recomputed as a stream, and what the commit
//! records and run summaries say each file should be.

use std::collections::BTreeMap;
use std::sync::Arc;

use archive::PARTITION_COLUMN;
use archive::Table;
use archive::chain::ChainedRecord;
use archive::layout::{COMMITS_DIR, RUNS_DIR, STATE_DIR};
use archive::records::{ChainLink, CommitRecord, FileCheck, FileRecord, Record, RunSummary};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ExportError;

/// Rows per batch when reading (a batch holds whole `raw_json` documents).
const BATCH_ROWS: usize = 2048;

/// What the archive's own records say a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
    /// Commit records and run summaries that list the file.
    pub recorded_in: Vec<String>,
    /// When two records disagree about the file, what they said.
    pub conflicts: Vec<String>,
}

/// A Parquet file of the archive.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    /// Relative to the archive root.
    pub path: String,
    pub table: String,
    pub partition: String,
    pub bytes: u64,
    location: Path,
}

/// A file an export read, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveFileRead {
    pub path: String,
    pub table: String,
    pub partition: String,
    pub bytes: u64,
    /// Recomputed while exporting.
    pub sha256: String,
    pub rows: u64,
    /// The digest the archive's commit records give, if any.
    pub recorded_sha256: Option<String>,
    pub check: FileCheck,
    /// Why the file could not be read to its end, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub(crate) struct Archive {
    location: sink::Location,
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl Archive {
    /// Opens an archive; a local folder must exist (nothing is created by reading).
    pub fn open(location: &str) -> Result<Archive, ExportError> {
        let opened = sink::Location::open_existing(location)?.ok_or_else(|| {
            ExportError::Request(format!(
                "the archive {location} does not exist or is not a folder"
            ))
        })?;
        Ok(Archive {
            store: Arc::clone(opened.store()),
            url: opened.url().to_string(),
            location: opened,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store the archive lives in, rooted at the archive.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    pub fn location(&self) -> &sink::Location {
        &self.location
    }

    /// An object's bytes, `None` when there is no such object.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, ExportError> {
        match self.store.get(&Path::from(key)).await {
            Ok(found) => Ok(Some(
                found
                    .bytes()
                    .await
                    .map_err(self.store_error("read", key))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error("read", key)(e)),
        }
    }

    fn store_error(
        &self,
        operation: &'static str,
        key: &str,
    ) -> impl FnOnce(object_store::Error) -> ExportError {
        let (archive, key) = (self.url.clone(), key.to_string());
        move |source| ExportError::Store {
            operation,
            archive,
            key,
            source: Box::new(source),
        }
    }

    /// The `date=` partitions of a table, sorted.
    pub async fn partitions(&self, table: Table) -> Result<Vec<NaiveDate>, ExportError> {
        let prefix = Path::from(table.folder());
        let listing = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(self.store_error("list", table.folder()))?;
        let mut days: Vec<NaiveDate> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| partition_day(p.filename()?))
            .collect();
        days.sort_unstable();
        Ok(days)
    }

    /// Whether any table has a partition folder.
    pub async fn holds_any_table(&self) -> Result<bool, ExportError> {
        for table in Table::ALL {
            if !self.partitions(table).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The Parquet files of one partition of a table, sorted by name.
    pub async fn files(
        &self,
        table: Table,
        day: NaiveDate,
    ) -> Result<Vec<ArchiveFile>, ExportError> {
        let partition = day.format("%Y-%m-%d").to_string();
        let Some(prefix) = partition_dir(table, day) else {
            return Ok(Vec::new());
        };
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&Path::from(prefix.as_str())))
            .try_collect()
            .await
            .map_err(self.store_error("list", &prefix))?;
        let mut files: Vec<ArchiveFile> = metas
            .into_iter()
            .filter(|m| m.location.as_ref().ends_with(".parquet"))
            .map(|m| ArchiveFile {
                path: m.location.to_string(),
                table: table.folder().to_string(),
                partition: partition.clone(),
                bytes: m.size,
                location: m.location,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Every object under the archive except the state folder, sorted by key.
    pub async fn all_objects(&self) -> Result<Vec<(String, u64)>, ExportError> {
        // The state folder is not listed at all: it may be readable by its owner only,
        // and a verify by someone else (an auditor's group) must not need it.
        let top = self
            .store
            .list_with_delimiter(None)
            .await
            .map_err(self.store_error("list", ""))?;
        let mut metas = top.objects;
        for folder in top.common_prefixes {
            if folder.as_ref() == STATE_DIR {
                continue;
            }
            let listed: Vec<ObjectMeta> = self
                .store
                .list(Some(&folder))
                .try_collect()
                .await
                .map_err(self.store_error("list", folder.as_ref()))?;
            metas.extend(listed);
        }
        let mut all: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        all.sort();
        Ok(all)
    }

    /// A file by key, as it is now.
    pub async fn file(
        &self,
        path: &str,
        table: &str,
        partition: &str,
    ) -> Result<Option<ArchiveFile>, ExportError> {
        let location = Path::from(path);
        match self.store.head(&location).await {
            Ok(meta) => Ok(Some(ArchiveFile {
                path: path.to_string(),
                table: table.to_string(),
                partition: partition.to_string(),
                bytes: meta.size,
                location,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error("read", path)(e)),
        }
    }

    /// The SHA-256 of a file's bytes, read as a stream.
    pub async fn sha256(&self, file: &ArchiveFile) -> Result<String, ExportError> {
        let result = self
            .store
            .get(&file.location)
            .await
            .map_err(self.store_error("read", &file.path))?;
        let mut stream = result.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(self.store_error("read", &file.path))?);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// The file's batches with the `columns` it has (others are simply absent).
    pub async fn batches(
        &self,
        file: &ArchiveFile,
        columns: &[&str],
    ) -> Result<BoxStream<'static, Result<RecordBatch, ExportError>>, ExportError> {
        let fail = {
            let (archive, key) = (self.url.clone(), file.path.clone());
            move |source: parquet::errors::ParquetError| ExportError::Parquet {
                archive: archive.clone(),
                key: key.clone(),
                source: Box::new(source),
            }
        };
        let stream = sink::read_batches(
            Arc::clone(&self.store),
            file.location.clone(),
            file.bytes,
            columns,
            BATCH_ROWS,
        )
        .await
        .map_err(fail.clone())?;
        Ok(stream.map_err(fail).boxed())
    }

    /// What the commit records and run summaries say about each file they list, and the
    /// problems met reading them (each named).
    pub async fn recorded_files(
        &self,
    ) -> Result<(BTreeMap<String, RecordedFile>, Vec<String>), ExportError> {
        let records = self.records().await?;
        Ok((records.files, records.problems))
    }

    /// Every commit record and run summary: the files they list, their places in their
    /// writers' chains, and the problems met reading them (each named).
    pub async fn records(&self) -> Result<Records, ExportError> {
        let mut recorded: BTreeMap<String, RecordedFile> = BTreeMap::new();
        let mut problems = Vec::new();
        let mut chained = Vec::new();
        for dir in [COMMITS_DIR, RUNS_DIR] {
            let metas: Vec<ObjectMeta> = self
                .store
                .list(Some(&Path::from(dir)))
                .try_collect()
                .await
                .map_err(self.store_error("list", dir))?;
            let mut keys: Vec<(String, u64)> = metas
                .into_iter()
                .map(|m| (m.location.to_string(), m.size))
                .filter(|(k, _)| k.ends_with(".json"))
                .collect();
            keys.sort();
            for (key, size) in keys {
                if let Err(error) = check_size(dir, size) {
                    problems.push(format!("{key}: {error}"));
                    continue;
                }
                let bytes = self
                    .store
                    .get(&Path::from(key.as_str()))
                    .await
                    .map_err(self.store_error("read", &key))?
                    .bytes()
                    .await
                    .map_err(self.store_error("read", &key))?;
                let (files, link) = match files_of(dir, &bytes) {
                    Ok(read) => read,
                    Err(error) => {
                        problems.push(format!("{key}: {error}"));
                        continue;
                    }
                };
                chained.push(ChainedRecord {
                    key: key.clone(),
                    sha256: archive::records::record_sha256(&bytes),
                    link,
                });
                for file in files {
                    let entry = recorded
                        .entry(file.path.clone())
                        .or_insert_with(|| RecordedFile {
                            sha256: file.sha256.clone(),
                            bytes: file.bytes,
                            rows: file.rows,
                            recorded_in: Vec::new(),
                            conflicts: Vec::new(),
                        });
                    if (entry.sha256.as_str(), entry.bytes, entry.rows)
                        != (file.sha256.as_str(), file.bytes, file.rows)
                    {
                        entry.conflicts.push(format!(
                            "{key} says sha256 {} bytes {} rows {}",
                            file.sha256, file.bytes, file.rows
                        ));
                    }
                    entry.recorded_in.push(key.clone());
                }
            }
        }
        Ok(Records {
            files: recorded,
            problems,
            chained,
        })
    }
}

/// What an archive's commit records and run summaries say.
pub struct Records {
    /// Each file they list, with what they say of it.
    pub files: BTreeMap<String, RecordedFile>,
    /// Records that could not be read, each `<key>: <why>`.
    pub problems: Vec<String>,
    /// Every readable record with its place in its writer's chain.
    pub chained: Vec<ChainedRecord>,
}

/// Refuses a record of `dir` too large to be one, unread.
fn check_size(dir: &str, bytes: u64) -> Result<(), archive::records::RecordError> {
    if dir == COMMITS_DIR {
        CommitRecord::check_size(bytes)
    } else {
        RunSummary::check_size(bytes)
    }
}

/// The files a commit record (in `COMMITS_DIR`) lists, and its link (a run summary's too).
fn files_of(
    dir: &str,
    bytes: &[u8],
) -> Result<(Vec<FileRecord>, Option<ChainLink>), archive::records::RecordError> {
    if dir == COMMITS_DIR {
        let record = CommitRecord::from_json(bytes)?;
        Ok((record.files, record.chain))
    } else {
        // A run summary lists no files (its commits' records do); it is read for its link.
        let summary = RunSummary::from_json(bytes)?;
        Ok((Vec::new(), summary.chain))
    }
}

/// The check of a file against its record.
pub(crate) fn check_against(recorded: Option<&RecordedFile>, sha256: &str) -> FileCheck {
    match recorded {
        None => FileCheck::Unrecorded,
        Some(r) if r.sha256 == sha256 => FileCheck::Match,
        Some(_) => FileCheck::Mismatch,
    }
}

/// The folder of one day of a table: `<folder>/date=YYYY-MM-DD`; `None` for a day no
/// partition can name (a year outside 0 to 9999).
pub(crate) fn partition_dir(table: Table, day: NaiveDate) -> Option<String> {
    let days = i32::try_from((day - NaiveDate::default()).num_days()).ok()?;
    archive::layout::partition_dir(table.folder(), PARTITION_COLUMN, days)
}

/// The day a partition folder's name (`date=YYYY-MM-DD`) stands for.
pub(crate) fn partition_day(name: &str) -> Option<NaiveDate> {
    let value = name.strip_prefix(PARTITION_COLUMN)?.strip_prefix('=')?;
    NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()
}
