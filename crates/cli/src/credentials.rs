//! The app's credential, from the environment, a file, or a certificate.

use anyhow::{Context, bail};

use crate::args::GraphArgs;

pub const SECRET_VARIABLE: &str = "TEAMS_ARCHIVER_CLIENT_SECRET";

/// Builds the client configuration. The secret itself is never logged: only where it
/// came from.
pub fn client_config(graph: &GraphArgs) -> anyhow::Result<fetch::ClientConfig> {
    let credential = if let Some(pem_path) = &graph.certificate {
        let pem = std::fs::read_to_string(pem_path)
            .with_context(|| format!("reading the certificate file {}", pem_path.display()))?;
        let (private_key_pem, certificate_pem) = split_pem(&pem).with_context(|| {
            format!(
                "{} must hold the private key and the certificate (PEM)",
                pem_path.display()
            )
        })?;
        tracing::info!(file = %pem_path.display(), "authenticating with a certificate");
        fetch::Credential::Certificate {
            private_key_pem,
            certificate_pem,
        }
    } else if let Some(secret) = &graph.client_secret {
        fetch::Credential::Secret(secret.clone())
    } else if let Some(path) = &graph.client_secret_file {
        let secret = std::fs::read_to_string(path)
            .with_context(|| format!("reading the client secret file {}", path.display()))?;
        let secret = secret.trim().to_string();
        if secret.is_empty() {
            bail!("the client secret file {} is empty", path.display());
        }
        fetch::Credential::Secret(secret)
    } else {
        match std::env::var(SECRET_VARIABLE) {
            Ok(secret) if !secret.trim().is_empty() => {
                fetch::Credential::Secret(secret.trim().to_string())
            }
            _ => bail!(
                "no credential: set {SECRET_VARIABLE}, or pass --client-secret-file FILE or \
                 --certificate PEM"
            ),
        }
    };
    let graph_url = base_url(&graph.graph_url).context("--graph-url")?;
    let login_url = base_url(&graph.login_url).context("--login-url")?;
    let mut config = fetch::ClientConfig::new(
        graph_url,
        login_url,
        graph.tenant_id.clone(),
        graph.client_id.clone(),
        credential,
    );
    config.allow_insecure_http = graph.allow_insecure_http;
    Ok(config)
}

/// A base URL that relative paths resolve below (ends with `/`).
fn base_url(text: &str) -> anyhow::Result<url::Url> {
    let with_slash = if text.ends_with('/') {
        text.to_string()
    } else {
        format!("{text}/")
    };
    url::Url::parse(&with_slash).with_context(|| format!("{text:?} is not a URL"))
}

/// Splits a PEM bundle into its private key block and its certificate block(s).
fn split_pem(pem: &str) -> anyhow::Result<(String, String)> {
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
        bail!("no PRIVATE KEY block");
    }
    if certs.is_empty() {
        bail!("no CERTIFICATE block");
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
