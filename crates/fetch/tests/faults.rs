//! Every fault the simulator can inject: the client retries what can be retried and
//! still returns exactly the simulator's items; what cannot be cured is an error that
//! names the scope, the page and the URL with its tokens redacted.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fetch::{FetchError, Scope};
use graph_sim::{EndpointKind, Fault, FaultPlan, FaultRule, RetryAfter, SimConfig, Target};

/// Run every user's chat delta round, the channel rounds and a mail round under `plan`
/// and check each returns exactly what the simulator holds.
async fn rounds_survive(plan: FaultPlan, label: &str) -> graph_sim::SimStats {
    let sim = sim(SimConfig {
        faults: plan,
        ..quiet()
    })
    .await;
    let client = client(&sim);
    let snapshot = sim.snapshot();
    let directory = sim.directory();
    for user in &directory.users {
        let got = round(&client, &chats_of(&user.id), initial(6)).await.ok();
        assert_eq!(
            got.exact(),
            expected_chats(&sim, &user.id),
            "{label}: chats of {}",
            user.id
        );
    }
    let team = &directory.teams[0];
    for channel in &team.channels {
        let scope = Scope::Channel {
            team_id: team.id.clone(),
            channel_id: channel.id.clone(),
        };
        let got = round(&client, &scope, initial(4)).await.ok();
        let want = snapshot
            .channel_roots(&team.id, &channel.id)
            .into_iter()
            .map(|m| m.json.clone())
            .collect();
        assert_eq!(got.exact(), want, "{label}: channel {}", channel.id);
    }
    let folder = &directory.mail_folders[0];
    let scope = Scope::MailFolder {
        user_id: folder.user_id.clone(),
        folder_id: folder.id.clone(),
    };
    let got = round(&client, &scope, initial(3)).await.ok();
    let want = snapshot
        .mail_in(&folder.user_id, &folder.id)
        .into_iter()
        .map(|m| m.json.clone())
        .collect();
    assert_eq!(got.exact(), want, "{label}: mail");
    sim.stats()
}

#[tokio::test]
async fn server_errors_are_retried_until_the_round_is_whole() {
    for status in [500, 502, 504] {
        let stats = rounds_survive(
            FaultPlan::none().with(FaultRule::every(Fault::Status { status }, 3)),
            &format!("HTTP {status}"),
        )
        .await;
        assert!(
            stats.fault_count("status") >= 5,
            "{status}: {:?}",
            stats.faults
        );
        assert!(stats.with_status(status) >= 5);
    }
}

#[tokio::test]
async fn throttling_and_unavailability_are_retried_with_either_retry_after_form() {
    let cases = [
        (
            Fault::TooManyRequests {
                retry_after: RetryAfter::Millis(50),
            },
            "429",
        ),
        (
            Fault::ServiceUnavailable {
                retry_after: RetryAfter::Millis(50),
            },
            "503",
        ),
        (
            Fault::TooManyRequests {
                retry_after: RetryAfter::Absent,
            },
            "429",
        ),
        (
            Fault::ServiceUnavailable {
                retry_after: RetryAfter::Absent,
            },
            "503",
        ),
    ];
    for (fault, label) in cases {
        let stats = rounds_survive(
            FaultPlan::none().with(FaultRule::every(fault.clone(), 4)),
            label,
        )
        .await;
        assert!(
            stats.fault_count(label) >= 4,
            "{fault:?}: {:?}",
            stats.faults
        );
    }
}

/// The retry waits as long as `Retry-After` says, whole seconds or an HTTP date.
#[tokio::test]
async fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    for (fault, at_least) in [
        (
            Fault::TooManyRequests {
                retry_after: RetryAfter::Seconds(1),
            },
            Duration::from_millis(950),
        ),
        (
            Fault::ServiceUnavailable {
                retry_after: RetryAfter::Seconds(1),
            },
            Duration::from_millis(950),
        ),
        // An HTTP date has whole-second precision: the wait is between one and two seconds.
        (
            Fault::TooManyRequests {
                retry_after: RetryAfter::HttpDate(1),
            },
            Duration::from_millis(900),
        ),
        (
            Fault::ServiceUnavailable {
                retry_after: RetryAfter::HttpDate(1),
            },
            Duration::from_millis(900),
        ),
    ] {
        let sim = sim(SimConfig {
            faults: FaultPlan::none().with(
                FaultRule::times(fault.clone(), 1)
                    .on(Target::Endpoint(EndpointKind::ChatMessagesDelta)),
            ),
            ..quiet()
        })
        .await;
        let client = client(&sim);
        let user = sim.directory().users[0].clone();
        let started = Instant::now();
        let got = round(&client, &chats_of(&user.id), initial(50)).await.ok();
        let took = started.elapsed();
        assert_eq!(got.exact(), expected_chats(&sim, &user.id));
        assert!(took >= at_least, "{fault:?}: the retry came after {took:?}");
        assert!(took < Duration::from_secs(4), "{fault:?}: {took:?}");
    }
}

#[tokio::test]
async fn dropped_connections_cut_bodies_and_broken_json_are_retried() {
    for (fault, label) in [
        (Fault::ConnectionReset, "connection-reset"),
        (Fault::TruncatedBody, "truncated-body"),
        (Fault::IncompleteJson, "incomplete-json"),
    ] {
        let stats = rounds_survive(FaultPlan::none().with(FaultRule::every(fault, 3)), label).await;
        assert!(stats.fault_count(label) >= 5, "{label}: {:?}", stats.faults);
    }
}

#[tokio::test]
async fn slow_responses_time_out_and_are_retried() {
    let sim = sim(SimConfig {
        faults: FaultPlan::none().with(
            FaultRule::times(Fault::Slow { delay_ms: 1500 }, 2)
                .on(Target::Endpoint(EndpointKind::ChatMessagesDelta)),
        ),
        ..quiet()
    })
    .await;
    let client = client_with(&sim, |c| c.timeouts.request = Duration::from_millis(400));
    let user = sim.directory().users[0].clone();
    let got = round(&client, &chats_of(&user.id), initial(5)).await.ok();
    assert_eq!(got.exact(), expected_chats(&sim, &user.id));
    assert_eq!(sim.stats().fault_count("slow"), 2);

    // Slow but within the timeout: served as is.
    sim.set_faults(FaultPlan::none().with(FaultRule::every(Fault::Slow { delay_ms: 100 }, 2)));
    let got = round(&client, &chats_of(&user.id), initial(5)).await.ok();
    assert_eq!(got.exact(), expected_chats(&sim, &user.id));
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_request_repeated() {
    let stats = rounds_survive(
        FaultPlan::none().with(FaultRule::every(Fault::ExpiredToken, 7)),
        "401",
    )
    .await;
    assert!(stats.fault_count("expired-token") >= 2);
    assert!(stats.with_status(401) >= 2);
    assert!(
        stats.access_tokens_issued >= 3,
        "a new token after each 401: {}",
        stats.access_tokens_issued
    );
}

#[tokio::test]
async fn a_page_still_malformed_after_retries_is_an_error_naming_scope_page_and_url() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    // The first page is fine; every later page (a skip token in the URL) is cut.
    sim.set_faults(FaultPlan::none().with(
        FaultRule::every(Fault::IncompleteJson, 1).on(Target::PathContains("skiptoken".into())),
    ));
    let got = round(&client, &chats_of(&user.id), initial(5)).await;
    assert_eq!(got.pages.len(), 1, "the good page arrived first");
    let error = got.error.expect("a malformed page");
    match &error {
        FetchError::MalformedPage {
            scope,
            page,
            attempts,
            url,
            ..
        } => {
            assert_eq!(scope, &format!("chats of user {}", user.id));
            assert_eq!(*page, 2);
            assert_eq!(*attempts, 7, "one try and six retries");
            assert!(url.as_str().contains("$skiptoken=<redacted>"), "{url}");
        }
        other => panic!("expected a malformed page, got {other}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("page 2") && text.contains("not a JSON page"),
        "{text}"
    );
}

#[tokio::test]
async fn a_next_link_back_to_a_page_of_the_round_ends_it_with_an_error_instead_of_looping() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].clone();
    // The second page's nextLink is its own URL.
    sim.set_faults(FaultPlan::none().with(
        FaultRule::every(Fault::NextLinkToItself, 1).on(Target::PathContains("skiptoken".into())),
    ));
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        round(&client, &chats_of(&user.id), initial(2)),
    )
    .await
    .expect("the round ends");
    assert_eq!(got.pages.len(), 2);
    let error = got.error.expect("an error for the loop");
    let text = error.to_string();
    assert!(
        matches!(error, FetchError::MalformedPage { page: 2, .. })
            && text.contains("leads back to page 2 of this round"),
        "{text}"
    );
}

#[tokio::test]
async fn errors_that_outlast_the_retries_say_what_happened() {
    let sim = sim(quiet()).await;
    let client = client(&sim);
    let user = sim.directory().users[0].clone();

    // Two 503s, then a 400 that no retry can cure: the error counts all three attempts.
    sim.set_faults(
        FaultPlan::none()
            .with(FaultRule::times(
                Fault::ServiceUnavailable {
                    retry_after: RetryAfter::Absent,
                },
                2,
            ))
            .with(FaultRule::every(Fault::Status { status: 400 }, 1)),
    );
    let error = round(&client, &chats_of(&user.id), initial(5))
        .await
        .error
        .expect("400");
    assert!(
        matches!(
            error,
            FetchError::Http {
                status: 400,
                attempts: 3,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.unavailable(), None, "a fault, not a skip");

    sim.set_faults(FaultPlan::none().with(FaultRule::every(Fault::Status { status: 502 }, 1)));
    let error = round(&client, &chats_of(&user.id), initial(5))
        .await
        .error
        .expect("502 for ever");
    assert!(
        matches!(
            error,
            FetchError::Http {
                status: 502,
                attempts: 7,
                ..
            }
        ),
        "{error}"
    );

    sim.set_faults(FaultPlan::none().with(FaultRule::every(Fault::ConnectionReset, 1)));
    let error = round(&client, &chats_of(&user.id), initial(5))
        .await
        .error
        .expect("resets for ever");
    assert!(
        matches!(error, FetchError::Transport { attempts: 7, .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&user.id));

    sim.set_faults(FaultPlan::none().with(FaultRule::every(
        Fault::TooManyRequests {
            retry_after: RetryAfter::Millis(10),
        },
        1,
    )));
    let error = round(
        &client,
        &chats_of(&user.id),
        window_until(chrono::Utc::now(), 5),
    )
    .await
    .error
    .expect("429 for ever");
    assert!(
        matches!(error, FetchError::Http { status: 429, .. }),
        "{error}"
    );
}

/// The client counts what it did: requests, retries, throttling answers, time waited.
#[tokio::test]
async fn the_client_counts_requests_retries_and_throttling() {
    let sim = sim(SimConfig {
        faults: FaultPlan::none()
            .with(
                FaultRule::times(
                    Fault::TooManyRequests {
                        retry_after: RetryAfter::Millis(200),
                    },
                    2,
                )
                .on(Target::Endpoint(EndpointKind::ChatMessagesDelta)),
            )
            .with(
                FaultRule::times(Fault::Status { status: 502 }, 1)
                    .on(Target::Endpoint(EndpointKind::ChatMessagesDelta)),
            ),
        ..quiet()
    })
    .await;
    let client = client(&sim);
    assert_eq!(client.stats(), fetch::ClientStats::default());
    let user = sim.directory().users[0].clone();
    let got = round(&client, &chats_of(&user.id), initial(50)).await.ok();
    assert_eq!(got.exact(), expected_chats(&sim, &user.id));
    let stats = client.stats();
    let served = sim.stats().total(EndpointKind::ChatMessagesDelta);
    assert_eq!(stats.requests, served, "{stats:?}");
    assert_eq!(stats.retries, 3, "{stats:?}");
    assert_eq!(stats.throttled, 2, "{stats:?}");
    assert!(stats.waited >= Duration::from_millis(400), "{stats:?}");
    // Clones share the counts.
    assert_eq!(client.clone().stats(), stats);
}
