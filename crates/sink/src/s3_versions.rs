//! The versions an S3 bucket keeps of each key below a location (ListObjectVersions).
//! In a versioned bucket, and every Object Lock bucket is one, writing a key again keeps
//! the old bytes as an older version and serves the new ones: an archive whose keys each
//! have one version was never overwritten. object_store does not list versions, so this
//! is one signed request of our own, signed by object_store's own SigV4 signer with the
//! store's credentials.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

/// Characters SigV4 leaves unencoded in a query value.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Largest response page read (S3 returns at most 1,000 entries, well under this).
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// How to reach one S3 location's bucket to list versions.
#[derive(Debug, Clone)]
pub(crate) struct S3Versions {
    store: Arc<AmazonS3>,
    bucket_known: bool,
    /// The bucket's URL: `<endpoint>/<bucket>` path-style, else the endpoint itself.
    bucket_url: String,
    region: String,
    /// The location's prefix within the bucket, ending in `/` (empty for the root).
    prefix: String,
}

/// One key's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyVersions {
    /// Versions holding bytes.
    pub versions: usize,
    /// Delete markers: deletions a versioned bucket remembers.
    pub delete_markers: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsResult {
    /// Required, so that another document (a bucket listing) is not taken for an empty
    /// version listing.
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_version_id_marker: Option<String>,
    #[serde(default)]
    version: Vec<Entry>,
    #[serde(default)]
    delete_marker: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
}

impl S3Versions {
    /// From the location's URL, the builder that made `store` (for the endpoint) and the
    /// prefix the location is rooted at. Only `s3://bucket/...` URLs name their bucket
    /// plainly; for others the listing reports that it cannot tell.
    pub(crate) fn new(
        url: &url::Url,
        builder: &AmazonS3Builder,
        store: Arc<AmazonS3>,
        prefix: &str,
    ) -> Self {
        let config = |key| builder.get_config_value(&key).unwrap_or_default();
        let bucket = match url.scheme() {
            "s3" | "s3a" => url.host_str().unwrap_or_default().to_string(),
            _ => config(AmazonS3ConfigKey::Bucket),
        };
        let region = config(AmazonS3ConfigKey::Region);
        let region = if region.is_empty() {
            "us-east-1".to_string()
        } else {
            region
        };
        let virtual_hosted = config(AmazonS3ConfigKey::VirtualHostedStyleRequest) == "true";
        let endpoint = config(AmazonS3ConfigKey::Endpoint);
        let bucket_url = match (endpoint.trim_end_matches('/'), virtual_hosted) {
            ("", true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            ("", false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
            (endpoint, true) => endpoint.to_string(),
            (endpoint, false) => format!("{endpoint}/{bucket}"),
        };
        let prefix = prefix.trim_matches('/');
        S3Versions {
            bucket_known: !bucket.is_empty(),
            store,
            bucket_url,
            region,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// Every key below the location (relative to it) with its versions, sorted.
    pub(crate) async fn list(&self) -> Result<BTreeMap<String, KeyVersions>, String> {
        if !self.bucket_known {
            return Err(
                "give the archive as s3://bucket/prefix to have its versions listed".into(),
            );
        }
        let http = reqwest::Client::new();
        let mut keys: BTreeMap<String, KeyVersions> = BTreeMap::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("prefix", self.prefix.clone()), ("versions", String::new())];
            if let Some((key, version)) = &markers {
                query.push(("key-marker", key.clone()));
                query.push(("version-id-marker", version.clone()));
            }
            query.sort();
            let query: Vec<String> = query
                .iter()
                .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
                .collect();
            let url = format!("{}?{}", self.bucket_url, query.join("&"));
            let page = self.get(&http, &url).await?;
            let page: ListVersionsResult = quick_xml::de::from_str(&page)
                .map_err(|e| format!("the version listing of {url} is not S3's XML: {e}"))?;
            for (entry, deleted) in page
                .version
                .iter()
                .map(|e| (e, false))
                .chain(page.delete_marker.iter().map(|e| (e, true)))
            {
                let relative = entry.key.strip_prefix(&self.prefix).unwrap_or(&entry.key);
                let counts = keys.entry(relative.to_string()).or_default();
                if deleted {
                    counts.delete_markers += 1;
                } else {
                    counts.versions += 1;
                }
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_version_id_marker,
            ) {
                (true, Some(key), version) => markers = Some((key, version.unwrap_or_default())),
                (true, None, _) => {
                    return Err(format!(
                        "{url} says the listing goes on but names no marker"
                    ));
                }
                (false, _, _) => return Ok(keys),
            }
        }
    }

    /// One signed GET, its body as text.
    async fn get(&self, http: &reqwest::Client, url: &str) -> Result<String, String> {
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| format!("no S3 credentials to list versions with: {e}"))?;
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url)
            .body(object_store::client::HttpRequestBody::empty())
            .map_err(|e| format!("{url}: {e}"))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| format!("signing the request to {url}: {e}"))?;
        let mut outgoing = http.get(url);
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name, value);
        }
        let response = outgoing
            .send()
            .await
            .map_err(|e| format!("listing versions at {url}: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the version listing of {url}: {e}"))?;
        if body.len() > MAX_PAGE_BYTES {
            return Err(format!(
                "the version listing of {url} is over {MAX_PAGE_BYTES} bytes"
            ));
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            let excerpt: String = body.chars().take(300).collect();
            return Err(format!(
                "listing versions at {url} answered {status} (the identity needs s3:ListBucketVersions): {excerpt}"
            ));
        }
        Ok(body)
    }
}
