//! What analysts run: DuckDB and Spark (local mode) read an archive that `sync` wrote,
//! through the raw files and the shipped views, and agree with each other and with the
//! tenant.

use std::collections::BTreeSet;

use e2e::assert_success;
use e2e::tenant::{Tenant, content_hash, small_tenant};
use graph_sim::{Conversation, SimConfig};

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

#[test]
fn duckdb_and_spark_agree_on_every_table_and_view() {
    // Some messages and mail carry content, so that every table, message_contents
    // included, has files for the views to read.
    let tenant = Tenant::start(SimConfig {
        hosted_contents_per_mille: 150,
        file_attachments_per_mille: 150,
        mail_attachments_per_mille: 300,
        ..small_tenant()
    });
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
        assert_success("the archiver", &output);
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
        "message_contents",
    ] {
        assert_eq!(
            report["duckdb"][table], report["spark"][table],
            "DuckDB and Spark disagree on {table}: {report}"
        );
    }
    for reader in ["duckdb", "spark"] {
        for table in [
            "chat_messages",
            "mail_messages",
            "directory_users",
            "directory_chats",
        ] {
            assert_eq!(
                report[reader][table]["raw_sha256_mismatches"], 0,
                "{reader}: sha256(raw_json) = raw_sha256 on every row of {table}: {report}"
            );
        }
    }
    assert!(
        report["duckdb"]["message_contents"]["files"]
            .as_u64()
            .unwrap()
            > 0,
        "the tenant's content is archived: {report}"
    );
    let senders = second
        .messages
        .iter()
        .filter(|m| {
            let json: serde_json::Value = serde_json::from_str(&m.json).unwrap();
            json["from"]["user"]["displayName"].is_string()
        })
        .count();
    assert!(senders > 0);
    assert!(
        report["duckdb"]["senders"].as_u64().unwrap() >= senders as u64,
        "DuckDB reads from.user.display_name: {report}"
    );
    assert_eq!(
        report["duckdb"]["senders"], report["spark"]["senders"],
        "{report}"
    );
    assert_eq!(
        report["duckdb"]["schema_versions"],
        serde_json::json!([archive::SCHEMA_VERSION.to_string()]),
        "{report}"
    );
    assert_eq!(
        report["duckdb"]["files_without_schema_version"], 0,
        "{report}"
    );
    assert_eq!(
        report["duckdb"]["rows_out_of_order"], 0,
        "rows of a file are ordered by conversation, then time: {report}"
    );
    assert_eq!(
        report["duckdb"]["types"],
        serde_json::json!(["DATE", "TIMESTAMP WITH TIME ZONE"])
    );
    assert_eq!(
        report["spark"]["types"],
        serde_json::json!(["date", "timestamp"])
    );
}
