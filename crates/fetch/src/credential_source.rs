//! Where the app's credential and the service URLs come from when they are given as
//! files, variables and text: a certificate file, a secret, a secret file or
//! [`SECRET_VARIABLE`]. The secret itself is never logged, only where it came from.

use std::path::Path;

use url::Url;

use crate::config::Credential;

/// The variable a client secret is read from when no other source is given.
pub const SECRET_VARIABLE: &str = "TEAMS_ARCHIVER_CLIENT_SECRET";

/// A credential or URL that could not be read, naming what and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(String);

/// Where the app's credential comes from, first match wins: a certificate, a secret
/// given by the program itself, a secret file, then [`SECRET_VARIABLE`].
#[derive(Debug, Default, Clone, Copy)]
pub struct CredentialSource<'a> {
    /// A PEM file with the private key and the certificate registered for the app.
    pub certificate: Option<&'a Path>,
    pub secret: Option<&'a str>,
    pub secret_file: Option<&'a Path>,
}

impl Credential {
    /// Reads the credential from the first source given.
    pub fn load(source: CredentialSource<'_>) -> Result<Credential, CredentialError> {
        let fail = |what: String| CredentialError(what);
        if let Some(pem_path) = source.certificate {
            let pem = std::fs::read_to_string(pem_path).map_err(|e| {
                fail(format!(
                    "reading the certificate file {}: {e}",
                    pem_path.display()
                ))
            })?;
            let (private_key_pem, certificate_pem) = split_pem(&pem).map_err(|e| {
                fail(format!(
                    "{} must hold the private key and the certificate (PEM): {e}",
                    pem_path.display()
                ))
            })?;
            tracing::info!(file = %pem_path.display(), "authenticating with a certificate");
            return Ok(Credential::Certificate {
                private_key_pem,
                certificate_pem,
            });
        }
        if let Some(secret) = source.secret {
            return Ok(Credential::Secret(secret.to_string()));
        }
        if let Some(path) = source.secret_file {
            let secret = std::fs::read_to_string(path).map_err(|e| {
                fail(format!(
                    "reading the client secret file {}: {e}",
                    path.display()
                ))
            })?;
            let secret = secret.trim().to_string();
            if secret.is_empty() {
                return Err(fail(format!(
                    "the client secret file {} is empty",
                    path.display()
                )));
            }
            return Ok(Credential::Secret(secret));
        }
        match std::env::var(SECRET_VARIABLE) {
            Ok(secret) if !secret.trim().is_empty() => {
                Ok(Credential::Secret(secret.trim().to_string()))
            }
            _ => Err(fail(format!(
                "no credential: set {SECRET_VARIABLE}, or pass --client-secret-file FILE or \
                 --certificate PEM"
            ))),
        }
    }
}

/// A base URL that relative paths resolve below (ends with `/`).
pub fn base_url(text: &str) -> Result<Url, CredentialError> {
    let with_slash = if text.ends_with('/') {
        text.to_string()
    } else {
        format!("{text}/")
    };
    Url::parse(&with_slash).map_err(|e| CredentialError(format!("{text:?} is not a URL: {e}")))
}

/// Splits a PEM bundle into its private key block and its certificate block(s).
fn split_pem(pem: &str) -> Result<(String, String), String> {
    let mut key = String::new();
    let mut certs = String::new();
    let mut current: Option<&mut String> = None;
    for line in pem.lines() {
        let line = line.trim_end();
        if line.starts_with("-----BEGIN ") {
            current = if line.contains("PRIVATE KEY") {
                Some(&mut key)
            } else if line.contains("CERTIFICATE") {
                Some(&mut certs)
            } else {
                None
            };
        }
        if let Some(block) = current.as_deref_mut() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with("-----END ") {
            current = None;
        }
    }
    if key.is_empty() {
        return Err("no PRIVATE KEY block".into());
    }
    if certs.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok((key, certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_bundle_splits_into_key_and_certificate() {
        let pem = "junk\n-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let (key, cert) = split_pem(pem).unwrap();
        assert_eq!(
            key,
            "-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----\n"
        );
        assert_eq!(
            cert,
            "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n"
        );
        assert!(split_pem("-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----").is_err());
    }

    #[test]
    fn base_urls_end_with_a_slash() {
        assert_eq!(
            base_url("http://127.0.0.1:9/graph").unwrap().as_str(),
            "http://127.0.0.1:9/graph/"
        );
    }
}
