//! What a caller sets: where Graph and the login authority are, who the app is, and how
//! hard the client may push.

use std::time::Duration;

use url::Url;

/// Microsoft Graph in the global cloud.
pub const GRAPH_URL: &str = "https://graph.microsoft.com/";
/// The Microsoft Entra login authority in the global cloud.
pub const LOGIN_URL: &str = "https://login.microsoftonline.com/";

/// Everything a [`crate::GraphClient`] needs.
#[derive(Clone)]
pub struct ClientConfig {
    /// Graph's root (`https://graph.microsoft.com/`, a national cloud, a proxy, a simulator);
    /// request paths (`v1.0/...`, `beta/...`) go below it, relative links resolve against it.
    pub graph_url: Url,
    /// The login authority; tokens come from `{login_url}{tenant_id}/oauth2/v2.0/token`.
    pub login_url: Url,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    /// The token scope; `None` means `{graph_url origin}/.default`.
    pub token_scope: Option<String>,
    pub limits: Limits,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// `model=A|B` on every protected call that takes one: getAllMessages of a user's chats
    /// and of a team's channels, and the chat delta. `None` uses evaluation mode.
    pub payment_model: Option<PaymentModel>,
    pub mail: MailOptions,
    pub user_agent: String,
    /// Accept `http://` Graph and login URLs. Off by default: the client secret, the
    /// access token and every message would cross the network in clear text. A local
    /// simulator, or a TLS-terminating proxy on the same machine, may need it.
    pub allow_insecure_http: bool,
}

impl ClientConfig {
    /// A configuration with default limits, retries and timeouts.
    pub fn new(
        graph_url: Url,
        login_url: Url,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
    ) -> Self {
        ClientConfig {
            graph_url,
            login_url,
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            token_scope: None,
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            payment_model: Some(PaymentModel::A),
            mail: MailOptions::default(),
            user_agent: format!("teams-archiver/{}", env!("CARGO_PKG_VERSION")),
            allow_insecure_http: false,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("graph_url", &self.graph_url.as_str())
            .field("login_url", &self.login_url.as_str())
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("token_scope", &self.token_scope)
            .field("limits", &self.limits)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field("payment_model", &self.payment_model)
            .field("mail", &self.mail)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish()
    }
}

/// How the app proves who it is. Never printed: `Debug` shows only the kind.
#[derive(Clone)]
pub enum Credential {
    /// A client secret.
    Secret(String),
    /// A certificate registered on the app and its RSA private key (PEM); the client signs
    /// a JWT assertion (PS256, `x5t#S256`) for each token request.
    Certificate {
        private_key_pem: String,
        certificate_pem: String,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Certificate { .. } => {
                f.write_str("Certificate { private_key_pem: <redacted>, .. }")
            }
        }
    }
}

/// Graph's limits as published for the app and tenant (throttling-limits: "Microsoft Teams
/// service limits", "Outlook service limits"). The client paces itself a little under each
/// (see [`Limits::headroom`]); when Graph still says 429 it lowers its app-wide rate to
/// what the server allowed and climbs back once the 429s stop.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The app-wide rate the client starts at and never exceeds: the highest published
    /// per-app-per-tenant Teams figure (getAllMessages, 200/s). A server enforcing less is
    /// found out from its 429s.
    pub requests_per_second: u32,
    /// Teams limits per request type.
    pub request_types: RequestTypeLimits,
    /// Requests per second on one team, over every URL that names it (`/teams/{id}/...`
    /// and `/teams('{id}')/...` alike): 4.
    pub team_requests_per_second: u32,
    /// Requests per second on one channel: 1.
    pub channel_requests_per_second: u32,
    /// Requests in flight against one mailbox: 4.
    pub mailbox_concurrency: u32,
    /// Requests against one mailbox in 10 minutes: 10,000.
    pub mailbox_requests_per_ten_minutes: u32,
    /// Requests in flight in all.
    pub max_concurrency: u32,
    /// Fraction of each rate limit the client aims at, leaving room for clock and network
    /// jitter so that no one-second window ever holds one request too many.
    pub headroom: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: 200,
            request_types: RequestTypeLimits::default(),
            team_requests_per_second: 4,
            channel_requests_per_second: 1,
            mailbox_concurrency: 4,
            mailbox_requests_per_ten_minutes: 10_000,
            max_concurrency: 32,
            headroom: 0.95,
        }
    }
}

/// Published Teams limits per request type, requests per second per app per tenant.
#[derive(Clone, Debug)]
pub struct RequestTypeLimits {
    /// `GET users/{id}/chats/getAllMessages` and its delta: 200.
    pub chat_messages_export: u32,
    /// `GET teams/{id}/channels/getAllMessages`: 200.
    pub channel_messages_export: u32,
    /// GET channel message (list, delta, replies): 20.
    pub channel_message: u32,
    /// `GET /teams/{id}/channels` (and `allChannels`): 60.
    pub channels: u32,
    /// Other GET calls for Teams (`/teams`, `/users/{id}/chats`): 30.
    pub other_teams_get: u32,
}

impl RequestTypeLimits {
    /// The same rate for every type (tests lift them all at once).
    pub fn all(per_second: u32) -> Self {
        RequestTypeLimits {
            chat_messages_export: per_second,
            channel_messages_export: per_second,
            channel_message: per_second,
            channels: per_second,
            other_teams_get: per_second,
        }
    }
}

impl Default for RequestTypeLimits {
    fn default() -> Self {
        RequestTypeLimits {
            chat_messages_export: 200,
            channel_messages_export: 200,
            channel_message: 20,
            channels: 60,
            other_teams_get: 30,
        }
    }
}

/// Retries of throttled, failed and malformed responses.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt; then the error is returned.
    pub max_retries: u32,
    /// First backoff; it doubles, with jitter, up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured as given.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// One request, from sending to the last byte of the body.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(120),
        }
    }
}

/// Teams export API payment models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentModel {
    /// Security and compliance applications.
    A,
    /// Everything else.
    B,
}

impl PaymentModel {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentModel::A => "A",
            PaymentModel::B => "B",
        }
    }
}

/// Mail delta options.
#[derive(Clone, Debug)]
pub struct MailOptions {
    /// `$select` properties; `None` gets Graph's default property set.
    pub select: Option<Vec<String>>,
    /// `changeType` filter; `None` gets creations, updates and removals.
    pub change_type: Option<MailChangeType>,
    /// `Prefer: odata.maxpagesize` when a round is resumed from a saved link.
    pub page_size: u32,
    /// `Prefer: IdType="ImmutableId"` on every mail request: a message keeps its id when it
    /// moves to another folder (outlook-immutable-id); without it the id changes.
    pub immutable_ids: bool,
}

impl Default for MailOptions {
    fn default() -> Self {
        MailOptions {
            select: None,
            change_type: None,
            page_size: 50,
            immutable_ids: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailChangeType {
    Created,
    Updated,
    Deleted,
}

impl MailChangeType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MailChangeType::Created => "created",
            MailChangeType::Updated => "updated",
            MailChangeType::Deleted => "deleted",
        }
    }
}
