//! What a test or benchmark chooses: the tenant's size, timing, limits and faults.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::faults::FaultPlan;

/// Everything that shapes a simulated tenant and how it is served.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Same seed, same tenant, byte for byte.
    pub seed: u64,
    pub users: usize,
    /// Chat messages each user sends (into the chats they belong to).
    pub messages_per_user: usize,
    pub teams: usize,
    pub channels_per_team: usize,
    /// Root messages per channel.
    pub messages_per_channel: usize,
    /// Upper bound of replies per root message (each root gets 0..=this many).
    pub max_replies_per_message: usize,
    pub mail_per_user: usize,
    /// Generated history reaches this many days back from `start_time`.
    pub history_days: u32,
    /// The simulated clock's start; it moves only with mutations and `advance_clock`.
    pub start_time: DateTime<Utc>,
    /// Added to every Graph response (not to token or admin calls).
    pub latency: Duration,
    /// Graph's throttling; `None` serves everything that arrives.
    pub rate_limit: Option<RateLimits>,
    pub faults: FaultPlan,
    pub access_token_lifetime: Duration,
    /// Delta and skip tokens older than this (simulated time) get 410 Gone.
    pub state_token_lifetime: chrono::Duration,
    /// Chance, in thousandths, that a delta page repeats an item already served.
    pub replay_per_mille: u32,
    pub link_style: LinkStyle,
    /// Serve at most this many items per page whatever the client asks (server-driven paging).
    pub page_size_cap: Option<u32>,
    pub billing: Billing,
    /// Keep every access and state token issued, for tests that prove none leaks.
    pub record_issued_tokens: bool,
}

impl SimConfig {
    /// A handful of everything: quick to generate, enough to page through.
    pub fn small() -> Self {
        SimConfig {
            seed: 7,
            users: 6,
            messages_per_user: 24,
            teams: 2,
            channels_per_team: 2,
            messages_per_channel: 12,
            max_replies_per_message: 3,
            mail_per_user: 14,
            history_days: 60,
            start_time: Utc
                .with_ymd_and_hms(2025, 6, 2, 9, 30, 0)
                .single()
                .unwrap_or_default(),
            latency: Duration::ZERO,
            rate_limit: None,
            faults: FaultPlan::default(),
            access_token_lifetime: Duration::from_secs(3599),
            state_token_lifetime: chrono::Duration::days(7),
            replay_per_mille: 60,
            link_style: LinkStyle::Mixed,
            page_size_cap: None,
            billing: Billing::default(),
            record_issued_tokens: true,
        }
    }

    /// A tenant that looks lived-in, for the demo.
    pub fn demo() -> Self {
        SimConfig {
            users: 24,
            messages_per_user: 120,
            teams: 3,
            channels_per_team: 3,
            messages_per_channel: 40,
            max_replies_per_message: 5,
            mail_per_user: 40,
            history_days: 120,
            ..SimConfig::small()
        }
    }

    /// The benchmark tenant: 200 users x 500 messages, Graph's limits, 30 ms per page.
    pub fn bench() -> Self {
        SimConfig {
            users: 200,
            messages_per_user: 500,
            teams: 4,
            channels_per_team: 4,
            messages_per_channel: 100,
            max_replies_per_message: 4,
            mail_per_user: 20,
            history_days: 180,
            latency: Duration::from_millis(30),
            rate_limit: Some(RateLimits::default()),
            record_issued_tokens: false,
            ..SimConfig::small()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::small()
    }
}

/// Graph's published limits, per app per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimits {
    /// Requests per second over every Graph call of the app (a sliding one-second window).
    pub app_requests_per_second: u32,
    /// Requests per second against one team and its channels.
    pub team_requests_per_second: u32,
    /// Requests in flight against one mailbox.
    pub mailbox_concurrency: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            app_requests_per_second: 200,
            team_requests_per_second: 4,
            mailbox_concurrency: 4,
        }
    }
}

/// How `@odata.nextLink` and `@odata.deltaLink` are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkStyle {
    /// `http://host:port/v1.0/...`
    Absolute,
    /// `/v1.0/...`, relative to the service root.
    Relative,
    /// Channel messages and replies relative (as some Graph docs show), the rest absolute.
    Mixed,
}

/// Which payment models the app registration has billing for (`model=A|B` on
/// getAllMessages), and how many items evaluation mode (no `model`) may return in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    pub model_a: bool,
    pub model_b: bool,
    pub evaluation_items: u64,
}

impl Default for Billing {
    fn default() -> Self {
        Billing {
            model_a: true,
            model_b: true,
            evaluation_items: 10_000,
        }
    }
}
