//! Serving Graph: each request passes faults, authentication and throttling, waits the
//! configured latency, then gets a page of its collection.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;

use crate::auth::TokenRequest;
use crate::config::{LinkStyle, SimConfig};
use crate::docs::{self, MAIL_PROPERTIES};
use crate::faults::{EndpointKind, Fault};
use crate::limits::Buckets;
use crate::paging::{StateToken, select_page};
use crate::route::Endpoint;
use crate::server::{Shared, lock};
use crate::store::{MailAt, Store};
use crate::text::mix;
use crate::timefmt::{graph_time, parse_filter_time};

// ---- the entry point ------------------------------------------------------------------

type SharedState = State<Arc<Shared>>;

/// Every Graph request: find the resource its path addresses, in either URL form.
pub(crate) async fn dispatch(
    State(shared): SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match Endpoint::parse(uri.path()) {
        Some((_, endpoint)) if method == Method::GET => serve(shared, endpoint, uri, headers).await,
        Some(_) => {
            let response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request_BadRequest",
                format!("The simulator serves only GET on {}.", uri.path()),
            )
            .into_response();
            finish(&shared, EndpointKind::Unknown, response)
        }
        None => unknown(&shared, &uri),
    }
}

fn unknown(shared: &Shared, uri: &Uri) -> Response {
    let segment = uri
        .path()
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .to_string();
    let response = ApiError::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{segment}'."),
    )
    .into_response();
    finish(shared, EndpointKind::Unknown, response)
}

/// What the request's `Prefer` headers ask for (one header with comma-separated
/// preferences, or several headers).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Preferences {
    /// `odata.maxpagesize=N`
    pub max_page_size: Option<u32>,
    /// `include-unknown-enum-members`
    pub unknown_enum_members: bool,
    /// `IdType="ImmutableId"`
    pub immutable_ids: bool,
}

impl Preferences {
    fn of(headers: &HeaderMap) -> Preferences {
        let mut out = Preferences::default();
        for preference in headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
        {
            let (name, value) = match preference.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (preference, None),
            };
            if name.eq_ignore_ascii_case("odata.maxpagesize") {
                out.max_page_size = value.and_then(|v| v.parse().ok()).filter(|&n| n > 0);
            } else if name.eq_ignore_ascii_case("include-unknown-enum-members") {
                out.unknown_enum_members = true;
            } else if name.eq_ignore_ascii_case("IdType") {
                out.immutable_ids = value.is_some_and(|v| v.eq_ignore_ascii_case("ImmutableId"));
            }
        }
        out
    }
}

/// Evolvable enum members Graph hides behind `unknownFutureValue` unless the request
/// asks for them: in the CSDL (v1.0 and beta), `chatMessageType` lists `systemEventMessage`
/// after `unknownFutureValue`, `teamworkUserIdentityType` lists `emailUser` (beta also
/// `azureCommunicationServicesUser`).
const EVOLVABLE_MEMBERS: &[(&[u8], &[u8])] = &[
    (
        b"\"messageType\":\"systemEventMessage\"",
        b"\"messageType\":\"unknownFutureValue\"",
    ),
    (
        b"\"userIdentityType\":\"emailUser\"",
        b"\"userIdentityType\":\"unknownFutureValue\"",
    ),
    (
        b"\"userIdentityType\":\"azureCommunicationServicesUser\"",
        b"\"userIdentityType\":\"unknownFutureValue\"",
    ),
];

/// Replace every occurrence of `from` in `bytes` by `to`.
pub(crate) fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = memchr::memmem::find(rest, from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

// ---- the request pipeline -----------------------------------------------------------------

pub(crate) enum Before {
    Continue {
        after: Option<Fault>,
    },
    Respond(Response),
    /// The connection is dropped: counted as status 0.
    Reset(Response),
}

/// Decide and apply an injected fault that happens before the request is served.
pub(crate) async fn faults_before(
    shared: &Shared,
    kind: EndpointKind,
    uri: &Uri,
    authorization: Option<&str>,
    latency: Duration,
) -> Before {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let Some(fault) = lock(&shared.faults).decide(kind, path_and_query) else {
        return Before::Continue { after: None };
    };
    lock(&shared.stats).fault(fault.label());
    let error = match &fault {
        Fault::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
            return Before::Continue { after: None };
        }
        Fault::TruncatedBody | Fault::IncompleteJson | Fault::NextLinkToItself => {
            return Before::Continue { after: Some(fault) };
        }
        Fault::ExpiredToken => {
            lock(&shared.auth).expire(authorization);
            return Before::Continue { after: None };
        }
        Fault::ConnectionReset => {
            sleep(latency).await;
            let stream = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection reset",
                ))
            });
            return Before::Reset(Response::new(Body::from_stream(stream)));
        }
        Fault::TooManyRequests { retry_after } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Please retry again later.",
        )
        .retry_after(retry_after.header_value()),
        Fault::ServiceUnavailable { retry_after } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        )
        .retry_after(retry_after.header_value()),
        Fault::Status { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = match status.as_u16() {
                500 => "InternalServerError",
                502 => "BadGateway",
                504 => "GatewayTimeout",
                _ => "UnknownError",
            };
            ApiError::new(status, code, format!("Simulated {status}."))
        }
    };
    sleep(latency).await;
    Before::Respond(error.into_response())
}

pub(crate) async fn sleep(latency: Duration) {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// Releases an admitted request's place in the limiter, also if the request is dropped;
/// a streamed body holds it until the last byte is sent.
pub(crate) struct Admitted {
    shared: Arc<Shared>,
    buckets: Buckets,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.shared.limiter).release(&self.buckets);
    }
}

async fn serve(shared: Arc<Shared>, endpoint: Endpoint, uri: Uri, headers: HeaderMap) -> Response {
    let kind = endpoint.kind();
    let latency = lock(&shared.settings).latency;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let after = match faults_before(&shared, kind, &uri, authorization, latency).await {
        Before::Respond(response) => return finish(&shared, kind, response),
        Before::Reset(response) => {
            lock(&shared.stats).record(kind, 0);
            return response;
        }
        Before::Continue { after } => after,
    };
    let auth_result = lock(&shared.auth).check(authorization);
    if let Err(problem) = auth_result {
        let message = match problem {
            crate::auth::TokenProblem::Missing => "Access token is empty.",
            crate::auth::TokenProblem::Unknown => {
                "IDX14100: JWT is not well formed, there are no dots (.)."
            }
            crate::auth::TokenProblem::Expired => {
                "Lifetime validation failed, the token is expired."
            }
        };
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
        .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""),
        );
        sleep(latency).await;
        return finish(&shared, kind, response);
    }
    let buckets = endpoint.buckets();
    let admitted = lock(&shared.limiter).admit(&buckets);
    if let Err(throttled) = admitted {
        lock(&shared.stats).throttled += 1;
        let fixed = lock(&shared.limiter).retry_after_seconds();
        let seconds = match fixed {
            Some(seconds) => u64::from(seconds),
            None => throttled.retry_after.as_secs_f64().ceil().max(1.0) as u64,
        };
        tracing::debug!(bucket = %throttled.bucket, "throttled");
        let response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!(
                "Application is over its request quota ({}). Please retry again later.",
                throttled.bucket.split(':').next().unwrap_or("app")
            ),
        )
        .retry_after(Some(seconds.to_string()))
        .into_response();
        return finish(&shared, kind, response);
    }
    let admitted = Admitted {
        shared: shared.clone(),
        buckets,
    };
    lock(&shared.stats).admitted();
    sleep(latency).await;
    if endpoint.is_content() {
        let response = match crate::content_api::answer(&shared, &endpoint, &uri, &headers).await {
            Ok(answer) => answer.into_response(after, admitted),
            Err(error) => error.into_response(),
        };
        return finish(&shared, kind, response);
    }
    let preferences = Preferences::of(&headers);
    let result = build(&shared, &endpoint, &uri, &preferences);
    drop(admitted);
    let response = match result {
        Ok(mut page) => {
            let hide = lock(&shared.settings).evolvable_enums && !preferences.unknown_enum_members;
            if hide {
                for (from, to) in EVOLVABLE_MEMBERS {
                    page.body = replace_all(&page.body, from, to);
                }
            }
            if after == Some(Fault::NextLinkToItself) {
                page.link_to(&shared.base_url, &uri);
            }
            page.into_response(after)
        }
        Err(error) => error.into_response(),
    };
    finish(&shared, kind, response)
}

pub(crate) fn finish(shared: &Shared, kind: EndpointKind, response: Response) -> Response {
    lock(&shared.stats).record(kind, response.status().as_u16());
    response
}

// ---- errors -----------------------------------------------------------------------------

pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn retry_after(mut self, value: Option<String>) -> Self {
        self.retry_after = value;
        self
    }

    fn gone() -> Self {
        ApiError::new(
            StatusCode::GONE,
            "syncStateNotFound",
            "The sync state is no longer available; a full resync is required.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": graph_time(chrono::Utc::now()).trim_end_matches('Z').split('.').next().unwrap_or_default(),
                    "request-id": uuid::Uuid::new_v4().to_string(),
                    "client-request-id": uuid::Uuid::new_v4().to_string(),
                }
            }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(value) = self
            .retry_after
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

// ---- pages -------------------------------------------------------------------------------

pub(crate) struct PageOut {
    pub(crate) body: Vec<u8>,
    pub(crate) preference_applied: Option<u32>,
}

impl PageOut {
    /// Makes the page's `@odata.nextLink` the URL it was asked at.
    fn link_to(&mut self, base_url: &url::Url, uri: &Uri) {
        let Ok(mut page) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return;
        };
        let asked = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        if let (Some(fields), Ok(url)) = (page.as_object_mut(), base_url.join(asked)) {
            fields.remove("@odata.deltaLink");
            fields.insert("@odata.nextLink".into(), url.to_string().into());
            self.body = serde_json::to_vec(&page).expect("JSON serialises");
        }
    }

    pub(crate) fn into_response(self, after: Option<Fault>) -> Response {
        let mut body = self.body;
        let full_length = body.len();
        let response_body = match after {
            Some(Fault::IncompleteJson) => {
                body.truncate(full_length / 2);
                Body::from(body)
            }
            Some(Fault::TruncatedBody) => {
                body.truncate(full_length / 2);
                let stream = futures::stream::iter(vec![
                    Ok::<Bytes, std::io::Error>(Bytes::from(body)),
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "simulated truncation",
                    )),
                ]);
                Body::from_stream(stream)
            }
            _ => Body::from(body),
        };
        let mut response = Response::new(response_body);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"),
        );
        if matches!(after, Some(Fault::TruncatedBody)) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(full_length));
        }
        if let Some(size) = self.preference_applied
            && let Ok(value) = HeaderValue::from_str(&format!("odata.maxpagesize={size}"))
        {
            headers.insert("preference-applied", value);
        }
        response
    }
}

/// Query options, names lowercased and without the `$`.
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(uri: &Uri) -> Query {
        let pairs = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| {
                (
                    k.trim_start_matches('$').to_ascii_lowercase(),
                    v.into_owned(),
                )
            })
            .collect();
        Query { pairs }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn other_than(&self, allowed: &[&str]) -> Option<&str> {
        self.pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !allowed.contains(k))
    }
}

/// Where a page starts: the round's snapshot, the changes it covers, and its parameters.
#[derive(Clone)]
struct Position {
    f: u64,
    w: u64,
    cursor: Option<(u64, u64)>,
    p: u32,
    a: Option<i64>,
    b: Option<i64>,
    x: u64,
    sel: Option<Vec<String>>,
    ct: Option<String>,
    m: Option<String>,
    n: u32,
}

impl Position {
    fn fresh(w: u64, p: u32, x: u64) -> Position {
        Position {
            f: 0,
            w,
            cursor: None,
            p,
            a: None,
            b: None,
            x,
            sel: None,
            ct: None,
            m: None,
            n: 0,
        }
    }
}

/// Context shared by the page builders.
struct Ctx<'a> {
    shared: &'a Shared,
    settings: &'a SimConfig,
    store: &'a Store,
    endpoint: &'a Endpoint,
    uri: &'a Uri,
    query: Query,
    scope: String,
    salt: u64,
    nonces: [u64; 2],
}

fn build(
    shared: &Shared,
    endpoint: &Endpoint,
    uri: &Uri,
    preferences: &Preferences,
) -> Result<PageOut, ApiError> {
    let (salt, nonces) = {
        let mut rng = lock(&shared.rng);
        (
            rng.random::<u64>(),
            [rng.random::<u64>(), rng.random::<u64>()],
        )
    };
    let settings_guard = lock(&shared.settings);
    let settings: &SimConfig = &settings_guard;
    let mut guard = lock(&shared.store);
    let store: &Store = &guard;
    let scope = scope_of(store, endpoint)?;
    let mut ctx = Ctx {
        shared,
        settings,
        store,
        endpoint,
        uri,
        query: Query::parse(uri),
        scope,
        salt,
        nonces,
    };
    if let Endpoint::ChatWindow { .. } | Endpoint::TeamWindow { .. } = endpoint {
        let (page, evaluation_items) = window_page(&ctx)?;
        guard.evaluation_items_served += evaluation_items;
        return Ok(page);
    }
    match endpoint {
        Endpoint::Users => list_page(&mut ctx, 100, 999, "users", |s| {
            s.users
                .iter()
                .filter(|u| !u.deleted)
                .map(|u| u.json.clone())
                .collect()
        }),
        Endpoint::Teams => list_page(&mut ctx, 100, 999, "teams", |s| {
            s.teams
                .iter()
                .filter(|t| !t.deleted)
                .map(|t| t.json.clone())
                .collect()
        }),
        Endpoint::Channels { team } => {
            let t = store.team(team).map_err(|_| team_not_found(team))?;
            // `/channels` lists the team's own channels; `allChannels` also those shared
            // into it from other tenants.
            let all = uri.path().to_ascii_lowercase().ends_with("allchannels");
            list_page(
                &mut ctx,
                100,
                999,
                &format!("teams('{team}')/allChannels"),
                |s| {
                    s.teams[t]
                        .channels
                        .iter()
                        .filter(|&&c| all || s.channels[c].owner_tenant.is_none())
                        .map(|&c| s.channels[c].json.clone())
                        .collect()
                },
            )
        }
        Endpoint::MailFolders { user, parent } => {
            let (u, parent) = mailbox(store, user, parent.as_deref())?;
            let hidden = ctx.first_call_option("includehiddenfolders", "true", ":hidden");
            let context = match parent {
                Some(p) => format!(
                    "users('{user}')/mailFolders('{}')/childFolders",
                    store.folders[p].id
                ),
                None => format!("users('{user}')/mailFolders"),
            };
            list_page(&mut ctx, 10, 999, &context, |s| {
                let folders = match parent {
                    Some(p) => &s.folders[p].children,
                    None => &s.users[u].folders,
                };
                folders
                    .iter()
                    .copied()
                    .filter(|&f| {
                        let folder = &s.folders[f];
                        folder.listed && !folder.deleted && (hidden || !folder.hidden)
                    })
                    .map(|f| Bytes::from(s.folder_json(f)))
                    .collect()
            })
        }
        Endpoint::MailFolder { user, folder } => {
            let (_, f) = mailbox(store, user, Some(folder))?;
            let f = f.ok_or_else(|| ApiError::bad_request("no folder"))?;
            let mut body = br#"{"@odata.context":"#.to_vec();
            body.extend_from_slice(
                docs::json_string(&context_url(
                    shared,
                    uri,
                    &format!("users('{user}')/mailFolders/$entity"),
                ))
                .as_bytes(),
            );
            let folder = store.folder_json(f);
            body.push(b',');
            body.extend_from_slice(&folder[1..]);
            Ok(PageOut {
                body,
                preference_applied: None,
            })
        }
        Endpoint::UserChats { user } => {
            let u = store.user(user).map_err(|_| user_not_found(user))?;
            let expand = ctx.first_call_option("expand", "members", ":members");
            list_page(&mut ctx, 50, 50, &format!("users('{user}')/chats"), |s| {
                s.users[u]
                    .chats
                    .iter()
                    .map(|&c| Bytes::from(s.chat_json(c, expand)))
                    .collect()
            })
        }
        Endpoint::ChatDelta { user } => {
            let u = store.user(user).map_err(|_| user_not_found(user))?;
            let messages = user_chat_messages(store, u);
            message_delta_page(&mut ctx, messages, Some(u))
        }
        Endpoint::ChannelDelta { team, channel } => {
            let c = readable_channel(store, team, channel)?;
            let roots = store.channels[c].roots.iter().copied();
            message_delta_page(&mut ctx, roots, None)
        }
        Endpoint::ChannelMessages { team, channel } => {
            let c = readable_channel(store, team, channel)?;
            channel_messages_page(&mut ctx, c)
        }
        Endpoint::Replies {
            team,
            channel,
            message,
        } => {
            let c = readable_channel(store, team, channel)?;
            let root = store
                .message_index
                .get(&(crate::store::Conv::Channel(c), message.clone()))
                .copied()
                .filter(|&m| store.messages[m].root.is_none())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("Message {message} was not found in channel {channel}."),
                    )
                })?;
            replies_page(&mut ctx, root)
        }
        Endpoint::MailDelta { user, folder } => {
            let (_, f) = mailbox(store, user, Some(folder))?;
            let f = f.ok_or_else(|| ApiError::bad_request("no folder"))?;
            mail_delta_page(&mut ctx, f, preferences)
        }
        Endpoint::ChatWindow { .. } | Endpoint::TeamWindow { .. } => {
            Err(ApiError::bad_request("getAllMessages is served above"))
        }
        _ => Err(ApiError::bad_request("content is served by content_api")),
    }
}

pub(crate) fn user_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn team_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("No team found with Group Id {id}"),
    )
}

fn channel_not_found(team: &str, channel: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Channel {channel} was not found in team {team}."),
    )
}

/// A channel whose messages this app may read: the team exists, the channel exists, and
/// it is not shared from another tenant (in application context, a channel's messages are
/// read from the tenant its owner belongs to: list channel messages, "federation").
pub(crate) fn readable_channel(
    store: &Store,
    team: &str,
    channel: &str,
) -> Result<usize, ApiError> {
    store.team(team).map_err(|_| team_not_found(team))?;
    let c = store
        .channel(team, channel)
        .map_err(|_| channel_not_found(team, channel))?;
    if let Some(owner) = &store.channels[c].owner_tenant {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "Channel {channel} is shared from tenant {owner}; in application context its messages can only be read from the tenant of the channel's owner."
            ),
        ));
    }
    Ok(c)
}

/// A user's mailbox and, if asked, one of its folders (by id or well-known name): 404
/// `MailboxNotEnabledForRESTAPI` for a user without an Exchange Online mailbox
/// (unlicensed, guest, shared or on-premises), `ErrorItemNotFound` for a missing folder.
pub(crate) fn mailbox(
    store: &Store,
    user: &str,
    folder: Option<&str>,
) -> Result<(usize, Option<usize>), ApiError> {
    let u = store.user(user).map_err(|_| user_not_found(user))?;
    if !store.users[u].mailbox {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ));
    }
    let Some(folder) = folder else {
        return Ok((u, None));
    };
    let f = store.folder(user, folder).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    })?;
    Ok((u, Some(f)))
}

/// The collection a state token belongs to.
fn scope_of(store: &Store, endpoint: &Endpoint) -> Result<String, ApiError> {
    Ok(match endpoint {
        Endpoint::Users => "users".into(),
        Endpoint::Teams => "teams".into(),
        Endpoint::Channels { team } => format!("channels:{team}"),
        Endpoint::MailFolders { user, parent } => {
            format!("folders:{user}:{}", parent.as_deref().unwrap_or(""))
        }
        Endpoint::MailFolder { user, folder } => format!("folder:{user}:{folder}"),
        Endpoint::UserChats { user } => format!("chats:{user}"),
        Endpoint::ChatWindow { user } => format!("window:{user}"),
        Endpoint::TeamWindow { team } => format!("team-window:{team}"),
        Endpoint::ChatDelta { user } => {
            // Graph accepts a user principal name too; tokens belong to the user.
            let u = store.user(user).map_err(|_| user_not_found(user))?;
            format!("delta:{}", store.users[u].id)
        }
        Endpoint::ChannelMessages { team, channel } => format!("messages:{team}:{channel}"),
        Endpoint::ChannelDelta { team, channel } => format!("channel:{team}:{channel}"),
        Endpoint::Replies {
            team,
            channel,
            message,
        } => format!("replies:{team}:{channel}:{message}"),
        Endpoint::MailDelta { user, folder } => format!("mail:{user}:{folder}"),
        _ => String::new(),
    })
}

/// Whether links of this endpoint are written relative to the service root.
fn relative_links(endpoint: &Endpoint, style: LinkStyle) -> bool {
    match style {
        LinkStyle::Absolute => false,
        LinkStyle::Relative => true,
        LinkStyle::Mixed => matches!(
            endpoint,
            Endpoint::ChannelDelta { .. }
                | Endpoint::Replies { .. }
                | Endpoint::ChannelMessages { .. }
        ),
    }
}

/// The oldest `lastModifiedDateTime` (epoch ms) delta still returns, if delta's history
/// is limited ("Delta will only return messages within the last eight months").
fn delta_horizon(store: &Store, settings: &SimConfig) -> Option<i64> {
    let months = settings.delta_history_months?;
    let now = store.clock.now();
    Some(
        now.checked_sub_months(chrono::Months::new(months))
            .unwrap_or(now)
            .timestamp_millis(),
    )
}

/// `model=A|B` on a protected call, checked against the app's billing and, for model A,
/// the named user's licence (teams-licenses: "Payment-related errors").
fn check_payment(
    settings: &SimConfig,
    store: &Store,
    model: Option<&str>,
    named_user: Option<usize>,
) -> Result<(), ApiError> {
    let billing = settings.billing;
    let payment =
        |message: String| ApiError::new(StatusCode::PAYMENT_REQUIRED, "PaymentRequired", message);
    match model {
        Some("A") if !billing.model_a => {
            Err(payment("Query parameter 'model' value 'A' is not supported: the application is not set up for billing with model A. See https://aka.ms/teams-api-payment-requirements".into()))
        }
        Some("B") if !billing.model_b => {
            Err(payment("Query parameter 'model' value 'B' is not supported: the application is not set up for billing with model B. See https://aka.ms/teams-api-payment-requirements".into()))
        }
        Some("A") if named_user.is_some_and(|u| !store.users[u].licensed) => {
            let id = named_user.map(|u| store.users[u].id.as_str()).unwrap_or_default();
            Err(payment(format!("User '{id}' needs a valid license to access this API. See https://aka.ms/teams-api-payment-requirements")))
        }
        None if store.evaluation_items_served >= billing.evaluation_items => {
            Err(payment("Evaluation mode capacity has been exceeded. Use a valid billing model. See https://aka.ms/teams-api-payment-requirements".into()))
        }
        _ => Ok(()),
    }
}

/// `model=A|B`, case-insensitive.
fn parse_model(query: &Query) -> Result<Option<String>, ApiError> {
    match query.get("model") {
        None => Ok(None),
        Some(m) if m.eq_ignore_ascii_case("a") => Ok(Some("A".into())),
        Some(m) if m.eq_ignore_ascii_case("b") => Ok(Some("B".into())),
        Some(m) => Err(ApiError::bad_request(format!(
            "Invalid value '{m}' for the model parameter: use A or B."
        ))),
    }
}

fn version_of(uri: &Uri) -> &str {
    uri.path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("v1.0")
}

pub(crate) fn context_url(shared: &Shared, uri: &Uri, what: &str) -> String {
    format!("{}{}/$metadata#{what}", shared.base_url, version_of(uri))
}

fn parse_top(query: &Query, default: u32, max: u32) -> Result<u32, ApiError> {
    match query.get("top") {
        None => Ok(default),
        Some(text) => match text.parse::<u32>() {
            Ok(0) | Err(_) => Err(ApiError::bad_request(format!(
                "Invalid value '{text}' for query option $top."
            ))),
            Ok(n) => Ok(n.min(max)),
        },
    }
}

/// `lastModifiedDateTime gt X` and/or `lastModifiedDateTime lt Y` (and `receivedDateTime
/// ge|gt X` for mail), as epoch milliseconds: (after, before).
fn parse_filter(
    text: &str,
    property: &str,
    allow_lt: bool,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let mut after = None;
    let mut before = None;
    for clause in text.split(" and ") {
        let parts: Vec<&str> = clause.split_whitespace().collect();
        let invalid = || {
            ApiError::bad_request(format!(
                "Invalid filter clause '{clause}': supported is {property} gt <time>{}.",
                if allow_lt { " and/or lt <time>" } else { "" }
            ))
        };
        let [name, op, value] = parts.as_slice() else {
            return Err(invalid());
        };
        if !name.eq_ignore_ascii_case(property) {
            return Err(invalid());
        }
        let t = parse_filter_time(value)
            .ok_or_else(invalid)?
            .timestamp_millis();
        match op.to_ascii_lowercase().as_str() {
            "gt" => after = Some(t),
            "ge" => after = Some(t - 1),
            "lt" if allow_lt => before = Some(t),
            _ => return Err(invalid()),
        }
    }
    Ok((after, before))
}

impl Ctx<'_> {
    /// Whether the request sets `param` to `value` (`includeHiddenFolders=true`,
    /// `$expand=members`). It is a parameter of the first call only: later pages carry it
    /// in their token, as `suffix` on the scope, which this adds when it is set.
    fn first_call_option(&mut self, param: &str, value: &str, suffix: &str) -> bool {
        let set = match self.query.get("skiptoken") {
            Some(token) => StateToken::decode(token).is_some_and(|t| t.s.ends_with(suffix)),
            None => self
                .query
                .get(param)
                .is_some_and(|v| v.eq_ignore_ascii_case(value)),
        };
        if set {
            self.scope.push_str(suffix);
        }
        set
    }

    /// Resolve the request's state token, or start a round with `initial`.
    fn position(
        &self,
        delta: bool,
        initial: impl FnOnce(&Query) -> Result<Position, ApiError>,
    ) -> Result<Position, ApiError> {
        let skip = self.query.get("skiptoken");
        let deltatoken = self.query.get("deltatoken");
        let (text, is_delta_token) = match (skip, deltatoken) {
            (None, None) => {
                let mut position = initial(&self.query)?;
                position.w = self.store.seq;
                position.x = self.salt;
                return Ok(position);
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "Specify either $skiptoken or $deltatoken, not both.",
                ));
            }
            (Some(t), None) => (t, false),
            (None, Some(t)) => (t, true),
        };
        // Parameters ride in the token; Graph ignores them when a later call repeats them.
        if delta
            && self.settings.refuse_repeated_delta_parameters
            && let Some(other) = self.query.other_than(&["skiptoken", "deltatoken"])
        {
            return Err(ApiError::bad_request(format!(
                "Query option '${other}' is not allowed with a state token: parameters are given on the first delta call only and are encoded in the token."
            )));
        }
        if is_delta_token && !delta {
            return Err(ApiError::bad_request(
                "$deltatoken is only valid on delta functions.",
            ));
        }
        let token = StateToken::decode(text)
            .ok_or_else(|| ApiError::bad_request("The state token is not valid."))?;
        if token.d != is_delta_token || token.s != self.scope {
            return Err(ApiError::bad_request(
                "The state token is not valid for this resource.",
            ));
        }
        let age = self.store.clock.now().timestamp_millis() - token.t;
        if token.e != self.store.epoch
            || age > self.settings.state_token_lifetime.num_milliseconds()
        {
            return Err(ApiError::gone());
        }
        let mut position = Position {
            f: token.f,
            w: token.w,
            cursor: token.c,
            p: token.p,
            a: token.a,
            b: token.b,
            x: token.x,
            sel: token.sel,
            ct: token.ct,
            m: token.m,
            n: token.n,
        };
        if is_delta_token {
            position.w = self.store.seq;
            position.cursor = None;
            position.x = self.salt;
            position.n = 0;
            position.a = None;
            position.b = None;
        }
        Ok(position)
    }

    /// A page of `items` whose `@odata.context` names `context`, with no `Prefer` applied.
    fn collection(
        &self,
        context: &str,
        count: Option<usize>,
        (next, delta): (Option<String>, Option<String>),
        items: &[Bytes],
    ) -> PageOut {
        PageOut {
            body: docs::collection_page(
                &context_url(self.shared, self.uri, context),
                count,
                next.as_deref(),
                delta.as_deref(),
                items,
            ),
            preference_applied: None,
        }
    }

    fn page_size(&self, requested: u32) -> usize {
        let cap = self.settings.page_size_cap.unwrap_or(u32::MAX).max(1);
        requested.min(cap) as usize
    }

    fn issue(&self, token: StateToken) -> String {
        let text = token.encode();
        if self.settings.record_issued_tokens {
            lock(&self.shared.issued_state_tokens).push(text.clone());
        }
        text
    }

    fn link(&self, param: &str, token: &str) -> String {
        let version = version_of(self.uri);
        let path = match self.endpoint {
            Endpoint::ChatWindow { user } if self.settings.key_syntax_links => {
                format!("/{version}/users('{user}')/chats/getAllMessages")
            }
            Endpoint::TeamWindow { team } if self.settings.key_syntax_links => {
                format!("/{version}/teams('{team}')/channels/getAllMessages")
            }
            _ => self.uri.path().to_string(),
        };
        let relative = format!("{path}?{param}={token}");
        if relative_links(self.endpoint, self.settings.link_style) {
            relative
        } else {
            format!(
                "{}{}",
                self.shared.base_url.as_str().trim_end_matches('/'),
                relative
            )
        }
    }

    fn token(
        &self,
        position: &Position,
        delta: bool,
        cursor: Option<(u64, u64)>,
        nonce: u64,
    ) -> StateToken {
        StateToken {
            d: delta,
            s: self.scope.clone(),
            e: self.store.epoch,
            t: self.store.clock.now().timestamp_millis(),
            f: if delta { position.w } else { position.f },
            w: if delta { 0 } else { position.w },
            c: if delta { None } else { cursor },
            p: position.p,
            a: if delta { None } else { position.a },
            b: if delta { None } else { position.b },
            x: if delta { 0 } else { position.x },
            sel: position.sel.clone(),
            ct: position.ct.clone(),
            m: position.m.clone(),
            n: if delta { 0 } else { position.n + 1 },
            r: nonce,
        }
    }

    /// Links for a page: a nextLink while items remain; at the end a deltaLink for delta
    /// functions, nothing otherwise.
    fn links(
        &self,
        position: &Position,
        cursor: Option<(u64, u64)>,
        more: bool,
        delta: bool,
    ) -> (Option<String>, Option<String>) {
        if more {
            let token = self.issue(self.token(position, false, cursor, self.nonces[0]));
            (Some(self.link("$skiptoken", &token)), None)
        } else if delta {
            let token = self.issue(self.token(position, true, None, self.nonces[1]));
            (None, Some(self.link("$deltatoken", &token)))
        } else {
            (None, None)
        }
    }

    /// Select a page from `candidates` that satisfy `keep`, maybe repeating the last item
    /// of the previous page (delta only).
    fn select(
        &self,
        candidates: impl Iterator<Item = usize>,
        keep: impl Fn(usize) -> bool,
        position: &Position,
        size: usize,
        replays: bool,
    ) -> (Vec<usize>, Option<(u64, u64)>, bool) {
        let (page, more) = select_page(
            candidates.filter(|&i| keep(i)),
            position.x,
            position.cursor,
            size,
        );
        let cursor = page.last().map(|&(k, i)| (k, i as u64)).or(position.cursor);
        let mut items: Vec<usize> = page.iter().map(|&(_, i)| i).collect();
        if replays
            && let Some((key, idx)) = position.cursor
            && mix(position.x ^ key ^ 0x7e9a) % 1000 < u64::from(self.settings.replay_per_mille)
            && keep(idx as usize)
        {
            items.insert(0, idx as usize);
            lock(&self.shared.stats).replays += 1;
        }
        (items, cursor, more)
    }
}

/// Discovery collections: a fixed order, paged by offset.
fn list_page(
    ctx: &mut Ctx<'_>,
    default_top: u32,
    max_top: u32,
    context: &str,
    items: impl FnOnce(&Store) -> Vec<Bytes>,
) -> Result<PageOut, ApiError> {
    let position = ctx.position(false, |q| {
        Ok(Position::fresh(0, parse_top(q, default_top, max_top)?, 0))
    })?;
    let size = ctx.page_size(position.p);
    let all = items(ctx.store);
    let select: Option<Vec<String>> = ctx
        .query
        .get("select")
        .map(|s| s.split(',').map(|p| p.trim().to_string()).collect());
    let offset = position
        .cursor
        .map(|(_, i)| i as usize)
        .unwrap_or(0)
        .min(all.len());
    let end = (offset + size).min(all.len());
    let more = end < all.len();
    let page: Vec<Bytes> = all[offset..end]
        .iter()
        .map(|item| match &select {
            Some(props) => Bytes::from(project(item, props, None)),
            None => item.clone(),
        })
        .collect();
    let links = ctx.links(&position, Some((0, end as u64)), more, false);
    Ok(ctx.collection(context, None, links, &page))
}

/// Keep `id` and the selected properties of a JSON object, in `order` if given.
fn project(item: &[u8], select: &[String], order: Option<&[&str]>) -> Vec<u8> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(item)
    else {
        return item.to_vec();
    };
    let wanted = |name: &str| select.iter().any(|s| s.eq_ignore_ascii_case(name));
    let mut out = Vec::with_capacity(item.len() / 2);
    out.push(b'{');
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, key: &str, value: &serde_json::Value| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(docs::json_string(key).as_bytes());
        out.push(b':');
        out.extend_from_slice(serde_json::to_string(value).unwrap_or_default().as_bytes());
    };
    for key in ["@odata.type", "@odata.etag", "id"] {
        if let Some(v) = map.get(key) {
            put(&mut out, key, v);
        }
    }
    match order {
        Some(order) => {
            for key in order {
                if wanted(key)
                    && let Some(v) = map.get(*key)
                {
                    put(&mut out, key, v);
                }
            }
        }
        None => {
            for key in select {
                if key != "id"
                    && let Some((k, v)) = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key))
                {
                    put(&mut out, k, v);
                }
            }
        }
    }
    out.push(b'}');
    out
}

/// Delta over messages (a user's chats, or a channel's roots): what changed since the
/// token's watermark, within the delta horizon, at most 50 a page whatever `$top` asks.
/// Chat delta (`licensed_user`) also takes `model=A|B`, checked like getAllMessages
/// (billing, the user's licence); channel delta takes no model.
fn message_delta_page(
    ctx: &mut Ctx<'_>,
    candidates: impl Iterator<Item = usize>,
    licensed_user: Option<usize>,
) -> Result<PageOut, ApiError> {
    let position = ctx.position(true, |q| {
        let mut p = Position::fresh(0, parse_top(q, 20, 50)?, 0);
        if let Some(filter) = q.get("filter") {
            p.a = parse_filter(filter, "lastModifiedDateTime", false)?.0;
        }
        if licensed_user.is_some() {
            p.m = parse_model(q)?;
        }
        Ok(p)
    })?;
    if position.m.is_some() {
        check_payment(
            ctx.settings,
            ctx.store,
            position.m.as_deref(),
            licensed_user,
        )?;
    }
    let store = ctx.store;
    let horizon = delta_horizon(store, ctx.settings);
    let keep = |idx: usize| match store.messages[idx].version_at(position.w) {
        Some(v) => {
            let t = v.last_modified.timestamp_millis();
            v.seq > position.f && position.a.is_none_or(|a| t > a) && horizon.is_none_or(|h| t >= h)
        }
        None => false,
    };
    let size = ctx.page_size(position.p);
    let (items, cursor, more) = ctx.select(candidates, keep, &position, size, true);
    let bytes = message_versions(store, &items, position.w);
    let links = ctx.links(&position, cursor, more, true);
    Ok(ctx.collection("Collection(chatMessage)", None, links, &bytes))
}

/// Every message of every chat `user` is in, chat by chat.
fn user_chat_messages(store: &Store, user: usize) -> impl Iterator<Item = usize> + '_ {
    store.users[user]
        .chats
        .iter()
        .flat_map(|&c| store.chats[c].messages.iter().copied())
}

/// The stored JSON of `items` as they were at sequence `at`, leaving out any not yet written.
fn message_versions(store: &Store, items: &[usize], at: u64) -> Vec<Bytes> {
    items
        .iter()
        .filter_map(|&i| store.messages[i].version_at(at).map(|v| v.json.clone()))
        .collect()
}

/// getAllMessages over a time window: a user's chats (`/users/{id}/chats/getAllMessages`)
/// or a team's channels, roots and replies alike (`/teams/{id}/channels/getAllMessages`,
/// leaving out channels shared from other tenants). Protected: `model=A|B` or evaluation
/// mode; `$filter` on lastModifiedDateTime (`gt`, `lt`); `@odata.count` on each page.
/// Returns the page and how many items it serves in evaluation mode (none with a model).
fn window_page(ctx: &Ctx<'_>) -> Result<(PageOut, u64), ApiError> {
    let store = ctx.store;
    let (candidates, named_user): (Vec<usize>, Option<usize>) = match ctx.endpoint {
        Endpoint::ChatWindow { user } => {
            let u = store.user(user).map_err(|_| user_not_found(user))?;
            (user_chat_messages(store, u).collect(), Some(u))
        }
        Endpoint::TeamWindow { team } => {
            let t = store.team(team).map_err(|_| team_not_found(team))?;
            let messages = store.teams[t]
                .channels
                .iter()
                .filter(|&&c| store.channels[c].owner_tenant.is_none())
                .flat_map(|&c| store.channels[c].roots.iter().copied())
                .flat_map(|r| std::iter::once(r).chain(store.messages[r].replies.iter().copied()))
                .collect();
            (messages, None)
        }
        _ => return Err(ApiError::bad_request("not a getAllMessages request")),
    };
    let position = ctx.position(false, |q| {
        let mut p = Position::fresh(0, parse_top(q, 20, 50)?, 0);
        if let Some(filter) = q.get("filter") {
            (p.a, p.b) = parse_filter(filter, "lastModifiedDateTime", true)?;
        }
        p.m = parse_model(q)?;
        Ok(p)
    })?;
    check_payment(ctx.settings, store, position.m.as_deref(), named_user)?;
    let keep = |idx: usize| match store.messages[idx].version_at(position.w) {
        Some(v) => {
            let t = v.last_modified.timestamp_millis();
            position.a.is_none_or(|a| t > a) && position.b.is_none_or(|b| t < b)
        }
        None => false,
    };
    let size = ctx.page_size(position.p);
    let (items, cursor, more) = ctx.select(candidates.into_iter(), keep, &position, size, false);
    let bytes = message_versions(store, &items, position.w);
    let links = ctx.links(&position, cursor, more, false);
    let page = ctx.collection("Collection(chatMessage)", Some(bytes.len()), links, &bytes);
    let evaluation_items = if position.m.is_none() {
        bytes.len() as u64
    } else {
        0
    };
    Ok((page, evaluation_items))
}

/// `GET /teams/{id}/channels/{id}/messages`: the channel's root messages over all its
/// history (delta returns only the last eight months), 20 a page by default, at most 50.
fn channel_messages_page(ctx: &mut Ctx<'_>, channel: usize) -> Result<PageOut, ApiError> {
    if ctx.query.get("expand").is_some() && ctx.query.get("skiptoken").is_none() {
        return Err(ApiError::bad_request(
            "The simulator does not serve $expand=replies; list replies per message.",
        ));
    }
    let store = ctx.store;
    let c = &store.channels[channel];
    let context = format!(
        "teams('{}')/channels('{}')/messages",
        store.teams[c.team].id, c.id
    );
    message_list(ctx, &c.roots, &context)
}

/// One page of a message listing (roots or replies, as they were when it began), 20 a
/// page by default and at most 50, with its count and the nextLink to the rest.
fn message_list(ctx: &mut Ctx<'_>, messages: &[usize], context: &str) -> Result<PageOut, ApiError> {
    let position = ctx.position(false, |q| Ok(Position::fresh(0, parse_top(q, 20, 50)?, 0)))?;
    let store = ctx.store;
    let keep = |idx: usize| store.messages[idx].version_at(position.w).is_some();
    let size = ctx.page_size(position.p);
    let (items, cursor, more) = ctx.select(messages.iter().copied(), keep, &position, size, false);
    let bytes = message_versions(store, &items, position.w);
    let links = ctx.links(&position, cursor, more, false);
    Ok(ctx.collection(context, Some(bytes.len()), links, &bytes))
}

fn replies_page(ctx: &mut Ctx<'_>, root: usize) -> Result<PageOut, ApiError> {
    let Endpoint::Replies {
        team,
        channel,
        message,
    } = ctx.endpoint
    else {
        return Err(ApiError::bad_request("not a replies request"));
    };
    let context = format!("teams('{team}')/channels('{channel}')/messages('{message}')/replies");
    let store = ctx.store;
    message_list(ctx, &store.messages[root].replies, &context)
}

fn mail_delta_page(
    ctx: &mut Ctx<'_>,
    folder: usize,
    preferences: &Preferences,
) -> Result<PageOut, ApiError> {
    let prefer = preferences.max_page_size;
    let mut position = ctx.position(true, |q| {
        let mut p = Position::fresh(0, parse_top(q, 10, 1000)?, 0);
        if let Some(select) = q.get("select") {
            let props: Vec<String> = select.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            for prop in &props {
                if prop != "id" && !MAIL_PROPERTIES.iter().any(|k| k.eq_ignore_ascii_case(prop)) {
                    return Err(ApiError::bad_request(format!("Could not find a property named '{prop}' on type 'microsoft.graph.message'.")));
                }
            }
            p.sel = Some(props);
        }
        if let Some(change) = q.get("changetype") {
            let change = change.to_ascii_lowercase();
            if !["created", "updated", "deleted"].contains(&change.as_str()) {
                return Err(ApiError::bad_request(format!("Invalid changeType '{change}': use created, updated or deleted.")));
            }
            p.ct = Some(change);
        }
        if let Some(filter) = q.get("filter") {
            p.a = parse_filter(filter, "receivedDateTime", false)?.0;
        }
        Ok(p)
    })?;
    if let Some(size) = prefer {
        position.p = size;
    }
    let store = ctx.store;
    let wants = |kind: &str| position.ct.as_deref().is_none_or(|c| c == kind);
    let keep = |idx: usize| {
        let mail = &store.mail[idx];
        match mail.at(position.w) {
            MailAt::Present(v) => {
                let kind = if mail.created_seq > position.f {
                    "created"
                } else {
                    "updated"
                };
                v.seq > position.f
                    && wants(kind)
                    && position.a.is_none_or(|a| v.received.timestamp_millis() > a)
            }
            MailAt::Removed(removed) => {
                position.f > 0
                    && removed > position.f
                    && mail.created_seq <= position.f
                    && wants("deleted")
            }
            MailAt::Absent => false,
        }
    };
    let size = ctx.page_size(position.p);
    let (items, cursor, more) = ctx.select(
        store.folders[folder].items.iter().copied(),
        keep,
        &position,
        size,
        true,
    );
    // Stored documents carry the immutable id; without `Prefer: IdType="ImmutableId"`
    // Graph shows the REST id, which changes when the item moves.
    let shown_id = |mail: &crate::store::Mail| {
        if preferences.immutable_ids {
            mail.id.clone()
        } else {
            mail.rest_id.clone()
        }
    };
    let bytes: Vec<Bytes> = items
        .iter()
        .map(|&i| {
            let mail = &store.mail[i];
            match mail.at(position.w) {
                MailAt::Present(v) => {
                    let item = match &position.sel {
                        Some(sel) => project(&v.json, sel, Some(MAIL_PROPERTIES)),
                        None => v.json.to_vec(),
                    };
                    if preferences.immutable_ids {
                        Bytes::from(item)
                    } else {
                        let from = format!("\"id\":{}", docs::json_string(&mail.id));
                        let to = format!("\"id\":{}", docs::json_string(&mail.rest_id));
                        Bytes::from(replace_all(&item, from.as_bytes(), to.as_bytes()))
                    }
                }
                _ => Bytes::from(
                    serde_json::to_vec(&json!({
                        "@odata.type": "#microsoft.graph.message",
                        "id": shown_id(mail),
                        "@removed": { "reason": "deleted" },
                    }))
                    .unwrap_or_default(),
                ),
            }
        })
        .collect();
    let links = ctx.links(&position, cursor, more, true);
    Ok(PageOut {
        preference_applied: prefer.map(|_| size as u32),
        ..ctx.collection("Collection(message)", None, links, &bytes)
    })
}

// ---- login ------------------------------------------------------------------------------

pub(crate) async fn token(
    State(shared): SharedState,
    Path(tenant): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let kind = EndpointKind::Token;
    let after = match faults_before(&shared, kind, &uri, None, Duration::ZERO).await {
        Before::Respond(response) => return finish(&shared, kind, response),
        Before::Reset(response) => {
            lock(&shared.stats).record(kind, 0);
            return response;
        }
        Before::Continue { after } => after,
    };
    let mut form = TokenRequest {
        grant_type: None,
        client_id: None,
        scope: None,
        client_secret: None,
        client_assertion_type: None,
        client_assertion: None,
    };
    for (key, value) in url::form_urlencoded::parse(&body) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "grant_type" => form.grant_type = value,
            "client_id" => form.client_id = value,
            "scope" => form.scope = value,
            "client_secret" => form.client_secret = value,
            "client_assertion_type" => form.client_assertion_type = value,
            "client_assertion" => form.client_assertion = value,
            _ => {}
        }
    }
    let token_url = format!("{}{tenant}/oauth2/v2.0/token", shared.base_url);
    let result = {
        let mut rng = lock(&shared.rng);
        lock(&shared.auth).issue(
            &tenant,
            &token_url,
            shared.base_url.as_str(),
            &form,
            &mut rng,
        )
    };
    let response = match result {
        Ok((token, expires_in)) => PageOut {
            body: serde_json::to_vec(&json!({
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": token,
            }))
            .unwrap_or_default(),
            preference_applied: None,
        }
        .into_response(after),
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            (
                status,
                axum::Json(json!({
                    "error": e.error,
                    "error_description": format!("{}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}", e.description, uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ")),
                    "error_codes": [e.code],
                    "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
                    "trace_id": uuid::Uuid::new_v4().to_string(),
                    "correlation_id": uuid::Uuid::new_v4().to_string(),
                    "error_uri": format!("https://login.microsoftonline.com/error?code={}", e.code),
                })),
            )
                .into_response()
        }
    };
    finish(&shared, kind, response)
}
