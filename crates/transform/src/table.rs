//! What every table builder shares: the column layout of a table, and the per-row work
//! (read the item, check its id, hash it, fill the typed columns, record what did not fit).

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Builder, ListArray, StringArray, StringBuilder, StructArray,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field as ArrowField, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::RowContext;
use crate::canonical::CanonicalWriter;
use crate::columns::{Issues, NullArrays, StructCol, data_type, tok_name, utc_micros};
use crate::csdl::{Field, Kind};
use crate::json::{Tape, Tok};
use crate::time;
use sha2::{Digest, Sha256};

/// Why an item could not become a row: only text that is not a JSON object. Any object
/// becomes a row, whatever it holds. The caller decides whether to stop or go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("item is not valid JSON: {error} (item starts {excerpt:?})")]
    NotJson {
        error: crate::json::SyntaxError,
        excerpt: String,
    },
    #[error("item is JSON {found}, not an object (item starts {excerpt:?})")]
    NotObject {
        found: &'static str,
        excerpt: String,
    },
}

fn excerpt(raw: &str) -> String {
    let mut cut = raw.len().min(80);
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    raw[..cut].to_string()
}

/// One column of a table, for the schema files.
#[derive(Debug, Clone)]
pub(crate) struct ColumnDoc {
    pub name: String,
    /// The Graph property path it comes from, or empty for a column the archiver adds.
    pub path: String,
    pub data_type: DataType,
    pub nullable: bool,
    pub meaning: String,
}

/// A column the table builder adds beside the Graph properties.
pub(crate) struct Extra {
    pub name: &'static str,
    pub data_type: DataType,
    pub nullable: bool,
    pub meaning: &'static str,
}

/// Final column order of a table and where each built array goes.
pub(crate) struct Layout {
    pub schema: SchemaRef,
    pub docs: Vec<ColumnDoc>,
    /// Schema position of each Graph column, in the order the builder tree finishes them.
    graph_positions: Vec<usize>,
    /// Schema position of each extra column, in the order given.
    extra_positions: Vec<usize>,
}

/// Renames of flattened Graph columns (DESIGN.md: `team_id` and `channel_id` come from
/// `channelIdentity`).
const RENAMES: &[(&str, &str)] = &[
    ("channel_identity_team_id", "team_id"),
    ("channel_identity_channel_id", "channel_id"),
];

fn flatten_docs(fields: &[Field], name_prefix: &str, path_prefix: &str, out: &mut Vec<ColumnDoc>) {
    for f in fields {
        let name = format!("{name_prefix}{}", f.name);
        let path = format!("{path_prefix}{}", f.json);
        match &f.kind {
            Kind::Struct(children) if f.flatten => {
                flatten_docs(children, &format!("{name}_"), &format!("{path}."), out)
            }
            _ => {
                let name = RENAMES
                    .iter()
                    .find(|(from, _)| *from == name)
                    .map_or(name, |(_, to)| to.to_string());
                let meaning = if f.json == "@odata.type" {
                    format!(
                        "`@odata.type` of `{}`: which derived type the value is",
                        path_prefix.trim_end_matches('.')
                    )
                } else {
                    format!("Graph `{path}` ({})", f.csdl_type)
                };
                // Any property may be missing, `id` included (the row is kept all the same).
                out.push(ColumnDoc {
                    name,
                    path,
                    data_type: data_type(f),
                    nullable: true,
                    meaning,
                });
            }
        }
    }
}

impl Layout {
    /// `front` names Graph columns and extras that come first, in that order; the other
    /// Graph columns follow in type order, then the `tail` extras (ending with `date`).
    pub(crate) fn new(fields: &[Field], front: &[&str], extras: &[Extra], tail: &[&str]) -> Layout {
        let mut graph = Vec::new();
        flatten_docs(fields, "", "", &mut graph);
        let extra_docs: Vec<ColumnDoc> = extras
            .iter()
            .map(|e| ColumnDoc {
                name: e.name.to_string(),
                path: String::new(),
                data_type: e.data_type.clone(),
                nullable: e.nullable,
                meaning: e.meaning.to_string(),
            })
            .collect();
        let mut order: Vec<ColumnDoc> = Vec::new();
        let take = |name: &str| -> ColumnDoc {
            graph
                .iter()
                .chain(extra_docs.iter())
                .find(|d| d.name == name)
                .unwrap_or_else(|| panic!("layout names unknown column {name}"))
                .clone()
        };
        for name in front {
            order.push(take(name));
        }
        for d in &graph {
            if !front.contains(&d.name.as_str()) {
                order.push(d.clone());
            }
        }
        for e in &extra_docs {
            if !front.contains(&e.name.as_str()) && !tail.contains(&e.name.as_str()) {
                order.push(e.clone());
            }
        }
        for name in tail {
            order.push(take(name));
        }
        let position = |name: &str| {
            order
                .iter()
                .position(|d| d.name == name)
                .expect("every column is placed")
        };
        let graph_positions = graph.iter().map(|d| position(&d.name)).collect();
        let extra_positions = extras.iter().map(|e| position(e.name)).collect();
        let schema = Arc::new(Schema::new(
            order
                .iter()
                .map(|d| ArrowField::new(d.name.clone(), d.data_type.clone(), d.nullable))
                .collect::<Vec<_>>(),
        ));
        Layout {
            schema,
            docs: order,
            graph_positions,
            extra_positions,
        }
    }

    /// Assembles a batch from the Graph columns (builder order) and the extras (given order).
    pub(crate) fn batch(&self, graph: Vec<ArrayRef>, extras: Vec<ArrayRef>) -> RecordBatch {
        let mut slots: Vec<Option<ArrayRef>> = vec![None; self.docs.len()];
        for (a, &p) in graph.into_iter().zip(&self.graph_positions) {
            slots[p] = Some(a);
        }
        for (a, &p) in extras.into_iter().zip(&self.extra_positions) {
            slots[p] = Some(a);
        }
        let columns: Vec<ArrayRef> = slots
            .into_iter()
            .map(|s| s.expect("every column is built"))
            .collect();
        RecordBatch::try_new(self.schema.clone(), columns)
            .expect("columns match the schema they were built for")
    }
}

pub(crate) fn parse_errors_type() -> DataType {
    DataType::List(Arc::new(ArrowField::new(
        "element",
        DataType::Struct(parse_error_fields()),
        true,
    )))
}

fn parse_error_fields() -> Fields {
    Fields::from(vec![
        ArrowField::new("field", DataType::Utf8, false),
        ArrowField::new("value", DataType::Utf8, false),
        ArrowField::new("message", DataType::Utf8, false),
    ])
}

pub(crate) const RAW_JSON: Extra = Extra {
    name: "raw_json",
    data_type: DataType::Utf8,
    nullable: false,
    meaning: "The item exactly as Graph sent it, byte for byte",
};
pub(crate) const RAW_SHA256: Extra = Extra {
    name: "raw_sha256",
    data_type: DataType::Utf8,
    nullable: false,
    meaning: "Lowercase hex SHA-256 of raw_json's exact bytes: `sha256(raw_json) = raw_sha256` checks a row",
};
pub(crate) const CONTENT_SHA256: Extra = Extra {
    name: "content_sha256",
    data_type: DataType::Utf8,
    nullable: false,
    meaning: "Lowercase hex SHA-256 of the item's RFC 8785 (JCS) canonical JSON: the version identity, the same whatever the whitespace, key order or escaping Graph sent",
};
pub(crate) const SOURCE: Extra = Extra {
    name: "source",
    data_type: DataType::Utf8,
    nullable: false,
    meaning: "Where the item came from (the Graph source or file the caller names)",
};
pub(crate) const RUN_ID: Extra = Extra {
    name: "run_id",
    data_type: DataType::Utf8,
    nullable: false,
    meaning: "The archiver run that fetched the item",
};
pub(crate) fn fetched_at() -> Extra {
    Extra {
        name: "fetched_at",
        data_type: utc_micros(),
        nullable: false,
        meaning: "When the archiver fetched the item (UTC)",
    }
}
pub(crate) fn parse_errors() -> Extra {
    Extra {
        name: "parse_errors",
        data_type: parse_errors_type(),
        nullable: false,
        meaning: "Values that did not fit their typed column (the column is null; the value stays in raw_json): Graph path, value as sent, reason",
    }
}
pub(crate) const DATE: Extra = Extra {
    name: "date",
    data_type: DataType::Date32,
    nullable: false,
    meaning: "Partition: UTC day of the row (a hive partition folder, not a column inside the files)",
};

/// Builds the `parse_errors` column.
#[derive(Default)]
pub(crate) struct ErrorsCol {
    field: StringBuilder,
    value: StringBuilder,
    message: StringBuilder,
    offsets: Vec<i32>,
}

impl ErrorsCol {
    pub(crate) fn push_row(&mut self, issues: &Issues) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        for i in &issues.list {
            self.field.append_value(&i.field);
            self.value.append_value(&i.value);
            self.message.append_value(&i.message);
        }
        let last = *self.offsets.last().expect("offsets start with 0");
        self.offsets.push(last + issues.list.len() as i32);
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        let offsets = std::mem::take(&mut self.offsets);
        let offsets = if offsets.is_empty() { vec![0] } else { offsets };
        let values = StructArray::new(
            parse_error_fields(),
            vec![
                Arc::new(self.field.finish()) as ArrayRef,
                Arc::new(self.value.finish()),
                Arc::new(self.message.finish()),
            ],
            None,
        );
        let element = Arc::new(ArrowField::new(
            "element",
            DataType::Struct(parse_error_fields()),
            true,
        ));
        Arc::new(ListArray::new(
            element,
            OffsetBuffer::new(offsets.into()),
            Arc::new(values),
            None,
        ))
    }
}

/// The per-row machinery shared by the table builders.
pub(crate) struct Engine {
    pub tape: Tape,
    canon: CanonicalWriter,
    pub root: StructCol,
    /// The root column of the Graph `id`.
    id_child: Option<usize>,
    pub issues: Issues,
    pub rows: usize,
    raw_bytes: usize,
    raw_json: StringBuilder,
    raw_sha256: StringBuilder,
    content_sha256: StringBuilder,
    source: StringBuilder,
    fetched_at: TimestampMicrosecondBuilder,
    run_id: StringBuilder,
    errors: ErrorsCol,
    date: Date32Builder,
}

/// What the engine learnt about the row it just filled.
pub(crate) struct Row {
    pub sha_hex: [u8; 64],
}

impl Row {
    pub(crate) fn sha(&self) -> &str {
        std::str::from_utf8(&self.sha_hex).expect("hex is ASCII")
    }
}

impl Engine {
    pub(crate) fn new(fields: &[Field]) -> Engine {
        let root = StructCol::new(fields, true);
        Engine {
            tape: Tape::default(),
            canon: CanonicalWriter::default(),
            id_child: root.child_index("id"),
            root,
            issues: Issues::default(),
            rows: 0,
            raw_bytes: 0,
            raw_json: StringBuilder::new(),
            raw_sha256: StringBuilder::new(),
            content_sha256: StringBuilder::new(),
            source: StringBuilder::new(),
            fetched_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            run_id: StringBuilder::new(),
            errors: ErrorsCol::default(),
            date: Date32Builder::new(),
        }
    }

    /// Reads the item into the tape; it must be a JSON object.
    pub(crate) fn read(&mut self, raw: &str) -> Result<(), ItemError> {
        self.tape.parse(raw).map_err(|error| ItemError::NotJson {
            error,
            excerpt: excerpt(raw),
        })?;
        self.check_object(raw, 0)
    }

    fn check_object(&self, raw: &str, idx: usize) -> Result<(), ItemError> {
        let tok = self.tape.nodes[idx].tok;
        if tok != Tok::Object {
            return Err(ItemError::NotObject {
                found: tok_name(tok),
                excerpt: excerpt(self.tape.raw(raw, idx)),
            });
        }
        Ok(())
    }

    /// The id of the object at `idx`: a non-empty string, or a number (kept as written);
    /// otherwise why there is none.
    pub(crate) fn id<'s>(&self, src: &'s str, idx: usize) -> Result<Cow<'s, str>, &'static str> {
        let Some(v) = self.tape.get(src, idx, "id") else {
            return Err("`id` is missing");
        };
        let id = match self.tape.nodes[v].tok {
            Tok::Str => self.tape.str(src, v),
            Tok::Number => Cow::Borrowed(self.tape.raw(src, v)),
            Tok::Null => return Err("`id` is null"),
            _ => return Err("`id` is not a string"),
        };
        if id.trim().is_empty() {
            return Err("`id` is empty");
        }
        Ok(id)
    }

    /// Fills the typed columns of the next row from the object at `idx` and hashes it.
    /// `id` is what [`Engine::id`] found: without a usable id the `id` column stays null
    /// and the problem is recorded, since `content_sha256` identifies the row without it.
    pub(crate) fn fill(&mut self, src: &str, idx: usize, id: &Result<Cow<str>, &str>) -> Row {
        self.issues.clear();
        let skip = match id {
            Ok(_) => None,
            Err(reason) => {
                let value = self
                    .tape
                    .get(src, idx, "id")
                    .map_or("", |v| self.tape.raw(src, v));
                self.issues.push(
                    "id".to_string(),
                    value,
                    format!(
                        "{reason}: the row is kept with a null id (content_sha256 identifies it)"
                    ),
                );
                self.id_child
            }
        };
        self.root
            .fill_members(&self.tape, src, idx, self.rows, &mut self.issues, skip);
        let sha = self.canon.sha256(&self.tape, src, idx);
        let mut sha_hex = [0u8; 64];
        hex::encode_to_slice(sha, &mut sha_hex).expect("64 bytes hold a hex SHA-256");
        Row { sha_hex }
    }

    /// The timestamp the current row holds in root column `child` (a timestamp column).
    pub(crate) fn timestamp(&self, child: usize) -> Option<i64> {
        self.root.children[child].timestamp_at(self.rows)
    }

    /// The partition day: the first usable timestamp of `candidates` (root column index and
    /// Graph name), else the fetch day; each fallback is recorded as an issue.
    pub(crate) fn partition_day(
        &mut self,
        src: &str,
        idx: usize,
        candidates: &[(usize, &str)],
        ctx: &RowContext,
    ) -> i32 {
        let mut skipped: Vec<&str> = Vec::new();
        let mut day = None;
        for &(child, name) in candidates {
            if let Some(t) = self.timestamp(child) {
                day = Some(time::day_of(t));
                break;
            }
            skipped.push(name);
        }
        let (day, used) = match day {
            Some(d) => (d, candidates[skipped.len()].1),
            None => (
                time::day_of(ctx.fetched_at.timestamp_micros()),
                "fetched_at",
            ),
        };
        if let Some(first) = skipped.first() {
            let value = self
                .tape
                .get(src, idx, first)
                .map_or("", |v| self.tape.raw(src, v));
            let message = format!(
                "partition date taken from {used}: {} is missing or malformed",
                skipped.join(", then ")
            );
            self.issues.push("date".to_string(), value, message);
        }
        day
    }

    /// Writes the columns every table has, logs the row's issues, and completes the row.
    pub(crate) fn finish_row(
        &mut self,
        raw: &str,
        row: &Row,
        id: Option<&str>,
        day: i32,
        ctx: &RowContext,
        with_source: bool,
    ) {
        self.raw_json.append_value(raw);
        let mut raw_hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(raw.as_bytes()), &mut raw_hex)
            .expect("64 bytes hold a hex SHA-256");
        self.raw_sha256
            .append_value(std::str::from_utf8(&raw_hex).expect("hex is ASCII"));
        self.content_sha256.append_value(row.sha());
        if with_source {
            self.source.append_value(ctx.source);
        }
        self.fetched_at
            .append_value(ctx.fetched_at.timestamp_micros());
        self.run_id.append_value(ctx.run_id);
        for issue in &self.issues.list {
            tracing::warn!(
                item_id = id.unwrap_or("(none)"),
                content_sha256 = row.sha(),
                field = %issue.field,
                value = %issue.value,
                source = %ctx.source,
                "{}", issue.message
            );
        }
        self.errors.push_row(&self.issues);
        self.date.append_value(day);
        self.raw_bytes += raw.len();
        self.rows += 1;
    }

    /// Bytes the finished batch will take, roughly: the raw text about twice over (typed
    /// columns repeat much of it) plus a fixed cost per row.
    pub(crate) fn estimated_bytes(&self) -> usize {
        self.raw_bytes * 2 + self.rows * 256
    }

    /// Finished Graph columns (builder order) and the shared extras as
    /// `[raw_json, raw_sha256, content_sha256, (source), fetched_at, run_id, parse_errors, date]`.
    pub(crate) fn finish(&mut self, with_source: bool) -> (Vec<ArrayRef>, Vec<ArrayRef>) {
        let mut graph = Vec::new();
        let mut nulls = NullArrays::default();
        for c in &mut self.root.children {
            c.finish_flat(self.rows, &mut nulls, &mut graph);
        }
        let mut extras: Vec<ArrayRef> = vec![
            Arc::new(self.raw_json.finish()),
            Arc::new(self.raw_sha256.finish()),
            Arc::new(self.content_sha256.finish()),
        ];
        if with_source {
            extras.push(Arc::new(self.source.finish()));
        }
        extras.push(Arc::new(self.fetched_at.finish()));
        extras.push(Arc::new(self.run_id.finish()));
        extras.push(self.errors.finish());
        extras.push(Arc::new(self.date.finish()));
        for array in graph.iter_mut().chain(extras.iter_mut()) {
            *array = exact_text(Arc::clone(array));
        }
        self.rows = 0;
        self.raw_bytes = 0;
        (graph, extras)
    }

    pub(crate) fn child(&self, json: &str) -> usize {
        self.root
            .child_index(json)
            .unwrap_or_else(|| panic!("the type has a `{json}` property"))
    }

    /// The `body` of the item at `idx`: its `content`, and whether its `contentType` is
    /// HTML. None when there is no body object or its content is not a string.
    pub(crate) fn body<'s>(&self, src: &'s str, idx: usize) -> Option<(Cow<'s, str>, bool)> {
        let tape = &self.tape;
        let body = tape
            .get(src, idx, "body")
            .filter(|&b| tape.nodes[b].tok == Tok::Object)?;
        let content = tape
            .get(src, body, "content")
            .filter(|&c| tape.nodes[c].tok == Tok::Str)?;
        let is_html = tape.get(src, body, "contentType").is_some_and(|t| {
            tape.nodes[t].tok == Tok::Str && tape.str(src, t).eq_ignore_ascii_case("html")
        });
        Some((tape.str(src, content), is_html))
    }

    /// A string member of the object at `idx` (a number is taken as written).
    pub(crate) fn string_member(&self, src: &str, idx: usize, key: &str) -> Option<String> {
        let v = self.tape.get(src, idx, key)?;
        match self.tape.nodes[v].tok {
            Tok::Str => Some(self.tape.str(src, v).into_owned()),
            Tok::Number => Some(self.tape.raw(src, v).to_string()),
            _ => None,
        }
    }
}

/// A text column copied into buffers of its exact size when its builder left much unused
/// capacity (builders grow by doubling). A finished batch may wait in a buffer for a
/// while, and what it holds should be what it uses: an allocator may keep a block whole
/// when asked to shrink it in place.
pub(crate) fn exact_text(array: ArrayRef) -> ArrayRef {
    const SLACK_BYTES: usize = 64 * 1024;
    let Some(text) = array.as_any().downcast_ref::<StringArray>() else {
        return array;
    };
    let values = text.values();
    let unused = values.capacity() - values.len();
    if unused < SLACK_BYTES || unused < values.len() / 8 {
        return array;
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(text.offsets().to_vec()));
    let values = Buffer::from_vec(text.value_data().to_vec());
    let nulls = text.nulls().map(|n| {
        let bits = Buffer::from_vec(n.buffer().as_slice().to_vec());
        NullBuffer::new(BooleanBuffer::new(bits, n.offset(), n.len()))
    });
    Arc::new(StringArray::new(offsets, values, nulls))
}

/// The names of the shared extras, which end every table, in their order.
pub(crate) fn common_tail(with_source: bool) -> Vec<&'static str> {
    common_extras(with_source)
        .iter()
        .map(|extra| extra.name)
        .collect()
}

/// The shared extras in the order [`Engine::finish`] returns them.
pub(crate) fn common_extras(with_source: bool) -> Vec<Extra> {
    let mut v = vec![RAW_JSON, RAW_SHA256, CONTENT_SHA256];
    if with_source {
        v.push(SOURCE);
    }
    v.push(fetched_at());
    v.push(RUN_ID);
    v.push(parse_errors());
    v.push(DATE);
    v
}
