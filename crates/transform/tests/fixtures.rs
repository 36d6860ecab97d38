//! Every message in the Graph docs fixtures goes through the builders, and every value it
//! holds is found, equal, in its typed column.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{
    Array, AsArray, BinaryArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    ListArray, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use common::*;
use serde_json::Value;
use transform::{ChatMessageBuilder, ItemError, MailMessageBuilder};

/// One archived row and the item it came from.
struct Row<'a> {
    file: String,
    raw: &'a str,
    batch: RecordBatch,
    index: usize,
}

/// Items the docs show without an `id`: rows all the same, with a null `id`.
const WITHOUT_ID: &[(&str, usize)] = &[
    ("beta/message-delta-1.json", 0),
    ("concepts/concept-system-messages-19.json", 0),
    ("v1.0/mailfolder-list-messages-1.json", 0),
    ("v1.0/message-delta-1.json", 0),
];

struct Transformed<'a> {
    rows: Vec<Row<'a>>,
    refused: Vec<(String, usize, ItemError)>,
    /// (file, item number) of each row, parallel to `rows`.
    origins: Vec<(String, usize)>,
}

fn transform_all(fixtures: &[Fixture]) -> Transformed<'_> {
    let mut rows = Vec::new();
    let mut refused = Vec::new();
    let mut origins = Vec::new();
    for fx in fixtures {
        let file = fx.entry.file.clone();
        let context = ctx(&file, Some("custodian-1"));
        let mut chat = ChatMessageBuilder::new();
        let mut mail = MailMessageBuilder::new();
        let mut raws = Vec::new();
        let mut item_numbers = Vec::new();
        for (n, item) in items(&fx.text).into_iter().enumerate() {
            let result = if fx.entry.is_mail() {
                mail.append(item, &context)
            } else {
                chat.append(item, &context)
            };
            match result {
                Ok(count) => {
                    let expected = rows_of(item);
                    assert_eq!(count, expected.len(), "{file} item {n}: rows appended");
                    item_numbers.extend(std::iter::repeat_n(n, expected.len()));
                    raws.extend(expected);
                }
                Err(e) => refused.push((file.clone(), n, e)),
            }
        }
        let batch = if fx.entry.is_mail() {
            assert_eq!(chat.len(), 0);
            mail.finish()
        } else {
            assert_eq!(mail.len(), 0);
            let batches = chat.finish();
            assert_eq!(
                batches.custodians.num_rows(),
                batches.messages.num_rows(),
                "{file}: one custodian row per message"
            );
            batches.messages
        };
        assert_eq!(batch.num_rows(), raws.len(), "{file}");
        for (index, raw) in raws.into_iter().enumerate() {
            origins.push((file.clone(), item_numbers[index]));
            rows.push(Row {
                file: file.clone(),
                raw,
                batch: batch.clone(),
                index,
            });
        }
    }
    Transformed {
        rows,
        refused,
        origins,
    }
}

#[test]
fn every_message_in_every_fixture_becomes_a_row() {
    let fixtures = message_fixtures();
    let t = transform_all(&fixtures);
    let expected: usize = fixtures
        .iter()
        .map(|f| f.entry.chat_messages() + f.entry.mail_messages())
        .sum();
    // 108 chat + 11 mail messages in responses, 2 + 2 in resource templates, 32 in concept
    // examples; four of them have no `id` and are rows all the same.
    assert_eq!(expected, 155);
    assert!(t.refused.is_empty(), "refused: {:?}", t.refused);
    assert_eq!(t.rows.len(), expected);
    let mut without_id = Vec::new();
    for (row, (file, n)) in t.rows.iter().zip(&t.origins) {
        let id = row.batch.column_by_name("id").unwrap();
        if id.is_valid(row.index) {
            continue;
        }
        without_id.push((file.as_str(), *n));
        let errors = row
            .batch
            .column_by_name("parse_errors")
            .unwrap()
            .as_list::<i32>()
            .value(row.index);
        let fields = errors.as_struct().column_by_name("field").unwrap();
        let fields = fields.as_string::<i32>();
        assert!(
            (0..fields.len()).any(|i| fields.value(i) == "id"),
            "{file} item {n}: a null id is recorded in parse_errors"
        );
    }
    assert_eq!(without_id, WITHOUT_ID);
    for row in &t.rows {
        let raw_json = row
            .batch
            .column_by_name("raw_json")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(
            raw_json.value(row.index),
            row.raw,
            "{}: raw_json is the item's bytes",
            row.file
        );
    }
}

#[test]
fn expanded_replies_become_rows_of_their_own() {
    let fixtures = message_fixtures();
    let fx = fixtures
        .iter()
        .find(|f| f.entry.file == "v1.0/channel-list-messages-3.json")
        .unwrap();
    let t = transform_all(std::slice::from_ref(fx));
    assert_eq!(t.rows.len(), 4);
    let batch = &t.rows[0].batch;
    let reply_to = batch
        .column_by_name("reply_to_id")
        .unwrap()
        .as_string::<i32>();
    let id = batch.column_by_name("id").unwrap().as_string::<i32>();
    assert!(reply_to.is_null(0));
    for i in 1..4 {
        assert_eq!(
            reply_to.value(i),
            id.value(0),
            "reply {i} replies to the parent"
        );
    }
    let raw = batch.column_by_name("raw_json").unwrap().as_string::<i32>();
    assert!(
        raw.value(0).contains("\"replies\""),
        "the parent keeps its full raw_json"
    );
}

#[test]
fn every_json_leaf_is_in_its_typed_column() {
    let fixtures = message_fixtures();
    let t = transform_all(&fixtures);
    // (is mail, leaf path) of every JSON leaf no typed column holds.
    let mut unmapped: BTreeSet<(bool, String)> = BTreeSet::new();
    let mut checked = 0usize;
    for row in &t.rows {
        let value: Value = serde_json::from_str(row.raw).unwrap();
        let mut leaves = BTreeSet::new();
        let mut walk = Walk {
            row,
            unmapped: &mut leaves,
            checked: 0,
        };
        walk.top(&value);
        checked += walk.checked;
        let mail = row
            .batch
            .schema()
            .column_with_name("received_date_time")
            .is_some();
        unmapped.extend(leaves.into_iter().map(|p| (mail, p)));
    }
    let list = |mail: bool| {
        if mail {
            transform::MAIL_MESSAGES_RAW_ONLY
        } else {
            transform::CHAT_MESSAGES_RAW_ONLY
        }
    };
    let gaps: Vec<&(bool, String)> = unmapped
        .iter()
        .filter(|(mail, p)| !list(*mail).iter().any(|e| transform::raw_only_covers(e, p)))
        .collect();
    assert!(
        gaps.is_empty(),
        "JSON leaves (is mail, path) with no column and not listed as held only by raw_json: {gaps:#?}"
    );
    for mail in [false, true] {
        let stale: Vec<&str> = list(mail)
            .iter()
            .filter(|e| {
                !unmapped
                    .iter()
                    .any(|(m, p)| *m == mail && transform::raw_only_covers(e, p))
            })
            .map(|e| e.path)
            .collect();
        assert!(
            stale.is_empty(),
            "raw_json-only entries no fixture needs (mail {mail}): {stale:?}"
        );
    }
    assert!(checked > 3000, "only {checked} leaves checked");
}

struct Walk<'r, 'a> {
    row: &'r Row<'a>,
    unmapped: &'r mut BTreeSet<String>,
    checked: usize,
}

fn snake(json: &str) -> String {
    if json == "@odata.type" {
        return "odata_type".into();
    }
    let chars: Vec<char> = json.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn column_name(flat: &str) -> &str {
    match flat {
        "channel_identity_team_id" => "team_id",
        "channel_identity_channel_id" => "channel_id",
        other => other,
    }
}

fn pattern(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

impl Walk<'_, '_> {
    fn top(&mut self, value: &Value) {
        let Value::Object(map) = value else {
            panic!("{}: item is not an object", self.row.file)
        };
        for (k, v) in map {
            self.flat(&snake(k), k, v);
        }
    }

    /// A member of the top-level object or of a flattened struct.
    fn flat(&mut self, name: &str, path: &str, v: &Value) {
        let batch = &self.row.batch;
        if let Some(col) = batch.column_by_name(column_name(name)) {
            let col = col.clone();
            self.compare(col.as_ref(), self.row.index, v, path);
            return;
        }
        let prefix = format!("{}_", column_name(name));
        let flattened: Vec<usize> = (0..batch.num_columns())
            .filter(|&c| {
                let column = batch.schema().field(c).name().clone();
                let flat = match column.as_str() {
                    "team_id" => "channel_identity_team_id",
                    "channel_id" => "channel_identity_channel_id",
                    other => other,
                };
                flat.starts_with(&prefix)
            })
            .collect();
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    self.flat(
                        &format!("{name}_{}", snake(k)),
                        &format!("{path}.{k}"),
                        child,
                    );
                }
            }
            // A null (or empty) single-valued complex property: all its columns are null.
            Value::Null | Value::Object(_) if !flattened.is_empty() => {
                for c in flattened {
                    assert!(
                        batch.column(c).is_null(self.row.index),
                        "{} row {}: `{path}` is {v} but {} is set",
                        self.row.file,
                        self.row.index,
                        batch.schema().field(c).name()
                    );
                }
                self.checked += 1;
            }
            _ => self.unmapped_leaves(path, v),
        }
    }

    fn unmapped_leaves(&mut self, path: &str, v: &Value) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    self.unmapped_leaves(&format!("{path}.{k}"), child);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, child) in items.iter().enumerate() {
                    self.unmapped_leaves(&format!("{path}[{i}]"), child);
                }
            }
            _ => {
                self.unmapped.insert(pattern(path));
            }
        }
    }

    fn has_issue(&self, path: &str) -> bool {
        let errors = self
            .row
            .batch
            .column_by_name("parse_errors")
            .unwrap()
            .as_list::<i32>();
        let entries = errors.value(self.row.index);
        let entries = entries.as_struct();
        let fields = entries.column_by_name("field").unwrap().as_string::<i32>();
        (0..fields.len()).any(|i| fields.value(i) == path)
    }

    fn compare(&mut self, col: &dyn Array, i: usize, v: &Value, path: &str) {
        let ctx = format!("{} row {} `{path}` = {v}", self.row.file, self.row.index);
        if v.is_null() {
            assert!(
                col.is_null(i),
                "{ctx}: null in JSON, not null in the column"
            );
            self.checked += 1;
            return;
        }
        match col.data_type() {
            DataType::Struct(_) => {
                let s = col.as_any().downcast_ref::<StructArray>().unwrap();
                let Value::Object(map) = v else {
                    assert!(
                        s.is_null(i) && self.has_issue(path),
                        "{ctx}: not an object, no parse error"
                    );
                    return;
                };
                assert!(s.is_valid(i), "{ctx}: object in JSON, null struct");
                for (k, child) in map {
                    let p = format!("{path}.{k}");
                    match s.column_by_name(&snake(k)) {
                        Some(c) => self.compare(c.as_ref(), i, child, &p),
                        None => self.unmapped_leaves(&p, child),
                    }
                }
            }
            DataType::List(_) => {
                let l = col.as_any().downcast_ref::<ListArray>().unwrap();
                let Value::Array(items) = v else {
                    assert!(
                        l.is_null(i) && self.has_issue(path),
                        "{ctx}: not an array, no parse error"
                    );
                    return;
                };
                assert!(l.is_valid(i), "{ctx}: array in JSON, null list");
                let offsets = l.value_offsets();
                let start = offsets[i] as usize;
                assert_eq!(
                    offsets[i + 1] as usize - start,
                    items.len(),
                    "{ctx}: list length"
                );
                for (n, item) in items.iter().enumerate() {
                    self.compare(
                        l.values().as_ref(),
                        start + n,
                        item,
                        &format!("{path}[{n}]"),
                    );
                }
            }
            DataType::Utf8 => {
                let a = col.as_any().downcast_ref::<StringArray>().unwrap();
                assert!(a.is_valid(i), "{ctx}: string column is null");
                match v {
                    Value::String(s) => assert_eq!(a.value(i), s, "{ctx}"),
                    Value::Object(_) | Value::Array(_) => {
                        let parsed: Value = serde_json::from_str(a.value(i)).unwrap();
                        assert_eq!(&parsed, v, "{ctx}: JSON text");
                    }
                    other => assert_eq!(a.value(i), other.to_string(), "{ctx}: coerced to text"),
                }
                self.checked += 1;
            }
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
                assert_eq!(&**tz, "UTC");
                let a = col
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                let text = v.as_str().unwrap_or_default();
                match chrono::DateTime::parse_from_rfc3339(text) {
                    Ok(t) => {
                        assert!(a.is_valid(i), "{ctx}: timestamp not parsed");
                        assert_eq!(a.value(i), t.timestamp_micros(), "{ctx}: same instant");
                    }
                    Err(_) => {
                        assert!(a.is_null(i), "{ctx}: malformed timestamp parsed");
                        assert!(
                            self.has_issue(path),
                            "{ctx}: malformed timestamp without parse error"
                        );
                    }
                }
                self.checked += 1;
            }
            DataType::Boolean => {
                let a = col.as_any().downcast_ref::<BooleanArray>().unwrap();
                assert_eq!(a.value(i), v.as_bool().unwrap(), "{ctx}");
                self.checked += 1;
            }
            DataType::Int32 => {
                let a = col.as_any().downcast_ref::<Int32Array>().unwrap();
                assert_eq!(a.value(i) as i64, number(v), "{ctx}");
                self.checked += 1;
            }
            DataType::Int64 => {
                let a = col.as_any().downcast_ref::<Int64Array>().unwrap();
                assert_eq!(a.value(i), number(v), "{ctx}");
                self.checked += 1;
            }
            DataType::Float64 => {
                let a = col.as_any().downcast_ref::<Float64Array>().unwrap();
                assert_eq!(a.value(i), v.as_f64().unwrap(), "{ctx}");
                self.checked += 1;
            }
            DataType::Binary => {
                let a = col.as_any().downcast_ref::<BinaryArray>().unwrap();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default());
                match decoded {
                    Ok(bytes) => assert_eq!(a.value(i), bytes.as_slice(), "{ctx}"),
                    Err(_) => assert!(
                        a.is_null(i) && self.has_issue(path),
                        "{ctx}: bad base64 not recorded"
                    ),
                }
                self.checked += 1;
            }
            DataType::Date32 => {
                let a = col.as_any().downcast_ref::<Date32Array>().unwrap();
                assert!(a.is_valid(i), "{ctx}");
                self.checked += 1;
            }
            other => panic!("{ctx}: unexpected column type {other}"),
        }
    }
}

fn number(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap(),
        Value::String(s) => s.parse().unwrap(),
        other => panic!("not a number: {other}"),
    }
}

#[test]
fn malformed_timestamp_keeps_the_row() {
    let fixtures = message_fixtures();
    let fx = fixtures
        .iter()
        .find(|f| f.entry.file == "concepts/concept-system-messages-11.json")
        .unwrap();
    assert!(fx.text.contains("2021-03-1706:47:05.123Z"));
    let t = transform_all(std::slice::from_ref(fx));
    assert_eq!(t.rows.len(), 1);
    let batch = &t.rows[0].batch;
    let errors = list_items(batch, "parse_errors", 0);
    let field = errors.column_by_name("field").unwrap().as_string::<i32>();
    let value = errors.column_by_name("value").unwrap().as_string::<i32>();
    let bad: Vec<usize> = (0..errors.len())
        .filter(|&i| value.value(i) == "\"2021-03-1706:47:05.123Z\"" && field.value(i) != "date")
        .collect();
    assert!(
        !bad.is_empty(),
        "no parse error for the malformed timestamp"
    );
    for i in bad {
        let column = match field.value(i) {
            "createdDateTime" => batch.column_by_name("created_date_time").unwrap().clone(),
            "lastModifiedDateTime" => batch
                .column_by_name("last_modified_date_time")
                .unwrap()
                .clone(),
            "eventDetail.eventDateTime" => batch
                .column_by_name("event_detail")
                .unwrap()
                .as_struct()
                .column_by_name("event_date_time")
                .unwrap()
                .clone(),
            other => panic!("unexpected field {other}"),
        };
        assert!(column.is_null(0), "{} should be null", field.value(i));
    }
}

#[test]
fn identical_examples_hash_equal_and_different_payloads_differ() {
    let fixtures = message_fixtures();
    let t = transform_all(&fixtures);
    // Group rows by version key (id, lastModifiedDateTime as sent).
    let mut groups: BTreeMap<(String, String), Vec<(Value, String)>> = BTreeMap::new();
    for row in &t.rows {
        let v: Value = serde_json::from_str(row.raw).unwrap();
        let key = (
            v.get("id").map(|x| x.to_string()).unwrap_or_default(),
            v.get("lastModifiedDateTime")
                .map(|x| x.to_string())
                .unwrap_or_default(),
        );
        let sha = row
            .batch
            .column_by_name("content_sha256")
            .unwrap()
            .as_string::<i32>()
            .value(row.index)
            .to_string();
        assert_eq!(
            sha,
            hex(transform::canonical_sha256(row.raw).unwrap()),
            "content_sha256 is canonical_sha256"
        );
        groups.entry(key).or_default().push((v, sha));
    }
    let (mut same, mut different) = (0, 0);
    for rows in groups.values() {
        for a in 0..rows.len() {
            for b in a + 1..rows.len() {
                if rows[a].0 == rows[b].0 {
                    assert_eq!(rows[a].1, rows[b].1, "same JSON value, different hash");
                    same += 1;
                } else {
                    assert_ne!(rows[a].1, rows[b].1, "different JSON values, same hash");
                    different += 1;
                }
            }
        }
    }
    assert!(
        same >= 10,
        "docs repeat examples verbatim: {same} equal pairs"
    );
    assert!(
        different >= 5,
        "docs show different payloads under one version: {different} pairs"
    );
    let distinct: BTreeSet<&str> = t.rows.iter().map(|r| r.raw).collect();
    let shas: BTreeSet<String> = t
        .rows
        .iter()
        .map(|r| {
            r.batch
                .column_by_name("content_sha256")
                .unwrap()
                .as_string::<i32>()
                .value(r.index)
                .to_string()
        })
        .collect();
    assert!(shas.len() <= distinct.len());
}

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What sorts items by day before they are appended (`DayReader`) picks the same day the
/// builders put in each row's `date`, for every row of every fixture.
#[test]
fn the_day_reader_agrees_with_the_date_of_every_row() {
    let fixtures = message_fixtures();
    let t = transform_all(&fixtures);
    let fetched_day = fetched_at().timestamp().div_euclid(86_400) as i32;
    let mut reader = transform::DayReader::new();
    let mut fallbacks = 0;
    for row in &t.rows {
        let mail = row
            .batch
            .schema()
            .column_with_name("received_date_time")
            .is_some();
        let keys = if mail {
            transform::MAIL_MESSAGE_DAY_KEYS
        } else {
            transform::CHAT_MESSAGE_DAY_KEYS
        };
        let read = reader.day(row.raw, keys);
        fallbacks += usize::from(read.is_none());
        let date = row
            .batch
            .column_by_name("date")
            .unwrap()
            .as_any()
            .downcast_ref::<Date32Array>()
            .unwrap()
            .value(row.index);
        assert_eq!(
            read.unwrap_or(fetched_day),
            date,
            "{} row {}",
            row.file,
            row.index
        );
    }
    assert!(fallbacks > 0, "some fixtures have no usable timestamp");
    assert!(fallbacks < t.rows.len() / 2);
}
