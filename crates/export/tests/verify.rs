//! `verify` on archives written by the sink and on exports: clean ones pass; a changed
//! byte, a missing file, an extra file and a row whose hash is wrong are each named.

mod common;

use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;
use export::{ExportRequest, Format, ProblemKind, Selection, verify_archive, verify_export};
use serde_json::json;

/// A folder holding an archive of 20 messages (at `<folder>/archive`).
fn archive_with_messages() -> (tempfile::TempDir, std::path::PathBuf) {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("archive");
    let mut input = ArchiveInput::default();
    for i in 0..20 {
        let item = chat_message(
            "19:c@thread.v2",
            &format!("{}", 1000 + i),
            Some(("u1", "Ada")),
            &format!("2024-05-0{}T09:00:00.000Z", 1 + i % 3),
            &format!("message {i}"),
            json!({}),
        );
        input.messages.push((item, vec!["u1".into()]));
    }
    input.users.push(user("u1", "Ada", "ada@contoso.com"));
    write_archive(&dir, &input);
    (folder, dir)
}

fn verify(dir: &Path) -> export::VerifyReport {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(verify_archive(dir.to_str().unwrap(), &Default::default()))
        .expect("verify runs")
}

fn parquet_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|k| k.ends_with(".parquet") && !k.starts_with("_state"))
        .collect()
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_clean_archive_verifies_and_every_change_is_named() {
    let (dir, archive) = archive_with_messages();
    let clean = verify(&archive);
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert_eq!(
        clean.rows_checked,
        20 + 20 + 1,
        "messages, custodian rows, the user"
    );
    let files = parquet_files(&archive);
    assert!(clean.files_checked as usize == files.len() && files.len() >= 5);

    let altered = &files[0];
    flip_byte(&archive.join(altered), 4); // inside the first page, past the magic
    let missing = &files[1];
    std::fs::rename(archive.join(missing), dir.path().join("moved-away")).unwrap();
    std::fs::write(archive.join("chat_messages/notes.txt"), b"not data").unwrap();

    let report = verify(&archive);
    let named = problems_named(&report);
    assert!(
        named.contains(&(ProblemKind::AlteredFile, altered.as_str())),
        "{named:?}"
    );
    assert!(
        named.contains(&(ProblemKind::MissingFile, missing.as_str())),
        "{named:?}"
    );
    assert!(
        named.contains(&(ProblemKind::ExtraFile, "chat_messages/notes.txt")),
        "{named:?}"
    );
    let line = report
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::AlteredFile)
        .unwrap()
        .to_string();
    assert!(
        line.starts_with("altered file: ") && line.contains("_archive/commits/"),
        "{line}"
    );
}

#[test]
fn a_row_whose_hash_does_not_match_its_json_is_named_with_its_row_and_id() {
    let (_dir, archive) = archive_with_messages();
    // A file slipped into the archive with a row whose content_sha256 is not its content's.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("raw_json", DataType::Utf8, false),
        Field::new("raw_sha256", DataType::Utf8, false),
        Field::new("content_sha256", DataType::Utf8, false),
    ]));
    let good = r#"{"id":"1","body":"kept"}"#;
    let changed = r#"{"id":"2","body":"changed"}"#;
    let edited = r#"{"id":"3", "body":"kept"}"#;
    let bytes_sha = |raw: &str| hex::encode(Sha256::digest(raw.as_bytes()));
    let good_sha = hex::encode(transform::canonical_sha256(good).unwrap());
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["1", "2", "3"])),
            Arc::new(StringArray::from(vec![good, changed, edited])),
            // Row 2 keeps its raw_sha256 but not its content hash; row 3 the other way.
            Arc::new(StringArray::from(vec![
                bytes_sha(good),
                bytes_sha(changed),
                bytes_sha(good),
            ])),
            Arc::new(StringArray::from(vec![
                good_sha.clone(),
                good_sha,
                hex::encode(transform::canonical_sha256(edited).unwrap()),
            ])),
        ],
    )
    .unwrap();
    let path = archive.join("chat_messages/date=2024-05-01/part-slipped-in.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let report = verify(&archive);
    let rel = "chat_messages/date=2024-05-01/part-slipped-in.parquet";
    let mine: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.path == rel)
        .map(ToString::to_string)
        .collect();
    assert_eq!(mine.len(), 3, "{:?}", report.problems);
    assert!(mine.iter().any(|p| p.starts_with("extra file")), "{mine:?}");
    assert!(
        mine.iter()
            .any(|p| p.starts_with("altered row") && p.contains("row 1 (id 2): content_sha256")),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|p| p.starts_with("altered row") && p.contains("row 2 (id 3): raw_sha256")),
        "{mine:?}"
    );
}

#[test]
fn an_export_verifies_against_its_manifest_and_changes_are_named() {
    let (dir, archive) = archive_with_messages();
    let out = dir.path().join("export");
    let request = ExportRequest::new(
        archive.to_str().unwrap(),
        &out,
        vec![Format::Rsmf, Format::Jsonl, Format::Csv, Format::Html],
        Selection::default(),
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(export::export(request))
        .unwrap();
    let clean = verify_export(&out).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert_eq!(
        clean.files_checked,
        2 + 3 + 3,
        "jsonl, csv, three days of rsmf and html"
    );

    let rsmf = files(&out)
        .into_keys()
        .find(|k| k.ends_with(".rsmf"))
        .unwrap();
    flip_byte(&out.join(&rsmf), 200);
    std::fs::remove_file(out.join("messages.csv")).unwrap();
    std::fs::write(out.join("html/notes.html"), b"<p>added later</p>").unwrap();
    let report = verify_export(&out).unwrap();
    let named = problems_named(&report);
    assert_eq!(
        named,
        vec![
            (ProblemKind::ExtraFile, "html/notes.html"),
            (ProblemKind::MissingFile, "messages.csv"),
            (ProblemKind::AlteredFile, rsmf.as_str()),
        ]
    );

    std::fs::remove_file(out.join(export::MANIFEST_FILE)).unwrap();
    let report = verify_export(&out).unwrap();
    assert_eq!(report.problems[0].kind, ProblemKind::MissingFile);
    assert_eq!(report.problems[0].path, export::MANIFEST_FILE);
}

/// `verify --export` reads only regular files inside the export folder, whatever the
/// manifest says: a manifest that names `../../etc/hostname`, `/dev/zero` (which never
/// ends) or a link out of the folder gets each named, and nothing outside is read.
#[test]
fn manifest_paths_outside_the_export_folder_are_named_not_read() {
    let (dir, archive) = archive_with_messages();
    let out = dir.path().join("export");
    let request = ExportRequest::new(
        archive.to_str().unwrap(),
        &out,
        vec![Format::Jsonl],
        Selection::default(),
    );
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(export::export(request))
        .unwrap();

    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"outside the export").unwrap();
    std::os::unix::fs::symlink(&secret, out.join("link-out.txt")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", out.join("zero")).unwrap();
    std::fs::create_dir(out.join("sub")).unwrap();
    std::os::unix::fs::symlink(dir.path(), out.join("sub/up")).unwrap();

    let manifest_path = out.join(export::MANIFEST_FILE);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let outputs = manifest["outputs"].as_array_mut().unwrap();
    let template = outputs[0].clone();
    let hostile = [
        "../secret.txt",
        "../../../../../../../../etc/hostname",
        "/dev/zero",
        "link-out.txt",
        "zero",
        "sub/up/secret.txt",
    ];
    for path in hostile {
        let mut entry = template.clone();
        entry["path"] = path.into();
        outputs.push(entry);
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let (done, result) = std::sync::mpsc::channel();
    let checked = out.clone();
    std::thread::spawn(move || {
        let _ = done.send(verify_export(&checked));
    });
    let report = result
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("verify --export finishes (it must not read /dev/zero)")
        .unwrap();
    for path in hostile {
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.path == path && p.kind == ProblemKind::UnsafePath),
            "{path}: {:?}",
            report.problems
        );
    }
    assert_eq!(
        report.files_checked, 1,
        "only the export's own file was read: {:?}",
        report.problems
    );
    // The links themselves are in the folder without being exported files.
    for link in ["link-out.txt", "zero", "sub/up"] {
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.path == link && p.kind == ProblemKind::ExtraFile)
                || hostile.contains(&link),
            "{link}: {:?}",
            report.problems
        );
    }
}
