//! What messages point to, in exports: inline images and shared files copied once into
//! `files/<sha256>/<name>` and shown from there, pieces that were not stored saying why,
//! RSMF zips holding the real files, mail as EML and mbox with attachments from the
//! blobs, hostile names made safe, and `verify` catching a changed copy.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use export::{ExportRequest, Format, ProblemKind, Selection, verify_export};
use serde_json::{Value, json};
use transform::{ContentKind, ContentStatus};

const CHAT: &str = "19:files@thread.v2";
const ADA: (&str, &str) = ("u-ada", "Ada Berg");
const ALL: &[Format] = &[Format::Rsmf, Format::Jsonl, Format::Csv, Format::Html];

/// A small PNG (a valid 1x1 image), so browsers and Relativity can show it.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn run(archive: &Path, out: &Path, formats: &[Format]) -> export::ExportReport {
    let request = ExportRequest::new(
        archive.to_str().unwrap(),
        out,
        formats.to_vec(),
        Selection {
            include_deleted: true,
            ..Selection::default()
        },
    );
    // One runtime thread: blobs are read from the writer's thread, driven by the caller's.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(export::export(request))
        .expect("the export runs")
}

/// The Graph path of a hosted content, as a message body's `<img src>` names it.
fn hosted(message: &str, id: &str) -> String {
    format!("v1.0/chats/{CHAT}/messages/{message}/hostedContents/{id}/$value")
}

fn image_message(id: &str, created: &str, images: &[&str]) -> String {
    let tags: String = images
        .iter()
        .map(|h| {
            format!(
                "<img src=\"https://graph.microsoft.com/{}\" alt=\"image\" width=\"100\">",
                hosted(id, h)
            )
        })
        .collect();
    adas_message(
        id,
        created,
        json!({"body": {"contentType": "html", "content": format!("<p>look {tags}</p>")}}),
    )
}

/// A message of Ada's in the chat, with `extra` properties.
fn adas_message(id: &str, created: &str, extra: serde_json::Value) -> String {
    chat_message(CHAT, id, Some(ADA), created, "", extra)
}

fn file_message(id: &str, created: &str, url: &str, name: &str) -> String {
    adas_message(
        id,
        created,
        json!({
            "body": {"contentType": "html", "content": "<p>the file</p><attachment id=\"f1\"></attachment>"},
            "attachments": [{"id": "f1", "contentType": "reference", "contentUrl": url,
                "content": null, "name": name, "thumbnailUrl": null, "teamsAppId": null}]
        }),
    )
}

fn html_pages(out: &Path) -> Vec<String> {
    files(out)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".html"))
        .map(|(_, bytes)| String::from_utf8(bytes).unwrap())
        .collect()
}

fn rsmf_of(out: &Path) -> Vec<Rsmf> {
    rsmf_files(out).into_values().collect()
}

/// The files copied into `files/`, by path.
fn copied(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files(out)
        .into_iter()
        .filter(|(name, _)| name.starts_with("files/"))
        .collect()
}

#[test]
fn an_inline_image_is_copied_and_shown_from_the_export_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let item = image_message("1", "2024-05-01T09:00:00.000Z", &["aW1n"]);
    let mut input = ArchiveInput::default();
    input.messages.push((item.clone(), vec!["u-ada".into()]));
    let sha = input.stored(
        &item,
        None,
        ContentKind::HostedContent,
        &hosted("1", "aW1n"),
        None,
        "image/png",
        PNG,
    );
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    let report = run(&archive, &out, ALL);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.totals.files_copied, 1);

    let copies = copied(&out);
    let path = format!("files/{sha}/image.png");
    assert_eq!(copies.keys().collect::<Vec<_>>(), vec![&path]);
    assert_eq!(
        sha256_hex(&copies[&path]),
        sha,
        "named by the SHA-256 of its bytes"
    );

    let page = &html_pages(&out)[0];
    assert!(
        page.contains(&format!("<img src=\"../../{path}\"")),
        "the image from the export folder:\n{page}"
    );
    assert!(!page.contains("graph.microsoft.com"), "{page}");
    assert!(!page.contains("src=\"http"), "no remote loads: {page}");
    assert!(
        page.contains("img-src 'self'"),
        "the policy allows local images only"
    );

    let line = &jsonl_lines(&out)[0];
    let piece = &line["contents"][0];
    assert_eq!(piece["kind"], "hosted_content");
    assert_eq!(piece["blob_sha256"], sha.as_str());
    assert_eq!(piece["status"], "ok");
    assert_eq!(piece["export_status"], "ok");
    assert_eq!(piece["file"], path.as_str());

    let row = &csv_rows(&out.join("messages.csv"))[0];
    assert!(
        row["contents"].contains(&sha) && row["contents"].contains(&path),
        "{row:?}"
    );

    let rsmf = &rsmf_of(&out)[0];
    let attachment = &rsmf.manifest["events"][0]["attachments"][0];
    assert!(
        attachment["display"].as_str().unwrap().ends_with(".png"),
        "shown inline by Relativity: {attachment}"
    );
    assert_eq!(rsmf.zip_entries[attachment["id"].as_str().unwrap()], PNG);
}

#[test]
fn a_file_shared_in_three_messages_is_copied_once_and_each_message_points_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let url = "https://contoso.sharepoint.com/sites/deal/Shared%20Documents/Budget.xlsx";
    let bytes = b"PK\x03\x04 the budget, as a spreadsheet would be".to_vec();
    let mut input = ArchiveInput::default();
    let mut sha = String::new();
    for (i, at) in ["09:00", "10:00", "11:00"].iter().enumerate() {
        let item = file_message(
            &format!("{}", 10 + i),
            &format!("2024-05-01T{at}:00.000Z"),
            url,
            "Budget.xlsx",
        );
        input.messages.push((item.clone(), vec!["u-ada".into()]));
        sha = input.stored(
            &item,
            None,
            ContentKind::File,
            url,
            Some("Budget.xlsx"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &bytes,
        );
    }
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    let report = run(&archive, &out, ALL);
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let path = format!("files/{sha}/Budget.xlsx");
    assert_eq!(copied(&out).keys().collect::<Vec<_>>(), vec![&path]);
    assert_eq!(report.totals.files_copied, 1);
    let manifest: export::ExportManifest =
        serde_json::from_slice(&std::fs::read(out.join(export::MANIFEST_FILE)).unwrap()).unwrap();
    let listed: Vec<&export::OutputEntry> = manifest
        .outputs
        .iter()
        .filter(|o| o.format == "file")
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].path.as_str(), listed[0].sha256.as_str()),
        (path.as_str(), sha.as_str())
    );
    let blobs_read: Vec<&export::ArchiveFileRead> = manifest
        .archive_files
        .iter()
        .filter(|f| f.table == "blobs/sha256")
        .collect();
    assert_eq!(blobs_read.len(), 1, "the blob is read once");
    assert_eq!(blobs_read[0].check, archive::records::FileCheck::Match);

    let lines = jsonl_lines(&out);
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(line["contents"][0]["file"], path.as_str());
    }
    let page = &html_pages(&out)[0];
    assert_eq!(
        page.matches(&format!("href=\"../../{path}\"")).count(),
        3,
        "an archived copy beside each link:\n{page}"
    );
    assert!(
        page.contains(&format!("href=\"{url}\"")),
        "and the link itself"
    );

    let rsmf = &rsmf_of(&out)[0];
    let ids: Vec<&str> = rsmf.manifest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attachments"][0]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|id| *id == ids[0]), "one zip entry: {ids:?}");
    assert_eq!(rsmf.zip_entries[ids[0]], bytes);
    assert_eq!(rsmf.zip_entries.len(), 2, "the manifest and the file");
}

#[test]
fn pieces_that_were_not_stored_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let url = "https://contoso.sharepoint.com/sites/deal/Secret.docx";
    let image = image_message("20", "2024-05-01T09:00:00.000Z", &["Z29uZQ"]);
    let file = file_message("21", "2024-05-01T09:05:00.000Z", url, "Secret.docx");
    let mut input = ArchiveInput::default();
    input.messages.push((image.clone(), vec!["u-ada".into()]));
    input.messages.push((file.clone(), vec!["u-ada".into()]));
    input.not_stored(
        &image,
        None,
        ContentKind::HostedContent,
        &hosted("20", "Z29uZQ"),
        None,
        ContentStatus::NotFound,
    );
    input.not_stored(
        &file,
        None,
        ContentKind::File,
        url,
        Some("Secret.docx"),
        ContentStatus::Forbidden,
    );
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    let report = run(&archive, &out, ALL);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(copied(&out).is_empty());

    let page = &html_pages(&out)[0];
    assert!(page.contains("image not archived: not_found"), "{page}");
    assert!(page.contains("file not archived: forbidden"), "{page}");
    assert!(
        !page.contains("graph.microsoft.com") && !page.contains("<img"),
        "{page}"
    );

    let lines = jsonl_lines(&out);
    let status = |id: &str| {
        let line = lines.iter().find(|l| l["id"] == id).unwrap();
        (
            line["contents"][0]["status"].clone(),
            line["contents"][0]["export_status"].clone(),
            line["contents"][0]["file"].clone(),
        )
    };
    assert_eq!(
        status("20"),
        (json!("not_found"), json!("not_found"), Value::Null)
    );
    assert_eq!(
        status("21"),
        (json!("forbidden"), json!("forbidden"), Value::Null)
    );
    let rows = csv_rows(&out.join("messages.csv"));
    assert!(
        rows.iter().any(|r| r["contents"] == "image [not_found]"),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r["contents"] == "Secret.docx [forbidden]"),
        "{rows:?}"
    );

    let rsmf = &rsmf_of(&out)[0];
    let custom: Vec<(String, String)> = rsmf.manifest["events"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["custom"].as_array().unwrap().clone())
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        custom.contains(&("Image not archived".into(), "not_found".into())),
        "{custom:?}"
    );
    assert!(
        custom.contains(&("File not archived".into(), "Secret.docx: forbidden".into())),
        "{custom:?}"
    );
}

/// A mailbox's mail: one message with file, item and reference attachments (one file not
/// stored), and one whose MIME was stored.
fn mail_archive(dir: &Path) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    let mail = |id: &str, received: &str, subject: &str| {
        json!({
            "id": id, "subject": subject, "receivedDateTime": received, "sentDateTime": received,
            "lastModifiedDateTime": received, "createdDateTime": received, "hasAttachments": true,
            "internetMessageId": format!("<{id}@contoso.com>"), "importance": "normal",
            "from": {"emailAddress": {"name": "Lin Chen", "address": "lin@contoso.com"}},
            "toRecipients": [{"emailAddress": {"name": "Ada Berg", "address": "ada@contoso.com"}}],
            "ccRecipients": [], "bccRecipients": [], "replyTo": [],
            "body": {"contentType": "html", "content": "<p>From the contract team: see attached</p>"}
        })
        .to_string()
    };
    let first = mail("AAMk1", "2024-05-01T08:00:00Z", "Contract");
    let second = mail("AAMk2", "2024-05-01T09:00:00Z", "Signed copy");
    let mut input = ArchiveInput::default();
    input
        .users
        .push(user("u-ada", "Ada Berg", "ada@contoso.com"));
    input.mail.push((first.clone(), "u-ada".into()));
    input.mail.push((second.clone(), "u-ada".into()));
    let pdf = b"%PDF-1.7 the contract\nFrom the start\n".to_vec();
    let sheet: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
    let item = b"Subject: forwarded\r\n\r\nthe forwarded message\r\n".to_vec();
    let stored = [
        (
            "att-1",
            ContentKind::MailFileAttachment,
            "Contract.pdf",
            "application/pdf",
            &pdf,
        ),
        (
            "att-2",
            ContentKind::MailFileAttachment,
            "Figures.bin",
            "application/octet-stream",
            &sheet,
        ),
        (
            "att-3",
            ContentKind::MailItemAttachment,
            "Forwarded",
            "message/rfc822",
            &item,
        ),
    ];
    let mut expected = Vec::new();
    for (reference, kind, name, content_type, bytes) in stored {
        input.stored(
            &first,
            Some("u-ada"),
            kind,
            reference,
            Some(name),
            content_type,
            bytes,
        );
        expected.push((name.to_string(), bytes.clone()));
    }
    input.not_stored(
        &first,
        Some("u-ada"),
        ContentKind::MailFileAttachment,
        "att-4",
        Some("Huge.zip"),
        ContentStatus::TooLarge,
    );
    input.not_stored(
        &first,
        Some("u-ada"),
        ContentKind::MailReferenceAttachment,
        "att-5",
        Some("Shared link"),
        ContentStatus::Reference,
    );
    let mime = b"From: Lin Chen <lin@contoso.com>\r\nTo: ada@contoso.com\r\nSubject: Signed copy\r\nMessage-ID: <AAMk2@contoso.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nFrom here on, the signed copy.\r\n".to_vec();
    input.stored(
        &second,
        Some("u-ada"),
        ContentKind::MailMime,
        "AAMk2",
        None,
        "message/rfc822",
        &mime,
    );
    write_archive(dir, &input);
    (expected, mime)
}

#[test]
fn mail_exports_as_eml_with_its_attachments_and_an_mbox_per_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let (attachments, mime) = mail_archive(&archive);
    let out = dir.path().join("export");
    let report = run(&archive, &out, &[Format::Mail]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        (report.totals.mail_messages, report.totals.mail_versions),
        (2, 2)
    );
    let all = files(&out);
    let emls: Vec<(&String, &Vec<u8>)> = all
        .iter()
        .filter(|(n, _)| n.starts_with("mail/") && n.ends_with(".eml"))
        .collect();
    assert_eq!(emls.len(), 2, "{:?}", all.keys());

    // The message whose MIME was stored is that MIME.
    let (_, as_stored) = emls
        .iter()
        .find(|(_, b)| b.windows(11).any(|w| w == b"Signed copy"))
        .unwrap();
    assert_eq!(*as_stored, &mime);

    // The other is built, its attachments from the blobs.
    let (_, built) = emls.iter().find(|(_, b)| **b != mime).unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(built.as_slice())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Contract"));
    assert_eq!(parsed.message_id(), Some("AAMk1@contoso.com"));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address(),
        Some("lin@contoso.com")
    );
    assert!(parsed.body_html(0).unwrap().contains("see attached"));
    let mut found: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for part in parsed.attachments() {
        use mail_parser::MimeHeaders;
        found.insert(
            part.attachment_name().unwrap().to_string(),
            part.contents().to_vec(),
        );
    }
    for (name, bytes) in &attachments {
        let name = if name == "Forwarded" {
            "Forwarded.eml"
        } else {
            name
        };
        let got = found
            .get(name)
            .unwrap_or_else(|| panic!("{name} in {:?}", found.keys()));
        assert_eq!(sha256_hex(got), sha256_hex(bytes), "{name}");
    }
    let note = String::from_utf8(found["teams-archiver-not-included.txt"].clone()).unwrap();
    assert!(note.contains("Huge.zip: too_large"), "{note}");
    assert!(note.contains("Shared link: reference"), "{note}");

    // One mbox for the mailbox, holding both messages as written.
    let mboxes: Vec<(&String, &Vec<u8>)> =
        all.iter().filter(|(n, _)| n.ends_with(".mbox")).collect();
    assert_eq!(mboxes.len(), 1);
    assert!(mboxes[0].0.contains("ada_contoso.com"), "{}", mboxes[0].0);
    let messages: Vec<Vec<u8>> =
        mail_parser::mailbox::mbox::MessageIterator::new(std::io::Cursor::new(mboxes[0].1.clone()))
            .map(|m| m.unwrap().contents().to_vec())
            .collect();
    assert_eq!(messages.len(), 2);
    for (message, (_, eml)) in messages.iter().zip(emls.iter()) {
        // Each message ends with the blank line that separates it from the next.
        assert_eq!(&message[..message.len() - 1], eml.as_slice());
    }
    let clean = verify_export(&out).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
}

#[test]
fn hostile_attachment_names_are_made_safe_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let names = [
        "../../etc/passwd",
        "=cmd|' /C calc'!A0",
        "bell\u{7}\r\nX-Injected: yes.txt",
    ];
    let mut input = ArchiveInput::default();
    let mail =
        json!({"id": "AAMk9", "subject": "names", "receivedDateTime": "2024-05-01T08:00:00Z",
        "hasAttachments": true, "body": {"contentType": "text", "content": "hi"}})
        .to_string();
    input.mail.push((mail.clone(), "u-ada".into()));
    for (i, name) in names.iter().enumerate() {
        let url = format!("https://contoso.sharepoint.com/f{i}");
        let item = file_message(
            &format!("{}", 30 + i),
            "2024-05-01T09:00:00.000Z",
            &url,
            name,
        );
        input.messages.push((item.clone(), vec![]));
        let bytes = format!("file {i}").into_bytes();
        input.stored(
            &item,
            None,
            ContentKind::File,
            &url,
            Some(name),
            "text/plain",
            &bytes,
        );
        input.stored(
            &mail,
            Some("u-ada"),
            ContentKind::MailFileAttachment,
            &format!("att-{i}"),
            Some(name),
            "text/plain",
            &bytes,
        );
    }
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    let report = run(
        &archive,
        &out,
        &[Format::Csv, Format::Rsmf, Format::Mail, Format::Html],
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let all = files(&out);
    assert!(!dir.path().join("etc").exists() && !out.join("etc").exists());
    for path in all.keys() {
        assert!(
            path.split('/')
                .all(|part| !part.starts_with('.') && !part.chars().any(char::is_control)),
            "{path:?}"
        );
    }
    assert_eq!(copied(&out).len(), 3);

    for row in csv_rows(&out.join("messages.csv")) {
        let cell = &row["contents"];
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{cell:?}"
        );
        assert!(!cell.chars().any(char::is_control), "{cell:?}");
    }
    for rsmf in rsmf_of(&out) {
        for name in rsmf.zip_entries.keys() {
            assert!(
                !name.contains('/') && !name.contains('\\') && !name.starts_with('.'),
                "{name:?}"
            );
            assert!(!name.chars().any(char::is_control), "{name:?}");
        }
    }
    let (_, eml) = all
        .iter()
        .find(|(n, _)| n.starts_with("mail/") && n.ends_with(".eml"))
        .unwrap();
    let text = String::from_utf8_lossy(eml);
    assert!(!text.lines().any(|l| l.starts_with("X-Injected")), "{text}");
    let parsed = mail_parser::MessageParser::default()
        .parse(eml.as_slice())
        .unwrap();
    let mut attached = 0;
    for part in parsed.attachments() {
        use mail_parser::MimeHeaders;
        let name = part.attachment_name().unwrap();
        assert!(
            !name.contains('/') && !name.starts_with('.') && !name.chars().any(char::is_control),
            "{name:?}"
        );
        attached += 1;
    }
    assert_eq!(attached, 3);
    for page in html_pages(&out) {
        // The message text is the archive's; the names the export writes are its own.
        let lists: Vec<&str> = page
            .split("class=\"attachments\"")
            .skip(1)
            .map(|list| &list[..list.find("</ul>").unwrap()])
            .collect();
        assert_eq!(lists.len(), 3);
        assert!(
            lists.iter().all(|l| !l.chars().any(char::is_control)),
            "{lists:?}"
        );
        assert!(
            lists
                .iter()
                .any(|l| l.contains("bell\\u{7}\\r\\nX-Injected")),
            "{lists:?}"
        );
    }
}

#[test]
fn verify_names_a_changed_copy_and_an_altered_blob_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let mut input = ArchiveInput::default();
    let image = image_message("40", "2024-05-01T09:00:00.000Z", &["b2s"]);
    let tampered = image_message("41", "2024-05-01T09:01:00.000Z", &["YmFk"]);
    input.messages.push((image.clone(), vec![]));
    input.messages.push((tampered.clone(), vec![]));
    let sha = input.stored(
        &image,
        None,
        ContentKind::HostedContent,
        &hosted("40", "b2s"),
        None,
        "image/png",
        PNG,
    );
    let bad = input.stored(
        &tampered,
        None,
        ContentKind::HostedContent,
        &hosted("41", "YmFk"),
        None,
        "image/png",
        b"the original bytes",
    );
    write_archive(&archive, &input);
    let blob = archive.join(format!("blobs/sha256/{}/{bad}", &bad[..2]));
    std::fs::write(&blob, b"replaced bytes").unwrap();

    let out = dir.path().join("export");
    let report = run(&archive, &out, &[Format::Html, Format::Jsonl]);
    let key = format!("blobs/sha256/{}/{bad}", &bad[..2]);
    assert_eq!(report.altered_files, vec![key.clone()]);
    assert!(
        report.errors.iter().any(|e| e.starts_with(&key)),
        "{:?}",
        report.errors
    );
    assert!(!out.join(format!("files/{bad}")).exists());
    let page = &html_pages(&out)[0];
    assert!(page.contains("image not archived: blob_altered"), "{page}");

    let clean = verify_export(&out).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    let copy = format!("files/{sha}/image.png");
    let mut bytes = std::fs::read(out.join(&copy)).unwrap();
    bytes[20] ^= 1;
    std::fs::write(out.join(&copy), bytes).unwrap();
    let report = verify_export(&out).unwrap();
    let named = problems_named(&report);
    assert_eq!(named, vec![(ProblemKind::AlteredFile, copy.as_str())]);
}

#[test]
fn files_larger_than_a_zip_kept_in_memory_stream_through_rsmf_and_eml() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    // Past the 1 MiB an RSMF zip is built in memory, and not compressible.
    let mut state = 1u64;
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    let url = "https://contoso.sharepoint.com/sites/deal/Recording.mp4";
    let item = file_message("50", "2024-05-01T09:00:00.000Z", url, "Recording.mp4");
    let mail = json!({"id": "AAMk50", "subject": "big", "receivedDateTime": "2024-05-01T08:00:00Z",
        "hasAttachments": true, "body": {"contentType": "text", "content": "attached"}})
    .to_string();
    let mut input = ArchiveInput::default();
    input.messages.push((item.clone(), vec![]));
    input.mail.push((mail.clone(), "u-ada".into()));
    let sha = input.stored(
        &item,
        None,
        ContentKind::File,
        url,
        Some("Recording.mp4"),
        "video/mp4",
        &big,
    );
    input.stored(
        &mail,
        Some("u-ada"),
        ContentKind::MailFileAttachment,
        "att-1",
        Some("Recording.mp4"),
        "video/mp4",
        &big,
    );
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    let report = run(&archive, &out, &[Format::Rsmf, Format::Mail]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.totals.file_bytes_copied, big.len() as u64);

    let rsmf = &rsmf_of(&out)[0];
    let id = rsmf.manifest["events"][0]["attachments"][0]["id"]
        .as_str()
        .unwrap();
    assert_eq!(sha256_hex(&rsmf.zip_entries[id]), sha);
    let all = files(&out);
    let (_, eml) = all
        .iter()
        .find(|(n, _)| n.starts_with("mail/") && n.ends_with(".eml"))
        .unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(eml.as_slice())
        .unwrap();
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(sha256_hex(attachment.contents()), sha);
    assert!(
        !all.keys().any(|k| k.contains(".export-work")),
        "work files are removed"
    );
    assert!(verify_export(&out).unwrap().is_clean());
}
