//! `message_contents`: which message version holds which inline image, file or mail
//! attachment, and whether its bytes were stored. The bytes themselves are blobs named by
//! their SHA-256; a row names its blob by `blob_sha256`, or says why there is none.
//!
//! This module also finds what a message points to ([`chat_message_references`],
//! [`mail_has_attachments`]) and who a message version is ([`MessageIdentity`]), so the
//! fetcher of content and the table agree on both.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Date32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::columns::utc_micros;
use crate::table::ColumnDoc;

/// What a piece of content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    /// An inline image, code snippet or sticker of a chat or channel message
    /// (`.../hostedContents/{id}/$value`).
    HostedContent,
    /// A file in SharePoint or OneDrive that a chat or channel message links
    /// (`attachments[]` with `contentType: reference`), read through `/shares`.
    File,
    /// A mail `fileAttachment`: its bytes.
    MailFileAttachment,
    /// A mail `itemAttachment` (a message, event or contact): its MIME.
    MailItemAttachment,
    /// A mail `referenceAttachment`: a link, kept as metadata only.
    MailReferenceAttachment,
    /// A mail message version's own MIME (`/messages/{id}/$value`).
    MailMime,
}

impl ContentKind {
    /// The stable name written in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::HostedContent => "hosted_content",
            ContentKind::File => "file",
            ContentKind::MailFileAttachment => "mail_file_attachment",
            ContentKind::MailItemAttachment => "mail_item_attachment",
            ContentKind::MailReferenceAttachment => "mail_reference_attachment",
            ContentKind::MailMime => "mail_mime",
        }
    }

    /// Every kind.
    pub const ALL: [ContentKind; 6] = [
        ContentKind::HostedContent,
        ContentKind::File,
        ContentKind::MailFileAttachment,
        ContentKind::MailItemAttachment,
        ContentKind::MailReferenceAttachment,
        ContentKind::MailMime,
    ];

    /// The kind whose stable name is `name`.
    pub fn parse(name: &str) -> Option<ContentKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Whether the bytes of a piece were stored, and if not, why.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ContentStatus {
    /// Stored: `blob_sha256` names the blob.
    Ok,
    /// Graph answered 404: the content (or its message, or its file) is gone.
    NotFound,
    /// Graph answered 403: the app may not read it.
    Forbidden,
    /// Larger than the configured cap; not fetched.
    TooLarge,
    /// Kept as metadata only by design (a mail reference attachment is a link).
    Reference,
    /// Anything else, after retries; `status_detail` says what.
    Failed,
}

impl ContentStatus {
    /// The stable name written in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentStatus::Ok => "ok",
            ContentStatus::NotFound => "not_found",
            ContentStatus::Forbidden => "forbidden",
            ContentStatus::TooLarge => "too_large",
            ContentStatus::Reference => "reference",
            ContentStatus::Failed => "failed",
        }
    }

    /// Every status.
    pub const ALL: [ContentStatus; 6] = [
        ContentStatus::Ok,
        ContentStatus::NotFound,
        ContentStatus::Forbidden,
        ContentStatus::TooLarge,
        ContentStatus::Reference,
        ContentStatus::Failed,
    ];

    /// The status whose stable name is `name`.
    pub fn parse(name: &str) -> Option<ContentStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Something a chat message points to, as the message says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentReference {
    pub kind: ContentKind,
    /// For hosted content, the Graph path after the host (`v1.0/chats/.../$value`);
    /// for a file, its sharing URL (`contentUrl`).
    pub reference: String,
    /// The hosted content's id, or the attachment's id in the message.
    pub graph_id: Option<String>,
    pub name: Option<String>,
}

/// The message version a piece belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageIdentity {
    /// `chat_messages` or `mail_messages`.
    pub table: &'static str,
    pub id: Option<String>,
    /// The version's `content_sha256` in its table.
    pub content_sha256: String,
    pub chat_id: Option<String>,
    pub team_id: Option<String>,
    pub channel_id: Option<String>,
    pub custodian_user_id: Option<String>,
    /// The day (since 1970-01-01) of the message row's partition; `None` when its
    /// timestamps are unusable (the row then goes to its fetch day, as its message does).
    pub day: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChatMessageLinks {
    id: Option<String>,
    chat_id: Option<String>,
    channel_identity: Option<ChannelIdentity>,
    body: Option<Body>,
    #[serde(default)]
    attachments: Option<Vec<Attachment>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelIdentity {
    team_id: Option<String>,
    channel_id: Option<String>,
}

#[derive(Deserialize)]
struct Body {
    content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attachment {
    id: Option<String>,
    content_type: Option<String>,
    content_url: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailLinks {
    id: Option<String>,
    has_attachments: Option<bool>,
}

/// The Graph hosts whose hosted-content URLs are followed (national clouds included).
const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];

/// The Graph path of a hosted content `$value` URL found in a body, if it is one: only a
/// Graph host, a version prefix, a chat or team message path and `hostedContents/{id}/$value`
/// are followed, so a body can never make the archiver send its token elsewhere.
pub fn hosted_content_path(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    if !GRAPH_HOSTS.iter().any(|h| host.eq_ignore_ascii_case(h)) {
        return None;
    }
    let path = path.split(['?', '#']).next()?;
    let segments: Vec<&str> = path.split('/').collect();
    let n = segments.len();
    let valid = n >= 7
        && matches!(segments[0], "v1.0" | "beta")
        && matches!(segments[1], "chats" | "teams")
        && segments[n - 1] == "$value"
        && segments[n - 3] == "hostedContents"
        && segments
            .iter()
            .all(|s| !s.is_empty() && *s != ".." && *s != ".");
    valid.then(|| (path.to_string(), segments[n - 2].to_string()))
}

/// What a chat message points to: the hosted contents its body shows and the files it
/// links. Cards are inside the message already and are not listed.
pub fn chat_message_references(raw: &str) -> Result<Vec<ContentReference>, String> {
    // Most messages point to nothing; skip the parse for them.
    if !raw.contains("hostedContents") && !raw.contains("\"reference\"") {
        return Ok(Vec::new());
    }
    let links: ChatMessageLinks = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    let mut out: Vec<ContentReference> = Vec::new();
    if let Some(html) = links.body.and_then(|b| b.content) {
        for url in image_sources(&html) {
            if let Some((path, id)) = hosted_content_path(&url)
                && !out.iter().any(|r| r.reference == path)
            {
                out.push(ContentReference {
                    kind: ContentKind::HostedContent,
                    reference: path,
                    graph_id: Some(id),
                    name: None,
                });
            }
        }
    }
    for attachment in links.attachments.unwrap_or_default() {
        if attachment.content_type.as_deref() != Some("reference") {
            continue;
        }
        let Some(url) = attachment.content_url.filter(|u| u.starts_with("https://")) else {
            continue;
        };
        if !out.iter().any(|r| r.reference == url) {
            out.push(ContentReference {
                kind: ContentKind::File,
                reference: url,
                graph_id: attachment.id,
                name: attachment.name,
            });
        }
    }
    Ok(out)
}

/// Whether a mail message version says it has attachments (inline ones included).
pub fn mail_has_attachments(raw: &str) -> bool {
    raw.contains("hasAttachments")
        && serde_json::from_str::<MailLinks>(raw)
            .ok()
            .and_then(|m| m.has_attachments)
            .unwrap_or(false)
}

/// The `src` values of `<img>` tags, entity `&amp;` undone.
fn image_sources(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(found) = lower[at..].find("<img") {
        let start = at + found;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        if let Some(src) = tag_lower.find("src=") {
            let value = &tag[src + 4..];
            let (quote, value) = match value.chars().next() {
                Some(q @ ('"' | '\'')) => (Some(q), &value[1..]),
                _ => (None, value),
            };
            let stop = match quote {
                Some(q) => value.find(q),
                None => value.find(|c: char| c.is_whitespace()),
            }
            .unwrap_or(value.len());
            out.push(value[..stop].replace("&amp;", "&"));
        }
        at = end;
    }
    out
}

impl MessageIdentity {
    /// The identity of a chat message version, as `chat_messages` stores it.
    pub fn chat(raw: &str) -> Result<MessageIdentity, String> {
        let links: ChatMessageLinks = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        let channel = links.channel_identity;
        Ok(MessageIdentity {
            table: "chat_messages",
            id: links.id,
            content_sha256: content_hash(raw)?,
            chat_id: links.chat_id,
            team_id: channel.as_ref().and_then(|c| c.team_id.clone()),
            channel_id: channel.and_then(|c| c.channel_id),
            custodian_user_id: None,
            day: crate::DayReader::new().day(raw, crate::CHAT_MESSAGE_DAY_KEYS),
        })
    }

    /// The identity of a mail message version in a custodian's mailbox.
    pub fn mail(raw: &str, custodian_user_id: &str) -> Result<MessageIdentity, String> {
        let links: MailLinks = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        Ok(MessageIdentity {
            table: "mail_messages",
            id: links.id,
            content_sha256: content_hash(raw)?,
            chat_id: None,
            team_id: None,
            channel_id: None,
            custodian_user_id: Some(custodian_user_id.to_string()),
            day: crate::DayReader::new().day(raw, crate::MAIL_MESSAGE_DAY_KEYS),
        })
    }
}

fn content_hash(raw: &str) -> Result<String, String> {
    crate::canonical_sha256(raw)
        .map(hex::encode)
        .map_err(|e| e.to_string())
}

/// One piece of content a message version points to, and what became of it: what a
/// `message_contents` row says of it, as an export reads it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ContentPiece {
    pub kind: ContentKind,
    /// What the message names it by (see [`ContentReference::reference`]; for mail, the
    /// attachment id, or the message id for its MIME).
    pub reference: String,
    pub graph_id: Option<String>,
    pub name: Option<String>,
    pub content_type: Option<String>,
    /// Bytes of the content (stored, or announced when not fetched).
    pub size: Option<i64>,
    /// SHA-256 (hex) of the stored bytes: the blob's name.
    pub blob_sha256: Option<String>,
    pub status: ContentStatus,
    pub status_detail: Option<String>,
}

/// What became of one piece of one message version: a `message_contents` row.
#[derive(Debug, Clone)]
pub struct ContentRow {
    pub piece: ContentPiece,
    pub drive_id: Option<String>,
    pub etag: Option<String>,
    pub ctag: Option<String>,
    /// The metadata Graph sent for it (driveItem, attachment), as sent.
    pub metadata_json: Option<String>,
}

impl ContentRow {
    /// A row for `reference` with nothing fetched yet and the given status.
    pub fn new(kind: ContentKind, reference: String, status: ContentStatus) -> ContentRow {
        ContentRow {
            piece: ContentPiece {
                kind,
                reference,
                graph_id: None,
                name: None,
                content_type: None,
                size: None,
                blob_sha256: None,
                status,
                status_detail: None,
            },
            drive_id: None,
            etag: None,
            ctag: None,
            metadata_json: None,
        }
    }

    /// The row's identity: the message version, the piece, and what became of it.
    fn identity(&self, message: &MessageIdentity) -> String {
        let mut hasher = Sha256::new();
        for part in [
            message.content_sha256.as_str(),
            self.piece.kind.as_str(),
            self.piece.reference.as_str(),
            self.piece.status.as_str(),
            self.piece.blob_sha256.as_deref().unwrap_or(""),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        hex::encode(hasher.finalize())
    }
}

/// The columns of `message_contents`: name, type, nullable, meaning.
const COLUMNS: &[(&str, ColumnType, bool, &str)] = &[
    (
        "message_table",
        ColumnType::Text,
        false,
        "The table of the message: `chat_messages` or `mail_messages`",
    ),
    (
        "message_id",
        ColumnType::Text,
        true,
        "Graph `id` of the message",
    ),
    (
        "message_content_sha256",
        ColumnType::Text,
        false,
        "The message version's `content_sha256` in its table",
    ),
    (
        "chat_id",
        ColumnType::Text,
        true,
        "Graph `chatId` of a chat message",
    ),
    (
        "team_id",
        ColumnType::Text,
        true,
        "Team of a channel message",
    ),
    (
        "channel_id",
        ColumnType::Text,
        true,
        "Channel of a channel message",
    ),
    (
        "custodian_user_id",
        ColumnType::Text,
        true,
        "Mailbox of a mail message",
    ),
    (
        "kind",
        ColumnType::Text,
        false,
        "`hosted_content`, `file`, `mail_file_attachment`, `mail_item_attachment`, `mail_reference_attachment` or `mail_mime`",
    ),
    (
        "reference",
        ColumnType::Text,
        false,
        "What the message names it by: a hosted content's Graph path, a file's sharing URL, a mail attachment's id, or the mail message's id for its MIME",
    ),
    (
        "graph_id",
        ColumnType::Text,
        true,
        "Graph id of the piece: hosted content id, driveItem id, or attachment id",
    ),
    ("name", ColumnType::Text, true, "File or attachment name"),
    (
        "content_type",
        ColumnType::Text,
        true,
        "MIME type of the bytes",
    ),
    (
        "size",
        ColumnType::Int64,
        true,
        "Bytes of the content (stored, or announced by Graph when not fetched)",
    ),
    (
        "blob_sha256",
        ColumnType::Text,
        true,
        "SHA-256 (hex) of the bytes: they are at `blobs/sha256/<first 2 hex>/<blob_sha256>`; null unless `status = 'ok'`",
    ),
    (
        "blob_compression",
        ColumnType::Text,
        true,
        "How the blob is stored: `none` (its bytes are the content's)",
    ),
    (
        "drive_id",
        ColumnType::Text,
        true,
        "Drive of a SharePoint or OneDrive file",
    ),
    (
        "etag",
        ColumnType::Text,
        true,
        "The driveItem's `eTag` when it was read",
    ),
    (
        "ctag",
        ColumnType::Text,
        true,
        "The driveItem's `cTag` (changes with its content) when it was read",
    ),
    (
        "metadata_json",
        ColumnType::Text,
        true,
        "The driveItem or attachment metadata exactly as Graph sent it",
    ),
    (
        "status",
        ColumnType::Text,
        false,
        "`ok` (stored), `not_found` (404), `forbidden` (403), `too_large` (over the cap), `reference` (a link by design) or `failed`",
    ),
    (
        "status_detail",
        ColumnType::Text,
        true,
        "Why it was not stored, as Graph or the archiver said",
    ),
    (
        "content_sha256",
        ColumnType::Text,
        false,
        "The row's identity: SHA-256 of (message version, kind, reference, status, blob)",
    ),
    (
        "fetched_at",
        ColumnType::Timestamp,
        false,
        "When the archiver fetched it (UTC)",
    ),
    (
        "run_id",
        ColumnType::Text,
        false,
        "The archiver run that fetched it",
    ),
    (
        "date",
        ColumnType::Date,
        false,
        "Partition: the date of the message row in its table",
    ),
];

#[derive(Clone, Copy)]
enum ColumnType {
    Text,
    Int64,
    Timestamp,
    Date,
}

impl ColumnType {
    fn data_type(self) -> DataType {
        match self {
            ColumnType::Text => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Timestamp => utc_micros(),
            ColumnType::Date => DataType::Date32,
        }
    }
}

pub(crate) static MESSAGE_CONTENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(
        COLUMNS
            .iter()
            .map(|(name, ty, nullable, _)| ArrowField::new(*name, ty.data_type(), *nullable))
            .collect::<Vec<_>>(),
    ))
});

pub(crate) fn message_contents_docs() -> Vec<ColumnDoc> {
    COLUMNS
        .iter()
        .map(|(name, ty, nullable, meaning)| ColumnDoc {
            name: name.to_string(),
            path: String::new(),
            data_type: ty.data_type(),
            nullable: *nullable,
            meaning: meaning.to_string(),
        })
        .collect()
}

/// Builds `message_contents` batches.
pub struct MessageContentBuilder {
    text: Vec<StringBuilder>,
    size: Int64Builder,
    fetched_at: TimestampMicrosecondBuilder,
    date: Date32Builder,
    rows: usize,
    bytes: usize,
}

/// The text columns, in schema order.
const TEXT_COLUMNS: usize = 22;

impl Default for MessageContentBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageContentBuilder {
    pub fn new() -> Self {
        MessageContentBuilder {
            text: (0..TEXT_COLUMNS).map(|_| StringBuilder::new()).collect(),
            size: Int64Builder::new(),
            fetched_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            date: Date32Builder::new(),
            rows: 0,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Memory the rows appended so far take, roughly.
    pub fn estimated_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one row for `row` of `message`, fetched at `fetched_at` by `run_id`.
    pub fn append(
        &mut self,
        message: &MessageIdentity,
        row: &ContentRow,
        fetched_at: DateTime<Utc>,
        run_id: &str,
    ) {
        let identity = row.identity(message);
        let compression = row.piece.blob_sha256.as_ref().map(|_| "none".to_string());
        let text: [Option<&str>; TEXT_COLUMNS] = [
            Some(message.table),
            message.id.as_deref(),
            Some(&message.content_sha256),
            message.chat_id.as_deref(),
            message.team_id.as_deref(),
            message.channel_id.as_deref(),
            message.custodian_user_id.as_deref(),
            Some(row.piece.kind.as_str()),
            Some(&row.piece.reference),
            row.piece.graph_id.as_deref(),
            row.piece.name.as_deref(),
            row.piece.content_type.as_deref(),
            row.piece.blob_sha256.as_deref(),
            compression.as_deref(),
            row.drive_id.as_deref(),
            row.etag.as_deref(),
            row.ctag.as_deref(),
            row.metadata_json.as_deref(),
            Some(row.piece.status.as_str()),
            row.piece.status_detail.as_deref(),
            Some(&identity),
            Some(run_id),
        ];
        for (builder, value) in self.text.iter_mut().zip(text) {
            self.bytes += value.map_or(0, str::len) + 4;
            builder.append_option(value);
        }
        self.size.append_option(row.piece.size);
        self.fetched_at.append_value(fetched_at.timestamp_micros());
        let fallback = crate::time::day_of(fetched_at.timestamp_micros());
        self.date.append_value(message.day.unwrap_or(fallback));
        self.bytes += 24;
        self.rows += 1;
    }

    /// The rows appended so far as one batch; the builder starts over.
    pub fn finish(&mut self) -> RecordBatch {
        let mut text = self
            .text
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len());
        for (name, ty, _, _) in COLUMNS {
            columns.push(match (ty, *name) {
                (ColumnType::Text, _) => text.next().expect("a builder per text column"),
                (ColumnType::Int64, _) => Arc::new(self.size.finish()),
                (ColumnType::Timestamp, _) => Arc::new(self.fetched_at.finish()),
                (ColumnType::Date, _) => Arc::new(self.date.finish()),
            });
        }
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(MESSAGE_CONTENTS.clone(), columns)
            .expect("message_contents columns match their schema")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_columns_are_counted_once() {
        let text = COLUMNS
            .iter()
            .filter(|(_, ty, _, _)| matches!(ty, ColumnType::Text))
            .count();
        assert_eq!(text, TEXT_COLUMNS);
    }

    #[test]
    fn hosted_content_urls_are_followed_only_on_graph() {
        let url = "https://graph.microsoft.com/beta/chats/19:2da4@thread.v2/messages/1616991962672/hostedContents/aWQ9eF8w/$value";
        assert_eq!(
            hosted_content_path(url),
            Some((
                "beta/chats/19:2da4@thread.v2/messages/1616991962672/hostedContents/aWQ9eF8w/$value".into(),
                "aWQ9eF8w".into()
            ))
        );
        for bad in [
            "http://graph.microsoft.com/v1.0/chats/c/messages/m/hostedContents/h/$value",
            "https://evil.example/v1.0/chats/c/messages/m/hostedContents/h/$value",
            "https://graph.microsoft.com.evil.example/v1.0/chats/c/messages/m/hostedContents/h/$value",
            "https://graph.microsoft.com/v1.0/users/u/messages/m/hostedContents/h/$value",
            "https://graph.microsoft.com/v1.0/chats/c/messages/m/hostedContents/../$value",
            "https://graph.microsoft.com/v1.0/chats/c/messages/m/attachments/h/$value",
        ] {
            assert_eq!(hosted_content_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_docs_fixture_with_an_inline_image_or_file_yields_its_references() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/graph-docs");
        let post4 = std::fs::read_to_string(root.join("v1.0/chatmessage-post-4.json")).unwrap();
        let refs = chat_message_references(&post4).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].kind, ContentKind::File);
        assert_eq!(refs[0].name.as_deref(), Some("Budget.docx"));
        assert!(
            refs[0]
                .reference
                .starts_with("https://m365x987948.sharepoint.com/")
        );
        let post5 = std::fs::read_to_string(root.join("beta/chatmessage-post-5.json")).unwrap();
        let refs = chat_message_references(&post5).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].kind, ContentKind::HostedContent);
        assert!(refs[0].reference.starts_with("beta/chats/19:2da4c29f6d7041eca70b638b43d45437@thread.v2/messages/1616991962672/hostedContents/"));
        let plain = r#"{"id":"1","body":{"content":"<p>hi</p>"}}"#;
        assert!(chat_message_references(plain).unwrap().is_empty());
    }

    #[test]
    fn kinds_and_statuses_serialise_under_the_names_the_columns_hold() {
        for kind in ContentKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(ContentKind::parse(kind.as_str()), Some(kind));
        }
        for status in ContentStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(ContentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ContentStatus::TooLarge.as_str(), "too_large");
        assert_eq!(ContentKind::parse("meeting_recording"), None);
    }

    #[test]
    fn rows_of_one_version_and_piece_differ_by_what_became_of_them() {
        let message = MessageIdentity::chat(
            r#"{"id":"1","chatId":"c","createdDateTime":"2024-05-01T10:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(message.day, Some(19844));
        let mut ok = ContentRow::new(ContentKind::File, "https://x/y".into(), ContentStatus::Ok);
        ok.piece.blob_sha256 = Some("ab".repeat(32));
        let gone = ContentRow::new(
            ContentKind::File,
            "https://x/y".into(),
            ContentStatus::NotFound,
        );
        assert_ne!(ok.identity(&message), gone.identity(&message));
        assert_eq!(ok.identity(&message), ok.clone().identity(&message));
        let mut builder = MessageContentBuilder::new();
        builder.append(&message, &ok, Utc::now(), "run");
        builder.append(&message, &gone, Utc::now(), "run");
        let batch = builder.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), MESSAGE_CONTENTS.clone());
        assert!(builder.is_empty());
    }

    #[test]
    fn statuses_serialise_by_their_column_names() {
        for status in [
            ContentStatus::NotFound,
            ContentStatus::Ok,
            ContentStatus::TooLarge,
        ] {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn kinds_and_statuses_read_back_by_their_names() {
        for kind in [
            ContentKind::HostedContent,
            ContentKind::MailMime,
            ContentKind::File,
        ] {
            assert_eq!(ContentKind::parse(kind.as_str()), Some(kind));
        }
        for status in [
            ContentStatus::Ok,
            ContentStatus::TooLarge,
            ContentStatus::Failed,
        ] {
            assert_eq!(ContentStatus::parse(status.as_str()), Some(status));
        }
    }
}
