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
//! What it serves, as Graph documents it (each documented behaviour switchable in
//! [`SimConfig`], on by default):
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials with a secret or a certificate
//!   (a signed JWT assertion); access tokens expire.
//! - discovery: `/v1.0/users`, `/v1.0/teams`, `/v1.0/teams/{id}/allChannels`,
//!   `/v1.0/users/{id}/mailFolders` and `.../mailFolders/{id}/childFolders` (any depth,
//!   hidden folders with `includeHiddenFolders=true`), `.../mailFolders/{id or well-known
//!   name}` (Recoverable Items only so), `/v1.0/users/{id}/chats?$expand=members`.
//! - messages: `/{beta,v1.0}/users/{id}/chats/getAllMessages/delta` (`model=A|B` checked
//!   like getAllMessages), `/v1.0/users/{id}/chats/getAllMessages` and
//!   `/v1.0/teams/{id}/channels/getAllMessages` (roots and replies of every channel;
//!   `model=A|B`, 402 PaymentRequired, a user without the licence model A needs),
//!   `/v1.0/teams/{id}/channels/{id}/messages` (roots, all history) and `.../messages/delta`
//!   (roots, `$top` capped at 50, only the last eight months), `.../messages/{id}/replies`,
//!   `/v1.0/users/{id}/mailFolders/{id}/messages/delta` (`$select`, `changeType`,
//!   `Prefer: odata.maxpagesize`, `@removed`, REST ids that change when a message moves
//!   unless `Prefer: IdType="ImmutableId"`).
//! - what messages point to: `.../messages/{id}/hostedContents` (and `/{id}`, `/{id}/$value`)
//!   on chat, channel and reply messages; `/shares/{u!...}/driveItem` and
//!   `/drives/{id}/items/{id}` (and `/content`: a 302 to a download URL on the simulator that
//!   takes no token, `Range` allowed); `/users/{id}/messages/{id}/attachments` (file, item
//!   and reference attachments, `$select`, `/{id}`, `/{id}/$value`) and `.../$value` (MIME),
//!   also below `mailFolders/{id}`. Bytes are generated as they are sent (any size), and
//!   [`Sim::content`] gives each piece's SHA-256.
//! - keys as path segments or in OData key syntax alike (`/teams('{id}')/channels('{id}')`);
//!   getAllMessages nextLinks use the key syntax, as Graph's own do.
//! - evolvable enums: without `Prefer: include-unknown-enum-members`, system events arrive
//!   as `messageType: unknownFutureValue`.
//! - not-a-fault answers of real tenants: 404 `MailboxNotEnabledForRESTAPI` for users
//!   without a mailbox, 404 for deleted users and teams ([`Sim::delete_user`],
//!   [`Sim::delete_team`]), 403 on a channel shared from another tenant, 402 for a user
//!   without the licence model A needs.
//! - throttling as published, per app per tenant: Teams limits per request type, 4
//!   requests/s on a team whatever URL names it, 1 on a channel, 4 in flight and 10,000 per
//!   10 minutes on a mailbox; optionally a lower limit over every call ([`RateLimits`]).
//!
//! Delta rounds are snapshots: a round serves each item as it was when the round began,
//! in an order that is not chronological, sometimes serving an item twice; the same
//! message is served byte for byte identically to every member of its chat. State tokens
//! are opaque, carry every query parameter of the first call (a later call that repeats
//! one has it ignored), and expire (410 Gone, `syncStateNotFound`). A change to a channel
//! reply also touches its root message, so channel delta reports the thread again.

mod admin;
mod auth;
mod blob;
mod config;
mod content;
mod content_api;
mod docs;
mod faults;
mod generate;
mod graph;
mod limits;
mod mime;
mod night;
mod paging;
mod route;
mod server;
mod stats;
mod store;
mod text;
mod timefmt;
mod truth;

pub use config::{Billing, LinkStyle, RateLimits, SimConfig, SustainedLimit};
pub use content::{
    AttachmentKind, ContentFilter, NewAttachment, NewContent, NewFile, NewImage, encode_sharing_url,
};
pub use faults::{EndpointKind, Fault, FaultPlan, FaultRule, RetryAfter, Schedule, Target};
pub use night::NightOfChanges;
pub use server::{PostedMail, PostedMessage, RunningSim, Sim, start, start_on};
pub use stats::{BucketStats, RequestCount, SimStats};
pub use store::SimError;
pub use text::PLAIN_WORDS;
pub use timefmt::graph_time;
pub use truth::{
    ClientCertificate, ContentKind, ContentPiece, Conversation, Directory, DirectoryChannel,
    DirectoryChat, DirectoryFolder, DirectoryTeam, DirectoryUser, History, MailItem, MailRef,
    MailRemoval, MessageRef, MessageVersion, Snapshot,
};
