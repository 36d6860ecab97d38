//! The tables of the archive, each defined once: folder, schema, version key, partition
//! column, and how the shipped views pick each message's latest version.

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

/// The leaves of `chat_messages` whose statistics the files keep: its ids and times, the
/// sender, and when and by which run each row was fetched.
static CHAT_MESSAGE_STATISTICS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        let others = [
            "from.user.id",
            "from.application.id",
            "fetched_at",
            "run_id",
        ];
        [&transform::CHAT_MESSAGE_IDS_AND_TIMES[..], &others].concat()
    });

/// What the sink needs to know of a table (it knows no table by name): where its files
/// go, the schema of the batches appended to it, its partition column and its version key.
#[derive(Clone, Debug)]
pub struct TableSpec {
    /// Folder of the table relative to the archive root, e.g. `chat_messages` or
    /// `directory/users`.
    pub name: &'static str,
    /// Schema of the batches given to the sink, including the partition column.
    pub schema: SchemaRef,
    /// The `Date32` column that picks the `<column>=YYYY-MM-DD` folder. It is a hive
    /// partition only: the files do not contain it.
    pub partition_column: &'static str,
    /// The columns whose values identify a row version. Two rows with the same key are
    /// one version, stored once.
    pub key_columns: &'static [&'static str],
    /// A microsecond timestamp of the version's content (so one version has one value)
    /// whose UTC day leads its key in the version index, so that the keys one commit adds
    /// sit together; `None` where the table has no such time.
    pub key_day_column: Option<&'static str>,
    /// Within a partition, rows are written in the order of these columns (then of the
    /// version key): a conversation's rows sit together in time order, so readers skip
    /// files and row groups by their statistics, and similar rows compress together.
    pub order_columns: &'static [&'static str],
    /// The leaves people filter by (`from.user.id` for a struct field; lists are looked
    /// through), the only ones whose files keep min/max statistics: each statistic costs
    /// every reader of every file its footer bytes. Empty: every leaf keeps them.
    pub statistics_columns: &'static [&'static str],
}

/// The version of the archive's table schemas, written into every data file's key-value
/// metadata under [`SCHEMA_VERSION_KEY`]. Readers take files of every version side by side
/// (the shipped views read by column name), so a new version never rewrites an archive.
pub const SCHEMA_VERSION: u32 = 2;

/// The Parquet key-value metadata key that holds [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "teams_archiver.schema_version";

/// A table of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    ChatMessages,
    ChatMessageCustodians,
    MailMessages,
    MessageContents,
    DirectoryUsers,
    DirectoryChats,
}

/// How the `<table>_all_versions` and `<table>_latest` views pick their rows.
#[derive(Clone, Copy, Debug)]
pub struct Views {
    /// Columns that identify one stored version (two shards may both store it).
    pub version: &'static [&'static str],
    /// Columns that identify one message (or user, or chat), whose latest version the
    /// latest view keeps.
    pub message: &'static [&'static str],
    /// Orders a message's versions, latest first.
    pub latest_first: &'static str,
}

/// Every table's partition column.
pub const PARTITION_COLUMN: &str = "date";

const LATEST_BY_CHANGE: &str =
    "last_modified_date_time DESC NULLS LAST, fetched_at DESC, content_sha256";
const LATEST_BY_FETCH: &str = "fetched_at DESC, content_sha256";

impl Table {
    /// Every table, in the order they are documented.
    pub const ALL: [Table; 6] = [
        Table::ChatMessages,
        Table::ChatMessageCustodians,
        Table::MailMessages,
        Table::MessageContents,
        Table::DirectoryUsers,
        Table::DirectoryChats,
    ];

    /// The table's folder under the archive root.
    pub fn folder(self) -> &'static str {
        match self {
            Table::ChatMessages => "chat_messages",
            Table::ChatMessageCustodians => "chat_message_custodians",
            Table::MailMessages => "mail_messages",
            Table::MessageContents => "message_contents",
            Table::DirectoryUsers => "directory/users",
            Table::DirectoryChats => "directory/chats",
        }
    }

    /// The table's name in SQL (its views are `<name>_all_versions` and `<name>_latest`).
    pub fn name(self) -> &'static str {
        match self {
            Table::DirectoryUsers => "directory_users",
            Table::DirectoryChats => "directory_chats",
            other => other.folder(),
        }
    }

    /// The table whose folder is `folder`.
    pub fn from_folder(folder: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.folder() == folder)
    }

    /// The table a data file's key (relative to the archive root) belongs to.
    pub fn of_path(path: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| {
            path.strip_prefix(t.folder())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| rest.starts_with(PARTITION_COLUMN))
        })
    }

    /// One sentence on what a row is.
    pub fn about(self) -> &'static str {
        match self {
            Table::ChatMessages => {
                "One row per version of a Teams chat or channel message (Graph `chatMessage`, v1.0 and beta properties). Expanded replies are rows of their own."
            }
            Table::ChatMessageCustodians => {
                "One row per (custodian, chat message version): whose mailbox held which version."
            }
            Table::MailMessages => {
                "One row per version of an Outlook mail message (Graph `message`, v1.0), and one per delta removal (`removed = true`)."
            }
            Table::MessageContents => {
                "One row per (message version, piece it points to): inline images, files and mail attachments, with the SHA-256 of the stored bytes or why they were not stored."
            }
            Table::DirectoryUsers => {
                "Snapshots of Graph `user` (id, names, mail), one row per distinct content, by fetch day."
            }
            Table::DirectoryChats => {
                "Snapshots of Graph `chat` with `$expand=members` (topic, type, members), by fetch day."
            }
        }
    }

    /// The schema of the table's batches, ending with the partition column.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::ChatMessages => transform::chat_messages_schema(),
            Table::ChatMessageCustodians => transform::chat_message_custodians_schema(),
            Table::MailMessages => transform::mail_messages_schema(),
            Table::MessageContents => transform::message_contents_schema(),
            Table::DirectoryUsers => transform::directory_users_schema(),
            Table::DirectoryChats => transform::directory_chats_schema(),
        }
    }

    /// The columns that identify a stored row: its content hash, and for custodian rows
    /// whose mailbox held that version.
    pub fn version_key(self) -> &'static [&'static str] {
        match self {
            Table::ChatMessageCustodians => &["custodian_user_id", "content_sha256"],
            _ => &["content_sha256"],
        }
    }

    /// The content time whose day leads a version's index key (see
    /// [`TableSpec::key_day_column`]).
    pub fn key_day_column(self) -> Option<&'static str> {
        match self {
            Table::ChatMessages => Some("created_date_time"),
            Table::ChatMessageCustodians => Some("last_modified_date_time"),
            Table::MailMessages => Some("received_date_time"),
            Table::MessageContents | Table::DirectoryUsers | Table::DirectoryChats => None,
        }
    }

    /// The order of rows within a partition (see [`TableSpec::order_columns`]).
    pub fn order_columns(self) -> &'static [&'static str] {
        match self {
            Table::ChatMessages => &["chat_id", "team_id", "channel_id", "created_date_time"],
            Table::ChatMessageCustodians => &["chat_id", "custodian_user_id"],
            Table::MailMessages => &["custodian_user_id", "conversation_id", "received_date_time"],
            Table::MessageContents => &[
                "chat_id",
                "team_id",
                "channel_id",
                "custodian_user_id",
                "message_id",
            ],
            Table::DirectoryUsers | Table::DirectoryChats => &["id"],
        }
    }

    /// The leaves whose statistics the files keep (see [`TableSpec::statistics_columns`]).
    pub fn statistics_columns(self) -> &'static [&'static str] {
        match self {
            Table::ChatMessages => &CHAT_MESSAGE_STATISTICS,
            Table::MailMessages => &[
                "id",
                "custodian_user_id",
                "conversation_id",
                "internet_message_id",
                "received_date_time",
                "sent_date_time",
                "created_date_time",
                "last_modified_date_time",
                "from_email_address_address",
                "fetched_at",
                "run_id",
            ],
            Table::MessageContents => &[
                "message_id",
                "message_content_sha256",
                "chat_id",
                "custodian_user_id",
                "blob_sha256",
                "fetched_at",
            ],
            Table::ChatMessageCustodians | Table::DirectoryUsers | Table::DirectoryChats => &[],
        }
    }

    /// How the shipped views pick rows.
    pub fn views(self) -> Views {
        match self {
            Table::ChatMessages => Views {
                version: self.version_key(),
                message: &["chat_id", "team_id", "channel_id", "id"],
                latest_first: LATEST_BY_CHANGE,
            },
            Table::ChatMessageCustodians => Views {
                version: self.version_key(),
                message: &["custodian_user_id", "chat_id", "id"],
                latest_first: LATEST_BY_CHANGE,
            },
            Table::MailMessages => Views {
                version: self.version_key(),
                message: &["custodian_user_id", "id"],
                // A removal has no lastModifiedDateTime: it is as recent as when it was seen.
                latest_first: "coalesce(last_modified_date_time, fetched_at) DESC, fetched_at DESC, content_sha256",
            },
            Table::MessageContents => Views {
                version: self.version_key(),
                message: &["message_content_sha256", "kind", "reference"],
                latest_first: LATEST_BY_FETCH,
            },
            Table::DirectoryUsers | Table::DirectoryChats => Views {
                version: self.version_key(),
                message: &["id"],
                latest_first: LATEST_BY_FETCH,
            },
        }
    }

    /// What the sink needs to write this table.
    pub fn spec(self) -> TableSpec {
        TableSpec {
            name: self.folder(),
            schema: self.schema(),
            partition_column: PARTITION_COLUMN,
            key_columns: self.version_key(),
            key_day_column: self.key_day_column(),
            order_columns: self.order_columns(),
            statistics_columns: self.statistics_columns(),
        }
    }

    /// Every table's spec, for opening a writer on the whole archive.
    pub fn specs() -> Vec<TableSpec> {
        Table::ALL.into_iter().map(Table::spec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_found_by_its_folder_and_its_files() {
        for table in Table::ALL {
            assert_eq!(Table::from_folder(table.folder()), Some(table));
            let file = format!("{}/date=2024-05-01/part-a.parquet", table.folder());
            assert_eq!(Table::of_path(&file), Some(table), "{file}");
            let schema = table.schema();
            let named = table.version_key().iter().chain(table.order_columns());
            for column in named.chain(&table.key_day_column()) {
                assert!(schema.index_of(column).is_ok(), "{table:?} lacks {column}");
            }
            for path in table.statistics_columns() {
                let mut parts = path.split('.');
                let mut field = schema
                    .field_with_name(parts.next().unwrap())
                    .unwrap_or_else(|_| panic!("{table:?} lacks {path}"))
                    .clone();
                for part in parts {
                    let arrow::datatypes::DataType::Struct(fields) = field.data_type() else {
                        panic!("{table:?}: {path} goes through a non-struct");
                    };
                    field = fields
                        .iter()
                        .find(|f| f.name() == part)
                        .unwrap_or_else(|| panic!("{table:?} lacks {path}"))
                        .as_ref()
                        .clone();
                }
            }
            assert!(schema.index_of(PARTITION_COLUMN).is_ok());
        }
        assert_eq!(Table::of_path("directory/date=2024-05-01/x.parquet"), None);
        assert_eq!(Table::of_path("_archive/commits/x.json"), None);
    }

    #[test]
    fn serialised_names_are_the_sql_names() {
        for table in Table::ALL {
            let json = serde_json::to_string(&table).unwrap();
            assert_eq!(json, format!("\"{}\"", table.name()));
        }
    }
}
