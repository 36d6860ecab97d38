//! Typed, by-name access to the columns of an archive batch. A column a file does not
//! have reads as null (older files may lack newer columns); a column of the wrong type
//! is an error naming it.

use arrow::array::{
    Array, AsArray, BooleanArray, Int64Array, LargeStringArray, StringArray, StringViewArray,
    StructArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;

/// A string column (any of Arrow's string layouts), or none.
pub(crate) enum Strings<'a> {
    Missing,
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    pub fn of(batch: &'a RecordBatch, name: &str) -> Result<Self, String> {
        let Some(column) = batch.column_by_name(name) else {
            return Ok(Strings::Missing);
        };
        Ok(match column.data_type() {
            DataType::Utf8 => Strings::Utf8(column.as_string::<i32>()),
            DataType::LargeUtf8 => Strings::Large(column.as_string::<i64>()),
            DataType::Utf8View => Strings::View(column.as_string_view()),
            other => return Err(format!("column `{name}` is {other}, not a string")),
        })
    }

    /// The column, which the table promises is there.
    pub fn required(batch: &'a RecordBatch, name: &str) -> Result<Self, String> {
        match Strings::of(batch, name)? {
            Strings::Missing => Err(format!("the file has no `{name}` column")),
            found => Ok(found),
        }
    }

    pub fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Strings::Missing => None,
            Strings::Utf8(a) => (!a.is_null(row)).then(|| a.value(row)),
            Strings::Large(a) => (!a.is_null(row)).then(|| a.value(row)),
            Strings::View(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }

    pub fn string(&self, row: usize) -> Option<String> {
        self.get(row).map(str::to_string)
    }
}

/// A string column the table promises is there and filled in every row.
pub(crate) struct FilledStrings<'a> {
    name: &'a str,
    values: Strings<'a>,
}

impl<'a> FilledStrings<'a> {
    pub fn of(batch: &'a RecordBatch, name: &'a str) -> Result<Self, String> {
        Ok(FilledStrings {
            name,
            values: Strings::required(batch, name)?,
        })
    }

    /// The value at `row`; a null is an error naming the row's `position` in its file.
    pub fn get(&self, row: usize, position: u64) -> Result<&'a str, String> {
        self.values
            .get(row)
            .ok_or_else(|| format!("row {position}: {} is null", self.name))
    }
}

/// A string field nested in struct columns (`from.user.id`): null where it or any struct
/// above it is null; none when the file lacks the column.
pub(crate) struct NestedStrings<'a> {
    parents: Vec<&'a StructArray>,
    leaf: Strings<'a>,
}

impl<'a> NestedStrings<'a> {
    pub fn of(batch: &'a RecordBatch, path: &str) -> Result<Self, String> {
        let mut parts = path.split('.');
        let top = parts.next().unwrap_or_default();
        let Some(mut column) = batch.column_by_name(top) else {
            return Ok(NestedStrings {
                parents: Vec::new(),
                leaf: Strings::Missing,
            });
        };
        let mut parents = Vec::new();
        for part in parts {
            let Some(parent) = column.as_struct_opt() else {
                return Err(format!("`{path}`: {} is not a struct", column.data_type()));
            };
            parents.push(parent);
            match parent.column_by_name(part) {
                Some(child) => column = child,
                None => {
                    return Ok(NestedStrings {
                        parents: Vec::new(),
                        leaf: Strings::Missing,
                    });
                }
            }
        }
        let leaf = match column.data_type() {
            DataType::Utf8 => Strings::Utf8(column.as_string::<i32>()),
            DataType::LargeUtf8 => Strings::Large(column.as_string::<i64>()),
            DataType::Utf8View => Strings::View(column.as_string_view()),
            other => return Err(format!("`{path}` is {other}, not a string")),
        };
        Ok(NestedStrings { parents, leaf })
    }

    pub fn string(&self, row: usize) -> Option<String> {
        if self.parents.iter().any(|p| p.is_null(row)) {
            return None;
        }
        self.leaf.string(row)
    }
}

/// A `TIMESTAMP(MICROSECOND, UTC)` column as microseconds since the epoch, or none.
pub(crate) struct Times<'a>(Option<&'a TimestampMicrosecondArray>);

impl<'a> Times<'a> {
    pub fn of(batch: &'a RecordBatch, name: &str) -> Result<Self, String> {
        let Some(column) = batch.column_by_name(name) else {
            return Ok(Times(None));
        };
        match column.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(Times(Some(
                column.as_primitive::<TimestampMicrosecondType>(),
            ))),
            other => Err(format!(
                "column `{name}` is {other}, not TIMESTAMP(MICROSECOND, UTC)"
            )),
        }
    }

    pub fn get(&self, row: usize) -> Option<i64> {
        self.0.and_then(|a| (!a.is_null(row)).then(|| a.value(row)))
    }
}

/// An `int64` column, or none.
pub(crate) struct Ints<'a>(Option<&'a Int64Array>);

impl<'a> Ints<'a> {
    pub fn of(batch: &'a RecordBatch, name: &str) -> Result<Self, String> {
        let Some(column) = batch.column_by_name(name) else {
            return Ok(Ints(None));
        };
        match column.data_type() {
            DataType::Int64 => Ok(Ints(Some(column.as_primitive::<Int64Type>()))),
            other => Err(format!("column `{name}` is {other}, not int64")),
        }
    }

    pub fn get(&self, row: usize) -> Option<i64> {
        self.0.and_then(|a| (!a.is_null(row)).then(|| a.value(row)))
    }
}

/// A `bool` column, or none.
pub(crate) struct Bools<'a>(Option<&'a BooleanArray>);

impl<'a> Bools<'a> {
    pub fn of(batch: &'a RecordBatch, name: &str) -> Result<Self, String> {
        let Some(column) = batch.column_by_name(name) else {
            return Ok(Bools(None));
        };
        match column.data_type() {
            DataType::Boolean => Ok(Bools(Some(column.as_boolean()))),
            other => Err(format!("column `{name}` is {other}, not bool")),
        }
    }

    pub fn get(&self, row: usize) -> Option<bool> {
        self.0.and_then(|a| (!a.is_null(row)).then(|| a.value(row)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Array, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn missing_columns_read_as_null_and_wrong_types_are_named() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("a"), None])),
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(5), None]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let s = Strings::of(&batch, "s").unwrap();
        assert_eq!((s.get(0), s.get(1)), (Some("a"), None));
        assert!(Strings::of(&batch, "absent").unwrap().get(0).is_none());
        assert!(Strings::required(&batch, "absent").is_err());
        let err = Strings::of(&batch, "n").err().unwrap();
        assert!(err.contains("`n`") && err.contains("Int32"), "{err}");
        let t = Times::of(&batch, "t").unwrap();
        assert_eq!((t.get(0), t.get(1)), (Some(5), None));
        assert!(Times::of(&batch, "s").is_err());
    }
}
