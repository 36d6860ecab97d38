//! Content-addressed blobs: the bytes messages point to, stored once under the SHA-256 of
//! their bytes (`archive::layout::blob_key`), never replaced.
//!
//! A blob is stored before any row names it: the row that references it is appended only
//! after [`BlobStore::put_file`] returns, and rows become durable only by a later commit.
//! A crash in between leaves a blob no row names yet; the next run, fetching the same
//! content, finds it present and writes nothing.

use std::path::Path as FsPath;

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::error::SinkError;
use crate::location::Location;
use crate::object_writer::{ObjectFileWriter, Published};
use crate::store_io;

/// Bytes read from the spool file per write.
const CHUNK: usize = 1 << 20;

/// What storing a blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPut {
    /// The blob is new.
    Created,
    /// A blob of that hash was already stored; nothing was written.
    AlreadyPresent,
}

/// The blobs of an archive.
#[derive(Debug, Clone)]
pub struct BlobStore {
    archive: Location,
}

impl BlobStore {
    pub fn new(archive: Location) -> BlobStore {
        BlobStore { archive }
    }

    /// Stores the bytes of `file` as the blob `sha256` (hex), unless it is already
    /// stored. The bytes are hashed as they go out; bytes that do not hash to `sha256`
    /// are refused (the upload is abandoned) rather than stored under a wrong name.
    pub async fn put_file(&self, sha256: &str, file: &FsPath) -> Result<BlobPut, SinkError> {
        let key = archive::layout::blob_key(sha256).ok_or_else(|| SinkError::Blob {
            key: sha256.to_string(),
            detail: "not a SHA-256 in lowercase hex".into(),
        })?;
        if store_io::head(&self.archive, &key).await?.is_some() {
            // A run killed while publishing this blob may have left its staging name.
            self.archive.remove_staging_links(&key)?;
            return Ok(BlobPut::AlreadyPresent);
        }
        // A run killed while writing this blob left its staging file on local disk; the
        // piece comes again (its row never became durable), so it is cleared here.
        self.archive.remove_staging_leftovers(&key)?;
        let io = |e: std::io::Error| SinkError::Blob {
            key: key.clone(),
            detail: format!("reading {}: {e}", file.display()),
        };
        let mut input = tokio::fs::File::open(file).await.map_err(io)?;
        let path = self.archive.key(&key)?;
        let mut writer = ObjectFileWriter::new(self.archive.store().clone(), path);
        let store = |e: object_store::Error| store_io::error(&self.archive, "write", &key, e);
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let n = read_full(&mut input, &mut chunk).await.map_err(io)?;
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            if let Err(e) = writer.write_bytes(Bytes::from(chunk)).await {
                writer.abort().await;
                return Err(store(e));
            }
        }
        let written = writer.digest();
        if written != sha256 {
            writer.abort().await;
            return Err(SinkError::Blob {
                key,
                detail: format!("its bytes hash to {written}"),
            });
        }
        writer.complete_upload().await.map_err(store)?;
        Ok(match writer.finish().2 {
            Some(Published::AlreadyPresent) => BlobPut::AlreadyPresent,
            _ => BlobPut::Created,
        })
    }

    /// Whether the blob `sha256` is stored.
    pub async fn contains(&self, sha256: &str) -> Result<bool, SinkError> {
        match archive::layout::blob_key(sha256) {
            Some(key) => Ok(store_io::head(&self.archive, &key).await?.is_some()),
            None => Ok(false),
        }
    }

    /// Streams the blob at `key` and says what its bytes hash to, and how many there are.
    pub async fn digest(&self, key: &str) -> Result<(String, u64), SinkError> {
        let path = self.archive.key(key)?;
        let read = |e| store_io::error(&self.archive, "read", key, e);
        let mut stream = self
            .archive
            .store()
            .get(&path)
            .await
            .map_err(read)?
            .into_stream();
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(read)?;
            bytes += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hex::encode(hasher.finalize()), bytes))
    }
}

async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
