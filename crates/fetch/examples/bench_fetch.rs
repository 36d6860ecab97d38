//! The request rate the client reaches against the simulator: every user's chat delta
//! round, concurrently, through the simulator's throttling and per-page latency.
//!
//! Two cases: the server enforces the published limit the client is told (`--limit`), or
//! a lower one (`--server-limit`, answering 429 with `Retry-After: --retry-after`) that the
//! client must find. Prints the rate reached, the run's time against the ideal (requests /
//! the server's limit) and the share of 429s; exits non-zero when a goal is missed.

use std::time::{Duration, Instant};

use clap::Parser;
use fetch::{ClientConfig, Credential, GraphClient, RoundStart, Scope};
use futures::StreamExt;
use graph_sim::{RateLimits, SimConfig};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200)]
    users: usize,
    #[arg(long, default_value_t = 500)]
    messages_per_user: usize,
    /// The limit the client is told (Graph's published figure for getAllMessages).
    #[arg(long, default_value_t = 200)]
    limit: u32,
    /// The limit the simulator enforces over every call; default: `--limit`.
    #[arg(long)]
    server_limit: Option<u32>,
    /// `Retry-After` seconds on the simulator's 429s (default: until a slot frees).
    #[arg(long)]
    retry_after: Option<u32>,
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    #[arg(long, default_value_t = 50)]
    page_size: u32,
    /// Rounds in flight at once.
    #[arg(long, default_value_t = 32)]
    rounds: usize,
    /// Goal: requests/s reached as a share of the server's limit.
    #[arg(long, default_value_t = 0.9)]
    min_share: f64,
    /// Goal: wall time at most this many times the ideal (requests / server limit).
    #[arg(long, default_value_t = 1.5)]
    max_ratio: f64,
    /// Goal: 429s at most this share of the requests admitted.
    #[arg(long, default_value_t = 0.05)]
    max_throttled_share: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server_limit = args.server_limit.unwrap_or(args.limit);
    let config = SimConfig {
        users: args.users,
        messages_per_user: args.messages_per_user,
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: Some(RateLimits {
            retry_after_seconds: args.retry_after,
            ..RateLimits::app(server_limit)
        }),
        ..SimConfig::bench()
    };
    let generating = Instant::now();
    let sim = graph_sim::start(config).await?;
    let users = sim.directory().users;
    println!(
        "tenant: {} users sending {} chat messages each (generated in {:.1}s)",
        users.len(),
        args.messages_per_user,
        generating.elapsed().as_secs_f64()
    );
    println!(
        "client told {}/s; server enforces {server_limit}/s{}",
        args.limit,
        args.retry_after
            .map(|s| format!(" with Retry-After: {s}"))
            .unwrap_or_default()
    );

    let mut client_config = ClientConfig::new(
        sim.graph_url(),
        sim.login_url(),
        sim.tenant_id(),
        sim.client_id(),
        Credential::Secret(sim.client_secret().to_string()),
    );
    client_config.allow_insecure_http = true; // the simulator on the loopback address
    client_config.limits.requests_per_second = args.limit;
    client_config.limits.request_types.chat_messages_export = args.limit;
    client_config.limits.max_concurrency = args.rounds as u32;
    client_config.retry.max_retries = 30;
    let client = GraphClient::new(client_config)?;

    sim.reset_stats();
    let started = Instant::now();
    let results: Vec<anyhow::Result<(usize, usize, Vec<u64>)>> = futures::stream::iter(users)
        .map(|user| {
            let client = client.clone();
            async move {
                let started = started;
                let scope = Scope::UserChats {
                    user_id: user.id.clone(),
                };
                let mut pages = std::pin::pin!(client.round(
                    &scope,
                    RoundStart::Initial {
                        since: None,
                        page_size: args.page_size
                    }
                ));
                let (mut pages_seen, mut items) = (0, 0);
                let mut times = Vec::new();
                while let Some(page) = pages.next().await {
                    let page = page?;
                    pages_seen += 1;
                    items += page.len();
                    times.push(started.elapsed().as_secs());
                }
                Ok::<_, anyhow::Error>((pages_seen, items, times))
            }
        })
        .buffer_unordered(args.rounds)
        .collect()
        .await;
    let wall = started.elapsed();
    let (mut pages, mut items) = (0, 0);
    let mut per_second = vec![0u32; wall.as_secs() as usize + 1];
    for result in results {
        let (p, i, times) = result?;
        pages += p;
        items += i;
        for t in times {
            per_second[t as usize] += 1;
        }
    }
    println!("pages per second, second by second: {per_second:?}");
    let stats = sim.stats();
    let rate = stats.admitted_rate();
    let share = rate / f64::from(server_limit);
    let ideal = stats.admitted as f64 / f64::from(server_limit);
    let ratio = wall.as_secs_f64() / ideal;
    let throttled_share = stats.throttled as f64 / stats.admitted.max(1) as f64;
    let app = stats.bucket("app").map(|b| b.max_observed).unwrap_or(0);
    println!(
        "pages: {pages} ({items} items) in {:.1}s, {:.1} pages/s wall clock",
        wall.as_secs_f64(),
        pages as f64 / wall.as_secs_f64()
    );
    println!(
        "requests/s reached: {rate:.1} of the server's {server_limit}/s ({:.1}%), {} ms latency per page",
        share * 100.0,
        args.latency_ms
    );
    println!(
        "time against the ideal ({} requests / {server_limit} per second = {ideal:.1}s): {ratio:.2}x",
        stats.admitted
    );
    println!("most requests in any one-second window: {app}");
    println!(
        "429s provoked: {} ({:.2}% of requests admitted); the client ends at {:.1} requests/s",
        stats.throttled,
        throttled_share * 100.0,
        client.current_rate()
    );
    sim.shutdown().await;
    let mut missed = Vec::new();
    if share < args.min_share {
        missed.push(format!(
            "reached {:.1}% of the limit, below {:.0}%",
            share * 100.0,
            args.min_share * 100.0
        ));
    }
    if ratio > args.max_ratio {
        missed.push(format!(
            "took {ratio:.2}x the ideal, above {:.2}x",
            args.max_ratio
        ));
    }
    if throttled_share > args.max_throttled_share {
        missed.push(format!(
            "{:.2}% 429s, above {:.0}%",
            throttled_share * 100.0,
            args.max_throttled_share * 100.0
        ));
    }
    if !missed.is_empty() {
        anyhow::bail!("missed: {}", missed.join("; "));
    }
    Ok(())
}
