//! One scope's work in a run: resume from its checkpoint, read rounds page by page, push
//! each page's items into the scope's lane, and hand rows with the checkpoint that
//! follows them to the writer.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use archive::records::{ScopeOutcome, ScopeReport};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use transform::RowContext;

use super::checkpoint::{Clock, Event, Phase, Resync, Rules, ScopeCheckpoint, Step};
use super::discover::PlannedScope;
use crate::driver::{ItemKind, Lane};
use crate::progress::Progress;

/// Log target of one event per page read, for operators who want that detail (and for
/// the crash tests, which kill the process at chosen pages).
pub const PAGE_TARGET: &str = "sync::page";

/// Resyncs one scope may need in one run before it is reported as failed.
const MAX_RESYNCS_PER_RUN: u32 = 2;
/// Rounds one scope may run in one run (a window, a delta round, and one more to catch
/// what changed while a round resumed from an earlier run was read).
const MAX_ROUNDS_PER_RUN: u32 = 6;
/// Rows gathered before they go to the writer.
const FLUSH_ROWS: usize = 2048;
/// Longest a read page waits before its rows go to the writer.
const FLUSH_AFTER: Duration = Duration::from_secs(5);

/// What every scope of a run shares.
pub struct ScopeContext {
    pub client: fetch::GraphClient,
    pub checkpoints: sink::CheckpointStore,
    pub driver: Arc<crate::driver::Driver>,
    pub run_id: String,
    pub run_started: DateTime<Utc>,
    pub page_size: u32,
    pub progress: Arc<Progress>,
    /// A lane hands its rows over once they take this much memory (its share of the
    /// memory budget), if no other rule sent them first.
    pub lane_bytes: usize,
    /// Captures the content messages point to; `None` with `--content none`.
    pub content: Option<Arc<crate::content::ContentCapture>>,
}

#[derive(Deserialize)]
struct ItemId<'a> {
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// How a kind of scope reads: its transitions, whose mailbox it reads, what its items are.
struct Kind {
    rules: Rules,
    /// The mailbox whose listing returns the items (chat and mail custodians).
    custodian: Option<String>,
    item: ItemKind,
}

fn kind(scope: &fetch::Scope) -> Kind {
    let (rules, custodian, item) = match scope {
        fetch::Scope::UserChats { user_id } => (
            Rules {
                has_delta: true,
                resync: Resync::Window,
            },
            Some(user_id.clone()),
            ItemKind::ChatMessage,
        ),
        fetch::Scope::Channel { .. } => (
            Rules {
                has_delta: true,
                resync: Resync::DeltaSince,
            },
            None,
            ItemKind::ChatMessage,
        ),
        fetch::Scope::Team { .. } => (
            Rules {
                has_delta: false,
                resync: Resync::Window,
            },
            None,
            ItemKind::ChatMessage,
        ),
        fetch::Scope::MailFolder { user_id, .. } => (
            Rules {
                has_delta: true,
                resync: Resync::FullDelta,
            },
            Some(user_id.clone()),
            ItemKind::MailMessage,
        ),
    };
    Kind {
        rules,
        custodian,
        item,
    }
}

/// Why a scope stopped.
enum Stop {
    /// Graph could not serve it (or said it is not there to read).
    Fetch(fetch::FetchError),
    /// Anything else: a page that contradicts its round, a checkpoint that cannot be read,
    /// the writer gone.
    Other(String),
}

impl From<String> for Stop {
    fn from(error: String) -> Self {
        Stop::Other(error)
    }
}

struct Walk<'a> {
    ctx: &'a ScopeContext,
    planned: &'a PlannedScope,
    kind: Kind,
    report: ScopeReport,
    lane: Lane,
    /// The checkpoint after the last page pushed, waiting to go out with its rows.
    pending: Option<ScopeCheckpoint>,
    pending_since: Option<Instant>,
    /// The latest change handed to the writer so far (from the saved checkpoint on).
    watermark: Option<DateTime<Utc>>,
}

/// Runs one scope to the end of its rounds; the report says how it went.
pub async fn run(ctx: Arc<ScopeContext>, planned: PlannedScope) -> ScopeReport {
    let mut walk = Walk {
        ctx: &ctx,
        planned: &planned,
        kind: kind(&planned.scope),
        report: ScopeReport::new(
            planned.scope.to_string(),
            planned.key.clone(),
            ScopeOutcome::Archived,
        ),
        lane: ctx.driver.lane(Some(planned.key.clone())),
        pending: None,
        pending_since: None,
        watermark: None,
    };
    let result = walk.go().await;
    // Pages read before a failure keep their progress: their rows and checkpoint go out.
    let result = match (result, walk.flush().await) {
        (Ok(state), Ok(())) => Ok(state),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(Stop::Other(e)),
    };
    match result {
        Ok(state) => walk.report.state = state,
        Err(Stop::Fetch(error)) if error.unavailable().is_some() => {
            let reason = error.unavailable().expect("checked");
            tracing::info!(scope = %planned.scope, key = planned.key, reason = reason.as_str(), "skipped: {}", reason.describe());
            walk.report.outcome = ScopeOutcome::Skipped {
                reason: super::discover::skip_reason(reason),
            };
        }
        Err(stop) => {
            let error = match stop {
                Stop::Fetch(e) => e.to_string(),
                Stop::Other(e) => e,
            };
            tracing::error!(scope = %planned.scope, key = planned.key, "scope failed: {error}");
            walk.report.outcome = ScopeOutcome::Failed { error };
        }
    }
    ctx.progress.scope_finished(&walk.report.outcome);
    walk.report
}

impl Walk<'_> {
    /// Runs the scope's rounds until it is up to date; returns a description of where it
    /// stands, or the error that stopped it.
    async fn go(&mut self) -> Result<String, Stop> {
        let ctx = self.ctx;
        let key = &self.planned.key;
        let saved = ctx
            .checkpoints
            .load(key)
            .await
            .map_err(|e| format!("loading the checkpoint: {e}"))?;
        let first_run = saved.is_none();
        let now = Utc::now();
        let mut checkpoint = match saved {
            Some(value) => ScopeCheckpoint::from_value(value).map_err(|e| {
                format!("the saved checkpoint of {key} cannot be read ({e}); remove it to start this scope over")
            })?,
            None => ScopeCheckpoint::first(self.planned.first.clone(), now),
        };
        if checkpoint.phase == Phase::Done {
            return Ok(checkpoint.describe());
        }
        checkpoint.run_id = ctx.run_id.clone();
        self.watermark = checkpoint.watermark;
        let mut items_seen = 0u64;
        let (mut resyncs, mut rounds) = (0, 0);
        loop {
            rounds += 1;
            if rounds > MAX_ROUNDS_PER_RUN {
                return Err(Stop::Other(format!(
                    "still not up to date after {MAX_ROUNDS_PER_RUN} rounds in this run; the next run goes on"
                )));
            }
            let round_started = checkpoint.round_started(Utc::now());
            let start = self.round_start(&checkpoint.phase);
            let source = self.source(&checkpoint.phase);
            tracing::debug!(scope = %self.planned.scope, state = checkpoint.describe(), "round starts");
            let mut pages = pin!(ctx.client.round(&self.planned.scope, start));
            let mut step = Step::Continue;
            while let Some(page) = pages.next().await {
                let clock = Clock {
                    now: Utc::now(),
                    run_started: ctx.run_started,
                    round_started,
                };
                let page = match page {
                    Err(e) if e.is_resync_required() && resyncs < MAX_RESYNCS_PER_RUN => {
                        resyncs += 1;
                        self.report.resyncs += 1;
                        Err(e)
                    }
                    Err(e) => return Err(Stop::Fetch(e)),
                    Ok(page) => Ok(page),
                };
                let event = match &page {
                    Ok(page) => {
                        items_seen += page.len() as u64;
                        self.page(page, source).await?;
                        Event::Page(&page.link)
                    }
                    Err(_) => Event::ResyncRequired,
                };
                let (next, then) =
                    checkpoint
                        .next(event, self.kind.rules, &clock)
                        .map_err(|e| match &page {
                            Ok(page) => format!("page {} ({}): {e}", page.number, page.url),
                            Err(_) => e.to_string(),
                        })?;
                checkpoint = next;
                if event == Event::ResyncRequired {
                    // Rows read so far go out with the checkpoint before the resync.
                    self.flush().await?;
                    checkpoint.watermark = self.watermark;
                    tracing::warn!(
                        scope = %self.planned.scope,
                        "Graph no longer knows this scope's delta state; resyncing: {}",
                        checkpoint.describe()
                    );
                }
                self.set_pending(checkpoint.clone()).await?;
                step = then;
                if step != Step::Continue {
                    break;
                }
            }
            match step {
                Step::Done => break,
                Step::NewRound => continue,
                // The stream ended without the page that ends the round.
                Step::Continue => {
                    return Err(Stop::Other("the round ended before its last page".into()));
                }
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

    fn round_start(&self, phase: &Phase) -> fetch::RoundStart {
        let page_size = self.ctx.page_size;
        match phase {
            Phase::Window {
                next_link: Some(link),
                ..
            }
            | Phase::DeltaNext { link, .. }
            | Phase::DeltaDone { link, .. } => fetch::RoundStart::Resume { link: link.clone() },
            Phase::Window {
                from,
                to,
                next_link: None,
            } => fetch::RoundStart::Window {
                from: *from,
                to: *to,
                page_size,
            },
            Phase::DeltaStart { since } => fetch::RoundStart::Initial {
                since: *since,
                page_size,
            },
            // `go` never starts a round from here.
            Phase::Done => fetch::RoundStart::Initial {
                since: None,
                page_size,
            },
        }
    }

    /// The `source` column of rows read in a round that starts from `phase`.
    fn source(&self, phase: &Phase) -> &'static str {
        let window = matches!(phase, Phase::Window { .. });
        match (&self.planned.scope, window) {
            (fetch::Scope::UserChats { .. }, true) => "chats_window",
            (fetch::Scope::UserChats { .. }, false) => "chats_delta",
            (fetch::Scope::Channel { .. }, _) => "channel_delta",
            (fetch::Scope::Team { .. }, _) => "channel_history",
            (fetch::Scope::MailFolder { .. }, _) => "mail_delta",
        }
    }

    /// Pushes a page's items (with the replies of channel messages on it) into the lane.
    async fn page(&mut self, page: &fetch::Page, source: &str) -> Result<(), String> {
        tracing::debug!(target: PAGE_TARGET, scope = %self.planned.key, page = page.number, items = page.len(), "page fetched");
        self.ctx.progress.page(page.len());
        self.report.pages += 1;
        self.report.items += page.len() as u64;
        let where_ = |i: usize| format!("page {} ({}) item {i}", page.number, page.url);
        let ctx = self.ctx;
        let custodian = self.kind.custodian.clone();
        let row = row_context(ctx, source, custodian.as_deref());
        let kind = self.kind.item;
        for (i, item) in page.iter().enumerate() {
            self.lane
                .push(kind, item, &row)
                .map_err(|e| format!("{}: {e}", where_(i)))?;
            self.content(kind, item)
                .await
                .map_err(|e| format!("{}: {e}", where_(i)))?;
        }
        if let fetch::Scope::Channel {
            team_id,
            channel_id,
        } = &self.planned.scope
        {
            for (i, item) in page.iter().enumerate() {
                let root: ItemId =
                    serde_json::from_str(item).map_err(|e| format!("{}: {e}", where_(i)))?;
                let Some(root_id) = root.id else {
                    return Err(format!("{}: a channel message without `id`", where_(i)));
                };
                self.replies(team_id, channel_id, &root_id).await?;
            }
        }
        Ok(())
    }

    /// Captures what one message version points to, into the lane beside its row.
    async fn content(&mut self, kind: ItemKind, item: &str) -> Result<(), String> {
        let Some(capture) = &self.ctx.content else {
            return Ok(());
        };
        match (kind, &self.kind.custodian) {
            (ItemKind::ChatMessage, _) => capture.chat_message(&mut self.lane, item).await,
            (ItemKind::MailMessage, Some(custodian)) => {
                capture.mail_message(&mut self.lane, item, custodian).await
            }
            _ => Ok(()),
        }
    }

    /// Notes the checkpoint that follows the pages pushed so far; sends them on when
    /// enough rows are gathered or they have waited long enough.
    async fn set_pending(&mut self, checkpoint: ScopeCheckpoint) -> Result<(), String> {
        self.pending = Some(checkpoint);
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if self.lane.rows() >= FLUSH_ROWS
            || self.lane.estimated_bytes() >= self.ctx.lane_bytes
            || since.elapsed() >= FLUSH_AFTER
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands the gathered rows, and the checkpoint of the last page they came from, to
    /// the writer. The checkpoint's watermark moves to the latest change among them.
    async fn flush(&mut self) -> Result<(), String> {
        let Some(mut checkpoint) = self.pending.take() else {
            return Ok(());
        };
        let rows = self.lane.take();
        self.watermark = rows.latest_change().into_iter().chain(self.watermark).max();
        checkpoint.watermark = self.watermark;
        self.pending_since = None;
        self.lane
            .send(rows, Some(checkpoint.to_value()))
            .await
            .map_err(|e| e.to_string())
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
            let page = match page {
                Ok(page) => page,
                // The root was deleted after its page was read: its deletion comes as a
                // new version of it; it has no replies left to read.
                Err(e) if e.unavailable() == Some(fetch::Unavailable::MessageNotFound) => {
                    tracing::info!(scope = %self.planned.scope, root_id, "replies not read: {e}");
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            };
            ctx.progress.page(page.len());
            let row = row_context(ctx, "channel_replies", None);
            for (i, item) in page.iter().enumerate() {
                let where_ = || format!("replies page {} ({}) item {i}", page.number, page.url);
                self.lane
                    .push(ItemKind::ChatMessage, item, &row)
                    .map_err(|e| format!("{}: {e}", where_()))?;
                self.content(ItemKind::ChatMessage, item)
                    .await
                    .map_err(|e| format!("{}: {e}", where_()))?;
            }
        }
        Ok(())
    }

    /// The user's chats with their members, for the directory snapshot.
    async fn directory_chats(&self) -> Result<(), String> {
        let fetch::Scope::UserChats { user_id } = &self.planned.scope else {
            return Ok(());
        };
        let ctx = self.ctx;
        let mut lane = ctx.driver.lane(None);
        let mut pages = pin!(ctx.client.user_chats(user_id));
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("directory snapshot: {e}"))?;
            let row = row_context(ctx, "directory_chats", Some(user_id));
            for (i, item) in page.iter().enumerate() {
                lane.push(ItemKind::Chat, item, &row).map_err(|e| {
                    format!(
                        "directory snapshot: chats page {} item {i}: {e}",
                        page.number
                    )
                })?;
            }
        }
        let rows = lane.take();
        lane.send(rows, None).await.map_err(|e| e.to_string())
    }
}

/// Where and when rows were fetched.
fn row_context<'c>(
    ctx: &'c ScopeContext,
    source: &'c str,
    custodian: Option<&'c str>,
) -> RowContext<'c> {
    RowContext {
        source,
        fetched_at: Utc::now(),
        run_id: &ctx.run_id,
        custodian_user_id: custodian,
    }
}
