//! Logs: readable lines for people, one JSON object per line for schedulers.

use std::io::Write;

use clap::ValueEnum;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    #[default]
    Text,
    /// One JSON object per line on stderr (for log collectors).
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_level`.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(OneLinePerEvent(std::io::stderr))
                    // Colours only on a terminal: a file, cron's mail or journald would
                    // keep the escape codes as text.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

/// A writer for text logs that keeps each event on one line: a value holding a line
/// break (a Graph key, a file name, a display name) could otherwise start a line that
/// looks like an event of its own. tracing-subscriber already escapes terminal escape
/// sequences in values; this escapes the line breaks and other control characters it
/// leaves. The fmt layer hands each formatted event to one `write_all`, ending in `\n`.
#[derive(Clone, Copy)]
struct OneLinePerEvent<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLinePerEvent<M> {
    type Writer = EscapingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapingWriter(self.0.make_writer())
    }
}

struct EscapingWriter<W>(W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_event(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `event` with every control character but its final line break, the tab and the
/// escape that starts the layer's own colours written as `\n`, `\r` or `\x..`.
fn escape_event(event: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let body = event.strip_suffix(b"\n").unwrap_or(event);
    let needs = |b: u8| (b.is_ascii_control() && b != b'\t' && b != 0x1b) || b == 0x7f;
    if !body.iter().copied().any(needs) {
        return std::borrow::Cow::Borrowed(event);
    }
    let mut out = Vec::with_capacity(event.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b if needs(b) => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    if body.len() < event.len() {
        out.push(b'\n');
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn a_value_with_a_line_break_cannot_forge_a_log_line() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .with_writer(OneLinePerEvent(captured.clone()))
                .with_ansi(false)
                .with_target(false),
        );
        let key = "chat_messages/x.parquet\n2026-01-01T00:00:00Z  INFO ingest finished cleanly";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(file = %key, "could not read {key}\r");
            tracing::info!("second event");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains(r"x.parquet\n2026-01-01T00:00:00Z  INFO ingest finished cleanly"),
            "{text}"
        );
        assert!(lines[0].contains(r"\r"), "{text}");
        assert!(lines[1].ends_with("second event"), "{text}");
    }

    #[test]
    fn plain_events_pass_unchanged() {
        let line = b"2026-01-01T00:00:00Z  INFO\tdone\n";
        assert!(matches!(escape_event(line), std::borrow::Cow::Borrowed(_)));
        assert_eq!(&*escape_event(b"a\x00b\n"), b"a\\x00b\n");
    }
}
