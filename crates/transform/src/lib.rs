//! Microsoft Graph JSON to Arrow: the chatMessage and mail message schemas, derived from
//! Microsoft's CSDL, and the builders that turn Graph items into record batches without
//! losing a byte of them.
//!
//! Each builder takes items as the exact bytes Graph sent (`&str` slices of a page), fills
//! typed columns in one pass, keeps the item itself in `raw_json`, and identifies the version
//! by `content_sha256`, the SHA-256 of the item's canonical JSON ([`canonical_sha256`]). A value
//! that does not fit its column leaves that column null and is recorded in the row's
//! `parse_errors`; an object without a usable `id` is such a row too (null `id`;
//! `content_sha256` needs no id). Only an item that is not a JSON object is refused
//! ([`ItemError`]). Every batch ends with the `date` partition column.

mod canonical;
mod chat;
mod columns;
mod content;
mod csdl;
mod day;
mod directory;
mod html;
mod json;
mod mail;
mod raw_only;
mod schema_files;
mod table;
mod time;

use arrow::datatypes::SchemaRef;

pub use canonical::{CanonicalError, canonical_sha256};
pub use chat::{CHAT_MESSAGE_IDS_AND_TIMES, ChatBatches, ChatMessageBuilder};
pub use columns::ParseIssue;
pub use content::{
    ContentKind, ContentPiece, ContentReference, ContentRow, ContentStatus, MessageContentBuilder,
    MessageIdentity, chat_message_references, hosted_content_path, mail_has_attachments,
};
pub use day::{CHAT_MESSAGE_DAY_KEYS, DayReader, MAIL_MESSAGE_DAY_KEYS};
pub use directory::{DirectoryChatBuilder, DirectoryUserBuilder};
pub use html::html_to_text;
pub use json::SyntaxError;
pub use mail::MailMessageBuilder;
pub use raw_only::{
    CHAT_MESSAGES_RAW_ONLY, MAIL_MESSAGES_RAW_ONLY, RawOnly, covers as raw_only_covers,
};
pub use schema_files::{SchemaFile, schema_files};
pub use table::ItemError;

/// Where and when the items being appended were fetched; the same for a whole page.
#[derive(Debug, Clone, Copy)]
pub struct RowContext<'a> {
    /// Names the source (for example the Graph scope or the ingested file).
    pub source: &'a str,
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    pub run_id: &'a str,
    /// The mailbox whose listing returned the items (chat custodians, mail owners); `None`
    /// for channel messages.
    pub custodian_user_id: Option<&'a str>,
}

/// `chat_messages`, ending with the `date` partition column.
pub fn chat_messages_schema() -> SchemaRef {
    chat::CHAT.layout.schema.clone()
}

/// `chat_message_custodians`, ending with `date`.
pub fn chat_message_custodians_schema() -> SchemaRef {
    chat::CUSTODIANS.clone()
}

/// `mail_messages`, ending with `date`.
pub fn mail_messages_schema() -> SchemaRef {
    mail::MAIL.layout.schema.clone()
}

/// `message_contents`, ending with `date`.
pub fn message_contents_schema() -> SchemaRef {
    content::MESSAGE_CONTENTS.clone()
}

/// `directory/users`, ending with `date`.
pub fn directory_users_schema() -> SchemaRef {
    directory::USERS.layout.schema.clone()
}

/// `directory/chats`, ending with `date`.
pub fn directory_chats_schema() -> SchemaRef {
    directory::CHATS.layout.schema.clone()
}
