//! The Graph client's configuration from the command line's flags.

use anyhow::Context;

use crate::args::GraphArgs;

/// Builds the client configuration from `--certificate`, `--client-secret-file` or the
/// secret variable, and the service URLs.
pub fn client_config(graph: &GraphArgs) -> anyhow::Result<fetch::ClientConfig> {
    let credential = fetch::Credential::load(fetch::CredentialSource {
        certificate: graph.certificate.as_deref(),
        secret: graph.client_secret.as_deref(),
        secret_file: graph.client_secret_file.as_deref(),
    })?;
    let mut config = fetch::ClientConfig::new(
        fetch::base_url(&graph.graph_url).context("--graph-url")?,
        fetch::base_url(&graph.login_url).context("--login-url")?,
        graph.tenant_id.clone(),
        graph.client_id.clone(),
        credential,
    );
    config.allow_insecure_http = graph.allow_insecure_http;
    Ok(config)
}
