//! What messages point to: hosted contents, SharePoint and OneDrive files, mail
//! attachments and MIME. Bodies stream into a file the caller owns, hashed on the way, so
//! a large one is never held in memory; a retry starts the file over.
//!
//! A file's content answers 302 with a pre-authenticated download URL (driveitem-get-content):
//! that URL is read without the access token, so the token never leaves Graph.

use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use url::Url;

use crate::client::{GraphClient, Inner};
use crate::error::{FetchError, RedactedUrl};
use crate::http::{
    Expect, Failure, Outcome, PageRequest, Retries, Setback, describe, read_body, retry_after,
};
use crate::page::Page;
use crate::throttle::Route;

/// Redirects followed to reach a download (Graph sends one).
const MAX_REDIRECTS: usize = 3;
/// The longest error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A download may take this long at least; larger ones get a second per MiB more.
const MIN_DOWNLOAD_TIME: Duration = Duration::from_secs(300);

/// What a download wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// The `Content-Type` of the response.
    pub content_type: Option<String>,
}

/// The `/shares` id of a sharing URL: `u!` and the URL in unpadded base64url (shares-get:
/// "Encoding sharing URLs").
pub fn share_id(sharing_url: &str) -> String {
    format!(
        "u!{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sharing_url)
    )
}

impl GraphClient {
    /// The driveItem a sharing URL names (`/shares/{id}/driveItem`), as a page of one.
    pub async fn shared_drive_item(
        &self,
        scope: &str,
        sharing_url: &str,
    ) -> Result<Page, FetchError> {
        let id = share_id(sharing_url);
        let request = PageRequest {
            url: self.url(&["v1.0", "shares", &id, "driveItem"], &[]),
            prefer_page_size: None,
            immutable_ids: false,
            expects: Expect::Entity,
            number: 1,
        };
        self.inner.get_page(scope, &request).await
    }

    /// The Graph path of a shared file's content, for [`GraphClient::download`].
    pub fn shared_content_path(sharing_url: &str) -> String {
        format!("v1.0/shares/{}/driveItem/content", share_id(sharing_url))
    }

    /// A mail message's attachments, metadata only (their bytes come by `$value`).
    pub fn mail_attachments(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> impl Stream<Item = Result<Page, FetchError>> + Send + 'static + use<> {
        self.list(
            format!("attachments of message {message_id} of user {user_id}"),
            &[
                "v1.0",
                "users",
                user_id,
                "messages",
                message_id,
                "attachments",
            ],
            &[(
                "$select",
                "id,name,contentType,size,isInline,lastModifiedDateTime".into(),
            )],
        )
    }

    /// The Graph path of a mail attachment's bytes (a file's content, an item's MIME).
    pub fn mail_attachment_path(user_id: &str, message_id: &str, attachment_id: &str) -> String {
        let [u, m, a] = [user_id, message_id, attachment_id].map(segment);
        format!("v1.0/users/{u}/messages/{m}/attachments/{a}/$value")
    }

    /// The Graph path of a mail message's MIME.
    pub fn mail_mime_path(user_id: &str, message_id: &str) -> String {
        let [u, m] = [user_id, message_id].map(segment);
        format!("v1.0/users/{u}/messages/{m}/$value")
    }

    /// Streams the bytes at `path` (relative to the Graph root, e.g.
    /// `v1.0/chats/{id}/messages/{id}/hostedContents/{id}/$value`) into `file`, from its
    /// start, retrying what can be retried. More than `limit` bytes is
    /// [`FetchError::TooLarge`].
    pub async fn download(
        &self,
        scope: &str,
        path: &str,
        limit: u64,
        file: &mut tokio::fs::File,
    ) -> Result<Downloaded, FetchError> {
        let mut url = self.inner.config.graph_url.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/{}", path.trim_start_matches('/')));
        self.inner.download(scope, url, limit, file).await
    }
}

fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// How one attempt at a download ended.
enum Attempt {
    Done(Downloaded),
    Answer(Outcome),
}

impl Inner {
    async fn download(
        &self,
        scope: &str,
        graph_url: Url,
        limit: u64,
        file: &mut tokio::fs::File,
    ) -> Result<Downloaded, FetchError> {
        let route = Route::of(&graph_url);
        let shown = RedactedUrl::new(&graph_url);
        let request = PageRequest {
            url: graph_url.clone(),
            prefer_page_size: None,
            immutable_ids: false,
            expects: Expect::Entity,
            number: 1,
        };
        let mut retries = Retries::new(&self.config.retry);
        loop {
            retries.attempts += 1;
            let token = self.tokens.get().await.map_err(|f| f.into_error(scope))?;
            let permit = self.throttle.acquire(&route).await;
            let started = Instant::now();
            let mut target = graph_url.clone();
            let mut authenticated = true;
            let mut redirects = 0;
            let (status, attempt) = loop {
                let mut builder = self
                    .http
                    .get(target.clone())
                    .timeout(MIN_DOWNLOAD_TIME.max(Duration::from_secs(limit >> 20)))
                    .header(http::header::ACCEPT, "*/*");
                if authenticated {
                    builder = builder
                        .bearer_auth(token.secret())
                        .header("Prefer", request.prefer());
                }
                let response = match builder.send().await {
                    Err(e) => {
                        break (
                            None,
                            Attempt::Answer(Err(Setback::Retry(
                                Failure::Transport(describe(e)),
                                None,
                            ))),
                        );
                    }
                    Ok(response) => response,
                };
                let status = response.status().as_u16();
                if response.status().is_redirection() && redirects < MAX_REDIRECTS {
                    let location = response
                        .headers()
                        .get(http::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| target.join(v).ok())
                        .filter(|u| matches!(u.scheme(), "https" | "http"));
                    match location {
                        Some(next) => {
                            redirects += 1;
                            // Pre-authenticated: the token stays with Graph.
                            authenticated = false;
                            target = next;
                            continue;
                        }
                        None => {
                            break (
                                Some(status),
                                Attempt::Answer(Err(Setback::Retry(
                                    Failure::Malformed(format!(
                                        "HTTP {status} without a usable Location"
                                    )),
                                    None,
                                ))),
                            );
                        }
                    }
                }
                if response.status().is_success() {
                    break (
                        Some(status),
                        stream_to(response, limit, file, scope, &shown).await,
                    );
                }
                let wait = retry_after(response.headers());
                let outcome = match read_body(response, MAX_ERROR_BODY).await {
                    Err(detail) => Err(Setback::Retry(Failure::Transport(detail), None)),
                    Ok(body) => {
                        self.classify(scope, &request, &shown, &route, &token, status, wait, body)
                    }
                };
                break (Some(status), Attempt::Answer(outcome));
            };
            drop(permit);
            self.count_answer(status);
            tracing::debug!(scope, url = %shown, status = status.unwrap_or(0), attempt = retries.attempts, elapsed_ms = started.elapsed().as_millis() as u64, "graph content request");
            match attempt {
                Attempt::Done(done) => return Ok(done),
                Attempt::Answer(outcome) => match outcome {
                    Ok(_) => unreachable!("a download is not parsed as a page"),
                    Err(setback) => {
                        self.recover(scope, &shown, request.number, &token, &mut retries, setback)
                            .await?
                    }
                },
            }
        }
    }
}

/// Writes a successful response's body into `file` from its start. A body shorter than
/// its `Content-Length`, or cut by the connection, is retried; one over `limit` is not.
async fn stream_to(
    mut response: reqwest::Response,
    limit: u64,
    file: &mut tokio::fs::File,
    scope: &str,
    shown: &RedactedUrl,
) -> Attempt {
    let too_large = |size: u64| {
        Attempt::Answer(Err(Setback::Fail(FetchError::TooLarge {
            scope: scope.to_string(),
            url: shown.clone(),
            size,
            limit,
        })))
    };
    let local = |e: std::io::Error| {
        Attempt::Answer(Err(Setback::Fail(FetchError::Unsupported {
            scope: scope.to_string(),
            detail: format!("writing the download to a local file: {e}"),
        })))
    };
    let announced = response.content_length();
    if let Some(length) = announced.filter(|&l| l > limit) {
        return too_large(length);
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Err(e) = restart(file).await {
        return local(e);
    }
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                bytes += chunk.len() as u64;
                if bytes > limit {
                    return too_large(bytes);
                }
                hasher.update(&chunk);
                if let Err(e) = file.write_all(&chunk).await {
                    return local(e);
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Attempt::Answer(Err(Setback::Retry(
                    Failure::Transport(format!("body cut after {bytes} bytes: {}", describe(e))),
                    None,
                )));
            }
        }
    }
    if let Some(length) = announced.filter(|&l| l != bytes) {
        return Attempt::Answer(Err(Setback::Retry(
            Failure::Transport(format!("body of {bytes} bytes, {length} announced")),
            None,
        )));
    }
    if let Err(e) = file.flush().await {
        return local(e);
    }
    Attempt::Done(Downloaded {
        bytes,
        sha256: hex_of(&hasher.finalize()),
        content_type,
    })
}

async fn restart(file: &mut tokio::fs::File) -> std::io::Result<()> {
    file.set_len(0).await?;
    file.seek(std::io::SeekFrom::Start(0)).await?;
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_urls_encode_as_the_docs_say() {
        // shares-get.md's example: https://onedrive.live.com/redir?resid=1231244193912!12&authKey=1201919!12921!1
        assert_eq!(
            share_id(
                "https://onedrive.live.com/redir?resid=1231244193912!12&authKey=1201919!12921!1"
            ),
            "u!aHR0cHM6Ly9vbmVkcml2ZS5saXZlLmNvbS9yZWRpcj9yZXNpZD0xMjMxMjQ0MTkzOTEyITEyJmF1dGhLZXk9MTIwMTkxOSExMjkyMSEx"
        );
    }
}
