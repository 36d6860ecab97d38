//! What every archiving run shares: its id, how the writer is opened, and the summary it
//! leaves in the archive.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use archive::records::{ChainHead, Command, RunSummary};
use archive::signing::SigningKey;
use chrono::Utc;

use crate::driver::DriverOptions;

/// `<UTC time to the millisecond>-<command>-<random>`: sorts by start time, unique across
/// machines.
pub fn new_run_id(command: Command) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        command.as_str(),
        &random[..8]
    )
}

/// Opens the archive writer over every table, completing an interrupted commit, and logs
/// what it found and repaired.
pub async fn open_writer(
    out: &str,
    state: &str,
    run_id: &str,
    writer_budget_bytes: usize,
    signing_key: Option<Arc<SigningKey>>,
) -> anyhow::Result<sink::ArchiveWriter> {
    if let Some(key) = &signing_key {
        tracing::info!(public_key = %key.public_key_hex(), "records are signed");
    }
    let options = sink::WriterOptions {
        memory_budget_bytes: writer_budget_bytes.max(1),
        run_id: run_id.to_string(),
        signing_key,
        ..sink::WriterOptions::default()
    };
    let (writer, recovery) =
        sink::ArchiveWriter::open(out, state, archive::Table::specs(), options)
            .await
            .with_context(|| format!("opening the archive at {out}"))?;
    // Counts on one line, each warning on its own: a list of files in one field would
    // make a line of tens of kilobytes.
    tracing::info!(
        recovered_commit = recovery.recovered_commit.as_deref().unwrap_or("-"),
        files_committed = recovery.files_committed.len(),
        files_forgotten = recovery.files_forgotten.len(),
        index_rebuilt = recovery.index_rebuilt,
        commit_records_applied = recovery.commit_records_applied,
        keys_indexed = recovery.keys_indexed,
        warnings = recovery.warnings.len(),
        "archive opened"
    );
    for warning in &recovery.warnings {
        tracing::warn!("{warning}");
    }
    Ok(writer)
}

/// The writer task's settings: rows may queue while a commit runs up to `queue_bytes`;
/// above three quarters of `memory_budget_bytes` resident, freed memory goes back to the system.
pub fn driver_options(
    memory_budget_bytes: usize,
    queue_bytes: usize,
    commit_interval: Duration,
) -> DriverOptions {
    DriverOptions {
        queue_bytes,
        commit_interval,
        channel_units: 8,
        memory_budget_bytes,
    }
}

/// Records the process's peak memory, then writes `<out>/_archive/runs/<run id>.json` as
/// the last record of the run in the writer's chain; returns the chain's head.
pub async fn write_summary(
    writer: &mut sink::ArchiveWriter,
    summary: &mut RunSummary,
) -> anyhow::Result<ChainHead> {
    summary.peak_rss_bytes = peak_rss_bytes();
    let head = writer
        .write_run_summary(summary)
        .await
        .context("writing the run summary")?;
    tracing::info!(
        writer = %head.writer,
        sequence = head.sequence,
        sha256 = head.sha256.as_deref().unwrap_or(""),
        "chain head"
    );
    Ok(head)
}

/// The highest resident memory of this process so far (Linux: `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
