//! Archives for the tests, written by the real transform and sink crates, and readers
//! for what an export writes (RSMF envelopes, their zips and manifests).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use transform::{
    ChatMessageBuilder, ContentKind, ContentRow, ContentStatus, DirectoryChatBuilder,
    DirectoryUserBuilder, MailMessageBuilder, MessageContentBuilder, MessageIdentity, RowContext,
};

/// What goes into a test archive: chat items held by custodians, mail, users, chats, and
/// what messages point to (`message_contents` rows and blobs).
#[derive(Default)]
pub struct ArchiveInput {
    /// (Graph item, custodian user ids that held it).
    pub messages: Vec<(String, Vec<String>)>,
    pub users: Vec<String>,
    pub chats: Vec<String>,
    /// (mail item, the mailbox it was read from).
    pub mail: Vec<(String, String)>,
    /// (the message version, what became of one piece it points to).
    pub contents: Vec<(MessageIdentity, ContentRow)>,
    /// Bytes stored as blobs.
    pub blobs: Vec<Vec<u8>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ArchiveInput {
    /// A piece of chat message `item` (or of mail `item` read from `mailbox`) whose
    /// `bytes` were stored; its blob's SHA-256.
    #[allow(clippy::too_many_arguments)]
    pub fn stored(
        &mut self,
        item: &str,
        mailbox: Option<&str>,
        kind: ContentKind,
        reference: &str,
        name: Option<&str>,
        content_type: &str,
        bytes: &[u8],
    ) -> String {
        let sha = sha256_hex(bytes);
        let mut row = ContentRow::new(kind, reference.to_string(), ContentStatus::Ok);
        row.piece.name = name.map(str::to_string);
        row.piece.content_type = Some(content_type.to_string());
        row.piece.size = Some(bytes.len() as i64);
        row.piece.blob_sha256 = Some(sha.clone());
        self.piece(item, mailbox, row);
        self.blobs.push(bytes.to_vec());
        sha
    }

    /// A piece of a message that was not stored, and why.
    pub fn not_stored(
        &mut self,
        item: &str,
        mailbox: Option<&str>,
        kind: ContentKind,
        reference: &str,
        name: Option<&str>,
        status: ContentStatus,
    ) {
        let mut row = ContentRow::new(kind, reference.to_string(), status);
        row.piece.name = name.map(str::to_string);
        row.piece.status_detail = Some(format!("Graph answered {}", status.as_str()));
        self.piece(item, mailbox, row);
    }

    pub fn piece(&mut self, item: &str, mailbox: Option<&str>, row: ContentRow) {
        let identity = match mailbox {
            Some(mailbox) => MessageIdentity::mail(item, mailbox),
            None => MessageIdentity::chat(item),
        }
        .expect("a message identity");
        self.contents.push((identity, row));
    }
}

pub fn fetched_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap()
}

/// Writes `input` as an archive at `dir` (one commit), state under `dir/_state`.
pub fn write_archive(dir: &Path, input: &ArchiveInput) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let out = dir.to_str().unwrap();
        let options = sink::WriterOptions {
            run_id: "test-run".into(),
            ..sink::WriterOptions::default()
        };
        let (mut writer, _) = sink::ArchiveWriter::open(
            out,
            &format!("{out}/_state"),
            archive::Table::specs(),
            options,
        )
        .await
        .expect("the archive opens");
        let mut chat = ChatMessageBuilder::new();
        for (item, custodians) in &input.messages {
            let holders: Vec<Option<&str>> = if custodians.is_empty() {
                vec![None]
            } else {
                custodians.iter().map(|c| Some(c.as_str())).collect()
            };
            for custodian in holders {
                let ctx = RowContext {
                    source: "test",
                    fetched_at: fetched_at(),
                    run_id: "test-run",
                    custodian_user_id: custodian,
                };
                chat.append(item, &ctx).expect("a chat message");
            }
        }
        let batches = chat.finish();
        let ctx = RowContext {
            source: "test",
            fetched_at: fetched_at(),
            run_id: "test-run",
            custodian_user_id: None,
        };
        let mut users = DirectoryUserBuilder::new();
        for user in &input.users {
            users.append(user, &ctx).expect("a user");
        }
        let mut chats = DirectoryChatBuilder::new();
        for c in &input.chats {
            chats.append(c, &ctx).expect("a chat");
        }
        let mut mail = MailMessageBuilder::new();
        for (item, mailbox) in &input.mail {
            let ctx = RowContext {
                custodian_user_id: Some(mailbox),
                ..ctx
            };
            mail.append(item, &ctx).expect("a mail message");
        }
        let mut contents = MessageContentBuilder::new();
        for (message, row) in &input.contents {
            contents.append(message, row, fetched_at(), "test-run");
        }
        let blobs = sink::BlobStore::new(sink::Location::parse(out).expect("the archive"));
        for bytes in &input.blobs {
            let spool = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(spool.path(), bytes).unwrap();
            blobs
                .put_file(&sha256_hex(bytes), spool.path())
                .await
                .expect("a blob");
        }
        for (table, batch) in [
            ("chat_messages", batches.messages),
            ("chat_message_custodians", batches.custodians),
            ("directory/users", users.finish()),
            ("directory/chats", chats.finish()),
            ("mail_messages", mail.finish()),
            ("message_contents", contents.finish()),
        ] {
            if batch.num_rows() > 0 {
                writer.append(table, &batch).expect("rows buffered");
            }
        }
        writer.commit(Vec::new()).await.expect("committed");
    });
}

pub fn user(id: &str, name: &str, mail: &str) -> String {
    serde_json::json!({"id": id, "displayName": name, "mail": mail, "userPrincipalName": mail})
        .to_string()
}

/// A chat message item. `extra` fields are merged in (and override).
pub fn chat_message(
    chat_id: &str,
    id: &str,
    from: Option<(&str, &str)>,
    created: &str,
    body: &str,
    extra: Value,
) -> String {
    let mut item = serde_json::json!({
        "@odata.type": "#microsoft.graph.chatMessage",
        "id": id,
        "replyToId": null,
        "etag": id,
        "messageType": "message",
        "createdDateTime": created,
        "lastModifiedDateTime": created,
        "lastEditedDateTime": null,
        "deletedDateTime": null,
        "subject": null,
        "summary": null,
        "chatId": chat_id,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": null,
        "channelIdentity": null,
        "policyViolation": null,
        "eventDetail": null,
        "from": from.map(|(id, name)| serde_json::json!({"application": null, "device": null,
            "user": {"@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": id, "displayName": name, "userIdentityType": "aadUser"}})),
        "body": {"contentType": "text", "content": body},
        "attachments": [],
        "mentions": [],
        "reactions": []
    });
    merge(&mut item, extra);
    item.to_string()
}

/// A channel message item.
pub fn channel_message(
    team: &str,
    channel: &str,
    id: &str,
    reply_to: Option<&str>,
    from: (&str, &str),
    created: &str,
    body: &str,
) -> String {
    chat_message(
        "",
        id,
        Some(from),
        created,
        body,
        serde_json::json!({
            "chatId": null,
            "replyToId": reply_to,
            "channelIdentity": {"teamId": team, "channelId": channel},
        }),
    )
}

pub fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        for (k, v) in extra {
            target.insert(k, v);
        }
    }
}

pub fn reaction(kind: &str, user_id: &str, at: &str) -> Value {
    serde_json::json!({"reactionType": kind, "displayName": null, "reactionContentUrl": null, "createdDateTime": at,
        "user": {"application": null, "device": null, "user": {"@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": user_id, "displayName": null, "userIdentityType": "aadUser"}}})
}

/// Every file under `dir`, relative, sorted, with its bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The lines of an export's `messages.jsonl`, parsed.
pub fn jsonl_lines(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("messages.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The message ids of an export's `messages.jsonl`, in its order.
pub fn jsonl_ids(out: &Path) -> Vec<String> {
    jsonl_lines(out)
        .iter()
        .map(|line| line["id"].as_str().unwrap().to_string())
        .collect()
}

/// The rows of a CSV file, each as header -> cell.
pub fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// The `.rsmf` files of an export by relative path, opened and validated.
pub fn rsmf_files(out: &Path) -> BTreeMap<String, Rsmf> {
    let validator = rsmf_validator();
    files(out)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".rsmf"))
        .map(|(name, bytes)| {
            let rsmf = open_rsmf(&bytes);
            assert_valid_rsmf(&name, &rsmf, &validator);
            (name, rsmf)
        })
        .collect()
}

/// What a verification found, as (kind, path) in its order.
pub fn problems_named(report: &export::VerifyReport) -> Vec<(export::ProblemKind, &str)> {
    report
        .problems
        .iter()
        .map(|p| (p.kind, p.path.as_str()))
        .collect()
}

/// An `.rsmf` opened up: its headers, text part, zip entries and manifest.
pub struct Rsmf {
    pub headers: BTreeMap<String, String>,
    pub text: String,
    pub zip_entries: BTreeMap<String, Vec<u8>>,
    pub manifest: Value,
}

pub fn open_rsmf(bytes: &[u8]) -> Rsmf {
    use mail_parser::MimeHeaders;
    // Structured headers as such; every other header (X-RSMF-*) as text, RFC 2047 decoded.
    let message = mail_parser::MessageParser::new()
        .with_mime_headers()
        .with_date_headers()
        .with_address_headers()
        .with_message_ids()
        .default_header_text()
        .parse(bytes)
        .expect("the envelope parses as MIME");
    let mut headers = BTreeMap::new();
    for header in message.headers() {
        let name = header.name.as_str().to_string();
        let value = match &header.value {
            mail_parser::HeaderValue::Text(t) => t.to_string(),
            mail_parser::HeaderValue::TextList(list) => list.join(", "),
            other => format!("{other:?}"),
        };
        headers.insert(name, value);
    }
    let text = message.body_text(0).expect("a text part").to_string();
    let attachments: Vec<_> = message.attachments().collect();
    assert_eq!(attachments.len(), 1, "exactly one attachment, rsmf.zip");
    assert_eq!(attachments[0].attachment_name(), Some("rsmf.zip"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(attachments[0].contents().to_vec()))
        .expect("rsmf.zip is a zip");
    let mut zip_entries = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        zip_entries.insert(entry.name().expect("a UTF-8 entry name").to_string(), data);
    }
    let manifest: Value = serde_json::from_slice(
        zip_entries
            .get("rsmf_manifest.json")
            .expect("rsmf_manifest.json in the zip"),
    )
    .expect("the manifest is JSON");
    Rsmf {
        headers,
        text,
        zip_entries,
        manifest,
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Relativity's RSMF 2.0 manifest schema, with formats (emails, date-times) checked.
pub fn rsmf_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_slice(
        &std::fs::read(repo_root().join("tests/fixtures/rsmf/rsmf_schema_2_0_0.json")).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the RSMF schema compiles")
}

/// Checks a manifest against the schema, and the references inside it the schema cannot
/// express (participants, conversations, parents, attachments in the zip).
pub fn assert_valid_rsmf(name: &str, rsmf: &Rsmf, validator: &jsonschema::Validator) {
    let errors: Vec<String> = validator
        .iter_errors(&rsmf.manifest)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}");
    let m = &rsmf.manifest;
    let participants: Vec<&str> = m["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let conversations: Vec<&str> = m["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let events = m["events"].as_array().unwrap();
    let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    for conversation in m["conversations"].as_array().unwrap() {
        for p in conversation["participants"].as_array().unwrap() {
            assert!(
                participants.contains(&p.as_str().unwrap()),
                "{name}: conversation participant {p}"
            );
        }
        if let Some(c) = conversation["custodian"].as_str() {
            assert!(
                conversation["participants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p == c),
                "{name}: custodian {c} is a conversation participant"
            );
        }
    }
    for event in events {
        assert!(
            conversations.contains(&event["conversation"].as_str().unwrap()),
            "{name}: {event}"
        );
        if let Some(p) = event["participant"].as_str() {
            assert!(participants.contains(&p), "{name}: event participant {p}");
        }
        if let Some(parent) = event["parent"].as_str() {
            assert!(
                ids.contains(&parent),
                "{name}: parent {parent} is an event of the file"
            );
        }
        for r in event["reactions"].as_array().into_iter().flatten() {
            for p in r["participants"].as_array().into_iter().flatten() {
                assert!(
                    participants.contains(&p.as_str().unwrap()),
                    "{name}: reactor {p}"
                );
            }
        }
        for a in event["attachments"].as_array().into_iter().flatten() {
            let id = a["id"].as_str().unwrap();
            let bytes = rsmf
                .zip_entries
                .get(id)
                .unwrap_or_else(|| panic!("{name}: attachment {id} in the zip"));
            assert_eq!(a["size"].as_u64(), Some(bytes.len() as u64));
        }
        for e in event["edits"].as_array().into_iter().flatten() {
            assert!(
                participants.contains(&e["participant"].as_str().unwrap()),
                "{name}: editor"
            );
        }
    }
    let h = &rsmf.headers;
    assert_eq!(
        h.get("X-RSMF-Version").map(String::as_str),
        Some("2.0.0"),
        "{name}"
    );
    assert!(
        h.get("X-RSMF-Generator")
            .is_some_and(|g| g.starts_with("teams-archiver")),
        "{name}"
    );
    assert_eq!(
        h.get("X-RSMF-Application").map(String::as_str),
        Some("Microsoft Teams")
    );
    assert_eq!(
        h.get("X-RSMF-EventCount")
            .and_then(|c| c.parse::<usize>().ok()),
        Some(events.len()),
        "{name}"
    );
    assert_eq!(
        h.get("X-RSMF-AttachmentCount")
            .and_then(|c| c.parse::<usize>().ok()),
        Some(rsmf.zip_entries.len() - 1),
        "{name}"
    );
    assert_eq!(
        h.get("X-RSMF-EventCollectionID").map(String::as_str),
        m["eventcollectionid"].as_str(),
        "{name}"
    );
    assert!(h.contains_key("X-RSMF-Participants"), "{name}");
    let stamps: Vec<&str> = events
        .iter()
        .filter_map(|e| e["timestamp"].as_str())
        .collect();
    if let (Some(first), Some(last)) = (stamps.iter().min(), stamps.iter().max()) {
        assert_eq!(
            h.get("X-RSMF-BeginDate").map(String::as_str),
            Some(*first),
            "{name}"
        );
        assert_eq!(
            h.get("X-RSMF-EndDate").map(String::as_str),
            Some(*last),
            "{name}"
        );
    }
}
