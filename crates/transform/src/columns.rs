//! Arrow builders shaped like a Graph type, filled from a tape in one pass.
//!
//! The builder tree mirrors the JSON shape (a struct node per complex type, a list node per
//! collection). Nulls are written lazily: a column catches up to the current row only when a
//! value arrives, and every column catches up at `finish`. So a row costs work in proportion
//! to the values it has, not to the hundreds of columns a union of Graph types produces.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder,
    Int32Builder, Int64Builder, ListArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
    new_null_array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field as ArrowField, FieldRef, Fields, TimeUnit};
use base64::Engine as _;

use crate::csdl::{Field, Kind, Scalar};
use crate::json::{Tape, Tok};
use crate::time;

/// The Arrow type of a field.
pub(crate) fn data_type(field: &Field) -> DataType {
    match &field.kind {
        Kind::Scalar(s) => scalar_type(*s),
        Kind::Struct(children) => DataType::Struct(arrow_fields(children)),
        Kind::List(element) => DataType::List(Arc::new(ArrowField::new(
            "element",
            data_type(element),
            true,
        ))),
    }
}

pub(crate) fn arrow_fields(fields: &[Field]) -> Fields {
    fields
        .iter()
        .map(|f| ArrowField::new(f.name.clone(), data_type(f), true))
        .collect()
}

pub(crate) fn scalar_type(s: Scalar) -> DataType {
    match s {
        Scalar::Utf8 | Scalar::Json => DataType::Utf8,
        Scalar::Bool => DataType::Boolean,
        Scalar::Int32 => DataType::Int32,
        Scalar::Int64 => DataType::Int64,
        Scalar::Float64 => DataType::Float64,
        Scalar::Timestamp => utc_micros(),
        Scalar::Date => DataType::Date32,
        Scalar::Binary => DataType::Binary,
    }
}

pub(crate) fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A value that could not go into its typed column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIssue {
    /// Graph property path, e.g. `eventDetail.members[0].id`.
    pub field: String,
    /// The value as sent (JSON text, cut at 256 bytes).
    pub value: String,
    pub message: String,
}

/// Issues of the row being filled, and the path to the value being read.
#[derive(Default)]
pub(crate) struct Issues {
    pub list: Vec<ParseIssue>,
    path: String,
    /// Reused for unescaping strings on their way into a column.
    scratch: String,
}

const ISSUE_VALUE_LIMIT: usize = 256;

impl Issues {
    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.path.clear();
    }

    pub(crate) fn push(&mut self, field: String, raw: &str, message: impl Into<String>) {
        let mut value = raw;
        if value.len() > ISSUE_VALUE_LIMIT {
            let mut cut = ISSUE_VALUE_LIMIT;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value = &value[..cut];
        }
        self.list.push(ParseIssue {
            field,
            value: value.to_string(),
            message: message.into(),
        });
    }

    fn here(&mut self, raw: &str, message: impl Into<String>) {
        let field = self.path.clone();
        self.push(field, raw, message);
    }

    fn enter_key(&mut self, key: &str) -> usize {
        let mark = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        mark
    }

    fn enter_index(&mut self, i: usize) -> usize {
        use std::fmt::Write as _;
        let mark = self.path.len();
        let _ = write!(self.path, "[{i}]");
        mark
    }

    fn leave(&mut self, mark: usize) {
        self.path.truncate(mark);
    }
}

/// All-null arrays of one batch, shared by every column of the same type: a batch of a
/// wide, sparse table is mostly such columns, and each would otherwise hold its own
/// offsets and bitmaps.
#[derive(Default)]
pub(crate) struct NullArrays {
    made: HashMap<(DataType, usize), ArrayRef>,
}

impl NullArrays {
    pub(crate) fn get(&mut self, data_type: &DataType, len: usize) -> ArrayRef {
        if let Some(array) = self.made.get(&(data_type.clone(), len)) {
            return Arc::clone(array);
        }
        let array: ArrayRef = match data_type {
            // Children shared too (a null struct's children are never read).
            DataType::Struct(fields) if !fields.is_empty() => {
                let children = fields
                    .iter()
                    .map(|f| self.get(f.data_type(), len))
                    .collect();
                Arc::new(StructArray::new(
                    fields.clone(),
                    children,
                    Some(NullBuffer::new_null(len)),
                ))
            }
            _ => new_null_array(data_type, len),
        };
        self.made
            .insert((data_type.clone(), len), Arc::clone(&array));
        array
    }
}

pub(crate) enum Col {
    Utf8(StringBuilder),
    Json(StringBuilder),
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Binary(BinaryBuilder),
    Struct(StructCol),
    List(Box<ListCol>),
}

pub(crate) struct StructCol {
    /// JSON keys of the children, in field order.
    keys: Vec<Box<str>>,
    index: KeyIndex,
    pub children: Vec<Col>,
    fields: Fields,
    /// `None` for a struct flattened into its parent's columns.
    validity: Option<Vec<bool>>,
}

pub(crate) struct ListCol {
    offsets: Vec<i32>,
    validity: Vec<bool>,
    child: Col,
    element: FieldRef,
}

impl Col {
    pub(crate) fn new(field: &Field) -> Col {
        match &field.kind {
            Kind::Scalar(s) => match s {
                // Builders start empty: a table has hundreds of leaves, most of them
                // null in most rows, and every scope holds a builder of each.
                Scalar::Utf8 => Col::Utf8(StringBuilder::with_capacity(0, 0)),
                Scalar::Json => Col::Json(StringBuilder::with_capacity(0, 0)),
                Scalar::Bool => Col::Bool(BooleanBuilder::with_capacity(0)),
                Scalar::Int32 => Col::Int32(Int32Builder::with_capacity(0)),
                Scalar::Int64 => Col::Int64(Int64Builder::with_capacity(0)),
                Scalar::Float64 => Col::Float64(Float64Builder::with_capacity(0)),
                Scalar::Timestamp => Col::Timestamp(
                    TimestampMicrosecondBuilder::with_capacity(0).with_timezone("UTC"),
                ),
                Scalar::Date => Col::Date(Date32Builder::with_capacity(0)),
                Scalar::Binary => Col::Binary(BinaryBuilder::with_capacity(0, 0)),
            },
            Kind::Struct(children) => Col::Struct(StructCol::new(children, false)),
            Kind::List(element) => Col::List(Box::new(ListCol {
                offsets: vec![0],
                validity: Vec::new(),
                child: Col::new(element),
                element: Arc::new(ArrowField::new("element", data_type(element), true)),
            })),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Col::Utf8(b) | Col::Json(b) => b.len(),
            Col::Bool(b) => b.len(),
            Col::Int32(b) => b.len(),
            Col::Int64(b) => b.len(),
            Col::Float64(b) => b.len(),
            Col::Timestamp(b) => b.len(),
            Col::Date(b) => b.len(),
            Col::Binary(b) => b.len(),
            Col::Struct(s) => s.validity.as_ref().map_or(0, Vec::len),
            Col::List(l) => l.validity.len(),
        }
    }

    /// Appends nulls until the column has `n` entries.
    pub(crate) fn pad_to(&mut self, n: usize) {
        let len = self.len();
        if len >= n {
            return;
        }
        let missing = n - len;
        match self {
            Col::Utf8(b) | Col::Json(b) => b.append_nulls(missing),
            Col::Bool(b) => b.append_nulls(missing),
            Col::Int32(b) => b.append_nulls(missing),
            Col::Int64(b) => b.append_nulls(missing),
            Col::Float64(b) => b.append_nulls(missing),
            Col::Timestamp(b) => b.append_nulls(missing),
            Col::Date(b) => b.append_nulls(missing),
            Col::Binary(b) => {
                for _ in 0..missing {
                    b.append_null();
                }
            }
            Col::Struct(s) => {
                if let Some(v) = s.validity.as_mut() {
                    v.resize(n, false);
                }
            }
            Col::List(l) => {
                let last = *l.offsets.last().expect("offsets start with 0");
                l.offsets.resize(n + 1, last);
                l.validity.resize(n, false);
            }
        }
    }

    /// Writes the JSON value at `v` as entry `index` of this column (entries before it that
    /// were never written become null). A JSON null writes nothing: it stays null.
    pub(crate) fn fill(
        &mut self,
        tape: &Tape,
        src: &str,
        v: usize,
        index: usize,
        issues: &mut Issues,
    ) {
        let node = tape.nodes[v];
        if node.tok == Tok::Null {
            return;
        }
        if let Col::Struct(s) = self
            && s.validity.is_none()
        {
            // Flattened: no entry of its own, the children are indexed by the row.
            if node.tok != Tok::Object {
                issues.here(
                    tape.raw(src, v),
                    format!("expected an object, found {}", tok_name(node.tok)),
                );
                return;
            }
            s.fill_members(tape, src, v, index, issues, None);
            return;
        }
        if self.len() > index {
            issues.here(tape.raw(src, v), "duplicate key: the first value is kept");
            return;
        }
        self.pad_to(index);
        match self {
            Col::Struct(s) => {
                if node.tok != Tok::Object {
                    issues.here(
                        tape.raw(src, v),
                        format!("expected an object, found {}", tok_name(node.tok)),
                    );
                    return;
                }
                s.validity
                    .as_mut()
                    .expect("nested struct has validity")
                    .push(true);
                s.fill_members(tape, src, v, index, issues, None);
            }
            Col::List(l) => {
                if node.tok != Tok::Array {
                    issues.here(
                        tape.raw(src, v),
                        format!("expected an array, found {}", tok_name(node.tok)),
                    );
                    return;
                }
                let base = *l.offsets.last().expect("offsets start with 0") as usize;
                let mut count = 0;
                for (n, e) in tape.elements(v).enumerate() {
                    let mark = issues.enter_index(n);
                    l.child.fill(tape, src, e, base + n, issues);
                    issues.leave(mark);
                    count = n + 1;
                }
                l.offsets.push((base + count) as i32);
                l.validity.push(true);
            }
            scalar => fill_scalar(scalar, tape, src, v, issues),
        }
    }

    /// The Arrow type this column finishes to.
    fn data_type(&self) -> DataType {
        match self {
            Col::Utf8(_) | Col::Json(_) => DataType::Utf8,
            Col::Bool(_) => DataType::Boolean,
            Col::Int32(_) => DataType::Int32,
            Col::Int64(_) => DataType::Int64,
            Col::Float64(_) => DataType::Float64,
            Col::Timestamp(_) => utc_micros(),
            Col::Date(_) => DataType::Date32,
            Col::Binary(_) => DataType::Binary,
            Col::Struct(s) => DataType::Struct(s.fields.clone()),
            Col::List(l) => DataType::List(l.element.clone()),
        }
    }

    /// Finishes a column that is not flattened, `len` entries long.
    pub(crate) fn finish(&mut self, len: usize, nulls: &mut NullArrays) -> ArrayRef {
        if self.len() == 0 && len > 0 {
            // Never written (most columns of a union of Graph types): a shared all-null
            // array instead of `len` appended nulls.
            return nulls.get(&self.data_type(), len);
        }
        self.pad_to(len);
        match self {
            Col::Utf8(b) | Col::Json(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Int32(b) => Arc::new(b.finish()),
            Col::Int64(b) => Arc::new(b.finish()),
            Col::Float64(b) => Arc::new(b.finish()),
            Col::Timestamp(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Binary(b) => Arc::new(b.finish()),
            Col::Struct(s) => {
                let children: Vec<ArrayRef> = s
                    .children
                    .iter_mut()
                    .map(|c| c.finish(len, nulls))
                    .collect();
                let validity = s.validity.as_mut().map(std::mem::take).unwrap_or_default();
                let nulls = NullBuffer::from(validity);
                let nulls = (nulls.null_count() > 0).then_some(nulls);
                if s.fields.is_empty() {
                    return Arc::new(StructArray::new_empty_fields(len, nulls));
                }
                Arc::new(StructArray::new(s.fields.clone(), children, nulls))
            }
            Col::List(l) => {
                let child_len = *l.offsets.last().expect("offsets start with 0") as usize;
                let values = l.child.finish(child_len, nulls);
                let offsets = OffsetBuffer::new(std::mem::replace(&mut l.offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(&mut l.validity));
                let nulls = (nulls.null_count() > 0).then_some(nulls);
                Arc::new(ListArray::new(l.element.clone(), offsets, values, nulls))
            }
        }
    }

    /// Finishes into `out`: a flattened struct contributes its children's columns.
    pub(crate) fn finish_flat(
        &mut self,
        len: usize,
        nulls: &mut NullArrays,
        out: &mut Vec<ArrayRef>,
    ) {
        match self {
            Col::Struct(s) if s.validity.is_none() => {
                for c in &mut s.children {
                    c.finish_flat(len, nulls, out);
                }
            }
            other => out.push(other.finish(len, nulls)),
        }
    }

    /// The timestamp at `index`, when this is a timestamp column that has one.
    pub(crate) fn timestamp_at(&self, index: usize) -> Option<i64> {
        match self {
            Col::Timestamp(b) if b.len() > index => {
                let valid = b
                    .validity_slice()
                    .is_none_or(|bits| bits[index / 8] & (1 << (index % 8)) != 0);
                valid.then(|| b.values_slice()[index])
            }
            _ => None,
        }
    }
}

impl StructCol {
    /// A struct node over `fields`; `flatten` makes it a set of columns with no entry of its
    /// own. Single-valued structs directly under a flattened struct are flattened too.
    pub(crate) fn new(fields: &[Field], flatten: bool) -> StructCol {
        let children = fields
            .iter()
            .map(|f| match &f.kind {
                Kind::Struct(grand) if flatten && f.flatten => {
                    Col::Struct(StructCol::new(grand, true))
                }
                _ => Col::new(f),
            })
            .collect();
        let keys: Vec<Box<str>> = fields
            .iter()
            .map(|f| f.json.clone().into_boxed_str())
            .collect();
        StructCol {
            index: KeyIndex::new(&keys),
            keys,
            children,
            fields: arrow_fields(fields),
            validity: (!flatten).then(Vec::new),
        }
    }

    pub(crate) fn child_index(&self, json: &str) -> Option<usize> {
        self.index.find(&self.keys, json.as_bytes())
    }

    /// Writes the members of the object at `obj` whose keys are fields of this struct,
    /// except child `skip`, which stays null.
    pub(crate) fn fill_members(
        &mut self,
        tape: &Tape,
        src: &str,
        obj: usize,
        index: usize,
        issues: &mut Issues,
        skip: Option<usize>,
    ) {
        for (k, v) in tape.members(obj) {
            let key = if tape.nodes[k].escaped {
                tape.str(src, k)
            } else {
                Cow::Borrowed(tape.text(src, k))
            };
            if let Some(ci) = self.child_index(&key)
                && Some(ci) != skip
            {
                let mark = issues.enter_key(&key);
                self.children[ci].fill(tape, src, v, index, issues);
                issues.leave(mark);
            }
        }
    }
}

/// Open-addressing table from a JSON key to its field: one hash and one comparison per
/// key read, where a binary search over the names costs several comparisons.
struct KeyIndex {
    slots: Vec<u16>,
    mask: usize,
}

const EMPTY: u16 = u16::MAX;

impl KeyIndex {
    fn new(keys: &[Box<str>]) -> KeyIndex {
        let size = (keys.len() * 2).next_power_of_two().max(4);
        let mut slots = vec![EMPTY; size];
        for (i, k) in keys.iter().enumerate() {
            let mut at = key_hash(k.as_bytes()) & (size - 1);
            while slots[at] != EMPTY {
                at = (at + 1) & (size - 1);
            }
            slots[at] = i as u16;
        }
        KeyIndex {
            slots,
            mask: size - 1,
        }
    }

    #[inline]
    fn find(&self, keys: &[Box<str>], key: &[u8]) -> Option<usize> {
        let mut at = key_hash(key) & self.mask;
        loop {
            let slot = self.slots[at];
            if slot == EMPTY {
                return None;
            }
            if same_bytes(keys[slot as usize].as_bytes(), key) {
                return Some(slot as usize);
            }
            at = (at + 1) & self.mask;
        }
    }
}

/// Byte equality for short keys, without a call into libc's memcmp.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let x = u64::from_ne_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_ne_bytes(y.try_into().expect("8 bytes"));
        if x != y {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .all(|(x, y)| x == y)
}

/// Mixes the length and the first and last 8 bytes: constant time, and distinct enough for
/// the few dozen names of a Graph type (the slot's key is compared in full anyway).
#[inline]
fn key_hash(b: &[u8]) -> usize {
    let n = b.len();
    let (head, tail) = if n >= 8 {
        let head = u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let tail = u64::from_le_bytes(b[n - 8..].try_into().expect("8 bytes"));
        (head, tail)
    } else {
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(b);
        (u64::from_le_bytes(buf), 0)
    };
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize
}

pub(crate) fn tok_name(t: Tok) -> &'static str {
    match t {
        Tok::Object => "an object",
        Tok::Array => "an array",
        Tok::Key | Tok::Str => "a string",
        Tok::Number => "a number",
        Tok::True | Tok::False => "a boolean",
        Tok::Null => "null",
    }
}

/// Writes one scalar, coercing what Graph is known to mix up; a value that does not fit
/// leaves the entry null and records an issue.
fn fill_scalar(col: &mut Col, tape: &Tape, src: &str, v: usize, issues: &mut Issues) {
    let node = tape.nodes[v];
    let raw = || tape.raw(src, v);
    match col {
        Col::Utf8(b) => match node.tok {
            Tok::Str if node.escaped => {
                issues.scratch.clear();
                crate::json::unescape_into(tape.text(src, v), &mut issues.scratch);
                b.append_value(&issues.scratch);
            }
            Tok::Str => b.append_value(tape.text(src, v)),
            Tok::Number | Tok::True | Tok::False => b.append_value(raw()),
            // An object or array where a string is declared: keep it as JSON text.
            _ => b.append_value(raw()),
        },
        Col::Json(b) => match node.tok {
            Tok::Str => b.append_value(tape.str(src, v)),
            _ => b.append_value(raw()),
        },
        Col::Bool(b) => match node.tok {
            Tok::True => b.append_value(true),
            Tok::False => b.append_value(false),
            Tok::Str => match &*tape.str(src, v) {
                "true" | "True" => b.append_value(true),
                "false" | "False" => b.append_value(false),
                _ => issues.here(raw(), "expected a boolean"),
            },
            _ => issues.here(raw(), "expected a boolean"),
        },
        Col::Int32(b) => match integer(tape, src, v) {
            Some(x) if i32::try_from(x).is_ok() => b.append_value(x as i32),
            Some(_) => issues.here(raw(), "integer out of 32-bit range"),
            None => issues.here(raw(), "expected an integer"),
        },
        Col::Int64(b) => match integer(tape, src, v) {
            Some(x) => b.append_value(x),
            None => issues.here(raw(), "expected an integer"),
        },
        Col::Float64(b) => {
            let text = match node.tok {
                Tok::Number | Tok::Str => Some(tape.str(src, v)),
                _ => None,
            };
            match text.and_then(|t| t.trim().parse::<f64>().ok()) {
                Some(x) => b.append_value(x),
                None => issues.here(raw(), "expected a number"),
            }
        }
        Col::Timestamp(b) => match node.tok {
            Tok::Str => match time::parse_micros(&tape.str(src, v)) {
                Ok(x) => b.append_value(x),
                Err(e) => issues.here(raw(), e),
            },
            _ => issues.here(raw(), "expected an RFC 3339 timestamp string"),
        },
        Col::Date(b) => match node.tok {
            Tok::Str => match time::parse_date(&tape.str(src, v)) {
                Ok(x) => b.append_value(x),
                Err(e) => issues.here(raw(), e),
            },
            _ => issues.here(raw(), "expected a date string"),
        },
        Col::Binary(b) => match node.tok {
            Tok::Str => match base64::engine::general_purpose::STANDARD
                .decode(tape.str(src, v).as_bytes())
            {
                Ok(bytes) => b.append_value(bytes),
                Err(e) => issues.here(raw(), format!("expected base64: {e}")),
            },
            _ => issues.here(raw(), "expected a base64 string"),
        },
        Col::Struct(_) | Col::List(_) => {
            unreachable!("fill_scalar is called for scalar columns only")
        }
    }
}

/// An integer from a JSON number (`42`, `42.0`) or a numeric string (`"42"`).
fn integer(tape: &Tape, src: &str, v: usize) -> Option<i64> {
    let node = tape.nodes[v];
    let text = match node.tok {
        Tok::Number | Tok::Str => tape.str(src, v),
        _ => return None,
    };
    let t = text.trim();
    if let Ok(x) = t.parse::<i64>() {
        return Some(x);
    }
    let f = t.parse::<f64>().ok()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}
