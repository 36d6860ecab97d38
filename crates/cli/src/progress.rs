//! Progress on a terminal, drawn from the pipeline's counts; nothing at all when stderr
//! is a file or a pipe.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline::Progress;

#[derive(Clone, Copy, Debug)]
pub struct Display {
    visible: bool,
}

/// A progress line kept up to date until dropped.
pub struct Ticker {
    task: tokio::task::JoinHandle<()>,
    bar: ProgressBar,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

impl Display {
    pub fn new(disabled: bool) -> Self {
        Display {
            visible: !disabled && std::io::stderr().is_terminal(),
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }

    /// A bar for phases over bytes (ingest, export).
    pub fn bytes_bar(&self, label: &str, total: u64) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(total), self.target());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar
    }

    /// A line that says what is going on, for work of unknown size.
    pub fn spinner(&self, label: &str) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                .expect("a valid template"),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A line that describes a sync: scopes done of all with an estimate of the time
    /// left, pages, messages, commits and what Graph is doing.
    pub fn sync(&self, progress: Arc<Progress>, client: fetch::GraphClient) -> Ticker {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} sync {elapsed} {wide_msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        let line = bar.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                let s = progress.snapshot();
                let graph = client.stats();
                let finished = s.scopes_finished();
                let eta = if finished > 0 && s.scopes_total > finished {
                    let per_scope = started.elapsed().as_secs_f64() / finished as f64;
                    format!(
                        ", eta {}",
                        format_secs(per_scope * (s.scopes_total - finished) as f64)
                    )
                } else {
                    String::new()
                };
                line.set_message(format!(
                    "{}: scopes {finished}/{}{eta} ({} skipped, {} failed), pages {}, messages {}, commits {}, requests {} ({} retried, {} throttled), pacing {:.0} req/s",
                    s.phase,
                    s.scopes_total,
                    s.scopes_skipped,
                    s.scopes_failed,
                    s.pages,
                    s.items,
                    s.commits,
                    graph.requests,
                    graph.retries,
                    graph.throttled,
                    client.current_rate(),
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Ticker { task, bar }
    }

    /// A bar that follows the byte counts of ingest's phases.
    pub fn ingest(&self, progress: Arc<Progress>) -> Ticker {
        let bar = self.bytes_bar("ingest", 0);
        let line = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                let s = progress.snapshot();
                line.set_prefix(s.phase.clone());
                line.set_length(s.bytes_total);
                line.set_position(s.bytes_done);
                line.set_message(format!("{} items, {} commits", s.items, s.commits));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        Ticker { task, bar }
    }
}

fn format_secs(secs: f64) -> String {
    let secs = secs.round() as u64;
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}
