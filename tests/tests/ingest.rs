//! `teams-archiver ingest` end to end: Microsoft's own docs examples into an archive on
//! local disk and on S3 (moto), read back by DuckDB.

use std::path::Path;
use std::process::{Command, Output};

use e2e::{assert_success, graph_docs_fixtures, run_python};

fn archiver() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_archiver"));
    command.arg("--no-progress").env("RUST_LOG", "warn");
    command
}

fn fixture_dirs() -> Vec<String> {
    ["v1.0", "beta", "concepts"]
        .iter()
        .map(|d| graph_docs_fixtures().join(d).to_string_lossy().into_owned())
        .collect()
}

fn ingest(out: &str, extra_env: &[(&str, String)]) -> Output {
    archiver()
        .arg("ingest")
        .arg("--out")
        .arg(out)
        .args(fixture_dirs())
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the archiver starts")
}

/// Compares the archive with the versions computed independently from the inputs.
fn compare_with_inputs(archive: &Path) -> serde_json::Value {
    let program = std::fs::read_to_string(e2e::repo_root().join("tests/py/expected_versions.py"))
        .expect("the comparison script");
    let mut args = vec![archive.to_str().unwrap().to_string()];
    args.extend(fixture_dirs());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    serde_json::from_str(run_python(&program, &args).trim()).expect("JSON from the script")
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    files
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The docs examples hold change notifications whose message content is encrypted; they
/// cannot be archived, must be named, and make the exit code say "partial failure".
fn assert_notifications_reported(output: &Output) {
    let all = text(output);
    assert_eq!(output.status.code(), Some(3), "exit code\n{all}");
    for file in [
        "concept-teams-changenotifications-chatmessage-12.json",
        "concept-teams-changenotifications-chatmessage-14.json",
    ] {
        assert!(all.contains(file), "{file} is named\n{all}");
    }
    assert!(all.contains("change notification"), "{all}");
}

#[test]
fn every_docs_example_is_archived_once_and_duckdb_reads_it() {
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("archive");
    let first = ingest(archive.to_str().unwrap(), &[]);
    assert_notifications_reported(&first);

    let report = compare_with_inputs(&archive);
    for table in ["chat_messages", "mail_messages"] {
        let t = &report[table];
        assert_eq!(t["missing"], serde_json::json!([]), "{table}: {t}");
        assert_eq!(t["extra"], serde_json::json!([]), "{table}: {t}");
        assert_eq!(
            t["rows"], t["distinct"],
            "{table}: a version stored twice: {t}"
        );
        assert_eq!(t["rows"], t["expected"], "{table}: {t}");
    }
    // The docs repeat some examples verbatim (stored once) and show different payloads
    // under one id and lastModifiedDateTime (each kept).
    assert_eq!(report["chat_messages"]["rows"], 128, "{report}");
    assert_eq!(report["mail_messages"]["rows"], 15, "{report}");

    // Types DuckDB sees: date is a hive partition, timestamps are UTC instants.
    let types = e2e::duckdb_query(&format!(
        "SELECT typeof(date), typeof(created_date_time), typeof(last_modified_date_time) \
         FROM read_parquet('{}/chat_messages/*/*.parquet', hive_partitioning=true) LIMIT 1",
        archive.display()
    ));
    assert_eq!(
        types[0],
        serde_json::json!([
            "DATE",
            "TIMESTAMP WITH TIME ZONE",
            "TIMESTAMP WITH TIME ZONE"
        ])
    );

    // The docs' malformed timestamp keeps its row, with the problem recorded.
    let malformed = e2e::duckdb_query(&format!(
        "SELECT count(*) FROM read_parquet('{}/mail_messages/*/*.parquet', hive_partitioning=true) \
         WHERE len(parse_errors) > 0",
        archive.display()
    ));
    assert!(malformed[0][0].as_i64().unwrap() >= 1, "{malformed:?}");

    // A second ingest of the same inputs stores nothing new and writes no file.
    let files_before = parquet_files(&archive);
    let second = ingest(archive.to_str().unwrap(), &[]);
    assert_notifications_reported(&second);
    assert!(
        text(&second).contains(" 0 new versions stored"),
        "{}",
        text(&second)
    );
    assert_eq!(parquet_files(&archive), files_before);
    let again = compare_with_inputs(&archive);
    assert_eq!(again["chat_messages"]["rows"], 128);
}

#[test]
fn ingest_writes_to_s3_and_an_object_lock_bucket_takes_a_rerun() {
    for object_lock in [false, true] {
        let bucket = e2e::create_bucket("ingest", object_lock);
        let url = format!("s3://{bucket}/archive");
        let env = e2e::s3_env();
        let first = ingest(&url, &env);
        assert_notifications_reported(&first);
        // Nothing may be overwritten or deleted: on a locked bucket either would fail.
        let second = ingest(&url, &env);
        assert_notifications_reported(&second);
        assert!(
            text(&second).contains(" 0 new versions stored"),
            "{}",
            text(&second)
        );

        let local = tempfile::tempdir().unwrap();
        e2e::download_bucket(&bucket, "archive", local.path());
        let report = compare_with_inputs(local.path());
        assert_eq!(report["chat_messages"]["rows"], 128, "{report}");
        assert_eq!(report["chat_messages"]["missing"], serde_json::json!([]));
        assert_eq!(report["mail_messages"]["rows"], 15, "{report}");
        assert!(
            local.path().join("_archive/runs").is_dir(),
            "run summaries are written next to the data"
        );
    }
}

#[test]
fn a_file_that_is_not_json_is_named_and_the_rest_is_archived() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.json"), "{\"value\": [").unwrap();
    std::fs::copy(
        graph_docs_fixtures().join("v1.0/chatmessage-get-1.json"),
        dir.path().join("good.json"),
    )
    .unwrap();
    let archive = dir.path().join("archive");
    let output = archiver()
        .args(["ingest", "--out", archive.to_str().unwrap()])
        .arg(dir.path().join("broken.json"))
        .arg(dir.path().join("good.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("broken.json"), "{}", text(&output));
    assert!(
        text(&output).contains("1 new versions stored"),
        "{}",
        text(&output)
    );
}

#[test]
fn help_teaches_and_bad_flags_are_usage_errors() {
    let help = archiver().args(["ingest", "--help"]).output().unwrap();
    assert_success("ingest --help", &help);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Example"), "{help}");
    let bad = archiver()
        .args(["ingest", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
