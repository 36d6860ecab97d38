//! Which conversation a message belongs to, and the stable names derived from it.

use sha2::{Digest, Sha256};

/// A chat, a channel, or (for items that name neither) no known conversation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ConversationKey {
    Chat { chat_id: String },
    Channel { team_id: String, channel_id: String },
    Unknown,
}

impl ConversationKey {
    /// From a row's `chat_id`, `team_id` and `channel_id`.
    pub fn from_ids(
        chat_id: Option<&str>,
        team_id: Option<&str>,
        channel_id: Option<&str>,
    ) -> Self {
        match (chat_id, team_id, channel_id) {
            (Some(chat), _, _) if !chat.is_empty() => ConversationKey::Chat {
                chat_id: chat.to_string(),
            },
            (_, team, Some(channel)) if !channel.is_empty() => ConversationKey::Channel {
                team_id: team.unwrap_or_default().to_string(),
                channel_id: channel.to_string(),
            },
            _ => ConversationKey::Unknown,
        }
    }

    pub fn is_channel(&self) -> bool {
        matches!(self, ConversationKey::Channel { .. })
    }

    /// The conversation as one string: the chat id, `team/channel`, or `unknown`.
    /// Used as the RSMF event collection id, so the parts of one conversation stay together.
    pub fn id(&self) -> String {
        match self {
            ConversationKey::Chat { chat_id } => chat_id.clone(),
            ConversationKey::Channel {
                team_id,
                channel_id,
            } => format!("{team_id}/{channel_id}"),
            ConversationKey::Unknown => "unknown".to_string(),
        }
    }

    /// A file name stem: readable, safe on every file system, unique per conversation
    /// (a hash of the exact id follows the readable part).
    pub fn file_stem(&self) -> String {
        let (kind, readable) = match self {
            ConversationKey::Chat { chat_id } => ("chat", chat_id.as_str()),
            ConversationKey::Channel { channel_id, .. } => ("channel", channel_id.as_str()),
            ConversationKey::Unknown => ("unknown", ""),
        };
        file_stem(kind, readable.trim_start_matches("19:"), &self.id())
    }
}

/// `<kind>-<readable>-<hash>`: readable, safe on every file system, unique per `id` (a
/// hash of the exact id follows the readable part).
pub(crate) fn file_stem(kind: &str, readable: &str, id: &str) -> String {
    let mut safe: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if !safe.is_empty() {
        safe.insert(0, '-');
    }
    let digest = Sha256::digest(id.as_bytes());
    format!("{kind}{safe}-{}", &hex::encode(digest)[..10])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_safe_readable_and_distinct() {
        let a = ConversationKey::Chat {
            chat_id: "19:8ea0e38b-efb3_97f6@unq.gbl.spaces".into(),
        };
        let b = ConversationKey::Chat {
            chat_id: "19:8ea0e38b-efb3_97f6#unq.gbl.spaces".into(),
        };
        let stem = a.file_stem();
        assert!(
            stem.starts_with("chat-8ea0e38b-efb3_97f6_unq.gbl.spaces-"),
            "{stem}"
        );
        assert!(
            stem.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        assert_ne!(stem, b.file_stem(), "ids that read the same still differ");
        assert!(ConversationKey::Unknown.file_stem().starts_with("unknown-"));
    }

    #[test]
    fn rows_name_their_conversation() {
        assert_eq!(
            ConversationKey::from_ids(None, Some("t"), Some("c")).id(),
            "t/c"
        );
        assert_eq!(
            ConversationKey::from_ids(Some("19:x"), None, None).id(),
            "19:x"
        );
        assert_eq!(
            ConversationKey::from_ids(None, None, None),
            ConversationKey::Unknown
        );
    }
}
