//! `teams-archiver sync`: the nightly job. Discovery plans scopes; scopes run
//! concurrently, each a delta round resumed from its checkpoint; one writer task makes
//! their rows durable and only then moves their checkpoints.

pub mod checkpoint;
mod credentials;
mod discover;
pub mod plan;
pub mod scope;
mod writer_task;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::mpsc;
use transform::{DirectoryUserBuilder, RowContext};

use crate::args::SyncArgs;
use crate::exit::Outcome;
use crate::progress::Progress;
use crate::run::{self, RunSummary};
use crate::tables;
use scope::{Counters, ScopeContext, ScopeReport, load};
use writer_task::Unit;

/// Units in flight between scopes and the writer.
const CHANNEL_UNITS: usize = 8;

pub async fn run(args: SyncArgs, progress: Progress) -> anyhow::Result<Outcome> {
    let started = Utc::now();
    let clock = Instant::now();
    let run_id = run::new_run_id("sync");
    let since = args
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .with_context(|| format!("--since {s:?} is not an RFC 3339 time"))
        })
        .transpose()?;
    let mut config = credentials::client_config(&args.graph)?;
    config.retry.max_retries = args.max_retries;
    let client = fetch::GraphClient::new(config).context("setting up the Graph client")?;
    let state = args.state.clone().unwrap_or_else(|| {
        let base = run::default_state(&args.out);
        match discover::shard_suffix(args.shard) {
            Some(shard) => format!("{base}/{shard}"),
            None => base,
        }
    });
    tracing::info!(run_id, out = %args.out, state = %state, sources = ?discover::sources(&args), shard = ?args.shard, "sync started");

    let options = run::writer_options(&run_id, args.memory_budget_mib);
    let (writer, recovery) = sink::ArchiveWriter::open(&args.out, &state, tables::all(), options)
        .await
        .with_context(|| format!("opening the archive at {}", args.out))?;
    run::log_recovery(&recovery);
    let checkpoints = writer.checkpoints().clone();

    let spinner = progress.spinner("sync");
    spinner.set_message("discovering users, teams and channels");
    let discovery = discover::discover(&client, &args).await?;
    tracing::info!(
        users = discovery.users,
        teams = discovery.teams,
        scopes = discovery.scopes.len(),
        "scopes planned"
    );

    let (units, receiver) = mpsc::channel::<Unit>(CHANNEL_UNITS);
    let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // The writer runs beside the scopes in this task (joined below); its encoding work
    // goes to blocking threads inside the sink.
    let writing = writer_task::run(
        writer,
        receiver,
        Duration::from_secs(args.commit_interval.max(1)),
        // Rows that may wait while a commit runs: as much again as the budget.
        args.memory_budget_mib.max(1) * 1024 * 1024,
        Arc::clone(&commits),
    );

    // The directory of users, from the pages discovery read anyway.
    let mut users = DirectoryUserBuilder::new();
    let row = RowContext {
        source: "directory_users",
        fetched_at: started,
        run_id: &run_id,
        custodian_user_id: None,
    };
    let mut directory_errors = Vec::new();
    for page in &discovery.user_pages {
        for (i, item) in page.iter().enumerate() {
            if let Err(e) = users.append(item, &row) {
                directory_errors.push(format!("users page {} item {i}: {e}", page.number));
            }
        }
    }
    units
        .send(Unit {
            scope: None,
            batches: vec![(tables::DIRECTORY_USERS, users.finish())],
            checkpoint: None,
        })
        .await
        .ok();

    let counters = Arc::new(Counters::default());
    let ctx = Arc::new(ScopeContext {
        client: client.clone(),
        checkpoints,
        units,
        run_id: run_id.clone(),
        since,
        page_size: args.page_size.max(1),
        counters: Arc::clone(&counters),
    });
    let total_scopes = discovery.scopes.len();
    let ticker = {
        let counters = Arc::clone(&counters);
        let commits = Arc::clone(&commits);
        let spinner = spinner.clone();
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let graph = client.stats();
                spinner.set_message(format!(
                    "scopes {}/{} ({} failed), pages {}, messages {}, commits {}, requests {} \
                     ({} retried, {} throttled, {:.0}s waited), pacing {:.0} req/s",
                    load(&counters.scopes_done) + load(&counters.scopes_failed),
                    total_scopes,
                    load(&counters.scopes_failed),
                    load(&counters.pages),
                    load(&counters.items),
                    commits.load(std::sync::atomic::Ordering::Relaxed),
                    graph.requests,
                    graph.retries,
                    graph.throttled,
                    graph.waited.as_secs_f64(),
                    client.current_rate(),
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let concurrency = args.concurrency.max(1);
    let scopes = async move {
        // Each scope is a task of its own, so pages are read and transformed on every
        // core while the writer encodes and uploads.
        let reports: Vec<ScopeReport> = futures::stream::iter(discovery.scopes)
            .map(|planned| {
                let scope = tokio::spawn(scope::run(Arc::clone(&ctx), planned.clone()));
                async move {
                    scope
                        .await
                        .unwrap_or_else(|e| ScopeReport::failed(&planned, e.to_string()))
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        drop(ctx); // closes the channel: the writer commits what is left and ends
        reports
    };
    let (mut reports, written) = tokio::join!(scopes, writing);
    let written = written.context("writing the archive")?;
    ticker.abort();
    spinner.finish_and_clear();

    reports.sort_by(|a, b| a.key.cmp(&b.key));
    for report in &mut reports {
        if let Some(rows) = written.per_scope.get(&report.key) {
            report.rows_new = rows.new;
            report.rows_duplicate = rows.duplicate;
        }
    }
    let mut errors = directory_errors;
    errors.extend(
        reports
            .iter()
            .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.scope))),
    );
    let outcome = if errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::PartialFailure
    };
    let mut summary = RunSummary::new(&run_id, "sync", started, &written.totals, errors, outcome);
    summary.scopes = reports;
    summary.graph = Some(client.stats().into());
    run::write_summary(&args.out, &summary)
        .await
        .context("writing the run summary")?;
    let items = load(&counters.items) as usize;
    run::print_summary(&summary, items, clock.elapsed());
    let graph = client.stats();
    tracing::info!(
        run_id,
        outcome = ?outcome,
        requests = graph.requests,
        retries = graph.retries,
        throttled = graph.throttled,
        waited_seconds = graph.waited.as_secs_f64(),
        scopes = summary.scopes.len(),
        failed = load(&counters.scopes_failed),
        commits = written.commits,
        seconds = clock.elapsed().as_secs_f64(),
        "sync finished"
    );
    Ok(outcome)
}
