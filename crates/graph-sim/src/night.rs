//! A night of ordinary changes in a tenant, as people make them between two syncs: the
//! `demo` command shows an incremental run picking them up.

use crate::server::RunningSim;
use crate::store::SimError;
use crate::truth::Conversation;

/// How many of each change [`RunningSim::make_a_night_of_changes`] made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NightOfChanges {
    pub edited: usize,
    pub deleted: usize,
    pub added: usize,
    pub replies: usize,
    pub mails_removed: usize,
}

impl std::fmt::Display for NightOfChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages edited, {} deleted, {} new chat messages, {} new channel reply, {} mail deleted",
            self.edited, self.deleted, self.added, self.replies, self.mails_removed
        )
    }
}

impl RunningSim {
    /// Edits three chat messages, deletes one, adds two to a chat and a reply to a
    /// channel, and deletes a mail: whatever of that the tenant has room for.
    pub fn make_a_night_of_changes(&self) -> Result<NightOfChanges, SimError> {
        let snapshot = self.snapshot();
        let directory = self.directory();
        let mut changes = NightOfChanges::default();
        let chat_messages: Vec<_> = snapshot
            .messages
            .iter()
            .filter(|m| matches!(m.conversation, Conversation::Chat { .. }) && !m.deleted)
            .collect();
        for message in chat_messages.iter().take(3) {
            self.edit_message(
                &message.message_ref(),
                "<p>Edited: the numbers are final now.</p>",
            )?;
            changes.edited += 1;
        }
        if let Some(message) = chat_messages.get(3) {
            self.soft_delete_message(&message.message_ref())?;
            changes.deleted += 1;
        }
        if let Some(chat) = directory.chats.first()
            && let Some(member) = chat.member_ids.first()
        {
            for text in [
                "<p>Morning! Agenda attached.</p>",
                "<p>Can we move the call to 3pm?</p>",
            ] {
                self.add_chat_message(&chat.id, member, text)?;
                changes.added += 1;
            }
        }
        if let Some(root) = snapshot.messages.iter().find(|m| {
            m.reply_to_id.is_none() && matches!(m.conversation, Conversation::Channel { .. })
        }) && let Conversation::Channel {
            team_id,
            channel_id,
        } = &root.conversation
            && let Some(member) = directory
                .teams
                .iter()
                .find(|t| &t.id == team_id)
                .and_then(|t| t.member_ids.first())
        {
            self.add_reply(
                team_id,
                channel_id,
                &root.id,
                member,
                "<p>Agreed, ship it.</p>",
            )?;
            changes.replies += 1;
        }
        if let Some(mail) = snapshot.mail.first() {
            self.delete_mail(&mail.user_id, &mail.folder_id, &mail.id)?;
            changes.mails_removed += 1;
        }
        Ok(changes)
    }
}
