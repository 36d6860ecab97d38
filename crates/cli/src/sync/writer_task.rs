//! The one task that owns the archive writer. Scopes send it the rows of their pages with
//! the checkpoint that follows them; it commits when its memory budget fills, when the
//! commit interval passes, and at the end, and a checkpoint is only ever saved by the
//! commit that made its rows durable.
//!
//! While a commit encodes and uploads, units keep arriving into a queue (up to a byte
//! cap), so fetching does not stop for the length of a commit; they are appended, with
//! their checkpoints, once the commit is done.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use crate::run::RunTotals;

/// The rows of one or more pages (or a directory snapshot) and where the scope stands
/// after them.
pub struct Unit {
    /// The scope's state key; `None` for directory snapshots, which have no checkpoint.
    pub scope: Option<String>,
    pub batches: Vec<(&'static str, RecordBatch)>,
    /// Saved with the commit that makes these rows durable.
    pub checkpoint: Option<serde_json::Value>,
}

impl Unit {
    fn bytes(&self) -> usize {
        self.batches
            .iter()
            .map(|(_, b)| b.get_array_memory_size())
            .sum()
    }
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

struct State {
    totals: RunTotals,
    per_scope: BTreeMap<String, ScopeRows>,
    pending: BTreeMap<String, serde_json::Value>,
    commits: usize,
}

pub async fn run(
    mut writer: sink::ArchiveWriter,
    mut units: mpsc::Receiver<Unit>,
    commit_interval: Duration,
    queue_cap_bytes: usize,
    commits_done: Arc<AtomicU64>,
) -> anyhow::Result<WriterOutcome> {
    let mut state = State {
        totals: RunTotals::default(),
        per_scope: BTreeMap::new(),
        pending: BTreeMap::new(),
        commits: 0,
    };
    let mut queue: VecDeque<Unit> = VecDeque::new();
    let mut queued_bytes = 0usize;
    let mut open = true;
    let mut ticker = tokio::time::interval(commit_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    let mut interval_passed = false;
    loop {
        // Append what is queued, until the budget says to commit.
        while !writer.needs_commit() {
            let Some(unit) = queue.pop_front() else { break };
            queued_bytes -= unit.bytes();
            append(&mut writer, &mut state, unit)?;
        }
        let has_work = !state.pending.is_empty() || writer.buffered_rows() > 0;
        if writer.needs_commit() || (interval_passed && has_work) || (!open && queue.is_empty()) {
            if has_work {
                let checkpoints = std::mem::take(&mut state.pending)
                    .into_iter()
                    .map(|(scope, value)| sink::Checkpoint { scope, value })
                    .collect();
                let commit = writer.commit(checkpoints);
                tokio::pin!(commit);
                // Keep receiving while the commit runs.
                let report = loop {
                    tokio::select! {
                        report = &mut commit => break report,
                        unit = units.recv(), if open && queued_bytes < queue_cap_bytes => match unit {
                            Some(unit) => {
                                queued_bytes += unit.bytes();
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
                    bytes = report.bytes,
                    checkpoints = report.checkpoints,
                    "committed"
                );
                state.totals.add_commit(&report);
                state.commits += 1;
                commits_done.fetch_add(1, Ordering::Relaxed);
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
                    queued_bytes += unit.bytes();
                    queue.push_back(unit);
                }
                None => open = false,
            },
            _ = ticker.tick() => interval_passed = true,
        }
    }
    Ok(WriterOutcome {
        totals: state.totals,
        per_scope: state.per_scope,
        commits: state.commits,
    })
}

fn append(writer: &mut sink::ArchiveWriter, state: &mut State, unit: Unit) -> anyhow::Result<()> {
    for (table, batch) in &unit.batches {
        let stats = writer
            .append(table, batch)
            .with_context(|| format!("buffering rows for {table}"))?;
        state.totals.add_append(table, &stats);
        if let Some(scope) = &unit.scope {
            let rows = state.per_scope.entry(scope.clone()).or_default();
            rows.new += stats.rows_new as u64;
            rows.duplicate += stats.rows_duplicate as u64;
        }
    }
    if let (Some(scope), Some(checkpoint)) = (unit.scope, unit.checkpoint) {
        state.pending.insert(scope, checkpoint);
    }
    Ok(())
}
