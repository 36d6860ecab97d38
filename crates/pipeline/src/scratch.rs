//! A run's scratch folder on local disk (ingest's day buckets, downloads being spooled),
//! and the reclaiming of those that killed runs left behind.
//!
//! A run removes its folder when it ends, but a killed one cannot, and its folder may
//! hold as much as its input. So each folder holds a lock file that its run keeps locked
//! (`flock`, which the kernel releases when the process dies, whatever killed it), and
//! every new folder first removes the folders beside it whose lock is free. A folder
//! appears under its final name only once locked, so none is ever taken for abandoned
//! while being made.

use std::fs::File;
use std::path::{Path, PathBuf};

/// The names of scratch folders start so; nothing else in the parent is touched.
const PREFIX: &str = "teams-archiver-scratch-";
/// A folder is made under this name, then renamed once its lock is held.
const MAKING_PREFIX: &str = ".teams-archiver-making-";
/// The lock file inside each folder.
const LOCK_FILE: &str = "lock";

/// A scratch folder, removed when dropped.
pub struct Scratch {
    // Fields drop in order: the folder is removed while its lock is still held.
    folder: RemovedOnDrop,
    /// Held for the life of the run; the kernel lets it go with the process.
    _lock: File,
}

struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), "the scratch folder is left: {e}");
        }
    }
}

/// What [`Scratch::create`] removed of earlier runs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    pub folders: usize,
    pub bytes: u64,
}

impl Scratch {
    /// A new folder in `parent` (the system's temporary folder if `None`), after removing
    /// the folders there of runs that are gone.
    pub fn create(parent: Option<&Path>) -> std::io::Result<Scratch> {
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let reclaimed = reclaim(&parent);
        if reclaimed.folders > 0 {
            tracing::info!(
                folders = reclaimed.folders,
                bytes = reclaimed.bytes,
                parent = %parent.display(),
                "removed the scratch folders of runs that ended without removing them"
            );
        }
        let making = tempfile::Builder::new()
            .prefix(MAKING_PREFIX)
            .tempdir_in(&parent)?;
        let lock = File::create(making.path().join(LOCK_FILE))?;
        lock.try_lock().map_err(std::io::Error::other)?;
        let name = making
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(MAKING_PREFIX))
            .map(|suffix| format!("{PREFIX}{suffix}"))
            .ok_or_else(|| std::io::Error::other("a temporary folder without a name"))?;
        let path = parent.join(name);
        std::fs::rename(making.keep(), &path)?;
        Ok(Scratch {
            folder: RemovedOnDrop(path),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.folder.0
    }
}

/// Removes the scratch folders in `parent` whose lock no process holds. What cannot be
/// read or removed is left, with a warning: reclaiming is housekeeping, not the run.
fn reclaim(parent: &Path) -> Reclaimed {
    let mut reclaimed = Reclaimed::default();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return reclaimed;
    };
    for entry in entries.flatten() {
        let is_scratch = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        if !is_scratch {
            continue;
        }
        let folder = entry.path();
        // No lock file: not a folder this code made, or one already being removed.
        let Ok(lock) = File::open(folder.join(LOCK_FILE)) else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue; // its run is alive
        }
        let bytes = folder_bytes(&folder);
        match std::fs::remove_dir_all(&folder) {
            Ok(()) => {
                reclaimed.folders += 1;
                reclaimed.bytes += bytes;
            }
            Err(e) => tracing::warn!(
                path = %folder.display(),
                "a scratch folder of an earlier run could not be removed: {e}"
            ),
        }
    }
    reclaimed
}

fn folder_bytes(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| if m.is_dir() { 0 } else { m.len() })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folder of a run that is gone: its lock let go, the folder left in place.
    fn abandoned(parent: &Path) -> PathBuf {
        let scratch = Scratch::create(Some(parent)).unwrap();
        std::fs::write(scratch.path().join("bucket-1"), vec![7u8; 1000]).unwrap();
        let Scratch {
            folder,
            _lock: lock,
        } = scratch;
        drop(lock);
        let path = folder.0.clone();
        std::mem::forget(folder);
        path
    }

    #[test]
    fn a_new_folder_removes_those_no_run_holds_and_keeps_those_one_does() {
        let parent = tempfile::tempdir().unwrap();
        let alive = Scratch::create(Some(parent.path())).unwrap();
        let gone = abandoned(parent.path());
        let unrelated = parent.path().join("teams-archiver-ingest-old");
        std::fs::create_dir(&unrelated).unwrap();
        assert!(gone.exists());

        assert_eq!(
            reclaim(parent.path()),
            Reclaimed {
                folders: 1,
                bytes: 1000
            }
        );
        assert!(
            !gone.exists(),
            "the folder of a run that is gone is removed"
        );
        assert!(alive.path().exists(), "a live run's folder stays");
        assert!(unrelated.exists(), "only scratch folders are touched");

        let path = alive.path().to_path_buf();
        drop(alive);
        assert!(!path.exists(), "a run removes its own folder");
        let names: Vec<_> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("teams-archiver-ingest-old")]
        );
    }
}
