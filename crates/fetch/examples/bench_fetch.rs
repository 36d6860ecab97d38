//! The request rate the client reaches against the simulator at Graph's app limit:
//! every user's chat delta round, concurrently, through the simulator's throttling and
//! per-page latency. Prints the rate reached, its share of the limit and the 429s the
//! client provoked; exits non-zero below `--min-share`.

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
    /// The simulator's app limit, and the limit the client is told.
    #[arg(long, default_value_t = 200)]
    limit: u32,
    #[arg(long, default_value_t = 30)]
    latency_ms: u64,
    #[arg(long, default_value_t = 50)]
    page_size: u32,
    /// Rounds in flight at once.
    #[arg(long, default_value_t = 32)]
    rounds: usize,
    #[arg(long, default_value_t = 0.9)]
    min_share: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = SimConfig {
        users: args.users,
        messages_per_user: args.messages_per_user,
        latency: Duration::from_millis(args.latency_ms),
        rate_limit: Some(RateLimits {
            app_requests_per_second: args.limit,
            ..RateLimits::default()
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

    let mut client_config = ClientConfig::new(
        sim.graph_url(),
        sim.login_url(),
        sim.tenant_id(),
        sim.client_id(),
        Credential::Secret(sim.client_secret().to_string()),
    );
    client_config.allow_insecure_http = true; // the simulator on the loopback address
    client_config.limits.requests_per_second = args.limit;
    client_config.limits.max_concurrency = args.rounds as u32;
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
    let share = rate / f64::from(args.limit);
    let app = stats.bucket("app").map(|b| b.max_observed).unwrap_or(0);
    println!(
        "pages: {pages} ({items} items) in {:.1}s, {:.1} pages/s wall clock",
        wall.as_secs_f64(),
        pages as f64 / wall.as_secs_f64()
    );
    println!(
        "requests/s reached: {rate:.1} of a {}/s limit ({:.1}%), {} ms latency per page",
        args.limit,
        share * 100.0,
        args.latency_ms
    );
    println!("most requests in any one-second window: {app}");
    println!("429s provoked: {}", stats.throttled);
    sim.shutdown().await;
    if share < args.min_share {
        anyhow::bail!(
            "the client reached {:.1}% of the limit, below {:.0}%",
            share * 100.0,
            args.min_share * 100.0
        );
    }
    Ok(())
}
