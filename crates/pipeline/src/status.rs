//! `status`: where every scope of an archive stands, what the last runs did, what was
//! skipped and why, as text for people. It only reads: a mistyped path is reported, not
//! created.

use std::fmt::Write as _;

use anyhow::Context;
use archive::records::{Command, RunSummary, ScopeOutcome};

use crate::sync::checkpoint::ScopeCheckpoint;

/// The status of the archive at `out` with its state (default `<out>/_state`, a shard's
/// own folder below it), listing the `latest_runs` latest runs.
pub async fn report(
    out: &str,
    state: Option<&str>,
    shard: Option<archive::layout::Shard>,
    latest_runs: usize,
) -> anyhow::Result<String> {
    let mut text = String::new();
    // Writing to a String cannot fail.
    macro_rules! outln {
        ($($arg:tt)*) => {{
            let _ = writeln!(text, $($arg)*);
        }};
    }
    let Some(archive) = sink::Location::open_existing(out)
        .with_context(|| format!("opening the archive at {}", out))?
    else {
        anyhow::bail!("there is no archive at {}", out);
    };
    let mut runs: Vec<RunSummary> = Vec::new();
    for (key, summary) in sink::read_records::<RunSummary>(&archive, archive::layout::RUNS_DIR)
        .await
        .with_context(|| format!("listing runs in {}", out))?
    {
        match summary {
            Ok(summary) => runs.push(summary),
            Err(e) => outln!("{key}: {e}"),
        }
    }
    // Run ids start with their UTC start time.
    runs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    let latest_sync = runs.iter().find(|r| r.command == Command::Sync);

    let state = archive::layout::state_location(out, state, shard);
    let checkpoints = match sink::Location::open_existing(&state)
        .with_context(|| format!("opening the state at {state}"))?
    {
        Some(location) => sink::CheckpointStore::at(location)
            .list()
            .await
            .with_context(|| format!("listing checkpoints in {state}"))?,
        None => Vec::new(),
    };
    outln!("Checkpoints in {state}: {} scopes", checkpoints.len());
    for (scope, value) in &checkpoints {
        let planned = latest_sync.map(|r| r.scopes.iter().any(|s| &s.key == scope));
        let missing = if planned == Some(false) {
            " [not in the latest discovery: deleted or no longer selected; checkpoint kept]"
        } else {
            ""
        };
        match ScopeCheckpoint::from_value(value.clone()) {
            Ok(cp) => outln!(
                "  {scope}: {}; last success {}; latest change {}; saved {} by {}{}{missing}",
                cp.describe(),
                cp.last_success
                    .map_or("none yet".to_string(), |t| t.to_rfc3339()),
                cp.watermark
                    .map_or("none yet".to_string(), |w| w.to_rfc3339()),
                cp.saved_at.to_rfc3339(),
                cp.run_id,
                if cp.resyncs > 0 {
                    format!("; {} resyncs", cp.resyncs)
                } else {
                    String::new()
                }
            ),
            Err(e) => outln!("  {scope}: unreadable checkpoint ({e}){missing}"),
        }
    }

    if let Some(run) = latest_sync {
        let skipped: Vec<_> = run.skipped().collect();
        let failed: Vec<_> = run
            .scopes
            .iter()
            .filter_map(|s| match &s.outcome {
                ScopeOutcome::Failed { error } => Some((s, error)),
                _ => None,
            })
            .collect();
        outln!(
            "\nLatest sync {}: {} scopes, {} skipped, {} failed",
            run.run_id,
            run.scopes.len(),
            skipped.len(),
            failed.len()
        );
        for (scope, reason) in skipped {
            outln!(
                "  skipped {} ({}): {}",
                scope.scope,
                scope.key,
                reason.describe()
            );
        }
        for (scope, error) in failed {
            outln!("  failed {} ({}): {error}", scope.scope, scope.key);
        }
    }

    outln!("\nLatest runs in {}:", out);
    if runs.is_empty() {
        outln!("  none yet");
    }
    for run in runs.iter().take(latest_runs) {
        outln!(
            "  {} {}: {:?} ({} errors, {} skipped), {} new rows, {} files, {} .. {}",
            run.run_id,
            run.command.as_str(),
            run.outcome,
            run.errors.len(),
            run.skipped().count(),
            run.totals.rows_new(),
            run.totals.files(),
            run.started_at.to_rfc3339(),
            run.finished_at.to_rfc3339(),
        );
    }
    Ok(text)
}
