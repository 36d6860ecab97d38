//! `ArchiveWriter`: buffers rows per (table, partition) within a memory budget, drops
//! versions already buffered or committed, and commits files and checkpoints by the
//! protocol in the crate documentation.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::SortOptions;
use arrow::compute::take;
use arrow::row::{RowConverter, Rows, SortField};
use futures::{StreamExt, TryStreamExt};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::error::SinkError;
use crate::index::VersionIndex;
use crate::location::Location;
use crate::object_writer::Published;
use crate::parquet_file::{hash_object, read_rows_and_keys, write_file, writer_properties};
use crate::store_io;
use crate::table::{KeyReader, Table, VERSION_KEY_BYTES, VersionKey};
use archive::TableSpec;
use archive::layout::{
    CHAIN_KEY, COMMITS_DIR, WRITE_AHEAD_KEY, commit_id_of, commit_record_key, data_file_key,
    partition_value, run_summary_key, signature_key,
};
use archive::records::{
    ChainHead, ChainLink, CommitRecord, FileRecord, PendingRecord, PlannedFile, Record, RunSummary,
    WriteAhead, record_sha256,
};
use archive::signing::SigningKey;

/// The tracing target of the commit protocol's step events (one event just before
/// each step, with a `step` field); useful in logs, and what the crash tests stop at.
pub const PROTOCOL_TARGET: &str = "sink::protocol";

/// Estimated bookkeeping per buffered key (hash set slot and allocation).
const KEY_OVERHEAD_BYTES: usize = 32;
/// Bookkeeping per buffered row: its position in its partition's list.
const POSITION_BYTES: usize = 8;

/// Settings of an [`ArchiveWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows buffered before [`ArchiveWriter::needs_commit`] says to commit, measured as
    /// the Arrow memory of the buffered batches (each shared buffer once) plus their
    /// keys. While committing, each core also encodes one file, holding a row group (at
    /// most a quarter of the budget, encoded), the page being filled of each leaf (up to
    /// 4 MiB for prose, 1 MiB for the rest) and about 10 MiB of upload buffers: peak memory
    /// is about `budget + cores * (budget / 4 + 22 MiB)`, usually far less.
    pub memory_budget_bytes: usize,
    /// Largest file to aim for, measured as buffered (uncompressed) bytes: a partition
    /// holding more is split into several files of about this size or less.
    pub target_file_bytes: usize,
    /// Most rows in one row group (row groups are also capped at a quarter of the
    /// memory budget, encoded, and at 128 MiB).
    pub row_group_rows: usize,
    /// Recorded in commit records.
    pub run_id: String,
    /// Directory of the version index. Default: inside the state location when that
    /// is local, else `$XDG_CACHE_HOME/teams-archiver/index/<hash of archive and state>`
    /// (or under `~/.cache`).
    pub index_dir: Option<PathBuf>,
    /// Signs every commit record and run summary (`_archive/signatures/...`) when given.
    pub signing_key: Option<Arc<SigningKey>>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            memory_budget_bytes: 128 * 1024 * 1024,
            target_file_bytes: 128 * 1024 * 1024,
            row_group_rows: 122_880,
            run_id: format!("run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")),
            index_dir: None,
            signing_key: None,
        }
    }
}

/// What one `append` did with its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    pub rows_in: usize,
    /// Rows buffered for the next commit.
    pub rows_new: usize,
    /// Rows whose version was already buffered or committed (or repeated in the batch).
    pub rows_duplicate: usize,
}

/// What one `commit` published.
#[derive(Debug, Clone, Default)]
pub struct CommitReport {
    /// Id of the commit record, when there were files to publish.
    pub commit_id: Option<String>,
    pub files: Vec<FileRecord>,
    pub rows: u64,
    pub bytes: u64,
    /// Checkpoints written after the files were durable.
    pub checkpoints: usize,
    /// Rows of partitions still growing, kept buffered for a later commit.
    pub rows_kept: u64,
    /// Damaged files met under the names of new ones, which were left as they are.
    pub warnings: Vec<String>,
}

/// What `open` found and repaired.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    /// Id of an interrupted commit that was completed from its write-ahead record.
    pub recovered_commit: Option<String>,
    /// Files of that commit that had been written, now committed and indexed.
    pub files_committed: Vec<FileRecord>,
    /// Files of that commit that had not been written; their rows come back when the
    /// scopes resume from their checkpoints.
    pub files_forgotten: Vec<String>,
    /// The index did not match the archive (another archive, other tables, or commit
    /// records it knew are gone) and was rebuilt from the archive.
    pub index_rebuilt: bool,
    /// Commit records read from the archive into the index (other machines' commits,
    /// or all of them for a new index).
    pub commit_records_applied: usize,
    /// Version keys added to the index while catching up.
    pub keys_indexed: u64,
    /// Problems that did not stop the writer, e.g. a commit record listing a missing file.
    pub warnings: Vec<String>,
}

/// The rows of one (table, partition) buffered for the next commit.
#[derive(Default)]
struct PartitionBuffer {
    /// (batch, row) positions in the table's buffered batches.
    positions: Vec<(u32, u32)>,
    /// The Arrow memory these rows account for (their share of their batches).
    bytes: usize,
}

/// One file a commit will write.
struct FilePlan {
    table: usize,
    days: i32,
    /// The partition's folder and the hash of the file's version keys, which name it.
    dir: String,
    hash: String,
    path: String,
    /// Whether a readable file with these rows is already under `path`, to be adopted.
    adopt: bool,
    /// Rows in key order, as (batch, row) positions in `batches`.
    order: Vec<(usize, usize)>,
    /// The partition's buffered rows (shared by the partition's files).
    batches: Arc<Vec<RecordBatch>>,
    /// The file's share of its partition's buffered bytes: more than it encodes to.
    buffered_bytes: usize,
}

/// Partitions a commit keeps buffered, with what they need to stay buffered.
struct KeptBack {
    buffers: BTreeMap<(usize, i32), PartitionBuffer>,
    /// The batches their positions point into, per table.
    batches: Vec<Vec<RecordBatch>>,
    keys: Vec<HashSet<VersionKey>>,
    /// Memory they account for: the batches whole, and each row's key and position.
    bytes: usize,
    rows: u64,
}

/// The table and version keys of one file, for the index.
type FileKeys = (usize, Vec<VersionKey>);

/// Writes rows into the archive exactly once and moves checkpoints after them.
pub struct ArchiveWriter {
    archive: Location,
    checkpoints: CheckpointStore,
    tables: Vec<Table>,
    options: WriterOptions,
    properties: WriterProperties,
    index: VersionIndex,
    /// Threads that encode files, one per core.
    encoders: rayon::ThreadPool,
    /// Batches appended since the last commit (file columns only), per table.
    batches: Vec<Vec<RecordBatch>>,
    buffers: BTreeMap<(usize, i32), PartitionBuffer>,
    /// Keys buffered since the last commit, per table.
    buffered_keys: Vec<HashSet<VersionKey>>,
    buffered_bytes: usize,
    commits: u64,
    poisoned: Option<String>,
    /// The head of this writer's chain of records.
    chain: ChainHead,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("archive", &self.archive.url())
            .field("state", &self.checkpoints.location().url())
            .field("buffered_bytes", &self.buffered_bytes)
            .finish()
    }
}

impl ArchiveWriter {
    /// Opens the archive and state locations (paths or URLs, see [`Location`]),
    /// completes an interrupted commit, and brings the version index up to date.
    pub async fn open(
        archive: &str,
        state: &str,
        tables: Vec<TableSpec>,
        options: WriterOptions,
    ) -> Result<(ArchiveWriter, RecoveryReport), SinkError> {
        ArchiveWriter::open_at(
            Location::parse(archive)?,
            Location::parse(state)?,
            tables,
            options,
        )
        .await
    }

    /// [`ArchiveWriter::open`] with locations already opened.
    pub async fn open_at(
        archive: Location,
        state: Location,
        tables: Vec<TableSpec>,
        options: WriterOptions,
    ) -> Result<(ArchiveWriter, RecoveryReport), SinkError> {
        let tables = tables
            .into_iter()
            .map(Table::new)
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = HashSet::new();
        for table in &tables {
            if !names.insert(table.name()) {
                return Err(SinkError::InvalidTableSpec {
                    table: table.name().to_string(),
                    reason: "two tables have this name".into(),
                });
            }
        }
        if options.memory_budget_bytes == 0 || options.target_file_bytes == 0 {
            return Err(SinkError::InvalidOptions {
                reason: "memory_budget_bytes and target_file_bytes must be positive".into(),
            });
        }
        // The state holds delta links; a file system that refuses modes only gets a word.
        let private_state = state.make_private();
        let index_dir = match (&options.index_dir, state.local_dir()) {
            (Some(dir), _) => dir.clone(),
            (None, Some(dir)) => dir.to_path_buf(),
            (None, None) => default_index_dir(archive.url(), state.url()),
        };
        let table_names: Vec<&str> = tables.iter().map(|t| t.name()).collect();
        let (index, rebuilt) =
            VersionIndex::open(&index_dir, &index_identity(&archive, &tables), &table_names)?;
        let encoders = rayon::ThreadPoolBuilder::new()
            .num_threads(encoder_threads())
            .thread_name(|n| format!("sink-encoder-{n}"))
            // A panicking encoder is reported by the file it was writing.
            .panic_handler(|_| {})
            .build()
            .map_err(|e| SinkError::InvalidOptions {
                reason: format!("cannot start the encoder threads: {e}"),
            })?;
        let mut writer = ArchiveWriter {
            encoders,
            archive,
            checkpoints: CheckpointStore::at(state),
            properties: writer_properties(options.row_group_rows, options.memory_budget_bytes),
            buffered_keys: tables.iter().map(|_| HashSet::new()).collect(),
            batches: tables.iter().map(|_| Vec::new()).collect(),
            tables,
            options,
            index,
            buffers: BTreeMap::new(),
            buffered_bytes: 0,
            commits: 0,
            poisoned: None,
            chain: ChainHead::new(""),
        };
        let mut report = RecoveryReport {
            index_rebuilt: rebuilt,
            ..Default::default()
        };
        if let Err(e) = private_state {
            report.warnings.push(e.to_string());
        }
        writer.open_chain(&mut report).await?;
        writer.recover_write_ahead(&mut report).await?;
        writer.catch_up_index(&mut report).await?;
        Ok((writer, report))
    }

    /// The archive location.
    pub fn archive(&self) -> &Location {
        &self.archive
    }

    /// The version index file (a cache of the archive; see the crate doc).
    pub fn index_path(&self) -> &std::path::Path {
        self.index.path()
    }

    /// The checkpoints of the state location (to resume scopes from).
    pub fn checkpoints(&self) -> &CheckpointStore {
        &self.checkpoints
    }

    /// Buffers the rows of `batch` that are new versions; returns how many were.
    ///
    /// The batch must have the table's schema. Either every row is accepted (new or
    /// duplicate) or, on an error, none is.
    pub fn append(&mut self, table: &str, batch: &RecordBatch) -> Result<AppendStats, SinkError> {
        self.check_poisoned()?;
        let table_index = self.table_index(table)?;
        let table = &self.tables[table_index];
        table.check_batch(batch)?;
        let days = table.partition_days(batch)?;
        let keys = KeyReader::new(&table.spec, batch)?.keys(table.name(), batch.num_rows())?;

        let index = self.index.reader(table.name())?;
        let buffered = &self.buffered_keys[table_index];
        let mut new_rows = Vec::new();
        {
            let mut in_batch: HashSet<&VersionKey> = HashSet::with_capacity(keys.len());
            for (row, key) in keys.iter().enumerate() {
                if buffered.contains(key)
                    || !in_batch.insert(key)
                    || index.contains(key.as_bytes())?
                {
                    continue;
                }
                new_rows.push(row as u32);
            }
        }
        let stats = AppendStats {
            rows_in: batch.num_rows(),
            rows_new: new_rows.len(),
            rows_duplicate: batch.num_rows() - new_rows.len(),
        };
        if new_rows.is_empty() {
            return Ok(stats);
        }

        // Keep the caller's columns as they are (no copy), unless most rows are
        // known versions: then copy out the new ones, so that replays do not hold
        // whole batches for a few rows.
        let arrow_error = |operation, source| SinkError::Arrow {
            table: table.name().to_string(),
            partition: String::new(),
            operation,
            source: Box::new(source),
        };
        let compact = new_rows.len() * 2 < batch.num_rows();
        let columns = if compact {
            let indices = UInt32Array::from(new_rows.clone());
            table
                .file_columns
                .iter()
                .map(|&c| take(batch.column(c).as_ref(), &indices, None))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| arrow_error("select new rows", e))?
        } else {
            table
                .file_columns
                .iter()
                .map(|&c| Arc::clone(batch.column(c)))
                .collect()
        };
        let stored = RecordBatch::try_new(table.file_schema.clone(), columns)
            .map_err(|e| arrow_error("check rows against the table schema", e))?;
        let stored_bytes = memory_of(&stored);
        let row_bytes = stored_bytes / stored.num_rows().max(1);

        let batch_index = self.batches[table_index].len() as u32;
        let buffered = &mut self.buffered_keys[table_index];
        for (stored_row, &row) in new_rows.iter().enumerate() {
            self.buffered_bytes += VERSION_KEY_BYTES + KEY_OVERHEAD_BYTES;
            buffered.insert(keys[row as usize]);
            let position = if compact { stored_row as u32 } else { row };
            let buffer = self
                .buffers
                .entry((table_index, days[row as usize]))
                .or_default();
            buffer.positions.push((batch_index, position));
            buffer.bytes += row_bytes;
        }
        self.buffered_bytes += stored_bytes + new_rows.len() * POSITION_BYTES;
        self.batches[table_index].push(stored);
        Ok(stats)
    }

    /// True once the buffered rows reach the memory budget: commit before appending more.
    pub fn needs_commit(&self) -> bool {
        self.buffered_bytes >= self.options.memory_budget_bytes
    }

    /// Bytes buffered since the last commit (rows and their keys).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Rows buffered since the last commit.
    pub fn buffered_rows(&self) -> usize {
        self.buffers.values().map(|b| b.positions.len()).sum()
    }

    /// Publishes the buffered rows, then writes `checkpoints`:
    ///
    /// 1. the write-ahead record (state store) names the files about to be written (a
    ///    damaged file already under a file's name keeps it; see `settle_name`);
    /// 2. each file is written, appearing only when complete;
    /// 3. the commit record (`_archive/commits/<id>.json`) lists them with row counts,
    ///    sizes and SHA-256;
    /// 4. their version keys go into the index;
    /// 5. the checkpoints are written;
    /// 6. the write-ahead record is removed.
    ///
    /// With nothing buffered only step 5 runs (pages whose rows were all known still
    /// move their scopes on). After an error the writer refuses further work: reopen it,
    /// which completes the interrupted commit.
    pub async fn commit(
        &mut self,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<CommitReport, SinkError> {
        self.check_poisoned()?;
        let result = self.run_commit(checkpoints).await;
        if let Err(e) = &result {
            self.poisoned = Some(e.to_string());
        }
        result
    }

    /// Publishes the buffered rows of every partition except those whose day
    /// `still_growing` names: those stay buffered for a later commit, so a partition that
    /// is still receiving rows is not split over two files. No checkpoint moves, since the
    /// rows kept back are not durable. The partitions are kept only while they hold at most
    /// half the memory budget and other rows are there to publish; otherwise everything is
    /// published, as by [`Self::commit`].
    pub async fn commit_except(
        &mut self,
        still_growing: impl Fn(i32) -> bool,
    ) -> Result<CommitReport, SinkError> {
        self.check_poisoned()?;
        let kept = self.set_aside(still_growing)?;
        let mut result = self.run_commit(Vec::new()).await;
        match (&mut result, kept) {
            (Err(e), _) => self.poisoned = Some(e.to_string()),
            (Ok(report), Some(kept)) => {
                report.rows_kept = kept.rows;
                self.buffers = kept.buffers;
                self.batches = kept.batches;
                self.buffered_keys = kept.keys;
                self.buffered_bytes = kept.bytes;
            }
            (Ok(_), None) => {}
        }
        result
    }

    /// Takes the partitions `still_growing` names out of the buffer, with their own copy of
    /// the batches they use and of their keys; `None` when none are to be kept.
    fn set_aside(
        &mut self,
        still_growing: impl Fn(i32) -> bool,
    ) -> Result<Option<KeptBack>, SinkError> {
        let growing: Vec<(usize, i32)> = self
            .buffers
            .keys()
            .filter(|(_, days)| still_growing(*days))
            .copied()
            .collect();
        if growing.is_empty() || growing.len() == self.buffers.len() {
            return Ok(None);
        }
        let mut kept = KeptBack {
            buffers: BTreeMap::new(),
            batches: vec![Vec::new(); self.tables.len()],
            keys: vec![HashSet::new(); self.tables.len()],
            bytes: 0,
            rows: 0,
        };
        // Old batch index -> index in the kept batches, per table.
        let mut renumbered: Vec<BTreeMap<u32, u32>> = vec![BTreeMap::new(); self.tables.len()];
        for (table, days) in &growing {
            let buffer = &self.buffers[&(*table, *days)];
            let mut positions = Vec::with_capacity(buffer.positions.len());
            for &(batch, row) in &buffer.positions {
                let next = renumbered[*table].len() as u32;
                let new = *renumbered[*table].entry(batch).or_insert(next);
                if new == next {
                    let stored = self.batches[*table][batch as usize].clone();
                    kept.bytes += memory_of(&stored);
                    kept.batches[*table].push(stored);
                }
                positions.push((new, row));
            }
            kept.rows += positions.len() as u64;
            kept.bytes +=
                positions.len() * (POSITION_BYTES + VERSION_KEY_BYTES + KEY_OVERHEAD_BYTES);
            let bytes = buffer.bytes;
            kept.buffers
                .insert((*table, *days), PartitionBuffer { positions, bytes });
        }
        if kept.bytes > self.options.memory_budget_bytes / 2 {
            return Ok(None);
        }
        for ((table, _), buffer) in &kept.buffers {
            let spec = &self.tables[*table].spec;
            let readers = kept.batches[*table]
                .iter()
                .map(|b| KeyReader::new(spec, b))
                .collect::<Result<Vec<_>, _>>()?;
            for &(batch, row) in &buffer.positions {
                let key = readers[batch as usize]
                    .key(row as usize)
                    .expect("keys were checked when appended");
                kept.keys[*table].insert(key);
            }
        }
        for key in &growing {
            self.buffers.remove(key);
        }
        Ok(Some(kept))
    }

    async fn run_commit(
        &mut self,
        checkpoints: Vec<Checkpoint>,
    ) -> Result<CommitReport, SinkError> {
        let buffers = std::mem::take(&mut self.buffers);
        let batches: Vec<Arc<Vec<RecordBatch>>> = self
            .batches
            .iter_mut()
            .map(|b| Arc::new(std::mem::take(b)))
            .collect();
        for keys in &mut self.buffered_keys {
            *keys = HashSet::new();
        }
        let (mut plans, index_keys) = self.plan_files(buffers, &batches)?;
        // The files hold the only references now: rows are freed as files finish.
        drop(batches);
        let mut report = CommitReport::default();
        // Independent of each other; on an object store each costs a round trip or more.
        let this = &*self;
        let settling: Vec<_> = plans
            .iter_mut()
            .map(|plan| this.settle_name(plan))
            .collect();
        let settled: Vec<Vec<String>> = futures::stream::iter(settling)
            .buffer_unordered(NAMES_SETTLED_AT_ONCE)
            .try_collect()
            .await?;
        report.warnings = settled.into_iter().flatten().collect();

        if !plans.is_empty() {
            self.commits += 1;
            let commit_id = commit_id(&self.options.run_id, self.commits);
            step(ProtocolStep::WriteAhead, &commit_id, "");
            let planned = plans
                .iter()
                .map(|p| PlannedFile {
                    path: p.path.clone(),
                    table: self.tables[p.table].name().to_string(),
                    partition: partition_value(p.days).unwrap_or_default(),
                })
                .collect();
            let write_ahead = WriteAhead::new(&commit_id, &self.options.run_id, planned);
            store_io::put_json(self.checkpoints.location(), WRITE_AHEAD_KEY, &write_ahead).await?;

            // Files encode in parallel, one per core, while more of them upload: a small
            // file's time is mostly its store's latency (a local create, write, fsync and
            // link; an S3 PUT), so with only one per core in flight the encoders sat idle.
            // Files waiting for an encoder hold no rows of their own; a table's rows are
            // freed when its last file is out.
            let largest = plans.iter().map(|p| p.buffered_bytes).max().unwrap_or(0);
            let parallel = files_in_flight(encoder_threads(), largest);
            let this = &*self;
            let publishing: Vec<_> = plans
                .into_iter()
                .enumerate()
                .map(|(position, plan)| this.publish_as(position, &commit_id, plan))
                .collect();
            let mut written: Vec<(usize, FileRecord)> = futures::stream::iter(publishing)
                .buffer_unordered(parallel)
                .try_collect()
                .await?;
            written.sort_by_key(|(position, _)| *position);
            for (_, record) in written {
                report.rows += record.rows;
                report.bytes += record.bytes;
                report.files.push(record);
            }

            step(ProtocolStep::CommitRecord, &commit_id, "");
            let record_key = commit_record_key(&commit_id);
            let run_id = self.options.run_id.clone();
            let files = report.files.clone();
            let created = self
                .append_to_chain(&record_key, |link| {
                    CommitRecord::new(&commit_id, &run_id, false, files, link).to_json()
                })
                .await?;
            if !created {
                return Err(SinkError::Inconsistent {
                    location: self.archive.url().to_string(),
                    key: record_key,
                    reason: "a commit record with this id already exists".into(),
                });
            }

            step(ProtocolStep::Index, &commit_id, "");
            let tables = &self.tables;
            self.index.apply_commit(
                &commit_id,
                index_keys.iter().flat_map(|(table, keys)| {
                    let name = tables[*table].name();
                    keys.iter().map(move |k| (name, k.as_bytes()))
                }),
            )?;
            report.commit_id = Some(commit_id);
        }

        let commit_id = report.commit_id.clone().unwrap_or_default();
        step(ProtocolStep::Checkpoints, &commit_id, "");
        self.checkpoints.save(&checkpoints).await?;
        report.checkpoints = checkpoints.len();

        if !commit_id.is_empty() {
            step(ProtocolStep::ClearWriteAhead, &commit_id, "");
            store_io::delete(self.checkpoints.location(), WRITE_AHEAD_KEY).await?;
        }
        step(ProtocolStep::Committed, &commit_id, "");
        self.buffered_bytes = 0;
        Ok(report)
    }

    /// Splits each partition's rows, in key order, into files of at most about
    /// `target_file_bytes`, each named by the hash of its keys. Returns the files and,
    /// per file, its table and keys (for the index).
    fn plan_files(
        &self,
        buffers: BTreeMap<(usize, i32), PartitionBuffer>,
        batches: &[Arc<Vec<RecordBatch>>],
    ) -> Result<(Vec<FilePlan>, Vec<FileKeys>), SinkError> {
        let mut plans = Vec::new();
        let mut keys_per_file = Vec::new();
        // Each table's order keys, made once for all its partitions (`buffers` holds a
        // table's partitions side by side).
        let mut order_keys_of: Option<(usize, Option<Vec<Rows>>)> = None;
        for ((table_index, days), buffer) in buffers {
            let table = &self.tables[table_index];
            let table_batches = &batches[table_index];
            let readers = table_batches
                .iter()
                .map(|b| KeyReader::new(&table.spec, b))
                .collect::<Result<Vec<_>, _>>()?;
            if order_keys_of
                .as_ref()
                .is_none_or(|(t, _)| *t != table_index)
            {
                order_keys_of = Some((table_index, order_keys(table, table_batches)?));
            }
            let order_keys = order_keys_of.as_ref().map(|(_, keys)| keys);
            // Rows sorted by order key, then version key, so a file's bytes depend only on
            // its rows.
            let mut rows: Vec<PlannedRow> = Vec::with_capacity(buffer.positions.len());
            for &(batch, row) in &buffer.positions {
                let (batch, row) = (batch as usize, row as usize);
                let key = readers[batch]
                    .key(row)
                    .expect("keys were checked when appended");
                let order: Box<[u8]> = match order_keys {
                    Some(Some(keys)) => keys[batch].row(row).as_ref().into(),
                    _ => Box::new([]),
                };
                rows.push((order, key, batch, row));
            }
            rows.sort_unstable();
            let files = buffer.bytes.div_ceil(self.options.target_file_bytes).max(1);
            let per_file = rows.len().div_ceil(files).max(1);
            let buffered_bytes = buffer.bytes.div_ceil(files);
            let dir = table.partition_dir(days);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<_> = rows.by_ref().take(per_file).collect();
                let mut keys = Vec::with_capacity(chunk.len());
                let mut order = Vec::with_capacity(chunk.len());
                for (_, key, batch, row) in chunk {
                    keys.push(key);
                    order.push((batch, row));
                }
                keys.sort_unstable();
                let hash = file_hash(&keys);
                plans.push(FilePlan {
                    table: table_index,
                    days,
                    path: data_file_key(&dir, &hash),
                    dir: dir.clone(),
                    hash,
                    adopt: false,
                    order,
                    batches: Arc::clone(table_batches),
                    buffered_bytes,
                });
                keys_per_file.push((table_index, keys));
            }
        }
        Ok((plans, keys_per_file))
    }

    /// [`Self::publish`], announced as a protocol step and tagged with its position.
    async fn publish_as(
        &self,
        position: usize,
        commit_id: &str,
        plan: FilePlan,
    ) -> Result<(usize, FileRecord), SinkError> {
        step(ProtocolStep::WriteFile, commit_id, &plan.path);
        Ok((position, self.publish(plan).await?))
    }

    /// Names a planned file before the write-ahead record lists it. A file already under
    /// its name is adopted when it reads as the planned number of rows (a run that stopped
    /// wrote it). One that cannot be read, or holds another number of rows, is damage:
    /// it is left as it is, for `verify` to name, and the rows go under the next name,
    /// `part-<hash>-<n>.parquet`, the same on every run.
    async fn settle_name(&self, plan: &mut FilePlan) -> Result<Vec<String>, SinkError> {
        let table = &self.tables[plan.table];
        let rows = plan.order.len() as u64;
        let mut warnings = Vec::new();
        for attempt in 0..DAMAGED_NAMES_PASSED {
            if attempt > 0 {
                plan.path = data_file_key(&plan.dir, &format!("{}-{attempt}", plan.hash));
            }
            let Some(meta) = store_io::head(&self.archive, &plan.path).await? else {
                return Ok(warnings);
            };
            // Adopted only if every key reads back and they are the planned rows' keys:
            // a file whose footer survived but whose keys did not is damage too.
            let problem =
                match read_rows_and_keys(&self.archive, &plan.path, meta.size, table, true).await {
                    Ok((found, mut keys)) => {
                        keys.sort_unstable();
                        if found == rows && file_hash(&keys) == plan.hash {
                            plan.adopt = true;
                            return Ok(warnings);
                        }
                        if found == rows {
                            "holds other rows than its name stands for".to_string()
                        } else {
                            format!("holds {found} rows, not the {rows} rows its name stands for")
                        }
                    }
                    Err(e) if is_damage(&e) => format!("cannot be read: {e}"),
                    Err(e) => return Err(e),
                };
            let warning = format!(
                "`{}` is already in the archive but {problem}; it is left as it is and its rows are written under another name",
                plan.path
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
        }
        Err(SinkError::Inconsistent {
            location: self.archive.url().to_string(),
            key: plan.path.clone(),
            reason: format!(
                "the {DAMAGED_NAMES_PASSED} names the file's rows may take are all held by damaged files"
            ),
        })
    }

    /// Writes one planned file, or adopts the file already there under its name (same
    /// name, same rows).
    async fn publish(&self, plan: FilePlan) -> Result<FileRecord, SinkError> {
        let table = &self.tables[plan.table];
        let rows = plan.order.len() as u64;
        let record = |bytes, sha256| FileRecord {
            path: plan.path.clone(),
            table: table.name().to_string(),
            partition: partition_value(plan.days).unwrap_or_default(),
            rows,
            bytes,
            sha256,
        };
        if !plan.adopt {
            let written = write_file(
                &self.encoders,
                &self.archive,
                &plan.path,
                table.file_schema.clone(),
                self.properties.clone(),
                table.spec.key_columns,
                table.spec.statistics_columns,
                plan.batches,
                plan.order,
            )
            .await?;
            if written.published == Published::Created {
                return Ok(record(written.bytes, written.sha256));
            }
        }
        tracing::info!(file = %plan.path, "file already in the archive; adopting it");
        let (bytes, sha256) = hash_object(&self.archive, &plan.path).await?;
        let (found_rows, _) =
            read_rows_and_keys(&self.archive, &plan.path, bytes, table, false).await?;
        if found_rows != rows {
            return Err(SinkError::Inconsistent {
                location: self.archive.url().to_string(),
                key: plan.path.clone(),
                reason: format!(
                    "the file already exists with {found_rows} rows, but its name stands for {rows} rows"
                ),
            });
        }
        Ok(record(bytes, sha256))
    }

    /// Loads the head of this writer's chain, or starts a chain for a new state location
    /// (or one whose head is unreadable, with a warning). A record the last run was
    /// writing when it stopped moves the head if it is there.
    async fn open_chain(&mut self, report: &mut RecoveryReport) -> Result<(), SinkError> {
        let state = self.checkpoints.location().clone();
        let mut head = match store_io::get_record::<ChainHead>(&state, CHAIN_KEY).await {
            Ok(Some(head)) => head,
            Ok(None) => ChainHead::new(&uuid::Uuid::new_v4().to_string()),
            Err(e) if matches!(e, SinkError::Record { .. }) => {
                let head = ChainHead::new(&uuid::Uuid::new_v4().to_string());
                report.warnings.push(format!(
                    "{e}; records from now on start a new chain, {}",
                    head.writer
                ));
                head
            }
            Err(e) => return Err(e),
        };
        if let Some(pending) = head.pending.take() {
            let written = store_io::get_bytes(&self.archive, &pending.key).await?;
            match written {
                Some(bytes) if record_sha256(&bytes) == pending.sha256 => {
                    self.sign(&pending.key, &pending.sha256).await?;
                    head.advance(&pending.link, pending.sha256);
                }
                Some(_) => report.warnings.push(format!(
                    "`{}` is not the record chain {} was writing as number {}; the chain goes on from number {}",
                    pending.key, head.writer, pending.link.sequence, head.sequence
                )),
                None => {}
            }
            store_io::put_json(&state, CHAIN_KEY, &head).await?;
        }
        self.chain = head;
        Ok(())
    }

    /// Writes a new record as the next of this writer's chain: `record` makes its bytes
    /// given its link. The head is saved with the record marked pending before the record
    /// is written, and moved after it (and after its signature, when signing), so a run
    /// that stops in between finds the record pending and completes it. False, writing
    /// nothing, when the key exists.
    async fn append_to_chain(
        &mut self,
        key: &str,
        record: impl FnOnce(ChainLink) -> Vec<u8>,
    ) -> Result<bool, SinkError> {
        let state = self.checkpoints.location().clone();
        let link = self.chain.next_link();
        let bytes = record(link.clone());
        let sha256 = record_sha256(&bytes);
        self.chain.pending = Some(PendingRecord {
            key: key.to_string(),
            link: link.clone(),
            sha256: sha256.clone(),
        });
        store_io::put_json(&state, CHAIN_KEY, &self.chain).await?;
        let created = store_io::create(&self.archive, key, bytes.into()).await?;
        if created {
            self.sign(key, &sha256).await?;
        }
        self.chain.pending = None;
        if created {
            self.chain.advance(&link, sha256);
        }
        store_io::put_json(&state, CHAIN_KEY, &self.chain).await?;
        Ok(created)
    }

    /// Writes the signature of the record at `key`, when this writer signs (once: a
    /// signature already there, as after a crash, stays).
    async fn sign(&self, key: &str, sha256: &str) -> Result<(), SinkError> {
        if let Some(signing_key) = &self.options.signing_key {
            let signature = signing_key.sign(key, sha256);
            store_io::create(
                &self.archive,
                &signature_key(key),
                signature.to_json().into(),
            )
            .await?;
        }
        Ok(())
    }

    /// Writes a run's summary (`_archive/runs/<run id>.json`) as the next record of this
    /// writer's chain, and returns the chain's new head.
    pub async fn write_run_summary(
        &mut self,
        summary: &mut RunSummary,
    ) -> Result<ChainHead, SinkError> {
        let key = run_summary_key(&summary.run_id);
        let created = self
            .append_to_chain(&key, |link| {
                summary.chain = Some(link);
                summary.to_json()
            })
            .await?;
        if !created {
            return Err(SinkError::Inconsistent {
                location: self.archive.url().to_string(),
                key,
                reason: "a run summary with this id already exists".into(),
            });
        }
        Ok(self.chain.clone())
    }

    /// The head of this writer's chain: the last record it wrote.
    pub fn chain_head(&self) -> &ChainHead {
        &self.chain
    }

    /// Completes a commit interrupted by a crash: files of its write-ahead record that
    /// exist are committed and indexed, the others forgotten.
    async fn recover_write_ahead(&mut self, report: &mut RecoveryReport) -> Result<(), SinkError> {
        let state = self.checkpoints.location().clone();
        state.remove_staging_leftovers(WRITE_AHEAD_KEY)?;
        let Some(write_ahead): Option<WriteAhead> =
            store_io::get_record(&state, WRITE_AHEAD_KEY).await?
        else {
            return Ok(());
        };
        let commit_id = write_ahead.commit_id.clone();
        step(ProtocolStep::Recover, &commit_id, "");
        tracing::warn!(commit = %commit_id, files = write_ahead.files.len(), "completing an interrupted commit");
        let mut files = Vec::new();
        let mut keys: Vec<FileKeys> = Vec::new();
        for planned in &write_ahead.files {
            let table_index = self.table_index(&planned.table).map_err(|_| SinkError::Inconsistent {
                location: state.url().to_string(),
                key: WRITE_AHEAD_KEY.to_string(),
                reason: format!(
                    "the interrupted commit wrote table `{}`, which this writer was not opened with",
                    planned.table
                ),
            })?;
            self.archive.remove_staging_leftovers(&planned.path)?;
            let Some(meta) = store_io::head(&self.archive, &planned.path).await? else {
                report.files_forgotten.push(planned.path.clone());
                continue;
            };
            let table = &self.tables[table_index];
            let (bytes, sha256) = hash_object(&self.archive, &planned.path).await?;
            let (rows, file_keys) = match read_rows_and_keys(
                &self.archive,
                &planned.path,
                meta.size,
                table,
                true,
            )
            .await
            {
                Ok(read) => read,
                // Files appear only complete, so this one was damaged afterwards. It is
                // not committed; its rows come again from their scopes' checkpoints.
                Err(e) if is_damage(&e) => {
                    report.warnings.push(format!(
                            "`{}` of the interrupted commit {commit_id} is unreadable and was not committed: {e}",
                            planned.path
                        ));
                    report.files_forgotten.push(planned.path.clone());
                    continue;
                }
                Err(e) => return Err(e),
            };
            files.push(FileRecord {
                path: planned.path.clone(),
                table: planned.table.clone(),
                partition: planned.partition.clone(),
                rows,
                bytes,
                sha256,
            });
            keys.push((table_index, file_keys));
        }
        let record_key = commit_record_key(&commit_id);
        self.archive.remove_staging_leftovers(&record_key)?;
        if !files.is_empty() {
            let existing: Option<CommitRecord> =
                store_io::get_record(&self.archive, &record_key).await?;
            if existing.is_none() {
                let run_id = write_ahead.run_id.clone();
                let recovered = files.clone();
                self.append_to_chain(&record_key, |link| {
                    CommitRecord::new(&commit_id, &run_id, true, recovered, link).to_json()
                })
                .await?;
            }
            let tables = &self.tables;
            self.index.apply_commit(
                &commit_id,
                keys.iter().flat_map(|(table, keys)| {
                    let name = tables[*table].name();
                    keys.iter().map(move |k| (name, k.as_bytes()))
                }),
            )?;
        }
        store_io::delete(&state, WRITE_AHEAD_KEY).await?;
        report.recovered_commit = Some(commit_id);
        report.files_committed = files;
        Ok(())
    }

    /// Applies to the index every commit record of the archive it has not applied yet.
    async fn catch_up_index(&mut self, report: &mut RecoveryReport) -> Result<(), SinkError> {
        let listed: Vec<String> = store_io::list(&self.archive, COMMITS_DIR)
            .await?
            .iter()
            .filter_map(|key| commit_id_of(key).map(str::to_string))
            .collect();
        let listed_set: HashSet<&str> = listed.iter().map(String::as_str).collect();
        let mut applied = self.index.applied_commits()?;
        if applied.iter().any(|id| !listed_set.contains(id.as_str())) {
            let missing = applied
                .iter()
                .filter(|id| !listed_set.contains(id.as_str()))
                .count();
            report.warnings.push(format!(
                "the version index knew {missing} commit record(s) the archive no longer has; rebuilt it from the archive"
            ));
            self.index
                .reset(&index_identity(&self.archive, &self.tables))?;
            report.index_rebuilt = true;
            applied.clear();
        }
        for commit_id in listed.iter().filter(|id| !applied.contains(id.as_str())) {
            let record_key = commit_record_key(commit_id);
            // A damaged record or file is named and left out of the index, and the
            // commit is not marked applied, so every later open names it again until it
            // is repaired. Its rows are then unknown to the index: if they come again
            // they are stored again. A possible repeat, never a lost row, and never an
            // archive that no run can open. Storage errors still stop the writer: they
            // say nothing about the archive.
            let record = match store_io::get_record::<CommitRecord>(&self.archive, &record_key)
                .await
            {
                Ok(Some(record)) => record,
                Ok(None) => {
                    report.warnings.push(format!(
                        "commit record `{record_key}` was listed but is gone; not indexed"
                    ));
                    continue;
                }
                Err(e) if is_damage(&e) => {
                    report.warnings.push(format!(
                        "commit record `{record_key}` is unreadable, so the rows of the files it lists are not in the version index and may be stored again: {e}"
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut keys: Vec<FileKeys> = Vec::new();
            let mut complete = true;
            for file in &record.files {
                let Ok(table_index) = self.table_index(&file.table) else {
                    continue;
                };
                let Some(meta) = store_io::head(&self.archive, &file.path).await? else {
                    report.warnings.push(format!(
                        "commit record `{record_key}` lists `{}`, which is not in the archive",
                        file.path
                    ));
                    continue;
                };
                match read_rows_and_keys(
                    &self.archive,
                    &file.path,
                    meta.size,
                    &self.tables[table_index],
                    true,
                )
                .await
                {
                    Ok((_, file_keys)) => keys.push((table_index, file_keys)),
                    Err(e) if is_damage(&e) => {
                        complete = false;
                        report.warnings.push(format!(
                            "`{}` (listed by commit record `{record_key}`) is unreadable, so its rows are not in the version index and may be stored again: {e}",
                            file.path
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            let tables = &self.tables;
            let keys = keys.iter().flat_map(|(table, keys)| {
                let name = tables[*table].name();
                keys.iter().map(move |k| (name, k.as_bytes()))
            });
            if complete {
                report.keys_indexed += self.index.apply_commit(commit_id, keys)?;
                report.commit_records_applied += 1;
            } else {
                report.keys_indexed += self.index.add_keys(keys)?;
            }
        }
        for warning in &report.warnings {
            tracing::warn!("{warning}");
        }
        Ok(())
    }

    fn table_index(&self, table: &str) -> Result<usize, SinkError> {
        self.tables
            .iter()
            .position(|t| t.name() == table)
            .ok_or_else(|| SinkError::UnknownTable {
                table: table.to_string(),
                known: self
                    .tables
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    fn check_poisoned(&self) -> Result<(), SinkError> {
        match &self.poisoned {
            Some(reason) => Err(SinkError::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Whether an error says that something in the archive is damaged (a record that is not
/// JSON, a Parquet file that does not decode), rather than that the store failed.
fn is_damage(error: &SinkError) -> bool {
    match error {
        SinkError::Json { .. } | SinkError::Record { .. } | SinkError::Inconsistent { .. } => true,
        SinkError::Parquet { source, .. } => !matches!(
            source.as_ref(),
            parquet::errors::ParquetError::External(e) if e.is::<object_store::Error>()
        ),
        _ => false,
    }
}

/// The memory a batch holds, each buffer counted once: columns may share buffers (a
/// sparse table's batches share one all-null array among many columns).
fn memory_of(batch: &RecordBatch) -> usize {
    fn walk(data: &arrow::array::ArrayData, seen: &mut HashSet<usize>, total: &mut usize) {
        let buffers = data
            .buffers()
            .iter()
            .chain(data.nulls().map(|n| n.buffer()));
        for buffer in buffers {
            if seen.insert(buffer.data_ptr().as_ptr() as usize) {
                *total += buffer.capacity();
            }
        }
        for child in data.child_data() {
            walk(child, seen, total);
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for column in batch.columns() {
        walk(&column.to_data(), &mut seen, &mut total);
    }
    total
}

/// Files a commit has in flight per encoder thread, at most. A first sync's commit writes a
/// file per day of history per table (363 files of about 100 rows for a year): at one per
/// encoder such a commit took 1.3-1.6 s, at four 0.9-1.2 s.
const FILES_IN_FLIGHT_PER_ENCODER: usize = 4;
/// What the uploads beyond one per encoder may hold together, judged by the commit's
/// largest file. An upload holds what its file encoded to (up to a part and the parts in
/// flight), so large files keep one upload per encoder and the budget is not exceeded.
const EXTRA_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// Files a commit has in flight: one per encoder, and more while the extra uploads, each
/// at most `largest_file_bytes`, fit in [`EXTRA_UPLOAD_BYTES`].
fn files_in_flight(encoders: usize, largest_file_bytes: usize) -> usize {
    let encoders = encoders.max(1);
    let extra = (EXTRA_UPLOAD_BYTES / largest_file_bytes.max(1))
        .min(encoders * (FILES_IN_FLIGHT_PER_ENCODER - 1));
    encoders + extra
}

fn encoder_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The steps of the commit protocol, as the `step` field of [`PROTOCOL_TARGET`] events
/// names them (each event comes just before its step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolStep {
    /// Recovery of an interrupted commit, when the writer opens.
    Recover,
    WriteAhead,
    /// One per file.
    WriteFile,
    CommitRecord,
    Index,
    Checkpoints,
    ClearWriteAhead,
    Committed,
}

impl ProtocolStep {
    pub const ALL: [ProtocolStep; 8] = [
        ProtocolStep::Recover,
        ProtocolStep::WriteAhead,
        ProtocolStep::WriteFile,
        ProtocolStep::CommitRecord,
        ProtocolStep::Index,
        ProtocolStep::Checkpoints,
        ProtocolStep::ClearWriteAhead,
        ProtocolStep::Committed,
    ];

    /// The name in log events.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolStep::Recover => "recover",
            ProtocolStep::WriteAhead => "write_ahead",
            ProtocolStep::WriteFile => "write_file",
            ProtocolStep::CommitRecord => "commit_record",
            ProtocolStep::Index => "index",
            ProtocolStep::Checkpoints => "checkpoints",
            ProtocolStep::ClearWriteAhead => "clear_write_ahead",
            ProtocolStep::Committed => "committed",
        }
    }

    /// The step a log event names.
    pub fn from_name(name: &str) -> Option<ProtocolStep> {
        ProtocolStep::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

fn step(step: ProtocolStep, commit_id: &str, file: &str) {
    tracing::debug!(target: PROTOCOL_TARGET, step = step.as_str(), commit_id, file);
}

/// (order key, version key, batch, row) of a row being placed in a file.
type PlannedRow = (Box<[u8]>, VersionKey, usize, usize);

/// Each batch's rows in the table's order columns, as comparable bytes (Arrow's row format,
/// ascending with nulls last as SQL's `ORDER BY` has them); `None` for a table without order columns.
fn order_keys(table: &Table, batches: &[RecordBatch]) -> Result<Option<Vec<Rows>>, SinkError> {
    if table.order_indices.is_empty() {
        return Ok(None);
    }
    let fields = table
        .order_indices
        .iter()
        .map(|&i| {
            SortField::new_with_options(
                table.file_schema.field(i).data_type().clone(),
                SortOptions {
                    descending: false,
                    nulls_first: false,
                },
            )
        })
        .collect();
    let converter = RowConverter::new(fields).map_err(|e| SinkError::SchemaMismatch {
        table: table.name().to_string(),
        detail: format!("order columns cannot be compared: {e}"),
    })?;
    batches
        .iter()
        .map(|batch| {
            let columns: Vec<ArrayRef> = table
                .order_indices
                .iter()
                .map(|&i| Arc::clone(batch.column(i)))
                .collect();
            converter
                .convert_columns(&columns)
                .map_err(|e| SinkError::SchemaMismatch {
                    table: table.name().to_string(),
                    detail: format!("order columns cannot be compared: {e}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// How many names a file's rows may take when damaged files hold the first ones.
const DAMAGED_NAMES_PASSED: usize = 16;
/// Planned files whose names are checked at once (a HEAD each, on an object store).
const NAMES_SETTLED_AT_ONCE: usize = 16;

/// `part-<hash>` of a file: the first 128 bits of SHA-256 over its sorted keys, so the same rows always get the same name.
fn file_hash(sorted_keys: &[VersionKey]) -> String {
    let mut hasher = Sha256::new();
    for key in sorted_keys {
        hasher.update(key.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// A commit id: UTC time, run id and sequence number, so ids sort by time and never
/// repeat within a run.
fn commit_id(run_id: &str, sequence: u64) -> String {
    let run: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    let run = if run.is_empty() {
        "run".to_string()
    } else {
        run
    };
    format!(
        "{}-{run}-{sequence:06}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    )
}

/// What the index must have been built for: this archive and these tables and keys.
fn index_identity(archive: &Location, tables: &[Table]) -> String {
    let mut tables: Vec<String> = tables
        .iter()
        .map(|t| {
            let day = t.spec.key_day_column.unwrap_or("-");
            format!("{}:{}@{day}", t.name(), t.spec.key_columns.join(","))
        })
        .collect();
    tables.sort();
    // The key format (see `VersionKey`): an index of another format is rebuilt.
    format!(
        "archive={}\nkeys=day+sha256\ntables={}",
        archive.url(),
        tables.join(";")
    )
}

fn default_index_dir(archive_url: &str, state_url: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let digest = Sha256::digest(format!("{archive_url}\n{state_url}").as_bytes());
    cache
        .join("teams-archiver")
        .join("index")
        .join(hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_upload_four_per_encoder_and_large_ones_one() {
        const MIB: usize = 1024 * 1024;
        // A first sync's files of about 100 rows.
        assert_eq!(files_in_flight(2, 200 * 1024), 8);
        // At most four per encoder however small; 16 MiB of 1 MiB files is 16 more.
        assert_eq!(files_in_flight(16, 200 * 1024), 64);
        assert_eq!(files_in_flight(16, MIB), 32);
        // Extra uploads share 16 MiB: two more of 8 MiB, none of 128 MiB.
        assert_eq!(files_in_flight(2, 8 * MIB), 4);
        assert_eq!(files_in_flight(2, 128 * MIB), 2);
        assert_eq!(files_in_flight(0, 0), 4);
    }
}
