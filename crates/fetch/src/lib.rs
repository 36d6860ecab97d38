//! A Microsoft Graph client for archiving: OAuth2 client credentials, OData paging,
//! delta rounds, retry and throttling, and the message sources an archive reads.
//!
//! One [`GraphClient`] per app registration, cloned into every task. It logs in with a
//! client secret or a certificate, keeps one access token and refreshes it before it
//! expires (and when Graph rejects it), paces requests under Graph's published limits (per
//! Teams request type, 4 requests/s per team and 1 per channel whatever URL form names
//! them, per mailbox), lowers its app-wide rate to what a server really allows when it
//! answers 429 and climbs back afterwards, and retries throttling, server errors, dropped
//! connections and cut or malformed bodies with backoff and jitter, honouring
//! `Retry-After`, up to a cap. Every request says `Prefer: include-unknown-enum-members`
//! (so system events are not hidden as `unknownFutureValue`), mail requests also
//! `IdType="ImmutableId"` (so ids survive moves).
//!
//! Sources come as streams of [`Page`]s: discovery ([`GraphClient::users`],
//! [`GraphClient::teams`], [`GraphClient::channels`], [`GraphClient::mail_folders`] at any
//! depth, [`GraphClient::mail_folder`], [`GraphClient::user_chats`]), channel replies
//! ([`GraphClient::replies`]), and delta rounds, time windows or a channel's whole history
//! over a [`Scope`] ([`GraphClient::round`]; [`Scope::Team`] windows reach channel history
//! older than delta's eight months). A page carries the body exactly as sent with the byte
//! range of each item, and the page's link ([`PageLink`]: nextLink, deltaLink or none), so
//! nothing is lost and the caller decides when a link is safe to persist.
//!
//! A scope that cannot be read for a reason that is not a fault (no mailbox, a deleted
//! user, team, channel or folder, a channel shared from another tenant, a user without the
//! licence the payment model needs) fails with an error whose
//! [`FetchError::unavailable`] says why ([`Unavailable`]); every other error is a fault.
//!
//! Secrets stay secret: the client secret, the private key, access tokens and delta or
//! skip tokens never appear in logs or errors ([`RedactedUrl`]); `Debug` output of the
//! configuration, pages and round starts redacts them too.

mod auth;
mod client;
mod config;
mod content;
mod credential_source;
mod error;
mod http;
mod page;
#[cfg(test)]
mod page_properties;
mod throttle;

pub use client::{ClientStats, GraphClient, RECOVERABLE_ITEMS_DELETIONS, RoundStart, Scope};
pub use config::{
    ClientConfig, Credential, GRAPH_URL, LOGIN_URL, Limits, MailChangeType, MailOptions,
    PaymentModel, RequestTypeLimits, RetryPolicy, Timeouts,
};
pub use content::{Downloaded, share_id};
pub use credential_source::{CredentialError, CredentialSource, SECRET_VARIABLE, base_url};
pub use error::{FetchError, RedactedUrl, Unavailable};
pub use page::{Page, PageLink};
