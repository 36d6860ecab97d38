//! Serving what messages point to, as Graph documents it: a message's hosted contents
//! (chatmessage-list-hostedcontents, chatmessagehostedcontent-get), shared files
//! (shares-get, driveitem-get-content: a 302 to a pre-authenticated download URL that
//! takes no token), mail attachments (message-list-attachments, attachment-get) and a mail
//! item's MIME (message-get, `$value`). Bodies are streamed from their generators.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::blob::{Digests, Source};
use crate::content::{self, Holder, decode_share_id, url_key};
use crate::docs::json_string;
use crate::faults::{EndpointKind, Fault};
use crate::graph::{
    Admitted, ApiError, Before, PageOut, context_url, faults_before, finish, mailbox,
    readable_channel, sleep,
};
use crate::route::{Endpoint, MessagePath};
use crate::server::{Shared, lock};
use crate::store::{Conv, Store};
use crate::timefmt::graph_time;
use crate::truth::ContentKind;

/// What a content request gets.
pub(crate) enum Answer {
    /// A small JSON document.
    Json(Vec<u8>),
    /// Bytes made as they are sent.
    Stream {
        content_type: String,
        source: Source,
    },
    /// `302 Found` to a download URL.
    Redirect(String),
    /// `If-None-Match` named the file's current eTag or cTag.
    NotModified,
}

impl Answer {
    /// The response, with an injected fault that happens while the body is sent; a
    /// streamed body keeps the request's place in the limiter until it ends.
    pub(crate) fn into_response(self, after: Option<Fault>, admitted: Admitted) -> Response {
        match self {
            Answer::Json(body) => {
                drop(admitted);
                PageOut {
                    body,
                    preference_applied: None,
                }
                .into_response(after)
            }
            Answer::Stream {
                content_type,
                source,
            } => {
                let len = source.len();
                stream_response(
                    StatusCode::OK,
                    &content_type,
                    &source,
                    (0, len),
                    after,
                    Some(admitted),
                )
            }
            Answer::Redirect(location) => {
                let mut response = StatusCode::FOUND.into_response();
                if let Ok(value) = HeaderValue::from_str(&location) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                response
            }
            Answer::NotModified => StatusCode::NOT_MODIFIED.into_response(),
        }
    }
}

/// Bytes `start..end` of `source` with `Content-Length` set. A truncation fault sends half
/// of them under the full length and then drops the connection; an incomplete-body fault
/// sends half as a complete response.
fn stream_response<G: Send + 'static>(
    status: StatusCode,
    content_type: &str,
    source: &Source,
    (start, end): (u64, u64),
    after: Option<Fault>,
    guard: Option<G>,
) -> Response {
    let len = end - start;
    let (sent_end, cut, promised) = match after {
        Some(Fault::TruncatedBody) => (start + len / 2, true, len),
        Some(Fault::IncompleteJson) => (start + len / 2, false, len / 2),
        _ => (end, false, len),
    };
    let chunks = source
        .chunks(start, sent_end)
        .map(Ok::<Bytes, std::io::Error>);
    // The server flushes what it holds only when the body waits: wait before the error,
    // or the headers and the half sent would be dropped with the connection.
    let tail = futures::stream::iter(cut.then_some(())).then(|()| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated truncation",
        ))
    });
    let body = chunks.chain(tail).map(move |item| {
        // Held until the body is done or dropped.
        let _guard = &guard;
        item
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(promised));
    response
}

// ---- errors, as each service words them ---------------------------------------------------

fn teams_not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{what} not found."),
    )
}

fn teams_forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "Forbidden",
        "Access to the hosted content is denied.",
    )
}

fn item_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        "The resource could not be found.",
    )
}

fn access_denied() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "accessDenied", "Access denied")
}

fn mail_item_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

fn mail_access_denied() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )
}

// ---- answering -----------------------------------------------------------------------------

/// A drive item's JSON, waiting for its hashes.
struct DriveJson {
    value: Vec<(&'static str, Value)>,
    digests: Arc<OnceLock<Digests>>,
    source: Source,
}

enum Plan {
    Ready(Answer),
    Drive(Box<DriveJson>),
}

pub(crate) async fn answer(
    shared: &Arc<Shared>,
    endpoint: &Endpoint,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Answer, ApiError> {
    let plan = {
        let store = lock(&shared.store);
        plan(shared, &store, endpoint, uri, headers)?
    };
    match plan {
        Plan::Ready(answer) => Ok(answer),
        Plan::Drive(drive) => {
            let DriveJson {
                mut value,
                digests,
                source,
            } = *drive;
            let d = content::file_digests(&digests, &source).await;
            for (name, v) in &mut value {
                if *name == "file" {
                    v["hashes"] = json!({ "quickXorHash": d.quick_xor });
                }
            }
            Ok(Answer::Json(ordered(&value)))
        }
    }
}

fn plan(
    shared: &Shared,
    store: &Store,
    endpoint: &Endpoint,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Plan, ApiError> {
    match endpoint {
        Endpoint::HostedContents { message, id, value } => {
            hosted(shared, store, uri, message, id.as_deref(), *value).map(Plan::Ready)
        }
        Endpoint::SharedDriveItem { share, content } => {
            let url = decode_share_id(share).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    "Invalid shares key: use u! and the unpadded base64url of the sharing URL.",
                )
            })?;
            let file = store
                .contents
                .by_url
                .get(&url_key(&url))
                .copied()
                .ok_or_else(item_not_found)?;
            drive_item(shared, store, uri, headers, file, *content)
        }
        Endpoint::DriveItem {
            drive,
            item,
            content,
        } => {
            let file = store
                .contents
                .by_id
                .get(item)
                .copied()
                .filter(|&f| {
                    store
                        .contents
                        .drive_file(f)
                        .is_some_and(|d| &d.drive_id == drive)
                })
                .ok_or_else(item_not_found)?;
            drive_item(shared, store, uri, headers, file, *content)
        }
        Endpoint::MailAttachments {
            user,
            folder,
            message,
            id,
            value,
        } => attachments(
            shared,
            store,
            uri,
            (user, folder.as_deref(), message),
            id.as_deref(),
            *value,
        )
        .map(Plan::Ready),
        Endpoint::MailMime {
            user,
            folder,
            message,
        } => {
            let (owner, mail) = mail_item(store, user, folder.as_deref(), message)?;
            let attachments = store.mail_attachments(owner, &store.mail[mail].id);
            if attachments
                .iter()
                .any(|&p| store.contents.pieces[p].forbidden)
            {
                return Err(mail_access_denied());
            }
            let (source, _) = store.mail_mime(mail);
            Ok(Plan::Ready(Answer::Stream {
                content_type: "text/plain".into(),
                source,
            }))
        }
        _ => Err(ApiError::bad_request("not a content request")),
    }
}

/// The message a hosted content URL names, if it exists and is not deleted.
fn hosted_message(store: &Store, message: &MessagePath) -> Result<usize, ApiError> {
    let found = match message {
        MessagePath::Chat { chat, message } => {
            let c = store.chat(chat).map_err(|_| teams_not_found("Chat"))?;
            store
                .message_index
                .get(&(Conv::Chat(c), message.clone()))
                .copied()
        }
        MessagePath::Channel {
            team,
            channel,
            message,
        } => {
            let c = readable_channel(store, team, channel)?;
            store
                .message_index
                .get(&(Conv::Channel(c), message.clone()))
                .copied()
        }
        MessagePath::Reply {
            team,
            channel,
            root,
            reply,
        } => {
            let c = readable_channel(store, team, channel)?;
            let conv = Conv::Channel(c);
            let root = store.message_index.get(&(conv, root.clone())).copied();
            store
                .message_index
                .get(&(conv, reply.clone()))
                .copied()
                .filter(|&r| root.is_some() && store.messages[r].root == root)
        }
    };
    found
        .filter(|&m| !store.messages[m].current().deleted)
        .ok_or_else(|| teams_not_found("Message"))
}

/// `chats('19%3A...%40thread.v2')/messages('...')`, as the docs' contexts write it.
fn message_context(message: &MessagePath) -> String {
    let key = |k: &str| k.replace(':', "%3A").replace('@', "%40");
    match message {
        MessagePath::Chat { chat, message } => {
            format!("chats('{}')/messages('{message}')", key(chat))
        }
        MessagePath::Channel {
            team,
            channel,
            message,
        } => format!(
            "teams('{team}')/channels('{}')/messages('{message}')",
            key(channel)
        ),
        MessagePath::Reply {
            team,
            channel,
            root,
            reply,
        } => format!(
            "teams('{team}')/channels('{}')/messages('{root}')/replies('{reply}')",
            key(channel)
        ),
    }
}

fn hosted(
    shared: &Shared,
    store: &Store,
    uri: &Uri,
    message: &MessagePath,
    id: Option<&str>,
    value: bool,
) -> Result<Answer, ApiError> {
    let m = hosted_message(store, message)?;
    let pieces: Vec<usize> = store
        .contents
        .hosted
        .get(&m)
        .into_iter()
        .flatten()
        .copied()
        .filter(|&p| !store.contents.pieces[p].deleted)
        .collect();
    let context = format!("{}/hostedContents", message_context(message));
    let Some(id) = id else {
        // `contentBytes` and `contentType` are always null in a listing.
        let items: Vec<Bytes> = pieces
            .iter()
            .map(|&p| {
                Bytes::from(ordered(&[
                    ("id", json!(store.contents.pieces[p].id)),
                    ("contentBytes", Value::Null),
                    ("contentType", Value::Null),
                ]))
            })
            .collect();
        return Ok(Answer::Json(crate::docs::collection_page(
            &context_url(shared, uri, &context),
            Some(items.len()),
            None,
            None,
            &items,
        )));
    };
    let p = pieces
        .into_iter()
        .find(|&p| store.contents.pieces[p].id == id)
        .ok_or_else(|| teams_not_found("Hosted content"))?;
    let piece = &store.contents.pieces[p];
    if piece.forbidden {
        return Err(teams_forbidden());
    }
    if value {
        return Ok(Answer::Stream {
            content_type: piece
                .content_type
                .clone()
                .unwrap_or_else(|| "image/png".into()),
            source: piece
                .source
                .clone()
                .unwrap_or_else(|| Source::fixed(Vec::new())),
        });
    }
    Ok(Answer::Json(ordered(&[
        (
            "@odata.context",
            json!(context_url(shared, uri, &format!("{context}/$entity"))),
        ),
        ("id", json!(piece.id)),
        ("contentBytes", Value::Null),
        ("contentType", Value::Null),
    ])))
}

/// A JSON object with its properties in the order given (Graph's, not alphabetical).
fn ordered(properties: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    for (i, (name, value)) in properties.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json_string(name).as_bytes());
        out.push(b':');
        out.extend_from_slice(serde_json::to_string(value).unwrap_or_default().as_bytes());
    }
    out.push(b'}');
    out
}

/// A file's pre-authenticated download URL, on the simulator itself.
fn download_url(shared: &Shared, token: &str) -> String {
    format!("{}_download/{token}", shared.base_url)
}

fn drive_item(
    shared: &Shared,
    store: &Store,
    uri: &Uri,
    headers: &HeaderMap,
    f: usize,
    content: bool,
) -> Result<Plan, ApiError> {
    let piece = &store.contents.pieces[f];
    let Some(file) = store.contents.drive_file(f) else {
        return Err(item_not_found());
    };
    if piece.deleted {
        return Err(item_not_found());
    }
    if piece.forbidden {
        return Err(access_denied());
    }
    let etag = format!("\"{{{}}},1\"", file.guid.to_uppercase());
    let ctag = format!("\"c:{{{}}},1\"", file.guid.to_uppercase());
    if content {
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim() == "*" || entity_tags(v).iter().any(|t| *t == etag || *t == ctag)
            });
        if matches {
            return Ok(Plan::Ready(Answer::NotModified));
        }
        return Ok(Plan::Ready(Answer::Redirect(download_url(
            shared,
            &file.download_token,
        ))));
    }
    let owner = &store.users[file.owner];
    let who = json!({ "user": { "email": owner.mail, "id": owner.id, "displayName": owner.display_name } });
    let value = vec![
        (
            "@odata.context",
            json!(context_url(
                shared,
                uri,
                &format!("drives('{}')/items/$entity", file.drive_id)
            )),
        ),
        (
            "@microsoft.graph.downloadUrl",
            json!(download_url(shared, &file.download_token)),
        ),
        ("createdDateTime", json!(graph_time(piece.created))),
        ("eTag", json!(etag)),
        ("id", json!(piece.id)),
        ("lastModifiedDateTime", json!(graph_time(piece.modified))),
        ("name", json!(piece.name)),
        ("webUrl", json!(file.web_url)),
        ("cTag", json!(ctag)),
        ("size", json!(piece.size)),
        ("createdBy", who.clone()),
        ("lastModifiedBy", who),
        (
            "parentReference",
            json!({
                "driveType": file.drive_type,
                "driveId": file.drive_id,
                "id": file.folder_id,
                "name": file.folder,
                "path": format!("/drives/{}/root:/{}", file.drive_id, file.folder),
                "siteId": file.site_id,
            }),
        ),
        (
            "file",
            json!({
                "mimeType": piece.content_type,
                "hashes": { "quickXorHash": null },
            }),
        ),
        (
            "fileSystemInfo",
            json!({
                "createdDateTime": graph_time(piece.created),
                "lastModifiedDateTime": graph_time(piece.modified),
            }),
        ),
        ("shared", json!({ "scope": "users" })),
    ];
    let source = piece
        .source
        .clone()
        .unwrap_or_else(|| Source::fixed(Vec::new()));
    Ok(Plan::Drive(Box::new(DriveJson {
        value,
        digests: piece.digests.clone(),
        source,
    })))
}

/// The quoted entity tags of an `If-None-Match` list (a tag may hold commas: `"{...},1"`).
fn entity_tags(list: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut rest = list;
    while let Some(open) = rest.find('"') {
        let Some(close) = rest[open + 1..].find('"') else {
            break;
        };
        tags.push(rest[open..open + close + 2].to_string());
        rest = &rest[open + close + 2..];
    }
    tags
}

/// A mail item of a mailbox (by REST or immutable id), in `folder` if the URL names one.
fn mail_item(
    store: &Store,
    user: &str,
    folder: Option<&str>,
    message: &str,
) -> Result<(usize, usize), ApiError> {
    let (owner, folder) = mailbox(store, user, folder)?;
    let mail = store
        .find_mail(owner, message, folder)
        .ok_or_else(mail_item_not_found)?;
    Ok((owner, mail))
}

/// Properties of an attachment `$select` may name (and the form with a type cast).
const ATTACHMENT_PROPERTIES: &[&str] = &[
    "id",
    "lastModifiedDateTime",
    "name",
    "contentType",
    "size",
    "isInline",
    "contentId",
    "contentLocation",
    "contentBytes",
    "sourceUrl",
    "providerType",
    "thumbnailUrl",
    "previewUrl",
    "permission",
    "isFolder",
];

fn parse_select(uri: &Uri) -> Result<Option<Vec<&'static str>>, ApiError> {
    let query = uri.query().unwrap_or("");
    let Some(select) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.trim_start_matches('$').eq_ignore_ascii_case("select"))
        .map(|(_, v)| v.into_owned())
    else {
        return Ok(None);
    };
    let mut props = Vec::new();
    for raw in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = raw.rsplit('/').next().unwrap_or(raw);
        let known = ATTACHMENT_PROPERTIES
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Could not find a property named '{raw}' on type 'microsoft.graph.attachment'."
                ))
            })?;
        props.push(*known);
    }
    Ok(Some(props))
}

/// An attachment as JSON: properties in Graph's order, `contentBytes` streamed as base64.
fn attachment_json(
    store: &Store,
    p: usize,
    beta: bool,
    select: Option<&[&str]>,
    prefix: Option<String>,
) -> Vec<Source> {
    let piece = &store.contents.pieces[p];
    let Holder::Mail(a) = &piece.holder else {
        return Vec::new();
    };
    let wanted = |name: &str| name == "id" || select.is_none_or(|s| s.contains(&name));
    let odata_type = match piece.kind {
        ContentKind::FileAttachment => "#microsoft.graph.fileAttachment",
        ContentKind::ItemAttachment => "#microsoft.graph.itemAttachment",
        _ => "#microsoft.graph.referenceAttachment",
    };
    let mut props: Vec<(&str, Value)> = vec![
        ("id", json!(piece.id)),
        ("lastModifiedDateTime", json!(seconds(piece.modified))),
        ("name", json!(piece.name)),
        ("contentType", json!(piece.content_type)),
        ("size", json!(piece.size)),
        ("isInline", json!(a.inline)),
    ];
    match piece.kind {
        ContentKind::FileAttachment => {
            props.push(("contentId", json!(a.content_id)));
            props.push(("contentLocation", Value::Null));
        }
        ContentKind::ReferenceAttachment if beta => {
            let url = a
                .file
                .and_then(|f| store.contents.drive_file(f))
                .map(|d| d.web_url.clone());
            props.push(("sourceUrl", json!(url)));
            props.push(("providerType", json!("oneDriveBusiness")));
            props.push(("thumbnailUrl", Value::Null));
            props.push(("previewUrl", Value::Null));
            props.push(("permission", json!("view")));
            props.push(("isFolder", json!(false)));
        }
        _ => {}
    }
    let mut head = String::from("{");
    if let Some(prefix) = prefix {
        head.push_str(&prefix);
        head.push(',');
    }
    head.push_str(&format!("\"@odata.type\":{}", json_string(odata_type)));
    for (name, value) in props {
        if wanted(name) {
            head.push_str(&format!(",{}:{}", json_string(name), value));
        }
    }
    match (&piece.source, piece.kind) {
        (Some(source), ContentKind::FileAttachment) if wanted("contentBytes") => {
            head.push_str(",\"contentBytes\":\"");
            vec![
                Source::fixed(head),
                Source::base64_flat(source.clone()),
                Source::fixed(&b"\"}"[..]),
            ]
        }
        _ => {
            head.push('}');
            vec![Source::fixed(head)]
        }
    }
}

/// Exchange states attachment times in whole seconds.
fn seconds(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn attachments(
    shared: &Shared,
    store: &Store,
    uri: &Uri,
    (user, folder, message): (&str, Option<&str>, &str),
    id: Option<&str>,
    value: bool,
) -> Result<Answer, ApiError> {
    let (owner, mail) = mail_item(store, user, folder, message)?;
    let mail_id = &store.mail[mail].id;
    let pieces = store.mail_attachments(owner, mail_id);
    let beta = uri.path().trim_start_matches('/').starts_with("beta");
    let select = parse_select(uri)?;
    let context = format!(
        "users('{user}')/messages('{}')/attachments",
        message.replace('=', "%3D")
    );
    let json_type = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
    let Some(id) = id else {
        if pieces.iter().any(|&p| store.contents.pieces[p].forbidden) {
            return Err(mail_access_denied());
        }
        let mut parts = vec![Source::fixed(format!(
            "{{\"@odata.context\":{},\"value\":[",
            json_string(&context_url(shared, uri, &context))
        ))];
        for (i, &p) in pieces.iter().enumerate() {
            if i > 0 {
                parts.push(Source::fixed(&b","[..]));
            }
            parts.extend(attachment_json(store, p, beta, select.as_deref(), None));
        }
        parts.push(Source::fixed(&b"]}"[..]));
        return Ok(Answer::Stream {
            content_type: json_type.into(),
            source: Source::concat(parts),
        });
    };
    let p = pieces
        .into_iter()
        .find(|&p| store.contents.pieces[p].id == id)
        .ok_or_else(mail_item_not_found)?;
    let piece = &store.contents.pieces[p];
    if piece.forbidden {
        return Err(mail_access_denied());
    }
    if !value {
        let prefix = format!(
            "\"@odata.context\":{}",
            json_string(&context_url(shared, uri, &format!("{context}/$entity")))
        );
        return Ok(Answer::Stream {
            content_type: json_type.into(),
            source: Source::concat(attachment_json(
                store,
                p,
                beta,
                select.as_deref(),
                Some(prefix),
            )),
        });
    }
    match (piece.kind, &piece.source) {
        (ContentKind::FileAttachment, Some(source)) => Ok(Answer::Stream {
            content_type: piece
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            source: source.clone(),
        }),
        (ContentKind::ItemAttachment, Some(source)) => Ok(Answer::Stream {
            content_type: "text/plain".into(),
            source: source.clone(),
        }),
        // attachment-get: "Attempting to get the $value of a reference attachment returns
        // HTTP 405."
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "ErrorInvalidRequest",
            "The $value of a reference attachment cannot be read: it links to a file elsewhere.",
        )),
    }
}

// ---- the download URL ---------------------------------------------------------------------

/// `GET /_download/{token}`: a file's bytes for whoever holds the URL, no token needed and
/// none refused; `Range` as the docs describe (206, or 416 if it cannot be served).
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let kind = EndpointKind::Download;
    {
        let mut stats = lock(&shared.stats);
        stats.downloads += 1;
        if headers.contains_key(header::AUTHORIZATION) {
            stats.downloads_with_authorization += 1;
        }
    }
    let latency = lock(&shared.settings).latency;
    let after = match faults_before(&shared, kind, &uri, None, latency).await {
        Before::Respond(response) => return finish(&shared, kind, response),
        Before::Reset(response) => {
            lock(&shared.stats).record(kind, 0);
            return response;
        }
        Before::Continue { after } => after,
    };
    sleep(latency.min(Duration::from_millis(50))).await;
    let found = {
        let store = lock(&shared.store);
        match store.contents.by_token.get(&token).copied() {
            None => Err(item_not_found()),
            Some(f) => {
                let piece = &store.contents.pieces[f];
                if piece.deleted {
                    Err(item_not_found())
                } else if piece.forbidden {
                    Err(access_denied())
                } else {
                    Ok((
                        piece
                            .source
                            .clone()
                            .unwrap_or_else(|| Source::fixed(Vec::new())),
                        piece
                            .content_type
                            .clone()
                            .unwrap_or_else(|| "application/octet-stream".into()),
                    ))
                }
            }
        }
    };
    let (source, content_type) = match found {
        Ok(found) => found,
        Err(e) => return finish(&shared, kind, e.into_response()),
    };
    let total = source.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, total));
    let response = match range {
        None => stream_response::<()>(
            StatusCode::OK,
            &content_type,
            &source,
            (0, total),
            after,
            None,
        ),
        Some(Some((start, end))) => {
            let mut response = stream_response::<()>(
                StatusCode::PARTIAL_CONTENT,
                &content_type,
                &source,
                (start, end),
                after,
                None,
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end - 1))
            {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
        Some(None) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
    };
    let mut response = response;
    response
        .headers_mut()
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    finish(&shared, kind, response)
}

/// One `bytes=` range as `start..end` within `total`, or `None` if it cannot be served.
fn parse_range(value: &str, total: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (total.saturating_sub(n), total)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            total
        } else {
            (b.parse::<u64>().ok()? + 1).min(total)
        };
        (start, end)
    };
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_as_rfc_7233_says() {
        assert_eq!(parse_range("bytes=0-1023", 2048), Some((0, 1024)));
        assert_eq!(parse_range("bytes=1000-", 2048), Some((1000, 2048)));
        assert_eq!(parse_range("bytes=-48", 2048), Some((2000, 2048)));
        assert_eq!(parse_range("bytes=0-99999", 2048), Some((0, 2048)));
        assert_eq!(parse_range("bytes=4096-", 2048), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 2048), None);
    }

    #[test]
    fn entity_tags_keep_their_commas() {
        assert_eq!(
            entity_tags("\"{AB},1\", W/\"c:{AB},1\""),
            ["\"{AB},1\"", "\"c:{AB},1\""]
        );
    }
}
