//! A Microsoft Graph simulator over real HTTP: a seeded tenant of users, chats,
//! teams, channels and mailboxes, served with Graph's paging, delta, limits and faults.
//!
//! Start one on a free loopback port with [`start`], point a Graph client at
//! [`RunningSim::graph_url`] and [`RunningSim::login_url`], and compare what the client
//! got with the simulator's ground truth ([`Sim::snapshot`], [`Sim::history`]). Between or
//! during runs, change the tenant ([`Sim::add_chat_message`], [`Sim::edit_message`], ...),
//! move the clock, expire state tokens, switch faults and limits, and read request
//! statistics ([`Sim::stats`]). The same controls are served over HTTP under `/_sim/`, so
//! the `graph-sim serve` binary can be driven from another process.
//!
//! What it serves, as Graph documents it:
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials with a secret or a certificate
//!   (a signed JWT assertion); access tokens expire.
//! - discovery: `/v1.0/users`, `/v1.0/teams`, `/v1.0/teams/{id}/allChannels`,
//!   `/v1.0/users/{id}/mailFolders`, `/v1.0/users/{id}/chats?$expand=members`.
//! - messages: `/beta/users/{id}/chats/getAllMessages/delta`,
//!   `/v1.0/users/{id}/chats/getAllMessages` (`model=A|B`, 402 PaymentRequired),
//!   `/v1.0/teams/{id}/channels/{id}/messages/delta` (root messages, `$top` capped at 50),
//!   `.../messages/{id}/replies`, `/v1.0/users/{id}/mailFolders/{id}/messages/delta`
//!   (`$select`, `changeType`, `Prefer: odata.maxpagesize`, `@removed`).
//!
//! Delta rounds are snapshots: a round serves each item as it was when the round began,
//! in an order that is not chronological, sometimes serving an item twice; the same
//! message is served byte for byte identically to every member of its chat. State tokens
//! are opaque, carry every query parameter of the first call (a later call that repeats
//! one is refused), and expire (410 Gone, `syncStateNotFound`). A change to a channel
//! reply also touches its root message, so channel delta reports the thread again.

mod admin;
mod auth;
mod config;
mod docs;
mod faults;
mod generate;
mod graph;
mod limits;
mod paging;
mod server;
mod stats;
mod store;
mod text;
mod timefmt;
mod truth;

pub use config::{Billing, LinkStyle, RateLimits, SimConfig};
pub use faults::{EndpointKind, Fault, FaultPlan, FaultRule, RetryAfter, Schedule, Target};
pub use server::{RunningSim, Sim, start, start_on};
pub use stats::{BucketStats, RequestCount, SimStats};
pub use store::SimError;
pub use timefmt::graph_time;
pub use truth::{
    ClientCertificate, Conversation, Directory, DirectoryChannel, DirectoryChat, DirectoryFolder,
    DirectoryTeam, DirectoryUser, History, MailItem, MailRemoval, MessageRef, MessageVersion,
    Snapshot,
};
