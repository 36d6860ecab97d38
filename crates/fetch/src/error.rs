//! Errors that name what failed (the scope, the page, the URL) and never carry a secret.

use std::fmt;

use url::Url;

use crate::config::PaymentModel;

/// Query parameters whose values are secrets: state tokens and credentials.
const SECRET_PARAMS: &[&str] = &[
    "skiptoken",
    "deltatoken",
    "token",
    "access_token",
    "client_secret",
    "client_assertion",
    "code",
    "sig",
    "signature",
    "password",
];

fn is_secret_param(name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default();
    let name = decoded.trim_start_matches('$').to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str())
}

/// A URL fit for logs and errors: the values of token and credential parameters are
/// replaced by `<redacted>`; everything else is kept as sent.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    pub fn new(url: &Url) -> Self {
        let mut out = String::with_capacity(url.as_str().len());
        out.push_str(&url[..url::Position::AfterPath]);
        if let Some(query) = url.query() {
            out.push('?');
            out.push_str(&redact_query(query));
        }
        RedactedUrl(out)
    }

    /// For a link that may not even parse: redact its query text as it stands.
    pub fn from_text(text: &str) -> Self {
        match text.split_once('?') {
            Some((path, query)) => RedactedUrl(format!(
                "{path}?{}",
                redact_query(query.split('#').next().unwrap_or(""))
            )),
            None => RedactedUrl(text.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|part| match part.split_once('=') {
            Some((name, _)) if is_secret_param(name) => format!("{name}=<redacted>"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Remove secrets from text that came from elsewhere (a response body, a library's error):
/// each known secret value, and any `token=...`-style parameter value.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if secret.len() >= 6 && out.contains(secret) {
            out = out.replace(secret, "<redacted>");
        }
    }
    // Query-like fragments inside free text.
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '$' || c == '_'))
            .map(|i| i + 1)
            .unwrap_or(0);
        result.push_str(before);
        result.push('=');
        let after = &after[1..];
        if is_secret_param(&before[name_start..]) && !before[name_start..].is_empty() {
            let end = after
                .find(|c: char| {
                    c == '&'
                        || c == '"'
                        || c == '\''
                        || c.is_whitespace()
                        || c == ','
                        || c == '}'
                        || c == '<'
                })
                .unwrap_or(after.len());
            result.push_str("<redacted>");
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    result.push_str(rest);
    result
}

/// Everything that can go wrong fetching from Graph. `Display` names the scope (what was
/// being fetched), the page and the URL with its tokens redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// 410 Gone or `syncStateNotFound`: the saved delta state is no longer valid; only a full
    /// resync of the scope can continue.
    #[error(
        "{scope}: Graph no longer has the sync state (HTTP {status}, {code}) at {url}; a full resync of this scope is needed"
    )]
    ResyncRequired {
        scope: String,
        url: RedactedUrl,
        status: u16,
        code: String,
    },
    /// 402: the payment model is not set up (`model=A|B`), or evaluation mode is used up.
    #[error("{scope}: Graph requires payment (HTTP 402, model {}) at {url}: {detail}", model.map(|m| m.as_str()).unwrap_or("none: evaluation mode"))]
    PaymentRequired {
        scope: String,
        url: RedactedUrl,
        model: Option<PaymentModel>,
        detail: String,
    },
    /// A response that is not a page of this collection, still after retries.
    #[error("{scope}: page {page} at {url} is malformed after {attempts} attempts: {detail}")]
    MalformedPage {
        scope: String,
        url: RedactedUrl,
        page: u64,
        attempts: u32,
        detail: String,
    },
    /// An HTTP error status that retries did not cure, or that no retry can.
    #[error("{scope}: HTTP {status}{} at {url} (page {page}, {attempts} attempts): {body_excerpt}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Http {
        scope: String,
        url: RedactedUrl,
        page: u64,
        status: u16,
        code: Option<String>,
        attempts: u32,
        body_excerpt: String,
    },
    /// The login authority refused the app's credentials, or could not be reached.
    #[error("{scope}: authentication failed at {url}{}: {detail}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Auth {
        scope: String,
        url: RedactedUrl,
        status: Option<u16>,
        code: Option<String>,
        detail: String,
    },
    /// No complete response: connection failures, resets, cut bodies, timeouts.
    #[error(
        "{scope}: no complete response from {url} (page {page}) after {attempts} attempts: {detail}"
    )]
    Transport {
        scope: String,
        url: RedactedUrl,
        page: u64,
        attempts: u32,
        detail: String,
    },
    /// A request this source cannot serve.
    #[error("{scope}: {detail}")]
    Unsupported { scope: String, detail: String },
    #[error("invalid client configuration: {detail}")]
    Config { detail: String },
}

impl FetchError {
    /// What was being fetched when this happened.
    pub fn scope(&self) -> &str {
        match self {
            FetchError::ResyncRequired { scope, .. }
            | FetchError::PaymentRequired { scope, .. }
            | FetchError::MalformedPage { scope, .. }
            | FetchError::Http { scope, .. }
            | FetchError::Auth { scope, .. }
            | FetchError::Transport { scope, .. }
            | FetchError::Unsupported { scope, .. } => scope,
            FetchError::Config { .. } => "",
        }
    }

    pub fn is_resync_required(&self) -> bool {
        matches!(self, FetchError::ResyncRequired { .. })
    }

    /// The HTTP status behind the error, if one was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::ResyncRequired { status, .. } | FetchError::Http { status, .. } => {
                Some(*status)
            }
            FetchError::PaymentRequired { .. } => Some(402),
            FetchError::Auth { status, .. } => *status,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_everything_but_token_values() {
        let url = Url::parse("https://graph.microsoft.com/v1.0/teams/t/channels/19:a@thread.tacv2/messages/delta?$top=50&$skiptoken=SECRETVALUE&x=1").unwrap();
        let shown = RedactedUrl::new(&url).to_string();
        assert_eq!(
            shown,
            "https://graph.microsoft.com/v1.0/teams/t/channels/19:a@thread.tacv2/messages/delta?$top=50&$skiptoken=<redacted>&x=1"
        );
        let encoded = Url::parse("https://h/delta?%24deltatoken=SECRETVALUE").unwrap();
        assert!(
            !RedactedUrl::new(&encoded)
                .to_string()
                .contains("SECRETVALUE")
        );
        assert!(
            !RedactedUrl::from_text("/v1.0/x?$deltatoken=SECRETVALUE#frag")
                .to_string()
                .contains("SECRETVALUE")
        );
    }

    #[test]
    fn scrub_removes_known_secrets_and_token_parameters_from_free_text() {
        let text = r#"{"error":{"message":"bad link https://h/x?$skiptoken=abcdef123&$top=5 for key sekrit-value"}}"#;
        let clean = scrub(text, &["sekrit-value"]);
        assert!(!clean.contains("abcdef123"), "{clean}");
        assert!(!clean.contains("sekrit-value"), "{clean}");
        assert!(clean.contains("$top=5"), "{clean}");
    }
}
