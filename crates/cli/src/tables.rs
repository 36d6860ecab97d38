//! The archive's tables: where each lives, its schema, and what identifies a row.

use sink::TableSpec;

pub const CHAT_MESSAGES: &str = "chat_messages";
pub const CHAT_MESSAGE_CUSTODIANS: &str = "chat_message_custodians";
pub const MAIL_MESSAGES: &str = "mail_messages";
pub const DIRECTORY_USERS: &str = "directory/users";
pub const DIRECTORY_CHATS: &str = "directory/chats";

/// Every table a run may write. A version is identified by its content hash; a
/// custodian row by who held which version.
pub fn all() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: CHAT_MESSAGES,
            schema: transform::chat_messages_schema(),
            partition_column: "date",
            key_columns: &["raw_sha256"],
        },
        TableSpec {
            name: CHAT_MESSAGE_CUSTODIANS,
            schema: transform::chat_message_custodians_schema(),
            partition_column: "date",
            key_columns: &["custodian_user_id", "raw_sha256"],
        },
        TableSpec {
            name: MAIL_MESSAGES,
            schema: transform::mail_messages_schema(),
            partition_column: "date",
            key_columns: &["raw_sha256"],
        },
        TableSpec {
            name: DIRECTORY_USERS,
            schema: transform::directory_users_schema(),
            partition_column: "date",
            key_columns: &["raw_sha256"],
        },
        TableSpec {
            name: DIRECTORY_CHATS,
            schema: transform::directory_chats_schema(),
            partition_column: "date",
            key_columns: &["raw_sha256"],
        },
    ]
}
