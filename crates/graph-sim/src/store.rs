//! The tenant's state: who exists, every version of every message and mail item, the
//! simulated clock, and the changes tests make between runs.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

use crate::content::{Contents, NewAttachment, NewContent, Posting};
use crate::docs::{self, ChatMessageDoc, ItemBody, MailDoc};
use crate::text;
use crate::timefmt::{graph_time, to_millis};
use crate::truth::{
    Conversation, Directory, DirectoryChannel, DirectoryChat, DirectoryFolder, DirectoryTeam,
    DirectoryUser, History, MailItem, MailRemoval, MessageRef, MessageVersion, Snapshot,
};

/// Why an admin change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no user {0}")]
    UnknownUser(String),
    #[error("no chat {0}")]
    UnknownChat(String),
    #[error("no team {0}")]
    UnknownTeam(String),
    #[error("no channel {channel} in team {team}")]
    UnknownChannel { team: String, channel: String },
    #[error("no message {id} in {conversation}")]
    UnknownMessage { conversation: String, id: String },
    #[error("user {user} is not a member of {conversation}")]
    NotAMember { user: String, conversation: String },
    #[error("message {0} is a reply; replies take no replies")]
    ReplyToReply(String),
    #[error("message {0} is deleted")]
    Deleted(String),
    #[error("no mail folder {folder} for user {user}")]
    UnknownFolder { user: String, folder: String },
    #[error("no mail item {id} in folder {folder}")]
    UnknownMail { folder: String, id: String },
    #[error("a chat needs at least two members")]
    TooFewMembers,
    #[error("user {0} has no mailbox")]
    NoMailbox(String),
    #[error("mail folder {0} cannot be changed")]
    FixedFolder(String),
    #[error("no content {0}")]
    UnknownContent(String),
}

/// The simulated clock: it moves only when told to, and every change gets its own
/// millisecond so versions of a message never share a `lastModifiedDateTime`.
pub(crate) struct Clock {
    now: DateTime<Utc>,
    last_stamp: DateTime<Utc>,
}

impl Clock {
    pub(crate) fn new(start: DateTime<Utc>) -> Self {
        let start = to_millis(start);
        Clock {
            now: start,
            last_stamp: start - chrono::Duration::milliseconds(1),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.now.max(self.last_stamp)
    }

    pub(crate) fn advance(&mut self, by: chrono::Duration) {
        self.now = to_millis(self.now() + by);
    }

    /// A fresh timestamp for a change, later than every earlier one.
    pub(crate) fn stamp(&mut self) -> DateTime<Utc> {
        let t = self
            .now
            .max(self.last_stamp + chrono::Duration::milliseconds(1));
        self.last_stamp = t;
        t
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Conv {
    Chat(usize),
    Channel(usize),
}

pub(crate) struct User {
    pub id: String,
    pub display_name: String,
    pub mail: String,
    pub upn: String,
    pub chats: Vec<usize>,
    /// Top-level mail folders (children of the mailbox's root), in order.
    pub folders: Vec<usize>,
    /// An Exchange Online mailbox; without one, mail endpoints answer 404.
    pub mailbox: bool,
    /// The licence `model=A` needs for this user's chat messages.
    pub licensed: bool,
    pub deleted: bool,
    pub json: Bytes,
}

pub(crate) struct Chat {
    pub id: String,
    pub topic: Option<String>,
    pub chat_type: &'static str,
    pub members: Vec<usize>,
    pub created: DateTime<Utc>,
    pub messages: Vec<usize>,
}

pub(crate) struct Team {
    pub id: String,
    pub display_name: String,
    pub members: Vec<usize>,
    pub channels: Vec<usize>,
    pub deleted: bool,
    pub json: Bytes,
}

pub(crate) struct Channel {
    pub id: String,
    pub team: usize,
    pub display_name: String,
    pub roots: Vec<usize>,
    /// Shared into the team from this other tenant: this app may not read its messages.
    pub owner_tenant: Option<String>,
    pub json: Bytes,
}

pub(crate) struct Message {
    pub conv: Conv,
    pub id: String,
    /// For a channel reply, its root message.
    pub root: Option<usize>,
    pub replies: Vec<usize>,
    /// Oldest first; the last one is current.
    pub versions: Vec<Version>,
}

pub(crate) struct Version {
    pub seq: u64,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub deleted: bool,
    pub json: Bytes,
}

impl Message {
    pub(crate) fn current(&self) -> &Version {
        // A message is created with a version and versions are never removed.
        &self.versions[self.versions.len() - 1]
    }

    /// The version that was current when change `seq` had just happened.
    pub(crate) fn version_at(&self, seq: u64) -> Option<&Version> {
        self.versions.iter().rev().find(|v| v.seq <= seq)
    }
}

pub(crate) struct Folder {
    pub id: String,
    pub user: usize,
    pub display_name: String,
    pub items: Vec<usize>,
    /// `None` for a folder at the top of the mailbox.
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub hidden: bool,
    /// The well-known name it also answers to (`inbox`, `recoverableitemsdeletions`, ...).
    pub well_known: Option<&'static str>,
    /// Listed by `mailFolders` and `childFolders`; Recoverable Items is not.
    pub listed: bool,
    pub deleted: bool,
}

pub(crate) struct Mail {
    /// The immutable id (`Prefer: IdType="ImmutableId"`); stored documents carry it.
    pub id: String,
    /// The REST id Graph shows without that preference; it changes when the item moves.
    pub rest_id: String,
    pub folder: usize,
    pub created_seq: u64,
    pub versions: Vec<MailVersion>,
    pub removed: Option<(u64, DateTime<Utc>)>,
}

impl Mail {
    pub(crate) fn current(&self) -> &MailVersion {
        // A mail item is created with a version and versions are never removed.
        &self.versions[self.versions.len() - 1]
    }
}

pub(crate) struct MailVersion {
    pub seq: u64,
    pub received: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub json: Bytes,
}

/// What a mail item looked like at a moment of the change sequence.
pub(crate) enum MailAt<'a> {
    Absent,
    Present(&'a MailVersion),
    Removed(u64),
}

impl Mail {
    pub(crate) fn at(&self, seq: u64) -> MailAt<'_> {
        if self.created_seq > seq {
            return MailAt::Absent;
        }
        if let Some((removed_seq, _)) = self.removed
            && removed_seq <= seq
        {
            return MailAt::Removed(removed_seq);
        }
        match self.versions.iter().rev().find(|v| v.seq <= seq) {
            Some(v) => MailAt::Present(v),
            None => MailAt::Absent,
        }
    }
}

pub(crate) struct Store {
    pub tenant_id: String,
    pub clock: Clock,
    /// The number of the latest change; every version and removal has its own.
    pub seq: u64,
    /// Bumped by `expire_state_tokens`: tokens from an older epoch are gone.
    pub epoch: u32,
    pub users: Vec<User>,
    pub user_index: HashMap<String, usize>,
    pub chats: Vec<Chat>,
    pub chat_index: HashMap<String, usize>,
    pub teams: Vec<Team>,
    pub team_index: HashMap<String, usize>,
    pub channels: Vec<Channel>,
    pub channel_index: HashMap<(usize, String), usize>,
    pub messages: Vec<Message>,
    pub message_index: HashMap<(Conv, String), usize>,
    pub folders: Vec<Folder>,
    pub folder_index: HashMap<(usize, String), usize>,
    pub mail: Vec<Mail>,
    pub mail_index: HashMap<(usize, String), usize>,
    /// Items served in evaluation mode (getAllMessages without `model`).
    pub evaluation_items_served: u64,
    pub rng: StdRng,
    /// What messages and mail point to: images, files, attachments.
    pub contents: Contents,
}

impl Store {
    pub(crate) fn empty(seed: u64, tenant_id: String, start: DateTime<Utc>) -> Self {
        Store {
            tenant_id,
            clock: Clock::new(start),
            seq: 0,
            epoch: 0,
            users: Vec::new(),
            user_index: HashMap::new(),
            chats: Vec::new(),
            chat_index: HashMap::new(),
            teams: Vec::new(),
            team_index: HashMap::new(),
            channels: Vec::new(),
            channel_index: HashMap::new(),
            messages: Vec::new(),
            message_index: HashMap::new(),
            folders: Vec::new(),
            folder_index: HashMap::new(),
            mail: Vec::new(),
            mail_index: HashMap::new(),
            evaluation_items_served: 0,
            rng: StdRng::seed_from_u64(seed ^ 0xadd_c0de),
            contents: Contents::new(seed),
        }
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // ---- lookups -------------------------------------------------------------------

    /// A user that exists (deleted users are gone).
    pub(crate) fn user(&self, id: &str) -> Result<usize, SimError> {
        self.user_index
            .get(id)
            .copied()
            .filter(|&u| !self.users[u].deleted)
            .ok_or_else(|| SimError::UnknownUser(id.to_string()))
    }

    pub(crate) fn chat(&self, id: &str) -> Result<usize, SimError> {
        self.chat_index
            .get(id)
            .copied()
            .ok_or_else(|| SimError::UnknownChat(id.to_string()))
    }

    /// A team that exists (deleted teams are gone).
    pub(crate) fn team(&self, id: &str) -> Result<usize, SimError> {
        self.team_index
            .get(id)
            .copied()
            .filter(|&t| !self.teams[t].deleted)
            .ok_or_else(|| SimError::UnknownTeam(id.to_string()))
    }

    pub(crate) fn channel(&self, team_id: &str, channel_id: &str) -> Result<usize, SimError> {
        let team = self.team(team_id)?;
        self.channel_index
            .get(&(team, channel_id.to_string()))
            .copied()
            .ok_or_else(|| SimError::UnknownChannel {
                team: team_id.to_string(),
                channel: channel_id.to_string(),
            })
    }

    /// A folder of a user's mailbox, by id or well-known name (any case).
    pub(crate) fn folder(&self, user_id: &str, folder_id: &str) -> Result<usize, SimError> {
        let user = self.user(user_id)?;
        if !self.users[user].mailbox {
            return Err(SimError::NoMailbox(user_id.to_string()));
        }
        let by_name = || {
            let name = folder_id.to_ascii_lowercase();
            self.folders
                .iter()
                .position(|f| f.user == user && !f.deleted && f.well_known == Some(name.as_str()))
        };
        self.folder_index
            .get(&(user, folder_id.to_string()))
            .copied()
            .filter(|&f| !self.folders[f].deleted)
            .or_else(by_name)
            .ok_or_else(|| SimError::UnknownFolder {
                user: user_id.to_string(),
                folder: folder_id.to_string(),
            })
    }

    fn conv_of(&self, conversation: &Conversation) -> Result<Conv, SimError> {
        match conversation {
            Conversation::Chat { chat_id } => Ok(Conv::Chat(self.chat(chat_id)?)),
            Conversation::Channel {
                team_id,
                channel_id,
            } => Ok(Conv::Channel(self.channel(team_id, channel_id)?)),
        }
    }

    pub(crate) fn conversation(&self, conv: Conv) -> Conversation {
        match conv {
            Conv::Chat(c) => Conversation::Chat {
                chat_id: self.chats[c].id.clone(),
            },
            Conv::Channel(c) => {
                let channel = &self.channels[c];
                Conversation::Channel {
                    team_id: self.teams[channel.team].id.clone(),
                    channel_id: channel.id.clone(),
                }
            }
        }
    }

    pub(crate) fn message(&self, message: &MessageRef) -> Result<usize, SimError> {
        let conv = self.conv_of(&message.conversation)?;
        self.message_index
            .get(&(conv, message.id.clone()))
            .copied()
            .ok_or_else(|| SimError::UnknownMessage {
                conversation: message.conversation.to_string(),
                id: message.id.clone(),
            })
    }

    // ---- building ------------------------------------------------------------------

    /// Record a new message with its first version.
    pub(crate) fn insert_message(
        &mut self,
        conv: Conv,
        root: Option<usize>,
        doc: &ChatMessageDoc,
        deleted: bool,
    ) -> usize {
        let created = parse_time(&doc.created_date_time);
        let last_modified = parse_time(&doc.last_modified_date_time);
        let seq = self.next_seq();
        let idx = self.messages.len();
        self.messages.push(Message {
            conv,
            id: doc.id.clone(),
            root,
            replies: Vec::new(),
            versions: vec![Version {
                seq,
                created,
                last_modified,
                deleted,
                json: docs::to_bytes(doc),
            }],
        });
        self.message_index.insert((conv, doc.id.clone()), idx);
        match (conv, root) {
            (Conv::Chat(c), _) => self.chats[c].messages.push(idx),
            (Conv::Channel(c), None) => self.channels[c].roots.push(idx),
            (Conv::Channel(_), Some(r)) => self.messages[r].replies.push(idx),
        }
        idx
    }

    fn push_version(&mut self, idx: usize, doc: &ChatMessageDoc) {
        let seq = self.next_seq();
        let created = self.messages[idx].current().created;
        let version = Version {
            seq,
            created,
            last_modified: parse_time(&doc.last_modified_date_time),
            deleted: doc.deleted_date_time.is_some(),
            json: docs::to_bytes(doc),
        };
        self.messages[idx].versions.push(version);
    }

    /// Record a new mail item; `doc.id` is its immutable id.
    pub(crate) fn insert_mail(&mut self, folder: usize, doc: &MailDoc, rest_id: String) -> usize {
        let seq = self.next_seq();
        let idx = self.mail.len();
        self.mail_index.insert((folder, rest_id.clone()), idx);
        self.mail.push(Mail {
            id: doc.id.clone(),
            rest_id,
            folder,
            created_seq: seq,
            versions: vec![MailVersion {
                seq,
                received: parse_time(&doc.received_date_time),
                last_modified: parse_time(&doc.last_modified_date_time),
                json: docs::to_bytes(doc),
            }],
            removed: None,
        });
        self.mail_index.insert((folder, doc.id.clone()), idx);
        self.folders[folder].items.push(idx);
        idx
    }

    fn unique_message_id(&self, conv: Conv, at: DateTime<Utc>) -> String {
        let mut id = at.timestamp_millis();
        while self.message_index.contains_key(&(conv, id.to_string())) {
            id += 1;
        }
        id.to_string()
    }

    fn doc_of(&self, idx: usize) -> ChatMessageDoc {
        // Stored versions are our own serialisation of this type.
        serde_json::from_slice(&self.messages[idx].current().json)
            .unwrap_or_else(|e| panic!("stored message does not parse back: {e}"))
    }

    fn mail_doc_of(&self, idx: usize) -> MailDoc {
        serde_json::from_slice(&self.mail[idx].current().json)
            .unwrap_or_else(|e| panic!("stored mail does not parse back: {e}"))
    }

    /// Mark a mail item removed at `now` (its folder's delta reports it deleted).
    fn remove_mail(&mut self, idx: usize, now: DateTime<Utc>) {
        let seq = self.next_seq();
        self.mail[idx].removed = Some((seq, now));
    }

    // ---- admin changes ---------------------------------------------------------------

    /// A new chat message; returns it and the content it carries.
    pub(crate) fn add_chat_message(
        &mut self,
        chat_id: &str,
        from_user: &str,
        html: &str,
        content: &NewContent,
    ) -> Result<(MessageRef, Vec<usize>), SimError> {
        let chat = self.chat(chat_id)?;
        let user = self.user(from_user)?;
        if !self.chats[chat].members.contains(&user) {
            return Err(SimError::NotAMember {
                user: from_user.to_string(),
                conversation: format!("chat {chat_id}"),
            });
        }
        let now = self.clock.stamp();
        let conv = Conv::Chat(chat);
        let id = self.unique_message_id(conv, now);
        let doc = crate::generate::chat_doc(&id, now, chat_id);
        let path = format!("chats/{chat_id}/messages/{id}");
        self.post_message(conv, None, user, doc, html, now, (path, content))
    }

    /// A new channel message or reply; returns it and the content it carries.
    pub(crate) fn add_channel_message(
        &mut self,
        team_id: &str,
        channel_id: &str,
        from_user: &str,
        html: &str,
        reply_to: Option<&str>,
        content: &NewContent,
    ) -> Result<(MessageRef, Vec<usize>), SimError> {
        let channel = self.channel(team_id, channel_id)?;
        let user = self.user(from_user)?;
        let team = self.channels[channel].team;
        if !self.teams[team].members.contains(&user) {
            return Err(SimError::NotAMember {
                user: from_user.to_string(),
                conversation: format!("team {team_id}"),
            });
        }
        let conv = Conv::Channel(channel);
        let root = match reply_to {
            None => None,
            Some(root_id) => {
                let root = self
                    .message_index
                    .get(&(conv, root_id.to_string()))
                    .copied()
                    .ok_or_else(|| SimError::UnknownMessage {
                        conversation: format!("channel {team_id}/{channel_id}"),
                        id: root_id.to_string(),
                    })?;
                if self.messages[root].root.is_some() {
                    return Err(SimError::ReplyToReply(root_id.to_string()));
                }
                Some(root)
            }
        };
        let now = self.clock.stamp();
        let id = self.unique_message_id(conv, now);
        let root_id = root.map(|r| self.messages[r].id.clone());
        let doc = crate::generate::channel_doc(
            &id,
            now,
            team_id,
            channel_id,
            root_id.as_deref(),
            &self.tenant_id,
        );
        let path = match &root_id {
            Some(r) => format!("teams/{team_id}/channels/{channel_id}/messages/{r}/replies/{id}"),
            None => format!("teams/{team_id}/channels/{channel_id}/messages/{id}"),
        };
        self.post_message(conv, root, user, doc, html, now, (path, content))
    }

    /// Store `doc` as a message `user` posted at `now` with `html` as its body and the
    /// content asked for (`message_path` names it in hosted content URLs): a new root, or a
    /// reply to `root`, whose thread changes with it.
    #[allow(clippy::too_many_arguments)]
    fn post_message(
        &mut self,
        conv: Conv,
        root: Option<usize>,
        user: usize,
        mut doc: ChatMessageDoc,
        html: &str,
        now: DateTime<Utc>,
        (message_path, content): (String, &NewContent),
    ) -> Result<(MessageRef, Vec<usize>), SimError> {
        doc.from = Some(docs::user_identity(
            &self.users[user].id,
            Some(&self.users[user].display_name),
            &self.tenant_id,
        ));
        doc.body = ItemBody::html(html);
        let pending = self.requested_message_content(
            &mut Posting {
                conv,
                message_path,
                sender: user,
                at: now,
                doc: &mut doc,
            },
            content,
        )?;
        let idx = self.insert_message(conv, root, &doc, false);
        let pieces = self.attach_pending(idx, pending);
        if let Some(root) = root {
            self.touch(root, now);
        }
        let message = MessageRef {
            conversation: self.conversation(conv),
            id: doc.id,
        };
        Ok((message, pieces))
    }

    /// A reply changed: its root gets a new `lastModifiedDateTime`, as Graph reports the
    /// thread again in channel delta.
    fn touch(&mut self, idx: usize, at: DateTime<Utc>) {
        let mut doc = self.doc_of(idx);
        modified_at(&mut doc, at);
        self.push_version(idx, &doc);
    }

    /// A new version of a message that is not deleted, with `change` applied at the
    /// clock's next stamp (given to `change`); a reply's root changes with it.
    fn revise_message(
        &mut self,
        message: &MessageRef,
        change: impl FnOnce(&mut ChatMessageDoc, DateTime<Utc>),
    ) -> Result<MessageVersion, SimError> {
        let idx = self.message(message)?;
        if self.messages[idx].current().deleted {
            return Err(SimError::Deleted(message.id.clone()));
        }
        let now = self.clock.stamp();
        let mut doc = self.doc_of(idx);
        change(&mut doc, now);
        modified_at(&mut doc, now);
        self.push_version(idx, &doc);
        if let Some(root) = self.messages[idx].root {
            self.touch(root, now);
        }
        Ok(self.version_view(idx, self.messages[idx].versions.len() - 1))
    }

    pub(crate) fn edit_message(
        &mut self,
        message: &MessageRef,
        html: &str,
    ) -> Result<MessageVersion, SimError> {
        self.revise_message(message, |doc, now| {
            doc.body = ItemBody::html(html);
            doc.last_edited_date_time = Some(graph_time(now));
        })
    }

    pub(crate) fn soft_delete_message(
        &mut self,
        message: &MessageRef,
    ) -> Result<MessageVersion, SimError> {
        self.revise_message(message, |doc, now| {
            doc.deleted_date_time = Some(graph_time(now));
            doc.body.content = String::new();
        })
    }

    pub(crate) fn add_user(&mut self, display_name: &str) -> DirectoryUser {
        let user = crate::generate::new_user(self, display_name, &MailboxShape::plain());
        self.directory_user(user)
    }

    /// The user is deleted: gone from `/users`, their endpoints answer 404. Chats they
    /// were in stay with the other members.
    pub(crate) fn delete_user(&mut self, user_id: &str) -> Result<(), SimError> {
        let user = self.user(user_id)?;
        self.users[user].deleted = true;
        Ok(())
    }

    /// The team is deleted: gone from `/teams`, every URL naming it answers 404.
    pub(crate) fn delete_team(&mut self, team_id: &str) -> Result<(), SimError> {
        let team = self.team(team_id)?;
        self.teams[team].deleted = true;
        Ok(())
    }

    pub(crate) fn add_chat(
        &mut self,
        member_ids: &[String],
        topic: Option<&str>,
    ) -> Result<DirectoryChat, SimError> {
        let mut members = Vec::new();
        for id in member_ids {
            let user = self.user(id)?;
            if !members.contains(&user) {
                members.push(user);
            }
        }
        if members.len() < 2 {
            return Err(SimError::TooFewMembers);
        }
        let now = self.clock.stamp();
        let chat = crate::generate::new_chat(self, members, topic.map(str::to_string), now);
        Ok(self.directory_chat(chat))
    }

    /// A new mail item with these attachments; returns it and its attachments.
    pub(crate) fn add_mail(
        &mut self,
        user_id: &str,
        folder_id: &str,
        subject: &str,
        html: &str,
        attachments: &[NewAttachment],
    ) -> Result<(MailItem, Vec<usize>), SimError> {
        let folder = self.folder(user_id, folder_id)?;
        let now = self.clock.stamp();
        let (mut doc, rest_id) = crate::generate::mail_doc(self, folder, now, subject, html);
        let owner = self.folders[folder].user;
        let seed = rand::Rng::random(&mut self.contents.rng);
        let pieces = self.add_mail_attachments(&mut doc, owner, attachments, seed);
        let idx = self.insert_mail(folder, &doc, rest_id);
        Ok((self.mail_view(idx, 0), pieces))
    }

    /// A new version of a mail item with `change` applied and a later
    /// `lastModifiedDateTime`; `receivedDateTime` stays.
    pub(crate) fn push_mail_version(&mut self, idx: usize, change: impl FnOnce(&mut MailDoc)) {
        let now = self.clock.stamp();
        let mut doc = self.mail_doc_of(idx);
        change(&mut doc);
        doc.last_modified_date_time = graph_time(now);
        doc.change_key = text::exchange_id(&mut self.rng, "CQAAAB");
        doc.odata_etag = format!("W/\"{}\"", doc.change_key);
        let seq = self.next_seq();
        let version = MailVersion {
            seq,
            received: parse_time(&doc.received_date_time),
            last_modified: now,
            json: docs::to_bytes(&doc),
        };
        self.mail[idx].versions.push(version);
    }

    /// Mark a mail item read and categorised: a new version with a later
    /// `lastModifiedDateTime`.
    pub(crate) fn update_mail(
        &mut self,
        user_id: &str,
        folder_id: &str,
        id: &str,
    ) -> Result<MailItem, SimError> {
        let idx = self.mail_item(user_id, folder_id, id)?;
        self.push_mail_version(idx, |doc| {
            doc.is_read = !doc.is_read;
            doc.categories
                .push(format!("Reviewed {}", doc.categories.len() + 1));
        });
        Ok(self.mail_view(idx, self.mail[idx].versions.len() - 1))
    }

    pub(crate) fn delete_mail(
        &mut self,
        user_id: &str,
        folder_id: &str,
        id: &str,
    ) -> Result<MailRemoval, SimError> {
        let idx = self.mail_item(user_id, folder_id, id)?;
        let now = self.clock.stamp();
        self.remove_mail(idx, now);
        Ok(self.removal_view(idx))
    }

    /// Move a mail item to another folder of the same mailbox: the source folder's delta
    /// reports it removed, the target's reports it created, with a new REST id (the
    /// immutable id stays) and a new `parentFolderId` and `lastModifiedDateTime`.
    pub(crate) fn move_mail(
        &mut self,
        user_id: &str,
        folder_id: &str,
        id: &str,
        to_folder_id: &str,
        rest_ids_change: bool,
    ) -> Result<MailItem, SimError> {
        let idx = self.mail_item(user_id, folder_id, id)?;
        let target = self.folder(user_id, to_folder_id)?;
        if target == self.mail[idx].folder {
            return Ok(self.mail_view(idx, self.mail[idx].versions.len() - 1));
        }
        let now = self.clock.stamp();
        self.remove_mail(idx, now);
        let target_id = self.folders[target].id.clone();
        let immutable = self.mail[idx].id.clone();
        let rest_id = if rest_ids_change {
            crate::generate::moved_rest_id(&immutable, &target_id)
        } else {
            self.mail[idx].rest_id.clone()
        };
        let mut doc = self.mail_doc_of(idx);
        doc.parent_folder_id = target_id;
        doc.last_modified_date_time = graph_time(now);
        let moved = self.insert_mail(target, &doc, rest_id);
        Ok(self.mail_view(moved, 0))
    }

    /// A new folder at the top of the mailbox or inside `parent_id`.
    pub(crate) fn add_mail_folder(
        &mut self,
        user_id: &str,
        parent_id: Option<&str>,
        display_name: &str,
        hidden: bool,
    ) -> Result<DirectoryFolder, SimError> {
        let user = self.user(user_id)?;
        if !self.users[user].mailbox {
            return Err(SimError::NoMailbox(user_id.to_string()));
        }
        let parent = match parent_id {
            Some(p) => {
                let parent = self.folder(user_id, p)?;
                if !self.folders[parent].listed {
                    return Err(SimError::FixedFolder(p.to_string()));
                }
                Some(parent)
            }
            None => None,
        };
        let f = crate::generate::new_folder(self, user, parent, display_name, hidden, None);
        Ok(self.directory_folder(f))
    }

    /// Delete a folder and everything in it, for good (as when Deleted Items is emptied):
    /// its items are removed and its id answers 404 from now on.
    pub(crate) fn delete_mail_folder(
        &mut self,
        user_id: &str,
        folder_id: &str,
    ) -> Result<(), SimError> {
        let root = self.folder(user_id, folder_id)?;
        if self.folders[root].well_known.is_some() {
            return Err(SimError::FixedFolder(folder_id.to_string()));
        }
        let now = self.clock.stamp();
        let mut stack = vec![root];
        while let Some(f) = stack.pop() {
            stack.extend(self.folders[f].children.iter().copied());
            self.folders[f].deleted = true;
            for i in self.folders[f].items.clone() {
                if self.mail[i].removed.is_none() {
                    self.remove_mail(i, now);
                }
            }
        }
        Ok(())
    }

    fn mail_item(&self, user_id: &str, folder_id: &str, id: &str) -> Result<usize, SimError> {
        let folder = self.folder(user_id, folder_id)?;
        let idx = self
            .mail_index
            .get(&(folder, id.to_string()))
            .copied()
            .filter(|&i| self.mail[i].removed.is_none())
            .ok_or_else(|| SimError::UnknownMail {
                folder: folder_id.to_string(),
                id: id.to_string(),
            })?;
        Ok(idx)
    }

    // ---- ground truth ----------------------------------------------------------------

    /// Users whose getAllMessages returns a chat's messages: its members that still exist.
    fn custodians(&self, conv: Conv) -> Vec<String> {
        match conv {
            Conv::Chat(c) => self.chats[c]
                .members
                .iter()
                .filter(|&&u| !self.users[u].deleted)
                .map(|&u| self.users[u].id.clone())
                .collect(),
            Conv::Channel(_) => Vec::new(),
        }
    }

    pub(crate) fn version_view(&self, idx: usize, version: usize) -> MessageVersion {
        let message = &self.messages[idx];
        let v = &message.versions[version];
        MessageVersion {
            conversation: self.conversation(message.conv),
            id: message.id.clone(),
            reply_to_id: message.root.map(|r| self.messages[r].id.clone()),
            created: v.created,
            last_modified: v.last_modified,
            deleted: v.deleted,
            json: String::from_utf8_lossy(&v.json).into_owned(),
            custodians: self.custodians(message.conv),
        }
    }

    fn mail_view(&self, idx: usize, version: usize) -> MailItem {
        let mail = &self.mail[idx];
        let folder = &self.folders[mail.folder];
        let v = &mail.versions[version];
        MailItem {
            user_id: self.users[folder.user].id.clone(),
            folder_id: folder.id.clone(),
            id: mail.id.clone(),
            rest_id: mail.rest_id.clone(),
            received: v.received,
            last_modified: v.last_modified,
            json: String::from_utf8_lossy(&v.json).into_owned(),
        }
    }

    fn removal_view(&self, idx: usize) -> MailRemoval {
        let mail = &self.mail[idx];
        let folder = &self.folders[mail.folder];
        MailRemoval {
            user_id: self.users[folder.user].id.clone(),
            folder_id: folder.id.clone(),
            id: mail.id.clone(),
            rest_id: mail.rest_id.clone(),
            removed_at: mail.removed.map(|(_, at)| at).unwrap_or_default(),
        }
    }

    /// Whether a conversation still exists (a deleted team takes its channels along).
    fn conversation_exists(&self, conv: Conv) -> bool {
        match conv {
            Conv::Chat(_) => true,
            Conv::Channel(c) => !self.teams[self.channels[c].team].deleted,
        }
    }

    /// The current version of every message and mail item that still exists.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let messages = (0..self.messages.len())
            .filter(|&i| self.conversation_exists(self.messages[i].conv))
            .map(|i| self.version_view(i, self.messages[i].versions.len() - 1))
            .collect();
        let mail = (0..self.mail.len())
            .filter(|&i| {
                self.mail[i].removed.is_none()
                    && !self.users[self.folders[self.mail[i].folder].user].deleted
            })
            .map(|i| self.mail_view(i, self.mail[i].versions.len() - 1))
            .collect();
        Snapshot { messages, mail }
    }

    pub(crate) fn history(&self) -> History {
        let mut history = History::default();
        for (i, message) in self.messages.iter().enumerate() {
            for v in 0..message.versions.len() {
                history.messages.push(self.version_view(i, v));
            }
        }
        for (i, mail) in self.mail.iter().enumerate() {
            for v in 0..mail.versions.len() {
                history.mail.push(self.mail_view(i, v));
            }
            if mail.removed.is_some() {
                history.mail_removals.push(self.removal_view(i));
            }
        }
        history
    }

    fn directory_user(&self, u: usize) -> DirectoryUser {
        let user = &self.users[u];
        DirectoryUser {
            id: user.id.clone(),
            display_name: user.display_name.clone(),
            mail: user.mail.clone(),
            user_principal_name: user.upn.clone(),
            has_mailbox: user.mailbox,
            licensed: user.licensed,
        }
    }

    fn directory_chat(&self, c: usize) -> DirectoryChat {
        let chat = &self.chats[c];
        DirectoryChat {
            id: chat.id.clone(),
            topic: chat.topic.clone(),
            chat_type: chat.chat_type.to_string(),
            member_ids: chat
                .members
                .iter()
                .map(|&u| self.users[u].id.clone())
                .collect(),
        }
    }

    fn directory_folder(&self, f: usize) -> DirectoryFolder {
        let folder = &self.folders[f];
        DirectoryFolder {
            user_id: self.users[folder.user].id.clone(),
            id: folder.id.clone(),
            display_name: folder.display_name.clone(),
            parent_id: folder.parent.map(|p| self.folders[p].id.clone()),
            hidden: folder.hidden,
            well_known_name: folder.well_known.map(str::to_string),
            listed: folder.listed,
        }
    }

    /// Who and what exists now (deleted users, teams and folders are gone).
    pub(crate) fn directory(&self) -> Directory {
        Directory {
            users: (0..self.users.len())
                .filter(|&u| !self.users[u].deleted)
                .map(|u| self.directory_user(u))
                .collect(),
            chats: (0..self.chats.len())
                .map(|c| self.directory_chat(c))
                .collect(),
            teams: self
                .teams
                .iter()
                .filter(|team| !team.deleted)
                .map(|team| DirectoryTeam {
                    id: team.id.clone(),
                    display_name: team.display_name.clone(),
                    member_ids: team
                        .members
                        .iter()
                        .map(|&u| self.users[u].id.clone())
                        .collect(),
                    channels: team
                        .channels
                        .iter()
                        .map(|&c| DirectoryChannel {
                            id: self.channels[c].id.clone(),
                            display_name: self.channels[c].display_name.clone(),
                            owner_tenant_id: self.channels[c].owner_tenant.clone(),
                        })
                        .collect(),
                })
                .collect(),
            mail_folders: (0..self.folders.len())
                .filter(|&f| !self.folders[f].deleted && !self.users[self.folders[f].user].deleted)
                .map(|f| self.directory_folder(f))
                .collect(),
        }
    }

    /// A chat as `/users/{id}/chats?$expand=members` returns it.
    pub(crate) fn chat_json(&self, c: usize, expand_members: bool) -> Vec<u8> {
        let chat = &self.chats[c];
        let last_updated = chat
            .messages
            .iter()
            .map(|&m| self.messages[m].current().last_modified)
            .max()
            .unwrap_or(chat.created);
        let mut doc = json!({
            "id": chat.id,
            "topic": chat.topic,
            "createdDateTime": graph_time(chat.created),
            "lastUpdatedDateTime": graph_time(last_updated),
            "chatType": chat.chat_type,
            "webUrl": format!("https://teams.microsoft.com/l/chat/{}/0?tenantId={}", chat.id, self.tenant_id),
            "tenantId": self.tenant_id,
            "onlineMeetingInfo": null,
            "viewpoint": null,
        });
        if expand_members {
            let members: Vec<_> = chat
                .members
                .iter()
                .map(|&u| {
                    let user = &self.users[u];
                    json!({
                        "@odata.type": "#microsoft.graph.aadUserConversationMember",
                        "id": format!("MCMjMCMj{}", user.id.replace('-', "")),
                        "roles": ["owner"],
                        "displayName": user.display_name,
                        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
                        "userId": user.id,
                        "email": user.mail,
                        "tenantId": self.tenant_id,
                    })
                })
                .collect();
            doc["members"] = serde_json::Value::Array(members);
        }
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// The id of a user's mailbox root (msgfolderroot), the parent of top-level folders.
    fn mailbox_root_id(&self, user: usize) -> String {
        format!("AQMkAD{}", &self.users[user].id.replace('-', "")[..20])
    }

    /// A mail folder as `/users/{id}/mailFolders` and `childFolders` return it.
    pub(crate) fn folder_json(&self, f: usize) -> Vec<u8> {
        let folder = &self.folders[f];
        let present: Vec<&Mail> = folder
            .items
            .iter()
            .map(|&i| &self.mail[i])
            .filter(|m| m.removed.is_none())
            .collect();
        let unread = present
            .iter()
            .filter(|m| {
                !m.versions[m.versions.len() - 1]
                    .json
                    .windows(13)
                    .any(|w| w == b"\"isRead\":true")
            })
            .count();
        let size: usize = present
            .iter()
            .map(|m| m.versions[m.versions.len() - 1].json.len())
            .sum();
        let parent = match folder.parent {
            Some(p) => self.folders[p].id.clone(),
            None => self.mailbox_root_id(folder.user),
        };
        let children = folder
            .children
            .iter()
            .filter(|&&c| !self.folders[c].deleted)
            .count();
        let doc = json!({
            "id": folder.id,
            "displayName": folder.display_name,
            "parentFolderId": parent,
            "childFolderCount": children,
            "unreadItemCount": unread,
            "totalItemCount": present.len(),
            "sizeInBytes": size,
            "isHidden": folder.hidden,
        });
        serde_json::to_vec(&doc).unwrap_or_default()
    }
}

/// Which folders a new mailbox gets.
#[derive(Clone, Debug)]
pub(crate) struct MailboxShape {
    pub mailbox: bool,
    pub nested: usize,
    pub hidden: usize,
    pub recoverable_items: bool,
}

impl MailboxShape {
    /// Inbox, Sent Items, Archive and Recoverable Items.
    pub(crate) fn plain() -> Self {
        MailboxShape {
            mailbox: true,
            nested: 0,
            hidden: 0,
            recoverable_items: true,
        }
    }
}

/// Stored documents carry timestamps we wrote ourselves.
pub(crate) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("stored timestamp {text:?} does not parse: {e}"))
}

/// A message changed at `at`: a later `lastModifiedDateTime` and a new etag.
fn modified_at(doc: &mut ChatMessageDoc, at: DateTime<Utc>) {
    doc.last_modified_date_time = graph_time(at);
    doc.etag = at.timestamp_millis().to_string();
}
