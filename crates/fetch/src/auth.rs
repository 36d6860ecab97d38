//! OAuth2 client credentials: a token per app, fetched once, shared by every request,
//! refreshed a little before it expires and whenever Graph rejects it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backon::BackoffBuilder;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{ClientConfig, Credential, RetryPolicy};
use crate::error::{FetchError, RedactedUrl, scrub};

/// The largest token response read. Entra's are a few kilobytes (a JWT with its claims);
/// anything far larger is not a token response and is not held in memory.
const MAX_TOKEN_RESPONSE: usize = 1024 * 1024;

/// An access token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct AccessToken(Arc<str>);

impl AccessToken {
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// How the client proves itself at the token endpoint.
enum Proof {
    Secret(String),
    Certificate {
        key: EncodingKey,
        thumbprint: String,
    },
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

/// Why the token endpoint said no, for the caller to turn into [`FetchError::Auth`].
pub(crate) struct AuthFailure {
    pub url: RedactedUrl,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub detail: String,
}

impl AuthFailure {
    pub(crate) fn into_error(self, scope: &str) -> FetchError {
        FetchError::Auth {
            scope: scope.to_string(),
            url: self.url,
            status: self.status,
            code: self.code,
            detail: self.detail,
        }
    }
}

pub(crate) struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    scope: String,
    proof: Proof,
    retry: RetryPolicy,
    current: tokio::sync::Mutex<Option<Cached>>,
}

/// Base64url SHA-256 of the certificate's DER encoding (`x5t#S256`).
fn thumbprint(certificate_pem: &str) -> Option<String> {
    let blocks = pem::parse_many(certificate_pem).ok()?;
    let der = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE" && !b.contents().is_empty())?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der.contents())))
}

/// jsonwebtoken signs through a process-wide crypto provider; install ours if none is.
fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

impl TokenSource {
    pub(crate) fn new(config: &ClientConfig, http: reqwest::Client) -> Result<Self, FetchError> {
        let config_error = |detail: String| FetchError::Config { detail };
        let mut login = config.login_url.clone();
        if !login.path().ends_with('/') {
            login.set_path(&format!("{}/", login.path()));
        }
        let token_url = login
            .join(&format!("{}/oauth2/v2.0/token", config.tenant_id))
            .map_err(|e| {
                config_error(format!(
                    "login URL {} with tenant {} is not a URL: {e}",
                    config.login_url, config.tenant_id
                ))
            })?;
        let proof = match &config.credential {
            Credential::Secret(secret) => {
                if secret.is_empty() {
                    return Err(config_error("the client secret is empty".into()));
                }
                Proof::Secret(secret.clone())
            }
            Credential::Certificate {
                private_key_pem,
                certificate_pem,
            } => {
                install_crypto_provider();
                let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).map_err(|_| {
                    config_error(
                        "the certificate's private key is not an RSA private key in PEM form"
                            .into(),
                    )
                })?;
                let thumbprint = thumbprint(certificate_pem).ok_or_else(|| {
                    config_error("the certificate is not a PEM X.509 certificate".into())
                })?;
                Proof::Certificate { key, thumbprint }
            }
        };
        let scope = match &config.token_scope {
            Some(scope) => scope.clone(),
            None => format!(
                "{}/.default",
                config.graph_url.origin().ascii_serialization()
            ),
        };
        Ok(TokenSource {
            http,
            token_url,
            client_id: config.client_id.clone(),
            scope,
            proof,
            retry: config.retry.clone(),
            current: tokio::sync::Mutex::new(None),
        })
    }

    /// The client secret, for scrubbing error text.
    pub(crate) fn secret(&self) -> Option<&str> {
        match &self.proof {
            Proof::Secret(s) => Some(s),
            Proof::Certificate { .. } => None,
        }
    }

    /// A token valid for a while yet; fetched if there is none.
    pub(crate) async fn get(&self) -> Result<AccessToken, AuthFailure> {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.request().await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    /// Graph rejected this token: forget it, unless it was already replaced.
    pub(crate) async fn reject(&self, token: &AccessToken) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| c.token == *token) {
            *current = None;
        }
    }

    fn form(&self) -> Result<Vec<(&'static str, String)>, AuthFailure> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        match &self.proof {
            Proof::Secret(secret) => form.push(("client_secret", secret.clone())),
            Proof::Certificate { key, thumbprint } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                let mut header = Header::new(Algorithm::PS256);
                header.typ = Some("JWT".into());
                header.x5t_s256 = Some(thumbprint.clone());
                let jti: [u8; 16] = rand::rng().random();
                let claims = AssertionClaims {
                    aud: self.token_url.as_str(),
                    iss: &self.client_id,
                    sub: &self.client_id,
                    jti: jti.iter().map(|b| format!("{b:02x}")).collect(),
                    nbf: now,
                    iat: now,
                    exp: now + 600,
                };
                let assertion =
                    jsonwebtoken::encode(&header, &claims, key).map_err(|e| AuthFailure {
                        url: RedactedUrl::new(&self.token_url),
                        status: None,
                        code: None,
                        detail: format!("could not sign the client assertion: {e}"),
                    })?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        Ok(form)
    }

    async fn request(&self) -> Result<Cached, AuthFailure> {
        let url = RedactedUrl::new(&self.token_url);
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries as usize)
            .with_jitter()
            .build();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let form = self.form()?;
            let secrets: Vec<&str> = form
                .iter()
                .filter(|(k, _)| matches!(*k, "client_secret" | "client_assertion"))
                .map(|(_, v)| v.as_str())
                .collect();
            let sent = self
                .http
                .post(self.token_url.clone())
                .form(&form)
                .send()
                .await;
            let (transient, failure) = match sent {
                Err(e) => (
                    true,
                    AuthFailure {
                        url: url.clone(),
                        status: None,
                        code: None,
                        detail: scrub(&crate::http::describe(e), &secrets),
                    },
                ),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = crate::http::retry_after(response.headers());
                    match crate::http::read_body(response, MAX_TOKEN_RESPONSE).await {
                        Err(detail) => (
                            true,
                            AuthFailure {
                                url: url.clone(),
                                status: Some(status),
                                code: None,
                                detail: scrub(&detail, &secrets),
                            },
                        ),
                        Ok(body) if status == 200 => match parse_token(&body) {
                            Some((token, lifetime)) => {
                                tracing::debug!(
                                    lifetime_s = lifetime.as_secs(),
                                    attempts,
                                    "access token acquired"
                                );
                                // Refresh with a fifth of the lifetime (at most five minutes) to spare.
                                let margin = (lifetime / 5).min(Duration::from_secs(300));
                                return Ok(Cached {
                                    token,
                                    refresh_at: Instant::now() + lifetime.saturating_sub(margin),
                                });
                            }
                            None => (
                                true,
                                AuthFailure {
                                    url: url.clone(),
                                    status: Some(status),
                                    code: None,
                                    detail: "the token response has no usable access_token".into(),
                                },
                            ),
                        },
                        Ok(body) => {
                            let (code, detail) = login_error(&body);
                            let transient = status == 429 || status >= 500;
                            if transient && let Some(wait) = retry_after {
                                tracing::warn!(url = %url, status, wait_ms = wait.as_millis() as u64, "token endpoint asked to wait");
                            }
                            (
                                transient,
                                AuthFailure {
                                    url: url.clone(),
                                    status: Some(status),
                                    code,
                                    detail: scrub(&detail, &secrets),
                                },
                            )
                        }
                    }
                }
            };
            if !transient {
                return Err(failure);
            }
            match delays.next() {
                Some(delay) => {
                    tracing::warn!(url = %url, attempts, detail = %failure.detail, "token request failed; retrying");
                    tokio::time::sleep(delay).await;
                }
                None => {
                    return Err(AuthFailure {
                        detail: format!("gave up after {attempts} attempts: {}", failure.detail),
                        ..failure
                    });
                }
            }
        }
    }
}

fn parse_token(body: &[u8]) -> Option<(AccessToken, Duration)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let token = value.get("access_token")?.as_str()?.to_string();
    if token.is_empty() {
        return None;
    }
    let seconds = match value.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|&s| s > 0)
    .unwrap_or(3599);
    Some((AccessToken(Arc::from(token)), Duration::from_secs(seconds)))
}

/// `error` and the first line of `error_description` from an Entra error response.
fn login_error(body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let code = value
                .get("error")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let detail = value
                .get("error_description")
                .and_then(|v| v.as_str())
                .map(|d| d.lines().next().unwrap_or("").trim().to_string())
                .unwrap_or_else(|| "no error description".into());
            (code, detail)
        }
        Err(_) => (None, format!("unreadable response of {} bytes", body.len())),
    }
}
