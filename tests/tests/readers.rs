//! What analysts run: DuckDB and Spark (local mode) read an archive that `sync` wrote,
//! through the raw files and the shipped views, and agree with each other and with the
//! tenant.

use std::collections::BTreeSet;

use e2e::tenant::{Tenant, content_hash, small_tenant};
use graph_sim::Conversation;

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

#[test]
fn duckdb_and_spark_agree_on_every_table_and_view() {
    let tenant = Tenant::start(small_tenant());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let run = || {
        let output = tenant
            .sync(ARCHIVER, out.to_str().unwrap())
            .args([
                "--source", "chats", "--source", "channels", "--source", "mail",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run();
    let first = tenant.sim.snapshot();
    // A few edits so that some messages have several versions.
    let edits: Vec<_> = first
        .messages
        .iter()
        .filter(|m| matches!(m.conversation, Conversation::Chat { .. }))
        .take(3)
        .collect();
    for message in &edits {
        tenant
            .sim
            .edit_message(&message.message_ref(), "<p>changed</p>")
            .unwrap();
    }
    run();
    let second = tenant.sim.snapshot();

    let program = std::fs::read_to_string(e2e::repo_root().join("tests/py/readers.py")).unwrap();
    let report: serde_json::Value = serde_json::from_str(
        e2e::run_python(
            &program,
            &[out.to_str().unwrap(), e2e::repo_root().to_str().unwrap()],
        )
        .trim(),
    )
    .unwrap();

    let versions: BTreeSet<String> = first
        .messages
        .iter()
        .chain(&second.messages)
        .map(|m| content_hash(&m.json))
        .collect();
    let messages = second.messages.len() as u64;
    for reader in ["duckdb", "spark"] {
        let chat = &report[reader]["chat_messages"];
        assert_eq!(chat["files"], versions.len() as u64, "{reader}: {report}");
        assert_eq!(
            chat["all_versions"],
            versions.len() as u64,
            "{reader}: {report}"
        );
        assert_eq!(
            chat["latest"], messages,
            "{reader}: one row per message: {report}"
        );
    }
    for table in [
        "chat_messages",
        "chat_message_custodians",
        "mail_messages",
        "directory_users",
        "directory_chats",
    ] {
        assert_eq!(
            report["duckdb"][table], report["spark"][table],
            "DuckDB and Spark disagree on {table}: {report}"
        );
    }
    assert_eq!(
        report["duckdb"]["types"],
        serde_json::json!(["DATE", "TIMESTAMP WITH TIME ZONE"])
    );
    assert_eq!(
        report["spark"]["types"],
        serde_json::json!(["date", "timestamp"])
    );
}
