//! `teams-archiver sync`: flags to the pipeline's sync, progress and the summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use archive::records::Outcome;
use pipeline::sync::{SourceKind, SyncOptions};

use crate::args::{self, SyncArgs};
use crate::progress::Display;
use crate::{credentials, report};

pub async fn run(args: SyncArgs, display: Display) -> anyhow::Result<Outcome> {
    let clock = Instant::now();
    let since = args.since;
    let mut config = credentials::client_config(&args.graph)?;
    config.retry.max_retries = args.max_retries;
    config.payment_model = Some(match args.payment_model {
        args::PaymentModel::A => fetch::PaymentModel::A,
        args::PaymentModel::B => fetch::PaymentModel::B,
    });
    let client = fetch::GraphClient::new(config).context("setting up the Graph client")?;
    let options = SyncOptions {
        signing_key: args.target.signing_key()?,
        out: args.target.out,
        state: args.target.state,
        sources: args
            .sources
            .iter()
            .map(|s| match s {
                args::SourceKind::Chats => SourceKind::Chats,
                args::SourceKind::Channels => SourceKind::Channels,
                args::SourceKind::Mail => SourceKind::Mail,
            })
            .collect(),
        users: args.users,
        teams: args.teams,
        shard: args.shard,
        concurrency: args.concurrency,
        since,
        memory_budget_mib: args.memory_budget_mib.get(),
        commit_interval: Duration::from_secs(args.commit_interval.max(1)),
        page_size: args.page_size,
        content: pipeline::content::ContentOptions {
            mode: match args.content {
                args::ContentMode::None => pipeline::content::ContentMode::None,
                args::ContentMode::Inline => pipeline::content::ContentMode::Inline,
                args::ContentMode::All => pipeline::content::ContentMode::All,
            },
            max_bytes: args.content_max_mib.saturating_mul(1024 * 1024),
            mail_mime: args.mail_mime,
            spool_dir: None,
        },
    };
    let progress = Arc::new(pipeline::Progress::default());
    let ticker = display.sync(Arc::clone(&progress), client.clone());
    let summary = pipeline::sync::run(client, options, Arc::clone(&progress)).await;
    drop(ticker);
    let (summary, head) = summary?;
    report::print_summary(&summary, progress.snapshot().items, clock.elapsed());
    report::print_chain_head(&head);
    Ok(summary.outcome)
}
