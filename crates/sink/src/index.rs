//! The version index: the version keys of every committed row, per table, in an
//! embedded on-disk store (redb), so memory does not grow with the archive.
//!
//! It is a cache of the archive and nothing more: it records which commit records it
//! has applied, and every key it holds was read from a file those records list. Lost,
//! stale or copied from elsewhere, it is rebuilt or caught up from the archive's commit
//! records (see `ArchiveWriter::open`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::error::SinkError;

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const COMMITS: TableDefinition<&str, ()> = TableDefinition::new("commits_applied");
const META_IDENTITY: &str = "identity";

/// redb's page cache (its default is 1 GiB, which a long run would fill). Keys are
/// hashes, so lookups land on random pages and a cache hits little; the operating
/// system's file cache serves them instead. At 16 MiB the cache and its bookkeeping
/// cost a 2,000-user sync 17 MiB more peak memory than at 2 MiB, and no time.
const INDEX_CACHE_BYTES: usize = 2 * 1024 * 1024;
/// The index file's name inside its directory.
pub(crate) const INDEX_FILE: &str = "version-index.redb";

pub(crate) struct VersionIndex {
    db: Database,
    path: PathBuf,
    tables: Vec<String>,
}

/// Why the index file could not be opened, and whether the file itself is damaged.
struct OpenError {
    damaged: bool,
    error: SinkError,
}

/// A read view of one table's keys.
pub(crate) struct IndexReader {
    table: Option<redb::ReadOnlyTable<&'static [u8], ()>>,
    path: PathBuf,
}

fn keys_table(table: &str) -> String {
    format!("keys/{table}")
}

impl VersionIndex {
    /// Opens (or creates) the index in `dir` for the archive and tables named by
    /// `identity`. An index built for anything else is emptied, to be rebuilt from the
    /// archive; the second value says whether that happened.
    pub fn open(
        dir: &Path,
        identity: &str,
        tables: &[&str],
    ) -> Result<(VersionIndex, bool), SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            operation: "create index directory",
            path: dir.display().to_string(),
            source,
        })?;
        // Keys are content hashes, but which versions exist is the archive's business.
        if let Err(e) = crate::location::private_dir(dir) {
            tracing::warn!("{e}");
        }
        let path = dir.join(INDEX_FILE);
        let tables: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
        let (index, stored) = match Self::open_file(&path, tables.clone()) {
            Ok(opened) => opened,
            // A cache: a damaged one is replaced, and the new one is rebuilt.
            Err(e) if e.damaged => {
                tracing::warn!(index = %path.display(), "the version index is damaged ({}); it is replaced and rebuilt from the archive", e.error);
                std::fs::remove_file(&path)
                    .map_err(|io| SinkError::index(&path, "remove the damaged index", io))?;
                let (index, _) = Self::open_file(&path, tables).map_err(|e| e.error)?;
                (index, Some(String::new()))
            }
            Err(e) => return Err(e.error),
        };
        let emptied = stored.as_deref() != Some(identity);
        if emptied {
            index.reset(identity)?;
        }
        Ok((index, emptied && stored.is_some()))
    }

    /// Opens or creates the index file; returns the identity it is labelled with.
    fn open_file(
        path: &Path,
        tables: Vec<String>,
    ) -> Result<(VersionIndex, Option<String>), OpenError> {
        let db = Database::builder()
            .set_cache_size(INDEX_CACHE_BYTES)
            .create(path)
            .map_err(|e| {
                let damaged = matches!(
                    e,
                    redb::DatabaseError::Storage(redb::StorageError::Corrupted(_))
                );
                let hint = if matches!(e, redb::DatabaseError::DatabaseAlreadyOpen) {
                    " (another writer is using this state; one writer per state location)"
                } else {
                    ""
                };
                OpenError {
                    damaged,
                    error: SinkError::index(path, "open", format!("{e}{hint}")),
                }
            })?;
        if let Err(e) = crate::location::private_file(path) {
            tracing::warn!("{e}");
        }
        let index = VersionIndex {
            db,
            path: path.to_path_buf(),
            tables,
        };
        let stored = index.identity().map_err(|error| OpenError {
            damaged: true,
            error,
        })?;
        Ok((index, stored))
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, operation: &'static str, e: impl std::fmt::Display) -> SinkError {
        SinkError::index(&self.path, operation, e)
    }

    fn identity(&self) -> Result<Option<String>, SinkError> {
        let txn = self.db.begin_read().map_err(|e| self.err("read", e))?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err("read", e)),
        };
        let value = meta.get(META_IDENTITY).map_err(|e| self.err("read", e))?;
        Ok(value.map(|v| v.value().to_string()))
    }

    /// Empties the index and labels it with `identity`.
    pub fn reset(&self, identity: &str) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(|e| self.err("reset", e))?;
        {
            let existing: Vec<_> = txn
                .list_tables()
                .map_err(|e| self.err("reset", e))?
                .collect();
            for table in existing {
                txn.delete_table(table).map_err(|e| self.err("reset", e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.err("reset", e))?;
            meta.insert(META_IDENTITY, identity)
                .map_err(|e| self.err("reset", e))?;
            txn.open_table(COMMITS).map_err(|e| self.err("reset", e))?;
            for table in &self.tables {
                let name = keys_table(table);
                txn.open_table(TableDefinition::<&[u8], ()>::new(&name))
                    .map_err(|e| self.err("reset", e))?;
            }
        }
        txn.commit().map_err(|e| self.err("reset", e))
    }

    /// The commit records already applied.
    pub fn applied_commits(&self) -> Result<HashSet<String>, SinkError> {
        let txn = self.db.begin_read().map_err(|e| self.err("read", e))?;
        let commits = txn.open_table(COMMITS).map_err(|e| self.err("read", e))?;
        let mut applied = HashSet::new();
        for entry in commits.iter().map_err(|e| self.err("read", e))? {
            let (id, _) = entry.map_err(|e| self.err("read", e))?;
            applied.insert(id.value().to_string());
        }
        Ok(applied)
    }

    /// A snapshot reader for `table`'s keys.
    pub fn reader(&self, table: &str) -> Result<IndexReader, SinkError> {
        let txn = self.db.begin_read().map_err(|e| self.err("read", e))?;
        let name = keys_table(table);
        let table = match txn.open_table(TableDefinition::<&'static [u8], ()>::new(&name)) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.err("read", e)),
        };
        Ok(IndexReader {
            table,
            path: self.path.clone(),
        })
    }

    /// Records, in one durable transaction, that commit `commit_id` was applied and
    /// holds `keys` (table, key).
    pub fn apply_commit<'k>(
        &self,
        commit_id: &str,
        keys: impl IntoIterator<Item = (&'k str, &'k [u8])>,
    ) -> Result<u64, SinkError> {
        self.write_keys(Some(commit_id), keys)
    }

    /// Adds `keys` without marking any commit applied: part of a commit whose other
    /// files could not be read, which is to be tried again on the next open.
    pub fn add_keys<'k>(
        &self,
        keys: impl IntoIterator<Item = (&'k str, &'k [u8])>,
    ) -> Result<u64, SinkError> {
        self.write_keys(None, keys)
    }

    fn write_keys<'k>(
        &self,
        commit_id: Option<&str>,
        keys: impl IntoIterator<Item = (&'k str, &'k [u8])>,
    ) -> Result<u64, SinkError> {
        // In key order, each insert lands next to the last one: the B-tree pages it
        // touches stay in the cache.
        let mut keys: Vec<(&str, &[u8])> = keys.into_iter().collect();
        keys.sort_unstable();
        let txn = self.db.begin_write().map_err(|e| self.err("write", e))?;
        let mut added = 0;
        {
            let mut tables = std::collections::HashMap::new();
            for (table, key) in keys {
                if !tables.contains_key(table) {
                    let name = keys_table(table);
                    let opened = txn
                        .open_table(TableDefinition::<&[u8], ()>::new(&name))
                        .map_err(|e| self.err("write", e))?;
                    tables.insert(table, opened);
                }
                let opened = tables.get_mut(table).expect("opened above");
                if opened
                    .insert(key, ())
                    .map_err(|e| self.err("write", e))?
                    .is_none()
                {
                    added += 1;
                }
            }
            if let Some(commit_id) = commit_id {
                let mut commits = txn.open_table(COMMITS).map_err(|e| self.err("write", e))?;
                commits
                    .insert(commit_id, ())
                    .map_err(|e| self.err("write", e))?;
            }
        }
        txn.commit().map_err(|e| self.err("commit", e))?;
        Ok(added)
    }
}

impl IndexReader {
    pub fn contains(&self, key: &[u8]) -> Result<bool, SinkError> {
        let Some(table) = &self.table else {
            return Ok(false);
        };
        table
            .get(key)
            .map(|found| found.is_some())
            .map_err(|e| SinkError::index(&self.path, "read", e))
    }
}
