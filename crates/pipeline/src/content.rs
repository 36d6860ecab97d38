//! Captures what messages point to while their scope reads them: inline images (hosted
//! contents), SharePoint and OneDrive files, mail attachments and, if asked, mail MIME.
//!
//! Each piece is streamed from Graph into a spool file (never held in memory), stored as a
//! blob named by its SHA-256, and only then recorded as a `message_contents` row in the
//! scope's lane, beside the message's own row. The row goes to the writer with the page's
//! checkpoint, so a checkpoint never passes a message whose content is neither stored nor
//! recorded as unavailable (404, 403, over the cap, or refused for good: `failed`, an error
//! of the run). A piece Graph may yet serve (5xx, throttling, a cut connection, past the
//! retries) stops the scope instead, its checkpoint stays, and the next run reads the page
//! again, for [`CONTENT_RUNS_RETRIED`] runs in a row. So does a piece that cannot be
//! spooled or stored locally, for as long as that lasts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use archive::records::ContentTotals;
use chrono::Utc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use transform::{ContentKind, ContentReference, ContentRow, ContentStatus, MessageIdentity};

use crate::driver::Lane;
use crate::scratch::Scratch;

/// Log target of one debug event per step of a piece (`downloaded`, `stored`,
/// `recorded`), for operators who want that detail and for the crash tests, which kill
/// the process at chosen steps.
pub const CONTENT_TARGET: &str = "sync::content";

/// What `sync` fetches of the content messages point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentMode {
    /// Nothing: messages only.
    None,
    /// Inline images of chat and channel messages and mail attachments.
    #[default]
    Inline,
    /// Also the SharePoint and OneDrive files messages link.
    All,
}

/// How content is captured.
#[derive(Debug, Clone)]
pub struct ContentOptions {
    pub mode: ContentMode,
    /// Pieces larger than this are recorded `too_large` and not fetched.
    pub max_bytes: u64,
    /// Also each mail message version's MIME (`/messages/{id}/$value`).
    pub mail_mime: bool,
    /// Where downloads are spooled before they are stored (default: the system's temp).
    pub spool_dir: Option<PathBuf>,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            mode: ContentMode::Inline,
            max_bytes: 256 * 1024 * 1024,
            mail_mime: false,
            spool_dir: None,
        }
    }
}

/// Counts across a run, for the run summary.
#[derive(Debug, Default)]
struct Counts {
    per_status: [AtomicU64; 6],
    blobs_created: AtomicU64,
    blobs_present: AtomicU64,
    bytes_stored: AtomicU64,
    /// Why each piece recorded `failed` failed, as many as a run summary lists.
    failures: std::sync::Mutex<Vec<String>>,
}

impl Counts {
    fn note_failure(&self, error: String) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() < archive::records::RECORDED_ERRORS {
            failures.push(error);
        }
    }
}

/// Message versions remembered as captured in this run, at most (about 3 MiB).
const CAPTURED_CAPACITY: usize = 65_536;

/// Fetches and stores the content of the messages of a run.
pub struct ContentCapture {
    client: fetch::GraphClient,
    blobs: sink::BlobStore,
    options: ContentOptions,
    run_id: String,
    counts: Counts,
    /// Where downloads are spooled before they are stored.
    spool: Scratch,
    /// Chat message versions whose content this run captured already: a chat's message
    /// comes once per member's listing, and its images once are enough. The rows of the
    /// first capture travel with the first listing's checkpoint, so if they are lost that
    /// listing reads the message again. Bounded: forgetting only costs a repeated fetch.
    captured: std::sync::Mutex<std::collections::HashSet<String>>,
    retries: tokio::sync::Mutex<Retries>,
}

/// Runs in a row a piece may stop its scope by failing to download before it is
/// recorded `failed` instead: a piece Graph never serves must not hold its scope's
/// later messages back for good.
pub const CONTENT_RUNS_RETRIED: u32 = 3;

/// The pieces that failed to download, by reference, kept in the state store
/// (`archive::layout::CONTENT_RETRIES_KEY`) from run to run; read once per run.
struct Retries {
    state: sink::CheckpointStore,
    pieces: Option<BTreeMap<String, FailedRuns>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FailedRuns {
    runs: u32,
    last_run: String,
}

impl Retries {
    async fn pieces(&mut self) -> Result<&mut BTreeMap<String, FailedRuns>, String> {
        if self.pieces.is_none() {
            let key = archive::layout::CONTENT_RETRIES_KEY;
            let stored = match self.state.load_document(key).await {
                Ok(stored) => stored.unwrap_or_default(),
                // Only a count of retries: a damaged one starts again.
                Err(sink::SinkError::Json { .. }) => BTreeMap::new(),
                Err(e) => return Err(format!("reading the content retries: {e}")),
            };
            self.pieces = Some(stored);
        }
        Ok(self.pieces.as_mut().expect("just read"))
    }

    async fn save(&mut self) -> Result<(), String> {
        let pieces = self.pieces().await?.clone();
        self.state
            .save_document(archive::layout::CONTENT_RETRIES_KEY, &pieces)
            .await
            .map_err(|e| format!("saving the content retries: {e}"))
    }

    /// Counts this run's failure of `reference` (once per run); the runs it has failed in.
    async fn failed(&mut self, reference: &str, run_id: &str) -> Result<u32, String> {
        let pieces = self.pieces().await?;
        let entry = pieces.entry(reference.to_string()).or_insert(FailedRuns {
            runs: 0,
            last_run: String::new(),
        });
        if entry.last_run != run_id {
            entry.runs += 1;
            entry.last_run = run_id.to_string();
        }
        let runs = entry.runs;
        if runs >= CONTENT_RUNS_RETRIED {
            pieces.remove(reference);
        }
        self.save().await?;
        Ok(runs)
    }

    /// Forgets the failures of a piece now stored.
    async fn stored(&mut self, reference: &str) -> Result<(), String> {
        if self.pieces().await?.remove(reference).is_some() {
            self.save().await?;
        }
        Ok(())
    }
}

/// A mail attachment as listed (`$select`ed metadata).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MailAttachment {
    #[serde(rename = "@odata.type")]
    odata_type: Option<String>,
    id: Option<String>,
    name: Option<String>,
    content_type: Option<String>,
    size: Option<i64>,
}

/// A driveItem's metadata (shares-get, driveitem-get).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriveItem {
    id: Option<String>,
    name: Option<String>,
    e_tag: Option<String>,
    c_tag: Option<String>,
    size: Option<i64>,
    file: Option<DriveFile>,
    parent_reference: Option<ParentReference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DriveFile {
    mime_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParentReference {
    drive_id: Option<String>,
}

#[derive(Deserialize)]
struct ItemId {
    id: Option<String>,
}

impl ContentCapture {
    pub fn new(
        client: fetch::GraphClient,
        blobs: sink::BlobStore,
        options: ContentOptions,
        run_id: String,
        state: sink::CheckpointStore,
    ) -> std::io::Result<Option<Arc<ContentCapture>>> {
        if options.mode == ContentMode::None && !options.mail_mime {
            return Ok(None);
        }
        let spool = Scratch::create(options.spool_dir.as_deref())?;
        Ok(Some(Arc::new(ContentCapture {
            client,
            blobs,
            options,
            run_id,
            counts: Counts::default(),
            spool,
            captured: Default::default(),
            retries: tokio::sync::Mutex::new(Retries {
                state,
                pieces: None,
            }),
        })))
    }

    /// Why each piece recorded `failed` failed: errors of the run, which exits 3.
    pub fn failures(&self) -> Vec<String> {
        let failures = self
            .counts
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        failures
            .iter()
            .map(|e| format!("content not stored: {e}"))
            .collect()
    }

    /// What the run's content came to.
    pub fn totals(&self) -> ContentTotals {
        let c = &self.counts;
        ContentTotals {
            pieces: ContentStatus::ALL
                .iter()
                .zip(&c.per_status)
                .map(|(s, n)| (*s, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            blobs_created: c.blobs_created.load(Ordering::Relaxed),
            blobs_present: c.blobs_present.load(Ordering::Relaxed),
            bytes_stored: c.bytes_stored.load(Ordering::Relaxed),
        }
    }

    /// Captures what a chat or channel message version points to, into `lane`.
    pub async fn chat_message(&self, lane: &mut Lane, raw: &str) -> Result<(), String> {
        if self.options.mode == ContentMode::None {
            return Ok(());
        }
        let references = transform::chat_message_references(raw)?;
        let references: Vec<ContentReference> = references
            .into_iter()
            .filter(|r| r.kind != ContentKind::File || self.options.mode == ContentMode::All)
            .collect();
        if references.is_empty() {
            return Ok(());
        }
        let message = MessageIdentity::chat(raw)?;
        {
            let mut captured = self.captured.lock().expect("not poisoned");
            if captured.len() >= CAPTURED_CAPACITY {
                captured.clear();
            }
            if !captured.insert(message.content_sha256.clone()) {
                return Ok(());
            }
        }
        for reference in references {
            let row = match reference.kind {
                ContentKind::File => self.file(&reference).await,
                _ => self
                    .download(
                        reference.kind,
                        reference.reference.clone(),
                        &reference.reference,
                        None,
                    )
                    .await
                    .map(|mut row| {
                        row.piece.graph_id = reference.graph_id.clone();
                        row
                    }),
            };
            match row {
                Ok(row) => self.record(lane, &message, row),
                Err(e) => {
                    // Not captured after all: another listing of the message may try.
                    let mut captured = self.captured.lock().expect("not poisoned");
                    captured.remove(&message.content_sha256);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Captures a mail message version's attachments (and MIME, if asked), into `lane`.
    pub async fn mail_message(
        &self,
        lane: &mut Lane,
        raw: &str,
        custodian: &str,
    ) -> Result<(), String> {
        let attachments =
            self.options.mode != ContentMode::None && transform::mail_has_attachments(raw);
        if !attachments && !self.options.mail_mime {
            return Ok(());
        }
        let Some(message_id) = serde_json::from_str::<ItemId>(raw).ok().and_then(|m| m.id) else {
            return Ok(()); // a removal, or an item without an id: nothing to read
        };
        if raw.contains("\"@removed\"") {
            return Ok(());
        }
        let message = MessageIdentity::mail(raw, custodian)?;
        if attachments {
            for row in self.mail_attachments(custodian, &message_id).await? {
                self.record(lane, &message, row);
            }
        }
        if self.options.mail_mime {
            let path = fetch::GraphClient::mail_mime_path(custodian, &message_id);
            let mut row = self
                .download(ContentKind::MailMime, message_id.clone(), &path, None)
                .await?;
            row.piece.graph_id = Some(message_id.clone());
            row.piece
                .content_type
                .get_or_insert_with(|| "message/rfc822".into());
            self.record(lane, &message, row);
        }
        Ok(())
    }

    fn record(&self, lane: &mut Lane, message: &MessageIdentity, row: ContentRow) {
        let at = ContentStatus::ALL
            .iter()
            .position(|s| *s == row.piece.status)
            .expect("every status is counted");
        self.counts.per_status[at].fetch_add(1, Ordering::Relaxed);
        if row.piece.status != ContentStatus::Ok && row.piece.status != ContentStatus::Reference {
            tracing::warn!(
                message = message.id.as_deref().unwrap_or("-"),
                kind = row.piece.kind.as_str(),
                reference = %row.piece.reference,
                status = row.piece.status.as_str(),
                detail = row.piece.status_detail.as_deref().unwrap_or(""),
                "content not stored"
            );
        }
        lane.push_content(message, &row, Utc::now(), &self.run_id);
        tracing::debug!(target: CONTENT_TARGET, step = "recorded", kind = row.piece.kind.as_str(), status = row.piece.status.as_str(), "content recorded");
    }

    async fn mail_attachments(
        &self,
        user: &str,
        message_id: &str,
    ) -> Result<Vec<ContentRow>, String> {
        let mut rows = Vec::new();
        let mut pages = pin!(self.client.mail_attachments(user, message_id));
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    // The listing itself failed: one row says so for the message.
                    let mut row = ContentRow::new(
                        ContentKind::MailFileAttachment,
                        message_id.to_string(),
                        status_of(&e),
                    );
                    row.piece.status_detail = Some(e.to_string());
                    rows.push(row);
                    break;
                }
            };
            for item in page.iter() {
                let attachment: MailAttachment = serde_json::from_str(item)
                    .map_err(|e| format!("an attachment of message {message_id}: {e}"))?;
                let Some(id) = attachment.id.clone() else {
                    return Err(format!("an attachment of message {message_id} has no id"));
                };
                let kind = match attachment.odata_type.as_deref() {
                    Some("#microsoft.graph.itemAttachment") => ContentKind::MailItemAttachment,
                    Some("#microsoft.graph.referenceAttachment") => {
                        ContentKind::MailReferenceAttachment
                    }
                    _ => ContentKind::MailFileAttachment,
                };
                let mut row = if kind == ContentKind::MailReferenceAttachment {
                    ContentRow::new(kind, id.clone(), ContentStatus::Reference)
                } else {
                    let path = fetch::GraphClient::mail_attachment_path(user, message_id, &id);
                    self.download(kind, id.clone(), &path, attachment.size)
                        .await?
                };
                row.piece.graph_id = Some(id);
                row.piece.name = attachment.name;
                if row.piece.content_type.is_none() || kind != ContentKind::MailItemAttachment {
                    row.piece.content_type = attachment.content_type.or(row.piece.content_type);
                }
                row.piece.size = row.piece.size.or(attachment.size);
                row.metadata_json = Some(item.to_string());
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// A SharePoint or OneDrive file: its driveItem, then its bytes.
    async fn file(&self, reference: &ContentReference) -> Result<ContentRow, String> {
        let url = &reference.reference;
        let scope = format!("file {}", reference.name.as_deref().unwrap_or(url));
        let page = match self.client.shared_drive_item(&scope, url).await {
            Ok(page) => page,
            Err(e) => {
                let mut row = ContentRow::new(ContentKind::File, url.clone(), status_of(&e));
                row.piece.graph_id = reference.graph_id.clone();
                row.piece.name = reference.name.clone();
                row.piece.status_detail = Some(e.to_string());
                return Ok(row);
            }
        };
        let raw = page.iter().next().unwrap_or("{}").to_string();
        let item: DriveItem =
            serde_json::from_str(&raw).map_err(|e| format!("{scope}: its driveItem: {e}"))?;
        let drive_id = item.parent_reference.and_then(|p| p.drive_id);
        let path = match (&drive_id, &item.id) {
            (Some(drive), Some(id)) => {
                let [d, i] = [drive, id].map(|s| {
                    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                });
                format!("v1.0/drives/{d}/items/{i}/content")
            }
            _ => fetch::GraphClient::shared_content_path(url),
        };
        let mut row = self
            .download(ContentKind::File, url.clone(), &path, item.size)
            .await?;
        row.piece.graph_id = item.id;
        row.piece.name = item.name.or_else(|| reference.name.clone());
        if let Some(mime) = item.file.and_then(|f| f.mime_type) {
            row.piece.content_type = Some(mime);
        }
        row.piece.size = row.piece.size.or(item.size);
        row.drive_id = drive_id;
        row.etag = item.e_tag;
        row.ctag = item.c_tag;
        row.metadata_json = Some(raw);
        Ok(row)
    }

    /// Streams the bytes at a Graph path into a spool file and stores them as a blob.
    /// What Graph refuses becomes the row's status; what fails locally is an error.
    async fn download(
        &self,
        kind: ContentKind,
        reference: String,
        path: &str,
        announced: Option<i64>,
    ) -> Result<ContentRow, String> {
        let limit = self.options.max_bytes;
        if let Some(size) = announced.filter(|&s| s >= 0 && s as u64 > limit) {
            let mut row = ContentRow::new(kind, reference, ContentStatus::TooLarge);
            row.piece.size = Some(size);
            row.piece.status_detail = Some(format!("{size} bytes, over the {limit}-byte cap"));
            return Ok(row);
        }
        let spool = tempfile::Builder::new()
            .prefix("download-")
            .tempfile_in(self.spool.path())
            .map_err(|e| format!("spooling content: {e}"))?;
        let std_file = spool
            .reopen()
            .map_err(|e| format!("spooling content: {e}"))?;
        let mut file = tokio::fs::File::from_std(std_file);
        let scope = format!("{} {reference}", kind.as_str());
        let downloaded = match self.client.download(&scope, path, limit, &mut file).await {
            Ok(downloaded) => downloaded,
            // Not a verdict on the piece: the run cannot go on reading (or spooling).
            Err(e @ (fetch::FetchError::Auth { .. } | fetch::FetchError::Unsupported { .. })) => {
                return Err(e.to_string());
            }
            // Graph failing for longer than the retries last: the scope stops with its
            // checkpoint where it is, and the next run reads the page and tries again, for
            // CONTENT_RUNS_RETRIED runs; then the piece is recorded failed.
            Err(e) if e.is_transient() => {
                let runs = self
                    .retries
                    .lock()
                    .await
                    .failed(&reference, &self.run_id)
                    .await?;
                if runs < CONTENT_RUNS_RETRIED {
                    return Err(format!(
                        "{e} (failed in {runs} of the {CONTENT_RUNS_RETRIED} runs it is retried in)"
                    ));
                }
                self.counts
                    .note_failure(format!("{e} (in {runs} runs in a row)"));
                let mut row = ContentRow::new(kind, reference, ContentStatus::Failed);
                row.piece.status_detail = Some(format!("{e} (in {runs} runs in a row)"));
                return Ok(row);
            }
            Err(e) => {
                let status = status_of(&e);
                if status == ContentStatus::Failed {
                    self.counts.note_failure(e.to_string());
                }
                let mut row = ContentRow::new(kind, reference, status);
                if let fetch::FetchError::TooLarge { size, .. } = &e {
                    row.piece.size = Some(*size as i64);
                }
                row.piece.status_detail = Some(e.to_string());
                return Ok(row);
            }
        };
        drop(file);
        self.retries.lock().await.stored(&reference).await?;
        tracing::debug!(target: CONTENT_TARGET, step = "downloaded", sha256 = %downloaded.sha256, bytes = downloaded.bytes, "content downloaded");
        let put = self
            .blobs
            .put_file(&downloaded.sha256, spool.path())
            .await
            .map_err(|e| format!("storing {scope}: {e}"))?;
        tracing::debug!(target: CONTENT_TARGET, step = "stored", sha256 = %downloaded.sha256, created = put == sink::BlobPut::Created, "content stored");
        match put {
            sink::BlobPut::Created => {
                self.counts.blobs_created.fetch_add(1, Ordering::Relaxed);
                self.counts
                    .bytes_stored
                    .fetch_add(downloaded.bytes, Ordering::Relaxed);
            }
            sink::BlobPut::AlreadyPresent => {
                self.counts.blobs_present.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut row = ContentRow::new(kind, reference, ContentStatus::Ok);
        row.piece.size = Some(downloaded.bytes as i64);
        row.piece.blob_sha256 = Some(downloaded.sha256);
        row.piece.content_type = downloaded.content_type;
        Ok(row)
    }
}

/// The status a Graph error gives a piece.
fn status_of(error: &fetch::FetchError) -> ContentStatus {
    match (error, error.status()) {
        (fetch::FetchError::TooLarge { .. }, _) => ContentStatus::TooLarge,
        (_, Some(404 | 410)) => ContentStatus::NotFound,
        (_, Some(403)) => ContentStatus::Forbidden,
        _ => ContentStatus::Failed,
    }
}
