//! Live counts of a run, for whoever displays progress (the command line draws them;
//! the pipeline only counts).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use archive::records::ScopeOutcome;

/// What a run has done so far. Shared by every task of the run; cheap to update.
#[derive(Debug, Default)]
pub struct Progress {
    phase: Mutex<String>,
    pub scopes_total: AtomicU64,
    pub scopes_done: AtomicU64,
    pub scopes_skipped: AtomicU64,
    pub scopes_failed: AtomicU64,
    pub pages: AtomicU64,
    pub items: AtomicU64,
    /// Bytes of input to go through in the current phase (ingest), 0 when unknown.
    pub bytes_total: AtomicU64,
    pub bytes_done: AtomicU64,
    /// Commits that made rows or checkpoints durable.
    pub commits: AtomicU64,
}

/// A copy of the counts at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub phase: String,
    pub scopes_total: u64,
    pub scopes_done: u64,
    pub scopes_skipped: u64,
    pub scopes_failed: u64,
    pub pages: u64,
    pub items: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub commits: u64,
}

impl Snapshot {
    /// Scopes finished in any way.
    pub fn scopes_finished(&self) -> u64 {
        self.scopes_done + self.scopes_skipped + self.scopes_failed
    }
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Progress {
    /// Names what the run is doing now (e.g. "discovering users, teams and channels").
    pub fn set_phase(&self, phase: impl Into<String>) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase.into();
    }

    /// Starts a phase over `bytes` of input.
    pub fn set_bytes(&self, phase: impl Into<String>, bytes: u64) {
        self.set_phase(phase);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn page(&self, items: usize) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(items as u64, Ordering::Relaxed);
    }

    pub fn scope_finished(&self, outcome: &ScopeOutcome) {
        let counter = match outcome {
            ScopeOutcome::Archived => &self.scopes_done,
            ScopeOutcome::Skipped { .. } => &self.scopes_skipped,
            ScopeOutcome::Failed { .. } => &self.scopes_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            phase: self.phase.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            scopes_total: load(&self.scopes_total),
            scopes_done: load(&self.scopes_done),
            scopes_skipped: load(&self.scopes_skipped),
            scopes_failed: load(&self.scopes_failed),
            pages: load(&self.pages),
            items: load(&self.items),
            bytes_total: load(&self.bytes_total),
            bytes_done: load(&self.bytes_done),
            commits: load(&self.commits),
        }
    }
}
