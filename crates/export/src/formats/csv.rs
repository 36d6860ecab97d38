//! CSV: the flat columns of each exported version, RFC 4180 (CRLF, quoted as needed),
//! UTF-8, with a header row. Collections are summarised in one cell each.
//!
//! A spreadsheet opening the file runs a cell that begins with `=`, `+`, `-` or `@` as a
//! formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and some also after a leading tab or
//! carriage return. Message text comes from anyone who can post in a chat, so such cells
//! are neutralised as OWASP recommends: a `'` is put before them, which spreadsheets show
//! as text. `raw` (`--csv-raw`) writes every cell exactly as archived instead.

use super::jsonl::{VersionRecord, exported_versions};
use super::{ConversationDay, FormatWriter, Step, one_line};
use crate::error::ExportError;
use crate::output::{OutputCounts, OutputFile, Outputs};
use crate::selection::Format;
use crate::view::MessageView;

pub(crate) const FILE: &str = "messages.csv";

pub(crate) const HEADER: &[&str] = &[
    "date",
    "conversation_type",
    "chat_id",
    "team_id",
    "channel_id",
    "id",
    "reply_to_id",
    "message_type",
    "created_date_time",
    "last_modified_date_time",
    "last_edited_date_time",
    "deleted_date_time",
    "from_user_id",
    "from_user_display_name",
    "from_application_id",
    "from_application_display_name",
    "importance",
    "subject",
    "body_content_type",
    "body_text",
    "attachments",
    "contents",
    "reactions",
    "version",
    "versions",
    "is_latest_version",
    "custodians",
    "content_sha256",
    "source",
    "fetched_at",
    "run_id",
    "archive_file",
    "archive_row",
];

pub(crate) struct CsvWriter {
    all_versions: bool,
    /// Write cells as archived, formulas and all.
    raw: bool,
    out: Option<csv::Writer<OutputFile>>,
    counts: OutputCounts,
}

impl CsvWriter {
    pub fn new(all_versions: bool, raw: bool) -> Self {
        CsvWriter {
            all_versions,
            raw,
            out: None,
            counts: OutputCounts {
                versions: Some(0),
                ..OutputCounts::default()
            },
        }
    }

    fn writer(&mut self, outputs: &Outputs) -> Result<&mut csv::Writer<OutputFile>, ExportError> {
        if self.out.is_none() {
            let file = outputs.create(FILE)?;
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(file);
            writer
                .write_record(HEADER)
                .map_err(|e| encode_error(outputs, e))?;
            self.out = Some(writer);
        }
        Ok(self.out.as_mut().expect("just created"))
    }
}

fn encode_error(outputs: &Outputs, e: csv::Error) -> ExportError {
    ExportError::Encode {
        path: outputs.root().join(FILE),
        reason: e.to_string(),
    }
}

fn opt(value: Option<&str>) -> &str {
    value.unwrap_or("")
}

/// Whether a spreadsheet could read `cell` as a formula.
fn is_formula_like(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// `cell` as a spreadsheet shows it as text: a leading `'` before anything formula-like.
fn neutralised(cell: &str) -> std::borrow::Cow<'_, str> {
    if is_formula_like(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

impl FormatWriter for CsvWriter {
    fn message(&mut self, day: &ConversationDay, view: &MessageView, out: &mut Outputs) -> Step {
        let total = view.message.versions().len();
        let attachments = view
            .attachments
            .iter()
            .map(|a| match &a.url {
                Some(url) => format!("{} <{url}>", a.display),
                None => a.display.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let reactions = view
            .reactions
            .iter()
            .map(|r| format!("{} x{}", r.value, r.count()))
            .collect::<Vec<_>>()
            .join("; ");
        let all_versions = self.all_versions;
        let mut rows = 0;
        for (number, row) in exported_versions(view, all_versions) {
            let r = VersionRecord::new(day.date(), row, number, total);
            // Each piece: its name, what the export holds of it, its SHA-256 and file.
            let contents = view.contents[number - 1]
                .iter()
                .map(|p| {
                    let mut cell = format!("{} [{}]", p.display_name(), p.status());
                    if let Some(sha) = &p.piece.blob_sha256 {
                        cell.push_str(&format!(" sha256:{}", one_line(sha)));
                    }
                    if let Some(file) = &p.file {
                        cell.push_str(&format!(" {file}"));
                    }
                    cell
                })
                .collect::<Vec<_>>()
                .join("; ");
            let version = r.version.to_string();
            let versions = r.versions.to_string();
            let archive_row = r.archive_row.to_string();
            let custodians = r.custodians.join("; ");
            let is_latest = if r.is_latest_version { "true" } else { "false" };
            // Attachments and reactions are those of the latest version.
            let (attachments, reactions) = if r.is_latest_version {
                (attachments.as_str(), reactions.as_str())
            } else {
                ("", "")
            };
            let record = [
                r.date.as_str(),
                r.conversation_type,
                opt(r.chat_id),
                opt(r.team_id),
                opt(r.channel_id),
                opt(r.id),
                opt(r.reply_to_id),
                opt(r.message_type),
                opt(r.created_date_time.as_deref()),
                opt(r.last_modified_date_time.as_deref()),
                opt(r.last_edited_date_time.as_deref()),
                opt(r.deleted_date_time.as_deref()),
                opt(r.from_user_id),
                opt(r.from_user_display_name),
                opt(r.from_application_id),
                opt(r.from_application_display_name),
                opt(r.importance),
                opt(r.subject),
                opt(r.body_content_type),
                opt(r.body_text),
                attachments,
                &contents,
                reactions,
                &version,
                &versions,
                is_latest,
                &custodians,
                r.content_sha256,
                opt(r.source),
                opt(r.fetched_at.as_deref()),
                opt(r.run_id),
                r.archive_file,
                &archive_row,
            ];
            let raw = self.raw;
            let writer = self.writer(out)?;
            let written = if raw {
                writer.write_record(record)
            } else {
                writer.write_record(record.iter().map(|cell| neutralised(cell).into_owned()))
            };
            if let Err(e) = written {
                return Err(encode_error(out, e));
            }
            rows += 1;
        }
        self.counts.messages += 1;
        *self.counts.versions.get_or_insert(0) += rows;
        Ok(())
    }

    fn finish(&mut self, outputs: &mut Outputs) -> Step {
        self.writer(outputs)?;
        let writer = self.out.take().expect("created above");
        let file = writer
            .into_inner()
            .map_err(|e| encode_error(outputs, e.into_error().into()))?;
        outputs.close(file, Format::Csv, std::mem::take(&mut self.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_cells_become_text() {
        for cell in [
            "=cmd|' /C calc'!A0",
            "+SUM(1)",
            "-2+3",
            "@SUM(1)",
            "=HYPERLINK(\"https://x.example\",\"open\")",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(neutralised(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["hello", "", "2024-05-01", "a=b", " =1"] {
            assert_eq!(neutralised(cell), cell, "{cell:?}");
        }
    }
}
