//! `verify` on archives written by the sink and on exports: clean ones pass; a changed
//! byte, a missing file, an extra file and a row whose hash is wrong are each named.

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;
use export::{ExportRequest, Format, ProblemKind, Selection, verify_archive, verify_export};
use serde_json::json;

fn archive_with_messages(dir: &Path) {
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
    write_archive(dir, &input);
}

fn verify(dir: &Path) -> export::VerifyReport {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(verify_archive(dir.to_str().unwrap()))
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
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    archive_with_messages(&archive);
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
    let named: Vec<(ProblemKind, &str)> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.path.as_str()))
        .collect();
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
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    archive_with_messages(&archive);
    // A file slipped into the archive with a row whose raw_sha256 is not its content's.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("raw_json", DataType::Utf8, false),
        Field::new("raw_sha256", DataType::Utf8, false),
    ]));
    let good = r#"{"id":"1","body":"kept"}"#;
    let good_sha = hex::encode(transform::canonical_sha256(good).unwrap());
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["1", "2"])),
            Arc::new(StringArray::from(vec![
                good,
                r#"{"id":"2","body":"changed"}"#,
            ])),
            Arc::new(StringArray::from(vec![good_sha.clone(), good_sha])),
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
    assert_eq!(mine.len(), 2, "{:?}", report.problems);
    assert!(mine.iter().any(|p| p.starts_with("extra file")), "{mine:?}");
    assert!(
        mine.iter()
            .any(|p| p.starts_with("altered row") && p.contains("row 1 (id 2)")),
        "{mine:?}"
    );
}

#[test]
fn an_export_verifies_against_its_manifest_and_changes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    archive_with_messages(&archive);
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
    let named: Vec<(ProblemKind, &str)> = report
        .problems
        .iter()
        .map(|p| (p.kind, p.path.as_str()))
        .collect();
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
