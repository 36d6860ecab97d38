//! One archived chat message version as the export uses it: the typed columns it needs,
//! the item as Graph sent it, and where in the archive it was read.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::columns::{FilledStrings, NestedStrings, Strings, Times};
use crate::content::piece_heap_size;
use crate::conversation::ConversationKey;
use crate::sort::Spill;
use archive::Table;
use transform::ContentPiece;

/// The `chat_messages` columns an export reads besides the ids and times.
const CHAT_COLUMNS_BEYOND_IDS_AND_TIMES: &[&str] = &[
    "last_edited_date_time",
    "body_content_type",
    "body_content",
    "body_text",
    "subject",
    "importance",
    "from",
    "raw_json",
    "content_sha256",
    "source",
    "fetched_at",
    "run_id",
];

/// The `chat_messages` columns an export reads (those a file lacks read as null).
static CHAT_COLUMNS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    [
        &transform::CHAT_MESSAGE_IDS_AND_TIMES[..],
        CHAT_COLUMNS_BEYOND_IDS_AND_TIMES,
    ]
    .concat()
});

/// One row of `chat_messages`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VersionRow {
    pub conversation: ConversationKey,
    pub id: Option<String>,
    pub reply_to_id: Option<String>,
    pub message_type: Option<String>,
    pub created_us: Option<i64>,
    pub last_modified_us: Option<i64>,
    pub last_edited_us: Option<i64>,
    pub deleted_us: Option<i64>,
    pub body_content_type: Option<String>,
    pub body_content: Option<String>,
    pub body_text: Option<String>,
    pub subject: Option<String>,
    pub importance: Option<String>,
    pub from_user_id: Option<String>,
    pub from_user_display_name: Option<String>,
    pub from_application_id: Option<String>,
    pub from_application_display_name: Option<String>,
    pub raw_json: String,
    pub content_sha256: String,
    pub source: Option<String>,
    pub fetched_at_us: Option<i64>,
    pub run_id: Option<String>,
    /// The archive file the row was read from, and its position there.
    pub archive_file: Arc<str>,
    pub row_in_file: u64,
    /// Graph user ids whose mailboxes held this version, sorted.
    pub custodians: Vec<String>,
    /// What the version points to (`message_contents`), sorted.
    pub contents: Vec<ContentPiece>,
}

/// A row an export sorts out of core, as read from the files of one archive table.
pub(crate) trait TableRow: Spill {
    const TABLE: Table;
    /// The columns the rows are made of.
    fn columns() -> &'static [&'static str];

    /// What one item of the table is called where a row is named: `message`, `mail`.
    const ITEM: &'static str;

    /// The rows of a batch read from `file`, whose first row is row `first_row` there.
    fn from_batch(
        batch: &RecordBatch,
        file: &Arc<str>,
        first_row: u64,
    ) -> Result<Vec<Self>, String>;

    /// What identifies the version and where it was read.
    fn archived(&self) -> Archived<'_>;

    /// The message this version belongs to: its Graph id, or (no id) its own content hash.
    fn message_key(&self) -> &str {
        let archived = self.archived();
        archived.id.unwrap_or(archived.content_sha256)
    }

    /// Where the row is, for messages: `<file> row <n> (<item> <id>)`.
    fn place(&self) -> String {
        let archived = self.archived();
        format!(
            "{} row {} ({} {})",
            archived.archive_file,
            archived.row_in_file,
            Self::ITEM,
            archived.id.unwrap_or("without an id")
        )
    }

    /// Where this version stands among its message's versions; see [`VersionOrder`].
    fn version_order(&self) -> VersionOrder<'_> {
        VersionOrder {
            message_key: self.message_key(),
            archived: self.archived(),
        }
    }
}

/// [`TableRow::archived`] for a row that has the fields of [`Archived`], under those names.
macro_rules! archived_from_fields {
    () => {
        fn archived(&self) -> $crate::rows::Archived<'_> {
            $crate::rows::Archived {
                id: self.id.as_deref(),
                last_modified_us: self.last_modified_us,
                fetched_at_us: self.fetched_at_us,
                content_sha256: &self.content_sha256,
                archive_file: &self.archive_file,
                row_in_file: self.row_in_file,
            }
        }
    };
}
pub(crate) use archived_from_fields;

/// What identifies an archived version (chat or mail) and where it was read. The fields
/// compare in the order they are declared.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Archived<'a> {
    pub id: Option<&'a str>,
    pub last_modified_us: Option<i64>,
    pub fetched_at_us: Option<i64>,
    pub content_sha256: &'a str,
    pub archive_file: &'a str,
    pub row_in_file: u64,
}

impl TableRow for VersionRow {
    const TABLE: Table = Table::ChatMessages;
    fn columns() -> &'static [&'static str] {
        &CHAT_COLUMNS
    }
    const ITEM: &'static str = "message";

    fn from_batch(
        batch: &RecordBatch,
        file: &Arc<str>,
        first_row: u64,
    ) -> Result<Vec<VersionRow>, String> {
        let s = |name| Strings::of(batch, name);
        let t = |name| Times::of(batch, name);
        let (id, chat_id, team_id, channel_id) =
            (s("id")?, s("chat_id")?, s("team_id")?, s("channel_id")?);
        let (reply_to_id, message_type) = (s("reply_to_id")?, s("message_type")?);
        let (created, modified, edited, deleted) = (
            t("created_date_time")?,
            t("last_modified_date_time")?,
            t("last_edited_date_time")?,
            t("deleted_date_time")?,
        );
        let (content_type, content, text) =
            (s("body_content_type")?, s("body_content")?, s("body_text")?);
        let (subject, importance) = (s("subject")?, s("importance")?);
        let n = |path| NestedStrings::of(batch, path);
        let (user_id, user_name, app_id, app_name) = (
            n("from.user.id")?,
            n("from.user.display_name")?,
            n("from.application.id")?,
            n("from.application.display_name")?,
        );
        let raw_json = FilledStrings::of(batch, "raw_json")?;
        let content_sha256 = FilledStrings::of(batch, "content_sha256")?;
        let (source, fetched_at, run_id) = (s("source")?, t("fetched_at")?, s("run_id")?);

        let mut rows = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let position = first_row + row as u64;
            let raw = raw_json.get(row, position)?;
            let sha = content_sha256.get(row, position)?;
            rows.push(VersionRow {
                conversation: ConversationKey::from_ids(
                    chat_id.get(row),
                    team_id.get(row),
                    channel_id.get(row),
                ),
                id: id.string(row),
                reply_to_id: reply_to_id.string(row),
                message_type: message_type.string(row),
                created_us: created.get(row),
                last_modified_us: modified.get(row),
                last_edited_us: edited.get(row),
                deleted_us: deleted.get(row),
                body_content_type: content_type.string(row),
                body_content: content.string(row),
                body_text: text.string(row),
                subject: subject.string(row),
                importance: importance.string(row),
                from_user_id: user_id.string(row),
                from_user_display_name: user_name.string(row),
                from_application_id: app_id.string(row),
                from_application_display_name: app_name.string(row),
                raw_json: raw.to_string(),
                content_sha256: sha.to_string(),
                source: source.string(row),
                fetched_at_us: fetched_at.get(row),
                run_id: run_id.string(row),
                archive_file: Arc::clone(file),
                row_in_file: position,
                custodians: Vec::new(),
                contents: Vec::new(),
            });
        }
        Ok(rows)
    }

    archived_from_fields!();
}

impl VersionRow {
    pub(crate) fn heap_size(&self) -> usize {
        let strings = crate::sort::strings_heap_size(&[
            &self.id,
            &self.reply_to_id,
            &self.message_type,
            &self.body_content_type,
            &self.body_content,
            &self.body_text,
            &self.subject,
            &self.importance,
            &self.from_user_id,
            &self.from_user_display_name,
            &self.from_application_id,
            &self.from_application_display_name,
            &self.source,
            &self.run_id,
        ]);
        let conversation = match &self.conversation {
            ConversationKey::Chat { chat_id } => chat_id.len(),
            ConversationKey::Channel {
                team_id,
                channel_id,
            } => team_id.len() + channel_id.len(),
            ConversationKey::Unknown => 0,
        };
        std::mem::size_of::<VersionRow>()
            + strings
            + conversation
            + self.raw_json.len()
            + self.content_sha256.len()
            + self.custodians.iter().map(|c| c.len() + 24).sum::<usize>()
            + self.contents.iter().map(piece_heap_size).sum::<usize>()
    }
}

/// Versions sort so that each message's versions are together, oldest first:
/// conversation, message, `lastModifiedDateTime`, fetch time, content hash.
impl Ord for VersionRow {
    fn cmp(&self, other: &Self) -> Ordering {
        self.conversation
            .cmp(&other.conversation)
            .then_with(|| self.version_order().cmp(&other.version_order()))
    }
}

/// The order of an archived version (chat or mail) within its conversation or mailbox:
/// message, `lastModifiedDateTime`, fetch time, content hash, then where it was read, so
/// that each message's versions are together, oldest first, and the order is total.
/// The fields compare in the order they are declared.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct VersionOrder<'a> {
    pub message_key: &'a str,
    /// Its id is the same for every version of one message; then come the time, the
    /// fetch, the hash and the place.
    pub archived: Archived<'a>,
}

impl PartialOrd for VersionRow {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Spill for VersionRow {
    fn memory_size(&self) -> usize {
        self.heap_size()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn version(id: &str, modified: i64) -> VersionRow {
        VersionRow {
            conversation: ConversationKey::Chat {
                chat_id: "19:c@thread.v2".into(),
            },
            id: Some(id.into()),
            reply_to_id: None,
            message_type: Some("message".into()),
            created_us: Some(1_000),
            last_modified_us: Some(modified),
            last_edited_us: None,
            deleted_us: None,
            body_content_type: Some("text".into()),
            body_content: Some(format!("body {modified}")),
            body_text: Some(format!("body {modified}")),
            subject: None,
            importance: Some("normal".into()),
            from_user_id: Some("u1".into()),
            from_user_display_name: Some("Ada".into()),
            from_application_id: None,
            from_application_display_name: None,
            raw_json: format!("{{\"id\":\"{id}\",\"v\":{modified}}}"),
            content_sha256: format!("{modified:064}"),
            source: Some("ingest".into()),
            fetched_at_us: Some(9),
            run_id: Some("r".into()),
            archive_file: "chat_messages/date=1970-01-01/part-x.parquet".into(),
            row_in_file: 3,
            custodians: vec!["u1".into(), "u2".into()],
            contents: Vec::new(),
        }
    }

    #[test]
    fn a_version_survives_a_spill() {
        let mut row = version("m1", 5);
        row.conversation = ConversationKey::Channel {
            team_id: "t".into(),
            channel_id: "c".into(),
        };
        row.deleted_us = Some(-3);
        let bytes = postcard::to_stdvec(&row).unwrap();
        assert_eq!(postcard::from_bytes::<VersionRow>(&bytes).unwrap(), row);
        assert!(postcard::from_bytes::<VersionRow>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn versions_of_a_message_sort_together_oldest_first() {
        let mut rows = [version("m2", 1), version("m1", 7), version("m1", 3)];
        rows.sort();
        let order: Vec<(&str, Option<i64>)> = rows
            .iter()
            .map(|r| (r.message_key(), r.last_modified_us))
            .collect();
        assert_eq!(
            order,
            vec![("m1", Some(3)), ("m1", Some(7)), ("m2", Some(1))]
        );
    }
}
