//! JSONL: one archived message version per line, its columns and `raw_json` as stored,
//! so `content_sha256` can be recomputed from the line's `raw_json` with any RFC 8785 (JCS) library.

use serde::Serialize;

use super::{ConversationDay, FormatWriter, Step, utc_micros};
use crate::content::ExportedPiece;
use crate::conversation::ConversationKey;
use crate::error::ExportError;
use crate::output::{OutputCounts, OutputFile, Outputs};
use crate::rows::TableRow;
use crate::rows::VersionRow;
use crate::selection::Format;
use crate::view::MessageView;

pub(crate) const FILE: &str = "messages.jsonl";

/// The columns of a line, in this order.
#[derive(Serialize)]
pub(crate) struct VersionRecord<'a> {
    pub date: String,
    pub conversation_type: &'static str,
    pub chat_id: Option<&'a str>,
    pub team_id: Option<&'a str>,
    pub channel_id: Option<&'a str>,
    pub id: Option<&'a str>,
    pub reply_to_id: Option<&'a str>,
    pub message_type: Option<&'a str>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub last_edited_date_time: Option<String>,
    pub deleted_date_time: Option<String>,
    pub from_user_id: Option<&'a str>,
    pub from_user_display_name: Option<&'a str>,
    pub from_application_id: Option<&'a str>,
    pub from_application_display_name: Option<&'a str>,
    pub importance: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub body_content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_content: Option<&'a str>,
    pub body_text: Option<&'a str>,
    /// 1 for the oldest archived version.
    pub version: usize,
    pub versions: usize,
    pub is_latest_version: bool,
    pub custodians: &'a [String],
    pub content_sha256: &'a str,
    pub source: Option<&'a str>,
    pub fetched_at: Option<String>,
    pub run_id: Option<&'a str>,
    pub archive_file: &'a str,
    pub archive_row: u64,
    /// What the version points to (images, files), and where the export holds the bytes.
    pub contents: Vec<PieceRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_json: Option<&'a str>,
}

/// A piece of content in a line: the archived facts and the export's copy.
#[derive(Serialize)]
pub(crate) struct PieceRecord<'a> {
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub size: Option<i64>,
    pub blob_sha256: Option<&'a str>,
    /// As archived: `ok`, `not_found`, `forbidden`, `too_large`, `reference` or `failed`.
    pub status: &'a str,
    pub status_detail: Option<&'a str>,
    /// `ok` when `file` holds the bytes, else why not (the archived status, or
    /// `blob_missing` / `blob_altered`).
    pub export_status: &'a str,
    /// Relative to the export folder.
    pub file: Option<&'a str>,
    pub reference: &'a str,
}

impl<'a> PieceRecord<'a> {
    pub fn new(exported: &'a ExportedPiece) -> Self {
        let piece = &exported.piece;
        PieceRecord {
            kind: piece.kind.as_str(),
            name: piece.name.as_deref(),
            content_type: piece.content_type.as_deref(),
            size: piece.size,
            blob_sha256: piece.blob_sha256.as_deref(),
            status: piece.status.as_str(),
            status_detail: piece.status_detail.as_deref(),
            export_status: exported.status(),
            file: exported.file.as_deref(),
            reference: &piece.reference,
        }
    }
}

impl<'a> VersionRecord<'a> {
    pub fn new(date: String, row: &'a VersionRow, version: usize, versions: usize) -> Self {
        let (conversation_type, chat_id, team_id, channel_id) = match &row.conversation {
            ConversationKey::Chat { chat_id } => ("chat", Some(chat_id.as_str()), None, None),
            ConversationKey::Channel {
                team_id,
                channel_id,
            } => (
                "channel",
                None,
                Some(team_id.as_str()).filter(|t| !t.is_empty()),
                Some(channel_id.as_str()),
            ),
            ConversationKey::Unknown => ("unknown", None, None, None),
        };
        VersionRecord {
            date,
            conversation_type,
            chat_id,
            team_id,
            channel_id,
            id: row.id.as_deref(),
            reply_to_id: row.reply_to_id.as_deref(),
            message_type: row.message_type.as_deref(),
            created_date_time: row.created_us.map(utc_micros),
            last_modified_date_time: row.last_modified_us.map(utc_micros),
            last_edited_date_time: row.last_edited_us.map(utc_micros),
            deleted_date_time: row.deleted_us.map(utc_micros),
            from_user_id: row.from_user_id.as_deref(),
            from_user_display_name: row.from_user_display_name.as_deref(),
            from_application_id: row.from_application_id.as_deref(),
            from_application_display_name: row.from_application_display_name.as_deref(),
            importance: row.importance.as_deref(),
            subject: row.subject.as_deref(),
            body_content_type: row.body_content_type.as_deref(),
            body_content: row.body_content.as_deref(),
            body_text: row.body_text.as_deref(),
            version,
            versions,
            is_latest_version: version == versions,
            custodians: &row.custodians,
            content_sha256: &row.content_sha256,
            source: row.source.as_deref(),
            fetched_at: row.fetched_at_us.map(utc_micros),
            run_id: row.run_id.as_deref(),
            archive_file: &row.archive_file,
            archive_row: row.row_in_file,
            contents: Vec::new(),
            raw_json: Some(&row.raw_json),
        }
    }
}

/// The versions of a message a flat format writes: every one, or only the latest.
pub(crate) fn exported_versions<'m>(
    view: &MessageView<'m>,
    all_versions: bool,
) -> impl Iterator<Item = (usize, &'m VersionRow)> {
    let versions = view.message.versions();
    let skip = if all_versions { 0 } else { versions.len() - 1 };
    versions
        .iter()
        .enumerate()
        .skip(skip)
        .map(|(i, v)| (i + 1, v))
}

pub(crate) struct JsonlWriter {
    all_versions: bool,
    file: Option<OutputFile>,
    counts: OutputCounts,
    line: Vec<u8>,
}

impl JsonlWriter {
    pub fn new(all_versions: bool) -> Self {
        JsonlWriter {
            all_versions,
            file: None,
            counts: OutputCounts {
                versions: Some(0),
                ..OutputCounts::default()
            },
            line: Vec::new(),
        }
    }

    fn file(&mut self, outputs: &Outputs) -> Result<&mut OutputFile, ExportError> {
        if self.file.is_none() {
            self.file = Some(outputs.create(FILE)?);
        }
        Ok(self.file.as_mut().expect("just created"))
    }
}

impl FormatWriter for JsonlWriter {
    fn message(&mut self, day: &ConversationDay, view: &MessageView, out: &mut Outputs) -> Step {
        let total = view.message.versions().len();
        let mut lines = 0;
        self.line.clear();
        for (number, row) in exported_versions(view, self.all_versions) {
            let mut record = VersionRecord::new(day.date(), row, number, total);
            record.contents = view.contents[number - 1]
                .iter()
                .map(PieceRecord::new)
                .collect();
            serde_json::to_writer(&mut self.line, &record).map_err(|e| ExportError::Encode {
                path: out.root().join(FILE),
                reason: format!("{}: {e}", row.place()),
            })?;
            self.line.push(b'\n');
            lines += 1;
        }
        let line = std::mem::take(&mut self.line);
        let written = self.file(out)?.put(&line);
        self.line = line;
        written?;
        self.counts.messages += 1;
        *self.counts.versions.get_or_insert(0) += lines;
        Ok(())
    }

    fn finish(&mut self, outputs: &mut Outputs) -> Step {
        // An export that selected nothing still says so with an empty file.
        self.file(outputs)?;
        let file = self.file.take().expect("created above");
        outputs.close(file, Format::Jsonl, std::mem::take(&mut self.counts))
    }
}
