//! What a reviewer sees of a message, worked out once for every format: who sent it,
//! its text, its edits and deletion from the archived versions, reactions and who gave
//! them, attachments as small files, and what a system event means.

use serde_json::Value;

use transform::ContentKind;

use crate::content::ExportedPiece;
use crate::directory::{Directory, Person};
use crate::message::Message;
use crate::rows::TableRow;
use crate::rows::VersionRow;

/// What kind of event a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Message,
    Join,
    Leave,
    /// A change to the conversation or its history: a rename, a pin, a call, a new tab...
    History,
    /// A message type this exporter does not know (typing, chatEvent, future values).
    Unknown,
}

impl EventKind {
    pub fn rsmf(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::History => "history",
            EventKind::Unknown => "unknown",
        }
    }
}

/// A change of a message's text between two archived versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub at_us: Option<i64>,
    pub by: Option<Person>,
    /// `None` when the archive holds no version from before the edit.
    pub previous: Option<String>,
    pub new: Option<String>,
}

/// One reaction type on a message, with everyone who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub value: String,
    /// Each person once, in the order Graph lists them.
    pub people: Vec<Person>,
    /// How many reactions of this type the message has (a person may appear twice).
    pub count: usize,
    /// Reactions whose user Graph did not name.
    pub anonymous: usize,
}

impl Reaction {
    pub fn count(&self) -> usize {
        self.count
    }
}

/// A Teams attachment, with the small file that stands for it in an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub graph_id: Option<String>,
    pub content_type: Option<String>,
    /// What to call it: the file name, a card's title, "Quoted message".
    pub display: String,
    pub url: Option<String>,
    /// Card content, a quoted message's preview: the attachment as text.
    pub text: Option<String>,
    /// Name of the file that carries it (unique within a conversation and day).
    pub file_name: String,
    pub file_bytes: Vec<u8>,
}

/// A system event (members added, chat renamed, call ended...), read from `eventDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemEvent {
    pub detail_type: String,
    pub initiator: Option<Person>,
    /// The members a join or leave is about.
    pub members: Vec<Person>,
    pub description: String,
}

/// A message as every format shows it.
#[derive(Debug, Clone)]
pub struct MessageView<'m> {
    pub message: &'m Message,
    pub kind: EventKind,
    pub sender: Option<Person>,
    /// The text now, or for a deleted message the last text the archive holds.
    pub text: String,
    pub deleted_at_us: Option<i64>,
    pub importance_high: bool,
    pub edits: Vec<Edit>,
    pub reactions: Vec<Reaction>,
    pub attachments: Vec<Attachment>,
    pub system: Option<SystemEvent>,
    /// Why parts of the message could not be read (named in the export's errors).
    pub problems: Vec<String>,
    /// What each version points to (by version, oldest first), with where the export
    /// holds its bytes; filled for the versions an export shows.
    pub contents: Vec<Vec<ExportedPiece>>,
    /// The version whose text is shown: the latest, or for a deleted message the last
    /// one archived before the deletion.
    pub shown: usize,
}

/// The parts of a Graph item a view needs beyond the typed columns.
#[derive(Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Extra {
    reactions: Value,
    attachments: Value,
    event_detail: Value,
}

impl<'m> MessageView<'m> {
    pub fn new(message: &'m Message, directory: &Directory) -> MessageView<'m> {
        let latest = message.latest();
        let mut problems = Vec::new();
        let extra: Extra = match serde_json::from_str(&latest.raw_json) {
            Ok(extra) => extra,
            Err(e) => {
                problems.push(format!(
                    "{}: raw_json could not be read ({e}); reactions, attachments and event details are left out",
                    latest.place()
                ));
                Extra::default()
            }
        };
        let sender = sender_of(latest, directory);
        let system = (latest.message_type.as_deref() == Some("systemEventMessage"))
            .then(|| system_event(&extra.event_detail, directory));
        let kind = match (latest.message_type.as_deref(), &system) {
            (Some("message") | None, _) => EventKind::Message,
            (Some("systemEventMessage"), Some(event)) => event_kind(&event.detail_type),
            _ => EventKind::Unknown,
        };
        let deleted_at_us = latest.deleted_us;
        let versions = message.versions();
        // The deleted version carries no text; show the last text archived before it.
        let shown = if deleted_at_us.is_some() {
            versions.iter().rposition(|v| v.deleted_us.is_none())
        } else {
            None
        }
        .unwrap_or(versions.len() - 1);
        let text = if let Some(event) = &system {
            event.description.clone()
        } else if deleted_at_us.is_some() {
            versions
                .iter()
                .rev()
                .find(|v| v.deleted_us.is_none())
                .and_then(|v| v.body_text.clone())
                .unwrap_or_default()
        } else {
            latest.body_text.clone().unwrap_or_default()
        };
        MessageView {
            message,
            kind,
            sender,
            text,
            deleted_at_us,
            importance_high: matches!(latest.importance.as_deref(), Some("high" | "urgent")),
            edits: edits(message, directory),
            reactions: reactions(&extra.reactions, directory),
            attachments: attachments(&extra.attachments, message.key()),
            system,
            problems,
            contents: vec![Vec::new(); versions.len()],
            shown,
        }
    }

    /// The pieces of the shown version, one per piece it points to: the stored copy when
    /// there is one, else what became of it.
    pub fn shown_pieces(&self) -> Vec<&ExportedPiece> {
        let mut out: Vec<&ExportedPiece> = Vec::new();
        let pieces = self.contents.get(self.shown).map_or(&[][..], Vec::as_slice);
        for piece in pieces {
            let same = |p: &&ExportedPiece| {
                p.piece.kind == piece.piece.kind && p.piece.reference == piece.piece.reference
            };
            match out.iter().position(same) {
                Some(i) if out[i].file.is_none() && piece.file.is_some() => out[i] = piece,
                Some(_) => {}
                None => out.push(piece),
            }
        }
        out
    }

    /// The inline images of the shown version, in the order its body shows them.
    pub fn images(&self) -> Vec<&ExportedPiece> {
        let mut images: Vec<&ExportedPiece> = self
            .shown_pieces()
            .into_iter()
            .filter(|p| p.piece.kind == ContentKind::HostedContent)
            .collect();
        let body = self.message.versions()[self.shown]
            .body_content
            .as_deref()
            .unwrap_or("");
        images.sort_by_key(|p| body.find(p.piece.reference.as_str()).unwrap_or(usize::MAX));
        images
    }

    /// The shared file a Teams attachment links (its `contentUrl`), as archived.
    pub fn file_of(&self, url: &str) -> Option<&ExportedPiece> {
        self.shown_pieces()
            .into_iter()
            .find(|p| p.piece.kind == ContentKind::File && p.piece.reference == url)
    }

    /// Shared files the shown version points to that no attachment of it links.
    pub fn other_files(&self) -> Vec<&ExportedPiece> {
        self.shown_pieces()
            .into_iter()
            .filter(|p| {
                p.piece.kind == ContentKind::File
                    && !self
                        .attachments
                        .iter()
                        .any(|a| a.url.as_deref() == Some(p.piece.reference.as_str()))
            })
            .collect()
    }

    /// Everyone the message names: sender, reactors, members of a join or leave.
    pub fn people(&self) -> Vec<&Person> {
        let mut people: Vec<&Person> = self.sender.iter().collect();
        people.extend(self.reactions.iter().flat_map(|r| r.people.iter()));
        people.extend(self.edits.iter().filter_map(|e| e.by.as_ref()));
        if let Some(system) = &self.system {
            people.extend(system.initiator.iter());
            people.extend(system.members.iter());
        }
        people
    }
}

fn sender_of(row: &VersionRow, directory: &Directory) -> Option<Person> {
    if let Some(id) = row.from_user_id.as_deref().filter(|i| !i.is_empty()) {
        return Some(directory.person(id, row.from_user_display_name.as_deref()));
    }
    let id = row.from_application_id.as_deref().filter(|i| !i.is_empty());
    let name = row.from_application_display_name.as_deref();
    match (id, name) {
        (Some(id), _) => Some(directory.person(id, name)),
        (None, Some(name)) => Some(Person {
            id: format!("app:{name}"),
            display: name.to_string(),
            email: None,
        }),
        (None, None) => None,
    }
}

/// Text changes between consecutive archived versions; and, when even the oldest
/// archived version says it was edited, an edit whose earlier text the archive lacks.
fn edits(message: &Message, directory: &Directory) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut previous: Option<&VersionRow> = None;
    for version in message.versions() {
        if version.deleted_us.is_some() {
            continue;
        }
        let by = sender_of(version, directory);
        match previous {
            None => {
                if let Some(at) = version.last_edited_us {
                    edits.push(Edit {
                        at_us: Some(at),
                        by,
                        previous: None,
                        new: version.body_text.clone(),
                    });
                }
            }
            Some(before) if before.body_text != version.body_text => edits.push(Edit {
                at_us: version.last_edited_us.or(version.last_modified_us),
                by,
                previous: before.body_text.clone(),
                new: version.body_text.clone(),
            }),
            Some(_) => {}
        }
        previous = Some(version);
    }
    edits
}

/// The non-empty string at `path` in a JSON value.
pub(crate) fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// An identity set (`{user, application, device}`) as a person.
fn identity(set: &Value, directory: &Directory) -> Option<Person> {
    for kind in ["user", "application", "device"] {
        if let Some(id) = str_at(set, &[kind, "id"]) {
            return Some(directory.person(id, str_at(set, &[kind, "displayName"])));
        }
    }
    None
}

fn reactions(value: &Value, directory: &Directory) -> Vec<Reaction> {
    let mut out: Vec<Reaction> = Vec::new();
    for reaction in value.as_array().into_iter().flatten() {
        let kind = str_at(reaction, &["reactionType"]);
        let name = str_at(reaction, &["displayName"]);
        // A custom reaction's type is just "custom"; its display name says which.
        let value = match (kind, name) {
            (Some("custom"), Some(name)) => name,
            (Some(kind), _) => kind,
            (None, Some(name)) => name,
            (None, None) => "reaction",
        };
        let person = reaction.get("user").and_then(|u| identity(u, directory));
        let entry = match out.iter_mut().position(|r| r.value == value) {
            Some(i) => &mut out[i],
            None => {
                out.push(Reaction {
                    value: value.to_string(),
                    people: Vec::new(),
                    count: 0,
                    anonymous: 0,
                });
                out.last_mut().expect("just pushed")
            }
        };
        entry.count += 1;
        match person {
            Some(p) if !entry.people.contains(&p) => entry.people.push(p),
            Some(_) => {}
            None => entry.anonymous += 1,
        }
    }
    out
}

/// A file name made of safe characters only.
pub(crate) fn safe_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || " -_.()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = safe.trim_matches(|c: char| c == '.' || c == ' ');
    let mut out: String = trimmed.chars().take(80).collect();
    if out.is_empty() {
        out.push_str("attachment");
    }
    out
}

/// An `http` or `https` URL with no control characters or spaces: what an Internet
/// shortcut may point to.
pub(crate) fn is_web_link(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Attachment content that is JSON (cards, quotes) arrives as a string holding JSON.
fn content_json(attachment: &Value) -> Option<Value> {
    match attachment.get("content")? {
        Value::String(text) => serde_json::from_str(text).ok(),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

fn attachments(value: &Value, message_key: &str) -> Vec<Attachment> {
    let prefix = safe_name(message_key);
    let mut out = Vec::new();
    for (index, attachment) in value.as_array().into_iter().flatten().enumerate() {
        let content_type = str_at(attachment, &["contentType"]).map(str::to_string);
        let name = str_at(attachment, &["name"]);
        let url = str_at(attachment, &["contentUrl"]).map(str::to_string);
        let n = index + 1;
        let (display, text, extension) = match content_type.as_deref() {
            Some("reference") => {
                // A shortcut file opens its URL when clicked: only a plain web link may
                // become one. Anything else (file://, a UNC path, javascript:, a line
                // break that adds an IconFile= line) is written as text to read.
                let extension = if url.as_deref().is_some_and(is_web_link) {
                    "url"
                } else {
                    "txt"
                };
                (name.unwrap_or("shared file").to_string(), None, extension)
            }
            Some("messageReference") => {
                let quote = content_json(attachment).unwrap_or(Value::Null);
                let sender = str_at(&quote, &["messageSender", "user", "displayName"])
                    .or_else(|| str_at(&quote, &["messageSender", "application", "displayName"]));
                let preview = str_at(&quote, &["messagePreview"]).unwrap_or("");
                let text = match sender {
                    Some(sender) => format!("Quoted message from {sender}: {preview}"),
                    None => format!("Quoted message: {preview}"),
                };
                ("Quoted message".to_string(), Some(text), "txt")
            }
            Some(kind) if kind.starts_with("application/vnd.microsoft.card.") => {
                let card = content_json(attachment).unwrap_or(Value::Null);
                let mut lines = Vec::new();
                card_text(&card, &mut lines);
                let title = lines.first().cloned();
                let label = kind.trim_start_matches("application/vnd.microsoft.card.");
                let display = name
                    .map(str::to_string)
                    .or(title)
                    .map_or_else(|| format!("{label} card"), |t| format!("{label} card: {t}"));
                (display, Some(lines.join("\n")), "txt")
            }
            _ => {
                let text = match attachment.get("content") {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                };
                (name.unwrap_or("attachment").to_string(), text, "txt")
            }
        };
        let file_name = format!("{prefix}-{n}-{}.{extension}", safe_name(&display));
        let file_bytes = match extension {
            // An Internet shortcut: opens the shared file where it lives.
            "url" => format!(
                "[InternetShortcut]\r\nURL={}\r\n",
                url.as_deref().unwrap_or("")
            )
            .into_bytes(),
            _ => {
                let mut body = format!("{display}\r\n");
                if let Some(kind) = &content_type {
                    body.push_str(&format!("Content type: {kind}\r\n"));
                }
                if let Some(url) = &url {
                    body.push_str(&format!("URL: {}\r\n", crate::formats::one_line(url)));
                }
                if let Some(text) = &text {
                    body.push_str("\r\n");
                    body.push_str(&text.replace('\n', "\r\n"));
                    body.push_str("\r\n");
                }
                body.into_bytes()
            }
        };
        out.push(Attachment {
            graph_id: str_at(attachment, &["id"]).map(str::to_string),
            content_type,
            display,
            url,
            text,
            file_name,
            file_bytes,
        });
    }
    out
}

/// The readable text of an Adaptive, Hero or Thumbnail card, one piece per line.
fn card_text(value: &Value, lines: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(title)), Some(Value::String(value))) =
                (map.get("title"), map.get("value"))
                && map.get("type").is_none()
            {
                // A fact: "Amount: 12 USD".
                lines.push(format!("{title}: {value}"));
                return;
            }
            for key in ["title", "subtitle", "text", "altText", "label"] {
                if let Some(Value::String(s)) = map.get(key)
                    && !s.trim().is_empty()
                {
                    // Hero and thumbnail cards may carry HTML in their text.
                    let text = if s.contains('<') || s.contains('&') {
                        transform::html_to_text(s)
                    } else {
                        s.clone()
                    };
                    lines.push(text.trim().to_string());
                }
            }
            for (key, child) in map {
                if matches!(child, Value::Object(_) | Value::Array(_)) && key != "$schema" {
                    card_text(child, lines);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| card_text(item, lines)),
        _ => {}
    }
}

fn event_kind(detail_type: &str) -> EventKind {
    match detail_type {
        "membersAddedEventMessageDetail" | "membersJoinedEventMessageDetail" => EventKind::Join,
        "membersDeletedEventMessageDetail" | "membersLeftEventMessageDetail" => EventKind::Leave,
        _ => EventKind::History,
    }
}

fn system_event(detail: &Value, directory: &Directory) -> SystemEvent {
    let detail_type = str_at(detail, &["@odata.type"])
        .map(|t| t.trim_start_matches("#microsoft.graph.").to_string())
        .unwrap_or_else(|| "unknownEventMessageDetail".to_string());
    let initiator = detail.get("initiator").and_then(|i| identity(i, directory));
    let members: Vec<Person> = detail
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let id = str_at(m, &["id"])?;
            Some(directory.person(id, str_at(m, &["displayName"])))
        })
        .collect();
    let who = initiator
        .as_ref()
        .map_or_else(|| "Someone".to_string(), |p| p.display.clone());
    let names = members
        .iter()
        .map(|m| m.display.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let s = |key: &str| str_at(detail, &[key]).unwrap_or("").to_string();
    let description = match detail_type.as_str() {
        "membersAddedEventMessageDetail" => format!("{who} added {names}"),
        "membersJoinedEventMessageDetail" => format!("{names} joined"),
        "membersDeletedEventMessageDetail" => format!("{who} removed {names}"),
        "membersLeftEventMessageDetail" => format!("{names} left"),
        "chatRenamedEventMessageDetail" => {
            format!("{who} renamed the chat to \"{}\"", s("chatDisplayName"))
        }
        "teamRenamedEventMessageDetail" => {
            format!("{who} renamed the team to \"{}\"", s("teamDisplayName"))
        }
        "channelRenamedEventMessageDetail" => {
            format!(
                "{who} renamed the channel to \"{}\"",
                s("channelDisplayName")
            )
        }
        "channelAddedEventMessageDetail" => {
            format!("{who} added channel \"{}\"", s("channelDisplayName"))
        }
        "channelDeletedEventMessageDetail" => {
            format!("{who} deleted channel \"{}\"", s("channelDisplayName"))
        }
        "teamDescriptionUpdatedEventMessageDetail" => {
            format!(
                "{who} changed the team description to \"{}\"",
                s("teamDescription")
            )
        }
        "channelDescriptionUpdatedEventMessageDetail" => {
            format!(
                "{who} changed the channel description to \"{}\"",
                s("channelDescription")
            )
        }
        "callStartedEventMessageDetail" => format!("{who} started a call"),
        "callEndedEventMessageDetail" => {
            let duration = s("callDuration");
            if duration.is_empty() {
                "Call ended".to_string()
            } else {
                format!("Call ended after {duration}")
            }
        }
        "callRecordingEventMessageDetail" => {
            format!(
                "Call recording \"{}\" {}",
                s("callRecordingDisplayName"),
                s("callRecordingStatus")
            )
        }
        "callTranscriptEventMessageDetail" => "Call transcript available".to_string(),
        "messagePinnedEventMessageDetail" => format!("{who} pinned a message"),
        "messageUnpinnedEventMessageDetail" => format!("{who} unpinned a message"),
        "teamCreatedEventMessageDetail" => {
            format!("{who} created the team \"{}\"", s("teamDisplayName"))
        }
        "teamArchivedEventMessageDetail" => format!("{who} archived the team"),
        "teamUnarchivedEventMessageDetail" => format!("{who} restored the team"),
        "teamsAppInstalledEventMessageDetail" => {
            format!("{who} added app \"{}\"", s("teamsAppDisplayName"))
        }
        "teamsAppRemovedEventMessageDetail" => {
            format!("{who} removed app \"{}\"", s("teamsAppDisplayName"))
        }
        "teamsAppUpgradedEventMessageDetail" => {
            format!("{who} upgraded app \"{}\"", s("teamsAppDisplayName"))
        }
        "tabUpdatedEventMessageDetail" => format!("{who} updated a tab"),
        "conversationMemberRoleUpdatedEventMessageDetail" => {
            let member = str_at(detail, &["conversationMemberUser", "displayName"])
                .or_else(|| str_at(detail, &["conversationMemberUser", "id"]))
                .unwrap_or("a member");
            format!("{who} changed the role of {member}")
        }
        other => {
            // `fooBarEventMessageDetail` reads as "foo bar".
            let words = other.trim_end_matches("EventMessageDetail");
            let mut text = String::new();
            for c in words.chars() {
                if c.is_uppercase() {
                    text.push(' ');
                    text.extend(c.to_lowercase());
                } else {
                    text.push(c);
                }
            }
            format!("{who}: {}", text.trim())
        }
    };
    SystemEvent {
        detail_type,
        initiator,
        members,
        description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::tests::version;

    fn view_of(versions: Vec<VersionRow>) -> (Message, Directory) {
        (Message::new(versions).unwrap(), Directory::default())
    }

    #[test]
    fn edits_come_from_archived_versions_and_deletion_keeps_the_last_text() {
        let mut first = version("m", 1);
        first.body_text = Some("draft".into());
        let mut second = version("m", 2);
        second.body_text = Some("final".into());
        second.last_edited_us = Some(2);
        let mut third = version("m", 3);
        third.body_text = Some(String::new());
        third.deleted_us = Some(3);
        let (message, directory) = view_of(vec![first, second, third]);
        let view = MessageView::new(&message, &directory);
        assert_eq!(view.edits.len(), 1);
        assert_eq!(view.edits[0].previous.as_deref(), Some("draft"));
        assert_eq!(view.edits[0].new.as_deref(), Some("final"));
        assert_eq!(view.edits[0].at_us, Some(2));
        assert_eq!(view.deleted_at_us, Some(3));
        assert_eq!(view.text, "final");
        assert_eq!(view.sender.as_ref().unwrap().display, "Ada");
    }

    #[test]
    fn an_edit_before_archiving_is_marked_without_its_earlier_text() {
        let mut only = version("m", 5);
        only.last_edited_us = Some(5);
        let (message, directory) = view_of(vec![only]);
        let view = MessageView::new(&message, &directory);
        assert_eq!(view.edits.len(), 1);
        assert_eq!(view.edits[0].previous, None);
    }

    #[test]
    fn reactions_group_by_type_with_their_people() {
        let mut row = version("m", 1);
        row.raw_json = r#"{"reactions":[
            {"reactionType":"like","user":{"user":{"id":"u2","displayName":null}}},
            {"reactionType":"like","user":{"user":{"id":"u3","displayName":"Kenji"}}},
            {"reactionType":"custom","displayName":"partyparrot","user":{"user":{"id":"u2"}}},
            {"reactionType":"like","user":{"user":{"id":"u3","displayName":"Kenji"}}},
            {"reactionType":"heart","user":null}]}"#
            .into();
        let (message, directory) = view_of(vec![row]);
        let view = MessageView::new(&message, &directory);
        let summary: Vec<(String, usize)> = view
            .reactions
            .iter()
            .map(|r| (r.value.clone(), r.count()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("like".into(), 3),
                ("partyparrot".into(), 1),
                ("heart".into(), 1)
            ]
        );
        assert_eq!(view.reactions[0].people.len(), 2, "each person once");
        assert_eq!(view.reactions[0].people[1].display, "Kenji");
        assert_eq!(view.reactions[0].people[0].display, "u2", "unnamed: the id");
    }

    #[test]
    fn attachments_become_small_files() {
        let mut row = version("m7", 1);
        row.raw_json = r#"{"attachments":[
            {"id":"a1","contentType":"reference","contentUrl":"https://x.example/Budget.xlsx","name":"Budget.xlsx"},
            {"id":"a2","contentType":"application/vnd.microsoft.card.adaptive","content":"{\"type\":\"AdaptiveCard\",\"body\":[{\"type\":\"TextBlock\",\"text\":\"Approve?\"},{\"type\":\"FactSet\",\"facts\":[{\"title\":\"Amount\",\"value\":\"12 USD\"}]}]}"},
            {"id":"a3","contentType":"messageReference","content":"{\"messagePreview\":\"earlier words\",\"messageSender\":{\"user\":{\"displayName\":\"Lin\"}}}"}]}"#
            .into();
        let (message, directory) = view_of(vec![row]);
        let view = MessageView::new(&message, &directory);
        let files: Vec<&str> = view
            .attachments
            .iter()
            .map(|a| a.file_name.as_str())
            .collect();
        assert_eq!(
            files,
            vec![
                "m7-1-Budget.xlsx.url",
                "m7-2-adaptive card_ Approve_.txt",
                "m7-3-Quoted message.txt"
            ]
        );
        let shortcut = String::from_utf8(view.attachments[0].file_bytes.clone()).unwrap();
        assert!(shortcut.contains("URL=https://x.example/Budget.xlsx"));
        let card = view.attachments[1].text.as_deref().unwrap();
        assert!(
            card.contains("Approve?") && card.contains("Amount: 12 USD"),
            "{card}"
        );
        assert_eq!(
            view.attachments[2].text.as_deref(),
            Some("Quoted message from Lin: earlier words")
        );
    }

    #[test]
    fn system_messages_become_join_leave_and_history_events() {
        let mut row = version("s", 1);
        row.message_type = Some("systemEventMessage".into());
        row.from_user_id = None;
        row.raw_json =
            r##"{"eventDetail":{"@odata.type":"#microsoft.graph.membersAddedEventMessageDetail",
            "members":[{"id":"u5","displayName":"Priya"}],
            "initiator":{"user":{"id":"u1","displayName":"Ada"}}}}"##
                .into();
        let (message, directory) = view_of(vec![row.clone()]);
        let view = MessageView::new(&message, &directory);
        assert_eq!(view.kind, EventKind::Join);
        assert_eq!(view.text, "Ada added Priya");
        assert_eq!(view.system.as_ref().unwrap().members[0].id, "u5");

        row.raw_json =
            r##"{"eventDetail":{"@odata.type":"#microsoft.graph.chatRenamedEventMessageDetail",
            "chatDisplayName":"Deal room","initiator":{"user":{"id":"u1","displayName":"Ada"}}}}"##
                .into();
        let (message, directory) = view_of(vec![row]);
        let view = MessageView::new(&message, &directory);
        assert_eq!(view.kind, EventKind::History);
        assert_eq!(view.text, "Ada renamed the chat to \"Deal room\"");
    }

    #[test]
    fn unreadable_raw_json_is_a_named_problem_not_a_lost_message() {
        let mut row = version("m", 1);
        row.raw_json = "{not json".into();
        let (message, directory) = view_of(vec![row]);
        let view = MessageView::new(&message, &directory);
        assert_eq!(view.text, "body 1");
        assert_eq!(view.problems.len(), 1);
        assert!(
            view.problems[0].contains("part-x.parquet row 3"),
            "{}",
            view.problems[0]
        );
    }
}
