//! What a caller tells the sink about a table, and what the sink derives from it once:
//! column positions, the schema of the files, and how to read a row's version key and
//! partition.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BinaryArray, BinaryViewArray, Int32Array, Int64Array, LargeBinaryArray,
    LargeStringArray, RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{
    DataType, Date32Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use sha2::{Digest, Sha256};

use archive::TableSpec;
use archive::layout::is_partition_day;

use crate::error::SinkError;

/// A validated [`TableSpec`] with its column positions resolved.
#[derive(Debug)]
pub(crate) struct Table {
    pub spec: TableSpec,
    pub partition_index: usize,
    /// Positions of the order columns in the file schema.
    pub order_indices: Vec<usize>,
    /// Positions of the file columns in an appended batch (all but the partition).
    pub file_columns: Vec<usize>,
    pub file_schema: SchemaRef,
}

impl Table {
    pub fn new(spec: TableSpec) -> Result<Table, SinkError> {
        let invalid = |reason: String| SinkError::InvalidTableSpec {
            table: spec.name.to_string(),
            reason,
        };
        let name_ok = !spec.name.is_empty()
            && spec.name.split('/').all(|part| {
                !part.is_empty()
                    && !part.starts_with(['_', '.'])
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !name_ok {
            return Err(invalid(
                "the name must be `/`-separated parts of letters, digits, `_` or `-`, none starting with `_` or `.` (those are reserved)".into(),
            ));
        }
        let schema = &spec.schema;
        let partition_index = schema.index_of(spec.partition_column).map_err(|_| {
            invalid(format!(
                "partition column `{}` is not in the schema",
                spec.partition_column
            ))
        })?;
        if schema.field(partition_index).data_type() != &DataType::Date32 {
            return Err(invalid(format!(
                "partition column `{}` is {}, expected Date32",
                spec.partition_column,
                schema.field(partition_index).data_type()
            )));
        }
        if spec.key_columns.is_empty() {
            return Err(invalid("at least one key column is needed".into()));
        }
        for column in spec.key_columns {
            let index = schema
                .index_of(column)
                .map_err(|_| invalid(format!("key column `{column}` is not in the schema")))?;
            if index == partition_index {
                return Err(invalid(format!(
                    "key column `{column}` is the partition column, which the files do not contain"
                )));
            }
            if !is_key_type(schema.field(index).data_type()) {
                return Err(invalid(format!(
                    "key column `{column}` is {}; keys must be strings, binary or 32/64-bit integers",
                    schema.field(index).data_type()
                )));
            }
        }
        if let Some(column) = spec.key_day_column {
            let index = schema
                .index_of(column)
                .map_err(|_| invalid(format!("key-day column `{column}` is not in the schema")))?;
            if index == partition_index
                || !matches!(
                    schema.field(index).data_type(),
                    DataType::Timestamp(TimeUnit::Microsecond, _)
                )
            {
                return Err(invalid(format!(
                    "key-day column `{column}` must be a microsecond timestamp of the files"
                )));
            }
        }
        let file_columns: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| i != partition_index)
            .collect();
        let file_schema = Arc::new(Schema::new_with_metadata(
            file_columns
                .iter()
                .map(|&i| schema.field(i).clone())
                .collect::<Vec<_>>(),
            schema.metadata().clone(),
        ));
        let order_indices = spec
            .order_columns
            .iter()
            .map(|column| {
                file_schema.index_of(column).map_err(|_| {
                    invalid(format!(
                        "order column `{column}` is not a column of the files"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table {
            spec,
            partition_index,
            order_indices,
            file_columns,
            file_schema,
        })
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Checks that `batch` has this table's columns, in order, with the same types.
    pub fn check_batch(&self, batch: &RecordBatch) -> Result<(), SinkError> {
        let expected = self.spec.schema.fields();
        let found = batch.schema();
        let found = found.fields();
        let mismatch = |detail: String| SinkError::SchemaMismatch {
            table: self.name().to_string(),
            detail,
        };
        for (position, field) in expected.iter().enumerate() {
            let Some(actual) = found.get(position) else {
                return Err(mismatch(format!(
                    "column {position} `{}` is missing (the batch has {} columns, the table {})",
                    field.name(),
                    found.len(),
                    expected.len()
                )));
            };
            if actual.name() != field.name() {
                return Err(mismatch(format!(
                    "column {position} is `{}`, expected `{}`",
                    actual.name(),
                    field.name()
                )));
            }
            if actual.data_type() != field.data_type() {
                return Err(mismatch(format!(
                    "column `{}` is {}, expected {}",
                    field.name(),
                    actual.data_type(),
                    field.data_type()
                )));
            }
        }
        if found.len() > expected.len() {
            return Err(mismatch(format!(
                "unexpected column {} `{}` (the table has {} columns)",
                expected.len(),
                found[expected.len()].name(),
                expected.len()
            )));
        }
        Ok(())
    }

    /// The partition value of every row, as days since 1970-01-01.
    pub fn partition_days(&self, batch: &RecordBatch) -> Result<Vec<i32>, SinkError> {
        let dates = batch
            .column(self.partition_index)
            .as_primitive::<Date32Type>();
        (0..dates.len())
            .map(|row| {
                if dates.is_null(row) {
                    return Err(SinkError::NullValue {
                        table: self.name().to_string(),
                        row,
                        column: self.spec.partition_column.to_string(),
                        why: "every row needs a partition",
                    });
                }
                let days = dates.value(row);
                if !is_partition_day(days) {
                    return Err(SinkError::PartitionOutOfRange {
                        table: self.name().to_string(),
                        row,
                        days,
                    });
                }
                Ok(days)
            })
            .collect()
    }

    /// The directory of one partition, relative to the archive root.
    pub fn partition_dir(&self, days: i32) -> String {
        archive::layout::partition_dir(self.name(), self.spec.partition_column, days)
            .unwrap_or_default()
    }
}

fn is_key_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::Int32
            | DataType::Int64
    )
}

/// Bytes of a [`VersionKey`].
pub(crate) const VERSION_KEY_BYTES: usize = 36;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A row version's key, as the version index stores it and file names are hashed from:
/// the UTC day of the table's key-day column (4 bytes, big-endian with the sign bit
/// flipped so days sort in order; zero when the table has none or the row's is null),
/// then the SHA-256 of the key columns' values, each fed as a big-endian `u32` length
/// and the bytes (UTF-8 for strings, decimal digits for integers).
///
/// The day leads so that the keys a commit adds, mostly of a few days, sit together in
/// the index: a commit rewrites few of its pages, and lookups land on pages just read.
/// With hashes alone every commit rewrote most of the index (an ingest of 200,000
/// messages spent a quarter of its time there). The day is part of the version's
/// content (a created or received time), so a version always has the same key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct VersionKey([u8; VERSION_KEY_BYTES]);

impl VersionKey {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::hash::Hash for VersionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Past the day the bytes are a SHA-256: eight of them spread as well as all.
        let mut digest = [0u8; 8];
        digest.copy_from_slice(&self.0[4..12]);
        state.write_u64(u64::from_le_bytes(digest));
    }
}

/// Reads the [`VersionKey`] of each row of a batch (appended, or read from a file).
pub(crate) struct KeyReader<'a> {
    columns: Vec<(&'a str, KeyColumn<'a>)>,
    day: Option<&'a TimestampMicrosecondArray>,
}

/// A key column, downcast once.
enum KeyColumn<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    BinaryView(&'a BinaryViewArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
}

impl<'a> KeyColumn<'a> {
    fn new(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Utf8 => KeyColumn::Utf8(array.as_string()),
            DataType::LargeUtf8 => KeyColumn::LargeUtf8(array.as_string()),
            DataType::Utf8View => KeyColumn::Utf8View(array.as_string_view()),
            DataType::Binary => KeyColumn::Binary(array.as_binary()),
            DataType::LargeBinary => KeyColumn::LargeBinary(array.as_binary()),
            DataType::BinaryView => KeyColumn::BinaryView(array.as_binary_view()),
            DataType::Int32 => KeyColumn::Int32(array.as_primitive::<Int32Type>()),
            DataType::Int64 => KeyColumn::Int64(array.as_primitive::<Int64Type>()),
            _ => return None,
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            KeyColumn::Utf8(a) => a.is_null(row),
            KeyColumn::LargeUtf8(a) => a.is_null(row),
            KeyColumn::Utf8View(a) => a.is_null(row),
            KeyColumn::Binary(a) => a.is_null(row),
            KeyColumn::LargeBinary(a) => a.is_null(row),
            KeyColumn::BinaryView(a) => a.is_null(row),
            KeyColumn::Int32(a) => a.is_null(row),
            KeyColumn::Int64(a) => a.is_null(row),
        }
    }

    fn feed(&self, row: usize, digest: &mut Sha256) {
        match self {
            KeyColumn::Utf8(a) => feed_part(digest, a.value(row).as_bytes()),
            KeyColumn::LargeUtf8(a) => feed_part(digest, a.value(row).as_bytes()),
            KeyColumn::Utf8View(a) => feed_part(digest, a.value(row).as_bytes()),
            KeyColumn::Binary(a) => feed_part(digest, a.value(row)),
            KeyColumn::LargeBinary(a) => feed_part(digest, a.value(row)),
            KeyColumn::BinaryView(a) => feed_part(digest, a.value(row)),
            KeyColumn::Int32(a) => feed_part(digest, a.value(row).to_string().as_bytes()),
            KeyColumn::Int64(a) => feed_part(digest, a.value(row).to_string().as_bytes()),
        }
    }
}

impl<'a> KeyReader<'a> {
    /// The key columns (and key-day column) of `spec`, found by name in `batch`; a
    /// missing column or an unsupported type is an error naming the table and column.
    pub fn new(spec: &'a TableSpec, batch: &'a RecordBatch) -> Result<Self, SinkError> {
        let mismatch = |detail: String| SinkError::SchemaMismatch {
            table: spec.name.to_string(),
            detail,
        };
        let schema = batch.schema_ref();
        let columns = spec
            .key_columns
            .iter()
            .map(|&name| {
                let index = schema
                    .index_of(name)
                    .map_err(|_| mismatch(format!("key column `{name}` is missing")))?;
                let array = batch.column(index).as_ref();
                KeyColumn::new(array)
                    .map(|column| (name, column))
                    .ok_or_else(|| {
                        mismatch(format!(
                            "key column `{name}` is {}; keys must be strings, binary or 32/64-bit integers",
                            array.data_type()
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        let day = match spec.key_day_column {
            None => None,
            Some(name) => {
                let index = schema
                    .index_of(name)
                    .map_err(|_| mismatch(format!("key-day column `{name}` is missing")))?;
                let array = batch.column(index).as_ref();
                Some(
                    array
                        .as_primitive_opt::<TimestampMicrosecondType>()
                        .ok_or_else(|| {
                            mismatch(format!(
                                "key-day column `{name}` is {}; it must be a microsecond timestamp",
                                array.data_type()
                            ))
                        })?,
                )
            }
        };
        Ok(KeyReader { columns, day })
    }

    /// The key of `row`; on a null key value, the column's name.
    pub fn key(&self, row: usize) -> Result<VersionKey, &'a str> {
        let mut digest = Sha256::new();
        for (name, column) in &self.columns {
            if column.is_null(row) {
                return Err(name);
            }
            column.feed(row, &mut digest);
        }
        let day = match self.day {
            Some(times) if times.is_valid(row) => {
                // Timestamps are checked to lie in the years 0001 to 9999: their days fit.
                let day = times.value(row).div_euclid(MICROS_PER_DAY) as i32;
                (day as u32) ^ 0x8000_0000
            }
            _ => 0,
        };
        let mut key = [0u8; VERSION_KEY_BYTES];
        key[..4].copy_from_slice(&day.to_be_bytes());
        key[4..].copy_from_slice(&digest.finalize());
        Ok(VersionKey(key))
    }

    /// The keys of all rows; a null names its column and row.
    pub fn keys(&self, table: &str, rows: usize) -> Result<Vec<VersionKey>, SinkError> {
        (0..rows)
            .map(|row| {
                self.key(row).map_err(|column| SinkError::NullValue {
                    table: table.to_string(),
                    row,
                    column: column.to_string(),
                    why: "it is part of the version key",
                })
            })
            .collect()
    }
}

fn feed_part(digest: &mut Sha256, bytes: &[u8]) {
    // Key values are identifiers and hashes; u32 lengths are far beyond them.
    digest.update((bytes.len() as u32).to_be_bytes());
    digest.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::Field;

    fn spec(key_day_column: Option<&'static str>) -> TableSpec {
        TableSpec {
            name: "t",
            schema: Arc::new(Schema::new(vec![
                Field::new("content_sha256", DataType::Utf8, false),
                Field::new(
                    "created_date_time",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                ),
                Field::new("date", DataType::Date32, false),
            ])),
            partition_column: "date",
            key_columns: &["content_sha256"],
            key_day_column,
            order_columns: &[],
            statistics_columns: &[],
        }
    }

    fn batch(spec: &TableSpec, rows: &[(&str, Option<i64>)]) -> RecordBatch {
        let hashes: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)));
        let times: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .with_timezone("UTC"),
        );
        let dates: ArrayRef = Arc::new(arrow::array::Date32Array::from(vec![0; rows.len()]));
        RecordBatch::try_new(spec.schema.clone(), vec![hashes, times, dates]).unwrap()
    }

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn a_key_is_the_content_day_then_the_sha256_of_the_key_values() {
        let spec = spec(Some("created_date_time"));
        let rows = [("b", Some(3 * DAY + 5)), ("a", Some(-DAY)), ("c", None)];
        let batch = batch(&spec, &rows);
        let keys = KeyReader::new(&spec, &batch).unwrap().keys("t", 3).unwrap();
        let digest = |value: &str| {
            let mut digest = Sha256::new();
            feed_part(&mut digest, value.as_bytes());
            digest.finalize()
        };
        assert_eq!(&keys[0].as_bytes()[..4], &0x8000_0003u32.to_be_bytes());
        assert_eq!(&keys[0].as_bytes()[4..], digest("b").as_slice());
        assert_eq!(&keys[1].as_bytes()[..4], &0x7fff_ffffu32.to_be_bytes());
        assert_eq!(&keys[2].as_bytes()[..4], &[0; 4], "no time: day zero");
        assert!(keys[1] < keys[0], "days sort in order, before 1970 too");
        // The same row read again, in another batch, has the same key.
        let again = KeyReader::new(&spec, &batch).unwrap().key(0).unwrap();
        assert_eq!(again, keys[0]);
        // Without a key-day column, every key starts with day zero.
        let plain = spec_without_day(&batch);
        assert_eq!(&plain.as_bytes()[..4], &[0; 4]);
        assert_eq!(&plain.as_bytes()[4..], &keys[0].as_bytes()[4..]);
    }

    fn spec_without_day(batch: &RecordBatch) -> VersionKey {
        let spec = spec(None);
        KeyReader::new(&spec, batch).unwrap().key(0).unwrap()
    }

    #[test]
    fn a_key_day_column_that_is_not_a_microsecond_timestamp_is_refused() {
        let mut bad = spec(Some("content_sha256"));
        assert!(Table::new(bad.clone()).is_err());
        bad.key_day_column = Some("nowhere");
        assert!(Table::new(bad).is_err());
        assert!(Table::new(spec(Some("created_date_time"))).is_ok());
    }
}
