//! The allocator, and giving freed memory back to the system while the writer runs.
//!
//! Rust's heap is jemalloc, set here for every program that links the pipeline (the
//! binary and the tests alike). Under glibc's allocator, resident memory kept rising
//! through a run while the live heap did not: at a 512 MiB budget, 200 users x 2,000
//! messages went 299 / 317 / 326 / 327 MiB from quarter to quarter of the run. glibc keeps
//! what the program frees in per-thread arenas and returns pages only from the top of a
//! heap, and the writer frees tens of MiB of rows and encoded pages at a time. jemalloc
//! returns them on a timer: the same run went 254 / 285 / 271 / 264 MiB. Its settings are
//! in [`MALLOC_CONF`].
//!
//! glibc's heap still serves the C libraries (zstd's contexts, TLS), so the [`Trimmer`]
//! hands its free pages back while the process is resident above a limit (the driver's
//! is three quarters of the budget). A trim is not free: the pages it returns fault back
//! in, zeroed, when buffers grow again, so a run well within its budget keeps its pages.

use std::sync::mpsc;
use std::time::Duration;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read once when it starts (the environment's `_RJEM_MALLOC_CONF`
/// overrides them):
/// - `background_thread`: a thread of jemalloc's returns freed pages on its timer, not
///   only when the program next allocates;
/// - `dirty_decay_ms:500`, `muzzy_decay_ms:0`: freed pages go back to the system within
///   half a second. Memory follows the rows a commit frees closely, and pages are not
///   handed back between the allocations of one batch (with 0, a first sync of 200 users
///   at 128 MiB took 1.34x the ideal time, against 1.11x);
/// - `narenas:2`: two arenas rather than four per core. Each arena keeps freed pages of
///   its own until they decay, and the work is two tokio threads and the encoders.
///
/// jemalloc reads it under the name `_rjem_malloc_conf` (the crate prefixes its symbols);
/// a test asserts the settings took effect.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
// SAFETY: the symbol is the C string jemalloc reads at start-up, as its crate declares it
// (`Option<&'static c_char>`); the string is static and NUL-terminated.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: Option<&'static std::ffi::c_char> = {
    const SETTINGS: &std::ffi::CStr =
        c"background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0,narenas:2";
    // SAFETY: a CStr's pointer is valid and NUL-terminated for the CStr's lifetime, here
    // 'static.
    Some(unsafe { &*SETTINGS.as_ptr() })
};

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

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn jemalloc_serves_the_heap_with_its_settings() {
        use tikv_jemalloc_ctl::{opt, thread};
        // Under another allocator, or with the settings under a name jemalloc does not
        // read, these are jemalloc's defaults: no background thread, 10 s of decay and
        // four arenas per core.
        if std::env::var_os("_RJEM_MALLOC_CONF").is_none() {
            assert!(opt::background_thread::read().expect("jemalloc answers"));
            assert_eq!(opt::narenas::read().expect("jemalloc answers"), 2);
        }
        // This thread's own count, so tests running beside it cannot move it.
        let allocated = thread::allocatedp::read().expect("jemalloc answers");
        let before = allocated.get();
        let held = vec![1u8; 16 * 1024 * 1024];
        let after = allocated.get();
        assert!(
            after >= before + 16 * 1024 * 1024,
            "Rust's allocations are jemalloc's: {before} -> {after} bytes allocated by this thread"
        );
        drop(held);
    }

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
