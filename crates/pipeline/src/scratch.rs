//! A run's scratch folder on local disk (ingest's day buckets, downloads being spooled),
//! and the reclaiming of those that killed runs left behind.
//!
//! A run removes its folder when it ends, but a killed one cannot, and its folder may
//! hold as much as its input. So each folder holds a lock file that its run keeps locked
//! (`flock`, which the kernel releases when the process dies, whatever killed it), and
//! every new folder first removes the folders beside it whose lock is free. A folder
//! appears under its final name only once locked, and its lock file is the last thing
//! removed from it, so a folder without one is abandoned too (its run died removing it).
//!
//! The parent must be local to the host, or on a filesystem whose locks hold across hosts:
//! a run elsewhere that cannot see a lock would take a live folder for abandoned. Where
//! files cannot be locked at all, the folder keeps a name no run reclaims, as before.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The names of scratch folders start so; nothing else in the parent is touched.
const PREFIX: &str = "teams-archiver-scratch-";
/// A folder is made under this name, then renamed once its lock is held (never reclaimed).
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
        if let Err(e) = remove_folder(&self.0) {
            tracing::warn!(path = %self.0.display(), "the scratch folder is left: {e}");
        }
    }
}

/// Removes `folder`: its contents, then its lock file, then the folder itself.
fn remove_folder(folder: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        if entry.file_name() == LOCK_FILE {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    match std::fs::remove_file(folder.join(LOCK_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::remove_dir(folder)
}

/// What [`Scratch::create`] removed of earlier runs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Reclaimed {
    folders: usize,
    bytes: u64,
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
        if let Err(e) = lock.try_lock() {
            tracing::warn!(
                path = %making.path().display(),
                "the scratch folder cannot be locked ({e}); if this run is killed, its folder stays"
            );
            let path = making.keep();
            return Ok(Scratch {
                folder: RemovedOnDrop(path),
                _lock: lock,
            });
        }
        let name = making
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(MAKING_PREFIX))
            .map(|suffix| format!("{PREFIX}{suffix}"))
            .ok_or_else(|| std::io::Error::other("a temporary folder without a name"))?;
        let path = parent.join(name);
        std::fs::rename(making.path(), &path)?;
        let _renamed = making.keep();
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
        // A link or another user's folder is not ours to empty, whatever its name.
        let folder = entry.path();
        let ours = std::fs::symlink_metadata(&folder).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.is_dir() && m.uid() == rustix::process::geteuid().as_raw()
        });
        if !ours {
            continue;
        }
        // Opened for writing: over NFS an exclusive lock needs it.
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .open(folder.join(LOCK_FILE));
        // Held until the folder is gone, so no other run reclaims it at the same time.
        let _held = match lock {
            // A live folder has its lock file from before it had this name to the end
            // of its removal: without one, its run died removing it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => continue,
            Ok(lock) => match lock.try_lock() {
                Ok(()) => Some(lock),
                Err(TryLockError::WouldBlock) => continue, // its run is alive
                Err(TryLockError::Error(e)) => {
                    tracing::warn!(path = %folder.display(), "a scratch folder's lock cannot be tried: {e}");
                    continue;
                }
            },
        };
        let bytes = folder_bytes(&folder);
        match remove_folder(&folder) {
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
        // A run that died removing its folder: the lock file went last, so it is gone.
        let half_removed = parent.path().join(format!("{PREFIX}half"));
        std::fs::create_dir(&half_removed).unwrap();
        std::fs::write(half_removed.join("bucket-2"), vec![1u8; 10]).unwrap();
        // A link named like a scratch folder is not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("keep"), b"x").unwrap();
        let link = parent.path().join(format!("{PREFIX}link"));
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        assert!(gone.exists());

        assert_eq!(
            reclaim(parent.path()),
            Reclaimed {
                folders: 2,
                bytes: 1010
            }
        );
        assert!(
            !gone.exists(),
            "the folder of a run that is gone is removed"
        );
        assert!(
            !half_removed.exists(),
            "a folder without its lock file is removed"
        );
        assert!(alive.path().exists(), "a live run's folder stays");
        assert!(unrelated.exists(), "only scratch folders are touched");
        assert!(
            elsewhere.path().join("keep").exists(),
            "links are not followed"
        );
        std::fs::remove_file(&link).unwrap();

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
