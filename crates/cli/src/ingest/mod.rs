//! `teams-archiver ingest`: saved Graph responses into the archive.
//!
//! Two passes. Sorting: worker threads read the files (JSONL line by line, so a file's
//! size does not matter), find their items, and write each to a bucket of its partition
//! day on local disk ([`spill`]). Archiving: the workers read
//! the buckets back a day at a time and transform the items into record batches; one
//! writer takes the batches, deduplicates them against the archive and commits files as
//! its buffer fills, so each commit writes few, large files. Bounded channels between the
//! workers and the writer keep memory flat however many files there are.
//!
//! `--memory-budget-mib` bounds the whole run: an eighth of it is the writer's buffer,
//! the rest covers the program itself, the batches being built and in flight, the files
//! being encoded, and what the allocator keeps around them.

mod input;
mod spill;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use indicatif::ProgressBar;
use tokio::sync::mpsc;
use transform::{
    CHAT_MESSAGE_DAY_KEYS, ChatMessageBuilder, DayReader, DirectoryChatBuilder,
    DirectoryUserBuilder, MAIL_MESSAGE_DAY_KEYS, MailMessageBuilder, RowContext,
};

use crate::args::IngestArgs;
use crate::exit::Outcome;
use crate::progress::Progress;
use crate::run::{self, RunTotals};
use crate::tables;
use input::{Found, Item, Unusable};
use spill::{Record, SpillWriter, Spilled, Unit};

/// A JSONL file is read in chunks of this size, and its progress reported as often.
const JSONL_READ_BYTES: usize = 1024 * 1024;
/// Most rows a worker gathers before handing a batch to the writer.
const BATCH_ROWS: usize = 8192;
/// A batch is handed over at this fraction of the memory budget, if that comes first.
const BATCH_SHARE_OF_BUDGET: usize = 128;
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

enum WorkerOutput {
    Batch {
        table: &'static str,
        batch: RecordBatch,
    },
    Problem(Problem),
    /// A file sorted (with the items found in it) or a unit of a bucket archived.
    Done {
        bytes: u64,
        items: usize,
    },
}

/// What the writer loop has gathered so far.
#[derive(Default)]
struct Tally {
    totals: RunTotals,
    problems: Vec<Problem>,
    items_read: usize,
}

pub async fn run(args: IngestArgs, progress: Progress) -> anyhow::Result<Outcome> {
    let started = Utc::now();
    let clock = Instant::now();
    let run_id = run::new_run_id("ingest");
    let files = input::collect_files(&args.inputs).context("reading the inputs")?;
    if files.is_empty() {
        anyhow::bail!("no *.json, *.jsonl or *.ndjson files under the given inputs");
    }
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    tracing::info!(run_id, files = files.len(), bytes = total_bytes, out = %args.out, "ingest started");

    let state = args
        .state
        .clone()
        .unwrap_or_else(|| run::default_state(&args.out));
    let budget_bytes = args.memory_budget_mib.max(1) * 1024 * 1024;
    let mut options = run::writer_options(&run_id, args.memory_budget_mib);
    options.memory_budget_bytes = budget_bytes / 16 * WRITER_SIXTEENTHS_OF_BUDGET;
    let (mut writer, recovery) =
        sink::ArchiveWriter::open(&args.out, &state, tables::all(), options)
            .await
            .with_context(|| format!("opening the archive at {}", args.out))?;
    run::log_recovery(&recovery);

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let files = Arc::new(files);
    let mut tally = Tally::default();
    let passes = Phase {
        args: &args,
        files: &files,
        threads,
        progress: &progress,
    };
    let spilled = passes.sort(total_bytes, &mut writer, &mut tally).await?;
    tracing::info!(
        bytes = spilled.bytes,
        units = spilled.units.len(),
        seconds = clock.elapsed().as_secs_f64(),
        "items sorted by day"
    );
    let batch_bytes = budget_bytes / BATCH_SHARE_OF_BUDGET;
    let bar = passes
        .archive(spilled, &run_id, batch_bytes, &mut writer, &mut tally)
        .await?;
    let report = writer
        .commit(Vec::new())
        .await
        .context("committing files")?;
    tally.totals.add_commit(&report);
    bar.finish_and_clear();

    let errors: Vec<String> = tally.problems.iter().map(ToString::to_string).collect();
    let outcome = if errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    };
    let summary = run::RunSummary::new(&run_id, "ingest", started, &tally.totals, errors, outcome);
    run::write_summary(&args.out, &summary)
        .await
        .context("writing the run summary")?;
    run::print_summary(&summary, tally.items_read, clock.elapsed());
    Ok(outcome)
}

/// What both passes share.
struct Phase<'a> {
    args: &'a IngestArgs,
    files: &'a Arc<Vec<PathBuf>>,
    threads: usize,
    progress: &'a Progress,
}

impl Phase<'_> {
    /// The first pass: every input's items into day buckets.
    async fn sort(
        &self,
        total_bytes: u64,
        writer: &mut sink::ArchiveWriter,
        tally: &mut Tally,
    ) -> anyhow::Result<Spilled> {
        let spill = SpillWriter::new(self.args.spill_dir.as_deref())
            .context("creating the temporary folder for sorting (see --spill-dir)")?;
        tracing::debug!(folder = %spill.path().display(), "sorting items by day");
        let spill = Arc::new(spill);
        let bar = self.progress.bytes_bar("sort", total_bytes);
        let next_file = Arc::new(AtomicUsize::new(0));
        self.run_workers("sorting", &bar, writer, tally, |tx| {
            let job = SortJob {
                files: Arc::clone(self.files),
                next_file: Arc::clone(&next_file),
                kind: self.args.kind,
                max_line_bytes: self.args.max_line_mib.max(1) * 1024 * 1024,
                spill: Arc::clone(&spill),
                tx,
            };
            move || job.run()
        })
        .await?;
        bar.finish_and_clear();
        Arc::try_unwrap(spill)
            .map_err(|_| anyhow::anyhow!("a sorting worker still holds the buckets"))?
            .finish()
            .context("closing the temporary bucket files")
    }

    /// The second pass: the buckets, a day at a time, through the transform to the
    /// writer. Returns the progress bar for the final commit.
    async fn archive(
        &self,
        spilled: Spilled,
        run_id: &str,
        batch_bytes: usize,
        writer: &mut sink::ArchiveWriter,
        tally: &mut Tally,
    ) -> anyhow::Result<ProgressBar> {
        let bar = self.progress.bytes_bar("archive", spilled.bytes);
        let spilled = Arc::new(spilled);
        let next_unit = Arc::new(AtomicUsize::new(0));
        self.run_workers("archiving", &bar, writer, tally, |tx| {
            let job = ArchiveJob {
                files: Arc::clone(self.files),
                spilled: Arc::clone(&spilled),
                next_unit: Arc::clone(&next_unit),
                custodian: self.args.custodian.clone(),
                run_id: run_id.to_string(),
                batch_bytes,
                tx,
            };
            move || job.run()
        })
        .await?;
        Ok(bar)
    }

    /// Runs a worker per thread, each made by `make` with its line to the writer, while
    /// the writer takes what they send; then reports the first worker that failed.
    async fn run_workers<Job>(
        &self,
        role: &str,
        bar: &ProgressBar,
        writer: &mut sink::ArchiveWriter,
        tally: &mut Tally,
        make: impl Fn(mpsc::Sender<WorkerOutput>) -> Job,
    ) -> anyhow::Result<()>
    where
        Job: FnOnce() -> anyhow::Result<()> + Send + 'static,
    {
        // One message in flight per worker keeps memory flat.
        let (tx, rx) = mpsc::channel::<WorkerOutput>(self.threads);
        let workers: Vec<_> = (0..self.threads)
            .map(|_| tokio::task::spawn_blocking(make(tx.clone())))
            .collect();
        drop(tx);
        drain(rx, writer, bar, tally).await?;
        for worker in workers {
            worker
                .await
                .with_context(|| format!("a {role} worker stopped"))??;
        }
        Ok(())
    }
}

/// The writer's side: buffers batches, commits when the buffer is full, logs problems,
/// moves the progress bar, until every worker has hung up.
async fn drain(
    mut rx: mpsc::Receiver<WorkerOutput>,
    writer: &mut sink::ArchiveWriter,
    bar: &ProgressBar,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    while let Some(output) = rx.recv().await {
        match output {
            WorkerOutput::Batch { table, batch } => {
                let stats = writer
                    .append(table, &batch)
                    .with_context(|| format!("buffering rows for {table}"))?;
                tally.totals.add_append(table, &stats);
                if writer.needs_commit() {
                    let report = writer
                        .commit(Vec::new())
                        .await
                        .context("committing files")?;
                    tally.totals.add_commit(&report);
                }
            }
            WorkerOutput::Problem(problem) => {
                tracing::warn!(file = %problem.file.display(), item = problem.item, "{}", problem.message);
                tally.problems.push(problem);
            }
            WorkerOutput::Done { bytes, items } => {
                tally.items_read += items;
                bar.inc(bytes);
            }
        }
    }
    Ok(())
}

/// Sending to the writer; false once the writer has stopped listening (it reports why).
#[derive(Clone)]
struct ToWriter(mpsc::Sender<WorkerOutput>);

impl ToWriter {
    fn send(&self, output: WorkerOutput) -> bool {
        self.0.blocking_send(output).is_ok()
    }

    fn problem(&self, file: &Path, item: Option<usize>, message: String) -> bool {
        self.send(WorkerOutput::Problem(Problem {
            file: file.to_path_buf(),
            item,
            message,
        }))
    }
}

/// The first pass: files into day buckets.
struct SortJob {
    files: Arc<Vec<PathBuf>>,
    next_file: Arc<AtomicUsize>,
    kind: crate::args::ItemKind,
    /// Longest JSONL line read; longer ones are named and skipped.
    max_line_bytes: usize,
    spill: Arc<SpillWriter>,
    tx: mpsc::Sender<WorkerOutput>,
}

impl SortJob {
    fn run(self) -> anyhow::Result<()> {
        let to_writer = ToWriter(self.tx.clone());
        let mut days = DayReader::new();
        loop {
            let i = self.next_file.fetch_add(1, Ordering::Relaxed);
            let Some(path) = self.files.get(i) else { break };
            if !self.sort_file(i, path, &mut days, &to_writer)? {
                break; // the writer is gone; it reports why
            }
        }
        Ok(())
    }

    /// Returns false when the writer has stopped listening; an error when a bucket cannot
    /// be written.
    fn sort_file(
        &self,
        file: usize,
        path: &Path,
        days: &mut DayReader,
        to_writer: &ToWriter,
    ) -> anyhow::Result<bool> {
        if input::is_jsonl_file(path) {
            return self.sort_jsonl(file, path, days, to_writer);
        }
        let (text, fetched_at) = match read_file(path) {
            Ok(read) => read,
            Err(message) => return Ok(to_writer.problem(path, None, message)),
        };
        let done = WorkerOutput::Done {
            bytes: text.len() as u64,
            items: 0,
        };
        let mut found = Vec::new();
        let mut unusable: Vec<Unusable> = Vec::new();
        if let Err(message) = input::split_file(&text, self.kind, &mut found, &mut unusable) {
            return Ok(to_writer.problem(path, None, message) && to_writer.send(done));
        }
        for Unusable { index, reason } in unusable {
            if !to_writer.problem(path, index, format!("not archived: it {reason}")) {
                return Ok(false);
            }
        }
        let fetched_at_micros = fetched_at.timestamp_micros();
        for &item in &found {
            self.put(file, item, fetched_at_micros, days)?;
        }
        Ok(to_writer.send(WorkerOutput::Done {
            bytes: text.len() as u64,
            items: found.len(),
        }))
    }

    /// Streams a JSONL file line by line: however large the file, only a line at a time
    /// is in memory.
    fn sort_jsonl(
        &self,
        file: usize,
        path: &Path,
        days: &mut DayReader,
        to_writer: &ToWriter,
    ) -> anyhow::Result<bool> {
        let opened = std::fs::File::open(path).and_then(|f| Ok((f.metadata()?, f)));
        let (meta, reader) = match opened {
            Ok(opened) => opened,
            Err(e) => return Ok(to_writer.problem(path, None, format!("cannot read: {e}"))),
        };
        let saved = meta.modified().unwrap_or_else(|_| SystemTime::now());
        let fetched_at_micros = DateTime::<Utc>::from(saved).timestamp_micros();
        let mut reader = BufReader::with_capacity(JSONL_READ_BYTES, reader);
        let mut line = Vec::new();
        let (mut line_no, mut bytes, mut items) = (0usize, 0u64, 0usize);
        loop {
            let read = match input::read_capped_line(&mut reader, &mut line, self.max_line_bytes) {
                Ok(input::Line::End) => break,
                Ok(input::Line::Read(read)) => read,
                Ok(input::Line::TooLong(read)) => {
                    line_no += 1;
                    bytes += read;
                    let message = format!(
                        "not archived: line {line_no} is {read} bytes, more than the {} MiB a line may hold (--max-line-mib)",
                        self.max_line_bytes / (1024 * 1024)
                    );
                    if !to_writer.problem(path, Some(line_no), message) {
                        return Ok(false);
                    }
                    continue;
                }
                Err(e) => {
                    let message = format!("cannot read past line {line_no}: {e}");
                    return Ok(to_writer.problem(path, None, message)
                        && to_writer.send(WorkerOutput::Done { bytes, items }));
                }
            };
            line_no += 1;
            bytes += read as u64;
            match std::str::from_utf8(&line) {
                Ok(text) => {
                    let mut found = Vec::new();
                    let mut unusable = Vec::new();
                    input::split_line(text, line_no, self.kind, &mut found, &mut unusable);
                    for Unusable { index, reason } in unusable {
                        if !to_writer.problem(path, index, format!("not archived: it {reason}")) {
                            return Ok(false);
                        }
                    }
                    for &item in &found {
                        self.put(file, item, fetched_at_micros, days)?;
                    }
                    items += found.len();
                }
                Err(e) => {
                    let message = format!(
                        "not archived: line {line_no} is not UTF-8 text (Graph sends UTF-8 JSON): invalid byte at offset {}",
                        e.valid_up_to()
                    );
                    if !to_writer.problem(path, Some(line_no), message) {
                        return Ok(false);
                    }
                }
            }
            if bytes >= JSONL_READ_BYTES as u64 {
                if !to_writer.send(WorkerOutput::Done { bytes, items }) {
                    return Ok(false);
                }
                (bytes, items) = (0, 0);
            }
        }
        Ok(to_writer.send(WorkerOutput::Done { bytes, items }))
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
        self.spill
            .put(spill::bucket_of(day.unwrap_or(fetched_day)), &record)
            .with_context(|| {
                format!(
                    "writing to the temporary folder {} (see --spill-dir)",
                    self.spill.path().display()
                )
            })
    }
}

/// The second pass: buckets, a day at a time, into record batches for the writer.
struct ArchiveJob {
    files: Arc<Vec<PathBuf>>,
    spilled: Arc<Spilled>,
    next_unit: Arc<AtomicUsize>,
    custodian: Option<String>,
    run_id: String,
    /// Builders are handed over when they hold about this much.
    batch_bytes: usize,
    tx: mpsc::Sender<WorkerOutput>,
}

struct Builders {
    chat: ChatMessageBuilder,
    mail: MailMessageBuilder,
    users: DirectoryUserBuilder,
    chats: DirectoryChatBuilder,
}

impl Builders {
    /// Whether the rows being built take `bytes` or more.
    fn full(&self, bytes: usize) -> bool {
        self.chat.estimated_bytes()
            + self.mail.estimated_bytes()
            + self.users.estimated_bytes()
            + self.chats.estimated_bytes()
            >= bytes
    }
}

impl ArchiveJob {
    fn run(self) -> anyhow::Result<()> {
        let to_writer = ToWriter(self.tx.clone());
        let mut builders = Builders {
            chat: ChatMessageBuilder::new(),
            mail: MailMessageBuilder::new(),
            users: DirectoryUserBuilder::new(),
            chats: DirectoryChatBuilder::new(),
        };
        loop {
            let i = self.next_unit.fetch_add(1, Ordering::Relaxed);
            let Some(unit) = self.spilled.units.get(i) else {
                break;
            };
            if !self.archive_unit(unit, &mut builders, &to_writer)? {
                return Ok(()); // the writer is gone; it reports why
            }
        }
        self.flush(&mut builders, 0, &to_writer);
        Ok(())
    }

    /// Returns false when the writer has stopped listening; an error when the bucket
    /// cannot be read back.
    fn archive_unit(
        &self,
        unit: &Unit,
        builders: &mut Builders,
        to_writer: &ToWriter,
    ) -> anyhow::Result<bool> {
        let bytes = unit
            .read()
            .context("reading back a temporary bucket file (see --spill-dir)")?;
        for record in spill::records(&bytes) {
            let record = record.map_err(anyhow::Error::msg)?;
            let fetched_at = DateTime::<Utc>::from_timestamp_micros(record.fetched_at_micros)
                .unwrap_or_default();
            let ctx = RowContext {
                source: "ingest",
                fetched_at,
                run_id: &self.run_id,
                custodian_user_id: self.custodian.as_deref(),
            };
            let appended = match record.found {
                Found::ChatMessage(raw) => builders.chat.append(raw, &ctx).map(drop),
                Found::MailMessage(raw) => builders.mail.append(raw, &ctx).map(drop),
                Found::User(raw) => builders.users.append(raw, &ctx).map(drop),
                Found::Chat(raw) => builders.chats.append(raw, &ctx).map(drop),
            };
            if let Err(e) = appended
                && !to_writer.problem(&self.files[record.file], record.item, e.to_string())
            {
                return Ok(false);
            }
            if builders.full(self.batch_bytes) && !self.flush(builders, 1, to_writer) {
                return Ok(false);
            }
        }
        let flushed = if builders.full(self.batch_bytes) {
            self.flush(builders, 1, to_writer)
        } else {
            self.flush(builders, BATCH_ROWS, to_writer)
        };
        Ok(flushed
            && to_writer.send(WorkerOutput::Done {
                bytes: unit.bytes(),
                items: 0,
            }))
    }

    /// Hands every builder holding at least `min_rows` rows to the writer.
    fn flush(&self, b: &mut Builders, min_rows: usize, to_writer: &ToWriter) -> bool {
        let min_rows = min_rows.max(1);
        let batch = |table: &'static str, batch: RecordBatch| {
            batch.num_rows() == 0 || to_writer.send(WorkerOutput::Batch { table, batch })
        };
        if b.chat.len() >= min_rows {
            let batches = b.chat.finish();
            if !batch(tables::CHAT_MESSAGES, batches.messages)
                || !batch(tables::CHAT_MESSAGE_CUSTODIANS, batches.custodians)
            {
                return false;
            }
        }
        if b.mail.len() >= min_rows && !batch(tables::MAIL_MESSAGES, b.mail.finish()) {
            return false;
        }
        if b.users.len() >= min_rows && !batch(tables::DIRECTORY_USERS, b.users.finish()) {
            return false;
        }
        if b.chats.len() >= min_rows && !batch(tables::DIRECTORY_CHATS, b.chats.finish()) {
            return false;
        }
        true
    }
}

/// The file's text and the time it was saved, which stands for when Graph sent it.
fn read_file(path: &Path) -> Result<(String, DateTime<Utc>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let saved = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (Graph sends UTF-8 JSON): invalid byte at offset {}",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((text, DateTime::<Utc>::from(saved)))
}
