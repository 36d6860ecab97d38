//! Which messages an export holds: custodians, conversations, a time range, keywords,
//! deleted messages and versions; and which date partitions that needs.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use crate::conversation::ConversationKey;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Relativity Short Message Format 2.0: one `.rsmf` per conversation and day.
    Rsmf,
    /// One message version per line: the archived columns and `raw_json`.
    Jsonl,
    /// The flat columns, RFC 4180, UTF-8 with a header. Cells a spreadsheet would run as
    /// formulas (beginning with `=`, `+`, `-`, `@`, a tab or a carriage return) get a
    /// leading `'` unless [`crate::ExportRequest::csv_raw`] is set.
    Csv,
    /// A readable transcript per conversation and day.
    Html,
    /// Mail: an EML per mail message version (its archived MIME when there is one) and
    /// an mbox per mailbox.
    Mail,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Rsmf => "rsmf",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Html => "html",
            Format::Mail => "mail",
        }
    }

    /// Whether the format shows chat and channel messages (all but mail).
    pub(crate) fn is_chat(self) -> bool {
        self != Format::Mail
    }
}

/// What to export. Every condition given must hold; an empty list means "any".
///
/// - `custodians`: Graph user ids whose mailbox held a version of the message (for mail,
///   the mailbox it was read from). Channel messages have no custodian, so a custodian
///   selection leaves them out.
/// - `chats`, `team`, `channel`: the message is in one of the chats, or in a channel of
///   the team (and that channel, when given); a channel id alone matches in any team.
///   Mail is in none, so any of them leaves mail out.
/// - `from` (inclusive) and `to` (exclusive): the message's `createdDateTime` (mail:
///   `receivedDateTime`); a message without one is placed at the start of its
///   partition's day.
/// - `keywords`: any version's text or subject contains one of them, ignoring case.
/// - `include_deleted`: keep messages whose latest version is a deletion. (Mail delta
///   removals carry no message and are not exported: a move is a removal too.)
/// - `all_versions`: JSONL, CSV and mail get every archived version, not only the
///   latest (RSMF and HTML always show edits from every version).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Selection {
    pub custodians: Vec<String>,
    pub chats: Vec<String>,
    pub team: Option<String>,
    pub channel: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub keywords: Vec<String>,
    pub include_deleted: bool,
    pub all_versions: bool,
}

impl Selection {
    /// Checks the selection makes sense and puts its lists in a stable order.
    pub(crate) fn normalized(mut self) -> Result<Selection, String> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            return Err(format!(
                "--from {} is not before --to {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            ));
        }
        for keyword in &self.keywords {
            if keyword.trim().is_empty() {
                return Err("--keyword needs a word, not an empty string".into());
            }
        }
        for list in [&mut self.custodians, &mut self.chats, &mut self.keywords] {
            list.sort();
            list.dedup();
        }
        Ok(self)
    }

    /// Whether mail can be selected: mail is in no chat, team or channel.
    pub(crate) fn wants_mail(&self) -> bool {
        self.chats.is_empty() && self.team.is_none() && self.channel.is_none()
    }

    /// Whether a date partition can hold selected messages (partition pruning).
    pub(crate) fn wants_day(&self, day: NaiveDate) -> bool {
        let start = day_start(day);
        let end = start + TimeDelta::days(1);
        self.from.is_none_or(|from| end > from) && self.to.is_none_or(|to| start < to)
    }

    /// Whether a message created at `created_us` (or, unknown, on `day`) is in range.
    pub(crate) fn wants_time(&self, created_us: Option<i64>, day: NaiveDate) -> bool {
        let at = created_us.unwrap_or_else(|| day_start(day).timestamp_micros());
        self.from.is_none_or(|from| at >= from.timestamp_micros())
            && self.to.is_none_or(|to| at < to.timestamp_micros())
    }

    /// Whether a conversation is in the selection's chats, team or channel.
    pub(crate) fn wants_conversation(&self, conversation: &ConversationKey) -> bool {
        if self.chats.is_empty() && self.team.is_none() && self.channel.is_none() {
            return true;
        }
        match conversation {
            ConversationKey::Chat { chat_id } => self.chats.iter().any(|c| c == chat_id),
            ConversationKey::Channel {
                team_id,
                channel_id,
            } => {
                (self.team.is_some() || self.channel.is_some())
                    && self.team.as_ref().is_none_or(|t| t == team_id)
                    && self.channel.as_ref().is_none_or(|c| c == channel_id)
            }
            ConversationKey::Unknown => false,
        }
    }

    /// Lower-cased keywords, for matching.
    pub(crate) fn keyword_needles(&self) -> Vec<String> {
        self.keywords.iter().map(|k| k.to_lowercase()).collect()
    }
}

pub(crate) fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn partitions_are_pruned_to_the_range() {
        let selection = Selection {
            from: Some(at("2024-03-02T12:00:00Z")),
            to: Some(at("2024-03-04T00:00:00Z")),
            ..Selection::default()
        };
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(!selection.wants_day(day("2024-03-01")));
        assert!(selection.wants_day(day("2024-03-02")));
        assert!(selection.wants_day(day("2024-03-03")));
        assert!(!selection.wants_day(day("2024-03-04")), "--to is exclusive");
        assert!(Selection::default().wants_day(day("1999-01-01")));
    }

    #[test]
    fn times_are_inclusive_from_and_exclusive_to() {
        let selection = Selection {
            from: Some(at("2024-03-02T12:00:00Z")),
            to: Some(at("2024-03-03T00:00:00Z")),
            ..Selection::default()
        };
        let day = NaiveDate::from_ymd_opt(2024, 3, 2).unwrap();
        let us = |s: &str| Some(at(s).timestamp_micros());
        assert!(selection.wants_time(us("2024-03-02T12:00:00Z"), day));
        assert!(!selection.wants_time(us("2024-03-02T11:59:59.999999Z"), day));
        assert!(!selection.wants_time(us("2024-03-03T00:00:00Z"), day));
        assert!(
            !selection.wants_time(None, day),
            "unknown time is the day's start"
        );
    }

    #[test]
    fn conversations_match_chats_or_team_and_channel() {
        let chat = ConversationKey::Chat {
            chat_id: "19:a@thread.v2".into(),
        };
        let channel = ConversationKey::Channel {
            team_id: "t1".into(),
            channel_id: "c1".into(),
        };
        assert!(Selection::default().wants_conversation(&chat));
        assert!(Selection::default().wants_conversation(&ConversationKey::Unknown));
        let chats = Selection {
            chats: vec!["19:a@thread.v2".into()],
            ..Selection::default()
        };
        assert!(chats.wants_conversation(&chat));
        assert!(!chats.wants_conversation(&channel));
        let team = Selection {
            team: Some("t1".into()),
            ..Selection::default()
        };
        assert!(team.wants_conversation(&channel) && !team.wants_conversation(&chat));
        let other_channel = Selection {
            team: Some("t1".into()),
            channel: Some("c2".into()),
            ..Selection::default()
        };
        assert!(!other_channel.wants_conversation(&channel));
    }

    #[test]
    fn a_range_that_ends_before_it_starts_is_refused() {
        let err = Selection {
            from: Some(at("2024-03-02T00:00:00Z")),
            to: Some(at("2024-03-01T00:00:00Z")),
            ..Selection::default()
        }
        .normalized()
        .unwrap_err();
        assert!(err.contains("--from") && err.contains("--to"), "{err}");
    }
}
