//! `teams-archiver ingest`: flags to the pipeline's ingest, progress and the summary.

use std::sync::Arc;
use std::time::Instant;

use archive::records::Outcome;
use pipeline::ingest::{IngestOptions, KindHint};

use crate::args::{self, IngestArgs};
use crate::progress::Display;
use crate::report;

pub async fn run(args: IngestArgs, display: Display) -> anyhow::Result<Outcome> {
    let clock = Instant::now();
    let options = IngestOptions {
        signing_key: args.target.signing_key()?,
        out: args.target.out,
        state: args.target.state,
        kind: match args.kind {
            args::KindHint::Auto => KindHint::Auto,
            args::KindHint::Chat => KindHint::Chat,
            args::KindHint::Mail => KindHint::Mail,
        },
        custodian: args.custodian,
        memory_budget_mib: args.memory_budget_mib.get(),
        max_line_bytes: args.max_line_mib.max(1) * 1024 * 1024,
        threads: args.threads,
        spill_dir: args.spill_dir,
        inputs: args.inputs,
    };
    let progress = Arc::new(pipeline::Progress::default());
    let ticker = display.ingest(Arc::clone(&progress));
    let summary = pipeline::ingest::run(options, Arc::clone(&progress)).await;
    drop(ticker);
    let (summary, head) = summary?;
    report::print_summary(&summary, progress.snapshot().items, clock.elapsed());
    report::print_chain_head(&head);
    Ok(summary.outcome)
}
