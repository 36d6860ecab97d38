//! New content: what generated messages and mail get at the configured rates, and what an
//! admin call asks for; each added to its message's body (`<img>`, `<attachment>`) or to
//! its mail, and the mail's MIME around it.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ids::{
    FILE_NAMES, MAIL_FILE_NAMES, attachment_id, drive_id, drive_item_id, encode_sharing_url,
    file_source, folder_item_id, hosted_content_id, media_type, segment, url_key,
};
use super::{Attachment, DriveFile, DriveOf, Holder, Piece, Pool, Rates};
use crate::blob::{self, Source};
use crate::docs::{ChatMessageDoc, ItemBody, MailDoc};
use crate::mime;
use crate::store::{Conv, SimError, Store};
use crate::text::{self, escape_html, mix};
use crate::truth::ContentKind;

// ---- new content ---------------------------------------------------------------------------

/// An image to host in a new message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewImage {
    /// Bytes; a few KiB if absent. Images are real PNGs, at least 268 bytes.
    #[serde(default)]
    pub size: Option<u64>,
}

/// A file to share in a new message: a new one, or one already shared (`driveItemId`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Share this existing file again (a drive item id) instead of a new one.
    #[serde(default, alias = "sharedWith")]
    pub drive_item_id: Option<String>,
}

/// Content a new chat or channel message carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewContent {
    #[serde(default)]
    pub images: Vec<NewImage>,
    #[serde(default)]
    pub files: Vec<NewFile>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttachmentKind {
    File,
    Item,
    Reference,
}

/// An attachment of a new mail item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAttachment {
    pub kind: AttachmentKind,
    pub name: String,
    /// Bytes of a file, of an attached item's MIME, or of the file a reference links to;
    /// a few KiB if absent.
    #[serde(default)]
    pub size: Option<u64>,
    /// A file's media type; from its name's extension if absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Shown inside the body (`<img src="cid:...">`); files only.
    #[serde(default)]
    pub is_inline: bool,
}

/// Images and files a message gets before it is stored; attached once it has an index.
#[derive(Default)]
pub(crate) struct Pending {
    images: Vec<Piece>,
    files: Vec<usize>,
}

/// Where a new message is posted, for the URLs of what it holds.
pub(crate) struct Posting<'a> {
    pub conv: Conv,
    /// `chats/{id}/messages/{id}`, `teams/{id}/channels/{id}/messages/{id}`, or
    /// `.../messages/{root}/replies/{id}`, as hosted content URLs name the message.
    pub message_path: String,
    pub sender: usize,
    pub at: DateTime<Utc>,
    pub doc: &'a mut ChatMessageDoc,
}

/// Turn a plain-text body into HTML so content can follow it.
fn html_body(doc: &mut ChatMessageDoc) {
    if doc.body.content_type != "html" {
        let text = std::mem::take(&mut doc.body.content);
        doc.body = ItemBody::html(if text.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", escape_html(&text))
        });
    }
}

/// Host an image in the message: an `<img>` in its body whose `src` is Graph's own URL.
fn add_image(rng: &mut StdRng, posting: &mut Posting<'_>, size: u64, beta: bool) -> Piece {
    let id = hosted_content_id(rng);
    let version = if beta { "beta" } else { "v1.0" };
    let path = format!(
        "/{version}/{}/hostedContents/{id}/$value",
        posting.message_path
    );
    html_body(posting.doc);
    posting.doc.body.content.push_str(&format!(
        "<p><img alt=\"image\" src=\"https://graph.microsoft.com{path}\" width=\"250\" height=\"141\" style=\"vertical-align:bottom; width:250px; height:141px\"></p>"
    ));
    let seed: u64 = rng.random();
    Piece {
        kind: ContentKind::HostedContent,
        id,
        url: path,
        name: None,
        content_type: Some("image/png".into()),
        source: Some(blob::png(seed, size)),
        size: 0,
        created: posting.at,
        modified: posting.at,
        deleted: false,
        forbidden: false,
        digests: Arc::default(),
        holder: Holder::Message(usize::MAX),
    }
}

/// A message attachment as Graph lists it.
pub(crate) fn reference_attachment(id: &str, url: &str, name: &str) -> Value {
    json!({
        "id": id,
        "contentType": "reference",
        "contentUrl": url,
        "content": null,
        "name": name,
        "thumbnailUrl": null,
        "teamsAppId": null,
    })
}

/// Link a shared file from the message: an `<attachment>` in its body and a `reference`
/// attachment whose `contentUrl` is the file's URL.
fn link_file(store: &Store, file: usize, doc: &mut ChatMessageDoc) {
    let piece = &store.contents.pieces[file];
    let Some(drive) = store.contents.drive_file(file) else {
        return;
    };
    html_body(doc);
    doc.body
        .content
        .push_str(&format!("<attachment id=\"{}\"></attachment>", drive.guid));
    doc.attachments.push(reference_attachment(
        &drive.guid,
        &drive.web_url,
        piece.name.as_deref().unwrap_or_default(),
    ));
}

impl Store {
    /// The drive of a team's site or of a user's OneDrive, made on first use.
    fn drive_of(&mut self, of: DriveOf) -> String {
        if let Some(id) = self.contents.drives.get(&of) {
            return id.clone();
        }
        let id = drive_id(&mut self.contents.rng);
        self.contents.drives.insert(of, id.clone());
        id
    }

    /// A new file in a team's library (in the channel's folder) or the sharer's OneDrive
    /// (shared in a chat, or linked from a mail when `conv` is `None`).
    pub(crate) fn new_drive_file(
        &mut self,
        conv: Option<Conv>,
        owner: usize,
        name: &str,
        size: u64,
        at: DateTime<Utc>,
    ) -> usize {
        let (of, base, folder, drive_type) = match conv {
            Some(Conv::Channel(c)) => {
                let team = self.channels[c].team;
                let site: String = self.teams[team]
                    .display_name
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                (
                    DriveOf::Team(team),
                    format!("https://contoso.sharepoint.com/sites/{site}/Shared%20Documents"),
                    self.channels[c].display_name.clone(),
                    "documentLibrary",
                )
            }
            _ => {
                let personal = self.users[owner].upn.replace(['@', '.'], "_");
                (
                    DriveOf::User(owner),
                    format!("https://contoso-my.sharepoint.com/personal/{personal}/Documents"),
                    // Teams puts chat files here; Outlook its cloud attachments.
                    if conv.is_some() {
                        "Microsoft Teams Chat Files"
                    } else {
                        "Attachments"
                    }
                    .to_string(),
                    "business",
                )
            }
        };
        let drive_id = self.drive_of(of);
        // Names are unique within a folder.
        let mut file_name = name.to_string();
        let mut n = 1;
        while self.contents.by_url.contains_key(&url_key(&format!(
            "{base}/{}/{}",
            segment(&folder),
            segment(&file_name)
        ))) {
            n += 1;
            file_name = match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem} ({n}).{ext}"),
                None => format!("{name} ({n})"),
            };
        }
        let web_url = format!("{base}/{}/{}", segment(&folder), segment(&file_name));
        let rng = &mut self.contents.rng;
        let guid = text::uuid(rng);
        let id = drive_item_id(rng);
        let folder_id = folder_item_id(&format!("{drive_id}/{folder}"));
        let site_id = format!(
            "contoso.sharepoint.com,{},{}",
            text::uuid(rng),
            text::uuid(rng)
        );
        let token_bytes: [u8; 24] = rng.random();
        let seed: u64 = rng.random();
        let source = file_source(&file_name, seed, size);
        let piece = Piece {
            kind: ContentKind::DriveItem,
            url: format!(
                "/v1.0/shares/{}/driveItem/content",
                encode_sharing_url(&web_url)
            ),
            id,
            content_type: Some(media_type(&file_name).to_string()),
            name: Some(file_name),
            size: source.len(),
            source: Some(source),
            created: at,
            modified: at,
            deleted: false,
            forbidden: false,
            digests: Arc::default(),
            holder: Holder::Drive(DriveFile {
                drive_id,
                drive_type,
                guid,
                web_url,
                folder,
                folder_id,
                site_id,
                owner,
                messages: Vec::new(),
                mail: Vec::new(),
                download_token: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(token_bytes),
            }),
        };
        self.contents.push(piece)
    }

    /// Store what `pending` holds as content of message `idx`; returns the pieces.
    pub(crate) fn attach_pending(&mut self, idx: usize, pending: Pending) -> Vec<usize> {
        let mut pieces = Vec::new();
        for file in pending.files {
            if let Holder::Drive(drive) = &mut self.contents.pieces[file].holder
                && !drive.messages.contains(&idx)
            {
                drive.messages.push(idx);
            }
            pieces.push(file);
        }
        for mut image in pending.images {
            image.holder = Holder::Message(idx);
            image.size = image.source.as_ref().map(Source::len).unwrap_or(0);
            let p = self.contents.push(image);
            self.contents.hosted.entry(idx).or_default().push(p);
            pieces.push(p);
        }
        pieces
    }

    /// Content a generated message gets, at the configured rates: an image, a file from its
    /// team's or chat's pool (often one shared before).
    pub(crate) fn generate_message_content(
        &mut self,
        rng: &mut StdRng,
        rates: &Rates,
        posting: &mut Posting<'_>,
    ) -> Pending {
        let mut pending = Pending::default();
        let is_user_message = posting.doc.message_type == "message"
            && posting
                .doc
                .from
                .as_ref()
                .is_some_and(|f| f["user"].is_object());
        if !is_user_message {
            return pending;
        }
        if rng.random_range(0..1000) < rates.hosted_contents_per_mille {
            let size = rng.random_range(1024..8 * 1024);
            let beta = rng.random_bool(0.2);
            pending.images.push(add_image(rng, posting, size, beta));
        }
        if rng.random_range(0..1000) < rates.file_attachments_per_mille {
            let pool = match posting.conv {
                Conv::Chat(c) => Pool::Chat(c),
                Conv::Channel(c) => Pool::Team(self.channels[c].team),
            };
            let shared = self.contents.pools.get(&pool).cloned().unwrap_or_default();
            let file = if !shared.is_empty() && (shared.len() >= 6 || rng.random_bool(0.6)) {
                shared[rng.random_range(0..shared.len())]
            } else {
                let name = FILE_NAMES[rng.random_range(0..FILE_NAMES.len())];
                let size = rng.random_range(2 * 1024..24 * 1024);
                let f =
                    self.new_drive_file(Some(posting.conv), posting.sender, name, size, posting.at);
                self.contents.pools.entry(pool).or_default().push(f);
                f
            };
            link_file(self, file, posting.doc);
            pending.files.push(file);
        }
        pending
    }

    /// Content an admin asks a new message to carry.
    pub(crate) fn requested_message_content(
        &mut self,
        posting: &mut Posting<'_>,
        content: &NewContent,
    ) -> Result<Pending, SimError> {
        let existing = |id: &String| {
            self.contents
                .by_id
                .get(id)
                .copied()
                .filter(|&f| self.contents.drive_file(f).is_some())
                .ok_or_else(|| SimError::UnknownContent(id.clone()))
        };
        // Refuse before anything is made.
        for id in content
            .files
            .iter()
            .filter_map(|f| f.drive_item_id.as_ref())
        {
            existing(id)?;
        }
        let mut pending = Pending::default();
        for file in &content.files {
            let f = match &file.drive_item_id {
                Some(id) => self
                    .contents
                    .by_id
                    .get(id)
                    .copied()
                    .ok_or_else(|| SimError::UnknownContent(id.clone()))?,
                None => {
                    let name = file.name.clone().unwrap_or_else(|| "Document.docx".into());
                    let size = file.size.unwrap_or(8 * 1024);
                    self.new_drive_file(Some(posting.conv), posting.sender, &name, size, posting.at)
                }
            };
            let pool = match posting.conv {
                Conv::Chat(c) => Pool::Chat(c),
                Conv::Channel(c) => Pool::Team(self.channels[c].team),
            };
            let shared = self.contents.pools.entry(pool).or_default();
            if !shared.contains(&f) {
                shared.push(f);
            }
            link_file(self, f, posting.doc);
            pending.files.push(f);
        }
        let mut rng = StdRng::seed_from_u64(self.contents.rng.random());
        for image in &content.images {
            let size = image.size.unwrap_or(4 * 1024);
            pending
                .images
                .push(add_image(&mut rng, posting, size, false));
        }
        Ok(pending)
    }

    // ---- mail ------------------------------------------------------------------------

    /// Attachments a generated mail item gets, at the configured rate: one to three, files
    /// mostly (some shown inline), sometimes an attached message or a link to a file.
    pub(crate) fn generate_mail_content(
        &mut self,
        rng: &mut StdRng,
        rates: &Rates,
        doc: &mut MailDoc,
        owner: usize,
    ) {
        if rng.random_range(0..1000) >= rates.mail_attachments_per_mille {
            return;
        }
        let count = rng.random_range(1..=3);
        let mut wanted = Vec::new();
        for i in 0..count {
            let roll: f64 = rng.random();
            let kind = if i == 0 || roll < 0.6 {
                AttachmentKind::File
            } else if roll < 0.8 {
                AttachmentKind::Item
            } else {
                AttachmentKind::Reference
            };
            let name = match kind {
                AttachmentKind::Item => format!("RE: {}", text::topic(rng)),
                _ => MAIL_FILE_NAMES[rng.random_range(0..MAIL_FILE_NAMES.len())].to_string(),
            };
            let is_inline = i > 0
                && kind == AttachmentKind::File
                && name.ends_with(".png")
                && rng.random_bool(0.5);
            wanted.push(NewAttachment {
                kind,
                name,
                size: Some(rng.random_range(1024..16 * 1024)),
                content_type: None,
                is_inline,
            });
        }
        let seed: u64 = rng.random();
        self.add_mail_attachments(doc, owner, &wanted, seed);
    }

    /// Attach `wanted` to a mail item not yet stored: pieces, `hasAttachments` (inline ones
    /// do not count, as in Graph), `<img src="cid:...">` in the body for inline ones.
    pub(crate) fn add_mail_attachments(
        &mut self,
        doc: &mut MailDoc,
        owner: usize,
        wanted: &[NewAttachment],
        seed: u64,
    ) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(mix(seed));
        let at = crate::store::parse_time(&doc.received_date_time);
        let mut added = Vec::new();
        for (i, w) in wanted.iter().enumerate() {
            let id = attachment_id(&mut rng, &doc.id);
            let size = w.size.unwrap_or(8 * 1024);
            let piece_seed: u64 = rng.random();
            let url = format!(
                "/v1.0/users/{}/messages/{}/attachments/{id}",
                self.users[owner].id, doc.id
            );
            let (kind, content_type, source, stated, file, content_id) = match w.kind {
                AttachmentKind::File => {
                    let content_type = w
                        .content_type
                        .clone()
                        .unwrap_or_else(|| media_type(&w.name).to_string());
                    let source = if content_type.starts_with("image/png") {
                        blob::png(piece_seed, size)
                    } else {
                        file_source(&w.name, piece_seed, size)
                    };
                    let content_id = w.is_inline.then(|| {
                        format!(
                            "image{:03}.png@01DA{}",
                            i + 1,
                            text::hex_id(&mut rng, 4).to_uppercase()
                        )
                    });
                    (
                        ContentKind::FileAttachment,
                        Some(content_type),
                        Some(source),
                        0,
                        None,
                        content_id,
                    )
                }
                AttachmentKind::Item => {
                    let sender = &self.users[owner];
                    let item = mime::item(
                        &mime::Message {
                            from: mime::Mailbox {
                                name: &sender.display_name,
                                address: &sender.mail,
                            },
                            to: vec![mime::Mailbox {
                                name: &sender.display_name,
                                address: &sender.mail,
                            }],
                            cc: Vec::new(),
                            subject: &w.name,
                            date: at - chrono::Duration::hours(30),
                            message_id: &format!(
                                "<{}@contoso.onmicrosoft.com>",
                                text::hex_id(&mut rng, 12)
                            ),
                            html: "",
                            attachments: Vec::new(),
                        },
                        piece_seed,
                        size,
                    );
                    (ContentKind::ItemAttachment, None, Some(item), 0, None, None)
                }
                AttachmentKind::Reference => {
                    let file = self.new_drive_file(None, owner, &w.name, size, at);
                    if let Holder::Drive(drive) = &mut self.contents.pieces[file].holder {
                        drive.mail.push((owner, doc.id.clone()));
                    }
                    let content_type = media_type(&w.name).to_string();
                    // Graph states the size of the link's metadata, not of the file.
                    (
                        ContentKind::ReferenceAttachment,
                        Some(content_type),
                        None,
                        rng.random_range(400..1200),
                        Some(file),
                        None,
                    )
                }
            };
            let size = source.as_ref().map(Source::len).unwrap_or(stated);
            if let Some(cid) = &content_id {
                doc.body.content = doc.body.content.replacen(
                    "\r\n</body>",
                    &format!(
                        "\r\n<p><img src=\"cid:{cid}\" alt=\"{}\"></p>\r\n</body>",
                        escape_html(&w.name)
                    ),
                    1,
                );
            }
            let piece = Piece {
                kind,
                url: if kind == ContentKind::ReferenceAttachment {
                    url
                } else {
                    format!("{url}/$value")
                },
                id,
                name: Some(w.name.clone()),
                content_type,
                source,
                size,
                created: at,
                modified: at,
                deleted: false,
                forbidden: false,
                digests: Arc::default(),
                holder: Holder::Mail(Attachment {
                    user: owner,
                    mail_id: doc.id.clone(),
                    inline: content_id.is_some(),
                    content_id,
                    file,
                }),
            };
            let p = self.contents.push(piece);
            self.contents
                .mail
                .entry((owner, doc.id.clone()))
                .or_default()
                .push(p);
            added.push(p);
        }
        doc.has_attachments = self.mail_has_attachments(owner, &doc.id);
        added
    }

    /// Whether a mail item has attachments as Graph counts them: inline ones do not.
    pub(super) fn mail_has_attachments(&self, owner: usize, mail_id: &str) -> bool {
        self.contents
            .mail
            .get(&(owner, mail_id.to_string()))
            .into_iter()
            .flatten()
            .any(|&p| {
                let piece = &self.contents.pieces[p];
                !piece.deleted && !matches!(&piece.holder, Holder::Mail(a) if a.inline)
            })
    }

    /// The attachments of a mail item that are not deleted.
    pub(crate) fn mail_attachments(&self, owner: usize, mail_id: &str) -> Vec<usize> {
        self.contents
            .mail
            .get(&(owner, mail_id.to_string()))
            .into_iter()
            .flatten()
            .copied()
            .filter(|&p| !self.contents.pieces[p].deleted)
            .collect()
    }

    /// A mail item's MIME, and the key its digests are kept under.
    pub(crate) fn mail_mime(&self, mail: usize) -> (Source, String) {
        let stored = &self.mail[mail];
        let owner = self.folders[stored.folder].user;
        let doc: MailDoc = serde_json::from_slice(&stored.current().json)
            .unwrap_or_else(|e| panic!("stored mail does not parse back: {e}"));
        let people = |list: &[Value]| -> Vec<(String, String)> {
            list.iter()
                .map(|r| {
                    (
                        r["emailAddress"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        r["emailAddress"]["address"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        };
        let from = people(std::slice::from_ref(&doc.from));
        let to = people(&doc.to_recipients);
        let cc = people(&doc.cc_recipients);
        let attachments = self.mail_attachments(owner, &doc.id);
        let mut key = format!("{owner}:{}", doc.id);
        let mut parts = Vec::new();
        for &p in &attachments {
            let piece = &self.contents.pieces[p];
            let (Some(source), Holder::Mail(a)) = (&piece.source, &piece.holder) else {
                continue;
            };
            key.push(':');
            key.push_str(&piece.id);
            let name = piece.name.as_deref().unwrap_or_default();
            parts.push(match piece.kind {
                ContentKind::ItemAttachment => mime::Part::Item {
                    name,
                    source: source.clone(),
                },
                _ => mime::Part::File {
                    name,
                    content_type: piece
                        .content_type
                        .as_deref()
                        .unwrap_or("application/octet-stream"),
                    content_id: a.content_id.as_deref(),
                    inline: a.inline,
                    modified: piece.modified,
                    source: source.clone(),
                },
            });
        }
        fn mailbox((name, address): &(String, String)) -> mime::Mailbox<'_> {
            mime::Mailbox { name, address }
        }
        let sent = crate::store::parse_time(&doc.sent_date_time);
        let source = mime::message(&mime::Message {
            from: from.first().map(mailbox).unwrap_or(mime::Mailbox {
                name: "",
                address: "",
            }),
            to: to.iter().map(mailbox).collect(),
            cc: cc.iter().map(mailbox).collect(),
            subject: &doc.subject,
            date: sent,
            message_id: &doc.internet_message_id,
            html: &doc.body.content,
            attachments: parts,
        });
        (source, key)
    }
}
