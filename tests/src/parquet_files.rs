//! Reading an archive back the plain way: every Parquet file under a table's folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every `*.parquet` file under `<archive>/<table>/`, sorted.
pub fn table_files(archive: &Path, table: &str) -> Vec<PathBuf> {
    crate::files_under(&archive.join(table))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

/// Every Parquet file of the archive (all tables), relative paths, sorted.
pub fn all_files(archive: &Path) -> Vec<String> {
    let mut files: Vec<String> = table_files(archive, "")
        .into_iter()
        .map(|p| p.strip_prefix(archive).unwrap().display().to_string())
        .collect();
    files.sort();
    files
}

/// The string (or boolean, shown as "true"/"false") columns `columns` of every row of a
/// table, one map per row.
pub fn rows(
    archive: &Path,
    table: &str,
    columns: &[&str],
) -> Vec<BTreeMap<String, Option<String>>> {
    let mut rows = Vec::new();
    for file in table_files(archive, table) {
        let reader = std::fs::File::open(&file).expect("the file opens");
        let builder = ParquetRecordBatchReaderBuilder::try_new(reader).expect("a Parquet file");
        let schema = builder.parquet_schema();
        let roots: Vec<usize> = columns
            .iter()
            .map(|name| {
                builder
                    .schema()
                    .index_of(name)
                    .unwrap_or_else(|_| panic!("{} has no column {name}", file.display()))
            })
            .collect();
        let mask = ProjectionMask::roots(schema, roots);
        for batch in builder.with_projection(mask).build().expect("a reader") {
            let batch = batch.expect("a batch");
            for row in 0..batch.num_rows() {
                let mut values = BTreeMap::new();
                for name in columns {
                    let column = batch.column_by_name(name).expect("projected");
                    let value = if column.is_null(row) {
                        None
                    } else if let Some(strings) = column.as_string_opt::<i32>() {
                        Some(strings.value(row).to_string())
                    } else if let Some(bools) = column.as_boolean_opt() {
                        Some(bools.value(row).to_string())
                    } else {
                        panic!("column {name} is {}", column.data_type())
                    };
                    values.insert(name.to_string(), value);
                }
                rows.push(values);
            }
        }
    }
    rows
}
