//! The login endpoint (OAuth2 client credentials, secret or certificate assertion) and
//! the access tokens it issues.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use rand::rngs::StdRng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub(crate) const CLIENT_CERTIFICATE_PEM: &str = include_str!("../credentials/client-cert.pem");
pub(crate) const CLIENT_PRIVATE_KEY_PEM: &str = include_str!("../credentials/client-key.pem");
pub(crate) const UNREGISTERED_CERTIFICATE_PEM: &str =
    include_str!("../credentials/unregistered-cert.pem");
pub(crate) const UNREGISTERED_PRIVATE_KEY_PEM: &str =
    include_str!("../credentials/unregistered-key.pem");

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The form a client posts to `/{tenant}/oauth2/v2.0/token`.
#[derive(Deserialize)]
pub(crate) struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// Why a token request failed, as Microsoft Entra ID words it.
pub(crate) struct LoginError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl LoginError {
    fn new(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        LoginError {
            status,
            error,
            code,
            description: description.into(),
        }
    }
}

/// Why a Graph call's bearer token was refused.
pub(crate) enum TokenProblem {
    Missing,
    Unknown,
    Expired,
}

pub(crate) struct Auth {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    certificate_thumbprint: String,
    certificate_key: Option<DecodingKey>,
    lifetime: Duration,
    tokens: HashMap<String, Instant>,
    used_assertion_ids: HashSet<String>,
    /// Access tokens issued and client assertions received, kept for leak tests.
    pub issued: Vec<String>,
    record: bool,
    pub tokens_issued: u64,
}

/// Base64url SHA-256 of a PEM certificate's DER bytes: the `x5t#S256` a client sends.
pub(crate) fn certificate_thumbprint(certificate_pem: &str) -> Option<String> {
    let blocks = pem::parse_many(certificate_pem).ok()?;
    let der = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE" && !b.contents().is_empty())?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(der.contents())))
}

impl Auth {
    pub(crate) fn new(
        tenant_id: String,
        client_id: String,
        client_secret: String,
        lifetime: Duration,
        record: bool,
    ) -> Self {
        install_crypto_provider();
        let mut auth = Auth {
            tenant_id,
            client_id,
            client_secret,
            certificate_thumbprint: String::new(),
            certificate_key: None,
            lifetime,
            tokens: HashMap::new(),
            used_assertion_ids: HashSet::new(),
            issued: Vec::new(),
            record,
            tokens_issued: 0,
        };
        auth.register_certificate(CLIENT_CERTIFICATE_PEM);
        auth
    }

    /// Trust this certificate (instead of the default one) for assertions.
    pub(crate) fn register_certificate(&mut self, pem: &str) -> bool {
        match (
            certificate_thumbprint(pem),
            DecodingKey::from_rsa_pem(pem.as_bytes()),
        ) {
            (Some(thumbprint), Ok(key)) => {
                self.certificate_thumbprint = thumbprint;
                self.certificate_key = Some(key);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    pub(crate) fn issue(
        &mut self,
        tenant: &str,
        token_url: &str,
        graph_scope_base: &str,
        form: &TokenRequest,
        rng: &mut StdRng,
    ) -> Result<(String, u64), LoginError> {
        if tenant != self.tenant_id {
            return Err(LoginError::new(
                400,
                "invalid_request",
                90002,
                format!(
                    "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            ));
        }
        if form.grant_type.as_deref() != Some("client_credentials") {
            return Err(LoginError::new(
                400,
                "unsupported_grant_type",
                70003,
                "AADSTS70003: The app requested an unsupported grant type.",
            ));
        }
        let client_id = form.client_id.as_deref().unwrap_or_default();
        if client_id != self.client_id {
            return Err(LoginError::new(
                400,
                "unauthorized_client",
                700016,
                format!(
                    "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
                ),
            ));
        }
        let scope = form.scope.as_deref().unwrap_or_default();
        let scope_ok = scope == "https://graph.microsoft.com/.default"
            || scope == format!("{}/.default", graph_scope_base.trim_end_matches('/'));
        if !scope_ok {
            return Err(LoginError::new(
                400,
                "invalid_scope",
                1002012,
                format!(
                    "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        }
        match (&form.client_secret, &form.client_assertion) {
            (Some(secret), None) => {
                if *secret != self.client_secret {
                    return Err(LoginError::new(
                        401,
                        "invalid_client",
                        7000215,
                        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                    ));
                }
            }
            (None, Some(assertion)) => {
                if self.record {
                    self.issued.push(assertion.clone());
                }
                if form.client_assertion_type.as_deref() != Some(JWT_BEARER) {
                    return Err(LoginError::new(
                        400,
                        "invalid_request",
                        50027,
                        "AADSTS50027: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
                    ));
                }
                self.check_assertion(assertion, token_url)?;
            }
            _ => {
                return Err(LoginError::new(
                    401,
                    "invalid_client",
                    7000218,
                    "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                ));
            }
        }
        let token = new_access_token(rng);
        self.tokens
            .insert(token.clone(), Instant::now() + self.lifetime);
        self.tokens_issued += 1;
        if self.record {
            self.issued.push(token.clone());
        }
        Ok((token, self.lifetime.as_secs()))
    }

    fn check_assertion(&mut self, assertion: &str, token_url: &str) -> Result<(), LoginError> {
        let invalid = |detail: &str| {
            LoginError::new(
                401,
                "invalid_client",
                700027,
                format!("AADSTS700027: Client assertion failed signature validation. {detail}"),
            )
        };
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| invalid("The assertion is not a JWT."))?;
        if !matches!(header.alg, Algorithm::PS256 | Algorithm::RS256) {
            return Err(invalid("The algorithm must be PS256 or RS256."));
        }
        if header.x5t_s256.as_deref() != Some(self.certificate_thumbprint.as_str()) {
            return Err(LoginError::new(
                401,
                "invalid_client",
                700027,
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.",
            ));
        }
        let Some(key) = &self.certificate_key else {
            return Err(invalid("No certificate is registered."));
        };
        #[derive(Deserialize)]
        struct Claims {
            jti: Option<String>,
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[token_url]);
        validation.set_issuer(&[self.client_id.as_str()]);
        validation.sub = Some(self.client_id.clone());
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub", "nbf"]);
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(assertion, key, &validation)
            .map_err(|e| invalid(&format!("{e}")))?;
        let jti = data
            .claims
            .jti
            .ok_or_else(|| invalid("The assertion has no jti."))?;
        if !self.used_assertion_ids.insert(jti) {
            return Err(LoginError::new(
                401,
                "invalid_client",
                700025,
                "AADSTS700025: The client assertion has already been used (jti replay).",
            ));
        }
        Ok(())
    }

    pub(crate) fn check(&mut self, authorization: Option<&str>) -> Result<(), TokenProblem> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(TokenProblem::Missing)?;
        match self.tokens.get(token) {
            None => Err(TokenProblem::Unknown),
            Some(&expiry) if expiry <= Instant::now() => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Kill the presented token now (a fault, or a test).
    pub(crate) fn expire(&mut self, authorization: Option<&str>) {
        if let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer "))
            && let Some(expiry) = self.tokens.get_mut(token)
        {
            *expiry = Instant::now();
        }
    }

    pub(crate) fn expire_all(&mut self) {
        let now = Instant::now();
        for expiry in self.tokens.values_mut() {
            *expiry = now;
        }
    }
}

/// Something that looks like an Entra access token (header, payload, signature).
fn new_access_token(rng: &mut StdRng) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload: Vec<u8> = (0..96).map(|_| rng.random()).collect();
    let signature: Vec<u8> = (0..64).map(|_| rng.random()).collect();
    format!(
        "eyJ0eXAiOiJKV1QiLCJub25jZSI6InNpbSIsImFsZyI6IlJTMjU2In0.{}.{}",
        engine.encode(payload),
        engine.encode(signature)
    )
}

/// jsonwebtoken needs a process-wide crypto provider; any of ours will do.
pub(crate) fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_of_the_bundled_certificate_is_base64url_sha256() {
        let t = certificate_thumbprint(CLIENT_CERTIFICATE_PEM).expect("a certificate");
        assert_eq!(t.len(), 43);
        assert!(!t.contains('=') && !t.contains('+') && !t.contains('/'));
        assert_ne!(
            Some(t),
            certificate_thumbprint(UNREGISTERED_CERTIFICATE_PEM)
        );
    }
}
