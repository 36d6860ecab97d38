//! Small JSON and metadata operations on a [`Location`], with errors that name the key.

use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use archive::records::Record;

use crate::error::SinkError;
use crate::location::Location;

fn store_error(
    location: &Location,
    operation: &'static str,
    key: &str,
    source: object_store::Error,
) -> SinkError {
    SinkError::Store {
        operation,
        location: location.url().to_string(),
        key: key.to_string(),
        source: Box::new(source),
    }
}

/// The object's metadata, or `None` when there is no such object.
pub(crate) async fn head(location: &Location, key: &str) -> Result<Option<ObjectMeta>, SinkError> {
    let path = location.key(key)?;
    match location.store().head(&path).await {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error(location, "check", key, e)),
    }
}

/// An object's bytes, or `None` when there is no such object.
pub(crate) async fn get_bytes(
    location: &Location,
    key: &str,
) -> Result<Option<bytes::Bytes>, SinkError> {
    let path = location.key(key)?;
    match location.store().get(&path).await {
        Ok(result) => result
            .bytes()
            .await
            .map(Some)
            .map_err(|e| store_error(location, "read", key, e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_error(location, "read", key, e)),
    }
}

/// Reads a record of the archive or the state (checked to be of its format), or `None`
/// when there is no such object.
pub(crate) async fn get_record<T: Record>(
    location: &Location,
    key: &str,
) -> Result<Option<T>, SinkError> {
    let refused = |source| SinkError::Record {
        location: location.url().to_string(),
        key: key.to_string(),
        source,
    };
    let path = location.key(key)?;
    let result = match location.store().get(&path).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_error(location, "read", key, e)),
    };
    T::check_size(result.meta.size).map_err(refused)?;
    let bytes = result
        .bytes()
        .await
        .map_err(|e| store_error(location, "read", key, e))?;
    T::from_json(&bytes).map(Some).map_err(refused)
}

/// Reads and parses a JSON document, or `None` when there is no such object.
pub(crate) async fn get_json<T: DeserializeOwned>(
    location: &Location,
    key: &str,
) -> Result<Option<T>, SinkError> {
    let Some(bytes) = get_bytes(location, key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| SinkError::Json {
            operation: "parse",
            location: location.url().to_string(),
            key: key.to_string(),
            source,
        })
}

fn to_json<T: Serialize>(
    location: &Location,
    key: &str,
    value: &T,
) -> Result<PutPayload, SinkError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| SinkError::Json {
        operation: "serialise",
        location: location.url().to_string(),
        key: key.to_string(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(PutPayload::from(bytes))
}

/// Writes a JSON document, replacing any previous one (state store documents: on local
/// disk, readable by this user only).
pub(crate) async fn put_json<T: Serialize>(
    location: &Location,
    key: &str,
    value: &T,
) -> Result<(), SinkError> {
    let payload = to_json(location, key, value)?;
    let path = location.key(key)?;
    location
        .store()
        .put(&path, payload)
        .await
        .map_err(|e| store_error(location, "write", key, e))?;
    location.make_file_private(key);
    Ok(())
}

/// Creates an object that must never be replaced; false, writing nothing, when it
/// already exists. Uses `PutMode::Create` where the store supports it; otherwise
/// checks for the object first (one writer per state location, see the crate doc).
pub(crate) async fn create(
    location: &Location,
    key: &str,
    payload: PutPayload,
) -> Result<bool, SinkError> {
    let path = location.key(key)?;
    let create = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    match location
        .store()
        .put_opts(&path, payload.clone(), create)
        .await
    {
        Ok(_) => Ok(true),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
        Err(object_store::Error::NotImplemented { .. }) => {
            if head(location, key).await?.is_some() {
                return Ok(false);
            }
            location
                .store()
                .put(&path, payload)
                .await
                .map_err(|e| store_error(location, "create", key, e))?;
            Ok(true)
        }
        Err(e) => Err(store_error(location, "create", key, e)),
    }
}

/// Deletes a state store document; a missing one is not an error.
pub(crate) async fn delete(location: &Location, key: &str) -> Result<(), SinkError> {
    let path = location.key(key)?;
    match location.store().delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_error(location, "delete", key, e)),
    }
}

/// Lists the keys under `prefix` (relative to the location), sorted.
pub(crate) async fn list(location: &Location, prefix: &str) -> Result<Vec<String>, SinkError> {
    use futures::TryStreamExt;
    let path = location.key(prefix)?;
    let mut keys: Vec<String> = location
        .store()
        .list(Some(&path))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .map_err(|e| store_error(location, "list", prefix, e))?;
    keys.sort();
    Ok(keys)
}

pub(crate) fn error(
    location: &Location,
    operation: &'static str,
    key: &str,
    source: object_store::Error,
) -> SinkError {
    store_error(location, operation, key, source)
}

/// Creates `key` (under `_archive/`, outside `_archive/commits/`) in the archive at
/// `archive` with `bytes`, e.g. a run summary. Like every archive object it is created
/// once and never replaced: an existing object of that name is an error.
pub async fn put_archive_object(archive: &str, key: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
    let location = Location::parse(archive)?;
    use archive::layout::{COMMITS_DIR, RECORDS_DIR};
    let reserved = key.starts_with(&format!("{COMMITS_DIR}/"));
    if !key.starts_with(&format!("{RECORDS_DIR}/")) || reserved || key.ends_with('/') {
        return Err(SinkError::Inconsistent {
            location: location.url().to_string(),
            key: key.to_string(),
            reason: "archive objects other than data go under `_archive/`; `_archive/commits/` belongs to the commit protocol".into(),
        });
    }
    let created = create(&location, key, PutPayload::from(bytes)).await?;
    if !created {
        return Err(SinkError::Inconsistent {
            location: location.url().to_string(),
            key: key.to_string(),
            reason: "already exists; archive objects are never replaced".into(),
        });
    }
    Ok(())
}

/// Every record of type `T` under `dir` (e.g. `_archive/runs`), sorted by key, each
/// parsed or with the reason it could not be: one bad record never hides the others.
pub async fn read_records<T: Record>(
    location: &Location,
    dir: &str,
) -> Result<Vec<(String, Result<T, SinkError>)>, SinkError> {
    let keys: Vec<String> = list(location, dir)
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".json"))
        .collect();
    let mut records = Vec::with_capacity(keys.len());
    for key in keys {
        let record = get_record::<T>(location, &key).await.and_then(|found| {
            found.ok_or_else(|| SinkError::Inconsistent {
                location: location.url().to_string(),
                key: key.clone(),
                reason: "listed, then gone".into(),
            })
        });
        records.push((key, record));
    }
    Ok(records)
}
