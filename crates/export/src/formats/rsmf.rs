//! RSMF 2.0 (Relativity Short Message Format): one `.rsmf` per conversation and day, an
//! RFC 5322 message with the `X-RSMF-*` headers whose attachment `rsmf.zip` holds
//! `rsmf_manifest.json` and a file per attachment of an event: the archived bytes of its
//! inline images and shared files (from the export's `files/`), else a small file that
//! stands for the Teams attachment (a shortcut, a card as text). A large zip is built in
//! a work file and the envelope written as it is encoded, so no file is held in memory.
//!
//! A conversation-day with more events (or bytes) than one file may hold continues in
//! `<name>.part2.rsmf` and so on, all with the same event collection id. Everything in a
//! file derives from its content: zip entries carry a fixed time, the MIME boundary and
//! Message-ID are hashes, so the same messages give the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Cursor, Seek, Write};
use std::path::{Path, PathBuf};

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use super::{ConversationDay, FormatWriter, Step, header_text, one_line, readable_utc, utc};
use crate::content::ExportedPiece;
use crate::conversation::ConversationKey;
use crate::directory::Person;
use crate::error::ExportError;
use crate::mime::{Source, Streamed, write_mixed};
use crate::output::{OutputCounts, Outputs};
use crate::selection::Format;
use crate::view::{EventKind, MessageView};

pub(crate) const RSMF_VERSION: &str = "2.0.0";
pub(crate) const MANIFEST_NAME: &str = "rsmf_manifest.json";
pub(crate) const PLATFORM: &str = "teams";
pub(crate) const APPLICATION: &str = "Microsoft Teams";

/// How much one `.rsmf` may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsmfLimits {
    /// Relativity's limit is 10,000 events per file.
    pub max_events: usize,
    /// Manifest and attachment bytes per file, before compression. The file itself stays
    /// under about three times this (base64, the text part), well below 2 GB by default;
    /// it also bounds the memory one file takes to build.
    pub max_content_bytes: u64,
}

impl Default for RsmfLimits {
    fn default() -> Self {
        RsmfLimits {
            max_events: 10_000,
            max_content_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    version: &'static str,
    participants: Vec<Participant<'a>>,
    conversations: Vec<Conversation>,
    events: &'a [Event],
    eventcollectionid: String,
}

#[derive(Serialize)]
struct Participant<'a> {
    id: &'a str,
    display: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
}

#[derive(Serialize)]
struct Conversation {
    id: String,
    display: String,
    platform: &'static str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    participants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custodian: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    custom: Vec<Custom>,
}

#[derive(Serialize, Clone)]
struct Custom {
    name: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<String>,
    conversation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    deleted: bool,
    importance: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reactions: Vec<EventReaction>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<EventAttachment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    edits: Vec<EventEdit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    custom: Vec<Custom>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<&'static str>,
    #[serde(skip)]
    at_us: Option<i64>,
    #[serde(skip)]
    reply_to: Option<String>,
    #[serde(skip)]
    sender_name: String,
}

#[derive(Serialize)]
struct EventReaction {
    value: String,
    count: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    participants: Vec<String>,
}

#[derive(Serialize)]
struct EventAttachment {
    id: String,
    display: String,
    size: u64,
}

#[derive(Serialize)]
struct EventEdit {
    participant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new: Option<String>,
}

/// The events of the file being filled.
#[derive(Default)]
struct Part {
    events: Vec<Event>,
    content_bytes: u64,
    messages: u64,
    participants: BTreeMap<String, Person>,
    custodians: BTreeSet<String>,
    attachments: BTreeMap<String, Source>,
}

/// A zip this large or smaller is built in memory (and its `.rsmf` handed to the writer
/// threads); a larger one in a work file.
const ZIP_IN_MEMORY_BYTES: u64 = 1024 * 1024;

pub(crate) struct RsmfWriter {
    limits: RsmfLimits,
    generator: String,
    part: Part,
    part_number: u32,
    /// Where large zips are built.
    work: PathBuf,
}

impl RsmfWriter {
    pub fn new(limits: RsmfLimits, generator: &str, work: &Path) -> Self {
        RsmfWriter {
            limits,
            generator: generator.to_string(),
            part: Part::default(),
            part_number: 0,
            work: work.to_path_buf(),
        }
    }

    /// `name`, or a numbered variant when the file being filled already holds another
    /// file by that name (two message ids can read the same once made safe for a zip); the
    /// name it has when the file holds the same copied file already.
    fn unique_name(&self, name: &str, source: &Source) -> String {
        // A copied file several events show is in the zip once.
        if let Source::File { .. } = source
            && let Some((existing, _)) = self.part.attachments.iter().find(|(_, s)| *s == source)
        {
            return existing.clone();
        }
        let taken = |candidate: &str| {
            self.part
                .attachments
                .get(candidate)
                .is_some_and(|existing| existing != source)
        };
        if !taken(name) {
            return name.to_string();
        }
        let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
        (2..)
            .map(|n| format!("{stem}-{n}.{extension}"))
            .find(|candidate| !taken(candidate))
            .unwrap_or_else(|| name.to_string())
    }

    fn room_for(&self, bytes: u64) -> bool {
        self.part.events.len() < self.limits.max_events
            && (self.part.events.is_empty()
                || self.part.content_bytes + bytes <= self.limits.max_content_bytes)
    }

    fn push(
        &mut self,
        day: &ConversationDay<'_>,
        event: Event,
        bytes: u64,
        outputs: &mut Outputs,
    ) -> Result<(), ExportError> {
        if !self.room_for(bytes) {
            self.flush(day, outputs)?;
        }
        self.part.content_bytes += bytes;
        self.part.events.push(event);
        Ok(())
    }

    fn flush(
        &mut self,
        day: &ConversationDay<'_>,
        outputs: &mut Outputs,
    ) -> Result<(), ExportError> {
        let mut part = std::mem::take(&mut self.part);
        if part.events.is_empty() {
            return Ok(());
        }
        self.part_number += 1;
        let number = self.part_number;
        let conversation_id = day.conversation.id();

        // Chronological, as a reader scrolls; replies point at their parent when it is in
        // this file, and say which message they answer when it is not.
        part.events
            .sort_by(|a, b| a.at_us.cmp(&b.at_us).then_with(|| a.id.cmp(&b.id)));
        let ids: HashSet<String> = part.events.iter().map(|e| e.id.clone()).collect();
        for event in &mut part.events {
            if let Some(parent) = event.reply_to.take() {
                if ids.contains(&parent) {
                    event.parent = Some(parent);
                } else {
                    event.custom.push(Custom {
                        name: "Reply to message (not in this file)",
                        value: parent,
                    });
                }
            }
        }

        // The custodian: a selected mailbox that held these messages, else any that did.
        let custodian = part.custodians.iter().next().cloned();
        for id in &part.custodians {
            part.participants
                .entry(id.clone())
                .or_insert_with(|| day.directory.person(id, None));
        }
        if let Some(custodian) = &custodian {
            for event in part.events.iter_mut().filter(|e| e.kind == "message") {
                event.direction = Some(if event.participant.as_ref() == Some(custodian) {
                    "outgoing"
                } else {
                    "incoming"
                });
            }
        }
        let mut conversation_participants: BTreeSet<String> =
            part.participants.keys().cloned().collect();
        let mut custom = vec![Custom {
            name: "Conversation id",
            value: conversation_id.clone(),
        }];
        let kind = match day.conversation {
            ConversationKey::Chat { chat_id } => {
                if let Some(chat) = day.directory.chat(chat_id) {
                    for member in &chat.members {
                        part.participants
                            .entry(member.user_id.clone())
                            .or_insert_with(|| {
                                let mut person = day
                                    .directory
                                    .person(&member.user_id, member.display_name.as_deref());
                                if person.email.is_none() {
                                    person.email = member.email.clone();
                                }
                                person
                            });
                        conversation_participants.insert(member.user_id.clone());
                    }
                    if let Some(chat_type) = &chat.chat_type {
                        custom.push(Custom {
                            name: "Chat type",
                            value: chat_type.clone(),
                        });
                    }
                }
                Some("direct")
            }
            ConversationKey::Channel {
                team_id,
                channel_id,
            } => {
                if !team_id.is_empty() {
                    custom.push(Custom {
                        name: "Team id",
                        value: team_id.clone(),
                    });
                }
                custom.push(Custom {
                    name: "Channel id",
                    value: channel_id.clone(),
                });
                Some("channel")
            }
            ConversationKey::Unknown => None,
        };
        let custodian_names: Vec<&str> = part
            .custodians
            .iter()
            .filter_map(|id| part.participants.get(id).map(|p| p.display.as_str()))
            .collect();
        if !custodian_names.is_empty() {
            custom.push(Custom {
                name: "Custodians",
                value: custodian_names.join(", "),
            });
        }
        custom.push(Custom {
            name: "Date (UTC)",
            value: day.date(),
        });

        let participants: Vec<Participant<'_>> = part
            .participants
            .values()
            .map(|p| Participant {
                id: &p.id,
                display: &p.display,
                email: p.email.as_deref(),
            })
            .collect();
        let manifest = Manifest {
            version: RSMF_VERSION,
            participants,
            conversations: vec![Conversation {
                id: conversation_id.clone(),
                display: day.display(),
                platform: PLATFORM,
                kind,
                participants: conversation_participants.into_iter().collect(),
                custodian: custodian.clone(),
                custom,
            }],
            events: &part.events,
            eventcollectionid: conversation_id.clone(),
        };
        let relative = if number == 1 {
            format!("rsmf/{}/{}.rsmf", day.date(), day.conversation.file_stem())
        } else {
            format!(
                "rsmf/{}/{}.part{number}.rsmf",
                day.date(),
                day.conversation.file_stem()
            )
        };
        let encode_error = |reason: String| ExportError::Encode {
            path: outputs.root().join(&relative),
            reason,
        };
        let manifest_json =
            serde_json::to_vec(&manifest).map_err(|e| encode_error(e.to_string()))?;
        let zip_bytes =
            manifest_json.len() as u64 + part.attachments.values().map(Source::len).sum::<u64>();
        // The zip's bytes (or the work file holding them), and their SHA-256.
        let (zip, _work_file, zip_digest) = if zip_bytes <= ZIP_IN_MEMORY_BYTES {
            let zip = write_zip(Cursor::new(Vec::new()), &manifest_json, &part.attachments)
                .map_err(&encode_error)?
                .into_inner();
            let digest = hex::encode(Sha256::digest(&zip));
            (Source::Bytes(zip), None, digest)
        } else {
            let mut file = tempfile::Builder::new()
                .prefix("rsmf-zip-")
                .tempfile_in(&self.work)
                .map_err(|e| encode_error(format!("creating a work file: {e}")))?;
            write_zip(file.as_file_mut(), &manifest_json, &part.attachments)
                .map_err(&encode_error)?;
            let (digest, bytes) =
                crate::verify::file_sha256(file.path()).map_err(|e| encode_error(e.to_string()))?;
            let source = Source::File {
                path: file.path().to_path_buf(),
                bytes,
            };
            (source, Some(file), digest)
        };

        let people = |ids: &mut dyn Iterator<Item = &Person>| -> Vec<Address<'static>> {
            ids.map(|p| {
                Address::new_address(
                    Some(one_line(&p.display).into_owned()),
                    one_line(p.email.as_deref().unwrap_or_default()).into_owned(),
                )
            })
            .collect()
        };
        let from = custodian
            .as_ref()
            .and_then(|c| part.participants.get(c))
            .or_else(|| part.participants.values().next());
        let from = match from {
            Some(p) => people(&mut std::iter::once(p)).remove(0),
            None => Address::new_address(Some(APPLICATION.to_string()), String::new()),
        };
        let to = Address::new_list(people(&mut part.participants.values()));
        let stamps: Vec<i64> = part.events.iter().filter_map(|e| e.at_us).collect();
        let (begin, end) = (stamps.iter().min().copied(), stamps.iter().max().copied());
        let attachment_count = part.attachments.len();
        let participant_names = part
            .participants
            .values()
            .map(|p| one_line(&p.display))
            .collect::<Vec<_>>()
            .join(", ");
        let text = transcript(day, &part, number);
        let digest = Sha256::new()
            .chain_update(zip_digest.as_bytes())
            .chain_update(text.as_bytes())
            .finalize();
        let digest = hex::encode(digest);

        let mut subject = format!(
            "{} {} {}",
            APPLICATION,
            one_line(&day.display()),
            day.date()
        );
        if number > 1 {
            subject.push_str(&format!(" (part {number})"));
        }
        let date_secs = end.map_or_else(
            || crate::selection::day_start(day.day).timestamp(),
            |us| us.div_euclid(1_000_000),
        );
        let mut builder = MessageBuilder::new()
            .from(from)
            .to(to)
            .subject(subject)
            .date(Date::new(date_secs))
            .message_id(MessageId::new(format!(
                "{}@rsmf.teams-archiver",
                &digest[..32]
            )))
            .header("X-RSMF-Version", Raw::new(RSMF_VERSION))
            .header("X-RSMF-Generator", header_text(self.generator.clone()))
            .header("X-RSMF-Application", Raw::new(APPLICATION));
        if let (Some(begin), Some(end)) = (begin, end) {
            builder = builder
                .header("X-RSMF-BeginDate", Raw::new(utc(begin)))
                .header("X-RSMF-EndDate", Raw::new(utc(end)));
        }
        builder = builder
            .header("X-RSMF-EventCount", Raw::new(part.events.len().to_string()))
            .header(
                "X-RSMF-AttachmentCount",
                Raw::new(attachment_count.to_string()),
            );
        if !custodian_names.is_empty() {
            builder = builder.header("X-RSMF-Custodian", header_text(custodian_names.join(", ")));
        }
        let boundary = format!("rsmf_{}", &digest[32..56]);
        builder = builder
            .header("X-RSMF-Participants", Text::new(participant_names))
            .header(
                "X-RSMF-EventCollectionID",
                Text::new(one_line(&conversation_id).into_owned()),
            )
            .body(MimePart::new(
                ContentType::new("multipart/mixed").attribute("boundary", boundary.clone()),
                vec![MimePart::new("text/plain", text)],
            ));
        let in_memory = matches!(zip, Source::Bytes(_));
        let attachments = vec![Streamed {
            part: MimePart::new("application/octet-stream", Vec::<u8>::new())
                .attachment("rsmf.zip"),
            source: zip,
        }];
        let counts = OutputCounts {
            conversation: Some(conversation_id),
            date: Some(day.date()),
            part: Some(number),
            messages: part.messages,
            events: Some(part.events.len() as u64),
            attachments: Some(attachment_count as u64),
            participants: Some(part.participants.len() as u64),
            ..OutputCounts::default()
        };
        if in_memory {
            let mut bytes = Vec::new();
            write_mixed(&mut bytes, builder, &boundary, attachments)
                .map_err(|e| encode_error(e.to_string()))?;
            outputs.write_all(&relative, bytes, Format::Rsmf, counts)
        } else {
            let mut out = outputs.create(&relative)?;
            let path = out.path().to_path_buf();
            write_mixed(&mut out, builder, &boundary, attachments)
                .map_err(ExportError::io("write", path))?;
            outputs.close(out, Format::Rsmf, counts)
        }
    }
}

/// `rsmf.zip` into `out`: the manifest first, then the attachment files by name (copied
/// files streamed), each stored with the zip format's earliest time so the bytes depend
/// on content only.
fn write_zip<W: Write + Seek>(
    out: W,
    manifest: &[u8],
    attachments: &BTreeMap<String, Source>,
) -> Result<W, String> {
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let mut zip = zip::ZipWriter::new(out);
    zip.start_file(MANIFEST_NAME, options)
        .and_then(|()| zip.write_all(manifest).map_err(Into::into))
        .map_err(|e| e.to_string())?;
    for (name, source) in attachments {
        let options = options.large_file(source.len() >= u64::from(u32::MAX));
        zip.start_file(name.as_str(), options)
            .map_err(|e| e.to_string())?;
        source
            .copy_to(&mut zip)
            .map_err(|e| format!("{name}: {e}"))?;
    }
    zip.finish().map_err(|e| e.to_string())
}

/// The message's text part: a plain transcript, so the file is searchable as an e-mail.
fn transcript(day: &ConversationDay<'_>, part: &Part, number: u32) -> String {
    let mut text = format!(
        "{} {}: {}\r\n",
        APPLICATION,
        kind_word(day.conversation),
        one_line(&day.display())
    );
    text.push_str(&format!("Date: {} (UTC)", day.date()));
    if number > 1 {
        text.push_str(&format!(", part {number}"));
    }
    text.push_str("\r\nParticipants: ");
    text.push_str(
        &part
            .participants
            .values()
            .map(|p| one_line(&p.display))
            .collect::<Vec<_>>()
            .join(", "),
    );
    text.push_str("\r\n\r\n");
    for event in &part.events {
        let when = event
            .at_us
            .map_or_else(|| "(time unknown)".to_string(), readable_utc);
        let mut body = body_lines(&event.body);
        if event.deleted {
            body.insert_str(0, "[deleted] ");
        }
        if !event.edits.is_empty() {
            body.insert_str(0, "[edited] ");
        }
        let who = if event.sender_name.is_empty() {
            "-".into()
        } else {
            one_line(&event.sender_name)
        };
        text.push_str(&format!("[{when}] {who}: {body}\r\n"));
    }
    text
}

/// A message body in the transcript: each of its lines (whatever line break ended it)
/// indented under the line that names the sender and time, other control characters
/// shown, so the body cannot start a line that reads as another message.
fn body_lines(body: &str) -> String {
    body.replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .map(one_line)
        .collect::<Vec<_>>()
        .join("\r\n    ")
}

fn kind_word(conversation: &ConversationKey) -> &'static str {
    match conversation {
        ConversationKey::Chat { .. } => "chat",
        ConversationKey::Channel { .. } => "channel",
        ConversationKey::Unknown => "messages",
    }
}

impl FormatWriter for RsmfWriter {
    fn begin(&mut self, _: &ConversationDay<'_>, _: &mut Outputs) -> Step {
        self.part = Part::default();
        self.part_number = 0;
        Ok(())
    }

    fn message(&mut self, day: &ConversationDay, view: &MessageView, out: &mut Outputs) -> Step {
        let message = view.message;
        let conversation = day.conversation.id();
        let at_us = message.created_us();
        let timestamp = at_us.map(utc);
        let importance = if view.importance_high {
            "high"
        } else {
            "normal"
        };

        let mut custom = Vec::new();
        if let Some(id) = message.id() {
            custom.push(Custom {
                name: "Message id",
                value: id.to_string(),
            });
        } else {
            custom.push(Custom {
                name: "Archived item without an id, content SHA-256",
                value: message.latest().content_sha256.clone(),
            });
        }
        if let Some(subject) = message
            .latest()
            .subject
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            custom.push(Custom {
                name: "Subject",
                value: subject.to_string(),
            });
        }
        if let Some(deleted) = view.deleted_at_us {
            custom.push(Custom {
                name: "Deleted at",
                value: utc(deleted),
            });
        }
        if let Some(kind) = message.latest().message_type.as_deref()
            && kind != "message"
        {
            custom.push(Custom {
                name: "Message type",
                value: kind.to_string(),
            });
        }
        if let Some(system) = &view.system {
            custom.push(Custom {
                name: "Event detail",
                value: system.detail_type.clone(),
            });
        }
        custom.push(Custom {
            name: "Archived versions",
            value: message.versions().len().to_string(),
        });
        custom.push(Custom {
            name: "Version SHA-256",
            value: message.latest().content_sha256.clone(),
        });

        let reactions: Vec<EventReaction> = view
            .reactions
            .iter()
            .map(|r| EventReaction {
                value: r.value.clone(),
                count: r.count(),
                participants: r.people.iter().map(|p| p.id.clone()).collect(),
            })
            .collect();
        // Each attachment as a file: the archived bytes when the export holds them, else
        // the small file that stands for it; what is not archived is said in `custom`.
        let prefix = crate::view::safe_name(message.key());
        let stored = |piece: &ExportedPiece| {
            let path = out.root().join(piece.file.as_deref().unwrap_or_default());
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            Source::File { path, bytes }
        };
        let mut files: Vec<(String, String, Source)> = Vec::new();
        for (n, attachment) in view.attachments.iter().enumerate() {
            match attachment.url.as_deref().and_then(|url| view.file_of(url)) {
                Some(piece) if piece.file.is_some() => files.push((
                    format!("{prefix}-{}-{}", n + 1, piece.file_name()),
                    attachment.display.clone(),
                    stored(piece),
                )),
                other => {
                    if let Some(piece) = other {
                        custom.push(Custom {
                            name: "File not archived",
                            value: format!("{}: {}", attachment.display, piece.status()),
                        });
                    }
                    files.push((
                        attachment.file_name.clone(),
                        attachment.display.clone(),
                        Source::Bytes(attachment.file_bytes.clone()),
                    ));
                }
            }
        }
        for (n, image) in view.images().into_iter().enumerate() {
            if image.file.is_some() {
                // A display ending in .png, .jpg or .gif is shown inline by Relativity.
                files.push((
                    format!("{prefix}-image{}-{}", n + 1, image.file_name()),
                    image.file_name(),
                    stored(image),
                ));
            } else {
                custom.push(Custom {
                    name: "Image not archived",
                    value: image.status().to_string(),
                });
            }
        }
        for (n, piece) in view.other_files().into_iter().enumerate() {
            if piece.file.is_some() {
                files.push((
                    format!("{prefix}-file{}-{}", n + 1, piece.file_name()),
                    piece.display_name(),
                    stored(piece),
                ));
            } else {
                custom.push(Custom {
                    name: "File not archived",
                    value: format!("{}: {}", piece.display_name(), piece.status()),
                });
            }
        }
        let names: Vec<String> = files
            .iter()
            .map(|(name, _, source)| self.unique_name(name, source))
            .collect();
        let attachments: Vec<EventAttachment> = files
            .iter()
            .zip(&names)
            .map(|((_, display, source), name)| EventAttachment {
                id: name.clone(),
                display: display.clone(),
                size: source.len(),
            })
            .collect();
        let sender = view.sender.as_ref();
        let edits: Vec<EventEdit> = view
            .edits
            .iter()
            .filter_map(|e| {
                let by = e.by.as_ref().or(sender)?;
                Some(EventEdit {
                    participant: by.id.clone(),
                    timestamp: e.at_us.map(utc),
                    previous: e.previous.clone(),
                    new: e.new.clone(),
                })
            })
            .collect();

        // A join or leave names each member; other events have one participant.
        let mut subjects: Vec<Option<&Person>> = match (&view.system, view.kind) {
            (Some(system), EventKind::Join | EventKind::Leave) if !system.members.is_empty() => {
                system.members.iter().map(Some).collect()
            }
            (Some(system), _) => vec![system.initiator.as_ref().or(sender)],
            (None, _) => vec![sender],
        };
        if subjects.is_empty() {
            subjects.push(None);
        }
        let attachment_bytes: u64 = files.iter().map(|(_, _, source)| source.len()).sum();
        let edit_bytes: u64 = view
            .edits
            .iter()
            .map(|e| {
                e.previous.as_ref().map_or(0, String::len) + e.new.as_ref().map_or(0, String::len)
            })
            .sum::<usize>() as u64;
        let first_bytes = 512 + view.text.len() as u64 + attachment_bytes + edit_bytes;

        let mut rest = Some((reactions, attachments, edits, custom));
        for (n, subject) in subjects.into_iter().enumerate() {
            let id = if n == 0 {
                message.key().to_string()
            } else {
                format!("{}#{}", message.key(), n + 1)
            };
            let (reactions, attachments, edits, custom) = rest.take().unwrap_or_default();
            let event = Event {
                id,
                kind: view.kind.rsmf(),
                parent: None,
                body: view.text.clone(),
                participant: subject.map(|p| p.id.clone()),
                conversation: conversation.clone(),
                timestamp: timestamp.clone(),
                deleted: view.deleted_at_us.is_some(),
                importance,
                reactions,
                attachments,
                edits,
                custom,
                direction: None,
                at_us,
                reply_to: message.reply_to().map(str::to_string),
                sender_name: subject.map(|p| p.display.clone()).unwrap_or_default(),
            };
            let bytes = if n == 0 {
                first_bytes
            } else {
                512 + view.text.len() as u64
            };
            self.push(day, event, bytes, out)?;
            if n == 0 {
                self.part.messages += 1;
                for ((_, _, source), name) in files.iter().zip(&names) {
                    self.part.attachments.insert(name.clone(), source.clone());
                }
            }
            for person in view.people() {
                self.part
                    .participants
                    .entry(person.id.clone())
                    .or_insert_with(|| person.clone());
            }
        }
        let custodians = message.custodians();
        for custodian in custodians {
            if day.selected_custodians.is_empty()
                || day.selected_custodians.iter().any(|c| c == custodian)
            {
                self.part.custodians.insert(custodian.to_string());
            }
        }
        Ok(())
    }

    fn end(&mut self, day: &ConversationDay<'_>, outputs: &mut Outputs) -> Step {
        self.flush(day, outputs)
    }
}
