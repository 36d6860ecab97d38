//! What every archiving run shares: its id, the writer's settings, the totals it keeps
//! and the summary it leaves under `<out>/_archive/runs/` and prints at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::exit::Outcome;

/// `<kind>-<UTC time>-<random>`: sorts by start time, unique across machines.
pub fn new_run_id(kind: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        kind,
        &random[..8]
    )
}

/// `<out>/_state`, for an archive path or URL.
pub fn default_state(out: &str) -> String {
    format!("{}/_state", out.trim_end_matches('/'))
}

pub fn writer_options(run_id: &str, memory_budget_mib: usize) -> sink::WriterOptions {
    sink::WriterOptions {
        memory_budget_bytes: memory_budget_mib.max(1) * 1024 * 1024,
        run_id: run_id.to_string(),
        ..sink::WriterOptions::default()
    }
}

pub fn log_recovery(recovery: &sink::RecoveryReport) {
    tracing::info!(?recovery, "archive opened");
}

/// Counts kept while a run goes, per table.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunTotals {
    pub tables: BTreeMap<String, TableTotals>,
    /// Commits that published files (each one write-ahead record, files, commit record).
    pub commits: u64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TableTotals {
    /// Rows handed to the writer.
    pub rows_seen: u64,
    /// Rows that were new to the archive.
    pub rows_new: u64,
    /// Rows already archived (or seen earlier in this run), not stored again.
    pub rows_duplicate: u64,
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub table: String,
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl RunTotals {
    pub fn add_append(&mut self, table: &str, stats: &sink::AppendStats) {
        let t = self.tables.entry(table.to_string()).or_default();
        t.rows_seen += stats.rows_in as u64;
        t.rows_new += stats.rows_new as u64;
        t.rows_duplicate += stats.rows_duplicate as u64;
    }

    pub fn add_commit(&mut self, report: &sink::CommitReport) {
        if !report.files.is_empty() {
            self.commits += 1;
        }
        for file in &report.files {
            let t = self.tables.entry(file.table.clone()).or_default();
            t.files += 1;
            t.bytes += file.bytes;
            self.files.push(FileEntry {
                path: file.path.clone(),
                table: file.table.clone(),
                partition: file.partition.clone(),
                rows: file.rows,
                bytes: file.bytes,
                sha256: file.sha256.clone(),
            });
        }
    }

    pub fn partitions(&self) -> usize {
        let mut seen: Vec<(&str, &str)> = self
            .files
            .iter()
            .map(|f| (f.table.as_str(), f.partition.as_str()))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }
}

/// The record a run leaves in the archive: what it did and which files it wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub command: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub exit_code: u8,
    pub totals: RunTotals,
    pub errors: Vec<String>,
    /// Per scope, for `sync`: pages, items, rows and where the scope stands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<crate::sync::scope::ScopeReport>,
    /// For `sync`: what was asked of Graph and how it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphRequests>,
}

/// Requests to Graph during a run.
#[derive(Debug, Clone, Serialize)]
pub struct GraphRequests {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub waited_seconds: f64,
}

impl From<fetch::ClientStats> for GraphRequests {
    fn from(stats: fetch::ClientStats) -> Self {
        GraphRequests {
            requests: stats.requests,
            retries: stats.retries,
            throttled: stats.throttled,
            waited_seconds: stats.waited.as_secs_f64(),
        }
    }
}

impl RunSummary {
    pub fn new(
        run_id: &str,
        command: &str,
        started_at: DateTime<Utc>,
        totals: &RunTotals,
        errors: Vec<String>,
        outcome: Outcome,
    ) -> Self {
        RunSummary {
            run_id: run_id.to_string(),
            command: command.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            finished_at: Utc::now(),
            outcome: format!("{outcome:?}"),
            exit_code: outcome.code(),
            totals: totals.clone(),
            errors,
            scopes: Vec::new(),
            graph: None,
        }
    }
}

/// Writes `<out>/_archive/runs/<run id>.json`.
pub async fn write_summary(out: &str, summary: &RunSummary) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(summary)?;
    sink::put_archive_object(out, &format!("_archive/runs/{}.json", summary.run_id), json).await?;
    Ok(())
}

/// The end-of-run lines a person reads.
pub fn print_summary(summary: &RunSummary, items_read: usize, elapsed: Duration) {
    let totals = &summary.totals;
    let new: u64 = totals.tables.values().map(|t| t.rows_new).sum();
    let duplicate: u64 = totals.tables.values().map(|t| t.rows_duplicate).sum();
    let bytes: u64 = totals.tables.values().map(|t| t.bytes).sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    outln!(
        "{}: {} items read, {} new versions stored, {} already archived, {} files ({}) in {} commits, {} partitions, {} errors, {:.1}s ({:.0} items/s)",
        summary.run_id,
        items_read,
        new,
        duplicate,
        totals.files.len(),
        human_bytes(bytes),
        totals.commits,
        totals.partitions(),
        summary.errors.len(),
        secs,
        items_read as f64 / secs,
    );
    for (table, t) in &totals.tables {
        outln!(
            "  {table}: {} rows seen, {} new, {} duplicate, {} files",
            t.rows_seen,
            t.rows_new,
            t.rows_duplicate,
            t.files
        );
    }
    for error in summary.errors.iter().take(20) {
        outln!("  error: {error}");
    }
    if summary.errors.len() > 20 {
        outln!(
            "  ... and {} more errors (all in the run summary and the log)",
            summary.errors.len() - 20
        );
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
