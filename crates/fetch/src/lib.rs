//! A Microsoft Graph client for archiving: OAuth2 client credentials, OData paging,
//! delta rounds, retry and throttling, and the message sources an archive reads.
//!
//! One [`GraphClient`] per app registration, cloned into every task. It logs in with a
//! client secret or a certificate, keeps one access token and refreshes it before it
//! expires (and when Graph rejects it), paces requests under Graph's published limits,
//! and retries throttling, server errors, dropped connections and cut or malformed bodies
//! with backoff and jitter, honouring `Retry-After`, up to a cap.
//!
//! Sources come as streams of [`Page`]s: discovery ([`GraphClient::users`],
//! [`GraphClient::teams`], [`GraphClient::channels`], [`GraphClient::mail_folders`],
//! [`GraphClient::user_chats`]), channel replies ([`GraphClient::replies`]), and delta
//! rounds or time windows over a [`Scope`] ([`GraphClient::round`]). A page carries the
//! body exactly as sent with the byte range of each item, and the page's nextLink or
//! deltaLink, so nothing is lost and the caller decides when a link is safe to persist.
//!
//! Secrets stay secret: the client secret, the private key, access tokens and delta or
//! skip tokens never appear in logs or errors ([`RedactedUrl`]); `Debug` output of the
//! configuration, pages and round starts redacts them too.

mod auth;
mod client;
mod config;
mod error;
mod http;
mod page;
#[cfg(test)]
mod page_properties;
mod throttle;

pub use client::{ClientStats, GraphClient, RoundStart, Scope};
pub use config::{
    ClientConfig, Credential, GRAPH_URL, LOGIN_URL, Limits, MailChangeType, MailOptions,
    PaymentModel, RetryPolicy, Timeouts,
};
pub use error::{FetchError, RedactedUrl};
pub use page::Page;
