//! What a caller tells the sink about a table, and what the sink derives from it once:
//! column positions, the schema of the files, and how to read a row's version key and
//! partition.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BinaryArray, BinaryViewArray, Int32Array, Int64Array, LargeBinaryArray,
    LargeStringArray, RecordBatch, StringArray, StringViewArray,
};
use arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type, Schema, SchemaRef};

use archive::TableSpec;
use archive::layout::partition_value;

use crate::error::SinkError;

/// A validated [`TableSpec`] with its column positions resolved.
#[derive(Debug)]
pub(crate) struct Table {
    pub spec: TableSpec,
    pub partition_index: usize,
    pub key_indices: Vec<usize>,
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
        let mut key_indices = Vec::with_capacity(spec.key_columns.len());
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
            key_indices.push(index);
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
            key_indices,
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
                partition_value(days).ok_or_else(|| SinkError::PartitionOutOfRange {
                    table: self.name().to_string(),
                    row,
                    days,
                })?;
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

/// Reads the version key of each row: the key columns' values, each as a big-endian
/// `u32` length and the bytes (UTF-8 for strings, decimal digits for integers).
///
/// This encoding is what the version index stores and what file names are hashed
/// from, so it must not change.
pub(crate) struct KeyReader<'a> {
    columns: Vec<(&'a str, KeyColumn<'a>)>,
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

    fn push(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            KeyColumn::Utf8(a) => push_part(out, a.value(row).as_bytes()),
            KeyColumn::LargeUtf8(a) => push_part(out, a.value(row).as_bytes()),
            KeyColumn::Utf8View(a) => push_part(out, a.value(row).as_bytes()),
            KeyColumn::Binary(a) => push_part(out, a.value(row)),
            KeyColumn::LargeBinary(a) => push_part(out, a.value(row)),
            KeyColumn::BinaryView(a) => push_part(out, a.value(row)),
            KeyColumn::Int32(a) => push_part(out, a.value(row).to_string().as_bytes()),
            KeyColumn::Int64(a) => push_part(out, a.value(row).to_string().as_bytes()),
        }
    }
}

impl<'a> KeyReader<'a> {
    /// Key columns `names` of `batch`, at `indices`; an unsupported type is an error
    /// naming the table and column.
    pub fn new(
        table: &str,
        batch: &'a RecordBatch,
        indices: &[usize],
        names: &'a [&'a str],
    ) -> Result<Self, SinkError> {
        let columns = indices
            .iter()
            .zip(names)
            .map(|(&i, &name)| {
                let array = batch.column(i).as_ref();
                KeyColumn::new(array)
                    .map(|column| (name, column))
                    .ok_or_else(|| SinkError::SchemaMismatch {
                        table: table.to_string(),
                        detail: format!(
                            "key column `{name}` is {}; keys must be strings, binary or 32/64-bit integers",
                            array.data_type()
                        ),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(KeyReader { columns })
    }

    /// Appends the key of `row` to `out`; on a null value returns the column's name.
    pub fn write_key(&self, row: usize, out: &mut Vec<u8>) -> Result<(), &'a str> {
        for (name, column) in &self.columns {
            if column.is_null(row) {
                return Err(name);
            }
            column.push(row, out);
        }
        Ok(())
    }

    /// The keys of all rows; a null names its column and row.
    pub fn keys(&self, table: &str, rows: usize) -> Result<Vec<Box<[u8]>>, SinkError> {
        let mut buffer = Vec::with_capacity(80);
        (0..rows)
            .map(|row| {
                buffer.clear();
                self.write_key(row, &mut buffer)
                    .map_err(|column| SinkError::NullValue {
                        table: table.to_string(),
                        row,
                        column: column.to_string(),
                        why: "it is part of the version key",
                    })?;
                Ok(buffer.as_slice().into())
            })
            .collect()
    }
}

fn push_part(out: &mut Vec<u8>, bytes: &[u8]) {
    // Key values are identifiers and hashes; u32 lengths are far beyond them.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}
