//! One archived mail message version as the mail export uses it, and the grouping of a
//! day's sorted versions into messages (a custodian's message id).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::columns::{Bools, FilledStrings, Strings, Times};
use crate::content::piece_heap_size;
use crate::error::ExportError;
use crate::rows::{TableRow, archived_from_fields};
use crate::sort::{Groups, Spill};
use archive::Table;
use transform::ContentPiece;

/// The `mail_messages` columns the mail export reads.
pub(crate) const MAIL_COLUMNS: &[&str] = &[
    "id",
    "custodian_user_id",
    "removed",
    "subject",
    "received_date_time",
    "last_modified_date_time",
    "body_text",
    "raw_json",
    "content_sha256",
    "fetched_at",
];

/// One row of `mail_messages` (never a removal: those carry no message).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailRow {
    /// The mailbox it was read from (empty when the row names none).
    pub custodian: String,
    pub id: Option<String>,
    pub received_us: Option<i64>,
    pub last_modified_us: Option<i64>,
    pub fetched_at_us: Option<i64>,
    pub subject: Option<String>,
    pub body_text: Option<String>,
    pub raw_json: String,
    pub content_sha256: String,
    pub archive_file: Arc<str>,
    pub row_in_file: u64,
    /// What the version points to (`message_contents`), sorted.
    pub contents: Vec<ContentPiece>,
}

impl TableRow for MailRow {
    const TABLE: Table = Table::MailMessages;
    fn columns() -> &'static [&'static str] {
        MAIL_COLUMNS
    }
    const ITEM: &'static str = "mail";

    /// The rows of a batch read from `file`, removals left out.
    fn from_batch(
        batch: &RecordBatch,
        file: &Arc<str>,
        first_row: u64,
    ) -> Result<Vec<MailRow>, String> {
        let s = |name| Strings::of(batch, name);
        let t = |name| Times::of(batch, name);
        let (id, custodian, subject, text) = (
            s("id")?,
            s("custodian_user_id")?,
            s("subject")?,
            s("body_text")?,
        );
        let removed = Bools::of(batch, "removed")?;
        let (received, modified, fetched) = (
            t("received_date_time")?,
            t("last_modified_date_time")?,
            t("fetched_at")?,
        );
        let raw_json = FilledStrings::of(batch, "raw_json")?;
        let content_sha256 = FilledStrings::of(batch, "content_sha256")?;
        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if removed.get(row) == Some(true) {
                continue;
            }
            let position = first_row + row as u64;
            let raw = raw_json.get(row, position)?;
            let sha = content_sha256.get(row, position)?;
            rows.push(MailRow {
                custodian: custodian.string(row).unwrap_or_default(),
                id: id.string(row),
                received_us: received.get(row),
                last_modified_us: modified.get(row),
                fetched_at_us: fetched.get(row),
                subject: subject.string(row),
                body_text: text.string(row),
                raw_json: raw.to_string(),
                content_sha256: sha.to_string(),
                archive_file: Arc::clone(file),
                row_in_file: position,
                contents: Vec::new(),
            });
        }
        Ok(rows)
    }

    archived_from_fields!();
}

impl MailRow {
    /// Whether the subject or text contains one of `needles` (lower case).
    pub fn mentions_any(&self, needles: &[String]) -> bool {
        [&self.subject, &self.body_text]
            .into_iter()
            .flatten()
            .any(|text| {
                let text = text.to_lowercase();
                needles.iter().any(|n| text.contains(n.as_str()))
            })
    }

    fn same_message(&self, other: &MailRow) -> bool {
        self.custodian == other.custodian && self.message_key() == other.message_key()
    }
}

/// A mailbox's messages sort by time received, then id; each message's versions oldest first.
impl Ord for MailRow {
    fn cmp(&self, other: &Self) -> Ordering {
        self.custodian
            .cmp(&other.custodian)
            .then_with(|| self.received_us.cmp(&other.received_us))
            .then_with(|| self.version_order().cmp(&other.version_order()))
    }
}

impl PartialOrd for MailRow {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Spill for MailRow {
    fn memory_size(&self) -> usize {
        let text = crate::sort::strings_heap_size(&[&self.id, &self.subject, &self.body_text]);
        std::mem::size_of::<MailRow>()
            + self.custodian.len()
            + text
            + self.raw_json.len()
            + self.content_sha256.len()
            + self.contents.iter().map(piece_heap_size).sum::<usize>()
    }
}

/// Groups sorted mail rows into messages: every version of one mailbox's message, oldest
/// first.
pub(crate) fn grouped_mail(
    rows: impl Iterator<Item = Result<MailRow, ExportError>>,
) -> Groups<impl Iterator<Item = Result<MailRow, ExportError>>, MailRow> {
    Groups::new(rows, MailRow::same_message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(custodian: &str, id: &str, received: i64, modified: i64) -> MailRow {
        MailRow {
            custodian: custodian.into(),
            id: Some(id.into()),
            received_us: Some(received),
            last_modified_us: Some(modified),
            fetched_at_us: Some(1),
            subject: Some("Invoice".into()),
            body_text: None,
            raw_json: "{}".into(),
            content_sha256: format!("{modified:064}"),
            archive_file: "mail_messages/date=2024-05-01/part-x.parquet".into(),
            row_in_file: 0,
            contents: Vec::new(),
        }
    }

    #[test]
    fn versions_group_by_mailbox_and_message() {
        let mut rows = vec![
            row("u2", "m1", 5, 6),
            row("u1", "m2", 9, 9),
            row("u1", "m1", 5, 7),
            row("u1", "m1", 5, 6),
        ];
        rows.sort();
        let groups: Vec<Vec<MailRow>> = grouped_mail(rows.into_iter().map(Ok))
            .map(Result::unwrap)
            .collect();
        let shape: Vec<(String, String, usize)> = groups
            .iter()
            .map(|g| (g[0].custodian.clone(), g[0].message_key().into(), g.len()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("u1".into(), "m1".into(), 2),
                ("u1".into(), "m2".into(), 1),
                ("u2".into(), "m1".into(), 1)
            ]
        );
        assert_eq!(groups[0][1].last_modified_us, Some(7), "oldest first");
        assert!(groups[0][0].mentions_any(&["invoice".into()]));
        let bytes = postcard::to_stdvec(&groups[0][0]).unwrap();
        assert_eq!(
            postcard::from_bytes::<MailRow>(&bytes).unwrap(),
            groups[0][0]
        );
    }
}
