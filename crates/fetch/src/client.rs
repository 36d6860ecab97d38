//! The client: one per app, cheap to clone, and the sources an archive reads from it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::Stream;
use url::Url;

use crate::auth::TokenSource;
use crate::config::ClientConfig;
use crate::error::{FetchError, RedactedUrl};
use crate::http::{Expect, PageRequest};
use crate::page::{Page, resolve_link, resolve_saved_link};
use crate::throttle::{Route, Throttle};

/// What a delta round or window reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every chat message of every chat the user is in (the user is their custodian).
    UserChats { user_id: String },
    /// The root messages of a channel (replies come from [`GraphClient::replies`]).
    /// Channel delta returns only the last eight months; older history comes from
    /// [`Scope::Team`] windows or [`RoundStart::History`].
    Channel { team_id: String, channel_id: String },
    /// Every message, roots and replies, of every channel of a team (except channels
    /// shared from other tenants), by time window only ([`RoundStart::Window`]):
    /// `GET /teams/{id}/channels/getAllMessages`, a protected API (`model=A|B`).
    ///
    /// This is the source for channel history older than delta's eight months, chosen for
    /// efficiency: one request returns up to 50 messages, replies included, from all the
    /// team's channels, filtered to the window (`lastModifiedDateTime`), so the history
    /// costs about (messages / 50) requests per team. It counts against the team's 4
    /// requests/s and getAllMessages' 200/s, but not against each channel's 1 request/s.
    /// Listing a channel instead ([`RoundStart::History`]) costs a request per 50 roots
    /// plus one per root for its replies, all under the channel's 1 request/s; and
    /// `$expand=replies` would hand back roots whose bytes differ from what delta sends, so
    /// the same version would be stored twice.
    Team { team_id: String },
    /// One mail folder of a user, by id or well-known name (such as
    /// [`RECOVERABLE_ITEMS_DELETIONS`]).
    MailFolder { user_id: String, folder_id: String },
}

/// The well-known name of a mailbox's Recoverable Items Deletions folder (soft-deleted
/// items). `mailFolders` never lists it; it is reached by this name only.
pub const RECOVERABLE_ITEMS_DELETIONS: &str = "recoverableitemsdeletions";

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::UserChats { user_id } => write!(f, "chats of user {user_id}"),
            Scope::Channel {
                team_id,
                channel_id,
            } => write!(f, "channel {team_id}/{channel_id}"),
            Scope::Team { team_id } => write!(f, "channels of team {team_id}"),
            Scope::MailFolder { user_id, folder_id } => {
                write!(f, "mail folder {folder_id} of user {user_id}")
            }
        }
    }
}

/// Where a round begins.
#[derive(Clone)]
pub enum RoundStart {
    /// A new delta round: everything (changed after `since`, if given), `page_size` items a
    /// page. The parameters go on this first call only; Graph carries them in its links.
    ///
    /// For chats and channels, `since` filters on `lastModifiedDateTime`. For mail, Graph
    /// filters delta on `receivedDateTime` only (message-delta): an old message changed
    /// after `since` is not returned, so a resync must start without `since`.
    Initial {
        since: Option<DateTime<Utc>>,
        page_size: u32,
    },
    /// Continue from a saved `@odata.nextLink` (mid-round) or `@odata.deltaLink` (the next
    /// round), absolute or relative, exactly as Graph sent it.
    Resume { link: String },
    /// Messages last modified in (`from`, `to`), from getAllMessages rather than delta: for
    /// backfills, resyncs and history older than delta's eight months. User chats and teams
    /// ([`Scope::Team`]).
    Window {
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        page_size: u32,
    },
    /// A channel's root messages over all its history (`GET /teams/{id}/channels/{id}/
    /// messages`, at most 50 a page), for a channel getAllMessages does not serve (no
    /// billing for the protected API). No deltaLink at the end; replies come from
    /// [`GraphClient::replies`]. See [`Scope::Team`] for why windows are preferred.
    History { page_size: u32 },
}

impl fmt::Debug for RoundStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoundStart::Initial { since, page_size } => f
                .debug_struct("Initial")
                .field("since", since)
                .field("page_size", page_size)
                .finish(),
            RoundStart::Resume { link } => f
                .debug_struct("Resume")
                .field("link", &RedactedUrl::from_text(link))
                .finish(),
            RoundStart::Window {
                from,
                to,
                page_size,
            } => f
                .debug_struct("Window")
                .field("from", from)
                .field("to", to)
                .field("page_size", page_size)
                .finish(),
            RoundStart::History { page_size } => f
                .debug_struct("History")
                .field("page_size", page_size)
                .finish(),
        }
    }
}

pub(crate) struct Inner {
    pub config: ClientConfig,
    pub http: reqwest::Client,
    pub tokens: TokenSource,
    pub throttle: Throttle,
    pub counters: Counters,
}

/// Running counts of what the client did, shared by its clones.
#[derive(Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub waited_ms: AtomicU64,
}

/// What the client has done so far: for progress displays and run summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Graph requests sent (token requests aside), retries included.
    pub requests: u64,
    /// Requests sent again after a throttle, a server error, a dropped connection or a
    /// broken body.
    pub retries: u64,
    /// 429 and 503 answers.
    pub throttled: u64,
    /// Time spent waiting before retries (Retry-After or backoff), summed over requests.
    pub waited: std::time::Duration,
}

/// A Graph client for one app registration. Clones share the token, the limits and the
/// connection pool, so every task of a run should use clones of one client.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("config", &self.inner.config)
            .finish()
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

enum Step {
    Fetch(PageRequest),
    Fail(FetchError),
    Done,
}

impl GraphClient {
    pub fn new(config: ClientConfig) -> Result<Self, FetchError> {
        let invalid = |detail: String| FetchError::Config { detail };
        for (name, url) in [
            ("graph URL", &config.graph_url),
            ("login URL", &config.login_url),
        ] {
            if !matches!(url.scheme(), "http" | "https")
                || url.cannot_be_a_base()
                || url.host().is_none()
            {
                return Err(invalid(format!("the {name} {url} is not an http(s) URL")));
            }
            if url.scheme() == "http" && !config.allow_insecure_http {
                return Err(invalid(format!(
                    "the {name} {url} is not https: the client secret, tokens and messages \
                     would cross the network unencrypted (allow it only for a local \
                     simulator or proxy, with --allow-insecure-http)"
                )));
            }
        }
        if config.tenant_id.trim().is_empty() || config.client_id.trim().is_empty() {
            return Err(invalid("tenant id and client id must not be empty".into()));
        }
        if config.limits.requests_per_second == 0 || config.limits.max_concurrency == 0 {
            return Err(invalid(
                "request rate and concurrency must be at least 1".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .timeout(config.timeouts.request)
            .pool_max_idle_per_host(config.limits.max_concurrency as usize)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| invalid(format!("HTTP client: {}", crate::http::describe(e))))?;
        let tokens = TokenSource::new(&config, http.clone())?;
        let throttle = Throttle::new(&config.limits);
        Ok(GraphClient {
            inner: Arc::new(Inner {
                config,
                http,
                tokens,
                throttle,
                counters: Counters::default(),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Requests, retries, throttling answers and time waited so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            waited: std::time::Duration::from_millis(c.waited_ms.load(Ordering::Relaxed)),
        }
    }

    /// The app-wide request rate the client aims at now (lower after Graph throttled it).
    pub fn current_rate(&self) -> f64 {
        self.inner.throttle.app_rate()
    }

    /// `{graph_url}/seg/seg?query`, segments percent-encoded, `$` names kept as written.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.inner.config.graph_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            let text = query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
            url.set_query(Some(&text));
        }
        url
    }

    pub(crate) fn list(
        &self,
        scope: String,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        let url = self.url(segments, query);
        let request = PageRequest {
            immutable_ids: self.mail_ids(&url),
            url,
            prefer_page_size: None,
            expects: Expect::Collection,
            number: 1,
        };
        self.pages(scope, Ok(request))
    }

    /// Follow a chain of pages: each page's nextLink is the next request.
    fn pages(
        &self,
        scope: String,
        first: Result<PageRequest, FetchError>,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        let inner = self.inner.clone();
        let start = match first {
            Ok(request) => Step::Fetch(request),
            Err(error) => Step::Fail(error),
        };
        // Every URL fetched in this round, by hash, with its page number: a nextLink that
        // leads back to one of them would page forever.
        let fetched: HashMap<u64, u64> = HashMap::new();
        futures::stream::unfold((start, fetched), move |(step, mut fetched)| {
            let inner = inner.clone();
            let scope = scope.clone();
            async move {
                match step {
                    Step::Done => None,
                    Step::Fail(error) => Some((Err(error), (Step::Done, fetched))),
                    Step::Fetch(request) => match inner.get_page(&scope, &request).await {
                        Err(error) => Some((Err(error), (Step::Done, fetched))),
                        Ok(page) => {
                            fetched.insert(url_hash(&request.url), request.number);
                            let malformed = |detail: String| {
                                Step::Fail(FetchError::MalformedPage {
                                    scope: scope.clone(),
                                    url: page.url.clone(),
                                    page: page.number,
                                    attempts: 1,
                                    detail,
                                })
                            };
                            let next = match page.link.next() {
                                None => Step::Done,
                                Some(link) => match resolve_link(&inner.config.graph_url, link) {
                                    Ok(url) => match fetched.get(&url_hash(&url)) {
                                        Some(earlier) => malformed(format!(
                                            "its nextLink leads back to page {earlier} of this round: Graph's paging is in a loop"
                                        )),
                                        None => Step::Fetch(PageRequest {
                                            url,
                                            number: request.number + 1,
                                            ..request
                                        }),
                                    },
                                    Err(detail) => malformed(detail),
                                },
                            };
                            Some((Ok(page), (next, fetched)))
                        }
                    },
                }
            }
        })
    }

    /// Every user of the tenant.
    pub fn users(&self) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            "users".into(),
            &["v1.0", "users"],
            &[("$top", "999".into())],
        )
    }

    /// Every team of the tenant.
    pub fn teams(&self) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            "teams".into(),
            &["v1.0", "teams"],
            &[("$top", "999".into())],
        )
    }

    /// Every channel of a team (standard, private and shared).
    pub fn channels(
        &self,
        team_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            format!("channels of team {team_id}"),
            &["v1.0", "teams", team_id, "allChannels"],
            &[],
        )
    }

    /// Every mail folder of a user at any depth, hidden ones included: the top-level
    /// pages first, then the `childFolders` pages of each folder that has children
    /// (`childFolderCount`), breadth first. Recoverable Items is never listed: read it as
    /// [`Scope::MailFolder`] with [`RECOVERABLE_ITEMS_DELETIONS`] (or check it with
    /// [`GraphClient::mail_folder`]). A user without a mailbox fails with
    /// [`crate::Unavailable::NoMailbox`].
    pub fn mail_folders(
        &self,
        user_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        let scope = format!("mail folders of user {user_id}");
        let hidden = [("includeHiddenFolders", "true".to_string())];
        let top = [
            ("includeHiddenFolders", "true".to_string()),
            ("$top", "100".to_string()),
        ];
        let first = self.url(&["v1.0", "users", user_id, "mailFolders"], &top);
        let children = {
            let client = self.clone();
            let user_id = user_id.to_string();
            move |folder_id: &str| {
                client.url(
                    &[
                        "v1.0",
                        "users",
                        &user_id,
                        "mailFolders",
                        folder_id,
                        "childFolders",
                    ],
                    &hidden,
                )
            }
        };
        let inner = self.inner.clone();
        let start = FolderWalk {
            queue: VecDeque::from([PageRequest {
                url: first,
                prefer_page_size: None,
                immutable_ids: false,
                expects: Expect::Collection,
                number: 1,
            }]),
            failed: false,
        };
        futures::stream::unfold(start, move |mut walk| {
            let inner = inner.clone();
            let scope = scope.clone();
            let children = children.clone();
            async move {
                if walk.failed {
                    return None;
                }
                let request = walk.queue.pop_front()?;
                let step = match inner.get_page(&scope, &request).await {
                    Ok(page) => walk.follow(&inner, &scope, &request, page, &children),
                    Err(error) => Err(error),
                };
                walk.failed = step.is_err();
                Some((step, walk))
            }
        })
    }

    /// One mail folder (by id or well-known name) as Graph sends it, as a page of one
    /// item: whether it exists, its `childFolderCount`, `totalItemCount`...
    pub fn mail_folder(
        &self,
        user_id: &str,
        folder_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        let request = PageRequest {
            url: self.url(&["v1.0", "users", user_id, "mailFolders", folder_id], &[]),
            prefer_page_size: None,
            immutable_ids: false,
            expects: Expect::Entity,
            number: 1,
        };
        self.pages(
            format!("mail folder {folder_id} of user {user_id}"),
            Ok(request),
        )
    }

    /// The chats a user is in, with their members (for the directory snapshot).
    pub fn user_chats(
        &self,
        user_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            format!("chats of user {user_id}"),
            &["v1.0", "users", user_id, "chats"],
            &[("$expand", "members".into()), ("$top", "50".into())],
        )
    }

    /// The replies to a root message of a channel.
    pub fn replies(
        &self,
        team_id: &str,
        channel_id: &str,
        message_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            format!("replies to message {message_id} in channel {team_id}/{channel_id}"),
            &[
                "v1.0", "teams", team_id, "channels", channel_id, "messages", message_id, "replies",
            ],
            &[("$top", "50".into())],
        )
    }

    /// A round over a scope, as a stream of pages ending after the page with the
    /// deltaLink (or, for a window, the last page). The stream ends after an error.
    pub fn round(
        &self,
        scope: &Scope,
        start: RoundStart,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        let first = self.first_request(scope, &start);
        self.pages(scope.to_string(), first)
    }

    /// Whether a URL reads mail, whose ids the client asks to be immutable.
    fn mail_ids(&self, url: &Url) -> bool {
        self.inner.config.mail.immutable_ids && Route::of(url).mailbox.is_some()
    }

    fn first_request(&self, scope: &Scope, start: &RoundStart) -> Result<PageRequest, FetchError> {
        let config = &self.inner.config;
        let mail_page_size = |n: u32| matches!(scope, Scope::MailFolder { .. }).then_some(n.max(1));
        let unsupported = |detail: &str| FetchError::Unsupported {
            scope: scope.to_string(),
            detail: detail.to_string(),
        };
        let model = || {
            config
                .payment_model
                .map(|m| ("model", m.as_str().to_string()))
        };
        let request = |url: Url, expects_delta: bool, prefer: Option<u32>| PageRequest {
            immutable_ids: self.mail_ids(&url),
            url,
            prefer_page_size: prefer,
            expects: if expects_delta {
                Expect::Delta
            } else {
                Expect::Collection
            },
            number: 1,
        };
        match (scope, start) {
            (_, RoundStart::Resume { link }) => {
                let url = resolve_saved_link(&config.graph_url, link).map_err(|detail| {
                    FetchError::MalformedPage {
                        scope: scope.to_string(),
                        url: RedactedUrl::from_text(link),
                        page: 0,
                        attempts: 0,
                        detail: format!("the saved link cannot be used: {detail}"),
                    }
                })?;
                let expects_delta = url.path().to_ascii_lowercase().ends_with("/delta");
                Ok(request(
                    url,
                    expects_delta,
                    mail_page_size(config.mail.page_size),
                ))
            }
            (Scope::UserChats { user_id }, RoundStart::Initial { since, page_size }) => {
                // The payment model goes on the chat delta too: it reads the same protected
                // export as getAllMessages.
                let mut query: Vec<_> = model().into_iter().collect();
                query.push(("$top", page_size.max(&1).to_string()));
                if let Some(since) = since {
                    query.push((
                        "$filter",
                        format!("lastModifiedDateTime gt {}", time(*since)),
                    ));
                }
                let url = self.url(
                    &["beta", "users", user_id, "chats", "getAllMessages", "delta"],
                    &query,
                );
                Ok(request(url, true, None))
            }
            (
                Scope::UserChats { .. } | Scope::Team { .. },
                RoundStart::Window {
                    from,
                    to,
                    page_size,
                },
            ) => {
                let mut query: Vec<_> = model().into_iter().collect();
                query.push(("$top", (*page_size).clamp(1, 50).to_string()));
                let before = format!("lastModifiedDateTime lt {}", time(*to));
                let filter = match from {
                    Some(from) => format!("lastModifiedDateTime gt {} and {before}", time(*from)),
                    None => before,
                };
                query.push(("$filter", filter));
                let segments: Vec<&str> = match scope {
                    Scope::UserChats { user_id } => {
                        vec!["v1.0", "users", user_id, "chats", "getAllMessages"]
                    }
                    Scope::Team { team_id } => {
                        vec!["v1.0", "teams", team_id, "channels", "getAllMessages"]
                    }
                    _ => unreachable!("matched above"),
                };
                Ok(request(self.url(&segments, &query), false, None))
            }
            (
                Scope::Channel {
                    team_id,
                    channel_id,
                },
                RoundStart::History { page_size },
            ) => {
                let query = [("$top", (*page_size).clamp(1, 50).to_string())];
                let url = self.url(
                    &["v1.0", "teams", team_id, "channels", channel_id, "messages"],
                    &query,
                );
                Ok(request(url, false, None))
            }
            (
                Scope::Channel {
                    team_id,
                    channel_id,
                },
                RoundStart::Initial { since, page_size },
            ) => {
                // Channel delta serves at most 50 a page.
                let mut query = vec![("$top", (*page_size).clamp(1, 50).to_string())];
                if let Some(since) = since {
                    query.push((
                        "$filter",
                        format!("lastModifiedDateTime gt {}", time(*since)),
                    ));
                }
                let url = self.url(
                    &[
                        "v1.0", "teams", team_id, "channels", channel_id, "messages", "delta",
                    ],
                    &query,
                );
                Ok(request(url, true, None))
            }
            (
                Scope::MailFolder { user_id, folder_id },
                RoundStart::Initial { since, page_size },
            ) => {
                let mut query = Vec::new();
                if let Some(change) = config.mail.change_type {
                    query.push(("changeType", change.as_str().to_string()));
                }
                if let Some(select) = &config.mail.select {
                    query.push(("$select", select.join(",")));
                }
                if let Some(since) = since {
                    query.push(("$filter", format!("receivedDateTime ge {}", time(*since))));
                }
                let url = self.url(
                    &[
                        "v1.0",
                        "users",
                        user_id,
                        "mailFolders",
                        folder_id,
                        "messages",
                        "delta",
                    ],
                    &query,
                );
                Ok(request(url, true, mail_page_size(*page_size)))
            }
            (Scope::Channel { .. }, RoundStart::Window { .. }) => Err(unsupported(
                "a channel has no time-window listing; read its team's window (Scope::Team) or its history",
            )),
            (Scope::MailFolder { .. }, RoundStart::Window { .. }) => Err(unsupported(
                "mail folders have no time-window listing; start a delta round instead",
            )),
            (Scope::Team { .. }, RoundStart::Initial { .. }) => Err(unsupported(
                "a team's channels have no delta of their own; read each channel's delta and the team's windows",
            )),
            (
                Scope::Team { .. } | Scope::UserChats { .. } | Scope::MailFolder { .. },
                RoundStart::History { .. },
            ) => Err(unsupported("only a channel lists its whole history")),
        }
    }
}

/// Where a walk of the mail folder tree stands: the pages still to fetch.
struct FolderWalk {
    queue: VecDeque<PageRequest>,
    failed: bool,
}

impl FolderWalk {
    /// Queue the page's nextLink first (the rest of this list), then the childFolders of
    /// each folder on it that has children.
    fn follow(
        &mut self,
        inner: &Inner,
        scope: &str,
        request: &PageRequest,
        page: Page,
        children: &impl Fn(&str) -> Url,
    ) -> Result<Page, FetchError> {
        let malformed = |detail: String| FetchError::MalformedPage {
            scope: scope.to_string(),
            url: page.url.clone(),
            page: page.number,
            attempts: 1,
            detail,
        };
        for (i, item) in page.iter().enumerate() {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Folder {
                id: String,
                #[serde(default)]
                child_folder_count: Option<u64>,
            }
            let folder: Folder = serde_json::from_str(item)
                .map_err(|e| malformed(format!("folder {i} is not a mail folder: {e}")))?;
            if folder.child_folder_count.unwrap_or(0) > 0 {
                self.queue.push_back(PageRequest {
                    url: children(&folder.id),
                    number: 1,
                    ..request.clone()
                });
            }
        }
        if let Some(link) = page.link.next() {
            let url = resolve_link(&inner.config.graph_url, link).map_err(malformed)?;
            self.queue.push_front(PageRequest {
                url,
                number: request.number + 1,
                ..request.clone()
            });
        }
        Ok(page)
    }
}

/// A URL's hash, to know a page fetched before in a round.
fn url_hash(url: &Url) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    url.as_str().hash(&mut hasher);
    hasher.finish()
}
