//! Graph's limits: the client keeps within the app rate, the per-team rate and the
//! per-mailbox concurrency while staying busy, and backs off when it was told a higher
//! limit than Graph enforces.
//!
//! Rates depend on the machine, so these scenarios run one at a time and their "busy"
//! thresholds are loose; `scripts/bench-fetch.sh` measures the rate in a release build.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use fetch::{GraphClient, Scope};
use futures::StreamExt;
use graph_sim::{RateLimits, RunningSim, SimConfig};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn limited(limits: RateLimits, latency_ms: u64) -> SimConfig {
    SimConfig {
        users: 40,
        messages_per_user: 25,
        messages_per_channel: 30,
        mail_per_user: 30,
        latency: Duration::from_millis(latency_ms),
        rate_limit: Some(limits),
        replay_per_mille: 0,
        ..SimConfig::small()
    }
}

/// Run rounds concurrently and check each returned exactly what the simulator holds.
async fn run_all(
    sim: &RunningSim,
    client: &GraphClient,
    scopes: Vec<Scope>,
    page_size: u32,
    concurrency: usize,
) {
    let snapshot = sim.snapshot();
    let results: Vec<(Scope, Collected)> = futures::stream::iter(scopes)
        .map(|scope| {
            let client = client.clone();
            async move {
                let got = round(&client, &scope, initial(page_size)).await;
                (scope, got)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for (scope, got) in results {
        let got = got.ok();
        let want: BTreeSet<String> = match &scope {
            Scope::UserChats { user_id } => snapshot
                .chat_messages_of(user_id)
                .into_iter()
                .map(|m| m.json.clone())
                .collect(),
            Scope::Channel {
                team_id,
                channel_id,
            } => snapshot
                .channel_roots(team_id, channel_id)
                .into_iter()
                .map(|m| m.json.clone())
                .collect(),
            Scope::MailFolder { user_id, folder_id } => snapshot
                .mail_in(user_id, folder_id)
                .into_iter()
                .map(|m| m.json.clone())
                .collect(),
        };
        assert_eq!(got.exact(), want, "{scope}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_rate_stays_under_the_limit_and_near_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let limit = 100;
    let sim = sim(limited(
        RateLimits {
            app_requests_per_second: limit,
            ..RateLimits::default()
        },
        20,
    ))
    .await;
    let client = client_with(&sim, |c| {
        c.limits.requests_per_second = limit;
        c.limits.max_concurrency = 16;
    });
    let scopes = sim
        .directory()
        .users
        .iter()
        .map(|u| chats_of(&u.id))
        .collect();
    sim.reset_stats();
    run_all(&sim, &client, scopes, 5, 16).await;
    let stats = sim.stats();
    let app = stats.bucket("app").expect("the app bucket");
    assert!(
        stats.admitted > 300,
        "enough requests to measure: {}",
        stats.admitted
    );
    assert_eq!(stats.throttled, 0, "no request over the limit");
    assert!(
        app.max_observed <= limit,
        "at most {limit} in any second, saw {}",
        app.max_observed
    );
    let rate = stats.admitted_rate();
    assert!(
        rate >= 0.75 * f64::from(limit),
        "busy: {rate:.1} requests/s against {limit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_gets_at_most_four_requests_a_second() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(limited(
        RateLimits {
            app_requests_per_second: 1000,
            ..RateLimits::default()
        },
        5,
    ))
    .await;
    let client = client_with(&sim, |c| c.limits.team_requests_per_second = 4);
    let team = sim.directory().teams[0].clone();
    let scopes: Vec<Scope> = team
        .channels
        .iter()
        .map(|c| Scope::Channel {
            team_id: team.id.clone(),
            channel_id: c.id.clone(),
        })
        .collect();
    sim.reset_stats();
    run_all(&sim, &client, scopes, 5, 8).await;
    let stats = sim.stats();
    let bucket = stats
        .bucket(&format!("team:{}", team.id))
        .expect("the team bucket");
    assert_eq!(stats.throttled, 0);
    assert!(bucket.admitted >= 12, "{}", bucket.admitted);
    assert!(
        bucket.max_observed <= 4,
        "at most 4 a second, saw {}",
        bucket.max_observed
    );
    let rate = stats.admitted_rate();
    assert!(rate >= 3.0, "busy: {rate:.2} requests/s against 4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_gets_at_most_its_concurrency() {
    let _one = ONE_AT_A_TIME.lock().await;
    let limits = RateLimits {
        app_requests_per_second: 1000,
        team_requests_per_second: 100,
        mailbox_concurrency: 2,
    };
    let sim = sim(limited(limits, 150)).await;
    let client = client_with(&sim, |c| c.limits.mailbox_concurrency = 2);
    let directory = sim.directory();
    let user = directory.users[0].id.clone();
    let scopes: Vec<Scope> = directory
        .mail_folders
        .iter()
        .filter(|f| f.user_id == user)
        .map(|f| Scope::MailFolder {
            user_id: user.clone(),
            folder_id: f.id.clone(),
        })
        .collect();
    assert_eq!(scopes.len(), 3);
    sim.reset_stats();
    run_all(&sim, &client, scopes, 3, 8).await;
    let stats = sim.stats();
    let bucket = stats
        .bucket(&format!("mailbox:{user}"))
        .expect("the mailbox bucket");
    assert_eq!(stats.throttled, 0);
    assert_eq!(bucket.max_observed, 2, "two in flight, never three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_a_higher_limit_the_client_backs_off_instead_of_hammering() {
    let _one = ONE_AT_A_TIME.lock().await;
    let limit = 30;
    let sim = sim(limited(
        RateLimits {
            app_requests_per_second: limit,
            ..RateLimits::default()
        },
        10,
    ))
    .await;
    let client = client_with(&sim, |c| {
        c.limits.requests_per_second = 120;
        c.limits.max_concurrency = 16;
        c.retry.max_retries = 20;
    });
    let scopes = sim
        .directory()
        .users
        .iter()
        .take(20)
        .map(|u| chats_of(&u.id))
        .collect();
    sim.reset_stats();
    run_all(&sim, &client, scopes, 10, 16).await;
    let stats = sim.stats();
    assert!(stats.throttled > 0, "the client met the real limit");
    assert!(
        client.current_rate() < 0.95 * 120.0,
        "and lowered its rate: {:.1}",
        client.current_rate()
    );
    assert!(
        stats.throttled * 4 < stats.admitted,
        "429s stay a small share: {} throttled, {} admitted",
        stats.throttled,
        stats.admitted
    );
}
