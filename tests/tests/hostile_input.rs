//! The binary against input and archives made to hurt it: dates outside the years a
//! timestamp holds, lines too long to hold, damaged files and records, a closed stdout,
//! plain-HTTP endpoints. Nothing stops the archive, nothing panics, every problem is
//! named and the exit code says so.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use e2e::output_text;
use e2e::parquet_files::{all_files, rows};

fn archiver() -> Command {
    e2e::quiet_archiver(env!("CARGO_BIN_EXE_archiver"))
}

fn ingest(out: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    archiver()
        .arg("ingest")
        .arg("--out")
        .arg(out)
        .args(extra)
        .args(inputs)
        .output()
        .expect("the archiver starts")
}

fn message(id: &str, created: &str, modified: &str) -> serde_json::Value {
    serde_json::json!({
        "@odata.type": "#microsoft.graph.chatMessage",
        "id": id,
        "chatId": "19:c@thread.v2",
        "messageType": "message",
        "createdDateTime": created,
        "lastModifiedDateTime": modified,
        "body": {"contentType": "text", "content": format!("message {id}")},
        "from": {"user": {"id": "u1", "displayName": "Ada"}},
    })
}

/// Each chat message's id and its `parse_errors`, as text.
fn parse_errors(archive: &Path) -> std::collections::BTreeMap<String, String> {
    use arrow::array::AsArray;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut found = std::collections::BTreeMap::new();
    for file in e2e::parquet_files::table_files(archive, "chat_messages") {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch.column_by_name("id").unwrap().as_string::<i32>();
            let errors = batch.column_by_name("parse_errors").unwrap();
            let shown =
                ArrayFormatter::try_new(errors.as_ref(), &FormatOptions::default()).unwrap();
            for row in 0..batch.num_rows() {
                found.insert(ids.value(row).to_string(), shown.value(row).to_string());
            }
        }
    }
    found
}

fn no_panic(output: &Output) {
    let all = output_text(output);
    assert_ne!(output.status.code(), Some(101), "{all}");
    assert!(!all.contains("panicked"), "{all}");
}

/// `9999-12-31T23:59:59-01:00` is valid RFC 3339 but falls in year 10000 in UTC: the
/// row is kept, its partition taken from `lastModifiedDateTime`, the problem named in
/// `parse_errors`, and the rest of the input archived.
#[test]
fn dates_outside_years_1_to_9999_keep_their_row_and_stop_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.json");
    let items = serde_json::json!({"value": [
        message("1", "9999-12-31T23:59:59-01:00", "2024-05-02T10:00:00Z"),
        message("2", "0000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z"),
        message("3", "2024-05-01T09:00:00Z", "2024-05-01T09:00:00Z"),
    ]});
    std::fs::write(&page, items.to_string()).unwrap();
    let out = dir.path().join("archive");
    let output = ingest(&out, &[&page], &[]);
    no_panic(&output);
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));

    let found = parse_errors(&out);
    assert_eq!(found.len(), 3, "{found:?}");
    for id in ["1", "2"] {
        let errors = &found[id];
        assert!(errors.contains("createdDateTime"), "{id}: {errors}");
    }
    let files = all_files(&out);
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("chat_messages/date=2024-05-02/")),
        "message 1 is filed under its lastModifiedDateTime: {files:?}"
    );
}

/// What is read whole is capped by `--max-line-mib`: a longer JSONL line is named (file
/// and line) and skipped without being held in memory, and so is a larger page file; the
/// other items are archived and the run exits 3.
#[test]
fn a_jsonl_line_or_a_page_file_past_the_cap_is_named_and_the_rest_archived() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let at = "2024-05-01T09:00:00Z";
    let padded = |id: &str| {
        let mut item = message(id, at, at);
        item["padding"] = "x".repeat(3 * 1024 * 1024).into();
        item
    };
    let mut lines = std::fs::File::create(inputs.join("items.jsonl")).unwrap();
    for line in [message("1", at, at), padded("2"), message("3", at, at)] {
        writeln!(lines, "{line}").unwrap();
    }
    drop(lines);
    let page = |item: serde_json::Value| serde_json::json!({ "value": [item] }).to_string();
    std::fs::write(inputs.join("large.json"), page(padded("4"))).unwrap();
    std::fs::write(inputs.join("small.json"), page(message("5", at, at))).unwrap();

    let out = dir.path().join("archive");
    let output = ingest(&out, &[&inputs], &["--max-line-mib", "1"]);
    no_panic(&output);
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(
        all.contains("items.jsonl item 2") && all.contains("more than the 1 MiB a line may hold"),
        "{all}"
    );
    assert!(
        all.contains("large.json") && all.contains("more than the 1 MiB a file read whole"),
        "{all}"
    );
    let mut ids: Vec<_> = rows(&out, "chat_messages", &["id"])
        .into_iter()
        .map(|r| r["id"].clone().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["1", "3", "5"]);
}

fn small_archive(out: &Path) {
    let dir = out.parent().unwrap();
    let page = dir.join("seed.json");
    let items = serde_json::json!({"value": [
        message("1", "2024-05-01T09:00:00Z", "2024-05-01T09:00:00Z"),
        message("2", "2024-05-02T09:00:00Z", "2024-05-02T09:00:00Z"),
    ]});
    std::fs::write(&page, items.to_string()).unwrap();
    let output = ingest(out, &[&page], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
}

/// `verify` exits 4 whenever it reports a problem, also for a file no record lists.
#[test]
fn verify_exits_4_on_every_problem_it_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    small_archive(&out);
    let verify = || {
        archiver()
            .args(["verify", "--archive"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let clean = verify();
    assert_eq!(clean.status.code(), Some(0), "{}", output_text(&clean));

    let file = all_files(&out)[0].clone();
    let copy = out.join(file.replace("part-", "part-copy-"));
    std::fs::copy(out.join(&file), &copy).unwrap();
    let extra = verify();
    assert!(
        output_text(&extra).contains("extra file"),
        "{}",
        output_text(&extra)
    );
    assert_eq!(extra.status.code(), Some(4), "{}", output_text(&extra));
}

/// Flags missing or malformed are usage errors (exit 2); a folder that is not an archive
/// is refused (exit 1) and the export folder is not made.
#[test]
fn bad_arguments_exit_2_and_a_non_archive_is_refused_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let not_archive = dir.path().join("not-archive");
    std::fs::create_dir(&not_archive).unwrap();
    std::fs::write(not_archive.join("notes.txt"), "hello").unwrap();
    let out = dir.path().join("export");
    let run = |args: &[&str]| {
        let output = archiver().args(args).output().unwrap();
        no_panic(&output);
        (output.status.code(), output_text(&output))
    };
    let (code, all) = run(&["verify"]);
    assert_eq!(code, Some(2), "{all}");
    let export = [
        "export",
        "--archive",
        not_archive.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "jsonl",
    ];
    let (code, all) = run(&[&export[..], &["--from", "May"]].concat());
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("--from"), "{all}");
    let (code, all) = run(&export);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("is not an archive"), "{all}");
    assert!(
        !all.contains('\u{1b}'),
        "no colour codes off a terminal: {all:?}"
    );
    assert!(!out.exists());
}

/// An object planted among the run summaries, too large to be a record, is named by
/// `verify` and `status` without being read.
#[test]
fn a_planted_record_too_large_to_be_one_is_named_unread() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    small_archive(&out);
    let planted = out.join("_archive/runs/zzzz.json");
    // Sparse: the size is what is checked, before any byte is read.
    let file = std::fs::File::create(&planted).unwrap();
    file.set_len(65 * 1024 * 1024).unwrap();
    drop(file);
    for command in ["verify", "status"] {
        let flag = if command == "verify" {
            "--archive"
        } else {
            "--out"
        };
        let output = archiver().args([command, flag]).arg(&out).output().unwrap();
        no_panic(&output);
        let all = output_text(&output);
        assert!(
            all.contains("zzzz.json") && all.contains("more than any record takes"),
            "{command}: {all}"
        );
        if command == "verify" {
            assert_eq!(output.status.code(), Some(4), "{all}");
        }
    }
}

/// A damaged Parquet file and an unreadable commit record: `verify` names both (exit 4),
/// `export` names the file and exports the rest, and the next `ingest` opens the
/// archive (the index rebuilt from it), warns, and archives its input.
#[test]
fn a_damaged_file_or_record_is_named_and_stops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    small_archive(&out);
    let file = all_files(&out)
        .into_iter()
        .find(|f| f.starts_with("chat_messages/"))
        .unwrap();
    // The footer's length, then its magic: parquet's metadata decoder meets garbage.
    let path = out.join(&file);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 200..n - 8] {
        *b = 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    let commits = out.join("_archive/commits");
    let record = std::fs::read_dir(&commits)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        &record,
        b"{\"format\": \"teams-archiver/commit/1\", \"files\": [",
    )
    .unwrap();

    let verify = archiver()
        .args(["verify", "--archive"])
        .arg(&out)
        .output()
        .unwrap();
    no_panic(&verify);
    let all = output_text(&verify);
    assert_eq!(verify.status.code(), Some(4), "{all}");
    assert!(all.contains(&file), "{all}");
    assert!(all.contains("_archive/commits/"), "{all}");

    let export = archiver()
        .args(["export", "--format", "jsonl", "--archive"])
        .arg(&out)
        .arg("--out")
        .arg(dir.path().join("export"))
        .output()
        .unwrap();
    no_panic(&export);
    assert!(
        output_text(&export).contains(&file),
        "{}",
        output_text(&export)
    );

    // A fresh state: the writer rebuilds its index from the damaged archive.
    let page = dir.path().join("more.json");
    std::fs::write(
        &page,
        serde_json::json!({"value": [message("9", "2024-06-01T09:00:00Z", "2024-06-01T09:00:00Z")]})
            .to_string(),
    )
    .unwrap();
    for _ in 0..2 {
        let state = tempfile::tempdir().unwrap();
        let output = ingest(&out, &[&page], &["--state", state.path().to_str().unwrap()]);
        no_panic(&output);
        let all = output_text(&output);
        assert_eq!(output.status.code(), Some(0), "{all}");
        assert!(all.contains("unreadable"), "the damage is named: {all}");
    }
}

/// A reader that stops early closes stdout: the command finishes its work and exits
/// with its own code, quietly.
#[test]
fn a_closed_stdout_ends_quietly_with_the_commands_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    small_archive(&out);
    for args in [
        vec!["schema"],
        vec!["verify", "--archive", out.to_str().unwrap()],
    ] {
        let mut child = archiver()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        no_panic(&output);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            output_text(&output)
        );
    }
}

/// `http://` Graph and login URLs are refused, unless `--allow-insecure-http` is given.
#[test]
fn plain_http_endpoints_are_refused_without_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = archiver()
        .args(["sync", "--tenant-id", "t", "--client-id", "c"])
        .args(["--graph-url", "http://127.0.0.1:9/"])
        .args(["--login-url", "https://127.0.0.1:9/"])
        .arg("--out")
        .arg(dir.path().join("archive"))
        .env("TEAMS_ARCHIVER_CLIENT_SECRET", "not-a-real-secret")
        .output()
        .unwrap();
    let all = output_text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains("not https") && all.contains("--allow-insecure-http"),
        "{all}"
    );
}

/// The state (checkpoints with Graph's delta links, the write-ahead record, the index)
/// is readable by its owner only; `--umask` sets what the archive's files get.
#[cfg(unix)]
#[test]
fn the_state_is_private_and_the_archive_follows_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.json");
    std::fs::write(
        &page,
        serde_json::json!({"value": [message("1", "2024-05-01T09:00:00Z", "2024-05-01T09:00:00Z")]})
            .to_string(),
    )
    .unwrap();
    let out = dir.path().join("archive");
    let output = archiver()
        .args(["--umask", "027", "ingest", "--out"])
        .arg(&out)
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out.join("_state")), 0o700);
    for path in e2e::files_under(&out.join("_state")) {
        assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
        // And the folders between: `_state/checkpoints` too.
        for folder in path.ancestors().skip(1).take_while(|f| *f != out.as_path()) {
            assert_eq!(mode(folder), 0o700, "{}", folder.display());
        }
    }
    for file in all_files(&out) {
        assert_eq!(mode(&out.join(&file)) & 0o027, 0, "{file}");
    }

    // `verify` never reads the state: one it could not list (another user's 0700 folder;
    // here a link loop, which stops root too) leaves it whole.
    std::os::unix::fs::symlink("loop", out.join("_state/loop")).unwrap();
    let verify = archiver()
        .args(["verify", "--archive"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", output_text(&verify));
}
