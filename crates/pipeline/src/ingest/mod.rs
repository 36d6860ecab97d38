//! `ingest` as a source of the pipeline: saved Graph responses into the archive.
//!
//! Two passes. Sorting: worker threads read the files (JSONL line by line, so a file's
//! size does not matter), find their items, and write each to a bucket of its partition
//! day on local disk ([`spill`]). Archiving: the workers read the buckets back a day at a
//! time and push the items into their lanes; the driver deduplicates them against the
//! archive and commits files as its buffer fills, so each commit writes few, large files,
//! and keeps the days still arriving ([`Frontier`]) for the next commit: one file a day.
//!
//! The memory budget bounds the whole run: an eighth of it is the writer's buffer, the
//! rest covers the program itself, the batches being built and in flight, the files
//! being encoded, and what the allocator keeps around them.

mod input;
mod spill;

use std::io::BufReader;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use archive::records::{Command, Outcome, RECORDED_ERRORS, RunSummary};
use archive::signing::SigningKey;
use chrono::{DateTime, Utc};
use transform::{CHAT_MESSAGE_DAY_KEYS, DayReader, MAIL_MESSAGE_DAY_KEYS, RowContext};

use crate::driver::{Driver, GrowingDays, Lane};
use crate::progress::Progress;
use crate::run;
use input::{Found, Item, Unusable};
use spill::{Record, SpillWriter, Unit};

/// What the items of the inputs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindHint {
    /// Decide per item: chatMessage or mail message, by its `@odata.type` or its properties.
    Auto,
    /// Every item is a Teams chatMessage (chat or channel).
    Chat,
    /// Every item is an Outlook mail message (delta removals included).
    Mail,
}

/// Everything an ingest run is asked to do.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub out: String,
    /// The state location (default: `<out>/_state`).
    pub state: Option<String>,
    /// Signs every record the run writes.
    pub signing_key: Option<Arc<SigningKey>>,
    pub kind: KindHint,
    /// Chat messages are recorded as held by this user's mailbox.
    pub custodian: Option<String>,
    pub memory_budget_mib: usize,
    /// Longest JSONL line, and largest page file, read in bytes; larger ones are named
    /// and skipped.
    pub max_line_bytes: usize,
    /// Worker threads (default: one per core).
    pub threads: Option<usize>,
    /// Where the day buckets go (default: the system's temporary folder).
    pub spill_dir: Option<PathBuf>,
    /// Files or folders of saved responses.
    pub inputs: Vec<PathBuf>,
}

/// A JSONL file is read in chunks of this size, and its progress reported as often.
const JSONL_READ_BYTES: usize = 1024 * 1024;
/// Most rows a worker gathers before handing a batch to the writer.
const BATCH_ROWS: usize = 8192;
/// A batch is handed over at this fraction of the memory budget, if that comes first.
const BATCH_SHARE_OF_BUDGET: usize = 128;
/// At the end of a unit, a batch is handed over from this fraction of its full size.
const UNIT_END_SHARE_OF_BATCH: usize = 4;
/// The writer's buffer takes this many sixteenths of the memory budget.
const WRITER_SIXTEENTHS_OF_BUDGET: usize = 2;

/// A file, item or line that could not be archived, named for the summary.
#[derive(Debug)]
struct Problem {
    file: PathBuf,
    item: Option<usize>,
    message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.item {
            Some(item) => write!(f, "{} item {}: {}", self.file.display(), item, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// What the workers of both passes share.
struct Shared {
    files: Vec<PathBuf>,
    next: AtomicUsize,
    problems: Mutex<Problems>,
    progress: Arc<Progress>,
}

/// The problems met, as many as a run summary lists, and how many more there were: a
/// file of millions of bad lines must not take memory with it.
#[derive(Default)]
struct Problems {
    listed: Vec<Problem>,
    not_listed: usize,
}

impl Shared {
    fn problem(&self, file: &Path, item: Option<usize>, message: String) {
        let mut problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        if problems.listed.len() < RECORDED_ERRORS {
            problems.listed.push(Problem {
                file: file.to_path_buf(),
                item,
                message,
            });
        } else {
            problems.not_listed += 1;
        }
    }
}

/// Runs an ingest: archives the inputs' items, writes the run summary, and returns it with
/// the head of the writer's chain of records.
pub async fn run(
    options: IngestOptions,
    progress: Arc<Progress>,
) -> anyhow::Result<(RunSummary, archive::records::ChainHead)> {
    let started = Utc::now();
    let run_id = run::new_run_id(Command::Ingest);
    let input::Inputs { files, passed_over } =
        input::collect_files(&options.inputs).context("reading the inputs")?;
    for (path, why) in &passed_over {
        tracing::warn!(file = %path.display(), "not read: {why}");
    }
    if files.is_empty() {
        anyhow::bail!("no *.json, *.jsonl or *.ndjson files under the given inputs");
    }
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    tracing::info!(run_id, files = files.len(), bytes = total_bytes, out = %options.out, "ingest started");

    let state = archive::layout::state_location(&options.out, options.state.as_deref(), None);
    let budget_bytes = options.memory_budget_mib.max(1) * 1024 * 1024;
    let writer = run::open_writer(
        &options.out,
        &state,
        &run_id,
        budget_bytes / 16 * WRITER_SIXTEENTHS_OF_BUDGET,
        options.signing_key.clone(),
    )
    .await?;
    // Ingest commits when the buffer fills and at the end, not by the clock.
    let driver = Driver::start(
        writer,
        run::driver_options(budget_bytes, 0, Duration::from_secs(365 * 86_400)),
        Arc::clone(&progress),
    );

    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let shared = Arc::new(Shared {
        files,
        next: AtomicUsize::new(0),
        problems: Mutex::new(Problems::default()),
        progress: Arc::clone(&progress),
    });

    // Sorting: every input's items into day buckets.
    let spill = SpillWriter::new(options.spill_dir.as_deref())
        .context("creating the temporary folder for sorting (see --spill-dir)")?;
    tracing::debug!(folder = %spill.path().display(), "sorting items by day");
    let spill = Arc::new(spill);
    progress.set_bytes("sort", total_bytes);
    on_workers(threads, "sorting", |_| {
        let job = SortJob {
            shared: Arc::clone(&shared),
            kind: options.kind,
            max_line_bytes: options.max_line_bytes.max(1),
            spill: Arc::clone(&spill),
        };
        move || job.run()
    })
    .await?;
    let spilled = Arc::try_unwrap(spill)
        .map_err(|_| anyhow::anyhow!("a sorting worker still holds the buckets"))?
        .finish()
        .context("closing the temporary bucket files")?;
    tracing::info!(
        bytes = spilled.bytes,
        units = spilled.units.len(),
        "items sorted by day"
    );

    // Archiving: the buckets, a day at a time, through the lanes to the writer.
    progress.set_bytes("archive", spilled.bytes);
    // The units move to the frontier; the rest of `spilled`, the temporary folder, stays
    // until the run ends.
    let frontier = Arc::new(Mutex::new(Frontier::new(spilled.units, threads)));
    on_workers(threads, "archiving", |worker| {
        let job = ArchiveJob {
            shared: Arc::clone(&shared),
            frontier: Arc::clone(&frontier),
            worker,
            lane: driver.lane(None),
            custodian: options.custodian.clone(),
            run_id: run_id.clone(),
            batch_bytes: budget_bytes / BATCH_SHARE_OF_BUDGET,
        };
        move || job.run()
    })
    .await?;
    let (written, mut writer) = driver.finish().await.context("writing the archive")?;

    let problems = std::mem::take(&mut *shared.problems.lock().unwrap_or_else(|p| p.into_inner()));
    let mut summary = RunSummary::new(&run_id, Command::Ingest, started);
    summary.totals = written.totals;
    summary.record_errors(
        problems.listed.iter().map(ToString::to_string).collect(),
        problems.not_listed,
    );
    summary.finish(if summary.errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    });
    let head = run::write_summary(&mut writer, &mut summary).await?;
    Ok((summary, head))
}

/// Runs a job per thread (each made by `make`), and reports the first that failed.
async fn on_workers<Job>(
    threads: usize,
    role: &str,
    make: impl Fn(usize) -> Job,
) -> anyhow::Result<()>
where
    Job: FnOnce() -> anyhow::Result<()> + Send + 'static,
{
    let workers: Vec<_> = (0..threads)
        .map(|n| tokio::task::spawn_blocking(make(n)))
        .collect();
    for worker in workers {
        worker
            .await
            .with_context(|| format!("a {role} worker stopped"))??;
    }
    Ok(())
}

/// The first pass: files into day buckets.
struct SortJob {
    shared: Arc<Shared>,
    kind: KindHint,
    max_line_bytes: usize,
    spill: Arc<SpillWriter>,
}

impl SortJob {
    fn run(self) -> anyhow::Result<()> {
        let mut days = DayReader::new();
        loop {
            let i = self.shared.next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = self.shared.files.get(i) else {
                break;
            };
            self.sort_file(i, path, &mut days)?;
        }
        Ok(())
    }

    /// An error only when a bucket cannot be written; a file's problems are recorded.
    fn sort_file(&self, file: usize, path: &Path, days: &mut DayReader) -> anyhow::Result<()> {
        if input::is_jsonl_file(path) {
            return self.sort_jsonl(file, path, days);
        }
        let (text, fetched_at) = match read_file(path, self.max_line_bytes) {
            Ok(read) => read,
            Err(message) => {
                self.shared.problem(path, None, message);
                return Ok(());
            }
        };
        let mut found = Vec::new();
        let mut unusable: Vec<Unusable> = Vec::new();
        let split = input::split_file(&text, self.kind, &mut found, &mut unusable);
        if let Err(message) = split {
            self.shared.problem(path, None, message);
        }
        for Unusable { index, reason } in unusable {
            self.shared
                .problem(path, index, format!("not archived: it {reason}"));
        }
        let fetched_at_micros = fetched_at.timestamp_micros();
        for &item in &found {
            self.put(file, item, fetched_at_micros, days)?;
        }
        self.shared.progress.add_bytes(text.len() as u64);
        Ok(())
    }

    /// Streams a JSONL file line by line: however large the file, only a line at a time
    /// is in memory.
    fn sort_jsonl(&self, file: usize, path: &Path, days: &mut DayReader) -> anyhow::Result<()> {
        let opened = std::fs::File::open(path).and_then(|f| Ok((f.metadata()?, f)));
        let (meta, reader) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.shared.problem(path, None, format!("cannot read: {e}"));
                return Ok(());
            }
        };
        let saved = meta.modified().unwrap_or_else(|_| SystemTime::now());
        let fetched_at_micros = DateTime::<Utc>::from(saved).timestamp_micros();
        let mut reader = BufReader::with_capacity(JSONL_READ_BYTES, reader);
        let mut line = Vec::new();
        let mut line_no = 0usize;
        loop {
            let read = match input::read_capped_line(&mut reader, &mut line, self.max_line_bytes) {
                Ok(input::Line::End) => break,
                Ok(input::Line::Read(read)) => read,
                Ok(input::Line::TooLong(read)) => {
                    line_no += 1;
                    self.shared.progress.add_bytes(read);
                    let message = format!(
                        "not archived: line {line_no} is {read} bytes, more than the {} MiB a line may hold (--max-line-mib)",
                        self.max_line_bytes / (1024 * 1024)
                    );
                    self.shared.problem(path, Some(line_no), message);
                    continue;
                }
                Err(e) => {
                    let message = format!("cannot read past line {line_no}: {e}");
                    self.shared.problem(path, None, message);
                    return Ok(());
                }
            };
            line_no += 1;
            self.shared.progress.add_bytes(read as u64);
            match std::str::from_utf8(&line) {
                Ok(text) => {
                    let mut found = Vec::new();
                    let mut unusable = Vec::new();
                    input::split_line(text, line_no, self.kind, &mut found, &mut unusable);
                    for Unusable { index, reason } in unusable {
                        self.shared
                            .problem(path, index, format!("not archived: it {reason}"));
                    }
                    for &item in &found {
                        self.put(file, item, fetched_at_micros, days)?;
                    }
                }
                Err(e) => {
                    let message = format!(
                        "not archived: line {line_no} is not UTF-8 text (Graph sends UTF-8 JSON): invalid byte at offset {}",
                        e.valid_up_to()
                    );
                    self.shared.problem(path, Some(line_no), message);
                }
            }
        }
        Ok(())
    }

    /// Writes one item to the bucket of its partition day (the fetch day when it has none).
    fn put(
        &self,
        file: usize,
        Item { index, found }: Item<'_>,
        fetched_at_micros: i64,
        days: &mut DayReader,
    ) -> anyhow::Result<()> {
        let day = match found {
            Found::ChatMessage(raw) => days.day(raw, CHAT_MESSAGE_DAY_KEYS),
            Found::MailMessage(raw) => days.day(raw, MAIL_MESSAGE_DAY_KEYS),
            Found::User(_) | Found::Chat(_) => None,
        };
        let fetched_day = fetched_at_micros.div_euclid(86_400_000_000) as i32;
        let record = Record {
            found,
            file,
            item: index,
            fetched_at_micros,
        };
        self.shared.progress.items.fetch_add(1, Ordering::Relaxed);
        self.spill
            .put(day.unwrap_or(fetched_day), &record)
            .with_context(|| {
                format!(
                    "writing to the temporary folder {} (see --spill-dir)",
                    self.spill.path().display()
                )
            })
    }
}

/// Which days the archiving workers may still hand over rows of: the days of the units
/// whose rows a worker holds, and every day from the first untaken unit's on (units are
/// taken in order of their first day). The writer keeps those days buffered when it
/// commits, so that each day becomes one file rather than two.
struct Frontier {
    units: Vec<spill::Unit>,
    /// The next unit to take.
    next: usize,
    /// Per worker: the days of the units whose rows it holds.
    holding: Vec<Vec<RangeInclusive<i32>>>,
}

impl Frontier {
    fn new(units: Vec<spill::Unit>, workers: usize) -> Self {
        Frontier {
            units,
            next: 0,
            holding: vec![Vec::new(); workers],
        }
    }

    /// The next unit for `worker`, whose rows it now holds.
    fn take(&mut self, worker: usize) -> Option<spill::Unit> {
        let unit = self.units.get(self.next)?.clone();
        self.next += 1;
        self.holding[worker].push(unit.days.clone());
        Some(unit)
    }

    /// The days that may still grow once `worker` hands over all it holds but the rest
    /// of the unit of `reading` it is in the middle of.
    fn growing(&mut self, worker: usize, reading: Option<RangeInclusive<i32>>) -> GrowingDays {
        self.holding[worker] = reading.into_iter().collect();
        GrowingDays {
            from: self
                .units
                .get(self.next)
                .map_or(i32::MAX, |unit| *unit.days.start()),
            open: self.holding.iter().flatten().cloned().collect(),
        }
    }
}

/// The second pass: buckets, a day at a time, into a lane.
struct ArchiveJob {
    shared: Arc<Shared>,
    frontier: Arc<Mutex<Frontier>>,
    worker: usize,
    lane: Lane,
    custodian: Option<String>,
    run_id: String,
    /// Rows are handed over when they take about this much.
    batch_bytes: usize,
}

impl ArchiveJob {
    fn run(mut self) -> anyhow::Result<()> {
        loop {
            let Some(unit) = self.frontier().take(self.worker) else {
                break;
            };
            if !self.archive_unit(&unit)? {
                return Ok(()); // the writer is gone; it reports why
            }
        }
        self.flush(None);
        Ok(())
    }

    fn frontier(&self) -> std::sync::MutexGuard<'_, Frontier> {
        self.frontier.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns false when the writer has stopped; an error when the bucket cannot be
    /// read back.
    fn archive_unit(&mut self, unit: &Unit) -> anyhow::Result<bool> {
        let bytes = unit
            .read()
            .context("reading back a temporary bucket file (see --spill-dir)")?;
        for record in spill::records(&bytes) {
            let record = record.map_err(anyhow::Error::msg)?;
            let fetched_at = DateTime::<Utc>::from_timestamp_micros(record.fetched_at_micros)
                .unwrap_or_default();
            let context = RowContext {
                source: "ingest",
                fetched_at,
                run_id: &self.run_id,
                custodian_user_id: self.custodian.as_deref(),
            };
            let (kind, raw) = record.found.kind_and_text();
            if let Err(e) = self.lane.push(kind, raw, &context) {
                self.shared
                    .problem(&self.shared.files[record.file], record.item, e.to_string());
            }
            if self.lane.estimated_bytes() >= self.batch_bytes
                && !self.flush(Some(unit.days.clone()))
            {
                return Ok(false);
            }
        }
        self.shared.progress.add_bytes(unit.bytes());
        // Rows of the next unit, often of the next day, join a batch of this one only
        // while it is small: a day the writer keeps buffered keeps its batches whole.
        if self.lane.rows() >= BATCH_ROWS
            || self.lane.estimated_bytes() >= self.batch_bytes / UNIT_END_SHARE_OF_BATCH
        {
            return Ok(self.flush(None));
        }
        Ok(true)
    }

    /// Hands the rows built so far to the writer, in the middle of reading a unit of the
    /// days `reading` or between units; false when the writer has stopped.
    fn flush(&mut self, reading: Option<RangeInclusive<i32>>) -> bool {
        let rows = self.lane.take();
        // Sent under the lock, so that what each send says of the days reaches the writer
        // in the order it was true.
        let mut frontier = self.frontier();
        let growing = frontier.growing(self.worker, reading);
        let sent = self.lane.send_growing_blocking(rows, growing).is_ok();
        drop(frontier);
        sent
    }
}

/// The file's text and the time it was saved, which stands for when Graph sent it. A
/// file is read whole, so one over `max_bytes` is refused rather than read.
fn read_file(path: &Path, max_bytes: usize) -> Result<(String, DateTime<Utc>), String> {
    let cannot = |e: std::io::Error| format!("cannot read: {e}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    let too_large = |bytes: u64| {
        format!(
            "not read: it is {bytes} bytes, more than the {} MiB a file read whole may hold (--max-line-mib); save larger inputs as JSONL, one item per line, which is streamed",
            max_bytes / (1024 * 1024)
        )
    };
    if meta.len() > max_bytes as u64 {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read stops at the cap all the same.
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, max_bytes as u64 + 1),
        &mut bytes,
    )
    .map_err(cannot)?;
    if bytes.len() > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    let saved = meta.modified().unwrap_or_else(|_| SystemTime::now());
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (Graph sends UTF-8 JSON): invalid byte at offset {}",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((text, DateTime::<Utc>::from(saved)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_grows_while_a_worker_holds_its_rows_or_no_worker_has_taken_it() {
        let temp = tempfile::tempdir().unwrap();
        let spill = SpillWriter::new(Some(temp.path())).unwrap();
        let record = Record {
            found: Found::ChatMessage("{}"),
            file: 0,
            item: None,
            fetched_at_micros: 0,
        };
        for day in [12 + spill::BUCKETS as i32, 10, 12, 11] {
            spill.put(day, &record).unwrap();
        }
        let spilled = spill.finish().unwrap();
        let days: Vec<_> = spilled.units.iter().map(|u| u.days.clone()).collect();
        assert_eq!(
            days,
            [10..=10, 11..=11, 12..=524],
            "by first day; 12 and 524 share a bucket"
        );

        let mut frontier = Frontier::new(spilled.units.clone(), 2);
        let first = frontier.take(0).unwrap();
        frontier.take(1).unwrap();
        // Worker 1 hands over day 11 while worker 0 is in the middle of day 10; no worker
        // has taken days 12 to 524.
        frontier.growing(0, Some(first.days.clone()));
        let growing = frontier.growing(1, None);
        for day in [10, 12, 300, 524, 9_999] {
            assert!(growing.contains(day), "{day}");
        }
        for day in [9, 11] {
            assert!(!growing.contains(day), "{day}");
        }
        // Every unit taken: worker 0 hands over the rest of day 10, worker 1 holds rows of
        // days 12 to 524.
        frontier.take(1).unwrap();
        assert!(frontier.take(0).is_none());
        let growing = frontier.growing(0, None);
        for day in [12, 300, 524] {
            assert!(growing.contains(day), "{day}");
        }
        for day in [10, 11, 525] {
            assert!(!growing.contains(day), "{day}");
        }
    }
}
