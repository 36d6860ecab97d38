//! Faults a test switches on: which requests they hit, how often, and what goes wrong.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The kinds of request the simulator serves, for fault targets and statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndpointKind {
    /// `POST /{tenant}/oauth2/v2.0/token`
    Token,
    /// `GET /v1.0/users`
    Users,
    /// `GET /v1.0/teams`
    Teams,
    /// `GET /v1.0/teams/{id}/allChannels`
    Channels,
    /// `GET /v1.0/users/{id}/mailFolders` and `.../mailFolders/{id}/childFolders`
    MailFolders,
    /// `GET /v1.0/users/{id}/mailFolders/{id or well-known name}`
    MailFolder,
    /// `GET /v1.0/users/{id}/chats`
    UserChats,
    /// `GET /v1.0/users/{id}/chats/getAllMessages`
    ChatMessagesWindow,
    /// `GET /beta/users/{id}/chats/getAllMessages/delta`
    ChatMessagesDelta,
    /// `GET /v1.0/teams/{id}/channels/getAllMessages`
    TeamMessagesWindow,
    /// `GET /v1.0/teams/{id}/channels/{id}/messages`
    ChannelMessages,
    /// `GET /v1.0/teams/{id}/channels/{id}/messages/delta`
    ChannelMessagesDelta,
    /// `GET /v1.0/teams/{id}/channels/{id}/messages/{id}/replies`
    Replies,
    /// `GET /v1.0/users/{id}/mailFolders/{id}/messages/delta`
    MailDelta,
    /// `GET .../messages/{id}/hostedContents` and `.../hostedContents/{id}`
    HostedContents,
    /// `GET .../messages/{id}/hostedContents/{id}/$value`
    HostedContentValue,
    /// `GET /v1.0/shares/{id}/driveItem` and `/drives/{id}/items/{id}`
    DriveItem,
    /// `GET .../driveItem/content` and `/drives/{id}/items/{id}/content` (a 302)
    DriveItemContent,
    /// The pre-authenticated download URL a file's `content` redirects to (no token).
    Download,
    /// `GET /v1.0/users/{id}/messages/{id}/attachments` and `.../attachments/{id}`
    MailAttachments,
    /// `GET .../attachments/{id}/$value`
    MailAttachmentValue,
    /// `GET /v1.0/users/{id}/messages/{id}/$value`
    MailMime,
    /// Anything else under a Graph version prefix.
    Unknown,
}

/// A list of fault rules; the first rule that matches a request and fires decides its fault.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    pub fn none() -> Self {
        FaultPlan::default()
    }

    pub fn with(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub fault: Fault,
    #[serde(default)]
    pub target: Target,
    pub schedule: Schedule,
}

impl FaultRule {
    /// The next `n` matching requests get `fault` (any Graph call unless `on` narrows it).
    pub fn times(fault: Fault, n: u32) -> Self {
        FaultRule {
            fault,
            target: Target::AnyGraph,
            schedule: Schedule::Times(n),
        }
    }

    /// Every `n`th matching request gets `fault`.
    pub fn every(fault: Fault, n: u32) -> Self {
        FaultRule {
            fault,
            target: Target::AnyGraph,
            schedule: Schedule::Every(n),
        }
    }

    /// Each matching request gets `fault` with this probability (seeded, so repeatable
    /// for the same order of requests).
    pub fn probability(fault: Fault, p: f64) -> Self {
        FaultRule {
            fault,
            target: Target::AnyGraph,
            schedule: Schedule::Probability(p),
        }
    }

    pub fn on(mut self, target: Target) -> Self {
        self.target = target;
        self
    }
}

/// Which requests a rule looks at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// Every Graph call and file download (not token requests, not the admin API).
    #[default]
    AnyGraph,
    Endpoint(EndpointKind),
    /// Requests whose path and query contain this text (token requests included).
    PathContains(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Schedule {
    /// The next n matching requests, then never again.
    Times(u32),
    /// Every nth matching request (the nth, 2nth, ...).
    Every(u32),
    /// Each matching request with this probability.
    Probability(f64),
}

/// What goes wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Fault {
    /// 429 with `{"error":{"code":"TooManyRequests"}}`.
    TooManyRequests { retry_after: RetryAfter },
    /// 503 with `{"error":{"code":"ServiceUnavailable"}}`.
    ServiceUnavailable { retry_after: RetryAfter },
    /// Any other status (500, 502, 504, ...) with a Graph error body.
    Status { status: u16 },
    /// The connection is dropped before a response arrives.
    ConnectionReset,
    /// Headers promise the whole body (`Content-Length`); half of it arrives, then the
    /// connection closes. Content (images, files, attachments, MIME) is cut alike.
    TruncatedBody,
    /// A complete HTTP response whose JSON body is cut in half (a broken proxy).
    IncompleteJson,
    /// The response is held back this long first.
    Slow { delay_ms: u64 },
    /// 401 InvalidAuthenticationToken; the presented access token is dead from now on.
    ExpiredToken,
    /// A page whose `@odata.nextLink` is the URL it was asked at (a paging bug, or a
    /// proxy that rewrites links): a client that follows it pages forever.
    NextLinkToItself,
}

impl Fault {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Fault::TooManyRequests { .. } => "429",
            Fault::ServiceUnavailable { .. } => "503",
            Fault::Status { .. } => "status",
            Fault::ConnectionReset => "connection-reset",
            Fault::TruncatedBody => "truncated-body",
            Fault::IncompleteJson => "incomplete-json",
            Fault::Slow { .. } => "slow",
            Fault::ExpiredToken => "expired-token",
            Fault::NextLinkToItself => "next-link-to-itself",
        }
    }
}

/// The `Retry-After` header of a 429 or 503.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RetryAfter {
    Absent,
    /// `Retry-After: 2`
    Seconds(u32),
    /// `Retry-After: 1.25` (Graph sends fractions in some samples)
    Millis(u32),
    /// `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`, this many seconds from now.
    HttpDate(u32),
}

impl RetryAfter {
    pub(crate) fn header_value(&self) -> Option<String> {
        match *self {
            RetryAfter::Absent => None,
            RetryAfter::Seconds(s) => Some(s.to_string()),
            RetryAfter::Millis(ms) => Some(format!("{}.{:03}", ms / 1000, ms % 1000)),
            RetryAfter::HttpDate(s) => {
                // Round up to the next whole second so the date is never earlier than meant.
                let at =
                    std::time::SystemTime::now() + std::time::Duration::from_secs(u64::from(s) + 1);
                Some(httpdate::fmt_http_date(at))
            }
        }
    }
}

/// A plan plus the counters that make `Times` and `Every` work.
pub(crate) struct FaultState {
    plan: FaultPlan,
    matched: Vec<u64>,
    fired: Vec<u64>,
    rng: StdRng,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan, seed: u64) -> Self {
        let n = plan.rules.len();
        FaultState {
            plan,
            matched: vec![0; n],
            fired: vec![0; n],
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_fa17),
        }
    }

    pub(crate) fn replace(&mut self, plan: FaultPlan) {
        let n = plan.rules.len();
        self.plan = plan;
        self.matched = vec![0; n];
        self.fired = vec![0; n];
    }

    /// The fault for this request, if any rule fires.
    pub(crate) fn decide(&mut self, endpoint: EndpointKind, path_and_query: &str) -> Option<Fault> {
        for (i, rule) in self.plan.rules.iter().enumerate() {
            let applies = match &rule.target {
                Target::AnyGraph => endpoint != EndpointKind::Token,
                Target::Endpoint(kind) => *kind == endpoint,
                Target::PathContains(text) => path_and_query.contains(text.as_str()),
            };
            if !applies {
                continue;
            }
            self.matched[i] += 1;
            let fire = match rule.schedule {
                Schedule::Times(n) => self.fired[i] < u64::from(n),
                Schedule::Every(n) => n > 0 && self.matched[i].is_multiple_of(u64::from(n)),
                Schedule::Probability(p) => self.rng.random::<f64>() < p,
            };
            if fire {
                self.fired[i] += 1;
                return Some(rule.fault.clone());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_fires_for_the_first_n_matching_requests_only() {
        let plan = FaultPlan::none().with(
            FaultRule::times(Fault::Status { status: 502 }, 2)
                .on(Target::Endpoint(EndpointKind::MailDelta)),
        );
        let mut state = FaultState::new(plan, 1);
        assert_eq!(state.decide(EndpointKind::Users, "/v1.0/users"), None);
        assert!(state.decide(EndpointKind::MailDelta, "/x").is_some());
        assert!(state.decide(EndpointKind::MailDelta, "/x").is_some());
        assert_eq!(state.decide(EndpointKind::MailDelta, "/x"), None);
    }

    #[test]
    fn every_fires_on_each_nth_match_and_any_graph_skips_token_requests() {
        let plan = FaultPlan::none().with(FaultRule::every(Fault::ConnectionReset, 3));
        let mut state = FaultState::new(plan, 1);
        let fired: Vec<bool> = (0..6)
            .map(|_| state.decide(EndpointKind::Teams, "/v1.0/teams").is_some())
            .collect();
        assert_eq!(fired, [false, false, true, false, false, true]);
        for _ in 0..5 {
            assert_eq!(
                state.decide(EndpointKind::Token, "/t/oauth2/v2.0/token"),
                None
            );
        }
    }

    #[test]
    fn retry_after_forms_render_as_http_headers() {
        assert_eq!(RetryAfter::Seconds(3).header_value().as_deref(), Some("3"));
        assert_eq!(
            RetryAfter::Millis(2128).header_value().as_deref(),
            Some("2.128")
        );
        assert_eq!(RetryAfter::Absent.header_value(), None);
        let date = RetryAfter::HttpDate(2).header_value().unwrap_or_default();
        let parsed = httpdate::parse_http_date(&date).expect("an HTTP-date");
        assert!(parsed > std::time::SystemTime::now());
    }
}
