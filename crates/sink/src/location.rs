//! Where the archive and the state store live: a local directory or an object store URL,
//! opened once through object_store. Nothing after this module knows which it is.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, ObjectStore, ObjectStoreScheme};
use url::Url;

use crate::error::SinkError;
use crate::s3_versions::{KeyVersions, S3Versions};

/// An opened archive or state location: an object store rooted at the location's prefix.
///
/// Accepted forms: a local path, `file://`, `s3://bucket/prefix`, `gs://bucket/prefix`,
/// `az://container/prefix`, `abfs[s]://...`, `https://<account>.blob.core.windows.net/...`
/// and the other URLs object_store recognises for S3, GCS and Azure. Credentials,
/// region and endpoint come from the usual variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`);
/// for a local S3 server set `AWS_ENDPOINT_URL` and `AWS_ALLOW_HTTP=true` (requests are
/// path-style unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`).
///
/// Local directories are created if missing and every write is fsynced (file and
/// directory) before it counts as done, which is what a commit protocol needs from a
/// disk. S3 uploads carry a SHA-256 checksum the service verifies, which is also what
/// S3 Object Lock requires of uploads to a bucket with default retention.
#[derive(Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    url: String,
    local_dir: Option<PathBuf>,
    /// For S3 locations: how to list the versions of their keys.
    s3_versions: Option<S3Versions>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Location").field("url", &self.url).finish()
    }
}

impl Location {
    /// Opens `location` with settings from the environment (a local folder is created
    /// when missing).
    pub fn parse(location: &str) -> Result<Location, SinkError> {
        Location::parse_with_options(location, std::iter::empty::<(&str, &str)>())
    }

    /// Opens `location` for reading: a local folder must already exist, and nothing is
    /// created. `None` when a local folder does not exist.
    pub fn open_existing(location: &str) -> Result<Option<Location>, SinkError> {
        let local = if location.contains("://") {
            Url::parse(location)
                .ok()
                .filter(|u| u.scheme() == "file")
                .and_then(|u| u.to_file_path().ok())
        } else {
            Some(PathBuf::from(location))
        };
        match local {
            Some(path) if !path.is_dir() => Ok(None),
            _ => Location::parse(location).map(Some),
        }
    }

    /// Opens `location` with settings from the environment, overridden by `options`
    /// (object_store configuration keys such as `aws_endpoint` or `allow_http`).
    pub fn parse_with_options<I, K, V>(location: &str, options: I) -> Result<Location, SinkError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let fail = |reason: String| SinkError::Location {
            location: location.to_string(),
            reason,
        };
        if location.trim().is_empty() {
            return Err(fail("the location is empty".into()));
        }
        let options: Vec<(String, String)> = options
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
            .collect();

        if !location.contains("://") {
            if !options.is_empty() {
                return Err(fail("a local directory takes no options".into()));
            }
            return Location::local(location, FsPath::new(location));
        }
        let url = Url::parse(location).map_err(|e| fail(format!("not a valid URL: {e}")))?;
        let (scheme, prefix) =
            ObjectStoreScheme::parse(&url).map_err(|e| fail(format!("unrecognised URL: {e}")))?;
        let mut s3_versions = None;
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::Local => {
                if !options.is_empty() {
                    return Err(fail("a local directory takes no options".into()));
                }
                let path = url
                    .to_file_path()
                    .map_err(|()| fail("not a local file path".into()))?;
                return Location::local(location, &path);
            }
            ObjectStoreScheme::AmazonS3 => {
                let builder = s3_builder(&url, &options).map_err(fail)?;
                let store = Arc::new(builder.clone().build().map_err(|e| fail(e.to_string()))?);
                s3_versions = Some(S3Versions::new(
                    &url,
                    &builder,
                    Arc::clone(&store),
                    prefix.as_ref(),
                ));
                store
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                for (key, value) in &options {
                    let key: GoogleConfigKey = key
                        .parse()
                        .map_err(|_| fail(format!("unknown GCS option `{key}`")))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| fail(e.to_string()))?)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (key, value) in &options {
                    let key: AzureConfigKey = key
                        .parse()
                        .map_err(|_| fail(format!("unknown Azure option `{key}`")))?;
                    builder = builder.with_config(key, value);
                }
                Arc::new(builder.build().map_err(|e| fail(e.to_string()))?)
            }
            other => {
                return Err(fail(format!(
                    "{other:?} is not a supported archive location (use a local path, file://, s3://, gs://, az:// or abfss://)"
                )));
            }
        };
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, prefix))
        };
        Ok(Location {
            store,
            url: location.trim_end_matches('/').to_string(),
            local_dir: None,
            s3_versions,
        })
    }

    fn local(location: &str, path: &FsPath) -> Result<Location, SinkError> {
        std::fs::create_dir_all(path).map_err(|source| SinkError::Io {
            operation: "create directory",
            path: path.display().to_string(),
            source,
        })?;
        let dir = std::fs::canonicalize(path).map_err(|source| SinkError::Io {
            operation: "resolve directory",
            path: path.display().to_string(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| SinkError::Location {
                location: location.to_string(),
                reason: e.to_string(),
            })?
            .with_fsync(true);
        Ok(Location {
            store: Arc::new(store),
            url: dir.display().to_string(),
            local_dir: Some(dir),
            s3_versions: None,
        })
    }

    /// For an S3 location, every key below it with how many versions and delete markers
    /// the bucket keeps of it (relative keys, sorted); `None` for other stores. A key
    /// with more than one entry was overwritten or deleted after it was first written.
    pub async fn key_versions(&self) -> Option<Result<BTreeMap<String, KeyVersions>, String>> {
        match &self.s3_versions {
            Some(versions) => Some(versions.list().await),
            None => None,
        }
    }

    /// The store, rooted at this location: keys are relative to it.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The location as given (a local one as its absolute directory), for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory, when this location is on local disk.
    pub fn local_dir(&self) -> Option<&FsPath> {
        self.local_dir.as_deref()
    }

    /// Makes a local location readable by this user only (mode 0700): the state holds
    /// Graph's delta links, which read the tenant's messages. Files written there by
    /// [`crate::CheckpointStore`] and the writer are 0600. Object stores keep their own
    /// access control; there this does nothing.
    pub fn make_private(&self) -> Result<(), SinkError> {
        match &self.local_dir {
            Some(dir) => private_dir(dir),
            None => Ok(()),
        }
    }

    /// After writing `relative` in a private local location: 0600, and the folders
    /// between it and the location 0700. Best effort: inside a 0700 folder the file is
    /// out of others' reach anyway, and a file system that refuses modes (a network
    /// share) must not stop commits.
    pub(crate) fn make_file_private(&self, relative: &str) {
        let Some(dir) = &self.local_dir else {
            return;
        };
        let file = dir.join(relative);
        let folders = file
            .ancestors()
            .skip(1)
            .take_while(|folder| folder.starts_with(dir) && *folder != dir.as_path());
        for made in std::iter::once(private_file(&file)).chain(folders.map(private_dir)) {
            if let Err(e) = made {
                tracing::debug!("{e}");
            }
        }
    }

    /// The object key of `relative` (a `/`-separated path inside this location).
    pub(crate) fn key(&self, relative: &str) -> Result<Path, SinkError> {
        Path::parse(relative).map_err(|e| SinkError::Inconsistent {
            location: self.url.clone(),
            key: relative.to_string(),
            reason: format!("not a valid object key: {e}"),
        })
    }

    /// Removes what an interrupted local upload of `relative` left behind.
    ///
    /// object_store's local backend writes `<name>#<n>` and renames it into place
    /// when complete. The staging name never matches `*.parquet`, but readers that list
    /// a directory (Spark, Hive) would trip over it, so recovery removes it. Object
    /// stores keep unfinished uploads out of sight on their own.
    pub(crate) fn remove_staging_leftovers(&self, relative: &str) -> Result<usize, SinkError> {
        self.remove_staging_files(relative, |_| true)
    }

    /// Removes the staging names of `relative` that are the completed file itself.
    ///
    /// The local backend publishes a file without overwriting by linking its staging
    /// file to the final name, then unlinking the staging name; a run killed between
    /// the two leaves both. Another writer's upload in progress is a file of its own,
    /// so it is left alone.
    pub(crate) fn remove_staging_links(&self, relative: &str) -> Result<usize, SinkError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let Some(dir) = &self.local_dir else {
                return Ok(0);
            };
            let Ok(target) = std::fs::metadata(dir.join(relative)) else {
                return Ok(0);
            };
            self.remove_staging_files(relative, |staging| {
                staging.dev() == target.dev() && staging.ino() == target.ino()
            })
        }
        #[cfg(not(unix))]
        {
            let _ = relative;
            Ok(0)
        }
    }

    fn remove_staging_files(
        &self,
        relative: &str,
        remove: impl Fn(&std::fs::Metadata) -> bool,
    ) -> Result<usize, SinkError> {
        let Some(dir) = &self.local_dir else {
            return Ok(0);
        };
        let target = dir.join(relative);
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Ok(0);
        };
        let staging_prefix = format!("{}#", name.to_string_lossy());
        let entries = match std::fs::read_dir(parent) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => {
                return Err(SinkError::Io {
                    operation: "list directory",
                    path: parent.display().to_string(),
                    source,
                });
            }
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            let is_staging = file_name
                .strip_prefix(&staging_prefix)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if is_staging && entry.metadata().is_ok_and(|m| remove(&m)) {
                std::fs::remove_file(entry.path()).map_err(|source| SinkError::Io {
                    operation: "remove interrupted upload",
                    path: entry.path().display().to_string(),
                    source,
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// S3 from `AWS_*` variables and `options`, with two defaults of ours: SHA-256 upload
/// checksums, and the header S3 Object Lock asks of uploads to a bucket with default
/// retention (`x-amz-sdk-checksum-algorithm`, naming the checksum already sent).
/// Sets a local directory to mode 0700 (on Unix; elsewhere the platform's defaults stay).
pub(crate) fn private_dir(dir: &FsPath) -> Result<(), SinkError> {
    set_mode(dir, 0o700)
}

/// Sets a local file to mode 0600 (on Unix).
pub(crate) fn private_file(file: &FsPath) -> Result<(), SinkError> {
    set_mode(file, 0o600)
}

#[cfg(unix)]
fn set_mode(path: &FsPath, mode: u32) -> Result<(), SinkError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        SinkError::Io {
            operation: "restrict the permissions of",
            path: path.display().to_string(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn set_mode(_: &FsPath, _: u32) -> Result<(), SinkError> {
    Ok(())
}

fn s3_builder(url: &Url, options: &[(String, String)]) -> Result<AmazonS3Builder, String> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-amz-sdk-checksum-algorithm",
        http::HeaderValue::from_static("SHA256"),
    );
    let mut builder = AmazonS3Builder::new()
        .with_client_options(ClientOptions::new().with_default_headers(headers))
        .with_checksum_algorithm(object_store::aws::Checksum::SHA256);
    let from_env = std::env::vars_os().filter_map(|(k, v)| {
        let (k, v) = (k.into_string().ok()?, v.into_string().ok()?);
        k.starts_with("AWS_").then(|| (k.to_ascii_lowercase(), v))
    });
    // Unknown AWS_* variables belong to other tools; unknown explicit options are mistakes.
    for (key, value) in from_env {
        if let Ok(key) = key.parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(key, value);
        }
    }
    for (key, value) in options {
        let parsed: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| format!("unknown S3 option `{key}`"))?;
        builder = builder.with_config(parsed, value);
    }
    Ok(builder.with_url(url.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_urls_open_without_touching_the_network() {
        for url in [
            "s3://bucket/prefix",
            "s3://bucket",
            "gs://bucket/archive",
            "abfss://container@account.dfs.core.windows.net/archive",
            "https://account.blob.core.windows.net/container/archive",
        ] {
            let location = Location::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(location.url(), url);
            assert!(location.local_dir().is_none());
        }
    }

    #[test]
    fn local_paths_and_file_urls_are_created_and_made_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let location = Location::parse(nested.to_str().unwrap()).unwrap();
        assert!(nested.is_dir());
        assert_eq!(
            location.local_dir(),
            Some(nested.canonicalize().unwrap().as_path())
        );
        let url = format!("file://{}", dir.path().join("c").display());
        let location = Location::parse(&url).unwrap();
        assert!(dir.path().join("c").is_dir());
        assert!(location.local_dir().is_some());
    }

    #[test]
    fn unsupported_locations_and_options_are_clear_errors() {
        let err = Location::parse("ftp://host/x").unwrap_err().to_string();
        assert!(
            err.contains("ftp://host/x") && err.contains("unrecognised"),
            "{err}"
        );
        let err = Location::parse("http://example.com/x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a supported archive location"), "{err}");
        let err = Location::parse("").unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let err = Location::parse_with_options("s3://b/p", [("no_such_option", "1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_option"), "{err}");
    }
}
