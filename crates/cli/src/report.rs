//! What a person reads at the end of a run, and the exit code a scheduler reads.

use std::process::ExitCode;
use std::time::Duration;

use archive::records::{Outcome, RunSummary};

pub fn exit_code(outcome: Outcome) -> ExitCode {
    ExitCode::from(outcome.code())
}

/// The line an operator keeps outside the archive: `verify --expect-head` proves later
/// that every record up to it is unaltered.
pub fn print_chain_head(head: &archive::records::ChainHead) {
    outln!(
        "chain {} {} {}",
        head.writer,
        head.sequence,
        head.sha256.as_deref().unwrap_or("-")
    );
}

/// The end-of-run lines: totals, tables, skipped scopes and errors.
pub fn print_summary(summary: &RunSummary, items_read: u64, elapsed: Duration) {
    let totals = &summary.totals;
    let secs = elapsed.as_secs_f64().max(1e-9);
    outln!(
        "{}: {} items read, {} new versions stored, {} already archived, {} files ({}) in {} commits, {} partitions, {} errors, {:.1}s ({:.0} items/s)",
        summary.run_id,
        items_read,
        totals.rows_new(),
        totals.rows_duplicate(),
        totals.files(),
        human_bytes(totals.bytes()),
        totals.commits,
        totals.partitions,
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
    let content = &summary.content;
    if !content.is_empty() {
        let pieces = content
            .pieces
            .iter()
            .map(|(status, n)| format!("{n} {}", status.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        outln!(
            "  content: {pieces}; {} new blobs ({}), {} already stored",
            content.blobs_created,
            human_bytes(content.bytes_stored),
            content.blobs_present
        );
    }
    for (scope, reason) in summary.skipped() {
        outln!("  skipped {}: {}", scope.scope, reason.describe());
    }
    for error in summary.errors.iter().take(20) {
        outln!("  error: {error}");
    }
    if summary.errors.len() > 20 {
        outln!(
            "  ... and {} more lines of errors in the run summary",
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
