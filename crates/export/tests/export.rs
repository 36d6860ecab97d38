//! Exports of archives written by the real transform and sink crates: a matter with
//! edits, a deletion, reactions, attachments, a join, replies and two custodians; and
//! Microsoft's own docs examples. Every RSMF manifest is checked against Relativity's
//! 2.0 schema, every envelope parsed as MIME.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use export::{ExportRequest, Format, RsmfLimits, Selection};
use serde_json::{Value, json};

const CHAT: &str = "19:deal@thread.v2";
const TEAM: &str = "team-1";
const CHANNEL: &str = "19:general@thread.tacv2";
const ADA: (&str, &str) = ("u-ada", "Ada Berg");
const LIN: (&str, &str) = ("u-lin", "Lin Chen");
const OMAR: (&str, &str) = ("u-omar", "Omar Silva");
const PRIYA: (&str, &str) = ("u-priya", "Priya Novák");

/// The matter: a group chat over two days and a channel with threads.
fn matter() -> ArchiveInput {
    let holders = || vec!["u-ada".to_string(), "u-lin".to_string()];
    let m1_v1 = chat_message(
        CHAT,
        "1001",
        Some(ADA),
        "2024-05-01T09:00:00.000Z",
        "Please review the invoice",
        json!({}),
    );
    let m1_v2 = chat_message(
        CHAT,
        "1001",
        Some(ADA),
        "2024-05-01T09:00:00.000Z",
        "Please review the final invoice",
        json!({
            "lastModifiedDateTime": "2024-05-01T09:15:00.000Z",
            "lastEditedDateTime": "2024-05-01T09:05:00.000Z",
            "reactions": [reaction("like", "u-lin", "2024-05-01T09:10:00.000Z"), reaction("like", "u-omar", "2024-05-01T09:11:00.000Z"), reaction("heart", "u-lin", "2024-05-01T09:15:00.000Z")],
        }),
    );
    let m2 = chat_message(
        CHAT,
        "1002",
        Some(LIN),
        "2024-05-01T09:10:00.000Z",
        "",
        json!({
            "body": {"contentType": "html", "content": "<p>Looks good, numbers attached</p><attachment id=\"a1\"></attachment><attachment id=\"a2\"></attachment>"},
            "attachments": [
                {"id": "a1", "contentType": "reference", "contentUrl": "https://contoso.sharepoint.com/sites/deal/Budget.xlsx", "content": null, "name": "Budget.xlsx", "thumbnailUrl": null, "teamsAppId": null},
                {"id": "a2", "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
                 "content": "{\"type\":\"AdaptiveCard\",\"body\":[{\"type\":\"TextBlock\",\"text\":\"Approval needed\"},{\"type\":\"FactSet\",\"facts\":[{\"title\":\"Amount\",\"value\":\"12,000 USD\"}]}]}",
                 "name": null, "thumbnailUrl": null, "teamsAppId": null}
            ],
        }),
    );
    let m3_v1 = chat_message(
        CHAT,
        "1003",
        Some(OMAR),
        "2024-05-01T09:20:00.000Z",
        "wrong chat, sorry",
        json!({}),
    );
    let m3_v2 = chat_message(
        CHAT,
        "1003",
        Some(OMAR),
        "2024-05-01T09:20:00.000Z",
        "",
        json!({
            "lastModifiedDateTime": "2024-05-01T09:21:00.000Z",
            "deletedDateTime": "2024-05-01T09:21:00.000Z",
            "body": {"contentType": "html", "content": ""},
        }),
    );
    let m4 = chat_message(
        CHAT,
        "1004",
        None,
        "2024-05-01T09:30:00.000Z",
        "",
        json!({
            "messageType": "systemEventMessage",
            "body": {"contentType": "html", "content": "<systemEventMessage/>"},
            "eventDetail": {"@odata.type": "#microsoft.graph.membersAddedEventMessageDetail", "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
                "members": [{"id": "u-priya", "displayName": null, "userIdentityType": "aadUser"}],
                "initiator": {"application": null, "device": null, "user": {"id": "u-ada", "displayName": "Ada Berg", "userIdentityType": "aadUser"}}},
        }),
    );
    let m5 = chat_message(
        CHAT,
        "1005",
        Some(PRIYA),
        "2024-05-01T09:40:00.000Z",
        "",
        json!({
            "importance": "urgent",
            "body": {"contentType": "html", "content": "<p><b>Urgent</b>: the invoice &lt;script&gt;alert(1)&lt;/script&gt; is wrong</p>"},
        }),
    );
    let m6 = chat_message(
        CHAT,
        "1006",
        Some(ADA),
        "2024-05-02T08:00:00.000Z",
        "Next day: invoice sent",
        json!({}),
    );

    let channel =
        |id, reply_to, from, at, body| channel_message(TEAM, CHANNEL, id, reply_to, from, at, body);
    let m2_item = m2.clone();
    let mut messages: Vec<(String, Vec<String>)> = [m1_v1, m1_v2, m2, m3_v1, m3_v2, m4, m5, m6]
        .into_iter()
        .map(|m| (m, holders()))
        .collect();
    for item in [
        channel(
            "2001",
            None,
            ADA,
            "2024-05-01T10:00:00.000Z",
            "Kickoff at noon",
        ),
        channel(
            "2002",
            Some("2001"),
            LIN,
            "2024-05-01T10:05:00.000Z",
            "I'll be there",
        ),
        channel(
            "2003",
            Some("2001"),
            OMAR,
            "2024-05-01T10:06:00.000Z",
            "Me too",
        ),
        channel(
            "2004",
            None,
            LIN,
            "2024-05-01T11:00:00.000Z",
            "Separate topic",
        ),
        channel(
            "2005",
            Some("2001"),
            PRIYA,
            "2024-05-02T07:00:00.000Z",
            "Sorry I missed it",
        ),
    ] {
        messages.push((item, Vec::new()));
    }
    let mut input = ArchiveInput {
        messages,
        users: vec![
            user("u-ada", "Ada Berg", "ada@contoso.com"),
            user("u-lin", "Lin Chen", "lin@contoso.com"),
            user("u-omar", "Omar Silva", "omar@contoso.com"),
            user("u-priya", "Priya Novák", "priya@contoso.com"),
        ],
        chats: vec![json!({
            "id": CHAT, "topic": "Deal room", "chatType": "group", "createdDateTime": "2024-04-01T00:00:00Z",
            "members": [
                {"@odata.type": "#microsoft.graph.aadUserConversationMember", "userId": "u-ada", "displayName": "Ada Berg", "email": "ada@contoso.com"},
                {"@odata.type": "#microsoft.graph.aadUserConversationMember", "userId": "u-lin", "displayName": "Lin Chen", "email": "lin@contoso.com"},
                {"@odata.type": "#microsoft.graph.aadUserConversationMember", "userId": "u-omar", "displayName": "Omar Silva", "email": "omar@contoso.com"}
            ]
        })
        .to_string()],
        ..ArchiveInput::default()
    };
    // The shared spreadsheet was stored: exports carry its bytes.
    input.stored(
        &m2_item,
        None,
        transform::ContentKind::File,
        "https://contoso.sharepoint.com/sites/deal/Budget.xlsx",
        Some("Budget.xlsx"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        BUDGET,
    );
    input
}

/// The bytes of the archived Budget.xlsx.
const BUDGET: &[u8] = b"PK\x03\x04 the budget spreadsheet";

fn run_export(request: ExportRequest) -> export::ExportReport {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(export::export(request))
        .expect("the export runs")
}

fn request(archive: &Path, out: &Path, formats: &[Format], selection: Selection) -> ExportRequest {
    ExportRequest::new(archive.to_str().unwrap(), out, formats.to_vec(), selection)
}

const ALL: &[Format] = &[Format::Rsmf, Format::Jsonl, Format::Csv, Format::Html];

fn everything() -> Selection {
    Selection {
        include_deleted: true,
        ..Selection::default()
    }
}

fn events_by_id(rsmf: &Rsmf) -> BTreeMap<String, Value> {
    rsmf.manifest["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

fn find<'a>(files: &'a BTreeMap<String, Rsmf>, prefix: &str) -> Vec<&'a Rsmf> {
    files
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, r)| r)
        .collect()
}

/// A folder holding the archive of [`matter`] (at `<folder>/archive`).
fn matter_archive() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    write_archive(&archive, &matter());
    (dir, archive)
}

#[test]
fn a_matter_exports_to_rsmf_with_edits_deletions_reactions_attachments_and_threads() {
    let (dir, archive) = matter_archive();
    let out = dir.path().join("export");
    let report = run_export(request(&archive, &out, ALL, everything()));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.altered_files.is_empty() && report.unrecorded_files.is_empty());
    assert_eq!(report.totals.messages, 11);
    assert_eq!(report.totals.versions, 13);
    assert_eq!(report.totals.conversation_days, 4);

    let rsmf = rsmf_files(&out);
    assert_eq!(rsmf.len(), 4, "{:?}", rsmf.keys());
    let chat_day1 = find(&rsmf, "rsmf/2024-05-01/chat-deal_thread.v2-")[0];
    let m = &chat_day1.manifest;
    let events = events_by_id(chat_day1);
    assert_eq!(events.len(), 5, "m1, m2, m3 (deleted), the join, m5");
    assert_eq!(m["conversations"][0]["type"], "direct");
    assert_eq!(m["conversations"][0]["display"], "Deal room");
    assert_eq!(m["conversations"][0]["custodian"], "u-ada");
    assert_eq!(m["eventcollectionid"], CHAT);
    let people: BTreeMap<&str, (&str, Option<&str>)> = m["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap(),
                (p["display"].as_str().unwrap(), p["email"].as_str()),
            )
        })
        .collect();
    assert_eq!(people["u-lin"], ("Lin Chen", Some("lin@contoso.com")));
    assert_eq!(
        people["u-priya"],
        ("Priya Novák", Some("priya@contoso.com")),
        "named from the directory"
    );
    assert_eq!(people.len(), 4);

    let m1 = &events["1001"];
    assert_eq!(m1["type"], "message");
    assert_eq!(m1["participant"], "u-ada");
    assert_eq!(m1["body"], "Please review the final invoice");
    assert_eq!(m1["timestamp"], "2024-05-01T09:00:00.000Z");
    assert_eq!(m1["direction"], "outgoing", "sent by the custodian");
    assert_eq!(
        m1["edits"],
        json!([{"participant": "u-ada", "timestamp": "2024-05-01T09:05:00.000Z",
        "previous": "Please review the invoice", "new": "Please review the final invoice"}])
    );
    assert_eq!(
        m1["reactions"],
        json!([
        {"value": "like", "count": 2, "participants": ["u-lin", "u-omar"]},
        {"value": "heart", "count": 1, "participants": ["u-lin"]}])
    );

    let m2 = &events["1002"];
    assert_eq!(m2["direction"], "incoming");
    let attachments = m2["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0]["display"], "Budget.xlsx");
    assert_eq!(
        chat_day1.zip_entries[attachments[0]["id"].as_str().unwrap()],
        BUDGET,
        "the archived file itself"
    );
    assert_eq!(attachments[0]["size"], BUDGET.len());
    let card =
        String::from_utf8(chat_day1.zip_entries[attachments[1]["id"].as_str().unwrap()].clone())
            .unwrap();
    assert!(
        card.contains("Approval needed") && card.contains("Amount: 12,000 USD"),
        "{card}"
    );
    assert_eq!(chat_day1.headers["X-RSMF-AttachmentCount"], "2");

    let m3 = &events["1003"];
    assert_eq!(m3["deleted"], true);
    assert_eq!(
        m3["body"], "wrong chat, sorry",
        "the last text archived before the deletion"
    );

    let join = &events["1004"];
    assert_eq!(join["type"], "join");
    assert_eq!(join["participant"], "u-priya");
    assert_eq!(join["body"], "Ada Berg added Priya Novák");

    assert_eq!(events["1005"]["importance"], "high");
    assert_eq!(chat_day1.headers["X-RSMF-Custodian"], "Ada Berg, Lin Chen");
    assert_eq!(
        chat_day1.headers["X-RSMF-Participants"],
        "Ada Berg, Lin Chen, Omar Silva, Priya Novák"
    );
    assert_eq!(
        chat_day1.headers["X-RSMF-BeginDate"],
        "2024-05-01T09:00:00.000Z"
    );
    assert!(
        chat_day1
            .text
            .contains("Ada Berg: [edited] Please review the final invoice"),
        "{}",
        chat_day1.text
    );

    let channel_day1 = find(&rsmf, "rsmf/2024-05-01/channel-")[0];
    let events = events_by_id(channel_day1);
    assert_eq!(channel_day1.manifest["conversations"][0]["type"], "channel");
    assert!(
        channel_day1.manifest["conversations"][0]
            .get("custodian")
            .is_none()
    );
    assert_eq!(events.len(), 4);
    assert_eq!(events["2002"]["parent"], "2001");
    assert_eq!(events["2003"]["parent"], "2001");
    assert!(events["2004"].get("parent").is_none());
    let channel_day2 = find(&rsmf, "rsmf/2024-05-02/channel-")[0];
    let reply = &events_by_id(channel_day2)["2005"];
    assert!(reply.get("parent").is_none(), "the root is in another file");
    assert!(
        reply["custom"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "Reply to message (not in this file)" && c["value"] == "2001"),
        "{reply}"
    );
}

#[test]
fn jsonl_and_csv_hold_the_archived_rows() {
    let (dir, archive) = matter_archive();

    let latest = dir.path().join("latest");
    run_export(request(
        &archive,
        &latest,
        &[Format::Jsonl, Format::Csv],
        everything(),
    ));
    let lines = jsonl_lines(&latest);
    assert_eq!(lines.len(), 11, "one line per message: its latest version");
    for line in &lines {
        assert_eq!(line["is_latest_version"], true);
        let raw = line["raw_json"].as_str().unwrap();
        let digest = hex::encode(transform::canonical_sha256(raw).unwrap());
        assert_eq!(
            line["content_sha256"],
            digest.as_str(),
            "raw_json is exported exactly as archived"
        );
    }
    let m1 = lines.iter().find(|l| l["id"] == "1001").unwrap();
    assert_eq!(
        (m1["version"].as_u64(), m1["versions"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(m1["custodians"], json!(["u-ada", "u-lin"]));
    assert_eq!(m1["body_text"], "Please review the final invoice");
    assert_eq!(m1["last_edited_date_time"], "2024-05-01T09:05:00.000000Z");
    let reply = lines.iter().find(|l| l["id"] == "2002").unwrap();
    assert_eq!(
        (reply["team_id"].as_str(), reply["reply_to_id"].as_str()),
        (Some(TEAM), Some("2001"))
    );

    let csv_text = std::fs::read_to_string(latest.join("messages.csv")).unwrap();
    assert!(csv_text.contains("\r\n"), "RFC 4180 line ends");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], "date");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 11);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let m2 = rows.iter().find(|r| &r[column("id")] == "1002").unwrap();
    assert!(m2[column("attachments")].starts_with("Budget.xlsx <https://contoso.sharepoint.com"));
    assert!(
        m2[column("contents")].starts_with("Budget.xlsx [ok] sha256:"),
        "{:?}",
        &m2[column("contents")]
    );
    let m2_line = lines.iter().find(|l| l["id"] == "1002").unwrap();
    assert!(
        m2_line["contents"][0]["file"]
            .as_str()
            .is_some_and(|f| f.starts_with("files/") && f.ends_with("/Budget.xlsx")),
        "{m2_line}"
    );
    let m1 = rows.iter().find(|r| &r[column("id")] == "1001").unwrap();
    assert_eq!(&m1[column("reactions")], "like x2; heart x1");
    assert_eq!(&m1[column("custodians")], "u-ada; u-lin");

    let all = dir.path().join("all");
    run_export(request(
        &archive,
        &all,
        &[Format::Jsonl],
        Selection {
            all_versions: true,
            ..everything()
        },
    ));
    let lines = std::fs::read_to_string(all.join("messages.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 13, "every archived version");
}

#[test]
fn selections_pick_custodians_conversations_times_keywords_and_deletions() {
    let (dir, archive) = matter_archive();
    let mut n = 0;
    let mut ids = |selection: Selection| -> Vec<String> {
        n += 1;
        let out = dir.path().join(format!("out-{n}"));
        run_export(request(&archive, &out, &[Format::Jsonl], selection));
        let mut ids = jsonl_ids(&out);
        ids.sort();
        ids
    };
    assert_eq!(
        ids(Selection::default()),
        vec![
            "1001", "1002", "1004", "1005", "1006", "2001", "2002", "2003", "2004", "2005"
        ],
        "the deleted message only with --include-deleted"
    );
    assert_eq!(
        ids(Selection {
            custodians: vec!["LIN@contoso.com".into()],
            ..Selection::default()
        }),
        vec!["1001", "1002", "1004", "1005", "1006"],
        "a custodian by UPN; channel messages have no custodian"
    );
    assert!(
        ids(Selection {
            custodians: vec!["u-omar".into()],
            ..Selection::default()
        })
        .is_empty()
    );
    assert_eq!(
        ids(Selection {
            team: Some(TEAM.into()),
            ..Selection::default()
        }),
        vec!["2001", "2002", "2003", "2004", "2005"]
    );
    assert_eq!(
        ids(Selection {
            chats: vec![CHAT.into()],
            keywords: vec!["INVOICE".into()],
            ..Selection::default()
        }),
        vec!["1001", "1005", "1006"],
        "keywords in any version's text, ignoring case"
    );
    let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    assert_eq!(
        ids(Selection {
            from: at("2024-05-01T09:10:00Z"),
            to: at("2024-05-01T10:05:00Z"),
            ..Selection::default()
        }),
        vec!["1002", "1004", "1005", "2001"]
    );

    // Only the partitions in range are read.
    let out = dir.path().join("day2");
    let report = run_export(request(
        &archive,
        &out,
        &[Format::Jsonl],
        Selection {
            from: at("2024-05-02T00:00:00Z"),
            ..Selection::default()
        },
    ));
    assert_eq!(report.totals.partitions, 1);
    let manifest: export::ExportManifest =
        serde_json::from_slice(&std::fs::read(out.join(export::MANIFEST_FILE)).unwrap()).unwrap();
    let read: Vec<&str> = manifest
        .archive_files
        .iter()
        .filter(|f| f.table == "chat_messages")
        .map(|f| f.partition.as_str())
        .collect();
    assert_eq!(read, vec!["2024-05-02"]);
    assert!(
        manifest
            .archive_files
            .iter()
            .all(|f| f.check == archive::records::FileCheck::Match)
    );
}

#[test]
fn bad_requests_are_refused_with_what_is_wrong() {
    let (dir, archive) = matter_archive();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fail = |req: ExportRequest| {
        runtime
            .block_on(export::export(req))
            .unwrap_err()
            .to_string()
    };

    let err = fail(request(
        &archive,
        &dir.path().join("x1"),
        &[Format::Jsonl],
        Selection {
            custodians: vec!["nobody@contoso.com".into()],
            ..Selection::default()
        },
    ));
    assert!(err.contains("nobody@contoso.com"), "{err}");
    let err = fail(request(
        &dir.path().join("no-such-archive"),
        &dir.path().join("x2"),
        &[Format::Jsonl],
        Selection::default(),
    ));
    assert!(
        err.contains("no-such-archive") && err.contains("does not exist"),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("used")).unwrap();
    std::fs::write(dir.path().join("used/file"), b"x").unwrap();
    let err = fail(request(
        &archive,
        &dir.path().join("used"),
        &[Format::Jsonl],
        Selection::default(),
    ));
    assert!(err.contains("not empty"), "{err}");
    let err = fail(request(
        &archive,
        &dir.path().join("x3"),
        &[],
        Selection::default(),
    ));
    assert!(err.contains("--format"), "{err}");
}

#[test]
fn the_same_archive_and_selection_give_the_same_bytes_also_when_sorting_spills() {
    let (dir, archive) = matter_archive();
    let first = dir.path().join("first");
    run_export(request(&archive, &first, ALL, everything()));
    let second = dir.path().join("second");
    let mut spilling = request(&archive, &second, ALL, everything());
    spilling.memory_budget_bytes = 1; // every row goes through sorted runs on disk
    run_export(spilling);
    let (a, b) = (files(&first), files(&second));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        if name == export::MANIFEST_FILE {
            let strip = |bytes: &[u8]| {
                let mut v: Value = serde_json::from_slice(bytes).unwrap();
                v.as_object_mut().unwrap().remove("created_at");
                v
            };
            assert_eq!(
                strip(bytes),
                strip(&b[name]),
                "the manifest, its time aside"
            );
        } else {
            assert!(bytes == &b[name], "{name} differs between two exports");
        }
    }
    assert!(
        !a.keys().any(|k| k.contains(".export-work")),
        "work files are removed"
    );
}

#[test]
fn a_conversation_day_past_the_event_limit_continues_in_parts() {
    let (dir, archive) = matter_archive();
    let out = dir.path().join("export");
    let mut req = request(&archive, &out, &[Format::Rsmf], everything());
    req.rsmf = RsmfLimits {
        max_events: 2,
        ..RsmfLimits::default()
    };
    run_export(req);
    let rsmf = rsmf_files(&out);
    let parts = find(&rsmf, "rsmf/2024-05-01/chat-deal");
    assert_eq!(parts.len(), 3, "5 events, 2 per file: {:?}", rsmf.keys());
    let names: Vec<&String> = rsmf
        .keys()
        .filter(|k| k.starts_with("rsmf/2024-05-01/chat-deal"))
        .collect();
    assert!(
        names[0].ends_with(".part2.rsmf") && names[1].ends_with(".part3.rsmf"),
        "{names:?}"
    );
    assert_eq!(
        names[2].replace(".rsmf", ".part2.rsmf"),
        *names[0],
        "parts share the first file's name"
    );
    let mut total = 0;
    for part in &parts {
        let n = part.manifest["events"].as_array().unwrap().len();
        assert!(n <= 2);
        total += n;
        assert_eq!(
            part.manifest["eventcollectionid"], CHAT,
            "parts stay together"
        );
    }
    assert_eq!(total, 5);
}

#[test]
fn html_transcripts_escape_everything_and_thread_replies() {
    let (dir, archive) = matter_archive();
    let out = dir.path().join("export");
    run_export(request(&archive, &out, &[Format::Html], everything()));
    let all = files(&out);
    let page = |prefix: &str| {
        let (_, bytes) = all.iter().find(|(k, _)| k.starts_with(prefix)).unwrap();
        String::from_utf8(bytes.clone()).unwrap()
    };
    let chat = page("html/2024-05-01/chat-deal");
    assert!(!chat.to_lowercase().contains("<script"), "no script ever");
    assert!(
        chat.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "message text shown escaped"
    );
    assert!(chat.contains("Content-Security-Policy"));
    for expected in [
        "Deal room",
        "Ada Berg",
        "2024-05-01 09:00:00 UTC",
        "Edited",
        "<del>Please review the invoice</del>",
        "Deleted 2024-05-01 09:21:00 UTC",
        "like &times;2 (Lin Chen, Omar Silva)",
        "Ada Berg added Priya Novák",
        "Important",
        "href=\"https://contoso.sharepoint.com/sites/deal/Budget.xlsx\"",
        "\">archived copy</a>",
        "Custodians: Ada Berg, Lin Chen",
    ] {
        assert!(chat.contains(expected), "{expected} in\n{chat}");
    }
    let channel = page("html/2024-05-01/channel-");
    let root = channel.find("Kickoff at noon").unwrap();
    let replies = channel[root..]
        .find("class=\"replies\"")
        .map(|i| i + root)
        .unwrap();
    let reply = channel.find("I&#39;ll be there").unwrap();
    let other_root = channel.find("Separate topic").unwrap();
    assert!(
        root < replies && replies < reply && reply < other_root,
        "replies sit under their root"
    );
    let day2 = page("html/2024-05-02/channel-");
    assert!(day2.contains("Replies to message <code>2001</code>, which is not in this transcript"));
}

#[test]
fn microsoft_docs_examples_export_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let mut input = ArchiveInput::default();
    let mut items = 0;
    for folder in ["v1.0", "beta"] {
        let mut paths: Vec<_> =
            std::fs::read_dir(repo_root().join("tests/fixtures/graph-docs").join(folder))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
        paths.sort();
        for path in paths {
            let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let candidates: Vec<Value> = match value.get("value") {
                Some(Value::Array(list)) => list.clone(),
                _ => vec![value],
            };
            for item in candidates {
                let is_chat = item.get("messageType").is_some()
                    || item.get("chatId").is_some()
                    || item.get("channelIdentity").is_some();
                if is_chat && item.get("id").and_then(Value::as_str).is_some() {
                    input.messages.push((item.to_string(), Vec::new()));
                    items += 1;
                }
            }
        }
    }
    assert!(items > 50, "{items} docs messages");
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    let report = run_export(request(&archive, &out, ALL, everything()));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let rsmf = rsmf_files(&out);
    let events: u64 = rsmf
        .values()
        .map(|r| r.manifest["events"].as_array().unwrap().len() as u64)
        .sum();
    assert!(
        events >= report.totals.messages,
        "every message is an event ({events} events, {} messages)",
        report.totals.messages
    );
    let jsonl = std::fs::read_to_string(out.join("messages.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count() as u64, report.totals.messages);
    let with_reactions = rsmf
        .values()
        .flat_map(|r| r.manifest["events"].as_array().unwrap().clone())
        .filter(|e| e.get("reactions").is_some())
        .count();
    assert!(
        with_reactions > 0,
        "the docs examples with reactions keep them"
    );
}

#[test]
fn attachment_files_of_ids_that_read_alike_do_not_overwrite_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shared = |id: &str, url: &str| {
        chat_message(
            CHAT,
            id,
            Some(ADA),
            "2024-05-01T09:00:00.000Z",
            "see file",
            json!({"attachments": [{"id": "x", "contentType": "reference", "contentUrl": url,
                "content": null, "name": "Plan.docx", "thumbnailUrl": null, "teamsAppId": null}]}),
        )
    };
    // `a:b` and `a_b` make the same safe file name prefix.
    let input = ArchiveInput {
        messages: vec![
            (shared("a:b", "https://x.example/one/Plan.docx"), vec![]),
            (shared("a_b", "https://x.example/two/Plan.docx"), vec![]),
        ],
        ..ArchiveInput::default()
    };
    write_archive(&archive, &input);
    let out = dir.path().join("export");
    run_export(request(&archive, &out, &[Format::Rsmf], everything()));
    let rsmf = rsmf_files(&out);
    let file = rsmf.values().next().unwrap();
    let mut urls = Vec::new();
    for event in file.manifest["events"].as_array().unwrap() {
        let id = event["attachments"][0]["id"].as_str().unwrap();
        urls.push(String::from_utf8(file.zip_entries[id].clone()).unwrap());
    }
    assert_eq!(urls.len(), 2);
    assert!(
        urls[0].contains("/one/") != urls[1].contains("/one/"),
        "{urls:?}"
    );
    assert!(urls.iter().any(|u| u.contains("/two/")), "{urls:?}");
    assert_eq!(
        file.zip_entries.len(),
        3,
        "the manifest and two attachment files"
    );
}

#[test]
fn a_damaged_archive_file_is_named_and_the_rest_still_exports() {
    let (dir, archive) = matter_archive();
    let damaged = files(&archive)
        .into_keys()
        .find(|k| k.starts_with("chat_messages/date=2024-05-02/"))
        .unwrap();
    let size = std::fs::metadata(archive.join(&damaged)).unwrap().len() as usize;
    std::fs::write(archive.join(&damaged), vec![b'x'; size]).unwrap();

    let out = dir.path().join("export");
    let report = run_export(request(&archive, &out, &[Format::Jsonl], everything()));
    assert_eq!(report.altered_files, vec![damaged.clone()]);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with(&damaged) && e.contains("not exported")),
        "{:?}",
        report.errors
    );
    let ids = jsonl_ids(&out);
    assert_eq!(ids.len(), 9, "the messages of the other day: {ids:?}");
    let manifest: export::ExportManifest =
        serde_json::from_slice(&std::fs::read(out.join(export::MANIFEST_FILE)).unwrap()).unwrap();
    let entry = manifest
        .archive_files
        .iter()
        .find(|f| f.path == damaged)
        .unwrap();
    assert_eq!(entry.check, archive::records::FileCheck::Mismatch);
    assert!(entry.error.is_some());
}

#[test]
fn a_recorded_file_the_archive_lost_is_named_with_its_day_and_the_rest_still_exports() {
    let (dir, archive) = matter_archive();
    let lost = files(&archive)
        .into_keys()
        .find(|k| k.starts_with("chat_messages/date=2024-05-02/"))
        .unwrap();
    // The whole day goes: its folder is not listed either, and must still be read.
    std::fs::remove_dir_all(archive.join(&lost).parent().unwrap()).unwrap();
    // So do a custodian file and a directory snapshot, read beside the messages.
    let mut expected = vec![lost.clone()];
    for table in ["chat_message_custodians/", "directory/users/"] {
        let file = files(&archive)
            .into_keys()
            .find(|k| k.starts_with(table))
            .unwrap();
        std::fs::remove_file(archive.join(&file)).unwrap();
        expected.push(file);
    }

    let out = dir.path().join("export");
    let report = run_export(request(&archive, &out, &[Format::Jsonl], everything()));
    let mut missing = report.missing_files.clone();
    missing.sort();
    expected.sort();
    assert_eq!(missing, expected);
    assert!(report.altered_files.is_empty() && report.unrecorded_files.is_empty());
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.starts_with(&lost) && e.contains("missing from the archive")),
        "{:?}",
        report.errors
    );
    let ids = jsonl_ids(&out);
    assert_eq!(ids.len(), 9, "the messages of the other day: {ids:?}");
}
