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

    // ---- Graph's documented behaviour, each switchable (defaults: as documented) ----
    /// Evolvable enums: in v1.0 `chatMessageType` lists `systemEventMessage` after
    /// `unknownFutureValue` (and `teamworkUserIdentityType` lists `emailUser`, beta also
    /// `azureCommunicationServicesUser`), so without `Prefer: include-unknown-enum-members`
    /// Graph answers `unknownFutureValue` for them (best-practices: evolvable enums; the
    /// list-channel-messages example shows a system event served so).
    pub evolvable_enums: bool,
    /// Chat and channel delta return only messages changed within this many months
    /// ("Delta will only return messages within the last eight months"); older history
    /// comes from getAllMessages or the channel's message list. `None`: all history.
    pub delta_history_months: Option<u32>,
    /// Refuse (400) a query parameter repeated on a later delta call, instead of ignoring
    /// it as Graph does (the state token already carries the first call's parameters).
    pub refuse_repeated_delta_parameters: bool,
    /// getAllMessages nextLinks in OData key syntax (`teams('{id}')/channels/getAllMessages`,
    /// `users('{id}')/chats/getAllMessages`), as Graph's documented responses show them.
    pub key_syntax_links: bool,
    /// A mail message's (REST) id changes when it moves to another folder, unless the
    /// request says `Prefer: IdType="ImmutableId"` (outlook-immutable-id).
    pub rest_ids_change_on_move: bool,

    // ---- the shape of a real tenant (defaults: none of it, so small tenants stay small) ----
    /// The last users have no Exchange Online mailbox (unlicensed, guest, shared or
    /// on-premises): their mail endpoints answer 404 `MailboxNotEnabledForRESTAPI`.
    pub users_without_mailbox: usize,
    /// Users (just before those without a mailbox) without the licence `model=A` needs:
    /// their getAllMessages and delta with `model=A` answer 402 ("needs a valid license").
    pub users_without_license: usize,
    /// Channel history reaches this many days back (default: `history_days`); beyond
    /// `delta_history_months`, channel delta does not return it.
    pub channel_history_days: Option<u32>,
    /// Folders nested under each user's Inbox, each inside the previous (any depth).
    pub nested_mail_folders: usize,
    /// Hidden folders (`isHidden`) at the top of each mailbox, listed only with
    /// `includeHiddenFolders=true`.
    pub hidden_mail_folders: usize,
    /// Messages in each user's Recoverable Items Deletions folder, reached only by its
    /// well-known name `recoverableitemsdeletions` (never listed by `mailFolders`).
    pub recoverable_items_per_user: usize,
    /// Channels shared into the tenant's teams from another tenant: listed by
    /// `allChannels` with the owner's `tenantId`; their messages answer 403 to this app.
    pub channels_shared_from_other_tenants: usize,

    // ---- what messages point to (defaults: nothing, so tenants stay as they were) ----
    /// Chance, in thousandths, that a generated chat or channel message hosts an inline
    /// image: an `<img>` whose `src` is Graph's own URL
    /// (`https://graph.microsoft.com/v1.0/chats/{id}/messages/{id}/hostedContents/{id}/$value`,
    /// or the channel and reply forms; some `beta`), served as a small real PNG.
    pub hosted_contents_per_mille: u32,
    /// Chance, in thousandths, that a generated chat or channel message shares a file: a
    /// `reference` attachment whose `contentUrl` is the file in the team's SharePoint site
    /// (or the sender's OneDrive, in chats), `/shares/{encoded url}/driveItem` serving it.
    /// Files come from a small pool per team or chat, so several messages share the same.
    pub file_attachments_per_mille: u32,
    /// Chance, in thousandths, that a generated mail item has one to three attachments
    /// (`hasAttachments: true`): file attachments mostly, some inline, item and reference
    /// attachments now and then.
    pub mail_attachments_per_mille: u32,
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
            evolvable_enums: true,
            delta_history_months: Some(8),
            refuse_repeated_delta_parameters: false,
            key_syntax_links: true,
            rest_ids_change_on_move: true,
            users_without_mailbox: 0,
            users_without_license: 0,
            channel_history_days: None,
            nested_mail_folders: 0,
            hidden_mail_folders: 0,
            recoverable_items_per_user: 0,
            channels_shared_from_other_tenants: 0,
            hosted_contents_per_mille: 0,
            file_attachments_per_mille: 0,
            mail_attachments_per_mille: 0,
        }
    }

    /// A small tenant shaped like real ones: users without a mailbox or without the
    /// licence model A needs, channel history older than delta's eight months, nested and
    /// hidden mail folders, Recoverable Items, a channel shared from another tenant; inline
    /// images, shared files and mail attachments.
    pub fn real_tenant() -> Self {
        SimConfig {
            users: 8,
            users_without_mailbox: 2,
            users_without_license: 1,
            channel_history_days: Some(400),
            nested_mail_folders: 3,
            hidden_mail_folders: 1,
            recoverable_items_per_user: 2,
            channels_shared_from_other_tenants: 1,
            hosted_contents_per_mille: 50,
            file_attachments_per_mille: 60,
            mail_attachments_per_mille: 150,
            ..SimConfig::small()
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
            hosted_contents_per_mille: 50,
            file_attachments_per_mille: 60,
            mail_attachments_per_mille: 150,
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
            rate_limit: Some(RateLimits::app(200)),
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

/// Graph's throttling, per app per tenant. The defaults are Microsoft's published limits
/// (throttling-limits: "Microsoft Teams service limits" and "Outlook service limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    /// A bucket over every Graph call of the app. Graph publishes none a client could
    /// reach; set one to model a tenant whose limit really enforced is lower than the
    /// published ones (what the client must converge to).
    pub app_requests_per_second: Option<u32>,
    /// The Teams limits per request type: getAllMessages (and its delta) 200/s, GET channel
    /// message (list, delta, replies) 20/s, GET channels 60/s, other Teams GETs 30/s.
    pub request_types: bool,
    /// Requests per second on one team, counted over every URL that names it
    /// (`/teams/{id}/...` and `/teams('{id}')/...` alike): 4.
    pub team_requests_per_second: Option<u32>,
    /// Requests per second on one channel: 1.
    pub channel_requests_per_second: Option<u32>,
    /// Requests in flight against one mailbox: 4.
    pub mailbox_concurrency: Option<u32>,
    /// Requests against one mailbox in 10 minutes: 10,000.
    pub mailbox_requests_per_ten_minutes: Option<u32>,
    /// `Retry-After` of a 429 from these limits, in seconds; `None` sends the time until
    /// the bucket admits one more, rounded up.
    pub retry_after_seconds: Option<u32>,
    /// A longer window over every per-second limit, holding a share of it.
    pub sustained: Option<SustainedLimit>,
}

impl RateLimits {
    /// Only what a test sets: no limit at all to start from.
    pub fn unlimited() -> Self {
        RateLimits {
            app_requests_per_second: None,
            request_types: false,
            team_requests_per_second: None,
            channel_requests_per_second: None,
            mailbox_concurrency: None,
            mailbox_requests_per_ten_minutes: None,
            retry_after_seconds: None,
            sustained: None,
        }
    }

    /// The published limits plus a bucket of `per_second` over every call.
    pub fn app(per_second: u32) -> Self {
        RateLimits {
            app_requests_per_second: Some(per_second),
            ..RateLimits::default()
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            app_requests_per_second: None,
            request_types: true,
            team_requests_per_second: Some(4),
            channel_requests_per_second: Some(1),
            mailbox_concurrency: Some(4),
            mailbox_requests_per_ten_minutes: Some(10_000),
            retry_after_seconds: None,
            sustained: None,
        }
    }
}

/// Over any `window_seconds`, at most `per_mille`/1000 of what the per-second rate would
/// allow in that time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SustainedLimit {
    pub window_seconds: u32,
    pub per_mille: u32,
}

impl SustainedLimit {
    pub(crate) fn limit_for(&self, per_second: u32) -> u32 {
        let total =
            u64::from(per_second) * u64::from(self.window_seconds) * u64::from(self.per_mille);
        ((total / 1000) as u32).max(1)
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
