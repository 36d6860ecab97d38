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
            // A link carried in another parameter has its own, encoded, parameters.
            _ => scrub_parameters(part),
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
/// each known secret value in the forms a server may echo it in (as is, percent-encoded,
/// in base64 or base64url), and the value of any `token=...`-style parameter, also when
/// the parameter itself is percent-encoded (`%24skiptoken%3D...`).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if secret.len() < 6 {
            continue;
        }
        for form in secret_forms(secret) {
            if out.contains(&form) {
                out = out.replace(&form, "<redacted>");
            }
        }
    }
    scrub_parameters(&out)
}

/// The forms a secret may take in text a server sends back.
fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_string()];
    // Percent-encoded: as a form value (space as `+`), every reserved byte as `%XX` in
    // upper or lower case.
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    forms.push(form.replace('+', "%20"));
    forms.push(form);
    let mut upper = String::new();
    for b in secret.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            upper.push(b as char);
        } else {
            upper.push_str(&format!("%{b:02X}"));
        }
    }
    forms.push(lowercase_escapes(&upper));
    forms.push(upper);
    // A base64 token rewritten in the URL-safe alphabet, with or without padding.
    let url_alphabet = secret.replace('+', "-").replace('/', "_");
    forms.push(url_alphabet.trim_end_matches('=').to_string());
    forms.push(url_alphabet);
    // The secret's bytes encoded.
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret.as_bytes()));
    }
    // Longest first, so that a form containing another is replaced whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms.retain(|f| f.len() >= 6);
    forms
}

/// `%2F` as `%2f`, the rest unchanged.
fn lowercase_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escape = 0;
    for c in text.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of each secret query parameter in free text, `name=value` or encoded as
/// `name%3Dvalue` (a URL inside a URL, as Graph echoes links in its error messages).
fn scrub_parameters(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, sign_len)) = next_equals(rest) {
        let before = &rest[..at];
        let after = &rest[at + sign_len..];
        let name_start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '$' || c == '_' || c == '%'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let name = strip_encoded_separator(&before[name_start..]);
        result.push_str(&rest[..at + sign_len]);
        if !name.is_empty() && is_secret_param(name) {
            let end = value_end(after);
            result.push_str("<redacted>");
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    result.push_str(rest);
    result
}

/// A parameter name may follow an encoded `?` or `&` (`%3F`, `%26`) with no separator
/// character of its own: only what comes after the last one is the name.
fn strip_encoded_separator(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    ["%3f", "%26"]
        .iter()
        .filter_map(|sep| lower.rfind(sep).map(|i| i + sep.len()))
        .max()
        .map_or(name, |i| &name[i..])
}

/// The next `=` or `%3D` in `text`: its position and length.
fn next_equals(text: &str) -> Option<(usize, usize)> {
    let plain = text.find('=').map(|i| (i, 1));
    let encoded = text
        .as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && w[1] == b'3' && (w[2] == b'D' || w[2] == b'd'))
        .map(|i| (i, 3));
    match (plain, encoded) {
        (Some(p), Some(e)) => Some(if p.0 < e.0 { p } else { e }),
        (p, e) => p.or(e),
    }
}

/// Where a parameter value ends: a separator, a quote or space, or an encoded `&`.
fn value_end(value: &str) -> usize {
    let plain = value
        .find(|c: char| {
            c == '&'
                || c == '"'
                || c == '\''
                || c.is_whitespace()
                || c == ','
                || c == '}'
                || c == '<'
        })
        .unwrap_or(value.len());
    let encoded = value
        .to_ascii_lowercase()
        .find("%26")
        .unwrap_or(value.len());
    plain.min(encoded)
}

/// Why a scope cannot be archived, when the reason is not a fault: Graph answered as it
/// does for things that are simply not there to read. A caller records such a scope as
/// skipped with this reason, rather than failed. Names ([`Unavailable::as_str`]) are
/// stable: they go into run summaries.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Unavailable {
    /// 404 `MailboxNotEnabledForRESTAPI`: the user has no Exchange Online mailbox
    /// (unlicensed, guest, shared or on-premises).
    NoMailbox,
    /// 404 on a user: deleted (or never there).
    UserNotFound,
    /// 404 on a team ("No team found"): deleted, for example between listing teams and
    /// listing its channels.
    TeamNotFound,
    /// 404 on a channel (that does not say its team is gone).
    ChannelNotFound,
    /// 404 on a channel message (replies of a root that is gone).
    MessageNotFound,
    /// 404 `ErrorItemNotFound` on a mail folder: deleted.
    MailFolderNotFound,
    /// 403 on a channel shared from another tenant: in application context a channel's
    /// messages can only be read from its owner's tenant.
    CrossTenantChannel,
    /// 402 for the user named in the request: without the licence `model=A` needs
    /// ("...needs a valid license to access this API...", teams-licenses).
    NotLicensed,
}

impl Unavailable {
    /// The stable name: `no-mailbox`, `user-not-found`, `team-not-found`,
    /// `channel-not-found`, `message-not-found`, `mail-folder-not-found`,
    /// `cross-tenant-channel`, `not-licensed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Unavailable::NoMailbox => "no-mailbox",
            Unavailable::UserNotFound => "user-not-found",
            Unavailable::TeamNotFound => "team-not-found",
            Unavailable::ChannelNotFound => "channel-not-found",
            Unavailable::MessageNotFound => "message-not-found",
            Unavailable::MailFolderNotFound => "mail-folder-not-found",
            Unavailable::CrossTenantChannel => "cross-tenant-channel",
            Unavailable::NotLicensed => "not-licensed",
        }
    }

    /// What it means, in a few words, for logs.
    pub fn describe(&self) -> &'static str {
        match self {
            Unavailable::NoMailbox => "the user has no Exchange Online mailbox",
            Unavailable::UserNotFound => "the user no longer exists",
            Unavailable::TeamNotFound => "the team no longer exists",
            Unavailable::ChannelNotFound => "the channel no longer exists",
            Unavailable::MessageNotFound => "the message no longer exists",
            Unavailable::MailFolderNotFound => "the mail folder no longer exists",
            Unavailable::CrossTenantChannel => {
                "the channel is shared from another tenant and can only be read there"
            }
            Unavailable::NotLicensed => "the user lacks the licence the payment model requires",
        }
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Not a fault: what the scope reads is not there to read ([`Unavailable`]).
    #[error("{scope}: unavailable, {} ({reason}; HTTP {status}{}) at {url}: {detail}", reason.describe(), code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Unavailable {
        scope: String,
        url: RedactedUrl,
        reason: Unavailable,
        status: u16,
        code: Option<String>,
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
    /// Content larger than the cap the caller set; not read (or no longer read).
    #[error("{scope}: {size} bytes at {url} exceed the {limit}-byte content cap")]
    TooLarge {
        scope: String,
        url: RedactedUrl,
        size: u64,
        limit: u64,
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
            | FetchError::Unavailable { scope, .. }
            | FetchError::PaymentRequired { scope, .. }
            | FetchError::MalformedPage { scope, .. }
            | FetchError::Http { scope, .. }
            | FetchError::Auth { scope, .. }
            | FetchError::Transport { scope, .. }
            | FetchError::TooLarge { scope, .. }
            | FetchError::Unsupported { scope, .. } => scope,
            FetchError::Config { .. } => "",
        }
    }

    /// Whether Graph may yet answer what failed after the retries: a connection or body
    /// cut short, or a status the client retries (429, 500, 502, 503, 504).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Transport { .. } | FetchError::MalformedPage { .. } => true,
            FetchError::Http { status, .. } => crate::http::is_retried_status(*status),
            _ => false,
        }
    }

    pub fn is_resync_required(&self) -> bool {
        matches!(self, FetchError::ResyncRequired { .. })
    }

    /// Why the scope cannot be archived, if that is not a fault; `None` for faults
    /// (unknown or transient failures, configuration, authentication, payment set-up).
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            FetchError::Unavailable { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    /// The HTTP status behind the error, if one was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::ResyncRequired { status, .. }
            | FetchError::Http { status, .. }
            | FetchError::Unavailable { status, .. } => Some(*status),
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
        let nested = Url::parse(
            "https://h/x?next=https%3A%2F%2Fh%2Fy%3F%24skiptoken%3DSECRETVALUE%26%24top%3D5&a=1",
        )
        .unwrap();
        let shown = RedactedUrl::new(&nested).to_string();
        assert!(!shown.contains("SECRETVALUE"), "{shown}");
        assert!(shown.contains("%24top%3D5&a=1"), "{shown}");
    }

    #[test]
    fn scrub_removes_encoded_forms_of_secrets_and_encoded_token_parameters() {
        let token = "a+b/c=d&e f==";
        let echoed = [
            "a%2Bb%2Fc%3Dd%26e+f%3D%3D",
            "a%2Bb%2Fc%3Dd%26e%20f%3D%3D",
            "a%2bb%2fc%3dd%26e%20f%3d%3d",
            "a-b_c=d&e f",
            "YStiL2M9ZCZlIGY9PQ==",
            "YStiL2M9ZCZlIGY9PQ",
        ];
        for form in echoed {
            let text = format!(r#"{{"message":"bad request for {form} (retry)"}}"#);
            let clean = scrub(&text, &[token]);
            assert!(!clean.contains(form), "{form}: {clean}");
            assert!(
                clean.contains("<redacted>") && clean.contains("(retry)"),
                "{clean}"
            );
        }
        // A link inside a link: its parameters are percent-encoded, names and all.
        let text = "Invalid nextLink https%3A%2F%2Fgraph.microsoft.com%2Fv1.0%2Fx%3F%24top%3D5%26%24skiptoken%3DUNKNOWN-STATE-TOKEN%26other%3D1 given";
        let clean = scrub(text, &[]);
        assert!(!clean.contains("UNKNOWN-STATE-TOKEN"), "{clean}");
        assert!(
            clean.contains("%24top%3D5") && clean.contains("other%3D1"),
            "{clean}"
        );
        assert!(clean.ends_with(" given"), "{clean}");
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
