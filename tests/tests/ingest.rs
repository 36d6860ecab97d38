//! `teams-archiver ingest` end to end: Microsoft's own docs examples into an archive on
//! local disk and on S3 (moto), read back by DuckDB.

use std::path::Path;
use std::process::{Command, Output};

use e2e::parquet_files::all_files;
use e2e::{assert_success, graph_docs_fixtures, output_text, run_python};

fn archiver() -> Command {
    e2e::quiet_archiver(env!("CARGO_BIN_EXE_archiver"))
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

/// The docs examples hold change notifications whose message content is encrypted; they
/// cannot be archived, must be named, and make the exit code say "partial failure".
fn assert_notifications_reported(output: &Output) {
    let all = output_text(output);
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
    let files_before = all_files(&archive);
    let second = ingest(archive.to_str().unwrap(), &[]);
    assert_notifications_reported(&second);
    assert!(
        output_text(&second).contains(" 0 new versions stored"),
        "{}",
        output_text(&second)
    );
    assert_eq!(all_files(&archive), files_before);
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
            output_text(&second).contains(" 0 new versions stored"),
            "{}",
            output_text(&second)
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
    assert_eq!(output.status.code(), Some(3), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("broken.json"),
        "{}",
        output_text(&output)
    );
    assert!(
        output_text(&output).contains("1 new versions stored"),
        "{}",
        output_text(&output)
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

/// Days, pages and messages per page of [`write_pages_mixing_days`].
const DAYS: usize = 20;
const PAGES: usize = 40;
const PER_PAGE: usize = 50;

/// Saved pages of chat messages where every page mixes all [`DAYS`] days, 2,000 messages
/// of about 700 bytes in all, under `dir/pages`.
fn write_pages_mixing_days(dir: &Path) -> std::path::PathBuf {
    let pages = dir.join("pages");
    std::fs::create_dir(&pages).unwrap();
    let filler = "lorem ipsum ".repeat(60);
    for page in 0..PAGES {
        let items: Vec<serde_json::Value> = (0..PER_PAGE)
            .map(|i| {
                let n = page * PER_PAGE + i;
                let at = format!("2024-03-{:02}T10:00:00Z", 1 + n % DAYS);
                serde_json::json!({
                    "id": format!("{n}"),
                    "messageType": "message",
                    "chatId": "19:chat@unq.gbl.spaces",
                    "createdDateTime": at,
                    "lastModifiedDateTime": at,
                    "body": {"contentType": "text", "content": format!("{n} {filler}")},
                })
            })
            .collect();
        let page_json = serde_json::json!({ "value": items });
        std::fs::write(
            pages.join(format!("page-{page:03}.json")),
            page_json.to_string(),
        )
        .unwrap();
    }
    pages
}

/// Ingest of [`write_pages_mixing_days`] with a budget whose writer buffer holds about a
/// quarter of the days, so a run makes several commits and keeps days across them.
fn ingest_mixed_days(pages: &Path, archive: &Path) -> Command {
    let mut command = archiver();
    command
        .args(["ingest", "--kind", "chat", "--memory-budget-mib", "24"])
        .args(["--out", archive.to_str().unwrap()])
        .arg(pages);
    command
}

/// Pages that mix many days are sorted by day before they are archived, and a commit keeps
/// the day still arriving for the next, so each day is one file however many commits the
/// budget forces (in input order every commit would write to nearly every day); the
/// sorting folder is removed afterwards; every message is archived once.
#[test]
fn pages_mixing_days_are_archived_a_few_days_per_commit() {
    let dir = tempfile::tempdir().unwrap();
    let pages = write_pages_mixing_days(dir.path());
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let archive = dir.path().join("archive");
    let output = ingest_mixed_days(&pages, &archive)
        .args(["--spill-dir", spill.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success("ingest", &output);
    assert!(
        output_text(&output).contains(&format!("{} new versions stored", PAGES * PER_PAGE)),
        "{}",
        output_text(&output)
    );
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "the sorting folder is removed"
    );

    let summary = e2e::run_summaries(&archive).remove(0);
    let commits = summary.totals.commits as usize;
    let chat_files = e2e::parquet_files::table_files(&archive, "chat_messages");
    assert_eq!(
        summary.totals.tables["chat_messages"].files,
        chat_files.len() as u64
    );
    let days: std::collections::BTreeSet<_> =
        chat_files.iter().map(|f| f.parent().unwrap()).collect();
    assert_eq!(days.len(), DAYS);
    assert!(
        commits >= 3,
        "the budget forces several commits ({commits})"
    );
    assert_eq!(
        chat_files.len(),
        DAYS,
        "one file per day in {commits} commits"
    );
    let versions = e2e::tenant::version_counts(&archive, "chat_messages");
    assert_eq!(versions.len(), PAGES * PER_PAGE);
    assert!(versions.values().all(|n| *n == 1), "each message once");
}

/// An ingest SIGKILLed at any step of its commits, days kept buffered across them
/// included, then run again, leaves every message in the archive exactly once; the rerun
/// removes the sorting folder the killed run could not.
#[test]
fn an_ingest_killed_at_any_commit_step_and_rerun_stores_every_message_once() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let pages = write_pages_mixing_days(dir.path());
    let steps_of = |command: &mut Command| {
        command
            .args(["--log-format", "json"])
            .env("RUST_LOG", format!("warn,{}=debug", sink::PROTOCOL_TARGET));
    };
    let is_step = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .is_some_and(|v| v["target"] == sink::PROTOCOL_TARGET)
    };
    // The steps of a whole run, to spread the kills over them.
    let probe = dir.path().join("probe");
    let mut command = ingest_mixed_days(&pages, &probe);
    steps_of(&mut command);
    let output = command.output().unwrap();
    assert_success("ingest", &output);
    let steps = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| is_step(l))
        .count();
    assert!(
        steps > 20,
        "several commits of several files ({steps} steps)"
    );

    for kill_after in (1..steps).step_by(steps / 7) {
        let archive = dir.path().join(format!("archive-{kill_after}"));
        let spill = dir.path().join(format!("spill-{kill_after}"));
        std::fs::create_dir(&spill).unwrap();
        let spill_arg = ["--spill-dir", spill.to_str().unwrap()];
        let mut command = ingest_mixed_days(&pages, &archive);
        command.args(spill_arg);
        steps_of(&mut command);
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if is_step(&line) {
                seen += 1;
                if seen == kill_after {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(seen, kill_after, "killed at step {kill_after}");

        let killed_left = std::fs::read_dir(&spill).unwrap().count();
        assert_success(
            "the rerun",
            &ingest_mixed_days(&pages, &archive)
                .args(spill_arg)
                .output()
                .unwrap(),
        );
        // Killed near its end, a run may finish before the signal lands.
        if std::os::unix::process::ExitStatusExt::signal(&status).is_some() {
            assert_eq!(killed_left, 1, "a killed run leaves its sorting folder");
        }
        assert_eq!(
            std::fs::read_dir(&spill).unwrap().count(),
            0,
            "the rerun removes the killed run's sorting folder with its own"
        );
        let versions = e2e::tenant::version_counts(&archive, "chat_messages");
        assert_eq!(
            versions.len(),
            PAGES * PER_PAGE,
            "killed at step {kill_after}"
        );
        let twice = versions.values().filter(|n| **n > 1).count();
        assert_eq!(twice, 0, "killed at step {kill_after}: stored twice");
    }
}

#[test]
fn a_sorting_folder_that_cannot_be_used_is_a_fatal_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder");
    let output = archiver()
        .args(["ingest", "--spill-dir", missing.to_str().unwrap()])
        .args(["--out", dir.path().join("archive").to_str().unwrap()])
        .arg(graph_docs_fixtures().join("v1.0/chatmessage-get-1.json"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(
        output_text(&output).contains("--spill-dir"),
        "{}",
        output_text(&output)
    );
}

/// A JSONL file streams line by line: good lines are archived, and a line that is not
/// JSON or not UTF-8 is named by its number without stopping the rest.
#[test]
fn jsonl_lines_stream_and_bad_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let message = |id: &str| {
        serde_json::json!({
            "id": id,
            "messageType": "message",
            "chatId": "19:chat@unq.gbl.spaces",
            "createdDateTime": "2024-03-01T10:00:00Z",
            "lastModifiedDateTime": "2024-03-01T10:00:00Z",
            "body": {"contentType": "text", "content": format!("message {id}")},
        })
        .to_string()
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(format!("{}\r\n\n", message("1")).as_bytes());
    bytes.extend_from_slice(b"not json\n");
    bytes.extend_from_slice(b"{\"id\": \"\xff\xfe\"}\n");
    bytes.extend_from_slice(message("2").as_bytes()); // the last line has no newline
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, bytes).unwrap();
    let output = archiver()
        .args(["ingest", "--kind", "chat", "--out"])
        .arg(dir.path().join("archive"))
        .arg(&file)
        .output()
        .unwrap();
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(all.contains("2 new versions stored"), "{all}");
    assert!(all.contains("not valid JSON (line 3)"), "{all}");
    assert!(all.contains("line 4 is not UTF-8"), "{all}");
}
