//! Proof that nothing was altered. An archive: every file's SHA-256, size and row count
//! against the commit records and run summaries, every row's `content_sha256` against its
//! `raw_json`, no file the records do not know, every writer's chain of records unbroken,
//! and each head printed earlier still in its chain; every blob's bytes against the
//! SHA-256 that names it, and every blob a `message_contents` row names present. An export: every file against its
//! manifest, and no file the manifest does not list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use futures::TryStreamExt;
use sha2::{Digest, Sha256};

use archive::Table;

use crate::columns::Strings;
use crate::error::ExportError;
use crate::manifest::{ExportManifest, MANIFEST_FILE, MANIFEST_FORMAT};
use crate::reader::{Archive, ArchiveFile, RecordedFile};

/// What kind of mismatch a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemKind {
    /// A file the records (or the manifest) list is not there.
    MissingFile,
    /// A file is there that the records (or the manifest) do not list.
    ExtraFile,
    /// A file's bytes differ from its recorded SHA-256 or size.
    AlteredFile,
    /// A row's `raw_sha256` is not the SHA-256 of its `raw_json`, or its `content_sha256`
    /// not that of its canonical form.
    AlteredRow,
    /// A file holds more or fewer rows than recorded.
    RowCount,
    /// A file or record could not be read at all.
    Unreadable,
    /// Two records disagree about one file.
    RecordConflict,
    /// A manifest names a path outside the export folder, through a symbolic link, or
    /// of something that is not a regular file; it is not read.
    UnsafePath,
    /// A writer's chain of records is broken: a record changed, removed or slipped in.
    BrokenChain,
    /// A head given with `--expect-head` is not in its chain, or something before it
    /// changed.
    UnexpectedHead,
    /// A record is not signed by the key given with `--verify-key`, or its signature does
    /// not verify; or a signature names a record that is not there.
    BadSignature,
    /// An S3 key has more than one version or a delete marker: it was written again or
    /// deleted after it was first written.
    Overwritten,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::MissingFile => "missing file",
            ProblemKind::ExtraFile => "extra file",
            ProblemKind::AlteredFile => "altered file",
            ProblemKind::AlteredRow => "altered row",
            ProblemKind::RowCount => "row count",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::RecordConflict => "records disagree",
            ProblemKind::UnsafePath => "unsafe path",
            ProblemKind::BrokenChain => "broken chain",
            ProblemKind::UnexpectedHead => "unexpected head",
            ProblemKind::BadSignature => "bad signature",
            ProblemKind::Overwritten => "overwritten",
        }
    }
}

/// One mismatch, naming the file (and row) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    /// Relative to the archive root or the export folder.
    pub path: String,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    /// One line, whatever the path holds: a file named with a line break must not print
    /// a line that reads as another finding (or as none).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::formats::one_line;
        write!(
            f,
            "{}: {}: {}",
            self.kind.label(),
            one_line(&self.path),
            one_line(&self.detail)
        )
    }
}

/// What a verification checked and found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub files_checked: u64,
    pub rows_checked: u64,
    /// Blobs whose bytes were hashed (archives only).
    pub blobs_checked: u64,
    pub problems: Vec<Problem>,
    /// The last record of each writer's chain (archives only).
    pub chain_heads: Vec<archive::chain::Head>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, kind: ProblemKind, path: &str, detail: impl Into<String>) {
        self.problems.push(Problem {
            kind,
            path: path.to_string(),
            detail: detail.into(),
        });
    }
}

/// The chain heads a verification holds the archive to.
#[derive(Debug, Clone, Default)]
pub struct ExpectedHeads {
    /// SHA-256 of records (as `sync` printed them) that must still be in their chains with
    /// every record before them unaltered.
    pub heads: Vec<String>,
    /// Records after an expected head are fine (an older head is being checked); without
    /// this, each is a problem: written by a run whose head was not recorded, or forged.
    pub allow_later_records: bool,
    /// Every commit record and run summary must carry a valid signature by this key.
    pub verify_key: Option<archive::signing::VerifyKey>,
}

/// Checks an archive against its commit records and run summaries, their chains, and the
/// chain heads that must still be in them.
pub async fn verify_archive(
    location: &str,
    expected: &ExpectedHeads,
) -> Result<VerifyReport, ExportError> {
    let archive = Archive::open(location)?;
    let mut report = VerifyReport::default();
    let records = archive.records().await?;
    for problem in &records.problems {
        let (path, detail) = problem.split_once(": ").unwrap_or((problem, ""));
        report.problem(ProblemKind::Unreadable, path, detail);
    }
    let chains = archive::chain::check(&records.chained);
    for (key, detail) in &chains.problems {
        report.problem(ProblemKind::BrokenChain, key, detail.clone());
    }
    for head in &expected.heads {
        match archive::chain::expect_head(&chains, &records.chained, head) {
            Err(detail) => report.problem(ProblemKind::UnexpectedHead, head, detail),
            Ok(_) if expected.allow_later_records => {}
            Ok(link) => {
                for later in archive::chain::after(&records.chained, &link.writer, link.sequence) {
                    let sequence = later.link.as_ref().map_or(0, |l| l.sequence);
                    report.problem(
                        ProblemKind::UnexpectedHead,
                        &later.key,
                        format!(
                            "record {sequence} of chain {} comes after the expected head {head}: written by a run whose head was not recorded, or forged",
                            link.writer
                        ),
                    );
                }
            }
        }
    }
    report.chain_heads = chains.heads;
    let recorded = records.files;

    let all = archive.all_objects().await?;
    if let Some(key) = &expected.verify_key {
        check_signatures(&archive, &records.chained, key, &mut report).await?;
    }
    check_versions(&archive, &mut report).await;
    let keys: BTreeSet<&str> = all.iter().map(|(key, _)| key.as_str()).collect();
    for (key, bytes) in all.iter().filter(|(key, _)| key.starts_with("_archive/")) {
        let known = archive::layout::commit_id_of(key).is_some()
            || archive::layout::run_id_of(key).is_some();
        if let Some(record) = archive::layout::signed_record_of(key) {
            if !keys.contains(record.as_str()) {
                report.problem(
                    ProblemKind::BadSignature,
                    key,
                    format!("the signature of {record}, which is not in the archive (removed)"),
                );
            }
        } else if !known {
            report.problem(
                ProblemKind::ExtraFile,
                key,
                format!("{bytes} bytes under _archive/ that are neither a commit record nor a run summary"),
            );
        }
    }
    let (blobs, present): (BTreeMap<String, u64>, BTreeMap<String, u64>) = all
        .into_iter()
        .filter(|(key, _)| !key.starts_with("_archive/"))
        .partition(|(key, _)| key.starts_with("blobs/"));
    let blobs_present = check_blobs(&archive, &blobs, &mut report).await?;
    let mut referenced = BTreeMap::new();
    for (path, bytes) in &present {
        if !recorded.contains_key(path) {
            report.problem(
                ProblemKind::ExtraFile,
                path,
                format!("{bytes} bytes that no commit record or run summary lists"),
            );
        }
    }

    for (path, record) in &recorded {
        for conflict in &record.conflicts {
            report.problem(
                ProblemKind::RecordConflict,
                path,
                format!(
                    "{} says sha256 {}, but {conflict}",
                    record.recorded_in[0], record.sha256
                ),
            );
        }
        let (table, partition) = table_of(path);
        let Some(file) = archive.file(path, table, partition).await? else {
            report.problem(
                ProblemKind::MissingFile,
                path,
                format!("listed by {}", record.recorded_in.join(", ")),
            );
            continue;
        };
        report.files_checked += 1;
        check_file(&archive, &file, Some(record), &mut report, &mut referenced).await?;
    }
    // Extra Parquet files are checked row by row too: they may be someone's data.
    for (path, _) in present.iter().filter(|(p, _)| !recorded.contains_key(*p)) {
        let (table, partition) = table_of(path);
        if !path.ends_with(".parquet") || table.is_empty() {
            continue;
        }
        if let Some(file) = archive.file(path, table, partition).await? {
            report.files_checked += 1;
            check_file(&archive, &file, None, &mut report, &mut referenced).await?;
        }
    }
    for (sha256, row) in referenced {
        if !blobs_present.contains(&sha256) {
            let key = archive::layout::blob_key(&sha256).unwrap_or_else(|| sha256.clone());
            report.problem(ProblemKind::MissingFile, &key, format!("named by {row}"));
        }
    }
    report
        .problems
        .sort_by(|a, b| (&a.path, a.kind).cmp(&(&b.path, b.kind)));
    Ok(report)
}

/// Every readable record against its signature by `key`.
async fn check_signatures(
    archive: &Archive,
    records: &[archive::chain::ChainedRecord],
    key: &archive::signing::VerifyKey,
    report: &mut VerifyReport,
) -> Result<(), ExportError> {
    use archive::signing::RecordSignature;
    for record in records {
        let signature_key = archive::layout::signature_key(&record.key);
        let Some(bytes) = archive.get_bytes(&signature_key).await? else {
            report.problem(
                ProblemKind::BadSignature,
                &record.key,
                format!("not signed: {signature_key} is missing"),
            );
            continue;
        };
        let checked = RecordSignature::from_json(&bytes)
            .and_then(|signature| key.check(&signature, &record.key, &record.sha256));
        if let Err(detail) = checked {
            report.problem(ProblemKind::BadSignature, &record.key, detail);
        }
    }
    Ok(())
}

/// On S3, every key written more than once (the state folder excepted: it is rewritten
/// by design). Elsewhere nothing: other stores keep no versions to compare.
async fn check_versions(archive: &Archive, report: &mut VerifyReport) {
    match archive.location().key_versions().await {
        None => {}
        Some(Err(detail)) => report.problem(
            ProblemKind::Unreadable,
            archive.url(),
            format!("cannot tell whether any key was overwritten: {detail}"),
        ),
        Some(Ok(keys)) => {
            for (key, versions) in keys {
                let overwritten = versions.versions + versions.delete_markers > 1;
                if overwritten && !key.starts_with(&format!("{}/", archive::layout::STATE_DIR)) {
                    report.problem(
                        ProblemKind::Overwritten,
                        &key,
                        format!(
                            "the bucket keeps {} versions and {} delete markers of it: it was written again or deleted after it was first written",
                            versions.versions, versions.delete_markers
                        ),
                    );
                }
            }
        }
    }
}

/// Every object under `blobs/` against the SHA-256 its name gives; says which blobs are
/// present.
async fn check_blobs(
    archive: &Archive,
    blobs: &BTreeMap<String, u64>,
    report: &mut VerifyReport,
) -> Result<BTreeSet<String>, ExportError> {
    let mut present = BTreeSet::new();
    for (key, bytes) in blobs {
        let Some(named) = archive::layout::blob_of_key(key) else {
            report.problem(
                ProblemKind::ExtraFile,
                key,
                format!("{bytes} bytes under blobs/ not named by the SHA-256 of a blob"),
            );
            continue;
        };
        let Some(file) = archive.file(key, "", "").await? else {
            continue; // removed while listing: a row naming it reports it missing
        };
        report.blobs_checked += 1;
        let digest = archive.sha256(&file).await?;
        if digest == named {
            present.insert(named.to_string());
        } else {
            report.problem(
                ProblemKind::AlteredFile,
                key,
                format!("its {bytes} bytes hash to {digest}, not to the SHA-256 that names it"),
            );
        }
    }
    Ok(present)
}

/// The table and partition a key belongs to (empty when it is in no table).
fn table_of(path: &str) -> (&'static str, &str) {
    let Some(table) = Table::of_path(path) else {
        return ("", "");
    };
    let partition = path[table.folder().len() + 1..]
        .split('/')
        .next()
        .and_then(|p| p.strip_prefix("date="))
        .unwrap_or("");
    (table.folder(), partition)
}

async fn check_file(
    archive: &Archive,
    file: &ArchiveFile,
    record: Option<&RecordedFile>,
    report: &mut VerifyReport,
    referenced_blobs: &mut BTreeMap<String, String>,
) -> Result<(), ExportError> {
    if let Some(record) = record {
        let sha256 = archive.sha256(file).await?;
        if sha256 != record.sha256 || file.bytes != record.bytes {
            report.problem(
                ProblemKind::AlteredFile,
                &file.path,
                format!(
                    "sha256 {sha256} ({} bytes), but {} records sha256 {} ({} bytes)",
                    file.bytes, record.recorded_in[0], record.sha256, record.bytes
                ),
            );
        }
    }
    let table = Table::from_folder(&file.table);
    let has_raw = table.is_some_and(|t| t.schema().index_of("raw_json").is_ok());
    let names_blobs = table == Some(Table::MessageContents);
    let columns: &[&str] = if has_raw {
        &["id", "raw_json", "raw_sha256", "content_sha256"]
    } else if names_blobs {
        &["content_sha256", "blob_sha256"]
    } else {
        &["content_sha256"]
    };
    let mut rows = 0u64;
    let read = async {
        let mut batches = archive.batches(file, columns).await?;
        while let Some(batch) = batches.try_next().await? {
            if has_raw {
                check_rows(&batch, rows, &file.path, report).map_err(|reason| {
                    ExportError::Shape {
                        archive: archive.url().to_string(),
                        key: file.path.clone(),
                        reason,
                    }
                })?;
            }
            if names_blobs {
                let blobs =
                    Strings::of(&batch, "blob_sha256").map_err(|reason| ExportError::Shape {
                        archive: archive.url().to_string(),
                        key: file.path.clone(),
                        reason,
                    })?;
                for row in 0..batch.num_rows() {
                    if let Some(sha256) = blobs.get(row) {
                        referenced_blobs
                            .entry(sha256.to_string())
                            .or_insert_with(|| format!("{} row {}", file.path, rows + row as u64));
                    }
                }
            }
            rows += batch.num_rows() as u64;
        }
        Ok::<(), ExportError>(())
    }
    .await;
    if let Err(e) = read {
        report.problem(ProblemKind::Unreadable, &file.path, e.chain());
        return Ok(());
    }
    report.rows_checked += rows;
    if let Some(record) = record
        && record.rows != rows
    {
        report.problem(
            ProblemKind::RowCount,
            &file.path,
            format!(
                "{rows} rows, but {} records {}",
                record.recorded_in[0], record.rows
            ),
        );
    }
    Ok(())
}

fn check_rows(
    batch: &arrow::record_batch::RecordBatch,
    first: u64,
    path: &str,
    report: &mut VerifyReport,
) -> Result<(), String> {
    let ids = Strings::of(batch, "id")?;
    let raw = Strings::required(batch, "raw_json")?;
    let raw_sha = Strings::required(batch, "raw_sha256")?;
    let sha = Strings::required(batch, "content_sha256")?;
    for row in 0..batch.num_rows() {
        let position = first + row as u64;
        let id = ids.get(row).unwrap_or("(no id)");
        let (Some(raw), Some(raw_sha), Some(sha)) = (raw.get(row), raw_sha.get(row), sha.get(row))
        else {
            report.problem(
                ProblemKind::AlteredRow,
                path,
                format!("row {position} (id {id}): raw_json, raw_sha256 or content_sha256 is null"),
            );
            continue;
        };
        let bytes_digest = hex::encode(Sha256::digest(raw.as_bytes()));
        if bytes_digest != raw_sha {
            report.problem(
                ProblemKind::AlteredRow,
                path,
                format!(
                    "row {position} (id {id}): raw_sha256 is {raw_sha} but its raw_json hashes to {bytes_digest}"
                ),
            );
            continue;
        }
        match transform::canonical_sha256(raw) {
            Ok(digest) if hex::encode(digest) == sha => {}
            Ok(digest) => report.problem(
                ProblemKind::AlteredRow,
                path,
                format!(
                    "row {position} (id {id}): content_sha256 is {sha} but its raw_json hashes to {}",
                    hex::encode(digest)
                ),
            ),
            Err(e) => report.problem(
                ProblemKind::AlteredRow,
                path,
                format!("row {position} (id {id}): raw_json is not valid JSON ({e})"),
            ),
        }
    }
    Ok(())
}

/// Checks an export folder against its `export_manifest.json`.
pub fn verify_export(dir: &Path) -> Result<VerifyReport, ExportError> {
    let mut report = VerifyReport::default();
    let manifest_path = dir.join(MANIFEST_FILE);
    if !dir.is_dir() {
        return Err(ExportError::Request(format!(
            "the export folder {} does not exist",
            dir.display()
        )));
    }
    let manifest: ExportManifest = match std::fs::read(&manifest_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.problem(
                ProblemKind::MissingFile,
                MANIFEST_FILE,
                "an export without its manifest cannot be checked (was it interrupted?)",
            );
            return Ok(report);
        }
        Err(e) => return Err(ExportError::io("read", &manifest_path)(e)),
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(manifest) => manifest,
            Err(e) => {
                report.problem(
                    ProblemKind::Unreadable,
                    MANIFEST_FILE,
                    format!("not an export manifest: {e}"),
                );
                return Ok(report);
            }
        },
    };
    if manifest.format != MANIFEST_FORMAT {
        report.problem(
            ProblemKind::Unreadable,
            MANIFEST_FILE,
            format!("format {:?}, expected {MANIFEST_FORMAT:?}", manifest.format),
        );
    }

    let mut listed = BTreeSet::new();
    for output in &manifest.outputs {
        listed.insert(output.path.clone());
        let path = match inside(dir, &output.path) {
            Ok(path) => path,
            Err(Inside::Missing) => {
                report.problem(
                    ProblemKind::MissingFile,
                    &output.path,
                    "listed in the manifest",
                );
                continue;
            }
            Err(Inside::Unsafe(reason)) => {
                report.problem(ProblemKind::UnsafePath, &output.path, reason);
                continue;
            }
        };
        let (sha256, bytes) = match file_sha256(&path) {
            Ok(digest) => digest,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.problem(
                    ProblemKind::MissingFile,
                    &output.path,
                    "listed in the manifest",
                );
                continue;
            }
            Err(e) => {
                report.problem(ProblemKind::Unreadable, &output.path, e.to_string());
                continue;
            }
        };
        report.files_checked += 1;
        if sha256 != output.sha256 || bytes != output.bytes {
            report.problem(
                ProblemKind::AlteredFile,
                &output.path,
                format!(
                    "sha256 {sha256} ({bytes} bytes), but the manifest records sha256 {} ({} bytes)",
                    output.sha256,
                    output.bytes
                ),
            );
        }
    }

    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let entries = std::fs::read_dir(&folder).map_err(ExportError::io("list", &folder))?;
        for entry in entries {
            let entry = entry.map_err(ExportError::io("list", &folder))?;
            let path = entry.path();
            // The entry itself, not what a link points to: links are never followed.
            let kind = entry
                .file_type()
                .map_err(ExportError::io("list", &folder))?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if relative != MANIFEST_FILE && !listed.contains(&relative) {
                report.problem(
                    ProblemKind::ExtraFile,
                    &relative,
                    "not listed in the manifest",
                );
            }
        }
    }
    report
        .problems
        .sort_by(|a, b| (&a.path, a.kind).cmp(&(&b.path, b.kind)));
    Ok(report)
}

/// Why a manifest path is not read.
enum Inside {
    /// Nothing is there.
    Missing,
    /// Outside the folder, through a link, or not a regular file.
    Unsafe(String),
}

/// The file a manifest path names inside the export folder `dir`: a relative path of
/// plain names (no `..`, no root, no drive), none of them a symbolic link, ending at a
/// regular file. An export holds nothing else, and a manifest is only as trustworthy as
/// the folder it came in: `../../etc/hostname` or `/dev/zero` must not be read.
fn inside(dir: &Path, relative: &str) -> Result<std::path::PathBuf, Inside> {
    use std::path::Component;
    let unsafe_path = |reason: &str| Err(Inside::Unsafe(reason.to_string()));
    if relative.is_empty() {
        return unsafe_path("an empty path");
    }
    if relative.contains('\\') || relative.contains('\0') {
        return unsafe_path("a path with a backslash or a NUL; an export's paths use `/`");
    }
    let mut path = dir.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            Component::ParentDir => return unsafe_path("a path with `..`, leading outside"),
            Component::RootDir | Component::Prefix(_) => {
                return unsafe_path("an absolute path, outside the export folder");
            }
        }
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Inside::Missing),
            Err(e) => return Err(Inside::Unsafe(format!("cannot be checked: {e}"))),
            Ok(meta) if meta.file_type().is_symlink() => {
                return unsafe_path("a symbolic link; links are not followed");
            }
            Ok(_) => {}
        }
    }
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => unsafe_path("not a regular file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Inside::Missing),
        Err(e) => Err(Inside::Unsafe(format!("cannot be checked: {e}"))),
    }
}

/// SHA-256 and size of a local regular file, read as a stream.
pub(crate) fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    // Checked again on the open file: it may have been replaced since it was looked at.
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_is_one_line_whatever_its_path() {
        let problem = Problem {
            kind: ProblemKind::ExtraFile,
            path: "chat_messages/x\narchive ok: 0 problems".into(),
            detail: "1 bytes\r".into(),
        };
        assert_eq!(
            problem.to_string(),
            "extra file: chat_messages/x\\narchive ok: 0 problems: 1 bytes\\r"
        );
    }

    #[test]
    fn keys_name_their_table_and_partition() {
        assert_eq!(
            table_of("chat_messages/date=2024-01-02/part-a.parquet"),
            ("chat_messages", "2024-01-02")
        );
        assert_eq!(
            table_of("directory/users/date=2024-01-02/part-a.parquet"),
            ("directory/users", "2024-01-02")
        );
        assert_eq!(table_of("chat_messages_old/x.parquet"), ("", ""));
        assert_eq!(table_of("notes.txt"), ("", ""));
    }
}
