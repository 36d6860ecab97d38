//! `graph-sim`: serve a simulated Microsoft Graph tenant on a local port.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use graph_sim::{RateLimits, SimConfig};

#[derive(Parser)]
#[command(
    version,
    about = "A Microsoft Graph simulator for tests, benchmarks and demos"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a seeded tenant until interrupted. Prints one JSON line with the URLs and
    /// credentials to use; drive it further through the admin API under `/_sim/`.
    Serve(Serve),
}

#[derive(Clone, Copy, ValueEnum)]
enum Preset {
    Small,
    Demo,
    Bench,
    /// A small tenant shaped like real ones (mailbox-less users, old channel history, ...).
    RealTenant,
}

#[derive(Parser)]
struct Serve {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind instead of 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    #[arg(long, value_enum, default_value_t = Preset::Small)]
    preset: Preset,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    users: Option<usize>,
    #[arg(long)]
    messages_per_user: Option<usize>,
    #[arg(long)]
    teams: Option<usize>,
    #[arg(long)]
    channels_per_team: Option<usize>,
    #[arg(long)]
    messages_per_channel: Option<usize>,
    #[arg(long)]
    mail_per_user: Option<usize>,
    /// Added to every Graph response.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Throttle the app at this many requests per second over every call (Graph's
    /// published limits apply too): a tenant whose real limit is below the published one.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Answer throttled requests with this `Retry-After` (seconds) instead of the time
    /// until the limit admits one more.
    #[arg(long)]
    retry_after: Option<u32>,
    /// Serve without any throttling.
    #[arg(long, conflicts_with = "rate_limit")]
    no_rate_limit: bool,
    /// Chance, in thousandths, that a chat or channel message hosts an inline image.
    #[arg(long)]
    hosted_contents_per_mille: Option<u32>,
    /// Chance, in thousandths, that a chat or channel message shares a file.
    #[arg(long)]
    file_attachments_per_mille: Option<u32>,
    /// Chance, in thousandths, that a mail item has attachments.
    #[arg(long)]
    mail_attachments_per_mille: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve(args) = Cli::parse().command;
    let mut config = match args.preset {
        Preset::Small => SimConfig::small(),
        Preset::Demo => SimConfig::demo(),
        Preset::Bench => SimConfig::bench(),
        Preset::RealTenant => SimConfig::real_tenant(),
    };
    config.seed = args.seed.unwrap_or(config.seed);
    config.users = args.users.unwrap_or(config.users);
    config.messages_per_user = args.messages_per_user.unwrap_or(config.messages_per_user);
    config.teams = args.teams.unwrap_or(config.teams);
    config.channels_per_team = args.channels_per_team.unwrap_or(config.channels_per_team);
    config.messages_per_channel = args
        .messages_per_channel
        .unwrap_or(config.messages_per_channel);
    config.mail_per_user = args.mail_per_user.unwrap_or(config.mail_per_user);
    config.hosted_contents_per_mille = args
        .hosted_contents_per_mille
        .unwrap_or(config.hosted_contents_per_mille);
    config.file_attachments_per_mille = args
        .file_attachments_per_mille
        .unwrap_or(config.file_attachments_per_mille);
    config.mail_attachments_per_mille = args
        .mail_attachments_per_mille
        .unwrap_or(config.mail_attachments_per_mille);
    if let Some(ms) = args.latency_ms {
        config.latency = Duration::from_millis(ms);
    }
    if let Some(rps) = args.rate_limit {
        config.rate_limit = Some(RateLimits::app(rps));
    }
    if let Some(seconds) = args.retry_after
        && let Some(limits) = &mut config.rate_limit
    {
        limits.retry_after_seconds = Some(seconds);
    }
    if args.no_rate_limit {
        config.rate_limit = None;
    }
    let sim = graph_sim::start_on(config, SocketAddr::new(args.bind, args.port)).await?;
    let ready = serde_json::json!({
        "graphUrl": sim.graph_url().as_str(),
        "loginUrl": sim.login_url().as_str(),
        "tenantId": sim.tenant_id(),
        "clientId": sim.client_id(),
        "clientSecret": sim.client_secret(),
        "admin": format!("{}_sim/", sim.graph_url()),
    });
    println!("{ready}");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
