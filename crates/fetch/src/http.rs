//! One page from Graph: token, pacing, the request, and what to do with the answer:
//! hand back a page, retry (429, 503, 5xx, dropped connections, cut or malformed bodies),
//! refresh the token (401), or fail with an error that names the scope and page.

use std::error::Error as _;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use backon::BackoffBuilder;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use url::Url;

use crate::auth::AccessToken;
use crate::client::Inner;
use crate::config::{PaymentModel, RetryPolicy};
use crate::error::{FetchError, RedactedUrl, Unavailable, scrub};
use crate::page::{Page, parse_page};
use crate::throttle::{Route, segments};

/// The largest page body accepted; Graph pages are far smaller.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Error codes that mean the delta state is gone and only a resync helps.
const RESYNC_CODES: &[&str] = &[
    "syncstatenotfound",
    "resyncrequired",
    "syncstateinvalid",
    "resyncapplicationrequired",
];

/// What a response must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A page of a collection (`value`), maybe with a nextLink.
    Collection,
    /// A page of a delta round: it has a nextLink or ends with a deltaLink.
    Delta,
    /// A single entity, handed back as a page of one item.
    Entity,
}

/// A request for one page of a round or list.
#[derive(Clone)]
pub(crate) struct PageRequest {
    pub url: Url,
    /// `Prefer: odata.maxpagesize` (mail).
    pub prefer_page_size: Option<u32>,
    /// `Prefer: IdType="ImmutableId"` (mail).
    pub immutable_ids: bool,
    pub expects: Expect,
    pub number: u64,
}

impl PageRequest {
    /// The request's `Prefer` header: `include-unknown-enum-members` always, so evolvable
    /// enum members (system events: `messageType: systemEventMessage`) arrive as they are
    /// rather than as `unknownFutureValue` (best-practices: evolvable enums), then the
    /// page size and immutable ids where asked.
    pub(crate) fn prefer(&self) -> String {
        let mut prefer = vec!["include-unknown-enum-members".to_string()];
        if let Some(size) = self.prefer_page_size {
            prefer.push(format!("odata.maxpagesize={size}"));
        }
        if self.immutable_ids {
            prefer.push("IdType=\"ImmutableId\"".to_string());
        }
        prefer.join(", ")
    }
}

/// A library error as text, without the request URL (which may hold a state token).
pub(crate) fn describe(error: reqwest::Error) -> String {
    let timeout = error.is_timeout();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if timeout && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// `Retry-After` as delay seconds (whole or fractional) or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

pub(crate) fn backoff(policy: &RetryPolicy) -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries as usize)
        .with_jitter()
        .build()
}

/// Where a request's retry loop stands: the waits left, the attempts made, and the fresh
/// tokens Graph refused in a row.
pub(crate) struct Retries {
    delays: backon::ExponentialBackoff,
    pub attempts: u32,
    rejected_tokens: u32,
}

impl Retries {
    pub fn new(policy: &RetryPolicy) -> Retries {
        Retries {
            delays: backoff(policy),
            attempts: 0,
            rejected_tokens: 0,
        }
    }
}

/// A response body, refused past `limit` bytes (announced or received) rather than held.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, String> {
    if let Some(length) = response.content_length()
        && length > limit as u64
    {
        return Err(format!(
            "response of {length} bytes exceeds the {limit}-byte limit"
        ));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > limit {
            return Err(format!("response exceeds the {limit}-byte limit"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A Graph error body's code and message.
fn graph_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let error = value.get("error");
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_str())
        .map(str::to_string);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string);
    (code, message)
}

pub(crate) enum Failure {
    Status {
        status: u16,
        code: Option<String>,
        excerpt: String,
    },
    Transport(String),
    Malformed(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, code, .. } => write!(
                f,
                "HTTP {status}{}",
                code.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
            ),
            Failure::Transport(detail) => write!(f, "transport: {detail}"),
            Failure::Malformed(detail) => write!(f, "malformed page: {detail}"),
        }
    }
}

/// What one attempt at a page brought: the page, or the setback that kept it from coming.
pub(crate) type Outcome = Result<Page, Setback>;

/// An attempt that brought no page: what [`Inner::recover`] acts on.
pub(crate) enum Setback {
    Fail(FetchError),
    Reauthenticate,
    Retry(Failure, Option<Duration>),
}

impl Inner {
    /// Secrets that might surface in text about this request.
    pub(crate) fn secrets_of<'a>(&'a self, url: &'a Url, token: &'a AccessToken) -> Vec<String> {
        let mut secrets: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| {
                let k = k.trim_start_matches('$').to_ascii_lowercase();
                k.contains("token") || k == "sig" || k == "code"
            })
            .map(|(_, v)| v.into_owned())
            .collect();
        secrets.push(token.secret().to_string());
        if let Some(secret) = self.tokens.secret() {
            secrets.push(secret.to_string());
        }
        secrets
    }

    fn excerpt(&self, body: &[u8], secrets: &[String]) -> (Option<String>, String) {
        let (code, message) = graph_error(body);
        let text = match message {
            Some(message) => message,
            // Scrubbed before it is cut to length: a secret cut in half would no longer
            // be recognised.
            None => String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned(),
        };
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let mut text = scrub(&text, &refs);
        if text.len() > 300 {
            let mut cut = 300;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        (code, text)
    }

    /// Fetch one page, retrying what can be retried.
    pub(crate) async fn get_page(
        &self,
        scope: &str,
        request: &PageRequest,
    ) -> Result<Page, FetchError> {
        let route = Route::of(&request.url);
        let shown = RedactedUrl::new(&request.url);
        let mut retries = Retries::new(&self.config.retry);
        loop {
            retries.attempts += 1;
            let token = self.tokens.get().await.map_err(|f| f.into_error(scope))?;
            let permit = self.throttle.acquire(&route).await;
            let started = Instant::now();
            let builder = self
                .http
                .get(request.url.clone())
                .bearer_auth(token.secret())
                .header(http::header::ACCEPT, "application/json")
                .header("Prefer", request.prefer());
            let (status, outcome) = match builder.send().await {
                Err(e) => (
                    None,
                    Err(Setback::Retry(Failure::Transport(describe(e)), None)),
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let wait = retry_after(response.headers());
                    let outcome = match read_body(response, MAX_BODY).await {
                        Err(detail) => Err(Setback::Retry(Failure::Transport(detail), None)),
                        Ok(body) => self
                            .classify(scope, request, &shown, &route, &token, status, wait, body),
                    };
                    (Some(status), outcome)
                }
            };
            drop(permit);
            self.count_answer(status);
            tracing::debug!(
                scope,
                url = %shown,
                status = status.unwrap_or(0),
                attempt = retries.attempts,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "graph request"
            );
            match outcome {
                Ok(page) => return Ok(page),
                Err(setback) => {
                    self.recover(scope, &shown, request.number, &token, &mut retries, setback)
                        .await?
                }
            }
        }
    }

    /// Counts an attempt that is over; an answer other than 429 tells the throttle that
    /// Graph is answering again.
    pub(crate) fn count_answer(&self, status: Option<u16>) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if matches!(status, Some(429 | 503)) {
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if status.is_some_and(|s| s != 429) {
            self.throttle.answered();
        }
    }

    /// After an attempt that brought no page: the error that ends the request, or (`Ok`)
    /// the wait is over and the caller tries again.
    pub(crate) async fn recover(
        &self,
        scope: &str,
        shown: &RedactedUrl,
        page: u64,
        token: &AccessToken,
        retries: &mut Retries,
        setback: Setback,
    ) -> Result<(), FetchError> {
        match setback {
            Setback::Fail(mut error) => {
                if let FetchError::Http {
                    attempts: tried, ..
                } = &mut error
                {
                    *tried = retries.attempts;
                }
                Err(error)
            }
            Setback::Reauthenticate => {
                retries.rejected_tokens += 1;
                self.tokens.reject(token).await;
                if retries.rejected_tokens > 3 {
                    return Err(FetchError::Auth {
                        scope: scope.to_string(),
                        url: shown.clone(),
                        status: Some(401),
                        code: Some("InvalidAuthenticationToken".into()),
                        detail: format!(
                            "Graph rejected {} fresh access tokens in a row",
                            retries.rejected_tokens
                        ),
                    });
                }
                tracing::info!(scope, url = %shown, "access token rejected; getting a new one");
                // A refused token is not the request's fault: it does not use up an attempt.
                retries.attempts -= 1;
                Ok(())
            }
            Setback::Retry(failure, wait) => {
                let Some(backoff) = retries.delays.next() else {
                    return Err(self.give_up(scope, shown, page, retries.attempts, failure));
                };
                let wait = wait
                    .map(|w| w.min(self.config.retry.max_retry_after))
                    .unwrap_or(backoff);
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .waited_ms
                    .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                tracing::warn!(scope, url = %shown, attempt = retries.attempts, reason = %failure, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                Ok(())
            }
        }
    }

    pub(crate) fn give_up(
        &self,
        scope: &str,
        url: &RedactedUrl,
        page: u64,
        attempts: u32,
        failure: Failure,
    ) -> FetchError {
        let scope = scope.to_string();
        let url = url.clone();
        match failure {
            Failure::Status {
                status,
                code,
                excerpt,
            } => FetchError::Http {
                scope,
                url,
                page,
                status,
                code,
                attempts,
                body_excerpt: excerpt,
            },
            Failure::Transport(detail) => FetchError::Transport {
                scope,
                url,
                page,
                attempts,
                detail,
            },
            Failure::Malformed(detail) => FetchError::MalformedPage {
                scope,
                url,
                page,
                attempts,
                detail,
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn classify(
        &self,
        scope: &str,
        request: &PageRequest,
        shown: &RedactedUrl,
        route: &Route,
        token: &AccessToken,
        status: u16,
        wait: Option<Duration>,
        body: Bytes,
    ) -> Outcome {
        if (200..300).contains(&status) {
            return match parse_page(
                body,
                &self.config.graph_url,
                request.expects,
                request.number,
                shown.clone(),
            ) {
                Ok(page) => Ok(page),
                Err(detail) => Err(Setback::Retry(Failure::Malformed(detail), None)),
            };
        }
        if status == 401 {
            return Err(Setback::Reauthenticate);
        }
        let secrets = self.secrets_of(&request.url, token);
        let (code, excerpt) = self.excerpt(&body, &secrets);
        let resync = code
            .as_deref()
            .is_some_and(|c| RESYNC_CODES.contains(&c.to_ascii_lowercase().as_str()));
        if status == 410 || resync {
            return Err(Setback::Fail(FetchError::ResyncRequired {
                scope: scope.to_string(),
                url: shown.clone(),
                status,
                code: code.unwrap_or_else(|| "Gone".into()),
            }));
        }
        if let Some(reason) = unavailable(&request.url, status, code.as_deref(), &excerpt) {
            return Err(Setback::Fail(FetchError::Unavailable {
                scope: scope.to_string(),
                url: shown.clone(),
                reason,
                status,
                code,
                detail: excerpt,
            }));
        }
        match status {
            402 => {
                let model = request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k.eq_ignore_ascii_case("model"))
                    .map(|(_, v)| {
                        if v.eq_ignore_ascii_case("b") {
                            PaymentModel::B
                        } else {
                            PaymentModel::A
                        }
                    })
                    .or(self.config.payment_model.filter(|_| {
                        request
                            .url
                            .path()
                            .to_ascii_lowercase()
                            .contains("/getallmessages")
                    }));
                Err(Setback::Fail(FetchError::PaymentRequired {
                    scope: scope.to_string(),
                    url: shown.clone(),
                    model,
                    detail: excerpt,
                }))
            }
            429 => {
                self.throttle.throttled(route, wait);
                Err(Setback::Retry(
                    Failure::Status {
                        status,
                        code,
                        excerpt,
                    },
                    wait,
                ))
            }
            status if is_retried_status(status) => Err(Setback::Retry(
                Failure::Status {
                    status,
                    code,
                    excerpt,
                },
                wait,
            )),
            _ => Err(Setback::Fail(FetchError::Http {
                scope: scope.to_string(),
                url: shown.clone(),
                page: request.number,
                status,
                code,
                // Set by the caller, which counts the attempts.
                attempts: 1,
                body_excerpt: excerpt,
            })),
        }
    }
}

/// Whether an error answer means the scope is not there to read rather than a fault:
/// decided by the status, Graph's error code and message, and which resource the URL
/// names (the last one in the path decides: a channel's 404 under a team that exists is
/// the channel's).
fn unavailable(url: &Url, status: u16, code: Option<&str>, message: &str) -> Option<Unavailable> {
    let segments = segments(url);
    let name = |i: usize| segments.get(i).map(|s| s.to_ascii_lowercase());
    let code = code.unwrap_or_default();
    let message = message.to_ascii_lowercase();
    let under_users = name(0).as_deref() == Some("users") && segments.len() > 2;
    let under_teams = name(0).as_deref() == Some("teams") && segments.len() > 2;
    let channel = under_teams
        && name(2).as_deref() == Some("channels")
        && !matches!(
            name(3).as_deref(),
            None | Some("getallmessages" | "allmessages")
        );
    match status {
        404 if code.eq_ignore_ascii_case("MailboxNotEnabledForRESTAPI") => {
            Some(Unavailable::NoMailbox)
        }
        404 if under_users => {
            let folder = name(2).as_deref() == Some("mailfolders") && segments.len() > 3;
            if folder && code.eq_ignore_ascii_case("ErrorItemNotFound") {
                Some(Unavailable::MailFolderNotFound)
            } else {
                Some(Unavailable::UserNotFound)
            }
        }
        404 if under_teams => {
            let one_message = name(4).as_deref() == Some("messages") && segments.len() > 6;
            if message.contains("no team found") || !channel {
                Some(Unavailable::TeamNotFound)
            } else if one_message && message.contains("message") {
                Some(Unavailable::MessageNotFound)
            } else {
                Some(Unavailable::ChannelNotFound)
            }
        }
        // Only a 403 that says the channel belongs to another tenant: any other 403 (a
        // missing permission) is a fault, however many channels it hits.
        403 if channel && message.contains("tenant") => Some(Unavailable::CrossTenantChannel),
        402 if message.contains("needs a valid license") && !message.contains("tenant needs") => {
            Some(Unavailable::NotLicensed)
        }
        _ => None,
    }
}

/// The statuses retried besides 429: Graph's own trouble, which passes.
pub(crate) fn is_retried_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_fault_answers_are_told_apart_from_faults() {
        let url = |u: &str| Url::parse(u).unwrap();
        let mail = url("https://g/v1.0/users/U/mailFolders/F/messages/delta");
        assert_eq!(
            unavailable(&mail, 404, Some("MailboxNotEnabledForRESTAPI"), "inactive"),
            Some(Unavailable::NoMailbox)
        );
        assert_eq!(
            unavailable(&mail, 404, Some("ErrorItemNotFound"), "not found"),
            Some(Unavailable::MailFolderNotFound)
        );
        assert_eq!(
            unavailable(&mail, 404, Some("Request_ResourceNotFound"), "x"),
            Some(Unavailable::UserNotFound)
        );
        let delta = url("https://g/v1.0/teams('T')/channels('C')/messages/delta");
        assert_eq!(
            unavailable(
                &delta,
                404,
                Some("NotFound"),
                "No team found with Group Id T"
            ),
            Some(Unavailable::TeamNotFound)
        );
        assert_eq!(
            unavailable(&delta, 404, Some("NotFound"), "Channel C was not found"),
            Some(Unavailable::ChannelNotFound)
        );
        assert_eq!(
            unavailable(
                &url("https://g/v1.0/teams/T/allChannels"),
                404,
                Some("NotFound"),
                "x"
            ),
            Some(Unavailable::TeamNotFound)
        );
        assert_eq!(
            unavailable(&delta, 403, Some("Forbidden"), "shared from tenant X"),
            Some(Unavailable::CrossTenantChannel)
        );
        assert_eq!(
            unavailable(&delta, 403, Some("Forbidden"), "Missing role permissions"),
            None,
            "a missing permission is a fault"
        );
        let chats = url("https://g/v1.0/users/U/chats/getAllMessages?model=A");
        assert_eq!(
            unavailable(
                &chats,
                402,
                Some("PaymentRequired"),
                "User 'U' needs a valid license to access this API."
            ),
            Some(Unavailable::NotLicensed)
        );
        assert_eq!(
            unavailable(
                &chats,
                402,
                Some("PaymentRequired"),
                "...tenant needs a valid license to access this API..."
            ),
            None
        );
        assert_eq!(
            unavailable(&url("https://g/v1.0/users"), 404, None, "x"),
            None
        );
        assert_eq!(unavailable(&chats, 500, None, "x"), None);
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, value.parse().unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_fractions_and_dates() {
        assert_eq!(retry_after(&headers("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&headers("2.128")),
            Some(Duration::from_millis(2128))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
        let wait = retry_after(&headers(&later)).unwrap();
        assert!(
            wait > Duration::from_secs(3) && wait <= Duration::from_secs(5),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(5));
        assert_eq!(retry_after(&headers(&past)), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon")), None);
    }
}
