//! Graph's throttling, per app per tenant, as Microsoft's throttling-limits page states it
//! for Teams and Outlook: a request rate per Teams request type, 4 requests/s on a given
//! team (whatever URL names it), 1 request/s on a given channel, and per mailbox 4
//! requests in flight and 10,000 requests in 10 minutes. A test may add a bucket over every
//! call (a tenant whose real limit is below the published ones) and a longer sustained
//! window. Rates are counted in sliding windows; what was observed is kept for statistics
//! whether or not a limit is set.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::RateLimits;
use crate::stats::BucketStats;

const SECOND: Duration = Duration::from_secs(1);

/// Teams request types with a published limit per app per tenant ("Microsoft Teams service
/// limits"; the rest of Graph, such as `/users` and Outlook, is limited elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum RequestType {
    /// `GET users/{id}/chats/getAllMessages` (and its delta): 200 rps.
    ChatMessagesExport,
    /// `GET teams/{id}/channels/getAllMessages`: 200 rps.
    ChannelMessagesExport,
    /// `GET channel message` (list, delta, replies): 20 rps.
    ChannelMessage,
    /// `GET /teams/{id}/channels`: 60 rps.
    Channels,
    /// Other GET API calls for Microsoft Teams: 30 rps.
    OtherTeamsGet,
}

impl RequestType {
    pub(crate) fn published_per_second(self) -> u32 {
        match self {
            RequestType::ChatMessagesExport | RequestType::ChannelMessagesExport => 200,
            RequestType::ChannelMessage => 20,
            RequestType::Channels => 60,
            RequestType::OtherTeamsGet => 30,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RequestType::ChatMessagesExport => "chatMessagesExport",
            RequestType::ChannelMessagesExport => "channelMessagesExport",
            RequestType::ChannelMessage => "channelMessage",
            RequestType::Channels => "channels",
            RequestType::OtherTeamsGet => "otherTeamsGet",
        }
    }
}

/// Requests admitted in a sliding window.
#[derive(Default)]
struct Window {
    admitted_at: VecDeque<Instant>,
    admitted: u64,
    throttled: u64,
    max_in_window: u32,
}

impl Window {
    fn prune(&mut self, now: Instant, span: Duration) {
        while let Some(&first) = self.admitted_at.front() {
            if now.duration_since(first) >= span {
                self.admitted_at.pop_front();
            } else {
                break;
            }
        }
    }

    /// How long until one more request fits `limit` per `span`, if it does not now.
    fn wait_for(&mut self, now: Instant, limit: Option<u32>, span: Duration) -> Option<Duration> {
        self.prune(now, span);
        let limit = limit? as usize;
        if self.admitted_at.len() < limit {
            return None;
        }
        let oldest = self.admitted_at[self.admitted_at.len() - limit.max(1)];
        Some(span.saturating_sub(now.duration_since(oldest)))
    }

    fn admit(&mut self, now: Instant) {
        self.admitted_at.push_back(now);
        self.admitted += 1;
        self.max_in_window = self.max_in_window.max(self.admitted_at.len() as u32);
    }
}

/// A per-second limit, and the same limit's sustained window if one is set.
#[derive(Default)]
struct RateBucket {
    second: Window,
    sustained: Window,
}

#[derive(Default)]
struct ConcurrencyBucket {
    in_flight: u32,
    admitted: u64,
    throttled: u64,
    max_in_flight: u32,
}

/// Which limits a request counts against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Buckets {
    pub request_type: Option<RequestType>,
    pub team: Option<String>,
    /// `{team}/{channel}`.
    pub channel: Option<String>,
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
    types: HashMap<RequestType, RateBucket>,
    teams: HashMap<String, RateBucket>,
    channels: HashMap<String, RateBucket>,
    mailbox_rates: HashMap<String, Window>,
    mailboxes: HashMap<String, ConcurrencyBucket>,
    in_flight: u32,
    max_in_flight: u32,
}

/// The mailbox window Outlook publishes: 10,000 requests in 10 minutes.
const MAILBOX_SPAN: Duration = Duration::from_secs(600);

enum Key {
    App,
    Type(RequestType),
    Team(String),
    Channel(String),
    MailboxRate(String),
    Mailbox(String),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::App => "app".into(),
            Key::Type(t) => format!("type:{}", t.name()),
            Key::Team(t) => format!("team:{t}"),
            Key::Channel(c) => format!("channel:{c}"),
            Key::MailboxRate(m) => format!("mailbox-rate:{m}"),
            Key::Mailbox(m) => format!("mailbox:{m}"),
        }
    }
}

impl Limiter {
    pub(crate) fn new(limits: Option<RateLimits>) -> Self {
        Limiter {
            limits,
            app: RateBucket::default(),
            types: HashMap::new(),
            teams: HashMap::new(),
            channels: HashMap::new(),
            mailbox_rates: HashMap::new(),
            mailboxes: HashMap::new(),
            in_flight: 0,
            max_in_flight: 0,
        }
    }

    pub(crate) fn set_limits(&mut self, limits: Option<RateLimits>) {
        self.limits = limits;
    }

    /// A fixed `Retry-After` for throttled requests, if the limits set one.
    pub(crate) fn retry_after_seconds(&self) -> Option<u32> {
        self.limits.and_then(|l| l.retry_after_seconds)
    }

    pub(crate) fn reset_stats(&mut self) {
        let limits = self.limits;
        *self = Limiter::new(limits);
    }

    fn bucket(&mut self, key: &Key) -> Option<&mut RateBucket> {
        Some(match key {
            Key::App => &mut self.app,
            Key::Type(t) => self.types.entry(*t).or_default(),
            Key::Team(t) => self.teams.entry(t.clone()).or_default(),
            Key::Channel(c) => self.channels.entry(c.clone()).or_default(),
            Key::MailboxRate(_) | Key::Mailbox(_) => return None,
        })
    }

    /// The per-second limit of a rate key.
    fn rate_of(&self, key: &Key) -> Option<u32> {
        let limits = self.limits?;
        match key {
            Key::App => limits.app_requests_per_second,
            Key::Type(t) => limits.request_types.then(|| t.published_per_second()),
            Key::Team(_) => limits.team_requests_per_second,
            Key::Channel(_) => limits.channel_requests_per_second,
            Key::MailboxRate(_) | Key::Mailbox(_) => None,
        }
    }

    /// Admit a request now, or say how long it should have waited.
    pub(crate) fn admit(&mut self, buckets: &Buckets) -> Result<(), Throttled> {
        let now = Instant::now();
        let limits = self.limits;
        let mut keys = vec![Key::App];
        keys.extend(buckets.request_type.map(Key::Type));
        keys.extend(buckets.team.clone().map(Key::Team));
        keys.extend(buckets.channel.clone().map(Key::Channel));
        if let Some(mailbox) = &buckets.mailbox {
            keys.push(Key::MailboxRate(mailbox.clone()));
            keys.push(Key::Mailbox(mailbox.clone()));
        }
        let mut wait: Option<(Duration, usize)> = None;
        for (i, key) in keys.iter().enumerate() {
            let found = match key {
                Key::MailboxRate(m) => self.mailbox_rates.entry(m.clone()).or_default().wait_for(
                    now,
                    limits.and_then(|l| l.mailbox_requests_per_ten_minutes),
                    MAILBOX_SPAN,
                ),
                Key::Mailbox(m) => {
                    let bucket = self.mailboxes.entry(m.clone()).or_default();
                    limits
                        .and_then(|l| l.mailbox_concurrency)
                        .filter(|&limit| bucket.in_flight >= limit)
                        .map(|_| SECOND)
                }
                _ => {
                    let rate = self.rate_of(key);
                    let sustained = limits.and_then(|l| l.sustained).and_then(|s| {
                        rate.map(|r| (s.limit_for(r), Duration::from_secs(s.window_seconds.into())))
                    });
                    let Some(bucket) = self.bucket(key) else {
                        continue;
                    };
                    let mut found = bucket.second.wait_for(now, rate, SECOND);
                    if let Some((limit, span)) = sustained {
                        let longer = bucket.sustained.wait_for(now, Some(limit), span);
                        found = found.max(longer);
                    }
                    found
                }
            };
            if let Some(d) = found
                && wait.is_none_or(|(w, _)| d > w)
            {
                wait = Some((d, i));
            }
        }
        if let Some((retry_after, i)) = wait {
            let key = &keys[i];
            match key {
                Key::MailboxRate(m) => {
                    if let Some(b) = self.mailbox_rates.get_mut(m) {
                        b.throttled += 1;
                    }
                }
                Key::Mailbox(m) => {
                    if let Some(b) = self.mailboxes.get_mut(m) {
                        b.throttled += 1;
                    }
                }
                _ => {
                    if let Some(b) = self.bucket(key) {
                        b.second.throttled += 1;
                    }
                }
            }
            return Err(Throttled {
                retry_after,
                bucket: key.name(),
            });
        }
        let sustained = limits.and_then(|l| l.sustained).is_some();
        for key in &keys {
            match key {
                Key::MailboxRate(m) => {
                    if let Some(b) = self.mailbox_rates.get_mut(m) {
                        b.admit(now);
                    }
                }
                Key::Mailbox(m) => {
                    if let Some(b) = self.mailboxes.get_mut(m) {
                        b.in_flight += 1;
                        b.admitted += 1;
                        b.max_in_flight = b.max_in_flight.max(b.in_flight);
                    }
                }
                _ => {
                    if let Some(b) = self.bucket(key) {
                        b.second.admit(now);
                        if sustained {
                            b.sustained.admit(now);
                        }
                    }
                }
            }
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
        let rate = |name: String, limit: Option<u32>, b: &RateBucket| BucketStats {
            bucket: name,
            limit,
            unit: "requests/s".into(),
            admitted: b.second.admitted,
            throttled: b.second.throttled,
            max_observed: b.second.max_in_window,
        };
        let mut out = vec![rate(
            "app".into(),
            limits.and_then(|l| l.app_requests_per_second),
            &self.app,
        )];
        let mut types: Vec<_> = self.types.iter().collect();
        types.sort_by_key(|(t, _)| **t);
        for (t, b) in types {
            out.push(rate(Key::Type(*t).name(), self.rate_of(&Key::Type(*t)), b));
        }
        let mut teams: Vec<_> = self.teams.iter().collect();
        teams.sort_by(|a, b| a.0.cmp(b.0));
        for (team, b) in teams {
            out.push(rate(
                format!("team:{team}"),
                limits.and_then(|l| l.team_requests_per_second),
                b,
            ));
        }
        let mut channels: Vec<_> = self.channels.iter().collect();
        channels.sort_by(|a, b| a.0.cmp(b.0));
        for (channel, b) in channels {
            out.push(rate(
                format!("channel:{channel}"),
                limits.and_then(|l| l.channel_requests_per_second),
                b,
            ));
        }
        let mut mailboxes: Vec<_> = self.mailboxes.iter().collect();
        mailboxes.sort_by(|a, b| a.0.cmp(b.0));
        for (mailbox, b) in mailboxes {
            out.push(BucketStats {
                bucket: format!("mailbox:{mailbox}"),
                limit: limits.and_then(|l| l.mailbox_concurrency),
                unit: "in flight".into(),
                admitted: b.admitted,
                throttled: b.throttled,
                max_observed: b.max_in_flight,
            });
        }
        let mut mailbox_rates: Vec<_> = self.mailbox_rates.iter().collect();
        mailbox_rates.sort_by(|a, b| a.0.cmp(b.0));
        for (mailbox, b) in mailbox_rates {
            out.push(BucketStats {
                bucket: format!("mailbox-rate:{mailbox}"),
                limit: limits.and_then(|l| l.mailbox_requests_per_ten_minutes),
                unit: "requests/10 min".into(),
                admitted: b.admitted,
                throttled: b.throttled,
                max_observed: b.max_in_window,
            });
        }
        (out, self.max_in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SustainedLimit;

    fn only_app(app: u32) -> RateLimits {
        RateLimits {
            app_requests_per_second: Some(app),
            ..RateLimits::unlimited()
        }
    }

    #[test]
    fn the_sliding_window_refuses_the_request_over_the_limit_and_says_when() {
        let mut limiter = Limiter::new(Some(only_app(3)));
        let none = Buckets::default();
        for _ in 0..3 {
            assert!(limiter.admit(&none).is_ok());
        }
        let refused = limiter
            .admit(&none)
            .expect_err("fourth request in a second is throttled");
        assert_eq!(refused.bucket, "app");
        assert!(refused.retry_after <= SECOND && refused.retry_after > Duration::from_millis(900));
    }

    #[test]
    fn request_types_teams_and_channels_have_their_published_limits() {
        let mut limiter = Limiter::new(Some(RateLimits::default()));
        let channel = Buckets {
            request_type: Some(RequestType::ChannelMessage),
            team: Some("T".into()),
            channel: Some("T/C".into()),
            mailbox: None,
        };
        assert!(limiter.admit(&channel).is_ok());
        let refused = limiter.admit(&channel).expect_err("1 a second per channel");
        assert_eq!(refused.bucket, "channel:T/C");
        let other = Buckets {
            channel: Some("T/D".into()),
            ..channel.clone()
        };
        let third = Buckets {
            channel: Some("T/E".into()),
            ..channel.clone()
        };
        let fourth = Buckets {
            channel: Some("T/F".into()),
            ..channel.clone()
        };
        let fifth = Buckets {
            channel: Some("T/G".into()),
            ..channel.clone()
        };
        for b in [&other, &third, &fourth] {
            assert!(limiter.admit(b).is_ok());
        }
        let refused = limiter.admit(&fifth).expect_err("4 a second per team");
        assert_eq!(refused.bucket, "team:T");
    }

    #[test]
    fn a_sustained_window_holds_a_share_of_the_rate() {
        let mut limiter = Limiter::new(Some(RateLimits {
            sustained: Some(SustainedLimit {
                window_seconds: 10,
                per_mille: 500,
            }),
            ..only_app(4)
        }));
        let none = Buckets::default();
        // 4 a second, but at most 20 in 10 seconds.
        let mut admitted = 0;
        for _ in 0..40 {
            admitted += usize::from(limiter.admit(&none).is_ok());
        }
        assert_eq!(admitted, 4);
        // Pretend 20 were admitted six seconds ago: the one-second window has room, the
        // 10-second window does not until they are 10 seconds old.
        let past = Instant::now() - Duration::from_secs(6);
        limiter.app.second.admitted_at.clear();
        limiter.app.sustained.admitted_at = (0..20).map(|_| past).collect();
        let refused = limiter.admit(&none).expect_err("sustained window full");
        assert!(
            refused.retry_after > Duration::from_secs(3),
            "{:?}",
            refused.retry_after
        );
    }

    #[test]
    fn mailbox_concurrency_counts_requests_in_flight() {
        let mut limiter = Limiter::new(Some(RateLimits {
            mailbox_concurrency: Some(1),
            ..RateLimits::unlimited()
        }));
        let mailbox = Buckets {
            mailbox: Some("u1".into()),
            ..Buckets::default()
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
