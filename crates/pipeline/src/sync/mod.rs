//! `sync`, the nightly job, as a source of the pipeline: discovery plans scopes; scopes
//! run concurrently, each resuming its rounds from its checkpoint and pushing pages into
//! its own lane; the driver makes their rows durable and only then saves their
//! checkpoints.

pub mod checkpoint;
mod discover;
pub mod scope;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use archive::records::{Command, GraphRequests, Outcome, RunSummary, ScopeOutcome, ScopeReport};
use archive::signing::SigningKey;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use transform::RowContext;

pub use discover::{PlannedScope, in_shard, shard_of};

use crate::driver::{Driver, ItemKind};
use crate::progress::Progress;
use crate::run;

/// What `sync` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// Every user's chats (getAllMessages/delta), with custodian records.
    Chats,
    /// Every team channel (messages/delta) and the replies of changed messages.
    Channels,
    /// Every user's mail folders (messages/delta), removals included.
    Mail,
}

/// Everything a sync run is asked to do.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The archive: a folder or an object store URL.
    pub out: String,
    /// The state root (default: `<out>/_state`); a shard keeps its own folder below it.
    pub state: Option<String>,
    /// Signs every record the run writes.
    pub signing_key: Option<Arc<SigningKey>>,
    /// Empty: chats and channels.
    pub sources: Vec<SourceKind>,
    /// Only these users (id or userPrincipalName); empty: every user.
    pub users: Vec<String>,
    /// Only these teams; empty: every team.
    pub teams: Vec<String>,
    pub shard: Option<archive::layout::Shard>,
    /// Scopes fetched at the same time.
    pub concurrency: usize,
    /// First run only: changes after this time.
    pub since: Option<DateTime<Utc>>,
    pub memory_budget_mib: usize,
    pub commit_interval: Duration,
    /// Items per page asked of Graph.
    pub page_size: u32,
    /// What is fetched of the content messages point to.
    pub content: crate::content::ContentOptions,
}

impl SyncOptions {
    /// The sources a run covers: as given, else chats and channels.
    pub fn sources(&self) -> Vec<SourceKind> {
        let mut sources = if self.sources.is_empty() {
            vec![SourceKind::Chats, SourceKind::Channels]
        } else {
            self.sources.clone()
        };
        sources.sort();
        sources.dedup();
        sources
    }
}

/// What a sync may use beyond `--memory-budget-mib`, in MiB: the program, its runtime and
/// TLS, and what the allocator keeps. `sync --help`, the README and the deployment files
/// state it; `scripts/bench-sync.sh` measures against it.
pub const MEMORY_FLOOR_MIB: usize = 64;

/// Runs a sync: archives every scope, writes the run summary, and returns it with the
/// head of the writer's chain of records.
pub async fn run(
    client: fetch::GraphClient,
    options: SyncOptions,
    progress: Arc<Progress>,
) -> anyhow::Result<(RunSummary, archive::records::ChainHead)> {
    let started = Utc::now();
    let run_id = run::new_run_id(Command::Sync);
    let state =
        archive::layout::state_location(&options.out, options.state.as_deref(), options.shard);
    tracing::info!(run_id, out = %options.out, state = %state, sources = ?options.sources(), shard = ?options.shard, "sync started");

    let budget_bytes = options.memory_budget_mib.max(1) * 1024 * 1024;
    // A quarter of the budget holds rows being gathered into files, a quarter rows that
    // wait while a commit runs, a sixteenth the rows scopes gather before they hand them
    // over. The rest covers what these shares do not count: builders' spare capacity,
    // batches in the hand-over, files being encoded, pages in flight, and what the
    // allocator keeps around them. The wait share is as large as the gathering one
    // because a commit's time is mostly per file, not per row: a first sync's commit of a
    // year of history writes hundreds of files, and with an eighth to wait in, fetching
    // stopped for most of every commit (1.22-1.34x the ideal time at 128 MiB; 1.10x now).
    let writer = run::open_writer(
        &options.out,
        &state,
        &run_id,
        budget_bytes / 4,
        options.signing_key.clone(),
    )
    .await?;
    let checkpoints = writer.checkpoints().clone();
    let content = crate::content::ContentCapture::new(
        client.clone(),
        sink::BlobStore::new(writer.archive().clone()),
        options.content.clone(),
        run_id.clone(),
        checkpoints.clone(),
    )
    .context("making the folder downloads are spooled in")?;
    let driver = Arc::new(Driver::start(
        writer,
        run::driver_options(budget_bytes, budget_bytes / 4, options.commit_interval),
        Arc::clone(&progress),
    ));

    progress.set_phase("discovering users, teams and channels");
    let discovery = discover::discover(&client, &options, &checkpoints, started).await?;
    tracing::info!(
        users = discovery.users,
        teams = discovery.teams,
        scopes = discovery.scopes.len(),
        "scopes planned"
    );
    progress.scopes_total.store(
        discovery.scopes.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    progress.set_phase("archiving");

    // The directory of users, from the pages discovery read anyway.
    let mut errors = Vec::new();
    let mut users = driver.lane(None);
    let row = RowContext {
        source: "directory_users",
        fetched_at: started,
        run_id: &run_id,
        custodian_user_id: None,
    };
    for page in &discovery.user_pages {
        for (i, item) in page.iter().enumerate() {
            if let Err(e) = users.push(ItemKind::User, item, &row) {
                errors.push(format!("users page {} item {i}: {e}", page.number));
            }
        }
    }
    let rows = users.take();
    users.send(rows, None).await.ok();
    drop(users);

    let ctx = Arc::new(scope::ScopeContext {
        client: client.clone(),
        checkpoints,
        driver: Arc::clone(&driver),
        run_id: run_id.clone(),
        run_started: started,
        page_size: options.page_size.max(1),
        progress: Arc::clone(&progress),
        lane_bytes: (budget_bytes / 16 / options.concurrency.max(1)).max(64 * 1024),
        content: content.clone(),
    });
    // Each scope is a task of its own, so pages are read and transformed on every core
    // while the writer encodes and uploads.
    for report in &discovery.reports {
        progress.scope_finished(&report.outcome);
    }
    // Scopes bound by a narrower limit start first: a team's history is paced at the
    // team's 4 requests/s and a channel's at 1, so left to the end they would run alone
    // at that pace while the app's budget sat idle.
    let mut scopes = discovery.scopes;
    scopes.sort_by_key(|planned| match planned.scope {
        fetch::Scope::Team { .. } => 0,
        fetch::Scope::Channel { .. } => 1,
        fetch::Scope::UserChats { .. } | fetch::Scope::MailFolder { .. } => 2,
    });
    let mut reports: Vec<ScopeReport> = futures::stream::iter(scopes)
        .map(|planned| {
            let task = tokio::spawn(scope::run(Arc::clone(&ctx), planned.clone()));
            async move {
                task.await.unwrap_or_else(|e| {
                    ScopeReport::new(
                        planned.scope.to_string(),
                        planned.key.clone(),
                        ScopeOutcome::Failed {
                            error: format!("the scope's task stopped: {e}"),
                        },
                    )
                })
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    drop(ctx);
    reports.extend(discovery.reports);
    let driver = Arc::into_inner(driver).context("a scope still holds the writer")?;
    let (written, mut writer) = driver.finish().await.context("writing the archive")?;

    reports.sort_by(|a, b| a.key.cmp(&b.key));
    for report in &mut reports {
        if let Some(rows) = written.per_scope.get(&report.key) {
            report.rows_new = rows.new;
            report.rows_duplicate = rows.duplicate;
        }
    }
    errors.extend(reports.iter().filter_map(|r| match &r.outcome {
        // Fetch errors name their scope already.
        ScopeOutcome::Failed { error } if error.starts_with(&format!("{}: ", r.scope)) => {
            Some(error.clone())
        }
        ScopeOutcome::Failed { error } => Some(format!("{}: {error}", r.scope)),
        _ => None,
    }));
    if let Some(content) = &content {
        errors.extend(content.failures());
    }
    let mut summary = RunSummary::new(&run_id, Command::Sync, started);
    summary.totals = written.totals;
    summary.record_errors(errors, 0);
    summary.scopes = reports;
    if let Some(content) = &content {
        summary.content = content.totals();
    }
    let stats = client.stats();
    summary.graph = Some(GraphRequests {
        requests: stats.requests,
        retries: stats.retries,
        throttled: stats.throttled,
        waited_seconds: stats.waited.as_secs_f64(),
    });
    summary.finish(if summary.errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    });
    let head = run::write_summary(&mut writer, &mut summary).await?;
    tracing::info!(
        run_id,
        outcome = ?summary.outcome,
        requests = stats.requests,
        retries = stats.retries,
        throttled = stats.throttled,
        waited_seconds = stats.waited.as_secs_f64(),
        scopes = summary.scopes.len(),
        skipped = summary.skipped().count(),
        commits = summary.totals.commits,
        seconds = (summary.finished_at - started).num_milliseconds() as f64 / 1000.0,
        "sync finished"
    );
    Ok((summary, head))
}
