//! The client: one per app, cheap to clone, and the sources an archive reads from it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::Stream;
use url::Url;

use crate::auth::TokenSource;
use crate::config::ClientConfig;
use crate::error::{FetchError, RedactedUrl};
use crate::http::PageRequest;
use crate::page::{Page, resolve_link};
use crate::throttle::Throttle;

/// What a delta round or window reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every chat message of every chat the user is in (the user is their custodian).
    UserChats { user_id: String },
    /// The root messages of a channel (replies come from [`GraphClient::replies`]).
    Channel { team_id: String, channel_id: String },
    /// One mail folder of a user.
    MailFolder { user_id: String, folder_id: String },
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::UserChats { user_id } => write!(f, "chats of user {user_id}"),
            Scope::Channel {
                team_id,
                channel_id,
            } => write!(f, "channel {team_id}/{channel_id}"),
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
    Initial {
        since: Option<DateTime<Utc>>,
        page_size: u32,
    },
    /// Continue from a saved `@odata.nextLink` (mid-round) or `@odata.deltaLink` (the next
    /// round), absolute or relative, exactly as Graph sent it.
    Resume { link: String },
    /// Chat messages last modified in (`from`, `to`), from getAllMessages rather than delta:
    /// for backfills and resyncs. User chats only.
    Window {
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
        page_size: u32,
    },
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
    inner: Arc<Inner>,
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
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
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

    fn list(
        &self,
        scope: String,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        let request = PageRequest {
            url: self.url(segments, query),
            prefer_page_size: None,
            expects_delta: false,
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
        futures::stream::unfold(start, move |step| {
            let inner = inner.clone();
            let scope = scope.clone();
            async move {
                match step {
                    Step::Done => None,
                    Step::Fail(error) => Some((Err(error), Step::Done)),
                    Step::Fetch(request) => match inner.get_page(&scope, &request).await {
                        Err(error) => Some((Err(error), Step::Done)),
                        Ok(page) => {
                            let next = match &page.next_link {
                                None => Step::Done,
                                Some(link) => match resolve_link(&inner.config.graph_url, link) {
                                    Ok(url) => Step::Fetch(PageRequest {
                                        url,
                                        number: request.number + 1,
                                        ..request
                                    }),
                                    Err(detail) => Step::Fail(FetchError::MalformedPage {
                                        scope: scope.clone(),
                                        url: page.url.clone(),
                                        page: page.number,
                                        attempts: 1,
                                        detail,
                                    }),
                                },
                            };
                            Some((Ok(page), next))
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

    /// The top-level mail folders of a user.
    pub fn mail_folders(
        &self,
        user_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            format!("mail folders of user {user_id}"),
            &["v1.0", "users", user_id, "mailFolders"],
            &[("$top", "100".into())],
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

    fn first_request(&self, scope: &Scope, start: &RoundStart) -> Result<PageRequest, FetchError> {
        let config = &self.inner.config;
        let mail_page_size = |n: u32| matches!(scope, Scope::MailFolder { .. }).then_some(n.max(1));
        let unsupported = |detail: &str| FetchError::Unsupported {
            scope: scope.to_string(),
            detail: detail.to_string(),
        };
        let request = |url: Url, expects_delta: bool, prefer: Option<u32>| PageRequest {
            url,
            prefer_page_size: prefer,
            expects_delta,
            number: 1,
        };
        match (scope, start) {
            (_, RoundStart::Resume { link }) => {
                let url = resolve_link(&config.graph_url, link).map_err(|detail| {
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
                let mut query = vec![("$top", page_size.max(&1).to_string())];
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
                Scope::UserChats { user_id },
                RoundStart::Window {
                    from,
                    to,
                    page_size,
                },
            ) => {
                let mut query = Vec::new();
                if let Some(model) = config.payment_model {
                    query.push(("model", model.as_str().to_string()));
                }
                query.push(("$top", page_size.max(&1).to_string()));
                let before = format!("lastModifiedDateTime lt {}", time(*to));
                let filter = match from {
                    Some(from) => format!("lastModifiedDateTime gt {} and {before}", time(*from)),
                    None => before,
                };
                query.push(("$filter", filter));
                let url = self.url(
                    &["v1.0", "users", user_id, "chats", "getAllMessages"],
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
                "channel messages have no time-window listing; start a delta round with `since` instead",
            )),
            (Scope::MailFolder { .. }, RoundStart::Window { .. }) => Err(unsupported(
                "mail folders have no time-window listing; start a delta round with `since` instead",
            )),
        }
    }
}
