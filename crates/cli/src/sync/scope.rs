//! One scope's work in a run: resume from its checkpoint, read its round page by page,
//! turn each page into rows, and hand rows and the next checkpoint to the writer.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use transform::{ChatMessageBuilder, DirectoryChatBuilder, MailMessageBuilder, RowContext};

use super::checkpoint::{Phase, RESYNC_OVERLAP, ScopeCheckpoint};
use super::discover::PlannedScope;
use super::writer_task::Unit;
use crate::tables;

/// Log target of one event per page read, for operators who want that detail (and
/// for the crash tests, which kill the process at chosen pages).
pub const PAGE_TARGET: &str = "sync::page";

/// Resyncs one scope may need in one run before it is reported as failed.
const MAX_RESYNCS_PER_RUN: u32 = 2;

/// What every scope of a run shares.
pub struct ScopeContext {
    pub client: fetch::GraphClient,
    pub checkpoints: sink::CheckpointStore,
    pub units: mpsc::Sender<Unit>,
    pub run_id: String,
    pub since: Option<DateTime<Utc>>,
    pub page_size: u32,
    pub counters: Arc<Counters>,
}

/// Live counts for the progress display.
#[derive(Default)]
pub struct Counters {
    pub pages: AtomicU64,
    pub items: AtomicU64,
    pub scopes_done: AtomicU64,
    pub scopes_failed: AtomicU64,
    pub resyncs: AtomicU64,
}

/// How a scope's part of the run went, for the run summary (no links or tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScopeReport {
    pub scope: String,
    pub key: String,
    pub pages: u64,
    pub items: u64,
    pub resyncs: u32,
    pub rows_new: u64,
    pub rows_duplicate: u64,
    pub error: Option<String>,
    /// Where the scope stands now, e.g. "up to date (delta link saved)".
    pub state: String,
}

impl ScopeReport {
    /// A scope whose task ended without a report (it panicked or was cancelled).
    pub fn failed(planned: &PlannedScope, error: String) -> Self {
        ScopeReport {
            scope: planned.scope.to_string(),
            key: planned.key.clone(),
            pages: 0,
            items: 0,
            resyncs: 0,
            rows_new: 0,
            rows_duplicate: 0,
            error: Some(format!("the scope's task stopped: {error}")),
            state: String::new(),
        }
    }
}

#[derive(Deserialize)]
struct ItemId<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// Rows of pages read but not yet handed to the writer, and the checkpoint that follows
/// the last of them. Pages are gathered so the writer gets batches of a useful size
/// rather than one small batch per page.
struct Pending {
    chat: ChatMessageBuilder,
    mail: MailMessageBuilder,
    rows: usize,
    since: Option<Instant>,
    checkpoint: Option<ScopeCheckpoint>,
}

/// Rows gathered before they go to the writer.
const FLUSH_ROWS: usize = 2048;
/// Longest a read page waits before its rows go to the writer.
const FLUSH_AFTER: Duration = Duration::from_secs(5);

struct Walk<'a> {
    ctx: &'a ScopeContext,
    planned: &'a PlannedScope,
    report: ScopeReport,
    pending: Pending,
    /// The latest change handed to the writer so far (from the saved checkpoint on).
    watermark: Option<DateTime<Utc>>,
}

pub async fn run(ctx: Arc<ScopeContext>, planned: PlannedScope) -> ScopeReport {
    let mut walk = Walk {
        ctx: &ctx,
        planned: &planned,
        report: ScopeReport {
            scope: planned.scope.to_string(),
            key: planned.key.clone(),
            pages: 0,
            items: 0,
            resyncs: 0,
            rows_new: 0,
            rows_duplicate: 0,
            error: None,
            state: String::new(),
        },
        pending: Pending {
            chat: ChatMessageBuilder::new(),
            mail: MailMessageBuilder::new(),
            rows: 0,
            since: None,
            checkpoint: None,
        },
        watermark: None,
    };
    let result = walk.go().await;
    // Pages read before a failure keep their progress: their rows and checkpoint go out.
    let result = match (result, walk.flush().await) {
        (Ok(state), Ok(())) => Ok(state),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    };
    match result {
        Ok(state) => {
            walk.report.state = state;
            ctx.counters.scopes_done.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            tracing::error!(scope = %planned.scope, key = planned.key, "scope failed: {error}");
            walk.report.error = Some(error);
            ctx.counters.scopes_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    walk.report
}

impl Walk<'_> {
    /// Runs the scope to the end of its delta round; returns a description of where it
    /// stands, or the error that stopped it.
    async fn go(&mut self) -> Result<String, String> {
        let ctx = self.ctx;
        let key = &self.planned.key;
        let saved = ctx
            .checkpoints
            .load(key)
            .await
            .map_err(|e| format!("loading the checkpoint: {e}"))?;
        let first_run = saved.is_none();
        let mut checkpoint = match saved {
            Some(value) => ScopeCheckpoint::from_value(value).map_err(|e| {
                format!("the saved checkpoint of {key} cannot be read ({e}); remove it to start this scope over")
            })?,
            None => self.initial_checkpoint(),
        };
        self.watermark = checkpoint.watermark;
        let mut resyncs = 0;
        let mut items_seen = 0u64;
        loop {
            let start = match &checkpoint.phase {
                Phase::Window {
                    next_link: Some(link),
                    ..
                }
                | Phase::Delta { link } => fetch::RoundStart::Resume { link: link.clone() },
                Phase::Window {
                    from,
                    to,
                    next_link: None,
                } => fetch::RoundStart::Window {
                    from: *from,
                    to: *to,
                    page_size: ctx.page_size,
                },
                Phase::DeltaStart { since } => fetch::RoundStart::Initial {
                    since: *since,
                    page_size: ctx.page_size,
                },
            };
            tracing::debug!(scope = %self.planned.scope, state = checkpoint.describe(), "round starts");
            let mut pages = pin!(ctx.client.round(&self.planned.scope, start));
            let mut resync = false;
            while let Some(page) = pages.next().await {
                let page = match page {
                    Ok(page) => page,
                    Err(e) if e.is_resync_required() && resyncs < MAX_RESYNCS_PER_RUN => {
                        self.flush().await?;
                        checkpoint.watermark = self.watermark;
                        resyncs += 1;
                        checkpoint.resyncs += 1;
                        self.report.resyncs += 1;
                        ctx.counters.resyncs.fetch_add(1, Ordering::Relaxed);
                        checkpoint.phase = checkpoint.resync(Utc::now(), self.windowed());
                        tracing::warn!(
                            scope = %self.planned.scope,
                            "Graph no longer knows this scope's delta state; resyncing: {}",
                            checkpoint.describe()
                        );
                        resync = true;
                        break;
                    }
                    Err(e) => return Err(e.to_string()),
                };
                items_seen += page.len() as u64;
                checkpoint = self.page(&page, checkpoint).await?;
            }
            if resync {
                continue;
            }
            // A finished backfill window goes on to a delta round; anything else is done.
            if !matches!(checkpoint.phase, Phase::DeltaStart { .. }) {
                break;
            }
        }
        self.flush().await?;
        if matches!(self.planned.scope, fetch::Scope::UserChats { .. })
            && (first_run || items_seen > 0)
        {
            self.directory_chats().await?;
        }
        Ok(checkpoint.describe())
    }

    fn windowed(&self) -> bool {
        matches!(self.planned.scope, fetch::Scope::UserChats { .. })
    }

    fn initial_checkpoint(&self) -> ScopeCheckpoint {
        let phase = match (self.ctx.since, self.windowed()) {
            (Some(since), true) => Phase::Window {
                from: Some(since),
                to: Utc::now(),
                next_link: None,
            },
            (since, _) => Phase::DeltaStart { since },
        };
        ScopeCheckpoint {
            phase,
            watermark: None,
            resyncs: 0,
            run_id: self.ctx.run_id.clone(),
            saved_at: Utc::now(),
        }
    }

    /// Turns a page into rows (with the replies of channel messages on it), and hands
    /// them with the checkpoint that follows the page to the writer once enough are
    /// gathered.
    async fn page(
        &mut self,
        page: &fetch::Page,
        previous: ScopeCheckpoint,
    ) -> Result<ScopeCheckpoint, String> {
        let ctx = self.ctx;
        tracing::debug!(target: PAGE_TARGET, scope = %self.planned.key, page = page.number, items = page.len(), "page fetched");
        ctx.counters.pages.fetch_add(1, Ordering::Relaxed);
        ctx.counters
            .items
            .fetch_add(page.len() as u64, Ordering::Relaxed);
        self.report.pages += 1;
        self.report.items += page.len() as u64;
        let where_ = || format!("page {} ({})", page.number, page.url);
        let fetched_at = Utc::now();
        match &self.planned.scope {
            fetch::Scope::UserChats { user_id } => {
                let source = match previous.phase {
                    Phase::Window { .. } => "chats_window",
                    _ => "chats_delta",
                };
                let row = RowContext {
                    source,
                    fetched_at,
                    run_id: &ctx.run_id,
                    custodian_user_id: Some(user_id),
                };
                self.pending.rows += append_chat(&mut self.pending.chat, page.iter(), &row)
                    .map_err(|e| format!("{}: {e}", where_()))?;
            }
            fetch::Scope::Channel {
                team_id,
                channel_id,
            } => {
                let row = RowContext {
                    source: "channel_delta",
                    fetched_at,
                    run_id: &ctx.run_id,
                    custodian_user_id: None,
                };
                self.pending.rows += append_chat(&mut self.pending.chat, page.iter(), &row)
                    .map_err(|e| format!("{}: {e}", where_()))?;
                for (i, item) in page.iter().enumerate() {
                    let root: ItemId = serde_json::from_str(item)
                        .map_err(|e| format!("{} item {i}: {e}", where_()))?;
                    let Some(root_id) = root.id else {
                        return Err(format!(
                            "{} item {i}: a channel message without `id`",
                            where_()
                        ));
                    };
                    self.replies(team_id, channel_id, &root_id).await?;
                }
            }
            fetch::Scope::MailFolder { user_id, .. } => {
                let row = RowContext {
                    source: "mail_delta",
                    fetched_at,
                    run_id: &ctx.run_id,
                    custodian_user_id: Some(user_id),
                };
                for (i, item) in page.iter().enumerate() {
                    self.pending.rows += self
                        .pending
                        .mail
                        .append(item, &row)
                        .map_err(|e| format!("{} item {i}: {e}", where_()))?;
                }
            }
        }
        let phase = match (&previous.phase, &page.next_link, &page.delta_link) {
            (Phase::Window { from, to, .. }, Some(next), _) => Phase::Window {
                from: *from,
                to: *to,
                next_link: Some(next.clone()),
            },
            (Phase::Window { to, .. }, None, _) => Phase::DeltaStart {
                since: Some(*to - RESYNC_OVERLAP),
            },
            (_, Some(next), _) => Phase::Delta { link: next.clone() },
            (_, None, Some(delta)) => Phase::Delta {
                link: delta.clone(),
            },
            (_, None, None) => {
                return Err(format!(
                    "{}: a delta page with neither @odata.nextLink nor @odata.deltaLink",
                    where_()
                ));
            }
        };
        let checkpoint = ScopeCheckpoint {
            phase,
            watermark: self.watermark,
            resyncs: previous.resyncs,
            run_id: ctx.run_id.clone(),
            saved_at: fetched_at,
        };
        self.pending.checkpoint = Some(checkpoint.clone());
        let since = *self.pending.since.get_or_insert_with(Instant::now);
        if self.pending.rows >= FLUSH_ROWS || since.elapsed() >= FLUSH_AFTER {
            self.flush().await?;
        }
        Ok(checkpoint)
    }

    /// Hands the gathered rows, and the checkpoint of the last page they came from, to
    /// the writer. The checkpoint's watermark moves to the latest change among them.
    async fn flush(&mut self) -> Result<(), String> {
        let Some(mut checkpoint) = self.pending.checkpoint.take() else {
            return Ok(());
        };
        let mut batches = Vec::new();
        if !self.pending.chat.is_empty() {
            let finished = self.pending.chat.finish();
            batches.push((tables::CHAT_MESSAGES, finished.messages));
            if finished.custodians.num_rows() > 0 {
                batches.push((tables::CHAT_MESSAGE_CUSTODIANS, finished.custodians));
            }
        }
        if !self.pending.mail.is_empty() {
            batches.push((tables::MAIL_MESSAGES, self.pending.mail.finish()));
        }
        self.watermark = batches
            .iter()
            .filter_map(|(_, b)| latest_change(b))
            .chain(self.watermark)
            .max();
        checkpoint.watermark = self.watermark;
        self.pending.rows = 0;
        self.pending.since = None;
        let value = checkpoint.to_value();
        self.ctx
            .units
            .send(Unit {
                scope: Some(self.planned.key.clone()),
                batches,
                checkpoint: Some(value),
            })
            .await
            .map_err(|_| "the writer stopped".to_string())
    }

    async fn replies(
        &mut self,
        team_id: &str,
        channel_id: &str,
        root_id: &str,
    ) -> Result<(), String> {
        let ctx = self.ctx;
        let mut pages = pin!(ctx.client.replies(team_id, channel_id, root_id));
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| e.to_string())?;
            ctx.counters.pages.fetch_add(1, Ordering::Relaxed);
            ctx.counters
                .items
                .fetch_add(page.len() as u64, Ordering::Relaxed);
            let row = RowContext {
                source: "channel_replies",
                fetched_at: Utc::now(),
                run_id: &ctx.run_id,
                custodian_user_id: None,
            };
            self.pending.rows += append_chat(&mut self.pending.chat, page.iter(), &row)
                .map_err(|e| format!("replies page {} ({}): {e}", page.number, page.url))?;
        }
        Ok(())
    }

    /// The user's chats with their members, for the directory snapshot.
    async fn directory_chats(&self) -> Result<(), String> {
        let fetch::Scope::UserChats { user_id } = &self.planned.scope else {
            return Ok(());
        };
        let ctx = self.ctx;
        let mut builder = DirectoryChatBuilder::new();
        let mut pages = pin!(ctx.client.user_chats(user_id));
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("directory snapshot: {e}"))?;
            let row = RowContext {
                source: "directory_chats",
                fetched_at: Utc::now(),
                run_id: &ctx.run_id,
                custodian_user_id: Some(user_id),
            };
            for (i, item) in page.iter().enumerate() {
                builder.append(item, &row).map_err(|e| {
                    format!(
                        "directory snapshot: chats page {} item {i}: {e}",
                        page.number
                    )
                })?;
            }
        }
        ctx.units
            .send(Unit {
                scope: None,
                batches: vec![(tables::DIRECTORY_CHATS, builder.finish())],
                checkpoint: None,
            })
            .await
            .map_err(|_| "the writer stopped".to_string())
    }
}

/// Appends chat message items (and their custodian rows) to a builder; returns the rows.
fn append_chat<'a>(
    builder: &mut ChatMessageBuilder,
    items: impl Iterator<Item = &'a str>,
    row: &RowContext<'_>,
) -> Result<usize, String> {
    let mut rows = 0;
    for (i, item) in items.enumerate() {
        rows += builder
            .append(item, row)
            .map_err(|e| format!("item {i}: {e}"))?;
    }
    Ok(rows)
}

/// The latest `last_modified_date_time` in a batch of messages.
fn latest_change(batch: &RecordBatch) -> Option<DateTime<Utc>> {
    let column = batch.column_by_name("last_modified_date_time")?;
    let times = column
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()?;
    let max = arrow::compute::max(times)?;
    DateTime::from_timestamp_micros(max)
}

/// Used by the progress line.
pub fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_change_of_a_batch_is_its_watermark() {
        let mut builder = ChatMessageBuilder::new();
        let row = RowContext {
            source: "test",
            fetched_at: Utc::now(),
            run_id: "r",
            custodian_user_id: None,
        };
        for (id, t) in [
            ("1", "2024-01-02T03:04:05.678Z"),
            ("2", "2024-01-01T00:00:00Z"),
        ] {
            let item = format!(r#"{{"id":"{id}","chatId":"c","lastModifiedDateTime":"{t}"}}"#);
            builder.append(&item, &row).unwrap();
        }
        let batch = builder.finish().messages;
        assert_eq!(
            latest_change(&batch),
            Some("2024-01-02T03:04:05.678Z".parse().unwrap())
        );
    }
}
