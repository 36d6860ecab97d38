//! Starting and stopping the simulator, and the handle tests use to change and inspect it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::auth::{self, Auth};
use crate::config::{Billing, LinkStyle, RateLimits, SimConfig};
use crate::content::{ContentFilter, NewAttachment, NewContent};
use crate::faults::{FaultPlan, FaultState};
use crate::limits::Limiter;
use crate::stats::{SimStats, StatsState};
use crate::store::{SimError, Store};
use crate::truth::ContentPiece;
use crate::truth::{
    ClientCertificate, Directory, DirectoryChat, DirectoryFolder, DirectoryUser, History, MailItem,
    MailRemoval, MessageRef, MessageVersion, Snapshot,
};
use crate::{admin, content, content_api, generate, graph};

pub(crate) struct Shared {
    pub base_url: Url,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub store: Mutex<Store>,
    pub auth: Mutex<Auth>,
    pub limiter: Mutex<Limiter>,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<StatsState>,
    /// The configuration; tests change some of it while the simulator runs (the
    /// setters of [`crate::SimHandle`]), and requests read it as they are served.
    pub settings: Mutex<SimConfig>,
    pub issued_state_tokens: Mutex<Vec<String>>,
    pub rng: Mutex<StdRng>,
}

/// Lock a mutex, carrying on if a panicking request poisoned it: the simulator's state
/// stays usable for the rest of a test.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A handle on a simulated tenant: cheap to clone, usable from any task.
#[derive(Clone)]
pub struct Sim {
    pub(crate) shared: Arc<Shared>,
}

/// A simulator serving on a loopback port; it stops on [`RunningSim::shutdown`] or drop.
pub struct RunningSim {
    sim: Sim,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// Generate the tenant of `config` and serve it on a free port of 127.0.0.1.
pub async fn start(config: SimConfig) -> std::io::Result<RunningSim> {
    start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Like [`start`], on a chosen address.
pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let base_url = Url::parse(&format!("http://{local}/"))
        .map_err(|e| std::io::Error::other(format!("local address {local} is not a URL: {e}")))?;
    let (store, credentials) = generate::tenant(&config);
    let shared = Arc::new(Shared {
        base_url,
        tenant_id: store.tenant_id.clone(),
        client_id: credentials.client_id.clone(),
        client_secret: credentials.client_secret.clone(),
        auth: Mutex::new(Auth::new(
            store.tenant_id.clone(),
            credentials.client_id,
            credentials.client_secret,
            config.access_token_lifetime,
            config.record_issued_tokens,
        )),
        store: Mutex::new(store),
        limiter: Mutex::new(Limiter::new(config.rate_limit)),
        faults: Mutex::new(FaultState::new(config.faults.clone(), config.seed)),
        stats: Mutex::new(StatsState::default()),
        settings: Mutex::new(config.clone()),
        issued_state_tokens: Mutex::new(Vec::new()),
        rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x70_6b_e2)),
    });
    let app = router(shared.clone());
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "graph-sim stopped serving");
        }
    });
    tracing::info!(url = %shared.base_url, "graph-sim serving");
    Ok(RunningSim {
        sim: Sim { shared },
        cancel,
        task: Some(task),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    // Graph resources are parsed by `route::Endpoint`, which accepts path segments and
    // OData key syntax alike; everything else is a Graph error.
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(graph::token))
        // Pre-authenticated download URLs of files (what `.../content` redirects to).
        .route("/_download/{token}", get(content_api::download))
        .nest("/_sim", admin::router())
        .fallback(graph::dispatch)
        .with_state(shared)
}

impl RunningSim {
    /// A handle to move into other tasks.
    pub fn handle(&self) -> Sim {
        self.sim.clone()
    }

    /// Stop serving and wait for the server to finish.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::ops::Deref for RunningSim {
    type Target = Sim;

    fn deref(&self) -> &Sim {
        &self.sim
    }
}

impl Sim {
    /// Graph's root: `http://127.0.0.1:PORT/` (paths `v1.0/...` and `beta/...` below it).
    pub fn graph_url(&self) -> Url {
        self.shared.base_url.clone()
    }

    /// The login authority: tokens come from `{login_url}{tenant}/oauth2/v2.0/token`.
    pub fn login_url(&self) -> Url {
        self.shared.base_url.clone()
    }

    pub fn tenant_id(&self) -> &str {
        &self.shared.tenant_id
    }

    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.client_secret
    }

    /// The certificate the app registration trusts, with its private key.
    pub fn client_certificate(&self) -> ClientCertificate {
        ClientCertificate {
            certificate_pem: auth::CLIENT_CERTIFICATE_PEM.to_string(),
            private_key_pem: auth::CLIENT_PRIVATE_KEY_PEM.to_string(),
        }
    }

    /// A well-formed certificate the app registration does not trust.
    pub fn unregistered_certificate(&self) -> ClientCertificate {
        ClientCertificate {
            certificate_pem: auth::UNREGISTERED_CERTIFICATE_PEM.to_string(),
            private_key_pem: auth::UNREGISTERED_PRIVATE_KEY_PEM.to_string(),
        }
    }

    /// Trust another certificate for assertions; false if it is not an RSA certificate.
    pub fn register_certificate(&self, certificate_pem: &str) -> bool {
        lock(&self.shared.auth).register_certificate(certificate_pem)
    }

    // ---- changes ------------------------------------------------------------------

    pub fn add_chat_message(
        &self,
        chat_id: &str,
        from_user_id: &str,
        html: &str,
    ) -> Result<MessageRef, SimError> {
        self.add_chat_message_with(chat_id, from_user_id, html, &NewContent::default())
            .map(|posted| posted.message)
    }

    /// A chat message whose body also hosts `content`'s images (`<img>` pointing at Graph's
    /// hosted content URL) and shares its files (`reference` attachments); returns the
    /// message and its content (digests included: a large piece takes a while).
    pub fn add_chat_message_with(
        &self,
        chat_id: &str,
        from_user_id: &str,
        html: &str,
        content: &NewContent,
    ) -> Result<PostedMessage, SimError> {
        let result =
            lock(&self.shared.store).add_chat_message(chat_id, from_user_id, html, content);
        result.map(|(message, pieces)| PostedMessage {
            message,
            content: self.content_of(&pieces),
        })
    }

    pub fn add_channel_message(
        &self,
        team_id: &str,
        channel_id: &str,
        from_user_id: &str,
        html: &str,
    ) -> Result<MessageRef, SimError> {
        self.add_channel_message_with(
            team_id,
            channel_id,
            None,
            from_user_id,
            html,
            &NewContent::default(),
        )
        .map(|posted| posted.message)
    }

    /// A channel message (a reply if `reply_to` names a root) carrying `content`; see
    /// [`Sim::add_chat_message_with`].
    pub fn add_channel_message_with(
        &self,
        team_id: &str,
        channel_id: &str,
        reply_to: Option<&str>,
        from_user_id: &str,
        html: &str,
        content: &NewContent,
    ) -> Result<PostedMessage, SimError> {
        let result = lock(&self.shared.store).add_channel_message(
            team_id,
            channel_id,
            from_user_id,
            html,
            reply_to,
            content,
        );
        result.map(|(message, pieces)| PostedMessage {
            message,
            content: self.content_of(&pieces),
        })
    }

    /// A reply to a root message of a channel; the root gets a new version too.
    pub fn add_reply(
        &self,
        team_id: &str,
        channel_id: &str,
        root_id: &str,
        from_user_id: &str,
        html: &str,
    ) -> Result<MessageRef, SimError> {
        self.add_channel_message_with(
            team_id,
            channel_id,
            Some(root_id),
            from_user_id,
            html,
            &NewContent::default(),
        )
        .map(|posted| posted.message)
    }

    /// A new version with this html body and `lastEditedDateTime` set.
    pub fn edit_message(
        &self,
        message: &MessageRef,
        html: &str,
    ) -> Result<MessageVersion, SimError> {
        lock(&self.shared.store).edit_message(message, html)
    }

    /// A new version with `deletedDateTime` set and the body emptied.
    pub fn soft_delete_message(&self, message: &MessageRef) -> Result<MessageVersion, SimError> {
        lock(&self.shared.store).soft_delete_message(message)
    }

    pub fn add_mail(
        &self,
        user_id: &str,
        folder_id: &str,
        subject: &str,
        html: &str,
    ) -> Result<MailItem, SimError> {
        self.add_mail_with(user_id, folder_id, subject, html, &[])
            .map(|posted| posted.mail)
    }

    /// A mail item with attachments (`hasAttachments` as Graph counts it: inline ones do
    /// not); returns it and its attachments (digests included).
    pub fn add_mail_with(
        &self,
        user_id: &str,
        folder_id: &str,
        subject: &str,
        html: &str,
        attachments: &[NewAttachment],
    ) -> Result<PostedMail, SimError> {
        let result =
            lock(&self.shared.store).add_mail(user_id, folder_id, subject, html, attachments);
        result.map(|(mail, pieces)| PostedMail {
            mail,
            attachments: self.content_of(&pieces),
        })
    }

    /// Delete a piece of content by its Graph id (hosted content, drive item or
    /// attachment): Graph answers 404 for it from now on, as after the file or message is
    /// deleted. A mail attachment leaves its mail, which gets a new version.
    pub fn delete_content(&self, id: &str) -> Result<ContentPiece, SimError> {
        let p = lock(&self.shared.store).delete_content(id)?;
        Ok(self.content_of(&[p]).remove(0))
    }

    /// Graph answers 403 (`forbidden: true`) for a piece of content, or serves it again.
    pub fn forbid_content(&self, id: &str, forbidden: bool) -> Result<ContentPiece, SimError> {
        let p = lock(&self.shared.store).forbid_content(id, forbidden)?;
        Ok(self.content_of(&[p]).remove(0))
    }

    /// Every piece of content (images, files, attachments) and the MIME of every mail item
    /// that exists, with SHA-256 digests (computed once; a large piece takes a while).
    pub fn content(&self) -> Vec<ContentPiece> {
        self.content_where(&ContentFilter::default())
    }

    pub fn content_where(&self, filter: &ContentFilter) -> Vec<ContentPiece> {
        let listing: Vec<_> = lock(&self.shared.store)
            .content_listing()
            .into_iter()
            .filter(|(view, _)| filter.keeps(view))
            .collect();
        content::complete(listing)
    }

    fn content_of(&self, pieces: &[usize]) -> Vec<ContentPiece> {
        let listing: Vec<_> = {
            let store = lock(&self.shared.store);
            pieces
                .iter()
                .map(|&p| {
                    let piece = &store.contents.pieces[p];
                    let pending = piece.source.clone().map(|s| (piece.digests.clone(), s));
                    (store.content_view(p), pending)
                })
                .collect()
        };
        content::complete(listing)
    }

    /// Flip the item's read flag and add a category: a new version.
    pub fn update_mail(
        &self,
        user_id: &str,
        folder_id: &str,
        id: &str,
    ) -> Result<MailItem, SimError> {
        lock(&self.shared.store).update_mail(user_id, folder_id, id)
    }

    pub fn delete_mail(
        &self,
        user_id: &str,
        folder_id: &str,
        id: &str,
    ) -> Result<MailRemoval, SimError> {
        lock(&self.shared.store).delete_mail(user_id, folder_id, id)
    }

    /// A new user with an empty mailbox (Inbox, Sent Items, Archive) and no chats.
    pub fn add_user(&self, display_name: &str) -> DirectoryUser {
        lock(&self.shared.store).add_user(display_name)
    }

    /// Delete a user: gone from `/users`; `/users/{id}/...` answers 404 from now on. Their
    /// chats stay with the other members; ground truth keeps their history.
    pub fn delete_user(&self, user_id: &str) -> Result<(), SimError> {
        lock(&self.shared.store).delete_user(user_id)
    }

    /// Delete a team: gone from `/teams`; every URL naming it (channels, messages,
    /// getAllMessages, in either URL form) answers 404 from now on.
    pub fn delete_team(&self, team_id: &str) -> Result<(), SimError> {
        lock(&self.shared.store).delete_team(team_id)
    }

    /// A new mail folder at the top of the mailbox (`parent_id: None`) or inside another.
    pub fn add_mail_folder(
        &self,
        user_id: &str,
        parent_id: Option<&str>,
        display_name: &str,
        hidden: bool,
    ) -> Result<DirectoryFolder, SimError> {
        lock(&self.shared.store).add_mail_folder(user_id, parent_id, display_name, hidden)
    }

    /// Delete a mail folder and its subfolders for good: their items are removed and their
    /// ids answer 404 `ErrorItemNotFound`. Well-known folders cannot be deleted.
    pub fn delete_mail_folder(&self, user_id: &str, folder_id: &str) -> Result<(), SimError> {
        lock(&self.shared.store).delete_mail_folder(user_id, folder_id)
    }

    /// Move a mail item (by immutable or REST id) to another folder of the mailbox: the
    /// source folder's delta reports it removed, the target's reports it created, with a new
    /// REST id unless `rest_ids_change_on_move` is off. Returns it as it is now.
    pub fn move_mail(
        &self,
        user_id: &str,
        folder_id: &str,
        id: &str,
        to_folder_id: &str,
    ) -> Result<MailItem, SimError> {
        let change = lock(&self.shared.settings).rest_ids_change_on_move;
        lock(&self.shared.store).move_mail(user_id, folder_id, id, to_folder_id, change)
    }

    /// A new chat: one-on-one for two members without a topic, a group chat otherwise.
    pub fn add_chat(
        &self,
        member_ids: &[String],
        topic: Option<&str>,
    ) -> Result<DirectoryChat, SimError> {
        lock(&self.shared.store).add_chat(member_ids, topic)
    }

    // ---- time, tokens, behaviour ----------------------------------------------------

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        lock(&self.shared.store).clock.now()
    }

    /// Move the simulated clock (new changes are stamped later; state tokens age).
    pub fn advance_clock(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        lock(&self.shared.store).clock.advance(by);
    }

    /// Every delta and skip token issued so far now gets 410 Gone.
    pub fn expire_state_tokens(&self) {
        lock(&self.shared.store).epoch += 1;
    }

    /// Every access token issued so far is now expired (401 on use).
    pub fn expire_access_tokens(&self) {
        lock(&self.shared.auth).expire_all();
    }

    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.auth).set_lifetime(lifetime);
    }

    pub fn set_faults(&self, plan: FaultPlan) {
        lock(&self.shared.faults).replace(plan);
    }

    pub fn set_rate_limits(&self, limits: Option<RateLimits>) {
        lock(&self.shared.limiter).set_limits(limits);
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.settings).latency = latency;
    }

    pub fn set_billing(&self, billing: Billing) {
        lock(&self.shared.settings).billing = billing;
    }

    pub fn set_link_style(&self, style: LinkStyle) {
        lock(&self.shared.settings).link_style = style;
    }

    pub fn set_page_size_cap(&self, cap: Option<u32>) {
        lock(&self.shared.settings).page_size_cap = cap;
    }

    pub fn set_replay_per_mille(&self, per_mille: u32) {
        lock(&self.shared.settings).replay_per_mille = per_mille;
    }

    /// See [`SimConfig::evolvable_enums`].
    pub fn set_evolvable_enums(&self, on: bool) {
        lock(&self.shared.settings).evolvable_enums = on;
    }

    /// See [`SimConfig::delta_history_months`].
    pub fn set_delta_history_months(&self, months: Option<u32>) {
        lock(&self.shared.settings).delta_history_months = months;
    }

    /// See [`SimConfig::refuse_repeated_delta_parameters`].
    pub fn set_refuse_repeated_delta_parameters(&self, on: bool) {
        lock(&self.shared.settings).refuse_repeated_delta_parameters = on;
    }

    /// See [`SimConfig::key_syntax_links`].
    pub fn set_key_syntax_links(&self, on: bool) {
        lock(&self.shared.settings).key_syntax_links = on;
    }

    // ---- ground truth and statistics ------------------------------------------------

    /// The current version of every message and mail item.
    pub fn snapshot(&self) -> Snapshot {
        lock(&self.shared.store).snapshot()
    }

    /// Every version that ever existed, and every mail removal.
    pub fn history(&self) -> History {
        lock(&self.shared.store).history()
    }

    pub fn directory(&self) -> Directory {
        lock(&self.shared.store).directory()
    }

    pub fn stats(&self) -> SimStats {
        let state = lock(&self.shared.stats);
        let (buckets, max_in_flight) = lock(&self.shared.limiter).stats();
        let auth = lock(&self.shared.auth);
        SimStats {
            requests: state
                .requests
                .iter()
                .map(|(&(endpoint, status), &count)| crate::stats::RequestCount {
                    endpoint,
                    status,
                    count,
                })
                .collect(),
            throttled: state.throttled,
            faults: state.faults.clone(),
            replays: state.replays,
            access_tokens_issued: auth.tokens_issued,
            buckets,
            max_in_flight,
            admitted: state.admitted,
            admitted_span: match (state.first_admitted, state.last_admitted) {
                (Some(a), Some(b)) => b.duration_since(a),
                _ => Duration::ZERO,
            },
            downloads: state.downloads,
            downloads_with_authorization: state.downloads_with_authorization,
        }
    }

    /// Forget request statistics (the tenant and its tokens stay).
    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = StatsState::default();
        lock(&self.shared.limiter).reset_stats();
    }

    /// Every secret the simulator handed out, holds or was shown: the client secret, the
    /// private key, access tokens, client assertions, delta and skip tokens (those recorded
    /// while `record_issued_tokens`).
    pub fn issued_secrets(&self) -> Vec<String> {
        let mut out = vec![
            self.shared.client_secret.clone(),
            auth::CLIENT_PRIVATE_KEY_PEM.to_string(),
        ];
        out.extend(lock(&self.shared.auth).issued.iter().cloned());
        out.extend(lock(&self.shared.issued_state_tokens).iter().cloned());
        out
    }

    /// Access tokens issued and client assertions received so far (recorded while
    /// `record_issued_tokens`).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        lock(&self.shared.auth).issued.clone()
    }

    /// Delta and skip tokens issued so far (recorded while `record_issued_tokens`).
    pub fn issued_state_tokens(&self) -> Vec<String> {
        lock(&self.shared.issued_state_tokens).clone()
    }
}

/// A message posted with content, and that content.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PostedMessage {
    #[serde(flatten)]
    pub message: MessageRef,
    pub content: Vec<ContentPiece>,
}

/// A mail item added with attachments, and those attachments.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PostedMail {
    #[serde(flatten)]
    pub mail: MailItem,
    pub attachments: Vec<ContentPiece>,
}
