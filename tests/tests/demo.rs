//! The README's first command: `teams-archiver demo` archives the embedded simulator's
//! tenant, runs an incremental sync after changes, and says what to try next; `status`
//! then shows where every scope stands.

use std::process::Command;

use archive::Table;
use archive::records::Outcome;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

fn rows_new(summary: &archive::records::RunSummary, table: Table) -> u64 {
    summary
        .totals
        .tables
        .get(table.folder())
        .map_or(0, |t| t.rows_new)
}

#[test]
fn demo_archives_a_tenant_twice_and_status_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let output = Command::new(ARCHIVER)
        .args(["demo", "--users", "4", "--out"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("read_parquet("), "queries to try: {stdout}");

    let runs = e2e::run_summaries(&out);
    assert_eq!(runs.len(), 2, "a first and an incremental run");
    assert!(runs.iter().all(|r| r.outcome == Outcome::Success));
    let (first, second) = (&runs[0], &runs[1]);
    assert!(rows_new(first, Table::ChatMessages) > 100);
    assert!(rows_new(first, Table::MailMessages) > 0);
    // The second run stores the demo's changes (3 edits, 1 deletion, 2 new chat messages,
    // 1 reply) and the removal of one mail, and nothing it already had.
    assert!(
        rows_new(second, Table::ChatMessages) >= 7,
        "{:?}",
        second.totals
    );
    assert_eq!(
        rows_new(second, Table::MailMessages),
        1,
        "{:?}",
        second.totals
    );
    let versions = e2e::tenant::version_counts(&out, "chat_messages");
    assert!(versions.values().all(|n| *n == 1), "a version stored twice");
    assert_eq!(
        versions.len() as u64,
        rows_new(first, Table::ChatMessages) + rows_new(second, Table::ChatMessages)
    );

    let status = Command::new(ARCHIVER)
        .args(["status", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    let checkpoints = std::fs::read_dir(out.join("_state/checkpoints"))
        .unwrap()
        .count();
    assert_eq!(checkpoints, second.scopes.len(), "a checkpoint per scope");
    for scope in &second.scopes {
        assert!(
            text.contains(&scope.key),
            "status lists {}: {text}",
            scope.key
        );
    }
    assert!(
        !text.contains("deltatoken") && !text.contains("skiptoken"),
        "status never shows links: {text}"
    );

    // A second demo into the same folder would meet a tenant that is gone: refused.
    let again = Command::new(ARCHIVER)
        .args(["demo", "--users", "4", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
