//! A message: every archived version of one Graph message, oldest first, grouped from
//! the sorted version rows.

use std::cmp::Ordering;

use crate::conversation::ConversationKey;
use crate::error::ExportError;
use crate::rows::TableRow;
use crate::rows::VersionRow;
use crate::sort::{Groups, Spill};

/// All archived versions of one message (never empty), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<VersionRow>", into = "Vec<VersionRow>")]
pub struct Message {
    versions: Vec<VersionRow>,
}

impl TryFrom<Vec<VersionRow>> for Message {
    type Error = &'static str;
    fn try_from(versions: Vec<VersionRow>) -> Result<Self, Self::Error> {
        Message::new(versions).ok_or("a spilled message has no versions")
    }
}

impl From<Message> for Vec<VersionRow> {
    fn from(message: Message) -> Self {
        message.versions
    }
}

impl Message {
    pub(crate) fn new(versions: Vec<VersionRow>) -> Option<Message> {
        (!versions.is_empty()).then_some(Message { versions })
    }

    pub fn versions(&self) -> &[VersionRow] {
        &self.versions
    }

    /// The newest version: what the message looks like now.
    pub fn latest(&self) -> &VersionRow {
        // `new` refuses an empty list.
        &self.versions[self.versions.len() - 1]
    }

    pub fn conversation(&self) -> &ConversationKey {
        &self.latest().conversation
    }

    /// The Graph id, or for an item without one, its content hash.
    pub fn key(&self) -> &str {
        self.latest().message_key()
    }

    pub fn id(&self) -> Option<&str> {
        self.latest().id.as_deref()
    }

    /// `createdDateTime` (it does not change between versions; the first one known).
    pub fn created_us(&self) -> Option<i64> {
        self.versions.iter().find_map(|v| v.created_us)
    }

    /// The root message this one replies to (channel replies).
    pub fn reply_to(&self) -> Option<&str> {
        self.latest()
            .reply_to_id
            .as_deref()
            .filter(|r| !r.is_empty())
    }

    /// Channel messages sort by thread (the root's id) so replies follow their root;
    /// chat messages have no threads.
    fn thread(&self) -> &str {
        if self.conversation().is_channel() {
            self.reply_to().unwrap_or_else(|| self.key())
        } else {
            ""
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.latest().deleted_us.is_some()
    }

    /// Every mailbox that held any version, sorted.
    pub fn custodians(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .versions
            .iter()
            .flat_map(|v| v.custodians.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Whether any version's text or subject contains one of `needles` (lower case).
    pub fn mentions_any(&self, needles: &[String]) -> bool {
        self.versions.iter().any(|v| {
            [&v.body_text, &v.subject]
                .into_iter()
                .flatten()
                .any(|text| {
                    let text = text.to_lowercase();
                    needles.iter().any(|n| text.contains(n.as_str()))
                })
        })
    }
}

/// Messages sort by conversation, thread, creation time and id: the order of a transcript.
impl Ord for Message {
    fn cmp(&self, other: &Self) -> Ordering {
        self.conversation()
            .cmp(other.conversation())
            .then_with(|| self.thread().cmp(other.thread()))
            .then_with(|| self.created_us().cmp(&other.created_us()))
            .then_with(|| self.key().cmp(other.key()))
            .then_with(|| {
                self.latest()
                    .content_sha256
                    .cmp(&other.latest().content_sha256)
            })
    }
}

impl PartialOrd for Message {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Spill for Message {
    fn memory_size(&self) -> usize {
        std::mem::size_of::<Message>()
            + self
                .versions
                .iter()
                .map(VersionRow::heap_size)
                .sum::<usize>()
    }
}

/// Groups version rows, sorted by [`VersionRow`]'s order, into messages.
pub(crate) fn grouped(
    rows: impl Iterator<Item = Result<VersionRow, ExportError>>,
) -> impl Iterator<Item = Result<Message, ExportError>> {
    let same = |a: &VersionRow, b: &VersionRow| {
        a.conversation == b.conversation && a.message_key() == b.message_key()
    };
    Groups::new(rows, same).map(|group| group.map(|versions| Message { versions }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::tests::version;

    #[test]
    fn sorted_versions_group_into_messages() {
        let mut rows = vec![version("m2", 4), version("m1", 2), version("m1", 1)];
        rows.sort();
        let messages: Vec<Message> = grouped(rows.into_iter().map(Ok))
            .map(Result::unwrap)
            .collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].key(), "m1");
        assert_eq!(messages[0].versions().len(), 2);
        assert_eq!(messages[0].latest().last_modified_us, Some(2));
        assert_eq!(messages[0].custodians(), vec!["u1", "u2"]);
    }

    #[test]
    fn channel_replies_sort_after_their_root_and_messages_spill() {
        let channel = ConversationKey::Channel {
            team_id: "t".into(),
            channel_id: "c".into(),
        };
        let mut root = version("100", 1);
        root.conversation = channel.clone();
        root.created_us = Some(100);
        let mut later_root = version("150", 1);
        later_root.conversation = channel.clone();
        later_root.created_us = Some(150);
        let mut reply = version("200", 1);
        reply.conversation = channel;
        reply.reply_to_id = Some("100".into());
        reply.created_us = Some(200);
        let mut messages: Vec<Message> = [later_root, reply, root]
            .into_iter()
            .map(|v| Message::new(vec![v]).unwrap())
            .collect();
        messages.sort();
        let keys: Vec<&str> = messages.iter().map(Message::key).collect();
        assert_eq!(keys, vec!["100", "200", "150"]);

        let bytes = postcard::to_stdvec(&messages[1]).unwrap();
        assert_eq!(
            postcard::from_bytes::<Message>(&bytes).unwrap(),
            messages[1]
        );
        let empty = postcard::to_stdvec(&Vec::<VersionRow>::new()).unwrap();
        assert!(postcard::from_bytes::<Message>(&empty).is_err());
    }

    #[test]
    fn keywords_match_any_version_ignoring_case() {
        let mut old = version("m", 1);
        old.body_text = Some("the INVOICE is late".into());
        let new = version("m", 2);
        let message = Message::new(vec![old, new]).unwrap();
        assert!(message.mentions_any(&["invoice".into()]));
        assert!(!message.mentions_any(&["contract".into()]));
    }
}
