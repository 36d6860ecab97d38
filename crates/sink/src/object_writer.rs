//! Streams one new object into a store so that it appears only complete and never
//! replaces an existing object, hashing the bytes (SHA-256) as they go out.
//!
//! This is object_store's `BufWriter` with one difference, the no-overwrite rule. A file
//! that fits in one part is sent with one `put` in `PutMode::Create` (an atomic
//! create-if-absent on local disk, S3, GCS and Azure), so an existing object is never
//! replaced even by a racing writer. Larger files go out as a multipart upload, which
//! object_store cannot make conditional; for those the writer relies on its check that
//! the name is absent before writing (one writer per name: the name is derived from
//! the rows, so a racing writer of the same name would write the same rows).

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayloadMut, WriteMultipart,
};
use sha2::{Digest, Sha256};

/// Parts of a multipart upload (S3 wants at least 5 MiB per part but the last).
pub(crate) const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts in flight at once; bounds the upload's memory to about this many parts.
const MAX_PARTS_IN_FLIGHT: usize = 2;

enum State {
    Buffering(PutPayloadMut),
    Streaming(WriteMultipart),
    Finished,
}

/// How a completed write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// This writer created the object.
    Created,
    /// An object of that name appeared meanwhile; it was left untouched.
    AlreadyPresent,
}

pub(crate) struct ObjectFileWriter {
    store: Arc<dyn ObjectStore>,
    path: Path,
    state: State,
    hasher: Sha256,
    bytes: u64,
    published: Option<Published>,
}

impl ObjectFileWriter {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path) -> Self {
        ObjectFileWriter {
            store,
            path,
            state: State::Buffering(PutPayloadMut::new()),
            hasher: Sha256::new(),
            bytes: 0,
            published: None,
        }
    }

    /// Size, SHA-256 (hex) and outcome of the completed write.
    pub fn finish(self) -> (u64, String, Option<Published>) {
        (
            self.bytes,
            hex::encode(self.hasher.finalize()),
            self.published,
        )
    }

    /// SHA-256 (hex) of the bytes written so far.
    pub fn digest(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Cancels an unfinished multipart upload so the store does not keep its parts.
    pub async fn abort(&mut self) {
        if let State::Streaming(upload) = std::mem::replace(&mut self.state, State::Finished)
            && let Err(e) = upload.abort().await
        {
            tracing::warn!(key = %self.path, error = %e, "could not abort an unfinished upload");
        }
    }

    pub async fn write_bytes(&mut self, bytes: Bytes) -> object_store::Result<()> {
        self.hasher.update(&bytes);
        self.bytes += bytes.len() as u64;
        match &mut self.state {
            State::Buffering(buffer) if buffer.content_length() + bytes.len() < PART_SIZE => {
                buffer.push(bytes);
            }
            State::Buffering(buffer) => {
                let buffered = std::mem::take(buffer).freeze();
                let upload = self.store.put_multipart(&self.path).await?;
                let mut upload = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                for chunk in buffered {
                    upload.put(chunk);
                }
                upload.put(bytes);
                self.state = State::Streaming(upload);
            }
            State::Streaming(upload) => {
                upload.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
                upload.put(bytes);
            }
            State::Finished => {
                return Err(object_store::Error::Generic {
                    store: "sink",
                    source: "write after the object was completed".into(),
                });
            }
        }
        Ok(())
    }

    pub async fn complete_upload(&mut self) -> object_store::Result<()> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Buffering(buffer) => {
                let payload = buffer.freeze();
                let create = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                self.published = Some(
                    match self
                        .store
                        .put_opts(&self.path, payload.clone(), create)
                        .await
                    {
                        Ok(_) => Published::Created,
                        Err(object_store::Error::AlreadyExists { .. }) => Published::AlreadyPresent,
                        // A store configured without conditional writes: the name was
                        // checked to be absent before writing (see the module doc).
                        Err(object_store::Error::NotImplemented { .. }) => {
                            self.store.put(&self.path, payload).await?;
                            Published::Created
                        }
                        Err(e) => return Err(e),
                    },
                );
            }
            State::Streaming(upload) => {
                upload.finish().await?;
                self.published = Some(Published::Created);
            }
            State::Finished => {}
        }
        Ok(())
    }
}
