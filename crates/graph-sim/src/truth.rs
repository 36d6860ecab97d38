//! Ground truth: what the tenant holds, as an archive of it should hold it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a chat or channel message lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Conversation {
    #[serde(rename_all = "camelCase")]
    Chat { chat_id: String },
    #[serde(rename_all = "camelCase")]
    Channel { team_id: String, channel_id: String },
}

impl std::fmt::Display for Conversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conversation::Chat { chat_id } => write!(f, "chat {chat_id}"),
            Conversation::Channel {
                team_id,
                channel_id,
            } => write!(f, "channel {team_id}/{channel_id}"),
        }
    }
}

/// A message, by conversation and Graph id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageRef {
    pub conversation: Conversation,
    pub id: String,
}

/// One version of a chat or channel message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageVersion {
    pub conversation: Conversation,
    pub id: String,
    /// The root message of a channel reply.
    pub reply_to_id: Option<String>,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub deleted: bool,
    /// The item exactly as served (every custodian gets these bytes).
    pub json: String,
    /// Users whose getAllMessages returns this message: the chat's members (none for
    /// channel messages).
    pub custodians: Vec<String>,
}

impl MessageVersion {
    pub fn message_ref(&self) -> MessageRef {
        MessageRef {
            conversation: self.conversation.clone(),
            id: self.id.clone(),
        }
    }
}

/// One version of a mail message, in full (a `$select` serves a subset of it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailItem {
    pub user_id: String,
    pub folder_id: String,
    /// The immutable id (what `Prefer: IdType="ImmutableId"` shows; `json` carries it).
    pub id: String,
    /// The id Graph shows without that preference; it changes when the item moves.
    #[serde(default)]
    pub rest_id: String,
    pub received: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub json: String,
}

/// A mail message that was deleted; delta reports it as `@removed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailRemoval {
    pub user_id: String,
    pub folder_id: String,
    /// The immutable id.
    pub id: String,
    #[serde(default)]
    pub rest_id: String,
    pub removed_at: DateTime<Utc>,
}

/// The current state of everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub messages: Vec<MessageVersion>,
    pub mail: Vec<MailItem>,
}

impl Snapshot {
    /// The chat messages a user's getAllMessages returns.
    pub fn chat_messages_of(&self, user_id: &str) -> Vec<&MessageVersion> {
        self.messages
            .iter()
            .filter(|m| m.custodians.iter().any(|c| c == user_id))
            .collect()
    }

    /// Root messages of a channel (what channel delta returns).
    pub fn channel_roots(&self, team_id: &str, channel_id: &str) -> Vec<&MessageVersion> {
        self.messages
            .iter()
            .filter(|m| m.reply_to_id.is_none() && m.in_channel(team_id, channel_id))
            .collect()
    }

    pub fn replies_to(
        &self,
        team_id: &str,
        channel_id: &str,
        root_id: &str,
    ) -> Vec<&MessageVersion> {
        self.messages
            .iter()
            .filter(|m| {
                m.reply_to_id.as_deref() == Some(root_id) && m.in_channel(team_id, channel_id)
            })
            .collect()
    }

    pub fn mail_in(&self, user_id: &str, folder_id: &str) -> Vec<&MailItem> {
        self.mail
            .iter()
            .filter(|m| m.user_id == user_id && m.folder_id == folder_id)
            .collect()
    }
}

impl MessageVersion {
    fn in_channel(&self, team: &str, channel: &str) -> bool {
        matches!(&self.conversation, Conversation::Channel { team_id, channel_id } if team_id == team && channel_id == channel)
    }
}

/// Every version that ever existed, and every mail removal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub messages: Vec<MessageVersion>,
    pub mail: Vec<MailItem>,
    pub mail_removals: Vec<MailRemoval>,
}

/// Who and what exists, for tests to pick ids from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub users: Vec<DirectoryUser>,
    pub chats: Vec<DirectoryChat>,
    pub teams: Vec<DirectoryTeam>,
    pub mail_folders: Vec<DirectoryFolder>,
}

impl Directory {
    /// The mail folder of `user_id`'s mailbox shown as `display_name`.
    pub fn mail_folder(&self, user_id: &str, display_name: &str) -> Option<&DirectoryFolder> {
        self.mail_folders
            .iter()
            .find(|f| f.user_id == user_id && f.display_name == display_name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: String,
    pub display_name: String,
    pub mail: String,
    pub user_principal_name: String,
    /// An Exchange Online mailbox (without one, mail endpoints answer 404).
    #[serde(default)]
    pub has_mailbox: bool,
    /// The licence `model=A` needs for the user's chat messages.
    #[serde(default)]
    pub licensed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryChat {
    pub id: String,
    pub topic: Option<String>,
    pub chat_type: String,
    pub member_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryTeam {
    pub id: String,
    pub display_name: String,
    pub member_ids: Vec<String>,
    pub channels: Vec<DirectoryChannel>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryChannel {
    pub id: String,
    pub display_name: String,
    /// Set for a channel shared into the team from another tenant (403 to this app).
    #[serde(default)]
    pub owner_tenant_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryFolder {
    pub user_id: String,
    pub id: String,
    pub display_name: String,
    /// `None` at the top of the mailbox.
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub hidden: bool,
    /// `inbox`, `sentitems`, `archive`, `recoverableitemsdeletions`, ...
    #[serde(default)]
    pub well_known_name: Option<String>,
    /// Found by listing `mailFolders` and `childFolders` (Recoverable Items is not).
    #[serde(default)]
    pub listed: bool,
}

/// The certificate the simulated app registration trusts, and its private key, for
/// clients that log in with a signed assertion.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificate {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("certificate_pem", &"<certificate>")
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// What a piece of content is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContentKind {
    /// An image hosted in a chat or channel message (`.../hostedContents/{id}/$value`).
    HostedContent,
    /// A file in SharePoint or OneDrive that messages (or a reference attachment) link to.
    DriveItem,
    /// `#microsoft.graph.fileAttachment` of a mail item.
    FileAttachment,
    /// `#microsoft.graph.itemAttachment` (an attached message; its `$value` is MIME).
    ItemAttachment,
    /// `#microsoft.graph.referenceAttachment`: a link, no bytes of its own.
    ReferenceAttachment,
    /// A mail item's MIME (`/users/{id}/messages/{id}/$value`).
    MailMime,
}

/// A mail item, by mailbox and immutable id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailRef {
    pub user_id: String,
    pub id: String,
}

/// A piece of content messages point to, as a complete archive of it would hold it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentPiece {
    pub kind: ContentKind,
    /// Its Graph id: hosted content id, drive item id, attachment id, or the mail's id
    /// for its MIME.
    pub id: String,
    /// Where its bytes are served, below the service root (`/v1.0/...`): the path of the
    /// `src` an image's message carries; `/shares/{share id}/driveItem/content` for a file;
    /// `.../attachments/{id}/$value` (a reference attachment: the attachment itself).
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The media type its bytes are served with.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Bytes (a reference attachment: the size Graph states for it).
    pub size: u64,
    /// SHA-256 of its bytes, lowercase hex; none for a reference attachment.
    #[serde(default)]
    pub sha256: Option<String>,
    /// A file's `file.hashes.quickXorHash`.
    #[serde(default)]
    pub quick_xor_hash: Option<String>,
    /// Gone: deleted itself, or its message, mail, team or user is (Graph answers 404).
    pub deleted: bool,
    /// Graph answers 403.
    pub forbidden: bool,
    /// Chat and channel messages that hold it (an image: one; a file: every message
    /// sharing it).
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    /// Mail items that hold it.
    #[serde(default)]
    pub mail: Vec<MailRef>,
    /// A file's URL as messages carry it (`contentUrl`), which `/shares` takes encoded.
    #[serde(default)]
    pub web_url: Option<String>,
    #[serde(default)]
    pub drive_id: Option<String>,
    /// An attachment shown inside its mail's body (`isInline`).
    #[serde(default)]
    pub is_inline: bool,
}
