//! The two JSON documents of the commit protocol: the write-ahead record (state store,
//! removed after each commit) and the commit record (archive, immutable).

use serde::{Deserialize, Serialize};

/// Where commit records live, relative to the archive root.
pub const COMMITS_DIR: &str = "_archive/commits";
/// The write-ahead record, relative to the state root.
pub(crate) const WRITE_AHEAD_KEY: &str = "write-ahead.json";

const COMMIT_FORMAT: &str = "teams-archiver/commit/1";
const WRITE_AHEAD_FORMAT: &str = "teams-archiver/write-ahead/1";

/// One published Parquet file, as listed in a commit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Key relative to the archive root, e.g. `chat_messages/date=2024-05-01/part-….parquet`.
    pub path: String,
    /// Table directory, e.g. `chat_messages`.
    pub table: String,
    /// Partition value, e.g. `2024-05-01`.
    pub partition: String,
    pub rows: u64,
    pub bytes: u64,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
}

/// An immutable record of the files one commit published (`_archive/commits/<id>.json`).
///
/// It holds no checkpoints, tokens or other secrets: only what a reader needs to know
/// which files exist and to verify them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRecord {
    pub format: String,
    pub commit_id: String,
    pub run_id: String,
    /// When the record was written (RFC 3339, UTC).
    pub committed_at: String,
    /// True when the record was completed from a write-ahead record after a crash.
    pub recovered: bool,
    pub files: Vec<FileRecord>,
}

impl CommitRecord {
    pub(crate) fn new(
        commit_id: &str,
        run_id: &str,
        recovered: bool,
        files: Vec<FileRecord>,
    ) -> Self {
        CommitRecord {
            format: COMMIT_FORMAT.to_string(),
            commit_id: commit_id.to_string(),
            run_id: run_id.to_string(),
            committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            recovered,
            files,
        }
    }
}

/// The key of a commit record, relative to the archive root.
pub(crate) fn commit_record_key(commit_id: &str) -> String {
    format!("{COMMITS_DIR}/{commit_id}.json")
}

/// The commit id in a commit record's key, if the key is one.
pub(crate) fn commit_id_of(key: &str) -> Option<&str> {
    key.strip_prefix(COMMITS_DIR)?
        .strip_prefix('/')?
        .strip_suffix(".json")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// A file a commit is about to write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlannedFile {
    pub path: String,
    pub table: String,
    pub partition: String,
}

/// What a commit is about to do, written to the state store before any file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WriteAhead {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_round_trip_through_keys() {
        let key = commit_record_key("20240501T000000.000000Z-run-000001");
        assert_eq!(
            commit_id_of(&key),
            Some("20240501T000000.000000Z-run-000001")
        );
        assert_eq!(commit_id_of("_archive/commits/.json"), None);
        assert_eq!(commit_id_of("_archive/commits/a/b.json"), None);
        assert_eq!(commit_id_of("_archive/runs/x.json"), None);
    }
}
