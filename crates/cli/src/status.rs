//! `teams-archiver status`: where every scope stands, and what the last runs did.

use anyhow::Context;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::args::StatusArgs;
use crate::exit::Outcome;
use crate::run;
use crate::sync::checkpoint::ScopeCheckpoint;

pub async fn run(args: StatusArgs) -> anyhow::Result<Outcome> {
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| run::default_state(&args.out));
    let checkpoints = sink::CheckpointStore::open(&state)
        .with_context(|| format!("opening the state at {state}"))?;
    let mut scopes = checkpoints
        .list()
        .await
        .with_context(|| format!("listing checkpoints in {state}"))?;
    scopes.sort_by(|a, b| a.0.cmp(&b.0));
    outln!("Checkpoints in {state}: {} scopes", scopes.len());
    for (scope, value) in &scopes {
        match ScopeCheckpoint::from_value(value.clone()) {
            Ok(cp) => outln!(
                "  {scope}: {}; latest change {}; saved {} by {}{}",
                cp.describe(),
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
            Err(e) => outln!("  {scope}: unreadable checkpoint ({e})"),
        }
    }

    let archive = sink::Location::parse(&args.out)
        .with_context(|| format!("opening the archive at {}", args.out))?;
    let prefix = object_store::path::Path::from("_archive/runs");
    let mut runs: Vec<object_store::ObjectMeta> = archive
        .store()
        .list(Some(&prefix))
        .try_collect()
        .await
        .with_context(|| format!("listing runs in {}", args.out))?;
    // Run ids start with their UTC start time, so names sort by time.
    runs.sort_by(|a, b| b.location.as_ref().cmp(a.location.as_ref()));
    outln!("\nLatest runs in {}:", args.out);
    if runs.is_empty() {
        outln!("  none yet");
    }
    for meta in runs.iter().take(args.runs) {
        let bytes = archive
            .store()
            .get(&meta.location)
            .await
            .with_context(|| format!("reading {}", meta.location))?
            .bytes()
            .await
            .with_context(|| format!("reading {}", meta.location))?;
        let summary: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a run summary", meta.location))?;
        let tables = summary["totals"]["tables"].as_object();
        let new: u64 = tables
            .map(|t| t.values().filter_map(|v| v["rows_new"].as_u64()).sum())
            .unwrap_or(0);
        let files = summary["totals"]["files"].as_array().map_or(0, Vec::len);
        outln!(
            "  {} {}: {} ({} errors), {} new rows, {} files, {} .. {}",
            summary["run_id"].as_str().unwrap_or("?"),
            summary["command"].as_str().unwrap_or("?"),
            summary["outcome"].as_str().unwrap_or("?"),
            summary["errors"].as_array().map_or(0, Vec::len),
            new,
            files,
            summary["started_at"].as_str().unwrap_or("?"),
            summary["finished_at"].as_str().unwrap_or("?"),
        );
    }
    Ok(Outcome::Success)
}
