//! Checkpoints: where each scope resumes. They hold delta and next links, which carry
//! Graph's state tokens, so they live only in the state store, never in the archive.

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::SinkError;
use crate::location::Location;
use crate::store_io;

/// Checkpoint writes in flight at once.
const PARALLEL_WRITES: usize = 16;

/// Where one scope resumes. The value is opaque to the sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The scope's name, any string (e.g. `chats/user/6f0c…`).
    pub scope: String,
    pub value: serde_json::Value,
}

/// The checkpoints in a state location: one object per scope, at
/// [`archive::layout::checkpoint_key`].
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    state: Location,
}

impl CheckpointStore {
    /// Opens the checkpoints of a state location (local path or URL, as for the archive).
    pub fn open(state: &str) -> Result<CheckpointStore, SinkError> {
        Ok(CheckpointStore::at(Location::parse(state)?))
    }

    /// The checkpoints of an already opened state location.
    pub fn at(state: Location) -> CheckpointStore {
        CheckpointStore { state }
    }

    /// The state location.
    pub fn location(&self) -> &Location {
        &self.state
    }

    /// The checkpoint of `scope`, if one was ever written.
    pub async fn load(&self, scope: &str) -> Result<Option<serde_json::Value>, SinkError> {
        let stored: Option<Checkpoint> =
            store_io::get_json(&self.state, &archive::layout::checkpoint_key(scope)).await?;
        Ok(stored.map(|c| c.value))
    }

    /// A document the state keeps beside the checkpoints (`key` relative to the state
    /// root, from `archive::layout`), if it was ever written.
    pub async fn load_document<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, SinkError> {
        store_io::get_json(&self.state, key).await
    }

    /// Writes a document beside the checkpoints, replacing any earlier one.
    pub async fn save_document<T: Serialize>(&self, key: &str, value: &T) -> Result<(), SinkError> {
        store_io::put_json(&self.state, key, value).await
    }

    /// Every stored checkpoint, sorted by scope.
    pub async fn list(&self) -> Result<Vec<(String, serde_json::Value)>, SinkError> {
        let keys = store_io::list(&self.state, archive::layout::CHECKPOINTS_DIR).await?;
        // Futures are built before they are streamed: a stream of closures that borrow
        // would make this future not `Send`.
        let reads: Vec<_> = keys
            .iter()
            .map(|key| store_io::get_json::<Checkpoint>(&self.state, key))
            .collect();
        let mut all: Vec<(String, serde_json::Value)> = futures::stream::iter(reads)
            .buffered(PARALLEL_WRITES)
            .try_filter_map(|found| async move { Ok(found.map(|c| (c.scope, c.value))) })
            .try_collect()
            .await?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// Writes checkpoints (called by the commit protocol once their data is durable).
    pub(crate) async fn save(&self, checkpoints: &[Checkpoint]) -> Result<(), SinkError> {
        let keys: Vec<String> = checkpoints
            .iter()
            .map(|c| archive::layout::checkpoint_key(&c.scope))
            .collect();
        let writes: Vec<_> = keys
            .iter()
            .zip(checkpoints)
            .map(|(key, checkpoint)| store_io::put_json(&self.state, key, checkpoint))
            .collect();
        futures::stream::iter(writes)
            .buffer_unordered(PARALLEL_WRITES)
            .try_collect::<()>()
            .await
    }
}
