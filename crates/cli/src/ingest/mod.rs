//! `teams-archiver ingest`: saved Graph responses into the archive.
//!
//! Worker threads read files, find their items and transform them into record
//! batches; one writer takes the batches, deduplicates them against the archive and
//! commits files as its buffer fills. A bounded channel between the two keeps memory
//! flat however many files there are.
//!
//! `--memory-budget-mib` bounds the whole run: an eighth of it is the writer's
//! buffer, the rest covers the program itself, the batches being built and in flight,
//! the files being encoded, and what the allocator keeps around them.

mod input;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use transform::{
    ChatMessageBuilder, DirectoryChatBuilder, DirectoryUserBuilder, MailMessageBuilder, RowContext,
};

use crate::args::IngestArgs;
use crate::exit::Outcome;
use crate::progress::Progress;
use crate::run::{self, RunTotals};
use crate::tables;
use input::{Found, Unusable};

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
    FileDone {
        bytes: u64,
        items: usize,
    },
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
    let bar = progress.bytes_bar("ingest", total_bytes);
    // One batch in flight per worker: with the one each is building, that is two batches
    // per worker besides the writer's buffer.
    let (tx, mut rx) = mpsc::channel::<WorkerOutput>(threads);
    let batch_bytes = budget_bytes / BATCH_SHARE_OF_BUDGET;
    let files = Arc::new(files);
    let next_file = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let job = WorkerJob {
            files: Arc::clone(&files),
            next_file: Arc::clone(&next_file),
            kind: args.kind,
            custodian: args.custodian.clone(),
            run_id: run_id.clone(),
            batch_bytes,
            tx: tx.clone(),
        };
        workers.push(tokio::task::spawn_blocking(move || job.run()));
    }
    drop(tx);

    let mut totals = RunTotals::default();
    let mut problems = Vec::new();
    let mut items_read = 0usize;
    while let Some(output) = rx.recv().await {
        match output {
            WorkerOutput::Batch { table, batch } => {
                let stats = writer
                    .append(table, &batch)
                    .with_context(|| format!("buffering rows for {table}"))?;
                totals.add_append(table, &stats);
                if writer.needs_commit() {
                    let report = writer
                        .commit(Vec::new())
                        .await
                        .context("committing files")?;
                    totals.add_commit(&report);
                }
            }
            WorkerOutput::Problem(problem) => {
                tracing::warn!(file = %problem.file.display(), item = problem.item, "{}", problem.message);
                problems.push(problem);
            }
            WorkerOutput::FileDone { bytes, items } => {
                items_read += items;
                bar.inc(bytes);
            }
        }
    }
    for worker in workers {
        worker.await.context("an ingest worker stopped")?;
    }
    let report = writer
        .commit(Vec::new())
        .await
        .context("committing files")?;
    totals.add_commit(&report);
    bar.finish_and_clear();

    let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let outcome = if errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    };
    let summary = run::RunSummary::new(&run_id, "ingest", started, &totals, errors, outcome);
    run::write_summary(&args.out, &summary)
        .await
        .context("writing the run summary")?;
    run::print_summary(&summary, items_read, clock.elapsed());
    Ok(outcome)
}

struct WorkerJob {
    files: Arc<Vec<PathBuf>>,
    next_file: Arc<AtomicUsize>,
    kind: crate::args::ItemKind,
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

impl WorkerJob {
    fn run(self) {
        let mut builders = Builders {
            chat: ChatMessageBuilder::new(),
            mail: MailMessageBuilder::new(),
            users: DirectoryUserBuilder::new(),
            chats: DirectoryChatBuilder::new(),
        };
        loop {
            let i = self.next_file.fetch_add(1, Ordering::Relaxed);
            let Some(path) = self.files.get(i) else { break };
            if !self.ingest_file(path, &mut builders) {
                return; // the writer is gone; it reports why
            }
        }
        self.flush(&mut builders, 0);
    }

    /// Returns false when the writer has stopped listening.
    fn ingest_file(&self, path: &Path, builders: &mut Builders) -> bool {
        let (text, fetched_at) = match read_file(path) {
            Ok(read) => read,
            Err(message) => return self.problem(path, None, message),
        };
        let mut found = Vec::new();
        let mut unusable: Vec<Unusable> = Vec::new();
        if let Err(message) = input::split_file(&text, self.kind, &mut found, &mut unusable) {
            return self.problem(path, None, message)
                && self.send(WorkerOutput::FileDone {
                    bytes: text.len() as u64,
                    items: 0,
                });
        }
        for Unusable { index, reason } in unusable {
            if !self.problem(path, index, format!("not archived: it {reason}")) {
                return false;
            }
        }
        let ctx = RowContext {
            source: "ingest",
            fetched_at,
            run_id: &self.run_id,
            custodian_user_id: self.custodian.as_deref(),
        };
        for (i, item) in found.iter().enumerate() {
            let appended = match *item {
                Found::ChatMessage(raw) => builders.chat.append(raw, &ctx).map(drop),
                Found::MailMessage(raw) => builders.mail.append(raw, &ctx).map(drop),
                Found::User(raw) => builders.users.append(raw, &ctx).map(drop),
                Found::Chat(raw) => builders.chats.append(raw, &ctx).map(drop),
            };
            if let Err(e) = appended
                && !self.problem(path, Some(i), e.to_string())
            {
                return false;
            }
            if builders.full(self.batch_bytes) && !self.flush(builders, 1) {
                return false;
            }
        }
        self.flush_full(builders)
            && self.send(WorkerOutput::FileDone {
                bytes: text.len() as u64,
                items: found.len(),
            })
    }

    /// Hands over the builders that reached [`BATCH_ROWS`] rows or the batch size.
    fn flush_full(&self, b: &mut Builders) -> bool {
        if b.full(self.batch_bytes) {
            self.flush(b, 1)
        } else {
            self.flush(b, BATCH_ROWS)
        }
    }

    /// Hands every builder holding at least `min_rows` rows to the writer.
    fn flush(&self, b: &mut Builders, min_rows: usize) -> bool {
        let min_rows = min_rows.max(1);
        if b.chat.len() >= min_rows {
            let batches = b.chat.finish();
            if !self.batch(tables::CHAT_MESSAGES, batches.messages)
                || !self.batch(tables::CHAT_MESSAGE_CUSTODIANS, batches.custodians)
            {
                return false;
            }
        }
        if b.mail.len() >= min_rows && !self.batch(tables::MAIL_MESSAGES, b.mail.finish()) {
            return false;
        }
        if b.users.len() >= min_rows && !self.batch(tables::DIRECTORY_USERS, b.users.finish()) {
            return false;
        }
        if b.chats.len() >= min_rows && !self.batch(tables::DIRECTORY_CHATS, b.chats.finish()) {
            return false;
        }
        true
    }

    fn batch(&self, table: &'static str, batch: RecordBatch) -> bool {
        batch.num_rows() == 0 || self.send(WorkerOutput::Batch { table, batch })
    }

    fn problem(&self, file: &Path, item: Option<usize>, message: String) -> bool {
        self.send(WorkerOutput::Problem(Problem {
            file: file.to_path_buf(),
            item,
            message,
        }))
    }

    fn send(&self, output: WorkerOutput) -> bool {
        self.tx.blocking_send(output).is_ok()
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
