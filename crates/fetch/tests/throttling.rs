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
use fetch::{GraphClient, RoundStart, Scope};
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
            Scope::Team { .. } => panic!("team windows are not delta rounds"),
        };
        assert_eq!(got.exact(), want, "{scope}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_rate_stays_under_the_limit_and_near_it() {
    let _one = ONE_AT_A_TIME.lock().await;
    let limit = 100;
    let sim = sim(limited(RateLimits::app(limit), 20)).await;
    let client = client_with(&sim, |c| {
        c.limits.requests_per_second = limit;
        c.limits.max_concurrency = 16;
    });
    let scopes = every_users_chats(&sim);
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
        // The team's limit alone: its channels are not held to one request a second.
        RateLimits {
            channel_requests_per_second: None,
            ..RateLimits::app(1000)
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
        mailbox_concurrency: Some(2),
        ..RateLimits::app(1000)
    };
    let sim = sim(limited(limits, 150)).await;
    let client = client_with(&sim, |c| c.limits.mailbox_concurrency = 2);
    let directory = sim.directory();
    let user = directory.users[0].id.clone();
    let scopes: Vec<Scope> = directory
        .mail_folders
        .iter()
        .filter(|f| f.user_id == user && f.listed)
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
    let sim = sim(limited(RateLimits::app(limit), 10)).await;
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

/// Collect a round, asserting it succeeded.
async fn whole(client: &GraphClient, scope: Scope, start: RoundStart) -> Collected {
    round(client, &scope, start).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_syntax_and_path_links_of_a_team_share_its_four_requests_a_second() {
    let _one = ONE_AT_A_TIME.lock().await;
    let sim = sim(SimConfig {
        teams: 1,
        channels_per_team: 4,
        messages_per_channel: 40,
        // Graph's own limits, except the one-per-channel, so only the team's binds.
        rate_limit: Some(RateLimits {
            channel_requests_per_second: None,
            ..RateLimits::default()
        }),
        latency: Duration::from_millis(5),
        replay_per_mille: 0,
        ..SimConfig::small()
    })
    .await;
    let client = client_with(&sim, |c| {
        c.limits.team_requests_per_second = 4;
        c.limits.request_types = fetch::RequestTypeLimits::default();
    });
    let team = sim.directory().teams[0].clone();
    sim.reset_stats();
    let rounds = team.channels.iter().enumerate().map(|(i, channel)| {
        let scope = Scope::Channel {
            team_id: team.id.clone(),
            channel_id: channel.id.clone(),
        };
        // Half the channels through links in OData key syntax, as Graph writes some.
        let start = if i % 2 == 0 {
            RoundStart::Resume {
                link: format!(
                    "/v1.0/teams('{}')/channels('{}')/messages/delta?$top=5",
                    team.id, channel.id
                ),
            }
        } else {
            initial(5)
        };
        whole(&client, scope, start)
    });
    let window = whole(
        &client,
        Scope::Team {
            team_id: team.id.clone(),
        },
        window_until(sim.now(), 10),
    );
    let (deltas, window) = tokio::join!(futures::future::join_all(rounds), window);
    let snapshot = sim.snapshot();
    for (got, channel) in deltas.iter().zip(&team.channels) {
        let want: BTreeSet<String> = snapshot
            .channel_roots(&team.id, &channel.id)
            .into_iter()
            .map(|m| m.json.clone())
            .collect();
        assert_eq!(got.exact(), want);
    }
    assert!(window.pages.len() > 5, "key-syntax nextLinks followed");
    let stats = sim.stats();
    let bucket = stats
        .bucket(&format!("team:{}", team.id))
        .expect("the team bucket");
    assert!(bucket.admitted >= 40, "{bucket:?}");
    assert!(
        bucket.throttled * 20 <= bucket.admitted,
        "at most 5% 429s: {bucket:?}"
    );
}

/// A server enforcing 40 requests/s over every call, far below the published 200: the
/// client finds it from the 429s (each with `Retry-After: 1`), runs near it, and climbs
/// back when the limit is lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_limit_than_published_is_found_and_left_behind_when_lifted() {
    let _one = ONE_AT_A_TIME.lock().await;
    let limit = 40;
    let sim = sim(SimConfig {
        users: 40,
        messages_per_user: 25,
        latency: Duration::from_millis(20),
        rate_limit: Some(RateLimits {
            retry_after_seconds: Some(1),
            ..RateLimits::app(limit)
        }),
        replay_per_mille: 0,
        ..SimConfig::small()
    })
    .await;
    let client = client_with(&sim, |c| {
        c.limits = fetch::Limits {
            max_concurrency: 16,
            ..fetch::Limits::default()
        };
        c.retry.max_retries = 20;
        c.retry.max_retry_after = Duration::from_secs(5);
    });
    let scopes = every_users_chats(&sim);
    sim.reset_stats();
    let started = std::time::Instant::now();
    run_all(&sim, &client, scopes.clone(), 5, 16).await;
    let wall = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    let ideal = stats.admitted as f64 / f64::from(limit);
    let converged = client.current_rate();
    assert!(
        ideal >= 10.0,
        "a run long enough to measure: {} requests",
        stats.admitted
    );
    assert!(
        wall <= 1.5 * ideal,
        "{wall:.1}s for {} requests: {:.2}x the ideal {ideal:.1}s",
        stats.admitted,
        wall / ideal
    );
    assert!(
        stats.throttled * 20 <= stats.admitted,
        "at most 5% 429s: {} of {}",
        stats.throttled,
        stats.admitted
    );
    assert!(
        converged < 0.5 * 200.0,
        "the rate came down: {converged:.1}"
    );

    // The limit is lifted: the rate climbs back.
    sim.set_rate_limits(Some(RateLimits::app(1000)));
    let lifted = std::time::Instant::now();
    while client.current_rate() < 2.0 * converged && lifted.elapsed() < Duration::from_secs(60) {
        run_all(&sim, &client, scopes.clone(), 5, 16).await;
    }
    assert!(
        client.current_rate() >= 2.0 * converged,
        "from {converged:.1} to {:.1} requests/s in {:.0}s",
        client.current_rate(),
        lifted.elapsed().as_secs_f64()
    );
}
