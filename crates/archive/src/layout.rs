//! Where every object of an archive and of its state location lives. Keys are relative
//! to the archive root (or the state root) and use `/` whatever the store.
//!
//! ```text
//! <archive>/<table folder>/date=YYYY-MM-DD/part-<hash>.parquet   data files
//! <archive>/_archive/commits/<commit id>.json                      commit records
//! <archive>/_archive/runs/<run id>.json                            run summaries
//! <archive>/_archive/signatures/<commits|runs>/<id>.json           their signatures, if signed
//! <archive>/blobs/sha256/<first 2 hex>/<sha256>                      content that messages point to
//! <state>/write-ahead.json                                         the commit in progress
//! <state>/checkpoints/<encoded scope>.json                         where each scope resumes
//! <state>/chain.json                                               the head of the writer's chain
//! ```
//!
//! The state location is `<archive>/_state` unless given; a shard K of N keeps its own,
//! `<state root>/shard-K-of-N`.

use chrono::Datelike;

/// Records written beside the data (never data).
pub const RECORDS_DIR: &str = "_archive";
/// Commit records, relative to the archive root.
pub const COMMITS_DIR: &str = "_archive/commits";
/// Run summaries, relative to the archive root.
pub const RUNS_DIR: &str = "_archive/runs";
/// Signatures of records, relative to the archive root: the record's key with
/// `_archive/` replaced by this folder.
pub const SIGNATURES_DIR: &str = "_archive/signatures";
/// Content-addressed bytes (images, files, attachments, MIME), relative to the archive
/// root: written once, named by the SHA-256 of their bytes.
pub const BLOBS_DIR: &str = "blobs/sha256";
/// The default state folder inside an archive.
pub const STATE_DIR: &str = "_state";
/// The write-ahead record, relative to the state root.
pub const WRITE_AHEAD_KEY: &str = "write-ahead.json";
/// Checkpoints, relative to the state root.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The head of the writer's chain of records, relative to the state root.
pub const CHAIN_KEY: &str = "chain.json";
/// Content Graph failed to serve, with how many runs in a row it did, relative to the
/// state root.
pub const CONTENT_RETRIES_KEY: &str = "content-retries.json";

/// `YYYY-MM-DD` for a day counted from 1970-01-01, if its year has four digits (the only
/// days a partition folder can name).
pub fn partition_value(days: i32) -> Option<String> {
    is_partition_day(days).then(|| {
        let date = chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
            .expect("a partition day is a date")
            .date_naive();
        date.format("%Y-%m-%d").to_string()
    })
}

/// Whether a day counted from 1970-01-01 can name a partition folder (see
/// [`partition_value`]), without writing its name: checked for every row written.
pub fn is_partition_day(days: i32) -> bool {
    chrono::DateTime::from_timestamp(i64::from(days) * 86_400, 0)
        .is_some_and(|date| (0..=9999).contains(&date.year()))
}

/// The folder of one partition of a table: `<folder>/<column>=YYYY-MM-DD`.
pub fn partition_dir(folder: &str, column: &str, days: i32) -> Option<String> {
    Some(format!("{folder}/{column}={}", partition_value(days)?))
}

/// A data file's key, named by `hash` (derived from the rows it holds).
pub fn data_file_key(partition_dir: &str, hash: &str) -> String {
    format!("{partition_dir}/part-{hash}.parquet")
}

/// The key of a commit record.
pub fn commit_record_key(commit_id: &str) -> String {
    format!("{COMMITS_DIR}/{commit_id}.json")
}

/// The commit id in a commit record's key, if the key is one.
pub fn commit_id_of(key: &str) -> Option<&str> {
    record_id(key, COMMITS_DIR)
}

/// The key of a run summary.
pub fn run_summary_key(run_id: &str) -> String {
    format!("{RUNS_DIR}/{run_id}.json")
}

/// The run id in a run summary's key, if the key is one.
pub fn run_id_of(key: &str) -> Option<&str> {
    record_id(key, RUNS_DIR)
}

/// The key of a record's signature (`_archive/commits/c.json` is signed in
/// `_archive/signatures/commits/c.json`).
pub fn signature_key(record_key: &str) -> String {
    let below = record_key
        .strip_prefix(RECORDS_DIR)
        .map_or(record_key, |rest| rest.trim_start_matches('/'));
    format!("{SIGNATURES_DIR}/{below}")
}

/// The record a signature's key belongs to, if the key is one.
pub fn signed_record_of(key: &str) -> Option<String> {
    let record = format!(
        "{RECORDS_DIR}/{}",
        key.strip_prefix(SIGNATURES_DIR)?.strip_prefix('/')?
    );
    (commit_id_of(&record).is_some() || run_id_of(&record).is_some()).then_some(record)
}

fn record_id<'a>(key: &'a str, dir: &str) -> Option<&'a str> {
    key.strip_prefix(dir)?
        .strip_prefix('/')?
        .strip_suffix(".json")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The key of the blob whose bytes hash to `sha256` (64 lowercase hex), if it is one.
pub fn blob_key(sha256: &str) -> Option<String> {
    is_sha256_hex(sha256).then(|| format!("{BLOBS_DIR}/{}/{sha256}", &sha256[..2]))
}

/// The SHA-256 a blob's key names, if the key is a blob's.
pub fn blob_of_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(BLOBS_DIR)?.strip_prefix('/')?;
    let (prefix, sha256) = rest.split_once('/')?;
    (is_sha256_hex(sha256) && sha256.starts_with(prefix) && prefix.len() == 2).then_some(sha256)
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a key belongs to the records or the state rather than to a table.
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(&format!("{RECORDS_DIR}/")) || key.starts_with(&format!("{STATE_DIR}/"))
}

/// The default state location of an archive (a path or URL): `<archive>/_state`.
pub fn default_state(archive: &str) -> String {
    format!("{}/{STATE_DIR}", archive.trim_end_matches('/'))
}

/// Worker K of N, for `--shard K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1..=count.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The folder a shard keeps its own state in, below the state root.
    pub fn state_folder(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected K/N such as 1/4, got {s:?}"))?;
        let index: u32 = k
            .trim()
            .parse()
            .map_err(|_| format!("K in {s:?} is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("N in {s:?} is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("need 1 <= K <= N, got {s:?}"));
        }
        Ok(Shard { index, count })
    }
}

/// The state location of a run: `state` (or the archive's default) as the root, and a
/// shard's own folder below it, so that shards never share a write-ahead record or an
/// index however the root was given.
pub fn state_location(archive: &str, state: Option<&str>, shard: Option<Shard>) -> String {
    let root = state.map_or_else(
        || default_state(archive),
        |s| s.trim_end_matches('/').to_string(),
    );
    match shard {
        Some(shard) => format!("{root}/{}", shard.state_folder()),
        None => root,
    }
}

/// The key of a scope's checkpoint, relative to the state root.
pub fn checkpoint_key(scope: &str) -> String {
    format!("{CHECKPOINTS_DIR}/{}.json", encode_scope(scope))
}

/// Any scope name as one safe object key segment: ASCII letters, digits, `-` and `_`
/// stay as they are, every other byte becomes `~` and two uppercase hex digits
/// (`chats/u1` becomes `chats~2Fu1`).
pub fn encode_scope(scope: &str) -> String {
    let mut encoded = String::with_capacity(scope.len());
    for byte in scope.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("~{byte:02X}"));
        }
    }
    if encoded.is_empty() {
        // The empty scope still needs a non-empty key.
        encoded.push('~');
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_name_their_hash_and_nothing_else() {
        let sha = "ab".repeat(32);
        let key = blob_key(&sha).unwrap();
        assert_eq!(key, format!("blobs/sha256/ab/{sha}"));
        assert_eq!(blob_of_key(&key), Some(sha.as_str()));
        assert_eq!(blob_key("AB"), None);
        assert_eq!(blob_key(&"AB".repeat(32)), None);
        assert_eq!(blob_of_key(&format!("blobs/sha256/cd/{sha}")), None);
        assert_eq!(blob_of_key(&format!("blobs/sha256/ab/{sha}.tmp")), None);
    }

    #[test]
    fn partition_values_are_iso_days_within_four_digit_years() {
        assert_eq!(partition_value(0).as_deref(), Some("1970-01-01"));
        assert_eq!(partition_value(19_723).as_deref(), Some("2024-01-01"));
        assert_eq!(partition_value(-719_528).as_deref(), Some("0000-01-01"));
        assert_eq!(partition_value(-719_529), None);
        assert_eq!(partition_value(2_932_897), None); // 10000-01-01
        for days in [
            i32::MIN,
            -719_529,
            -719_528,
            0,
            2_932_896,
            2_932_897,
            i32::MAX,
        ] {
            assert_eq!(
                is_partition_day(days),
                partition_value(days).is_some(),
                "{days}"
            );
        }
        assert_eq!(
            partition_dir("directory/users", "date", 19_723).as_deref(),
            Some("directory/users/date=2024-01-01")
        );
    }

    #[test]
    fn record_ids_round_trip_through_keys() {
        let key = commit_record_key("20240501T000000.000000Z-run-000001");
        assert_eq!(
            commit_id_of(&key),
            Some("20240501T000000.000000Z-run-000001")
        );
        assert_eq!(commit_id_of("_archive/commits/.json"), None);
        assert_eq!(commit_id_of("_archive/commits/a/b.json"), None);
        assert_eq!(commit_id_of("_archive/runs/x.json"), None);
        assert_eq!(run_id_of(&run_summary_key("r1")), Some("r1"));
        let signature = signature_key(&key);
        assert_eq!(
            signature,
            "_archive/signatures/commits/20240501T000000.000000Z-run-000001.json"
        );
        assert_eq!(signed_record_of(&signature), Some(key.clone()));
        assert_eq!(signed_record_of("_archive/signatures/other/x.json"), None);
        assert_eq!(signed_record_of("_archive/commits/x.json"), None);
        assert!(is_reserved(&key));
        assert!(!is_reserved("chat_messages/date=2024-01-01/part-a.parquet"));
    }

    #[test]
    fn scope_names_become_single_safe_segments() {
        assert_eq!(encode_scope("chats/u1"), "chats~2Fu1");
        assert_eq!(encode_scope(".."), "~2E~2E");
        assert_eq!(encode_scope("a b~"), "a~20b~7E");
        assert_eq!(encode_scope("é"), "~C3~A9");
        assert_eq!(encode_scope(""), "~");
        assert_ne!(encode_scope("a/b"), encode_scope("a~2Fb"));
        assert_eq!(checkpoint_key("chats/u1"), "checkpoints/chats~2Fu1.json");
    }

    #[test]
    fn each_shard_keeps_its_own_state_below_the_root() {
        let shard = |s: &str| s.parse::<Shard>().unwrap();
        assert_eq!(state_location("s3://b/a/", None, None), "s3://b/a/_state");
        assert_eq!(
            state_location("out", Some("/var/lib/ta/"), Some(shard("2/3"))),
            "/var/lib/ta/shard-2-of-3"
        );
        assert_eq!(
            state_location("out", None, Some(shard("1/2"))),
            "out/_state/shard-1-of-2"
        );
        assert!("0/2".parse::<Shard>().is_err());
        assert!("3/2".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }
}
