//! What messages point to: images hosted in chat and channel messages, files in SharePoint
//! and OneDrive that messages share (the same file from several messages), and mail
//! attachments of the three kinds; which message holds which, where Graph serves them,
//! their bytes (generated, see [`crate::blob`]) and the ground truth tests compare a
//! client's copies with.

mod ids;
mod new;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::blob::{Digests, Source};
use crate::store::{Conv, SimError, Store};
use crate::truth::{ContentKind, ContentPiece, MailRef};

pub use ids::encode_sharing_url;
pub(crate) use ids::{decode_share_id, url_key};
pub(crate) use new::Posting;
pub use new::{AttachmentKind, NewAttachment, NewContent, NewFile, NewImage};

// ---- the registry --------------------------------------------------------------------------

pub(crate) struct Piece {
    pub kind: ContentKind,
    pub id: String,
    /// Where Graph serves its bytes, below the service root.
    pub url: String,
    pub name: Option<String>,
    pub content_type: Option<String>,
    /// Its bytes; a reference attachment has none.
    pub source: Option<Source>,
    /// Bytes of `source`, or the size Graph states for a reference attachment.
    pub size: u64,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub deleted: bool,
    pub forbidden: bool,
    /// Computed the first time someone needs them.
    pub digests: Arc<OnceLock<Digests>>,
    pub holder: Holder,
}

/// Who holds a piece.
pub(crate) enum Holder {
    /// An image hosted in this chat or channel message.
    Message(usize),
    Drive(DriveFile),
    Mail(Attachment),
}

/// A file in a team's document library or a user's OneDrive.
pub(crate) struct DriveFile {
    pub drive_id: String,
    /// `documentLibrary` (a team's site) or `business` (OneDrive).
    pub drive_type: &'static str,
    /// The item's unique id: in its eTag, and the id Teams gives the attachment.
    pub guid: String,
    /// The URL messages carry (`contentUrl`).
    pub web_url: String,
    pub folder: String,
    pub folder_id: String,
    pub site_id: String,
    pub owner: usize,
    /// Chat and channel messages sharing it.
    pub messages: Vec<usize>,
    /// Mail items whose reference attachments link to it.
    pub mail: Vec<(usize, String)>,
    /// The opaque part of its pre-authenticated download URL.
    pub download_token: String,
}

pub(crate) struct Attachment {
    /// The mailbox's owner.
    pub user: usize,
    /// The mail item's immutable id.
    pub mail_id: String,
    pub inline: bool,
    pub content_id: Option<String>,
    /// A reference attachment's file.
    pub file: Option<usize>,
}

/// Where files shared in messages accumulate, so later messages share them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Pool {
    Team(usize),
    Chat(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DriveOf {
    Team(usize),
    User(usize),
}

pub(crate) struct Contents {
    pub pieces: Vec<Piece>,
    pub by_id: HashMap<String, usize>,
    /// A message's hosted images, in body order.
    pub hosted: HashMap<usize, Vec<usize>>,
    /// Files by their URL's [`url_key`].
    pub by_url: HashMap<String, usize>,
    pub by_token: HashMap<String, usize>,
    /// A mail item's attachments: (mailbox owner, immutable id).
    pub mail: HashMap<(usize, String), Vec<usize>>,
    pub pools: HashMap<Pool, Vec<usize>>,
    pub drives: HashMap<DriveOf, String>,
    /// MIME digests, by mail item and the attachments its MIME holds.
    pub mime_digests: HashMap<String, Arc<OnceLock<Digests>>>,
    pub rng: StdRng,
}

impl Contents {
    pub(crate) fn new(seed: u64) -> Self {
        Contents {
            pieces: Vec::new(),
            by_id: HashMap::new(),
            hosted: HashMap::new(),
            by_url: HashMap::new(),
            by_token: HashMap::new(),
            mail: HashMap::new(),
            pools: HashMap::new(),
            drives: HashMap::new(),
            mime_digests: HashMap::new(),
            rng: StdRng::seed_from_u64(seed ^ 0xc0_47e7),
        }
    }

    fn push(&mut self, piece: Piece) -> usize {
        let idx = self.pieces.len();
        self.by_id.insert(piece.id.clone(), idx);
        if let Holder::Drive(file) = &piece.holder {
            self.by_url.insert(url_key(&file.web_url), idx);
            self.by_token.insert(file.download_token.clone(), idx);
        }
        self.pieces.push(piece);
        idx
    }

    pub(crate) fn drive_file(&self, idx: usize) -> Option<&DriveFile> {
        match &self.pieces[idx].holder {
            Holder::Drive(file) => Some(file),
            _ => None,
        }
    }
}

/// The digests of a drive file, computed once (off the async threads: a gigabyte takes
/// seconds).
pub(crate) async fn file_digests(cell: &Arc<OnceLock<Digests>>, source: &Source) -> Digests {
    if let Some(d) = cell.get() {
        return d.clone();
    }
    let (cell2, source2) = (cell.clone(), source.clone());
    let computed =
        tokio::task::spawn_blocking(move || cell2.get_or_init(|| source2.digests(true)).clone())
            .await;
    match computed {
        Ok(d) => d,
        Err(_) => cell.get_or_init(|| source.digests(true)).clone(),
    }
}

/// The digests of a piece's bytes, computed now if not yet (QuickXorHash for files).
pub(crate) fn digests_now(
    cell: &Arc<OnceLock<Digests>>,
    source: &Source,
    kind: ContentKind,
) -> Digests {
    cell.get_or_init(|| source.digests(kind == ContentKind::DriveItem))
        .clone()
}

impl Store {
    // ---- changes -----------------------------------------------------------------------

    fn piece_by_id(&self, id: &str) -> Result<usize, SimError> {
        self.contents
            .by_id
            .get(id)
            .copied()
            .ok_or_else(|| SimError::UnknownContent(id.to_string()))
    }

    /// The piece is gone: Graph answers 404 for it. A mail attachment leaves its mail
    /// (a new version of the item, `hasAttachments` recounted, its MIME without it).
    pub(crate) fn delete_content(&mut self, id: &str) -> Result<usize, SimError> {
        let p = self.piece_by_id(id)?;
        if self.contents.pieces[p].deleted {
            return Ok(p);
        }
        self.contents.pieces[p].deleted = true;
        if let Holder::Mail(a) = &self.contents.pieces[p].holder {
            let (owner, mail_id) = (a.user, a.mail_id.clone());
            let has = self.mail_has_attachments(owner, &mail_id);
            if let Some(m) = self.current_mail(owner, &mail_id) {
                self.push_mail_version(m, |doc| doc.has_attachments = has);
            }
        }
        Ok(p)
    }

    /// Graph answers 403 for the piece (or serves it again, `forbidden: false`).
    pub(crate) fn forbid_content(&mut self, id: &str, forbidden: bool) -> Result<usize, SimError> {
        let p = self.piece_by_id(id)?;
        self.contents.pieces[p].forbidden = forbidden;
        Ok(p)
    }

    // ---- lookups -----------------------------------------------------------------------

    /// The mail item (not removed) with this immutable id in a mailbox.
    pub(crate) fn current_mail(&self, owner: usize, mail_id: &str) -> Option<usize> {
        self.mail.iter().position(|m| {
            m.removed.is_none() && m.id == mail_id && self.folders[m.folder].user == owner
        })
    }

    /// A mail item of a mailbox by immutable or REST id, in `folder` if given.
    pub(crate) fn find_mail(&self, owner: usize, id: &str, folder: Option<usize>) -> Option<usize> {
        self.mail.iter().position(|m| {
            m.removed.is_none()
                && (m.id == id || m.rest_id == id)
                && self.folders[m.folder].user == owner
                && !self.folders[m.folder].deleted
                && folder.is_none_or(|f| m.folder == f)
        })
    }

    /// Whether what holds a piece is gone (its message deleted, its mail removed, its team
    /// or user deleted).
    pub(crate) fn holder_gone(&self, p: usize) -> bool {
        match &self.contents.pieces[p].holder {
            Holder::Message(m) => {
                let message = &self.messages[*m];
                message.current().deleted
                    || matches!(message.conv, Conv::Channel(c) if self.teams[self.channels[c].team].deleted)
            }
            Holder::Drive(_) => false,
            Holder::Mail(a) => {
                self.users[a.user].deleted || self.current_mail(a.user, &a.mail_id).is_none()
            }
        }
    }

    // ---- ground truth ------------------------------------------------------------------

    fn mail_ref(&self, owner: usize, mail_id: &str) -> MailRef {
        MailRef {
            user_id: self.users[owner].id.clone(),
            id: mail_id.to_string(),
        }
    }

    /// A piece as the truth lists it, with whatever digests are known.
    pub(crate) fn content_view(&self, p: usize) -> ContentPiece {
        let piece = &self.contents.pieces[p];
        let digests = piece.digests.get();
        let mut view = ContentPiece {
            kind: piece.kind,
            id: piece.id.clone(),
            url: piece.url.clone(),
            name: piece.name.clone(),
            content_type: piece.content_type.clone(),
            size: piece.size,
            sha256: digests.map(|d| d.sha256.clone()),
            quick_xor_hash: None,
            deleted: piece.deleted || self.holder_gone(p),
            forbidden: piece.forbidden,
            messages: Vec::new(),
            mail: Vec::new(),
            web_url: None,
            drive_id: None,
            is_inline: false,
        };
        match &piece.holder {
            Holder::Message(m) => view.messages.push(self.message_ref(*m)),
            Holder::Drive(drive) => {
                view.quick_xor_hash = digests.and_then(|d| d.quick_xor.clone());
                view.messages = drive
                    .messages
                    .iter()
                    .map(|&m| self.message_ref(m))
                    .collect();
                view.mail = drive
                    .mail
                    .iter()
                    .map(|(u, id)| self.mail_ref(*u, id))
                    .collect();
                view.web_url = Some(drive.web_url.clone());
                view.drive_id = Some(drive.drive_id.clone());
            }
            Holder::Mail(a) => {
                view.mail.push(self.mail_ref(a.user, &a.mail_id));
                view.is_inline = a.inline;
            }
        }
        view
    }

    fn message_ref(&self, m: usize) -> crate::truth::MessageRef {
        crate::truth::MessageRef {
            conversation: self.conversation(self.messages[m].conv),
            id: self.messages[m].id.clone(),
        }
    }

    /// Every piece, then the MIME of every mail item that exists: views without digests,
    /// and what computes the missing ones (the caller does, outside the store's lock).
    pub(crate) fn content_listing(&mut self) -> Vec<Listed> {
        let mut out = Vec::new();
        for p in 0..self.contents.pieces.len() {
            let view = self.content_view(p);
            let piece = &self.contents.pieces[p];
            let pending = piece.source.clone().map(|s| (piece.digests.clone(), s));
            out.push((view, pending));
        }
        for m in 0..self.mail.len() {
            let mail = &self.mail[m];
            let owner = self.folders[mail.folder].user;
            if mail.removed.is_some() || self.users[owner].deleted {
                continue;
            }
            let (source, key) = self.mail_mime(m);
            let cell = self.contents.mime_digests.entry(key).or_default().clone();
            let mail = &self.mail[m];
            let forbidden = self
                .mail_attachments(owner, &mail.id)
                .iter()
                .any(|&p| self.contents.pieces[p].forbidden);
            let view = ContentPiece {
                kind: ContentKind::MailMime,
                id: mail.id.clone(),
                url: format!(
                    "/v1.0/users/{}/messages/{}/$value",
                    self.users[owner].id, mail.id
                ),
                name: None,
                content_type: Some("text/plain".into()),
                size: source.len(),
                sha256: cell.get().map(|d| d.sha256.clone()),
                quick_xor_hash: None,
                deleted: false,
                forbidden,
                messages: Vec::new(),
                mail: vec![self.mail_ref(owner, &mail.id)],
                web_url: None,
                drive_id: None,
                is_inline: false,
            };
            out.push((view, Some((cell, source))));
        }
        out
    }
}

/// A piece as listed, and what computes its digests if they are not known yet.
pub(crate) type Listed = (ContentPiece, Option<(Arc<OnceLock<Digests>>, Source)>);

/// Fill in the digests a listing left out.
pub(crate) fn complete(listing: Vec<Listed>) -> Vec<ContentPiece> {
    listing
        .into_iter()
        .map(|(mut view, pending)| {
            if let Some((cell, source)) = pending {
                let d = digests_now(&cell, &source, view.kind);
                view.sha256 = Some(d.sha256);
                view.quick_xor_hash = d.quick_xor;
            }
            view
        })
        .collect()
}

/// How often generated messages and mail carry content.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rates {
    pub hosted_contents_per_mille: u32,
    pub file_attachments_per_mille: u32,
    pub mail_attachments_per_mille: u32,
}

/// A filter over the content listing (`GET /_sim/content?kind=...&id=...`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentFilter {
    #[serde(default)]
    pub kind: Option<ContentKind>,
    /// A piece's Graph id (a mail item's id for its MIME).
    #[serde(default)]
    pub id: Option<String>,
    /// Pieces held by this chat or channel message, or this mail item.
    #[serde(default)]
    pub message_id: Option<String>,
}

impl ContentFilter {
    pub(crate) fn keeps(&self, view: &ContentPiece) -> bool {
        self.kind.is_none_or(|k| k == view.kind)
            && self.id.as_deref().is_none_or(|id| id == view.id)
            && self.message_id.as_deref().is_none_or(|m| {
                view.messages.iter().any(|r| r.id == m) || view.mail.iter().any(|r| r.id == m)
            })
    }
}
