//! The README's first command: `teams-archiver demo` archives the embedded simulator's
//! tenant, runs an incremental sync after changes, and says what to try next; `status`
//! then shows where every scope stands.

use std::process::Command;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

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
    assert!(stdout.contains("== First run"), "{stdout}");
    assert!(stdout.contains("== Second run"), "{stdout}");
    assert!(stdout.contains("read_parquet("), "queries to try: {stdout}");
    // The second run stored the changes and nothing else again.
    let second = stdout.split("== Second run").nth(1).unwrap();
    assert!(!second.contains(" 0 new versions stored"), "{second}");

    let versions = e2e::tenant::version_counts(&out, "chat_messages");
    assert!(versions.len() > 100, "{} versions", versions.len());
    assert!(versions.values().all(|n| *n == 1));

    let status = Command::new(ARCHIVER)
        .args(["status", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("up to date (delta link saved)"), "{text}");
    assert!(text.contains("sync: Success"), "{text}");
    assert!(
        !text.contains("deltatoken"),
        "status never shows links: {text}"
    );
}
