//! Mail: an EML per exported mail message version, and an mbox per mailbox.
//!
//! A version whose MIME the archive stored (`mail_mime`) is exported as that MIME, byte
//! for byte. Otherwise its EML is built from the archived item (addresses, subject, dates,
//! body) with its file and item attachments from the archive's blobs (streamed, base64),
//! and a short note naming each attachment whose bytes are not in the archive. Each
//! mailbox's mbox holds the same messages in the order they were received (mboxrd: a line
//! that reads `From ` after any `>` gets one more `>`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;
use serde_json::Value;
use sha2::{Digest, Sha256};
use transform::{ContentKind, ContentStatus};

use super::{header_text, one_line};
use crate::content::{Blobs, ExportedPiece};
use crate::directory::Directory;
use crate::error::ExportError;
use crate::mail_rows::{MailRow, grouped_mail};
use crate::mime::{Source, Streamed, write_mixed};
use crate::output::{OutputCounts, OutputEntry, Outputs};
use crate::rows::TableRow;
use crate::selection::Format;
use crate::sort::ExternalSorter;
use crate::view::str_at as text;

/// The folder of the mail export.
pub(crate) const DIR: &str = "mail";

/// What one mailbox's mbox holds so far (it is appended to day after day).
struct Mbox {
    relative: String,
    hasher: Sha256,
    bytes: u64,
    messages: u64,
}

pub(crate) struct MailWriter {
    all_versions: bool,
    needles: Vec<String>,
    generator: String,
    mboxes: BTreeMap<String, Mbox>,
    /// Messages exported, and EML files written (one per version exported).
    pub messages: u64,
    pub versions: u64,
}

impl MailWriter {
    pub fn new(all_versions: bool, needles: Vec<String>, generator: &str) -> MailWriter {
        MailWriter {
            all_versions,
            needles,
            generator: generator.to_string(),
            mboxes: BTreeMap::new(),
            messages: 0,
            versions: 0,
        }
    }

    /// Exports a day's mail versions (sorted by mailbox and time received).
    pub fn write_day(
        &mut self,
        day: NaiveDate,
        rows: ExternalSorter<MailRow>,
        directory: &Directory,
        blobs: &mut Blobs,
        outputs: &mut Outputs,
        problems: &mut Vec<String>,
    ) -> Result<(), ExportError> {
        for versions in grouped_mail(rows.finish()?) {
            let versions = versions?;
            if !self.needles.is_empty() && !versions.iter().any(|v| v.mentions_any(&self.needles)) {
                continue;
            }
            self.messages += 1;
            let skip = if self.all_versions {
                0
            } else {
                versions.len() - 1
            };
            for version in &versions[skip..] {
                self.version(day, version, directory, blobs, outputs, problems)?;
                self.versions += 1;
            }
        }
        Ok(())
    }

    fn version(
        &mut self,
        day: NaiveDate,
        version: &MailRow,
        directory: &Directory,
        blobs: &mut Blobs,
        outputs: &mut Outputs,
        problems: &mut Vec<String>,
    ) -> Result<(), ExportError> {
        let mailbox = mailbox_stem(&version.custodian, directory);
        let stamp = version
            .received_us
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .map_or_else(
                || "undated".to_string(),
                |t| t.format("%Y%m%dT%H%M%SZ").to_string(),
            );
        let relative = format!(
            "{DIR}/{mailbox}/{}/{stamp}-{}.eml",
            day.format("%Y-%m-%d"),
            &short_id(&version.content_sha256)
        );
        let counts = OutputCounts {
            conversation: Some(version.custodian.clone()),
            date: Some(day.format("%Y-%m-%d").to_string()),
            messages: 1,
            ..OutputCounts::default()
        };
        let item: Value = match serde_json::from_str(&version.raw_json) {
            Ok(item) => item,
            Err(e) => {
                problems.push(format!(
                    "{}: raw_json could not be read ({e}); its EML has the archived subject only",
                    version.place()
                ));
                Value::Null
            }
        };

        let mime = version.contents.iter().find(|p| {
            p.kind == ContentKind::MailMime
                && p.status == ContentStatus::Ok
                && p.blob_sha256.is_some()
        });
        let as_archived = match mime.and_then(|p| p.blob_sha256.as_deref()) {
            Some(sha) => blobs
                .copy(sha, &relative, Format::Mail.name(), counts.clone(), outputs)?
                .is_ok(),
            None => false,
        };
        if !as_archived {
            let mut attachments = Vec::new();
            for piece in &version.contents {
                if matches!(
                    piece.kind,
                    ContentKind::MailFileAttachment
                        | ContentKind::MailItemAttachment
                        | ContentKind::MailReferenceAttachment
                ) {
                    attachments.push(blobs.export(piece.clone(), outputs)?);
                }
            }
            let mut counts = counts;
            counts.attachments =
                Some(attachments.iter().filter(|a| a.file.is_some()).count() as u64);
            self.build(version, &item, &attachments, &relative, counts, outputs)?;
        }
        let sender = envelope_sender(&item);
        self.append_to_mbox(
            &mailbox,
            outputs.root(),
            &relative,
            &sender,
            version.received_us,
        )
    }

    /// Writes the EML of a version from its archived item and attachments.
    fn build(
        &self,
        version: &MailRow,
        item: &Value,
        attachments: &[ExportedPiece],
        relative: &str,
        counts: OutputCounts,
        outputs: &mut Outputs,
    ) -> Result<(), ExportError> {
        let mut builder = MessageBuilder::new();
        if let Some(from) = item.get("from").and_then(address) {
            builder = builder.from(from);
        }
        if let Some(sender) = item.get("sender").and_then(address) {
            builder = builder.sender(sender);
        }
        for (key, header) in [
            ("toRecipients", "To"),
            ("ccRecipients", "Cc"),
            ("bccRecipients", "Bcc"),
            ("replyTo", "Reply-To"),
        ] {
            let list: Vec<Address<'static>> = item
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(address)
                .collect();
            if !list.is_empty() {
                builder = builder.header(header, Address::new_list(list));
            }
        }
        let subject = text(item, &["subject"]).or(version.subject.as_deref());
        if let Some(subject) = subject {
            builder = builder.subject(Text::new(one_line(subject).into_owned()));
        }
        let sent = ["sentDateTime", "receivedDateTime"]
            .iter()
            .find_map(|key| text(item, &[key]))
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp())
            .or_else(|| version.received_us.map(|us| us.div_euclid(1_000_000)))
            .unwrap_or_default();
        builder = builder.date(Date::new(sent));
        let message_id = text(item, &["internetMessageId"])
            .map(|id| id.trim().trim_start_matches('<').trim_end_matches('>'))
            .filter(|id| {
                !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_graphic() && c != '<' && c != '>')
            })
            .map_or_else(
                || format!("{}@mail.teams-archiver", short_id(&version.content_sha256)),
                str::to_string,
            );
        builder = builder.message_id(MessageId::new(message_id));
        if let Some(importance) = text(item, &["importance"]) {
            builder = builder.header("Importance", header_text(importance.to_string()));
        }
        builder = builder
            .header("X-Teams-Archiver", header_text(self.generator.clone()))
            .header(
                "X-Teams-Archiver-Custodian",
                header_text(version.custodian.clone()),
            )
            .header(
                "X-Teams-Archiver-Content-SHA256",
                header_text(version.content_sha256.clone()),
            );
        if let Some(id) = &version.id {
            builder = builder.header("X-Teams-Archiver-Graph-Id", header_text(id.clone()));
        }

        let body = text(item, &["body", "content"])
            .unwrap_or_default()
            .to_string();
        let html =
            text(item, &["body", "contentType"]).is_some_and(|t| t.eq_ignore_ascii_case("html"));
        let mut parts = vec![MimePart::new(
            if html { "text/html" } else { "text/plain" },
            body,
        )];
        let missing: Vec<String> = attachments
            .iter()
            .filter(|a| a.file.is_none())
            .map(|a| {
                let mut line = format!("{}: {}", a.display_name(), a.status());
                if let Some(detail) = a.piece.status_detail.as_deref() {
                    line.push_str(&format!(" ({})", one_line(detail)));
                }
                line
            })
            .collect();
        if !missing.is_empty() {
            let note = format!(
                "Attachments of this message whose bytes are not in the archive:\r\n{}\r\n",
                missing.join("\r\n")
            );
            parts.push(
                MimePart::new("text/plain", note).attachment("teams-archiver-not-included.txt"),
            );
        }
        let boundary = format!("mail_{}", short_id(&version.content_sha256));
        builder = builder.body(MimePart::new(
            ContentType::new("multipart/mixed").attribute("boundary", boundary.clone()),
            parts,
        ));
        let streamed: Vec<Streamed<'_>> = attachments
            .iter()
            .filter_map(|a| {
                let file = a.file.as_ref()?;
                let item = a.piece.kind == ContentKind::MailItemAttachment;
                let mut name = a.file_name();
                // An item attachment is a message: its MIME, opened as an .eml.
                if item && !name.ends_with(".eml") {
                    name.push_str(".eml");
                }
                let content_type = if item {
                    "application/octet-stream".to_string()
                } else {
                    mime_type(a.piece.content_type.as_deref())
                };
                let path = outputs.root().join(file);
                let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                Some(Streamed {
                    part: MimePart::new(content_type, Vec::<u8>::new()).attachment(name),
                    source: Source::File { path, bytes },
                })
            })
            .collect();
        let mut out = outputs.create(relative)?;
        let path = out.path().to_path_buf();
        write_mixed(&mut out, builder, &boundary, streamed)
            .map_err(ExportError::io("write", path))?;
        outputs.close(out, Format::Mail, counts)
    }

    /// Appends the EML at `relative` to its mailbox's mbox.
    fn append_to_mbox(
        &mut self,
        mailbox: &str,
        root: &Path,
        relative: &str,
        sender: &str,
        received_us: Option<i64>,
    ) -> Result<(), ExportError> {
        let mbox = self
            .mboxes
            .entry(mailbox.to_string())
            .or_insert_with(|| Mbox {
                relative: format!("{DIR}/{mailbox}.mbox"),
                hasher: Sha256::new(),
                bytes: 0,
                messages: 0,
            });
        let path = root.join(&mbox.relative);
        let file = if mbox.messages == 0 {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(ExportError::io("create folder", parent))?;
            }
            OpenOptions::new().write(true).create_new(true).open(&path)
        } else {
            OpenOptions::new().append(true).open(&path)
        }
        .map_err(ExportError::io("open", &path))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let eml = root.join(relative);
        let mut input = File::open(&eml).map_err(ExportError::io("read", &eml))?;
        let when = received_us
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .unwrap_or_default()
            .format("%a %b %e %H:%M:%S %Y");
        let mut chunk = format!("From {sender} {when}\n").into_bytes();
        let mut quote = FromQuoter::default();
        let mut buffer = vec![0u8; 1 << 16];
        let mut last = b'\n';
        loop {
            let n = input
                .read(&mut buffer)
                .map_err(ExportError::io("read", &eml))?;
            if n == 0 {
                break;
            }
            last = buffer[n - 1];
            quote.push(&buffer[..n], &mut chunk);
            write_hashed(&mut out, mbox, &chunk, &path)?;
            chunk.clear();
        }
        quote.finish(&mut chunk);
        if last != b'\n' {
            chunk.push(b'\n');
        }
        chunk.push(b'\n');
        write_hashed(&mut out, mbox, &chunk, &path)?;
        out.flush().map_err(ExportError::io("write", &path))?;
        mbox.messages += 1;
        Ok(())
    }

    /// Records each mbox in the manifest.
    pub fn finish(&mut self, outputs: &mut Outputs) -> Result<(), ExportError> {
        for (_, mbox) in std::mem::take(&mut self.mboxes) {
            outputs.record(&OutputEntry {
                path: mbox.relative,
                format: Format::Mail.name().to_string(),
                bytes: mbox.bytes,
                sha256: hex::encode(mbox.hasher.finalize()),
                counts: OutputCounts {
                    messages: mbox.messages,
                    ..OutputCounts::default()
                },
            })?;
        }
        Ok(())
    }
}

fn write_hashed(
    out: &mut impl Write,
    mbox: &mut Mbox,
    bytes: &[u8],
    path: &Path,
) -> Result<(), ExportError> {
    out.write_all(bytes)
        .map_err(ExportError::io("write", path))?;
    mbox.hasher.update(bytes);
    mbox.bytes += bytes.len() as u64;
    Ok(())
}

/// mboxrd quoting of a stream: a line that is `>`s and then `From ` gets one more `>`.
#[derive(Default)]
struct FromQuoter {
    /// Inside a line past anything that could be `>*From `.
    middle: bool,
    /// `>`s read at the start of this line, and how much of `From ` after them.
    quotes: usize,
    matched: usize,
}

const FROM: &[u8] = b"From ";

impl FromQuoter {
    fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            if self.middle {
                out.push(byte);
                if byte == b'\n' {
                    self.middle = false;
                }
                continue;
            }
            if self.matched == 0 && byte == b'>' {
                self.quotes += 1;
                continue;
            }
            if byte == FROM[self.matched] {
                self.matched += 1;
                if self.matched == FROM.len() {
                    out.push(b'>');
                    self.flush(out);
                    self.middle = true;
                }
                continue;
            }
            self.flush(out);
            out.push(byte);
            self.middle = byte != b'\n';
        }
    }

    /// Writes what was held back.
    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend(std::iter::repeat_n(b'>', self.quotes));
        out.extend_from_slice(&FROM[..self.matched]);
        self.quotes = 0;
        self.matched = 0;
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
        self.middle = false;
    }
}

/// The first 16 hex digits of a content hash, or of the SHA-256 of anything else: safe
/// in a file name whatever the archive holds.
fn short_id(sha256: &str) -> String {
    if sha256.len() >= 16 && sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        sha256[..16].to_ascii_lowercase()
    } else {
        hex::encode(Sha256::digest(sha256.as_bytes()))[..16].to_string()
    }
}

/// A folder name for a mailbox: readable (its address), safe, unique (a hash of the id).
fn mailbox_stem(custodian: &str, directory: &Directory) -> String {
    let readable = directory
        .user(custodian)
        .and_then(|u| u.mail.clone().or_else(|| u.user_principal_name.clone()))
        .unwrap_or_else(|| custodian.to_string());
    crate::conversation::file_stem("mailbox", &readable, custodian)
}

/// A Graph `recipient` (`{emailAddress: {name, address}}`) as an address.
fn address(recipient: &Value) -> Option<Address<'static>> {
    let name = text(recipient, &["emailAddress", "name"]).map(|n| one_line(n).into_owned());
    let email = text(recipient, &["emailAddress", "address"]).map(|a| one_line(a).into_owned());
    if name.is_none() && email.is_none() {
        return None;
    }
    Some(Address::new_address(name, email.unwrap_or_default()))
}

/// The address an mbox `From ` line names: the sender's, when it is one word.
fn envelope_sender(item: &Value) -> String {
    ["from", "sender"]
        .iter()
        .find_map(|key| text(item, &[key, "emailAddress", "address"]))
        .filter(|a| a.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("MAILER-DAEMON")
        .to_string()
}

/// A MIME type as given when it is one (`type/subtype`), else `application/octet-stream`.
fn mime_type(content_type: Option<&str>) -> String {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| c.split_once('/').is_some_and(|(t, s)| token(t) && token(s)))
        .unwrap_or_else(|| "application/octet-stream".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(chunks: &[&[u8]]) -> Vec<u8> {
        let mut quote = FromQuoter::default();
        let mut out = Vec::new();
        for chunk in chunks {
            quote.push(chunk, &mut out);
        }
        quote.finish(&mut out);
        out
    }

    #[test]
    fn lines_that_read_from_are_quoted_however_the_bytes_arrive() {
        let input = b"From a\r\n>From b\r\nnot From c\r\nFro\r\n>>From d\r\n>x\r\nFrom";
        let expected =
            b">From a\r\n>>From b\r\nnot From c\r\nFro\r\n>>>From d\r\n>x\r\nFrom".to_vec();
        assert_eq!(quoted(&[input]), expected);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(quoted(&bytes), expected);
        assert_eq!(quoted(&[b"From "]), b">From ".to_vec());
    }

    #[test]
    fn names_and_types_from_the_archive_are_made_safe() {
        assert_eq!(short_id(&"ab".repeat(32)), "abababababababab");
        assert_eq!(short_id("../../x").len(), 16);
        assert_eq!(mime_type(Some("image/PNG; name=x")), "image/png");
        assert_eq!(
            mime_type(Some("text/html\r\nX: y")),
            "application/octet-stream"
        );
        assert_eq!(mime_type(None), "application/octet-stream");
        let stem = mailbox_stem("u1/../x", &Directory::default());
        assert!(stem.starts_with("mailbox-u1_.._x-"), "{stem}");
        let sender =
            envelope_sender(&serde_json::json!({"from": {"emailAddress": {"address": "a b@x"}}}));
        assert_eq!(sender, "MAILER-DAEMON");
    }
}
