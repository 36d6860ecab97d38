//! The output formats. Each receives the selected messages in transcript order (by day,
//! conversation, thread, time), told where each conversation-day starts and ends.

pub(crate) mod csv;
pub(crate) mod html;
pub(crate) mod jsonl;
pub(crate) mod mail;
pub(crate) mod rsmf;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use mail_builder::headers::HeaderType;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;

use crate::conversation::ConversationKey;
use crate::directory::Directory;
use crate::error::ExportError;
use crate::output::Outputs;
use crate::view::MessageView;

/// What every format knows about the conversation-day being written.
pub(crate) struct ConversationDay<'a> {
    pub day: NaiveDate,
    pub conversation: &'a ConversationKey,
    pub directory: &'a Directory,
    /// Custodians the export is limited to (Graph user ids; empty: all).
    pub selected_custodians: &'a [String],
}

impl ConversationDay<'_> {
    pub fn date(&self) -> String {
        self.day.format("%Y-%m-%d").to_string()
    }

    /// A name for people: the chat's topic, a chat type, or the channel.
    pub fn display(&self) -> String {
        match self.conversation {
            ConversationKey::Chat { chat_id } => {
                let chat = self.directory.chat(chat_id);
                match (
                    chat.and_then(|c| c.topic.clone()),
                    chat.and_then(|c| c.chat_type.as_deref()),
                ) {
                    (Some(topic), _) => topic,
                    (None, Some("oneOnOne")) => "One-on-one chat".to_string(),
                    (None, Some("meeting")) => "Meeting chat".to_string(),
                    (None, Some(_)) => "Group chat".to_string(),
                    (None, None) => "Chat".to_string(),
                }
            }
            ConversationKey::Channel { channel_id, .. } => format!("Channel {channel_id}"),
            ConversationKey::Unknown => "Messages without a conversation".to_string(),
        }
    }
}

/// What a format's step returns.
pub(crate) type Step = Result<(), ExportError>;

/// One output format.
pub(crate) trait FormatWriter {
    /// A conversation-day begins (formats that write per message need nothing here).
    fn begin(&mut self, _day: &ConversationDay<'_>, _out: &mut Outputs) -> Step {
        Ok(())
    }
    fn message(&mut self, day: &ConversationDay, view: &MessageView, out: &mut Outputs) -> Step;
    /// The conversation-day is complete.
    fn end(&mut self, _day: &ConversationDay<'_>, _out: &mut Outputs) -> Step {
        Ok(())
    }
    /// The export is complete.
    fn finish(&mut self, _out: &mut Outputs) -> Step {
        Ok(())
    }
}

/// `text` on one line: control characters (line breaks above all) written as `\r`, `\n`,
/// `\t` or `\u{..}`, so that a name or topic cannot start a line of its own in a plain
/// text transcript or a header.
pub(crate) fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A header value on one line: as is when ASCII (folded at spaces only, so long ids stay
/// whole), else as RFC 2047 encoded words.
pub(crate) fn header_text(value: String) -> HeaderType<'static> {
    let value = one_line(&value).into_owned();
    if value.is_ascii() {
        HeaderType::Raw(Raw::new(value))
    } else {
        HeaderType::Text(Text::new(value))
    }
}

/// RFC 3339 in UTC with milliseconds (`2024-05-01T09:30:00.123Z`), as Graph writes times.
pub(crate) fn utc(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// RFC 3339 in UTC with every microsecond the archive holds.
pub(crate) fn utc_micros(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// For people: `2024-05-01 09:30:00 UTC`.
pub(crate) fn readable_utc(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        let us = 1_714_555_800_123_456;
        assert_eq!(utc(us), "2024-05-01T09:30:00.123Z");
        assert_eq!(utc_micros(us), "2024-05-01T09:30:00.123456Z");
        assert_eq!(readable_utc(us), "2024-05-01 09:30:00 UTC");
    }

    #[test]
    fn one_line_shows_control_characters_instead_of_obeying_them() {
        assert_eq!(one_line("Ada Berg"), "Ada Berg");
        assert_eq!(
            one_line("a\r\nb\tc\u{7}d\u{85}"),
            "a\\r\\nb\\tc\\u{7}d\\u{85}"
        );
    }
}
