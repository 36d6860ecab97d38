//! Graph's throttling, per app per tenant: a request rate over every call, a request rate
//! per team (and its channels), and requests in flight per mailbox. Rates are counted in
//! a sliding one-second window; what was observed is kept for statistics whether or not
//! a limit is set.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::RateLimits;
use crate::stats::BucketStats;

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
struct RateBucket {
    admitted_at: VecDeque<Instant>,
    admitted: u64,
    throttled: u64,
    max_in_window: u32,
}

impl RateBucket {
    fn prune(&mut self, now: Instant) {
        while let Some(&first) = self.admitted_at.front() {
            if now.duration_since(first) >= WINDOW {
                self.admitted_at.pop_front();
            } else {
                break;
            }
        }
    }

    /// How long until one more request fits under `limit`, if it does not now.
    fn wait_for(&mut self, now: Instant, limit: Option<u32>) -> Option<Duration> {
        self.prune(now);
        let limit = limit? as usize;
        if self.admitted_at.len() < limit {
            return None;
        }
        let oldest = self.admitted_at[self.admitted_at.len() - limit];
        Some(WINDOW.saturating_sub(now.duration_since(oldest)))
    }

    fn admit(&mut self, now: Instant) {
        self.admitted_at.push_back(now);
        self.admitted += 1;
        self.max_in_window = self.max_in_window.max(self.admitted_at.len() as u32);
    }
}

#[derive(Default)]
struct ConcurrencyBucket {
    in_flight: u32,
    admitted: u64,
    throttled: u64,
    max_in_flight: u32,
}

/// Which limits a request counts against.
#[derive(Clone, Debug, Default)]
pub(crate) struct Buckets {
    pub team: Option<String>,
    pub mailbox: Option<String>,
}

/// A 429 from throttling.
pub(crate) struct Throttled {
    pub retry_after: Duration,
    pub bucket: String,
}

pub(crate) struct Limiter {
    limits: Option<RateLimits>,
    app: RateBucket,
    teams: HashMap<String, RateBucket>,
    mailboxes: HashMap<String, ConcurrencyBucket>,
    in_flight: u32,
    max_in_flight: u32,
}

impl Limiter {
    pub(crate) fn new(limits: Option<RateLimits>) -> Self {
        Limiter {
            limits,
            app: RateBucket::default(),
            teams: HashMap::new(),
            mailboxes: HashMap::new(),
            in_flight: 0,
            max_in_flight: 0,
        }
    }

    pub(crate) fn set_limits(&mut self, limits: Option<RateLimits>) {
        self.limits = limits;
    }

    pub(crate) fn reset_stats(&mut self) {
        let limits = self.limits;
        *self = Limiter::new(limits);
    }

    /// Admit a request now, or say how long it should have waited.
    pub(crate) fn admit(&mut self, buckets: &Buckets) -> Result<(), Throttled> {
        let now = Instant::now();
        let limits = self.limits;
        let mut wait: Option<(Duration, String)> = None;
        let mut consider = |found: Option<Duration>, name: String| {
            if let Some(d) = found
                && wait.as_ref().is_none_or(|(w, _)| d > *w)
            {
                wait = Some((d, name));
            }
        };
        consider(
            self.app
                .wait_for(now, limits.map(|l| l.app_requests_per_second)),
            "app".into(),
        );
        if let Some(team) = &buckets.team {
            let bucket = self.teams.entry(team.clone()).or_default();
            consider(
                bucket.wait_for(now, limits.map(|l| l.team_requests_per_second)),
                format!("team:{team}"),
            );
        }
        if let Some(mailbox) = &buckets.mailbox {
            let bucket = self.mailboxes.entry(mailbox.clone()).or_default();
            if let Some(limit) = limits.map(|l| l.mailbox_concurrency)
                && bucket.in_flight >= limit
            {
                consider(Some(Duration::from_secs(1)), format!("mailbox:{mailbox}"));
            }
        }
        if let Some((retry_after, bucket)) = wait {
            if bucket == "app" {
                self.app.throttled += 1;
            } else if let Some(team) = bucket.strip_prefix("team:") {
                if let Some(b) = self.teams.get_mut(team) {
                    b.throttled += 1;
                }
            } else if let Some(mailbox) = bucket.strip_prefix("mailbox:")
                && let Some(b) = self.mailboxes.get_mut(mailbox)
            {
                b.throttled += 1;
            }
            return Err(Throttled {
                retry_after,
                bucket,
            });
        }
        self.app.admit(now);
        if let Some(team) = &buckets.team
            && let Some(b) = self.teams.get_mut(team)
        {
            b.admit(now);
        }
        if let Some(mailbox) = &buckets.mailbox
            && let Some(b) = self.mailboxes.get_mut(mailbox)
        {
            b.in_flight += 1;
            b.admitted += 1;
            b.max_in_flight = b.max_in_flight.max(b.in_flight);
        }
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
        Ok(())
    }

    /// An admitted request has finished.
    pub(crate) fn release(&mut self, buckets: &Buckets) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(mailbox) = &buckets.mailbox
            && let Some(b) = self.mailboxes.get_mut(mailbox)
        {
            b.in_flight = b.in_flight.saturating_sub(1);
        }
    }

    pub(crate) fn stats(&self) -> (Vec<BucketStats>, u32) {
        let limits = self.limits;
        let mut out = vec![BucketStats {
            bucket: "app".into(),
            limit: limits.map(|l| l.app_requests_per_second),
            unit: "requests/s".into(),
            admitted: self.app.admitted,
            throttled: self.app.throttled,
            max_observed: self.app.max_in_window,
        }];
        let mut teams: Vec<_> = self.teams.iter().collect();
        teams.sort_by(|a, b| a.0.cmp(b.0));
        for (team, b) in teams {
            out.push(BucketStats {
                bucket: format!("team:{team}"),
                limit: limits.map(|l| l.team_requests_per_second),
                unit: "requests/s".into(),
                admitted: b.admitted,
                throttled: b.throttled,
                max_observed: b.max_in_window,
            });
        }
        let mut mailboxes: Vec<_> = self.mailboxes.iter().collect();
        mailboxes.sort_by(|a, b| a.0.cmp(b.0));
        for (mailbox, b) in mailboxes {
            out.push(BucketStats {
                bucket: format!("mailbox:{mailbox}"),
                limit: limits.map(|l| l.mailbox_concurrency),
                unit: "in flight".into(),
                admitted: b.admitted,
                throttled: b.throttled,
                max_observed: b.max_in_flight,
            });
        }
        (out, self.max_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sliding_window_refuses_the_request_over_the_limit_and_says_when() {
        let mut limiter = Limiter::new(Some(RateLimits {
            app_requests_per_second: 3,
            team_requests_per_second: 2,
            mailbox_concurrency: 1,
        }));
        let none = Buckets::default();
        for _ in 0..3 {
            assert!(limiter.admit(&none).is_ok());
        }
        let refused = limiter
            .admit(&none)
            .expect_err("fourth request in a second is throttled");
        assert_eq!(refused.bucket, "app");
        assert!(refused.retry_after <= WINDOW && refused.retry_after > Duration::from_millis(900));
    }

    #[test]
    fn mailbox_concurrency_counts_requests_in_flight() {
        let mut limiter = Limiter::new(Some(RateLimits {
            app_requests_per_second: 100,
            team_requests_per_second: 100,
            mailbox_concurrency: 1,
        }));
        let mailbox = Buckets {
            team: None,
            mailbox: Some("u1".into()),
        };
        assert!(limiter.admit(&mailbox).is_ok());
        assert!(limiter.admit(&mailbox).is_err());
        limiter.release(&mailbox);
        assert!(limiter.admit(&mailbox).is_ok());
        let (stats, _) = limiter.stats();
        let bucket = stats
            .iter()
            .find(|b| b.bucket == "mailbox:u1")
            .expect("mailbox bucket");
        assert_eq!(
            (bucket.admitted, bucket.throttled, bucket.max_observed),
            (2, 1, 1)
        );
    }
}
