//! What the simulator's tests share: a client of its Graph and admin APIs over plain HTTP.

#![allow(dead_code)] // each test binary uses a different part of this module

use serde::de::DeserializeOwned;
use serde_json::Value;

/// The scope Graph's own clients ask for; the simulator also accepts its own URL's.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A client-credentials token request to `{login_url}{tenant}/oauth2/v2.0/token`, answered as it comes.
pub async fn request_token(
    http: &reqwest::Client,
    login_url: &str,
    tenant: &str,
    client_id: &str,
    client_secret: &str,
    scope: &str,
) -> reqwest::Response {
    http.post(format!("{login_url}{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("scope", scope),
        ])
        .send()
        .await
        .expect("token request")
}

/// The access token of a successful token response.
pub async fn access_token(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("token JSON");
    body["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

/// Send a request that must succeed at the HTTP level and read its JSON body.
pub async fn response_json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    request
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON")
}

/// The simulator's Graph API as the app sees it, with a token.
pub struct Client {
    pub http: reqwest::Client,
    pub token: String,
    /// The service root, without its trailing slash.
    pub base: String,
}

impl Client {
    /// A client with a token for Graph's scope.
    pub async fn new(sim: &graph_sim::Sim) -> Client {
        Client::with_scope(sim, GRAPH_SCOPE).await
    }

    pub async fn with_scope(sim: &graph_sim::Sim, scope: &str) -> Client {
        let http = reqwest::Client::new();
        let response = request_token(
            &http,
            sim.login_url().as_str(),
            sim.tenant_id(),
            sim.client_id(),
            sim.client_secret(),
            scope,
        )
        .await;
        Client {
            token: access_token(response).await,
            http,
            base: sim.graph_url().as_str().trim_end_matches('/').to_string(),
        }
    }

    /// A link as the simulator wrote it (relative to the host, or absolute) made absolute.
    pub fn absolute(&self, link: &str) -> String {
        if link.starts_with('/') {
            format!("{}{link}", self.base)
        } else {
            link.to_string()
        }
    }

    /// GET a path below the service root (or an absolute link): its status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_preferring(path, &[]).await
    }

    /// GET a path below the service root (or an absolute link), with `Prefer` values.
    pub async fn get_preferring(&self, path: &str, prefer: &[&str]) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.get(url).bearer_auth(&self.token);
        if !prefer.is_empty() {
            request = request.header("Prefer", prefer.join(", "));
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every item of a collection, following nextLinks.
    pub async fn all(&self, path: &str) -> Vec<Value> {
        self.all_preferring(path, &[]).await
    }

    /// Every item of a collection, following nextLinks, with `Prefer` values on each request.
    pub async fn all_preferring(&self, path: &str, prefer: &[&str]) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(url) = next {
            let (status, page) = self.get_preferring(&url, prefer).await;
            assert_eq!(status, 200, "{url}: {page}");
            items.extend(page["value"].as_array().cloned().unwrap_or_default());
            next = page["@odata.nextLink"].as_str().map(|l| self.absolute(l));
        }
        items
    }
}
