//! The driver: the one way rows reach the archive. Sources push items into lanes; a lane
//! transforms them into record batches and hands them, with the checkpoint they allow, to
//! the one writer task. The writer commits when its budget fills, when the commit interval
//! passes, and at the end; a checkpoint is saved only by the commit that made its rows
//! durable.
//!
//! A lane is sequential: what one scope (or one worker) pushes reaches the writer in
//! order, so a checkpoint never passes rows of its own scope that are still on their way.
//! While a commit encodes and uploads, units keep arriving into a queue (up to a byte
//! cap), so fetching does not stop for the length of a commit.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use archive::Table;
use archive::records::RunTotals;
use arrow::array::{Array, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::progress::Progress;
use transform::{
    ChatMessageBuilder, ContentRow, DirectoryChatBuilder, DirectoryUserBuilder, ItemError,
    MailMessageBuilder, MessageContentBuilder, MessageIdentity, RowContext,
};

/// What an item is, and so which tables its rows go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A Teams chatMessage (chat or channel): `chat_messages`, and a custodian row when
    /// the listing had a custodian.
    ChatMessage,
    /// An Outlook mail message or a delta removal: `mail_messages`.
    MailMessage,
    /// A Graph user: `directory/users`.
    User,
    /// A Graph chat with its members: `directory/chats`.
    Chat,
}

/// How the writer task runs.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// Rows that may wait in the queue while a commit runs, in bytes.
    pub queue_bytes: usize,
    /// Commit at least this often while rows or checkpoints wait.
    pub commit_interval: Duration,
    /// Units in flight between the lanes and the writer.
    pub channel_units: usize,
    /// The process's memory budget: above three quarters of it, freed memory goes back to
    /// the system.
    pub memory_budget_bytes: usize,
}

/// Rows a lane hands over, and the checkpoint they allow once durable.
struct Unit {
    /// The lane's scope (the checkpoint's name); `None` for lanes without checkpoints.
    scope: Option<String>,
    rows: Rows,
    checkpoint: Option<serde_json::Value>,
    /// The partition days that may still receive rows, once this unit is appended;
    /// `None` when the lane cannot say.
    growing: Option<GrowingDays>,
}

/// The partition days a source may still send rows of: every day from `from` on, and
/// the days in `open`. Every other day has had all its rows handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowingDays {
    pub from: i32,
    pub open: Vec<RangeInclusive<i32>>,
}

impl GrowingDays {
    pub fn contains(&self, day: i32) -> bool {
        day >= self.from || self.open.iter().any(|days| days.contains(&day))
    }
}

/// Finished record batches, per table.
#[derive(Default)]
pub struct Rows {
    batches: Vec<(Table, RecordBatch)>,
}

impl Rows {
    pub fn is_empty(&self) -> bool {
        self.batches.iter().all(|(_, b)| b.num_rows() == 0)
    }

    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|(_, b)| b.num_rows()).sum()
    }

    fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(|(_, b)| b.get_array_memory_size())
            .sum()
    }

    /// The latest `last_modified_date_time` among the rows of message tables.
    pub fn latest_change(&self) -> Option<DateTime<Utc>> {
        self.batches
            .iter()
            .filter(|(t, _)| matches!(t, Table::ChatMessages | Table::MailMessages))
            .filter_map(|(_, b)| {
                let times = b
                    .column_by_name("last_modified_date_time")?
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()?;
                arrow::compute::max(times)
            })
            .max()
            .and_then(DateTime::from_timestamp_micros)
    }
}

/// Rows new and repeated, per scope.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScopeRows {
    pub new: u64,
    pub duplicate: u64,
}

/// What the writer did in a run.
#[derive(Debug, Default)]
pub struct Written {
    pub totals: RunTotals,
    pub per_scope: BTreeMap<String, ScopeRows>,
}

/// The writer was stopped by an error; [`Driver::finish`] says which.
#[derive(Debug, thiserror::Error)]
#[error("the archive writer stopped")]
pub struct WriterStopped;

/// The running writer task and the way to it.
pub struct Driver {
    units: mpsc::Sender<Unit>,
    writing: tokio::task::JoinHandle<anyhow::Result<(Written, sink::ArchiveWriter)>>,
}

impl Driver {
    /// Starts the writer task over an opened archive writer.
    pub fn start(
        writer: sink::ArchiveWriter,
        options: DriverOptions,
        progress: Arc<Progress>,
    ) -> Driver {
        let (units, receiver) = mpsc::channel(options.channel_units.max(1));
        let writing = tokio::spawn(write(writer, receiver, options, progress));
        Driver { units, writing }
    }

    /// A new lane; `scope` names the checkpoints it carries (and its row counts).
    pub fn lane(&self, scope: Option<String>) -> Lane {
        Lane {
            scope,
            units: self.units.clone(),
            chat: None,
            mail: None,
            contents: None,
            users: None,
            chats: None,
        }
    }

    /// Waits for every lane to be dropped, commits what is left, and says what was
    /// written (or why the writer stopped). The writer comes back for the run's summary.
    pub async fn finish(self) -> anyhow::Result<(Written, sink::ArchiveWriter)> {
        drop(self.units);
        self.writing.await.context("the archive writer task")?
    }
}

/// Builders of one sequence of items, and the way to the writer.
pub struct Lane {
    scope: Option<String>,
    units: mpsc::Sender<Unit>,
    chat: Option<ChatMessageBuilder>,
    mail: Option<MailMessageBuilder>,
    contents: Option<MessageContentBuilder>,
    users: Option<DirectoryUserBuilder>,
    chats: Option<DirectoryChatBuilder>,
}

impl Lane {
    /// Transforms one item into rows (a chat message with a custodian gives two).
    /// Only an item that is not a JSON object is refused, with why.
    pub fn push(
        &mut self,
        kind: ItemKind,
        raw: &str,
        context: &RowContext<'_>,
    ) -> Result<usize, ItemError> {
        match kind {
            ItemKind::ChatMessage => self
                .chat
                .get_or_insert_with(ChatMessageBuilder::new)
                .append(raw, context),
            ItemKind::MailMessage => self
                .mail
                .get_or_insert_with(MailMessageBuilder::new)
                .append(raw, context),
            ItemKind::User => self
                .users
                .get_or_insert_with(DirectoryUserBuilder::new)
                .append(raw, context),
            ItemKind::Chat => self
                .chats
                .get_or_insert_with(DirectoryChatBuilder::new)
                .append(raw, context),
        }
    }

    /// A `message_contents` row: what became of one piece of `message`. Its blob, if
    /// any, is stored already.
    pub fn push_content(
        &mut self,
        message: &MessageIdentity,
        row: &ContentRow,
        fetched_at: DateTime<Utc>,
        run_id: &str,
    ) {
        self.contents
            .get_or_insert_with(MessageContentBuilder::new)
            .append(message, row, fetched_at, run_id);
    }

    /// Rows pushed and not yet taken.
    pub fn rows(&self) -> usize {
        self.chat.as_ref().map_or(0, ChatMessageBuilder::len)
            + self.mail.as_ref().map_or(0, MailMessageBuilder::len)
            + self.contents.as_ref().map_or(0, MessageContentBuilder::len)
            + self.users.as_ref().map_or(0, DirectoryUserBuilder::len)
            + self.chats.as_ref().map_or(0, DirectoryChatBuilder::len)
    }

    /// Memory the rows pushed and not yet taken will take, roughly.
    pub fn estimated_bytes(&self) -> usize {
        self.chat
            .as_ref()
            .map_or(0, ChatMessageBuilder::estimated_bytes)
            + self
                .mail
                .as_ref()
                .map_or(0, MailMessageBuilder::estimated_bytes)
            + self
                .contents
                .as_ref()
                .map_or(0, MessageContentBuilder::estimated_bytes)
            + self
                .users
                .as_ref()
                .map_or(0, DirectoryUserBuilder::estimated_bytes)
            + self
                .chats
                .as_ref()
                .map_or(0, DirectoryChatBuilder::estimated_bytes)
    }

    /// Finishes the rows pushed so far into record batches.
    pub fn take(&mut self) -> Rows {
        let mut batches = Vec::new();
        if let Some(chat) = self.chat.as_mut().filter(|b| !b.is_empty()) {
            let finished = chat.finish();
            batches.push((Table::ChatMessages, finished.messages));
            batches.push((Table::ChatMessageCustodians, finished.custodians));
        }
        if let Some(mail) = self.mail.as_mut().filter(|b| !b.is_empty()) {
            batches.push((Table::MailMessages, mail.finish()));
        }
        if let Some(contents) = self.contents.as_mut().filter(|b| !b.is_empty()) {
            batches.push((Table::MessageContents, contents.finish()));
        }
        if let Some(users) = self.users.as_mut().filter(|b| !b.is_empty()) {
            batches.push((Table::DirectoryUsers, users.finish()));
        }
        if let Some(chats) = self.chats.as_mut().filter(|b| !b.is_empty()) {
            batches.push((Table::DirectoryChats, chats.finish()));
        }
        batches.retain(|(_, b)| b.num_rows() > 0);
        Rows { batches }
    }

    /// Hands rows to the writer, with the checkpoint to save once they are durable.
    pub async fn send(
        &self,
        rows: Rows,
        checkpoint: Option<serde_json::Value>,
    ) -> Result<(), WriterStopped> {
        match self.unit(rows, checkpoint, None) {
            Some(unit) => self.units.send(unit).await.map_err(|_| WriterStopped),
            None => Ok(()),
        }
    }

    /// [`Lane::send`] from a thread outside the async runtime.
    pub fn send_blocking(
        &self,
        rows: Rows,
        checkpoint: Option<serde_json::Value>,
    ) -> Result<(), WriterStopped> {
        match self.unit(rows, checkpoint, None) {
            Some(unit) => self.units.blocking_send(unit).map_err(|_| WriterStopped),
            None => Ok(()),
        }
    }

    /// [`Lane::send_blocking`] for a source without checkpoints that knows which days it
    /// may still send rows of, by this lane or another, once these rows are handed over.
    /// Such a source must send while no other lane can send, so that what it says reaches
    /// the writer in order. The writer may then keep those days buffered when its budget
    /// fills, so that a day is not split over two files.
    pub fn send_growing_blocking(
        &self,
        rows: Rows,
        growing: GrowingDays,
    ) -> Result<(), WriterStopped> {
        match self.unit(rows, None, Some(growing)) {
            Some(unit) => self.units.blocking_send(unit).map_err(|_| WriterStopped),
            None => Ok(()),
        }
    }

    /// What to send; nothing when there are neither rows nor a checkpoint.
    fn unit(
        &self,
        rows: Rows,
        checkpoint: Option<serde_json::Value>,
        growing: Option<GrowingDays>,
    ) -> Option<Unit> {
        if rows.is_empty() && checkpoint.is_none() {
            return None;
        }
        Some(Unit {
            scope: self.scope.clone(),
            rows,
            checkpoint: checkpoint.filter(|_| self.scope.is_some()),
            growing,
        })
    }
}

struct State {
    written: Written,
    /// Checkpoints waiting for the next commit, per scope (a later one replaces an
    /// earlier one: it covers everything before it).
    pending: BTreeMap<String, serde_json::Value>,
    /// The days that may still receive rows, as the latest unit to say so said.
    growing: Option<GrowingDays>,
}

async fn write(
    mut writer: sink::ArchiveWriter,
    mut units: mpsc::Receiver<Unit>,
    options: DriverOptions,
    progress: Arc<Progress>,
) -> anyhow::Result<(Written, sink::ArchiveWriter)> {
    let _trimmer = crate::allocator::Trimmer::start(trim_above_bytes(options.memory_budget_bytes));
    let mut state = State {
        written: Written::default(),
        pending: BTreeMap::new(),
        growing: None,
    };
    let mut queue: VecDeque<Unit> = VecDeque::new();
    let mut queued_bytes = 0usize;
    let mut open = true;
    let mut ticker = tokio::time::interval(options.commit_interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    let mut interval_passed = false;
    loop {
        // Append what is queued, until the budget says to commit.
        while !writer.needs_commit() {
            let Some(unit) = queue.pop_front() else { break };
            queued_bytes -= unit.rows.bytes();
            append(&mut writer, &mut state, unit)?;
        }
        let has_work = !state.pending.is_empty() || writer.buffered_rows() > 0;
        if writer.needs_commit() || (interval_passed && has_work) || (!open && queue.is_empty()) {
            if has_work {
                // A full buffer of a source that sends by day keeps its newest days for
                // the next commit (no checkpoint can wait on them): one file per day. The
                // last commit keeps nothing.
                let more_to_come = open || !queue.is_empty();
                let keep = state
                    .growing
                    .as_ref()
                    .filter(|_| more_to_come && writer.needs_commit() && state.pending.is_empty());
                let checkpoints = std::mem::take(&mut state.pending)
                    .into_iter()
                    .map(|(scope, value)| sink::Checkpoint { scope, value })
                    .collect();
                let commit = async {
                    match keep {
                        Some(growing) => writer.commit_except(|day| growing.contains(day)).await,
                        None => writer.commit(checkpoints).await,
                    }
                };
                tokio::pin!(commit);
                // Keep receiving while the commit runs.
                let report = loop {
                    tokio::select! {
                        report = &mut commit => break report,
                        unit = units.recv(), if open && queued_bytes < options.queue_bytes => match unit {
                            Some(unit) => {
                                queued_bytes += unit.rows.bytes();
                                queue.push_back(unit);
                            }
                            None => open = false,
                        },
                    }
                };
                let report = report.context("committing files and checkpoints")?;
                tracing::info!(
                    commit = report.commit_id.as_deref().unwrap_or("-"),
                    files = report.files.len(),
                    rows = report.rows,
                    rows_kept = report.rows_kept,
                    bytes = report.bytes,
                    checkpoints = report.checkpoints,
                    "committed"
                );
                state.written.totals.add_files(&report.files);
                progress.commits.fetch_add(1, Ordering::Relaxed);
            }
            interval_passed = false;
            if !open && queue.is_empty() && state.pending.is_empty() && writer.buffered_rows() == 0
            {
                break;
            }
            continue;
        }
        if !open {
            continue; // drain the queue
        }
        tokio::select! {
            unit = units.recv() => match unit {
                Some(unit) => {
                    queued_bytes += unit.rows.bytes();
                    queue.push_back(unit);
                }
                None => open = false,
            },
            _ = ticker.tick() => interval_passed = true,
        }
    }
    Ok((state.written, writer))
}

/// Resident size above which freed memory goes back to the system: three quarters of the
/// budget, so a run that fits its budget (an ingest at the default) keeps its pages, while
/// a sync near its budget trims before it reaches it (at the whole budget, a 200-user sync
/// at 256 MiB peaked at 257 MiB instead of 213).
fn trim_above_bytes(memory_budget_bytes: usize) -> u64 {
    (memory_budget_bytes / 4 * 3) as u64
}

fn append(writer: &mut sink::ArchiveWriter, state: &mut State, unit: Unit) -> anyhow::Result<()> {
    for (table, batch) in &unit.rows.batches {
        let stats = writer
            .append(table.folder(), batch)
            .with_context(|| format!("buffering rows for {}", table.folder()))?;
        let totals = state
            .written
            .totals
            .tables
            .entry(table.folder().to_string())
            .or_default();
        totals.rows_seen += stats.rows_in as u64;
        totals.rows_new += stats.rows_new as u64;
        totals.rows_duplicate += stats.rows_duplicate as u64;
        if let Some(scope) = &unit.scope {
            let rows = state.written.per_scope.entry(scope.clone()).or_default();
            rows.new += stats.rows_new as u64;
            rows.duplicate += stats.rows_duplicate as u64;
        }
    }
    if let (Some(scope), Some(checkpoint)) = (unit.scope, unit.checkpoint) {
        state.pending.insert(scope, checkpoint);
    }
    if unit.growing.is_some() {
        state.growing = unit.growing;
    }
    Ok(())
}
