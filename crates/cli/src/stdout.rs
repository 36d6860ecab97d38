//! What commands print for people and scripts on stdout.
//!
//! `println!` panics when stdout is closed, as it is when a reader stops early
//! (`teams-archiver status | head -3`), and the panic would turn a finished command
//! into exit 101. [`outln!`] drops what cannot be written instead, so the command
//! still ends with the exit code of what it did.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// `println!` for command output that a closed stdout cannot turn into a panic.
macro_rules! outln {
    () => {
        $crate::stdout::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout. A closed pipe ends the output quietly; any other write
/// error is logged once (the command's own outcome does not depend on its printout).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!("cannot write to stdout: {e}");
    }
}
