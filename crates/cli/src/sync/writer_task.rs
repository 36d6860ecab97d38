//! The one task that owns the archive writer. Scopes send it the rows of each page with
//! the checkpoint that follows them; it commits when its memory budget fills, when the
//! commit interval passes, and at the end, and a checkpoint is only ever saved by the
//! commit that made its rows durable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::run::RunTotals;

/// The rows of one page (or one directory snapshot) and where its scope stands after it.
pub struct Unit {
    /// The scope's state key; `None` for directory snapshots, which have no checkpoint.
    pub scope: Option<String>,
    pub batches: Vec<(&'static str, RecordBatch)>,
    /// Saved with the commit that makes these rows durable.
    pub checkpoint: Option<serde_json::Value>,
}

/// Rows new and repeated, per scope.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScopeRows {
    pub new: u64,
    pub duplicate: u64,
}

pub struct WriterOutcome {
    pub totals: RunTotals,
    pub per_scope: BTreeMap<String, ScopeRows>,
    pub commits: usize,
}

pub async fn run(
    mut writer: sink::ArchiveWriter,
    mut units: mpsc::Receiver<Unit>,
    commit_interval: Duration,
    commits_done: Arc<AtomicU64>,
) -> anyhow::Result<WriterOutcome> {
    let mut totals = RunTotals::default();
    let mut per_scope: BTreeMap<String, ScopeRows> = BTreeMap::new();
    let mut pending: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut commits = 0;
    let mut ticker = tokio::time::interval(commit_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            unit = units.recv() => {
                let Some(unit) = unit else { break };
                for (table, batch) in &unit.batches {
                    let stats = writer
                        .append(table, batch)
                        .with_context(|| format!("buffering rows for {table}"))?;
                    totals.add_append(table, &stats);
                    if let Some(scope) = &unit.scope {
                        let rows = per_scope.entry(scope.clone()).or_default();
                        rows.new += stats.rows_new as u64;
                        rows.duplicate += stats.rows_duplicate as u64;
                    }
                }
                if let (Some(scope), Some(checkpoint)) = (unit.scope, unit.checkpoint) {
                    pending.insert(scope, checkpoint);
                }
                if writer.needs_commit() {
                    commit(&mut writer, &mut pending, &mut totals).await?;
                    commits_done.fetch_add(1, Ordering::Relaxed);
                    commits += 1;
                }
            }
            _ = ticker.tick() => {
                if !pending.is_empty() || writer.buffered_rows() > 0 {
                    commit(&mut writer, &mut pending, &mut totals).await?;
                    commits_done.fetch_add(1, Ordering::Relaxed);
                    commits += 1;
                }
            }
        }
    }
    if !pending.is_empty() || writer.buffered_rows() > 0 {
        commit(&mut writer, &mut pending, &mut totals).await?;
        commits_done.fetch_add(1, Ordering::Relaxed);
        commits += 1;
    }
    Ok(WriterOutcome {
        totals,
        per_scope,
        commits,
    })
}

async fn commit(
    writer: &mut sink::ArchiveWriter,
    pending: &mut BTreeMap<String, serde_json::Value>,
    totals: &mut RunTotals,
) -> anyhow::Result<()> {
    let checkpoints = std::mem::take(pending)
        .into_iter()
        .map(|(scope, value)| sink::Checkpoint { scope, value })
        .collect();
    let report = writer
        .commit(checkpoints)
        .await
        .context("committing files and checkpoints")?;
    tracing::info!(
        commit = report.commit_id.as_deref().unwrap_or("-"),
        files = report.files.len(),
        rows = report.rows,
        bytes = report.bytes,
        checkpoints = report.checkpoints,
        "committed"
    );
    totals.add_commit(&report);
    Ok(())
}
