//! What messages point to: the `message_contents` rows of each exported message version
//! ([`ContentPiece`]), read with the day's messages, and the blobs they name copied into the
//! export once each, as `files/<sha256>/<name>`: streamed from the archive, hashed on the
//! way, and kept only when the bytes hash to the blob's name.

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use archive::records::FileCheck;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use transform::{ContentKind, ContentPiece, ContentStatus};

use crate::columns::{Ints, Strings};
use crate::error::ExportError;
use crate::output::{OutputCounts, Outputs};
use crate::reader::ArchiveFileRead;
use crate::spool::Spool;

/// The `message_contents` columns an export reads.
pub(crate) const CONTENT_COLUMNS: &[&str] = &[
    "message_table",
    "message_content_sha256",
    "kind",
    "reference",
    "graph_id",
    "name",
    "content_type",
    "size",
    "blob_sha256",
    "status",
    "status_detail",
];

/// The export folder that holds the copied blobs.
pub(crate) const FILES_DIR: &str = "files";
/// The `format` of copied blobs in the manifest's outputs.
pub(crate) const FILES_FORMAT: &str = "file";

/// Pieces sort by kind and reference, a stored one first for each reference.
fn piece_order(a: &ContentPiece, b: &ContentPiece) -> std::cmp::Ordering {
    let key = |p: &ContentPiece| {
        (
            p.kind as u8,
            p.reference.clone(),
            p.status != ContentStatus::Ok,
            p.blob_sha256.clone(),
        )
    };
    key(a).cmp(&key(b)).then_with(|| a.status.cmp(&b.status))
}

/// The memory a piece holds, roughly, for the spool's budget.
pub(crate) fn piece_heap_size(piece: &ContentPiece) -> usize {
    let text = crate::sort::strings_heap_size(&[
        &piece.graph_id,
        &piece.name,
        &piece.content_type,
        &piece.blob_sha256,
        &piece.status_detail,
    ]);
    std::mem::size_of::<ContentPiece>() + piece.reference.len() + text
}

/// The pieces of one day's message versions, by the version's table and content hash.
#[derive(Default)]
pub(crate) struct ContentIndex {
    by_version: HashMap<(bool, [u8; 32]), Vec<ContentPiece>>,
}

impl ContentIndex {
    pub fn add(&mut self, batch: &RecordBatch, first: u64) -> Result<(), String> {
        let s = |name| Strings::of(batch, name);
        let r = |name| Strings::required(batch, name);
        let (table, message, kind, reference, status) = (
            r("message_table")?,
            r("message_content_sha256")?,
            r("kind")?,
            r("reference")?,
            r("status")?,
        );
        let (graph_id, name, content_type, blob, detail) = (
            s("graph_id")?,
            s("name")?,
            s("content_type")?,
            s("blob_sha256")?,
            s("status_detail")?,
        );
        let size = Ints::of(batch, "size")?;
        for row in 0..batch.num_rows() {
            let position = first + row as u64;
            let (Some(table), Some(message), Some(kind), Some(reference), Some(status)) = (
                table.get(row),
                message.get(row),
                kind.get(row),
                reference.get(row),
                status.get(row),
            ) else {
                return Err(format!(
                    "row {position}: message_table, message_content_sha256, kind, reference or status is null"
                ));
            };
            let mail = match table {
                "chat_messages" => false,
                "mail_messages" => true,
                // A table this exporter does not know: nothing it exports points there.
                _ => continue,
            };
            let mut key = [0u8; 32];
            hex::decode_to_slice(message, &mut key).map_err(|_| {
                format!("row {position}: message_content_sha256 {message:?} is not a SHA-256")
            })?;
            let kind = ContentKind::parse(kind).ok_or_else(|| {
                format!("row {position}: kind {kind:?} is not one this exporter knows")
            })?;
            let status = ContentStatus::parse(status).ok_or_else(|| {
                format!("row {position}: status {status:?} is not one this exporter knows")
            })?;
            let piece = ContentPiece {
                kind,
                reference: reference.to_string(),
                graph_id: graph_id.string(row),
                name: name.string(row),
                content_type: content_type.string(row),
                size: size.get(row),
                blob_sha256: blob.string(row),
                status,
                status_detail: detail.string(row),
            };
            let pieces = self.by_version.entry((mail, key)).or_default();
            if !pieces.contains(&piece) {
                pieces.push(piece);
            }
        }
        Ok(())
    }

    /// The pieces of the version `content_sha256` of a chat (or `mail`) message, sorted.
    pub fn of(&self, mail: bool, content_sha256: &str) -> Vec<ContentPiece> {
        let mut key = [0u8; 32];
        if hex::decode_to_slice(content_sha256, &mut key).is_err() {
            return Vec::new();
        }
        let mut pieces = self
            .by_version
            .get(&(mail, key))
            .cloned()
            .unwrap_or_default();
        pieces.sort_by(piece_order);
        pieces
    }
}

/// Why bytes the archive says it stored are not in the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobProblem {
    /// No blob by that name in the archive (or no valid name).
    Missing,
    /// The blob's bytes do not hash to its name.
    Altered,
}

impl BlobProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobProblem::Missing => "blob_missing",
            BlobProblem::Altered => "blob_altered",
        }
    }
}

/// A piece as an export shows it: what the archive says, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedPiece {
    pub piece: ContentPiece,
    /// The copied bytes, relative to the export folder (`files/<sha256>/<name>`).
    pub file: Option<String>,
    pub problem: Option<BlobProblem>,
}

impl ExportedPiece {
    /// Archived facts only, nothing copied (a piece whose bytes are not needed).
    pub fn without_file(piece: ContentPiece) -> ExportedPiece {
        ExportedPiece {
            piece,
            file: None,
            problem: None,
        }
    }

    /// `ok` when the bytes are in the export; else why not: the archive's status, or
    /// `blob_missing` / `blob_altered`.
    pub fn status(&self) -> &str {
        match (&self.file, self.problem) {
            (Some(_), _) => "ok",
            (None, Some(problem)) => problem.as_str(),
            (None, None) if self.piece.status == ContentStatus::Ok => BlobProblem::Missing.as_str(),
            (None, None) => self.piece.status.as_str(),
        }
    }

    /// A file name safe everywhere (folders, zips, mail), keeping the extension.
    pub fn file_name(&self) -> String {
        safe_file_name(
            self.piece.name.as_deref(),
            self.piece.content_type.as_deref(),
            self.piece.kind.as_str(),
        )
    }

    /// The name as archived, on one line, or the safe name when there is none.
    pub fn display_name(&self) -> String {
        match self.piece.name.as_deref().filter(|n| !n.trim().is_empty()) {
            Some(name) => crate::formats::one_line(name).into_owned(),
            None => self.file_name(),
        }
    }
}

/// Device names Windows will not create a file by, whatever the extension.
const RESERVED_STEMS: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A file name made of safe characters (no separators, control characters or leading
/// dots; never a device name), with the name's extension, or one for the content type.
pub(crate) fn safe_file_name(name: Option<&str>, content_type: Option<&str>, kind: &str) -> String {
    let name = name.filter(|n| !n.trim().is_empty());
    let (stem, extension) = match name {
        Some(name) => match name.rsplit_once('.') {
            Some((stem, ext))
                if !stem.trim().is_empty()
                    && (1..=10).contains(&ext.len())
                    && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                (stem, Some(ext.to_ascii_lowercase()))
            }
            _ => (name, None),
        },
        None => (
            match ContentKind::parse(kind) {
                Some(ContentKind::HostedContent) => "image",
                Some(ContentKind::File) => "file",
                Some(ContentKind::MailMime) => "message",
                _ => "attachment",
            },
            None,
        ),
    };
    let mut stem = crate::view::safe_name(stem);
    if RESERVED_STEMS.iter().any(|r| r.eq_ignore_ascii_case(&stem)) {
        stem.insert(0, '_');
    }
    match extension.or_else(|| extension_for(content_type).map(str::to_string)) {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem,
    }
}

/// A file extension for a MIME type, for pieces that have no name.
fn extension_for(content_type: Option<&str>) -> Option<&'static str> {
    let essence = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    Some(match essence.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/gif" => "gif",
        "image/bmp" => "bmp",
        "image/webp" => "webp",
        "image/tiff" => "tif",
        "image/svg+xml" => "svg",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "message/rfc822" => "eml",
        "application/zip" => "zip",
        _ => return None,
    })
}

/// Whether a relative path can only name a file inside the export: plain names of safe
/// characters, `/`-separated, none of them empty, `.` or `..`.
#[cfg(test)]
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part
                    .chars()
                    .any(|c| c.is_control() || c == '\\' || c == ':')
        })
}

/// Copies blobs from the archive into the export.
pub(crate) struct Blobs {
    store: Arc<dyn ObjectStore>,
    archive: String,
    runtime: tokio::runtime::Handle,
    /// Blobs that could not be copied (few), so each is tried and named once.
    failed: HashMap<String, BlobProblem>,
    /// Every blob read, for the manifest's `archive_files`.
    pub reads: Spool<ArchiveFileRead>,
    pub problems: Vec<String>,
    pub altered: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// Why a copy stopped.
enum Stop {
    Store(object_store::Error),
    Local(ExportError),
}

impl Blobs {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        archive: &str,
        runtime: tokio::runtime::Handle,
        reads: Spool<ArchiveFileRead>,
    ) -> Blobs {
        Blobs {
            store,
            archive: archive.to_string(),
            runtime,
            failed: HashMap::new(),
            reads,
            problems: Vec::new(),
            altered: Vec::new(),
            files: 0,
            bytes: 0,
        }
    }

    /// The piece with its bytes in the export: copied to `files/<sha256>/<name>` the first
    /// time any message names the blob, found there every later time.
    pub fn export(
        &mut self,
        piece: ContentPiece,
        outputs: &mut Outputs,
    ) -> Result<ExportedPiece, ExportError> {
        if piece.status != ContentStatus::Ok {
            return Ok(ExportedPiece::without_file(piece));
        }
        let Some(sha) = piece
            .blob_sha256
            .clone()
            .filter(|s| archive::layout::blob_key(s).is_some())
        else {
            return Ok(ExportedPiece {
                piece,
                file: None,
                problem: Some(BlobProblem::Missing),
            });
        };
        if let Some(problem) = self.failed.get(&sha) {
            let problem = Some(*problem);
            return Ok(ExportedPiece {
                piece,
                file: None,
                problem,
            });
        }
        let folder = format!("{FILES_DIR}/{sha}");
        if let Some(name) = first_file(&outputs.root().join(&folder)) {
            return Ok(ExportedPiece {
                piece,
                file: Some(format!("{folder}/{name}")),
                problem: None,
            });
        }
        let mut exported = ExportedPiece::without_file(piece);
        let relative = format!("{folder}/{}", exported.file_name());
        match self.copy(
            &sha,
            &relative,
            FILES_FORMAT,
            OutputCounts::default(),
            outputs,
        )? {
            Ok(bytes) => {
                self.files += 1;
                self.bytes += bytes;
                exported.file = Some(relative);
            }
            Err(problem) => {
                self.failed.insert(sha, problem);
                exported.problem = Some(problem);
            }
        }
        Ok(exported)
    }

    /// Streams the blob `sha256` into a new export file at `relative` and records it as
    /// an output of `format`: its bytes count, or why it is not there (a missing or altered
    /// blob is named among the problems, and nothing is left at `relative`).
    pub fn copy(
        &mut self,
        sha256: &str,
        relative: &str,
        format: &str,
        counts: OutputCounts,
        outputs: &mut Outputs,
    ) -> Result<Result<u64, BlobProblem>, ExportError> {
        let Some(key) = archive::layout::blob_key(sha256) else {
            self.problems.push(format!(
                "{relative}: not exported, {sha256:?} is not a blob's SHA-256"
            ));
            return Ok(Err(BlobProblem::Missing));
        };
        let mut file = outputs.create(relative)?;
        let store = Arc::clone(&self.store);
        let location = Path::from(key.as_str());
        let read = self.runtime.block_on(async {
            let found = match store.get(&location).await {
                Ok(found) => found,
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(Stop::Store(e)),
            };
            let mut stream = found.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(Stop::Store)?;
                file.put(&chunk).map_err(Stop::Local)?;
            }
            Ok(true)
        });
        let found = match read {
            Ok(found) => found,
            Err(stop) => {
                outputs.discard(file);
                return Err(match stop {
                    Stop::Local(e) => e,
                    Stop::Store(source) => ExportError::Store {
                        operation: "read",
                        archive: self.archive.clone(),
                        key,
                        source: Box::new(source),
                    },
                });
            }
        };
        if !found {
            outputs.discard(file);
            self.problems.push(format!(
                "{key}: the blob is not in the archive, so {relative} is not exported"
            ));
            return Ok(Err(BlobProblem::Missing));
        }
        let (digest, bytes) = (file.sha256(), file.bytes());
        let matches = digest == sha256;
        let error = (!matches).then(|| {
            format!("not exported: its bytes hash to {digest}, not to the SHA-256 it is named by")
        });
        self.reads.push(&ArchiveFileRead {
            path: key.clone(),
            table: archive::layout::BLOBS_DIR.to_string(),
            partition: sha256[..2].to_string(),
            bytes,
            sha256: digest,
            rows: 0,
            recorded_sha256: Some(sha256.to_string()),
            check: if matches {
                FileCheck::Match
            } else {
                FileCheck::Mismatch
            },
            error: error.clone(),
        })?;
        if let Some(error) = error {
            outputs.discard(file);
            self.problems.push(format!("{key}: {error} ({relative})"));
            self.altered.push(key);
            return Ok(Err(BlobProblem::Altered));
        }
        outputs.close_as(file, format, counts)?;
        Ok(Ok(bytes))
    }
}

/// The one file a `files/<sha256>` folder holds, if the blob was copied already.
fn first_file(folder: &FsPath) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// A relative export path as a URL path (for `href` and `src`): each byte outside the
/// unreserved set percent-encoded, `/` kept.
pub(crate) fn url_path(relative: &str) -> String {
    let mut out = String::with_capacity(relative.len() + 8);
    for byte in relative.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `message_contents` row of one chat message version, its `column` set to `value`.
    fn content_batch(column: &str, value: &str) -> RecordBatch {
        use arrow::array::{ArrayRef, StringArray};
        let message = transform::MessageIdentity::chat(
            r#"{"id":"1","chatId":"c","createdDateTime":"2024-05-01T10:00:00Z"}"#,
        )
        .unwrap();
        let row =
            transform::ContentRow::new(ContentKind::File, "https://x/y".into(), ContentStatus::Ok);
        let mut builder = transform::MessageContentBuilder::new();
        builder.append(&message, &row, chrono::Utc::now(), "run");
        let batch = builder.finish();
        let index = batch.schema().index_of(column).unwrap();
        let mut columns = batch.columns().to_vec();
        columns[index] = Arc::new(StringArray::from(vec![value])) as ArrayRef;
        RecordBatch::try_new(batch.schema(), columns).unwrap()
    }

    #[test]
    fn a_kind_or_status_this_exporter_does_not_know_is_an_error_naming_the_row() {
        let mut index = ContentIndex::default();
        index.add(&content_batch("status", "ok"), 0).unwrap();
        for (column, value) in [("kind", "meeting_recording"), ("status", "exploded")] {
            let err = index.add(&content_batch(column, value), 7).unwrap_err();
            assert!(err.starts_with("row 7:"), "{err}");
            assert!(err.contains(column) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn file_names_are_safe_and_keep_their_extension() {
        let name = |n: Option<&str>, ct: Option<&str>, kind: &str| safe_file_name(n, ct, kind);
        assert_eq!(name(Some("Budget.xlsx"), None, "file"), "Budget.xlsx");
        assert_eq!(
            name(Some("../../etc/passwd"), None, "file"),
            "_.._etc_passwd"
        );
        assert_eq!(name(Some("a\r\nb\u{7}.PDF"), None, "file"), "a__b_.pdf");
        assert_eq!(
            name(Some("=cmd|' /C calc'!A0"), None, "file"),
            "_cmd__ _C calc__A0"
        );
        assert_eq!(name(Some("CON.txt"), None, "file"), "_CON.txt");
        assert_eq!(name(None, Some("image/png"), "hosted_content"), "image.png");
        assert_eq!(
            name(Some("   "), None, "mail_file_attachment"),
            "attachment"
        );
        assert_eq!(name(Some(".bashrc"), None, "file"), "bashrc");
        let long = format!("{}.docx", "x".repeat(300));
        assert!(name(Some(&long), None, "file").ends_with("x.docx"));
        for hostile in ["../../etc/passwd", "a/b\\c", "..", "\u{202e}gpj.exe"] {
            let safe = name(Some(hostile), None, "file");
            assert!(is_plain_relative(&format!("files/x/{safe}")), "{safe:?}");
            assert!(!safe.contains('/') && !safe.contains('\\') && !safe.starts_with('.'));
        }
    }

    #[test]
    fn paths_become_url_paths() {
        assert_eq!(
            url_path("files/ab/Q3 plan (final).xlsx"),
            "files/ab/Q3%20plan%20%28final%29.xlsx"
        );
        assert_eq!(url_path("files/ab/é.png"), "files/ab/%C3%A9.png");
    }

    #[test]
    fn a_stored_piece_sorts_before_what_else_became_of_it() {
        let piece = |reference: &str, status: ContentStatus| ContentPiece {
            kind: ContentKind::HostedContent,
            reference: reference.into(),
            graph_id: None,
            name: None,
            content_type: None,
            size: None,
            blob_sha256: (status == ContentStatus::Ok).then(|| "ab".repeat(32)),
            status,
            status_detail: None,
        };
        let (ok, gone) = (ContentStatus::Ok, ContentStatus::NotFound);
        let mut pieces = [piece("b", ok), piece("a", gone), piece("a", ok)];
        pieces.sort_by(piece_order);
        let order: Vec<(&str, &str)> = pieces
            .iter()
            .map(|p| (p.reference.as_str(), p.status.as_str()))
            .collect();
        assert_eq!(order, vec![("a", "ok"), ("a", "not_found"), ("b", "ok")]);
    }
}
