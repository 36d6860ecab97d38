//! What messages point to, captured by the real binary from the simulator: inline images,
//! SharePoint files shared by several messages, and mail attachments are stored once by
//! SHA-256 and recorded beside their message versions; content Graph no longer has or
//! refuses is recorded as unavailable and the run still exits 0; what was stored stays
//! when Graph deletes it; and a run killed at any step of it loses no reference and
//! stores no blob twice.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use archive::records::RunSummary;
use e2e::parquet_files::rows;
use e2e::tenant::Tenant;
use e2e::{output_text, run_summaries};
use graph_sim::{
    AttachmentKind, ContentKind, NewAttachment, NewContent, NewFile, NewImage, SimConfig,
};
use sha2::{Digest, Sha256};

const ARCHIVER: &str = env!("CARGO_BIN_EXE_archiver");

fn sync(tenant: &Tenant, out: &Path) -> Command {
    let mut command = tenant.sync_every_source(ARCHIVER, out.to_str().unwrap());
    command.args(["--content", "all"]);
    command
}

/// `verify` of the archive at `archive` (a folder or a URL).
fn verify_command(archive: &str) -> Command {
    let mut command = Command::new(ARCHIVER);
    command.args(["--no-progress", "verify", "--archive", archive]);
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("the archiver starts")
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", output_text(output));
}

/// Every blob of the archive: name -> SHA-256 of its bytes.
fn blobs(out: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let root = out.join(archive::layout::BLOBS_DIR);
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return found;
    };
    for prefix in prefixes {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let path = blob.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            found.insert(name, digest);
        }
    }
    found
}

type Row = BTreeMap<String, Option<String>>;

fn content_rows(out: &Path) -> Vec<Row> {
    rows(
        out,
        "message_contents",
        &[
            "message_id",
            "message_content_sha256",
            "kind",
            "reference",
            "graph_id",
            "name",
            "blob_sha256",
            "status",
            "content_sha256",
        ],
    )
}

fn value<'a>(row: &'a Row, column: &str) -> Option<&'a str> {
    row.get(column).and_then(|v| v.as_deref())
}

fn last_summary(out: &Path) -> RunSummary {
    run_summaries(out).pop().expect("a run summary")
}

/// A small tenant with two users in a chat and a team, and no content of its own.
fn tenant() -> Tenant {
    Tenant::start(SimConfig {
        users: 3,
        messages_per_user: 2,
        teams: 1,
        channels_per_team: 1,
        messages_per_channel: 2,
        max_replies_per_message: 1,
        mail_per_user: 1,
        ..SimConfig::small()
    })
}

/// A chat of the tenant, a member of it, and a user with a mailbox and its inbox.
struct Places {
    chat_id: String,
    member: String,
    mail_user: String,
    inbox: String,
}

fn places(tenant: &Tenant) -> Places {
    let snapshot = tenant.sim.snapshot();
    let (chat_id, member) = e2e::tenant::a_chat_and_its_member(&snapshot);
    let mail = snapshot.mail.first().expect("the tenant has mail");
    Places {
        chat_id,
        member,
        mail_user: mail.user_id.clone(),
        inbox: mail.folder_id.clone(),
    }
}

fn image() -> NewContent {
    NewContent {
        images: vec![NewImage { size: Some(3000) }],
        files: vec![],
    }
}

#[test]
fn images_files_and_attachments_are_stored_once_and_outlive_their_deletion_in_graph() {
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    let with_image = sim
        .add_chat_message_with(&at.chat_id, &at.member, "<p>screenshot</p>", &image())
        .unwrap();
    let first_file = sim
        .add_chat_message_with(
            &at.chat_id,
            &at.member,
            "<p>the budget</p>",
            &NewContent {
                images: vec![],
                files: vec![NewFile {
                    name: Some("Budget.xlsx".into()),
                    size: Some(20_000),
                    drive_item_id: None,
                }],
            },
        )
        .unwrap();
    let file = sim
        .content()
        .into_iter()
        .find(|p| p.kind == ContentKind::DriveItem)
        .expect("the shared file");
    for text in ["<p>again</p>", "<p>and again</p>"] {
        sim.add_chat_message_with(
            &at.chat_id,
            &at.member,
            text,
            &NewContent {
                images: vec![],
                files: vec![NewFile {
                    name: None,
                    size: None,
                    drive_item_id: Some(file.id.clone()),
                }],
            },
        )
        .unwrap();
    }
    let attachment = |kind, name: &str| NewAttachment {
        kind,
        name: name.into(),
        size: Some(5_000),
        content_type: None,
        is_inline: false,
    };
    sim.add_mail_with(
        &at.mail_user,
        &at.inbox,
        "contract",
        "<p>see attached</p>",
        &[
            attachment(AttachmentKind::File, "contract.pdf"),
            attachment(AttachmentKind::Item, "forwarded.eml"),
            attachment(AttachmentKind::Reference, "link.docx"),
        ],
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let first = run(sync(&tenant, out));
    assert_exit(&first, 0);

    let truth = sim.content();
    let rows = content_rows(out);
    let stored = blobs(out);
    for (name, digest) in &stored {
        assert_eq!(name, digest, "a blob's bytes hash to its name");
    }
    // The image, by its hosted content id.
    let image_piece = truth
        .iter()
        .find(|p| {
            p.kind == ContentKind::HostedContent
                && p.messages.iter().any(|m| m.id == with_image.message.id)
        })
        .expect("the image in the truth");
    let image_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| value(r, "message_id") == Some(with_image.message.id.as_str()))
        .collect();
    assert_eq!(image_rows.len(), 1, "{image_rows:?}");
    assert_eq!(value(image_rows[0], "kind"), Some("hosted_content"));
    assert_eq!(value(image_rows[0], "status"), Some("ok"));
    assert_eq!(
        value(image_rows[0], "blob_sha256"),
        image_piece.sha256.as_deref()
    );
    // The file, three messages, one blob.
    let file_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| value(r, "kind") == Some("file"))
        .collect();
    assert_eq!(file_rows.len(), 3, "{file_rows:?}");
    assert!(
        file_rows
            .iter()
            .all(|r| value(r, "blob_sha256") == file.sha256.as_deref())
    );
    assert!(
        file_rows
            .iter()
            .any(|r| value(r, "message_id") == Some(first_file.message.id.as_str()))
    );
    assert_eq!(
        stored
            .keys()
            .filter(|k| Some(k.as_str()) == file.sha256.as_deref())
            .count(),
        1
    );
    // Mail: a file and an item stored, a reference kept as a link.
    for (kind, status) in [
        ("mail_file_attachment", "ok"),
        ("mail_item_attachment", "ok"),
        ("mail_reference_attachment", "reference"),
    ] {
        let row = rows
            .iter()
            .find(|r| value(r, "kind") == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} row in {rows:?}"));
        assert_eq!(value(row, "status"), Some(status), "{row:?}");
        let piece = truth
            .iter()
            .find(|p| Some(p.id.as_str()) == value(row, "graph_id"))
            .unwrap();
        if status == "ok" {
            assert_eq!(value(row, "blob_sha256"), piece.sha256.as_deref());
        }
    }
    // Every ok row's blob is there, and no blob is stored that no row names.
    let named: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| value(r, "blob_sha256"))
        .collect();
    assert_eq!(named, stored.keys().map(String::as_str).collect());
    let summary = last_summary(out);
    assert_eq!(summary.content.blobs_created as usize, stored.len());
    assert_eq!(
        sim.stats().downloads_with_authorization,
        0,
        "the token went to a download URL"
    );
    assert!(sim.stats().downloads > 0);

    // Graph deletes the image and the file; a new message's image is gone before the
    // next run reads it, and another's is forbidden.
    sim.delete_content(&image_piece.id).unwrap();
    sim.delete_content(&file.id).unwrap();
    let gone = sim
        .add_chat_message_with(&at.chat_id, &at.member, "<p>gone</p>", &image())
        .unwrap();
    let refused = sim
        .add_chat_message_with(&at.chat_id, &at.member, "<p>refused</p>", &image())
        .unwrap();
    for (message, forbid) in [(&gone, false), (&refused, true)] {
        let piece = sim
            .content()
            .into_iter()
            .find(|p| p.messages.iter().any(|m| m.id == message.message.id))
            .unwrap();
        if forbid {
            sim.forbid_content(&piece.id, true).unwrap();
        } else {
            sim.delete_content(&piece.id).unwrap();
        }
    }
    let second = run(sync(&tenant, out));
    assert_exit(&second, 0);
    let summary = last_summary(out);
    let pieces = &summary.content.pieces;
    assert_eq!(
        pieces.get(&transform::ContentStatus::NotFound),
        Some(&1),
        "{pieces:?}"
    );
    assert_eq!(
        pieces.get(&transform::ContentStatus::Forbidden),
        Some(&1),
        "{pieces:?}"
    );
    let rows = content_rows(out);
    for (message, status) in [(&gone, "not_found"), (&refused, "forbidden")] {
        let row = rows
            .iter()
            .find(|r| value(r, "message_id") == Some(message.message.id.as_str()))
            .unwrap();
        assert_eq!(value(row, "status"), Some(status));
        assert_eq!(value(row, "blob_sha256"), None);
    }
    // What was stored before Graph deleted it is still there, unaltered.
    let after = blobs(out);
    assert_eq!(
        after.get(image_piece.sha256.as_deref().unwrap()),
        image_piece.sha256.as_ref()
    );
    assert_eq!(
        after.get(file.sha256.as_deref().unwrap()),
        file.sha256.as_ref()
    );
    let verify = run(verify_command(out.to_str().unwrap()));
    assert_exit(&verify, 0);
    assert!(
        output_text(&verify).contains("blobs"),
        "{}",
        output_text(&verify)
    );
}

#[test]
fn verify_names_an_altered_blob_and_a_missing_one() {
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    for _ in 0..2 {
        sim.add_chat_message_with(&at.chat_id, &at.member, "<p>img</p>", &image())
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    assert_exit(&run(sync(&tenant, out)), 0);
    let stored: Vec<String> = blobs(out).into_keys().collect();
    assert_eq!(stored.len(), 2);
    let path = |sha: &str| out.join(archive::layout::blob_key(sha).unwrap());
    std::fs::write(path(&stored[0]), b"not the image").unwrap();
    std::fs::remove_file(path(&stored[1])).unwrap();
    let verify = run(verify_command(out.to_str().unwrap()));
    assert_exit(&verify, 4);
    let text = output_text(&verify);
    for (problem, sha) in [("altered", &stored[0]), ("missing", &stored[1])] {
        let line = format!("{problem} file: blobs/sha256/{}/{sha}", &sha[..2]);
        assert!(text.contains(&line), "{text}");
    }
}

#[test]
fn content_over_the_cap_is_recorded_too_large_and_a_large_attachment_streams() {
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    // 256 MiB in the suite; TEAMS_ARCHIVER_TEST_LARGE_MIB=1024 tries a gigabyte.
    let mib: u64 = std::env::var("TEAMS_ARCHIVER_TEST_LARGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let big = mib * 1024 * 1024;
    sim.add_mail_with(
        &at.mail_user,
        &at.inbox,
        "big",
        "<p>big</p>",
        &[NewAttachment {
            kind: AttachmentKind::File,
            name: "big.bin".into(),
            size: Some(big),
            content_type: None,
            is_inline: false,
        }],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let capped = dir.path().join("capped");
    let mut command = sync(&tenant, &capped);
    command.args(["--content-max-mib", "16"]);
    assert_exit(&run(command), 0);
    let rows = content_rows(&capped);
    let row = rows
        .iter()
        .find(|r| value(r, "name") == Some("big.bin"))
        .unwrap();
    assert_eq!(value(row, "status"), Some("too_large"), "{row:?}");
    assert!(blobs(&capped).is_empty());
    let baseline = last_summary(&capped)
        .peak_rss_bytes
        .expect("the run records its peak memory");

    let whole = dir.path().join("whole");
    let mut command = sync(&tenant, &whole);
    command.args([
        "--memory-budget-mib",
        "16",
        "--content-max-mib",
        &(mib + 1).to_string(),
    ]);
    assert_exit(&run(command), 0);
    let piece = sim
        .content()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("big.bin"))
        .unwrap();
    let stored = blobs(&whole);
    assert!(stored.contains_key(piece.sha256.as_deref().unwrap()));
    let summary = last_summary(&whole);
    let peak = summary
        .peak_rss_bytes
        .expect("the run records its peak memory");
    assert!(
        peak < baseline + 48 * 1024 * 1024,
        "a {big}-byte attachment raised the peak from {baseline} to {peak} bytes: it was held in memory"
    );
}

/// A content step of a run, from its JSON log.
fn content_step(line: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    value.get("target").and_then(|t| t.as_str()) == Some(pipeline::content::CONTENT_TARGET)
}

/// Starts a sync and SIGKILLs it right after its `n`th content step; false if the run
/// ended first.
fn kill_after_content_step(tenant: &Tenant, out: &Path, n: usize) -> bool {
    let mut command = sync(tenant, out);
    command
        .args([
            "--log-format",
            "json",
            "--memory-budget-mib",
            "1",
            "--commit-interval",
            "1",
        ])
        .env(
            "RUST_LOG",
            format!("warn,{}=debug", pipeline::content::CONTENT_TARGET),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the archiver starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = 0;
    for line in stderr.lines() {
        if content_step(&line.unwrap()) {
            seen += 1;
            if seen == n {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                return true;
            }
        }
    }
    child.wait().unwrap();
    false
}

#[test]
fn killed_at_any_content_step_a_rerun_loses_no_reference_and_stores_no_blob_twice() {
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    for i in 0..4 {
        let files = if i % 2 == 0 {
            vec![NewFile {
                name: Some(format!("f{i}.txt")),
                size: Some(4000),
                drive_item_id: None,
            }]
        } else {
            vec![]
        };
        sim.add_chat_message_with(
            &at.chat_id,
            &at.member,
            "<p>x</p>",
            &NewContent {
                images: vec![NewImage { size: Some(2000) }],
                files,
            },
        )
        .unwrap();
    }
    // 4 images and 2 files: 6 pieces, 3 steps each (downloaded, stored, recorded).
    let steps = 18;
    for n in 1..=steps {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let killed = kill_after_content_step(&tenant, out, n);
        assert!(killed, "the run ended before content step {n}");
        assert_exit(&run(sync(&tenant, out)), 0);
        let rows = content_rows(out);
        let mut per_piece: BTreeMap<(String, String), usize> = BTreeMap::new();
        for row in &rows {
            let key = (
                value(row, "message_content_sha256").unwrap().to_string(),
                value(row, "reference").unwrap().to_string(),
            );
            *per_piece.entry(key).or_default() += 1;
        }
        assert_eq!(
            per_piece.len(),
            6,
            "killed at step {n} ({killed}): {rows:?}"
        );
        assert!(
            per_piece.values().all(|&k| k == 1),
            "killed at step {n}: a piece twice: {per_piece:?}"
        );
        assert!(rows.iter().all(|r| value(r, "status") == Some("ok")));
        let stored = blobs(out);
        let named: BTreeSet<&str> = rows
            .iter()
            .filter_map(|r| value(r, "blob_sha256"))
            .collect();
        assert_eq!(
            named,
            stored.keys().map(String::as_str).collect(),
            "killed at step {n}"
        );
        for (name, digest) in &stored {
            assert_eq!(
                name, digest,
                "killed at step {n}: a blob holds other bytes than its name"
            );
        }
        // The rerun stored only what the killed run had not: together each blob once.
        let created: u64 = run_summaries(out)
            .iter()
            .map(|s| s.content.blobs_created)
            .sum();
        assert!(
            created as usize <= stored.len(),
            "killed at step {n}: {created} created, {} stored",
            stored.len()
        );
    }
}

/// Content Graph fails to serve (503 past the retries) stops its scope, exit 3, with the
/// checkpoint where it was: the next run reads the page again and stores it. A piece that
/// keeps failing is retried for `CONTENT_RUNS_RETRIED` runs, then recorded `failed` and
/// named, so its scope moves on. Content Graph refuses for good (400) is recorded
/// `failed` at once, named, and the run exits 3.
#[test]
fn content_graph_fails_to_serve_is_retried_by_the_next_runs_then_named_as_failed() {
    use graph_sim::{EndpointKind, Fault, FaultPlan, FaultRule, Target};
    use pipeline::content::CONTENT_RUNS_RETRIED;
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    let failing = |status| {
        FaultPlan::none().with(
            FaultRule::every(Fault::Status { status }, 1)
                .on(Target::Endpoint(EndpointKind::HostedContentValue)),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let sync_chats = || {
        let mut command = tenant.sync(ARCHIVER, out.to_str().unwrap());
        command.args(["--source", "chats", "--max-retries", "1"]);
        run(command)
    };
    let with_status = |status: &str| {
        content_rows(&out)
            .into_iter()
            .filter(|r| value(r, "status") == Some(status))
            .count()
    };

    // An outage: the next run fetches what it missed.
    sim.add_chat_message_with(&at.chat_id, &at.member, "<p>img</p>", &image())
        .unwrap();
    sim.set_faults(failing(503));
    assert_exit(&sync_chats(), 3);
    assert!(blobs(&out).is_empty());
    assert!(content_rows(&out).is_empty(), "{:?}", content_rows(&out));
    sim.set_faults(FaultPlan::none());
    assert_exit(&sync_chats(), 0);
    assert_eq!((with_status("ok"), with_status("failed")), (1, 0));
    assert_eq!(blobs(&out).len(), 1);

    // A piece that is never served: retried, then recorded, and the scope moves on.
    sim.add_chat_message_with(&at.chat_id, &at.member, "<p>never</p>", &image())
        .unwrap();
    sim.set_faults(failing(503));
    for run in 1..=CONTENT_RUNS_RETRIED {
        assert_exit(&sync_chats(), 3);
        let recorded = with_status("failed");
        assert_eq!(
            recorded,
            usize::from(run == CONTENT_RUNS_RETRIED),
            "run {run}"
        );
    }
    let summary = last_summary(&out);
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.starts_with("content not stored:")
                && e.contains(&format!("in {CONTENT_RUNS_RETRIED} runs in a row"))),
        "{:?}",
        summary.errors
    );
    assert_exit(&sync_chats(), 0);

    // A refusal: recorded at once.
    sim.add_chat_message_with(&at.chat_id, &at.member, "<p>again</p>", &image())
        .unwrap();
    sim.set_faults(failing(400));
    assert_exit(&sync_chats(), 3);
    assert_eq!(with_status("failed"), 2);
    let summary = last_summary(&out);
    assert!(
        summary
            .errors
            .iter()
            .any(|e| e.starts_with("content not stored:") && e.contains("400")),
        "{:?}",
        summary.errors
    );
}

/// A blob is part of the archive: its mode follows the umask, as the table files' do.
#[test]
fn a_blob_follows_the_umask_like_the_table_files() {
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    sim.add_chat_message_with(&at.chat_id, &at.member, "<p>img</p>", &image())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("archive");
    let mut command = tenant.sync(ARCHIVER, out.to_str().unwrap());
    command.args(["--source", "chats", "--umask", "027"]);
    assert_exit(&run(command), 0);
    let mode = |path: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
            & 0o777
    };
    let stored = blobs(&out);
    let blob = out.join(archive::layout::blob_key(stored.keys().next().unwrap()).unwrap());
    let table_file = &e2e::parquet_files::table_files(&out, "message_contents")[0];
    assert_eq!(mode(&blob), 0o640);
    assert_eq!(mode(table_file), 0o640);
}

#[test]
fn on_s3_under_throttling_and_cut_bodies_every_piece_is_stored_once_and_never_overwritten() {
    use graph_sim::{EndpointKind, Fault, FaultPlan, FaultRule, RetryAfter, Target};
    let tenant = tenant();
    let sim = tenant.sim.handle();
    let at = places(&tenant);
    for i in 0..3 {
        sim.add_chat_message_with(
            &at.chat_id,
            &at.member,
            "<p>x</p>",
            &NewContent {
                images: vec![NewImage { size: Some(2000) }],
                // The first file is larger than a multipart upload's part.
                files: vec![NewFile {
                    name: (i == 0).then(|| "large.bin".to_string()),
                    size: (i == 0).then_some(12 * 1024 * 1024),
                    drive_item_id: None,
                }],
            },
        )
        .unwrap();
    }
    let every =
        |fault: Fault, kind: EndpointKind| FaultRule::every(fault, 2).on(Target::Endpoint(kind));
    sim.set_faults(
        FaultPlan::none()
            .with(every(
                Fault::TruncatedBody,
                EndpointKind::HostedContentValue,
            ))
            .with(every(
                Fault::TooManyRequests {
                    retry_after: RetryAfter::Seconds(0),
                },
                EndpointKind::DriveItem,
            ))
            .with(every(Fault::TruncatedBody, EndpointKind::Download)),
    );
    let env = e2e::s3_env();
    let bucket = e2e::create_bucket("content", true);
    let url = format!("s3://{bucket}/archive");
    let mut command = tenant.sync(ARCHIVER, &url);
    command
        .args(["--source", "chats", "--content", "all"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let output = run(command);
    assert_exit(&output, 0);
    let local = tempfile::tempdir().unwrap();
    e2e::download_bucket(&bucket, "archive", local.path());
    let rows = content_rows(local.path());
    assert!(!rows.is_empty());
    let first = last_summary(local.path());
    let retries = first.graph.as_ref().map_or(0, |g| g.retries);
    assert!(retries >= 3, "the faults were not met: {retries} retries");
    assert!(
        rows.iter().all(|r| value(r, "status") == Some("ok")),
        "{rows:?}"
    );
    let stored = blobs(local.path());
    for (name, digest) in &stored {
        assert_eq!(name, digest);
    }
    let named: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| value(r, "blob_sha256"))
        .collect();
    assert_eq!(named, stored.keys().map(String::as_str).collect());
    // The bucket keeps every version: verify would name a blob written twice.
    let mut verify_s3 = verify_command(&url);
    verify_s3.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let verified = run(verify_s3);
    assert_exit(&verified, 0);
    // A new message shares the large file again: the next run fetches it and finds it
    // stored, and writes nothing over it.
    let large = sim
        .content()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("large.bin"))
        .unwrap();
    sim.add_chat_message_with(
        &at.chat_id,
        &at.member,
        "<p>again</p>",
        &NewContent {
            images: vec![],
            files: vec![NewFile {
                name: None,
                size: None,
                drive_item_id: Some(large.id.clone()),
            }],
        },
    )
    .unwrap();
    let mut again = tenant.sync(ARCHIVER, &url);
    again
        .args(["--source", "chats", "--content", "all"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    assert_exit(&run(again), 0);
    let mut verify_s3 = verify_command(&url);
    verify_s3.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    assert_exit(&run(verify_s3), 0);
    let local = tempfile::tempdir().unwrap();
    e2e::download_bucket(&bucket, "archive", local.path());
    let second = last_summary(local.path());
    assert_eq!(second.content.blobs_created, 0, "{:?}", second.content);
    assert_eq!(second.content.blobs_present, 1, "{:?}", second.content);
}
