//! Pacing under Graph's limits: an app-wide request rate that halves when Graph says 429
//! and creeps back when it stops, a rate per team, requests in flight per mailbox and in
//! all, and pauses (of the app, a team or a mailbox) for as long as `Retry-After` asks.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::config::Limits;

/// The limits a request counts against, read from its URL: `/teams/{id}/...` counts
/// against the team, `/users/{id}/mailFolders...` against the mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Route {
    pub team: Option<String>,
    pub mailbox: Option<String>,
}

impl Route {
    pub(crate) fn of(url: &Url) -> Route {
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| s.map(|p| p.to_string()).collect())
            .unwrap_or_default();
        let mut route = Route::default();
        for (i, segment) in segments.iter().enumerate() {
            let next = segments.get(i + 1).filter(|s| !s.is_empty());
            if segment.eq_ignore_ascii_case("teams") && route.team.is_none() {
                route.team = next.cloned();
            }
            if segment.eq_ignore_ascii_case("users")
                && let Some(user) = next
                && segments
                    .get(i + 2)
                    .is_some_and(|s| s.eq_ignore_ascii_case("mailFolders"))
            {
                route.mailbox = Some(user.clone());
            }
        }
        route
    }
}

const APP: &str = "app";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn pacer(per_second: f64, burst: NonZeroU32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(quota(per_second, burst))
}

/// One request every 1/rate seconds, with a small burst so a request that woke late can
/// catch up: at most `burst + rate x T` requests in any T seconds.
fn quota(per_second: f64, burst: NonZeroU32) -> Quota {
    let period = Duration::from_secs_f64(1.0 / per_second.max(0.01));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

/// The burst a limit affords: a quarter of the room between the limit and the pace, at
/// least one; the rest absorbs network and scheduling jitter.
fn burst(limit: u32, headroom: f64) -> NonZeroU32 {
    let room = f64::from(limit) * (1.0 - headroom) / 4.0;
    NonZeroU32::new(room.floor() as u32).unwrap_or(NonZeroU32::MIN)
}

/// The app-wide rate: multiplicative decrease on 429, gradual recovery to the ceiling.
struct AdaptiveRate {
    ceiling: f64,
    burst: NonZeroU32,
    state: Mutex<RateState>,
}

struct RateState {
    current: f64,
    changed_at: Instant,
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl AdaptiveRate {
    fn new(ceiling: f64, burst: NonZeroU32) -> Self {
        AdaptiveRate {
            ceiling,
            burst,
            state: Mutex::new(RateState {
                current: ceiling,
                changed_at: Instant::now(),
                limiter: Arc::new(pacer(ceiling, burst)),
            }),
        }
    }

    async fn until_ready(&self) {
        let limiter = lock(&self.state).limiter.clone();
        limiter.until_ready().await;
    }

    fn throttled(&self) {
        let mut state = lock(&self.state);
        // Requests in flight together meet the same limit: one decrease per burst of 429s.
        if state.current < self.ceiling && state.changed_at.elapsed() < Duration::from_millis(250) {
            return;
        }
        let lowered = (state.current * 0.5).max(self.ceiling * 0.05);
        tracing::info!(
            from = state.current,
            to = lowered,
            "Graph throttled the app; lowering the request rate"
        );
        state.current = lowered;
        state.changed_at = Instant::now();
        state.limiter = Arc::new(pacer(lowered, self.burst));
    }

    fn succeeded(&self) {
        let mut state = lock(&self.state);
        if state.current < self.ceiling && state.changed_at.elapsed() >= Duration::from_secs(1) {
            let raised = (state.current + self.ceiling * 0.05).min(self.ceiling);
            state.current = raised;
            state.changed_at = Instant::now();
            state.limiter = Arc::new(pacer(raised, self.burst));
        }
    }

    fn current(&self) -> f64 {
        lock(&self.state).current
    }
}

pub(crate) struct Throttle {
    app: AdaptiveRate,
    teams: DefaultKeyedRateLimiter<String>,
    mailboxes: Mutex<HashMap<String, Arc<Semaphore>>>,
    mailbox_concurrency: usize,
    in_flight: Arc<Semaphore>,
    paused: Mutex<HashMap<String, Instant>>,
}

/// Held while a request is in flight.
pub(crate) struct Permit {
    _in_flight: Option<OwnedSemaphorePermit>,
    _mailbox: Option<OwnedSemaphorePermit>,
}

impl Throttle {
    pub(crate) fn new(limits: &Limits) -> Self {
        let headroom = limits.headroom.clamp(0.1, 1.0);
        Throttle {
            app: AdaptiveRate::new(
                f64::from(limits.requests_per_second.max(1)) * headroom,
                burst(limits.requests_per_second, headroom),
            ),
            teams: RateLimiter::keyed(quota(
                f64::from(limits.team_requests_per_second.max(1)) * headroom,
                burst(limits.team_requests_per_second, headroom),
            )),
            mailboxes: Mutex::new(HashMap::new()),
            mailbox_concurrency: limits.mailbox_concurrency.max(1) as usize,
            in_flight: Arc::new(Semaphore::new(limits.max_concurrency.max(1) as usize)),
            paused: Mutex::new(HashMap::new()),
        }
    }

    /// Wait until the request may go: pauses over, team pace, mailbox and global slots,
    /// app pace (in that order, so no slot is held while waiting on a team).
    pub(crate) async fn acquire(&self, route: &Route) -> Permit {
        let keys: Vec<String> = [
            Some(APP.to_string()),
            route.team.as_ref().map(|t| format!("team:{t}")),
            route.mailbox.as_ref().map(|m| format!("mailbox:{m}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.wait_out_pauses(&keys).await;
        if let Some(team) = &route.team {
            self.teams.until_key_ready(team).await;
        }
        let mailbox = match &route.mailbox {
            Some(mailbox) => {
                let semaphore = lock(&self.mailboxes)
                    .entry(mailbox.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.mailbox_concurrency)))
                    .clone();
                semaphore.acquire_owned().await.ok()
            }
            None => None,
        };
        // The semaphores are never closed, so acquiring always succeeds.
        let in_flight = self.in_flight.clone().acquire_owned().await.ok();
        self.app.until_ready().await;
        // A 429 may have paused the app while this request waited its turn.
        self.wait_out_pauses(&keys[..1]).await;
        Permit {
            _in_flight: in_flight,
            _mailbox: mailbox,
        }
    }

    async fn wait_out_pauses(&self, keys: &[String]) {
        for key in keys {
            loop {
                let until = lock(&self.paused).get(key).copied();
                match until {
                    Some(until) if until > Instant::now() => {
                        tokio::time::sleep_until(until.into()).await
                    }
                    _ => break,
                }
            }
        }
    }

    /// Graph said 429 to a request on this route: pause the narrowest limit it counts
    /// against (a team, a mailbox, else the whole app) for `Retry-After` (without one, only
    /// the request itself backs off); a 429 for the app also halves the app's rate.
    pub(crate) fn throttled(&self, route: &Route, retry_after: Option<Duration>) {
        let key = match (&route.team, &route.mailbox) {
            (Some(team), _) => format!("team:{team}"),
            (None, Some(mailbox)) => format!("mailbox:{mailbox}"),
            (None, None) => {
                self.app.throttled();
                APP.to_string()
            }
        };
        let Some(pause) = retry_after else {
            return;
        };
        let until = Instant::now() + pause;
        let mut paused = lock(&self.paused);
        let entry = paused.entry(key).or_insert(until);
        *entry = (*entry).max(until);
    }

    pub(crate) fn succeeded(&self) {
        self.app.succeeded();
    }

    /// The app-wide rate the client currently aims at.
    pub(crate) fn app_rate(&self) -> f64 {
        self.app.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_come_from_the_url_path() {
        let team = Route::of(
            &Url::parse("https://g/v1.0/teams/T1/channels/19:c@thread.tacv2/messages/delta")
                .unwrap(),
        );
        assert_eq!(
            team,
            Route {
                team: Some("T1".into()),
                mailbox: None
            }
        );
        let mail = Route::of(
            &Url::parse("https://g/v1.0/users/U1/mailFolders/F/messages/delta?$skiptoken=x")
                .unwrap(),
        );
        assert_eq!(
            mail,
            Route {
                team: None,
                mailbox: Some("U1".into())
            }
        );
        let chats =
            Route::of(&Url::parse("https://g/beta/users/U1/chats/getAllMessages/delta").unwrap());
        assert_eq!(chats, Route::default());
    }

    #[tokio::test]
    async fn throttling_lowers_the_app_rate_and_success_restores_it_gradually() {
        let throttle = Throttle::new(&Limits {
            requests_per_second: 100,
            headroom: 1.0,
            ..Limits::default()
        });
        throttle.throttled(&Route::default(), Some(Duration::ZERO));
        assert!((throttle.app_rate() - 50.0).abs() < 1e-9);
        throttle.throttled(&Route::default(), Some(Duration::ZERO));
        assert!(
            (throttle.app_rate() - 50.0).abs() < 1e-9,
            "one decrease per burst of 429s"
        );
        throttle.succeeded();
        assert!(
            (throttle.app_rate() - 50.0).abs() < 1e-9,
            "no recovery within a second of a 429"
        );
    }

    #[tokio::test]
    async fn a_throttled_team_waits_out_its_retry_after() {
        let throttle = Throttle::new(&Limits::default());
        let route = Route {
            team: Some("T".into()),
            mailbox: None,
        };
        throttle.throttled(&route, Some(Duration::from_millis(300)));
        let started = Instant::now();
        let _permit = throttle.acquire(&route).await;
        assert!(started.elapsed() >= Duration::from_millis(290));
    }
}
