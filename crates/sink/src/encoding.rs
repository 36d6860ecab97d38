//! Per-file encoding choices and the gathering of a file's rows.
//!
//! Archive tables are sparse (hundreds of leaf columns, most of them null in any one file).
//! Parquet encodes every leaf of every file, so a leaf that holds nothing gets neither
//! dictionary, statistics nor codec. Long text (bodies, raw JSON) gets neither a dictionary
//! (values rarely repeat) nor statistics (nobody prunes on them); version keys, and text
//! whose sampled values are all distinct (ids, hashes), get no dictionary either: it would
//! grow to its size limit and be thrown away.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, new_null_array};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use parquet::basic::{Compression, LogicalType, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnDescriptor, ColumnPath, SchemaDescriptor};

/// Average value length above which a text leaf is "long text".
const LONG_TEXT_BYTES: usize = 256;
/// Average value length above which a text leaf is prose (bodies, raw JSON): it takes most
/// of a file's bytes, so it is compressed harder, in larger pages.
const PROSE_BYTES: usize = 128;
/// zstd level of prose: DuckDB's and Spark's default. On the 200,000 generated messages,
/// level 3 in 4 MiB pages made raw JSON 11% smaller than level 1 in 1 MiB pages (24.8 MB
/// against 27.7; DuckDB's lossless conversion 25.1) and bodies 5% smaller, for no
/// measurable ingest time; on the short columns level 3 did worse than level 1 (the hashes
/// grew 12%).
const PROSE_ZSTD_LEVEL: i32 = 3;
/// Data page size of prose: about a day's raw JSON of a busy tenant in one page, so zstd
/// finds repeats across the whole of it (2 MiB pages gave 25.3 MB, 8 MiB no better than 4).
const PROSE_PAGE_BYTES: usize = 4 << 20;
/// Sampled values of a top-level text column, all distinct, that mark it as unique.
const UNIQUE_SAMPLE_VALUES: usize = 64;

/// Whether the leaf at `path` is one of `columns` (dotted field paths, looking through the
/// `list` / `element` levels of lists); every leaf is when `columns` is empty.
fn keeps_statistics(columns: &[&str], path: &ColumnPath) -> bool {
    if columns.is_empty() {
        return true;
    }
    let parts = path.parts();
    let mut fields = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        if i > 0 && parts[i] == "list" && parts.get(i + 1).is_some_and(|p| p == "element") {
            i += 2;
            continue;
        }
        fields.push(parts[i].as_str());
        i += 1;
    }
    let dotted = fields.join(".");
    columns.contains(&dotted.as_str())
}

/// Whether the top-level text column `name` of `sample` holds enough values, all distinct.
fn looks_unique(sample: &RecordBatch, name: &str) -> bool {
    let Some(column) = sample.column_by_name(name) else {
        return false;
    };
    let Some(text) = column.as_string_opt::<i32>() else {
        return false;
    };
    let values = text.len() - text.null_count();
    if values < UNIQUE_SAMPLE_VALUES {
        return false;
    }
    // Most columns that repeat do so early: stop at the first repeat.
    let mut seen = std::collections::HashSet::with_capacity(values);
    text.iter().flatten().all(|value| seen.insert(value))
}

/// Times rarely repeat, and close ones share their high bytes, which zstd finds in plain
/// values: on the 200,000 generated messages a dictionary made each time column 40% larger
/// than plain values (created 1.56 MB against 1.12, DuckDB's). Packed deltas would be
/// smaller still, but they are a Parquet 2.0 encoding that older readers refuse.
fn is_timestamp(leaf: &ColumnDescriptor) -> bool {
    matches!(leaf.logical_type_ref(), Some(LogicalType::Timestamp { .. }))
}

/// What one Parquet leaf column of a batch holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct LeafUse {
    values: usize,
    bytes: usize,
}

/// The leaves of `array` in Parquet column order (structs depth first, lists through their
/// element), each with its non-null values and their bytes.
fn leaf_uses(array: &dyn Array, out: &mut Vec<LeafUse>) {
    match array.data_type() {
        DataType::Struct(_) => {
            for child in array.as_struct().columns() {
                leaf_uses(child.as_ref(), out);
            }
        }
        DataType::List(_) => leaf_uses(array.as_list::<i32>().values().as_ref(), out),
        DataType::LargeList(_) => leaf_uses(array.as_list::<i64>().values().as_ref(), out),
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            let offsets = a.value_offsets();
            out.push(LeafUse {
                values: a.len() - a.null_count(),
                bytes: (offsets[a.len()] - offsets[0]) as usize,
            });
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            let offsets = a.value_offsets();
            out.push(LeafUse {
                values: a.len() - a.null_count(),
                bytes: (offsets[a.len()] - offsets[0]) as usize,
            });
        }
        _ => {
            let values = array.len() - array.null_count();
            out.push(LeafUse {
                values,
                bytes: values * 8,
            });
        }
    }
}

/// `base` adjusted to the leaves of one file, judged by `sample` (its first rows): empty
/// leaves bare (no dictionary, no statistics, no codec); long text and key columns without
/// dictionary. A leaf without a codec spares the encoder the zstd compressor and
/// decompressor that parquet makes for every compressed leaf of every file: most of a
/// sparse table's leaves are empty, so those contexts were most of an encoder's memory and
/// a tenth of an ingest's time (200,000 messages: 3.3-3.5 s and 140 MiB peak instead of
/// 3.9 s and 170 MiB). A leaf empty in the sample but not in the rest of the file stores
/// those later values uncompressed; in the same ingest that made the table 1% larger.
/// Depends only on the sample, so the same rows always give the same bytes.
pub(crate) fn file_properties(
    base: &WriterProperties,
    descr: &SchemaDescriptor,
    sample: &RecordBatch,
    key_columns: &[&str],
    statistics_columns: &[&str],
) -> WriterProperties {
    let mut uses = Vec::with_capacity(descr.num_columns());
    for column in sample.columns() {
        leaf_uses(column.as_ref(), &mut uses);
    }
    if uses.len() != descr.num_columns() {
        // A type this walk does not know: keep the defaults for every leaf.
        let mut builder = base.clone().into_builder();
        for key in key_columns {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*key), false);
        }
        return builder.build();
    }
    // Empty leaves are the many: make bare the default and name the leaves with values.
    let mut builder = base
        .clone()
        .into_builder()
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_compression(Compression::UNCOMPRESSED);
    for (leaf, used) in descr.columns().iter().zip(&uses) {
        if used.values == 0 {
            continue;
        }
        let path = leaf.path();
        let average = used.bytes / used.values;
        let long_text = average > LONG_TEXT_BYTES;
        let prose = average > PROSE_BYTES && matches!(base.compression(path), Compression::ZSTD(_));
        if prose {
            let level = ZstdLevel::try_new(PROSE_ZSTD_LEVEL).expect("a valid zstd level");
            builder = builder
                .set_column_compression(path.clone(), Compression::ZSTD(level))
                .set_column_data_page_size_limit(path.clone(), PROSE_PAGE_BYTES);
        } else {
            builder = builder.set_column_compression(path.clone(), base.compression(path));
        }
        let top = path.parts().len() == 1;
        // Long text has no dictionary anyway: spare hashing its sampled values.
        let key = top
            && !long_text
            && (key_columns.contains(&path.parts()[0].as_str())
                || looks_unique(sample, &path.parts()[0]));
        builder = builder
            .set_column_dictionary_enabled(
                path.clone(),
                base.dictionary_enabled(path) && !long_text && !key && !is_timestamp(leaf),
            )
            .set_column_statistics_enabled(
                path.clone(),
                if long_text || !keeps_statistics(statistics_columns, path) {
                    EnabledStatistics::None
                } else {
                    base.statistics_enabled(path)
                },
            );
    }
    builder.build()
}

/// Gathers rows `order` ((batch, row) positions) of `batches` into one batch. Columns that
/// are null in every buffered batch become one null array without looking at the rows.
pub(crate) struct Gatherer<'a> {
    schema: SchemaRef,
    /// Per column: the column of every batch, or `None` when it is null in all of them.
    columns: Vec<Option<Vec<&'a dyn Array>>>,
    /// Null arrays already made, by type and length.
    nulls: HashMap<(usize, usize), ArrayRef>,
}

impl<'a> Gatherer<'a> {
    pub(crate) fn new(schema: SchemaRef, batches: &'a [RecordBatch]) -> Self {
        let columns = (0..schema.fields().len())
            .map(|c| {
                let all_null = batches.iter().all(|b| {
                    let column = b.column(c);
                    column.null_count() == column.len()
                });
                (!all_null).then(|| batches.iter().map(|b| b.column(c).as_ref()).collect())
            })
            .collect();
        Gatherer {
            schema,
            columns,
            nulls: HashMap::new(),
        }
    }

    pub(crate) fn gather(&mut self, order: &[(usize, usize)]) -> Result<RecordBatch, ArrowError> {
        let mut arrays = Vec::with_capacity(self.columns.len());
        for (c, sources) in self.columns.iter().enumerate() {
            let array = match sources {
                Some(sources) => interleave(sources, order)?,
                None => {
                    let data_type = self.schema.field(c).data_type();
                    Arc::clone(
                        self.nulls
                            .entry((c, order.len()))
                            .or_insert_with(|| new_null_array(data_type, order.len())),
                    )
                }
            };
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::clone(&self.schema), arrays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, ListArray, StringArray, StructArray};
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::{Field, Fields, Schema};
    use parquet::arrow::ArrowSchemaConverter;
    use parquet::basic::{Compression, ZstdLevel};

    fn schema() -> SchemaRef {
        let element = Fields::from(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("text", DataType::Utf8, true),
            Field::new(
                "items",
                DataType::List(Arc::new(Field::new(
                    "element",
                    DataType::Struct(element),
                    true,
                ))),
                true,
            ),
            Field::new("never", DataType::Int64, true),
        ]))
    }

    /// The Parquet leaves of [`schema`].
    fn descr() -> SchemaDescriptor {
        ArrowSchemaConverter::new()
            .with_coerce_types(true)
            .convert(&schema())
            .unwrap()
    }

    /// A leaf's path from its dotted name.
    fn path(dotted: &str) -> ColumnPath {
        ColumnPath::from(dotted.split('.').map(String::from).collect::<Vec<_>>())
    }

    fn batch(keys: &[&str], long: bool) -> RecordBatch {
        let schema = schema();
        let n = keys.len();
        let text: Vec<Option<String>> = (0..n)
            .map(|i| {
                Some(if long {
                    "x".repeat(400 + i)
                } else {
                    format!("t{i}")
                })
            })
            .collect();
        let element_fields = match schema.field(2).data_type() {
            DataType::List(f) => match f.data_type() {
                DataType::Struct(fields) => fields.clone(),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        };
        // one element per row; its `n` is never set
        let elements = StructArray::new(
            element_fields,
            vec![
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|k| format!("e{k}")),
                )),
                Arc::new(Int64Array::new_null(n)),
            ],
            None,
        );
        let items = ListArray::new(
            Arc::new(Field::new("element", elements.data_type().clone(), true)),
            OffsetBuffer::from_lengths(std::iter::repeat_n(1, n)),
            Arc::new(elements),
            None,
        );
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(keys.iter().copied())),
                Arc::new(StringArray::from(text)),
                Arc::new(items),
                Arc::new(Int64Array::new_null(n)),
            ],
        )
        .unwrap()
    }

    #[test]
    fn empty_leaves_are_bare_and_long_text_and_keys_have_no_dictionary() {
        // Bare: no dictionary, no statistics, and no codec.
        let base = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_coerce_types(true)
            .build();
        let descr = descr();
        for long in [false, true] {
            let props = file_properties(&base, &descr, &batch(&["a", "b"], long), &["key"], &[]);
            assert!(!props.dictionary_enabled(&path("key")));
            assert_eq!(props.compression(&path("key")), Compression::SNAPPY);
            for empty in ["never", "items.list.element.n"] {
                assert_eq!(props.compression(&path(empty)), Compression::UNCOMPRESSED);
                assert!(!props.dictionary_enabled(&path(empty)));
                assert_eq!(
                    props.statistics_enabled(&path(empty)),
                    EnabledStatistics::None
                );
            }
            let used = path("items.list.element.id");
            assert_eq!(props.compression(&used), Compression::SNAPPY);
            assert!(props.dictionary_enabled(&used));
            let text = path("text");
            assert_eq!(props.dictionary_enabled(&text), !long);
            let stats = if long {
                EnabledStatistics::None
            } else {
                EnabledStatistics::Page
            };
            assert_eq!(props.statistics_enabled(&text), stats);
        }
    }

    #[test]
    fn prose_is_compressed_harder_in_larger_pages() {
        let level = |n| Compression::ZSTD(ZstdLevel::try_new(n).unwrap());
        let base = WriterProperties::builder()
            .set_compression(level(1))
            .build();
        let descr = descr();
        for long in [false, true] {
            let props = file_properties(&base, &descr, &batch(&["a", "b"], long), &["key"], &[]);
            let (text, key) = (path("text"), path("key"));
            let (expected, page) = if long {
                (level(PROSE_ZSTD_LEVEL), PROSE_PAGE_BYTES)
            } else {
                (level(1), base.data_page_size_limit())
            };
            assert_eq!(props.compression(&text), expected);
            assert_eq!(props.column_data_page_size_limit(&text), page);
            assert_eq!(props.compression(&key), level(1));
            assert_eq!(
                props.column_data_page_size_limit(&key),
                base.data_page_size_limit()
            );
        }
    }

    #[test]
    fn times_have_no_dictionary() {
        use arrow::array::TimestampMicrosecondArray;
        use arrow::datatypes::TimeUnit;
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("at", utc, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let descr = ArrowSchemaConverter::new().convert(&schema).unwrap();
        let times = TimestampMicrosecondArray::from(vec![1, 5, 9]).with_timezone("UTC");
        let sample = RecordBatch::try_new(
            schema,
            vec![Arc::new(times), Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let zstd = Compression::ZSTD(ZstdLevel::default());
        let base = WriterProperties::builder().set_compression(zstd).build();
        let props = file_properties(&base, &descr, &sample, &[], &[]);
        let (at, n) = (path("at"), path("n"));
        assert!(!props.dictionary_enabled(&at));
        assert_eq!(props.encoding(&at), None, "plain, Parquet 1.0");
        assert_eq!(props.compression(&at), zstd);
        assert!(
            props.dictionary_enabled(&n),
            "other numbers keep the defaults"
        );
    }

    #[test]
    fn text_whose_sampled_values_are_all_distinct_has_no_dictionary() {
        let base = WriterProperties::builder().build();
        let descr = descr();
        let keys: Vec<String> = (0..UNIQUE_SAMPLE_VALUES).map(|i| i.to_string()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let props = file_properties(&base, &descr, &batch(&keys, false), &[], &[]);
        assert!(!props.dictionary_enabled(&ColumnPath::from("key")));
        let few = file_properties(&base, &descr, &batch(&keys[..2], false), &[], &[]);
        assert!(few.dictionary_enabled(&ColumnPath::from("key")));
    }

    #[test]
    fn only_the_named_leaves_keep_statistics() {
        let base = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .build();
        let descr = descr();
        let props = file_properties(
            &base,
            &descr,
            &batch(&["a", "b"], false),
            &[],
            &["key", "items.id"],
        );
        assert_eq!(
            props.statistics_enabled(&path("key")),
            EnabledStatistics::Chunk
        );
        assert_eq!(
            props.statistics_enabled(&path("items.list.element.id")),
            EnabledStatistics::Chunk
        );
        assert_eq!(
            props.statistics_enabled(&path("text")),
            EnabledStatistics::None
        );
    }

    #[test]
    fn gathering_takes_rows_in_order_and_shares_nothing_it_should_not() {
        let batches = vec![batch(&["a", "b", "c"], false), batch(&["d", "e"], false)];
        let mut gatherer = Gatherer::new(schema(), &batches);
        let out = gatherer.gather(&[(1, 1), (0, 0), (1, 0)]).unwrap();
        let keys = out.column(0).as_string::<i32>();
        assert_eq!(
            (0..3).map(|i| keys.value(i)).collect::<Vec<_>>(),
            ["e", "a", "d"]
        );
        let items = out.column(2).as_list::<i32>();
        let ids = items
            .values()
            .as_struct()
            .column(0)
            .as_string::<i32>()
            .clone();
        assert_eq!(ids.value(0), "ee");
        assert_eq!(out.column(3).null_count(), 3);
        assert_eq!(out.column(3).len(), 3);
    }
}
