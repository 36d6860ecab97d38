//! Giving freed memory back to the system while the writer runs.
//!
//! glibc keeps what the program frees in its arenas for reuse, and returns pages only
//! from the top of a heap. The writer frees tens of MiB of rows and encoded pages at a
//! time, scattered through the arenas, so over a run the resident size drifts above what
//! is live, and a pod sized by the budget would see it. Measured at 2,000 users and a
//! 128 MiB budget: 210 MiB peak without trimming, 204 MiB with a trim after each commit,
//! 185 MiB with a trim every 200 ms.
//!
//! A trim is not free: the pages it returns fault back in, zeroed, when the next buffers
//! grow (an ingest of 200,000 messages spent 12% more time trimming every 200 ms). So it
//! trims only while the process is resident above a limit (the driver's is three
//! quarters of the budget), and a run well within its budget keeps its pages.

use std::sync::mpsc;
use std::time::Duration;

/// How often free pages are handed back: often enough that the pages a commit frees are
/// gone before the next commit's buffer fills; each call walks and briefly locks every
/// arena, so not much more often.
const PERIOD: Duration = Duration::from_millis(200);

/// A thread that, every [`PERIOD`] until it is dropped, trims the allocator if the
/// process is resident above a limit.
pub(crate) struct Trimmer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trimmer {
    /// Trims whenever the resident size is above `limit_bytes` (0: at every period).
    pub(crate) fn start(limit_bytes: u64) -> Trimmer {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("allocator-trim".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
                    // Where the resident size cannot be read, trim: staying in budget
                    // matters more than the time.
                    if resident_bytes().is_none_or(|resident| resident > limit_bytes) {
                        release_free_memory();
                    }
                }
            })
            .map_err(|e| tracing::warn!("the allocator trim thread did not start: {e}"))
            .ok();
        Trimmer {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Trimmer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

/// The resident size of this process (Linux: `VmRSS`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Returns the free pages of every arena to the system (`malloc_trim(0)`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers and changes only glibc's own free lists,
    // which it locks while it runs; live allocations are not touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl, macOS, Windows) return large blocks themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trim_thread_runs_until_its_trimmer_is_dropped_and_then_ends() {
        let trimmer = Trimmer::start(0);
        let thread = trimmer.thread.as_ref().expect("the thread started");
        std::thread::sleep(PERIOD * 2);
        assert!(!thread.is_finished(), "it trims while the driver runs");
        let started = std::time::Instant::now();
        drop(trimmer);
        assert!(
            started.elapsed() < PERIOD * 5,
            "dropping the trimmer stops its thread at once, not after a sleep"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_resident_size_is_read_and_grows_with_touched_memory() {
        let before = resident_bytes().expect("Linux reports VmRSS");
        let touched = vec![1u8; 64 * 1024 * 1024];
        std::hint::black_box(&touched);
        let after = resident_bytes().expect("Linux reports VmRSS");
        assert!(
            after >= before + 32 * 1024 * 1024,
            "64 MiB written raise the resident size: {before} -> {after}"
        );
        drop(touched);
    }
}
