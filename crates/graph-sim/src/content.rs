//! What messages point to: images hosted in chat and channel messages, files in SharePoint
//! and OneDrive that messages share (the same file from several messages), and mail
//! attachments of the three kinds; which message holds which, where Graph serves them,
//! their bytes (generated, see [`crate::blob`]) and the ground truth tests compare a
//! client's copies with.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::blob::{self, Digests, Source};
use crate::docs::{ChatMessageDoc, ItemBody, MailDoc};
use crate::mime;
use crate::store::{Conv, SimError, Store};
use crate::text::{self, escape_html, mix};
use crate::truth::{ContentKind, ContentPiece, MailRef};

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

// ---- URLs and ids --------------------------------------------------------------------------

/// A sharing URL as `/shares/{id}` takes it: `u!` and the unpadded base64url of the URL.
pub fn encode_sharing_url(url: &str) -> String {
    format!(
        "u!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

/// The URL a share id encodes; `None` unless it is encoded as the docs say.
pub(crate) fn decode_share_id(id: &str) -> Option<String> {
    let encoded = id.strip_prefix("u!")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A URL as a lookup key: host and decoded path, any case, no query.
pub(crate) fn url_key(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    percent_encoding::percent_decode_str(rest)
        .decode_utf8_lossy()
        .trim_end_matches('/')
        .to_lowercase()
}

/// Characters a URL path segment keeps as they are.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'(')
    .remove(b')');

fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// A hosted content id as Graph writes them: base64 of `id=x_...,type=1,url=...`. Ids
/// go in URL paths, so ones whose base64 holds `/` or `+` are drawn again.
fn hosted_content_id(rng: &mut StdRng) -> String {
    loop {
        let region = ["wus", "eus", "weu", "neu"][rng.random_range(0..4)];
        let object = format!(
            "0-{region}-d{}-{}",
            rng.random_range(1..20),
            text::hex_id(rng, 16)
        );
        let id = base64::engine::general_purpose::STANDARD.encode(format!(
            "id=x_{object},type=1,url=https://{}-api.asm.skype.com/v1/objects/{object}/views/imgo",
            &region[..2]
        ));
        if !id.contains(['/', '+']) {
            return id;
        }
    }
}

/// A SharePoint item id: `01` and 32 base32 characters.
fn drive_item_id(rng: &mut StdRng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from("01");
    for _ in 0..32 {
        id.push(char::from(ALPHABET[rng.random_range(0..32)]));
    }
    id
}

/// A folder's item id, the same for every file in it.
fn folder_item_id(key: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut rng = StdRng::from_seed(digest.into());
    drive_item_id(&mut rng)
}

fn drive_id(rng: &mut StdRng) -> String {
    let raw: [u8; 48] = rng.random();
    format!(
        "b!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// An Exchange attachment id: the mail's id and a suffix.
fn attachment_id(rng: &mut StdRng, mail_id: &str) -> String {
    let raw: [u8; 16] = rng.random();
    let stem: String = mail_id.trim_end_matches('=').chars().take(60).collect();
    format!(
        "{stem}BEgAQA{}=",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// The media type of a file name's extension.
pub(crate) fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "png" => "image/png",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Bytes for a file called `name`: a real PNG for images, text lines for text, noise
/// otherwise.
fn file_source(name: &str, seed: u64, size: u64) -> Source {
    match media_type(name) {
        "image/png" => blob::png(seed, size),
        "text/csv" | "text/plain" => Source::Text { seed, len: size },
        _ => Source::Noise { seed, len: size },
    }
}

const FILE_NAMES: &[&str] = &[
    "Budget.xlsx",
    "Contract draft.docx",
    "Minutes.docx",
    "Forecast Q3.xlsx",
    "Trade log.csv",
    "Board deck.pptx",
    "Policy.pdf",
    "Term sheet.pdf",
    "Site photo.png",
    "Notes.txt",
];

const MAIL_FILE_NAMES: &[&str] = &[
    "Invoice 2291.pdf",
    "Q3 numbers.xlsx",
    "Signed agreement.pdf",
    "Agenda.docx",
    "Export.csv",
    "Screenshot.png",
    "Archive.zip",
];

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

    /// A new file in a team's library (in the channel's folder) or the sharer's OneDrive.
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
                    "Microsoft Teams Chat Files".to_string(),
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
    fn mail_has_attachments(&self, owner: usize, mail_id: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_urls_encode_as_the_docs_say() {
        // shares-get: base64, then unpadded base64url, then `u!`. This URL's base64 has
        // padding and both characters base64url replaces.
        let url = "https://x/??>~~>";
        let standard = base64::engine::general_purpose::STANDARD.encode(url);
        let expected = format!(
            "u!{}",
            standard
                .trim_end_matches('=')
                .replace('/', "_")
                .replace('+', "-")
        );
        assert!(standard.ends_with('=') && standard.contains('/') && standard.contains('+'));
        assert_eq!(encode_sharing_url(url), expected);
        assert_eq!(decode_share_id(&expected).as_deref(), Some(url));
        // Padded, standard-alphabet or unprefixed forms are not what the docs describe.
        assert_eq!(decode_share_id(&format!("u!{standard}")), None);
        assert_eq!(decode_share_id(&expected[2..]), None);
    }

    #[test]
    fn hosted_content_ids_look_like_graphs_and_fit_in_a_path() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let id = hosted_content_id(&mut rng);
            assert!(id.starts_with("aWQ9eF8w"), "{id}");
            assert!(!id.contains(['/', '+']));
            let text = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(&id)
                    .expect("base64"),
            )
            .expect("text");
            assert!(text.contains(",type=1,url=https://"), "{text}");
        }
    }

    #[test]
    fn url_keys_ignore_case_encoding_and_query() {
        assert_eq!(
            url_key("https://contoso.sharepoint.com/sites/A/Shared%20Documents/B%20c.docx?web=1"),
            url_key("https://CONTOSO.sharepoint.com/sites/a/Shared Documents/b c.docx")
        );
    }
}
