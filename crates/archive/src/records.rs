//! The JSON documents of an archive and its state location. Each is written and read by
//! these types only; a document that does not parse as its type is reported as such, never
//! half-read. Every document names its `format` and version.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `format` of commit records.
pub const COMMIT_FORMAT: &str = "teams-archiver/commit/1";
/// `format` of the write-ahead record.
pub const WRITE_AHEAD_FORMAT: &str = "teams-archiver/write-ahead/1";
/// `format` of run summaries.
pub const RUN_FORMAT: &str = "teams-archiver/run/3";
/// `format` of a writer's chain head, kept in its state location.
pub const CHAIN_FORMAT: &str = "teams-archiver/chain/1";

/// Where a record stands in its writer's chain. Each writer (each state location) numbers
/// its commit records and run summaries 1, 2, 3, ... and names in each the SHA-256 of the
/// exact bytes of the one before, so changing, removing or inserting any record breaks
/// every later link, and rewriting them all changes the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainLink {
    /// The writer's id, made when its state location was first used.
    pub writer: String,
    /// 1 for the writer's first record.
    pub sequence: u64,
    /// SHA-256 (lowercase hex) of the bytes of record `sequence - 1`; none for the first.
    pub previous_sha256: Option<String>,
}

/// The last record a writer chained (`<state>/chain.json`): where its next record links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub format: String,
    pub writer: String,
    /// 0 before the writer's first record.
    pub sequence: u64,
    /// SHA-256 of the bytes of record `sequence`.
    pub sha256: Option<String>,
    /// The record being written, saved before it is: if the process stops before the
    /// head moves, the next writer finds it and moves the head, or drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRecord>,
}

/// A record a writer is about to write as the next of its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRecord {
    /// Its key in the archive.
    pub key: String,
    pub link: ChainLink,
    pub sha256: String,
}

impl ChainHead {
    /// A new writer's empty chain.
    pub fn new(writer: &str) -> Self {
        ChainHead {
            format: CHAIN_FORMAT.to_string(),
            writer: writer.to_string(),
            sequence: 0,
            sha256: None,
            pending: None,
        }
    }

    /// The link the next record carries.
    pub fn next_link(&self) -> ChainLink {
        ChainLink {
            writer: self.writer.clone(),
            sequence: self.sequence + 1,
            previous_sha256: self.sha256.clone(),
        }
    }

    /// The head after a record with `link` whose bytes hash to `sha256` (a record found
    /// already written, as after a crash, counts the same; an older one changes nothing).
    pub fn advance(&mut self, link: &ChainLink, sha256: String) {
        if link.writer == self.writer && link.sequence > self.sequence {
            self.sequence = link.sequence;
            self.sha256 = Some(sha256);
        }
    }
}

/// SHA-256 of a record's bytes as written, lowercase hex: what the next link names.
pub fn record_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One published data file, as commit records and run summaries list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// Key relative to the archive root, e.g. `chat_messages/date=2024-05-01/part-….parquet`.
    pub path: String,
    /// Table folder, e.g. `chat_messages`.
    pub table: String,
    /// Partition value, e.g. `2024-05-01`.
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// The immutable record of the files one commit published
/// (`_archive/commits/<commit id>.json`). It holds no checkpoint, token or other secret:
/// only what a reader needs to know which files exist and to verify them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRecord {
    pub format: String,
    pub commit_id: String,
    pub run_id: String,
    /// When the record was written (RFC 3339, UTC).
    pub committed_at: String,
    /// True when the record was completed from a write-ahead record after a crash.
    pub recovered: bool,
    pub files: Vec<FileRecord>,
    /// Its place in the writer's chain (`verify` reports a record without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainLink>,
}

impl CommitRecord {
    pub fn new(
        commit_id: &str,
        run_id: &str,
        recovered: bool,
        files: Vec<FileRecord>,
        chain: ChainLink,
    ) -> Self {
        CommitRecord {
            format: COMMIT_FORMAT.to_string(),
            commit_id: commit_id.to_string(),
            run_id: run_id.to_string(),
            committed_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            recovered,
            files,
            chain: Some(chain),
        }
    }
}

/// A file a commit is about to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedFile {
    pub path: String,
    pub table: String,
    pub partition: String,
}

/// What a commit is about to do, written to the state location before any file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteAhead {
    pub format: String,
    pub commit_id: String,
    pub run_id: String,
    pub files: Vec<PlannedFile>,
}

impl WriteAhead {
    pub fn new(commit_id: &str, run_id: &str, files: Vec<PlannedFile>) -> Self {
        WriteAhead {
            format: WRITE_AHEAD_FORMAT.to_string(),
            commit_id: commit_id.to_string(),
            run_id: run_id.to_string(),
            files,
        }
    }
}

/// Which command a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Sync,
    Ingest,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Sync => "sync",
            Command::Ingest => "ingest",
        }
    }
}

/// What a finished command means for whoever started it; each has its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Everything asked for was archived (or exported, or verified); skipped scopes,
    /// each with its reason, do not change that.
    Success,
    /// The command could not run: bad credentials, unreachable archive, bad configuration.
    Fatal,
    /// The command line itself was wrong.
    Usage,
    /// Some scopes, files or items failed; everything else was archived and committed.
    /// Rerunning retries only what failed.
    PartialFailure,
    /// `verify` (or an export's check) found something that does not match its record.
    Mismatch,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Fatal => 1,
            Outcome::Usage => 2,
            Outcome::PartialFailure => 3,
            Outcome::Mismatch => 4,
        }
    }
}

/// Counts of one table in one run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableTotals {
    /// Rows handed to the writer.
    pub rows_seen: u64,
    /// Rows that were new to the archive.
    pub rows_new: u64,
    /// Rows already archived (or seen earlier in this run), not stored again.
    pub rows_duplicate: u64,
    pub files: u64,
    pub bytes: u64,
}

/// What a run wrote. The files themselves are listed by the commit records that
/// published them, so a summary stays small however much a run writes.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunTotals {
    /// Per table folder.
    pub tables: BTreeMap<String, TableTotals>,
    /// Commits that published files (each one write-ahead record, files, commit record).
    pub commits: u64,
    /// Distinct (table, partition) pairs the run wrote files to.
    pub partitions: u64,
    /// The pairs counted in `partitions`, while the run goes (as many as the archive has
    /// partitions, not files).
    #[serde(skip)]
    written_partitions: std::collections::BTreeSet<(String, String)>,
}

impl PartialEq for RunTotals {
    fn eq(&self, other: &Self) -> bool {
        self.tables == other.tables
            && self.commits == other.commits
            && self.partitions == other.partitions
    }
}

impl Eq for RunTotals {}

impl RunTotals {
    /// Rows a commit made durable.
    pub fn add_files(&mut self, files: &[FileRecord]) {
        if !files.is_empty() {
            self.commits += 1;
        }
        for file in files {
            let t = self.tables.entry(file.table.clone()).or_default();
            t.files += 1;
            t.bytes += file.bytes;
            if self
                .written_partitions
                .insert((file.table.clone(), file.partition.clone()))
            {
                self.partitions += 1;
            }
        }
    }

    /// Files the run published.
    pub fn files(&self) -> u64 {
        self.tables.values().map(|t| t.files).sum()
    }

    pub fn rows_new(&self) -> u64 {
        self.tables.values().map(|t| t.rows_new).sum()
    }

    pub fn rows_duplicate(&self) -> u64 {
        self.tables.values().map(|t| t.rows_duplicate).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.tables.values().map(|t| t.bytes).sum()
    }
}

/// Why a scope was not archived although nothing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The user has no Exchange Online mailbox Graph can read (unlicensed, guest,
    /// shared, on-premises): `MailboxNotEnabledForRESTAPI`.
    NoMailbox,
    /// The user has no Teams licence (or Teams is disabled for them).
    NoTeamsLicence,
    /// The user was deleted since discovery listed them.
    UserDeleted,
    /// The team was deleted (or archived away) since discovery listed it.
    TeamDeleted,
    /// The channel was deleted since discovery listed it.
    ChannelDeleted,
    /// The channel is shared from another tenant; this app has no access to it.
    SharedFromOtherTenant,
    /// The mail folder was deleted since discovery listed it.
    FolderDeleted,
}

impl SkipReason {
    /// A sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::NoMailbox => "the user has no mailbox Graph can read",
            SkipReason::NoTeamsLicence => "the user has no Teams licence",
            SkipReason::UserDeleted => "the user was deleted",
            SkipReason::TeamDeleted => "the team was deleted",
            SkipReason::ChannelDeleted => "the channel was deleted",
            SkipReason::SharedFromOtherTenant => {
                "the channel is shared from another tenant and this app cannot read it"
            }
            SkipReason::FolderDeleted => "the mail folder was deleted",
        }
    }
}

/// How a scope's part of a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ScopeOutcome {
    /// Every change up to the end of its round is archived.
    Archived,
    /// Not archived, for a reason that is not a fault; its checkpoint is kept.
    Skipped { reason: SkipReason },
    /// It stopped on an error; what was archived before it stays, and the next run
    /// resumes from its last checkpoint.
    Failed { error: String },
}

/// One scope's part of a run (no links or tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeReport {
    /// The scope for people, e.g. `chats of user 6f0c…`.
    pub scope: String,
    /// The scope's checkpoint name, e.g. `chats/6f0c…`.
    pub key: String,
    pub outcome: ScopeOutcome,
    pub pages: u64,
    pub items: u64,
    pub resyncs: u32,
    pub rows_new: u64,
    pub rows_duplicate: u64,
    /// Where the scope stands now, e.g. "up to date (delta link saved)".
    pub state: String,
}

impl ScopeReport {
    /// A scope's report before any page: nothing counted yet.
    pub fn new(scope: impl Into<String>, key: impl Into<String>, outcome: ScopeOutcome) -> Self {
        ScopeReport {
            scope: scope.into(),
            key: key.into(),
            outcome,
            pages: 0,
            items: 0,
            resyncs: 0,
            rows_new: 0,
            rows_duplicate: 0,
            state: String::new(),
        }
    }
}

/// What a run asked of Graph and how it answered.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphRequests {
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub waited_seconds: f64,
}

/// What became of the pieces of content (images, files, attachments) a run met.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentTotals {
    /// Pieces per status (`ok`, `not_found`, `forbidden`, ...), as `message_contents` says.
    pub pieces: BTreeMap<transform::ContentStatus, u64>,
    /// Blobs this run stored (new bytes).
    pub blobs_created: u64,
    /// Pieces whose bytes were already stored (the same file or image again).
    pub blobs_present: u64,
    /// Bytes of the blobs this run stored.
    pub bytes_stored: u64,
}

impl ContentTotals {
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Pieces whose bytes are not in the archive, for any reason.
    pub fn unavailable(&self) -> u64 {
        self.pieces
            .iter()
            .filter(|(s, _)| {
                !matches!(
                    s,
                    transform::ContentStatus::Ok | transform::ContentStatus::Reference
                )
            })
            .map(|(_, n)| n)
            .sum()
    }
}

/// The record a run leaves in the archive (`_archive/runs/<run id>.json`): what it did,
/// which files it wrote, what failed and what it skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSummary {
    pub format: String,
    pub run_id: String,
    pub command: Command,
    /// The archiver's version.
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub totals: RunTotals,
    /// Failures, each naming its scope, file or item.
    pub errors: Vec<String>,
    /// Per scope, for `sync`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<ScopeReport>,
    /// For `sync`: requests to Graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphRequests>,
    /// For `sync`: what became of the content messages point to.
    #[serde(default, skip_serializing_if = "ContentTotals::is_empty")]
    pub content: ContentTotals,
    /// Highest resident memory of the process during the run, in bytes, where the
    /// platform tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Its place in the writer's chain, set as it is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainLink>,
}

impl RunSummary {
    pub fn new(run_id: &str, command: Command, started_at: DateTime<Utc>) -> Self {
        RunSummary {
            format: RUN_FORMAT.to_string(),
            run_id: run_id.to_string(),
            command,
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            finished_at: started_at,
            outcome: Outcome::Success,
            exit_code: 0,
            totals: RunTotals::default(),
            errors: Vec::new(),
            scopes: Vec::new(),
            graph: None,
            content: ContentTotals::default(),
            peak_rss_bytes: None,
            chain: None,
        }
    }

    /// Lists a run's errors: the first [`RECORDED_ERRORS`] one by one, then a line
    /// counting the rest and those the run already stopped listing (`not_listed`).
    pub fn record_errors(&mut self, mut errors: Vec<String>, not_listed: usize) {
        let beyond = errors.len().saturating_sub(RECORDED_ERRORS) + not_listed;
        errors.truncate(RECORDED_ERRORS);
        if beyond > 0 {
            errors.push(format!(
                "... and {beyond} more errors, not listed one by one (a run lists at most {RECORDED_ERRORS})"
            ));
        }
        self.errors = errors;
    }

    /// Sets the outcome (and its exit code) and the finish time.
    pub fn finish(&mut self, outcome: Outcome) {
        self.outcome = outcome;
        self.exit_code = outcome.code();
        self.finished_at = Utc::now();
    }

    /// Scopes skipped, with their reasons.
    pub fn skipped(&self) -> impl Iterator<Item = (&ScopeReport, SkipReason)> {
        self.scopes.iter().filter_map(|s| match s.outcome {
            ScopeOutcome::Skipped { reason } => Some((s, reason)),
            _ => None,
        })
    }
}

/// How a file compares with what the archive's records say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileCheck {
    /// Its SHA-256 is the recorded one.
    Match,
    /// Its SHA-256 differs from the recorded one.
    Mismatch,
    /// No record lists it.
    Unrecorded,
}

/// A document that is not what it should be: not JSON of its type, or of another format.
#[derive(Debug, thiserror::Error)]
#[error("not a readable {kind}: {reason}")]
pub struct RecordError {
    pub kind: &'static str,
    pub reason: String,
}

/// The most errors a run summary lists one by one.
pub const RECORDED_ERRORS: usize = 10_000;

/// The most bytes a record may take. Records list files and at most [`RECORDED_ERRORS`]
/// errors, so any real one is far smaller; a larger object is refused unread, so that a
/// planted one cannot exhaust a reader's memory.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// A record type with a `format` field.
pub trait Record: serde::de::DeserializeOwned + Serialize {
    /// What the document is, for messages ("commit record").
    const KIND: &'static str;
    /// The format (and version) this code writes and reads.
    const FORMAT: &'static str;

    fn format(&self) -> &str;

    /// Refuses an object too large to be a record (see [`MAX_RECORD_BYTES`]) before it
    /// is read.
    fn check_size(bytes: u64) -> Result<(), RecordError> {
        if bytes > MAX_RECORD_BYTES {
            return Err(RecordError {
                kind: Self::KIND,
                reason: format!(
                    "it is {bytes} bytes, more than any record takes ({MAX_RECORD_BYTES}); not read"
                ),
            });
        }
        Ok(())
    }

    /// Parses a document, refusing other formats and versions by name.
    fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        let record: Self = serde_json::from_slice(bytes).map_err(|e| RecordError {
            kind: Self::KIND,
            reason: e.to_string(),
        })?;
        if record.format() != Self::FORMAT {
            return Err(RecordError {
                kind: Self::KIND,
                reason: format!(
                    "its format is {:?}; this version reads {:?}",
                    record.format(),
                    Self::FORMAT
                ),
            });
        }
        Ok(record)
    }

    /// The document as written to the store.
    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("records are plain data")
    }
}

impl Record for CommitRecord {
    const KIND: &'static str = "commit record";
    const FORMAT: &'static str = COMMIT_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

impl Record for WriteAhead {
    const KIND: &'static str = "write-ahead record";
    const FORMAT: &'static str = WRITE_AHEAD_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

impl Record for ChainHead {
    const KIND: &'static str = "chain head";
    const FORMAT: &'static str = CHAIN_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

impl Record for RunSummary {
    const KIND: &'static str = "run summary";
    const FORMAT: &'static str = RUN_FORMAT;
    fn format(&self) -> &str {
        &self.format
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> FileRecord {
        FileRecord {
            path: "chat_messages/date=2024-05-01/part-a.parquet".into(),
            table: "chat_messages".into(),
            partition: "2024-05-01".into(),
            rows: 3,
            bytes: 1000,
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn a_run_lists_its_first_errors_and_counts_the_rest() {
        let mut summary = RunSummary::new("r1", Command::Ingest, Utc::now());
        summary.record_errors(vec!["a".into(), "b".into()], 0);
        assert_eq!(summary.errors, ["a", "b"]);

        let many: Vec<String> = (0..RECORDED_ERRORS + 5).map(|i| i.to_string()).collect();
        summary.record_errors(many, 7);
        assert_eq!(summary.errors.len(), RECORDED_ERRORS + 1);
        assert_eq!(
            summary.errors[RECORDED_ERRORS - 1],
            (RECORDED_ERRORS - 1).to_string()
        );
        assert!(
            summary.errors[RECORDED_ERRORS].starts_with("... and 12 more errors"),
            "{}",
            summary.errors[RECORDED_ERRORS]
        );
    }

    #[test]
    fn an_object_too_large_to_be_a_record_is_refused_by_its_size() {
        assert!(RunSummary::check_size(MAX_RECORD_BYTES).is_ok());
        let refused = CommitRecord::check_size(MAX_RECORD_BYTES + 1).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("not a readable commit record: it is"),
            "{refused}"
        );
    }

    #[test]
    fn records_round_trip_and_refuse_other_formats() {
        let commit = CommitRecord::new(
            "c1",
            "r1",
            false,
            vec![file()],
            ChainHead::new("w").next_link(),
        );
        assert_eq!(CommitRecord::from_json(&commit.to_json()).unwrap(), commit);

        let mut summary = RunSummary::new("r1", Command::Sync, Utc::now());
        summary.totals.add_files(&[file()]);
        summary.scopes.push(ScopeReport::new(
            "chats of user u",
            "chats/u",
            ScopeOutcome::Skipped {
                reason: SkipReason::NoMailbox,
            },
        ));
        summary.finish(Outcome::Success);
        let json = summary.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains(r#""status": "skipped""#), "{text}");
        assert!(text.contains(r#""reason": "no_mailbox""#), "{text}");
        assert!(text.contains(r#""outcome": "success""#), "{text}");
        assert_eq!(RunSummary::from_json(&json).unwrap(), summary);
        assert_eq!(summary.skipped().count(), 1);

        // A renamed field or another version is an error that says so, not a default.
        let renamed = text.replace("\"totals\"", "\"sums\"");
        let error = RunSummary::from_json(renamed.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("run summary"), "{error}");
        let older = text.replace(RUN_FORMAT, "teams-archiver/run/1");
        let error = RunSummary::from_json(older.as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("teams-archiver/run/1"),
            "{error}"
        );
        assert!(CommitRecord::from_json(b"{}").is_err());
    }

    #[test]
    fn exit_codes_are_fixed() {
        let codes: Vec<u8> = [
            Outcome::Success,
            Outcome::Fatal,
            Outcome::Usage,
            Outcome::PartialFailure,
            Outcome::Mismatch,
        ]
        .iter()
        .map(|o| o.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }
}
