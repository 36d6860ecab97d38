//! How a file of the archive is encoded, and how an existing one is read back for its
//! size, SHA-256, row count and version keys.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use std::ops::Range;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use sha2::{Digest, Sha256};

use crate::encoding::{Gatherer, file_properties};
use crate::error::SinkError;
use crate::location::Location;
use crate::object_writer::{ObjectFileWriter, Published};
use crate::table::{KeyReader, Table, VersionKey};

/// zstd level 1: on short values it compresses within a few percent of level 3 (DuckDB's
/// and Spark's default) in about half the time. Prose is compressed harder
/// (`encoding::PROSE_ZSTD_LEVEL`).
const ZSTD_LEVEL: i32 = 1;
/// Bounds on a row group's encoded size (the upper one is Spark's `parquet.block.size`).
const ROW_GROUP_BYTES: std::ops::RangeInclusive<usize> = 4 * 1024 * 1024..=128 * 1024 * 1024;
/// Rows handed to the encoder at a time; bounds the copy made to put rows in order.
const ENCODE_CHUNK_ROWS: usize = 1024;

/// Encoding settings of every archive file (before the per-file choices of
/// [`crate::encoding::file_properties`]).
///
/// - zstd; Parquet 1.0 data pages, which every reader (Spark, Athena, Hive, Trino,
///   DuckDB) reads;
/// - Arrow `Timestamp(Microsecond, "UTC")` stays `TIMESTAMP(MICROS, isAdjustedToUTC)`:
///   nothing here asks for INT96 or nanoseconds;
/// - lists written as the standard three-level `list` / `element` groups
///   (`coerce_types`), the form Spark, Athena and Hive require;
/// - statistics per column chunk, for pruning files and row groups; no page index: files
///   of date partitions hold few pages per column;
/// - nothing time- or machine-dependent in the footer (`created_by` names the
///   library version only), so the same rows in the same order give the same bytes;
///   the key-value metadata holds the archive's schema version;
///   The Arrow schema is not embedded (`ARROW:schema`): the Parquet types say it all, and
///   for a table of hundreds of leaves it would be a large part of a small file.
///
/// An encoder holds its row group in memory until the group is complete, so row groups
/// are also capped at a quarter of the memory budget (within 4 to 128 MiB encoded).
pub(crate) fn writer_properties(row_group_rows: usize, memory_budget: usize) -> WriterProperties {
    let row_group_bytes =
        (memory_budget / 4).clamp(*ROW_GROUP_BYTES.start(), *ROW_GROUP_BYTES.end());
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("1 is a valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_max_row_group_bytes(Some(row_group_bytes))
        .set_coerce_types(true)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            archive::SCHEMA_VERSION_KEY.to_string(),
            archive::SCHEMA_VERSION.to_string(),
        )]))
        .build()
}

/// A file this writer sent to the store.
pub(crate) struct WrittenFile {
    pub bytes: u64,
    pub sha256: String,
    pub published: Published,
}

/// Encodes `order` (positions into `batches`) as one Parquet file at `path`.
///
/// Encoding is CPU work, so it runs on one of the writer's encoder threads with parquet's
/// `ArrowWriter`; its output streams through a small bounded channel to the upload, which
/// runs here. Several files can thus encode at once on several cores while memory stays
/// bounded by a row group and a few chunks in flight per file. The encoder threads are
/// few and long-lived: an allocator keeps some memory per thread that has used it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_file(
    encoders: &rayon::ThreadPool,
    location: &Location,
    path: &str,
    schema: SchemaRef,
    properties: WriterProperties,
    key_columns: &'static [&'static str],
    statistics_columns: &'static [&'static str],
    batches: Arc<Vec<RecordBatch>>,
    order: Vec<(usize, usize)>,
) -> Result<WrittenFile, SinkError> {
    let fail = |source: ParquetError| SinkError::Parquet {
        operation: "write",
        location: location.url().to_string(),
        key: path.to_string(),
        source: Box::new(source),
    };
    let key = location.key(path)?;
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let (done, encoder) = tokio::sync::oneshot::channel();
    let encode = move || -> parquet::errors::Result<()> {
        let output = ChannelWriter {
            chunks,
            pending: Vec::with_capacity(SEND_CHUNK_BYTES),
        };
        let (batches, order) = batches_of(&batches, &order);
        let mut gatherer = Gatherer::new(Arc::clone(&schema), &batches);
        let mut chunks = order.chunks(ENCODE_CHUNK_ROWS);
        let first = gatherer.gather(chunks.next().unwrap_or(&[]))?;
        let descr = ArrowSchemaConverter::new()
            .with_coerce_types(properties.coerce_types())
            .convert(&schema)?;
        let properties =
            file_properties(&properties, &descr, &first, key_columns, statistics_columns);
        let options = ArrowWriterOptions::new()
            .with_properties(properties)
            .with_parquet_schema(descr)
            .with_skip_arrow_metadata(true);
        let mut writer = ArrowWriter::try_new_with_options(output, schema, options)?;
        writer.write(&first)?;
        drop(first);
        for chunk in chunks {
            writer.write(&gatherer.gather(chunk)?)?;
        }
        writer.into_inner()?.send_pending()?;
        Ok(())
    };
    // A panic drops `done`, which the wait below reports.
    encoders.spawn(move || {
        let _ = done.send(encode());
    });

    let mut upload = ObjectFileWriter::new(Arc::clone(location.store()), key);
    let mut upload_error = None;
    while let Some(chunk) = received.recv().await {
        if let Err(e) = upload.write_bytes(chunk).await {
            upload_error = Some(e);
            break;
        }
    }
    // Dropping the receiver stops an encoder whose upload failed.
    drop(received);
    let encoded = encoder.await.map_err(|_| {
        fail(ParquetError::General(
            "the encoder stopped without a result".into(),
        ))
    })?;
    let outcome = match (upload_error, encoded) {
        (Some(e), _) => Err(ParquetError::External(Box::new(e))),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => upload
            .complete_upload()
            .await
            .map_err(|e| ParquetError::External(Box::new(e))),
    };
    if let Err(e) = outcome {
        upload.abort().await;
        return Err(fail(e));
    }
    let (bytes, sha256, published) = upload.finish();
    Ok(WrittenFile {
        bytes,
        sha256,
        published: published.unwrap_or(Published::Created),
    })
}

/// Chunks of encoded bytes sent from the encoder thread to the upload.
const SEND_CHUNK_BYTES: usize = 1024 * 1024;
const CHUNKS_IN_FLIGHT: usize = 2;

/// The encoder's `Write`: collects bytes and hands them to the upload in chunks.
struct ChannelWriter {
    chunks: tokio::sync::mpsc::Sender<Bytes>,
    pending: Vec<u8>,
}

impl ChannelWriter {
    fn send_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(SEND_CHUNK_BYTES));
        self.chunks
            .blocking_send(Bytes::from(chunk))
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= SEND_CHUNK_BYTES {
            self.send_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Chunks go out when full or at the end; the upload does its own buffering.
        Ok(())
    }
}

/// Size and SHA-256 of an object, streamed.
pub(crate) async fn hash_object(
    location: &Location,
    path: &str,
) -> Result<(u64, String), SinkError> {
    let fail = |e| crate::store_io::error(location, "read", path, e);
    let key = location.key(path)?;
    let mut stream = location
        .store()
        .get(&key)
        .await
        .map_err(fail)?
        .into_stream();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stream.try_next().await.map_err(fail)? {
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Runs a read of a Parquet file, turning a panic into an error.
///
/// The archive's files are data to check, not to trust: a damaged or forged footer or
/// page can make parquet's decoder panic (an index out of bounds in its metadata code)
/// instead of returning an error. Whoever reads the archive (`verify`, `export`, the
/// index catch-up) must name such a file and go on, so a panic while reading one is
/// caught here and reported as the file's error.
pub(crate) async fn unless_panicking<T>(
    read: impl std::future::Future<Output = Result<T, ParquetError>>,
) -> Result<T, ParquetError> {
    match std::panic::AssertUnwindSafe(read).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => Err(damaged(panic)),
    }
}

fn damaged(panic: Box<dyn std::any::Any + Send>) -> ParquetError {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("no message");
    ParquetError::General(format!(
        "the file is damaged: the Parquet decoder failed on it ({message})"
    ))
}

/// The record batches of a Parquet object of `size` bytes, with only the top-level
/// `columns` it has (others are simply absent), `batch_rows` rows at a time: what
/// `export` and `verify` read the archive with. A damaged file gives an error, never a
/// panic (see [`unless_panicking`]); the stream ends after its first error.
pub async fn read_batches(
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    columns: &[&str],
    batch_rows: usize,
) -> Result<BoxStream<'static, Result<RecordBatch, ParquetError>>, ParquetError> {
    let open = async {
        let reader = ObjectReader::new(store, path, size);
        let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
        let schema = builder.schema().clone();
        let roots: Vec<usize> = columns
            .iter()
            .filter_map(|c| schema.index_of(c).ok())
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        builder
            .with_projection(mask)
            .with_batch_size(batch_rows.max(1))
            .build()
    };
    let stream = unless_panicking(open).await?;
    let guarded =
        std::panic::AssertUnwindSafe(stream)
            .catch_unwind()
            .scan(false, |failed, item| {
                if *failed {
                    return futures::future::ready(None);
                }
                let item = match item {
                    Ok(Ok(batch)) => Ok(batch),
                    Ok(Err(e)) => {
                        *failed = true;
                        Err(e)
                    }
                    Err(panic) => {
                        *failed = true;
                        Err(damaged(panic))
                    }
                };
                futures::future::ready(Some(item))
            });
    Ok(guarded.boxed())
}

/// Row count of a Parquet file (from its footer) and, when asked, the version keys of
/// its rows (reading only the key columns). A damaged file is an error, never a panic.
pub(crate) async fn read_rows_and_keys(
    location: &Location,
    path: &str,
    size: u64,
    table: &Table,
    with_keys: bool,
) -> Result<(u64, Vec<VersionKey>), SinkError> {
    let fail = |source: ParquetError| SinkError::Parquet {
        operation: "read",
        location: location.url().to_string(),
        key: path.to_string(),
        source: Box::new(source),
    };
    let key = location.key(path)?;
    let mut reader = ObjectReader {
        store: Arc::clone(location.store()),
        path: key,
        size,
    };
    let metadata = unless_panicking(ArrowReaderMetadata::load_async(
        &mut reader,
        Default::default(),
    ))
    .await
    .map_err(fail)?;
    let rows = metadata.metadata().file_metadata().num_rows().max(0) as u64;
    if !with_keys {
        return Ok((rows, Vec::new()));
    }
    let file_schema = metadata.schema().clone();
    let mut roots = Vec::with_capacity(table.spec.key_columns.len() + 1);
    for column in table
        .spec
        .key_columns
        .iter()
        .chain(&table.spec.key_day_column)
    {
        roots.push(
            file_schema
                .index_of(column)
                .map_err(|_| SinkError::Inconsistent {
                    location: location.url().to_string(),
                    key: path.to_string(),
                    reason: format!(
                        "the file has no key column `{column}` of table `{}`",
                        table.name()
                    ),
                })?,
        );
    }
    let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
    let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata)
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(fail)?;
    // The footer's row count is the file's word, not a fact: reserve only what a
    // plausible file holds.
    let mut keys = Vec::with_capacity((rows as usize).min(1 << 20));
    while let Some(batch) = unless_panicking(stream.try_next()).await.map_err(fail)? {
        let in_file = |e: SinkError| SinkError::Inconsistent {
            location: location.url().to_string(),
            key: path.to_string(),
            reason: e.to_string(),
        };
        let reader = KeyReader::new(&table.spec, &batch).map_err(in_file)?;
        keys.extend(
            reader
                .keys(table.name(), batch.num_rows())
                .map_err(in_file)?,
        );
    }
    if keys.len() as u64 != rows {
        return Err(SinkError::Inconsistent {
            location: location.url().to_string(),
            key: path.to_string(),
            reason: format!("the footer says {rows} rows but {} were read", keys.len()),
        });
    }
    Ok((rows, keys))
}

/// Ranged reads of one object of known size, for parquet's async reader: what the
/// writer uses to read back a file, and what `export` uses to read the archive.
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl ObjectReader {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> Self {
        Self { store, path, size }
    }
}

fn object_error(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl ObjectReader {
    /// A range the file's own metadata asks for must lie inside the file: one that does
    /// not says the file is damaged, and is refused here as such, so that only real
    /// storage failures come back from the store as store errors.
    fn check(&self, range: &Range<u64>) -> parquet::errors::Result<()> {
        if range.start <= range.end && range.end <= self.size {
            return Ok(());
        }
        Err(ParquetError::General(format!(
            "the file is damaged: its metadata points at bytes {}..{}, outside its {} bytes",
            range.start, range.end, self.size
        )))
    }
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        if let Err(e) = self.check(&range) {
            return futures::future::ready(Err(e)).boxed();
        }
        self.store
            .get_range(&self.path, range)
            .map_err(object_error)
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            for range in &ranges {
                self.check(range)?;
            }
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(object_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // One request usually covers the footer of the archive's files.
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// The batches that `order` takes rows from, and `order` in positions into them: a file
/// takes its rows from a few of the many batches a commit holds, and what looks at every
/// batch (which columns are null throughout) should look only at those.
fn batches_of(
    batches: &[RecordBatch],
    order: &[(usize, usize)],
) -> (Vec<RecordBatch>, Vec<(usize, usize)>) {
    let mut local = vec![usize::MAX; batches.len()];
    let mut used = Vec::new();
    let order = order
        .iter()
        .map(|&(batch, row)| {
            if local[batch] == usize::MAX {
                local[batch] = used.len();
                used.push(batches[batch].clone());
            }
            (local[batch], row)
        })
        .collect();
    (used, order)
}
